"""Studies resume from their run files, and finished arms report from the cache alone."""

import dataclasses
import json

import numpy as np
import pytest

from spikehebb.config import EvaluatorConfig, StrategyConfig, TaskConfig, TrainConfig
from spikehebb.study import Arm, run_study

pytestmark = pytest.mark.slow


def _arm(tmp_path, name: str, generations: int = 2) -> Arm:
    config = TrainConfig(
        task=TaskConfig("ant", ("default",), 45), strategy=StrategyConfig(popsize=2),
        evaluator=EvaluatorConfig("serial", 1), generations=generations, seed=3,
        runs_dir=str(tmp_path / "runs"), run_name=name,
    )
    return Arm(name, config)


def test_a_finished_arm_reports_from_the_cache_without_its_run_file(tmp_path):
    cache = tmp_path / "cache.json"
    arms = [_arm(tmp_path, "a"), _arm(tmp_path, "b")]
    first = run_study(arms, ["default"], 2, cache, max_env_steps=45, progress=False)
    for r in first:
        assert r.generations == 2 and r.popsize == 2 and r.final_rules is None
        assert len(r.history["env_steps"]) == 2 and r.env_steps == int(r.history["env_steps"].sum())
        assert r.fitness["default"].shape == (2,)
    for arm in arms:
        arm.path.unlink()
    again = run_study(arms, ["default"], 2, cache, max_env_steps=45, progress=False)
    assert not any(arm.path.exists() for arm in arms)  # nothing trained again
    assert [r.name for r in first] == [r.name for r in again] == ["a", "b"]
    for a, b in zip(first, again):
        assert (a.env_steps, a.n_params, a.wall_s) == (b.env_steps, b.n_params, b.wall_s)
        np.testing.assert_array_equal(a.fitness["default"], b.fitness["default"])
        for k in a.history:
            np.testing.assert_array_equal(a.history[k], b.history[k])
    # a test the cache does not hold needs the run file, and says so
    with pytest.raises(ValueError, match="is missing and the cache .* has no test on \\['damage_left'\\]"):
        run_study(arms[:1], ["damage_left"], 2, cache, max_env_steps=45, progress=False)
    # an arm with more generations than the cache holds trains (from scratch: its file is gone)
    longer = _arm(tmp_path, "a", generations=3)
    (result,) = run_study([longer], ["default"], 2, cache, max_env_steps=45, progress=False)
    assert longer.path.exists() and result.generations == 3
    assert json.loads(cache.read_text())["a"]["key"]["generations"] == 3


def _counting_assess(monkeypatch) -> list:
    """Record every test of a run file (spikehebb.assess.assess, which run_arm calls)."""
    import spikehebb.assess

    calls, real = [], spikehebb.assess.assess

    def assess(config, params, variants, *args, **kwargs):
        calls.append((config.strategy.lr, tuple(variants)))
        return real(config, params, variants, *args, **kwargs)

    monkeypatch.setattr(spikehebb.assess, "assess", assess)
    return calls


def test_an_arm_whose_config_changed_under_its_run_name_is_trained_and_tested_anew(tmp_path, capsys, monkeypatch):
    cache = tmp_path / "cache.json"
    old = _arm(tmp_path, "a")
    run_study([old], ["default"], 2, cache, max_env_steps=45, progress=False)
    old.path.unlink()  # what a user does when resume refuses the changed settings
    capsys.readouterr()
    calls = _counting_assess(monkeypatch)
    new = Arm("a", old.config.replace(strategy=dataclasses.replace(old.config.strategy, lr=0.05)))
    (second,) = run_study([new], ["default"], 2, cache, max_env_steps=45, progress=False)
    err = capsys.readouterr().err
    assert new.path.exists() and calls == [(0.05, ("default",))]  # trained and tested, not read from the cache
    assert err.count("\n") == 1 and "arm 'a':" in err and "strategy.lr: 0.2 -> 0.05" in err and "trained" in err
    assert json.loads(cache.read_text())["a"]["record"]["config"]["strategy"]["lr"] == 0.05
    # the same config again, its run file gone: reported from the cache, nothing trained or tested
    new.path.unlink()
    mtime = cache.stat().st_mtime_ns
    (third,) = run_study([new], ["default"], 2, cache, max_env_steps=45, progress=False)
    assert not new.path.exists() and len(calls) == 1 and capsys.readouterr().err == ""
    np.testing.assert_array_equal(third.fitness["default"], second.fitness["default"])
    assert cache.stat().st_mtime_ns == mtime
    # evaluator settings and snapshots do not change the numbers: still the cache's
    moved = Arm("a", new.config.replace(evaluator=EvaluatorConfig("processes", 2), snapshot_every=1))
    run_study([moved], ["default"], 2, cache, max_env_steps=45, progress=False)
    assert not new.path.exists() and len(calls) == 1 and capsys.readouterr().err == ""


def test_a_cached_test_of_other_settings_is_not_reused_for_the_run_file_beside_it(tmp_path, capsys, monkeypatch):
    from spikehebb.study import train_arm

    cache = tmp_path / "cache.json"
    old = _arm(tmp_path, "a")
    run_study([old], ["default"], 2, cache, max_env_steps=45, progress=False)
    old.path.unlink()
    new = Arm("a", old.config.replace(strategy=dataclasses.replace(old.config.strategy, sigma=0.3)))
    train_arm(new, progress=False)  # the new config trained under the old name outside the study
    capsys.readouterr()
    calls = _counting_assess(monkeypatch)
    run_study([new], ["default"], 2, cache, max_env_steps=45, progress=False)
    assert calls == [(0.2, ("default",))]  # same generations, episodes and length: only the settings differ
    assert "strategy.sigma: 0.1 -> 0.3" in capsys.readouterr().err
    assert json.loads(cache.read_text())["a"]["record"]["config"]["strategy"]["sigma"] == 0.3


