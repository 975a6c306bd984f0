"""Figures of a run: fitness curves, and what the rule does inside one recorded lifetime.

Trace figures read the episodes that ``spikehebb evaluate RUN --traces`` records
(``/traces/<variant>/episode_<k>``, layout in ``docs/run-file.md``); T = network steps,
L = weight layers, sizes ``(n_0, ..., n_L)``:

- :func:`plot_weight_matrices`: each layer's ``(n_pre, n_post)`` weight matrix at chosen steps,
  rows = layers, columns = steps (Najarro & Risi 2020, Fig. 6); needs all synapses recorded.
- :func:`plot_weight_norms`: per layer the Frobenius norm ``||W_l(t)||`` over the lifetime (of the
  recorded synapses when subsampled).
- :func:`plot_activity`: per layer, inputs first, the rates ``(n_l, T)`` as an image (a raster
  of rate units).
- :func:`plot_weight_pca`: the weights of all layers at each step, one ``(T, D)`` matrix, projected
  on its first principal components (an SVD of the centred matrix): does the lifetime settle to a
  point, drift, or cycle?

:func:`plot_traces` writes all four per recorded episode, named after the run:
``<run>_<variant>_ep<k>_<kind>.png`` next to the run file (or in ``out_dir``).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np
from matplotlib.figure import Figure

from spikehebb.tracefile import Trace, load_trace, trace_names

#: Trace figure kinds, in the order :func:`plot_traces` writes them.
TRACE_KINDS = ("matrices", "norms", "activity", "pca")
DPI = 100


def default_steps(T: int) -> list[int]:
    """Steps to show the weights at: the start, 10, 100, the middle and the last step."""
    return sorted({s for s in (0, 10, 100, T // 2, T - 1) if 0 <= s < T})


def plot_weight_matrices(trace: Trace, steps: Sequence[int] | None = None) -> Figure:
    """Rows = layers, columns = steps: each layer's weight matrix (pre units down, post units
    across), each panel on its own symmetric colour scale (title: its max |w|)."""
    if trace.subsampled:
        raise ValueError(f"{trace.name} recorded a subsample of synapses; weight matrices need all of them "
                         "(record with `evaluate --traces` without --trace-synapses)")
    steps = default_steps(trace.steps) if steps is None else list(steps)
    bad = [s for s in steps if not 0 <= s < trace.steps]
    if bad or not steps:
        raise ValueError(f"steps must lie in [0, {trace.steps - 1}], got {list(steps)}")
    L = len(trace.weights)
    fig = Figure(figsize=(1.9 * len(steps) + 0.6, 2.0 * L + 0.6))
    axes = fig.subplots(L, len(steps), squeeze=False)
    for l, w in enumerate(trace.weights):
        for c, s in enumerate(steps):
            ax = axes[l, c]
            m = float(np.abs(w[s]).max()) or 1.0
            ax.imshow(w[s], cmap="RdBu_r", vmin=-m, vmax=m, aspect="auto", interpolation="nearest")
            ax.set_title(f"layer {l + 1}, t={s}\nmax|w|={m:.3g}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(f"{w.shape[1]} pre units", fontsize=8)
            if l == L - 1:
                ax.set_xlabel(f"{w.shape[2]} post units", fontsize=8)
    fig.suptitle(f"weights, {trace.variant} episode {trace.episode} (red > 0 > blue)", fontsize=10)
    fig.tight_layout()
    return fig


def weight_alignment(trace: Trace) -> np.ndarray:
    """``(T, L)``: per layer, the cosine between the weights at each step and at the last step,
    all of the layer's recorded synapses as one vector (0 where either is all zeros). It tells a
    rule that settles the weights' direction while their size keeps growing (with saturating
    units, the direction is what the network computes) from one that keeps reshaping them."""
    out = np.zeros((trace.steps, len(trace.weights)))
    for l, w in enumerate(trace.weights):
        flat = w.reshape(len(w), -1).astype(np.float64)
        norms = np.linalg.norm(flat, axis=1)
        if norms[-1] > 0:
            dots = flat @ (flat[-1] / norms[-1])
            np.divide(dots, norms, out=out[:, l], where=norms > 0)
    return out


def plot_weight_norms(trace: Trace) -> Figure:
    """Two panels per layer's line, over network steps: ``||W_l(t)||`` (Frobenius, log scale)
    and the direction, ``cos(W_l(t), W_l(T-1))`` (:func:`weight_alignment`)."""
    fig = Figure(figsize=(6, 5.4))
    ax, ax_cos = fig.subplots(2, 1, sharex=True)
    cosines = weight_alignment(trace)
    for l, w in enumerate(trace.weights, 1):
        norms = np.linalg.norm(w.reshape(len(w), -1).astype(np.float64), axis=1)
        what = f"{w.shape[1]} sampled synapses" if trace.synapses[l - 1] is not None else f"{w.shape[1]}x{w.shape[2]}"
        ax.plot(norms, label=f"layer {l} ({what})")
        ax_cos.plot(cosines[:, l - 1], label=f"layer {l}")
    ax.set_yscale("log")
    ax.set_ylabel("||W|| (Frobenius)")
    ax.set_title(f"weight norms and direction, {trace.variant} episode {trace.episode}", fontsize=10)
    ax.legend(fontsize=8)
    ax_cos.set_xlabel("network step")
    ax_cos.set_ylabel("cos(W(t), W(last step))")
    ax_cos.set_ylim(-1.05, 1.05)
    ax_cos.axhline(0, color="0.7", lw=0.5)
    fig.tight_layout()
    return fig


def plot_activity(trace: Trace) -> Figure:
    """One panel per layer, inputs first: rates as an image, units down, steps across."""
    n = len(trace.rates)
    heights = [max(1.0, min(3.0, r.shape[1] / 32)) for r in trace.rates]
    fig = Figure(figsize=(7, 1.2 * sum(heights) + 0.8))
    axes = fig.subplots(n, 1, sharex=True, gridspec_kw={"height_ratios": heights}, squeeze=False)
    names = ["inputs"] + [f"layer {l}" for l in range(1, n - 1)] + ["outputs"]
    for ax, r, name in zip(axes[:, 0], trace.rates, names):
        m = float(np.percentile(np.abs(r), 99)) or 1.0
        im = ax.imshow(r.T, cmap="RdBu_r", vmin=-m, vmax=m, aspect="auto", interpolation="nearest")
        ax.set_ylabel(f"{name}\n({r.shape[1]})", fontsize=8)
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, pad=0.01, fraction=0.03)
    axes[-1, 0].set_xlabel("network step")
    fig.suptitle(f"activity, {trace.variant} episode {trace.episode}", fontsize=10)
    fig.tight_layout()
    return fig


def weight_pcs(trace: Trace, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The weight trajectory on its first k principal components: (projections ``(T, k)``,
    explained variance ratios ``(k,)``), from NumPy's SVD of the centred ``(T, D)`` matrix of
    every recorded weight per step."""
    X = np.concatenate([w.reshape(len(w), -1) for w in trace.weights], axis=1).astype(np.float64)
    X -= X.mean(axis=0)
    U, S, _ = np.linalg.svd(X, full_matrices=False)
    k = min(k, len(S))
    total = float((S**2).sum()) or 1.0
    return U[:, :k] * S[:k], S[:k] ** 2 / total


