"""Trace figures: each has the expected panels, the PCA finds known trajectories, the files are
named after the run, and `spikehebb plot --traces` writes them (or says why not in one line)."""

import matplotlib.image
import numpy as np
import pytest

from spikehebb.assess import load_run, record_traces
from spikehebb.cli import main as cli_main
from spikehebb.plots import (
    load_trace,
    plot_activity,
    plot_fitness,
    plot_traces,
    plot_weight_matrices,
    plot_weight_norms,
    plot_weight_pca,
    trace_names,
    weight_alignment,
    weight_pcs,
)
from spikehebb.store import RunStore, TraceWriter
from spikehebb.train import TrainConfig, train

SIZES = (4, 6, 3)
T = 40


def images(fig):
    """Axes of a figure that show an image (colour bars excluded)."""
    return [ax for ax in fig.axes if ax.images]


def write_traces(path, weights_of_t, synapses=None, variant="default"):
    """A traces file with one episode of T steps whose weights are ``weights_of_t(t)``."""
    rng = np.random.default_rng(0)
    with TraceWriter(path, sizes=SIZES, n_actions=3, reward_terms=["reward_progress"], synapses=synapses) as tw:
        with tw.episode(variant, 0, seed=1) as ep:
            for t in range(T):
                rates = [rng.uniform(-1, 1, n) for n in SIZES]
                ep.step(rates, rates[-1], {"reward_progress": 0.5}, weights_of_t(t))
            ep.end(fitness=T * 0.5)
    return path


def line(t):
    """Weights moving along one direction: all variance on PC1."""
    return [np.full((4, 6), 0.1 * t), np.full((6, 3), -0.2 * t)]


def circle(t, period=T):
    """Weights going round a circle in a 2-D plane: half the variance on each of PC1 and PC2."""
    a = 2 * np.pi * t / period
    w1 = np.zeros((4, 6))
    w1[0, 0], w1[1, 1] = np.cos(a), np.sin(a)
    return [w1, np.zeros((6, 3))]


@pytest.fixture
def trace(tmp_path):
    return load_trace(write_traces(tmp_path / "line.h5", line), "default/episode_0")


def test_load_trace(trace):
    assert trace.steps == T and trace.variant == "default" and trace.episode == 0 and trace.fitness == 20
    assert [r.shape for r in trace.rates] == [(T, 4), (T, 6), (T, 3)]
    assert [w.shape for w in trace.weights] == [(T, 4, 6), (T, 6, 3)] and not trace.subsampled
    np.testing.assert_allclose(trace.weights[1][7], -1.4, rtol=1e-6)
    assert trace.spikes is None  # a rate network's
    assert trace.attrs == {"morphology": "default", "episode": 0, "seed": 1, "steps": T, "fitness": 20.0}


def test_weight_matrices_rows_are_layers_columns_are_steps(trace):
    fig = plot_weight_matrices(trace, [0, 5, 39])
    panels = images(fig)
    assert len(panels) == 2 * 3
    assert [ax.get_title().split("\n")[0] for ax in panels[:3]] == ["layer 1, t=0", "layer 1, t=5", "layer 1, t=39"]
    assert panels[3].get_title().startswith("layer 2, t=0")
    np.testing.assert_allclose(panels[4].images[0].get_array(), np.full((6, 3), -1.0), rtol=1e-6)
    with pytest.raises(ValueError, match=r"steps must lie in \[0, 39\]"):
        plot_weight_matrices(trace, [40])


def test_weight_norms_one_line_per_layer(trace):
    ax, ax_cos = plot_weight_norms(trace).axes
    assert [l.get_label() for l in ax.lines] == ["layer 1 (4x6)", "layer 2 (6x3)"]
    np.testing.assert_allclose(ax.lines[0].get_ydata()[10], np.sqrt(24) * 1.0, rtol=1e-6)
    # weights along a line keep their direction: cos 1 from step 1 on, 0 at the all-zero step 0
    np.testing.assert_allclose(ax_cos.lines[1].get_ydata(), [0.0] + [1.0] * (T - 1), atol=1e-6)


def test_weight_alignment_of_a_rotating_layer(tmp_path):
    ring = load_trace(write_traces(tmp_path / "ring.h5", circle), "default/episode_0")
    cos = weight_alignment(ring)
    assert cos.shape == (T, 2)
    t = np.arange(T)
    np.testing.assert_allclose(cos[:, 0], np.cos(2 * np.pi * (t - (T - 1)) / T), atol=1e-6)  # the angle to the end
    np.testing.assert_array_equal(cos[:, 1], 0.0)  # an all-zero layer has no direction


def test_activity_one_raster_per_layer(trace):
    panels = images(plot_activity(trace))
    assert [ax.get_ylabel() for ax in panels] == ["inputs\n(4)", "layer 1\n(6)", "outputs\n(3)"]
    assert [ax.images[0].get_array().shape for ax in panels] == [(4, T), (6, T), (3, T)]


