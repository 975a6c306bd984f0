"""What reaches the user's console: the compile notice does, pybullet's import banner does not."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BANNER = "pybullet build time"


def python(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=120,
                          **kwargs)


# --- the compile notice ---------------------------------------------------------------------------

# The build as Brian2 runs it: fd 2 pointed at a log file while it compiles
# (brian2.utils.logger.std_silent), then restored.
REDIRECTED_BUILD = textwrap.dedent("""
    import os, sys, time
    from brian2 import prefs
    from spikehebb.network import brian

    brian.COMPILE_NOTICE_AFTER_S = 0.05
    prefs.codegen.runtime.cython.cache_dir = folder = sys.argv[2]
    # all the processes start their builds together, as a run's workers wait on one compile
    open(os.path.join(folder, f"ready-{os.getpid()}"), "w").close()
    while sum(name.startswith("ready-") for name in os.listdir(folder)) < int(sys.argv[3]):
        time.sleep(0.01)
    with open(sys.argv[1], "w") as log, brian._compile_notice():
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            time.sleep(1.0)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    with brian._compile_notice():  # a fast build says nothing
        pass
    print("done", file=sys.stderr, flush=True)
""")


def _on_one_terminal(commands: list[list[str]]) -> str:
    """Run ``commands`` at once, their stderr one pseudo-terminal (as a run's worker processes
    share the user's); what the terminal showed."""
    master, slave = os.openpty()
    try:
        children = [subprocess.Popen(command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=slave) for command in commands]
        os.close(slave)
        slave = None
        terminal = b""
        while True:  # read as it comes: a pty may drop what is unread when its last writer goes
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the children closed the terminal
                break
            if not chunk:
                break
            terminal += chunk
        assert [child.wait(timeout=60) for child in children] == [0] * len(children), terminal.decode(errors="replace")
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)
    return terminal.decode(errors="replace")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
@pytest.mark.parametrize("processes", [1, 2])
def test_the_compile_notice_reaches_the_terminal_once_while_brian2_redirects_stderr(tmp_path, processes):
    """It went into Brian2's log file; two processes building at once (a run's workers) say it once."""
    logs = [tmp_path / f"brian_stderr_{i}.log" for i in range(processes)]
    text = _on_one_terminal([[sys.executable, "-c", REDIRECTED_BUILD, str(log), str(tmp_path), str(processes)] for log in logs])
    assert text.count("spikehebb: compiling the Brian2 network to C++") == 1, text
    assert text.count("done") == processes
    assert not any("compiling" in log.read_text() for log in logs)


# --- pybullet's import banner ---------------------------------------------------------------------

SPAWNED_WORKER = textwrap.dedent("""
    import importlib, multiprocessing

    if __name__ == "__main__":
        child = multiprocessing.get_context("spawn").Process(target=importlib.import_module,
                                                             args=("spikehebb.envs.ant",))
        child.start()
        child.join()
        raise SystemExit(child.exitcode)
""")


@pytest.mark.parametrize("args", [
    ("-c", "import spikehebb.envs.ant"),
    ("-c", "import gymnasium, spikehebb.cli; gymnasium.make('spikehebb/AntBullet-v0').reset(seed=0)"),
    ("experiments/minimal_ant.py", "--help"),
    ("-c", SPAWNED_WORKER),
], ids=["import", "cli-env", "minimal_ant-help", "spawned-worker"])
def test_pybullet_import_banner_is_not_printed(args):
    run = python(*args)
    assert run.returncode == 0, run.stderr
    assert BANNER not in run.stdout
    assert BANNER not in run.stderr


def test_the_silenced_pybullet_import_still_shows_other_output_and_errors(tmp_path):
    (tmp_path / "pybullet.py").write_text(textwrap.dedent("""
        import os, sys
        os.write(2, b"pybullet build time: Jan 29 2025 23:17:20\\nwarning from the C module\\n")
        print("warning from Python", file=sys.stderr)
        raise ImportError("pybullet is broken")
    """))
    run = python("-c", "import spikehebb.envs.ant", env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert run.returncode == 1
    assert BANNER not in run.stdout + run.stderr
    assert "warning from the C module\nwarning from Python\n" in run.stderr
    assert "ImportError: pybullet is broken" in run.stderr
