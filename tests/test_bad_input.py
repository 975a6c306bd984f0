"""Faults and bad input (issue 16): a blown-up candidate, contradictory resume flags, late
validation, Ctrl-C, a script read from standard input. Every user mistake is one line, exit 2,
before anything is written."""

import dataclasses
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from spikehebb.cli import main as cli_main
from spikehebb.config import TaskConfig, WorkerSpec
from spikehebb.store import RunStore
from spikehebb.train import TrainConfig, train
from spikehebb.worker import Worker

TINY = ["--popsize", "4", "--generations", "1", "--max-env-steps", "60", "--train-variants", "default",
        "--evaluator", "serial", "--batch-size", "4", "--no-progress"]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_a_blown_up_candidate_ends_its_lifetime_with_nan_and_the_others_are_untouched():
    worker = Worker(WorkerSpec(TaskConfig("ant", ("default",), 60), batch_size=3))
    try:
        rng = np.random.default_rng(0)
        params = rng.normal(0, 0.1, (3, worker.genome.n_params))
        params[1] = 1e20  # overflows float32: inf weights, NaN outputs from the second step
        paths = [(0, 0, 0), (0, 1, 0), (0, 2, 0)]
        fitness, _ = worker.lifetimes(params, "default", paths)
        assert np.isnan(fitness[1]) and np.all(np.isfinite(fitness[[0, 2]]))
        alone, _ = worker.lifetimes(params[[0, 2]], "default", [paths[0], paths[2]])
        np.testing.assert_array_equal(alone, fitness[[0, 2]])
    finally:
        worker.close()


def test_a_run_whose_candidates_blow_up_goes_on_and_records_them(tmp_path):
    config = TrainConfig.from_dict(dict(popsize=4, generations=2, max_env_steps=60, train_variants=("default",),
                                        batch_size=4, evaluator="serial", sigma=1e20, runs_dir=str(tmp_path)))
    path = train(config, progress=False)
    with RunStore.open(path) as store:
        h = store.history()
    assert len(h["generation"]) == 2 and np.isnan(h["fitness_raw"]).all()


