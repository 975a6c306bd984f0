"""The agent protocol: what a rollout needs of a controller, whatever its kind.

An agent is B independent controllers (the members of a lockstep batch) of one kind: a Hebbian
rate network, a static network, an LSTM or GRU baseline, a spiking network. The rollout drives
every kind the same way:

    agent = make_agent(spec, task, batch_size)        # built once per worker (compiles Brian2)
    agent.reset(parts, members)                       # arm new lifetimes in some slots
    outputs = agent.step(inputs, modulator)           # (B, n_in) [, (B,)] -> (B, n_out)
    agent.weights(), agent.activations()              # for traces and analyses

Layouts (B = batch size, layers counted from the inputs):

- ``parts``: what one lifetime needs, by name, each a list of per-layer arrays with the member
  axis first, ``(n, *shape)`` for the n members being armed. The names and shapes come from the
  agent's genome parts (:class:`GenomePart`): for a Hebbian network ``"coefficients"`` (per layer
  ``(n_pre, n_post, k)``) and ``"weights"`` (the initial weights, per layer ``(n_pre, n_post)``).
- ``members``: indices into the batch of the slots being armed (None: all B, in order). Slots not
  named keep their lifetime running; a member's numbers never depend on the other slots.
- ``inputs`` ``(B, n_inputs)``; ``modulator`` ``(B,)`` or None (a third factor, read by
  modulated rules only); outputs ``(B, n_outputs)``.
- ``weights()``: per layer ``(B, n_pre, n_post)``; ``activations()``: per layer ``(B, n_l)``,
  inputs first, outputs last (copies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence

import numpy as np


@dataclass(frozen=True)
class GenomePart:
    """One named part of what a lifetime needs.

    name: the key in ``parts``; shapes: per layer, without the member axis; searched: True when
    the evolution strategy searches it (it is a slice of the candidate's flat vector), False when
    it is drawn afresh for every lifetime (the random initial weights of a Hebbian network).
    """

    name: str
    shapes: tuple[tuple[int, ...], ...]
    searched: bool = True

    @property
    def size(self) -> int:
        """Number of values of one member's part."""
        return sum(int(np.prod(s)) for s in self.shapes)


class Agent(Protocol):
    """B controllers in lockstep (see the module docstring for the layouts)."""

    batch_size: int
    n_inputs: int
    n_outputs: int

    def reset(self, parts: Mapping[str, Sequence[np.ndarray]], members: Sequence[int] | None = None) -> None:
        """Arm new lifetimes in the slots ``members`` with their parts (state zeroed)."""

    def step(self, inputs: np.ndarray, modulator: np.ndarray | None = None) -> np.ndarray:
        """One step of every slot: ``(B, n_inputs)`` -> ``(B, n_outputs)``."""

    def weights(self) -> list[np.ndarray]:
        """Current weights per layer ``(B, n_pre, n_post)`` (copies)."""

    def activations(self) -> list[np.ndarray]:
        """Activations of the last step per layer ``(B, n_l)``, inputs first (copies)."""
