"""What defines an agent: its kind and the options of that kind (saved in the run file)."""

from __future__ import annotations

from dataclasses import dataclass

from spikehebb.network import BACKENDS, DTYPES, WEIGHT_INITS
from spikehebb.rules import get_rule


@dataclass(frozen=True)
class AgentConfig:
    """One agent kind and its options.

    kind: a name in :data:`spikehebb.agents.AGENTS` ("hebbian", "static", ...).
    rule: the plasticity rule (:data:`spikehebb.rules.RULES`); None for kinds without one.
    evolve_initial_weights: search the initial weights too (Najarro & Risi 2020, appendix 6.4,
        "co-evolved"); otherwise they are drawn afresh for every lifetime.
    backend, dtype: the network's backend ("brian2" or "numpy") and float type.
    weight_init, weight_scale: how initial weights are drawn: U[-0.1, 0.1] in the paper.
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

    def __post_init__(self) -> None:
        from spikehebb.agents import AGENTS

        if self.kind not in AGENTS:
            raise ValueError(f"unknown agent kind {self.kind!r}; expected one of {tuple(AGENTS)}")
        takes_rule = AGENTS[self.kind].takes_rule
        if takes_rule:
            get_rule(self.rule)
        elif self.rule is not None:
            raise ValueError(f"a {self.kind} agent has no plasticity rule, got rule={self.rule!r}")
        if self.evolve_initial_weights and not takes_rule:
            raise ValueError(f"evolve_initial_weights is for agents with a rule; a {self.kind} agent's weights are its genome")
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; expected one of {tuple(BACKENDS)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.weight_init not in WEIGHT_INITS:
            raise ValueError(f"unknown weight init {self.weight_init!r}; expected one of {WEIGHT_INITS}")
        if not (self.weight_scale > 0):
            raise ValueError(f"weight scale must be positive, got {self.weight_scale}")
        check = getattr(AGENTS[self.kind], "check_options", None)
        if check is not None:
            object.__setattr__(self, "options", check(self, self.options))
        elif self.options:
            raise ValueError(f"a {self.kind} agent takes no options, got {self.options!r}")

    @property
    def label(self) -> str:
        """A short name for tables and file names: the rule, or the kind."""
        return self.rule if self.kind == "hebbian" else self.kind
