"""Studies resume from their run files, and finished arms report from the cache alone."""

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
