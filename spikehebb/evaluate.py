"""Where rollouts run: in the calling process, a pool of local processes, or Ray actors.

Every backend runs the same :class:`Worker`: it owns one :class:`~spikehebb.rollout.Rollout`
(one compiled batched network, its envs) for its whole life and receives candidates as keys
plus the generation's sampler (:mod:`spikehebb.es`), never as parameter vectors. A candidate's
lifetime is seeded from (run seed, generation, candidate index, variant), so a candidate gets the
same initial weights and env starts whichever worker runs it and whatever else is in its batch:
results do not depend on the backend or the number of workers (the tests check it bit for bit).

- :class:`SerialEvaluator`: one worker in the calling process.
- :class:`ProcessEvaluator` (default): one persistent worker process per core (spawned, so each
  builds its own Brian2 network); a worker that dies is replaced and its candidates evaluated
  again.
- :class:`RayEvaluator`: the same workers as Ray actors, on a local Ray instance or a cluster.

``make_evaluator(name, spec, workers, address)`` builds one by name. All are context managers
with ``evaluate(sampler, keys) -> (fitness (n,), env_steps)``,
``evaluate_params(params, variant, episodes)`` and ``close()``; open evaluators are closed at
interpreter exit, and worker processes exit on their own when the parent's pipe closes, so no
worker outlives its run.

Work is split into one chunk of consecutive keys per worker per generation
(:func:`split_evenly`); :func:`worker_batch_size` sizes ``WorkerSpec.batch_size`` so that a chunk
is one lockstep batch where it fits.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import multiprocessing
import os
import signal
import traceback
import warnings
import weakref
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any, Callable, Sequence

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
        return ParamLayout.for_network(task.sizes, self.rule, self.mode, extra=task.param_parts())


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
                draws = [self._draw_weights(rng) for rng, _ in seeds]
                weights = [np.concatenate(layer) for layer in zip(*draws)]
            result = self.rollout.run(
                variant, parts.get("coefficients"), weights, [s for _, s in seeds], on_step,
                encoder_params=parts.get("encoder"),
            )
            fitness[start : start + len(chunk)] = result.fitness
            env_steps += result.env_steps
        return fitness, env_steps

    def _draw_weights(self, rng: np.random.Generator) -> list[np.ndarray]:
        return sample_weights(self.task.sizes, 1, self.spec.weight_init, self.spec.weight_scale, rng)

    def initial_weights(self, params: np.ndarray, seed_path: tuple[int, ...]) -> list[np.ndarray]:
        """The initial weights, per layer ``(n_pre, n_post)``, of the lifetime at ``seed_path``."""
        parts = self.layout.split(np.asarray(params)[None])
        if "weights" in parts:
            return [w[0] for w in parts["weights"]]
        return [w[0] for w in self._draw_weights(lifetime_seeds(self.spec.seed, *seed_path)[0])]

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
        v = self.task.variants.index(self.task.check_variants([variant])[0])
        paths = [(EVALUATION_TAG, e, v) for e in episodes]
        return self.lifetimes(np.repeat(np.asarray(params)[None], len(episodes), axis=0), variant, paths)

    def close(self) -> None:
        self.rollout.close()


def split_evenly(items: Sequence, n_chunks: int) -> list[list]:
    """Consecutive chunks of near-equal size (no empty chunk)."""
    n_chunks = max(1, min(n_chunks, len(items)))
    size = math.ceil(len(items) / n_chunks)
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class WorkerCrashError(RuntimeError):
    """Worker processes (or Ray actors) kept dying on the same candidates: the evaluator gave up."""


#: How many times in a row one chunk of candidates may kill its worker before the evaluator gives up.
MAX_WORKER_FAILURES = 3

#: ``factory(spec) -> Worker``: what a backend builds in each worker process (must be picklable).
WorkerFactory = Callable[[WorkerSpec], Worker]


class CrashOnceWorker(Worker):
    """Test aid: a :class:`Worker` whose process dies (``os._exit(1)``, no clean-up, as a segfault
    or an OOM kill would leave it) when it is handed the candidate ``crash_on = (generation,
    index)``, only the first time if ``marker`` is a path (created atomically, so a replacement
    process runs the candidate normally), every time if ``marker`` is None.

    Use it as ``worker_factory=functools.partial(CrashOnceWorker, crash_on=(0, 5), marker=path)``.
    """

    def __init__(self, spec: WorkerSpec, crash_on: tuple[int, int], marker: str | os.PathLike | None):
        super().__init__(spec)
        self.crash_on = tuple(crash_on)
        self.marker = marker

    def evaluate(self, sampler, keys: Sequence) -> tuple[np.ndarray, int]:
        if any((k.generation, k.index) == self.crash_on for k in keys) and self._first_time():
            os._exit(1)
        return super().evaluate(sampler, keys)

    def _first_time(self) -> bool:
        if self.marker is None:
            return True
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True


def _chunk_sampler(sampler, keys: list):
    """The part of the generation's sampler a worker needs for ``keys``: a
    :class:`~spikehebb.es.PopulationSampler` sends only their rows, compact samplers go whole."""
    subset = getattr(sampler, "subset", None)
    return subset(keys) if subset is not None else sampler


def _gather(results: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, int]:
    """Chunk results, in chunk order -> (fitness, env steps) of the whole call."""
    return np.concatenate([np.asarray(f, dtype=np.float64) for f, _ in results]), sum(int(s) for _, s in results)


class _Evaluator:
    """What every backend shares: splitting work into one chunk per worker, the two entry points,
    closing and context management. A backend implements ``_map(method, args)``: call
    ``Worker.<method>(*a)`` for each ``a`` in ``args`` somewhere, results in the order of ``args``."""

    name = ""

    def __init__(self, spec: WorkerSpec, workers: int):
        if not (isinstance(workers, (int, np.integer)) and workers >= 1):
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        self.spec = spec
        self.workers = int(workers)
        self._closed = False

    def evaluate(self, sampler, keys: Sequence) -> tuple[np.ndarray, int]:
        """Training fitness of candidates given as ES keys, and the env steps they took.

        sampler: the generation's sampler (``strategy.sampler()``); keys: its ``CandidateKey``s.
        Returns (fitness ``(len(keys),)`` float64 in the order of ``keys``, env steps), the same
        numbers whatever the backend and the number of workers.
        """
        keys = list(keys)
        if not keys:
            return np.empty(0), 0
        chunks = split_evenly(keys, self.workers)
        return _gather(self._run("evaluate", [(_chunk_sampler(sampler, c), c) for c in chunks]))

    def evaluate_params(self, params: np.ndarray, variant: str, episodes: Sequence[int]) -> tuple[np.ndarray, int]:
        """Fitness of one parameter vector ``(n_params,)`` over episode numbers on ``variant``
        (evaluation lifetimes, seeded by episode number), and the env steps they took."""
        episodes = [int(e) for e in episodes]
        if not episodes:
            return np.empty(0), 0
        params = np.asarray(params, dtype=np.float64)
        chunks = split_evenly(episodes, self.workers)
        return _gather(self._run("evaluate_params", [(params, variant, c) for c in chunks]))

    def _run(self, method: str, args: list[tuple]) -> list:
        if self._closed:
            raise RuntimeError(f"this {self.name} evaluator is closed")
        return self._map(method, args)

    def _map(self, method: str, args: list[tuple]) -> list:
        raise NotImplementedError

    def close(self) -> None:
        """Release the workers (once; later calls do nothing)."""
        if self._closed:
            return
        self._closed = True
        _OPEN.discard(self)
        self._release()

    def _release(self) -> None:
        """Backend part of :meth:`close`: stop the workers."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(workers={self.workers}, task={self.spec.task!r}, batch_size={self.spec.batch_size})"


