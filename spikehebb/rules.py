"""Plasticity rules, each declared once as a table of terms (Najarro & Risi 2020, eq. 1).

After every forward pass each synapse from presynaptic unit i to postsynaptic unit j changes by

    dw_ij = eta_ij * sum over the rule's terms of  coefficient_ij * (product of the term's factors)

The paper's family is built from four terms, ``A*o_i*o_j + B*o_i + C*o_j + D``; a rule names
which terms it evolves, and the ``_lr`` rules also evolve a per-synapse learning rate eta (eta = 1
otherwise). A term declares the factors it reads (:data:`FACTORS`): the presynaptic rate
``pre`` (o_i), the postsynaptic rate ``post`` (o_j) and the member's modulator ``mod`` (m(t), a
third factor the env supplies every step; no rule of the paper reads it). Everything that
applies a rule is generated from this one table:

- :func:`reference_update`: the paper's form in NumPy, the truth of the tests;
- :func:`numpy_delta`: the NumPy backend's update (terms that read ``pre`` grouped as
  ``o_i * (A*o_j + B)``);
- :func:`brian_update`, :func:`brian_model_lines`: the Brian2 backend's synaptic code
  (``w += A * r_pre * r_post + B * r_pre + C * r_post + D``).

Adding a rule is adding one entry to :data:`RULES`; adding a kind of term is adding one
:class:`Term` (and, if it reads something new, one :class:`Factor`).

Coefficient layout (used by every module that stores or exchanges coefficients): one array per
layer of shape ``(P, n_pre, n_post, k)`` where P is the population batch and the k fields are in
``rule.fields`` order (eta first when evolved, then the terms' coefficients in table order). A
flat parameter vector is the concatenation, layer by layer, of the C-order ravel of
``(n_pre, n_post, k)``; see :func:`unflatten_coefficients`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class Factor:
    """Something a term multiplies its coefficient by.

    name: as terms list it; brian: the synaptic Brian2 expression; doc: what it is, with units.
    """

    name: str
    brian: str
    doc: str


#: Every factor a term may read.
FACTORS: dict[str, Factor] = {
    f.name: f
    for f in (
        Factor("pre", "r_pre", "presynaptic rate o_i of this step (dimensionless)"),
        Factor("post", "r_post", "postsynaptic rate o_j of this step (dimensionless)"),
        Factor("mod", "m_post", "the member's modulator m(t) of this step, a third factor from the env"),
    )
}


@dataclass(frozen=True)
class Term:
    """One term of a rule: ``coefficient * factor_1 * factor_2 * ...``.

    coefficient: the per-synapse coefficient's name (a field of the rule's layout); factors:
    names from :data:`FACTORS`, in multiplication order; doc: what the term does.
    """

    coefficient: str
    factors: tuple[str, ...]
    doc: str

    def __post_init__(self) -> None:
        unknown = [f for f in self.factors if f not in FACTORS]
        if unknown:
            raise ValueError(f"term {self.coefficient}: unknown factors {unknown}; known: {tuple(FACTORS)}")

    @property
    def brian(self) -> str:
        """The term as synaptic Brian2 code, e.g. ``"A * r_pre * r_post"``."""
        return " * ".join((self.coefficient,) + tuple(FACTORS[f].brian for f in self.factors))

    def numpy(self, coefficient: np.ndarray, factors: Mapping[str, np.ndarray], skip: str | None = None):
        """The term's value: ``coefficient`` times its factors (all broadcastable), left to right;
        ``skip`` leaves one factor out (the NumPy backend multiplies ``pre`` in once for all)."""
        value = coefficient
        for name in self.factors:
            if name != skip:
                value = value * factors[name]
        return value


#: The paper's four terms (Najarro & Risi 2020, eq. 1).
HEBBIAN = Term("A", ("pre", "post"), "correlation o_i*o_j")
PRESYNAPTIC = Term("B", ("pre",), "presynaptic rate o_i")
POSTSYNAPTIC = Term("C", ("post",), "postsynaptic rate o_j")
DRIFT = Term("D", (), "constant drift")


@dataclass(frozen=True)
class RuleSpec:
    """A plasticity rule: its name, its terms, and whether a per-synapse learning rate is evolved.

    ``fields``: the per-synapse coefficients in layout order, ``("eta",)`` first when
    ``learning_rate``, then each term's coefficient.
    """

    name: str
    terms: tuple[Term, ...]
    learning_rate: bool = False
    doc: str = ""

    def __post_init__(self) -> None:
        names = [t.coefficient for t in self.terms]
        if not names or len(set(names)) != len(names) or "eta" in names:
            raise ValueError(f"rule {self.name!r} needs terms with distinct coefficients other than eta, got {names}")

    @property
    def fields(self) -> tuple[str, ...]:
        return (("eta",) if self.learning_rate else ()) + tuple(t.coefficient for t in self.terms)

    @property
    def k(self) -> int:
        """Number of coefficients per synapse."""
        return len(self.fields)

    @property
    def has_eta(self) -> bool:
        """Whether a per-synapse learning rate is evolved (the ``_lr`` rules)."""
        return self.learning_rate

    @property
    def reads(self) -> frozenset[str]:
        """Every factor the rule's terms read."""
        return frozenset(f for t in self.terms for f in t.factors)

    def index(self, field: str) -> int:
        """Position of ``field`` along the last axis of a coefficient array."""
        try:
            return self.fields.index(field)
        except ValueError:
            raise ValueError(
                f"rule {self.name!r} has no coefficient {field!r}; its fields are {self.fields}"
            ) from None


