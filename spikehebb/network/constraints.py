"""Weight constraints: ordered objects applied to a layer's weights after the rule, every step.

A network takes a list of constraints and applies them in list order after the rule has updated
every layer (step order: forward pass, rule on every layer, constraints). Each constraint names
the layers it acts on and says how each backend applies it:

- :meth:`WeightConstraint.apply`: NumPy, in place on one layer's weights ``(P, n_pre, n_post)``
  (C-contiguous). The NumPy backend always calls it, but for a latent constraint (below), whose
  weights it sets through :meth:`~WeightConstraint.from_latent` instead.
- :meth:`WeightConstraint.brian_code`: Brian2 synaptic code run after the rule (compiled), or
  None when Brian2's code cannot express it (a reduction over a member's synapses); the Brian2
  backend then runs :meth:`apply` in a ``NetworkOperation`` on the arrays its compiled code
  reads, so both backends call the same function and agree bit for bit.
- :meth:`WeightConstraint.brian_model`: extra per-synapse variables the code reads, set by
  :meth:`brian_values` at build; :meth:`WeightConstraint.brian_pre_model`: variables of the
  presynaptic units (Dale's sign per unit, read as ``s_dale_pre``), set by
  :meth:`brian_pre_values`. A per-unit variable is read through the presynaptic index the rule
  already uses for ``r_pre``, where a per-synapse copy would stream one more array per step.

A constraint may also scale what each presynaptic unit sends (:meth:`WeightConstraint.input_gain`):
the forward pass then sums ``g_i * w_ij * r_i`` (Brian2: ``I_post = w * r_pre * g_dale_pre``;
NumPy: the rates times the gains before the matmul), so the synapse's efficacy is ``g_i * w_ij``
while the rule and the constraints act on ``w`` as before.

A constraint may also reparametrise the weights (:attr:`WeightConstraint.latent`): the rule
then changes a latent per-synapse variable instead of ``w``, and the constraint maps it to the
weight after every update (:meth:`~WeightConstraint.from_latent`; at reset and
:meth:`set_weights` the backends set the latent from the weights, :meth:`to_latent`). At most
one such constraint per layer.

Dale's law (Dale 1935; Burns 2021 on Najarro & Risi): every neuron of every layer is excitatory
(sign s_i = +1) or inhibitory (s_i = -1); all outgoing weights w_ij of neuron i share its sign.
The signs come from :func:`spikehebb.biology.dale_signs`; two modes keep them whatever the rule
does:

- :class:`DaleClip` (``"dale_clip"``): after each update ``w_ij <- s_i * max(s_i * w_ij, 0)``:
  a weight that would cross zero stays at zero (a silent synapse the rule may revive).
- :class:`DaleSmooth` (``"dale_smooth"``): ``w_ij = s_i * softplus(s_i * v_ij)`` with the rule
  acting on the latent ``v_ij`` (``v += dw``). ``dw_ij/dv_ij = sigmoid(s_i * v_ij) > 0``, so a
  rule's push keeps its direction on w, shrinks as |w| -> 0 and w never reaches 0 or flips;
  softplus(x) = max(x, 0) + log1p(exp(-|x|)) (no overflow; log1p keeps the digits of a small |w| that
  float32's 1 + exp(-|x|) would round away). v starts at
  ``s_i * log(expm1(|w_ij|))``, the inverse, |w| floored at :data:`DaleSmooth.MIN_MAGNITUDE`.
  For a small weight dw/dv is about |w|: the rule acts multiplicatively on small weights.
- :class:`DaleSquareplus` (``"dale_squareplus"``): the same with softplus replaced by the
  algebraic squareplus(x) = (x + sqrt(x^2 + 4 c^2)) / 2 (Barron 2021), c = 0.1: smooth,
  positive, x for x >> c, c^2 / |x| for x << -c; ``dw/dv = (1 + x / sqrt(x^2 + 4 c^2)) / 2``,
  about w^2 / c^2 for |w| << c and 1 for |w| >> c. v starts at ``s_i * (|w| - c^2 / |w|)``. One
  square root and a division per synapse and step where softplus needs an exp and a log
  (``bench_network.py --biology``, P = 64: 1.9x plain ABCD against 8.1x for softplus).

E/I balance (``balance=True``, the Dale modes' default through ``AgentConfig.dale_balance``):
unit i of a layer of n units, n_E excitatory and n_I inhibitory, sends with gain g_i = n / (2 n_E)
if excitatory and n / (2 n_I) if inhibitory (80% E: 0.625 and 2.5, inhibition 4x as strong per
synapse: Brunel 2000's relative inhibition g at its balance point N_E / N_I). The E and I efficacies a unit receives then sum alike in
expectation, at the start of a lifetime and whatever the rule grows, since the rule's statistics
do not depend on the sign, and their total is the unconstrained network's. Without it a mostly
excitatory layer drives every unit positive: measured on the ant with 80% E, every rate and
action sits at +1 from the second step of every member's lifetime (the weights grow by the rule
to |w| ~ 100), every candidate scores alike (gen-0 fitness std 0.6 against 8 unconstrained) and
the search finds nothing in 60 generations (``experiments/biology_ant.py``).

The registry :data:`CONSTRAINTS` builds one by name (``make_constraint("max_abs")``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from spikehebb.plugins import missing


class WeightConstraint:
    """Base class. ``layers``: synaptic layers it acts on, counted from 0 (None: all)."""

    name = ""
    latent: str | None = None
    """The latent variable the rule changes instead of ``w`` (None: the rule changes ``w``)."""

    def __init__(self, layers: Sequence[int] | None = None):
        self.layers = None if layers is None else tuple(int(l) for l in layers)

    def acts_on(self, layer: int) -> bool:
        return self.layers is None or layer in self.layers

    def apply(self, w: np.ndarray, layer: int) -> None:
        """Constrain one layer's weights ``(P, n_pre, n_post)`` in place."""
        raise NotImplementedError

    def brian_code(self, layer: int) -> str | None:
        """Brian2 synaptic code doing the same, or None (then :meth:`apply` runs as a NetworkOperation)."""
        return None

    def brian_model(self, layer: int) -> list[str]:
        """Extra per-synapse variable lines of the Brian2 model that :meth:`brian_code` reads."""
        return []

    def brian_values(self, layer: int, population: int) -> dict[str, np.ndarray]:
        """Values of :meth:`brian_model`'s variables, flat in (member, pre, post) order."""
        return {}

    def brian_pre_model(self, layer: int) -> list[str]:
        """Extra variable lines of layer ``layer``'s presynaptic group (the code reads ``name_pre``)."""
        return []

    def brian_pre_values(self, layer: int, population: int) -> dict[str, np.ndarray]:
        """Values of :meth:`brian_pre_model`'s variables, flat in (member, pre) order."""
        return {}

    def input_gain(self, layer: int) -> np.ndarray | None:
        """Per presynaptic unit of layer ``layer`` ``(n_pre,)`` float64, the gain its rate is sent
        with (the synapse's efficacy is ``gain_i * w_ij``), or None (gain 1). The Brian2 forward pass
        reads it as ``g_dale_pre`` (a constraint with gains declares that variable)."""
        return None

    def from_latent(self, latent: np.ndarray, layer: int) -> np.ndarray:
        """The weights ``(P, n_pre, n_post)`` of a latent (constraints with :attr:`latent`)."""
        raise NotImplementedError

    def to_latent(self, w: np.ndarray, layer: int) -> np.ndarray:
        """The latent ``(P, n_pre, n_post)`` of weights (constraints with :attr:`latent`)."""
        raise NotImplementedError

    def to_dict(self) -> dict:
        return {"name": self.name, "layers": None if self.layers is None else list(self.layers)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(layers={self.layers})"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.to_dict() == self.to_dict()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.layers))


class MaxAbsNormalisation(WeightConstraint):
    """Each member's layer divided by its largest |w| (Najarro & Risi 2020's car code,
    ``w = w / abs(w).max()`` per layer after every update). A layer whose weights are all 0 is
    left as it is (the original would divide by 0). A reduction over a member's synapses, which
    Brian2's synaptic code cannot express: NumPy in both backends."""

    name = "max_abs"

    def apply(self, w: np.ndarray, layer: int) -> None:
        if not w.flags.c_contiguous:
            raise ValueError("max_abs normalisation works in place and needs a C-contiguous array")
        flat = w.reshape(w.shape[0], -1)
        scale = np.abs(flat).max(axis=1)
        scale[scale == 0] = 1  # an all-zero layer stays as it is
        flat /= scale[:, None]


class _Dale(WeightConstraint):
    """Dale's law on every layer. signs: one sequence of +1 (excitatory) / -1 (inhibitory) per
    layer of units, inputs first (``len(sizes)`` sequences, :func:`spikehebb.biology.dale_signs`);
    synaptic layer l reads ``signs[l]`` (its presynaptic units); the Brian2 code reads them as
    ``s_dale_pre``, a constant of the presynaptic group. balance: E/I balanced gains (see the
    module docstring; :meth:`input_gain`), read by the forward pass as ``g_dale_pre``."""

    def __init__(self, signs: Sequence[Sequence[int]], layers: Sequence[int] | None = None, balance: bool = False):
        super().__init__(layers)
        given = [np.asarray(s) for s in signs]
        for s in given:  # checked before the cast: int8 would cut 1.5 to 1
            if s.ndim != 1 or s.dtype.kind not in "iuf" or not np.all(np.abs(s) == 1):
                raise ValueError(f"{self.name}: signs must be sequences of +1 and -1 per layer, got {s!r}")
        self.signs = tuple(s.astype(np.int8) for s in given)
        if not isinstance(balance, bool):
            raise ValueError(f"{self.name}: balance must be True or False, got {balance!r}")
        self.balance = balance

    def sign(self, layer: int) -> np.ndarray:
        """``(1, n_pre, 1)`` float signs of layer ``layer``'s presynaptic units."""
        if layer + 1 >= len(self.signs):
            raise ValueError(f"{self.name} has signs for {len(self.signs)} layers of units; synaptic layer {layer} needs {layer + 2}")
        return self.signs[layer].astype(np.float64)[None, :, None]

    def input_gain(self, layer: int) -> np.ndarray | None:
        """E/I balanced gains ``n / (2 n_E)`` (E) and ``n / (2 n_I)`` (I) of layer ``layer``'s
        presynaptic units ``(n_pre,)``; all 1 in a layer of one kind; None without balance."""
        if not self.balance:
            return None
        s = self.sign(layer).ravel()
        n, n_e = s.size, int((s > 0).sum())
        if n_e in (0, n):
            return np.ones(n)
        return np.where(s > 0, n / (2 * n_e), n / (2 * (n - n_e)))

    def brian_pre_model(self, layer: int) -> list[str]:
        lines = ["s_dale : 1 (constant)  # Dale: the unit's sign, +1 excitatory, -1 inhibitory"]
        if self.balance:
            lines.append("g_dale : 1 (constant)  # Dale: the unit's E/I balance gain, its synapses' efficacy is g_dale * w")
        return lines

    def brian_pre_values(self, layer: int, population: int) -> dict[str, np.ndarray]:
        values = {"s_dale": np.tile(self.sign(layer).ravel(), population)}
        if self.balance:
            values["g_dale"] = np.tile(self.input_gain(layer), population)
        return values

    def to_dict(self) -> dict:
        return {**super().to_dict(), "signs": [s.tolist() for s in self.signs], "balance": self.balance}

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.layers, tuple(tuple(s.tolist()) for s in self.signs), self.balance))

    def __repr__(self) -> str:
        counts = ", ".join(f"{int((s > 0).sum())}E/{int((s < 0).sum())}I" for s in self.signs)
        return f"{type(self).__name__}({counts}{', balanced' if self.balance else ''})"