class SerialEvaluator(_Evaluator):
    """One worker in the calling process (``workers`` is accepted and ignored)."""

    name = "serial"

    def __init__(self, spec: WorkerSpec, workers: int | None = 1, *, worker_factory: WorkerFactory = Worker):
        super().__init__(spec, 1)
        self._worker = worker_factory(spec)

    def _map(self, method, args):
        return [getattr(self._worker, method)(*a) for a in args]

    def _release(self) -> None:
        self._worker.close()


# ----------------------------------------------------------------------------------- processes
#: Evaluators still open, closed at interpreter exit so that no worker outlives the run.
_OPEN: "weakref.WeakSet[_Evaluator]" = weakref.WeakSet()


@atexit.register
def _close_open_evaluators() -> None:
    for evaluator in list(_OPEN):
        try:
            evaluator.close()
        except Exception:  # interpreter shutdown: close what can be closed, report nothing
            pass


def _serve(conn, spec: WorkerSpec, factory: WorkerFactory) -> None:
    """Body of a worker process: build the worker once, then answer ``(method, args)`` requests
    with ``("ok", result)`` or ``("error", exception, traceback)`` until ``None`` or the parent's
    end of the pipe closes."""
    # Ctrl-C reaches the whole process group; the parent decides what happens to its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        worker = factory(spec)
    except BaseException as err:
        _send_error(conn, err)
        return
    try:
        conn.send(("ready", os.getpid()))
        while True:
            try:
                request = conn.recv()
            except EOFError:  # the parent is gone
                break
            if request is None:
                break
            method, args = request
            try:
                result = getattr(worker, method)(*args)
            except Exception as err:
                _send_error(conn, err)
            else:
                conn.send(("ok", result))
    except (BrokenPipeError, ConnectionResetError):  # the parent went away mid-answer
        pass
    finally:
        worker.close()


