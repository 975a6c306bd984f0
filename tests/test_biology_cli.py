"""Biology-minded options through the command line and the run file (issue 11): one-line
errors before anything is written; the config stored and the agent rebuilt by `evaluate`;
traces with the modulator, rates and Dale's signs; the study script at a tiny budget."""

import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from spikehebb.biology import dale_signs
from spikehebb.cli import main as cli_main
from spikehebb.config import TrainConfig
from spikehebb.store import RunStore
from spikehebb.tracefile import load_trace

TINY = ["--popsize", "4", "--generations", "1", "--max-env-steps", "60", "--train-variants", "default",
        "--evaluator", "serial", "--batch-size", "4", "--no-progress", "--backend", "numpy"]


@pytest.mark.parametrize("flags, message", [
    (["--dale", "0"], "the Dale fraction of excitatory units must be in (0, 1], got 0.0"),
    (["--dale", "1.5"], "the Dale fraction of excitatory units must be in (0, 1], got 1.5"),
    (["--dale-mode", "smooth"], "--dale-mode needs --dale FRACTION"),
    (["--dale-unbalanced"], "--dale-unbalanced needs --dale FRACTION"),
    (["--eligibility-tau", "10"], "--eligibility-tau needs --modulated"),
    (["--modulated", "--eligibility-tau", "0.5"], "eligibility_tau must be a finite number of steps >= 1, got 0.5"),
    (["--rule-every", "0"], "rule_every must be a positive integer, got 0"),
    (["--rate-average", "0"], "rate_average must be a finite number of steps >= 1, got 0.0"),
    (["--static", "--dale", "0.5"], "dale need a plastic rule; a static agent has none"),
    (["--task", "car", "--positive"], "--positive needs a decoder that reads actions as r+ - r- pairs; "
                                      "task 'car''s CarDecoder cannot pair outputs"),
])
def test_bad_biology_flags_fail_in_one_line_before_anything_is_written(tmp_path, capsys, flags, message):
    runs = tmp_path / "runs"
    with pytest.raises(SystemExit) as exc:
        cli_main(["train", *TINY, "--runs-dir", str(runs), *flags])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err == f"spikehebb train: error: {message}"
    assert not runs.exists() or not any(runs.iterdir())


def test_default_config_is_todays():
    config = TrainConfig()
    agent = config.agent
    assert (agent.dale, agent.modulated, agent.rule_every, agent.rate_average, agent.weight_init) == (None, False, 1, None, "uniform")
    assert config.task.positive is False and agent.label == "ABCD_lr"


@pytest.mark.slow
def test_a_biology_run_is_stored_rebuilt_by_evaluate_and_traced(tmp_path, capsys):
    runs = tmp_path / "runs"
    flags = ["--dale", "0.75", "--dale-mode", "clip", "--positive", "--modulated", "--weight-init", "lognormal",
             "--rule-every", "2", "--rate-average", "3", "--seed", "5"]
    assert cli_main(["train", *TINY, "--runs-dir", str(runs), *flags]) == 0
    (path,) = runs.glob("*.h5")
    with RunStore.open(path) as store:
        config = TrainConfig.from_dict(store.config)
    agent = config.agent
    assert (agent.dale, agent.dale_mode, agent.dale_seed, agent.modulated, agent.weight_init, agent.rule_every,
            agent.rate_average, config.task.positive, agent.dale_balance) == (0.75, "clip", 5, True, "lognormal", 2, 3.0, True, True)
    capsys.readouterr()
    assert cli_main(["evaluate", str(path), "--variant", "default", "--episodes", "1", "--eval-steps", "70",
                     "--traces", "--eval-workers", "1"]) == 0
    trace = load_trace(path, "default/episode_0")
    assert [r.shape[1] for r in trace.rates] == [56, 128, 64, 16]
    assert all(np.all(r[:, :] >= 0) for r in trace.rates)
    assert "modulator" in trace.rewards and np.any(trace.rewards["modulator"] != 0)
    signs = dale_signs((56, 128, 64, 16), 0.75, 5)
    with h5py.File(path, "r") as f:
        g = f["traces/default/episode_0"]
        stored = [g.attrs[f"dale_signs_{l}"] for l in range(4)]
        gains = [g.attrs[f"dale_gains_{l}"] for l in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(stored, signs))
    for s, gain in zip(signs, gains):  # 75% E: E units send with n / (2 n_E), I units with n / (2 n_I)
        np.testing.assert_allclose(gain, np.where(s > 0, s.size / (2 * (s > 0).sum()), s.size / (2 * (s < 0).sum())))
    for layer, w in enumerate(trace.weights):  # every recorded step keeps Dale's signs
        assert np.all(w * signs[layer][None, :, None] >= 0)
    from spikehebb.lifetimes import Lifetimes

    redrawn = Lifetimes(path).random_weights(3, 0)  # the perturbation analysis' mid-life reset keeps the signs
    assert all(np.all(w * s[None, :, None] > 0) for w, s in zip(redrawn, signs))


