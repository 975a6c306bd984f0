"""Where rollouts run: in the calling process, a pool of local processes, or Ray actors.

Every backend runs the same :class:`Worker`: it owns one :class:`~spikehebb.rollout.Rollout`
(one compiled batched network, its envs) for its whole life and receives candidates as keys
plus the generation's sampler (:mod:`spikehebb.es`), never as parameter vectors. A candidate's
lifetime is seeded from (run seed, generation, candidate index, variant), so a candidate gets the
same initial weights and env starts whichever worker runs it and whatever else is in its batch:
results do not depend on the number of workers.

- :class:`SerialEvaluator`: one worker in the calling process.
- :class:`ProcessEvaluator` (default): one persistent worker process per core (spawned, so each
  builds its own Brian2 network); a worker that dies is replaced and its candidates evaluated
  again.
- :class:`RayEvaluator`: the same workers as Ray actors, on a local Ray instance or a cluster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from spikehebb.network import sample_weights
from spikehebb.params import ParamLayout
from spikehebb.rollout import Rollout, StepHook
from spikehebb.tasks import Task, get_task

#: Spawn-key tag separating evaluation lifetimes from training ones.
EVALUATION_TAG = 2**31 - 1


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs to build itself (picklable)."""

    task: str = "ant"
    task_overrides: dict[str, Any] = field(default_factory=dict)
    """Fields replaced in the registered task, e.g. ``{"train_variants": ("default",),
    "rules": {"max_env_steps": 200}}``."""
    rule: str | None = "ABCD_lr"
    """None for the static-weights baseline."""
    mode: str = "hebbian"
    """"hebbian", "coevolve" (initial weights evolved too) or "static"."""
    batch_size: int = 32
    backend: str = "brian2"
    dtype: str = "float32"
    weight_init: str = "uniform"
    weight_scale: float = 0.1
    """U[-0.1, 0.1] in Najarro & Risi 2020."""
    seed: int = 0

    def make_task(self) -> Task:
        return get_task(self.task, **self.task_overrides)

    def layout(self, task: Task | None = None) -> ParamLayout:
        task = task or self.make_task()
        return ParamLayout.for_network(task.sizes, self.rule, self.mode)


def lifetime_seeds(seed: int, *path: int) -> tuple[np.random.Generator, int]:
    """(generator for the initial weights, env reset seed) of the lifetime at ``path``."""
    seq = np.random.SeedSequence([seed, *path])
    weights_seq, env_seq = seq.spawn(2)
    return np.random.default_rng(weights_seq), int(env_seq.generate_state(1)[0])


class Worker:
    """Runs lifetimes for candidates; one per process, built once."""

    def __init__(self, spec: WorkerSpec):
        self.spec = spec
        self.task = spec.make_task()
        self.layout = spec.layout(self.task)
        self.rollout = Rollout(self.task, spec.rule, spec.batch_size, backend=spec.backend, dtype=spec.dtype)

    def lifetimes(
        self,
        params: np.ndarray,
        variant: str,
        seed_paths: Sequence[tuple[int, ...]],
        on_step: StepHook | None = None,
    ) -> tuple[np.ndarray, int]:
        """Fitness ``(n,)`` of n lifetimes on ``variant`` and the env steps they took.

        params: ``(n, n_params)`` candidates (rows may repeat); seed_paths: n tuples of ints
        seeding each lifetime's initial weights and env (see :func:`lifetime_seeds`).
        """
        params = np.asarray(params)
        fitness, env_steps = np.empty(len(params)), 0
        B = self.rollout.batch_size
        for start in range(0, len(params), B):
            chunk = params[start : start + B]
            parts = self.layout.split(chunk)
            seeds = [lifetime_seeds(self.spec.seed, *p) for p in seed_paths[start : start + B]]
            if "weights" in parts:
                weights = parts["weights"]
            else:
                draws = [sample_weights(self.task.sizes, 1, self.spec.weight_init, self.spec.weight_scale, rng) for rng, _ in seeds]
                weights = [np.concatenate(layer) for layer in zip(*draws)]
            result = self.rollout.run(variant, parts.get("coefficients"), weights, [s for _, s in seeds], on_step)
            fitness[start : start + len(chunk)] = result.fitness
            env_steps += result.env_steps
        return fitness, env_steps

    def evaluate(self, sampler, keys: Sequence) -> tuple[np.ndarray, int]:
        """Training fitness of candidates given as ES keys: the mean over the task's training
        variants. Returns (fitness ``(len(keys),)``, env steps)."""
        params = np.stack([sampler.params(k) for k in keys])
        total, env_steps = np.zeros(len(keys)), 0
        for v, variant in enumerate(self.task.train_variants):
            paths = [(k.generation, k.index, v) for k in keys]
            fitness, steps = self.lifetimes(params, variant, paths)
            total += fitness
            env_steps += steps
        return total / len(self.task.train_variants), env_steps

    def evaluate_params(self, params: np.ndarray, variant: str, episodes: Sequence[int]) -> tuple[np.ndarray, int]:
        """Fitness of one parameter vector over the given episode numbers on ``variant``."""
        v = self.task.variants.index(variant)
        paths = [(EVALUATION_TAG, e, v) for e in episodes]
        return self.lifetimes(np.repeat(np.asarray(params)[None], len(episodes), axis=0), variant, paths)

    def close(self) -> None:
        self.rollout.close()


def split_evenly(items: Sequence, n_chunks: int) -> list[list]:
    """Consecutive chunks of near-equal size (no empty chunk)."""
    n_chunks = max(1, min(n_chunks, len(items)))
    size = math.ceil(len(items) / n_chunks)
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class SerialEvaluator:
    """One worker in the calling process."""

    name = "serial"

    def __init__(self, spec: WorkerSpec, workers: int = 1):
        self.spec = spec
        self.workers = 1
        self._worker = Worker(spec)

    def evaluate(self, sampler, keys: Sequence) -> tuple[np.ndarray, int]:
        return self._worker.evaluate(sampler, keys)

    def close(self) -> None:
        self._worker.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def worker_batch_size(popsize: int, workers: int, limit: int = 64) -> int:
    """Batch size giving each worker one batch per generation where it fits under ``limit``."""
    return max(1, min(limit, math.ceil(popsize / max(1, workers))))