def _send_error(conn, err: BaseException) -> None:
    tb = traceback.format_exc()
    try:
        conn.send(("error", err, tb))
    except Exception:  # the exception does not pickle: send its text
        conn.send(("error", RuntimeError(repr(err)), tb))


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is None:
        return "no exit code"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


#: Thread-pool sizes a worker process gets unless the environment sets them: one worker per core,
#: so BLAS/OpenMP threads would only compete with the other workers (threaded OpenBLAS slowed the
#: car's lifetimes ~3x on 2 cores, see experiments/run_car.py).
WORKER_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@contextlib.contextmanager
def one_thread_per_library():
    """Set :data:`WORKER_THREAD_ENV` (where unset) while a worker is spawned: the new interpreter
    reads it before it loads NumPy."""
    added = {k: v for k, v in WORKER_THREAD_ENV.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


@dataclass
class _Process:
    """One worker process and the parent's end of its pipe."""

    process: Any
    conn: Any
    pid: int | None = None


class ProcessEvaluator(_Evaluator):
    """A pool of persistent worker processes on this machine (the default backend).

    Each process is spawned once, builds its :class:`Worker` (compiled network, envs) once and
    keeps it for the evaluator's life; a generation is split into one chunk of keys per worker
    (:func:`split_evenly`) and only the sampler and the keys cross the pipe. Workers run with one
    BLAS/OpenMP thread each unless the environment says otherwise (:data:`WORKER_THREAD_ENV`).

    A worker that dies while it runs a chunk (segfault, OOM kill, ``os._exit``) is replaced by a
    fresh process and the chunk is run again; the chunks other workers finished are kept. If one
    chunk kills ``max_failures`` workers in a row the evaluator raises :class:`WorkerCrashError`.
    An exception raised inside a worker (bad keys, a bug) is re-raised here with the worker's
    traceback as a note.

    Arguments:
        spec: what each worker builds.
        workers: number of processes; None: ``os.cpu_count()``.
        worker_factory: ``factory(spec) -> Worker``, picklable (a module-level class or a
            ``functools.partial`` of one); :class:`Worker` by default.
        max_failures: deaths in a row of one chunk before giving up.
    """

    name = "processes"

    def __init__(
        self,
        spec: WorkerSpec,
        workers: int | None = None,
        *,
        worker_factory: WorkerFactory = Worker,
        max_failures: int = MAX_WORKER_FAILURES,
    ):
        super().__init__(spec, workers if workers is not None else os.cpu_count() or 1)
        self.max_failures = int(max_failures)
        self.restarts = 0
        """Worker processes replaced after they died."""
        self._factory = worker_factory
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: list[_Process | None] = [None] * self.workers
        _OPEN.add(self)
        try:
            self._start_missing()
        except BaseException:
            self.close()
            raise

    @property
    def pids(self) -> list[int | None]:
        """Process ids of the workers."""
        return [p.pid if p is not None else None for p in self._procs]

    # ------------------------------------------------------------------------ process life
    def _spawn(self) -> _Process:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=_serve, args=(child, self.spec, self._factory), name="spikehebb-worker", daemon=True
        )
        with one_thread_per_library():
            process.start()
        child.close()  # the child's end now lives only in the child: its death closes the pipe
        return _Process(process, parent)

    def _await_ready(self, proc: _Process) -> bool:
        """Wait until ``proc`` has built its worker: True, False if it died first; a build
        error raised inside the worker is raised here."""
        kind, payload = self._receive(proc)
        if kind == "ready":
            proc.pid = payload[0]
            return True
        if kind == "error":
            self._stop(proc)
            raise _remote_error(*payload, what="building a worker")
        return False

    def _start_missing(self) -> None:
        """Start a process in every empty slot (all at once: they build in parallel)."""
        for attempt in range(self.max_failures):
            missing = [i for i, p in enumerate(self._procs) if p is None]
            if not missing:
                return
            for i in missing:
                self._procs[i] = self._spawn()
            for i in missing:
                if not self._await_ready(self._procs[i]):
                    code = self._procs[i].process.exitcode
                    self._stop(self._procs[i])
                    self._procs[i] = None
        if any(p is None for p in self._procs):
            raise WorkerCrashError(
                f"worker processes died {self.max_failures} times in a row while building their "
                f"network ({_exit_reason(code)})"
            )

    def _receive(self, proc: _Process) -> tuple[str, tuple]:
        """The next message of ``proc`` as (kind, payload); ("dead", (exitcode,)) if it died."""
        try:
            message = proc.conn.recv()
        except (EOFError, OSError):
            proc.process.join(timeout=10)
            return "dead", (proc.process.exitcode,)
        return message[0], tuple(message[1:])

    def _stop(self, proc: _Process, grace: float = 0.0) -> None:
        """End ``proc``: wait ``grace`` seconds for it to exit on its own, then terminate, then kill."""
        process = proc.process
        process.join(timeout=grace)
        if process.is_alive():
            process.terminate()
            process.join(timeout=2)
        if process.is_alive():
            process.kill()
            process.join(timeout=2)
        proc.conn.close()

    # ---------------------------------------------------------------------------- dispatch
    def _send(self, slot: int, request) -> None:
        """Send a request to the worker in ``slot``, replacing it first if it died while idle."""
        for _ in range(self.max_failures):
            try:
                self._procs[slot].conn.send(request)
                return
            except (BrokenPipeError, ConnectionResetError, OSError):
                self._stop(self._procs[slot])
                self._procs[slot] = None
                self.restarts += 1
                self._start_missing()
        raise WorkerCrashError(f"could not send work to worker {slot}: its replacements keep dying")

    def _map(self, method, args):
        self._start_missing()
        results: list = [None] * len(args)
        failures = [0] * len(args)
        pending = deque(range(len(args)))
        busy: dict[int, int] = {}  # slot -> chunk it runs
        try:
            while pending or busy:
                for slot in range(self.workers):
                    if pending and slot not in busy:
                        chunk = pending.popleft()
                        self._send(slot, (method, args[chunk]))
                        busy[slot] = chunk
                procs = {slot: self._procs[slot] for slot in busy}
                ready = set(wait([p.conn for p in procs.values()] + [p.process.sentinel for p in procs.values()]))
                for slot, proc in procs.items():
                    if proc.conn not in ready and proc.process.sentinel not in ready:
                        continue
                    kind, payload = self._receive(proc)
                    chunk = busy.pop(slot)
                    if kind == "ok":
                        results[chunk] = payload[0]
                    elif kind == "error":
                        raise _remote_error(*payload, what=f"{method} on worker pid {proc.pid}")
                    else:
                        failures[chunk] += 1
                        reason = _exit_reason(payload[0])
                        self._stop(proc)
                        self._procs[slot] = None
                        self.restarts += 1
                        if failures[chunk] >= self.max_failures:
                            raise WorkerCrashError(
                                f"{method}: a chunk of {len(args[chunk][-1])} candidates killed its "
                                f"worker {failures[chunk]} times in a row (last: {reason}); giving up"
                            )
                        warnings.warn(
                            f"spikehebb worker pid {proc.pid} died ({reason}) running {method}; "
                            f"replacing it and running its chunk again",
                            RuntimeWarning,
                            stacklevel=3,
                        )
                        self._start_missing()
                        pending.appendleft(chunk)
        except BaseException:
            # Workers still busy would answer a request we no longer wait for: replace them.
            for slot in busy:
                if self._procs[slot] is not None:
                    self._stop(self._procs[slot])
                    self._procs[slot] = None
            raise
        return results

    def _release(self) -> None:
        """Stop the workers (asked to exit, then terminated if they do not within a few seconds)."""
        procs = [p for p in self._procs if p is not None]
        for proc in procs:
            try:
                proc.conn.send(None)
            except OSError:
                pass
        for proc in procs:
            self._stop(proc, grace=5.0)
        self._procs = [None] * self.workers


