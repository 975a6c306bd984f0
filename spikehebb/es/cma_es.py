"""CMA-ES through the ``cma`` package: full covariance for small problems, separable above a threshold.

[1] Hansen & Ostermeier 2001, Completely Derandomized Self-Adaptation in Evolution Strategies;
    Hansen 2016, The CMA Evolution Strategy: A Tutorial, https://arxiv.org/abs/1604.00772.
[2] Ros & Hansen 2008, A Simple Modification in CMA-ES Achieving Linear Time and Space Complexity
    (separable CMA-ES, cma's ``CMA_diagonal=True``).

A full covariance of 61,440 or 456,640 dimensions cannot exist (28 GB / 1.7 TB), so above
``diagonal_threshold`` dimensions the strategy switches to the diagonal (separable) variant.

cma MINIMISES; this strategy MAXIMISES like every spikehebb strategy and hands cma the negated
fitness. cma draws its own population, so candidates are index keys and the vectors live in a
:class:`~spikehebb.es.candidates.PopulationSampler`. cma's normal draws come from our own
``numpy.random.Generator`` (the ``randn`` option) instead of ``numpy.random``'s global state, so the
RNG state is ours to save; the rest of cma's state is captured by :mod:`spikehebb.es.cma_state`.
"""

from __future__ import annotations

from typing import Any

import cma
import numpy as np

from spikehebb.es.base import Strategy
from spikehebb.es.candidates import PopulationSampler
from spikehebb.es.cma_state import capture, restore
from spikehebb.es.open_es import initial_mean

RANDN_STREAM = 2
"""Spawn-key entry of cma's sampling Generator."""

_QUIET = {
    "verbose": -9,  # no printing
    "verb_disp": 0,
    "verb_log": 0,  # no output files
    "verb_plot": 0,
    "seed": np.nan,  # cma must not reseed numpy's global RNG; our randn is seeded instead
}


class CMAES(Strategy):
    """CMA-ES (``cma`` package) behind the spikehebb ask/tell interface. Fitness is MAXIMISED.

    Args:
        n_params: length of the searched vector.
        popsize: candidates per generation (cma's ``popsize``).
        seed: run seed; seeds the initial mean (if drawn) and cma's sampling Generator.
        sigma0: initial step size (cma's ``sigma0``); 0.1 matches OpenAI-ES's initial sigma.
        init: ``"normal"`` | ``"uniform"`` | (n_params,) vector, as for OpenAI-ES.
        diagonal: ``"auto"`` (separable iff n_params > diagonal_threshold), True or False.
        diagonal_threshold: dimension above which ``"auto"`` picks the separable variant.
        l2_coeff: optional fitness penalty ``-l2_coeff * mean(h_i**2)``; off by default (the paper's
            penalty belongs to its OpenAI-ES).
        cma_options: further ``cma`` options, merged over the quiet defaults (not over popsize,
            seed, CMA_diagonal or randn, which this class owns).
    """

    name = "cma"

    def __init__(
        self,
        n_params: int,
        popsize: int,
        seed: int = 0,
        sigma0: float = 0.1,
        init: str | np.ndarray = "normal",  # Najarro & Risi 2020 (train_hebb.py --distribution)
        diagonal: bool | str = "auto",
        diagonal_threshold: int = 1000,
        l2_coeff: float = 0.0,
        cma_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(n_params, popsize, seed, l2_coeff)
        if diagonal not in ("auto", True, False):
            raise ValueError(f"diagonal must be 'auto', True or False, got {diagonal!r}")
        if sigma0 <= 0:
            raise ValueError(f"sigma0 must be > 0, got {sigma0}")
        owned = {"popsize", "seed", "CMA_diagonal", "randn"} & set(cma_options or {})
        if owned:
            raise ValueError(f"cma_options must not set {sorted(owned)}: use the constructor arguments")
        self.diagonal = self.n_params > diagonal_threshold if diagonal == "auto" else bool(diagonal)
        self._rng = np.random.Generator(
            np.random.Philox(np.random.SeedSequence(self.seed, spawn_key=(RANDN_STREAM,)))
        )
        options = {**_QUIET, **(cma_options or {})}
        options.update(popsize=self.popsize, CMA_diagonal=self.diagonal, randn=self._randn)
        self._x0 = initial_mean(init, self.n_params, self.seed)
        self._sigma0 = float(sigma0)
        self._options = options
        self._es = self._new_es()
        self._population: np.ndarray | None = None

    def _new_es(self) -> cma.CMAEvolutionStrategy:
        return cma.CMAEvolutionStrategy(self._x0, self._sigma0, dict(self._options))

    def _randn(self, *shape: int) -> np.ndarray:
        return self._rng.standard_normal(shape)

    @property
    def mean(self) -> np.ndarray:
        return np.array(self._es.mean, dtype=np.float64)

    @property
    def sigma(self) -> float:
        return float(self._es.sigma)

    def _ask(self) -> None:
        self._population = np.asarray(self._es.ask(), dtype=np.float64)

    def _sampler(self) -> PopulationSampler:
        return PopulationSampler(
            self.generation, self._population, tuple(range(self.popsize)), self.popsize
        )

    def _tell(self, fitness: np.ndarray) -> np.ndarray:
        cost = -fitness
        self._es.tell(list(self._population), cost.tolist())
        self._population = None
        return cost

    def _state_dict(self) -> dict[str, Any]:
        return {
            "diagonal": self.diagonal,
            "rng": self._rng.bit_generator.state,
            "cma": capture(self._es),
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        if bool(state["diagonal"]) != self.diagonal:
            raise ValueError(f"state_dict diagonal must be {self.diagonal}, got {bool(state['diagonal'])}")
        self._es = self._new_es()
        restore(self._es, state["cma"])
        if not hasattr(self._es, "timer"):
            # cma creates its wall-clock timer in the first ask(); a resumed run has already had that
            self._es.timer = cma.utilities.utils.ElapsedWCTime()
        rng_state = _plain(state["rng"])
        self._rng.bit_generator.state = rng_state
        self._population = None


def _plain(state: Any) -> Any:
    """Undo what an HDF5 round trip does to a bit-generator state (bytes names, 0-d arrays)."""
    if isinstance(state, dict):
        return {k: _plain(v) for k, v in state.items()}
    if isinstance(state, bytes):
        return state.decode()
    if isinstance(state, np.ndarray) and state.ndim == 0:
        return state[()].item()
    return state
