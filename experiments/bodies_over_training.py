"""Every body over training: each stored search mean of a run, tested on all of the task's bodies.

A run file keeps the search mean after every 10th generation and after the last one. This scores
each of them on ``--episodes`` selection lifetimes per body (full length, fresh random weights,
episode numbers from ``spikehebb.models.SELECTION_EPISODE0``, apart from the test lifetimes that
``spikehebb evaluate`` uses), so that one can see when the training bodies improved and what the
unseen ones did meanwhile: does generalisation to ``damage_left`` rise with training, peak, or
fall? It prints a table (generations down, bodies across) and draws a figure.

Scores are cached in ``--cache`` (JSON, keyed by generation and body; default: beside the run
file); run the command again as the run goes on and only the new means are scored.

    python experiments/bodies_over_training.py models/training/ant_ABCD_lr_paper_pop200_s0.h5 \
        --episodes 10 --out docs/img/paper_bodies_over_training.png

Several run files are drawn side by side on one fitness axis (two runs of the same settings but
one option, compared at equal generations):

    python experiments/bodies_over_training.py runs/paper/A.h5 runs/paper_iplusj/B.h5 --out both.png

``--markdown`` prints one Markdown table instead (for docs/results.md): a row per stored mean of the
first run, and per run its population mean at that generation and its stored mean's score on each
body there ("-" where it has none); the figure then only with ``--out``:

    python experiments/bodies_over_training.py models/training/ant_ABCD_lr_mirror_paper_pop200_s0.h5 \
        models/training/ant_ABCD_lr_paper_pop200_s0.h5 --markdown --labels mirror "per synapse"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from spikehebb.config import TrainConfig
from spikehebb.envs.mirror import body_roles
from spikehebb.lifetimes import is_shipped_model
from spikehebb.models import SELECTION_EPISODE0, candidate_means, score_means
from spikehebb.store import RunStore
from spikehebb.study import arm_settings, save_cache, settings_differences


def cache_key(run: Path, config: TrainConfig, episodes: int) -> dict:
    """What a cache's scores are of: the run (its file name and its settings, so that a run trained
    anew under the same name with others is not given the old scores) and the protocol."""
    return {"run": run.name, "settings": arm_settings(config), "episodes": episodes, "first_episode": SELECTION_EPISODE0}


def load_cache(path: Path, ours: dict, config: TrainConfig) -> dict[str, dict[str, float]]:
    """{generation: {body: mean fitness}} from an earlier call on the same run and protocol
    (``ours``: its :func:`cache_key`; ``config``: the run's settings)."""
    if not path.exists():
        return {}
    cached = json.loads(path.read_text())
    theirs = {k: cached.get(k) for k in ours}
    changed = [k for k in ours if k != "settings" and theirs[k] != ours[k]]
    # a field added since reads as its default, as a resumed run's does
    if not isinstance(theirs["settings"], dict) or settings_differences(config, theirs["settings"]):
        changed.append("settings")
    if changed:
        raise ValueError(f"{path} holds scores of another run or protocol (its {', '.join(changed)} differ); "
                         "pass another --cache or remove it")
    return cached["scores"]


def body_scores(run: Path, variants, episodes: int, workers: int, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """(generations ``(S,)`` of the stored means of ``run``, mean fitness ``(S, V)`` on
    ``variants``), read from ``cache`` where it has them, the rest scored and cached as they come."""
    with RunStore.open(run) as store:
        config = store.run_config()
    key = cache_key(run, config, episodes)
    scores = load_cache(cache, key, config)
    generations, _ = candidate_means(run)
    todo: dict[tuple[str, ...], list[int]] = {}  # the bodies a mean lacks -> those means
    for g in generations:
        missing = tuple(v for v in variants if v not in scores.get(str(g), {}))
        if missing:
            todo.setdefault(missing, []).append(int(g))
    for missing, means in todo.items():
        print(f"{run.name}: scoring {len(means)} stored mean(s) on {', '.join(missing)}, {episodes} lifetimes each",
              flush=True)

        def keep(generation: int, row: np.ndarray, bodies=missing) -> None:  # cached as we go
            scores.setdefault(str(generation), {}).update(zip(bodies, map(float, row)))
            save_cache(cache, {**key, "scores": scores})
            print(f"generation {generation:4d}: " + ", ".join(f"{v} {x:.1f}" for v, x in zip(bodies, row)), flush=True)

        score_means(run, missing, episodes, workers, generations=means, report=keep)
    return generations, np.array([[scores[str(g)][v] for v in variants] for g in generations])


def markdown_table(panels, labels) -> str:
    """One Markdown table and a line per run saying what each body is to it: a row per stored mean of
    the first panel's run; per run (``panels``: name, generations ``(S,)``, variants, scores
    ``(S, V)``, roles, history), its population mean at that generation and its score on each body,
    "-" where it has no stored mean (or no generation) there."""
    variants = panels[0][2]
    head = ["after generation"]
    for label in labels:
        head += [f"{label}: population"] + [f"{label}: `{v}`" for v in variants]
    lines = ["| " + " | ".join(head) + " |", "|" + " ---: |" * len(head)]
    for g in panels[0][1]:
        row = [str(int(g))]
        for _, generations, _, table, _, history in panels:
            means = history["fitness_mean"]
            row.append(f"{means[g - 1]:.0f}" if g <= len(means) else "-")
            at = np.flatnonzero(generations == g)
            row += [f"{x:.0f}" for x in table[at[0]]] if len(at) else ["-"] * len(variants)
        lines.append("| " + " | ".join(row) + " |")
    for label, (_, _, _, _, roles, _) in zip(labels, panels):
        lines.append("")  # a paragraph each
        lines.append(f"{label}: population = the population's mean fitness on the training bodies in that "
                     f"generation; " + ", ".join(f"`{v}` {roles[v]}" for v in variants) + ".")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runfiles", nargs="+", metavar="RUNFILE",
                        help="run files (runs/..., models/training/...) or models; several are drawn side by side")
    parser.add_argument("--episodes", type=int, default=10, help="lifetimes per mean and body (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default: %(default)s)")
    parser.add_argument("--variants", nargs="+", help="bodies (default: all of the task's)")
    parser.add_argument("--cache", help="scores cache of a single run, JSON (default: RUN_bodies.json beside each run file)")
    parser.add_argument("--out", help="figure (default: RUN_bodies.png beside the first run file; with --markdown none)")
    parser.add_argument("--markdown", action="store_true",
                        help="print one Markdown table of every run's scores at the first run's stored means")
    parser.add_argument("--labels", nargs="+", metavar="LABEL", help="the runs' names in the Markdown table (default: "
                                                                      "the run files' stems)")
    args = parser.parse_args(argv)
    runs = [Path(r) for r in args.runfiles]
    panels, tasks = [], set()
    try:
        if args.episodes < 1 or args.workers < 1:
            raise ValueError(f"--episodes and --workers must be >= 1, got {args.episodes} and {args.workers}")
        if args.labels is not None and not args.markdown:
            raise ValueError("--labels names the runs of the Markdown table: add --markdown")
        if args.labels is not None and len(args.labels) != len(runs):
            raise ValueError(f"--labels names each run once: {len(runs)} run file(s), {len(args.labels)} label(s)")
        shipped = [r for r in runs if is_shipped_model(r)]
        if shipped and len(runs) > 1:
            raise ValueError(f"{shipped[0]} is a shipped model, and nothing is written beside one: draw the run it was "
                             f"chosen from (models/training/) beside the others")
        if shipped and (not args.cache or not args.out and not args.markdown):
            raise ValueError(f"{shipped[0]} is a shipped model, and nothing is written beside one: give --cache and "
                             f"--out, or score the run it was chosen from (models/training/)")
        if args.cache and len(runs) > 1:
            raise ValueError("--cache names the cache of one run; with several, each keeps RUN_bodies.json beside it")
        for run in runs:  # every run's task first: runs of different tasks are refused before any scoring
            with RunStore.open(run) as store:
                tasks.add(TrainConfig.from_dict(store.config).task.name)
        if len(tasks) > 1:
            raise ValueError(f"the runs are of different tasks ({', '.join(sorted(tasks))}); draw them apart")
        for run in runs:
            with RunStore.open(run) as store:
                config = store.run_config()
                history = store.history()
            task = config.task.make()
            variants = tuple(args.variants or task.variants)
            cache = Path(args.cache) if args.cache else run.with_name(f"{run.stem}_bodies.json")
            generations, table = body_scores(run, variants, args.episodes, args.workers, cache)
            roles = body_roles(variants, task.train_variants, config.agent.coefficient_rows == "mirror")
            panels.append((run.stem, generations, variants, table, roles, history))
    except (ValueError, OSError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    if args.markdown:
        print(markdown_table(panels, args.labels or [p[0] for p in panels]))
        if not args.out:
            return
    else:
        for name, generations, variants, table, roles, _ in panels:
            print(f"\n{name}: mean fitness of each stored search mean over {args.episodes} selection lifetimes per "
                  f"body ({'; '.join(f'{v} {roles[v]}' for v in variants)})")
            print("generation " + " ".join(f"{v:>17}" for v in variants))
            for g, row in zip(generations, table):
                print(f"{g:10d} " + " ".join(f"{x:17.1f}" for x in row))
            best = np.where(np.isnan(table), -np.inf, table).argmax(axis=0)  # a failed lifetime's NaN never wins
            print("best      " + " ".join(f"{f'{table[b, v]:.1f} (gen {generations[b]})':>17}"
                                         for v, b in enumerate(best)))

    from spikehebb.plots import DPI, plot_bodies_side_by_side

    out = Path(args.out) if args.out else runs[0].with_name(f"{runs[0].stem}_bodies.png")
    titles = [(f"{p[0]}: every body over training",) + p[1:] for p in panels]
    plot_bodies_side_by_side(titles, tasks.pop()).savefig(out, dpi=DPI)
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
