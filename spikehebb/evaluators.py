"""Where lifetimes run: in the calling process, a pool of local processes, or Ray actors.

Every backend runs the same :class:`~spikehebb.worker.Worker` (the fitness of lifetimes) and
hands it candidates as keys plus the generation's sampler, never as parameter vectors.

- :class:`SerialEvaluator`: one worker in the calling process.
- :class:`ProcessEvaluator` (default): one persistent worker process per core (spawned, so each
  builds its own Brian2 network); a worker that dies, or hangs (finishes no lifetime for
  ``stall_timeout`` seconds), is replaced and its candidates evaluated again.
- :class:`RayEvaluator`: the same workers as Ray actors, on a local Ray instance or a cluster.

``make_evaluator(name, spec, workers, address)`` builds one by name. All are context managers
with ``evaluate(sampler, keys) -> (fitness (n,), env_steps)``,
``evaluate_params(params, variant, episodes)`` and ``close()``; open evaluators are closed at
interpreter exit, and worker processes exit on their own when the parent's pipe closes, so no
worker outlives its run.

The process pool hands a generation's lifetimes out one at a time from a counter its workers
share (:meth:`ProcessEvaluator.evaluate`); Ray splits them into one chunk of consecutive keys per
worker (:func:`split_evenly`). Inside a worker the rollout keeps its batch full by refilling slots.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import math
import multiprocessing
import os
import signal
import time
import traceback
import warnings
import weakref
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any, Callable, Sequence

import numpy as np

from spikehebb.checks import check_episodes, check_timeout, is_integer
from spikehebb.config import STALL_TIMEOUT_S, WorkerSpec
from spikehebb.stopping import STOP_AFTER_GENERATION
from spikehebb.worker import Worker, mean_over_variants, random_streams_digest


def split_evenly(items: Sequence, n_chunks: int) -> list[list]:
    """Consecutive chunks of near-equal size (no empty chunk)."""
    n_chunks = max(1, min(n_chunks, len(items)))
    size = math.ceil(len(items) / n_chunks)
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class WorkerCrashError(RuntimeError):
    """Worker processes (or Ray actors) kept dying, or hanging, on the same candidates: the
    evaluator gave up."""


#: How many times in a row one chunk of candidates may kill (or hang) its worker before the
#: evaluator gives up.
MAX_WORKER_FAILURES = 3

#: ``factory(spec) -> Worker``: what a backend builds in each worker process (must be picklable).
WorkerFactory = Callable[[WorkerSpec], Worker]


def checked_max_failures(value) -> int:
    """``max_failures`` of a pool (deaths in a row of one request before giving up), checked: a
    pool that may never run a request again is refused in one line."""
    if not (is_integer(value) and value >= 1):
        raise ValueError(f"max_failures must be a positive integer, got {value!r}")
    return value


def checked_workers(value) -> int:
    """``value`` as a worker count, or ValueError if it is not a positive integer."""
    if not (is_integer(value) and value >= 1):
        raise ValueError(f"workers must be a positive integer, got {value!r}")
    return int(value)


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
    _closed = False  # close() before __init__ is done (a backend's start that failed) releases what there is

    def __init__(self, spec: WorkerSpec, workers: int):
        self.spec = spec
        self.workers = checked_workers(workers)
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
        episodes = check_episodes(episodes)
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


def sigusr1_blocked():
    """Processes started inside inherit SIGUSR1 blocked, for good: a scheduler may send it to the
    whole process group, it is meant for the parent (``train`` stops after the generation in
    flight, a study after the step in flight), and its default action would kill a worker, a test
    pool's process or multiprocessing's resource tracker. A SIGUSR1 sent to this process meanwhile
    waits until the block ends. No-op without SIGUSR1."""
    return _blocked(STOP_AFTER_GENERATION)


def sigint_blocked():
    """Processes started inside are born with SIGINT blocked, until they ignore it
    (:func:`deaf_to_ctrl_c`): a spawned interpreter imports for seconds first, and a Ctrl-C to
    the process group then ended it with a traceback. A Ctrl-C sent to this process meanwhile
    arrives when the block ends."""
    return _blocked(signal.SIGINT)


def deaf_to_ctrl_c() -> None:
    """In a worker process: ignore SIGINT, then unblock it (one that came while the process
    started, :func:`sigint_blocked`, is dropped). Ctrl-C reaches the whole process group; the
    parent decides what happens to its workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@contextlib.contextmanager
