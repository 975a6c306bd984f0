"""Palm et al.'s leave-one-out protocol and the two study scripts, at a tiny budget."""

import json
import signal
import sys
from pathlib import Path

import pytest

from spikehebb.palm import PALM_TABLE1, PALM_VARIANTS, leave_one_out, reference
from spikehebb.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]


def test_the_five_variants_exist_and_leave_one_out_keeps_four():
    for task, variants in PALM_VARIANTS.items():
        assert len(variants) == 5 and get_task(task).check_variants(variants) == variants
        for holdout in variants:
            train = leave_one_out(task, holdout)
            assert len(train) == 4 and holdout not in train and set(train) | {holdout} == set(variants)
    assert leave_one_out("ant", "long_front") == ("default", "damage_left", "palm_damage_right", "long_back")
    assert reference("ant", "long_front", "lstm") == dict(zip(PALM_VARIANTS["ant"], (1097, 1374, 1240, 806, 314)))
    assert reference("ant", "long_back", "lstm") is None  # their numbers are for long_front held out
    assert set(PALM_TABLE1["ant"]) == {"static", "lstm", "hebbian"}
    with pytest.raises(ValueError, match="unknown holdout 'long_middle' for the ant; Palm et al.'s five are default, "):
        leave_one_out("ant", "long_middle")
    with pytest.raises(ValueError, match="unknown holdout 'damage_right' for the ant"):
        leave_one_out("ant", "damage_right")  # Najarro & Risi's body, not one of Palm's five


TINY = ["--popsize", "2", "--generations", "1", "--max-env-steps", "45", "--episodes", "1", "--eval-steps", "45",
        "--eval-workers", "1", "--evaluator", "serial", "--no-progress"]


def test_run_palm_trains_on_four_tests_on_five_and_resumes(tmp_path, capsys, experiment_script, sigusr1_after):
    run_palm = experiment_script("run_palm")
    study = tmp_path / "palm"
    run_palm.main([*TINY, "--agents", "hebbian", "gru", "--study-dir", str(study)])
    out = capsys.readouterr().out
    assert "trained on default, damage_left, palm_damage_right, long_back; * = held out" in out
    assert "long_front*" in out and "(1102)" in out  # Palm's Hebbian damage L beside ours
    gru_row = next(line for line in out.splitlines() if line.startswith("gru "))
    assert "(" not in gru_row  # Palm et al. ran no GRU
    (cache,) = study.glob("*.json")
    stored = json.loads(cache.read_text())
    assert set(stored) == {"hebbian ABCD_lr", "gru"}
    assert all(set(e["fitness"]) == set(PALM_VARIANTS["ant"]) for e in stored.values())
    from spikehebb.assess import load_run

    config, _ = load_run(stored["gru"]["run"])
    assert config.task.train_variants == ("default", "damage_left", "palm_damage_right", "long_back")
    # run again: nothing is trained or tested anew, the same table comes back; SIGUSR1 while the
    # table is printed waits for it (the study is done) and the handler from before is back after
    mtime = cache.stat().st_mtime_ns
    if hasattr(signal, "SIGUSR1"):
        handler = signal.getsignal(signal.SIGUSR1)
        sigusr1_after(run_palm, "format_study", 1)
    run_palm.main([*TINY, "--agents", "hebbian", "gru", "--study-dir", str(study)])
    assert capsys.readouterr().out == out and cache.stat().st_mtime_ns == mtime
    if hasattr(signal, "SIGUSR1"):
        assert signal.getsignal(signal.SIGUSR1) == handler


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--holdout", "long_middle"], "unknown holdout 'long_middle' for the ant"),
        (["--train-variants", "default"], "--train-variants does not apply"),
        (["--no-early-end"], "--no-early-end does not apply"),
        (["--run-name", "mine"], "--run-name does not apply: the study picks the variants, the agents (--agents) and the run files' names"),
        (["--init", "zeros"], "--init does not apply: the Hebbian arm starts N(0, 1)"),
        (["--rho", "100"], "rho=100 must divide the network's 12,288 synapses"),
        # test flags: checked before the first arm trains (they failed after it, or were ignored)
        (["--episodes", "0"], "--episodes must be at least 1, got 0"),
        (["--eval-workers", "-1"], "--eval-workers must be at least 1 (leave it out for one per core), got -1"),
        (["--eval-workers", "0"], "--eval-workers must be at least 1"),
        (["--eval-steps", "0"], "--eval-steps counts env steps with the 40 burn-in steps: give more than 40, got 0"),
        (["--which", "best"], "--which does not apply: the study tests each run's final search mean"),
        (["--trace-episodes", "2"], "--trace-episodes does not apply: the study records no traces"),
        (["--traces"], "--traces does not apply: the study records no traces"),
    ],
)
def test_run_palm_bad_input_fails_before_a_file(tmp_path, capsys, flags, message, experiment_script):
    with pytest.raises(SystemExit) as info:
        experiment_script("run_palm").main([*flags, "--study-dir", str(tmp_path / "palm")])
    assert info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "palm").exists()


