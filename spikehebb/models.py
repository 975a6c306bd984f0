"""Shipping an evolved rule: choose it as the authors did, and write it as a model beside a card.

Najarro & Risi saved the search mean of every generation and reported the best of them. A run
file keeps the mean after every 10th generation (``/snapshots``) and after the last one; the
final rule is the one whose fresh *selection* lifetimes score best on the training variants.
Selection lifetimes are numbered from :data:`SELECTION_EPISODE0`, apart from the test lifetimes
(0, 1, ...) that ``spikehebb evaluate`` scores, so the model's test table is not the selection's
own lucky draw.

A model (``models/NAME.h5``) is the run file with ``/mean`` set to the chosen mean, the root
attribute ``model`` (JSON: the chosen generation, the selection scores, the source run), and of
the stored means only the chosen one in ``/snapshots`` (the others are the source run's: an ant
run's 75 stored means are 37 of its 41 MB). Every command that reads run files reads it:
``spikehebb evaluate models/NAME.h5`` tests the chosen rule, ``spikehebb plot`` draws its training
curve, ``spikehebb video NAME`` films it.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import h5py
import numpy as np

from spikehebb.checks import is_integer
from spikehebb.config import TrainConfig, WorkerSpec
from spikehebb.store import RunStore
from spikehebb.store.fileformat import open_checked
from spikehebb.store.transaction import MARGIN, free_bytes, probe_write, transaction, write_error, writer_pid

#: First episode number of selection lifetimes (test lifetimes are numbered from 0).
SELECTION_EPISODE0 = 1_000_000


@dataclass
class Selection:
    """The candidates' scores: ``generations[i]`` generations completed when mean i was taken."""

    generations: np.ndarray
    scores: np.ndarray
    """(S,) mean selection fitness over the training variants and episodes."""
    episodes: int
    variants: tuple[str, ...]

    @property
    def best(self) -> int:
        """Index of the chosen mean (the highest score; the later one on a tie). A NaN score (a
        selection lifetime that failed) never wins; all NaN is refused."""
        scores = np.where(np.isnan(self.scores), -np.inf, self.scores)
        if np.isneginf(scores).all():
            raise ValueError(f"no stored mean scored a number on {', '.join(self.variants)} (every score NaN or "
                             "-inf): nothing to choose")
        return int(len(scores) - 1 - np.argmax(scores[::-1]))


