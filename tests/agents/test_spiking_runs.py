"""``run_ant.py --neuron lif`` and ``run_car.py --neuron lif`` train and evaluate at a tiny
budget; the run file records the neuron model, evaluate rebuilds it, traces hold spike counts."""

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from spikehebb.config import TrainConfig
from spikehebb.store import RunStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("task, steps", [("ant", 45), ("car", 12)])
def test_run_script_trains_and_evaluates_a_lif_network(tmp_path, task, steps):
    variant = "default"
    cmd = [sys.executable, str(ROOT / "experiments" / f"run_{task}.py"), "--neuron", "lif", "--substeps", "8",
           "--popsize", "2", "--generations", "1", "--max-env-steps", str(steps), "--evaluator", "serial",
           "--runs-dir", str(tmp_path), "--variant", variant, "--episodes", "1", "--eval-steps", str(steps),
           "--eval-workers", "1", "--traces", "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "lif" in done.stdout
    (path,) = tmp_path.glob("*.h5")
    with RunStore.open(path) as store:
        config = TrainConfig.from_dict(store.config)
    assert config.agent.kind == "lif" and config.agent.options["substeps"] == 8
    assert config.agent.options["tau_m_ms"] == 5.0  # the whole neuron model is recorded
    with h5py.File(path, "r") as f:
        episode = f[f"traces/{variant}/episode_0"]
        n_steps = episode["actions"].shape[0]
        sizes = config.task.make().sizes
        for l, n in enumerate(sizes):
            spikes = episode[f"spikes/layer_{l}"][()]
            assert spikes.shape == (n_steps, n, 2) and spikes.min() >= 0
        assert episode["spikes/layer_1"][()].sum() > 0
        spikes = [episode[f"spikes/layer_{l}"][()] for l in range(len(sizes))]
    from spikehebb.tracefile import load_trace

    read = load_trace(path, f"{variant}/episode_0")
    assert len(read.spikes) == len(sizes) and all(np.array_equal(a, b) for a, b in zip(read.spikes, spikes))
