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
    from spikehebb.network import brian

    brian.COMPILE_NOTICE_AFTER_S = 0.05
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


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_the_compile_notice_reaches_the_terminal_while_brian2_redirects_stderr(tmp_path):
    log = tmp_path / "brian_stderr.log"
    master, slave = os.openpty()
    try:
        child = subprocess.Popen([sys.executable, "-c", REDIRECTED_BUILD, str(log)], cwd=REPO,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        slave = None
        terminal = b""
        while True:  # read as it comes: a pty may drop what is unread when its last writer goes
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            terminal += chunk
        assert child.wait(timeout=60) == 0, terminal.decode(errors="replace")
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)
    text = terminal.decode(errors="replace")
    assert text.count("spikehebb: compiling the Brian2 network to C++") == 1, text
    assert "done" in text
    assert "compiling" not in log.read_text()


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