def test_a_record_written_before_configs_were_recorded_still_reports(tmp_path, capsys, monkeypatch):
    import spikehebb.study

    cache = tmp_path / "cache.json"
    arms = [_arm(tmp_path, "a"), _arm(tmp_path, "b")]
    first = run_study(arms, ["default"], 2, cache, max_env_steps=45, progress=False)
    data = json.loads(cache.read_text())
    for entry in data.values():
        entry["record"].pop("config", None)  # the form of the committed caches under models/training/
    cache.write_text(json.dumps(data))
    for arm in arms:
        arm.path.unlink()

    def refuse(*args, **kwargs):
        raise AssertionError("trained or tested again")

    monkeypatch.setattr(spikehebb.study, "train_arm", refuse)
    monkeypatch.setattr("spikehebb.assess.assess", refuse)
    capsys.readouterr()
    again = run_study(arms, ["default"], 2, cache, max_env_steps=45, progress=False)
    assert capsys.readouterr().err == "" and json.loads(cache.read_text()) == data  # left as it was
    assert [r.name for r in first] == [r.name for r in again] == ["a", "b"]
    for a, b in zip(first, again):
        assert (a.env_steps, a.n_params, a.popsize) == (b.env_steps, b.n_params, b.popsize)
        np.testing.assert_array_equal(a.fitness["default"], b.fitness["default"])
    # what such an entry does hold is checked: another population or agent is not given its results
    monkeypatch.undo()
    calls = _counting_assess(monkeypatch)
    bigger = Arm("a", arms[0].config.replace(strategy=dataclasses.replace(arms[0].config.strategy, popsize=4)))
    static = Arm("b", arms[1].config.replace(agent=dataclasses.replace(arms[1].config.agent, kind="static", rule=None)))
    (p4, st) = run_study([bigger, static], ["default"], 2, cache, max_env_steps=45, progress=False)
    err = capsys.readouterr().err
    assert "arm 'a':" in err and "strategy.popsize: 2 -> 4" in err and "searched parameters: 61,440 -> 12,288" in err
    assert p4.popsize == 4 and st.n_params == 12_288 and len(calls) == 2  # both trained and tested anew


@pytest.mark.parametrize("where", ["tests", "last generation"])
def test_sigusr1_outside_generations_stops_the_study_once_the_arm_in_flight_is_tested(tmp_path, monkeypatch, where,
                                                                                      sigusr1_after,
                                                                                      sigusr1_after_evaluation):
    """SIGUSR1 while the first arm is tested, or in its last generation (the run just ends): that
    arm is tested and cached, then the study stops; run again, it equals an uninterrupted study."""
    import signal

    import spikehebb.assess
    from spikehebb.stopping import StudyInterrupted

    cache = tmp_path / "cache.json"
    arms = [_arm(tmp_path, "a"), _arm(tmp_path, "b")]
    if where == "tests":
        sigusr1_after(spikehebb.assess, "assess", 1)
    else:
        sigusr1_after_evaluation(2)  # generation 2 of 2
    before = signal.getsignal(signal.SIGUSR1)
    with pytest.raises(StudyInterrupted) as info:
        run_study(arms, ["default"], 2, cache, max_env_steps=45, progress=False)
    assert info.value.what == "stopped by SIGUSR1 after arm 'a' and its tests" and info.value.exit_code == 138
    assert signal.getsignal(signal.SIGUSR1) == before
    assert list(json.loads(cache.read_text())) == ["a"] and not arms[1].path.exists()

    monkeypatch.undo()
    resumed = run_study(arms, ["default"], 2, cache, max_env_steps=45, progress=False)
    straight = run_study([_arm(tmp_path / "straight", n) for n in "ab"], ["default"], 2, tmp_path / "straight.json",
                         max_env_steps=45, progress=False)
    assert [r.name for r in resumed] == [r.name for r in straight] == ["a", "b"]
    for a, b in zip(resumed, straight):
        assert a.generations == b.generations == 2
        np.testing.assert_array_equal(a.fitness["default"], b.fitness["default"])
        np.testing.assert_array_equal(a.history["fitness_mean"], b.history["fitness_mean"])


def test_sigusr1_while_the_last_arm_is_tested_lets_the_study_end(tmp_path, sigusr1_after):
    import spikehebb.assess

    sigusr1_after(spikehebb.assess, "assess", 1)
    (result,) = run_study([_arm(tmp_path, "a")], ["default"], 2, tmp_path / "cache.json", max_env_steps=45,
                          progress=False)
    assert result.fitness["default"].shape == (2,)


def test_the_study_table_gives_a_shared_rule_arm_its_rule_tables_size():
    """The params column showed a shared-rule arm's per-synapse genome (61,440) where the agent is
    M x k rule coefficients (480 x 5 = 2,400)."""
    from spikehebb.study import ArmResult, format_study

    fitness = {"default": np.array([10.0, 20.0])}
    per_synapse = ArmResult("hebbian", "a.h5", 3, 4, 100, 36.0, 61440, fitness)
    shared = ArmResult("hebbian gmm-M480", "b.h5", 3, 4, 100, 36.0, 61440, fitness, final_rules=2400)
    rows = format_study([per_synapse, shared], ["default"]).splitlines()[1:]
    assert rows[0].split()[1] == "61,440" and rows[1].split()[2] == "2,400"
    assert shared.final_parameters == 2400 and per_synapse.final_parameters == 61440