def _paper_rule(name: str, *terms: Term, lr: bool = False) -> RuleSpec:
    return RuleSpec(name, terms, lr, doc="Najarro & Risi 2020, Table 2")


#: Every rule by name: the paper's ablation (Najarro & Risi 2020, Table 2).
RULES: dict[str, RuleSpec] = {
    r.name: r
    for r in (
        _paper_rule("A", HEBBIAN),
        _paper_rule("AD", HEBBIAN, DRIFT),
        _paper_rule("AD_lr", HEBBIAN, DRIFT, lr=True),
        _paper_rule("ABC", HEBBIAN, PRESYNAPTIC, POSTSYNAPTIC),
        _paper_rule("ABC_lr", HEBBIAN, PRESYNAPTIC, POSTSYNAPTIC, lr=True),
        _paper_rule("ABCD", HEBBIAN, PRESYNAPTIC, POSTSYNAPTIC, DRIFT),
        _paper_rule("ABCD_lr", HEBBIAN, PRESYNAPTIC, POSTSYNAPTIC, DRIFT, lr=True),
    )
}


def get_rule(rule: str | RuleSpec) -> RuleSpec:
    """Return the spec of a rule by name (a :class:`RuleSpec` is passed through)."""
    if isinstance(rule, RuleSpec):
        return rule
    try:
        return RULES[rule]
    except (KeyError, TypeError):
        raise ValueError(f"unknown rule {rule!r}; valid rules are {', '.join(RULES)}") from None


# ------------------------------------------------------------------------------------ layout
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


# ------------------------------------------------------------------------- generated updates
def _factors(pre: np.ndarray, post: np.ndarray, modulator) -> dict[str, np.ndarray]:
    """The factors of a layer, broadcastable to ``(P, n_pre, n_post)``: pre ``(P, n_pre)``,
    post ``(P, n_post)``, modulator ``(P,)`` (None: 0)."""
    factors = {"pre": pre[:, :, None], "post": post[:, None, :]}
    if modulator is None:
        factors["mod"] = np.zeros((len(pre), 1, 1), dtype=pre.dtype)
    else:
        factors["mod"] = np.asarray(modulator, dtype=pre.dtype)[:, None, None]
    return factors