def test_resume_refuses_contradictory_flags_and_extends_with_generations(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert cli_main(["train", *TINY, "--runs-dir", str(runs)]) == 0
    (path,) = runs.glob("*.h5")
    capsys.readouterr()
    for flags, change in (
        (["--rule", "AD"], "agent.rule: 'ABCD_lr' -> 'AD'"),
        (["--popsize", "6"], "strategy.popsize: 4 -> 6"),
        (["--seed", "3"], "seed: 0 -> 3"),
        (["--static"], "agent.kind: 'hebbian' -> 'static'"),
        (["--strategy", "cma"], "strategy.name: 'openai-es' -> 'cma'"),
        (["--max-env-steps", "80"], "task.max_env_steps: 60 -> 80"),
    ):
        with pytest.raises(SystemExit) as exc:
            cli_main(["train", "--resume", str(path), *flags])
        assert exc.value.code == 2
        err = one_error_line(capsys)
        assert "was started with other settings" in err and change in err, err
    assert RunStore.open(path).generations_completed == 1
    # Where lifetimes run may change; --generations raises the target of a finished run.
    assert cli_main(["train", "--resume", str(path), "--generations", "2", "--workers", "1", "--no-progress"]) == 0
    assert RunStore.open(path).generations_completed == 2
    # the file records its new length: a later plain --resume goes on to it, inspect shows it
    assert TrainConfig.from_dict(RunStore.open(path).config).generations == 2
    assert "seed 0, 2 generations" in RunStore.open(path).summary()
    capsys.readouterr()
    assert cli_main(["train", "--resume", str(path), "--workers", "1", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"note: {path} already holds 2 generation(s), its length of 2; nothing to run (extend it with " \
           "--generations N, N > 2)" in err
    # a shorter length, or a place for a new file, would be ignored: refused
    for flags, message in ((["--generations", "1"], f"--generations 1 is below the 2 generation(s) {path} holds; give "
                                                    f"N > 2 to extend it (a run is not shortened)"),
                           (["--runs-dir", str(tmp_path / "elsewhere")],
                            f"--runs-dir places a new run's file; a resumed run stays in {path}: drop --runs-dir"),
                           (["--run-name", "other"],
                            f"--run-name names a new run's file; a resumed run keeps {path}: drop --run-name")):
        with pytest.raises(SystemExit) as exc:
            cli_main(["train", "--resume", str(path), *flags])
        assert exc.value.code == 2 and one_error_line(capsys) == f"spikehebb train: error: {message}"
    assert RunStore.open(path).generations_completed == 2
    assert TrainConfig.from_dict(RunStore.open(path).config).generations == 2


@pytest.mark.parametrize("flags, message", [
    (["--sigma", "-1"], "strategy: sigma must be positive, got -1.0"),
    (["--lr", "-1"], "strategy: lr must be positive, got -1.0"),
    (["--lr", "nan"], "strategy: lr must be a finite number, got nan"),
    (["--sigma", "nan"], "strategy: sigma must be a finite number, got nan"),
    (["--workers", "-3"], "evaluator: workers must be at least 1, got -3"),
    (["--workers", "0"], "evaluator: workers must be at least 1, got 0"),
    (["--batch-size", "0"], "evaluator: batch_size must be at least 1, got 0"),
    (["--generations", "0"], "train: generations must be at least 1, got 0"),
    (["--max-env-steps", "30"], "max_env_steps (30) must exceed burn_in_steps (40)"),
    (["--rule", "XYZ"], "unknown --rule 'XYZ'; expected one of A, AD, AD_lr, ABC, ABC_lr, ABCD, ABCD_lr, ABCD_lr_D_out, "
                        "ABCD_lr_D_in_and_out"),
    (["--rule", "ABCD_lr+mod"], "--rule ABCD_lr+mod: the three-factor version of a rule is --rule ABCD_lr --modulated"),
    (["--strategy", "cma", "--popsize", "1"], "strategy: popsize must be at least 2, got 1"),
    # flags that would be ignored
    (["--static", "--rule", "AD"], "a static agent has no plasticity rule: drop --rule/--coevolve"),
    (["--agent", "static", "--coevolve"], "a static agent has no plasticity rule: drop --rule/--coevolve"),
    (["--agent", "lstm", "--rule", "AD"], "a lstm agent has no plasticity rule: drop --rule/--coevolve"),
    (["--neuron", "lif", "--poisson-seed", "3"],
     "lif: poisson_seed seeds Poisson input spikes; with encoding 'current' nothing is drawn at random: "
     "add --spike-encoding poisson or drop --poisson-seed"),
    (["--ray", "local"], "--ray local runs the lifetimes on Ray and --evaluator serial elsewhere: give one"),
    (["--shared-rules", "4", "--coefficient-rows", "i_plus_j"],
     "shared rules (gmm-M4) assign a rule to each synapse; --coefficient-rows i_plus_j makes "
     "synapses read other synapses' rows: drop one of the two"),
    # flags the run would accept and then ignore
    (["--strategy", "cma", "--lr", "0.5"], "CMA-ES has no learning rate (--sigma sets its first step size): drop --lr/--scale-lr"),
    (["--strategy", "cma", "--scale-lr", "500"], "CMA-ES has no learning rate (--sigma sets its first step size): drop --lr/--scale-lr"),
    (["--strategy", "cma", "--lr-decay", "0.99"], "strategy: CMA-ES has no learning rate to decay: leave lr_decay at its "
                                                   "default (got 0.99)"),
    (["--lr-decay", "1.5"], "strategy: lr_decay must be at most 1, got 1.5"),
    (["--lr-decay", "0"], "strategy: lr_decay must be positive, got 0.0"),
    (["--noise", "synapse"], "--noise sets how gmm and random shared rules are perturbed: it needs --shared-rules M or "
                             "--rho R with --assign gmm or random"),
    (["--rho", "128", "--assign", "merge", "--noise", "rule"], "--noise sets how gmm and random shared rules are perturbed: "
                                                               "it needs --shared-rules M or --rho R with --assign gmm or random"),
    (["--rho", "128", "--merge-every", "5"], "--merge-every and --merge-fraction set Evolve & Merge: they need --assign merge"),
    (["--workers", "2"], "--evaluator serial runs every lifetime in this process: drop --workers 2 (or use --evaluator processes)"),
    (["--stall-timeout", "60", "--build-timeout", "never"], "--evaluator serial runs every lifetime in this process, which no "
                                                           "timeout stops: drop --stall-timeout and --build-timeout (or use "
                                                           "--evaluator processes)"),
    (["--evaluator", "processes", "--stall-timeout", "0"], "--stall-timeout takes a positive number of seconds or 'never', got '0'"),
    (["--evaluator", "processes", "--build-timeout", "soon"], "--build-timeout takes a positive number of seconds or 'never', "
                                                              "got 'soon'"),
    (["--evaluator", "processes", "--stall-timeout", "inf"], "--stall-timeout takes a positive number of seconds or 'never', "
                                                             "got 'inf'"),
    (["--static", "--weight-init", "lognormal"], "--weight-init draws a lifetime's random initial weights; this static run "
                                                 "evolves its weights: drop --weight-init"),
    (["--coevolve", "--weight-init", "normal"], "--weight-init draws a lifetime's random initial weights; this hebbian run "
                                                "evolves its weights (--coevolve): drop --weight-init"),
    (["--agent", "lstm", "--backend", "numpy"], "--backend chooses how a rate network runs; the lstm agent runs in NumPy "
                                                "whatever it says: drop --backend"),
    (["--neuron", "lif", "--backend", "numpy"], "the lif network runs on Brian2 only, not the 'numpy' backend: drop --backend"),
    (["--train-variants", "default", "default"], "--train-variants names a body twice: default default"),
    (["--run-name", "a/b"], "train: run_name must be a file name in the runs directory (no '/', not starting with '.'), "
                            "got 'a/b'; --runs-dir says where it goes"),
    (["--run-name", ".hidden"], "train: run_name must be a file name in the runs directory (no '/', not starting with "
                                "'.'), got '.hidden'; --runs-dir says where it goes"),
    (["--run-name", "mine.h5"], "train: run_name is given without .h5 (the file is NAME.h5), got 'mine.h5'"),
    (["--run-name", ""], "train: run_name must be a non-empty name without surrounding spaces, got ''"),
])
def test_bad_or_ignored_flags_are_refused_before_anything_is_written(tmp_path, capsys, flags, message):
    runs = tmp_path / "runs"
    with pytest.raises(SystemExit) as exc:
        cli_main(["train", *TINY, "--runs-dir", str(runs), *flags])
    assert exc.value.code == 2
    assert one_error_line(capsys) == f"spikehebb train: error: {message}"
    assert not runs.exists() or not any(runs.iterdir())


def test_ray_missing_is_one_line_before_a_file_is_written(tmp_path, capsys, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else find_spec(name, *a))
    runs = tmp_path / "runs"
    with pytest.raises(SystemExit) as exc:
        cli_main(["train", *TINY[:-5], "--batch-size", "4", "--no-progress", "--ray", "local", "--runs-dir", str(runs)])
    assert exc.value.code == 2
    assert one_error_line(capsys) == ('spikehebb train: error: the "ray" evaluator needs Ray: pip install '
                                      '"spikehebb[ray]" (or drop --ray / --evaluator ray)')
    assert not runs.exists()


def test_a_refused_resume_leaves_the_stored_length_and_a_model_is_not_resumed(tmp_path, capsys, monkeypatch):
    import shutil

    from spikehebb.models import export

    runs = tmp_path / "runs"
    assert cli_main(["train", *TINY, "--runs-dir", str(runs)]) == 0
    (path,) = runs.glob("*.h5")
    capsys.readouterr()
    monkeypatch.setattr("spikehebb.train.available_memory_mb", lambda: 100.0)
    with pytest.raises(SystemExit) as exc:
        cli_main(["train", "--resume", str(path), "--generations", "50", "--batch-size", "1000"])
    assert exc.value.code == 2 and "and 100 MB is available" in one_error_line(capsys)
    assert TrainConfig.from_dict(RunStore.open(path).config).generations == 1  # not 50
    # a model (what spikehebb select writes) keeps its chosen rule
    from spikehebb.models import Selection

    model = tmp_path / "model.h5"
    export(path, model, Selection(np.array([1]), np.array([1.0]), 1, ("default",)))
    before = model.read_bytes()
    with pytest.raises(SystemExit) as exc:
        cli_main(["train", "--resume", str(model), "--generations", "2"])
    assert exc.value.code == 2
    assert one_error_line(capsys) == (
        f"spikehebb train: error: {model} is a model (the mean after generation 1 chosen by spikehebb select) and "
        f"training on would replace its rule; resume its training run ({path.name}) instead")
    assert model.read_bytes() == before
    shutil.rmtree(runs)


def test_resume_from_the_command_line_keeps_settings_only_the_python_api_sets(tmp_path, capsys):
    config = TrainConfig.from_dict(dict(popsize=4, generations=1, max_env_steps=60, train_variants=("default",),
                                        batch_size=4, evaluator="serial", runs_dir=str(tmp_path), run_name="api"))
    config = dataclasses.replace(config, snapshot_every=5,
                                 task=dataclasses.replace(config.task, episode={"grace_steps": 20}))
    path = train(config, progress=False)
    assert cli_main(["train", "--resume", str(path), "--generations", "2", "--no-progress"]) == 0, capsys.readouterr().err
    stored = TrainConfig.from_dict(RunStore.open(path).config)
    assert stored.snapshot_every == 5 and stored.task.episode == {"grace_steps": 20}
    assert RunStore.open(path).generations_completed == 2


def test_popsize_message_names_the_strategy(capsys):
    with pytest.raises(SystemExit):
        cli_main(["train", "--popsize", "5", "--runs-dir", "unused"])
    assert "popsize must be even for OpenAI-ES, whose candidates come in mirrored pairs, got 5" in one_error_line(capsys)


def test_more_workers_than_candidates_are_capped_with_a_note(tmp_path, capsys):
    from spikehebb.cli import add_train_arguments, config_from_args
    import argparse

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    config = config_from_args(parser.parse_args(["--popsize", "4", "--workers", "100"]))
    assert config.n_workers == 4 and config.worker_spec().batch_size == 1
    args = [*TINY, "--runs-dir", str(tmp_path), "--evaluator", "processes", "--workers", "100"]  # (serial takes none)
    assert cli_main(["train", *args]) == 0
    assert "note: 100 workers for 4 candidates: starting 4" in capsys.readouterr().err


def test_envs_that_cannot_fit_in_memory_are_refused_and_the_default_batch_shrinks_to_fit(tmp_path, capsys,
                                                                                         monkeypatch):
    monkeypatch.setattr("spikehebb.train.available_memory_mb", lambda: 200.0)  # MB; an ant env takes 32
    runs = tmp_path / "runs"
    with pytest.raises(SystemExit) as exc:
        cli_main(["train", *TINY, "--runs-dir", str(runs), "--batch-size", "8"])
    assert exc.value.code == 2
    assert one_error_line(capsys) == (
        "spikehebb train: error: the run's envs would take about 256 MB (1 worker x 8 slots x 1 body x 32 MB per "
        "ant env) and 200 MB is available; use --batch-size 3 or fewer --workers")
    assert not runs.exists() or not any(runs.iterdir())

    # without --batch-size: 3 slots instead of 4 (int(0.6 * 200 / 32)), and the same numbers
    note = "note: 3 slots per worker instead of 4, so that the envs (about 96 MB) fit in the 200 MB available"
    shrunk = ["train", *TINY[:-3], "--runs-dir", str(runs / "shrunk"), "--run-name", "shrunk"]
    assert cli_main(shrunk) == 0
    err = capsys.readouterr().err
    assert err.count(note) == 1 and err.index(note) < err.index("run file: ")  # said as the run starts, once
    # a run that does not start says no note about it: refused (its file exists), or nothing left to run
    with pytest.raises(SystemExit) as exc:
        cli_main(shrunk)
    assert exc.value.code == 2 and one_error_line(capsys).startswith(
        f"spikehebb train: error: {runs / 'shrunk' / 'shrunk.h5'} already exists")
    assert cli_main(["train", "--resume", str(runs / "shrunk" / "shrunk.h5")]) == 0
    err = capsys.readouterr().err
    assert note.split(",")[0] not in err and "nothing to run" in err
    monkeypatch.setattr("spikehebb.train.available_memory_mb", lambda: None)
    assert cli_main(["train", *TINY, "--runs-dir", str(runs / "whole")]) == 0
    with RunStore.open(next((runs / "shrunk").glob("*.h5"))) as a, RunStore.open(next((runs / "whole").glob("*.h5"))) as b:
        assert a.config["evaluator"]["batch_size"] is None and b.config["evaluator"]["batch_size"] == 4
        np.testing.assert_array_equal(a.history()["fitness_raw"], b.history()["fitness_raw"])


def train_in_background(tmp_path: Path, evaluator: str, workers: int, **popen) -> subprocess.Popen:
    """``spikehebb train`` on the tiny settings for 50 generations, its run file to ``tmp_path``."""
    tiny = [*TINY[:2], "--generations", "50", *TINY[4:]]
    tiny[tiny.index("--evaluator") + 1] = evaluator
    args = [sys.executable, "-m", "spikehebb.cli", "train", *tiny, "--workers", str(workers), "--runs-dir", str(tmp_path)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


@pytest.mark.slow
@pytest.mark.parametrize("sig, code, said, evaluator", [
    (signal.SIGINT, 130, "interrupted", "serial"),
    (signal.SIGTERM, 143, "stopped by SIGTERM", "serial"),
    (signal.SIGTERM, 143, "stopped by SIGTERM", "processes"),  # workers closed: no leaked-semaphore warning
])
def test_ctrl_c_and_sigterm_say_in_one_line_how_to_resume(tmp_path, first_generation, stderr_lines, sig, code, said,
                                                         evaluator):
    proc = train_in_background(tmp_path, evaluator, workers=1)
    run_file = first_generation(tmp_path)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    run_file_line, *lines = stderr_lines(err)  # the file is named once the run starts
    assert proc.returncode == code, err
    assert run_file_line == f"run file: {run_file}", err
    assert len(lines) == 1 and lines[0].startswith(f"spikehebb train: {said}: "), err
    assert "finished generation(s); continue with --resume" in lines[0], err
    done = RunStore.open(run_file).generations_completed
    assert f"holds {done} finished generation(s)" in lines[0]


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="no SIGUSR1 on this platform")
def test_sigusr1_to_the_process_group_keeps_the_generation_in_flight_and_spares_the_workers(tmp_path, first_generation,
                                                                                            stderr_lines, processes):
    """A scheduler's notice may go to every process of the job: every process but the parent (the
    workers, multiprocessing's resource tracker) has it blocked, and the run stops once the
    generation in flight (the second, at least) is stored, in one line, exit 138."""
    import os

    proc = train_in_background(tmp_path, "processes", workers=2, start_new_session=True)
    run_file = first_generation(tmp_path)
    if Path("/proc/self/stat").exists():
        blocked = {pid: p.sigusr1_blocked for pid, p in processes().items() if p.session == proc.pid}
        assert blocked.pop(proc.pid) is False and len(blocked) >= 3 and all(blocked.values()), blocked  # 2 workers, tracker
    os.killpg(proc.pid, signal.SIGUSR1)
    _, err = proc.communicate(timeout=60)
    lines = stderr_lines(err)
    assert proc.returncode == 128 + signal.SIGUSR1, err
    done = RunStore.open(run_file).generations_completed
    assert done >= 2, err
    assert lines == [f"run file: {run_file}",
                     f"spikehebb train: stopped by SIGUSR1 after the generation in flight: {run_file} holds {done} "
                     f"finished generation(s); continue with --resume {run_file}"], err


def test_a_script_read_from_standard_input_is_told_why_workers_cannot_start(tmp_path):
    script = textwrap.dedent(f"""
        from spikehebb.train import TrainConfig, train
        train(TrainConfig.from_dict(dict(popsize=2, generations=1, max_env_steps=50, workers=1,
                                          runs_dir={str(tmp_path)!r})), progress=False)
    """)
    run = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "re-import the main script" in run.stderr and "'<stdin>'" in run.stderr
    assert "died 3 times" not in run.stderr
    assert list(tmp_path.iterdir()) == []  # the new run file, with no generation in it, is not left behind


def test_a_new_run_that_fails_before_its_first_generation_leaves_no_file_and_a_resumed_one_keeps_its(
        tmp_path, capsys, monkeypatch):
    runs = tmp_path / "runs"
    assert cli_main(["train", *TINY, "--runs-dir", str(runs)]) == 0
    (kept,) = runs.glob("*.h5")

    def no_workers(*args, **kwargs):
        raise RuntimeError("workers could not start")

    monkeypatch.setattr("spikehebb.train.make_evaluator", no_workers)
    capsys.readouterr()
    for argv in ([*TINY, "--runs-dir", str(runs), "--seed", "1"], ["--resume", str(kept), "--generations", "2"]):
        with pytest.raises(SystemExit) as exc:
            cli_main(["train", *argv])
        assert exc.value.code == 2
        assert one_error_line(capsys) == "spikehebb train: error: workers could not start"
    assert list(runs.iterdir()) == [kept] and RunStore.open(kept).generations_completed == 1


def test_lower_variance_options(tmp_path):
    """--paired-seeds: the two members of a mirrored pair live the same lifetimes (same initial
    weights and env starts), so equal parameters give equal fitness; --scale-lr scales lr by
    sqrt(popsize / reference)."""
    import argparse

    from spikehebb.cli import add_train_arguments, config_from_args
    from spikehebb.config import StrategyConfig

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    config = config_from_args(parser.parse_args(["--popsize", "8", "--paired-seeds", "--scale-lr", "500"]))
    assert config.strategy.paired_seeds and config.worker_spec().paired_seeds
    assert config.strategy.effective_lr == pytest.approx(0.2 * (8 / 500) ** 0.5)
    # the short default scales lr by 500 (docs/results.md); --lr or --scale-lr 0 turn that
    # off, and --paper keeps the paper's lr 0.2 at population 500
    assert config_from_args(parser.parse_args([])).strategy == StrategyConfig(popsize=64, lr_reference_popsize=500)
    assert config_from_args(parser.parse_args([])).strategy.effective_lr == pytest.approx(0.2 * (64 / 500) ** 0.5)
    for flags in (["--lr", "0.1"], ["--scale-lr", "0"], ["--paper"]):
        assert config_from_args(parser.parse_args(flags)).strategy.lr_reference_popsize is None, flags
    assert config_from_args(parser.parse_args(["--lr", "0.1"])).strategy.effective_lr == 0.1
    with pytest.raises(ValueError, match="paired_seeds pairs the mirrored candidates of OpenAI-ES"):
        StrategyConfig("cma", paired_seeds=True)
    # CMA-ES ran without the penalty while its record said l2_coeff 0.01 and took any value
    from spikehebb.config import TrainConfig
    from spikehebb.train import train

    cma = TrainConfig(strategy=StrategyConfig("cma", l2_coeff=0.05), runs_dir=str(tmp_path / "cma_runs"))
    with pytest.raises(ValueError, match=r"strategy: l2_coeff is the fitness penalty of OpenAI-ES and shared rules; "
                                         r"CMA-ES runs without one: leave it at its default \(got 0.05\)"):
        train(cma, progress=False)  # a new run refuses it; a stored config with it still opens
    assert not (tmp_path / "cma_runs").exists()
    assert TrainConfig.from_dict(cma.to_dict()) == cma
    assert StrategyConfig("cma").make(5, 0).l2_coeff == 0
    # Palm et al.'s best shared-rule ant: Adam, lr 1.0 halved every 100 generations
    palm = config_from_args(parser.parse_args(["--rho", "128", "--optimizer", "adam", "--lr", "1.0", "--lr-decay", "0.99309"]))
    assert palm.strategy.lr_decay == 0.99309
    strategy = palm.strategy.make(12288 * 5, 0, n_fields=5)  # the ant's 12,288 synapses, ABCD_lr's 5 coefficients
    assert (strategy.lr, strategy.lr_decay, strategy._means_opt.name) == (1.0, 0.99309, "adam")
    assert config_from_args(parser.parse_args([])).strategy.make(12, 0).lr_decay == 0.995  # the default, as before

    from spikehebb.es import CandidateKey

    class Same:  # a sampler giving every key the same parameters
        def __init__(self, n):
            self.vector = np.random.default_rng(0).normal(0, 0.1, n)

        def params(self, key):
            return self.vector

    keys = [CandidateKey(0, i, 1 - 2 * (i % 2)) for i in range(4)]
    for paired in (False, True):
        spec = WorkerSpec(TaskConfig("ant", ("default",), 60), batch_size=4, paired_seeds=paired)
        worker = Worker(spec)
        try:
            fitness, _ = worker.evaluate(Same(worker.genome.n_params), keys)
        finally:
            worker.close()
        if paired:
            assert fitness[0] == fitness[1] and fitness[2] == fitness[3] and fitness[0] != fitness[2]
        else:
            assert len(set(fitness.tolist())) == 4


@pytest.mark.parametrize("flags, message", [
    (["--eval-workers", "0"], "--eval-workers must be at least 1 (leave it out for one per core), got 0"),
    (["--eval-steps", "30"], "--eval-steps counts env steps with the 40 burn-in steps: give more than 40, got 30"),
    (["--episodes", "0"], "--episodes must be at least 1, got 0"),
    (["--variant", "default", "default"], "--morphology names default more than once; give each variant once"),
    (["--variant", "bogus"], "unknown ant variant(s) ['bogus']; valid: default, damage_left, damage_right, palm_damage_right, "
                             "long_back, long_front"),
    (["--trace-episodes", "2"], "--trace-episodes is an option of --traces: add --traces, or drop --trace-episodes"),
    (["--overwrite-traces"], "--overwrite-traces is an option of --traces: add --traces, or drop --overwrite-traces"),
])
def test_evaluate_checks_its_numbers_before_any_lifetime(capsys, monkeypatch, flags, message):
    def no_lifetimes(*args, **kwargs):
        raise AssertionError("a test lifetime ran")

    monkeypatch.setattr("spikehebb.assess.assess", no_lifetimes)
    with pytest.raises(SystemExit) as exc:
        cli_main(["evaluate", "ant_abcd_lr", "--variant", "default", *flags])
    assert exc.value.code == 2
    assert one_error_line(capsys) == f"spikehebb evaluate: error: {message}"


def test_plot_and_report_take_a_model_by_name_and_never_write_into_models(tmp_path, capsys):
    for command, suffix in (("plot", ".png"), ("report", ".html")):
        with pytest.raises(SystemExit) as exc:
            cli_main([command, "ant_abcd_lr"])
        assert exc.value.code == 2
        assert one_error_line(capsys).endswith(f"is a shipped model and {command} would write beside it; give -o, "
                                               f"e.g. -o runs/ant_abcd_lr{suffix}")
    assert cli_main(["plot", "ant_abcd_lr", "-o", str(tmp_path / "curve.png")]) == 0
    assert (tmp_path / "curve.png").stat().st_size > 10_000
    with pytest.raises(SystemExit) as exc:  # the trace figures' default place is beside the model too
        cli_main(["plot", "ant_abcd_lr", "-o", str(tmp_path / "curve2.png"), "--traces"])
    assert exc.value.code == 2 and one_error_line(capsys).endswith(
        "is a shipped model and plot --traces would write its figures beside it; give --out-dir, e.g. "
        "--out-dir runs/ant_abcd_lr")
    assert not (tmp_path / "curve2.png").exists()


def test_run_ant_checks_its_test_flags_before_the_training(tmp_path, capsys):
    from spikehebb.cli import experiment_main

    runs = tmp_path / "runs"
    for flags, message in ((["--episodes", "0"], "--episodes must be at least 1, got 0"),
                           (["--morphology", "bogus"], "unknown ant variant(s) ['bogus']; valid: "),
                           (["--eval-steps", "10"], "--eval-steps counts env steps with the 40 burn-in steps")):
        with pytest.raises(SystemExit) as exc:
            experiment_main("ant", "run_ant", [*TINY, "--runs-dir", str(runs), *flags])
        assert exc.value.code == 2
        assert f": error: {message}" in one_error_line(capsys)
        assert not runs.exists()  # nothing trained, nothing written


def test_select_and_report_refuse_a_worker_count_below_one(tmp_path, capsys):
    for argv, flag in ((["select", "ant_abcd_lr", "-o", str(tmp_path / "m.h5"), "--workers", "0"], "--workers"),
                       (["report", "ant_abcd_lr", "-o", str(tmp_path / "r.html"), "--eval-workers", "-2"], "--eval-workers")):
        with pytest.raises(SystemExit) as exc:
            cli_main(argv)
        assert exc.value.code == 2
        given = argv[-1]
        assert one_error_line(capsys) == (f"spikehebb {argv[0]}: error: {flag} must be at least 1 (leave it out for "
                                          f"the default), got {given}")
    assert list(tmp_path.iterdir()) == []


def test_the_lr_help_says_whether_the_tasks_short_default_scales_it():
    import argparse

    from spikehebb.cli import add_train_arguments

    helps = {}
    for task in ("ant", "car"):
        parser = argparse.ArgumentParser()
        add_train_arguments(parser, task=task)
        helps[task] = " ".join(parser.format_help().split())
    assert "OpenAI-ES learning rate (default 0.2; the short default scales it to the population, 0.0716 at 64" in helps["ant"]
    assert "OpenAI-ES learning rate (default 0.2)" in helps["car"]
    assert "Neither the short default nor --paper scales it" in helps["car"]


@pytest.mark.parametrize("address", ["auto", "10.0.0.5:6379"])
def test_a_ray_cluster_without_a_worker_count_is_refused(tmp_path, capsys, address):
    """The batches are sized for the worker count before Ray is reached: on a cluster, one per core
    of this machine would be a silent guess."""
    runs = tmp_path / "runs"
    with pytest.raises(SystemExit) as exc:
        cli_main(["train", *TINY[:-5], "--batch-size", "4", "--no-progress", "--ray", address, "--runs-dir", str(runs)])
    assert exc.value.code == 2
    assert one_error_line(capsys) == (f"spikehebb train: error: --ray {address} needs --workers N, the number of actors "
                                      "(one CPU each) to start on the cluster: the batches are sized for it before Ray is reached")
    assert not runs.exists() or not any(runs.iterdir())


def test_make_evaluator_leaves_a_clusters_count_to_ray(monkeypatch):
    """``workers=None`` reaches RayEvaluator, which counts the cluster's CPUs (an address) or this
    machine's cores (a local instance); the other backends get one per core."""
    from spikehebb import evaluators

    made = []

    class Recorder:
        name = "ray"

        def __init__(self, spec, workers, address, **kwargs):
            made.append((workers, address))

    monkeypatch.setattr(evaluators, "RayEvaluator", Recorder)
    evaluators.make_evaluator("ray", None, address="auto")
    evaluators.make_evaluator("ray", None, workers=3)
    assert made == [(None, "auto"), (3, None)]


def test_episode_rules_refuse_booleans_and_unknown_fields():
    from spikehebb.config import TaskConfig
    from spikehebb.tasks import EpisodeRules

    with pytest.raises(ValueError, match="patience must be a non-negative integer, got True"):
        EpisodeRules(patience=True)
    with pytest.raises(ValueError, match="end_on_terminated must be True or False, got 'no'"):
        EpisodeRules(end_on_terminated="no")
    # a NumPy integer is the count it is (it was refused as "not an integer"), stored as an int
    rules = EpisodeRules(burn_in_steps=np.int64(40))
    assert rules.burn_in_steps == 40 and type(rules.burn_in_steps) is int
    with pytest.raises(ValueError, match="grace_steps must be a non-negative integer, got 2.5"):
        EpisodeRules(grace_steps=2.5)
    with pytest.raises(ValueError, match="unknown episode field.s. bogus; valid: burn_in_steps, max_env_steps, "
                                         "grace_steps, patience, end_on_terminated, first_input"):
        TaskConfig("ant", episode={"bogus": 1})
    # through the Python API a body given twice trained on two lifetimes of it (only the CLI refused it)
    from spikehebb.config import TrainConfig

    twice = TrainConfig(task=TaskConfig("ant", ("default", "damage_right", "default")))
    with pytest.raises(ValueError, match="task: train_variants names default more than once; give each training variant "
                                         "once .got default damage_right default."):
        twice.check_new_run()


def test_a_worker_refuses_rows_and_episodes_that_do_not_fit():
    from spikehebb.config import TaskConfig, WorkerSpec
    from spikehebb.worker import Worker

    worker = Worker(WorkerSpec(TaskConfig("ant", ("default",), 60), batch_size=2))
    try:
        params = np.zeros((3, worker.genome.n_params))
        with pytest.raises(ValueError, match=r"params must be \(n, n_params\) with one row per seed path \(2\), got "
                                             rf"\(3, {worker.genome.n_params}\)"):
            worker.lifetimes(params, "default", [(0, 0), (0, 1)])
        for bad in (-1, 0.5):
            with pytest.raises(ValueError, match=rf"episode numbers must be non-negative integers, got \[0, {bad}\]"):
                worker.evaluate_params(params[0], "default", [0, bad])
    finally:
        worker.close()



def _network(**kwargs):
    from spikehebb.network import make_network

    return make_network((2, 1), "ABCD", **{"population": 1, "backend": "numpy", **kwargs})


def _bool_counts():
    from spikehebb.es import EvolveMerge
    from spikehebb.evaluators import checked_max_failures, checked_workers
    from spikehebb.network.base import active_slots
    from spikehebb.perturb import recovery

    return {
        "recovery window": (lambda: recovery(np.ones(10), 5, window=True), "window must be a positive number of steps, got True"),
        "merge_every": (lambda: EvolveMerge(4 * 2, popsize=4, n_fields=2, merge_every=True), "merge_every must be a positive number of generations, got True"),
        "kmeans_iterations": (lambda: EvolveMerge(4 * 2, popsize=4, n_fields=2, kmeans_iterations=True),
                              "kmeans_iterations must be a positive integer, got True"),
        "population": (lambda: _network(population=True), "population must be a positive integer, got True"),
        "rule_every": (lambda: _network(rule_every=True), "rule_every must be a positive integer, got True"),
        "set_active": (lambda: active_slots(True, 4), "set_active needs a slot count in 1..4 or None, got True"),
        "workers": (lambda: checked_workers(True), "workers must be a positive integer, got True"),
        "max_failures": (lambda: checked_max_failures(True), "max_failures must be a positive integer, got True"),
        "snapshot_every": (lambda: RunStore.create("never.h5", {}, sizes=(2, 1), rule="ABCD", popsize=4, snapshot_every=True),
                           "snapshot_every must be a non-negative integer, got True"),
    }


@pytest.mark.parametrize("name", list(_bool_counts()))
def test_a_bool_is_not_taken_for_a_count(name, tmp_path, monkeypatch):
    call, message = _bool_counts()[name]
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):
        call()
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_run_name_names_the_new_runs_file_and_an_existing_one_is_kept(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert cli_main(["train", *TINY, "--runs-dir", str(runs), "--run-name", "pop500_s0"]) == 0
    path = runs / "pop500_s0.h5"
    assert [p.name for p in runs.iterdir()] == ["pop500_s0.h5"] and RunStore.open(path).generations_completed == 1
    before = path.read_bytes()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:  # the same name again: the run is not overwritten
        cli_main(["train", *TINY, "--runs-dir", str(runs), "--run-name", "pop500_s0"])
    assert exc.value.code == 2
    assert one_error_line(capsys) == (f"spikehebb train: error: {path} already exists; continue that run with "
                                      f"--resume {path}, or choose a new path")
    assert path.read_bytes() == before


@pytest.mark.parametrize("fields, message", [
    ({"modulated": "no"}, "agent: modulated must be True or False, got 'no'"),
    ({"evolve_initial_weights": "no"}, "agent: evolve_initial_weights must be True or False, got 'no'"),
    ({"weight_scale": True}, "weight scale must be a positive finite number, got True"),
    ({"weight_scale": "0.1"}, "weight scale must be a positive finite number, got '0.1'"),
    ({"weight_scale": float("inf")}, "weight scale must be a positive finite number, got inf"),
    ({"kind": ["lif"]}, "agent: kind must be a name (a string), got ['lif']"),
    ({"coefficient_rows": ["mirror"]}, "agent: coefficient_rows must be a name (a string), got ['mirror']"),
    ({"rule": ["A"]}, "agent: rule must be a rule's name (a string) or None, got ['A']"),
    ({"kind": "lif", "options": [1, 2]}, "lif: options must be a mapping of neuron options, got [1, 2]"),
])
def test_agent_settings_of_the_wrong_type_are_one_line_errors(fields, message):
    from spikehebb.agents import AgentConfig

    with pytest.raises(ValueError) as info:
        AgentConfig(**fields)
    assert str(info.value) == message


@pytest.mark.parametrize("build, message", [
    # a string for a switch switched it on: TaskConfig(positive="no") trained the positive-rate task
    (lambda: TaskConfig(positive="no"), "task: positive must be True or False, got 'no'"),
    (lambda: _strategy(paired_seeds="no"), "strategy: paired_seeds must be True or False, got 'no'"),
    # a string was taken for its letters: "unknown ant variant(s) ['d', 'a', ...]"
    (lambda: TaskConfig(train_variants="damage_right"),
     "task: train_variants must be a list of variant names (None: the task's own), got 'damage_right'"),
    (lambda: TaskConfig(episode="abc"),  # "dictionary update sequence element #0 ..."
     "task: episode must be a dict of EpisodeRules fields by name (None: the task's own), got 'abc'"),
    (lambda: TaskConfig(max_env_steps="abc"), "task: max_env_steps must be an integer, got 'abc'"),  # "invalid literal for int()"
    (lambda: TaskConfig(max_env_steps=True), "task: max_env_steps must be an integer, got True"),  # taken for 1
    (lambda: TaskConfig(max_env_steps=100.0), "task: max_env_steps must be an integer, got 100.0"),
    (lambda: TaskConfig(name=["ant"]), "task: name must be a name (a string), got ['ant']"),
    (lambda: _strategy(optimizer=["adam"]), "strategy: optimizer must be a name (a string), got ['adam']"),
    (lambda: _strategy(popsize=np.True_), "strategy: popsize must be an integer, got np.True_"),
    # the parts of a TrainConfig: an AttributeError or a TypeError inside train before
    (lambda: TrainConfig(task="ant"),
     "train: task must be a TaskConfig (TrainConfig.from_dict reads the dict form of a run file), got 'ant'"),
    (lambda: TrainConfig(strategy={"popsize": 4}),
     "train: strategy must be a StrategyConfig (TrainConfig.from_dict reads the dict form of a run file), got "
     "{'popsize': 4}"),
    (lambda: TrainConfig(agent=None),
     "train: agent must be an AgentConfig (TrainConfig.from_dict reads the dict form of a run file), got None"),
    (lambda: TrainConfig(evaluator="serial"),
     "train: evaluator must be an EvaluatorConfig (TrainConfig.from_dict reads the dict form of a run file), got "
     "'serial'"),
    (lambda: TrainConfig(runs_dir=None), "train: runs_dir must be a folder's path (a non-empty string or path), got None"),
    (lambda: TrainConfig(runs_dir=""), "train: runs_dir must be a folder's path (a non-empty string or path), got ''"),
])
def test_config_settings_of_the_wrong_type_are_one_line_errors(build, message):
    with pytest.raises(ValueError) as info:
        build()
    assert str(info.value) == message


def _strategy(**fields):
    from spikehebb.config import StrategyConfig

    return StrategyConfig(**fields)


def test_numpy_numbers_are_the_numbers_they_are_and_stored_plain(tmp_path):
    """np.int64(32) was refused: "popsize must be an integer, got np.int64(32)"."""
    import json

    from spikehebb.config import EvaluatorConfig, StrategyConfig

    strategy = StrategyConfig(popsize=np.int64(32), lr=np.float32(0.5), sigma=np.float64(0.1), rho=np.int32(64),
                              paired_seeds=np.bool_(False))
    assert strategy == StrategyConfig(popsize=32, lr=0.5, sigma=0.1, rho=64)
    assert [type(getattr(strategy, name)) for name in ("popsize", "lr", "sigma", "rho", "paired_seeds")] == \
        [int, float, float, int, bool]
    task = TaskConfig(max_env_steps=np.int64(100), positive=np.bool_(True), fitness_floor=np.float32(0))
    assert (type(task.max_env_steps), type(task.positive), type(task.fitness_floor)) == (int, bool, float)
    config = TrainConfig(task=task, strategy=strategy, evaluator=EvaluatorConfig(workers=np.int64(2)),
                         seed=np.int64(1), generations=np.int32(3), snapshot_every=np.uint8(0), runs_dir=str(tmp_path))
    json.dumps(config.to_dict())  # plain numbers: the JSON needs no converter for them (NumPy's would raise)
    assert (type(config.seed), type(config.generations), type(config.evaluator.workers)) == (int, int, int)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))).differences(config) == []


def test_a_run_resumes_with_the_same_config_whatever_its_extra_holds(tmp_path, capsys):
    """The stored JSON gives a list back for a tuple (and a sorted list for a set): an identical
    config was refused, "extra: {'tags': ['a', 'b']} -> {'tags': ('a', 'b')}"."""
    config = TrainConfig.from_dict(dict(popsize=4, generations=2, max_env_steps=60, train_variants=("default",),
                                        batch_size=4, evaluator="serial", runs_dir=str(tmp_path)))
    config = config.replace(extra={"tags": ("a", "b"), "seen": {"y", "x"}, "n": np.int64(3)})
    path = train(config, progress=False, stop_after=1)
    assert RunStore.open(path).generations_completed == 1
    assert TrainConfig.from_dict(RunStore.open(path).config).differences(config) == []
    assert train(config, resume=path, progress=False) == path
    assert RunStore.open(path).generations_completed == 2
    # a real change is still refused, and named
    with pytest.raises(ValueError, match=r"drop the flags that change extra: \{.*'tags': \['a', 'b'\].*\} -> "
                                         r"\{.*'tags': \['a', 'c'\].*\}"):
        train(config.replace(generations=3, extra={**config.extra, "tags": ("a", "c")}), resume=path, progress=False)
