"""What defines an agent: its kind and the options of that kind (saved in the run file)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikehebb.checks import check_bool, check_name
from spikehebb.network import BACKENDS, DTYPES, WEIGHT_INITS
from spikehebb.plugins import missing
from spikehebb.rules import get_rule


@dataclass(frozen=True)
class AgentConfig:
    """One agent kind and its options.

    kind: a name in :data:`spikehebb.agents.AGENTS` ("hebbian", "static", ...).
    rule: the plasticity rule (:data:`spikehebb.rules.RULES`); None for kinds without one.
    evolve_initial_weights: search the initial weights too (Najarro & Risi 2020, appendix 6.4,
        "co-evolved"); otherwise they are drawn afresh for every lifetime.
    backend, dtype: the network's backend ("brian2" or "numpy") and float type.
    weight_init, weight_scale: how initial weights are drawn: U[-0.1, 0.1] in the paper;
        "lognormal" magnitudes (:func:`spikehebb.network.sample_weights`).
    dale, dale_mode, dale_seed, dale_balance: Dale's law (:mod:`spikehebb.biology`): the fraction of
        excitatory units of every layer in (0, 1] (None: no Dale's law), "clip", "smooth" or "squareplus"
        (:mod:`spikehebb.network.constraints`), the seed of the E/I assignment, and whether units
        send with E/I balanced gains (:mod:`spikehebb.network.constraints`; False: gain 1 for all,
        the drive of a mostly excitatory network positive on average).
    modulated, eligibility_tau, baseline_tau: the rule's three-factor version
        (:func:`spikehebb.rules.three_factor`: one more evolved coefficient eta_m per synapse),
        its eligibility trace's time constant and the modulator baseline's, in env steps (numbers
        >= 1; neither may be None).
    rule_every, rate_average: the rule every K steps on moving averages of the rates with time
        constant TAU steps (None: the rates); 1 and None are the paper's per-step rule.
    coefficient_rows: which genome row of its layer's coefficients a synapse (i, j) reads
        (:data:`spikehebb.agents.hebbian.COEFFICIENT_ROWS`): "per_synapse", its own row
        ``n_post * i + j`` (the paper's text, default); "i_plus_j", row ``i + j``, as the authors'
        published code did until its fix of 2020-10-13, so that synapses on an anti-diagonal
        share one rule (417 rules on the ant's 28-128-64-8 network); "mirror", every synapse
        shares its rule with its left-right mirror synapse, with the signs that make lifetimes on
        mirror-image bodies mirror images (:mod:`spikehebb.agents.mirror`; the Ant's network
        only; 6,144 rules).
    """

    kind: str = "hebbian"
    rule: str | None = "ABCD_lr"
    evolve_initial_weights: bool = False
    backend: str = "brian2"
    dtype: str = "float32"
    weight_init: str = "uniform"
    weight_scale: float = 0.1
    options: dict | None = None
    """Options of the kind, checked and completed by its class's ``check_options`` (the lif
    agent: its neuron model, :class:`spikehebb.network.spiking.LIFParams`); None for kinds without."""
    dale: float | None = None
    dale_mode: str = "clip"
    dale_seed: int = 0
    dale_balance: bool = True
    modulated: bool = False
    eligibility_tau: float = 50.0
    baseline_tau: float = 100.0
    rule_every: int = 1
    rate_average: float | None = None
    coefficient_rows: str = "per_synapse"

    def __post_init__(self) -> None:
        from spikehebb.agents import AGENTS

        # names are compared with lists of choices below: a list or a number is a one-line error there
        for name in ("kind", "backend", "dtype", "weight_init", "dale_mode", "coefficient_rows"):
            check_name("agent", name, getattr(self, name))
        if self.rule is not None and not isinstance(self.rule, str):
            raise ValueError(f"agent: rule must be a rule's name (a string) or None, got {self.rule!r}")
        for name in ("modulated", "evolve_initial_weights"):  # "no" would switch the feature on
            check_bool(self, "agent", name)
        if missing(self.kind, AGENTS):  # (a plug-in's kind: spikehebb.plugins)
            raise ValueError(f"unknown agent kind {self.kind!r}; expected one of {tuple(AGENTS)}")
        takes_rule = AGENTS[self.kind].takes_rule
        if takes_rule:
            get_rule(self.rule)
            from spikehebb.rules import THREE_FACTOR_SUFFIX

            if self.rule.endswith(THREE_FACTOR_SUFFIX):
                raise ValueError(f"rule={self.rule!r}: give the plain rule {self.rule[:-len(THREE_FACTOR_SUFFIX)]!r} and "
                                 "modulated=True (--modulated), which adds the eligibility trace and the baseline")
        elif self.rule is not None:  # rule defaults to ABCD_lr: a kind without one needs rule=None given
            raise ValueError(f"a {self.kind} agent has no plasticity rule, got rule={self.rule!r} (the default when "
                             "none is given): pass rule=None")
        if self.evolve_initial_weights and not takes_rule:
            raise ValueError(f"evolve_initial_weights is for agents with a rule; a {self.kind} agent's weights are its genome")
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; expected one of {tuple(BACKENDS)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.weight_init not in WEIGHT_INITS:
            raise ValueError(f"unknown weight init {self.weight_init!r}; expected one of {WEIGHT_INITS}")
        if (isinstance(self.weight_scale, bool) or not isinstance(self.weight_scale, (int, float, np.floating, np.integer))
                or not 0 < self.weight_scale < float("inf")):
            raise ValueError(f"weight scale must be a positive finite number, got {self.weight_scale!r}")
        check = getattr(AGENTS[self.kind], "check_options", None)
        if check is not None:
            object.__setattr__(self, "options", check(self, self.options))
        elif self.options:
            raise ValueError(f"a {self.kind} agent takes no options, got {self.options!r}")
        self._check_biology(takes_rule)
        from spikehebb.agents.hebbian import COEFFICIENT_ROWS

        if self.coefficient_rows not in COEFFICIENT_ROWS:
            raise ValueError(f"unknown coefficient rows {self.coefficient_rows!r}; expected one of {tuple(COEFFICIENT_ROWS)}")
        if self.coefficient_rows != "per_synapse" and self.kind != "hebbian":
            raise ValueError(f"coefficient_rows={self.coefficient_rows!r} is an option of Hebbian rate networks, "
                             f"not of a {self.kind} agent")
        if self.coefficient_rows == "mirror" and self.dale is not None:
            raise ValueError("--coefficient-rows mirror with --dale: Dale's E/I signs are drawn per unit, not per "
                             "mirror pair, so the network would not be mirror-symmetric; drop one of the two")
        if self.coefficient_rows == "mirror" and self.evolve_initial_weights:
            raise ValueError("--coefficient-rows mirror with --coevolve: the evolved initial weights are not tied to "
                             "their mirror images, so the network would not be mirror-symmetric; drop one of the two")

    def _check_biology(self, takes_rule: bool) -> None:
        from spikehebb.biology import DALE_MODES, check_dale_fraction

        if self.dale is not None:
            check_dale_fraction(self.dale)
        if self.dale_mode not in DALE_MODES:
            raise ValueError(f"unknown Dale mode {self.dale_mode!r}; expected one of {tuple(DALE_MODES)}")
        if isinstance(self.dale_seed, bool) or not isinstance(self.dale_seed, int) or self.dale_seed < 0:
            raise ValueError(f"dale_seed must be a non-negative integer, got {self.dale_seed!r}")
        if not isinstance(self.dale_balance, bool):
            raise ValueError(f"dale_balance must be True or False, got {self.dale_balance!r}")
        if isinstance(self.rule_every, bool) or not isinstance(self.rule_every, int) or self.rule_every < 1:
            raise ValueError(f"rule_every must be a positive integer, got {self.rule_every!r}")
        for name in ("eligibility_tau", "baseline_tau", "rate_average"):  # only rate_average has a None (the rates)
            value = getattr(self, name)
            if (value is not None or name != "rate_average") and (
                    isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 1 or value == float("inf")):
                raise ValueError(f"{name} must be a finite number of steps >= 1, got {value!r}")
        if self.dale is not None and self.evolve_initial_weights:
            raise ValueError("dale with evolve_initial_weights (--coevolve): the evolved initial weights carry no "
                             "Dale signs; drop one of the two")
        wanted = [f for f, on in (("dale", self.dale is not None), ("modulated", self.modulated),
                                  ("rule_every", self.rule_every != 1), ("rate_average", self.rate_average is not None)) if on]
        if wanted and not takes_rule:
            raise ValueError(f"{', '.join(wanted)} need a plastic rule; a {self.kind} agent has none")

    @property
    def label(self) -> str:
        """A short name for tables and file names: the rule (``_iplusj`` added for the authors'
        coefficient rows, ``_mirror`` for mirror-symmetric ones), or the kind."""
        if self.kind != "hebbian":
            return self.kind
        return self.network_rule + self._rows_suffix

    @property
    def controller_label(self) -> str:
        """How tables, frames and pages name the controller: ``"Hebbian ABCD_lr"`` (``_iplusj`` or
        ``_mirror`` added for tied coefficient rows), or the kind (``"static"``, ``"lstm"``, ...)."""
        if self.kind != "hebbian":
            return self.kind
        return f"Hebbian {self.rule}{self._rows_suffix}"

    @property
    def _rows_suffix(self) -> str:
        """What the labels add for tied coefficient rows (none for per-synapse rows)."""
        return {"i_plus_j": "_iplusj", "mirror": "_mirror"}.get(self.coefficient_rows, "")

    @property
    def network_rule(self) -> str | None:
        """The rule the network runs: ``rule``, or its three-factor version ``rule+mod``."""
        from spikehebb.rules import THREE_FACTOR_SUFFIX

        return self.rule + THREE_FACTOR_SUFFIX if self.modulated and self.rule else self.rule