def reference_update(
    weights: np.ndarray,
    pre: np.ndarray,
    post: np.ndarray,
    coefficients: np.ndarray,
    rule: str | RuleSpec,
    modulator: np.ndarray | None = None,
) -> np.ndarray:
    """The rule as written in the paper, for clarity; tests treat it as the truth.

    weights: ``(P, n_pre, n_post)``; pre: ``(P, n_pre)`` rates o_i; post: ``(P, n_post)`` rates
    o_j of the same forward pass; coefficients: ``(P, n_pre, n_post, k)`` in ``rule.fields``
    order; modulator: ``(P,)`` m(t) (None: 0). Returns the new weights ``(P, n_pre, n_post)``.
    """
    spec = get_rule(rule)
    factors = _factors(pre, post, modulator)
    total = sum(t.numpy(coefficients[..., spec.index(t.coefficient)], factors) for t in spec.terms)
    eta = coefficients[..., spec.index("eta")] if spec.has_eta else 1.0
    return weights + eta * total


def fold_eta(coefficients: np.ndarray, rule: str | RuleSpec) -> dict[str, np.ndarray]:
    """The rule's term coefficients with the learning rate multiplied in (``eta*A``, ...).

    coefficients: ``(..., k)`` in ``rule.fields`` order. Returns each term's coefficient by
    name, each ``(...)``. Fast backends store these so each step reads four arrays, not five; the
    update equals :func:`reference_update` up to floating-point rounding.
    """
    spec = get_rule(rule)
    eta = coefficients[..., spec.index("eta")] if spec.has_eta else 1.0
    return {t.coefficient: eta * coefficients[..., spec.index(t.coefficient)] for t in spec.terms}


def numpy_delta(
    folded: Mapping[str, np.ndarray], pre: np.ndarray, post: np.ndarray, modulator: np.ndarray | None, rule: RuleSpec
) -> np.ndarray:
    """The weight change of one layer, as the NumPy backend computes it.

    folded: :func:`fold_eta`'s arrays ``(P, n_pre, n_post)``; pre ``(P, n_pre)``, post
    ``(P, n_post)``, modulator ``(P,)`` or None. The terms that read ``pre`` share it:
    ``o_i * (A*o_j + B) + C*o_j + D`` for ABCD (fewer full-size products than term by term).
    """
    factors = _factors(pre, post, modulator)
    inner = None
    for term in rule.terms:
        if "pre" in term.factors:
            value = term.numpy(folded[term.coefficient], factors, skip="pre")
            inner = value if inner is None else inner + value
    dw = factors["pre"] * inner if inner is not None else np.zeros(np.broadcast_shapes(
        factors["pre"].shape, factors["post"].shape), dtype=pre.dtype)
    for term in rule.terms:
        if "pre" not in term.factors:
            dw = dw + term.numpy(folded[term.coefficient], factors)
    return dw


def brian_model_lines(rule: RuleSpec, fold_eta: bool = True) -> list[str]:
    """The per-synapse coefficient variables of the Brian2 synapse model, one line each."""
    lines = []
    if rule.has_eta and not fold_eta:
        lines.append("eta : 1 (constant)  # learning rate")
    folded = " (times eta)" if fold_eta and rule.has_eta else ""
    for term in rule.terms:
        lines.append(f"{term.coefficient} : 1 (constant)  # coefficient of {term.doc}{folded}")
    return lines


def brian_update(rule: RuleSpec, fold_eta: bool = True) -> str:
    """Brian2 synaptic code of the rule, applied once per step after the forward pass."""
    terms = " + ".join(t.brian for t in rule.terms)
    if rule.has_eta and not fold_eta:
        return f"w += eta * ({terms})"
    return f"w += {terms}"


def synapse_fields(rule: RuleSpec | None, fold_eta: bool = True) -> tuple[str, ...]:
    """The coefficient variables a fast backend stores (the rule's fields, less eta if folded)."""
    if rule is None:
        return ()
    return tuple(f for f in rule.fields if not (fold_eta and f == "eta"))