def _remote_error(err: BaseException, tb: str, what: str) -> BaseException:
    """An exception raised in a worker, with the worker's traceback attached as a note."""
    err.add_note(f"raised in a spikehebb worker ({what}); its traceback:\n{tb}")
    return err


# ----------------------------------------------------------------------------------------- ray
class _RayWorker:
    """A :class:`Worker` as the body of a Ray actor."""

    def __init__(self, spec: WorkerSpec, factory: WorkerFactory):
        self.worker = factory(spec)

    def ready(self) -> int:
        return os.getpid()

    def call(self, method: str, *args):
        return getattr(self.worker, method)(*args)

    def close(self) -> None:
        self.worker.close()


class RayEvaluator(_Evaluator):
    """The same persistent workers as Ray actors, on a local Ray instance or a cluster.

    Arguments:
        spec: what each actor builds (spikehebb must be importable on every node).
        workers: number of actors (one CPU each); None: ``os.cpu_count()`` for a local instance,
            the cluster's CPUs for an existing one.
        address: None starts a local Ray instance with ``workers`` CPUs (unless this process is
            already connected to Ray, which is then used); ``"auto"`` or ``"HOST:PORT"``
            connects to a running cluster.
        worker_factory, max_failures: as for :class:`ProcessEvaluator`.
        ray_init_kwargs: passed to ``ray.init``.

    An actor that dies (``RayActorError``) is replaced and its chunk run again; :meth:`close`
    kills the actors and shuts Ray down only if this evaluator started it.
    """

    name = "ray"

    def __init__(
        self,
        spec: WorkerSpec,
        workers: int | None = None,
        address: str | None = None,
        *,
        worker_factory: WorkerFactory = Worker,
        max_failures: int = MAX_WORKER_FAILURES,
        **ray_init_kwargs,
    ):
        try:
            import ray
        except ImportError:
            raise ImportError('the "ray" evaluator needs Ray: pip install "spikehebb[ray]"') from None
        self._ray = ray
        self._started_ray = False
        if not ray.is_initialized():
            if address is None:
                ray_init_kwargs.setdefault("num_cpus", workers if workers is not None else os.cpu_count())
                ray_init_kwargs.setdefault("include_dashboard", False)
            ray.init(address=address, **ray_init_kwargs)
            self._started_ray = True
        if workers is None:
            workers = os.cpu_count() if address is None else int(ray.cluster_resources().get("CPU", 1))
        super().__init__(spec, workers)
        self.max_failures = int(max_failures)
        self.restarts = 0
        """Actors replaced after they died."""
        self._factory = worker_factory
        self._actor_class = ray.remote(num_cpus=1, max_restarts=0)(_RayWorker)
        self._actors: list = []
        _OPEN.add(self)
        try:
            self._actors = [self._actor_class.remote(spec, worker_factory) for _ in range(self.workers)]
            ray.get([a.ready.remote() for a in self._actors])  # they build in parallel
        except BaseException:
            self.close()
            raise

    def _replace(self, slot: int) -> None:
        self._ray.kill(self._actors[slot], no_restart=True)
        self._actors[slot] = self._actor_class.remote(self.spec, self._factory)
        self._ray.get(self._actors[slot].ready.remote())
        self.restarts += 1

    def _map(self, method, args):
        ray = self._ray
        # A sampler is shared by every chunk of a generation: into the object store once.
        shared: dict[int, Any] = {}
        args = [
            tuple(a if isinstance(a, (list, str, int)) else shared.setdefault(id(a), ray.put(a)) for a in chunk_args)
            for chunk_args in args
        ]
        results: list = [None] * len(args)
        failures = [0] * len(args)
        pending, idle = deque(range(len(args))), deque(range(self.workers))
        running: dict = {}  # object ref -> (slot, chunk)
        while pending or running:
            while pending and idle:
                slot, chunk = idle.popleft(), pending.popleft()
                running[self._actors[slot].call.remote(method, *args[chunk])] = (slot, chunk)
            [ref], _ = ray.wait(list(running), num_returns=1)
            slot, chunk = running.pop(ref)
            try:
                results[chunk] = ray.get(ref)
            except ray.exceptions.RayActorError as err:
                failures[chunk] += 1
                if failures[chunk] >= self.max_failures:
                    raise WorkerCrashError(
                        f"{method}: a chunk of {len(args[chunk][-1])} candidates killed its Ray actor "
                        f"{failures[chunk]} times in a row; giving up"
                    ) from err
                warnings.warn(
                    f"spikehebb Ray actor died running {method}; replacing it and running its chunk again",
                    RuntimeWarning,
                    stacklevel=3,
                )
                self._replace(slot)
                pending.appendleft(chunk)
            idle.append(slot)
        return results

    def _release(self) -> None:
        """Kill the actors; shut Ray down if this evaluator started it."""
        for actor in self._actors:
            try:
                self._ray.kill(actor, no_restart=True)
            except Exception:  # already gone
                pass
        self._actors = []
        if self._started_ray and self._ray.is_initialized():
            self._ray.shutdown()


