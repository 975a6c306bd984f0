"""The plastic network's interface, shared validation and weight initialisation.

A :class:`PlasticNetwork` is P independent feed-forward rate networks (the population batch) with
layer sizes ``sizes = (n_0, n_1, ..., n_L)`` and no bias. Layer 0 holds the inputs as given (the
ant's first layer reads the raw observation); layer l >= 1 holds ``o_l = f_l(o_{l-1} @ W_l)``.
Backends subclass it (:data:`spikehebb.network.BACKENDS`); build one with
:func:`spikehebb.network.make_network`.

Layouts (P = population):

- inputs ``(P, n_0)``, outputs ``(P, n_L)``, modulator ``(P,)`` (one value m(t) per member)
- ``weights[l]``: ``(P, n_l, n_{l+1})``, entry ``[p, i, j]`` is the synapse from unit i of layer l
  to unit j of layer l+1 of member p
- ``coefficients[l]``: ``(P, n_l, n_{l+1}, k)`` with the k fields in ``rule.fields`` order
- ``activations``: one array ``(P, n_l)`` per layer, inputs first, outputs last

One :meth:`~PlasticNetwork.step`: forward through all layers, then the rule updates every layer
with the activations (and the modulator) of that same pass, then the weight constraints run in
order (:mod:`spikehebb.network.constraints`; the car divides every layer by its max |w|).

Options of every backend (all off by default, which is the paper's network bit for bit):

- ``rule_every=K``, ``rate_tau=TAU`` (after Dittrich et al. 2026, "Hebbian Attractor Networks", whose
  average is a window and who also normalise each layer's weights):
  every unit keeps a moving average of its rate, ``rbar <- rbar + (r - rbar) / TAU`` after each
  forward pass (rbar starts at 0 with each lifetime), and the rule reads rbar instead of r; the
  rule fires on a member's network steps t = K-1, 2K-1, ... of its lifetime (a gate g = 1 then,
  0 otherwise, per member: slots start lifetimes at different steps). K = 1 without TAU is the
  per-step rule itself (no gate, no average in the code).
- ``baseline_tau=TAU_B``: the modulator a modulated rule reads is the signal minus a running
  baseline of it, ``m(t) = s(t) - b(t-1)``, ``b(t) = b(t-1) + (s(t) - b(t-1)) / TAU_B``, b = 0 at
  each lifetime's start (the reward prediction of Fremaux & Gerstner 2016, one per member). It
  lives here, with the member's other lifetime state, so both backends read the same m(t).
- ``eligibility_tau``: the eligibility trace's time constant tau_e (env steps) of three-factor
  rules (:func:`spikehebb.rules.three_factor`), ``decay_e = exp(-1/tau_e)``.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from spikehebb.checks import is_finite_real, is_integer
from spikehebb.network.constraints import WeightConstraint, make_constraint
from spikehebb.rules import RuleSpec, get_rule

#: Activation functions by name: (Brian2 expression of the summed input ``I``, NumPy function).
ACTIVATIONS: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "tanh": ("tanh(I)", np.tanh),
    "linear": ("I", lambda x: x),
    "sigmoid": ("1 / (1 + exp(-I))", lambda x: 1 / (1 + np.exp(-x))),
    "relu": ("clip(I, 0, inf)", lambda x: np.maximum(x, 0)),
    # Non-negative rates (--positive): tanh rectified at 0, max(tanh(I), 0) in [0, 1). It keeps
    # the paper's bounded range and saturation, so the rule's terms stay as bounded as with
    # tanh (a softplus or ReLU would let rates, and Hebbian growth, run away), and it is exactly
    # 0 for a unit with negative drive (sparse firing).
    "rtanh": ("clip(tanh(I), 0, 1)", lambda x: np.maximum(np.tanh(x), 0)),
}

#: Initial weight distributions by name; ``scale`` is the half-width (uniform), the std (normal)
#: or twice the mean magnitude (lognormal, see :func:`sample_weights`).
WEIGHT_INITS = ("uniform", "normal", "lognormal")

#: sigma of log|w| of lognormal initial weights: Song et al. 2005 (PLoS Biol 3:e68) fit cortical
#: EPSP amplitudes with a lognormal of sigma 0.9355 (natural log).
LOGNORMAL_SIGMA = 0.9355

DTYPES = ("float32", "float64")

#: ``callback(t, outputs) -> next inputs``; t counts from 0, outputs is ``(P, n_out)``; returning
#: None ends the run after step t.
StepCallback = Callable[[int, np.ndarray], "np.ndarray | None"]


def sample_weights(
    sizes: Sequence[int],
    population: int,
    init: str = "uniform",
    scale: float = 0.1,
    rng: np.random.Generator | int | None = None,
    signs: Sequence[Sequence[int]] | None = None,
) -> list[np.ndarray]:
    """Random initial weights for P members, one ``(P, n_pre, n_post)`` float64 array per layer.

    ``init="uniform"`` draws U[-scale, scale] (Najarro & Risi 2020 use scale 0.1);
    ``init="normal"`` draws N(0, scale); ``init="lognormal"`` draws magnitudes
    ``|w| = (scale / 2) * exp(sigma * z - sigma**2 / 2)``, z ~ N(0, 1), sigma =
    :data:`LOGNORMAL_SIGMA` (mean magnitude scale / 2, the uniform's; median about 0.32 * scale)
    with a random sign (one more uniform draw per weight).
    signs: Dale's law, per layer of units (inputs first) +1 / -1 (:func:`spikehebb.biology.dale_signs`):
    each weight gets its presynaptic unit's sign, ``|w| * s_i`` (the same draws; lognormal
    draws no sign then). None: the distribution's own signs, as before.
    """
    sizes = check_sizes(sizes)
    if init not in WEIGHT_INITS:
        raise ValueError(f"unknown weight init {init!r}; expected one of {WEIGHT_INITS}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"weight scale must be finite and positive, got {scale}")
    if not (is_integer(population) and population >= 1):
        raise ValueError(f"population must be a positive integer, got {population!r}")
    rng = np.random.default_rng(rng)
    shapes = [(population, a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    if signs is not None and (len(signs) != len(sizes) or any(len(s) != n for s, n in zip(signs, sizes))
                              or not all(set(np.asarray(s).tolist()) <= {1, -1} for s in signs)):
        raise ValueError(f"signs must list one +1/-1 per unit of every layer {tuple(sizes)}")
    if init == "uniform":
        layers = [rng.uniform(-scale, scale, s) for s in shapes]
    elif init == "normal":
        layers = [rng.normal(0.0, scale, s) for s in shapes]
    else:
        sigma = LOGNORMAL_SIGMA
        layers = [(scale / 2) * np.exp(sigma * rng.standard_normal(s) - sigma**2 / 2) for s in shapes]
        if signs is None:
            layers = [w * rng.choice((-1.0, 1.0), w.shape) for w in layers]
    if signs is not None:
        layers = [np.abs(w) * np.asarray(s, dtype=np.float64)[None, :, None] for w, s in zip(layers, signs)]
    return layers


def check_sizes(sizes) -> tuple[int, ...]:
    """Layer sizes as a tuple of ints, or a one-line error unless ``sizes`` lists at least two
    positive integers (units per layer, inputs first)."""
    if (isinstance(sizes, (str, bytes)) or not isinstance(sizes, (Sequence, np.ndarray)) or len(sizes) < 2
            or not all(is_integer(n) and n >= 1 for n in sizes)):
        raise ValueError(f"sizes must list at least two positive integer layer sizes (units per layer, inputs "
                         f"first), got {sizes!r}")
    return tuple(int(n) for n in sizes)


def check_move(sources: np.ndarray, targets: np.ndarray) -> None:
    """A one-line error unless a compaction move pairs every source slot with a target slot."""
    if sources.size != targets.size:
        raise ValueError(f"move_members needs as many targets as sources, got {targets.size} and {sources.size}")


def batched_matvec(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per-member ``x_b @ w_b``: x (B, n), w (B, n, m) -> (B, m), the same bits whatever BLAS the CPU gets.

    BLAS (``np.matmul``) sums in a blocked order that OpenBLAS picks per CPU (Haswell, SkylakeX,
    Zen kernels): a run's float32 rates then differ in the last bit between machines, and an
    episode's chaotic physics turns that into different fitness. ``np.einsum`` without
    ``optimize`` never calls BLAS and sums ``n`` in index order with separate multiplies and adds,
    whatever SIMD the CPU has. The products alone take about twice the matmul's time at the ant's
    sizes; a whole NumPy-backend step (products + rule) 1.01x / 1.09x at P = 32 / 64, the LSTM
    agent's step 1.42x / 0.95x (``experiments/bench_network.py`` and its ``--lstm``).
    """
    return np.einsum("bn,bnm->bm", x, w)


