"""Biology-minded Hebbian ants at equal budget (issue 11; Burns 2021 on Najarro & Risi 2020).

Arms, each trained with the same strategy (OpenAI-ES, the paper's lr scaled to the population),
population, generations, lifetime length and training bodies (so the same env-step budget), over
``--seeds`` seeds. The defaults are the short default run's budget (``run_ant.py`` with no flags:
population 64, 60 generations, 1,000-step lifetimes, the default body only; about 2.7 M env steps
and 25 min of one core per run); ``--train-variants default damage_right`` trains on the
paper's two bodies at twice the cost:

    unconstrained   the paper's ABCD_lr network
    dale-clip       --dale 0.8 --dale-mode clip     (80% excitatory units in every layer, E/I balanced gains)
    dale-squareplus --dale 0.8 --dale-mode squareplus  (the smooth parametrisation, algebraic link)
    positive        --positive                      (on/off inputs, rectified tanh, muscle pairs)
    dale+positive   --dale 0.8 --dale-mode squareplus --positive

The smooth arms use squareplus, not softplus: the same sign-preserving reparametrisation at 1.9x
plain ABCD's network cost where softplus costs 8x (``bench_network.py --biology``), which would
make those arms' runs about twice as long as the others' on this machine.
    modulated       --modulated                     (three-factor rule, the progress term as reward)

Each (arm, seed) is one run file ``OUT/ARM_sSEED.h5``, run seed by seed (every arm at seed 0,
then at seed 1, ...), so a study stopped part-way has all arms at the same seeds. The script is
resumable: a killed run resumes from its last generation, and each finished run's test results,
budget and curve are cached in ``OUT/ARM_sSEED.json``, from which it reports without its run file
(the caches carry a study between machines in kilobytes). Every run's final search mean is tested
on default, damage_right and damage_left, ``--episodes`` lifetimes each, and the script
prints one Markdown table (per arm: mean +- std over seeds of each run's mean test fitness, the
budget in env steps, the seeds) and writes ``OUT/table.md`` and ``OUT/curves.png`` (training
fitness against env steps, mean over seeds). Goal: a Dale+positive ant within 10% of the
unconstrained one.

    python experiments/biology_ant.py --out runs/biology --seeds 3 --workers 2
    python experiments/biology_ant.py --out /tmp/bio --seeds 3 --generations 1 --popsize 4 \\
        --max-env-steps 60 --episodes 2 --backend numpy                     # a smoke test
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

#: Arms: name -> the flags of `spikehebb train` that define it.
ARMS: dict[str, list[str]] = {
    "unconstrained": [],
    "dale-clip": ["--dale", "0.8", "--dale-mode", "clip"],
    "dale-squareplus": ["--dale", "0.8", "--dale-mode", "squareplus"],
    "positive": ["--positive"],
    "dale+positive": ["--dale", "0.8", "--dale-mode", "squareplus", "--positive"],
    "modulated": ["--modulated"],
}
VARIANTS = ("default", "damage_right", "damage_left")
#: Every arm trains with the paper's lr scaled to the population, lr * sqrt(popsize / 500): at
#: population 64 it learned several times faster than lr 0.2 (experiments/variance_study.py).
SCALE_LR = 500


def run_config(arm: str, seed: int, args: argparse.Namespace):
    """The TrainConfig of one (arm, seed), built by the CLI's own flag parser."""
    from spikehebb.cli import add_train_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    flags = ARMS[arm] + [
        "--train-variants", *args.train_variants, "--scale-lr", str(SCALE_LR),
        "--seed", str(seed), "--popsize", str(args.popsize), "--generations", str(args.generations),
        "--max-env-steps", str(args.max_env_steps), "--runs-dir", str(args.out), "--backend", args.backend,
        "--no-progress",
    ]
    if args.workers:
        flags += ["--workers", str(args.workers)]
    config = config_from_args(parser.parse_args(flags))
    return config.replace(run_name=f"{arm}_s{seed}")


def train_one(config, path: Path) -> None:
    from spikehebb.train import train

    if path.exists():
        train(config, resume=path, progress=False)  # returns at once when finished
    else:
        train(config, progress=False)


def cached_result(path: Path, config, episodes: int) -> dict | None:
    """The cached test of the run of ``config`` finished at its generations with ``episodes``
    lifetimes, or None: a cache of other settings (a run of another population under the same
    name, its file since deleted) is not this run's (:func:`spikehebb.study.settings_differences`)."""
    from spikehebb.study import settings_differences

    cache = path.with_suffix(".json")
    if not cache.exists():
        return None
    cached = json.loads(cache.read_text())
    if (cached.get("generations") == config.generations and cached.get("episodes") == episodes
            and "settings" in cached and not settings_differences(config, cached["settings"])):
        return cached
    return None


