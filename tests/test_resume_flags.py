"""The training flow's flags on a resume and around a run's start: only what is typed changes a
resumed run (no preset's length, no parser default's task, no fresh agent), flags the run would
ignore are refused as a new run refuses them, notes and the run file's name come once the run
starts (an error is one line alone), a busy file and a bad --runs-dir are one fitting line."""

import argparse
import contextlib
import dataclasses
import os

import pytest

from spikehebb.assess import load_run, record_traces
from spikehebb.cli import add_train_arguments, config_from_args, resumed_config
from spikehebb.cli import main as cli_main
from spikehebb.config import EvaluatorConfig
from spikehebb.lifetimes import MODELS_DIR
from spikehebb.store import RunFileBusyError, RunStore
from spikehebb.store.transaction import WriterLock
from spikehebb.train import TrainConfig, train

TINY = ["--popsize", "2", "--generations", "1", "--max-env-steps", "45", "--train-variants", "default",
        "--evaluator", "serial", "--no-progress"]


def parse(flags: list[str], task: str = "ant") -> argparse.Namespace:
    """``flags`` as ``spikehebb train`` (or ``experiments/run_<task>.py``) parses them."""
    parser = argparse.ArgumentParser()
    add_train_arguments(parser, task=task)
    return parser.parse_args(flags)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``runs(name)``: the file of a new run made by TINY and the flags below, created with no
    generation run (the settings are what these tests resume); ``finished``: one generation run."""
    folder = tmp_path_factory.mktemp("runs")
    made = {
        "plain": [], "cma": ["--strategy", "cma", "--popsize", "4"], "lstm": ["--agent", "lstm"],
        "car": ["--task", "car", "--max-env-steps", "10"], "gmm": ["--shared-rules", "4"],
        "dale": ["--dale", "0.8", "--modulated", "--weight-init", "normal"],
        "rows": ["--coefficient-rows", "i_plus_j", "--rule", "AD"], "lif": ["--neuron", "lif", "--substeps", "4"],
    }
    paths = {name: train(config_from_args(parse([*TINY, *flags, "--runs-dir", str(folder), "--run-name", name])),
                         progress=False, stop_after=0) for name, flags in made.items()}
    # --paper's population and lifetimes, extended to 600 generations (as --generations 600 on a resume would)
    paper = config_from_args(parse(["--paper", "--generations", "600", "--evaluator", "serial", "--runs-dir",
                                    str(folder), "--run-name", "paper"]))
    paths["paper"] = train(paper, progress=False, stop_after=0)
    paths["finished"] = train(config_from_args(parse([*TINY, "--runs-dir", str(folder), "--run-name", "finished"])),
                              progress=False)
    return paths


def stored(path) -> TrainConfig:
    with RunStore.open(path) as store:
        return TrainConfig.from_dict(store.config)


def test_paper_on_a_resume_keeps_the_stored_length(runs):
    """--paper supplies the paper's settings, which a resumed paper run has already; its 300
    generations are not one of them: only a typed --generations changes the run's length."""
    path = runs["paper"]
    config, done = resumed_config(parse(["--paper", "--resume", str(path)]))
    assert done == 0 and config.generations == 600 and config == stored(path)
    assert resumed_config(parse(["--paper", "--resume", str(path), "--generations", "700"]))[0].generations == 700


@pytest.mark.parametrize("flags", [["--workers", "2"], ["--evaluator", "serial", "--workers", "2"],
                                   ["--evaluator", "serial", "--workers", "3"]])
def test_resume_of_a_serial_run_refuses_workers_as_a_new_run_does(runs, capsys, flags):
    path = runs["finished"]
    with pytest.raises(SystemExit):
        cli_main(["train", *TINY, "--runs-dir", str(path.parent / "new"), *flags])
    new_run = one_error_line(capsys)
    assert new_run == ("spikehebb train: error: --evaluator serial runs every lifetime in this process: drop "
                       f"--workers {flags[-1]} (or use --evaluator processes)")
    with pytest.raises(SystemExit) as exc:
        cli_main(["train", "--resume", str(path), *flags])
    assert exc.value.code == 2 and one_error_line(capsys) == new_run
    assert RunStore.open(path).generations_completed == 1
    # lifetimes in worker processes: a place that takes the count
    config = resumed_config(parse(["--resume", str(path), "--evaluator", "processes", "--workers", "2"]))[0]
    assert config.evaluator.name == "processes" and config.evaluator.workers == 2