class DaleClip(_Dale):
    """Dale's law by clipping: ``w_ij <- s_i * max(s_i * w_ij, 0)`` after every update (see the
    module docstring); Brian2 runs it as synaptic code reading the presynaptic sign ``s_dale_pre``."""

    name = "dale_clip"

    def apply(self, w: np.ndarray, layer: int) -> None:
        s = self.sign(layer).astype(w.dtype)
        w[...] = s * np.maximum(s * w, 0)

    def brian_code(self, layer: int) -> str:
        # max(x, 0) as (x + |x|) / 2, exact for every finite x: Brian2's Cython clip() is a
        # non-inline call with an error check per synapse, which made this constraint cost 2x the rule
        return "w = s_dale_pre * (s_dale_pre * w + abs(s_dale_pre * w)) / 2  # Dale's law: a weight crossing zero stays at zero"


class DaleSmooth(_Dale):
    """Dale's law by a sign-preserving parametrisation ``w_ij = s_i * softplus(s_i * v_ij)``, the
    rule acting on v (see the module docstring)."""

    name = "dale_smooth"
    latent = "v"
    MIN_MAGNITUDE = 1e-6
    """Initial |w| below this is raised to it (softplus reaches 0 only at v = -inf; in floating
    point it rounds to 0 beyond |v| of about 37 in float64, 17 in float32, which keeps the sign)."""

    def apply(self, w: np.ndarray, layer: int) -> None:
        raise RuntimeError("dale_smooth maps the latent to the weights: backends call from_latent")

    def from_latent(self, latent: np.ndarray, layer: int) -> np.ndarray:
        s = self.sign(layer).astype(latent.dtype)
        x = s * latent
        # log1p: log(1 + e) rounds 1 + e first; in float32 |w| = 1e-6 came back as 9.54e-7
        return s * (np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x))))

    def to_latent(self, w: np.ndarray, layer: int) -> np.ndarray:
        s = self.sign(layer)
        magnitude = np.maximum(s * np.asarray(w, dtype=np.float64), self.MIN_MAGNITUDE)
        # softplus^-1(y) = log(expm1(y)) = y + log(-expm1(-y)), the second form without overflow
        return s * (magnitude + np.log(-np.expm1(-magnitude)))

    def brian_model(self, layer: int) -> list[str]:
        return ["v : 1  # Dale (smooth): the latent the rule changes, w = s_dale_pre * softplus(s_dale_pre * v)"]

    def brian_code(self, layer: int) -> str:
        # max(x, 0) written as (x + |x|) / 2 (exact; see DaleClip), |s_dale_pre * v| = |v|
        return "w = s_dale_pre * ((s_dale_pre * v + abs(v)) / 2 + log1p(exp(-abs(v))))  # Dale's law, smooth"


