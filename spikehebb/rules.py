"""Plasticity rules, each declared once as a table of terms (Najarro & Risi 2020, eq. 1).

After every forward pass each synapse from presynaptic unit i to postsynaptic unit j changes by

    dw_ij = eta_ij * sum over the rule's eta-scaled terms of  coefficient_ij * (product of the term's factors)
          +          sum over its other terms (``Term.eta_scaled`` False) of the same

The paper's family is built from four terms, ``A*o_i*o_j + B*o_i + C*o_j + D``, all scaled by
eta; a rule names which terms it evolves, and the ``_lr`` rules also evolve a per-synapse
learning rate eta (eta = 1 otherwise). The authors' code adds two variants with a drift outside
eta, ``D_out`` (:data:`DRIFT_OUT`): ``ABCD_lr_D_out`` and ``ABCD_lr_D_in_and_out``. A term
declares the factors it reads (:data:`FACTORS`): the presynaptic rate ``pre`` (o_i), the
postsynaptic rate ``post`` (o_j), the member's modulator ``mod`` (m(t), a third factor the
env supplies every step; no rule of the paper reads it), the synapse's own weight ``w`` (w_ij
before this step's update: Oja's ``E*o_j*o_j*w``, a weight decay ``E*w``; no registered rule
reads it) and a rule's own per-synapse state
(:class:`SynapticState`, e.g. the eligibility trace ``elig`` of the three-factor rules,
:func:`three_factor`). Everything that applies a rule is generated from this one table:

- :func:`reference_update`: the paper's form in NumPy, the truth of the tests;
- :func:`numpy_delta`: the NumPy backend's update (terms that read ``pre`` grouped as
  ``o_i * (A*o_j + B)``);
- :func:`brian_update`, :func:`brian_model_lines`: the Brian2 backend's synaptic code
  (``w += A * r_pre * r_post + B * r_pre + C * r_post + D``).

Adding a rule is adding one entry to :data:`RULES`; adding a kind of term is adding one
:class:`Term` (and, if it reads something new, one :class:`Factor`). A rule's coefficient names
become Brian2 variables and NumPy keys: :class:`RuleSpec` refuses, in one line, a name that is
not a Python identifier, is a keyword, a factor, a state or state constant, ``eta``,
``dw_local`` or a variable the Brian2 models already have; a Brian2 network also refuses, before
it builds, a name Brian2 or its Cython target reserves (units, functions, constants, ``t``,
``xi_*``, ``*_pre``, ``cdef``, ...). A rule's name holds no ``+`` but the ``NAME+mod`` of
:func:`three_factor`'s rules. These checks are :mod:`spikehebb.rule_names`.

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

from spikehebb.plugins import missing
from spikehebb.rule_names import check_coefficient, check_rule_name


@dataclass(frozen=True)
class Factor:
    """Something a term multiplies its coefficient by.

    name: as terms list it; brian: the synaptic Brian2 expression (``{rate}`` stands for the
    rate variable the rule reads: ``r``, or ``rbar``, the moving average, see
    :func:`brian_update`); doc: what it is, with units.
    """

    name: str
    brian: str
    doc: str

    def brian_code(self, rate: str = "r") -> str:
        return self.brian.replace("{rate}", rate)


#: Every factor a term may read.
FACTORS: dict[str, Factor] = {
    f.name: f
    for f in (
        Factor("pre", "{rate}_pre", "presynaptic rate o_i of this step (dimensionless)"),
        Factor("post", "{rate}_post", "postsynaptic rate o_j of this step (dimensionless)"),
        Factor("mod", "m_post", "the member's modulator m(t) of this step, a third factor from the env"),
        Factor("elig", "elig", "the synapse's eligibility trace e_ij(t) (a rule state, see ELIGIBILITY)"),
        Factor("w", "w", "the synapse's weight w_ij, before this step's update (dimensionless). It is the weight "
                         "itself wherever the rule writes: where a reparametrising constraint (smooth Dale, "
                         "network/constraints.py) makes the rule change its latent v, w is the weight v maps "
                         "to (as the last step's constraints left it), not v; with E/I balance it is w, not the "
                         "efficacy g_i*w; on the lif network it is the stored copy the rule changes, w on the on "
                         "neuron's synapse and -w on the off neuron's (network/spiking.py keeps them negatives)"),
    )
}


@dataclass(frozen=True)
class Term:
    """One term of a rule: ``coefficient * factor_1 * factor_2 * ...``.

    coefficient: the per-synapse coefficient's name (a field of the rule's layout); factors:
    names from :data:`FACTORS`, in multiplication order; doc: what the term does; eta_scaled:
    whether the rule's learning rate eta multiplies it (the paper's terms; the gated term of a
    three-factor rule has its own rate eta_m and is not).
    """

    coefficient: str
    factors: tuple[str, ...]
    doc: str
    eta_scaled: bool = True

    def __post_init__(self) -> None:
        unknown = [f for f in self.factors if f not in FACTORS]
        if unknown:
            raise ValueError(f"term {self.coefficient}: unknown factors {unknown}; known: {tuple(FACTORS)}")

    @property
    def brian(self) -> str:
        """The term as synaptic Brian2 code, e.g. ``"A * r_pre * r_post"``."""
        return self.brian_code()

    def brian_code(self, rate: str = "r") -> str:
        """The term as Brian2 code reading the rate variable ``rate`` (``r`` or ``rbar``)."""
        return " * ".join((self.coefficient,) + tuple(FACTORS[f].brian_code(rate) for f in self.factors))

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
#: The drift outside the learning rate of the authors' code's two variants (enajx/
#: HebbianMetaLearning, hebbian_weights_update.py, ``hebbian_update_ABCD_lr_D_out``:
#: ``w += lr*(A*o0*o1 + B*o0 + C*o1) + D``): it adds D_out per step whatever eta is.
DRIFT_OUT = Term("D_out", (), "constant drift, not scaled by eta", eta_scaled=False)


@dataclass(frozen=True)
class SynapticState:
    """A per-synapse variable a rule keeps from step to step, declared once for both backends.

    name: its Brian2 variable and the factor terms read it by (in :data:`FACTORS`);
    update: its new value, one expression written once: the Brian2 backend runs
        ``name = update`` as synaptic code, the NumPy backends evaluate the same text on arrays
        (:func:`evaluate_state_update`). It may read itself, ``dw_local`` (this step's update of
        the rule's terms that read no state, eta included) and its ``constants``.
    constants: per-network scalars the update reads (Brian2: shared constants of the synapses).
    doc: what it is, with units. Every state starts at 0 with each lifetime.
    """

    name: str
    update: str
    constants: tuple[str, ...]
    doc: str


#: Eligibility trace of a three-factor rule (Fremaux & Gerstner 2016, Front. Neural Circuits
#: 9:85, eq. 2 discretised at one env step): e_ij(t) = decay_e * e_ij(t-1) + dw_local(t), with
#: decay_e = exp(-1/tau_e), tau_e in env steps, dw_local = eta * (ABCD term) of step t (plus
#: the unscaled drift D_out of the rules that have one: every term that reads no state).
ELIGIBILITY = SynapticState(
    "elig", "decay_e * elig + dw_local", ("decay_e",),
    "eligibility trace e_ij: the low-passed eta*(ABCD term), decay_e = exp(-1/tau_e) per env step",
)

#: The gated term of a three-factor rule: eta_m * m(t) * e_ij(t), its own evolved rate eta_m.
GATED = Term("eta_m", ("mod", "elig"), "modulator-gated eligibility m(t)*e_ij(t)", eta_scaled=False)

#: Every synaptic state a rule may declare, by name.
STATES: dict[str, SynapticState] = {ELIGIBILITY.name: ELIGIBILITY}


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
    state: tuple[SynapticState, ...] = ()
    """Per-synapse state variables (:class:`SynapticState`), updated in order after the terms
    that read no state and before those that do."""

    def __post_init__(self) -> None:
        check_rule_name(self)
        names = [t.coefficient for t in self.terms]
        if not names or len(set(names)) != len(names) or "eta" in names:
            raise ValueError(f"rule {self.name!r} needs terms with distinct coefficients other than eta, got {names}")
        for name in names:
            check_coefficient(self, name)
        declared = {s.name for s in self.state}
        missing = {f for t in self.terms for f in t.factors if f in STATES} - declared
        if missing:
            raise ValueError(f"rule {self.name!r}: terms read the state {sorted(missing)} it does not declare")

    @property
    def local_terms(self) -> tuple[Term, ...]:
        """The terms that read no state variable (the paper's ABCD terms)."""
        names = {s.name for s in self.state}
        return tuple(t for t in self.terms if not names & set(t.factors))

    @property
    def state_terms(self) -> tuple[Term, ...]:
        """The terms that read a state variable (a three-factor rule's gated term)."""
        local = self.local_terms
        return tuple(t for t in self.terms if t not in local)

    @property
    def constants(self) -> tuple[str, ...]:
        """The per-network constants the state updates read (``decay_e``)."""
        return tuple(c for s in self.state for c in s.constants)

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

    @property
    def three_factor(self) -> bool:
        """Whether the rule keeps an eligibility trace gated by the modulator."""
        return any(s.name == ELIGIBILITY.name for s in self.state)

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


def _authors_rule(name: str, *terms: Term) -> RuleSpec:
    return RuleSpec(name, terms, True, doc="Najarro & Risi's code (enajx/HebbianMetaLearning, --hebb_rule), "
                                           "not in the paper's Table 2")


#: Every rule by name: the paper's ablation (Najarro & Risi 2020, Table 2), then the authors'
#: code's two variants with the drift (partly) outside eta: ``ABCD_lr_D_out``, ``dw = eta*(A*o_i*o_j
#: + B*o_i + C*o_j) + D_out`` (fields eta, A, B, C, D_out), and ``ABCD_lr_D_in_and_out``,
#: ``dw = eta*(A*o_i*o_j + B*o_i + C*o_j + D) + D_out`` (eta, A, B, C, D, D_out). The authors'
#: code stores them as ``[A, B, C, eta, D_out]`` and ``[A, B, C, eta, D_in, D_out]``.
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
        _authors_rule("ABCD_lr_D_out", HEBBIAN, PRESYNAPTIC, POSTSYNAPTIC, DRIFT_OUT),
        _authors_rule("ABCD_lr_D_in_and_out", HEBBIAN, PRESYNAPTIC, POSTSYNAPTIC, DRIFT, DRIFT_OUT),
    )
}