def candidate_means(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(generations completed ``(S,)``, flat means ``(S, n_params)``): the run's snapshots and its
    final mean (once, if the last snapshot is not already it). A model's is its chosen mean alone
    (its ``/mean``, which is not the final mean of its run)."""
    with RunStore.open(path) as store:
        generations, means = store.snapshots()
        checkpoint = store.load_checkpoint()
    if checkpoint is None:
        raise ValueError(f"{path} holds no finished generation yet, so no rule to choose")
    info = model_info(path)
    if info is not None:
        return np.array([info["generation"]]), checkpoint.mean[None]
    if not len(generations) or generations[-1] != checkpoint.generation:
        generations = np.append(generations, checkpoint.generation)
        means = np.concatenate([means, checkpoint.mean[None]])
    return generations, means


def score_means(
    path: str | Path, variants: Sequence[str] | None = None, episodes: int = 10, workers: int = 1,
    generations: Sequence[int] | None = None, report: Callable[[int, np.ndarray], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Score the run's stored means on selection lifetimes: full length, fresh random weights,
    episode numbers from :data:`SELECTION_EPISODE0` (apart from the test lifetimes).

    variants: bodies to score on (default: the run's training variants). generations: which of
    the stored means (generations completed; default: all of :func:`candidate_means`). report:
    called with (generation, scores ``(V,)``) as each mean is scored.
    Returns (generations ``(S,)``, mean fitness ``(S, V)`` over ``episodes`` lifetimes, V in
    ``variants`` order)."""
    from spikehebb.evaluators import make_evaluator

    if not (is_integer(episodes) and episodes >= 1):
        raise ValueError(f"selection episodes must be a positive integer, got {episodes!r}")
    with RunStore.open(path) as store:
        config = store.run_config()
    stored, means = candidate_means(path)
    task = config.task.make()
    variants = tuple(task.train_variants if variants is None else variants)
    unknown = [v for v in variants if v not in task.variants]
    if unknown or not variants:
        raise ValueError(f"variants to score must be among the {task.name}'s: {', '.join(task.variants)}; got {list(variants)}")
    if generations is not None:
        missing = sorted(set(int(g) for g in generations) - set(stored.tolist()))
        if missing:
            raise ValueError(f"{path} stores no mean after generation(s) {missing}; it stores {stored.tolist()}")
        keep = np.isin(stored, np.asarray(generations, dtype=stored.dtype))
        stored, means = stored[keep], means[keep]
    full = dataclasses.replace(config.task, max_env_steps=None)  # full-length lifetimes, as tests run
    # each call runs one body's ``episodes`` lifetimes, and a worker keeps a batch of envs per body
    # it has run (six bodies of 29 MB ant envs): a batch of ``episodes``, not of every training body's
    spec = WorkerSpec(full, config.agent, min(32, episodes), config.seed)
    numbers = list(range(SELECTION_EPISODE0, SELECTION_EPISODE0 + episodes))
    scores = np.zeros((len(means), len(variants)))
    with make_evaluator("serial" if workers <= 1 else "processes", spec, workers=workers) as evaluator:
        for i, mean in enumerate(means):
            scores[i] = [evaluator.evaluate_params(mean, v, numbers)[0].mean() for v in variants]
            if report is not None:
                report(int(stored[i]), scores[i])
    return stored, scores


def check_not_model(path: str | Path) -> None:
    """A one-line error when ``path`` is a model (root attribute ``model``), not a run file: a model
    keeps only its chosen mean and its source run's generation count, so selecting from it would
    score that one mean and then be refused (its run "moved on"). Reads the file: a missing one is
    a one-line FileNotFoundError, one that is not HDF5 h5py's OSError."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"expected a run file (.h5) written by spikehebb train, got {str(path)!r}, which is not a file")
    with open_checked(Path(path)):  # not HDF5, truncated, foreign: a RunFileError naming the file
        pass
    info = model_info(path)
    if info is not None:
        raise ValueError(f"{path} is a model (the mean after generation {info.get('generation')} chosen by spikehebb "
                         f"select), not a run file: select from its training run "
                         f"({info.get('source', 'the run it was selected from')}) instead")


def select(path: str | Path, episodes: int = 10, workers: int = 1, progress: bool = True) -> Selection:
    """Score every candidate mean of the run file ``path`` on ``episodes`` selection lifetimes per
    training variant (:func:`score_means`); its selection fitness is the mean over the training
    variants. A model is refused before any scoring (:func:`check_not_model`)."""
    check_not_model(path)
    with RunStore.open(path) as store:
        config = store.run_config()
    variants = tuple(config.task.make().train_variants)

    def fitness(row: np.ndarray) -> float:  # the mean over the training variants, summed as a list
        return float(np.mean(list(row)))

    def show(generation: int, row: np.ndarray) -> None:
        print(f"generation {generation:4d}: selection fitness {fitness(row):8.1f}", flush=True)

    generations, per_variant = score_means(path, variants, episodes, workers, report=show if progress else None)
    return Selection(generations, np.array([fitness(row) for row in per_variant]), episodes, variants)


def export(path: str | Path, out: str | Path, selection: Selection) -> Path:
    """Write the model: a copy of the run file whose ``/mean`` is the chosen mean and whose
    ``/snapshots`` keep only that mean's row (none when the chosen one is the run's final mean and
    not a stored snapshot), with the choice recorded in the root attribute ``model``. A shared-rules
    run's ``/shared_rules`` (the last generation's rules and assignment) is left out unless the
    final mean was chosen: it expands to that mean, not to an earlier one; so are the run's
    ``/traces`` (lifetimes of the final mean; ``evaluate --traces`` records the model's own).
    Refuses to overwrite, and refuses a model as ``path`` (:func:`check_not_model`)."""
    path, out = Path(path), Path(out)
    if out.exists():
        raise FileExistsError(f"{out} already exists; choose another name or remove it first")
    check_not_model(path)
    generations, means = candidate_means(path)
    if not np.array_equal(generations, selection.generations):
        raise ValueError(f"the selection was made on other snapshots than {path} holds now")
    chosen = means[selection.best]
    out.parent.mkdir(parents=True, exist_ok=True)
    with RunStore.open(path) as store:
        layout = store.layout
    final = selection.best == len(generations) - 1  # candidate_means ends with the final mean
    # Written as run files are (in memory, then <out>.tmp, fsync, rename): room is checked first, a
    # full disk is one line, and no .tmp is left.
    with transaction(out, fsync=True, new=True, reserve=path.stat().st_size, what="write the model",
                     after="nothing was written (no .tmp left); free some space and select again") as f:
        # the run's traces and shared rules are of its final mean: kept only when that one was chosen
        _copy_keeping_one_snapshot(path, f, int(selection.generations[selection.best]),
                                   leave_out=() if final else ("shared_rules", "traces"))
        if int(f.attrs["generations_completed"]) != int(generations[-1]):  # a generation stored meanwhile
            raise ValueError(f"{path} moved on to generation {int(f.attrs['generations_completed'])} while its model "
                             "was written; select once its training stops")
        for part, layers in layout.split(chosen).items():
            for l, array in enumerate(layers, 1):
                f["mean"][part][f"layer_{l}"][...] = array[0]
        f.attrs["model"] = json.dumps({
            "source": path.name,
            "generation": int(selection.generations[selection.best]),
            "selection": {
                "episodes_per_variant": selection.episodes, "variants": list(selection.variants),
                "first_episode": SELECTION_EPISODE0,
                "scores": {str(int(g)): float(s) for g, s in zip(selection.generations, selection.scores)},
            },
        })
    return out


def _copy_keeping_one_snapshot(path: Path, dst: h5py.File, generation: int, leave_out: Sequence[str] = ()) -> None:
    """Copy the run file ``path`` into the empty open file ``dst`` (attributes with their stored
    types, groups and datasets as they are, but the root groups named in ``leave_out``), with only
    the rows of ``/snapshots`` taken after ``generation`` (the last of them, if there is one)."""

    def copy_attrs(src, dst) -> None:
        for key in src.attrs:
            dst.attrs.create(key, src.attrs[key], dtype=src.attrs.get_id(key).dtype)

    with h5py.File(path, "r") as src:
        copy_attrs(src, dst)
        for name in src:
            if name != "snapshots" and name not in leave_out:
                src.copy(src[name], dst, name)
        snaps = src.get("snapshots")
        if snaps is None:
            return
        keep = np.flatnonzero(snaps["generations_completed"][()] == generation)[-1:]
        copy = dst.create_group("snapshots")
        copy_attrs(snaps, copy)
        for name, ds in snaps.items():  # every dataset of /snapshots has a row per stored mean
            kept = copy.create_dataset(name, data=ds[()][keep], maxshape=ds.maxshape, chunks=ds.chunks,
                                       compression=ds.compression, fillvalue=ds.fillvalue)
            copy_attrs(ds, kept)


def check_not_training(run: Path) -> None:
    """A one-line error while ``run`` is being written: its final mean (a candidate) changes every
    generation, so a selection would be refused after scoring (or could copy a later state)."""
    pid = writer_pid(run)
    if pid is not None:
        raise ValueError(f"{run} is being written by another process (pid {pid}, a training run?): select once it stops "
                         "(stop it after its generation with kill -USR1), or select from a copy of the file")


def check_model_output(out: Path, need: int) -> None:
    """Before any scoring (hours for a long run): the model's folder can be made and written, and
    ``need`` bytes (the run file's size: the model is at most that) plus a margin are free; a
    one-line error otherwise. Makes the folder."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe_write(out.parent)
        if free_bytes(out) < need + MARGIN:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    except OSError as e:
        err = write_error(out, e, "write the model", need + MARGIN, "nothing was written; free some space and try again")
        if err is e:
            raise ValueError(f"cannot write the model {out}: {e.strerror or e} ({e.filename or out.parent})") from None
        raise err from None


def model_info(path: str | Path) -> dict | None:
    """The ``model`` record of a model file (None for a plain run file)."""
    with h5py.File(path, "r") as f:
        text = f.attrs.get("model")
    return None if text is None else json.loads(text if isinstance(text, str) else text.decode())


def model_without_card(path: str | Path, run: str | Path) -> dict | None:
    """The ``model`` record of ``path`` when it is a model selected from the run file ``run`` and
    left without its card (``NAME.md``: a select stopped between the two), else None (no file, not
    an HDF5 file, a plain run file, another run's model, or a card beside it)."""
    path = Path(path)
    try:
        info = model_info(path)
    except OSError:  # missing or not HDF5
        return None
    if info is None or info.get("source") != Path(run).name or path.with_suffix(".md").exists():
        return None
    return info


def card(
    path: str | Path,
    results: Sequence,
    command: str,
    machine: str,
    paper: dict[str, tuple[float, float]] | None = None,
    curve: str | None = None,
) -> str:
    """A model card in Markdown: how the model was made (command, seed, budget), how it was
    chosen (every stored mean's selection score), its training curve (``curve``: an image path
    relative to the card) and its test table from ``results`` (:class:`~spikehebb.assess.VariantResult`
    per variant) with ``paper``'s numbers beside it ({variant: (mean, std)}, e.g. Najarro & Risi's
    Table 1)."""
    from spikehebb.agents import lifetime_start
    from spikehebb.assess import FITNESS_UNITS, failed_legend, seen_note

    info = model_info(path) or {}
    with RunStore.open(path) as store:
        config = store.run_config()
        h = store.history()
        settings = store.config_line()
    lines = [
        f"# {Path(path).stem}",
        "",
        f"- made by: `{command}`, seed {config.seed}",
        f"- agent: {_agent_words(config.agent)}; strategy {config.strategy.label}, population "
        f"{config.strategy.popsize}, lr {_lr_words(config.strategy)}, sigma {config.strategy.sigma}",
        f"- task: {config.task.name}, trained on {', '.join(config.task.make().train_variants)}",
        f"- settings: {settings}",
        f"- budget: {len(h['generation'])} generations, {int(h['env_steps'].sum()):,} env steps, "
        f"{h['wall_time'].sum() / 3600:.1f} h of wall time on {machine}",
    ]
    if info:
        sel = info["selection"]
        lines.append(f"- chosen: the search mean after generation {info['generation']}, the best of "
                     f"{len(sel['scores'])} stored means on {sel['episodes_per_variant']} selection lifetimes per "
                     f"training variant (episodes from {sel['first_episode']}, apart from the test lifetimes)")
    if curve:
        lines += ["", "## Training curve", "", f"![training curve]({curve})"]
    if info:
        scores = info["selection"]["scores"]
        lines += ["", "## Selection", "", "| after generation | selection fitness |", "| ---: | ---: |"]
        lines += [f"| {g} | {s:.1f}{' (chosen)' if int(g) == info['generation'] else ''} |" for g, s in scores.items()]
    n = len(results[0].fitness) if results else 0
    paper = paper or {}
    lines += ["", "## Test table", "",
              f"| variant | seen | mean ± std ({n} lifetimes) | solved |" + (" paper |" if paper else ""),
              "| --- | --- | ---: | --- |" + (" ---: |" if paper else "")]
    for r in results:
        row = "| {} | {} | {} | {} |".format(r.variant, r.seen, *r.cells())
        if paper:
            row += " {} ± {} |".format(*paper[r.variant]) if r.variant in paper else " - |"
        lines.append(row)
    solved_at = results[0].solved_at if results else 0
    lines += ["", f"Each lifetime starts from {lifetime_start(config.agent, config.task.make())} (test episodes 0 to {n - 1}). "
              f"{seen_note(results)} solved: mean fitness >= {solved_at:g}. fitness: "
              f"{FITNESS_UNITS.get(config.task.name, 'the summed env reward')}."
              + (" paper: Najarro & Risi 2020, Table 1 (100 lifetimes)." if paper else "")
              + (f" {legend}" if (legend := failed_legend(results)) else "")]
    lines += ["", f"Reproduce: `spikehebb evaluate {Path(path).as_posix()} --episodes {n}`."]
    return "\n".join(lines) + "\n"


def _agent_words(agent) -> str:
    """``hebbian, rule ABCD_lr`` (with ``, coefficient rows mirror`` for tied rows), ``static, no rule``."""
    words = f"{agent.kind}, " + (f"rule {agent.rule}" if agent.rule else "no rule")
    rows = getattr(agent, "coefficient_rows", "per_synapse")
    return words + (f", coefficient rows {rows}" if rows != "per_synapse" else "")


def _lr_words(strategy) -> str:
    """The learning rate the run started with: ``0.2``, or ``0.0716 (0.2 x sqrt(64 / 500))`` when
    it was scaled with the population."""
    if strategy.lr_reference_popsize is None:
        return f"{strategy.lr}"
    return f"{strategy.effective_lr:.4g} ({strategy.lr} x sqrt({strategy.popsize} / {strategy.lr_reference_popsize}))"


def selection_figure(path: str | Path):
    """The model's training curve (``spikehebb plot``'s) with each stored mean's selection
    fitness marked and the chosen one ringed; a matplotlib Figure."""
    from spikehebb.plots import plot_fitness

    info = model_info(path)
    with RunStore.open(path) as store:
        config = TrainConfig.from_dict(store.config)
        h = store.history()
    fig = plot_fitness(h, Path(path).stem, config.task.name)
    if info:
        ax = fig.axes[0]
        scores = info["selection"]["scores"]
        ax.plot([int(g) for g in scores], list(scores.values()), "o", ms=4, color="k",
                label="selection fitness of the stored means")
        ax.plot([info["generation"]], [scores[str(info["generation"])]], "o", ms=10, mfc="none", color="r",
                label=f"chosen (generation {info['generation']})")
        ax.legend(fontsize=8)
    return fig
