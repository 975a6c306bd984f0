"""experiments/minimal_ant.py, the whole method in one file, runs as a newcomer would run it."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "minimal_ant.py"


def test_minimal_ant_runs_and_reports_each_generation():
    out = subprocess.run([sys.executable, str(SCRIPT), "--popsize", "2", "--generations", "2", "--steps", "20"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith("generation")]
    assert [line.split(":")[0] for line in lines] == ["generation 0", "generation 1"]
    assert len(SCRIPT.read_text().splitlines()) < 150
    bad = subprocess.run([sys.executable, str(SCRIPT), "--popsize", "3"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--popsize must be an even number >= 2 (mirrored pairs), got 3" in bad.stderr


def _minimal_ant():
    import importlib.util

    spec = importlib.util.spec_from_file_location("minimal_ant", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_failed_lifetime_is_the_worst_candidate_not_the_best():
    """Raw fitness reached centred_ranks, whose sort ranked NaN best: a blown-up lifetime pulled
    the mean towards itself. Now NaN and infinities count as -inf, as in spikehebb's strategies."""
    import numpy as np

    es_step = _minimal_ant().es_step
    eps = np.random.default_rng(0).standard_normal(6)
    noise = np.stack([eps, -eps])  # one mirrored pair
    mean = np.zeros(6)
    for failed in (np.nan, np.inf, -np.inf):
        step = es_step(mean, noise, np.array([failed, 1.0]), 0.2, 0.1) - mean
        assert step @ eps < 0  # towards the candidate that lived, away from the failure
    np.testing.assert_array_equal(es_step(mean, noise, np.array([np.nan, np.nan]), 0.2, 0.1), mean)  # all tie: no step


def test_the_step_on_finite_fitness_is_the_scripts_original_arithmetic():
    """es_step is the loop body as it was (bit for bit) whenever every lifetime finished."""
    import numpy as np

    from spikehebb.es import centred_ranks

    es_step = _minimal_ant().es_step
    rng = np.random.default_rng(1)
    for popsize in (2, 8):
        mean, half = rng.normal(size=50), rng.standard_normal((popsize // 2, 50))
        noise = np.concatenate([half, -half])
        fitness = rng.normal(size=popsize) * 30
        lr, sigma = 0.2 * 0.995, 0.1 * 0.999
        penalised = fitness - 0.01 * np.mean((mean + sigma * noise) ** 2, axis=1)
        shaped = centred_ranks(penalised)
        shaped = shaped / shaped.std()
        want = mean + lr / (popsize * sigma) * shaped @ noise
        np.testing.assert_array_equal(es_step(mean, noise, fitness, lr, sigma), want)
