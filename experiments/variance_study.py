"""Lower-variance search on the ant: the paper's OpenAI-ES against each option, at equal budget.

Arms (every one ABCD_lr, OpenAI-ES with the paper's constants unless said, the default body only
so the training fitness is that body's, 1,000-step lifetimes, ``--popsize`` candidates):

- ``paper``: lr 0.2, sigma 0.1, a fresh lifetime per candidate;
- ``paired``: common random numbers (``--paired-seeds``): the members of a mirrored pair share
  initial weights and env starts;
- ``scaled lr``: lr 0.2 * sqrt(popsize / 500) (``--scale-lr 500``): the update's noise per
  coefficient at population ``--popsize`` equals the paper's at 500;
- ``paired + scaled``: both.

Each arm runs ``--seeds`` seeds for ``--generations`` generations (the same for every arm, so
the budgets are equal up to how long lifetimes last; the table prints each arm's env steps). It
reports the env steps until the population's mean fitness first reaches 100 and 500 (the
median over seeds; "-" where a seed never did), the final search mean's test fitness on the
default body (``--episodes`` lifetimes, mean over seeds of each seed's mean) and a plot of the
population mean against env steps. The study is resumable: run the same command again after a
kill and it continues (run files and test results under ``--dir``).

    python experiments/variance_study.py [--popsize 64] [--generations 60] [--seeds 3] [--workers 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from spikehebb.cli import exit_interrupted
from spikehebb.config import EvaluatorConfig, StrategyConfig, TaskConfig, TrainConfig
from spikehebb.stopping import STOP_REQUEST
from spikehebb.study import Arm, across_seeds_std, run_study

#: arm name -> StrategyConfig fields beyond the paper's.
ARMS = {
    "paper": {},
    "paired": {"paired_seeds": True},
    "scaled lr": {"lr_reference_popsize": 500},
    "paired + scaled": {"paired_seeds": True, "lr_reference_popsize": 500},
}
THRESHOLDS = (100, 500)


def arms(args) -> list[Arm]:
    out = []
    # Seed-major: a study stopped part-way has every arm at the same seeds to compare.
    for seed in range(args.seeds):
        for name, fields in ARMS.items():
            config = TrainConfig(
                task=TaskConfig("ant", ("default",), 1000),
                strategy=StrategyConfig(popsize=args.popsize, **fields),
                evaluator=EvaluatorConfig(workers=args.workers),
                generations=args.generations, seed=seed, runs_dir=str(args.dir),
                run_name=f"{name.replace(' + ', '_').replace(' ', '_')}_s{seed}",
            )
            out.append(Arm(f"{name} s{seed}", config))
    return out


def steps_to(history: dict, threshold: float) -> int | None:
    """Cumulative env steps at the end of the first generation whose mean fitness reaches ``threshold``."""
    reached = np.flatnonzero(history["fitness_mean"] >= threshold)
    return None if not reached.size else int(np.cumsum(history["env_steps"])[reached[0]])


def markdown_table(args, results) -> str:
    """docs/results.md's variance-study table: per arm its lr, seeds, env steps per run, the env steps at which the
    population mean first reached 100 and 500 (per seed), the test of the final mean per seed (mean ± std
    over the lifetimes) and the mean over seeds."""
    lines = ["| arm | lr | seeds | env steps per run | population mean reached 100 at (per seed) | ... 500 at "
             f"| test of the final mean per seed ({args.episodes} lifetimes each) | mean over seeds |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in ARMS:
        rows = [r for r in results if r.name.rsplit(" s", 1)[0] == name]
        if not rows:
            continue
        seeds = ", ".join(r.name.rsplit(" s", 1)[1] for r in rows)
        reach = [" / ".join("-" if (t := steps_to(r.history, level)) is None else f"{t / 1e6:.2f} M" for r in rows)
                 for level in THRESHOLDS]
        tests = " / ".join(f"{r.mean('default'):.0f} ± {r.std('default'):.0f}" for r in rows)
        mean = np.mean([r.mean("default") for r in rows])
        steps = np.mean([r.env_steps for r in rows]) / 1e6
        lr = f"0.2 x sqrt(P/{ARMS[name]['lr_reference_popsize']})" if "lr_reference_popsize" in ARMS[name] else "0.2"
        lines.append(f"| {name} | {lr} | {seeds} | {steps:.2f} M | {reach[0]} | {reach[1]} | {tests} | {mean:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--popsize", type=int, default=64)
    parser.add_argument("--generations", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=20, help="test lifetimes of each final mean")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=Path("runs/variance_study"))
    args = parser.parse_args()
    with STOP_REQUEST:  # the outputs too: a request after the last arm's tests waits for them
        try:
            for name in ("seeds", "episodes"):
                if getattr(args, name) < 1:
                    raise ValueError(f"--{name} must be at least 1, got {getattr(args, name)}")
            results = run_study(arms(args), ["default"], args.episodes, args.dir / "tests.json", args.workers)
        except (ValueError, OSError, RuntimeError) as err:
            parser.exit(2, f"{parser.prog}: error: {err}\n")
        except KeyboardInterrupt as err:
            exit_interrupted(parser.prog, err)
        write_outputs(args, results)


def write_outputs(args: argparse.Namespace, results) -> None:
    """The table (printed and to table.md) and the learning curves (variance_study.png)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    print(f"population {args.popsize}, {args.generations} generations, {args.seeds} seeds, default body, "
          f"test: {args.episodes} lifetimes of the final mean")
    print(f"{'arm':<18} {'env steps (mean)':>17} " + " ".join(f"{f'to {t}':>12}" for t in THRESHOLDS)
          + f" {'test default':>14}")
    for colour, name in enumerate(ARMS):
        rows = [r for r in results if r.name.rsplit(" s", 1)[0] == name]
        histories = [r.history for r in rows]
        for k, h in enumerate(histories):
            ax.plot(np.cumsum(h["env_steps"]) / 1e6, h["fitness_mean"], color=f"C{colour}", alpha=0.7,
                    label=name if k == 0 else None)
        cells = []
        for t in THRESHOLDS:
            steps = [steps_to(h, t) for h in histories]
            reached = [s for s in steps if s is not None]
            cells.append(f"{np.median(reached) / 1e6:.2f} M ({len(reached)}/{len(steps)})" if reached else "-")
        means = [r.mean("default") for r in rows]
        print(f"{name:<18} {np.mean([r.env_steps for r in rows]) / 1e6:>15.2f} M " + " ".join(f"{c:>12}" for c in cells)
              + f" {np.mean(means):>7.0f} ± {across_seeds_std(means):<5.0f}")
    table = markdown_table(args, results)
    print(table)
    (args.dir / "table.md").write_text(table + "\n")
    ax.set_xlabel("env steps (millions)")
    ax.set_ylabel("population mean fitness\n(summed progress; 100 = 1.65 m)")
    ax.legend()
    fig.tight_layout()
    out = args.dir / "variance_study.png"
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
