"""The strategy base class: the public ask/tell written once (after evosax/algorithms/base.py).

Fitness is MAXIMISED everywhere in spikehebb.es: larger fitness is better. A strategy subclass
writes only ``_ask`` / ``_tell`` and its part of the state; this class owns input checks, NaN
handling, the optional L2 fitness penalty, best-so-far tracking and the generation counter.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from spikehebb.checks import MAX_SEED, is_finite_real, is_integer
from spikehebb.es.candidates import CandidateKey, DiagonalSampler, NoiseSampler, PopulationSampler
from spikehebb.es.shaping import failures_as_worst, l2_penalty
from spikehebb.es.state_checks import scalar, state_count, state_field, state_vector

STATE_VERSION = 1
"""Bumped whenever the layout of ``state_dict()`` changes."""

Sampler = NoiseSampler | DiagonalSampler | PopulationSampler


class Strategy(abc.ABC):
    """Ask/tell evolution strategy over a flat parameter vector. Fitness is MAXIMISED.

    Args:
        n_params: length of the searched vector (rule coefficients or static weights).
        popsize: candidates per generation.
        seed: run seed; all randomness of the strategy derives from it.
        l2_coeff: weight of the fitness penalty ``-l2_coeff * mean(params**2)`` added to every
            candidate's raw fitness before the strategy sees it (0 disables it).

    :attr:`best_fitness` / :attr:`best_params` track the best RAW fitness told so far (the penalty
    is a search device, not part of the task's score).

    After each :meth:`tell`, :attr:`last` holds that generation's ``raw`` fitness as told,
    ``penalty``, ``fitness`` (raw with NaN and infinities replaced by -inf, plus penalty) and the strategy's own
    ``shaped`` values, all (popsize,) float64.
    """

    name: str = ""

    def __init__(self, n_params: int, popsize: int, seed: int, l2_coeff: float) -> None:
        if not (is_integer(n_params) and n_params >= 1):
            raise ValueError(f"n_params must be a positive integer, got {n_params}")
        if not (is_integer(popsize) and popsize >= 2):
            raise ValueError(f"popsize must be an integer of at least 2, got {popsize}")
        if not (is_integer(seed) and 0 <= seed <= MAX_SEED):
            raise ValueError(f"seed must be an integer from 0 to 2**63 - 1 (it is stored as one), got {seed!r}")
        if not (is_finite_real(l2_coeff) and l2_coeff >= 0):
            raise ValueError(f"l2_coeff must be a finite number >= 0, got {l2_coeff!r}")
        self.n_params = int(n_params)
        self.popsize = int(popsize)
        self.seed = int(seed)
        self.l2_coeff = float(l2_coeff)
        self.generation = 0
        self.nan_count = 0
        self.best_fitness = -np.inf
        self._best_params = np.full(self.n_params, np.nan)
        self.last: dict[str, Any] = {}
        self._keys: list[CandidateKey] | None = None
        self._cached_sampler: Sampler | None = None

    @property
    def best_params(self) -> np.ndarray:
        """The candidate of :attr:`best_fitness`: (n_params,) float64 (a copy; NaN before any)."""
        return self._best_params.copy()

    @property
    @abc.abstractmethod
    def mean(self) -> np.ndarray:
        """Current solution, the distribution's centre: (n_params,) float64 (a copy)."""

    @property
    @abc.abstractmethod
    def sigma(self) -> float:
        """Current noise scale (step size)."""

    def ask(self) -> list[CandidateKey]:
        """Keys of this generation's candidates, ``popsize`` of them, in the order of :meth:`tell`.

        Asking again before telling returns the same keys (a restarted evaluator can re-ask).
        """
        if self._keys is None:
            self._ask()
            self._keys = [
                CandidateKey(self.generation, i, self._sign(i)) for i in range(self.popsize)
            ]
        return list(self._keys)

    def sampler(self) -> Sampler:
        """Picklable object that expands this generation's keys; send it to workers once."""
        self._require_asked("sampler")
        if self._cached_sampler is None:
            self._cached_sampler = self._sampler()
        return self._cached_sampler

    def candidate_params(self, key: CandidateKey) -> np.ndarray:
        """Parameter vector of one key of the current generation: (n_params,) float64."""
        return self.sampler().params(key)

    def tell(self, fitness) -> dict[str, Any]:
        """Update the distribution from the fitness of the asked candidates (larger is better).

        fitness: (popsize,) float, in the order of :meth:`ask`. NaN (or an infinity: a fitness that
        overflowed, a simulation that blew up) marks a failed evaluation: it is counted in
        :attr:`nan_count` and treated as the worst possible value (-inf) so a failed episode never
        wins (+inf would have ranked first and become the best parameters) and never crashes the run.
        Returns the generation's stats (also kept in :attr:`last`).
        """
        self._require_asked("tell")
        raw = np.array(fitness, dtype=np.float64, copy=True)
        if raw.shape != (self.popsize,):
            raise ValueError(f"fitness must have shape ({self.popsize},), got {raw.shape}")
        n_nan = int((~np.isfinite(raw)).sum())
        self.nan_count += n_nan
        worst = failures_as_worst(raw)
        if self.l2_coeff > 0:
            penalty = l2_penalty(self._mean_squares(), self.l2_coeff)
        else:
            penalty = np.zeros(self.popsize)
        total = worst + penalty
        self._track_best(worst)
        sigma_used = self.sigma
        shaped = self._tell(total)
        self.last = {
            "generation": self.generation,
            "raw": raw,
            "penalty": penalty,
            "fitness": total,
            "shaped": shaped,
            "nan_count": n_nan,
            "sigma": sigma_used,
        }
        self.generation += 1
        self._keys = None
        self._cached_sampler = None
        return self.last

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-identically: nested dict of arrays, scalars, strings.

        Only between generations (before :meth:`ask` or after :meth:`tell`): a half-evaluated
        generation is re-asked after a restart.
        """
        if self._keys is not None:
            raise RuntimeError(
                "state_dict() is taken between generations: call tell() for generation "
                f"{self.generation} first"
            )
        return {
            "strategy": self.name,
            "version": STATE_VERSION,
            "n_params": self.n_params,
            "popsize": self.popsize,
            "seed": self.seed,
            "generation": self.generation,
            "nan_count": self.nan_count,
            "best_fitness": float(self.best_fitness),
            "best_params": self._best_params.copy(),
            "strategy_state": self._state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` into a strategy built with the same constructor arguments."""
        expected = {
            "strategy": self.name,
            "version": STATE_VERSION,
            "n_params": self.n_params,
            "popsize": self.popsize,
            "seed": self.seed,
        }
        for field, value in expected.items():
            got = state.get(field)
            got = got.decode() if isinstance(got, bytes) else got
            if got != value:
                raise ValueError(f"state_dict {field} must be {value!r}, got {got!r}")
        missing = [f for f in ("generation", "nan_count", "best_fitness", "best_params", "strategy_state") if f not in state]
        if missing:
            raise ValueError(f"state_dict lacks {', '.join(missing)}: not a whole {self.name} state")
        # Everything is read and checked before anything changes: a refused state leaves this
        # strategy as it was (the subclass's part checks its own, then swaps it in).
        generation = state_count(state, "generation")
        nan_count = state_count(state, "nan_count")
        best_fitness = scalar(state_field(state, "best_fitness"))
        if not (is_finite_real(best_fitness) or best_fitness == -np.inf):
            raise ValueError(f"state_dict best_fitness must be a finite number or -inf, got {best_fitness!r}")
        # NaN until a first candidate is told
        best_params = state_vector(state, "best_params", self.n_params, finite=False)
        self._load_state_dict(state["strategy_state"])
        self.generation = generation
        self.nan_count = nan_count
        self.best_fitness = float(best_fitness)
        self._best_params = best_params
        self.last = {}
        self._keys = None
        self._cached_sampler = None

    def _require_asked(self, what: str) -> None:
        if self._keys is None:
            raise RuntimeError(
                f"{what}() needs the candidates of generation {self.generation}: call ask() first"
            )

    def _track_best(self, raw: np.ndarray) -> None:
        i = int(np.argmax(raw))
        if raw[i] > self.best_fitness:
            self.best_fitness = float(raw[i])
            self._best_params = self.candidate_params(self._keys[i])

    def _mean_squares(self) -> np.ndarray:
        """``mean(params_i**2)`` of every candidate: (popsize,) float64."""
        sampler = self.sampler()
        return np.array([np.mean(np.square(sampler.params(k))) for k in self._keys])

    def _sign(self, index: int) -> int:
        return 1

    @abc.abstractmethod
    def _ask(self) -> None:
        """Prepare this generation's candidates (keys are built by :meth:`ask`)."""

    @abc.abstractmethod
    def _sampler(self) -> Sampler:
        """The sampler of the current (asked) generation."""

    @abc.abstractmethod
    def _tell(self, fitness: np.ndarray) -> np.ndarray:
        """Update from (popsize,) fitness (maximised, finite or -inf); return the shaped values."""

    @abc.abstractmethod
    def _state_dict(self) -> dict[str, Any]:
        """The subclass's part of the state."""

    @abc.abstractmethod
    def _load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the subclass's part of the state."""