def _blocked(signum):
    """Block ``signum`` in this thread inside (no-op for None or without ``pthread_sigmask``)."""
    if signum is None or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, ())  # read first: a Ctrl-C here leaves nothing blocked
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signum})
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _serve(conn, spec: WorkerSpec, factory: WorkerFactory, counter=None, beats=None, slot: int = 0) -> None:
    """Body of a worker process: build the worker once, then answer ``(method, args)`` requests
    with ``("ok", result)`` or ``("error", exception, traceback)`` until ``None`` or the parent's
    end of the pipe closes. ``counter``: the evaluator's shared lifetime counter; ``beats``: its
    shared heartbeats, where this worker writes ``time.monotonic()`` at ``slot`` each time one of
    its lifetimes ends (a worker without :meth:`~spikehebb.worker.Worker.set_heartbeat` writes none)."""
    deaf_to_ctrl_c()  # (SIGUSR1 is blocked from birth: sigusr1_blocked)
    exit_with_parent()
    try:
        worker = factory(spec)
        worker.counter = counter
        set_heartbeat = getattr(worker, "set_heartbeat", None)
        if beats is not None and set_heartbeat is not None:
            set_heartbeat(functools.partial(_beat, beats, slot))
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


def _beat(beats, slot: int) -> None:
    """A worker's heartbeat: now, in its slot of the shared array (CLOCK_MONOTONIC is system-wide,
    so the parent compares it with its own ``time.monotonic()``)."""
    beats[slot] = time.monotonic()


def exit_with_parent() -> None:
    """End this worker process as soon as its parent is gone. A parent killed by a signal (kill,
    SIGTERM from a scheduler) cannot close its workers, and a worker in the middle of a chunk does
    not read its pipe, so without this it would run on, orphaned, until its chunk was done."""
    import threading

    parent = multiprocessing.parent_process()
    if parent is None:  # not a multiprocessing child (a worker served in-process by a test)
        return

    def watch() -> None:
        parent.join()
        os._exit(0)

    threading.Thread(target=watch, name="spikehebb-exit-with-parent", daemon=True).start()


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


def _check_main_is_importable() -> None:
    """Spawned workers re-import the main script by its path; one read from standard input (or
    otherwise not a file) cannot be, and every worker would die at start. Say so instead."""
    import sys

    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is not None and not os.path.isfile(path):
        raise RuntimeError(
            f"worker processes are spawned and re-import the main script, but it is {path!r}, not a "
            "file (a script read from standard input?): save it to a file and run that, or use the "
            "'serial' evaluator"
        )


@dataclass
class _Process:
    """One worker process and the parent's end of its pipe."""

    process: Any
    conn: Any
    pid: int | None = None