@pytest.mark.slow
def test_the_study_script_runs_and_resumes_at_a_tiny_budget(tmp_path, capsys, experiment_script):
    script = Path(__file__).parents[1] / "experiments" / "biology_ant.py"
    argv = ["--out", str(tmp_path), "--arms", "unconstrained", "dale+positive", "--seeds", "1", "--generations", "1",
            "--popsize", "4", "--max-env-steps", "50", "--episodes", "1", "--backend", "numpy", "--workers", "1"]
    first = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    # 4 candidates x 1 training body (the default) x 50 env steps (burn-in included) in one generation
    assert "| dale+positive | 200 | 0 |" in first.stdout
    # The script runs as a program (above); the rest calls its main() here, which each run as a
    # program would only precede with seconds of imports. A later flag overrides an earlier one.
    biology = experiment_script("biology_ant")

    def study(*flags: str) -> str:
        capsys.readouterr()
        biology.main([*argv, *flags])
        return capsys.readouterr().out

    again = study("--generations", "2")
    assert "| dale+positive | 400 | 0 |" in again  # resumed: one more generation
    for run in tmp_path.glob("*.h5"):  # finished runs report from their caches alone
        run.unlink()
    cached = study("--generations", "2")
    assert cached == again and not list(tmp_path.glob("*.h5"))
    assert (tmp_path / "curves.png").exists() and (tmp_path / "table.md").exists()
    # a cache of other settings under the same name is not this run's: it trains and tests anew
    wider = study("--generations", "2", "--popsize", "6")
    assert "| dale+positive | 600 | 0 |" in wider  # 2 generations x 6 candidates x 50 steps
    # a mistake in the flags is one line and exit status 2, not a traceback (here: the run file of other settings)
    with pytest.raises(SystemExit) as refused:
        study("--generations", "2", "--popsize", "8")
    assert refused.value.code == 2
    assert "was started with other settings" in capsys.readouterr().err.splitlines()[-1]


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="no SIGUSR1 on this platform")
def test_sigusr1_while_the_study_tests_a_run_stops_it_after_those_tests(tmp_path, capsys, experiment_script,
                                                                       sigusr1_after):
    import spikehebb.assess

    biology = experiment_script("biology_ant")
    argv = ["--out", str(tmp_path), "--arms", "unconstrained", "dale+positive", "--seeds", "1", "--generations", "1",
            "--popsize", "4", "--max-env-steps", "50", "--episodes", "1", "--backend", "numpy", "--workers", "1"]
    sigusr1_after(spikehebb.assess, "assess", 1)
    with pytest.raises(SystemExit) as info:
        biology.main(argv)
    assert info.value.code == 138
    lines = [line.split(": ", 1)[1] for line in capsys.readouterr().err.splitlines() if "stopped" in line]  # less the prog
    assert lines == ["stopped by SIGUSR1 after unconstrained seed 0 and its tests; the run files keep every finished "
                     "generation: run the same command again to continue"]
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["unconstrained_s0.json"]