def plot_weight_pca(trace: Trace) -> Figure:
    """Two panels: PC2 against PC1 coloured by step; PC1..3 against step."""
    pcs, ratio = weight_pcs(trace)
    fig = Figure(figsize=(9, 3.6))
    a, b = fig.subplots(1, 2)
    t = np.arange(len(pcs))
    if pcs.shape[1] >= 2:
        a.plot(pcs[:, 0], pcs[:, 1], color="0.8", lw=0.6, zorder=0)
        sc = a.scatter(pcs[:, 0], pcs[:, 1], c=t, s=4, cmap="viridis")
        a.set_ylabel(f"PC2 ({ratio[1]:.1%})")
        fig.colorbar(sc, ax=a, label="network step")
    a.set_xlabel(f"PC1 ({ratio[0]:.1%})")
    for ax in (a, b):
        ax.ticklabel_format(style="sci", scilimits=(-3, 3))
    a.set_title("weight trajectory", fontsize=10)
    for i in range(pcs.shape[1]):
        b.plot(t, pcs[:, i], label=f"PC{i + 1} ({ratio[i]:.1%})")
    b.set_xlabel("network step")
    b.set_title("principal components over the lifetime", fontsize=10)
    b.legend(fontsize=8)
    fig.suptitle(f"weights on their principal components, {trace.variant} episode {trace.episode}", fontsize=10)
    fig.tight_layout()
    return fig


