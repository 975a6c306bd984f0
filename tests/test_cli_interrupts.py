"""Ctrl-C at the command line and the words a command ends with: evaluation processes that a
Ctrl-C stops at once and silently (the parent decides, as with the training workers), one line
that says the command was interrupted, and counts, times and advice worded for what they say."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import spikehebb.cli as cli
from spikehebb.assess import VariantResult, format_table
from spikehebb.cli import main as cli_main
from spikehebb.store.runfile import wall_time
from spikehebb.lifetimes import MODELS_DIR
from spikehebb.models import model_info

MODEL = "ant_abcd_lr"
ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------- Ctrl-C in a real process
def _session(sid: int) -> dict[int, str]:
    """pid -> command line of every process in session ``sid`` (Linux /proc)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # state, ppid, pgrp, session, ...
            if int(fields[3]) == sid:
                found[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):  # gone meanwhile
            continue
    return found


def _maps_pybullet(pid: int) -> bool:
    """Whether process ``pid`` has loaded pybullet: it builds its envs, past its imports."""
    try:
        return "pybullet" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the processes from /proc (Linux)")
@pytest.mark.parametrize("when", ["starting", "running"])
def test_ctrl_c_during_evaluation_processes_ends_at_once_in_one_line(tmp_path, stderr_lines, when):
    """``spikehebb evaluate --eval-workers 2``, Ctrl-C to the whole process group (as a terminal
    sends it) while its two processes still import ("starting") or once they build their envs
    ("running"): exit 130 with one line, no worker traceback, no hang, no process left."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "spikehebb.cli", "evaluate", MODEL, "--episodes", "20", "--eval-workers", "2"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            workers = [pid for pid, cmd in _session(proc.pid).items() if "spawn_main" in cmd]
            if len(workers) == 2 and (when == "starting" or all(map(_maps_pybullet, workers))):
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the evaluation processes were not {when} within 180 s (exit {proc.poll()})")
        if when == "starting":
            assert not any(map(_maps_pybullet, workers)), "the processes were past their imports already"
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=90)  # the old pool's feeder thread blocked exit for ever
        except subprocess.TimeoutExpired:
            pytest.fail("spikehebb evaluate hung after Ctrl-C")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, err
    assert stderr_lines(err) == ["spikehebb evaluate: interrupted"], err
    assert out == ""
    deadline = time.monotonic() + 30  # the resource tracker ends once the parent's pipe to it closes
    while _session(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _session(proc.pid) == {}, "processes outlived spikehebb evaluate"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the processes from /proc (Linux)")
def test_ctrl_c_while_training_workers_start_prints_no_worker_traceback(tmp_path):
    """The training workers too are born deaf to Ctrl-C (they printed a traceback from their
    imports): ``spikehebb train --workers 2`` interrupted while they import ends in its own
    words alone."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "spikehebb.cli", "train", "--popsize", "4", "--generations", "1", "--max-env-steps",
         "50", "--train-variants", "default", "--workers", "2", "--no-progress", "--runs-dir", str(tmp_path)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            workers = [pid for pid, cmd in _session(proc.pid).items() if "spawn_main" in cmd]
            if len(workers) == 2:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the training workers did not start within 180 s (exit {proc.poll()})")
        assert not any(map(_maps_pybullet, workers)), "the workers were past their imports already"
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines()[-1].startswith("spikehebb train: "), err


@pytest.mark.slow
def test_evaluation_processes_give_the_serial_numbers_and_a_variant_error_stops_them():
    """The pool's other paths: the numbers of one process, in the variants' order; a variant's
    error raised here, its pool stopped (no process of it left)."""
    import multiprocessing

    from spikehebb.assess import assess, load_run

    config, params = load_run(MODELS_DIR / f"{MODEL}.h5")
    variants = ["long_front", "default"]
    one, two = (assess(config, params, variants, episodes=2, workers=w, max_env_steps=60) for w in (1, 2))
    assert [r.variant for r in two] == variants
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a.fitness, b.fitness)
    with pytest.raises(ValueError):
        assess(config, params[:-1], variants, episodes=2, workers=2, max_env_steps=60)
    assert multiprocessing.active_children() == []


