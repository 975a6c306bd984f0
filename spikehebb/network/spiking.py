"""Spiking backend: leaky integrate-and-fire layers in Brian2, the ABCD rule on spike traces.

The rate network's unit i of layer l (``o_i = tanh(sum_k w_ki o_k)``, signed) becomes a pair of
LIF neurons, an "on" neuron driven by the unit's synaptic drive and an "off" neuron driven by its
negative (Burns 2021's translation of Najarro & Risi's networks; signed values through on/off
pairs, the last layer's pairs are agonist/antagonist motor pools). Every rate synapse w_ij keeps
ONE weight, the same number in the same ``(P, n_pre, n_post)`` layout as the rate network, so a
rule evolved in one runs in the other. Equations (Brian2 text, generated in this module, see
:func:`neuron_model`), per neuron of sign ``sgn`` (+1 on, -1 off) of unit i::

    dv/dt = (v_rest - v + bias + sgn * g_i) / tau_m          (unless refractory)
    v > v_threshold  ->  v = v_reset, x += 1, count += 1     refractory period t_ref
    dx/dt = -x / tau_trace                                   spike trace (x += 1 per spike)

and per unit j of a layer l >= 1 (its synaptic drive, event-driven, current-based)::

    dg_j/dt = -g_j / tau_syn
    on a spike of the on/off neuron of pre unit i:  g_j += J * (sgn_pre * w_ij)
    J = gain * t_ref * (exp(dt / tau_syn) - 1) / dt

so that a pre neuron firing steadily at rate f gives the mean drive ``gain * w * f * t_ref`` the
neurons read: with the normalised rate ``r = f * t_ref`` (``1/t_ref`` is the LIF's maximal
rate) the drive is ``gain * sum_i w_ij r_i``, the rate network's summed input in mV, at any dt.
(Each substep g decays before the neurons read it and a spike's jump lands after, so a jump J
is read as ``J * e^-a / (1 - e^-a)`` summed over the substeps, a = dt / tau_syn; the
continuous-time ``J = gain * t_ref / tau_syn`` gives ``a e^-a / (1 - e^-a)`` of the drive: 0.76
at the ant's dt, ~0 at dt >> tau_syn. Runs recorded before :attr:`LIFParams.drive` existed ran
with it, ``drive="continuous"``.) The input layer's drive is
``gain * u`` for the encoded observation u (deterministic current injection), or its neurons
fire Poisson spikes at ``clip(sgn * u, 0, 1) / t_ref`` (``encoding="poisson"``, seeded).
Here t_ref is the refractory period as run: ``refractory_ms`` rounded to whole substeps, since
Brian2 counts it in steps (the ant's 2 ms at dt = 16.5 / 16 ms runs as 2 substeps, 2.06 ms).

What stands for the rate o of a unit:

- the rule reads the signed, normalised trace ``xs_i = (x_on - x_off) * t_ref / tau_trace`` (a
  neuron firing steadily at rate f has a mean trace ``f * tau_trace``, so ``xs`` tracks
  ``r_on - r_off`` in [-1, 1]): ``dw_ij = eta * (A xs_i xs_j + B xs_i + C xs_j + D)``, generated
  from the rule's term table (:func:`trace_rule_code`), once per
  env step after its S substeps (``rule_every="env_step"``), or at every substep with the
  coefficients divided by S (``rule_every="substep"``); weight constraints run once per env
  step, after the step's learning (after all S updates with ``"substep"``);
- the outputs (and :meth:`activations`) are exponentially filtered spike counts: per env step
  of S substeps, ``y = a * y + (1 - a) * count * t_ref / (S dt)`` with ``a = exp(-S dt /
  tau_readout)``, and a unit's output is ``y_on - y_off`` (agonist minus antagonist), in [-1, 1]
  where the refractory period's substeps divide S (new runs are held to it:
  :meth:`LIFParams.check_outputs_in_range`).

With ``dendrites=True`` the drive lands on a dendritic compartment coupled to the soma through a
saturating nonlinearity (a two-compartment neuron)::

    dv_d/dt = (v_rest - v_d + sgn * g_i) / tau_d
    dv/dt   = (v_rest - v + bias + I_d) / tau_m               (unless refractory)
    I_d     = coupling * v_sat * tanh((v_d - v_rest) / v_sat)

One env step = S substeps of ``dt = control_period / S`` (the ant's control period is 16.5 ms,
the car's 20 ms; S defaults to the period in whole milliseconds, so dt is about 1 ms).

Layout in Brian2, one network for P members (block diagonal; nothing is rebuilt per lifetime),
one group per kind of object, its layers one after the other:

- neuron group ``N``: every layer's neurons, layer l a block of ``P * n_l * 2`` in (member, unit,
  sign) order (so each layer's arrays the class reads are contiguous views, member-major inside);
  with ``encoding="poisson"`` the input layer has other equations and its own group ``N_in``,
  and ``N`` starts at layer 1;
- unit group ``U``: the drives of the same layers, layer l a block of ``P * n_l`` in (member,
  unit) order, so neuron k reads drive ``k // 2``; the input layer's drive is the injected
  current, written once per env step;
- synapses ``N -> U`` (and ``N_in -> U``): layer l's a block in (member, pre unit, sign, post)
  order, layer after layer.

A substep thus runs one state updater, thresholder and resetter per neuron group, one spike push
and one ``on_pre`` per synapses object, whatever the depth. The drive's decay, the exact
solution ``g <- exp(-dt / tau_syn) g``, is one multiplication by a per-unit factor (a double, the
integrator's own factor bit for bit; 1 for the injected current) run before the neurons read g.
Merging moved every layer's decay before every layer's neurons (per-layer groups ran units l,
neurons l, units l+1, ...); g changes only there and through ``on_pre``, after the thresholders,
so the numbers are those of per-layer groups (``experiments/profile_lif.py`` checks every step).
Two Brian2 synapses (from the on and the off neuron) carry each weight, the on
neuron's stores ``w`` and the off neuron's ``-w``: the sign is folded into the stored copy, so a
spike adds ``J * w`` (``g_post += J * w``) and reads no sign of its pre neuron. The off copy also
stores its coefficients negated (those the update is linear in: eta and the unscaled drift
D_out when eta is stored apart, else every coefficient), so the rule's unchanged code gives it
exactly ``-dw``: every IEEE operation commutes with a sign flip, and ``(-w) + (-dw) = -(w +
dw)``; the copies stay exact negatives, and the numbers are those of equal copies read through
``sgn_pre``. A term that reads the weight (the factor ``w``, which reads the copy: -w on the off
synapse) flips once more per ``w`` it reads, so its coefficient is negated only where that
parity asks for it (:func:`off_copy_negated`: folded, a term reading w an odd number of times
keeps its coefficient's sign on the off copy). The compiled code objects are run directly per substep as in
:mod:`spikehebb.network.brian` (no ``Network.run`` per step; for the Cython target their
compiled ``main`` on their namespace, without the Python calls around it); every parameter is a
shared constant of its group, so one compiled code serves every parameter set.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from spikehebb.network.base import PlasticNetwork
from spikehebb.network.brian import _code_object_class, _compile_notice
from spikehebb.rule_names import check_brian_names
from spikehebb.rules import brian_model_lines, brian_update, fold_eta, synapse_fields

ENCODINGS = ("current", "poisson")
RULE_TIMINGS = ("env_step", "substep")

#: Default substep length when ``substeps`` is not given: S = round(control period / this).
DEFAULT_DT_S = 1e-3


#: How the refractory period runs (:attr:`LIFParams.refractory`).
REFRACTORY_RULES = ("rounded", "floored")

#: How the synaptic drive's jump per spike is set (:attr:`LIFParams.drive`).
DRIVE_RULES = ("exact", "continuous")

#: LIFParams fields read only by two-compartment neurons (``dendrites=True``).
DENDRITE_FIELDS = ("tau_dendrite_ms", "dendrite_coupling", "dendrite_saturation_mV")


@dataclass(frozen=True)
class LIFParams:
    """The spiking network's neuron model, encoding and rule timing (stored in the run file).

    Units are in the names (ms, mV); see the module docstring for the equations.
    """

    tau_m_ms: float = 5.0
    """Membrane time constant."""
    v_rest_mV: float = -65.0
    """Resting (leak reversal) potential."""
    v_threshold_mV: float = -50.0
    """Spike threshold."""
    v_reset_mV: float = -65.0
    """Potential after a spike; must lie below the threshold."""
    refractory_ms: float = 2.0
    """Absolute refractory period t_ref, run rounded to whole substeps (at least one; Brian2
    counts it in steps): 1/t_ref of the period as run is the maximal rate, the rate read as 1."""
    tau_syn_ms: float = 2.0
    """Decay of the synaptic drive g."""
    gain_mV: float = 40.0
    """Drive per unit of summed input (the rate network's ``sum_i w_ij o_i``)."""
    bias_mV: float = 15.0
    """Constant drive of every neuron; 15 mV (the threshold minus rest) puts the neurons at their
    rheobase, so any positive input makes the on neuron fire, as tanh has no dead zone."""
    tau_trace_ms: float = 10.0
    """Time constant of the spike trace x the rule reads."""
    tau_readout_ms: float = 5.0
    """Filter of the spike counts read as outputs (0: the count of the last env step alone)."""
    substeps: int | None = None
    """Substeps S per env step (None: the control period in whole ms); dt = period / S."""
    encoding: str = "current"
    """Input layer: "current" (deterministic injection of gain * u) or "poisson"."""
    poisson_seed: int | None = None
    """Seed of the Poisson input spikes (required with encoding="poisson"); each lifetime mixes
    it with a number drawn from its own seed, so its spikes do not depend on its slot."""
    rule_every: str = "env_step"
    """Apply the rule once per env step ("env_step") or at every substep ("substep", dw / S)."""
    dendrites: bool = False
    """Two-compartment neurons: synaptic drive on a dendrite coupled through a nonlinearity."""
    tau_dendrite_ms: float = 10.0
    """Dendritic time constant (with dendrites)."""
    dendrite_coupling: float = 1.0
    """Strength of the dendrite -> soma current (with dendrites, dimensionless)."""
    dendrite_saturation_mV: float = 30.0
    """v_sat: the dendritic current saturates at coupling * v_sat (with dendrites)."""
    drive: str = "exact"
    """The jump J of the synaptic drive per spike: ``"exact"`` (``gain * t_ref * (exp(dt /
    tau_syn) - 1) / dt``: the neurons read ``gain * w * r`` on average at any dt) or
    ``"continuous"`` (``gain * t_ref / tau_syn``, the continuous-time value, read as 0.76 of it at
    the ant's dt: how every run made before this field existed ran, kept so that their files
    resume and test as they ran; see :meth:`of`)."""
    refractory: str = "rounded"
    """How the refractory period runs: ``"rounded"`` (t_ref rounded to whole substeps, at least
    one, every normalisation by that period) or ``"floored"`` (Brian2's own flooring to whole
    steps, the normalisations by the nominal t_ref: how every run made before 2026-11-29 ran,
    kept so that their files resume and test as they ran; see :meth:`of`)."""

    def __post_init__(self) -> None:
        for name in ("tau_m_ms", "refractory_ms", "tau_syn_ms", "tau_trace_ms", "tau_dendrite_ms",
                     "dendrite_saturation_mV", "gain_mV"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
                raise ValueError(f"lif: {name} must be a positive number, got {value!r}")
        for name in ("v_rest_mV", "v_threshold_mV", "v_reset_mV", "bias_mV", "tau_readout_ms", "dendrite_coupling"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"lif: {name} must be a finite number, got {value!r}")
        if self.tau_readout_ms < 0:
            raise ValueError(f"lif: tau_readout_ms must be 0 or positive, got {self.tau_readout_ms!r}")
        if not self.v_threshold_mV > self.v_reset_mV:
            raise ValueError(
                f"lif: the threshold ({self.v_threshold_mV} mV) must lie above the reset ({self.v_reset_mV} mV)"
            )
        if self.substeps is not None and (
            isinstance(self.substeps, bool) or not isinstance(self.substeps, (int, np.integer)) or self.substeps < 1
        ):
            raise ValueError(f"lif: substeps must be an integer of at least 1, got {self.substeps!r}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"lif: unknown encoding {self.encoding!r}; expected one of {ENCODINGS}")
        if self.encoding == "poisson" and self.poisson_seed is None:
            raise ValueError("lif: Poisson encoding needs a seed (poisson_seed, --poisson-seed)")
        if self.encoding != "poisson" and self.poisson_seed is not None:
            raise ValueError(f"lif: poisson_seed seeds Poisson input spikes; with encoding {self.encoding!r} nothing is "
                             "drawn at random: add --spike-encoding poisson or drop --poisson-seed")
        if self.poisson_seed is not None and (isinstance(self.poisson_seed, bool) or not isinstance(self.poisson_seed, (int, np.integer)) or self.poisson_seed < 0):
            raise ValueError(f"lif: poisson_seed must be a non-negative integer, got {self.poisson_seed!r}")
        if self.drive not in DRIVE_RULES:
            raise ValueError(f"lif: drive must be one of {DRIVE_RULES}, got {self.drive!r}")
        if self.refractory not in REFRACTORY_RULES:
            raise ValueError(f"lif: refractory must be one of {REFRACTORY_RULES}, got {self.refractory!r}")
        if self.rule_every not in RULE_TIMINGS:
            raise ValueError(f"lif: rule_every must be one of {RULE_TIMINGS}, got {self.rule_every!r}")
        if not isinstance(self.dendrites, bool):
            raise ValueError(f"lif: dendrites must be True or False, got {self.dendrites!r}")
        if not self.dendrites:  # as poisson_seed without Poisson input: a setting that would do nothing
            unused = [f.name for f in dataclasses.fields(self) if f.name in DENDRITE_FIELDS
                      and getattr(self, f.name) != f.default]
            if unused:
                raise ValueError(f"lif: {', '.join(unused)} shape the dendrite of two-compartment neurons; without "
                                 "dendrites nothing reads them: add --dendrites (dendrites=True) or drop them")

    @classmethod
    def of(cls, spec: "LIFParams | Mapping[str, Any] | None") -> "LIFParams":
        """Parameters from themselves, a dict of fields (unknown names are an error) or None.

        A run file records every field (:meth:`to_dict`); one recorded before ``drive`` existed
        (every other field there, or every other but ``refractory`` too) ran with the
        continuous-time drive, and one recorded before ``refractory`` existed with the floored
        period: each is read so, so that it resumes and tests as it ran."""
        if isinstance(spec, cls):
            return spec
        spec = dict(spec or {})
        if "drive" not in spec and set(spec) >= RECORDED_BEFORE_REFRACTORY:
            spec["drive"] = "continuous"
            spec.setdefault("refractory", "floored")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ValueError(f"lif: unknown neuron options {unknown}; known: {sorted(known)}")
        return cls(**spec)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def n_substeps(self, control_period: float) -> int:
        """S for an env step of ``control_period`` seconds."""
        return self.substeps if self.substeps is not None else max(1, round(control_period / DEFAULT_DT_S))

    def timing(self, control_period: float) -> tuple[int, float, float, float]:
        """(S, dt in s, t_ref as run in s, J in V per unit of weight) for an env step of
        ``control_period`` seconds."""
        S = self.n_substeps(control_period)
        dt = control_period / S
        # Brian2 counts a refractory period in whole steps (rounding down), so t_ref = 2 ms at the
        # ant's dt = 1.03 ms would let a neuron fire every substep, at twice the rate read as 1:
        # the period is t_ref rounded to whole substeps (at least one), and every normalisation
        # (drive, traces, counts, Poisson input) uses that period.
        if self.refractory == "rounded":
            t_ref = max(1, round(self.refractory_ms * 1e-3 / dt)) * dt
        else:  # "floored": Brian2 floors the nominal period itself; the normalisations use the nominal one
            t_ref = self.refractory_ms * 1e-3
        if self.drive == "exact":
            jump = self.gain_mV * 1e-3 * t_ref * math.expm1(dt / (self.tau_syn_ms * 1e-3)) / dt
        else:  # the expression (and so the rounding) of the runs recorded before drive existed
            jump = self.gain_mV * t_ref * 1e3 / self.tau_syn_ms * 1e-3
        return S, dt, t_ref, jump

    def check_outputs_in_range(self, control_period: float) -> None:
        """A one-line error where a unit could fire more often in one env step of
        ``control_period`` seconds than the rate read as 1, so that outputs (actions) would leave
        [-1, 1]: the refractory period's k substeps must divide S (a step holds up to ceil(S / k)
        spikes, read as ceil(S / k) k / S). New runs are checked (``TrainConfig.check_new_run``);
        the network itself runs any period (single-neuron studies at one substep per step)."""
        if self.refractory == "floored":  # Brian2 floors the nominal period: the ant's 2 ms ran as one substep
            raise ValueError("lif: refractory='floored' is how run files recorded before 2026-11-29 ran (units firing "
                             "at up to twice the rate read as 1); a new run runs 'rounded': drop it")
        S, dt, t_ref, _ = self.timing(control_period)
        k = round(t_ref / dt)
        if S % k:
            most = -(-S // k)
            raise ValueError(
                f"lif: the refractory period of {self.refractory_ms:g} ms runs as {k} substeps of {dt * 1e3:.4g} ms, "
                f"which do not divide the {S} substeps of an env step: a unit could fire {most} times in a step "
                f"({most * k / S:.3g} of the rate read as 1): choose substeps (--substeps) or refractory_ms so "
                "that the period's substeps divide S"
            )


#: The fields a run file recorded before :attr:`LIFParams.refractory` existed (2026-11-29); one
#: recorded before :attr:`LIFParams.drive` (added after it) has these and ``refractory``.
RECORDED_BEFORE_REFRACTORY = frozenset(f.name for f in dataclasses.fields(LIFParams)) - {"refractory", "drive"}


def neuron_model(params: LIFParams, poisson_input: bool = False) -> tuple[str, str, str, str | None]:
    """(equations, threshold, reset, integration method) of the LIF neuron group (every layer's
    neurons, see the module docstring's layout), or of the Poisson input layer's."""
    common = "\n".join([
        "dx/dt = -x / tau_trace : 1  # spike trace, +1 per spike",
        "x_partner : 1 (linked)  # trace of the other neuron of the pair",
        "sgn : 1 (constant)  # +1 on neuron, -1 off neuron",
        "count : 1  # spikes in this env step",
        "y : 1  # filtered spike count (output rate, 1 = the maximal rate 1/t_ref)",
        "xs : 1  # signed normalised trace of the unit, (x_on - x_off) * t_ref / tau_trace",
        "tau_trace : second (shared, constant)",
        "trace_norm : 1 (shared, constant)  # t_ref / tau_trace",
        "y_decay : 1 (shared, constant)  # exp(-S dt / tau_readout)",
        "count_norm : 1 (shared, constant)  # t_ref / (S dt)",
    ])
    if poisson_input:
        return common + "\nspike_in : 1  # 1 where the neuron fires in this substep", "spike_in > 0.5", "x += 1\ncount += 1", "exact"
    lines = [
        "g_in : volt (linked)  # the unit's synaptic drive",
        "v_rest : volt (shared, constant)",
        "v_threshold : volt (shared, constant)",
        "v_reset : volt (shared, constant)",
        "bias : volt (shared, constant)",
        "tau_m : second (shared, constant)",
        "t_ref : second (shared, constant)",
    ]
    if params.dendrites:
        lines = [
            "dv/dt = (v_rest - v + bias + I_d) / tau_m : volt (unless refractory)  # soma",
            "dv_d/dt = (v_rest - v_d + sgn * g_in) / tau_d : volt  # dendrite",
            "I_d = coupling * v_sat * tanh((v_d - v_rest) / v_sat) : volt  # dendrite -> soma",
            "tau_d : second (shared, constant)",
            "coupling : 1 (shared, constant)",
            "v_sat : volt (shared, constant)",
        ] + lines
        method = "exponential_euler"
    else:
        lines = ["dv/dt = (v_rest - v + bias + sgn * g_in) / tau_m : volt (unless refractory)  # membrane"] + lines
        method = "exact"
    return "\n".join(lines) + "\n" + common, "v > v_threshold", "v = v_reset\nx += 1\ncount += 1", method


def trace_rule_code(rule, fold_eta: bool = True) -> str:
    """The rule's Brian2 synaptic code (:func:`spikehebb.rules.brian_update`, generated from its
    term table) with the rates replaced by the signed spike traces, Brian2-style substitution:
    ``w += A * xs_pre * xs_post + B * xs_pre + C * xs_post + D``."""
    code = brian_update(rule, fold_eta)
    return re.sub(r"\br_(pre|post)\b", r"xs_\1", code)


def off_copy_negated(rule, fields) -> frozenset[str]:
    """The coefficients the off neuron's synapse stores negated, so that its copy ``-w`` changes by
    exactly ``-dw`` (see the module docstring). fields: the stored coefficients (with ``eta``
    when it is stored apart). A term's contribution on the off copy flips sign once per factor
    ``w`` it reads (the copy holds -w) and once for a negated eta that scales it; its
    coefficient is negated when that leaves it unflipped: a term reading w an even number of
    times (zero included) has its coefficient negated unless eta is stored apart, negated, and
    scales it; one reading w an odd number of times the other way round. Eta, where stored,
    is negated."""
    apart = "eta" in fields
    negated = {"eta"} if apart else set()
    for term in rule.terms:
        flips = term.factors.count("w") + (apart and term.eta_scaled)
        if flips % 2 == 0:
            negated.add(term.coefficient)
    return frozenset(negated)


#: Code run once per env step on every neuron group: the readout filter.
READOUT_CODE = "y = y_decay * y + (1 - y_decay) * count * count_norm"
#: Code computing the signed normalised trace of each neuron's unit (before the rule reads it).
TRACE_CODE = "xs = sgn * (x - x_partner) * trace_norm"
#: The same for a unit group (the rule's post factor), from its linked on and off traces.
UNIT_TRACE_CODE = "xs = (x_on - x_off) * trace_norm"


def _compiled_calls(objects) -> list:
    """Callables running the objects' code objects in order, each exactly as ``codeobj()`` does:
    for the Cython target its compiled ``main`` on its namespace, without the Python calls around
    it (which only refresh namespace entries that change between calls; there are none here, no
    array is resized after the build); otherwise the code object itself."""
    calls = []
    for obj in objects:
        for codeobj in obj._code_objects:
            main = getattr(codeobj.compiled_code.get("run"), "main", None)
            direct = main is not None and not getattr(codeobj, "nonconstant_values", True)
            calls.append(functools.partial(main, codeobj.namespace) if direct else codeobj)
    return calls


def _write(group, name: str, value) -> None:
    """Write a value (a Brian2 quantity is taken in SI units) into the array the compiled code
    reads, without Brian2's checks (which warn about casting 1e50 to float32)."""
    group.variables[name].get_value()[:] = np.asarray(value, dtype=np.float64)


class SpikingPlasticNetwork(PlasticNetwork):
    """P plastic spiking networks as one Brian2 network (see the module docstring).

    Arguments as :class:`~spikehebb.network.base.PlasticNetwork` (``activation`` is ignored: the
    LIF's own transfer replaces it), and:
        neuron: :class:`LIFParams` or a dict of its fields (None: the defaults).
        control_period: seconds of simulated time per env step (the ant 0.0165, the car 0.02).
        target: "cython" (default) or "numpy" code generation.
        fold_eta: store eta*A, ... (as the rate backend).

    ``step`` takes inputs ``(P, n_0)`` (the encoded observation u) and returns ``(P, n_L)``
    outputs in [-1, 1] (where the refractory period divides S, see the module docstring; NaN for
    a member a non-finite weight has reached: a blown-up candidate, as the rate network's NaN
    outputs); ``activations`` are every layer's filtered signed rates ``(P, n_l)``;
    :meth:`spike_counts` the spikes of the last env step, per layer ``(P, n_l, 2)`` (on, off).
    """

    backend = "brian2-lif"

    def __init__(self, sizes=(28, 128, 64, 8), rule="ABCD_lr", population: int = 1, *,
                 neuron: LIFParams | Mapping[str, Any] | None = None, control_period: float = 0.0165,
                 activation="tanh", dtype: str = "float32", constraints=(), target: str = "cython",
                 fold_eta: bool = True):
        super().__init__(sizes, rule, population, activation="tanh", dtype=dtype, constraints=constraints)
        if self.rule is not None:
            check_brian_names(self.rule)  # in one line, before Brian2's own many
        self.activation = ("lif",) * self.n_layers
        for c in self.constraints:  # its synapses add w to the conductance: no latent, no input gains
            if c.latent or any(c.input_gain(l) is not None for l in range(self.n_layers) if c.acts_on(l)):
                raise ValueError(f"the lif network runs constraints on w alone; {c.name} "
                                 f"{'reparametrises the weights' if c.latent else 'scales inputs (balance)'}")
            if getattr(c, "signs", None) is not None:
                raise ValueError(f"the lif network cannot keep Dale's law ({c.name}): every unit's off neuron "
                                 "carries -w, so an excitatory unit would inhibit through it")
        self.params = LIFParams.of(neuron)
        if self.rule is not None and getattr(self.rule, "state", ()):
            raise ValueError(
                f"the lif network runs rules without synaptic state; rule {self.rule.name!r} keeps "
                f"{[s.name for s in self.rule.state]}"
            )
        if (isinstance(control_period, bool) or not isinstance(control_period, (int, float))
                or not 0 < control_period < math.inf):
            raise ValueError(f"control_period must be a positive number of seconds, got {control_period!r}")
        self.control_period = float(control_period)
        self.substeps, self.dt, self.t_ref, self.drive_jump = self.params.timing(self.control_period)
        """S; the substep dt, s; the refractory period the normalisations use and Brian2 is
        given, s (``refractory``); J, V per unit of weight, the drive's jump per spike (``drive``)."""
        self.fold_eta = bool(fold_eta)
        self._codeobj_class = _code_object_class(target)
        self.target = "cython" if self._codeobj_class.__name__.startswith("Cython") else "numpy"
        self._poisson = self.params.encoding == "poisson"
        self._noise = [None] * self.population  # per-slot generators of the Poisson input
        self._build()

    # ---------------------------------------------------------------------------- build
    def _build(self) -> None:
        import brian2 as b2

        P, p, dtype, codeobj = self.population, self.params, self.dtype.type, self._codeobj_class
        ms, mV = b2.ms, b2.mV
        clock = b2.Clock(dt=self.dt * b2.second, name="spikehebb_lif_clock")
        shared = {
            "tau_trace": p.tau_trace_ms * ms, "trace_norm": self.t_ref * 1e3 / p.tau_trace_ms,
            "y_decay": math.exp(-self.control_period * 1e3 / p.tau_readout_ms) if p.tau_readout_ms > 0 else 0.0,
            "count_norm": self.t_ref / self.control_period,
        }
        lif_shared = {
            "v_rest": p.v_rest_mV * mV, "v_threshold": p.v_threshold_mV * mV, "v_reset": p.v_reset_mV * mV,
            "bias": p.bias_mV * mV, "tau_m": p.tau_m_ms * ms, "t_ref": self.t_ref * b2.second,
        }
        if p.dendrites:
            lif_shared.update(tau_d=p.tau_dendrite_ms * ms, coupling=p.dendrite_coupling, v_sat=p.dendrite_saturation_mV * mV)

        # Layers first..L share one LIF neuron group and one unit group (the module docstring's
        # layout); a Poisson input layer has other equations and keeps its own group.
        first = 1 if self._poisson else 0
        lif_sizes = self.sizes[first:]
        offsets = np.concatenate([[0], np.cumsum([P * n for n in lif_sizes])]).astype(int)
        n_units = int(offsets[-1])
        unit_slices = [None] * first + [slice(a, b) for a, b in zip(offsets[:-1], offsets[1:])]

        def neuron_group(n_neurons, poisson, name):
            eqs, threshold, reset, method = neuron_model(p, poisson)
            group = b2.NeuronGroup(
                n_neurons, eqs, threshold=threshold, reset=reset, method=method, clock=clock, dtype=dtype,
                refractory=False if poisson else "t_ref", codeobj_class=codeobj, name=name,
            )
            for key, value in {**shared, **({} if poisson else lif_shared)}.items():
                _write(group, key, value)
            _write(group, "sgn", np.tile([1.0, -1.0], n_neurons // 2))
            group.x_partner = b2.linked_var(group, "x", index=np.arange(n_neurons) ^ 1)
            return group

        neurons = neuron_group(2 * n_units, False, "spikehebb_lif_neurons")
        inputs = neuron_group(P * self.sizes[0] * 2, True, "spikehebb_lif_input") if self._poisson else None

        def neurons_of(layer):
            """(group, index of the layer's first neuron in it)."""
            return (inputs, 0) if layer < first else (neurons, 2 * int(offsets[layer - first]))

        model = ["g : volt  # the unit's drive",
                 "decay : 1 (constant)  # of g per substep: exp(-dt / tau_syn); 1 for injected current"]
        if self.plastic:
            model += ["x_on : 1 (linked)  # trace of the unit's on neuron",
                      "x_off : 1 (linked)  # trace of the unit's off neuron",
                      "xs : 1  # signed normalised trace, the rule's post factor",
                      "trace_norm : 1 (shared, constant)  # t_ref / tau_trace"]
        if self.modulated:
            model.append("m : 1  # the member's modulator m(t)")
        names = [line.split(":")[0].strip() for line in model if "(linked)" not in line]
        units = b2.NeuronGroup(
            n_units, "\n".join(model), clock=clock, codeobj_class=codeobj, name="spikehebb_lif_units",
            dtype={name: np.float64 if name == "decay" else dtype for name in names},
        )
        units.state_updater.active = False
        # The exact solution of dg/dt = -g / tau_syn, as one multiplication by a per-unit factor
        # so that the input layer's injected current (factor 1) shares the group; run before the
        # neurons read g, as the unit groups' state updaters ran before their neurons'.
        decay = units.run_regularly("g = decay * g", when="groups", order=-1, name="spikehebb_lif_unit_decay")
        neurons.g_in = b2.linked_var(units, "g", index=np.arange(2 * n_units) // 2)
        if self.plastic:
            _write(units, "trace_norm", shared["trace_norm"])
            units.x_on = b2.linked_var(neurons, "x", index=np.arange(n_units) * 2)
            units.x_off = b2.linked_var(neurons, "x", index=np.arange(n_units) * 2 + 1)
        groups = [g for g in (inputs, neurons) if g is not None]
        traces = [group.run_regularly(TRACE_CODE, when="end", order=0, name=f"{group.name}_trace") for group in groups]
        if self.plastic:
            traces.append(units.run_regularly(UNIT_TRACE_CODE, when="end", order=0, name="spikehebb_lif_units_trace"))
        per_env_step = [group.run_regularly(READOUT_CODE, when="end", order=1, name=f"{group.name}_readout")
                        for group in groups]

        # One Synapses object per pre group, its layers one after the other, each in (member,
        # pre unit, sign, post) order; syn_slices[l - 1]: (object, slice) of layer l.
        lines = ["w : 1  # weight times the pre neuron's sign (w on, -w off)",
                 "J : volt (shared, constant)  # the drive's jump per spike (drive_jump)"]
        if self.plastic:
            lines += brian_model_lines(self.rule, self.fold_eta)
        rule_code = trace_rule_code(self.rule, self.fold_eta) if self.plastic else None
        synapses, rules, syn_slices = [], [], []
        for group in groups:
            layers = [l for l in range(1, self.n_layers + 1) if neurons_of(l - 1)[0] is group]
            if not layers:
                continue
            syn = b2.Synapses(
                group, units, "\n".join(lines), on_pre="g_post += J * w", clock=clock, dtype=dtype,
                codeobj_class=codeobj, name="spikehebb_lif_input_synapses" if group is inputs else "spikehebb_lif_synapses",
            )
            pres, posts, start = [], [], 0
            for layer in layers:
                n_pre, n_post = self.sizes[layer - 1], self.sizes[layer]
                member, i, s, j = np.meshgrid(np.arange(P), np.arange(n_pre), np.arange(2), np.arange(n_post),
                                              indexing="ij")
                pres.append(neurons_of(layer - 1)[1] + ((member * n_pre + i) * 2 + s).ravel())
                posts.append(unit_slices[layer].start + (member * n_post + j).ravel())
                syn_slices.append((syn, slice(start, start + pres[-1].size)))
                start += pres[-1].size
            pre, post = np.concatenate(pres), np.concatenate(posts)
            syn.connect(i=pre, j=post)
            if not (np.array_equal(syn.i[:], pre) and np.array_equal(syn.j[:], post)):
                raise RuntimeError("Brian2 reordered the synapses; the (member, pre, sign, post) layout is broken")
            _write(syn, "J", self.drive_jump * b2.volt)
            if self.plastic:
                # xs_pre: the pre neuron's copy of its unit's signed trace; xs_post: the post unit's.
                rules.append(syn.run_regularly(rule_code, when="end", order=2, name=f"{syn.name}_rule"))
            synapses.append(syn)
        self._net = b2.Network(*groups, units, decay, *synapses)
        # np.errstate: Brian2's value check compares float32 arrays with 1e50 (an overflow warning).
        with _compile_notice(), np.errstate(over="ignore"):
            self._net.run(0 * b2.ms, namespace={})
        self._clock_arrays = (clock.variables["timestep"].get_value(), clock.variables["t"].get_value(),
                              clock.variables["dt"].get_value())
        # exp((-dt) / tau_syn) in double with tau_syn stored in the network's dtype, as the exact
        # integrator's loop-invariant factor reads it (bit for bit the same multiplication).
        tau_syn = float(np.asarray(p.tau_syn_ms * ms, dtype=np.float64).astype(dtype))
        factors = units.variables["decay"].get_value()
        factors[:] = math.exp((-float(self._clock_arrays[2][0])) / tau_syn)
        if not self._poisson:
            factors[unit_slices[0]] = 1.0
        special = set(map(id, traces + per_env_step + rules))
        substep_objects = [o for o in self._net.sorted_objects if o.active and o._code_objects and id(o) not in special]
        self._substep_calls = _compiled_calls(substep_objects)
        self._learn_calls = _compiled_calls(traces + rules)
        self._readout_calls = _compiled_calls(per_env_step)

        def per_layer(name):
            """Views of a neuron variable, one per layer ``(P * n_l * 2,)``, None where absent."""
            views = []
            for layer in range(self.n_layers + 1):
                group, start = neurons_of(layer)
                array = group.variables[name].get_value() if name in group.variables else None
                views.append(None if array is None else array[start:start + P * self.sizes[layer] * 2])
            return views

        def per_unit_layer(name):
            array = units.variables[name].get_value() if name in units.variables else None
            return [None if array is None or s is None else array[s] for s in unit_slices]

        self._x, self._y, self._xs, self._count = (per_layer(n) for n in ("x", "y", "xs", "count"))
        self._lastspike, self._not_ref, self._v, self._v_d = (
            per_layer(n) for n in ("lastspike", "not_refractory", "v", "v_d"))
        self._count_arrays = [g.variables["count"].get_value() for g in groups]
        self._g, self._unit_xs = per_unit_layer("g"), per_unit_layer("xs")
        self._spike_in = inputs.variables["spike_in"].get_value() if self._poisson else None
        self._modulators = per_unit_layer("m")[1:] if self.modulated else []
        self._w = [syn.variables["w"].get_value()[s] for syn, s in syn_slices]
        self._coef = [{f: syn.variables[f].get_value()[s] for f in synapse_fields(self.rule, self.fold_eta)}
                      for syn, s in syn_slices]

    # ------------------------------------------------------------------------- lifetime
    def reset(self, coefficients, weights, members=None, noise_seeds=None) -> None:
        """As :meth:`PlasticNetwork.reset`; ``noise_seeds``: one integer per armed slot mixed with
        ``poisson_seed`` to seed that slot's Poisson input (None: the slot index and a count of
        resets, for direct use outside a rollout)."""
        slots = np.arange(self.population) if members is None else np.asarray(members)
        if noise_seeds is not None:  # checked before anything is armed
            seeds = np.asarray(noise_seeds)
            if (seeds.shape != (len(slots),) or seeds.dtype.kind not in "iu" or (seeds < 0).any()):
                raise ValueError(f"noise_seeds must be one non-negative integer per armed slot ({len(slots)}), "
                                 f"got {noise_seeds!r}")
            noise_seeds = [[int(seed)] for seed in seeds]
        super().reset(coefficients, weights, members)
        if not self._poisson:
            return
        if noise_seeds is None:
            self._resets = getattr(self, "_resets", 0) + 1
            noise_seeds = [[int(b), self._resets] for b in slots]
        for b, seed in zip(slots, noise_seeds):
            self._noise[int(b)] = np.random.default_rng([self.params.poisson_seed, *seed])

    def _arm(self, coefficients, weights, members):
        # as the rate backend: coefficients or weights beyond the float type arm as inf, and the
        # member fails at its first step (_blown), not with a warning here
        with np.errstate(over="ignore"):
            self._arm_values(coefficients, weights, members)

    def _arm_values(self, coefficients, weights, members):
        P, where = self.population, slice(None) if members is None else members
        scale = 1.0 / self.substeps if self.params.rule_every == "substep" else 1.0
        for layer, w in enumerate(weights):
            n_pre, n_post = self.sizes[layer], self.sizes[layer + 1]
            self._w[layer].reshape(P, n_pre, 2, n_post)[where] = np.stack([w, -w], axis=2)
        for layer, c in enumerate(coefficients):
            n_pre, n_post = self.sizes[layer], self.sizes[layer + 1]
            values = fold_eta(c, self.rule) if self.fold_eta else {f: c[..., self.rule.index(f)] for f in self.rule.fields}
            # The coefficients dw is linear in: eta and the terms it does not scale (D_out) when
            # it is stored apart, else every one. They carry the per-substep rule's 1/S.
            linear = (("eta",) + tuple(t.coefficient for t in self.rule.terms if not t.eta_scaled)
                      if "eta" in self._coef[layer] else tuple(self._coef[layer]))
            negated = off_copy_negated(self.rule, tuple(self._coef[layer]))
            for field, array in self._coef[layer].items():
                v = values[field] * (scale if field in linear else 1.0)
                array.reshape(P, n_pre, 2, n_post)[where] = np.stack([v, -v if field in negated else v], axis=2)
        v_rest = self.params.v_rest_mV * 1e-3
        for layer, n in enumerate(self.sizes):
            for arrays, value in ((self._x, 0), (self._y, 0), (self._xs, 0), (self._count, 0), (self._v, v_rest),
                                  (self._v_d, v_rest), (self._lastspike, -1e4), (self._not_ref, True)):
                if arrays[layer] is not None:
                    arrays[layer].reshape(P, -1)[where] = value
            for arrays in (self._g, self._unit_xs):
                if arrays[layer] is not None:
                    arrays[layer].reshape(P, -1)[where] = 0
        if self._poisson:
            self._spike_in.reshape(P, -1)[where] = 0
            for b in range(P) if members is None else members:
                self._noise[int(b)] = None

    def _poisson_spikes(self, inputs: np.ndarray) -> np.ndarray:
        """(S, P * n_0 * 2) spikes of the input neurons for one env step: each fires with
        probability ``clip(sgn * u, 0, 1) * dt / t_ref`` per substep, from its slot's generator."""
        P, n, S = self.population, self.sizes[0], self.substeps
        rate = np.clip(np.stack([inputs, -inputs], axis=-1), 0, 1).reshape(P, n * 2)
        p = np.minimum(rate * (self.dt / self.t_ref), 1.0)
        spikes = np.zeros((S, P, n * 2), dtype=self.dtype)
        for b, rng in enumerate(self._noise):
            if rng is not None:
                spikes[:, b] = rng.random((S, n * 2)) < p[b]
        return spikes.reshape(S, -1)

    def _step(self, inputs, modulator):
        spikes = self._poisson_spikes(inputs) if self._poisson else None
        if not self._poisson:
            self._g[0][:] = (self.params.gain_mV * 1e-3) * inputs.reshape(-1)
        for c in self._count_arrays:
            c[:] = 0
        if self._modulators:
            m = np.zeros(self.population, self.dtype) if modulator is None else modulator
            for array, n in zip(self._modulators, self.sizes[1:]):
                array.reshape(self.population, n)[:] = m[:, None]
        learn = self.plastic and not self.frozen
        each_substep = learn and self.params.rule_every == "substep"
        timestep, t, dt = self._clock_arrays
        for k in range(self.substeps):
            if spikes is not None:
                self._spike_in[:] = spikes[k]
            for call in self._substep_calls:
                call()
            if each_substep:
                for call in self._learn_calls:
                    call()
            timestep[0] += 1
            t[0] = timestep[0] * dt[0]
        for call in self._readout_calls:
            call()
        if learn:
            if not each_substep:
                for call in self._learn_calls:
                    call()
            self._apply_constraints_to_copies()
        outputs = self._outputs()
        outputs[self._blown()] = np.nan
        return outputs

    def _blown(self) -> np.ndarray:
        """``(P,)`` members a non-finite weight has reached: a spike through a NaN or infinite w
        leaves its unit's drive g non-finite for the rest of the lifetime. Their outputs are NaN,
        the rate network's sign of a blown-up candidate (the rollout fails the lifetime), where
        the filtered spike counts would stay finite (a NaN drive silences its neurons)."""
        P, blown = self.population, np.zeros(self.population, dtype=bool)
        for g in self._g[1:]:
            blown |= ~np.isfinite(g.reshape(P, -1)).all(axis=1)
        return blown

    def _apply_constraints_to_copies(self) -> None:
        """Run the constraints in NumPy on each layer's weights and write both copies back."""
        if not self.constraints:
            return
        weights = self._weights()
        self._apply_constraints(weights)
        self._set_weights(weights)

    # --------------------------------------------------------------------------- state
    def _signed(self, array: np.ndarray, n: int) -> np.ndarray:
        a = array.reshape(self.population, n, 2)
        return (a[..., 0] - a[..., 1]).astype(self.dtype)

    def _outputs(self) -> np.ndarray:
        return self._signed(self._y[-1], self.sizes[-1])

    def _weights(self):
        return [w.reshape(P, a, 2, b)[:, :, 0, :].copy() for w, (P, a, b) in zip(self._w, self.weight_shapes)]

    def _set_weights(self, weights):
        for w, new, (P, a, b) in zip(self._w, weights, self.weight_shapes):
            new = np.asarray(new)
            w.reshape(P, a, 2, b)[:] = np.stack([new, -new], axis=2)

    def _activations(self):
        return [self._signed(y, n) for y, n in zip(self._y, self.sizes)]

    def spike_counts(self) -> list[np.ndarray]:
        """Spikes of every neuron in the last env step, per layer ``(P, n_l, 2)`` (on, off), int32."""
        self._check_armed()
        return [c.reshape(self.population, n, 2).astype(np.int32) for c, n in zip(self._count, self.sizes)]

    def traces(self) -> list[np.ndarray]:
        """The signed normalised traces the rule read last, per layer ``(P, n_l)``."""
        self._check_armed()
        return [x.reshape(self.population, n, 2)[..., 0].copy() for x, n in zip(self._xs, self.sizes)]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(sizes={self.sizes}, rule={self.rule and self.rule.name!r}, "
                f"population={self.population}, substeps={self.substeps}, dt={self.dt * 1e3:.4g} ms, "
                f"neuron={self.params})")