PLOTTERS = {
    "matrices": plot_weight_matrices,
    "norms": plot_weight_norms,
    "activity": plot_activity,
    "pca": plot_weight_pca,
}


def check_trace_names(path: str | Path, episodes: Sequence[str] | None = None) -> list[str]:
    """The recorded lifetimes of a run file (``"variant/episode_k"``); a one-line error when it
    holds none or ``episodes`` names one it does not hold."""
    names = trace_names(path)
    if not names:
        raise ValueError(f"{path} holds no traces; record some with `spikehebb evaluate {path} --traces`")
    unknown = [e for e in episodes or () if e not in names]
    if unknown:
        raise ValueError(f"no trace {unknown[0]!r} in {path}; recorded: {', '.join(names)}")
    return names


def check_trace_steps(path: str | Path, names: Sequence[str], steps: Sequence[int] | None) -> None:
    """A one-line error, before any figure is written, for ``steps`` (of the weight matrices)
    outside an episode of ``names`` that records every synapse, or given where every one of them
    records a subsample (which gets no matrices: the steps would go unused)."""
    import h5py

    if steps is None:
        return
    with h5py.File(path, "r") as f:
        lengths = {name: int(f[f"traces/{name}"].attrs["steps"]) for name in names
                   if int(f[f"traces/{name}"]["weights"].attrs["subsample"]) < 0}
    if not lengths:
        raise ValueError("--steps chooses the weight matrices' steps; every chosen episode recorded a subsample of "
                         "synapses and gets no matrices: drop --steps")
    for name, T in lengths.items():
        bad = [s for s in steps if not 0 <= s < T]
        if bad or not steps:
            raise ValueError(f"steps must lie in [0, {T - 1}] ({name} holds {T} steps), got {list(steps)}")


def plot_traces(
    path: str | Path,
    out_dir: str | Path | None = None,
    episodes: Sequence[str] | None = None,
    steps: Sequence[int] | None = None,
    kinds: Sequence[str] = TRACE_KINDS,
) -> list[Path]:
    """Write the trace figures of each recorded episode (default: all) of a run file; returns the
    PNG paths. A subsampled episode gets no weight matrices (its other figures are written)."""
    path = Path(path)
    names = check_trace_names(path, episodes)
    bad = [k for k in kinds if k not in PLOTTERS]
    if bad:
        raise ValueError(f"unknown trace figure {bad[0]!r}; valid: {', '.join(PLOTTERS)}")
    check_trace_steps(path, episodes or names, steps)
    out_dir = path.parent if out_dir is None else Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in episodes or names:
        trace = load_trace(path, name)
        for kind in kinds:
            if kind == "matrices" and trace.subsampled:
                continue
            fig = plot_weight_matrices(trace, steps) if kind == "matrices" else PLOTTERS[kind](trace)
            out = out_dir / f"{path.stem}_{trace.variant}_ep{trace.episode}_{kind}.png"
            fig.savefig(out, dpi=DPI)
            written.append(out)
    return written


