"""Evaluators: every backend gives the serial numbers bit for bit, dead workers are replaced and
their candidates run again, hung ones too (the stall timeout), nothing outlives an evaluator, bad input is
refused."""

import functools
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

from spikehebb.es import CandidateKey, PopulationSampler, get_strategy
from spikehebb.config import AgentConfig, EvaluatorConfig, TaskConfig, WorkerSpec
from spikehebb.evaluators import (
    EVALUATORS,
    STALL_TIMEOUT_S,
    ProcessEvaluator,
    SerialEvaluator,
    WorkerCrashError,
    make_evaluator,
    split_evenly,
)
from spikehebb.worker import CrashOnceWorker, FaultyWorker, HangingWorker

pytestmark = pytest.mark.slow

EPISODE = {"burn_in_steps": 10, "grace_steps": 20}
TASK = TaskConfig("ant", ("default",), 80, EPISODE)
#: The default network, Brian2's compiled code: the tests that the processes and Ray backends give
#: the serial numbers bit for bit run it.
BRIAN2_SPEC = WorkerSpec(TASK, batch_size=4)
#: The same ant on the NumPy network, for the tests of the evaluators' fault handling (dead, hung,
#: unbuildable workers, orphans, bad input), which are not about the network: every process they
#: start or replace builds it with no Brian2 import or build (seconds of CPU each, more on a loaded
#: machine).
SPEC = WorkerSpec(TASK, AgentConfig(backend="numpy"), batch_size=4)
POPSIZE = 8
EPISODES = range(5)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def serial_generations(spec: WorkerSpec):
    """Two generations of OpenAI-ES keys with their samplers and the serial results of ``spec``:
    [(sampler, keys, fitness, env_steps)], plus the serial evaluate_params result."""
    strategy = get_strategy("openai-es", n_params=spec.genome().n_params, popsize=POPSIZE, seed=1)
    out = []
    with SerialEvaluator(spec) as serial:
        for _ in range(2):
            keys, sampler = strategy.ask(), strategy.sampler()
            fitness, steps = serial.evaluate(sampler, keys)
            strategy.tell(fitness)
            out.append((sampler, keys, fitness, steps))
        by_params = serial.evaluate_params(out[0][0].params(out[0][1][0]), "default", EPISODES)
    return out, by_params


@pytest.fixture(scope="module")
def generations():
    """:func:`serial_generations` of :data:`SPEC` (the NumPy network)."""
    return serial_generations(SPEC)


@pytest.fixture(scope="module")
def brian2_generations():
    """:func:`serial_generations` of :data:`BRIAN2_SPEC` (the Brian2 network)."""
    return serial_generations(BRIAN2_SPEC)


@pytest.mark.parametrize("network", ["generations", "brian2_generations"])
def test_serial_is_sane(network, request):
    gens, (params_fitness, params_steps) = request.getfixturevalue(network)
    for _, keys, fitness, steps in gens:
        assert fitness.shape == (POPSIZE,) and np.all(np.isfinite(fitness))
        assert len(set(fitness)) == POPSIZE  # every candidate its own lifetime
        assert POPSIZE * EPISODE["burn_in_steps"] < steps <= POPSIZE * 80
    assert params_fitness.shape == (len(EPISODES),) and len(set(params_fitness)) == len(EPISODES)


