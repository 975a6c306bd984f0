"""Encoders (observations -> input rates) and decoders (output rates -> actions).

Both work on a batch of B members at once: an encoder maps ``(B, *observation_shape)`` to
``(B, n_inputs)`` rates, a decoder maps the network's outputs ``(B, n_outputs)`` to actions
``(B, *action_shape)``. Tasks pick theirs; other tasks plug in their own objects with the same
two methods.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Encoder(Protocol):
    """Observations ``(B, *obs_shape)`` -> input rates ``(B, n_inputs)``."""

    n_inputs: int

    def __call__(self, observations: np.ndarray) -> np.ndarray: ...


class Decoder(Protocol):
    """Network outputs ``(B, n_outputs)`` -> actions ``(B, *action_shape)``."""

    def __call__(self, outputs: np.ndarray) -> np.ndarray: ...


class RawEncoder:
    """The observation vector itself as input rates (the ant's first layer reads the raw
    28-dim observation, unsquashed, as in Najarro & Risi's code)."""

    def __init__(self, n_inputs: int):
        self.n_inputs = int(n_inputs)

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        observations = np.asarray(observations, dtype=np.float64)
        if observations.ndim != 2 or observations.shape[1] != self.n_inputs:
            raise ValueError(
                f"observations must be (B, {self.n_inputs}), got {observations.shape}"
            )
        return observations


class IdentityDecoder:
    """The outputs are the actions (the ant's last layer is tanh, already in [-1, 1])."""

    def __call__(self, outputs: np.ndarray) -> np.ndarray:
        return np.asarray(outputs)
