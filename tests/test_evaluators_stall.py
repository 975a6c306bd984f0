"""The processes evaluator's stall timeout: a worker that stays alive but makes no progress (a
deadlock, a C library that never returns) is stopped and replaced as a dead one is, its work run
again with the same numbers; one that keeps hanging ends in WorkerCrashError; a slow worker that
finishes lifetimes is left alone; a signal still interrupts the wait."""

import functools
import os
import signal
import time

import numpy as np
import pytest

from spikehebb.config import TaskConfig, WorkerSpec
from spikehebb.es import get_strategy
from spikehebb.evaluators import STALL_TIMEOUT_S, ProcessEvaluator, SerialEvaluator, WorkerCrashError, make_evaluator
from spikehebb.worker import HangingWorker

pytestmark = pytest.mark.slow

EPISODE = {"burn_in_steps": 10, "grace_steps": 20}
SPEC = WorkerSpec(TaskConfig("ant", ("default",), 80, EPISODE), batch_size=4)
POPSIZE = 8
#: A healthy worker here finishes its first lifetime well under a second after it is sent a
#: request (four 80-step lifetimes in lockstep): 8 s leaves room for a machine loaded by the
#: suite's other processes and a training run.
STALL_S = 8.0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


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
def generation():
    """One generation of OpenAI-ES keys with its sampler and the serial results."""
    strategy = get_strategy("openai-es", n_params=SPEC.genome().n_params, popsize=POPSIZE, seed=1)
    keys, sampler = strategy.ask(), strategy.sampler()
    with SerialEvaluator(SPEC) as serial:
        fitness, steps = serial.evaluate(sampler, keys)
    return sampler, keys, fitness, steps


def test_a_hung_worker_is_replaced_and_its_work_run_again(generation, tmp_path, no_hang):
    """The worker that starts a lifetime of candidate 5 hangs (once): it had been waited for for
    ever. Now it is stopped after stall_timeout, replaced, and the numbers are the serial ones."""
    sampler, keys, fitness, steps = generation
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


def test_gives_up_on_a_candidate_that_always_hangs_its_worker(generation, no_hang):
    sampler, keys, _, _ = generation
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


def test_a_build_that_hangs_once_is_replaced(generation, tmp_path, no_hang):
    """The timeout must exceed a real build (a few seconds, more on a loaded machine) for the
    replacement to get through: this one waits that long for the hung one."""
    sampler, keys, fitness, steps = generation
    marker = tmp_path / "hung"
    factory = functools.partial(HangingWorker, hang_in_build=True, marker=str(marker))
    with pytest.warns(RuntimeWarning, match=r"did not finish building within 30 s"):
        evaluator = ProcessEvaluator(SPEC, workers=2, worker_factory=factory, build_timeout=30.0)
    with evaluator:
        assert marker.exists() and None not in evaluator.pids and len(set(evaluator.pids)) == 2
        got, got_steps = evaluator.evaluate(sampler, keys)
        np.testing.assert_array_equal(got, fitness)
        assert got_steps == steps


def test_a_slow_worker_that_makes_progress_is_not_stopped(generation, recwarn, no_hang):
    """Each lifetime takes over a second (one slot: one lifetime at a time), the request
    more than twice stall_timeout: the worker's heartbeat, not the request's length, counts."""
    sampler, keys, fitness, steps = generation
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


def test_a_signal_still_interrupts_the_wait(generation):
    """The wait for workers now wakes for stall checks: Ctrl-C (here SIGALRM's handler raising)
    still ends it at once, not at the stall timeout, and the hung worker is stopped."""
    sampler, keys, _, _ = generation

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
