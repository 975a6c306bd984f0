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
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from spikehebb.config import TrainConfig
from spikehebb.models import SELECTION_EPISODE0, candidate_means, score_means
from spikehebb.store import RunStore


def load_cache(path: Path, run: Path, episodes: int) -> dict[str, dict[str, float]]:
    """{generation: {body: mean fitness}} from an earlier call on the same run and protocol."""
    if not path.exists():
        return {}
    cached = json.loads(path.read_text())
    ours = {"run": run.name, "episodes": episodes, "first_episode": SELECTION_EPISODE0}
    theirs = {k: cached.get(k) for k in ours}
    if theirs != ours:
        raise ValueError(f"{path} holds scores of another run or protocol ({theirs}, not {ours}); "
                         "pass another --cache or remove it")
    return cached["scores"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runfile", help="a run file (runs/..., models/training/...) or a model")
    parser.add_argument("--episodes", type=int, default=10, help="lifetimes per mean and body (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default: %(default)s)")
    parser.add_argument("--variants", nargs="+", help="bodies (default: all of the task's)")
    parser.add_argument("--cache", help="scores cache, JSON (default: RUN_bodies.json beside the run file)")
    parser.add_argument("--out", help="figure (default: RUN_bodies.png beside the run file)")
    args = parser.parse_args(argv)
    run = Path(args.runfile)
    try:
        if args.episodes < 1 or args.workers < 1:
            raise ValueError(f"--episodes and --workers must be >= 1, got {args.episodes} and {args.workers}")
        with RunStore.open(run) as store:
            config = TrainConfig.from_dict(store.config)
            history = store.history()
        task = config.task.make()
        variants = tuple(args.variants or task.variants)
        cache = Path(args.cache) if args.cache else run.with_name(f"{run.stem}_bodies.json")
        scores = load_cache(cache, run, args.episodes)
        generations, _ = candidate_means(run)
        todo: dict[tuple[str, ...], list[int]] = {}  # the bodies a mean lacks -> those means
        for g in generations:
            missing = tuple(v for v in variants if v not in scores.get(str(g), {}))
            if missing:
                todo.setdefault(missing, []).append(int(g))
        for missing, means in todo.items():
            print(f"scoring {len(means)} stored mean(s) on {', '.join(missing)}, {args.episodes} lifetimes each",
                  flush=True)

            def keep(generation: int, row: np.ndarray, bodies=missing) -> None:  # cached as we go
                scores.setdefault(str(generation), {}).update(zip(bodies, map(float, row)))
                record = {"run": run.name, "episodes": args.episodes, "first_episode": SELECTION_EPISODE0,
                          "scores": scores}
                tmp = cache.with_name(cache.name + ".tmp")
                tmp.write_text(json.dumps(record, indent=1))
                tmp.replace(cache)
                print(f"generation {generation:4d}: " + ", ".join(f"{v} {x:.1f}" for v, x in zip(bodies, row)),
                      flush=True)

            score_means(run, missing, args.episodes, args.workers, generations=means, report=keep)
    except (ValueError, OSError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    table = np.array([[scores[str(g)][v] for v in variants] for g in generations])
    trained = set(task.train_variants)
    print(f"\nmean fitness of each stored search mean over {args.episodes} selection lifetimes per body "
          f"({'; '.join(v + (' trained' if v in trained else ' unseen') for v in variants)})")
    print("generation " + " ".join(f"{v:>17}" for v in variants))
    for g, row in zip(generations, table):
        print(f"{g:10d} " + " ".join(f"{x:17.1f}" for x in row))
    best = table.argmax(axis=0)
    print("best      " + " ".join(f"{f'{table[b, v]:.1f} (gen {generations[b]})':>17}" for v, b in enumerate(best)))

    from spikehebb.plots import DPI, plot_bodies_over_training

    out = Path(args.out) if args.out else run.with_name(f"{run.stem}_bodies.png")
    fig = plot_bodies_over_training(generations, variants, table, task.train_variants, history,
                                    f"{run.stem}: every body over training", config.task.name)
    fig.savefig(out, dpi=DPI)
    print(f"wrote {out} and {cache}")


if __name__ == "__main__":
    sys.exit(main())
