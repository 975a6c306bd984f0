"""The recovery metric on speed curves with known answers, the table row of a set of lifetimes,
and the perturbations acting on a real (tiny) ant lifetime."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spikehebb.perturb import (
    Recovery,
    markdown_table,
    mean_window_speed,
    perturbed_speeds,
    recovery,
    rows_from_json,
    rows_to_json,
    summarise,
)
from spikehebb.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]


def curve(before, after, t0=100, T=300):
    """Speed `before` until t0, then `after(t - t0)`."""
    t = np.arange(T)
    return np.where(t < t0, before, [after(k - t0) for k in t])


def test_a_speed_that_never_drops_recovers_at_the_first_window():
    assert recovery(np.ones(300), 100) == Recovery(1.0, 50.0, False, 1.0)


def test_a_stop_then_a_step_back_to_full_speed():
    # stopped for 30 steps, then full speed: the window ending at k holds k - 130 full steps out of
    # 50; it reaches 80% at k - 130 = 40, so k = 170, 70 steps after t0
    speed = curve(1.0, lambda k: 0.0 if k < 30 else 1.0)
    assert recovery(speed, 100) == Recovery(1.0, 70.0, False, 1.0)


def test_a_linear_ramp():
    # speed k/100 after t0 (m/s): window mean over k-50..k-1 is (k - 25.5)/100 >= 0.8 at k = 106
    speed = curve(1.0, lambda k: k / 100)
    r = recovery(speed, 100)
    # the level at the end: the mean of the last 100 steps, k = 100 .. 199, 1.495 m/s
    assert r.steps == 106.0 and r.end == pytest.approx(1.495)


def test_partial_recovery_is_censored_at_the_end():
    speed = curve(2.0, lambda k: 1.5)  # 75% of before: never 80%
    r = recovery(speed, 100)
    assert r == Recovery(2.0, 200.0, True, 1.5) and r.walking and not r.recovered
    assert recovery(speed, 100, fraction=0.75) == Recovery(2.0, 50.0, False, 1.5)


def test_too_short_to_tell_is_censored():
    r = recovery(np.ones(130), 100)
    assert r.censored and r.steps == 30
    # the level at the end counts only steps after t0 when fewer than 100 are left
    assert recovery(curve(2.0, lambda k: 0.5, T=130), 100).end == 0.5


def test_not_walking_before_has_nothing_to_regain():
    r = recovery(curve(-0.2, lambda k: 1.0), 100)
    assert math.isnan(r.steps) and not r.walking and not r.recovered and r.before == pytest.approx(-0.2)


def test_the_level_before_is_the_last_window_only():
    speed = curve(0.0, lambda k: 0.8)
    speed[50:100] = 1.0  # only steps 50..99 count
    r = recovery(speed, 100)
    assert (r.before, r.steps, r.censored, r.end) == (1.0, 50.0, False, pytest.approx(0.8))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(t0=20), "t0 must leave a whole window"),
        (dict(t0=100, window=0), "window must be a positive"),
        (dict(t0=100, fraction=1.5), "fraction must lie in"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        recovery(np.ones(300), **kwargs)


def test_summary_median_counts_censored_as_never():
    rs = [Recovery(1.0, 60.0, False, 0.9), Recovery(1.0, 120.0, False, 0.7), Recovery(1.0, 200.0, True, 0.2),
          Recovery(-1.0, math.nan, False, -0.5)]
    row = summarise("Hebbian", "motor", rs, 200)
    assert (row.lifetimes, row.walking, row.recovered, row.within_paper) == (4, 3, 2, 1)
    assert row.median_steps == 120.0 and row.speed_before == 1.0
    assert row.speed_end == pytest.approx(0.6)  # the walking lifetimes' (0.9 + 0.7 + 0.2) / 3
    # exactly half recover: the median is the time by which they had (Kaplan-Meier's convention)
    assert summarise("x", "motor", rs[1:3], 200).median_steps == 120.0
    # more than half never recover: the median is "more than the horizon"
    row = summarise("static", "redraw", [rs[2], rs[2], rs[1], rs[3]], 200)
    assert math.isinf(row.median_steps)
    table = markdown_table([row])
    assert "| static | redraw | 3 / 4 | 1.000 | 1 | 0 | > 200 | 0.367 |" in table
    back = rows_from_json(json.loads(json.dumps(rows_to_json([row]))))
    assert back == [row]
    old = {k: v for k, v in rows_to_json([row])[0].items() if k != "speed_end"}  # a file from before the column
    assert math.isnan(rows_from_json([old])[0].speed_end)
    assert math.isnan(summarise("x", "none", [rs[3]], 200).median_steps)


def test_mean_window_speed():
    speed = np.array([np.arange(10.0), np.arange(10.0) + 2])
    np.testing.assert_allclose(mean_window_speed(speed, 4), np.arange(7.0) + 2.5)


@pytest.fixture(scope="module")
def ant_run(tmp_path_factory):
    config = TrainConfig.from_dict(dict(popsize=2, generations=1, max_env_steps=60, train_variants=("default",), batch_size=2,
                         evaluator="serial", runs_dir=str(tmp_path_factory.mktemp("run")), run_name="ant", backend="numpy"))
    return train(config, progress=False)


def test_perturbations_act_on_a_real_lifetime(ant_run):
    kw = dict(episodes=3, t0=60, max_env_steps=200)  # 160 network steps, no early end
    base = perturbed_speeds(ant_run, "none", **kw)
    assert base.shape == (3, 160) and np.all(np.isfinite(base))
    # redraw and motor act on step t0 itself (its weights, its actions); freeze stops the rule's update
    # after step t0, so the first weights it keeps from changing are step t0 + 1's
    for name, first in (("redraw", 60), ("motor", 60), ("freeze", 61)):
        speed = perturbed_speeds(ant_run, name, **kw)
        differs = np.flatnonzero(np.any(speed != base, axis=0))
        assert differs[0] == first, name  # the same lifetimes until the perturbation acts, not a step later
        assert not np.allclose(speed[:, 61:], base[:, 61:]), name  # and different after it
    # nothing is left perturbed: the next lifetimes are the unperturbed ones again
    np.testing.assert_array_equal(perturbed_speeds(ant_run, "none", **kw), base)
    with pytest.raises(ValueError, match="t0 must lie in"):
        perturbed_speeds(ant_run, "motor", episodes=1, t0=10, max_env_steps=200)
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturbed_speeds(ant_run, "unplug", episodes=1)


@pytest.mark.slow
def test_the_experiment_script(ant_run, tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "perturb_ant.py"), "--hebbian", str(ant_run),
         "--episodes", "2", "--t0", "60", "--eval-steps", "200", "--out", str(tmp_path / "rec")],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "| Hebbian ABCD_lr | motor |" in out.stdout
    data = json.loads((tmp_path / "rec.json").read_text())
    assert [r["perturbation"] for r in data["rows"]] == ["none", "redraw", "motor", "freeze"]
    assert (tmp_path / "rec.png").stat().st_size > 10_000


def test_a_lifetime_that_failed_before_t0_counts_as_not_walking(monkeypatch):
    """Non-finite outputs end a lifetime's speeds early (NaN after); one that ends before t0 was not
    walking when the perturbation came: the others are summarised as usual."""
    import spikehebb.perturb as perturb

    good = curve(1.0, lambda k: 1.0, t0=100, T=300)
    failed = np.where(np.arange(300) < 70, 1.0, np.nan)
    monkeypatch.setattr(perturb, "perturbed_speeds", lambda run, name, episodes, t0, **kw: np.stack([good, failed]))
    (row,), _ = perturb.run_experiment({"Hebbian ABCD_lr": "unused.h5"}, ["none"], episodes=2, t0=100)
    assert (row.lifetimes, row.walking, row.recovered, row.median_steps) == (2, 1, 1, 50.0)


def test_the_script_refuses_runs_of_the_wrong_kind_and_keeps_dots_in_its_prefix(ant_run, tmp_path, monkeypatch, capsys,
                                                                                   experiment_script):
    import spikehebb.perturb as perturb

    script = experiment_script("perturb_ant")
    from spikehebb.agents import AgentConfig

    tiny = TrainConfig.from_dict(dict(popsize=2, generations=1, max_env_steps=45, train_variants=("default",),
                                      batch_size=2, evaluator="serial", runs_dir=str(tmp_path / "lstm"), run_name="lstm"))
    lstm = train(tiny.replace(agent=AgentConfig(kind="lstm", rule=None)), progress=False)
    # the perturbations of a network's weights and rule are refused for an agent without them
    with pytest.raises(ValueError, match="the freeze perturbation acts on a network's weights and rule; a lstm agent"):
        perturb.perturbed_speeds(lstm, "freeze", episodes=1, t0=50, max_env_steps=200)
    for flags, message in ((["--hebbian", str(ant_run), "--static", str(ant_run)],
                            f"--static {ant_run} is a Hebbian ABCD_lr run, not a static-weights one"),
                           (["--hebbian", str(lstm)], f"--hebbian {lstm} is a lstm run, with no plasticity rule: give a rule run"),
                           (["--hebbian", str(ant_run), "--out", str(tmp_path / "nowhere" / "rec")],
                            f"its folder {tmp_path / 'nowhere'} does not exist")):
        with pytest.raises(SystemExit) as info:
            script.main(flags)
        assert info.value.code == 2 and message in capsys.readouterr().err
    speeds = np.stack([curve(1.0, lambda k: 1.0, t0=60, T=160)])
    monkeypatch.setattr(perturb, "perturbed_speeds", lambda *a, **kw: speeds)
    monkeypatch.setattr(script, "run_experiment", perturb.run_experiment)
    script.main(["--hebbian", str(ant_run), "--perturbations", "none", "--episodes", "1", "--t0", "60",
                 "--out", str(tmp_path / "rec_lr0.2")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lstm", "rec_lr0.2.json", "rec_lr0.2.png"]
