"""Fixtures shared by several test files."""

import importlib.util
import os
import signal
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest


@pytest.fixture
def first_generation():
    """``wait(directory)``: wait (up to 120 s) until a run file in ``directory`` holds a finished
    generation, for tests that stop a training process mid-run; returns that file (None on timeout)."""
    from spikehebb.store import RunStore

    def wait(directory: Path, timeout: float = 120) -> Path | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            files = list(Path(directory).glob("*.h5"))
            try:
                if files and RunStore.open(files[0]).generations_completed >= 1:
                    return files[0]
            except Exception:  # between creation and the first write
                pass
            time.sleep(0.1)
        return None

    return wait


@pytest.fixture(scope="session")
def stderr_lines():
    """``lines(err)``: the non-blank lines of a process's stderr, less pybullet's banner."""

    def lines(err: str) -> list[str]:
        return [line for line in err.splitlines() if line.strip() and "pybullet build time" not in line]

    return lines


@pytest.fixture(scope="session")
def experiment_script():
    """``load(name)``: the module of ``experiments/NAME.py``, loaded (and registered under its
    name: a script's dataclasses look their module up) so that a test can call its functions."""

    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "experiments" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def sigusr1_after(monkeypatch):
    """``patch(target, name, call)``: make ``target.name`` send this process SIGUSR1 when its
    ``call``-th call returns (undone with the test)."""

    def patch(target, name: str, call: int) -> None:
        real, calls = getattr(target, name), []

        def signalling(*args, **kwargs):
            result = real(*args, **kwargs)
            calls.append(1)
            if len(calls) == call:
                os.kill(os.getpid(), signal.SIGUSR1)
            return result

        monkeypatch.setattr(target, name, signalling)

    return patch


@pytest.fixture
def sigusr1_after_evaluation(monkeypatch, sigusr1_after):
    """``patch(call)``: make training send itself SIGUSR1 when the ``call``-th generation's
    lifetimes are done, counted per evaluator (that generation is then told and stored: the signal
    landed while it was in flight)."""
    import spikehebb.train as train_module

    def patch(call: int) -> None:
        made = train_module.make_evaluator

        def making(*args, **kwargs):
            evaluator = made(*args, **kwargs)
            sigusr1_after(evaluator, "evaluate", call)
            return evaluator

        monkeypatch.setattr(train_module, "make_evaluator", making)

    return patch


class ProcessInfo(NamedTuple):
    """One process as /proc tells it: its parent, its session, whether its main thread blocks SIGUSR1."""

    ppid: int
    session: int
    sigusr1_blocked: bool


@pytest.fixture(scope="session")
def processes():
    """``read()``: every process this one can see, pid -> :class:`ProcessInfo`, from /proc (Linux;
    the tests that use it leave the check out elsewhere)."""

    def read() -> dict[int, ProcessInfo]:
        found = {}
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                stat = (status.parent / "stat").read_text()
                fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            except OSError:  # gone meanwhile
                continue
            after_command = stat.rsplit(")", 1)[1].split()  # state, ppid, pgrp, session, ...
            blocked = bool(int(fields["SigBlk"], 16) & (1 << (signal.SIGUSR1 - 1)))
            found[int(status.parent.name)] = ProcessInfo(int(after_command[1]), int(after_command[3]), blocked)
        return found

    return read


@pytest.fixture
def refuse_write_probe(monkeypatch):
    """``refuse(error)``: the store's write probe (a ``-probe-`` file touched in the folder,
    ``probe_write``) raises ``error`` from then on, as in a folder that takes no new file (a
    read-only mount, /proc); other files are touched as usual."""
    real_touch = Path.touch

    def refuse(error: OSError) -> None:
        def touch(self, *args, **kwargs):
            if "-probe-" in self.name:
                raise error
            return real_touch(self, *args, **kwargs)

        monkeypatch.setattr(Path, "touch", touch)

    return refuse
