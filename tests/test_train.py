"""Training runs end to end: train -> resume -> evaluate, kill -9 and resume, the CLI, bad config."""

import dataclasses
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from spikehebb.assess import assess, load_run, record_traces
from spikehebb.cli import main as cli_main
from spikehebb.store import RunStore
from spikehebb.config import AgentConfig, StrategyConfig, TaskConfig
from spikehebb.train import TrainConfig, train
from spikehebb.worker import Worker

TINY = dict(popsize=4, generations=3, max_env_steps=60, train_variants=("default",), batch_size=4)


def tiny(tmp_path, **changes):
    """A tiny run's config, from the flat field names older run files use."""
    return TrainConfig.from_dict({**TINY, "evaluator": "serial", "runs_dir": str(tmp_path), "run_name": "run", **changes})


def history(path):
    with RunStore.open(path) as store:
        return store.history(), store.load_checkpoint()


# The processes run on the NumPy network: each of its two train calls spawns two workers, which
# then build with no Brian2 import or build (test_evaluate.py's processes match the serial numbers
# bit for bit on Brian2).
@pytest.mark.parametrize("evaluator, backend", [("serial", "brian2"), ("processes", "numpy")], ids=["serial", "processes"])
def test_train_resume_evaluate(tmp_path, evaluator, backend):
    config = tiny(tmp_path, evaluator=evaluator, workers=2, backend=backend)
    path = train(config, progress=False, stop_after=2)
    h, ckpt = history(path)
    assert len(h["generation"]) == 2 and ckpt.generation == 2
    assert h["fitness_raw"].shape == (2, 4) and np.all(np.isfinite(h["fitness_raw"]))
    assert np.all(h["env_steps"] == 4 * 60)  # no early end within 20 network steps
    assert train(resume=path, progress=False) == path
    h, ckpt = history(path)
    assert list(h["generation"]) == [0, 1, 2]

    # The same seed without a stop gives the same numbers, whichever evaluator ran it.
    straight = train(tiny(tmp_path / "straight", backend=backend), progress=False)
    h2, ckpt2 = history(straight)
    np.testing.assert_array_equal(h["fitness_raw"], h2["fitness_raw"])
    np.testing.assert_array_equal(ckpt.mean, ckpt2.mean)

    # The stored best candidate reproduces its training fitness when re-run on its lifetime.
    config_back, best = load_run(path, "best")
    assert config_back == config
    assert h["best_fitness"][-1] == np.max(h["fitness_raw"])
    g, i = np.unravel_index(np.argmax(h["fitness_raw"]), h["fitness_raw"].shape)
    worker = Worker(config.worker_spec())
    try:
        again, _ = worker.lifetimes(best[None], "default", [(int(g), int(i), 0)])  # Worker.training_lifetime's seeds
    finally:
        worker.close()
    assert again[0] == h["fitness_raw"][g, i]
    config_back, mean = load_run(path)
    assert not np.array_equal(mean, best)
    results = assess(config, mean, ["default", "damage_left"], episodes=3, max_env_steps=60)
    assert [r.variant for r in results] == ["default", "damage_left"]
    assert all(r.fitness.shape == (3,) and np.all(np.isfinite(r.fitness)) for r in results)
    assert results[0].trained_on and not results[1].trained_on


def test_a_run_file_copied_under_another_name_resumes_with_a_config_naming_the_copy(tmp_path):
    """A study may take over a finished run of another (same settings, its own run_name and
    folder): the name and folder are not settings; the seed is."""
    import shutil

    path = train(tiny(tmp_path, generations=1), progress=False)
    copy = tmp_path / "study" / "arm_s0.h5"
    copy.parent.mkdir()
    shutil.copy(path, copy)
    mine = tiny(tmp_path / "study", run_name="arm_s0", generations=2)
    assert train(mine, resume=copy, progress=False) == copy
    h, _ = history(copy)
    np.testing.assert_array_equal(h["fitness_raw"], history(train(tiny(tmp_path / "straight", generations=2), progress=False))[0]["fitness_raw"])
    with pytest.raises(ValueError, match="seed: 0 -> 1"):
        train(tiny(tmp_path / "study", run_name="arm_s0", generations=2, seed=1), resume=copy, progress=False)
    # fewer generations than the file holds: refused, not ignored (a study would report the longer run)
    before = copy.read_bytes()
    with pytest.raises(ValueError, match=f"{copy} holds 2 generation\\(s\\) and a run is not shortened: ask for "
                                         "generations >= 2, not 1"):
        train(tiny(tmp_path / "study", run_name="arm_s0", generations=1), resume=copy, progress=False)
    assert copy.read_bytes() == before