# ------------------------------------------------------------------------- the interrupted line
def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt  # what Ctrl-C raises: no text


@pytest.mark.parametrize("command, args, target", [
    ("train", ["--popsize", "4", "--generations", "1", "--evaluator", "serial", "--no-progress"], "run_train"),
    ("evaluate", [MODEL, "--episodes", "1"], "run_evaluate"),
    ("inspect", [MODEL], None),
    ("plot", [MODEL, "-o", "{tmp}/curve.png"], "run_plot"),
    ("video", [MODEL, "-o", "{tmp}/video.gif"], "run_video"),
    ("report", [MODEL, "-o", "{tmp}/page.html"], "run_report"),
    ("select", [str(MODELS_DIR / f"{MODEL}.h5"), "-o", "{tmp}/model.h5"], "run_select"),
])
def test_ctrl_c_says_interrupted_in_every_command(tmp_path, capsys, monkeypatch, command, args, target):
    if target is None:  # inspect reads the file in main itself
        from spikehebb.store import RunStore

        monkeypatch.setattr(RunStore, "open", _interrupt)
    else:
        monkeypatch.setattr(cli, target, _interrupt)
    with pytest.raises(SystemExit) as exc:
        cli_main([command, *(a.format(tmp=tmp_path) for a in args)])
    assert exc.value.code == 130
    assert capsys.readouterr().err == f"spikehebb {command}: interrupted\n"


def test_the_training_line_of_a_stop_keeps_its_words(capsys, monkeypatch, tmp_path):
    """A KeyboardInterrupt with text (train's TrainingInterrupted) is said as it is."""
    from spikehebb.train import TrainingInterrupted

    def stop(*args, **kwargs):
        raise TrainingInterrupted(tmp_path / "run.h5", 3)

    monkeypatch.setattr(cli, "run_train", stop)
    with pytest.raises(SystemExit) as exc:
        cli_main(["train", "--evaluator", "serial", "--no-progress"])
    assert exc.value.code == 130
    assert capsys.readouterr().err == (f"spikehebb train: interrupted: {tmp_path / 'run.h5'} holds 3 finished "
                                       f"generation(s); continue with --resume {tmp_path / 'run.h5'}\n")


# ------------------------------------------------------------------------------------- wording
@pytest.mark.parametrize("n, said", [(1, "over 1 lifetime, each"), (2, "over 2 lifetimes, each")])
def test_the_table_counts_lifetimes_in_the_singular_for_one(n, said):
    table = format_table([VariantResult("default", np.full(n, 5.0), "trained")], "rule")
    assert f"mean ± std {said} from fresh random weights." in table


@pytest.mark.parametrize("generations, said", [(1, ", 1 generation"), (2, ", 2 generations")])
def test_the_run_length_in_the_settings_line_is_singular_for_one(tmp_path, generations, said):
    from spikehebb.config import TrainConfig
    from spikehebb.store import RunStore

    with RunStore.create(tmp_path / "run.h5", TrainConfig(generations=generations), sizes=(28, 128, 64, 8),
                         rule="ABCD_lr", popsize=2) as store:
        line = store.config_line()
    assert f"seed 0{said}; also " in line or line.endswith(f"seed 0{said}"), line


@pytest.mark.parametrize("seconds, said", [(0.4, "0 s"), (42.2, "42 s"), (59.4, "59 s"), (59.7, "1.0 min"), (60, "1.0 min"),
                                           (750, "12.5 min"), (3590, "59.8 min"), (3599, "1.00 h"), (3600, "1.00 h"),
                                           (115920, "32.20 h")])
def test_wall_time_in_seconds_minutes_or_hours(seconds, said):
    assert wall_time(seconds) == said