def test_processes_match_serial_bit_for_bit(brian2_generations, monkeypatch):
    gens, (params_fitness, params_steps) = brian2_generations
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    with make_evaluator("processes", BRIAN2_SPEC) as one:  # workers=None: one per core
        assert one.workers == 1
        for sampler, keys, fitness, steps in gens:
            got, got_steps = one.evaluate(sampler, keys)
            np.testing.assert_array_equal(got, fitness)
            assert got_steps == steps
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    with ProcessEvaluator(BRIAN2_SPEC, workers=2) as two:
        pids = two.pids
        if os.path.exists(f"/proc/{pids[0]}/environ"):  # one BLAS thread per worker process
            with open(f"/proc/{pids[0]}/environ", "rb") as f:
                assert b"OPENBLAS_NUM_THREADS=1" in f.read().split(b"\0")
        assert "OPENBLAS_NUM_THREADS" not in os.environ
        for sampler, keys, fitness, steps in gens:
            got, got_steps = two.evaluate(sampler, keys)
            np.testing.assert_array_equal(got, fitness)
            assert got_steps == steps
        assert two.pids == pids  # persistent workers: the same processes every generation
        # a sampler that holds vectors (full CMA-ES) reaches each worker as its rows only
        sampler, keys, fitness, _ = gens[0]
        held = PopulationSampler(0, np.stack([sampler.params(k) for k in keys]), range(POPSIZE), POPSIZE)
        got, _ = two.evaluate(held, [CandidateKey(0, k.index, 1) for k in keys])
        np.testing.assert_array_equal(got, fitness)
        got, got_steps = two.evaluate_params(gens[0][0].params(gens[0][1][0]), "default", EPISODES)
        np.testing.assert_array_equal(got, params_fitness)
        assert got_steps == params_steps
        # an exception inside a worker comes back as itself, and the evaluator goes on
        with pytest.raises(ValueError, match="key is from generation 0"):
            two.evaluate(gens[1][0], gens[0][1])
        with pytest.raises(ValueError, match="unknown ant variant"):
            two.evaluate_params(gens[0][0].params(gens[0][1][0]), "no_such_leg", EPISODES)
        np.testing.assert_array_equal(two.evaluate(*gens[1][:2])[0], gens[1][2])
        assert two.restarts == 0
        pids = [p for p in two.pids if p is not None]
    assert not any(alive(p) for p in pids)  # closed: no worker left


def test_dead_worker_is_replaced_and_its_chunk_rerun(generations, tmp_path):
    gens, _ = generations
    sampler, keys, fitness, steps = gens[0]
    marker = tmp_path / "crashed"
    factory = functools.partial(CrashOnceWorker, crash_on=(0, 5), marker=str(marker))
    with ProcessEvaluator(SPEC, workers=2, worker_factory=factory) as evaluator:
        before = evaluator.pids
        with pytest.warns(RuntimeWarning, match=r"died \(exit code 1\)"):
            got, got_steps = evaluator.evaluate(sampler, keys)
        # the worker that claimed a lifetime of key 5 died and was replaced; the lifetimes it had
        # claimed ran again
        assert marker.exists() and evaluator.restarts == 1
        replaced = [a != b for a, b in zip(evaluator.pids, before)]
        assert sum(replaced) == 1
        assert not alive(before[replaced.index(True)])
        np.testing.assert_array_equal(got, fitness)
        assert got_steps == steps


def test_a_worker_that_dies_inside_a_claim_does_not_hang_the_others(generations, tmp_path):
    """Killed while it held the shared counter's lock (an OOM kill can land anywhere): the lock
    (an RLock owned by the dead process) was never released, so the other worker and the
    replacement waited on it for ever. The parent frees it."""
    gens, _ = generations
    sampler, keys, fitness, steps = gens[0]
    factory = functools.partial(CrashOnceWorker, crash_on=(0, 5), marker=str(tmp_path / "crashed"), holding_counter=True)

    def hung(signum, frame):
        raise TimeoutError("the evaluator hung on the counter's lock")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(120)
    try:
        with ProcessEvaluator(SPEC, workers=2, worker_factory=factory) as evaluator:
            with pytest.warns(RuntimeWarning, match=r"died \(exit code 1\)"):
                got, got_steps = evaluator.evaluate(sampler, keys)
            assert evaluator.restarts == 1
            np.testing.assert_array_equal(got, fitness)
            assert got_steps == steps
            np.testing.assert_array_equal(evaluator.evaluate(sampler, keys)[0], fitness)  # and it goes on
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_gives_up_on_a_candidate_that_always_kills_its_worker(generations):
    gens, _ = generations
    sampler, keys, _, _ = gens[0]
    factory = functools.partial(CrashOnceWorker, crash_on=(0, 2), marker=None)
    with ProcessEvaluator(SPEC, workers=1, worker_factory=factory, max_failures=2) as evaluator:
        with pytest.warns(RuntimeWarning):
            with pytest.raises(WorkerCrashError, match="killed its worker 2 times in a row"):
                evaluator.evaluate(sampler, keys)
        pids = evaluator.pids
    assert not any(alive(p) for p in pids if p is not None)