def test_a_run_resumed_in_this_process_leaves_its_workers_and_timeouts_behind(runs, tmp_path):
    """A run on worker processes with its own count and timeouts, resumed with ``--evaluator
    serial``: none of them carries over (the serial evaluator refuses what it would ignore), and
    back on processes the typed ones apply."""
    flags = [*TINY[:-3], "--evaluator", "processes", "--workers", "2", "--stall-timeout", "60", "--build-timeout",
             "never", "--no-progress", "--runs-dir", str(tmp_path), "--run-name", "pool"]
    path = train(config_from_args(parse(flags)), progress=False, stop_after=0)
    assert stored(path).evaluator == EvaluatorConfig("processes", 2, stall_timeout=60, build_timeout=None)
    config = resumed_config(parse(["--resume", str(path), "--evaluator", "serial"]))[0]
    assert config.evaluator == EvaluatorConfig("serial")
    config = resumed_config(parse(["--resume", str(path), "--evaluator", "processes", "--stall-timeout", "90"]))[0]
    assert config.evaluator == EvaluatorConfig("processes", 2, stall_timeout=90, build_timeout=None)


@pytest.mark.parametrize("fields, ignored", [
    ({"workers": 2}, "workers=2"), ({"stall_timeout": 5}, "stall_timeout=5.0"),
    ({"stall_timeout": None, "build_timeout": 60}, "stall_timeout=None, build_timeout=60.0")])
def test_the_serial_evaluator_refuses_what_it_would_ignore(fields, ignored):
    """Through the API as through the flags; a serial config stored with such values before
    (they did nothing) reads back as a plain serial one."""
    with pytest.raises(ValueError) as err:
        EvaluatorConfig("serial", **fields)
    assert str(err.value) == (f"evaluator: the serial one runs every lifetime in the calling process, on one core and "
                              f"with nothing to stop it; it would ignore {ignored}: leave "
                              f"{'it' if ',' not in ignored else 'them'} out or use 'processes'")
    assert EvaluatorConfig("serial", workers=1).n_workers() == 1  # one worker is what it has
    old = TrainConfig().to_dict()
    old["evaluator"] = {"name": "serial", "workers": 2, "ray_address": None, "batch_size": 4, "stall_timeout": 5.0,
                        "build_timeout": None}
    assert TrainConfig.from_dict(old).evaluator == EvaluatorConfig("serial", batch_size=4)


def test_a_typed_task_is_told_from_the_parsers_default(runs):
    """``--task ant`` on a car run is refused even where ant is the parser's default, and so is
    run_car.py's ``--task car`` on an ant run; left out, the run's own task is resumed."""
    message = "--task {} differs from the task of {}, {}; a resumed run keeps its task: drop --task"
    with pytest.raises(ValueError) as err:
        resumed_config(parse(["--resume", str(runs["car"]), "--task", "ant"]))
    assert str(err.value) == message.format("ant", runs["car"], "car")
    with pytest.raises(ValueError) as err:
        resumed_config(parse(["--resume", str(runs["plain"]), "--task", "car"], task="car"))
    assert str(err.value) == message.format("car", runs["plain"], "ant")
    assert resumed_config(parse(["--resume", str(runs["car"])]))[0] == stored(runs["car"])
    assert resumed_config(parse(["--resume", str(runs["plain"])], task="car"))[0] == stored(runs["plain"])
    assert resumed_config(parse(["--resume", str(runs["car"]), "--task", "car"]))[0] == stored(runs["car"])
    # a new run: the parser's task, typed or not
    assert config_from_args(parse(TINY[:-5], task="car")).task.name == "car"
    assert config_from_args(parse(["--task", "car", *TINY[:-5]])).task.name == "car"