def active_slots(n: int | None, size: int) -> int:
    """The slot count of ``set_active(n)`` on ``size`` slots (None: all), or a one-line error."""
    if n is not None and not (is_integer(n) and 1 <= n <= size):
        raise ValueError(f"set_active needs a slot count in 1..{size} or None, got {n!r}")
    return size if n is None else int(n)


class PlasticNetwork:
    """P independent plastic feed-forward networks run in lockstep (the backends' base class).

    Arguments:
        sizes: units per layer, inputs first; the paper's ant is (28, 128, 64, 8).
        rule: a rule name from :data:`spikehebb.rules.RULES` or a :class:`RuleSpec`; None gives
            a static network (no plasticity: the paper's static-weights baseline).
        population: P, the number of independent networks.
        activation: one name from :data:`ACTIVATIONS` for every layer, or one per layer
            (``len(sizes) - 1`` names). The rule sees the activated rates.
        dtype: "float32" (fast) or "float64" (for equivalence checks).
        constraints: weight constraints applied after the rule in every step, in order (names,
            dicts or :class:`~spikehebb.network.constraints.WeightConstraint` objects; the car:
            ``["max_abs"]``). Need a rule: a static network never changes its weights.
        rule_every, rate_tau: the rule every K network steps of each member, on moving averages
            of the rates with time constant TAU steps (None: the rates themselves); see the
            module docstring.
        baseline_tau: the modulator's running baseline, in steps (None: m(t) as given).
        eligibility_tau: tau_e of a three-factor rule's eligibility trace, in steps.
    """

    backend = ""

    def __init__(
        self,
        sizes: Sequence[int] = (28, 128, 64, 8),
        rule: str | RuleSpec | None = "ABCD_lr",
        population: int = 1,
        *,
        activation: str | Sequence[str] = "tanh",
        dtype: str = "float32",
        constraints: Sequence[str | dict | WeightConstraint] = (),
        rule_every: int = 1,
        rate_tau: float | None = None,
        baseline_tau: float | None = None,
        eligibility_tau: float = 50.0,
    ):
        self.sizes = check_sizes(sizes)
        self.rule = None if rule is None else get_rule(rule)
        if not (is_integer(population) and population >= 1):
            raise ValueError(f"population must be a positive integer, got {population!r}")
        self.population = int(population)
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        self.dtype = np.dtype(dtype)
        names = [activation] * self.n_layers if isinstance(activation, str) else list(activation)
        if len(names) != self.n_layers:
            raise ValueError(
                f"activation needs one name or {self.n_layers} (one per layer), got {activation!r}"
            )
        for name in names:
            if name not in ACTIVATIONS:
                raise ValueError(
                    f"unknown activation {name!r}; expected one of {tuple(ACTIVATIONS)}"
                )
        self.activation = tuple(names)
        self.constraints = self._check_constraints(constraints)
        if not (is_integer(rule_every) and rule_every >= 1):
            raise ValueError(f"rule_every must be a positive integer, got {rule_every!r}")
        self.rule_every = int(rule_every)
        for name, tau in (("rate_tau", rate_tau), ("baseline_tau", baseline_tau), ("eligibility_tau", eligibility_tau)):
            if (tau is not None or name == "eligibility_tau") and not (is_finite_real(tau) and tau >= 1):
                raise ValueError(f"{name} must be a number of steps >= 1, got {tau!r}")
        if (self.rule_every > 1 or rate_tau is not None) and not self.plastic:
            raise ValueError("rule_every and rate_tau need a rule: a static network has none")
        self.rate_tau = None if rate_tau is None else float(rate_tau)
        self.baseline_tau = None if baseline_tau is None else float(baseline_tau)
        self.eligibility_tau = float(eligibility_tau)
        self.rule_constants = {"decay_e": math.exp(-1.0 / self.eligibility_tau)}
        """Values of the per-network constants the rule's state updates read."""
        self._lifetime_steps = np.zeros(self.population, dtype=np.int64)
        self._baseline = np.zeros(self.population)
        self._gate: np.ndarray | None = None
        self._last_modulator = np.zeros(self.population)
        self.frozen = False
        """While True, steps run the forward pass only: the rule (and the constraints after it)
        is paused, the weights stay as they are (a perturbation: "freeze the rule")."""
        self._armed = np.zeros(self.population, dtype=bool)

    # ----------------------------------------------------------------------------- shapes
    @property
    def n_layers(self) -> int:
        """Number of synaptic layers (``len(sizes) - 1``)."""
        return len(self.sizes) - 1

    @property
    def weight_shapes(self) -> list[tuple[int, int, int]]:
        """``(P, n_pre, n_post)`` per layer."""
        return [(self.population, a, b) for a, b in zip(self.sizes[:-1], self.sizes[1:])]

    @property
    def plastic(self) -> bool:
        """Whether a rule changes the weights (False for a static network, ``rule=None``)."""
        return self.rule is not None

    @property
    def modulated(self) -> bool:
        """Whether the rule reads the modulator (a third factor)."""
        return self.plastic and "mod" in self.rule.reads

    @property
    def gated(self) -> bool:
        """Whether the rule fires on some steps only (``rule_every > 1``)."""
        return self.rule_every > 1

    @property
    def latent_constraints(self) -> list:
        """Per layer the constraint the rule's latent belongs to (:attr:`WeightConstraint.latent`), or None."""
        return [next((c for c in self.constraints if c.latent and c.acts_on(l)), None) for l in range(self.n_layers)]

    @property
    def input_gains(self) -> list[np.ndarray | None]:
        """Per synaptic layer the gains ``(n_pre,)`` its presynaptic rates are sent with (the
        :meth:`~WeightConstraint.input_gain` of its one constraint with gains), or None (all 1)."""
        return [next((g for c in self.constraints if c.acts_on(l) and (g := c.input_gain(l)) is not None), None)
                for l in range(self.n_layers)]

    @property
    def rule_target(self) -> list[str]:
        """Per layer the variable the rule changes: ``"w"``, or a constraint's latent."""
        return [c.latent if c is not None else "w" for c in self.latent_constraints]

    def _latents_of(self, weights: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
        """(weights, latents) per layer for layers with a latent constraint: the latent of the
        given weights in this network's dtype, and the weights it maps to; others unchanged."""
        out_w, out_v = [], []
        for layer, (w, c) in enumerate(zip(weights, self.latent_constraints)):
            if c is None:
                out_w.append(w)
                out_v.append(None)
            else:
                v = c.to_latent(w, layer).astype(self.dtype)
                out_w.append(c.from_latent(v, layer))
                out_v.append(v)
        return out_w, out_v

    @property
    def coefficient_shapes(self) -> list[tuple[int, int, int, int]]:
        """``(P, n_pre, n_post, k)`` per layer (empty for a static network)."""
        return [s + (self.rule.k,) for s in self.weight_shapes] if self.plastic else []

    # ------------------------------------------------------------------------- public API
    def reset(
        self,
        coefficients: Sequence[np.ndarray] | None,
        weights: Sequence[np.ndarray],
        members: Sequence[int] | None = None,
    ) -> None:
        """Arm new lifetimes: fixed rule coefficients and fresh initial weights.

        members: the slots to arm (indices into the population); None arms all P. The other
        slots keep their lifetimes running; a member's numbers never depend on the other slots.
        coefficients: per layer ``(n, n_pre, n_post, k)`` for the n slots armed, fields in
            ``rule.fields`` order (None for a static network).
        weights: per layer ``(n, n_pre, n_post)`` (see :func:`sample_weights`); with a Dale
            constraint each weight must carry its presynaptic unit's sign or be 0
            (``sample_weights(..., signs=...)``).
        The armed slots' rates are zeroed. Nothing is rebuilt: the arrays are copied into the
        running network.
        """
        index = self._check_members(members)
        n = len(index)
        if not self.plastic:
            if coefficients is not None:
                raise ValueError("a static network (rule=None) takes coefficients=None")
            coefficients = []
        else:
            coefficients = self._check_layers(
                "coefficients", coefficients, [(n,) + s[1:] for s in self.coefficient_shapes]
            )
        weights = self._check_layers("weights", weights, [(n,) + s[1:] for s in self.weight_shapes])
        self._check_signs(weights)
        self._arm(coefficients, weights, None if members is None else index)
        self._armed[index] = True
        self._lifetime_steps[index] = 0
        self._baseline[index] = 0.0

    def step(self, inputs: np.ndarray, modulator: np.ndarray | None = None) -> np.ndarray:
        """One forward pass and rule update; inputs ``(P, n_in)`` -> outputs ``(P, n_out)``.

        modulator: ``(P,)`` values m(t) read by modulated rules (None: 0; ignored by the others);
        with ``baseline_tau`` the rule reads them minus their running baseline.
        """
        self._check_armed()
        return self._advance(self._check_inputs(inputs), self._check_modulator(modulator))

    def _advance(self, inputs: np.ndarray, modulator: np.ndarray | None) -> np.ndarray:
        """One step with the lifetime bookkeeping: the modulator's baseline, the rule's gate."""
        if self.modulated and self.baseline_tau is not None:
            signal = np.zeros(self.population) if modulator is None else modulator.astype(np.float64)
            modulator = (signal - self._baseline).astype(self.dtype)
            self._baseline += (signal - self._baseline) / self.baseline_tau
        if self.gated:
            self._gate = ((self._lifetime_steps + 1) % self.rule_every == 0).astype(self.dtype)
        self._last_modulator = np.zeros(self.population) if modulator is None or not self.modulated else modulator.astype(np.float64)
        outputs = self._step(inputs, modulator)
        self._lifetime_steps += 1
        return outputs

    @property
    def modulator(self) -> np.ndarray:
        """``(P,)`` the modulator m(t) the rule read in the last step (the signal minus its
        baseline with ``baseline_tau``; zeros for a rule that reads none)."""
        return self._last_modulator.copy()

    def run(self, inputs: np.ndarray, n_steps: int, callback: StepCallback) -> int:
        """The closed loop: ``n_steps`` steps, the first on ``inputs``.

        After step t, ``callback(t, outputs)`` returns the inputs of step t + 1 (its return
        value after the last step is ignored), or None to end the run there. Gives the same
        numbers as calling :meth:`step` in a loop. Returns the number of steps run.
        """
        self._check_armed()
        inputs = self._check_inputs(inputs)
        if not (is_integer(n_steps) and n_steps >= 0):
            raise ValueError(f"n_steps must be a non-negative integer, got {n_steps!r}")
        if not callable(callback):
            raise TypeError(f"callback must be callable as callback(t, outputs), got {callback!r}")
        for t in range(int(n_steps)):
            nxt = callback(t, self._advance(inputs, None))
            if nxt is None:
                return t + 1
            if t + 1 < n_steps:
                inputs = self._check_inputs(nxt, what="callback's next inputs")
        return int(n_steps)

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Replace the current weights in the middle of a lifetime (rates, coefficients and the
        rest of the lifetime's state are kept): per layer ``(P, n_pre, n_post)``, with a Dale
        constraint signed as :meth:`reset` needs them."""
        self._check_armed()
        weights = self._check_layers("weights", weights, self.weight_shapes)
        self._check_signs(weights)
        self._set_weights(weights)

    @property
    def weights(self) -> list[np.ndarray]:
        """Current weights, per layer ``(P, n_pre, n_post)`` (copies)."""
        self._check_armed()
        return self._weights()

    @property
    def activations(self) -> list[np.ndarray]:
        """Rates of the last step, per layer ``(P, n_l)``, inputs first (copies)."""
        self._check_armed()
        return self._activations()

    # ------------------------------------------------------------------ backend interface
    def _arm(self, coefficients: list[np.ndarray], weights: list[np.ndarray], members: np.ndarray | None) -> None:
        """Write the lifetimes' arrays into slots ``members`` (None: all, in order)."""
        raise NotImplementedError

    def _step(self, inputs: np.ndarray, modulator: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def _weights(self) -> list[np.ndarray]:
        raise NotImplementedError

    def _set_weights(self, weights: list[np.ndarray]) -> None:
        raise NotImplementedError

    def _activations(self) -> list[np.ndarray]:
        raise NotImplementedError

    def _apply_constraints(self, weights: Sequence[np.ndarray], numpy_only: bool = False, latents=None) -> None:
        """Run the constraints in order on per-layer ``(P, n_pre, n_post)`` arrays, in place
        (``numpy_only``: those without Brian2 code); a latent constraint sets the weights from
        ``latents[layer]``."""
        for constraint in self.constraints:
            for layer, w in enumerate(weights):
                if constraint.acts_on(layer) and not (numpy_only and constraint.brian_code(layer)):
                    if constraint.latent:
                        w[...] = constraint.from_latent(latents[layer], layer)
                    else:
                        constraint.apply(w, layer)

    # ------------------------------------------------------------------------- validation
    def _check_constraints(self, constraints) -> tuple[WeightConstraint, ...]:
        if isinstance(constraints, (str, dict, WeightConstraint)):
            constraints = [constraints]
        checked = tuple(make_constraint(c) for c in constraints)
        for c in checked:
            if c.layers is not None and any(not 0 <= l < self.n_layers for l in c.layers):
                raise ValueError(
                    f"{c.name} constraint names layers {c.layers}; this network has layers 0..{self.n_layers - 1}"
                )
        if checked and self.rule is None:
            raise ValueError("weight constraints need a rule: a static network (rule=None) never changes its weights")
        for c in checked:
            signs = getattr(c, "signs", None)  # Dale's: one sign per unit of every layer, inputs first
            if signs is not None and [len(x) for x in signs] != list(self.sizes):
                raise ValueError(f"{c.name}: signs for layers of {[len(x) for x in signs]} units; this network's "
                                 f"layers have {list(self.sizes)}")
        for layer in range(self.n_layers):
            latent = [c.name for c in checked if c.latent and c.acts_on(layer)]
            if len(latent) > 1:
                raise ValueError(f"layer {layer} has more than one reparametrising constraint: {latent}")
            on_w = [c.name for c in checked if not c.latent and c.acts_on(layer)]
            if latent and on_w:  # from_latent rewrites w from v after every update: a change to w is lost
                raise ValueError(f"layer {layer}: {latent[0]} sets the weights from its latent v after every update, "
                                 f"so {', '.join(on_w)} on w would be undone; drop one (Dale's clip mode acts on w)")
            gained = [c.name for c in checked if c.acts_on(layer) and c.input_gain(layer) is not None]
            if len(gained) > 1:
                raise ValueError(f"layer {layer} has more than one constraint with input gains: {gained}")
        return checked

    # ----------------------------------------------------------------------------- compaction
    #: Whether this backend can move members between slots and step a prefix of its slots
    #: (:meth:`move_members`, :meth:`set_active`).
    can_compact = False

    def move_members(self, sources: Sequence[int], targets: Sequence[int]) -> None:
        """Move the lifetimes of slots ``sources`` into slots ``targets`` (distinct slots; the
        sources are left as they were, to be re-armed or ignored): every per-member state, so that
        the moved members go on exactly as they would have in their old slots."""
        src, dst = self._check_members(sources), self._check_members(targets)
        check_move(src, dst)
        if not self.can_compact:
            raise NotImplementedError(f"the {self.backend} backend cannot move members between slots")
        for array in (self._lifetime_steps, self._baseline, self._last_modulator, self._armed):
            array[dst] = array[src]
        self._move_members(src, dst)

    def set_active(self, n: int | None) -> None:
        """Step only the first ``n`` slots from now on (None: all P). The other slots' weights and
        rule state are left as they are, but their input rates are overwritten and their step
        counts and modulator baselines go on, so they must hold ended lifetimes (re-armed before
        use): the rollout moves its live lifetimes into the prefix first."""
        k = active_slots(n, self.population)
        if not self.can_compact:
            raise NotImplementedError(f"the {self.backend} backend cannot step a prefix of its slots")
        self._set_active(k)

    def _move_members(self, sources: np.ndarray, targets: np.ndarray) -> None:
        raise NotImplementedError

    def _set_active(self, n: int) -> None:
        raise NotImplementedError

    def _check_members(self, members) -> np.ndarray:
        if members is None:
            return np.arange(self.population)
        index = np.asarray(members)
        if (
            index.ndim != 1 or not np.issubdtype(index.dtype, np.integer) or index.size == 0
            or index.min() < 0 or index.max() >= self.population or len(np.unique(index)) != index.size
        ):
            raise ValueError(
                f"members must be distinct slot indices in 0..{self.population - 1}, got {np.atleast_1d(members).tolist()}"
            )
        return index

    def _check_armed(self) -> None:
        if not self._armed.all():
            raise RuntimeError("the network has no lifetime armed yet: call reset(coefficients, weights) first")

    def _check_inputs(self, inputs, what: str = "inputs") -> np.ndarray:
        expected = (self.population, self.sizes[0])
        if np.iscomplexobj(inputs):
            raise ValueError(f"{what} must be real numbers, got complex ones")
        arr = np.asarray(inputs, dtype=self.dtype)
        if arr.shape != expected:
            raise ValueError(f"{what} must be (P, n_in) = {expected}, got {np.shape(inputs)}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{what} contain NaN or inf")
        return arr

    def _check_modulator(self, modulator) -> np.ndarray | None:
        if modulator is None:
            return None
        arr = np.asarray(modulator, dtype=self.dtype)
        if arr.shape != (self.population,):
            raise ValueError(f"modulator must be (P,) = ({self.population},), got {np.shape(modulator)}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("modulator contains NaN or inf")
        return arr

    def _check_signs(self, weights: list[np.ndarray]) -> None:
        """A one-line error unless every weight (per layer ``(n, n_pre, n_post)``) of a layer with a
        Dale constraint has its presynaptic unit's sign or is 0 (``s_i * w_ij >= 0``):
        clipping would only act after the first step, a latent mode would make each wrong-signed
        weight +-MIN_MAGNITUDE without a word."""
        for c in self.constraints:
            if getattr(c, "signs", None) is None:
                continue
            for layer, w in enumerate(weights):
                if c.acts_on(layer):
                    wrong = int(np.count_nonzero(c.sign(layer) * w < 0))
                    if wrong:
                        raise ValueError(f"weights for layer {layer + 1} break {c.name}'s signs: {wrong} of {w.size} "
                                         "have the sign opposite to their presynaptic unit's (draw them with "
                                         "sample_weights(..., signs=...))")

    def _check_layers(self, what, arrays, shapes) -> list[np.ndarray]:
        if (arrays is None or isinstance(arrays, (np.ndarray, str, bytes)) or not isinstance(arrays, Sequence)
                or len(arrays) != self.n_layers):
            if arrays is None:
                got = "None"
            elif isinstance(arrays, np.ndarray):
                got = f"one array of shape {arrays.shape}"
            elif isinstance(arrays, Sequence) and not isinstance(arrays, (str, bytes)):
                got = f"{len(arrays)} arrays"  # the wrong number of layers
            else:  # a generator, a dict, a number: nothing with one array per layer
                got = f"a {type(arrays).__name__}"
            raise ValueError(
                f"{what} must be a sequence of {self.n_layers} arrays (one per layer, a list or tuple) with "
                f"shapes {shapes}, got {got}"
            )
        checked = []
        for layer, (arr, shape) in enumerate(zip(arrays, shapes), start=1):
            arr = np.asarray(arr)
            if arr.shape != tuple(shape):
                if len(shape) == 4:
                    dims = f"(P, n_pre, n_post, k) = {tuple(shape)} for rule {self.rule.name} {self.rule.fields}"
                else:
                    dims = f"(P, n_pre, n_post) = {tuple(shape)}"
                raise ValueError(f"{what} for layer {layer} must be {dims}, got {arr.shape}")
            if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
                raise ValueError(f"{what} for layer {layer} must be real numbers, got dtype {arr.dtype}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{what} for layer {layer} contain NaN or inf")
            checked.append(arr.astype(np.float64, copy=False))
        return checked

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(sizes={self.sizes}, rule={self.rule and self.rule.name!r}, "
            f"population={self.population}, activation={self.activation}, dtype={self.dtype.name!r}"
            + (f", constraints={list(self.constraints)}" if self.constraints else "") + ")"
        )
