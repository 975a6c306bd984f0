"""The genomic bottleneck on the ant's default body, at equal budget: per-synapse rules against
rho = 128 shared rules (gmm, random and Evolve & Merge assignment), the LSTM and static weights.

Palm, Najarro & Risi 2021 found shared rules at rho = 128 near 0 (555 +- 89 at best) where
per-synapse rules walked; Pedersen & Risi 2021 made shared rules work by merging. The goal: shared
rules at rho >= 128 within 15% of per-synapse rules. Every arm gets the same budget (population,
generations, lifetime length, the default body only) and strategy (OpenAI-ES, the paper's lr scaled
to the population) and runs with each seed; its final search
mean is tested on the default body from fresh random weights. Evolve & Merge's schedule is fitted
to the budget: a merge every ``generations // (merges + 1)`` generations, each removing
``--merge-fraction`` of the rules, so the last merge to M = N / rho lands well before the end.

Resumable: run files and test results live in ``--study-dir``; run the same command again to
continue (finished arms are only read). Prints one table per arm and seed, then the summary.

    python experiments/bottleneck_ant.py                                  # a tiny check (minutes)
    python experiments/bottleneck_ant.py --popsize 64 --generations 60 --max-env-steps 1000 \\
        --seeds 1 2 --episodes 20 --workers 2                              # the study
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

import numpy as np

from spikehebb.cli import check_eval_steps, exit_interrupted
from spikehebb.config import AgentConfig, EvaluatorConfig, StrategyConfig, TaskConfig, TrainConfig
from spikehebb.stopping import STOP_REQUEST
from spikehebb.study import Arm, format_study, run_study
from spikehebb.tasks import get_task

N_SYNAPSES = 28 * 128 + 128 * 64 + 64 * 8
"""The ant network's synapses (12,288)."""
ARM_NAMES = ("per-synapse", "gmm", "random", "merge", "lstm", "static")


@dataclasses.dataclass
class Args:
    popsize: int
    """candidates per generation, every arm"""
    generations: int
    """generations, every arm"""
    max_env_steps: int
    """env steps per training lifetime, burn-in included"""
    seeds: list[int]
    """run seeds (at least 2 for the study)"""
    rho: int
    """synapses per shared rule"""
    merge_fraction: float
    """share of the rules one Evolve & Merge step removes"""
    arms: list[str]
    """which arms to run"""
    episodes: int
    """test lifetimes on the default body, full length"""
    eval_steps: int | None
    """test lifetime length (None: the task's 1,000 steps)"""
    workers: int
    """training worker processes"""
    study_dir: str
    """run files and the result cache"""
    progress: bool
    """progress bars"""