@pytest.mark.parametrize("run, flags, message", [
    ("plain", ["--noise", "rule"], "--noise sets how gmm and random shared rules are perturbed: it needs "
                                   "--shared-rules M or --rho R with --assign gmm or random"),
    ("cma", ["--lr", "0.2"], "CMA-ES has no learning rate (--sigma sets its first step size): drop --lr/--scale-lr"),
    ("lstm", ["--backend", "brian2"], "--backend chooses how a rate network runs; the lstm agent runs in NumPy "
                                      "whatever it says: drop --backend"),
    ("car", ["--first-input", "settled"], "--first-input chooses what the network sees first after the burn-in; "
                                          "the car has none: drop --first-input"),
    ("gmm", ["--merge-every", "20"], "--merge-every and --merge-fraction set Evolve & Merge: they need --assign merge"),
])
def test_a_resume_refuses_flags_it_would_ignore_whatever_their_value(runs, run, flags, message):
    """Each flag gives the value the run holds already (nothing differs), and is refused all the same."""
    with pytest.raises(ValueError) as err:
        resumed_config(parse(["--resume", str(runs[run]), *flags]))
    assert str(err.value) == message


def test_rule_on_a_resume_keeps_the_stored_agent_options(runs, capsys):
    path = runs["dale"]
    assert resumed_config(parse(["--resume", str(path), "--rule", "ABCD_lr"]))[0] == stored(path)
    with pytest.raises(SystemExit) as exc:
        cli_main(["train", "--resume", str(path), "--rule", "AD"])
    assert exc.value.code == 2
    assert one_error_line(capsys) == (
        f"spikehebb train: error: {path} was started with other settings and a resumed run keeps them; drop the "
        "flags that change agent.rule: 'ABCD_lr' -> 'AD' (only --generations, where lifetimes run and the run's "
        "name may change)")
    # what is typed changes, the rest of the agent stays: its coefficient rows, a lif run's neurons
    agent = resumed_config(parse(["--resume", str(runs["rows"]), "--coevolve"]))[0].agent
    assert agent == dataclasses.replace(stored(runs["rows"]).agent, evolve_initial_weights=True)
    agent = resumed_config(parse(["--resume", str(runs["lif"]), "--rule", "AD_lr"]))[0].agent
    assert agent == dataclasses.replace(stored(runs["lif"]).agent, rule="AD_lr")


@pytest.mark.parametrize("flags", [["--paper", "--static", "--popsize", "3"], ["--workers", "8", "--popsize", "3"]])
def test_an_error_is_one_line_without_the_notes(tmp_path, capsys, flags):
    with pytest.raises(SystemExit) as exc:
        cli_main(["train", *flags, "--runs-dir", str(tmp_path / "runs")])
    assert exc.value.code == 2
    assert one_error_line(capsys) == ("spikehebb train: error: popsize must be even for OpenAI-ES, whose candidates "
                                      "come in mirrored pairs, got 3")
    assert not (tmp_path / "runs").exists()


def test_notes_and_the_run_files_name_come_once_the_run_starts(tmp_path, capsys, monkeypatch):
    """Said before the first generation (a log of a run killed by SIGKILL names the file to resume)."""
    said = []

    class Stopped:  # the first generation's lifetimes: what stderr holds by then, then Ctrl-C
        def evaluate(self, sampler, keys):
            said.append(capsys.readouterr().err)
            raise KeyboardInterrupt

    monkeypatch.setattr("spikehebb.train.make_evaluator", lambda *args, **kwargs: contextlib.nullcontext(Stopped()))
    path = tmp_path / "run.h5"
    with pytest.raises(SystemExit) as exc:
        cli_main(["train", "--paper", "--static", *TINY, "--runs-dir", str(tmp_path), "--run-name", "run"])
    assert exc.value.code == 130
    assert said == [
        "note: the authors' static baseline (enajx/ES) started its search at torch's default weights, "
        "U(+-1/sqrt(n_pre)) per layer; add --init fan_in for it (without: N(0, 1))\n"
        "note: the authors' network saw the observation from before the 40 burn-in steps first; add --first-input "
        "reset for it (without: the one after them)\n"
        f"run file: {path}\n"]
    assert one_error_line(capsys) == (f"spikehebb train: interrupted: {path} holds 0 finished generation(s); "
                                      f"continue with --resume {path}")
    with pytest.raises(SystemExit):
        cli_main(["train", "--resume", str(path), "--no-progress"])
    assert said[1] == f"run file: {path}\n"