class DaleSquareplus(DaleSmooth):
    """Dale's law by ``w_ij = s_i * squareplus(s_i * v_ij)``, the rule acting on v: the smooth
    mode with an algebraic link in place of softplus (see the module docstring), a square root
    and a division per synapse instead of an exp and a log: about a quarter of softplus's cost."""

    name = "dale_squareplus"
    SCALE = 0.1
    """c of squareplus(x) = (x + sqrt(x^2 + 4 c^2)) / 2: |w| = c at v = 0; the paper's initial
    weights are U[-0.1, 0.1], so they start in the link's bend."""

    def from_latent(self, latent: np.ndarray, layer: int) -> np.ndarray:
        # squareplus(x) = max(x, 0) + squareplus(-|x|), and squareplus(-|x|) = 2c^2 / (sqrt(x^2 +
        # 4c^2) + |x|): no cancellation (x = -1e4 would lose every digit in (x + sqrt(...)) / 2),
        # and where x^2 overflows the second term is 0, its limit, so a finite v gives a finite w
        s = self.sign(layer).astype(latent.dtype)
        a = np.abs(latent)
        return s * ((s * latent + a) / 2 + 2 * self.SCALE**2 / (np.sqrt(latent * latent + 4 * self.SCALE**2) + a))

    def to_latent(self, w: np.ndarray, layer: int) -> np.ndarray:
        s = self.sign(layer)
        magnitude = np.maximum(s * np.asarray(w, dtype=np.float64), self.MIN_MAGNITUDE)
        return s * (magnitude - self.SCALE**2 / magnitude)  # squareplus^-1(y) = y - c^2 / y

    def brian_model(self, layer: int) -> list[str]:
        return ["v : 1  # Dale (squareplus): the latent the rule changes, w = s_dale_pre * squareplus(s_dale_pre * v)"]

    def brian_code(self, layer: int) -> str:
        # as from_latent: max(x, 0) + 2c^2 / (sqrt(v^2 + 4c^2) + |v|), with max(x, 0) as (x + |x|) / 2
        return (f"w = s_dale_pre * ((s_dale_pre * v + abs(v)) / 2 + {2 * self.SCALE**2!r} / (sqrt(v * v + {4 * self.SCALE**2!r})"
                " + abs(v)))  # Dale's law, squareplus")


#: Every constraint by name.
CONSTRAINTS: dict[str, type[WeightConstraint]] = {
    c.name: c for c in (MaxAbsNormalisation, DaleClip, DaleSmooth, DaleSquareplus)
}


def make_constraint(spec: "str | dict | WeightConstraint") -> WeightConstraint:
    """A constraint from its name, its ``to_dict()`` form, or itself."""
    if isinstance(spec, WeightConstraint):
        return spec
    if isinstance(spec, str):
        spec = {"name": spec}
    spec = dict(spec)
    name = spec.pop("name", None)
    if missing(name, CONSTRAINTS):  # (a plug-in's constraint: spikehebb.plugins)
        raise ValueError(f"unknown weight constraint {name!r}; expected one of {tuple(CONSTRAINTS)}")
    try:
        return CONSTRAINTS[name](**spec)
    except TypeError as e:  # a field missing, unknown or of the wrong kind
        raise ValueError(f"weight constraint {name!r}: {e}") from None
