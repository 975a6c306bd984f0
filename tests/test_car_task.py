"""The car task: registry entry, episode rules, per-member encoder parameters, a tiny training run
end to end (train -> evaluate on two variations), CLI settings, bad input."""

import argparse

import numpy as np
import pytest

from spikehebb.cli import CAR_PAPER, CAR_SHORT, add_train_arguments, config_from_args
from spikehebb.cli import main as cli_main
from spikehebb.agents import AgentConfig, GenomePart
from spikehebb.config import StrategyConfig, TaskConfig, WorkerSpec
from spikehebb.genome import GenomeMap
from spikehebb.worker import Worker
from spikehebb.store import RunStore
from spikehebb.tasks import EpisodeState, get_task
from spikehebb.train import TrainConfig, train

from spikehebb.config import EvaluatorConfig

TINY = dict(task=TaskConfig("car", None, 30), strategy=StrategyConfig(popsize=4), generations=2,
            evaluator=EvaluatorConfig("serial", batch_size=4))


def test_registry_entry():
    car = get_task("car")
    assert car.variants == ("default", "friction_half", "friction_double", "push_left", "push_right")
    from spikehebb.envs.car import VARIATIONS

    assert car.variants == tuple(VARIATIONS)  # the task lists the env's presets without importing it
    assert car.sizes == (648, 128, 64, 3) and car.activation == ("tanh", "tanh", "linear")
    assert car.constraints == ("max_abs",) and car.episode.burn_in_steps == 0
    assert car.genome_parts() == (GenomePart("encoder", ((6, 3, 3, 3), (8, 6, 5, 5))),)
    genome = WorkerSpec(TaskConfig("car")).genome()
    assert genome.part_sizes() == {"encoder": 162 + 1200, "coefficients": 456_640}
    static = WorkerSpec(TaskConfig("car"), AgentConfig("static", rule=None)).genome()
    assert static.part_sizes() == {"encoder": 1362, "weights": 648 * 128 + 128 * 64 + 64 * 3}
    # The ant has no encoder parameters: its genome is the coefficients alone.
    assert WorkerSpec(TaskConfig("ant")).genome() == GenomeMap(
        (GenomePart("coefficients", ((28, 128, 5), (128, 64, 5), (64, 8, 5))),))


def test_episode_ends_after_more_than_20_negative_rewards_from_the_first_step():
    rules = get_task("car").episode
    state = EpisodeState(rules, [True, True])
    for t in range(21):  # steps 0..20: 21 negative rewards, no grace
        assert state.alive[0]
        state.record(0, t, -0.1, False)
    assert not state.alive[0] and state.steps[0] == 21
    state.record(1, 0, -100.0, True)  # left the playfield on the first step
    assert not state.alive[1]
    fresh = EpisodeState(rules, [True])
    for t in range(30):  # a new tile resets the count
        fresh.record(0, t, 3.9 if t % 20 == 19 else -0.1, False)
    assert fresh.alive[0]


def test_worker_hands_each_member_its_encoder_parameters():
    spec = WorkerSpec(TaskConfig("car", None, 2), AgentConfig(backend="numpy"), batch_size=3)
    worker = Worker(spec)
    seen = []
    original = worker.rollout.encoder.set_params
    worker.rollout.encoder.set_params = lambda p, m=None: (seen.append([a.copy() for a in p]), original(p, m))
    try:
        params = np.random.default_rng(0).normal(size=(2, worker.genome.n_params))
        fitness, steps = worker.lifetimes(params, "default", [(0, 0, 0), (0, 1, 0)])
    finally:
        worker.close()
    assert fitness.shape == (2,) and steps == 4
    parts = worker.genome.split(params)["encoder"]
    [given] = seen
    assert len(given) == len(parts) > 0
    for a, b in zip(given, parts):
        assert a.shape == (3,) + b.shape[1:]  # padded to the batch
        np.testing.assert_array_equal(a[:2], b)
        np.testing.assert_array_equal(a[2], 0)


def test_rollout_needs_the_encoder_parameters():
    worker = Worker(WorkerSpec(TaskConfig("car"), AgentConfig(backend="numpy"), batch_size=1))
    try:
        coefficients = [np.zeros((1,) + s) for s in worker.genome.shapes("coefficients")]
        weights = [np.zeros((1, a, b)) for a, b in zip((648, 128, 64), (128, 64, 3))]
        with pytest.raises(ValueError, match="encoder needs its parameters"):
            worker.rollout.run("default", lambda i: {"coefficients": coefficients, "weights": weights}, [0])
    finally:
        worker.close()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("car")
    config = TrainConfig(**TINY, runs_dir=str(tmp), run_name="car")
    return config, train(config, progress=False)


