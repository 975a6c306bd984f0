"""Agents: the controllers a rollout drives, one registry for every kind.

    agent = make_agent(AgentConfig(kind="hebbian", rule="ABCD_lr"), task, batch_size=64)

Every kind follows :class:`~spikehebb.agents.base.Agent` (reset per lifetime, step on a batch,
weights and activations for traces) and lists its :class:`~spikehebb.agents.base.GenomePart`\\ s.
A new kind is one class with ``kind``, ``genome_parts(config, sizes)``, ``draw_part`` for parts
it draws per lifetime, and the protocol's methods, plus one line in :data:`AGENTS`.
"""

from __future__ import annotations

from spikehebb.agents.base import Agent, GenomePart
from spikehebb.agents.hebbian import HebbianAgent, NetworkAgent, StaticAgent
from spikehebb.agents.spiking import SpikingAgent
from spikehebb.agents.recurrent import GRUAgent, LSTMAgent
from spikehebb.plugins import missing

#: Every agent kind by name.
AGENTS: dict[str, type] = {HebbianAgent.kind: HebbianAgent, StaticAgent.kind: StaticAgent}
AGENTS[SpikingAgent.kind] = SpikingAgent  # LIF neurons in Brian2, the rule on spike traces
AGENTS.update({LSTMAgent.kind: LSTMAgent, GRUAgent.kind: GRUAgent})  # Palm et al. 2021's baselines

from spikehebb.agents.config import AgentConfig  # noqa: E402  (AgentConfig validates against AGENTS)


def agent_class(config: AgentConfig) -> type:
    """The class of ``config.kind``; a plug-in's kind imports the plug-ins first where needed (a
    worker process's config arrives unpickled, never checked against the registry there)."""
    if missing(config.kind, AGENTS):
        raise ValueError(f"unknown agent kind {config.kind!r}; expected one of {tuple(AGENTS)}")
    return AGENTS[config.kind]


def genome_parts(config: AgentConfig, task) -> tuple[GenomePart, ...]:
    """Everything a lifetime of this agent on ``task`` needs, in genome order: the task's parts
    first (an encoder with evolved parameters), then the agent's."""
    return tuple(task.genome_parts()) + tuple(agent_class(config).genome_parts(config, task.sizes))


def draws_weights(config: AgentConfig, task) -> bool:
    """Whether every lifetime of this agent on ``task`` starts from freshly drawn random weights
    (a Hebbian network's), rather than from evolved ones (static, LSTM, GRU, ``--coevolve``)."""
    return any(p.name == "weights" and not p.searched for p in genome_parts(config, task))


def lifetime_start(config: AgentConfig, task) -> str:
    """What every lifetime of this agent on ``task`` starts from, in words for tables and cards
    ("... lifetimes, each from <this>."): the parts drawn afresh per lifetime (a Hebbian
    network's random weights, a Poisson spiking network's input noise), or the evolved weights
    when everything is searched (static, LSTM, GRU, co-evolved initial weights); then the
    lifetimes differ only in the task's random start (the ant's initial pose, the car's track)."""
    parts = genome_parts(config, task)
    drawn = {p.name for p in parts if not p.searched}
    if draws_weights(config, task):
        words = "fresh random weights"
    else:
        initial = " initial" if any(p.name == "coefficients" for p in parts) else ""
        words = f"the evolved{initial} weights"
    if "noise_seed" in drawn:
        words += " and fresh input noise"
    if not drawn:
        words += "; the lifetimes differ only in the task's random start"
    return words


def make_agent(config: AgentConfig, task, batch_size: int, **kwargs):
    """An agent of ``config.kind`` for ``task``'s network, B = ``batch_size`` slots."""
    cls = agent_class(config)
    # A kind that needs more of the task (the spiking agent: its control period) says so.
    kwargs = {**(cls.task_options(task) if hasattr(cls, "task_options") else {}), **kwargs}
    return cls(config, task.sizes, task.activation, batch_size, constraints=task.constraints, **kwargs)


__all__ = ["AGENTS", "Agent", "AgentConfig", "GenomePart", "GRUAgent", "HebbianAgent", "LSTMAgent", "NetworkAgent", "StaticAgent",
           "agent_class", "draws_weights", "genome_parts", "lifetime_start", "make_agent"]