@pytest.mark.parametrize("how", ["exit", "sigkill", "sigterm while busy"])
def test_no_orphans_when_the_parent_goes(how, tmp_path):
    """Workers go with their parent: at a normal exit without close() (atexit), when the parent
    is SIGKILLed (their pipe closes), and when it is killed by SIGTERM while its workers are in
    the middle of a long chunk (they do not read their pipe then; they watch their parent)."""
    code = textwrap.dedent(f"""
        import os, signal, threading, time
        from spikehebb.config import AgentConfig, TaskConfig, WorkerSpec
        from spikehebb.es import get_strategy
        from spikehebb.evaluators import ProcessEvaluator
        if __name__ == "__main__":
            busy = {how.endswith("busy")}
            workers = 2 if busy else 1
            spec = WorkerSpec(TaskConfig("ant", None, 1000 if busy else 80, {EPISODE!r}), AgentConfig(backend="numpy"),
                              batch_size=64 if busy else 1)
            ev = ProcessEvaluator(spec, workers=workers)
            print(*ev.pids, flush=True)
            if busy:  # each worker steps 64 lifetimes of 1,000 steps in lockstep: 20 s or more
                es = get_strategy("openai-es", n_params=spec.genome().n_params, popsize=128, seed=1)
                keys = es.ask()
                threading.Thread(target=ev.evaluate, args=(es.sampler(), keys), daemon=True).start()
                time.sleep(3)
                os.kill(os.getpid(), signal.SIGTERM)
            if {how == "sigkill"}:
                os.kill(os.getpid(), signal.SIGKILL)
    """)
    # Output to files, not pipes: workers inherit the parent's stdout and stderr, and waiting for
    # a pipe to close would wait for them too.
    out, err = tmp_path / "out", tmp_path / "err"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        subprocess.run([sys.executable, "-c", code], stdout=stdout, stderr=stderr, timeout=60)
    pids = [int(p) for p in out.read_text().split()]
    assert len(pids) == (2 if how.endswith("busy") else 1), err.read_text()
    # busy: a worker that only noticed at the end of its chunk would live on for a minute
    deadline = time.monotonic() + (10 if how.endswith("busy") else 20)
    while any(map(alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in filter(alive, pids):
        os.kill(pid, signal.SIGKILL)
        pytest.fail(f"worker {pid} outlived its parent ({how})")


def test_no_orphans_when_a_test_tables_parent_goes(tmp_path):
    """`assess`'s pool (one process per body, each running its 100 test lifetimes) goes with its
    parent when the parent is killed by SIGTERM in the middle of the table."""
    code = textwrap.dedent("""
        import os, signal, threading, time
        import numpy as np
        from pathlib import Path
        from spikehebb.assess import assess
        from spikehebb.config import AgentConfig, TaskConfig, TrainConfig
        if __name__ == "__main__":
            # full 1,000-step lifetimes that never end early: a body's 100 take a minute or more
            config = TrainConfig(task=TaskConfig("ant", None, 1000, {"grace_steps": 1000, "end_on_terminated": False}),
                                 agent=AgentConfig(backend="numpy"))
            params = np.zeros(config.worker_spec().genome().n_params)
            args = (config, params, ["default", "damage_right"], 100, 2)
            threading.Thread(target=assess, args=args, daemon=True).start()
            me, children = str(os.getpid()), []
            while len(children) < 2:  # the pool's two processes (not multiprocessing's resource tracker)
                time.sleep(0.2)
                children = [int(p.name) for p in Path("/proc").glob("[0-9]*")
                            if (p / "stat").exists() and (p / "stat").read_text().rsplit(")", 1)[1].split()[1] == me
                            and b"resource_tracker" not in (p / "cmdline").read_bytes()]
            time.sleep(5)  # into their lifetimes
            print(*children, flush=True)
            os.kill(os.getpid(), signal.SIGTERM)
    """)
    if not os.path.isdir("/proc"):
        pytest.skip("finds the pool's processes in /proc")
    out, err = tmp_path / "out", tmp_path / "err"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        subprocess.run([sys.executable, "-c", code], stdout=stdout, stderr=stderr, timeout=120)
    pids = [int(p) for p in out.read_text().split()]
    assert len(pids) == 2, err.read_text()
    deadline = time.monotonic() + 10
    while any(map(alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in filter(alive, pids):
        os.kill(pid, signal.SIGKILL)
        pytest.fail(f"test-table process {pid} outlived its parent")


def test_a_worker_that_cannot_be_rebuilt_leaves_no_stale_slot(generations, tmp_path):
    """A build error while replacing workers leaves every slot empty or holding a live worker with
    nothing unread on its pipe, and the next request runs as if it had not happened."""
    gens, _ = generations
    sampler, keys, fitness, steps = gens[0]
    armed = tmp_path / "armed"
    factory = functools.partial(FaultyWorker, fail_build_while=str(armed))
    with ProcessEvaluator(SPEC, workers=3, worker_factory=factory) as evaluator:
        # every worker raises; the first answer is read, the two unread workers are replaced later
        with pytest.raises(ValueError, match="key is from generation 0"):
            evaluator.evaluate(gens[1][0], keys)
        assert evaluator.pids.count(None) == 2
        armed.touch()
        with pytest.raises(RuntimeError, match="built while") as info:
            evaluator.evaluate(sampler, keys)
        assert any("building a worker" in note for note in info.value.__notes__)
        for proc in evaluator._procs:
            assert proc is None or (proc.process.is_alive() and not proc.conn.poll(1.0))
        armed.unlink()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no worker taken for dead
            got, got_steps = evaluator.evaluate(sampler, keys)
        np.testing.assert_array_equal(got, fitness)
        assert got_steps == steps and evaluator.restarts == 0
        pids = evaluator.pids
    assert None not in pids and not any(map(alive, pids))


def test_ray_matches_serial_and_replaces_dead_actors(brian2_generations, tmp_path, processes):
    ray = pytest.importorskip("ray", reason='ray is not installed (pip install -e ".[test]" brings it)')
    gens, (params_fitness, _) = brian2_generations
    sampler, keys, fitness, steps = gens[0]
    factory = functools.partial(CrashOnceWorker, crash_on=(0, 5), marker=str(tmp_path / "crashed"))
    before = set(processes())  # other tests' leftovers (a resource tracker, a manager) are not Ray's
    with make_evaluator("ray", BRIAN2_SPEC, workers=2, worker_factory=factory) as evaluator:
        assert ray.is_initialized()
        # Ray's default nice 15 starves the actors beside any busy process; ours run at nice 0
        assert [os.getpriority(os.PRIO_PROCESS, pid) for pid in evaluator.pids] == [0, 0]
        assert "RAY_worker_niceness" not in os.environ
        if os.path.exists("/proc/self/status"):
            # SIGUSR1 to the whole job is for the parent: every process of the local instance blocks it
            table = processes()
            ray_processes, parents = set(), {os.getpid()}
            while parents:  # descend the process tree below this one, to what Ray started
                parents = {pid for pid, p in table.items() if p.ppid in parents} - ray_processes
                ray_processes |= parents
            ray_processes -= before
            assert set(evaluator.pids) <= ray_processes and len(ray_processes) >= 4, ray_processes  # + GCS, raylet
            assert all(table[pid].sigusr1_blocked for pid in ray_processes), {pid: table[pid] for pid in ray_processes}
            assert not table[os.getpid()].sigusr1_blocked
        with pytest.warns(RuntimeWarning, match="Ray actor died"):
            got, got_steps = evaluator.evaluate(sampler, keys)
        assert evaluator.restarts == 1
        np.testing.assert_array_equal(got, fitness)
        assert got_steps == steps
        np.testing.assert_array_equal(evaluator.evaluate(*gens[1][:2])[0], gens[1][2])
        got, _ = evaluator.evaluate_params(sampler.params(keys[0]), "default", EPISODES)
        np.testing.assert_array_equal(got, params_fitness)
    assert not ray.is_initialized()  # it started Ray, so it shut it down


def test_ray_replaces_an_actor_an_error_left_busy(generations, tmp_path):
    """When one chunk raises, an actor still running another chunk is replaced, not left to run
    on with the next request queued behind it."""
    ray = pytest.importorskip("ray", reason='ray is not installed (pip install -e ".[test]" brings it)')
    gens, _ = generations
    stall = tmp_path / "stall"
    stall.touch()
    # chunk 0 (candidates 0-3) raises at once; chunk 1 (candidates 4-7) stalls for up to a minute
    factory = functools.partial(FaultyWorker, raise_on=(0, 0), stall_on=(0, 4), stall_while=str(stall), stall_s=60.0)
    with make_evaluator("ray", SPEC, workers=2, worker_factory=factory) as evaluator:
        before = evaluator.pids
        with pytest.raises(ValueError, match=r"candidate \(0, 0\) raises"):
            evaluator.evaluate(*gens[0][:2])
        started = time.monotonic()
        after = evaluator.pids  # waits for the replacement's build, not for the stalled chunk
        assert after[0] == before[0] and after[1] != before[1]
        assert time.monotonic() - started < 30
        deadline = time.monotonic() + 10
        while alive(before[1]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(before[1])
        np.testing.assert_array_equal(evaluator.evaluate(*gens[1][:2])[0], gens[1][2])
        assert evaluator.restarts == 0  # nothing died on its own
    stall.unlink()
    assert not ray.is_initialized()


def test_ray_refuses_an_actor_that_draws_other_random_numbers():
    """An actor on a node with another NumPy would expand a key into another vector than the one
    ``tell`` credits with its fitness: refused when it starts, and Ray is shut down again."""
    ray = pytest.importorskip("ray", reason='ray is not installed (pip install -e ".[test]" brings it)')
    factory = functools.partial(FaultyWorker, streams_digest="0123456789abcdef")
    with pytest.raises(RuntimeError, match=r"^the Ray actor on \S+ \(pid \d+\) draws other random numbers than this "
                                           rf"process \(NumPy {np.__version__} there, {np.__version__} here\): every "
                                           r"node needs the same NumPy$"):
        make_evaluator("ray", SPEC, workers=1, worker_factory=factory)
    assert not ray.is_initialized()


def test_make_evaluator_refuses_bad_input():
    with pytest.raises(ValueError, match="unknown evaluator 'threads'; expected one of serial, processes, ray"):
        make_evaluator("threads", SPEC)
    with pytest.raises(ValueError, match="for the ray evaluator only"):
        make_evaluator("processes", SPEC, address="auto")
    with pytest.raises(ValueError, match="workers must be a positive integer, got 0"):
        make_evaluator("processes", SPEC, workers=0)
    # the serial evaluator took workers=8 and ran one, without a word
    with pytest.raises(ValueError, match=r"the serial evaluator runs one worker, in this process: workers must be 1 "
                                         r"\(or None\), got 8 \(use the processes evaluator for more\)"):
        make_evaluator("serial", SPEC, workers=8)
    assert set(EVALUATORS) == {"serial", "processes", "ray"}


def test_fractional_episode_numbers_are_refused_not_cut(generations):
    """evaluate_params cut [0.9, 1.5] to episodes 0 and 1 (what Worker.evaluate_params refuses)."""
    (sampler, keys, _, _), _ = generations[0][0], None
    with make_evaluator("serial", SPEC, workers=None) as serial:
        with pytest.raises(ValueError, match=r"episode numbers must be non-negative integers, got \[0.9, 1.5\]"):
            serial.evaluate_params(sampler.params(keys[0]), "default", [0.9, 1.5])
        with pytest.raises(ValueError, match=r"got \[-1\]"):
            serial.evaluate_params(sampler.params(keys[0]), "default", [-1])


def test_a_worker_that_cannot_build_reports_why():
    spec = WorkerSpec(batch_size=1)
    object.__setattr__(spec.task, "name", "snake")  # past the config's own check: fails in the worker
    with pytest.raises(ValueError, match="unknown task 'snake'") as info:
        ProcessEvaluator(spec, workers=1)
    assert any("raised in a spikehebb worker" in note for note in info.value.__notes__)


def test_split_and_batch_size():
    assert split_evenly(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert split_evenly([1, 2], 5) == [[1], [2]]
    assert EvaluatorConfig(workers=16).batch(500) == 32 and EvaluatorConfig(workers=2).batch(500) == 63
    # a worker's share in the fewest equal batches of at most 64: 100 -> 2 x 50, 250 -> 4 x 63, 64 -> 1 x 64
    assert [EvaluatorConfig(workers=2).batch(p) for p in (200, 128, 130, 64, 7)] == [50, 64, 33, 32, 4]
    assert EvaluatorConfig(workers=8).batch(3) == 1  # workers capped at the 3 candidates
    assert EvaluatorConfig(workers=100).n_workers(4) == 4 and EvaluatorConfig("serial").n_workers(8) == 1
    # the default batch lets all workers' envs take at most 60% of the free memory; a given one stays
    two = EvaluatorConfig(workers=2)
    assert two.batch(500, slot_mb=64, available_mb=8000) == 37  # int(0.6 * 8000 / (2 * 64))
    assert two.batch(500, slot_mb=64, available_mb=100_000) == 63 and two.batch(500, 64, None) == 63
    assert two.batch(500, slot_mb=64, available_mb=10) == 1
    assert EvaluatorConfig(workers=2, batch_size=50).batch(500, 64, 8000) == 50


def test_a_pool_that_could_never_run_a_request_is_refused():
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match=f"max_failures must be a positive integer, got {bad}"):
            ProcessEvaluator(SPEC, workers=1, max_failures=bad)


def test_ray_refuses_a_bad_max_failures_or_workers_before_it_starts_ray():
    ray = pytest.importorskip("ray")
    from spikehebb.evaluators import RayEvaluator

    before = ray.is_initialized()
    with pytest.raises(ValueError, match="max_failures must be a positive integer, got 0"):
        RayEvaluator(SPEC, workers=1, max_failures=0)
    with pytest.raises(ValueError, match="workers must be a positive integer, got 0"):
        RayEvaluator(SPEC, workers=0)
    assert ray.is_initialized() == before  # not started for a pool it would refuse


# ------------------------------------------------------------------- hung workers
# The processes evaluator's stall timeout: a worker that stays alive but makes no progress (a
# deadlock, a C library that never returns) is stopped and replaced as a dead one is, its work run
# again with the same numbers; one that keeps hanging ends in WorkerCrashError; a slow worker that
# finishes lifetimes is left alone; a signal still interrupts the wait.

#: A healthy worker here finishes its first lifetime well under a second after it is sent a
#: request (four 80-step lifetimes in lockstep): 8 s leaves room for a machine loaded by the
#: suite's other processes and a training run.
STALL_S = 8.0


@pytest.fixture
def no_hang():
    """Fail, instead of waiting for ever, where an evaluator would wait on a hung worker for ever
    (as it did before the stall timeout)."""

    def hung(signum, frame):
        raise TimeoutError("the evaluator waited on a hung worker for 120 s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(120)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def stall_generation(generations):
    """The first of ``generations``: (sampler, keys, fitness, env_steps), the serial results."""
    return generations[0][0]


def test_a_hung_worker_is_replaced_and_its_work_run_again(stall_generation, tmp_path, no_hang):
    """The worker that starts a lifetime of candidate 5 hangs (once): it had been waited for for
    ever. Now it is stopped after stall_timeout, replaced, and the numbers are the serial ones."""
    sampler, keys, fitness, steps = stall_generation
    marker = tmp_path / "hung"
    factory = functools.partial(HangingWorker, hang_on=(0, 5), marker=str(marker))
    with ProcessEvaluator(SPEC, workers=2, worker_factory=factory, stall_timeout=STALL_S) as evaluator:
        before = evaluator.pids
        started = time.monotonic()
        with pytest.warns(RuntimeWarning, match=rf"made no progress \(finished no lifetime\) for {STALL_S:g} s "
                                                r"\(stall_timeout\) running evaluate_claims: taken for hung") as record:
            got, got_steps = evaluator.evaluate(sampler, keys)
        assert time.monotonic() - started < 60  # not the hour the worker sleeps
        assert not any("died" in str(w.message) for w in record)
        assert marker.exists() and evaluator.restarts == 1
        replaced = [a != b for a, b in zip(evaluator.pids, before)]
        assert sum(replaced) == 1
        assert not alive(before[replaced.index(True)])  # stopped, not left to sleep
        np.testing.assert_array_equal(got, fitness)
        assert got_steps == steps
        np.testing.assert_array_equal(evaluator.evaluate(sampler, keys)[0], fitness)  # and it goes on


def test_gives_up_on_a_candidate_that_always_hangs_its_worker(stall_generation, no_hang):
    sampler, keys, _, _ = stall_generation
    factory = functools.partial(HangingWorker, hang_on=(0, 2), marker=None)
    with ProcessEvaluator(SPEC, workers=1, worker_factory=factory, max_failures=2, stall_timeout=2.0) as evaluator:
        with pytest.warns(RuntimeWarning, match="made no progress"):
            with pytest.raises(WorkerCrashError, match=r"^evaluate: the same share of the work hung its worker 2 times "
                                                       r"in a row \(last: no progress for 2 s: taken for hung\); "
                                                       r"giving up$"):
                evaluator.evaluate(sampler, keys)
        pids = evaluator.pids
    assert not any(alive(p) for p in pids if p is not None)


def test_a_build_that_always_hangs_ends_in_worker_crash_error(no_hang):
    started = time.monotonic()
    factory = functools.partial(HangingWorker, hang_in_build=True, marker=None)
    with pytest.warns(RuntimeWarning, match=r"did not finish building within 2 s \(build_timeout\): taken for hung"):
        with pytest.raises(WorkerCrashError, match=r"^worker processes hung 2 times in a row while building their "
                                                   r"network \(last: no answer within 2 s: taken for hung\)$"):
            ProcessEvaluator(SPEC, workers=2, worker_factory=factory, max_failures=2, build_timeout=2.0)
    assert time.monotonic() - started < 60


def test_a_build_that_hangs_once_is_replaced(stall_generation, tmp_path, no_hang):
    """The timeout must exceed a real build (spawn and imports: a few seconds on the NumPy
    network, ten or so on a loaded machine) for the replacement to get through: this one waits
    that long for the hung one."""
    sampler, keys, fitness, steps = stall_generation
    marker = tmp_path / "hung"
    factory = functools.partial(HangingWorker, hang_in_build=True, marker=str(marker))
    with pytest.warns(RuntimeWarning, match=r"did not finish building within 20 s"):
        evaluator = ProcessEvaluator(SPEC, workers=2, worker_factory=factory, build_timeout=20.0)
    with evaluator:
        assert marker.exists() and None not in evaluator.pids and len(set(evaluator.pids)) == 2
        got, got_steps = evaluator.evaluate(sampler, keys)
        np.testing.assert_array_equal(got, fitness)
        assert got_steps == steps


def test_a_slow_worker_that_makes_progress_is_not_stopped(stall_generation, recwarn, no_hang):
    """Each lifetime takes over a second (one slot: one lifetime at a time), the request
    more than twice stall_timeout: the worker's heartbeat, not the request's length, counts."""
    sampler, keys, fitness, steps = stall_generation
    spec = WorkerSpec(SPEC.task, SPEC.agent, batch_size=1)
    factory = functools.partial(HangingWorker, slow_s=1.0)
    with ProcessEvaluator(spec, workers=1, worker_factory=factory, stall_timeout=4.0) as evaluator:
        pids = evaluator.pids
        started = time.monotonic()
        got, got_steps = evaluator.evaluate(sampler, keys)
        assert time.monotonic() - started > 8.0  # 8 lifetimes of > 1 s
        assert evaluator.restarts == 0 and evaluator.pids == pids
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    np.testing.assert_array_equal(got, fitness)  # the batch size does not change the numbers
    assert got_steps == steps


def test_a_signal_still_interrupts_the_wait(stall_generation):
    """The wait for workers now wakes for stall checks: Ctrl-C (here SIGALRM's handler raising)
    still ends it at once, not at the stall timeout, and the hung worker is stopped."""
    sampler, keys, _, _ = stall_generation

    class Interrupted(KeyboardInterrupt):
        pass

    def interrupt(signum, frame):
        raise Interrupted

    factory = functools.partial(HangingWorker, hang_on=(0, 0), marker=None)
    with ProcessEvaluator(SPEC, workers=1, worker_factory=factory, stall_timeout=600.0) as evaluator:
        pid = evaluator.pids[0]
        previous = signal.signal(signal.SIGALRM, interrupt)
        signal.setitimer(signal.ITIMER_REAL, 2.0)
        started = time.monotonic()
        try:
            with pytest.raises(Interrupted):
                evaluator.evaluate(sampler, keys)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        assert time.monotonic() - started < 30
        assert not alive(pid)


def test_timeouts_are_checked_and_default_to_half_an_hour():
    assert ProcessEvaluator.stall_timeout == ProcessEvaluator.build_timeout == STALL_TIMEOUT_S == 1800
    for name in ("stall_timeout", "build_timeout"):
        for bad in (0, -1, float("nan"), float("inf"), "60", True, 10**400):
            with pytest.raises(ValueError, match=rf"^{name} must be a positive number of seconds or None, "
                                                 rf"got {bad!r}$"):
                ProcessEvaluator(SPEC, workers=1, **{name: bad})
    with pytest.raises(ValueError, match="^stall_timeout must be a positive number of seconds or None, got 0$"):
        make_evaluator("processes", SPEC, workers=1, stall_timeout=0)  # make_evaluator passes it on
    with make_evaluator("processes", SPEC, workers=1, stall_timeout=None, build_timeout=np.float64(600)) as evaluator:
        assert evaluator.stall_timeout is None and evaluator.build_timeout == 600.0
    # the config's settings, which a training run passes on (spikehebb train --stall-timeout)
    assert EvaluatorConfig().stall_timeout == EvaluatorConfig().build_timeout == STALL_TIMEOUT_S
    for name in ("stall_timeout", "build_timeout"):
        for bad in (0, -1, float("nan"), float("inf"), "60", True, 10**400):
            with pytest.raises(ValueError, match=rf"^evaluator: {name} must be a positive number of seconds or None, "
                                                 rf"got {bad!r}$"):
                EvaluatorConfig(**{name: bad})
        config = EvaluatorConfig(**{name: np.int64(60)})
        assert getattr(config, name) == 60.0 and type(getattr(config, name)) is float  # stored plain
        assert getattr(EvaluatorConfig(**{name: None}), name) is None