def test_pca_finds_a_line_and_a_circle(tmp_path, trace):
    pcs, ratio = weight_pcs(trace)
    assert ratio[0] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(np.diff(pcs[:, 0]), np.diff(pcs[:, 0])[0], rtol=1e-4)  # evenly along PC1
    ring = load_trace(write_traces(tmp_path / "ring.h5", circle), "default/episode_0")
    pcs, ratio = weight_pcs(ring)
    np.testing.assert_allclose(ratio[:2], [0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(np.hypot(pcs[:, 0], pcs[:, 1]), 1.0, rtol=1e-5)  # the circle's radius
    fig = plot_weight_pca(ring)
    assert [ax.get_title() for ax in fig.axes[:2]] == ["weight trajectory", "principal components over the lifetime"]
    assert len(fig.axes[1].lines) == 3


def test_plot_traces_writes_pngs_named_after_the_run(tmp_path):
    path = write_traces(tmp_path / "myrun.h5", line, variant="damage_left")
    out = plot_traces(path, tmp_path / "figs", steps=[0, 39])
    assert [p.name for p in out] == [f"myrun_damage_left_ep0_{k}.png" for k in ("matrices", "norms", "activity", "pca")]
    for p in out:
        img = matplotlib.image.imread(p)
        assert img.ndim == 3 and img.shape[0] > 100 and img[..., :3].std() > 0.05


def test_subsampled_traces_skip_the_matrices(tmp_path):
    path = write_traces(tmp_path / "sub.h5", line, synapses=5)
    trace = load_trace(path, "default/episode_0")
    assert trace.subsampled and [w.shape for w in trace.weights] == [(T, 5), (T, 5)]
    with pytest.raises(ValueError, match="subsample"):
        plot_weight_matrices(trace)
    assert [p.stem.split("_")[-1] for p in plot_traces(path)] == ["norms", "activity", "pca"]
    with pytest.raises(ValueError, match="every chosen episode recorded a subsample of synapses and gets no matrices: "
                                         "drop --steps"):
        plot_traces(path, tmp_path / "none", steps=[0])  # the steps would go unused
    assert not (tmp_path / "none").exists()
    assert "5 sampled synapses" in plot_weight_norms(trace).axes[0].lines[0].get_label()


def test_fitness_curves_say_the_units():
    h = {k: np.arange(3.0) for k in ("generation", "fitness_min", "fitness_mean", "fitness_max", "best_fitness")}
    (ax,) = plot_fitness(h, "run", "ant").axes
    assert "reward_progress" in ax.get_ylabel() and [l.get_label() for l in ax.lines] == ["mean", "best so far"]


def test_a_run_of_one_generation_shows_its_point_and_one_of_none_is_refused():
    h = {k: np.array([v]) for k, v in (("generation", 0.0), ("fitness_min", -3.0), ("fitness_mean", 1.0),
                                        ("fitness_max", 4.0), ("best_fitness", 4.0))}
    (ax,) = plot_fitness(h, "run", "ant").axes
    assert [l.get_marker() for l in ax.lines[:2]] == ["o", "o"] and list(ax.lines[0].get_xdata()) == [1.0]
    with pytest.raises(ValueError, match="run holds no generation yet: nothing to plot"):
        plot_fitness({k: v[:0] for k, v in h.items()}, "run", "ant")


def test_cli_plot_traces(tmp_path, capsys):
    config = TrainConfig.from_dict(dict(popsize=2, generations=1, max_env_steps=60, train_variants=("default",), batch_size=2,
                         evaluator="serial", runs_dir=str(tmp_path), run_name="cli", backend="numpy"))
    path = train(config, progress=False)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["plot", str(path), "--traces"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "holds no traces; record some with `spikehebb evaluate" in err and err.count("\n") == 1
    assert not (tmp_path / "cli.png").exists()  # the traces are checked before the fitness curves are written
    record_traces(path, *load_run(path), ["damage_left"], 1, None, 60)
    assert trace_names(path) == ["damage_left/episode_0"]
    for flags, said in ((["--traces", "--episodes", "default/episode_7"], "no trace 'default/episode_7' in "),
                        (["--steps", "0"], "--episodes, --steps and --out-dir are options of --traces"),
                        (["--traces", "--steps", "0", "20"],  # 60 env steps less the 40 burn-in: 20 network steps
                         "steps must lie in [0, 19] (damage_left/episode_0 holds 20 steps), got [0, 20]")):
        with pytest.raises(SystemExit) as exit_info:
            cli_main(["plot", str(path), *flags])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and said in err and err.count("\n") == 1, err
        assert not (tmp_path / "cli.png").exists()
    cli_main(["plot", str(path), "--traces", "--steps", "0", "19", "--out-dir", str(tmp_path / "figs")])
    assert (tmp_path / "cli.png").is_file()
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == sorted(
        f"cli_damage_left_ep0_{k}.png" for k in ("matrices", "norms", "activity", "pca"))
    with RunStore.open(path):
        pass  # still a valid run file
