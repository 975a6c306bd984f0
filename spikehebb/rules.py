"""The ABCD family of Hebbian plasticity rules (Najarro & Risi 2020, eq. 1).

After every forward pass each synapse from presynaptic unit i to postsynaptic unit j changes by

    dw_ij = eta_ij * (A_ij * o_i * o_j + B_ij * o_i + C_ij * o_j + D_ij)

where o_i and o_j are the rates (activations) of the same pass. A rule names which coefficients
are evolved; the others are 0, and a rule without ``_lr`` has no learning rate (eta = 1).

Coefficient layout (used by every module that stores or exchanges coefficients): one array per
layer of shape ``(P, n_pre, n_post, k)`` where P is the population batch and the k fields are in
``rule.fields`` order. A flat parameter vector (what an evolution strategy searches) is the
concatenation, layer by layer, of the C-order ravel of ``(n_pre, n_post, k)``; see
:func:`unflatten_coefficients`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: Every coefficient a rule may evolve, in canonical order.
ALL_FIELDS = ("eta", "A", "B", "C", "D")


@dataclass(frozen=True)
class RuleSpec:
    """A plasticity rule: its name and the coefficient fields it evolves, in layout order."""

    name: str
    fields: tuple[str, ...]

    @property
    def k(self) -> int:
        """Number of coefficients per synapse."""
        return len(self.fields)

    @property
    def has_eta(self) -> bool:
        """Whether a per-synapse learning rate is evolved (the ``_lr`` rules)."""
        return "eta" in self.fields

    def index(self, field: str) -> int:
        """Position of ``field`` along the last axis of a coefficient array."""
        try:
            return self.fields.index(field)
        except ValueError:
            raise ValueError(
                f"rule {self.name!r} has no coefficient {field!r}; its fields are {self.fields}"
            ) from None


def _spec(name: str) -> RuleSpec:
    base, _, suffix = name.partition("_")
    fields = tuple(f for f in ALL_FIELDS[1:] if f in base)
    return RuleSpec(name, (("eta",) if suffix == "lr" else ()) + fields)


#: The rules of the paper's ablation (Najarro & Risi 2020, Table 2).
RULES: dict[str, RuleSpec] = {
    name: _spec(name) for name in ("A", "AD", "AD_lr", "ABC", "ABC_lr", "ABCD", "ABCD_lr")
}


def get_rule(rule: str | RuleSpec) -> RuleSpec:
    """Return the spec of a rule by name (a :class:`RuleSpec` is passed through)."""
    if isinstance(rule, RuleSpec):
        return rule
    try:
        return RULES[rule]
    except (KeyError, TypeError):
        raise ValueError(f"unknown rule {rule!r}; valid rules are {', '.join(RULES)}") from None


def coefficient_shapes(sizes: Sequence[int], rule: str | RuleSpec) -> list[tuple[int, int, int]]:
    """Per-layer coefficient shapes ``(n_pre, n_post, k)`` of one network (no population axis)."""
    spec = get_rule(rule)
    return [(n_pre, n_post, spec.k) for n_pre, n_post in zip(sizes[:-1], sizes[1:])]


def n_coefficients(sizes: Sequence[int], rule: str | RuleSpec) -> int:
    """Length of the flat coefficient vector of one network (61,440 for the ant with ABCD_lr)."""
    return sum(int(np.prod(s)) for s in coefficient_shapes(sizes, rule))


def unflatten_coefficients(
    flat: np.ndarray, sizes: Sequence[int], rule: str | RuleSpec
) -> list[np.ndarray]:
    """Split flat vectors into the per-layer layout.

    flat: ``(n,)`` or ``(P, n)`` with n = :func:`n_coefficients`. Returns per layer an array
    ``(P, n_pre, n_post, k)`` (P = 1 for a single vector); the arrays are views where possible.
    """
    flat = np.asarray(flat)
    if flat.ndim == 1:
        flat = flat[None]
    n = n_coefficients(sizes, rule)
    if flat.ndim != 2 or flat.shape[1] != n:
        raise ValueError(
            f"flat coefficients for sizes {tuple(sizes)} and rule {get_rule(rule).name} must be "
            f"(n,) or (P, n) with n={n}, got shape {flat.shape}"
        )
    layers, start = [], 0
    for shape in coefficient_shapes(sizes, rule):
        size = int(np.prod(shape))
        layers.append(flat[:, start : start + size].reshape((flat.shape[0],) + shape))
        start += size
    return layers


def flatten_coefficients(layers: Sequence[np.ndarray]) -> np.ndarray:
    """Inverse of :func:`unflatten_coefficients`: per-layer ``(P, n_pre, n_post, k)`` -> ``(P, n)``."""
    return np.concatenate([np.reshape(c, (c.shape[0], -1)) for c in layers], axis=1)


def expand_fields(coefficients: np.ndarray, rule: str | RuleSpec) -> dict[str, np.ndarray]:
    """All five coefficients of a layer by name: the rule's fields, eta = 1 and the others 0.

    coefficients: ``(..., k)`` in ``rule.fields`` order. Returns arrays of shape ``(...)``.
    """
    spec = get_rule(rule)
    shape = coefficients.shape[:-1]
    out = {}
    for field in ALL_FIELDS:
        if field in spec.fields:
            out[field] = coefficients[..., spec.index(field)]
        else:
            out[field] = np.full(shape, 1.0 if field == "eta" else 0.0, dtype=coefficients.dtype)
    return out


def reference_update(
    weights: np.ndarray,
    pre: np.ndarray,
    post: np.ndarray,
    coefficients: np.ndarray,
    rule: str | RuleSpec,
) -> np.ndarray:
    """The rule as written in the paper, for clarity; tests treat it as the truth.

    weights: ``(P, n_pre, n_post)``; pre: ``(P, n_pre)`` rates o_i; post: ``(P, n_post)`` rates
    o_j of the same forward pass; coefficients: ``(P, n_pre, n_post, k)`` in ``rule.fields``
    order. Returns the new weights ``(P, n_pre, n_post)``.
    """
    c = expand_fields(coefficients, rule)
    o_i = pre[:, :, None]
    o_j = post[:, None, :]
    dw = c["eta"] * (c["A"] * o_i * o_j + c["B"] * o_i + c["C"] * o_j + c["D"])
    return weights + dw


def fold_eta(coefficients: np.ndarray, rule: str | RuleSpec) -> dict[str, np.ndarray]:
    """The rule's A..D terms with the learning rate multiplied in (``eta*A``, ``eta*B``, ...).

    coefficients: ``(..., k)`` in ``rule.fields`` order. Returns the rule's non-eta fields by
    name, each ``(...)``. Fast backends store these so each step reads four arrays, not five; the
    update equals :func:`reference_update` up to floating-point rounding.
    """
    spec = get_rule(rule)
    eta = coefficients[..., spec.index("eta")] if spec.has_eta else 1.0
    return {f: eta * coefficients[..., spec.index(f)] for f in spec.fields if f != "eta"}