@pytest.mark.slow
def test_a_study_stopped_by_sigterm_says_in_one_line_to_run_it_again(tmp_path, first_generation, stderr_lines):
    import subprocess

    from spikehebb.store import RunStore

    tiny = [*TINY[:2], "--generations", "50", *TINY[4:]]
    study = tmp_path / "palm"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "experiments" / "run_palm.py"), *tiny, "--agents", "static", "--study-dir", str(study)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    run_file = first_generation(study)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    lines = stderr_lines(err)
    assert proc.returncode == 143, err
    assert lines == ["run_palm.py: stopped by SIGTERM; the run files keep every finished generation: "
                     "run the same command again to continue"], err
    assert RunStore.open(run_file).generations_completed >= 1


@pytest.mark.parametrize("stop, code, what", [
    (KeyboardInterrupt(), 130, "interrupted"),  # Ctrl-C outside training (a test lifetime)
    ("ctrl-c", 130, "interrupted"),
    ("sigterm", 143, "stopped by SIGTERM"),
    pytest.param("sigusr1", 138, "stopped by SIGUSR1 after the generation in flight",
                 marks=pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="no SIGUSR1 on this platform")),
    pytest.param("sigusr1 in tests", 138, "stopped by SIGUSR1 after arm 'gmm' and its tests",
                 marks=pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="no SIGUSR1 on this platform")),
])
def test_exit_interrupted_names_the_signal_and_ends_with_the_shells_code(tmp_path, capsys, stop, code, what):
    from spikehebb.cli import exit_interrupted
    from spikehebb.train import TrainingInterrupted

    if stop == "sigusr1 in tests":
        from spikehebb.stopping import StudyInterrupted

        stop = StudyInterrupted("arm 'gmm' and its tests")
    elif isinstance(stop, str):
        signum = {"ctrl-c": signal.SIGINT, "sigterm": signal.SIGTERM, "sigusr1": getattr(signal, "SIGUSR1", None)}[stop]
        stop = TrainingInterrupted(tmp_path / "run.h5", 3, signum=signum)
    with pytest.raises(SystemExit) as info:
        exit_interrupted("study.py", stop)
    assert info.value.code == code
    assert capsys.readouterr().err == (f"study.py: {what}; the run files keep every finished generation: "
                                       "run the same command again to continue\n")


def test_bottleneck_study_runs_at_a_tiny_budget_and_resumes(tmp_path, capsys, experiment_script, sigusr1_after):
    bottleneck = experiment_script("bottleneck_ant")
    argv = ["--popsize", "2", "--generations", "1", "--max-env-steps", "45", "--episodes", "1", "--eval-steps", "45",
            "--arms", "per-synapse", "gmm", "random", "lstm", "--study-dir", str(tmp_path / "b"), "--no-progress"]
    bottleneck.main(argv)
    out = capsys.readouterr().out
    summary = out[out.index("arm "):].splitlines()
    assert [line.split()[0] for line in summary[1:5]] == ["per-synapse", "gmm", "random", "lstm"]
    assert summary[2].split()[1] == "480" and summary[4].split()[1] == "89,600"  # 96 rules x 5; the LSTM
    assert summary[1].split()[-1] == "1.00"
    if hasattr(signal, "SIGUSR1"):  # SIGUSR1 while the table is printed: the study is done, it waits
        sigusr1_after(bottleneck, "format_study", 1)
    bottleneck.main(argv)
    assert capsys.readouterr().out == out
    assert bottleneck.merge_every(100, 0.5, 128) == 12  # 7 merges 12,288 -> 96, the last after generation 83
    with pytest.raises(SystemExit, match="rho=100 must divide"):
        bottleneck.main([*argv[:-3], "--rho", "100", "--study-dir", str(tmp_path / "c")])
    assert not (tmp_path / "c").exists()
    # a test length without a network step is refused before any training, in the flag's words
    with pytest.raises(SystemExit, match="--eval-steps counts env steps with the 40 burn-in steps: give more than 40, got 40"):
        bottleneck.main([*argv[:9], "40", *argv[10:-3], "--study-dir", str(tmp_path / "d")])
    assert not (tmp_path / "d").exists()


def test_baseline_init_zeros_starts_the_static_and_recurrent_arms_at_zero_under_their_own_names(experiment_script):
    """--baseline-init zeros: the static, LSTM and GRU arms start at 0 (evostrat's own start), under
    their own names (their own run files and cache entries); the Hebbian arm keeps N(0, 1)."""
    import argparse

    from spikehebb.config import TrainConfig

    run_palm = experiment_script("run_palm")
    base = TrainConfig()
    for init, names in [("normal", ["hebbian ABCD_lr", "static", "lstm"]),
                        ("zeros", ["hebbian ABCD_lr", "static init-zeros", "lstm init-zeros"])]:
        args = argparse.Namespace(agents=["hebbian", "static", "lstm"], baseline_init=init)
        study_arms = run_palm.arms(args, base, "long_front")
        assert [a.name for a in study_arms] == names
        assert [a.config.strategy.init for a in study_arms] == ["normal", init, init]
    assert study_arms[1].config.run_name == "palm_ant_long_front_static_init-zeros_s0"