def test_static_and_coevolve_runs(tmp_path):
    for name, changes, n_params in (
        ("static", dict(static=True), 28 * 128 + 128 * 64 + 64 * 8),
        ("coevolve", dict(coevolve=True, rule="A"), 2 * (28 * 128 + 128 * 64 + 64 * 8)),
    ):
        path = train(tiny(tmp_path, run_name=name, generations=1, **changes), progress=False)
        with RunStore.open(path) as store:
            assert store.n_params == n_params
            assert np.all(np.isfinite(store.history()["fitness_raw"]))


def test_kill_and_resume_equals_an_uninterrupted_run(tmp_path):
    """kill -9 in the middle of a run loses at most the generation in flight; resuming gives the
    same generations as a run that was never stopped."""
    args = [
        sys.executable, "-m", "spikehebb.cli", "train", "--popsize", "4", "--generations", "6",
        "--max-env-steps", "60", "--train-variants", "default", "--evaluator", "serial",
        "--batch-size", "4", "--runs-dir", str(tmp_path / "killed"), "--no-progress", "--seed", "3",
        "--backend", "numpy",  # the process starts with no Brian2 import or build
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    path = None
    while time.monotonic() < deadline:
        files = list((tmp_path / "killed").glob("*.h5"))
        if files:
            path = files[0]
            try:
                with RunStore.open(path) as store:
                    if store.generations_completed >= 2:
                        break
            except Exception:  # the file may be between creation and its first write
                pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert path is not None
    done = RunStore.open(path).generations_completed
    assert 2 <= done < 6, "the run finished before it could be killed"

    train(resume=path, progress=False)
    resumed, ckpt = history(path)
    config = TrainConfig.from_dict(RunStore.open(path).config)
    straight = train(TrainConfig.from_dict({**config.to_dict(), "runs_dir": str(tmp_path / "straight")}), progress=False)
    expected, ckpt2 = history(straight)
    np.testing.assert_array_equal(resumed["fitness_raw"], expected["fitness_raw"])
    np.testing.assert_array_equal(ckpt.mean, ckpt2.mean)
    np.testing.assert_array_equal(ckpt.best_params, ckpt2.best_params)


def test_traces_record_the_lifetime_that_assess_scores(tmp_path):
    path = train(tiny(tmp_path, generations=1), progress=False)
    config, best = load_run(path)
    fitness = assess(config, best, ["damage_left"], episodes=1, max_env_steps=60)[0].fitness[0]
    record_traces(path, config, best, ["damage_left"], episodes=1, synapses=50, max_env_steps=60)
    import h5py

    with h5py.File(path, "r") as f:
        ep = f["traces/damage_left/episode_0"]
        assert ep.attrs["steps"] == 20
        assert ep["rates/layer_0"].shape == (20, 28) and ep["actions"].shape == (20, 8)
        assert ep["weights/layer_2"].shape == (20, 50)
        np.testing.assert_allclose(ep.attrs["fitness"], fitness)
        np.testing.assert_allclose(ep["rewards/reward_progress"][:].sum(), fitness, rtol=1e-6)
        # The actions are the network's last-layer rates of the same step.
        np.testing.assert_array_equal(ep["actions"][:], ep["rates/layer_3"][:])
        # Weights change step to step (the rule works) and start in U[-0.1, 0.1].
        w = ep["weights/layer_1"][:]
        assert np.abs(w[0]).max() <= 0.1 and not np.array_equal(w[0], w[-1])


def test_record_traces_refuses_a_store_beside_a_traces_file(tmp_path):
    path = train(tiny(tmp_path, generations=1), progress=False)
    config, best = load_run(path)
    with RunStore.open(path, "a") as store, pytest.raises(ValueError, match="give store or into, not both"):
        record_traces(path, config, best, ["damage_left"], into=tmp_path / "traces.h5", store=store)
    assert not (tmp_path / "traces.h5").exists()


def test_cli_train_inspect_evaluate_plot(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert cli_main(["train", "--popsize", "4", "--generations", "1", "--max-env-steps", "50",
                     "--train-variants", "default", "--evaluator", "serial", "--runs-dir", str(runs),
                     "--no-progress"]) == 0
    (path,) = runs.glob("*.h5")
    said = capsys.readouterr()
    # the file is named once, as the run starts (stderr); the end says what it now holds (stdout)
    assert said.err == f"run file: {path}\n"
    with RunStore.open(path) as store:
        assert said.out == f"done: {path} holds {store.totals()}\n"
    # one generation in the singular; a run of seconds in seconds, not "0.00 h"
    assert re.match(rf"done: {re.escape(str(path))} holds 1 generation, [\d,]+ env steps, \d+ s; best fitness ",
                    said.out), said.out
    assert cli_main(["inspect", str(path)]) == 0
    assert "1 generation, " in capsys.readouterr().out
    assert cli_main(["evaluate", str(path), "--morphology", "default", "long_front", "--episodes", "2",
                     "--eval-steps", "50", "--eval-workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "default" in out and "long_front" in out and "Hebbian ABCD_lr (2 episodes)" in out
    # --no-early-end: every lifetime runs to the step limit, and the table says so
    assert cli_main(["evaluate", str(path), "--morphology", "default", "--episodes", "2",
                     "--eval-steps", "300", "--eval-workers", "1", "--no-early-end"]) == 0
    assert "at most 260 network steps, no early end by the task's rules (--no-early-end)" in capsys.readouterr().out
    assert cli_main(["plot", str(path), "-o", str(tmp_path / "curve.png")]) == 0
    assert (tmp_path / "curve.png").stat().st_size > 1000


def test_evaluate_first_input_tests_with_the_reset_observation_and_says_so(tmp_path, capsys):
    """``evaluate --first-input reset`` scores the lifetimes a config with ``first_input="reset"``
    scores (not the settled ones), and the table says what the network saw first and what it saw
    in training; a run trained with reset is tested with it unless told otherwise."""
    path = train(tiny(tmp_path, generations=1, backend="numpy"), progress=False)  # every table builds no Brian2 network
    config, params = load_run(path)
    flags = ["--morphology", "default", "--episodes", "2", "--eval-steps", "120", "--eval-workers", "1"]

    def table(run, *more):
        assert cli_main(["evaluate", str(run), *flags, *more]) == 0
        return capsys.readouterr().out

    def mean(out):
        return float(next(line for line in out.splitlines() if line.startswith("default")).split()[2])

    reset_config = dataclasses.replace(config, task=config.task.with_first_input("reset"))
    (settled,), (reset,) = (assess(c, params, ["default"], 2, 1, 120) for c in (config, reset_config))
    assert settled.mean != reset.mean  # the first input reaches the scores
    plain, told = table(path), table(path, "--first-input", "reset")
    assert mean(plain) == round(settled.mean, 1) and mean(told) == round(reset.mean, 1)
    assert "first input" not in plain and table(path, "--first-input", "settled") == plain
    assert told.endswith("first input: the one env.reset() returned before the burn-in (--first-input reset; "
                         "the run trained with settled).\n")
    # Traces go into the run as its own lifetimes: another first input is refused before anything is written.
    with pytest.raises(SystemExit):
        cli_main(["evaluate", str(path), *flags, "--first-input", "reset", "--traces"])
    assert "--traces records the run's own lifetimes into it, which trained with --first-input settled; drop " \
           "--first-input reset to record them" in capsys.readouterr().err
    with h5py.File(path) as f:
        assert "traces" not in f
    table(path, "--first-input", "settled", "--traces")  # the run's own: the traces say what the network saw first
    with h5py.File(path) as f:
        assert f["traces/default/episode_0"].attrs["first_input"] == "settled"
        rules = json.loads(f["traces/default/episode_0"].attrs["episode_rules"])  # the lifetime's own, --eval-steps 120
        assert (rules["max_env_steps"], rules["patience"], rules["end_on_terminated"]) == (120, 30, True)
    table(path, "--first-input", "settled", "--traces", "--overwrite-traces", "--no-early-end")
    with h5py.File(path) as f:
        rules = json.loads(f["traces/default/episode_0"].attrs["episode_rules"])
        assert rules["max_env_steps"] == 120 and not rules["end_on_terminated"] and rules["patience"] > 120
    reset_run = tiny(tmp_path, generations=1, run_name="reset", backend="numpy")
    trained_reset = train(dataclasses.replace(reset_run, task=reset_run.task.with_first_input("reset")), progress=False)
    own = table(trained_reset)
    assert own.endswith("first input: the one env.reset() returned before the burn-in (reset, as in training).\n")
    assert table(trained_reset, "--first-input", "settled").endswith(
        "first input: the observation after the burn-in (--first-input settled; the run trained with reset).\n")


def test_task_config_with_first_input_keeps_the_other_episode_fields():
    task = TaskConfig("ant", episode={"grace_steps": 20})
    reset = task.with_first_input("reset")
    assert reset.episode == {"grace_steps": 20, "first_input": "reset"} and reset.make().episode.first_input == "reset"
    assert reset.with_first_input("settled") == task  # settled is no entry, as without the flag
    assert TaskConfig("ant").with_first_input("settled").episode is None
    with pytest.raises(ValueError, match=r"first_input must be one of \('settled', 'reset'\), got 'raw'"):
        task.with_first_input("raw")


def test_bad_config_gives_clear_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="popsize must be even for OpenAI-ES, whose candidates come in mirrored pairs"):
        StrategyConfig(popsize=5)
    StrategyConfig("cma", popsize=5)  # CMA-ES takes any population
    with pytest.raises(ValueError, match=r"unknown ant variant\(s\) \['damage_middle'\]; valid: default, damage_left"):
        TaskConfig(train_variants=("default", "damage_middle"))
    with pytest.raises(ValueError, match="unknown rule 'ABCDE'"):
        AgentConfig(rule="ABCDE")
    with pytest.raises(ValueError, match="unknown strategy 'pso'"):
        StrategyConfig("pso")
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["inspect", str(tmp_path / "missing.h5")])
    assert exit_info.value.code == 2
    assert "missing.h5" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["train", "--popsize", "7", "--runs-dir", str(tmp_path)])
    assert "popsize must be even" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["train", "--rule", "XYZ"])
    assert "unknown --rule 'XYZ'; expected one of A, AD," in capsys.readouterr().err
    # A run file is never overwritten.
    path = train(tiny(tmp_path, generations=1), progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        train(tiny(tmp_path, generations=1), progress=False)
    assert RunStore.open(path).generations_completed == 1


@pytest.mark.parametrize("script, variant", [("run_ant.py", "damage_left"), ("run_car.py", "push_left")])
def test_experiment_scripts_run_end_to_end(tmp_path, capsys, script, variant):
    """The scripts users run, as subprocesses with a tiny budget: a run file, then the table."""
    from spikehebb.console import experiment_main

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, str(root / "experiments" / script), "--popsize", "4", "--generations", "1",
         "--max-env-steps", "50", "--evaluator", "serial", "--runs-dir", str(tmp_path), "--no-progress",
         "--morphology", "default", variant, "--episodes", "2", "--eval-steps", "50", "--eval-workers", "1",
         "--backend", "numpy"],  # the script's process starts with no Brian2 import or build
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (path,) = tmp_path.glob("*.h5")
    # named once as the run starts (stderr), then what it holds once trained (stdout), then the table
    assert (out.stdout + out.stderr).count("run file: ") == 1 and f"run file: {path}\n" in out.stderr
    assert out.stdout.startswith(f"done: {path} holds 1 generation, "), out.stdout
    rows = [line.split()[0] for line in out.stdout.splitlines() if line.split() and line.split()[0] in ("default", variant)]
    assert rows == ["default", variant]
    # bad flags: exit status 2 and the error (in this process, through what the script runs: one
    # more process would spend seconds on imports to parse them)
    capsys.readouterr()
    with pytest.raises(SystemExit) as bad:
        experiment_main(script.removeprefix("run_").removesuffix(".py"), script, ["--popsize", "5", "--runs-dir", str(tmp_path)])
    assert bad.value.code == 2 and "popsize must be even" in capsys.readouterr().err


