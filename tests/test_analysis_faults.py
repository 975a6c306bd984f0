"""Faults of the analysis tools: a report never writes over its run, --traces refuses agents it
cannot record before any lifetime, perturb_ant.py checks its outputs before the lifetimes, a
lifetime that fails at the perturbation is not assessed, failed test lifetimes are counted in
the tables, and traces-only files are read, plotted and refused in one line."""

import math

import numpy as np
import pytest

from spikehebb.agents import AgentConfig
from spikehebb.assess import VariantResult, format_table, load_run, record_traces
from spikehebb.cli import main as cli_main
from spikehebb.store import TraceWriter
from spikehebb.tracefile import load_trace
from spikehebb.train import TrainConfig, train

TINY = dict(popsize=2, generations=1, max_env_steps=60, train_variants=("default",), batch_size=2,
            evaluator="serial", backend="numpy")


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train(TrainConfig.from_dict(dict(TINY, runs_dir=str(tmp_path_factory.mktemp("run")), run_name="victim")),
                 progress=False)


# ---------------------------------------------------------------------------------------- report
def test_report_refuses_to_write_over_its_run_file_and_writes_the_page_whole(run, tmp_path, capsys):
    victim = tmp_path / "victim.h5"
    victim.write_bytes(run.read_bytes())
    before = victim.read_bytes()
    (tmp_path / "link.html").symlink_to(victim)
    (tmp_path / "folder.html").mkdir()
    for out, message in (
        (victim, f"the report is an HTML page: -o must end in .html or .htm, got {victim}"),
        (tmp_path / "link.html", f"-o {tmp_path / 'link.html'} is the run file {victim} itself"),
        (tmp_path / "folder.html", f"-o {tmp_path / 'folder.html'}: {tmp_path / 'folder.html'} is a folder; choose another -o"),
    ):
        with pytest.raises(SystemExit) as exc:
            cli_main(["report", str(victim), "--no-test", "-o", str(out)])
        assert exc.value.code == 2
        assert one_error_line(capsys).startswith(f"spikehebb report: error: {message}")
        assert victim.read_bytes() == before  # the run file is intact
    cli_main(["report", str(victim), "--no-test", "-o", str(tmp_path / "victim.HTM")])
    assert (tmp_path / "victim.HTM").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert victim.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.html", "link.html", "victim.HTM", "victim.h5"]


def test_a_report_that_fails_midway_keeps_the_page_written_before(run, tmp_path, monkeypatch):
    from pathlib import Path

    from spikehebb.report import build_report

    out = tmp_path / "r.html"
    out.write_text("the earlier page")

    def half_then_ctrl_c(self, text, *args, **kwargs):
        with open(self, "w") as f:
            f.write(text[:100])
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", half_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        build_report(run, out, test=False)
    assert out.read_text() == "the earlier page" and sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


# ---------------------------------------------------------------------------------------- traces
def test_traces_are_refused_up_front_for_recurrent_agents(tmp_path, capsys, monkeypatch):
    from spikehebb.assess import check_traceable
    from spikehebb.cli import experiment_main

    for kind in ("lstm", "gru"):
        with pytest.raises(ValueError, match=f"the recurrent layer of this {kind} run does not fit them"):
            check_traceable(AgentConfig(kind=kind, rule=None))
    for agent in (AgentConfig(), AgentConfig(kind="static", rule=None), AgentConfig(kind="lif")):
        check_traceable(agent)  # the network agents record traces

    lstm = train(TrainConfig.from_dict(dict(TINY, runs_dir=str(tmp_path), run_name="lstm"))
                 .replace(agent=AgentConfig(kind="lstm", rule=None)), progress=False)
    before = lstm.read_bytes()
    monkeypatch.setattr("spikehebb.assess.assess", lambda *a, **k: pytest.fail("a test lifetime ran"))
    with pytest.raises(SystemExit) as exc:
        cli_main(["evaluate", str(lstm), "--traces", "--episodes", "1", "--variant", "default"])
    assert exc.value.code == 2 and one_error_line(capsys) == (
        "spikehebb evaluate: error: --traces records the rates and weight matrices of Hebbian (plastic-weight) "
        "networks and their static and spiking kin (agent kinds hebbian, static, lif); the recurrent layer of "
        "this lstm run does not fit them, so it records no traces")
    with pytest.raises(ValueError, match="^record_traces records the rates .* the recurrent layer of this lstm run"):
        record_traces(lstm, *load_run(lstm), ["default"], into=tmp_path / "t.h5")
    assert lstm.read_bytes() == before and not (tmp_path / "t.h5").exists()

    runs = tmp_path / "runs"
    tiny = ["--popsize", "2", "--generations", "1", "--max-env-steps", "60", "--train-variants", "default",
            "--evaluator", "serial", "--batch-size", "2", "--no-progress", "--runs-dir", str(runs)]
    with pytest.raises(SystemExit) as exc:
        experiment_main("ant", "run_ant", [*tiny, "--agent", "lstm", "--traces"])
    assert exc.value.code == 2 and "--traces records the rates and weight matrices" in one_error_line(capsys)
    assert not runs.exists()  # nothing trained


