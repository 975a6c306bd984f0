"""The CLI side of the disk's faults with real (tiny) training runs: a disk that fills up in the
middle of `spikehebb train`, and a run in a read-only directory. Each error is one line
`spikehebb <cmd>: error: ...` with exit code 2, and the run resumes to the numbers of a run that
was never interrupted, bit for bit."""

import subprocess
import sys
import time

import numpy as np
import pytest

from spikehebb.cli import main as cli_main
from spikehebb.store import RunStore
from spikehebb.train import TrainConfig, train

MB = 1_000_000
TRAIN = ["--popsize", "4", "--max-env-steps", "60", "--train-variants", "default", "--evaluator", "serial",
         "--batch-size", "4", "--no-progress", "--seed", "3"]


def history(path):
    with RunStore.open(path) as store:
        return store.history(), store.load_checkpoint()


def error_line(capsys, command):
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"spikehebb {command}: error: "), err
    return err


def test_a_disk_that_fills_up_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path, tmpfs):
    d = tmpfs(24 * MB)
    proc = subprocess.Popen(
        [sys.executable, "-m", "spikehebb.cli", "train", *TRAIN, "--generations", "8", "--runs-dir", str(d)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline, ballast, path = time.monotonic() + 120, None, None
    while time.monotonic() < deadline and proc.poll() is None:
        files = list(d.glob("*.h5"))
        if files:
            path = files[0]
            try:
                if RunStore.open(path).generations_completed >= 2:
                    ballast = tmpfs.fill(d, leave=MB // 2)
                    break
            except Exception:  # between creation and the first write
                pass
        time.sleep(0.01)
    out, err = proc.communicate(timeout=120)
    assert ballast is not None, f"the run ended before the disk could be filled: {err[-2000:]}"
    assert proc.returncode == 2, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("spikehebb train: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert lines[0].startswith("spikehebb train: error: no space left to write generation ")
    assert f"MB free in {d}, 0.5 MB are" in lines[0] and f"--resume {path}" in lines[0]
    assert sorted(p.name for p in d.iterdir()) == sorted(["ballast", path.name])  # no .tmp, no lock
    done = RunStore.open(path).generations_completed
    assert 2 <= done < 8

    ballast.unlink()
    assert cli_main(["train", "--resume", str(path), "--no-progress"]) == 0
    resumed, ckpt = history(path)
    config = TrainConfig.from_dict(RunStore.open(path).config)
    straight = train(TrainConfig.from_dict({**config.to_dict(), "runs_dir": str(tmp_path / "straight")}), progress=False)
    expected, ckpt2 = history(straight)
    assert len(resumed["generation"]) == 8
    for key in ("fitness_raw", "fitness_shaped", "sigma", "lr", "best_fitness", "env_steps"):
        np.testing.assert_array_equal(resumed[key], expected[key], err_msg=key)
    np.testing.assert_array_equal(ckpt.mean, ckpt2.mean)
    np.testing.assert_array_equal(ckpt.best_params, ckpt2.best_params)


def test_a_run_in_a_read_only_directory(tmp_path, read_only, capsys):
    src = tmp_path / "src"
    path = train(TrainConfig.from_dict(dict(popsize=4, generations=1, max_env_steps=60, train_variants=("default",), batch_size=4,
                             evaluator="serial", runs_dir=str(src), run_name="run")), progress=False)
    ro = read_only(src)
    run = ro / path.name
    assert cli_main(["inspect", str(run)]) == 0
    assert "1 generation;" in capsys.readouterr().out
    assert cli_main(["plot", str(run), "-o", str(tmp_path / "curve.png")]) == 0
    assert (tmp_path / "curve.png").stat().st_size > 1000
    capsys.readouterr()

    with pytest.raises(SystemExit) as info:
        cli_main(["plot", str(run)])  # the PNG would go beside the run
    assert info.value.code == 2 and "Read-only file system" in error_line(capsys, "plot")
    read_only_dir = f"{ro} is on a read-only file system"
    with pytest.raises(SystemExit) as info:
        cli_main(["train", "--resume", str(run), "--no-progress"])
    assert info.value.code == 2 and error_line(capsys, "train") == f"spikehebb train: error: cannot write {run}: {read_only_dir}; reading a run needs no write access, writing one does (copy it to a writable directory)"
    with pytest.raises(SystemExit) as info:
        cli_main(["train", *TRAIN, "--generations", "1", "--runs-dir", str(ro)])
    assert info.value.code == 2 and read_only_dir in error_line(capsys, "train")
    with pytest.raises(SystemExit) as info:
        cli_main(["evaluate", str(run), "--morphology", "default", "--episodes", "1", "--eval-steps", "50",
                  "--eval-workers", "1", "--traces"])
    assert info.value.code == 2 and f"cannot write {run}: {read_only_dir}" in error_line(capsys, "evaluate")
    assert sorted(p.name for p in src.iterdir()) == [path.name]