def test_progress_in_a_log_file_is_one_line_per_generation(tmp_path, capsys):
    """stderr that is not a terminal (nohup, a log file) gets one plain line per generation, with
    the fitness the run file holds and the time left; progress=False prints nothing."""
    path = train(tiny(tmp_path, generations=2), progress=True, stop_after=1)
    lines = capsys.readouterr().err.strip().splitlines()
    with RunStore.open(path) as store:
        raw = store.history()["fitness_raw"]
    assert len(lines) == 1 and "\r" not in lines[0]
    assert lines[0].startswith("ant ") and " generation 1/2: " in lines[0]
    assert f"mean {np.nanmean(raw[0]):.1f}, max {np.nanmax(raw[0]):.1f}" in lines[0]
    assert "env steps/s" in lines[0] and " to generation" not in lines[0]  # this call ends here
    train(resume=path, progress=True)
    last = capsys.readouterr().err.strip().splitlines()
    assert len(last) == 1 and " generation 2/2: " in last[0] and " to generation" not in last[0]
    train(tiny(tmp_path / "quiet", generations=1), progress=False)
    assert capsys.readouterr().err == ""


def test_progress_lines_say_how_long_is_left():
    import io

    from spikehebb.train import _Progress

    stream = io.StringIO()
    with _Progress(tiny(Path("unused"), generations=10), 0, True, stream=stream) as shown:
        shown.update(0, np.array([1.0, 3.0]), 3.0, 500, 2.0, 10)
        shown.update(1, np.array([2.0, np.nan]), 3.5, 400, 4.0, 10)
        shown.update(2, np.array([np.nan, np.nan]), 3.5, 300, 3.0, 10)
    first, second, third = stream.getvalue().splitlines()
    assert first.endswith("mean 2.0, max 3.0, best so far 3.0; 2.0 s, 250 env steps/s; 18 s to generation 10")
    # the mean wall so far (3 s) times the 8 generations left; a failed candidate is said, not hidden
    assert second.endswith("mean 2.0, max 2.0 (1 of 2 candidates failed, non-finite: mean and max over the rest), "
                           "best so far 3.5; 4.0 s, 100 env steps/s; 24 s to generation 10")
    assert third.endswith("mean nan, max nan (2 of 2 candidates failed, non-finite), "
                          "best so far 3.5; 3.0 s, 100 env steps/s; 21 s to generation 10")