def test_resuming_a_shipped_model_names_its_training_run_and_the_copy_to_make(capsys):
    source = model_info(MODELS_DIR / f"{MODEL}.h5")["source"]
    model = Path(os.path.relpath(MODELS_DIR / f"{MODEL}.h5"))
    training = model.parent / "training" / source
    assert training.is_file()
    with pytest.raises(SystemExit) as exc:
        cli_main(["train", "--resume", str(model)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "\n" not in err.strip() and "Traceback" not in err, err
    assert f"resume its training run, {training}, instead, from a copy in a runs folder" in err, err
    assert f"mkdir -p runs && cp {training} runs/ && spikehebb train --resume runs/{source}" in err, err


def test_every_command_says_what_it_does_in_its_help(capsys):
    with pytest.raises(SystemExit):
        cli_main(["--help"])
    commands = re.search(r"\{([a-z,]+)\}", capsys.readouterr().out).group(1).split(",")
    assert {"train", "evaluate", "inspect", "plot", "video", "report", "select"} <= set(commands)
    for command in commands:
        with pytest.raises(SystemExit):
            cli_main([command, "--help"])
        text = capsys.readouterr().out
        # argparse puts the description between the usage and the first argument group ("options:")
        description = text.split("\n\n")[1]
        assert not re.fullmatch(r"[a-z ]+:", description.splitlines()[0]), f"{command} has no description:\n{text}"
        assert len(description.split()) >= 8, f"{command}:\n{text}"
        if command in ("inspect", "plot", "video", "report"):
            assert MODEL in description, f"{command}: say that a shipped model's name will do"


@pytest.mark.parametrize("command", [["-m", "spikehebb.cli", "inspect", MODEL],
                                     ["experiments/run_ant.py", "--popsize", "2", "--generations", "1",
                                      "--max-env-steps", "45", "--train-variants", "default", "--evaluator", "serial",
                                      "--no-progress", "--episodes", "1", "--eval-steps", "45", "--variant", "default"]],
                         ids=["inspect", "run_ant"])
def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path, command):
    """`spikehebb inspect ant_abcd_lr | head -1`: the reader is gone before the command writes
    (its pipe closed here at once): exit 1 and nothing on stderr, where it said
    "error: [Errno 32] Broken pipe"."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout buffered, as a user's is
    proc = subprocess.Popen([sys.executable, *command, *(["--runs-dir", str(tmp_path)] if "--no-progress" in command else [])],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    proc.stdout.close()  # before the first write: the command takes a second to import
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 1, err
    assert [line for line in err.splitlines() if not line.startswith("run file: ")] == [], err


# A child that sends itself SIGINT while the package's command module is being imported: the
# finder runs inside the import of spikehebb.config, which spikehebb.cli pulls in first thing.
_SIGINT_DURING_IMPORT = """
import importlib.abc, os, signal, sys
class SigintOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "spikehebb.config":
            os.kill(os.getpid(), signal.SIGINT)
        return None
sys.meta_path.insert(0, SigintOnImport())
"""


@pytest.mark.parametrize("entry", [
    "from spikehebb.console import main; sys.exit(main(['inspect', 'ant_abcd_lr']))",
    "sys.argv = ['experiments/run_ant.py']; import runpy; runpy.run_path('experiments/run_ant.py', run_name='__main__')"],
    ids=["spikehebb", "run_ant"])
def test_ctrl_c_while_the_package_imports_is_one_line(entry):
    """A Ctrl-C in the first half second, while Python loads NumPy, gymnasium and the rest, ended
    in Python's traceback (the console script imported spikehebb.cli before any handler); now in
    the same one line and exit code as one later on."""
    proc = subprocess.run([sys.executable, "-c", _SIGINT_DURING_IMPORT + entry], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    prog = "spikehebb" if "console" in entry else "run_ant.py"
    assert (proc.returncode, proc.stderr, proc.stdout) == (130, f"{prog}: interrupted\n", ""), proc.stderr


def test_the_console_entry_imports_nothing_heavy():
    """The installed `spikehebb` command and run_<task>.py enter through spikehebb.console, which
    must load before anything a Ctrl-C could interrupt for long."""
    import configparser

    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    assert setup["options.entry_points"]["console_scripts"].split() == ["spikehebb", "=", "spikehebb.console:main"]
    for script in ("run_ant.py", "run_car.py"):
        assert "from spikehebb.console import experiment_main" in (ROOT / "experiments" / script).read_text()
    loaded = subprocess.run([sys.executable, "-c", "import sys, spikehebb.console; print(*sorted(sys.modules))"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert [m for m in loaded if m.startswith(("spikehebb", "numpy"))] == ["spikehebb", "spikehebb.console"]