#: Every backend by name; ``make_evaluator`` builds one.
EVALUATORS: dict[str, type[_Evaluator]] = {
    SerialEvaluator.name: SerialEvaluator,
    ProcessEvaluator.name: ProcessEvaluator,
    RayEvaluator.name: RayEvaluator,
}

DEFAULT_EVALUATOR = ProcessEvaluator.name


def make_evaluator(name: str, spec: WorkerSpec, workers: int | None = None, address: str | None = None, **kwargs):
    """An evaluator by name ("serial", "processes" or "ray"); ``workers=None``: one per core
    (``os.cpu_count()``); ``address`` is the Ray cluster to join (ray only); ``kwargs`` go to
    the class (e.g. ``worker_factory``)."""
    if name not in EVALUATORS:
        raise ValueError(f"unknown evaluator {name!r}; expected one of {', '.join(EVALUATORS)}")
    if address is not None and name != RayEvaluator.name:
        raise ValueError(f"address={address!r} is for the ray evaluator only, not {name!r}")
    if workers is None:
        workers = os.cpu_count() or 1
    if name == RayEvaluator.name:
        return RayEvaluator(spec, workers, address, **kwargs)
    return EVALUATORS[name](spec, workers, **kwargs)


def worker_batch_size(popsize: int, workers: int, limit: int = 64) -> int:
    """Batch size giving each worker one batch per generation where it fits under ``limit``."""
    return max(1, min(limit, math.ceil(popsize / max(1, workers))))