def test_tiny_training_run_then_evaluate_on_two_variations(tiny_run, capsys):
    config, path = tiny_run
    with RunStore.open(path) as store:
        h = store.history()
        assert store.layout.names == ("encoder", "coefficients")
        assert store.n_params == 1362 + 456_640
    assert h["fitness_raw"].shape == (2, 4) and np.all(np.isfinite(h["fitness_raw"]))
    # -0.1 per frame, +1000/N per tile: at most 30 frames of pure penalty, at least -3.
    assert np.all(h["fitness_raw"] >= -3.0 - 1e-9)
    assert np.all(h["env_steps"] <= 4 * 30) and np.all(h["env_steps"] >= 4 * 21)

    cli_main(["evaluate", str(path), "--variant", "default", "push_left", "--episodes", "2",
              "--eval-steps", "30", "--eval-workers", "1"])
    out = capsys.readouterr().out
    assert "default" in out and "push_left" in out and "Hebbian ABCD_lr (2 episodes)" in out


def test_unknown_variation_is_a_clear_error(tiny_run, capsys):
    _, path = tiny_run
    with pytest.raises(SystemExit) as exc:
        cli_main(["evaluate", str(path), "--variant", "icy", "--episodes", "1", "--eval-steps", "5"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown car variant(s) ['icy']" in err and "friction_half" in err
    with pytest.raises(ValueError, match=r"unknown car variant\(s\) \['icy'\]; valid: default, friction_half"):
        TaskConfig("car", train_variants=("icy",))


def test_cli_uses_the_car_settings():
    parser = argparse.ArgumentParser()
    add_train_arguments(parser, task="car")
    short = config_from_args(parser.parse_args([]))
    assert (short.task.name, short.strategy.popsize, short.generations, short.task.max_env_steps) == (
        "car", CAR_SHORT["popsize"], CAR_SHORT["generations"], CAR_SHORT["max_env_steps"])
    paper = config_from_args(parser.parse_args(["--paper", "--generations", "7"]))
    assert (paper.strategy.popsize, paper.generations, paper.task.max_env_steps, paper.task.train_variants) == (
        200, 7, 1000, CAR_PAPER["train_variants"])


KINDS = (("hebbian", "ABCD_lr"), ("static", None), ("lstm", None), ("gru", None))


def genome_lengths(task):
    """Each kind's genome length on ``task``, from the genome map a run of it searches."""
    return {kind: WorkerSpec(TaskConfig(task), AgentConfig(kind, rule=rule)).genome().n_params for kind, rule in KINDS}


def test_inspect_compares_the_whole_genome_of_every_agent_kind(tmp_path, capsys):
    """Every car agent also evolves the encoder's 1,362 convolution weights: the comparison line
    of ``spikehebb inspect`` counts them for each kind, as the genome maps do (Palm et al.'s LSTM
    car has 408,082 parameters); the ant's task adds none."""
    car, ant = genome_lengths("car"), genome_lengths("ant")
    assert car == {"hebbian": 458_002, "static": 92_690, "lstm": 408_082, "gru": 308_498}
    assert ant == {"hebbian": 61_440, "static": 12_288, "lstm": 89_600, "gru": 69_376}
    also = " (each including the task's encoder, 1,362 parameters)"
    for task, kind, counts, note in (("car", "lstm", car, also), ("car", "hebbian", car, also), ("ant", "gru", ant, "")):
        rule = "ABCD_lr" if kind == "hebbian" else None
        config = TrainConfig(task=TaskConfig(task), agent=AgentConfig(kind, rule=rule))
        path = tmp_path / f"{task}_{kind}.h5"
        RunStore.create(path, config, sizes=get_task(task).sizes, rule=rule, popsize=4,
                        layout=WorkerSpec(config.task, config.agent).genome(), fsync=False).close()
        assert cli_main(["inspect", str(path)]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert f"{counts[kind]:,} parameters, popsize 4" in lines[1]  # the run's own genome
        assert lines[2] == (f"parameters of each agent on this network{note}: hebbian ABCD_lr {counts['hebbian']:,}, "
                            f"static {counts['static']:,}, lstm {counts['lstm']:,}, gru {counts['gru']:,}")
    # a config this version cannot read: the encoder is taken from the stored genome map
    path = tmp_path / "unreadable.h5"
    RunStore.create(path, {"task": {"name": "car"}, "no_such_setting": 1}, sizes=get_task("car").sizes, rule=None,
                    popsize=4, layout=WorkerSpec(TaskConfig("car"), AgentConfig("static", rule=None)).genome(),
                    fsync=False).close()
    assert RunStore.open(path).summary().splitlines()[2] == (
        f"parameters of each agent on this network{also}: hebbian ABCD_lr 458,002, static 92,690, lstm 408,082, "
        "gru 308,498")
