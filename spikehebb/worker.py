"""The fitness of lifetimes: what a worker computes, wherever it runs.

A :class:`Worker` owns one :class:`~spikehebb.rollout.Rollout` (one agent of B slots, its envs)
for its whole life. It receives candidates as ES keys plus the generation's sampler
(:mod:`spikehebb.es`), never as parameter vectors, turns each into the parts its agent needs
through the run's :class:`~spikehebb.genome.GenomeMap` (and draws the parts that are not
searched, a Hebbian network's random initial weights, from the lifetime's seed), and runs the
lifetimes. A candidate's lifetime is seeded from (run seed, generation, candidate index,
variant), so it gets the same initial weights and env starts whichever worker runs it and
whatever else is in its batch: results do not depend on the evaluator, the number of workers or
the batch size (the tests check it bit for bit).

Fitness: a training candidate's is the mean over the task's training variants of one lifetime's
summed fitness term each (the ant: the progress term; the car: the env reward); a test
(:meth:`Worker.evaluate_params`) scores one vector over numbered evaluation lifetimes.
Where workers run is :mod:`spikehebb.evaluators`' job.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Callable, Sequence

import numpy as np

from spikehebb.agents import agent_class, genome_parts
from spikehebb.checks import check_episodes
from spikehebb.config import WorkerSpec
from spikehebb.es.candidates import NOISE_STREAM, normal_stream
from spikehebb.genome import GenomeMap
from spikehebb.rollout import BatchResult, Lifetime, Rollout, StepHook

#: Spawn-key tag separating evaluation lifetimes from training ones.
EVALUATION_TAG = 2**31 - 1


def lifetime_seeds(seed: int, *path: int) -> tuple[np.random.Generator, int]:
    """(generator for the initial weights, env reset seed) of the lifetime at ``path``."""
    seq = np.random.SeedSequence([seed, *path])
    weights_seq, env_seq = seq.spawn(2)
    return np.random.default_rng(weights_seq), int(env_seq.generate_state(1)[0])


def random_streams_digest() -> str:
    """A digest of what this process's NumPy draws for fixed seeds: the ES noise streams
    (Philox normals), the weights' and the env seeds' streams (PCG64 uniforms, normals,
    SeedSequence words). Processes whose digests differ would expand the same candidate key into
    different vectors (``tell`` would credit noise no worker ran) or draw other initial weights."""
    rng = np.random.default_rng(np.random.SeedSequence(0, spawn_key=(1,)))
    draws = [
        normal_stream(0, (NOISE_STREAM, 0, 0), 64),
        rng.uniform(-1.0, 1.0, 16), rng.normal(0.0, 0.1, 16), rng.standard_normal(16),
        np.random.SeedSequence(0, spawn_key=(2,)).generate_state(4).astype(np.float64),
    ]
    return hashlib.sha256(b"".join(d.tobytes() for d in draws)).hexdigest()[:16]


class Worker:
    """Runs lifetimes for candidates; one per process, built once.

    spec: the task and agent configs, the batch size and the run seed; full_length: test
    lifetimes of the task's own length whatever the training length (assessments).
    """

    def __init__(self, spec: WorkerSpec, full_length: bool = False, env_kwargs: dict | None = None):
        self.spec = spec
        self.task = spec.make_task(full_length)
        self.parts = genome_parts(spec.agent, self.task)
        self.genome = GenomeMap.of(self.parts)
        self._agent_class = agent_class(spec.agent)
        self.rollout = Rollout(self.task, spec.agent, spec.batch_size, env_kwargs=env_kwargs)
        self.counter = None
        """The evaluator's shared lifetime counter (a ``multiprocessing.Value``), set in worker processes."""

    def set_heartbeat(self, beat: Callable[[], None] | None) -> None:
        """Have ``beat()`` called each time one of this worker's lifetimes ends (None: nothing).
        A worker process's sign of progress: its evaluator takes a busy worker that goes
        ``stall_timeout`` seconds without one for hung (:class:`~spikehebb.evaluators.ProcessEvaluator`)."""
        self.rollout.on_lifetime_end = beat

    def random_streams_digest(self) -> str:
        """:func:`random_streams_digest` in this worker's process (an evaluator on other machines
        compares it with its own)."""
        return random_streams_digest()

    def lifetimes(
        self,
        params: np.ndarray,
        variant: str,
        seed_paths: Sequence[tuple[int, ...]],
        on_step: StepHook | None = None,
    ) -> tuple[np.ndarray, int]:
        """Fitness ``(n,)`` of n lifetimes on ``variant`` and the env steps they took
        (:meth:`run_lifetimes`' numbers, less each lifetime's network steps)."""
        result = self.run_lifetimes(params, variant, seed_paths, on_step)
        return result.fitness, result.env_steps

    def run_lifetimes(self, params: np.ndarray, variant: str, seed_paths: Sequence[tuple[int, ...]],
                      on_step: StepHook | None = None) -> BatchResult:
        """n lifetimes on ``variant``: their fitness ``(n,)``, network steps ``(n,)`` (a failed
        lifetime's: the 1-based step at which it failed) and env steps (:class:`~spikehebb.rollout.BatchResult`).

        params: ``(n, n_params)`` candidates (rows may repeat); seed_paths: n tuples of ints
        seeding each lifetime's drawn parts and env (see :func:`lifetime_seeds`).
        """
        params = np.asarray(params)
        if params.ndim != 2 or len(params) != len(seed_paths):
            raise ValueError(f"params must be (n, n_params) with one row per seed path ({len(seed_paths)}), got "
                             f"{params.shape}")
        seeds = [lifetime_seeds(self.spec.seed, *p) for p in seed_paths]
        return self.rollout.run(variant, lambda i: self.lifetime_parts(params[i], seeds[i][0]),
                                [s for _, s in seeds], on_step)

    def lifetime_parts(self, params: np.ndarray, rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
        """One lifetime's parts, per part per layer ``(1, *shape)``: the searched ones from
        ``params`` ``(n_params,)``, the others drawn from ``rng`` (the lifetime's generator)."""
        parts = self.genome.split(params)
        for part in self.parts:
            if not part.searched:
                parts[part.name] = self._agent_class.draw_part(self.spec.agent, self.task.sizes, part.name, rng)
        return parts

    def initial_weights(self, params: np.ndarray, seed_path: tuple[int, ...]) -> list[np.ndarray]:
        """The initial weights, per layer ``(n_pre, n_post)``, of the lifetime at ``seed_path``."""
        parts = self.lifetime_parts(np.asarray(params), lifetime_seeds(self.spec.seed, *seed_path)[0])
        return [w[0] for w in parts["weights"]]

    def evaluate(self, sampler, keys: Sequence) -> tuple[np.ndarray, int]:
        """Training fitness of candidates given as ES keys: the mean over the task's training
        variants. Returns (fitness ``(len(keys),)``, env steps)."""
        items = iter(range(len(keys) * len(self.task.train_variants)))
        done, env_steps = self.train_lifetimes(sampler, keys, lambda: next(items, None))
        return mean_over_variants(done, len(keys), len(self.task.train_variants)), env_steps

    def evaluate_claims(self, sampler, keys: Sequence) -> tuple[dict, int]:
        """The training lifetimes this worker claims from the evaluator's shared counter
        (``self.counter``, one per generation) until none is left: ({(candidate, variant):
        fitness}, env steps). Workers that share the counter share the generation's work, so
        none idles while another still has lifetimes queued."""
        counter, n_items = self.counter, len(keys) * len(self.task.train_variants)

        def claim():
            with counter.get_lock():  # a plain Lock: read and write the raw value inside it
                raw = counter.get_obj()
                i = raw.value
                raw.value = i + 1
            return i if i < n_items else None

        return self.train_lifetimes(sampler, keys, claim)

    def evaluate_items(self, sampler, keys: Sequence, items: Sequence[int]) -> tuple[dict, int]:
        """The training lifetimes numbered ``items`` (candidate-major: item = candidate *
        n_variants + variant): ({(candidate, variant): fitness}, env steps)."""
        queue = iter(items)
        return self.train_lifetimes(sampler, keys, lambda: next(queue, None))

    def train_lifetimes(self, sampler, keys: Sequence, claim) -> tuple[dict, int]:
        """Training lifetimes as ``claim()`` hands out their numbers (None: no more): item i is
        candidate ``i // n_variants`` on training variant ``i % n_variants``, seeded by (run seed,
        generation, candidate index, variant). Returns ({(candidate, variant): fitness}, env steps)."""
        variants = self.task.train_variants
        # The last claimed candidate's vector: the next claim is often its next variant. Only
        # that one is kept (with shared claims a candidate's other variant often goes to another
        # worker, and every vector kept for it stayed until the generation ended: ~0.5 MB each on
        # the ant); an older one is expanded again from its key if it comes back.
        last: list = [None, None]

        def next_lifetime():
            i = claim()
            if i is None:
                return None
            c, v = divmod(int(i), len(variants))
            key = keys[c]
            if last[0] != c:
                last[:] = [c, sampler.params(key)]
            return self.training_lifetime(key, c, v, last[1])

        done, env_steps = self.rollout.run_queue(next_lifetime)
        floor = self.spec.task.fitness_floor  # `fitness < floor` is False for NaN: a failed lifetime stays NaN
        return {item: floor if floor is not None and fitness < floor else fitness
                for item, (fitness, _) in done.items()}, env_steps

    def training_lifetime(self, key, c: int, v: int, vector: np.ndarray) -> Lifetime:
        """Candidate ``c`` (ES key ``key``, parameters ``vector``) on training variant ``v``."""
        index = key.index // 2 if self.spec.paired_seeds else key.index  # common random numbers per pair
        rng, env_seed = lifetime_seeds(self.spec.seed, key.generation, index, v)
        return Lifetime((c, v), self.task.train_variants[v], lambda: self.lifetime_parts(vector, rng), env_seed)

    def evaluate_params(self, params: np.ndarray, variant: str, episodes: Sequence[int]) -> tuple[np.ndarray, int]:
        """Fitness ``(len(episodes),)`` of one parameter vector over the given episode numbers on
        ``variant``, and the env steps they took (:meth:`test_lifetimes`' numbers)."""
        result = self.test_lifetimes(params, variant, episodes)
        return result.fitness, result.env_steps

    def test_lifetimes(self, params: np.ndarray, variant: str, episodes: Sequence[int]) -> BatchResult:
        """The evaluation lifetimes numbered ``episodes`` of one parameter vector ``(n_params,)``
        on ``variant``, each seeded by (run seed, :data:`EVALUATION_TAG`, episode, variant index):
        fitness and network steps per episode, env steps (:meth:`run_lifetimes`)."""
        v = self.task.variants.index(self.task.check_variants([variant])[0])
        episodes = check_episodes(episodes)
        paths = [(EVALUATION_TAG, e, v) for e in episodes]
        return self.run_lifetimes(np.repeat(np.asarray(params)[None], len(episodes), axis=0), variant, paths)

    def close(self) -> None:
        self.rollout.close()


def mean_over_variants(done: dict, n: int, n_variants: int) -> np.ndarray:
    """Training fitness ``(n,)`` from ``{(candidate, variant): fitness}``: the sum over the
    variants in their order, divided by their number."""
    total = np.zeros(n)
    for v in range(n_variants):
        total += np.array([done[(c, v)] for c in range(n)])
    return total / n_variants


class CrashOnceWorker(Worker):
    """Test aid: a :class:`Worker` whose process dies (``os._exit(1)``, no clean-up, as a segfault
    or an OOM kill would leave it) when it is handed the candidate ``crash_on = (generation,
    index)``, only the first time if ``marker`` is a path (created atomically, so a replacement
    process runs the candidate normally), every time if ``marker`` is None. It dies when it
    starts one of that candidate's lifetimes; with ``crash_in_build``, in its build instead.

    Use it as ``worker_factory=functools.partial(CrashOnceWorker, crash_on=(0, 5), marker=path)``.
    """

    def __init__(self, spec: WorkerSpec, crash_on: tuple[int, int] | None, marker: str | os.PathLike | None,
                 holding_counter: bool = False, crash_in_build: bool = False):
        if crash_in_build and _first_time(marker):
            os._exit(1)
        super().__init__(spec)
        self.crash_on = None if crash_on is None else tuple(crash_on)
        self.marker = marker
        self.holding_counter = holding_counter  # die with the shared counter's lock held (inside a claim)

    def training_lifetime(self, key, c: int, v: int, vector: np.ndarray) -> Lifetime:
        if (key.generation, key.index) == self.crash_on and self._first_time():
            if self.holding_counter and self.counter is not None:
                self.counter.get_lock().acquire()
            os._exit(1)
        return super().training_lifetime(key, c, v, vector)

    def _first_time(self) -> bool:
        return _first_time(self.marker)


def _first_time(marker: str | os.PathLike | None) -> bool:
    """True the first time for a path (created atomically, so only one process ever gets True),
    always for None."""
    if marker is None:
        return True
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


class HangingWorker(Worker):
    """Test aid: a :class:`Worker` whose process stays alive but stops making progress, as one
    stuck on a lock or in a C library that never returns would (it sleeps ``hang_s`` seconds).

    - ``hang_on = (generation, index)``: it hangs when it starts a lifetime of that candidate;
    - ``hang_in_build``: it hangs in its build, before it builds anything;
    - either only the first time if ``marker`` is a path (created atomically, so a replacement
      process goes on normally), every time if ``marker`` is None;
    - ``slow_s``: it sleeps that long before it starts each training lifetime (slow, but it
      finishes lifetimes: it makes progress).

    Use it as ``worker_factory=functools.partial(HangingWorker, hang_on=(0, 5), marker=path)``.
    """

    def __init__(
        self,
        spec: WorkerSpec,
        hang_on: tuple[int, int] | None = None,
        marker: str | os.PathLike | None = None,
        hang_in_build: bool = False,
        hang_s: float = 3600.0,
        slow_s: float = 0.0,
    ):
        if hang_in_build and _first_time(marker):
            time.sleep(hang_s)
        super().__init__(spec)
        self.hang_on = None if hang_on is None else tuple(hang_on)
        self.marker, self.hang_s, self.slow_s = marker, hang_s, slow_s

    def training_lifetime(self, key, c: int, v: int, vector: np.ndarray) -> Lifetime:
        if (key.generation, key.index) == self.hang_on and _first_time(self.marker):
            time.sleep(self.hang_s)
        if self.slow_s:
            time.sleep(self.slow_s)
        return super().training_lifetime(key, c, v, vector)




class FaultyWorker(Worker):
    """Test aid: a :class:`Worker` that misbehaves on cue, as a bug or a hung lifetime would.

    - Its build raises ``RuntimeError("built while ...")`` while the file ``fail_build_while`` exists.
    - It raises ``ValueError`` when it starts a lifetime of candidate ``raise_on = (generation,
      index)``.
    - It sleeps up to ``stall_s`` seconds (until the file ``stall_while`` is gone) when it starts
      a lifetime of candidate ``stall_on``, as a chunk still running would.
    - It reports ``streams_digest`` as its :func:`random_streams_digest`, as a process with
      another NumPy would.

    Use it as ``worker_factory=functools.partial(FaultyWorker, raise_on=(0, 0))``.
    """

    def __init__(
        self,
        spec: WorkerSpec,
        fail_build_while: str | os.PathLike | None = None,
        raise_on: tuple[int, int] | None = None,
        stall_on: tuple[int, int] | None = None,
        stall_while: str | os.PathLike | None = None,
        stall_s: float = 60.0,
        streams_digest: str | None = None,
    ):
        if fail_build_while is not None and os.path.exists(fail_build_while):
            raise RuntimeError(f"built while {fail_build_while} exists")
        super().__init__(spec)
        self.raise_on = None if raise_on is None else tuple(raise_on)
        self.stall_on = None if stall_on is None else tuple(stall_on)
        self.stall_while, self.stall_s = stall_while, stall_s
        self.streams_digest = streams_digest

    def random_streams_digest(self) -> str:
        return super().random_streams_digest() if self.streams_digest is None else self.streams_digest

    def training_lifetime(self, key, c: int, v: int, vector: np.ndarray) -> Lifetime:
        candidate = (key.generation, key.index)
        if candidate == self.raise_on:
            raise ValueError(f"candidate {candidate} raises")
        if candidate == self.stall_on:
            deadline = time.monotonic() + self.stall_s
            while os.path.exists(self.stall_while) and time.monotonic() < deadline:
                time.sleep(0.05)
        return super().training_lifetime(key, c, v, vector)