def test_one(path: Path, config, episodes: int, workers: int) -> dict:
    """Test results of one run, cached next to it: {variant: mean fitness}, env steps, curve."""
    from spikehebb.assess import assess, load_run
    from spikehebb.store import RunStore
    from spikehebb.study import arm_settings

    cache = path.with_suffix(".json")
    with RunStore.open(path) as store:
        history, generations = store.history(), store.generations_completed
    cached = cached_result(path, config, episodes)
    if cached is not None:
        return cached
    run_config, params = load_run(path, "mean")
    results = assess(run_config, params, VARIANTS, episodes, workers)
    out = {
        "generations": generations, "episodes": episodes, "settings": arm_settings(config),
        "test": {r.variant: r.mean for r in results},
        "env_steps": int(history["env_steps"].sum()),
        "curve_steps": np.cumsum(history["env_steps"]).tolist(),
        "curve_fitness": history["fitness_mean"].tolist(),
    }
    cache.write_text(json.dumps(out))
    return out


def table(results: dict[str, list[dict]], seeds: list[int]) -> str:
    from spikehebb.study import across_seeds_std

    lines = ["| arm | budget (env steps per run) | seeds | " + " | ".join(VARIANTS) + " |",
             "| --- | --- | --- | " + " | ".join("---" for _ in VARIANTS) + " |"]
    for arm, runs in results.items():
        cells = []
        for v in VARIANTS:
            values = np.array([r["test"][v] for r in runs])
            cells.append(f"{values.mean():.0f} ± {across_seeds_std(values):.0f}")
        budget = int(np.mean([r["env_steps"] for r in runs]))
        lines.append(f"| {arm} | {budget:,} | {','.join(map(str, seeds))} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from spikehebb.assess import FITNESS_UNITS
    from spikehebb.study import across_seeds_std

    fig, ax = plt.subplots(figsize=(7, 4))
    for arm, runs in results.items():
        n = min(len(r["curve_fitness"]) for r in runs)
        steps = np.mean([r["curve_steps"][:n] for r in runs], axis=0)
        fitness = np.array([r["curve_fitness"][:n] for r in runs])
        mean, std = fitness.mean(axis=0), across_seeds_std(fitness)
        ax.plot(steps, mean, label=arm)
        ax.fill_between(steps, mean - std, mean + std, alpha=0.15)
    ax.set_xlabel("env steps")
    ax.set_ylabel("population mean training fitness")
    ax.set_title("biology-minded Hebbian ants, mean ± sample std over seeds")
    fig.text(0.01, 0.01, f"fitness: {FITNESS_UNITS['ant']}", fontsize=6)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/biology"), help="directory of the run files (default: %(default)s)")
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS), help="arms to run (default: all)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per arm, 0..N-1 (default: %(default)s)")
    parser.add_argument("--popsize", type=int, default=64, help="(default: %(default)s)")
    parser.add_argument("--generations", type=int, default=60, help="(default: %(default)s)")
    parser.add_argument("--train-variants", nargs="+", default=["default"], metavar="BODY",
                        help="training bodies, every arm (default: %(default)s)")
    parser.add_argument("--max-env-steps", type=int, default=1000, help="training lifetime incl. burn-in (default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=20, help="test lifetimes per variant (default: %(default)s)")
    parser.add_argument("--backend", choices=("brian2", "numpy"), default="brian2", help="(default: %(default)s)")
    parser.add_argument("--workers", type=int, help="training workers (default: one per core)")
    args = parser.parse_args(argv)
    for name in ("seeds", "episodes"):
        if getattr(args, name) < 1:
            parser.exit(2, f"{parser.prog}: error: --{name} must be at least 1, got {getattr(args, name)}\n")
    seeds = list(range(args.seeds))
    try:
        configs = {(arm, seed): run_config(arm, seed, args) for seed in seeds for arm in args.arms}
    except ValueError as err:  # every setting is checked before any run starts
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict]] = {arm: [] for arm in args.arms}
    from spikehebb.cli import exit_interrupted
    from spikehebb.stopping import STOP_REQUEST

    with STOP_REQUEST:  # SIGUSR1: stop once the run in flight is trained and tested
        for i, ((arm, seed), config) in enumerate(configs.items()):
            path = args.out / f"{arm}_s{seed}.h5"
            print(f"{arm} seed {seed}: {path}", file=sys.stderr, flush=True)
            cached = cached_result(path, config, args.episodes)
            try:
                if cached is None or path.exists():  # a finished run's file may be gone: its cache reports it
                    train_one(config, path)
                    cached = test_one(path, config, args.episodes, args.workers or 1)
                STOP_REQUEST.stop_after(f"{arm} seed {seed} and its tests", last=i + 1 == len(configs))
            except (ValueError, OSError, RuntimeError) as err:
                parser.exit(2, f"{parser.prog}: error: {err}\n")
            except KeyboardInterrupt as err:
                exit_interrupted(parser.prog, err)
            results[arm].append(cached)
        text = table(results, seeds)  # a request now has no step left to stop before: it waits for these
        print(text)
        (args.out / "table.md").write_text(text + "\n")
        plot(results, args.out / "curves.png")
    print(f"wrote {args.out / 'table.md'} and {args.out / 'curves.png'}", file=sys.stderr)


if __name__ == "__main__":
    main()
