"""Rate versus spike: how closely the spiking network follows the rate network, and what a rule
evolved on rates keeps when it drives spiking neurons.

Three parts, each stored in ``--out`` as soon as it is done (rerunning the same command skips
finished parts and resumes a killed training run from its run file):

1. **Error curve.** The ant's network (28-128-64-8) with the same random weights (U[-w, w],
   ``--weight-scale``) as a static tanh rate network and as the spiking network
   (:mod:`spikehebb.network.spiking`), both fed the same slowly varying inputs (an
   Ornstein-Uhlenbeck process, unit variance, correlation time ``--input-tau`` env steps) for
   ``--steps`` env steps. Error = mean |spiking output - rate output| over outputs and steps (after
   10 warm-up steps), for every substep count S (``--substeps``) and maximal rate 1/t_ref
   (``--max-rates``, Hz). Table ``error.json``, plot ``error.png``.
2. **Transfer.** A rule evolved in the rate network (``--rate-run RUN.h5``, or a run of the given
   budget trained here) tested on ``--episodes`` lifetimes per ant body as it is (rate) and in
   the spiking network (lif, default neuron), on the same lifetimes: fitness kept = lif / rate in %.
3. **Spiking evolution.** The same budget trained directly with ``--neuron lif``; its final mean
   tested like the transferred rule.

Usage (the lead's budget; tiny smoke run below)::

    python experiments/rate_vs_spike.py --out runs/rate_vs_spike --popsize 32 --generations 20 \\
        --max-env-steps 500 --episodes 10
    python experiments/rate_vs_spike.py --out /tmp/rvs --substeps 4 16 --max-rates 500 --steps 30 \\
        --popsize 4 --generations 1 --max-env-steps 50 --episodes 1 --variants default
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from spikehebb.network import make_network, sample_weights
from spikehebb.network.spiking import LIFParams, SpikingPlasticNetwork

SIZES = (28, 128, 64, 8)
CONTROL_PERIOD = 0.0165


def ou_inputs(steps: int, population: int, tau: float, seed: int) -> np.ndarray:
    """(steps, P, 28) Ornstein-Uhlenbeck inputs, unit stationary variance, correlation ``tau`` steps."""
    rng = np.random.default_rng(seed)
    a = np.exp(-1.0 / tau)
    x = np.empty((steps, population, SIZES[0]))
    x[0] = rng.normal(size=x.shape[1:])
    for t in range(1, steps):
        x[t] = a * x[t - 1] + np.sqrt(1 - a * a) * rng.normal(size=x.shape[1:])
    return x


#: How the LIF network runs now: its refractory period (LIFParams.refractory) and the drive's
#: jump per spike (LIFParams.drive). Results cached under another (or none: written before
#: 2026-11-29, when the period was floored, or before the drive was exact) are measured again.
NEURON = {"refractory": LIFParams().refractory, "drive": LIFParams().drive}


def cached(path: Path) -> dict | None:
    """A cached result of this script measured with today's neuron model, else None."""
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    then = {"refractory": data.get("refractory"), "drive": data.get("drive", "continuous")}
    if then != NEURON:
        print(f"{path}: measured with another neuron model ({then}) than today's {NEURON}; measured again",
              file=sys.stderr)
        return None
    return data


def error_curve(args) -> dict:
    """{"S,rate": mean abs error} for every substep count and maximal rate."""
    path = args.out / "error.json"
    done = (cached(path) or {}).get("errors", {})
    P = args.population
    weights = sample_weights(SIZES, P, scale=args.weight_scale, rng=args.seed)
    inputs = ou_inputs(args.steps, P, args.input_tau, args.seed)
    rate = make_network(SIZES, None, P, backend="numpy", dtype="float64")
    rate.reset(None, weights)
    target = np.array([rate.step(u) for u in inputs])
    for S in args.substeps:
        for max_rate in args.max_rates:
            key = f"{S},{max_rate:g}"
            if key in done:
                continue
            net = SpikingPlasticNetwork(SIZES, None, P, control_period=CONTROL_PERIOD, dtype="float64",
                                        neuron={"substeps": S, "refractory_ms": 1e3 / max_rate})
            net.reset(None, weights)
            out = np.array([net.step(u) for u in inputs])
            done[key] = float(np.abs(out - target)[10:].mean())
            path.write_text(json.dumps({**NEURON, "errors": done}, indent=1))
            print(f"error S={S:<3} max rate {max_rate:g} Hz: {done[key]:.4f}", flush=True)
    return done


def plot_error(errors: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    rates = sorted({float(k.split(",")[1]) for k in errors})
    for r in rates:
        points = sorted((int(k.split(",")[0]), v) for k, v in errors.items() if float(k.split(",")[1]) == r)
        ax.plot(*zip(*points), "o-", label=f"max rate {r:g} Hz")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("substeps per env step (16.5 ms)")
    ax.set_ylabel("mean |spiking - rate output|")
    ax.set_title("Spiking vs rate network, same weights")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "error.png", dpi=120)