def merge_every(generations: int, fraction: float, rho: int) -> int:
    """Generations between merges so that the merges from N rules to N / rho fit the budget."""
    merges = math.ceil(math.log(rho) / -math.log(1 - fraction))
    return max(1, generations // (merges + 1))


def study_arms(args: Args) -> list[Arm]:
    task = TaskConfig("ant", train_variants=("default",), max_env_steps=args.max_env_steps)
    evaluator = EvaluatorConfig("serial" if args.workers == 1 else "processes", workers=args.workers)
    # the paper's lr scaled to the population (lr * sqrt(popsize / 500)), as the short default:
    # at population 64 it learned several times faster than lr 0.2 (experiments/variance_study.py)
    es = StrategyConfig(popsize=args.popsize, lr_reference_popsize=500)
    kinds = {
        "per-synapse": (AgentConfig(), es),
        "gmm": (AgentConfig(), dataclasses.replace(es, rho=args.rho, assign="gmm")),
        "random": (AgentConfig(), dataclasses.replace(es, rho=args.rho, assign="random")),
        "merge": (AgentConfig(), dataclasses.replace(
            es, rho=args.rho, assign="merge", merge_fraction=args.merge_fraction,
            merge_every=merge_every(args.generations, args.merge_fraction, args.rho))),
        "lstm": (AgentConfig(kind="lstm", rule=None), es),
        "static": (AgentConfig(kind="static", rule=None), es),
    }
    arms = []
    for seed in args.seeds:  # seed-major: a study stopped part-way has every arm at the same seeds
        for name in args.arms:
            agent, strategy = kinds[name]
            config = TrainConfig(
                task=task, agent=agent, strategy=strategy, evaluator=evaluator, generations=args.generations,
                seed=seed, runs_dir=args.study_dir,
                run_name=f"bottleneck_{name}_rho{args.rho}_p{args.popsize}_g{args.generations}_s{seed}",
            )
            arms.append(Arm(f"{name} s{seed}", config))
    return arms


def summary(args: Args, arms: list[Arm], results) -> str:
    """One row per arm: final parameters, budget, test fitness per seed, mean over seeds, ratio to
    per-synapse rules."""
    rows = {}
    for arm, r in zip(arms, results):
        name = arm.name.rsplit(" s", 1)[0]
        rows.setdefault(name, {"params": r.final_parameters, "runs": []})["runs"].append(r)
    base = rows.get("per-synapse")
    base_mean = np.mean([r.mean("default") for r in base["runs"]]) if base else None
    seeds = " ".join(f"{'s' + str(s):>8}" for s in args.seeds)
    lines = [f"{'arm':<12} {'params':>7} {'gens x pop':>10} {'env steps':>11} {'hours':>6} {seeds} {'mean':>8} {'/ per-syn':>9}"]
    for name, row in rows.items():
        runs = row["runs"]
        means = [r.mean("default") for r in runs]
        ratio = f"{np.mean(means) / base_mean:>9.2f}" if base_mean else f"{'-':>9}"
        lines.append(
            f"{name:<12} {row['params']:>7,} {f'{runs[0].generations}x{runs[0].popsize}':>10} "
            f"{sum(r.env_steps for r in runs):>11,} {sum(r.wall_s for r in runs) / 3600:>6.2f} "
            + " ".join(f"{m:>8.1f}" for m in means) + f" {np.mean(means):>8.1f} {ratio}"
        )
    lines.append(
        f"params: searched coefficients of the final agent (shared rules: M * 5 with M = {N_SYNAPSES:,} / {args.rho}; "
        f"gmm also searches {N_SYNAPSES:,} x M assignment logits). Test: mean over {args.episodes} lifetimes on the "
        f"default body per seed. Goal: shared rules within 15% of per-synapse (ratio >= 0.85)."
    )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> Args:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--popsize", type=int, default=4, help="candidates per generation (default: %(default)s, a tiny check)")
    parser.add_argument("--generations", type=int, default=2, help="(default: %(default)s)")
    parser.add_argument("--max-env-steps", type=int, default=60, help="training lifetime incl. 40 burn-in steps (default: %(default)s)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="(default: %(default)s)")
    parser.add_argument("--rho", type=int, default=128, help="synapses per shared rule (default: %(default)s)")
    parser.add_argument("--merge-fraction", type=float, default=0.5, help="Evolve & Merge: rules removed per merge (default: %(default)s)")
    parser.add_argument("--arms", nargs="+", choices=ARM_NAMES, default=list(ARM_NAMES), help="(default: all)")
    parser.add_argument("--episodes", type=int, default=2, help="test lifetimes per run (default: %(default)s)")
    parser.add_argument("--eval-steps", type=int, help="test lifetime length (default: the task's 1,000 steps)")
    parser.add_argument("--workers", type=int, default=1, help="training processes (default: %(default)s)")
    parser.add_argument("--study-dir", default="runs/bottleneck", help="(default: %(default)s)")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    return Args(**vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with STOP_REQUEST:  # the table too: a request after the last arm's tests waits for it
        try:
            if len(args.seeds) < 1 or args.episodes < 1:
                raise ValueError("give at least one seed and one test episode")
            check_eval_steps(args.eval_steps, get_task("ant").episode.burn_in_steps)  # before any training
            arms = study_arms(args)  # every config is checked here (rho must divide 12,288), before a file
            cache = Path(args.study_dir) / f"bottleneck_rho{args.rho}_p{args.popsize}_g{args.generations}.json"
            results = run_study(arms, ["default"], args.episodes, cache, 1, args.eval_steps, args.progress)
        except (ValueError, OSError, RuntimeError) as err:
            sys.exit(f"bottleneck_ant.py: error: {err}")
        except KeyboardInterrupt as err:
            exit_interrupted("bottleneck_ant.py", err)
        print()
        print(format_study(results, ["default"]))
        print()
        print(summary(args, arms, results))


if __name__ == "__main__":
    main()