def test_a_stop_signal_swallowed_where_it_landed_is_raised_after_the_generation():
    """A handler's exception is lost when the signal lands in a weakref callback or a __del__; the
    signal is recorded, so the check after each generation raises it. The handlers are restored."""
    import os

    from spikehebb.stopping import StopSignals, Terminated

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with StopSignals() as stop:
        stop.check()  # nothing received: no-op
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except Terminated:
            pass  # as if swallowed
        with pytest.raises(Terminated):
            stop.check()
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="no SIGUSR1 on this platform")
def test_sigusr1_stops_after_the_generation_in_flight_is_stored(tmp_path, monkeypatch, sigusr1_after_evaluation):
    """SIGUSR1 that lands while generation 2 is evaluated lets it finish and be stored, then stops
    as SIGTERM does (exit 138); resumed, the run is the uninterrupted one, bit for bit."""
    from spikehebb.train import TrainingInterrupted

    sigusr1_after_evaluation(2)
    before = signal.getsignal(signal.SIGUSR1)
    with pytest.raises(TrainingInterrupted) as info:
        train(tiny(tmp_path), progress=False)
    path = tmp_path / "run.h5"
    assert str(info.value) == (f"stopped by SIGUSR1 after the generation in flight: {path} holds 2 finished "
                               f"generation(s); continue with --resume {path}")
    assert info.value.exit_code == 128 + signal.SIGUSR1 and info.value.generations == 2
    assert signal.getsignal(signal.SIGUSR1) == before
    assert list(history(path)[0]["generation"]) == [0, 1]

    monkeypatch.undo()
    train(resume=path, progress=False)
    straight = train(tiny(tmp_path / "straight"), progress=False)
    (h, ckpt), (h2, ckpt2) = history(path), history(straight)
    np.testing.assert_array_equal(h["fitness_raw"], h2["fitness_raw"])
    np.testing.assert_array_equal(ckpt.mean, ckpt2.mean)


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="no SIGUSR1 on this platform")
def test_sigusr1_in_the_last_generation_lets_the_run_end(tmp_path, sigusr1_after_evaluation):
    """Nothing is left to stop before: the run ends as it would have (no "continue with --resume")."""
    from spikehebb.stopping import STOP_REQUEST

    before = signal.getsignal(signal.SIGUSR1)
    sigusr1_after_evaluation(3)
    path = train(tiny(tmp_path), progress=False)
    assert list(history(path)[0]["generation"]) == [0, 1, 2]
    assert not STOP_REQUEST.received and signal.getsignal(signal.SIGUSR1) == before  # a run alone forgets it


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="no SIGUSR1 on this platform")
def test_sigusr1_in_a_scripts_final_tests_lets_them_finish(tmp_path, capsys, sigusr1_after):
    """run_ant.py and run_car.py end with their tests: SIGUSR1 there lets them finish and print."""
    import spikehebb.assess
    from spikehebb.cli import experiment_main

    sigusr1_after(spikehebb.assess, "assess", 1)
    experiment_main("ant", "test", ["--popsize", "2", "--generations", "1", "--max-env-steps", "45",
                                    "--evaluator", "serial", "--runs-dir", str(tmp_path), "--no-progress",
                                    "--morphology", "default", "--episodes", "1", "--eval-steps", "45",
                                    "--eval-workers", "1"])
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.split()]
    assert "default" in rows


