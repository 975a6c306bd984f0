"""Spiking Hebbian agents: LIF networks in Brian2 running the ABCD rule on spike traces.

Kind ``"lif"`` (``--neuron lif``): the Hebbian agent's genome and lifetimes (random initial
weights per lifetime, an evolved rule in the rate network's coefficient layout), on a
:class:`~spikehebb.network.spiking.SpikingPlasticNetwork`: each unit an on/off pair of leaky
integrate-and-fire neurons, S substeps per env step, the rule on the pre and post spike traces
(see :mod:`spikehebb.network.spiking` for the equations). A rule evolved on rates runs here as it
is, and back.

Options (``AgentConfig.options``, every field of :class:`~spikehebb.network.spiking.LIFParams`;
the run file stores them all, defaults filled in). The task supplies the control period (the
simulated time of one env step: the ant 16.5 ms, the car 20 ms).

Genome: ``"coefficients"`` (searched) and ``"weights"`` (drawn per lifetime unless
``evolve_initial_weights``), as the rate agent; with Poisson input also ``"noise_seed"``, one
integer per lifetime drawn from the lifetime's seed (not searched), which seeds that lifetime's
input spikes together with ``poisson_seed``: a lifetime's spikes do not depend on its slot.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from spikehebb.agents.base import GenomePart
from spikehebb.agents.hebbian import HebbianAgent
from spikehebb.network.spiking import LIFParams, SpikingPlasticNetwork

#: AgentConfig fields of the rate network the spiking agent does not run (their neutral values).
UNSUPPORTED = {"dale": None, "rule_every": 1, "rate_average": None, "modulated": False}


class SpikingAgent(HebbianAgent):
    """B spiking Hebbian controllers in lockstep (one Brian2 network; see the module docstring).

    Arguments as :class:`~spikehebb.agents.hebbian.NetworkAgent`, and ``control_period`` (seconds
    per env step, from the task: :meth:`task_options`); ``network_kwargs``: ``target``,
    ``fold_eta``.
    """

    kind = "lif"
    takes_rule = True

    def __init__(self, config, sizes, activation, batch_size: int, constraints=(), control_period: float | None = None,
                 **network_kwargs):
        self.config = config
        if control_period is None:
            raise ValueError("a lif agent needs the task's control period (seconds per env step); this task has none")
        if config.backend != "brian2":
            raise ValueError(f"the lif agent runs on Brian2 only, got backend={config.backend!r}")
        self.network = SpikingPlasticNetwork(
            sizes, config.rule, batch_size, neuron=config.options, control_period=control_period,
            dtype=config.dtype, constraints=constraints, **network_kwargs,
        )
        self.batch_size = int(batch_size)
        self.n_inputs, self.n_outputs = self.network.sizes[0], self.network.sizes[-1]

    # ---- configuration
    @staticmethod
    def check_options(config, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """Every neuron option with defaults filled in (what the run file records); a bad value
        or an option of the rate network the spiking one does not run is a one-line error."""
        for name, neutral in UNSUPPORTED.items():
            if getattr(config, name, neutral) != neutral:
                raise ValueError(f"the lif agent does not run {name}={getattr(config, name)!r} (rate networks only)")
        if config.backend != "brian2":
            raise ValueError(f"the lif network runs on Brian2 only, not the {config.backend!r} backend: drop --backend")
        if options is not None and not isinstance(options, Mapping):
            raise ValueError(f"lif: options must be a mapping of neuron options, got {options!r}")
        return LIFParams.of(options).to_dict()

    @staticmethod
    def task_options(task) -> dict[str, Any]:
        """What the agent takes from the task: its control period."""
        return {"control_period": task.control_period}

    # ---- genome
    @classmethod
    def genome_parts(cls, config, sizes: Sequence[int]) -> tuple[GenomePart, ...]:
        parts = super().genome_parts(config, sizes)
        if LIFParams.of(config.options).encoding == "poisson":
            parts += (GenomePart("noise_seed", ((1,),), searched=False),)
        return parts

    @classmethod
    def draw_part(cls, config, sizes: Sequence[int], name: str, rng: np.random.Generator) -> list[np.ndarray]:
        if name == "noise_seed":
            return [rng.integers(0, 2**62, size=(1, 1))]
        return super().draw_part(config, sizes, name, rng)

    # ---- the protocol
    def reset(self, parts: Mapping[str, Sequence[np.ndarray]], members: Sequence[int] | None = None) -> None:
        """As :meth:`NetworkAgent.reset <spikehebb.agents.hebbian.NetworkAgent.reset>`, and the
        optional part ``"noise_seed"``: the members' membrane-noise seeds."""
        self._check_parts(parts)
        seeds = parts.get("noise_seed")
        self.network.reset(parts.get("coefficients"), parts["weights"], members,
                           noise_seeds=None if seeds is None else np.asarray(seeds[0]).reshape(-1))

    def spike_counts(self) -> list[np.ndarray]:
        """Spikes of the last env step per layer ``(B, n_l, 2)`` (on, off neurons)."""
        return self.network.spike_counts()