#: Suffix of a three-factor rule's name (``"ABCD_lr+mod"``, see :func:`three_factor`).
THREE_FACTOR_SUFFIX = "+mod"


def three_factor(rule: str | RuleSpec) -> RuleSpec:
    """The reward-modulated three-factor version of a rule (Fremaux & Gerstner 2016).

    Each synapse keeps an eligibility trace of the rule's own update (:data:`ELIGIBILITY`) and
    the env's modulator m(t) gates a second, separately evolved part of the change::

        dw_local(t) = eta_ij * (A_ij*o_i*o_j + B_ij*o_i + C_ij*o_j + D_ij)     (the rule's terms)
        e_ij(t)     = decay_e * e_ij(t-1) + dw_local(t)                        decay_e = exp(-1/tau_e)
        dw_ij(t)    = dw_local(t) + eta_m_ij * m(t) * e_ij(t)

    dw_local is the whole change of the rule's own terms: with an unscaled drift
    (``ABCD_lr_D_out+mod``) it is ``eta*(A*o_i*o_j + B*o_i + C*o_j) + D_out``, so the trace
    low-passes the drift too, as it does the paper's D.

    The extra coefficient ``eta_m`` is the last field of the same per-synapse layout
    (``ABCD_lr+mod``: eta, A, B, C, D, eta_m). m(t) is the task's per-step signal minus a
    running baseline (:class:`~spikehebb.network.base.PlasticNetwork`'s ``baseline_tau``).
    """
    spec = get_rule(rule)
    if spec.three_factor:
        return spec
    return RuleSpec(
        spec.name + THREE_FACTOR_SUFFIX, spec.terms + (GATED,), spec.learning_rate,
        doc=f"{spec.name} with an eligibility trace gated by the modulator (Fremaux & Gerstner 2016)",
        state=spec.state + (ELIGIBILITY,),
    )