class ProcessEvaluator(_Evaluator):
    """A pool of persistent worker processes on this machine (the default backend).

    Each process is spawned once, builds its :class:`Worker` (compiled network, envs) once and
    keeps it for the evaluator's life; every worker gets a generation's sampler and keys and claims
    its lifetimes one at a time from a shared counter (only the sampler and the keys cross the
    pipe). Workers run with one BLAS/OpenMP thread each unless the environment says otherwise
    (:data:`WORKER_THREAD_ENV`).

    A worker that dies while it runs (segfault, OOM kill, ``os._exit``) is replaced by a fresh
    process; the lifetimes it had claimed are run again afterwards and the ones finished are kept
    (a request to build or evaluate parameters is rerun whole). A worker that stays alive but
    makes no progress (a deadlock: a lock another process died holding, a C library that never
    returns) is treated the same way: a busy worker that has finished no lifetime, and answered
    nothing, for ``stall_timeout`` seconds is taken for hung, stopped (terminated, then killed)
    and replaced, with a RuntimeWarning that says so; a new process that has not answered that it
    is built within ``build_timeout`` seconds likewise. Progress is each worker's own heartbeat (a
    time it writes into shared memory whenever one of its lifetimes ends), not the request's
    length: a request of shared claims lasts the whole generation. If one request kills (or
    hangs) ``max_failures`` workers in a row the evaluator raises :class:`WorkerCrashError`.
    An exception raised inside a worker (bad keys, a bug) is re-raised here with the worker's
    traceback as a note.

    Arguments:
        spec: what each worker builds.
        workers: number of processes; None: ``os.cpu_count()``.
        worker_factory: ``factory(spec) -> Worker``, picklable (a module-level class or a
            ``functools.partial`` of one); :class:`Worker` by default.
        max_failures: deaths (or hangs) in a row of one chunk before giving up.
        stall_timeout: seconds a busy worker may go without finishing a lifetime before it is
            taken for hung; None: never. The default, :data:`STALL_TIMEOUT_S` (30 minutes), is
            far above anything a healthy run does on a slow, loaded machine: the longest a worker
            goes without finishing a lifetime is about one lifetime of its batch in lockstep (the
            car's 1,000 rendered steps in a batch of 64 on a loaded core take minutes, not tens of
            them); a hung worker is found half an hour late, instead of never.
        build_timeout: seconds a new worker process may take to answer that it is built (spawn,
            imports and its :class:`Worker`'s build, Brian2's first compile of the network
            included: minutes on a loaded machine) before it is taken for hung; None: never.
            Default :data:`STALL_TIMEOUT_S` too.

    The serial evaluator has no timeout (its worker is this process); the Ray evaluator has the
    same two. A training run takes them from its config (:class:`~spikehebb.config.EvaluatorConfig`,
    ``spikehebb train --stall-timeout/--build-timeout``).
    """

    name = "processes"
    stall_timeout: float | None = STALL_TIMEOUT_S
    """Seconds a busy worker may go without progress before it is taken for hung (None: never)."""
    build_timeout: float | None = STALL_TIMEOUT_S
    """Seconds a new worker may take to answer that it is built before it is taken for hung (None: never)."""

    def __init__(
        self,
        spec: WorkerSpec,
        workers: int | None = None,
        *,
        worker_factory: WorkerFactory = Worker,
        max_failures: int = MAX_WORKER_FAILURES,
        stall_timeout: float | None = STALL_TIMEOUT_S,
        build_timeout: float | None = STALL_TIMEOUT_S,
    ):
        super().__init__(spec, workers if workers is not None else os.cpu_count() or 1)
        _check_main_is_importable()
        self.max_failures = checked_max_failures(max_failures)
        self.stall_timeout = check_timeout("stall_timeout", stall_timeout)
        self.build_timeout = check_timeout("build_timeout", build_timeout)
        self.restarts = 0
        """Worker processes replaced after they died or hung."""
        self._factory = worker_factory
        self._ctx = multiprocessing.get_context("spawn")
        # The generation's next training lifetime, shared by every worker (see evaluate). Its lock
        # may start multiprocessing's resource tracker, a process of this group too.
        # A plain Lock, not Value's default RLock: any process may release it, so one left held by
        # a worker that died inside a claim is freed by the parent (_free_counter).
        with sigusr1_blocked():
            self._counter = self._ctx.Value("q", 0, lock=self._ctx.Lock())
            # Each slot's heartbeat: the time.monotonic() at which its worker last finished a
            # lifetime (_serve). Only that worker writes it, so it needs no lock.
            self._beats = self._ctx.Array("d", self.workers, lock=False)
        self._procs: list[_Process | None] = [None] * self.workers
        _OPEN.add(self)
        try:
            self._start_missing()
        except BaseException:
            self.close()
            raise

    def evaluate(self, sampler, keys: Sequence) -> tuple[np.ndarray, int]:
        """Training fitness of candidates given as ES keys, and the env steps they took.

        Every worker gets every key and claims lifetimes (candidate x training variant) one at a
        time from a counter they share, so the generation's work is spread as it runs: no worker
        idles while another has lifetimes queued. Lifetimes a dying worker had claimed are run
        again afterwards. The numbers equal the serial evaluator's, bit for bit.
        """
        keys = list(keys)
        if not keys:
            return np.empty(0), 0
        if self.workers == 1:
            return super().evaluate(sampler, keys)
        if self._closed:
            raise RuntimeError(f"this {self.name} evaluator is closed")
        n_variants = len(self.spec.make_task().train_variants)
        n_items = len(keys) * n_variants
        self._counter.value = 0  # the setter takes the counter's (non-recursive) lock itself
        done, env_steps = {}, 0
        for part, steps in self._map("evaluate_claims", [(sampler, keys)] * self.workers):
            done.update(part)
            env_steps += steps
        missing = [i for i in range(n_items) if divmod(i, n_variants) not in done]
        if missing:  # claimed by a worker that died
            for part, steps in self._map("evaluate_items", [(sampler, keys, c) for c in split_evenly(missing, self.workers)]):
                done.update(part)
                env_steps += steps
        return mean_over_variants(done, len(keys), n_variants), env_steps

    #: Seconds a claim may hold the counter's lock before a dead worker is taken to hold it (a
    #: claim holds it for microseconds).
    COUNTER_STUCK_S = 5.0

    def _free_counter(self) -> None:
        """After a worker died: release the counter's lock if it died holding it (killed inside a
        claim), or every other worker, and its replacement, would wait on it for ever."""
        lock = self._counter.get_lock()
        lock.acquire(timeout=self.COUNTER_STUCK_S)  # ours when free; else still the dead worker's
        lock.release()  # either way: a multiprocessing.Lock may be released by any process

    @property
    def pids(self) -> list[int | None]:
        """Process ids of the workers."""
        return [p.pid if p is not None else None for p in self._procs]

    # ------------------------------------------------------------------------ process life
    def _spawn(self, slot: int) -> _Process:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=_serve, args=(child, self.spec, self._factory, self._counter, self._beats, slot),
            name="spikehebb-worker", daemon=True,
        )
        with one_thread_per_library(), sigusr1_blocked(), sigint_blocked():
            process.start()
        child.close()  # the child's end now lives only in the child: its death closes the pipe
        return _Process(process, parent)

    def _start_missing(self) -> None:
        """Start a process in every empty slot (all at once: they build in parallel). Every new
        process is heard from before this returns or raises: one that died or could not build is
        stopped and its slot emptied, so no slot is left holding a stopped process or an unread
        message; the first build error raised inside a worker is raised here after that. A process
        that has not answered within ``build_timeout`` seconds is taken for hung and stopped, as
        one that died: both count toward ``max_failures``."""
        reason, deaths, hangs = "", 0, 0
        for attempt in range(self.max_failures):
            missing = [i for i, p in enumerate(self._procs) if p is None]
            if not missing:
                return
            for i in missing:
                self._procs[i] = self._spawn(i)
            deadline = None if self.build_timeout is None else time.monotonic() + self.build_timeout
            build_error = None
            for i in missing:
                proc = self._procs[i]
                kind, payload = self._receive(proc, deadline)
                if kind == "ready":
                    proc.pid = payload[0]
                    continue
                self._stop(proc)
                self._procs[i] = None
                if kind == "error":
                    build_error = build_error or _remote_error(*payload, what="building a worker")
                elif kind == "stalled":
                    hangs += 1
                    reason = f"no answer within {self.build_timeout:g} s: taken for hung"
                    warnings.warn(
                        f"spikehebb worker pid {proc.process.pid} did not finish building within "
                        f"{self.build_timeout:g} s (build_timeout): taken for hung, stopped and started again",
                        RuntimeWarning,
                        stacklevel=3,
                    )
                else:
                    deaths += 1
                    reason = _exit_reason(proc.process.exitcode)
            if build_error is not None:
                raise build_error
        if any(p is None for p in self._procs):
            what = "hung" if not deaths else "died" if not hangs else "died or hung"
            raise WorkerCrashError(
                f"worker processes {what} {self.max_failures} times in a row while building their "
                f"network (last: {reason})"
            )

    def _receive(self, proc: _Process, deadline: float | None = None) -> tuple[str, tuple]:
        """The next message of ``proc`` as (kind, payload); ("dead", (exitcode,)) if it died;
        ("stalled", ()) if none came by ``deadline`` (a ``time.monotonic()``; None: no limit)."""
        try:
            if deadline is not None and not proc.conn.poll(max(0.0, deadline - time.monotonic())):
                return "stalled", ()
        except (EOFError, OSError):  # closed under us: recv says what happened
            pass
        try:
            message = proc.conn.recv()
        except (EOFError, OSError):
            proc.process.join(timeout=10)
            return "dead", (proc.process.exitcode,)
        return message[0], tuple(message[1:])

    def _stop(self, proc: _Process, grace: float = 0.0) -> None:
        """End ``proc`` (:func:`stop_process`) and close the parent's end of its pipe."""
        stop_process(proc.process, grace)
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

    def _last_progress(self, slot: int, sent: float) -> float:
        """When the busy worker in ``slot`` last made progress: its last heartbeat, or when it was
        sent its request if later (a ``time.monotonic()``)."""
        return max(sent, self._beats[slot])

    def _next_stall_check(self, sent: dict[int, float]) -> float | None:
        """Seconds until the first busy worker would pass ``stall_timeout`` without progress, if
        none makes any meanwhile (None: no timeout). A worker's heartbeat only moves its deadline
        later, so waiting this long misses no stall and wakes only when one may be due."""
        if self.stall_timeout is None or not sent:
            return None
        due = min(self._last_progress(slot, t) for slot, t in sent.items()) + self.stall_timeout
        return max(0.0, due - time.monotonic())

    def _map(self, method, args):
        self._start_missing()
        results: list = [None] * len(args)
        failures = [0] * len(args)
        hangs = [0] * len(args)
        pending = deque(range(len(args)))
        busy: dict[int, int] = {}  # slot -> chunk it runs
        sent: dict[int, float] = {}  # slot -> when it was sent its request (time.monotonic())
        try:
            while pending or busy:
                for slot in range(self.workers):
                    if pending and slot not in busy:
                        chunk = pending.popleft()
                        self._send(slot, (method, args[chunk]))
                        busy[slot] = chunk
                        sent[slot] = time.monotonic()
                procs = {slot: self._procs[slot] for slot in busy}
                # With a timeout, to look for hung workers: a signal still interrupts the wait
                # (Ctrl-C raises here; SIGUSR1's handler runs and the wait goes on).
                ready = set(wait([p.conn for p in procs.values()] + [p.process.sentinel for p in procs.values()],
                                 timeout=self._next_stall_check(sent)))
                for slot, proc in procs.items():
                    if proc.conn in ready or proc.process.sentinel in ready:
                        kind, payload = self._receive(proc)
                    elif (self.stall_timeout is not None
                          and time.monotonic() - self._last_progress(slot, sent[slot]) >= self.stall_timeout
                          and not proc.conn.poll()):  # an answer that came meanwhile is read next round
                        kind, payload = "stalled", ()
                    else:
                        continue
                    chunk = busy.pop(slot)
                    del sent[slot]
                    if kind == "ok":
                        results[chunk] = payload[0]
                    elif kind == "error":
                        raise _remote_error(*payload, what=f"{method} on worker pid {proc.pid}")
                    else:
                        failures[chunk] += 1
                        if kind == "stalled":
                            hangs[chunk] += 1
                            reason = f"no progress for {self.stall_timeout:g} s: taken for hung"
                            what = _no_progress(self.stall_timeout, method, "stopping")
                        else:
                            reason = _exit_reason(payload[0])
                            what = f"died ({reason}) running {method};"
                        self._stop(proc)
                        self._free_counter()
                        self._procs[slot] = None
                        self.restarts += 1
                        if failures[chunk] >= self.max_failures:
                            raise WorkerCrashError(
                                f"{method}: the same share of the work {_failed(failures[chunk], hangs[chunk])} its "
                                f"worker {failures[chunk]} times in a row (last: {reason}); giving up"
                            )
                        warnings.warn(
                            f"spikehebb worker pid {proc.pid} {what} replacing it and running its chunk again",
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


def stop_process(process, grace: float = 0.0) -> None:
    """End a ``multiprocessing`` process: wait ``grace`` seconds for it to exit on its own, then
    terminate, then kill."""
    process.join(timeout=grace)
    if process.is_alive():
        process.terminate()
        process.join(timeout=2)
    if process.is_alive():
        process.kill()
        process.join(timeout=2)


def _no_progress(stall_timeout: float, method: str, stopping: str) -> str:
    """How a hung worker's warning says why it is replaced (after "spikehebb worker ..." or
    "spikehebb Ray actor ...")."""
    return (f"made no progress (finished no lifetime) for {stall_timeout:g} s (stall_timeout) running {method}: "
            f"taken for hung, {stopping} it,")


def _failed(failures: int, hangs: int) -> str:
    """What one share of the work did to its workers, ``failures`` times in a row, ``hangs`` of
    them by hanging: "killed", "hung" or "killed or hung"."""
    return "killed" if not hangs else "hung" if hangs == failures else "killed or hung"


def _remote_error(err: BaseException, tb: str, what: str) -> BaseException:
    """An exception raised in a worker, with the worker's traceback attached as a note."""
    err.add_note(f"raised in a spikehebb worker ({what}); its traceback:\n{tb}")
    return err


# ----------------------------------------------------------------------------------------- ray
def _build_error(err: BaseException) -> WorkerCrashError:
    """A Ray actor whose worker's build raised, in one line: the build's own last line (Ray's
    message carries the whole remote traceback, kept as a note)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    error = WorkerCrashError(f"a Ray actor could not build its worker: {lines[-1] if lines else type(err).__name__}")
    error.add_note(f"Ray's report:\n{err}")
    return error


class _RayWorker:
    """A :class:`Worker` as the body of a Ray actor; ``heartbeats``: the evaluator's
    :class:`_RayHeartbeats` actor, told ``slot`` each time one of this worker's lifetimes ends."""

    def __init__(self, spec: WorkerSpec, factory: WorkerFactory, heartbeats=None, slot: int = 0):
        self.worker = factory(spec)
        set_heartbeat = getattr(self.worker, "set_heartbeat", None)
        if heartbeats is not None and set_heartbeat is not None:
            set_heartbeat(functools.partial(heartbeats.beat.remote, slot))

    def ready(self) -> tuple[int, str, str, str]:
        """(pid, node address, NumPy version, :func:`random_streams_digest` of its worker)."""
        import ray

        return os.getpid(), ray.util.get_node_ip_address(), np.__version__, self.worker.random_streams_digest()

    def call(self, method: str, *args):
        return getattr(self.worker, method)(*args)

    def close(self) -> None:
        self.worker.close()


class _RayHeartbeats:
    """The Ray actors' heartbeats, kept by an actor of their own (it takes no CPU): an actor may
    run on another machine, so it cannot write into this process's memory as a worker process
    does, and a busy actor answers no call of its own until its request ends. Times are this
    actor's ``time.monotonic()``; only their ages leave it, so the machines' clocks need not agree."""

    def __init__(self, n: int):
        self._last: list[float | None] = [None] * n

    def beat(self, slot: int) -> None:
        self._last[slot] = time.monotonic()

    def ages(self) -> list[float | None]:
        """Seconds since each slot's last heartbeat (None: none yet)."""
        now = time.monotonic()
        return [None if t is None else now - t for t in self._last]


#: The environment variable Ray's raylet reads for its workers' niceness (Ray's default 15).
NICENESS_VARIABLE = "RAY_worker_niceness"


class RayEvaluator(_Evaluator):
    """The same persistent workers as Ray actors, on a local Ray instance or a cluster.

    Arguments:
        spec: what each actor builds (spikehebb must be importable on every node).
        workers: number of actors (one CPU each); None: ``os.cpu_count()`` for a local instance,
            the cluster's CPUs for an existing one.
        address: None starts a local Ray instance with ``workers`` CPUs (unless this process is
            already connected to Ray, which is then used); ``"auto"`` or ``"HOST:PORT"``
            connects to a running cluster.
        worker_factory, max_failures, stall_timeout, build_timeout: as for
            :class:`ProcessEvaluator` (30 minutes each by default).
        ray_init_kwargs: passed to ``ray.init``; joining a cluster, its ``runtime_env`` gets this
            process's plug-ins (:func:`~spikehebb.plugins.ray_runtime_env`).

    An actor that dies (``RayActorError``) is replaced and its chunk run again. So is one that
    hangs: busy, it finishes no lifetime for ``stall_timeout`` seconds (each actor tells a small
    heartbeat actor of its own, :class:`_RayHeartbeats`, when one of its lifetimes ends). An actor
    not built within ``build_timeout`` seconds (hung, or waiting for a CPU the cluster does not
    have) is killed and started again; both count toward ``max_failures``. :meth:`close`
    kills the actors and shuts Ray down only if this evaluator started it. The actors of a local
    instance it starts run at nice 0 (Ray's default is 15) unless ``RAY_worker_niceness`` is set,
    and its processes have SIGUSR1 blocked (a cluster's are its own). Each actor, before it gets
    work, must draw the same random numbers as this process (:func:`random_streams_digest`: the
    same NumPy on every node), or the evaluator refuses it with a RuntimeError.
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
        stall_timeout: float | None = STALL_TIMEOUT_S,
        build_timeout: float | None = STALL_TIMEOUT_S,
        **ray_init_kwargs,
    ):
        max_failures = checked_max_failures(max_failures)  # all before Ray starts
        stall_timeout = check_timeout("stall_timeout", stall_timeout)
        build_timeout = check_timeout("build_timeout", build_timeout)
        if workers is not None:
            checked_workers(workers)
        try:
            import ray
        except ImportError:
            raise ImportError('the "ray" evaluator needs Ray: pip install "spikehebb[ray]"') from None
        self._ray = ray
        self._started_ray = False
        if not ray.is_initialized():
            niceness = {}
            if address is None:
                ray_init_kwargs.setdefault("num_cpus", workers if workers is not None else os.cpu_count())
                ray_init_kwargs.setdefault("include_dashboard", False)
                # Ray runs its workers at nice 15: beside any other busy process (a second
                # evaluator, a test, a build) the actors would get almost no CPU. A local instance
                # runs them at this process's priority, as ProcessEvaluator does, unless asked otherwise.
                niceness = {} if NICENESS_VARIABLE in os.environ else {NICENESS_VARIABLE: "0"}
            else:  # a cluster's actors: this process's plug-ins travel with the job
                from spikehebb.plugins import ray_runtime_env

                runtime_env = ray_runtime_env(ray_init_kwargs.get("runtime_env"))
                if runtime_env is not None:
                    ray_init_kwargs["runtime_env"] = runtime_env
            os.environ.update(niceness)
            try:
                # a local instance's processes (raylet, GCS, the actors it forks) inherit SIGUSR1
                # blocked, as ProcessEvaluator's workers do: a scheduler's notice to the whole job
                # is for the parent
                with sigusr1_blocked():
                    # "local": a new instance, even beside a cluster `ray start` left running here
                    ray.init(address=address or "local", **ray_init_kwargs)
            finally:
                for name in niceness:
                    del os.environ[name]
            self._started_ray = True
        self._actors: list = []
        self._heartbeats = None
        self._unchecked: set[int] = set()  # slots of actors started but not yet checked by _await_ready
        try:
            if workers is None:
                workers = os.cpu_count() if address is None else int(ray.cluster_resources().get("CPU", 1))
            super().__init__(spec, workers)
            self.max_failures = max_failures
            self.stall_timeout, self.build_timeout = stall_timeout, build_timeout
            self.restarts = 0
            """Actors replaced after they died or hung."""
            self._factory = worker_factory
            self._actor_class = ray.remote(num_cpus=1, max_restarts=0)(_RayWorker)
            _OPEN.add(self)
            self._heartbeats = ray.remote(num_cpus=0, max_restarts=0)(_RayHeartbeats).remote(self.workers)
            self._actors = [self._new_actor(slot) for slot in range(self.workers)]
            self._await_ready(range(self.workers))  # they build in parallel
        except BaseException:
            self.close()
            raise

    @property
    def pids(self) -> list[int]:
        """Process ids of the actors (on their nodes)."""
        return [reply[0] for reply in self._ray.get([a.ready.remote() for a in self._actors])]

    @staticmethod
    def _check_ready(replies: list[tuple[int, str, str, str]]) -> None:
        """Refuse actors that draw other random numbers than this process: they would expand a
        candidate key into another vector than the one ``tell`` credits with its fitness."""
        here = random_streams_digest()
        for pid, node, version, digest in replies:
            if digest != here:
                raise RuntimeError(
                    f"the Ray actor on {node} (pid {pid}) draws other random numbers than this process "
                    f"(NumPy {version} there, {np.__version__} here): every node needs the same NumPy"
                )

    def _new_actor(self, slot: int):
        return self._actor_class.remote(self.spec, self._factory, self._heartbeats, slot)

    def _await_ready(self, slots) -> None:
        """Wait for the actors in ``slots`` to answer that they are built, then check them
        (:meth:`_check_ready`). One that has not answered within ``build_timeout`` seconds, or
        died without an error of its worker's build (killed, its node lost), is killed and started
        again, up to ``max_failures`` times in a row, then :class:`WorkerCrashError`; an error
        raised by the build itself is raised here at once (it would be raised again)."""
        ray = self._ray
        waiting, reason = list(slots), ""
        for attempt in range(self.max_failures):
            refs = {self._actors[slot].ready.remote(): slot for slot in waiting}
            done, late = ray.wait(list(refs), num_returns=len(refs), timeout=self.build_timeout)
            replies, dead = [], []
            for ref in done:
                try:
                    replies.append(ray.get(ref))
                except ray.exceptions.RayActorError as err:
                    if getattr(err, "actor_init_failed", False):  # its build raised: it would raise again
                        raise _build_error(err) from err
                    dead.append(refs[ref])
                    reason = "died while building"
            self._check_ready(replies)
            if late:
                reason = f"not built within {self.build_timeout:g} s (build_timeout)"
            waiting = dead + [refs[ref] for ref in late]
            if not waiting:
                return
            for slot in waiting:  # a new one in each slot; after the last attempt, checked before it gets work
                ray.kill(self._actors[slot], no_restart=True)
                self._actors[slot] = self._new_actor(slot)
                self.restarts += 1
            if attempt + 1 < self.max_failures:
                warnings.warn(f"{len(waiting)} spikehebb Ray actor(s) {reason}: taken for hung or dead, killed and "
                              "started again", RuntimeWarning, stacklevel=3)
        self._unchecked.update(waiting)
        raise WorkerCrashError(
            f"Ray actors failed to build {self.max_failures} times in a row (last: {reason}): hung, dying, or waiting "
            "for CPUs the cluster does not have (one per actor: fewer --workers?); giving up"
        )

    def _replace(self, slot: int) -> None:
        self._ray.kill(self._actors[slot], no_restart=True)
        self._actors[slot] = self._new_actor(slot)
        self.restarts += 1
        self._await_ready([slot])

    def _stalled(self, running: dict, progress: dict[int, float]) -> list:
        """The refs in ``running`` whose actors have made no progress for ``stall_timeout``
        seconds, after asking the heartbeat actor (``progress``: slot -> when it last made
        progress, this process's ``time.monotonic()``, moved later here)."""
        ages = self._ray.get(self._heartbeats.ages.remote())
        now = time.monotonic()
        for slot in progress:
            if ages[slot] is not None:
                progress[slot] = max(progress[slot], now - ages[slot])
        stalled = [ref for ref, (slot, _) in running.items() if now - progress[slot] >= self.stall_timeout]
        if not stalled:
            return []
        answered, _ = self._ray.wait(stalled, num_returns=len(stalled), timeout=0)  # read next round instead
        return [ref for ref in stalled if ref not in answered]

    def _map(self, method, args):
        ray = self._ray
        if self._unchecked:
            self._await_ready(sorted(self._unchecked))
            self._unchecked.clear()
        # A sampler is shared by every chunk of a generation: into the object store once.
        shared: dict[int, Any] = {}

        def stored(a):
            if id(a) not in shared:
                shared[id(a)] = ray.put(a)
            return shared[id(a)]

        args = [tuple(a if isinstance(a, (list, str, int)) else stored(a) for a in chunk_args) for chunk_args in args]
        results: list = [None] * len(args)
        failures = [0] * len(args)
        hangs = [0] * len(args)
        pending, idle = deque(range(len(args))), deque(range(self.workers))
        running: dict = {}  # object ref -> (slot, chunk)
        progress: dict[int, float] = {}  # slot -> when its actor last made progress (time.monotonic())
        try:
            while pending or running:
                while pending and idle:
                    slot, chunk = idle.popleft(), pending.popleft()
                    running[self._actors[slot].call.remote(method, *args[chunk])] = (slot, chunk)
                    progress[slot] = time.monotonic()
                timeout = None
                if self.stall_timeout is not None:  # wake when the first actor may be due, as ProcessEvaluator does
                    timeout = max(0.0, min(progress[s] for s, _ in running.values()) + self.stall_timeout - time.monotonic())
                finished, _ = ray.wait(list(running), num_returns=1, timeout=timeout)
                for ref in finished or self._stalled(running, progress):
                    slot, chunk = running.pop(ref)
                    del progress[slot]
                    error = None
                    if finished:
                        try:
                            results[chunk] = ray.get(ref)
                        except ray.exceptions.RayActorError as err:
                            error, what = err, f"died running {method};"
                        else:
                            idle.append(slot)
                            continue
                    else:
                        hangs[chunk] += 1
                        what = _no_progress(self.stall_timeout, method, "killing")
                    failures[chunk] += 1
                    if failures[chunk] >= self.max_failures:
                        self._ray.kill(self._actors[slot], no_restart=True)  # a hung one would keep its CPU
                        self._actors[slot] = self._new_actor(slot)
                        self._unchecked.add(slot)  # checked before it is sent work (not waited for here)
                        raise WorkerCrashError(
                            f"{method}: the same share of the work {_failed(failures[chunk], hangs[chunk])} its Ray "
                            f"actor {failures[chunk]} times in a row; giving up"
                        ) from error
                    warnings.warn(f"spikehebb Ray actor {what} replacing it and running its chunk again",
                                  RuntimeWarning, stacklevel=3)
                    self._replace(slot)
                    pending.appendleft(chunk)
                    idle.append(slot)
        except BaseException:
            # An actor still busy would run on a chunk nobody waits for, and the next request would
            # queue behind it (a running task of a plain actor cannot be cancelled): replace it.
            for slot, _ in running.values():
                try:
                    self._ray.kill(self._actors[slot], no_restart=True)
                    self._actors[slot] = self._new_actor(slot)
                    self._unchecked.add(slot)  # checked before it is sent work (not waited for here)
                except Exception:  # Ray itself is going: close() will say so, not this
                    pass
            raise
        return results

    def _release(self) -> None:
        """Kill the actors; shut Ray down if this evaluator started it."""
        for actor in self._actors + ([self._heartbeats] if self._heartbeats is not None else []):
            try:
                self._ray.kill(actor, no_restart=True)
            except Exception:  # already gone
                pass
        self._actors, self._heartbeats = [], None
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
    (``os.cpu_count()``), or one per CPU of the Ray cluster at ``address`` (the cluster to join,
    ray only); ``kwargs`` go to the class (e.g. ``worker_factory``)."""
    if name not in EVALUATORS:
        raise ValueError(f"unknown evaluator {name!r}; expected one of {', '.join(EVALUATORS)}")
    if address is not None and name != RayEvaluator.name:
        raise ValueError(f"address={address!r} is for the ray evaluator only, not {name!r}")
    if name == RayEvaluator.name:
        return RayEvaluator(spec, workers, address, **kwargs)
    if name == SerialEvaluator.name and workers is not None and workers != 1:
        raise ValueError(f"the serial evaluator runs one worker, in this process: workers must be 1 (or None), got {workers!r}"
                         " (use the processes evaluator for more)")
    if workers is None:
        workers = os.cpu_count() or 1
    return EVALUATORS[name](spec, workers, **kwargs)