def test_fitness_floor_raises_each_training_lifetime_and_never_a_test():
    """--fitness-floor 0 (the authors' max(rew_ep, 0)): every training lifetime's fitness is at
    least the floor before the mean over the bodies; NaN stays NaN; test lifetimes are raw."""
    from spikehebb.config import WorkerSpec
    from spikehebb.es import get_strategy
    from spikehebb.worker import Worker

    task = TaskConfig("ant", ("default", "damage_right"), 60)
    plain = Worker(WorkerSpec(task, AgentConfig(), 4, seed=2))
    floored = Worker(WorkerSpec(dataclasses.replace(task, fitness_floor=0.0), AgentConfig(), 4, seed=2))
    try:
        strategy = get_strategy("openai-es", n_params=plain.genome.n_params, popsize=4, seed=2)
        keys, sampler = strategy.ask(), strategy.sampler()
        raw, _ = plain.evaluate_items(sampler, keys, range(8))
        low, _ = floored.evaluate_items(sampler, keys, range(8))
        assert set(raw) == set(low) and any(v < 0 for v in raw.values()), raw  # the floor has work to do
        assert all(low[k] == max(raw[k], 0.0) for k in raw)
        fitness, _ = floored.evaluate(sampler, keys)
        np.testing.assert_array_equal(fitness, [(low[(c, 0)] + low[(c, 1)]) / 2 for c in range(4)])
        params = sampler.params(keys[0])
        np.testing.assert_array_equal(floored.evaluate_params(params, "default", [0, 1])[0],
                                      plain.evaluate_params(params, "default", [0, 1])[0])
    finally:
        plain.close()
        floored.close()
    with pytest.raises(ValueError, match="task: fitness_floor must be a finite number, got nan"):
        TaskConfig("ant", fitness_floor=float("nan"))


