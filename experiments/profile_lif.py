"""Profile of the spiking network against a baseline revision of its module (issue 12).

Builds the ant's network (28-128-64-8, ABCD_lr, the default neuron: 16 substeps per 16.5 ms env
step) twice in one process: ``new`` from the working tree's ``spikehebb/network/spiking.py`` and
``old`` from the same file at git revision ``--baseline`` (default HEAD), then

1. checks that both give bit-identical numbers for the same lifetimes: outputs, spike counts,
   weights, traces and every layer's filtered rates after each env step, in float32 and float64,
   for the default neuron and the variants that run other code (per-substep rule, eta stored
   apart, dendrites, Poisson input, static network), with a partial re-arm and a ``set_weights``
   mid-lifetime;
2. times them interleaved (``--repeats`` rounds of ``--steps`` env steps of each, float32,
   P = ``--population``; two networks of each, built old, new, new, old, as where a network
   lies in memory moves its time by several percent), in microseconds per member-env-step, and
   prints the median of the per-round ratios new/old: under load, ratios taken in one process
   are what to trust;
3. splits the new network's env step per compiled code object (each call timed alone; "other"
   is the rest of the step: the Python loop, inputs and outputs).

Usage::

    python experiments/profile_lif.py [--baseline HEAD] [--population 32] [--steps 100] [--repeats 7]
    python experiments/profile_lif.py --baseline ae068bf      # against issue 12's starting point
    python experiments/profile_lif.py --population 2 --steps 3 --repeats 1 --check-steps 5  # smoke run
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from spikehebb.network import sample_weights
from spikehebb.network.spiking import SpikingPlasticNetwork

ROOT = Path(__file__).resolve().parents[1]
MODULE = "spikehebb/network/spiking.py"
SIZES = (28, 128, 64, 8)
RULE = "ABCD_lr"
CONTROL_PERIOD = 0.0165  # s, the ant's env step

#: Variants of the bit-identity check: (label, network arguments, neuron options).
CHECKS = [
    ("default", {}, {}),
    ("rule every substep", {}, {"rule_every": "substep"}),
    ("eta stored apart, substep", {"fold_eta": False}, {"rule_every": "substep"}),
    ("dendrites", {}, {"dendrites": True}),
    ("poisson input", {}, {"encoding": "poisson", "poisson_seed": 3}),
    ("static (no rule)", {"rule": None}, {}),
]


def baseline_class(revision: str):
    """``SpikingPlasticNetwork`` as the module reads at ``revision``."""
    source = subprocess.run(["git", "show", f"{revision}:{MODULE}"], cwd=ROOT, capture_output=True, text=True)
    if source.returncode != 0:
        raise SystemExit(f"cannot read {MODULE} at {revision!r}: {source.stderr.strip()}")
    name = "spikehebb_lif_baseline"
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader=None))
    sys.modules[name] = module  # dataclasses look their module up
    exec(compile(source.stdout, f"{revision}:{MODULE}", "exec"), module.__dict__)
    return module.SpikingPlasticNetwork


def lifetime(net, population: int, seed: int):
    """(coefficients, weights) of a lifetime as the bench arms it, coefficients a little larger."""
    rng = np.random.default_rng(seed)
    coefficients = [rng.normal(0, 0.02, (population,) + s[1:]) for s in net.coefficient_shapes] if net.plastic else None
    return coefficients, sample_weights(net.sizes, population, rng=rng)


def state(net) -> list[np.ndarray]:
    return [*net.spike_counts(), *net.weights, *net.traces(), *net.activations]


def check(old_class, population: int, n_steps: int) -> bool:
    """Whether old and new agree bit for bit on every variant; prints one line per variant."""
    identical = True
    for dtype in ("float32", "float64"):
        for label, kwargs, neuron in CHECKS:
            kwargs = {"rule": RULE, **kwargs}
            nets = [cls(SIZES, population=population, neuron=neuron, control_period=CONTROL_PERIOD, dtype=dtype,
                        **kwargs) for cls in (old_class, SpikingPlasticNetwork)]
            inputs = np.random.default_rng(1).normal(0, 1, (n_steps, population, SIZES[0]))
            records = []
            for net in nets:
                net.reset(*lifetime(net, population, seed=2))
                record = []
                for t, u in enumerate(inputs):
                    if t == n_steps // 2:  # a new lifetime in one slot, new weights for all
                        coefficients, weights = lifetime(net, 1, seed=4)
                        net.reset(coefficients, weights, members=[population // 2])
                        net.set_weights([0.9 * w for w in net.weights])
                    record.append([net.step(u), *state(net)])
                records.append(record)
            same = all(a.dtype == b.dtype and np.array_equal(a, b) for r0, r1 in zip(*records) for a, b in zip(r0, r1))
            first_half = records[1][: max(1, n_steps // 2)]
            changed = max(np.abs(w1 - w0).max() for w0, w1 in zip(first_half[0][5:8], first_half[-1][5:8]))
            spikes = sum(int(c.sum()) for r in records[1] for c in r[1:5])
            print(f"  {dtype} {label:<26} {'bit-identical' if same else 'DIFFERENT':>14}  "
                  f"({n_steps} env steps, {spikes} spikes, the rule's max |w change| in the first half {changed:.3g})")
            identical &= same
    return identical


def time_steps(net, inputs: np.ndarray) -> float:
    start = time.perf_counter()
    for u in inputs:
        net.step(u)
    return time.perf_counter() - start


def split(net, inputs: np.ndarray) -> dict[str, float]:
    """Seconds per code object over ``inputs``, each call timed alone (by wrapping the network's
    call lists; they are restored after)."""
    names = {id(c.namespace): c.name for o in net._net.sorted_objects for c in o._code_objects}
    seconds = defaultdict(float)

    def timed(call):
        name = names[id(call.args[0])] if hasattr(call, "args") else call.name

        def run():
            start = time.perf_counter()
            call()
            seconds[name] += time.perf_counter() - start
        return run

    lists = ("_substep_calls", "_learn_calls", "_readout_calls")
    saved = {a: getattr(net, a) for a in lists}
    for attr, calls in saved.items():
        setattr(net, attr, [timed(c) for c in calls])
    try:
        for u in inputs:
            net.step(u)
    finally:
        for attr, calls in saved.items():
            setattr(net, attr, calls)
    return dict(seconds)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="HEAD", help="git revision of the old module (default: %(default)s)")
    parser.add_argument("--population", type=int, default=32, help="P members (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=100, help="env steps per timing (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds (default: %(default)s)")
    parser.add_argument("--check-steps", type=int, default=200, help="env steps of the bit-identity check, P = 4 "
                                                                     "(0: skip it; default: %(default)s)")
    args = parser.parse_args(argv)
    if min(args.population, args.steps, args.repeats) < 1 or args.check_steps < 0:
        parser.error("--population, --steps and --repeats must be at least 1, --check-steps at least 0")
    old_class = baseline_class(args.baseline)

    if args.check_steps:
        print(f"bit-identity, old ({args.baseline}) against new (working tree), P = 4:")
        if not check(old_class, 4, args.check_steps):
            raise SystemExit("old and new differ")

    # Two networks of each, built old, new, new, old: where a network lies in memory moves its
    # time by several percent (the first built differs from the last), so each side gets both.
    P = args.population
    classes = {"old": old_class, "new": SpikingPlasticNetwork}
    nets = [(name, classes[name](SIZES, RULE, P, control_period=CONTROL_PERIOD))
            for name in ("old", "new", "new", "old")]
    inputs = np.random.default_rng(0).normal(0, 1, (args.steps, P, SIZES[0]))
    times = {"old": [], "new": []}
    for _ in range(args.repeats):
        round_ = {"old": 0.0, "new": 0.0}
        for name, net in nets:
            net.reset(*lifetime(net, P, seed=0))
            round_[name] += time_steps(net, inputs) / (2 * args.steps * P) * 1e6
        for name, value in round_.items():
            times[name].append(value)
    ratios = [n / o for n, o in zip(times["new"], times["old"])]
    S = nets[0][1].substeps
    print(f"\nnetwork {'-'.join(map(str, SIZES))} {RULE} float32, P = {P}, {S} substeps, "
          f"{args.steps} env steps x {args.repeats} interleaved rounds, two networks of each")
    for name, values in times.items():
        print(f"  {name}: {statistics.median(values):7.1f} us / member-env-step (rounds: "
              f"{' '.join(f'{v:.0f}' for v in values)})")
    print(f"  new / old: {statistics.median(ratios):.3f} (median of rounds; min {min(ratios):.3f}, max {max(ratios):.3f})")

    net = nets[1][1]
    net.reset(*lifetime(net, P, seed=0))
    seconds = split(net, inputs)
    total = statistics.median(times["new"])
    per = {name: s / (args.steps * P) * 1e6 for name, s in seconds.items()}
    per["other"] = total - sum(per.values())
    print(f"\nnew, per code object (us / member-env-step, share of {total:.1f}):")
    for name, value in sorted(per.items(), key=lambda kv: -kv[1]):
        # Brian2 numbers the names of the second network built: spikehebb_lif_synapses_rule_codeobject_1
        short = re.sub(r"(_codeobject)?(_\d+)?$", "", name.removeprefix("spikehebb_lif_"))
        print(f"  {short:<32} {value:7.1f} {value / total:7.1%}")


if __name__ == "__main__":
    main()
