"""Fixtures shared by several test files."""

import importlib.util
import sys
import time
from pathlib import Path

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