def test_a_busy_run_file_gives_advice_that_fits_the_command(runs, capsys):
    path = runs["finished"]
    busy = f"{path} is open for writing by another process (pid {os.getpid()}); wait for it to finish"
    lock = WriterLock(path)  # a trainer writing the run
    try:
        with pytest.raises(SystemExit) as exc:
            cli_main(["train", "--resume", str(path), "--generations", "2"])
        assert exc.value.code == 2 and one_error_line(capsys) == f"spikehebb train: error: {busy}"
        with pytest.raises(SystemExit) as exc:
            cli_main(["evaluate", str(path), "--morphology", "default", "--episodes", "1", "--eval-steps", "45",
                      "--eval-workers", "1", "--traces"])
        assert exc.value.code == 2 and one_error_line(capsys) == (
            f"spikehebb evaluate: error: {busy}, or record the traces into a separate file "
            "(spikehebb.assess.record_traces(..., into=FILE))")
        with pytest.raises(RunFileBusyError) as exc:  # the same advice to a script
            record_traces(path, *load_run(path), ["default"], max_env_steps=45)
        assert str(exc.value) == f"{busy}, or record the traces into a separate file (spikehebb.assess.record_traces(..., into=FILE))"
    finally:
        lock.release()
    assert RunStore.open(path).generations_completed == 1


def test_a_runs_dir_that_is_not_a_directory_is_one_line_before_anything_starts(tmp_path, capsys):
    file = tmp_path / "file"
    file.write_text("not a directory")
    for runs_dir, message in ((file, f"got {file}, which is not one"),
                              (file / "sub", f"got {file / 'sub'}, under {file}, which is not one")):
        with pytest.raises(SystemExit) as exc:
            cli_main(["train", *TINY, "--runs-dir", str(runs_dir)])
        assert exc.value.code == 2
        assert one_error_line(capsys) == f"spikehebb train: error: --runs-dir must be a directory ({message})"
    assert file.read_text() == "not a directory" and sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_timeouts_are_stored_kept_on_a_resume_changed_by_a_flag_and_reach_the_evaluator(tmp_path, monkeypatch):
    """--stall-timeout/--build-timeout, like --workers, say how lifetimes run: a new run stores
    them, a resume keeps the stored ones unless typed, and the evaluator gets them. Run files
    written before the settings existed read as the 30-minute defaults."""
    import spikehebb.train as train_module
    from spikehebb.evaluators import make_evaluator

    flags = [*TINY[:-3], "--no-progress", "--runs-dir", str(tmp_path), "--run-name", "timeouts"]
    config = config_from_args(parse([*flags, "--evaluator", "processes", "--workers", "1", "--stall-timeout", "90"]))
    assert (config.evaluator.stall_timeout, config.evaluator.build_timeout) == (90.0, 1800.0)
    path = train(config, progress=False, stop_after=0)
    assert stored(path).evaluator == config.evaluator
    kept = resumed_config(parse(["--resume", str(path)]))[0]
    assert (kept.evaluator.stall_timeout, kept.evaluator.build_timeout) == (90.0, 1800.0)
    changed = resumed_config(parse(["--resume", str(path), "--stall-timeout", "never", "--build-timeout", "120.5"]))[0]
    assert (changed.evaluator.stall_timeout, changed.evaluator.build_timeout) == (None, 120.5)

    given = []

    def serial_in_its_place(name, spec, **kwargs):  # records what a pool would get, runs it here
        given.append((name, kwargs))
        return make_evaluator("serial", spec)

    monkeypatch.setattr(train_module, "make_evaluator", serial_in_its_place)
    train(changed, resume=path, progress=False)
    assert given == [("processes", {"workers": 1, "address": None, "stall_timeout": None, "build_timeout": 120.5})]
    assert RunStore.open(path).generations_completed == 1

    model = MODELS_DIR / "ant_abcd_lr.h5"
    older = RunStore.open(model).config["evaluator"]  # written before the settings existed
    assert "stall_timeout" not in older
    evaluator = TrainConfig.from_dict(RunStore.open(model).config).evaluator
    assert (evaluator.stall_timeout, evaluator.build_timeout) == (1800.0, 1800.0)
