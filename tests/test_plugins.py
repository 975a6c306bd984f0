"""The plug-in seams: rules declared once as term tables, a new rule through both backends, the
genome map, nested configs (and the flat ones of older run files), the agent registry, slots
armed one at a time, and a run file written before the refactor."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from spikehebb.agents import AGENTS, AgentConfig, GenomePart, genome_parts, make_agent
from spikehebb.cli import main as cli_main
from spikehebb.config import EvaluatorConfig, StrategyConfig, TaskConfig, TrainConfig
from spikehebb.genome import GenomeMap
from spikehebb.network import make_network
from spikehebb.rules import (
    DRIFT,
    HEBBIAN,
    RULES,
    RuleSpec,
    Term,
    brian_update,
    fold_eta,
    get_rule,
    numpy_delta,
    reference_update,
)
from spikehebb.store import RunStore
from spikehebb.tasks import get_task
from spikehebb.train import train

FIXTURES = Path(__file__).with_name("fixtures")

#: A rule that is not in the registry: the Hebbian term gated by the member's modulator, plus drift.
GATED = RuleSpec("AMD_lr", (HEBBIAN, Term("M", ("mod", "pre", "post"), "modulated correlation m*o_i*o_j"), DRIFT),
                 learning_rate=True)


def test_rules_are_explicit_table_entries_not_parsed_names():
    assert RULES["ABCD_lr"].fields == ("eta", "A", "B", "C", "D")
    assert [t.factors for t in RULES["ABCD_lr"].terms] == [("pre", "post"), ("pre",), ("post",), ()]
    assert RULES["AD"].fields == ("A", "D") and not RULES["AD"].has_eta
    with pytest.raises(ValueError, match="unknown rule 'ABCD_lr_mod'"):
        get_rule("ABCD_lr_mod")  # a name that reads like a rule is not one: nothing is parsed
    assert brian_update(RULES["ABCD_lr"]) == "w += A * r_pre * r_post + B * r_pre + C * r_post + D"
    assert brian_update(RULES["ABCD_lr"], fold_eta=False) == "w += eta * (A * r_pre * r_post + B * r_pre + C * r_post + D)"
    assert brian_update(GATED) == "w += A * r_pre * r_post + M * m_post * r_pre * r_post + D"
    assert GATED.reads == {"pre", "post", "mod"}
    with pytest.raises(ValueError, match="unknown factors \\['trace'\\]"):
        Term("X", ("trace",), "?")
    with pytest.raises(ValueError, match="distinct coefficients other than eta"):
        RuleSpec("AA", (HEBBIAN, HEBBIAN))


def test_generated_numpy_update_equals_the_reference_on_random_inputs():
    rng = np.random.default_rng(0)
    for rule in [*RULES.values(), GATED]:
        coefficients = rng.normal(size=(3, 4, 5, rule.k))
        w, pre, post, m = rng.normal(size=(3, 4, 5)), rng.normal(size=(3, 4)), rng.normal(size=(3, 5)), rng.normal(size=3)
        got = w + numpy_delta(fold_eta(coefficients, rule), pre, post, m, rule)
        np.testing.assert_allclose(got, reference_update(w, pre, post, coefficients, rule, m), rtol=1e-12, atol=1e-12)


def test_hand_computed_modulated_step():
    # one synapse: o_i = 2, o_j = -1, m = 3; eta 0.5, A 1, M 2, D 0.25:
    # dw = 0.5 * (1*2*-1 + 2*3*2*-1 + 0.25) = 0.5 * (-2 - 12 + 0.25) = -6.875
    c = np.array([[[[0.5, 1.0, 2.0, 0.25]]]])
    new = reference_update(np.zeros((1, 1, 1)), np.array([[2.0]]), np.array([[-1.0]]), c, GATED, np.array([3.0]))
    assert new[0, 0, 0] == -6.875


@pytest.mark.parametrize("backend", ["numpy", "brian2"])
def test_a_new_modulated_rule_runs_in_both_backends_with_the_modulator_of_its_step(backend):
    """A rule that reads the modulator, added without touching the backends: each step's update
    uses that step's modulator (against the reference loop)."""
    rng = np.random.default_rng(1)
    sizes, P = (4, 5, 3), 2
    net = make_network(sizes, GATED, P, backend=backend, dtype="float64")
    assert net.modulated
    coefficients = [rng.normal(0, 0.1, (P, a, b, GATED.k)) for a, b in zip(sizes[:-1], sizes[1:])]
    weights = [rng.uniform(-0.1, 0.1, (P, a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    net.reset(coefficients, weights)
    w = [x.copy() for x in weights]
    for t in range(6):
        x, m = rng.normal(size=(P, sizes[0])), rng.normal(size=P)
        out = net.step(x, m)
        rates = [x]
        for layer in w:
            rates.append(np.tanh(np.einsum("pi,pij->pj", rates[-1], layer)))
        w = [reference_update(w[l], rates[l], rates[l + 1], coefficients[l], GATED, m) for l in range(len(w))]
        np.testing.assert_allclose(out, rates[-1], rtol=1e-10, atol=1e-12)
    for got, want in zip(net.weights, w):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match=r"modulator must be \(P,\) = \(2,\), got \(3,\)"):
        net.step(np.zeros((P, sizes[0])), np.zeros(3))


@pytest.mark.parametrize("backend", ["numpy", "brian2"])
def test_arming_one_slot_mid_run_leaves_the_others_bit_identical(backend):
    rng = np.random.default_rng(2)
    sizes, P = (6, 5, 4), 3
    net = make_network(sizes, "ABCD_lr", P, backend=backend, dtype="float32")
    c = [rng.normal(0, 0.05, (P, a, b, 5)) for a, b in zip(sizes[:-1], sizes[1:])]
    w = [rng.uniform(-0.1, 0.1, (P, a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    xs = rng.normal(size=(8, P, sizes[0]))
    net.reset(c, w)
    plain = [net.step(x) for x in xs]
    net.reset(c, w)
    for t, x in enumerate(xs):
        if t == 4:  # slot 1 starts a new lifetime with its own arrays
            net.reset([a[1:2] for a in c], [a[1:2] for a in w], members=[1])
        out = net.step(x)
        np.testing.assert_array_equal(out[[0, 2]], plain[t][[0, 2]])
    fresh = make_network(sizes, "ABCD_lr", 1, backend=backend, dtype="float32")
    fresh.reset([a[1:2] for a in c], [a[1:2] for a in w])
    for x in xs[4:]:
        last = fresh.step(x[1:2])
    np.testing.assert_array_equal(out[1], last[0])
    with pytest.raises(ValueError, match="members must be distinct slot indices in 0..2, got \\[3\\]"):
        net.reset([a[:1] for a in c], [a[:1] for a in w], members=[3])


def test_genome_map_split_join_and_json_round_trip():
    genome = GenomeMap((GenomePart("encoder", ((2, 3),)), GenomePart("coefficients", ((3, 4, 2), (4, 1, 2)))))
    assert genome.n_params == 6 + 24 + 8 and genome.part_sizes() == {"encoder": 6, "coefficients": 32}
    flat = np.arange(2 * genome.n_params, dtype=float).reshape(2, -1)
    parts = genome.split(flat)
    assert [a.shape for a in parts["coefficients"]] == [(2, 3, 4, 2), (2, 4, 1, 2)]
    assert parts["coefficients"][0][1, 0, 0, 0] == genome.n_params + 6
    np.testing.assert_array_equal(genome.join(parts), flat)
    assert GenomeMap.from_json(genome.to_json()) == genome
    assert json.loads(genome.to_json()) == {"parts": [["encoder", [[2, 3]]], ["coefficients", [[3, 4, 2], [4, 1, 2]]]]}
    with pytest.raises(ValueError, match=r"parameters must be \(B, 38\) for parts \('encoder', 'coefficients'\), got \(2, 37\)"):
        genome.split(flat[:, 1:])
    with pytest.raises(ValueError, match="searched parts only"):
        GenomeMap((GenomePart("weights", ((2, 2),), searched=False),))


@pytest.mark.parametrize("layers, message", [
    # a transposed layer, of the right size, was reshaped in: (1, 8) silently scrambled
    ([np.zeros((1, 2, 3)), np.zeros((1, 1, 2))], r"part 'weights' layer 1 must have shape \(B, 3, 2\), got \(1, 2, 3\)"),
    # a missing layer gave (1, 6) with no word
    ([np.zeros((1, 3, 2))], r"part 'weights' must have 2 layers, got 1"),
    ([np.zeros((1, 3, 2))] * 3, r"part 'weights' must have 2 layers, got 3"),
    # unbatched layers failed with numpy's own message
    ([np.zeros((3, 2)), np.zeros((2, 1))], r"part 'weights' layer 1 must have shape \(B, 3, 2\), got \(3, 2\)"),
    ([np.zeros((1, 3, 2)), np.zeros((2, 2, 1))], r"part 'weights' layer 2 must have shape \(1, 2, 1\), got \(2, 2, 1\)"),
    ([np.zeros((1, 3, 2)), np.float64(0.0)], r"part 'weights' layer 2 must have shape \(1, 2, 1\), got \(\)"),
])
def test_genome_map_join_refuses_layers_of_the_wrong_shape_or_number(layers, message):
    genome = GenomeMap((GenomePart("weights", ((3, 2), (2, 1))),))
    with pytest.raises(ValueError, match=f"^{message}$"):
        genome.join({"weights": layers})
    assert genome.join({"weights": [np.ones((2, 3, 2)), np.ones((2, 2, 1))]}).shape == (2, genome.n_params)
    assert genome.join({"weights": [np.ones((0, 3, 2)), np.ones((0, 2, 1))]}).shape == (0, genome.n_params)


def test_agents_registry_and_their_genomes():
    assert set(AGENTS) >= {"hebbian", "static"}
    ant = get_task("ant")
    hebbian = genome_parts(AgentConfig(), ant)
    assert [(p.name, p.searched) for p in hebbian] == [("coefficients", True), ("weights", False)]
    assert GenomeMap.of(hebbian).n_params == 61_440
    coevolved = GenomeMap.of(genome_parts(AgentConfig(rule="A", evolve_initial_weights=True), ant))
    assert coevolved.names == ("coefficients", "weights") and coevolved.n_params == 2 * 12_288
    static = GenomeMap.of(genome_parts(AgentConfig("static", rule=None), ant))
    assert static.names == ("weights",) and static.n_params == 12_288
    car = GenomeMap.of(genome_parts(AgentConfig(), get_task("car")))
    assert car.names == ("encoder", "coefficients")
    agent = make_agent(AgentConfig(backend="numpy"), ant, 2)
    assert (agent.batch_size, agent.n_inputs, agent.n_outputs) == (2, 28, 8)
    with pytest.raises(ValueError, match="unknown agent kind 'lstn'"):
        AgentConfig("lstn")
    with pytest.raises(ValueError, match="a static agent has no plasticity rule, got rule='A'"):
        AgentConfig("static", rule="A")
    with pytest.raises(ValueError, match="evolve_initial_weights is for agents with a rule"):
        AgentConfig("static", rule=None, evolve_initial_weights=True)


def test_configs_nest_round_trip_and_read_the_flat_form():
    config = TrainConfig(TaskConfig("car", ("default",), 200), AgentConfig(rule="AD"), StrategyConfig("cma", 5),
                         EvaluatorConfig("serial"), generations=3, seed=2)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    flat = {"task": "car", "rule": "AD", "static": False, "coevolve": False, "strategy": "cma", "popsize": 5,
            "generations": 3, "seed": 2, "lr": 0.2, "sigma": 0.1, "l2_coeff": 0.01, "train_variants": ["default"],
            "max_env_steps": 200, "evaluator": "serial", "workers": None, "ray_address": None, "batch_size": None,
            "backend": "brian2", "dtype": "float32", "runs_dir": "runs", "run_name": None, "extra": {}}
    assert TrainConfig.from_dict(flat) == config
    assert TrainConfig.from_dict({**flat, "static": True}).agent == AgentConfig("static", rule=None)
    assert config.differences(config.replace(seed=4, strategy=StrategyConfig("cma", 7))) == [
        "seed: 2 -> 4", "strategy.popsize: 5 -> 7"]
    with pytest.raises(ValueError, match="unknown config fields \\['morphology'\\]"):
        TrainConfig.from_dict({**flat, "morphology": "x"})
    with pytest.raises(ValueError, match="unknown agent config fields \\['neuron'\\]"):
        TrainConfig.from_dict({**config.to_dict(), "agent": {"kind": "hebbian", "neuron": "lif"}})


def test_a_run_file_written_before_the_refactor_opens_resumes_and_evaluates_as_before(tmp_path, capsys):
    """tests/fixtures/run_pre_plugins.h5: 2 of 3 generations of a run written by the code before
    the plug-in refactor (commit 6f763b3, rule A, seed 5); the .json holds what that code gave
    when it resumed the run to 3 generations and tested the mean."""
    path = tmp_path / "run.h5"
    shutil.copy(FIXTURES / "run_pre_plugins.h5", path)
    expected = json.loads((FIXTURES / "run_pre_plugins.json").read_text())
    assert cli_main(["inspect", str(path)]) == 0
    assert "2 generations" in capsys.readouterr().out
    train(resume=path, progress=False)
    with RunStore.open(path) as store:
        h, checkpoint = store.history(), store.load_checkpoint()
    np.testing.assert_array_equal(h["fitness_raw"][2], expected["fitness_raw_gen2"])
    mean = np.ascontiguousarray(checkpoint.mean, dtype=np.float64)
    assert hashlib.sha256(mean.tobytes()).hexdigest() == expected["mean_sha256"]
    from spikehebb.assess import assess, load_run

    config, mean = load_run(path)
    assert config.agent == AgentConfig(rule="A") and config.task == TaskConfig("ant", ("default",), 60)
    results = assess(config, mean, ["default", "damage_left"], episodes=2, workers=1, max_env_steps=60)
    assert [r.variant for r in results] == ["default", "damage_left"] and len(expected["test"]) == 2
    for got, want in zip(results, expected["test"]):
        np.testing.assert_array_equal(got.fitness, want)
    assert cli_main(["plot", str(path), "-o", str(tmp_path / "curve.png")]) == 0
