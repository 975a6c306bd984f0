"""Palm et al.'s baselines and the genomic bottleneck as runs: lstm, gru, shared rules (gmm,
random, Evolve & Merge) train -> resume bit for bit -> evaluate; bad settings fail before a file."""

import numpy as np
import pytest

from spikehebb.assess import assess, load_run
from spikehebb.cli import main as cli_main
from spikehebb.config import AgentConfig, EvaluatorConfig, StrategyConfig, TaskConfig, TrainConfig
from spikehebb.es.shared_rules import expand
from spikehebb.store import RunStore
from spikehebb.train import train

N_ANT = 28 * 128 + 128 * 64 + 64 * 8  # 12,288 synapses

RUNS = {
    "lstm": (AgentConfig(kind="lstm", rule=None), StrategyConfig(popsize=4)),
    "gru": (AgentConfig(kind="gru", rule=None), StrategyConfig(popsize=4)),
    "gmm": (AgentConfig(), StrategyConfig(popsize=4, rho=128)),
    "random": (AgentConfig(rule="AD"), StrategyConfig(popsize=5, shared_rules=7, assign="random", noise="synapse")),
    # a merge after every generation: 12,288 rules -> 123 -> 96 (rho 128)
    "merge": (AgentConfig(), StrategyConfig(popsize=4, rho=128, assign="merge", merge_every=1, merge_fraction=0.99)),
}


def config(tmp_path, name, **changes):
    agent, strategy = RUNS[name]
    return TrainConfig(
        task=TaskConfig("ant", train_variants=("default",), max_env_steps=60), agent=agent, strategy=strategy,
        evaluator=EvaluatorConfig("serial", batch_size=4), generations=3, runs_dir=str(tmp_path), run_name=name,
        **changes,
    )


def stored(path):
    with RunStore.open(path) as store:
        return store.history(), store.load_checkpoint(), store.shared_rules()