def test_init_flag_reaches_the_strategy_and_paper_static_says_how_to_start_as_the_authors(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert cli_main(["train", "--static", "--init", "fan_in", "--popsize", "2", "--generations", "1",
                     "--max-env-steps", "45", "--train-variants", "default", "--evaluator", "serial",
                     "--runs-dir", str(runs), "--no-progress"]) == 0
    (path,) = runs.glob("*.h5")
    with RunStore.open(path) as store:
        assert store.config["strategy"]["init"] == "fan_in"
    with pytest.raises(SystemExit):
        cli_main(["train", "--init", "fan_in", "--runs-dir", str(runs)])
    err = capsys.readouterr().err
    assert "init='fan_in' starts static weights" in err and "a hebbian agent" in err
    with pytest.raises(SystemExit):
        cli_main(["train", "--paper", "--static", "--popsize", "7", "--runs-dir", str(runs)])
    err = capsys.readouterr().err  # the error alone: notes come once the run starts
    assert "popsize must be even" in err and err.count("\n") == 1 and len(list(runs.glob("*.h5"))) == 1
    # --paper on the ant says how to see the first observation as the authors' network did
    static = "note: the authors' static baseline (enajx/ES) started its search at torch's default weights"
    note = "note: the authors' network saw the observation from before the 40 burn-in steps first"
    tiny_paper = ["train", "--paper", "--popsize", "2", "--generations", "1", "--max-env-steps", "45",
                  "--train-variants", "default", "--evaluator", "serial", "--runs-dir", str(runs), "--no-progress"]
    capsys.readouterr()
    assert cli_main([*tiny_paper, "--static", "--run-name", "paper_static"]) == 0
    err = capsys.readouterr().err
    assert static in err and note in err
    assert cli_main([*tiny_paper, "--first-input", "reset", "--run-name", "paper_reset"]) == 0
    err = capsys.readouterr().err
    assert static not in err and note not in err
