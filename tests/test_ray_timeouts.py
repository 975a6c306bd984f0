"""The Ray evaluator's stall and build timeouts (a file of its own: a new Ray actor takes a
minute to start on a loaded machine, and pytest-xdist spreads files, not tests).

An actor that hangs in a lifetime had been waited on for ever: now it is killed and replaced
after ``stall_timeout``, its chunk run again with the serial numbers; one that is slow but
finishes lifetimes is left alone (its heartbeats, not the request's length, count); actors never
built end in WorkerCrashError."""

import functools
import signal
import time
import warnings

import numpy as np
import pytest

from spikehebb.config import AgentConfig, TaskConfig, WorkerSpec
from spikehebb.es import get_strategy
from spikehebb.evaluators import SerialEvaluator, WorkerCrashError, make_evaluator
from spikehebb.worker import CrashOnceWorker, FaultyWorker, HangingWorker

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray", reason='ray is not installed (pip install -e ".[test]" brings it)')

#: One slot: the lifetimes run one at a time, each after the worker's sleep of SLOW_S seconds. The
#: NumPy network: these tests are about the evaluator, and each actor then builds with no Brian2
#: import or build (seconds of CPU, more on a loaded machine).
SPEC = WorkerSpec(TaskConfig("ant", ("default",), 80, {"burn_in_steps": 10, "grace_steps": 20}),
                  AgentConfig(backend="numpy"), batch_size=1)
SLOW_S = 1.0
#: Eight of the slow lifetimes (8 s) pass before the hang: a request longer than the stall timeout,
#: kept alive by its heartbeats (SLOW_S and a lifetime's compute apart: a tenth of a second quiet,
#: up to two or so on a loaded machine).
STALL_S = 7.0
HANG_ON = 8
POPSIZE = 10


@pytest.fixture
def no_hang():
    """Fail, instead of waiting for ever, where an evaluator would wait on a hung actor for ever."""

    def hung(signum, frame):
        raise TimeoutError("the evaluator waited on a hung Ray actor for 600 s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(600)  # a new actor's start and build take a minute on a loaded machine
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert not ray.is_initialized()  # each evaluator started Ray, so it shut it down


def test_a_hung_actor_is_replaced_and_a_slow_one_is_not(no_hang, tmp_path):
    """One actor runs candidates 0-9, each lifetime slowly; it hangs (once) when it starts
    candidate 8's lifetime, after eight slow ones took longer than stall_timeout together: it is
    killed once (the hang), not before (the slow lifetimes), and its replacement gives the serial
    numbers."""
    strategy = get_strategy("openai-es", n_params=SPEC.genome().n_params, popsize=POPSIZE, seed=1)
    keys, sampler = strategy.ask(), strategy.sampler()
    with SerialEvaluator(SPEC) as serial:
        fitness, steps = serial.evaluate(sampler, keys)
    factory = functools.partial(HangingWorker, hang_on=(0, HANG_ON), marker=str(tmp_path / "hung"), slow_s=SLOW_S)
    with make_evaluator("ray", SPEC, workers=1, worker_factory=factory, stall_timeout=STALL_S) as evaluator:
        before = evaluator.pids
        started = time.monotonic()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got, got_steps = evaluator.evaluate(sampler, keys)
        assert time.monotonic() - started > (HANG_ON + POPSIZE) * SLOW_S + STALL_S  # the slow ones, the hang, all again
        assert [str(w.message) for w in caught] == [
            f"spikehebb Ray actor made no progress (finished no lifetime) for {STALL_S:g} s (stall_timeout) running "
            "evaluate: taken for hung, killing it, replacing it and running its chunk again"]
        assert evaluator.restarts == 1 and evaluator.pids != before
    np.testing.assert_array_equal(got, fitness)
    assert got_steps == steps


def test_actors_never_built_end_in_worker_crash_error(no_hang):
    factory = functools.partial(HangingWorker, hang_in_build=True, marker=None)
    started = time.monotonic()
    with pytest.warns(RuntimeWarning, match=r"^1 spikehebb Ray actor\(s\) not built within 3 s \(build_timeout\): "
                                            r"taken for hung or dead, killed and started again$"):
        with pytest.raises(WorkerCrashError, match=r"^Ray actors failed to build 2 times in a row \(last: not built "
                                                   r"within 3 s \(build_timeout\)\): hung, dying, or waiting for CPUs "
                                                   r"the cluster does not have \(one per actor: fewer --workers\?\); "
                                                   r"giving up$"):
            make_evaluator("ray", SPEC, workers=1, worker_factory=factory, max_failures=2, build_timeout=3.0)
    assert time.monotonic() - started < 600  # not the hour the actor sleeps


def test_an_actor_that_dies_while_it_builds_is_started_again(no_hang, tmp_path):
    """Killed in its build (an OOM kill, a lost node; not an error of the build, which would come
    again): it was a raw RayActorError; now it is replaced, as a late one is."""
    factory = functools.partial(CrashOnceWorker, crash_on=None, marker=str(tmp_path / "died"), crash_in_build=True)
    with pytest.warns(RuntimeWarning, match=r"^1 spikehebb Ray actor\(s\) died while building: taken for hung or "
                                            r"dead, killed and started again$"):
        evaluator = make_evaluator("ray", SPEC, workers=1, worker_factory=factory)
    with evaluator:
        assert evaluator.restarts == 1 and (tmp_path / "died").exists()
        got, _ = evaluator.evaluate_params(np.zeros(SPEC.genome().n_params), "default", [0])
    with SerialEvaluator(SPEC) as serial:
        np.testing.assert_array_equal(got, serial.evaluate_params(np.zeros(SPEC.genome().n_params), "default", [0])[0])


def test_a_build_that_raises_is_one_line_at_once(no_hang, tmp_path):
    """An error of the worker's build comes again in a new actor: raised at once, as one line
    (it was Ray's ActorDiedError, its message the whole remote traceback)."""
    armed = tmp_path / "armed"
    armed.touch()
    factory = functools.partial(FaultyWorker, fail_build_while=str(armed))
    with pytest.raises(WorkerCrashError) as raised:
        make_evaluator("ray", SPEC, workers=1, worker_factory=factory)
    assert str(raised.value) == f"a Ray actor could not build its worker: RuntimeError: built while {armed} exists"
    assert isinstance(raised.value.__cause__, ray.exceptions.RayActorError)