def write_traces_file(path):
    """A traces-only file of one 20-step episode of a (4, 6, 3) network."""
    from spikehebb.store import TraceWriter

    rng = np.random.default_rng(0)
    with TraceWriter(path, sizes=(4, 6, 3), n_actions=3, reward_terms=["reward_progress"]) as tw:
        with tw.episode("default", 0, seed=1) as ep:
            for t in range(20):
                rates = [rng.uniform(-1, 1, n) for n in (4, 6, 3)]
                ep.step(rates, rates[-1], {"reward_progress": 0.5}, [np.full((4, 6), 0.01 * t), np.zeros((6, 3))])
            ep.end(fitness=10.0)
    return path


def test_a_variant_is_no_trace_name(tmp_path):
    path = write_traces_file(tmp_path / "traces.h5")
    for name in ("default", "default/episode_0/rates", "default/episode_3"):
        with pytest.raises(ValueError) as info:
            load_trace(path, name)
        assert str(info.value) == (f"{path} holds no trace {name!r}: expected '<variant>/episode_<k>', one of: "
                                   "default/episode_0")
    assert load_trace(path, "default/episode_0").steps == 20


def test_reading_traces_from_a_missing_or_foreign_file_is_one_line(tmp_path):
    """It was h5py's own errors (`Unable to synchronously open file (unable to open file: name =
    ...`)."""
    from spikehebb.store import RunFileError
    from spikehebb.tracefile import trace_names

    missing, foreign = tmp_path / "none.h5", tmp_path / "notes.h5"
    foreign.write_text("not HDF5")
    for read in (trace_names, lambda p: load_trace(p, "default/episode_0")):
        with pytest.raises(FileNotFoundError) as info:
            read(missing)
        assert str(info.value) == f"run file {missing} does not exist"
        with pytest.raises(RunFileError) as info:
            read(foreign)
        assert str(info.value) == f"{foreign} is not a spikehebb run or traces file (HDF5 signature missing or truncated)"