def test_baselines_take_none_of_the_hebbian_arms_shared_rule_settings(experiment_script):
    """--rho/--assign merge/--noise/--merge-every set the Hebbian arm's shared rules; the static,
    LSTM and GRU arms took the merge and noise settings along, so a second study with other
    shared-rule flags found their (same-named) run files 'started with other settings'. A
    non-default optimizer does carry over, and is in the arm's name."""
    import argparse
    import dataclasses

    from spikehebb.config import StrategyConfig, TrainConfig

    run_palm = experiment_script("run_palm")
    args = argparse.Namespace(agents=["hebbian", "static", "lstm"], baseline_init="normal")
    plain = run_palm.arms(args, TrainConfig(), "long_front")
    merged = TrainConfig(strategy=StrategyConfig(rho=128, assign="merge", merge_every=10, merge_fraction=0.3, noise="synapse"))
    shared = run_palm.arms(args, merged, "long_front")
    assert shared[0].config.strategy == merged.strategy
    for a, b in zip(plain[1:], shared[1:]):
        assert (a.name, a.config.run_name, a.config.strategy) == (b.name, b.config.run_name, b.config.strategy)
    adam = run_palm.arms(args, TrainConfig(strategy=StrategyConfig(optimizer="adam")), "long_front")
    assert [a.name for a in adam] == ["hebbian ABCD_lr", "static adam", "lstm adam"]
    assert adam[1].config.strategy == dataclasses.replace(plain[1].config.strategy, optimizer="adam")
    assert adam[1].config.run_name == "palm_ant_long_front_static_adam_s0"
    decayed = run_palm.arms(args, TrainConfig(strategy=StrategyConfig(lr_decay=0.99)), "long_front")
    assert [a.name for a in decayed] == ["hebbian ABCD_lr", "static lr-decay-0.99", "lstm lr-decay-0.99"]


def test_paper_is_palms_budget(experiment_script, monkeypatch, tmp_path):
    """--paper trains the ant 500 generations, as every Palm et al. ant run did (Najarro's 300
    otherwise); --generations still wins."""
    run_palm = experiment_script("run_palm")
    seen = []

    def stub(arms, *rest):
        seen.append([(a.config.generations, a.config.strategy.popsize, a.config.task.train_variants) for a in arms])
        raise KeyboardInterrupt

    monkeypatch.setattr(run_palm, "run_study", stub)
    ant = ("default", "damage_left", "palm_damage_right", "long_back")
    car = ("default", "friction_half", "friction_double", "push_left")  # Palm's car held out the push right
    for flags, expected in ((["--paper"], (500, 500, ant)), (["--paper", "--generations", "40"], (40, 500, ant)),
                            (["--task", "car", "--paper"], (300, 200, car))):
        with pytest.raises(SystemExit):
            run_palm.main([*flags, "--agents", "hebbian", "--study-dir", str(tmp_path)])
        assert seen[-1] == [expected], flags


def test_the_plastic_arm_keeps_the_flags_agent_and_palms_numbers_stand_only_beside_their_setting(experiment_script):
    import argparse

    from spikehebb.agents import AgentConfig
    from spikehebb.config import TaskConfig, TrainConfig

    run_palm = experiment_script("run_palm")
    args = argparse.Namespace(agents=["hebbian", "static"], baseline_init="normal")
    lif = TrainConfig(agent=AgentConfig(kind="lif", options={"substeps": 8}))
    (spiking, static) = run_palm.arms(args, lif, "long_front")
    assert spiking.name == "lif ABCD_lr" and spiking.config.agent == lif.agent  # not a rate network
    assert set(run_palm.palm_references([spiking, static], "ant", "long_front")) == {"static"}
    for changed in (TrainConfig(agent=AgentConfig(dale=0.8)), TrainConfig(agent=AgentConfig(modulated=True)),
                    TrainConfig(task=TaskConfig("ant", positive=True)), TrainConfig(task=TaskConfig("ant", fitness_floor=0.0))):
        arm = run_palm.arms(argparse.Namespace(agents=["hebbian"], baseline_init="normal"), changed, "long_front")
        assert run_palm.palm_references(arm, "ant", "long_front") == {}
    plain = run_palm.arms(argparse.Namespace(agents=["hebbian"], baseline_init="normal"), TrainConfig(), "long_front")
    assert run_palm.palm_references(plain, "ant", "long_front") == {"hebbian ABCD_lr": reference("ant", "long_front", "hebbian")}