def plot_recovery(speeds: dict[tuple[str, str], np.ndarray], t0: int, window: int = 50) -> Figure:
    """One panel per model: the mean over lifetimes of the trailing ``window``-step mean speed
    (m/s) against network step, one line per perturbation, a dashed line at ``t0``.
    speeds: (model, perturbation) -> per-step speeds ``(lifetimes, T)``, NaN after an end."""
    models = list(dict.fromkeys(m for m, _ in speeds))
    fig = Figure(figsize=(4.2 * len(models) + 0.5, 3.6))
    axes = fig.subplots(1, len(models), squeeze=False, sharey=True)[0]
    kernel = np.ones(window) / window
    for ax, model in zip(axes, models):
        for (m, name), s in speeds.items():
            if m != model:
                continue
            mean = np.nanmean([np.convolve(row, kernel, mode="valid") for row in s], axis=0)
            ax.plot(np.arange(window, window + len(mean)), mean, label=f"{name} ({len(s)})")
        ax.axvline(t0, color="0.3", ls="--", lw=0.8)
        ax.set_title(model, fontsize=10)
        ax.set_xlabel(f"network step (end of the {window}-step window)")
    axes[0].set_ylabel("speed towards the target (m/s)")
    axes[-1].legend(fontsize=8, title="perturbation (lifetimes)", title_fontsize=8)
    fig.suptitle(f"recovery from a perturbation at step {t0}", fontsize=10)
    fig.tight_layout()
    return fig


def plot_fitness(history: dict[str, np.ndarray], title: str, task: str = "ant") -> Figure:
    """Training curves from ``RunStore.history()``: min-max band, mean and best so far."""
    from spikehebb.assess import FITNESS_UNITS  # the fitness in words (assess loads the rollout: not at import)

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    g = history["generation"] + 1  # counted from 1, as the training log and the model card count them
    if not len(g):
        raise ValueError(f"{title} holds no generation yet: nothing to plot")
    marker = "o" if len(g) < 2 else None  # one generation: a line of one point shows nothing
    ax.fill_between(g, history["fitness_min"], history["fitness_max"], alpha=0.2, label="min-max")
    ax.plot(g, history["fitness_mean"], marker=marker, label="mean")
    ax.plot(g, history["best_fitness"], marker=marker, label="best so far")
    if len(g) < 2:
        ax.errorbar(g, history["fitness_mean"], yerr=[history["fitness_mean"] - history["fitness_min"],
                                                     history["fitness_max"] - history["fitness_mean"]],
                    fmt="none", color="C0", alpha=0.4, capsize=4)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("generation")
    units = "\n".join(textwrap.wrap(f"({FITNESS_UNITS[task]})", 45)) if task in FITNESS_UNITS else "(raw)"
    ax.set_ylabel(f"fitness\n{units}", fontsize=8)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_bodies_side_by_side(panels: Sequence[tuple], task: str = "ant") -> Figure:
    """Each stored search mean's fitness on every body, for several runs, one panel each on a shared
    fitness axis; ``panels``: (title, generations, variants, scores, roles, history) per run:
    ``scores`` ``(S, V)`` the mean over each mean's selection lifetimes against ``generations``
    ``(S,)`` completed, ``roles`` naming each body "trained" (drawn solid), "unseen" (dashed) or
    "mirror of trained" (dash-dot; :func:`spikehebb.envs.mirror.body_roles`), ``history``
    (``RunStore.history()`` or None) the population's mean fitness on the training bodies in grey,
    for scale."""
    from spikehebb.assess import FITNESS_UNITS

    fig = Figure(figsize=(7.5 * len(panels), 4.3))
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (title, generations, variants, scores, roles, history) in zip(axes, panels):
        if history is not None:
            ax.plot(history["generation"] + 1, history["fitness_mean"], color="0.75", lw=1,
                    label="population mean (training bodies, perturbed candidates)")
        for v, variant in enumerate(variants):
            style = {"trained": "-", "mirror of trained": "-."}.get(roles[variant], "--")
            ax.plot(generations, scores[:, v], style, marker="o", ms=3, color=f"C{v}",
                    label=f"{variant} ({roles[variant]})")
        ax.set_xlabel("generations completed")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, ncol=2)
    units = "\n".join(textwrap.wrap(f"({FITNESS_UNITS[task]})", 45)) if task in FITNESS_UNITS else "(raw)"
    axes[0].set_ylabel(f"fitness of the search mean\n{units}", fontsize=8)
    fig.tight_layout()
    return fig


def run_task(path: str | Path) -> str:
    """The task name stored in a run file's config (``"ant"`` for files that do not say)."""
    with h5py.File(path, "r") as f:
        task = json.loads(f.attrs["config"]).get("task", "ant") if "config" in f.attrs else "ant"
    return task["name"] if isinstance(task, dict) else task  # nested configs, or the flat ones of older files