def test_plot_draws_a_traces_files_traces_and_report_refuses_it(tmp_path, capsys):
    path = write_traces_file(tmp_path / "traces.h5")
    assert cli_main(["plot", str(path)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {tmp_path / 'traces_default_ep0_matrices.png'}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["traces.h5"] + sorted(
        f"traces_default_ep0_{k}.png" for k in ("activity", "matrices", "norms", "pca"))
    assert cli_main(["plot", str(path), "--traces", "--steps", "0", "19", "--out-dir", str(tmp_path / "figs")]) == 0
    assert len(list((tmp_path / "figs").iterdir())) == 4
    for argv, message in (
        (["plot", str(path), "-o", str(tmp_path / "curve.png")],
         f"spikehebb plot: error: -o names the fitness-curve PNG, and {path} is a traces file with no training to plot"),
        (["report", str(path), "--no-test", "-o", str(tmp_path / "r.html")],
         f"spikehebb report: error: {path} is a traces file: it holds recorded lifetimes, not a run; give the run file"),
    ):
        with pytest.raises(SystemExit) as exc:
            cli_main(argv)
        assert exc.value.code == 2 and one_error_line(capsys).startswith(message)
    assert not (tmp_path / "curve.png").exists() and not (tmp_path / "r.html").exists()


# ------------------------------------------------------------------------------- test lifetimes
def test_failed_test_lifetimes_are_counted_and_the_rest_summarised():
    ok = VariantResult("default", np.array([100.0, 120.0, 140.0]), "trained")
    one = VariantResult("damage_right", np.array([100.0, np.nan, 140.0]), "trained")
    low = VariantResult("long_back", np.array([50.0, np.nan, 70.0]), "unseen")
    gone = VariantResult("damage_left", np.array([np.nan, np.nan, np.nan]), "unseen")
    assert (one.failed, one.finite_mean, one.finite_std, one.solved_finite) == (1, 120.0, 20.0, True)
    assert math.isnan(one.mean) and not one.solved  # over all lifetimes, as before
    assert (gone.failed, math.isnan(gone.finite_mean), gone.solved_finite) == (3, True, False)
    lines = format_table([ok, one, low, gone], "Hebbian ABCD_lr", "ant", 960).splitlines()
    width = len("Hebbian ABCD_lr (3 episodes)")
    assert lines[1] == f"{'default':<20} {'yes':<5} {120.0:>{width - 9}.1f} ± {np.std([100, 120, 140]):<6.1f}  yes"  # as before
    assert lines[1] == "default              yes                 120.0 ± 16.3    yes"
    assert lines[2] == ("damage_right         yes                 120.0 ± 20.0    yes (1 of 3 failed: mean, std and "
                        "solved over the other 2)")
    assert lines[3] == "long_back            no                   60.0 ± 10.0    no (1 of 3 failed: mean, std and solved over the other 2)"
    assert lines[4] == "damage_left          no                      - ± -       no (3 of 3 failed)"
    assert all(line.index("±") + 10 == lines[0].index("solved") for line in lines[1:5])
    assert lines[7] == ("failed: the lifetime's network outputs turned non-finite (or, in a broken simulation, its "
                        "observation, fitness term or modulator) and it ended with fitness NaN; a row with failures "
                        "gives mean ± std over the others and applies the solved criterion to their mean.")
    assert not any(line.startswith("failed:") for line in format_table([ok], "Hebbian ABCD_lr", "ant", 960).splitlines())


def test_the_reports_test_table_counts_failed_lifetimes(run, monkeypatch):
    import spikehebb.assess
    from spikehebb.report import test_section

    monkeypatch.setattr(spikehebb.assess, "assess", lambda config, params, variants, *a, **k: [
        VariantResult(v, np.array([100.0, np.nan, 140.0]) if v == "default" else np.array([1.0, 3.0, 5.0]),
                      "trained" if v == "default" else "unseen") for v in variants])
    html = test_section(run, 3, ["default", "damage_left"], 1)
    assert ("<td>default</td><td>yes</td><td>120.0 ± 20.0</td><td>yes (1 of 3 failed: mean, std and solved over "
            "the other 2)</td>") in html
    assert "<td>damage_left</td><td>no</td><td>3.0 ± 1.6</td><td>no</td>" in html
    assert "failed: the lifetime&#x27;s network outputs turned non-finite" in html


# ---------------------------------------------------------------------------------- perturbation
def test_a_lifetime_that_fails_at_t0_is_not_assessed_and_one_failing_after_is_never_recovered(monkeypatch):
    import spikehebb.perturb as perturb

    step = np.arange(300)
    good = np.ones(300)
    at_t0 = np.where(step < 100, 1.0, np.nan)  # no step after the perturbation
    after = np.where(step < 130, 1.0, np.nan)  # 30 steps after it, too few for a window
    monkeypatch.setattr(perturb, "perturbed_speeds", lambda run, name, episodes, t0, **kw: np.stack([good, at_t0]))
    (row,), _ = perturb.run_experiment({"Hebbian ABCD_lr": "unused.h5"}, ["motor"], episodes=2, t0=100)
    assert (row.lifetimes, row.walking, row.recovered, row.median_steps) == (2, 1, 1, 50.0)
    assert (row.speed_before, row.speed_end, row.horizon) == (1.0, 1.0, 200)
    monkeypatch.setattr(perturb, "perturbed_speeds", lambda run, name, episodes, t0, **kw: np.stack([good, after, after]))
    (row,), _ = perturb.run_experiment({"Hebbian ABCD_lr": "unused.h5"}, ["motor"], episodes=3, t0=100)
    assert (row.lifetimes, row.walking, row.recovered, math.isinf(row.median_steps)) == (3, 3, 1, True)
    with pytest.raises(ValueError, match=r"t0 must leave a whole window before it and a step after it: 50 <= t0 < 100, got 100"):
        perturb.recovery(np.ones(100), 100)


def test_perturb_ant_checks_its_outputs_before_the_lifetimes(run, tmp_path, monkeypatch, capsys, experiment_script):
    from pathlib import Path

    script = experiment_script("perturb_ant")
    monkeypatch.setattr(script, "run_experiment", lambda *a, **k: pytest.fail("the lifetimes ran"))
    (tmp_path / "rec.json").mkdir()
    with pytest.raises(SystemExit) as exc:
        script.main(["--hebbian", str(run), "--out", str(tmp_path / "rec")])
    assert exc.value.code == 2
    assert one_error_line(capsys).endswith(f"error: --out {tmp_path / 'rec'}: {tmp_path / 'rec.json'} is a folder; "
                                           "choose another --out")
    real_touch = Path.touch

    def refused(self, *a, **k):
        if "-probe-" in self.name:
            raise PermissionError(13, "Permission denied", str(self))
        return real_touch(self, *a, **k)

    monkeypatch.setattr(Path, "touch", refused)
    with pytest.raises(SystemExit) as exc:
        script.main(["--hebbian", str(run), "--out", str(tmp_path / "other")])
    assert exc.value.code == 2
    assert one_error_line(capsys).endswith(f"error: --out {tmp_path / 'other'}: cannot write in {tmp_path} "
                                           "(Permission denied); choose another --out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.json"]


def test_perturb_ant_writes_whole_files_and_keeps_the_earlier_ones_when_a_write_fails(run, tmp_path, monkeypatch,
                                                                                     capsys, experiment_script):
    import spikehebb.perturb as perturb

    script = experiment_script("perturb_ant")
    speeds = np.ones((1, 160))
    monkeypatch.setattr(perturb, "perturbed_speeds", lambda *a, **kw: speeds)
    monkeypatch.setattr(script, "run_experiment", perturb.run_experiment)
    (tmp_path / "rec.png").write_bytes(b"the earlier figure")

    def no_figure(*a, **k):
        raise OSError("the figure could not be drawn")

    monkeypatch.setattr(script, "plot_recovery", no_figure)
    with pytest.raises(SystemExit) as exc:
        script.main(["--hebbian", str(run), "--perturbations", "none", "--episodes", "1", "--t0", "60",
                     "--out", str(tmp_path / "rec")])
    out, err = capsys.readouterr()
    assert exc.value.code == 2 and err.strip().endswith("error: the figure could not be drawn")
    assert "| Hebbian ABCD_lr | none | 1 / 1 | 1.000 | 1 | 1 | 50 | 1.000 |" in out  # the results were shown
    assert (tmp_path / "rec.png").read_bytes() == b"the earlier figure"
    assert '"perturbation": "none"' in (tmp_path / "rec.json").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.json", "rec.png"]  # no partial file left


def test_traces_without_reward_terms_read_back(tmp_path):
    """The car's lifetimes have no reward terms, so no `rewards` group: load_trace failed on them."""
    rng = np.random.default_rng(0)
    with TraceWriter(tmp_path / "car.h5", sizes=(4, 6, 3), n_actions=3, reward_terms=[], synapses=None) as tw:
        with tw.episode("default", 0, seed=1) as ep:
            for t in range(5):
                rates = [rng.uniform(-1, 1, n) for n in (4, 6, 3)]
                ep.step(rates, rates[-1], {}, [np.zeros((4, 6)), np.zeros((6, 3))])
            ep.end(fitness=2.0)
    trace = load_trace(tmp_path / "car.h5", "default/episode_0")
    assert (trace.steps, trace.rewards, trace.fitness) == (5, {}, 2.0)