def trained(args, name: str, agent) -> Path:
    """A run of the study's budget, trained (or resumed) in ``--out``; its path."""
    from spikehebb.config import EvaluatorConfig, StrategyConfig, TaskConfig, TrainConfig
    from spikehebb.train import train

    workers = None if args.evaluator == "serial" else args.workers  # (--workers also sizes the test pool)
    config = TrainConfig(
        task=TaskConfig("ant", max_env_steps=args.max_env_steps), agent=agent,
        strategy=StrategyConfig(popsize=args.popsize), evaluator=EvaluatorConfig(args.evaluator, workers),
        generations=args.generations, seed=args.seed, runs_dir=str(args.out), run_name=name,
    )
    path = args.out / f"{name}.h5"
    if path.exists():
        from spikehebb.store import RunStore

        with RunStore.open(path) as store:
            stored = TrainConfig.from_dict(store.config).agent
        if stored != config.agent:  # e.g. a lif run recorded before the exact drive
            raise ValueError(f"{path} was trained with another agent ({stored.kind}, {stored.options}) than this "
                             f"script's today ({config.agent.kind}, {config.agent.options}); move it away to train again")
    return train(config, resume=str(path) if path.exists() else None, progress=False)


def test_fitness(args, config, params) -> dict:
    from spikehebb.assess import assess

    results = assess(config, params, args.variants, args.episodes, args.workers or 1, args.max_env_steps)
    return {r.variant: r.mean for r in results}


def transfer(args) -> dict:
    import dataclasses

    from spikehebb.agents import AgentConfig
    from spikehebb.assess import load_run

    path = args.out / "transfer.json"
    if (result := cached(path)) is not None:
        return result
    run = Path(args.rate_run) if args.rate_run else trained(args, "rate", AgentConfig())
    config, params = load_run(run)
    lif = dataclasses.replace(config, agent=AgentConfig(**{**config.agent.__dict__, "kind": "lif", "options": None}))
    rate, spiking = test_fitness(args, config, params), test_fitness(args, lif, params)
    result = {**NEURON, "run": str(run), "rate": rate, "lif": spiking,
              "kept_percent": {v: 100 * spiking[v] / rate[v] if rate[v] else float("nan") for v in rate}}
    path.write_text(json.dumps(result, indent=1))
    return result


def spiking_evolution(args) -> dict:
    from spikehebb.agents import AgentConfig
    from spikehebb.assess import load_run
    from spikehebb.store import RunStore

    path = args.out / "spiking.json"
    if (result := cached(path)) is not None:
        return result
    run = trained(args, "lif", AgentConfig(kind="lif"))
    config, params = load_run(run)
    with RunStore.open(run) as store:
        curve = store.history()["fitness_raw"].mean(axis=1).tolist()
    result = {**NEURON, "run": str(run), "test": test_fitness(args, config, params),
              "train_mean_per_generation": curve}
    path.write_text(json.dumps(result, indent=1))
    return result


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/rate_vs_spike"), help="results directory (default: %(default)s)")
    p.add_argument("--substeps", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    p.add_argument("--max-rates", type=float, nargs="+", default=[250, 500, 1000, 2000], help="1/t_ref in Hz")
    p.add_argument("--steps", type=int, default=300, help="env steps of the error curve (default: %(default)s)")
    p.add_argument("--population", type=int, default=8, help="networks averaged in the error curve")
    p.add_argument("--weight-scale", type=float, default=0.3, help="weights U[-w, w] of the error curve")
    p.add_argument("--input-tau", type=float, default=10.0, help="input correlation time in env steps")
    p.add_argument("--rate-run", help="a rate run file whose final mean is transferred (default: train one here)")
    p.add_argument("--popsize", type=int, default=32)
    p.add_argument("--generations", type=int, default=20)
    p.add_argument("--max-env-steps", type=int, default=500)
    p.add_argument("--episodes", type=int, default=10, help="test lifetimes per body")
    p.add_argument("--variants", nargs="+", default=["default", "damage_right", "damage_left"])
    p.add_argument("--evaluator", default="processes", choices=("serial", "processes"))
    p.add_argument("--workers", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip", nargs="*", default=[], choices=("error", "transfer", "evolution"))
    args = p.parse_args(argv)
    if min(args.substeps) < 1 or min(args.max_rates) <= 0 or args.steps <= 10:
        p.error("--substeps >= 1, --max-rates > 0 and --steps > 10 are needed")
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        run_parts(args)
    except (ValueError, OSError, RuntimeError) as err:  # one line: a file or setting to change, said as such
        p.exit(2, f"{p.prog}: error: {err}\n")


def run_parts(args) -> None:
    """The three parts not skipped, each printed as it is done."""
    if "error" not in args.skip:
        errors = error_curve(args)
        plot_error(errors, args.out)
        print("\nmean |spiking - rate| (rows: substeps S, columns: max rate in Hz)")
        rates = sorted({float(k.split(",")[1]) for k in errors})
        print(f"{'S':>4} " + " ".join(f"{r:>8g}" for r in rates))
        for S in sorted({int(k.split(",")[0]) for k in errors}):
            print(f"{S:>4} " + " ".join(f"{errors.get(f'{S},{r:g}', float('nan')):>8.4f}" for r in rates))
    if "transfer" not in args.skip:
        t = transfer(args)
        print("\nrule evolved on rates, tested as rate and as lif (mean fitness):")
        for v in t["rate"]:
            print(f"  {v:<14} rate {t['rate'][v]:>8.1f}  lif {t['lif'][v]:>8.1f}  kept {t['kept_percent'][v]:>6.1f}%")
    if "evolution" not in args.skip:
        e = spiking_evolution(args)
        curve = ", ".join(f"{f:.1f}" for f in e["train_mean_per_generation"])
        print(f"\nevolved as lif: training mean per generation [{curve}]")
        for v, f in e["test"].items():
            print(f"  {v:<14} lif {f:>8.1f}")


if __name__ == "__main__":
    main()