@pytest.mark.parametrize("name", sorted(RUNS))
def test_train_resume_bit_for_bit_then_evaluate(tmp_path, name):
    path = train(config(tmp_path / "a", name), progress=False, stop_after=2)
    assert train(config(tmp_path / "a", name), resume=path, progress=False) == path
    straight = train(config(tmp_path / "b", name), progress=False)
    (h, ckpt, shared), (h2, ckpt2, shared2) = stored(path), stored(straight)
    assert h["fitness_raw"].shape == (3, RUNS[name][1].popsize) and np.all(np.isfinite(h["fitness_raw"]))
    np.testing.assert_array_equal(h["fitness_raw"], h2["fitness_raw"])
    np.testing.assert_array_equal(ckpt.mean, ckpt2.mean)
    if RUNS[name][0].kind == "hebbian":
        # the run file's rule table rebuilds the stored mean: M rules, every synapse's rule index
        m = {"gmm": N_ANT // 128, "random": 7, "merge": N_ANT // 128}[name]
        assert shared["rules"].shape == (m, 5 if name != "random" else 2)
        assignment = np.concatenate([a.ravel() for a in shared["assignment"]])
        assert assignment.size == N_ANT and assignment.max() < m
        np.testing.assert_array_equal(expand(shared["rules"], assignment), ckpt.mean)
        expected_counts = [123, 96, 96] if name == "merge" else [m] * 3
        assert shared["n_rules"].tolist() == expected_counts == shared2["n_rules"].tolist()
    else:
        assert shared is None
    # evaluate rebuilds the agent from the file alone
    config_back, params = load_run(path)
    assert config_back == config(tmp_path / "a", name)
    (result,) = assess(config_back, params, ["long_front"], episodes=2, max_env_steps=60)
    assert result.fitness.shape == (2,) and np.all(np.isfinite(result.fitness))


def test_cli_agent_and_shared_rule_flags(tmp_path, capsys):
    runs = tmp_path / "runs"
    common = ["--popsize", "4", "--generations", "1", "--max-env-steps", "50", "--train-variants", "default",
              "--evaluator", "serial", "--runs-dir", str(runs), "--no-progress"]
    assert cli_main(["train", "--agent", "gru", *common]) == 0
    (path,) = runs.glob("*gru*.h5")
    assert cli_main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "gru agent, 69,376 parameters" in out
    assert "hebbian ABCD_lr 61,440, static 12,288, lstm 89,600, gru 69,376" in out
    assert cli_main(["train", "--rho", "64", "--assign", "random", "--optimizer", "adam", *common]) == 0
    (path,) = runs.glob("*random-rho64*.h5")
    config_back, _ = load_run(path)
    assert (config_back.strategy.rho, config_back.strategy.assign, config_back.strategy.optimizer) == (64, "random", "adam")
    assert cli_main(["inspect", str(path)]) == 0
    assert "shared rules: 192 rules of 5 coefficients for 12,288 synapses (rho 64" in capsys.readouterr().out
    assert cli_main(["evaluate", str(path), "--morphology", "default", "--episodes", "1", "--eval-steps", "50",
                     "--eval-workers", "1"]) == 0
    assert "Hebbian ABCD_lr, shared rules random-rho64 (1 episode)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--shared-rules", "20000"], "shared_rules=20,000 is more rules than the network's 12,288 synapses"),
        (["--rho", "100"], "rho=100 must divide the network's 12,288 synapses (M = N / rho rules); divisors: 8, 16"),
        (["--rho", "32", "--shared-rules", "10"], "give --shared-rules M or --rho R, not both"),
        (["--agent", "lstm", "--rho", "32"], "shared rules (gmm-rho32) need an agent with a plasticity rule, not a lstm agent"),
        (["--rho", "32", "--coevolve"], "search the rule coefficients alone; this ant run also evolves weights (12,288 values)"),
        (["--rho", "32", "--strategy", "cma"], "shared rules are searched by their own evolution strategy"),
        (["--assign", "merge"], "--assign, --merge-every and --merge-fraction need --shared-rules M or --rho R"),
        (["--rho", "32", "--assign", "merge", "--merge-fraction", "1"], "merge_fraction (the share of rules a merge removes) must be below 1"),
        (["--agent", "lstm", "--rule", "AD"], "a lstm agent has no plasticity rule: drop --rule/--coevolve"),
        (["--task", "car", "--rho", "64"], "this car run also evolves encoder (1,362 values)"),
    ],
)
def test_bad_settings_fail_in_one_line_before_a_file_is_written(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as info:
        cli_main(["train", *flags, "--runs-dir", str(tmp_path / "runs"), "--no-progress"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_a_model_of_an_earlier_mean_leaves_the_last_rule_table_out(tmp_path):
    """The run file's /shared_rules expand to its final mean; a model chosen at an earlier stored
    mean (another rule count after Evolve & Merge) holds no table that would contradict its /mean."""
    from spikehebb.models import Selection, candidate_means, export

    path = train(config(tmp_path, "merge", snapshot_every=1), progress=False)
    generations, means = candidate_means(path)
    assert generations.tolist() == [1, 2, 3]
    for chosen, kept in ((0, False), (2, True)):
        scores = np.where(np.arange(3) == chosen, 1.0, 0.0)
        model = export(path, tmp_path / f"model_{chosen}.h5", Selection(generations, scores, 1, ("default",)))
        config_back, mean = load_run(model)
        np.testing.assert_array_equal(mean, means[chosen])
        with RunStore.open(model) as store:
            shared = store.shared_rules()
        assert (shared is not None) == kept
        if kept:
            assignment = np.concatenate([a.ravel() for a in shared["assignment"]])
            np.testing.assert_array_equal(expand(shared["rules"], assignment), mean)
    assert cli_main(["inspect", str(tmp_path / "model_0.h5")]) == 0
