"""Compact candidates: keys, and the picklable samplers that expand them into parameter vectors.

A candidate travels between processes as a :class:`CandidateKey` (three small ints, 68 bytes
pickled), never as its parameter vector. A worker expands keys with the generation's *sampler*: a
small frozen object it receives once per generation (the strategy's :meth:`sampler`).

- :class:`NoiseSampler` (OpenAI-ES): holds ``mean`` and ``sigma`` and rebuilds each candidate from
  a counter-based noise stream, ``params = mean + sign * sigma * eps``, where ``eps`` comes from
  ``Philox`` keyed by ``SeedSequence(seed, spawn_key=(generation, stream))``. Shipping it costs one
  vector per worker per generation (3.7 MB at 456,640 coefficients), independent of the population.
- :class:`DiagonalSampler` (separable CMA-ES): cma draws its standard normals through our
  ``randn``, which takes row r of draw c in generation g from the stream (seed, g, c, r); the
  sampler holds cma's mean, sigma and diagonal scaling and rebuilds a candidate with cma's own
  expression; the two mean-shift candidates of cma's TPA step-size rule travel verbatim. Compact
  too: four vectors per generation, independent of the population.
- :class:`PopulationSampler` (full CMA-ES, small problems; also the fallback if a cma version
  ever samples differently): holds the vectors, ``(popsize, n_params)``, and a key's ``index``
  picks a row. Not compact: with a process pool send each worker only its rows (:meth:`subset`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

NOISE_STREAM = 0
"""First spawn-key entry of every OpenAI-ES noise stream."""
CMA_STREAM = 2
"""First spawn-key entry of every CMA-ES sample row (entry 1 is the initial mean's stream)."""


class CandidateKey(NamedTuple):
    """What identifies one candidate of one generation.

    generation: the strategy's generation counter when the candidate was asked.
    index: position in the population, 0 .. popsize - 1 (fitness is told in this order).
    sign: +1 or -1, the member of an antithetic pair (even index +1, odd index -1); +1 if unpaired.
    """

    generation: int
    index: int
    sign: int


def normal_stream(seed: int, spawn_key: tuple[int, ...], n: int) -> np.ndarray:
    """Standard normals of one stream: (n,) float64, identical in every process.

    ``Philox`` is counter-based and seeded through ``SeedSequence(seed, spawn_key)``: the vector
    depends only on (seed, spawn_key), never on what was drawn before, so any process can rebuild
    any candidate in any order.
    """
    seq = np.random.SeedSequence(seed, spawn_key=spawn_key)
    return np.random.Generator(np.random.Philox(seq)).standard_normal(n)


def noise_vector(seed: int, generation: int, stream: int, n_params: int) -> np.ndarray:
    """OpenAI-ES noise eps of one pair (antithetic) or candidate: (n_params,) float64."""
    return normal_stream(seed, (NOISE_STREAM, generation, stream), n_params)


def cma_row(seed: int, generation: int, call: int, row: int, n_params: int) -> np.ndarray:
    """Row ``row`` of the ``call``-th draw cma made in ``generation``: (n_params,) float64."""
    return normal_stream(seed, (CMA_STREAM, generation, call, row), n_params)


def _readonly(array: np.ndarray, dtype=np.float64) -> np.ndarray:
    """A read-only copy (as ``dtype``; None: the array's own, e.g. a rule assignment's ints): a
    sampler's arrays cannot be written, and what a caller does to them (even after
    ``setflags(write=True)``) cannot reach the strategy's own."""
    out = np.array(array, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


def _check_generation(key: CandidateKey, generation: int, popsize: int) -> None:
    if key.generation != generation:
        raise ValueError(
            f"key is from generation {key.generation}, this sampler expands generation {generation}"
        )
    if not 0 <= key.index < popsize:
        raise ValueError(f"key index must be in [0, {popsize}), got {key.index}")


@dataclass(frozen=True, eq=False)
class NoiseSampler:
    """Expands OpenAI-ES keys of one generation: ``params = mean + sign * sigma * eps(stream)``.

    seed: the strategy's run seed. generation: which generation's keys this expands.
    mean: (n_params,) float64, read-only. sigma: noise scale of this generation.
    antithetic: pairs share a stream (``stream = index // 2``); otherwise ``stream = index``.
    popsize: population size, to reject keys that do not belong to it.
    """

    seed: int
    generation: int
    mean: np.ndarray
    sigma: float
    antithetic: bool
    popsize: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", _readonly(self.mean))

    @property
    def n_params(self) -> int:
        return self.mean.size

    def stream(self, key: CandidateKey) -> int:
        """Noise stream of a key, after checking that its sign matches its index."""
        _check_generation(key, self.generation, self.popsize)
        expected = (1 if key.index % 2 == 0 else -1) if self.antithetic else 1
        if key.sign != expected:
            raise ValueError(f"key {tuple(key)} must have sign {expected} for index {key.index}")
        return key.index // 2 if self.antithetic else key.index

    def noise(self, key: CandidateKey) -> np.ndarray:
        """eps of the key's stream, before the sign: (n_params,) float64."""
        return noise_vector(self.seed, self.generation, self.stream(key), self.n_params)

    def params(self, key: CandidateKey) -> np.ndarray:
        """The candidate's parameter vector: (n_params,) float64, a fresh writable array."""
        eps = self.noise(key)
        return self.mean + (key.sign * self.sigma) * eps


@dataclass(frozen=True, eq=False)
class DiagonalSampler:
    """Expands separable CMA-ES keys: ``params = mean + sigma * (scaling * z)``, or a held row.

    cma puts injected solutions first: with its default step-size rule for separable CMA (TPA,
    two-point adaptation) the first two candidates are a mean-shift pair it builds itself; those
    rows are held as vectors. Candidate ``i >= len(held)`` is rebuilt from ``z``, row
    ``i - len(held)`` of the draw cma made through our ``randn`` (:func:`cma_row`), with cma's own
    expression (``ask_geno``: ``xmean + sigma * (sigma_vec * arz)``), so it is bit-identical to the
    vector cma returned; :class:`~spikehebb.es.cma_es.CMAES` checks that for every candidate before
    it hands this sampler out.

    seed, generation, call: which draw. mean: (n_params,) float64, read-only.
    sigma: cma's step size. scaling: (n_params,) float64 per-coordinate scale (cma's
    ``sigma_vec.scaling``), or None while it is the identity.
    held: (n_held, n_params) float64, read-only: candidates 0 .. n_held - 1, verbatim.
    popsize: population size.
    """

    seed: int
    generation: int
    call: int
    mean: np.ndarray
    sigma: float
    scaling: np.ndarray | None
    held: np.ndarray
    popsize: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", _readonly(self.mean))
        object.__setattr__(self, "held", _readonly(self.held).reshape(-1, self.mean.size))
        if self.scaling is not None:
            object.__setattr__(self, "scaling", _readonly(self.scaling))

    @property
    def n_params(self) -> int:
        return self.mean.size

    def params(self, key: CandidateKey) -> np.ndarray:
        """The candidate's parameter vector: (n_params,) float64, a fresh writable array."""
        _check_generation(key, self.generation, self.popsize)
        if key.sign != 1:
            raise ValueError(f"key {tuple(key)} must have sign 1: CMA-ES candidates are unpaired")
        n_held = self.held.shape[0]
        if key.index < n_held:
            return self.held[key.index].copy()
        z = cma_row(self.seed, self.generation, self.call, key.index - n_held, self.n_params)
        return self.mean + self.sigma * (z if self.scaling is None else self.scaling * z)


@dataclass(frozen=True, eq=False)
class PopulationSampler:
    """Expands keys by looking them up in an explicit population (CMA-ES).

    generation: which generation's keys this expands.
    population: (n_rows, n_params) float64, read-only; row ``r`` is candidate ``indices[r]``.
    indices: (n_rows,) int, population positions held (all of them unless built by :meth:`subset`).
    popsize: population size.
    """

    generation: int
    population: np.ndarray
    indices: tuple[int, ...]
    popsize: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "population", _readonly(self.population))
        object.__setattr__(self, "indices", tuple(int(i) for i in self.indices))
        if self.population.ndim != 2 or self.population.shape[0] != len(self.indices):
            raise ValueError(
                f"population must be ({len(self.indices)}, n_params), got {self.population.shape}"
            )

    @property
    def n_params(self) -> int:
        return self.population.shape[1]

    def subset(self, keys: list[CandidateKey]) -> "PopulationSampler":
        """A sampler holding only the rows of ``keys``: what one worker needs."""
        rows = [self._row(k) for k in keys]
        return PopulationSampler(
            self.generation, self.population[rows], tuple(self.indices[r] for r in rows), self.popsize
        )

    def _row(self, key: CandidateKey) -> int:
        _check_generation(key, self.generation, self.popsize)
        if key.sign != 1:
            raise ValueError(f"key {tuple(key)} must have sign 1: CMA-ES candidates are unpaired")
        try:
            return self.indices.index(key.index)
        except ValueError:
            raise ValueError(f"this sampler does not hold candidate {key.index}") from None

    def params(self, key: CandidateKey) -> np.ndarray:
        """The candidate's parameter vector: (n_params,) float64, a fresh writable array."""
        return self.population[self._row(key)].copy()


def expand(
    sampler: NoiseSampler | DiagonalSampler | PopulationSampler, keys: list[CandidateKey]
) -> list[np.ndarray]:
    """Parameter vectors of ``keys``, in order: the body of a worker's job, picklable by reference."""
    return [sampler.params(key) for key in keys]