def get_rule(rule: str | RuleSpec) -> RuleSpec:
    """Return the spec of a rule by name (a :class:`RuleSpec` is passed through); a registered
    name plus ``"+mod"`` is its :func:`three_factor` version."""
    if isinstance(rule, RuleSpec):
        return rule
    plain = rule[: -len(THREE_FACTOR_SUFFIX)] if isinstance(rule, str) and rule.endswith(THREE_FACTOR_SUFFIX) else None
    if plain is not None and not missing(plain, RULES):  # (a plug-in's rule: spikehebb.plugins)
        return three_factor(RULES[plain])
    if missing(rule, RULES):
        raise ValueError(f"unknown rule {rule!r}; valid rules are {', '.join(RULES)} (each also as NAME+mod)")
    return RULES[rule]


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
def _factors(pre: np.ndarray, post: np.ndarray, modulator, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The factors of a layer, broadcastable to ``(P, n_pre, n_post)``: pre ``(P, n_pre)``,
    post ``(P, n_post)``, modulator ``(P,)`` (None: 0), weights ``(P, n_pre, n_post)`` (the
    factor ``w``; None: absent)."""
    factors = {"pre": pre[:, :, None], "post": post[:, None, :]}
    if weights is not None:
        factors["w"] = weights
    if modulator is None:
        factors["mod"] = np.zeros((len(pre), 1, 1), dtype=pre.dtype)
    else:
        factors["mod"] = np.asarray(modulator, dtype=pre.dtype)[:, None, None]
    return factors


def evaluate_state_update(state: SynapticState, values: Mapping[str, np.ndarray | float]) -> np.ndarray:
    """A state's new value in NumPy: its declared ``update`` text evaluated on arrays.

    values: every name the update reads (the state itself, ``dw_local``, its constants).
    """
    return eval(state.update, {"__builtins__": {}, "exp": np.exp}, dict(values))  # the declared text, trusted


def reference_update(
    weights: np.ndarray,
    pre: np.ndarray,
    post: np.ndarray,
    coefficients: np.ndarray,
    rule: str | RuleSpec,
    modulator: np.ndarray | None = None,
    state: dict[str, np.ndarray] | None = None,
    constants: Mapping[str, float] | None = None,
    w: np.ndarray | None = None,
) -> np.ndarray:
    """The rule as written in the paper, for clarity; tests treat it as the truth.

    weights: ``(P, n_pre, n_post)``; pre: ``(P, n_pre)`` rates o_i; post: ``(P, n_post)`` rates
    o_j of the same forward pass; coefficients: ``(P, n_pre, n_post, k)`` in ``rule.fields``
    order; modulator: ``(P,)`` m(t) (None: 0). A rule with state (a three-factor rule) also
    takes ``state`` (its variables by name, ``(P, n_pre, n_post)``, replaced in the dict by
    their new values) and ``constants`` (``{"decay_e": ...}``). Returns the new weights
    ``(P, n_pre, n_post)``: ``w + eta * (eta-scaled terms) + (the others)``, the state read by
    the terms after its update. The factor ``w`` reads ``weights``, or ``w`` ``(P, n_pre,
    n_post)`` where ``weights`` is what the rule changes in place of the weights (a
    reparametrising constraint's latent v, which a rule's ``w`` never reads).
    """
    spec = get_rule(rule)
    factors = _factors(pre, post, modulator, weights if w is None else w)
    eta = coefficients[..., spec.index("eta")] if spec.has_eta else 1.0

    def terms(selected):
        total = 0.0
        for t in selected:
            value = t.numpy(coefficients[..., spec.index(t.coefficient)], factors)
            total = total + (eta * value if t.eta_scaled else value)
        return total

    local = terms(spec.local_terms)
    if spec.state:
        if state is None:
            raise ValueError(f"rule {spec.name} keeps the state {[s.name for s in spec.state]}: pass state=")
        for s in spec.state:
            names = {s.name: state[s.name], "dw_local": local, **{c: (constants or {})[c] for c in s.constants}}
            state[s.name] = evaluate_state_update(s, names)
            factors[s.name] = state[s.name]
    return weights + local + terms(spec.state_terms)


def fold_eta(coefficients: np.ndarray, rule: str | RuleSpec) -> dict[str, np.ndarray]:
    """The rule's term coefficients with the learning rate multiplied in (``eta*A``, ...; a term
    eta does not scale, ``D_out``, as it is).

    coefficients: ``(..., k)`` in ``rule.fields`` order. Returns each term's coefficient by
    name, each ``(...)``. Fast backends store these so each step reads four arrays, not five; the
    update equals :func:`reference_update` up to floating-point rounding.
    """
    spec = get_rule(rule)
    eta = coefficients[..., spec.index("eta")] if spec.has_eta else 1.0
    return {
        t.coefficient: (eta if t.eta_scaled else 1.0) * coefficients[..., spec.index(t.coefficient)]
        for t in spec.terms
    }


def numpy_delta(
    folded: Mapping[str, np.ndarray], pre: np.ndarray, post: np.ndarray, modulator: np.ndarray | None, rule: RuleSpec,
    state: Mapping[str, np.ndarray] | None = None, constants: Mapping[str, float] | None = None,
    gate: np.ndarray | None = None, weights: np.ndarray | None = None,
) -> np.ndarray:
    """The weight change of one layer, as the NumPy backend computes it.

    folded: :func:`fold_eta`'s arrays ``(P, n_pre, n_post)``; pre ``(P, n_pre)``, post
    ``(P, n_post)``, modulator ``(P,)`` or None. The terms that read ``pre`` share it:
    ``o_i * (A*o_j + B) + C*o_j + D`` for ABCD (fewer full-size products than term by term).
    A rule with state updates ``state`` (arrays ``(P, n_pre, n_post)``) in place, reading
    ``constants``. gate: ``(P,)`` 1 where the member's rule fires this step, 0 where it rests
    (``rule_every > 1``; None: every member fires), as :func:`brian_update` writes it.
    weights: ``(P, n_pre, n_post)`` the layer's weights before this step's update, which the
    factor ``w`` reads (needed by a rule that reads it; the weights themselves also where the
    backend adds the change to a constraint's latent).
    """
    if weights is None and "w" in rule.reads:
        raise ValueError(f"rule {rule.name!r} reads the weight w: numpy_delta needs weights=")
    factors = _factors(pre, post, modulator, weights)
    local = _local_delta(folded, factors, rule, pre.dtype)
    if gate is not None:
        local = np.asarray(gate, dtype=pre.dtype)[:, None, None] * local
    if not rule.state:
        return local
    for s in rule.state:
        values = {s.name: state[s.name], "dw_local": local, **{c: constants[c] for c in s.constants}}
        state[s.name][...] = evaluate_state_update(s, values)
        factors[s.name] = state[s.name]
    gated = sum(term.numpy(folded[term.coefficient], factors) for term in rule.state_terms)
    if gate is not None:
        gated = np.asarray(gate, dtype=pre.dtype)[:, None, None] * gated
    return local + gated


def _local_delta(folded, factors, rule: RuleSpec, dtype) -> np.ndarray:
    """The change from the terms that read no state (all of a paper rule's)."""
    inner = None
    for term in rule.local_terms:
        if "pre" in term.factors:
            value = term.numpy(folded[term.coefficient], factors, skip="pre")
            inner = value if inner is None else inner + value
    dw = factors["pre"] * inner if inner is not None else np.zeros(np.broadcast_shapes(
        factors["pre"].shape, factors["post"].shape), dtype=dtype)
    for term in rule.local_terms:
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
        times = folded if term.eta_scaled else ""
        lines.append(f"{term.coefficient} : 1 (constant)  # coefficient of {term.doc}{times}")
    for s in rule.state:
        lines.append(f"{s.name} : 1  # {s.doc}")
        lines += [f"{c} : 1 (constant, shared)  # read by {s.name}'s update" for c in s.constants]
    return lines


def brian_update(rule: RuleSpec, fold_eta: bool = True, target: str = "w", rate: str = "r", gate: str | None = None) -> str:
    """Brian2 synaptic code of the rule, applied once per step after the forward pass.

    target: the variable the rule changes (``w``; a sign-preserving Dale parametrisation's
    latent ``v``); a term's factor ``w`` reads the synapse's weight ``w`` whatever the target
    (with ``v`` the weight its constraint's code set from v after the last step, the weight the
    NumPy backend's factor reads too); rate: the rate variable the factors read (``r``, or ``rbar``, the moving
    average); gate: a per-post-unit variable that is 1 when the member's rule fires this step
    and 0 when it rests (``rule_every > 1``), None for every step. With the defaults a paper
    rule is ``w += A * r_pre * r_post + B * r_pre + C * r_post + D``; a three-factor rule is::

        dw_local = A * r_pre * r_post + B * r_pre + C * r_post + D
        elig = decay_e * elig + dw_local
        w += dw_local + eta_m * m_post * elig

    With ``fold_eta=False`` eta multiplies the eta-scaled terms only, the others follow in
    table order: ``w += eta * (A * r_pre * r_post + B * r_pre + C * r_post) + D_out``
    (``ABCD_lr_D_out``).
    """
    def joined(terms):
        if not (rule.has_eta and not fold_eta):
            return " + ".join(t.brian_code(rate) for t in terms)
        scaled = " + ".join(t.brian_code(rate) for t in terms if t.eta_scaled)
        parts = [f"eta * ({scaled})"] if scaled else []
        return " + ".join(parts + [t.brian_code(rate) for t in terms if not t.eta_scaled])

    if not rule.state:
        terms = joined(rule.terms)
        return f"{target} += {gate}_post * ({terms})" if gate else f"{target} += {terms}"
    local = joined(rule.local_terms)
    lines = [f"dw_local = {gate}_post * ({local})" if gate else f"dw_local = {local}"]
    lines += [f"{s.name} = {s.update}" for s in rule.state]
    gated = " + ".join(t.brian_code(rate) for t in rule.state_terms)
    lines.append(f"{target} += dw_local + {gate}_post * ({gated})" if gate else f"{target} += dw_local + {gated}")
    return "\n".join(lines)


def synapse_fields(rule: RuleSpec | None, fold_eta: bool = True) -> tuple[str, ...]:
    """The coefficient variables a fast backend stores (the rule's fields, less eta if folded)."""
    if rule is None:
        return ()
    return tuple(f for f in rule.fields if not (fold_eta and f == "eta"))


# ------------------------------------------------------------------------ what a run records
def declaration(rule: str | RuleSpec) -> dict:
    """The rule's declaration as plain data (JSON-ready), what a run file records of it besides its
    name (:class:`~spikehebb.store.RunStore`): whether eta is evolved, the coefficient layout
    (``fields``), each term (coefficient, factors, eta-scaled) and each state's update. Two
    rules with equal declarations read the same coefficients the same way."""
    spec = get_rule(rule)
    return {
        "learning_rate": spec.learning_rate,
        "fields": list(spec.fields),
        "terms": [{"coefficient": t.coefficient, "factors": list(t.factors), "eta_scaled": t.eta_scaled}
                  for t in spec.terms],
        "state": [{"name": s.name, "update": s.update, "constants": list(s.constants)} for s in spec.state],
    }


def formula(declared: Mapping) -> str:
    """A :func:`declaration` as the update it writes, e.g. ``dw = eta*(A*pre*post + B*pre + C*post
    + D)``; a rule with state adds its updates (``; elig = decay_e * elig + dw_local``)."""
    def product(term):
        return "*".join([term["coefficient"], *term["factors"]])

    scaled = [product(t) for t in declared["terms"] if t["eta_scaled"]]
    other = [product(t) for t in declared["terms"] if not t["eta_scaled"]]
    joined = " + ".join(scaled)
    if declared["learning_rate"] and scaled:
        joined = f"eta*({joined})"
    text = "dw = " + " + ".join(([joined] if joined else []) + other)
    return text + "".join(f"; {s['name']} = {s['update']}" for s in declared.get("state", ()))
