"""Cost of one member-env-step of the spiking network, next to the rate network and the physics.

Times, in one process and interleaved, for the ant's network (28-128-64-8, ABCD_lr, float32):

- ``lif``: the spiking network (:mod:`spikehebb.network.spiking`): S substeps of the LIF on/off
  pairs with event-driven synapses, then the rule on the spike traces (default S: 16 for the
  ant's 16.5 ms control period); ``--dendrites`` adds the two-compartment variant;
- ``lif continuous``: the same with the continuous-time jump of the drive per spike
  (``LIFParams.drive = "continuous"``, how runs before the exact drive ran: 0.76 of the drive at
  16 substeps, so fewer spikes);
- ``lif 250 Hz`` (``--max-rates``): the same with a longer refractory period (maximal rate
  1/t_ref 250 Hz instead of 500): half the spikes, so half the synaptic events;
- ``rate``: the Brian2 rate network (one step per env step), the default backend;
- ``ant physics``: one step of our pybullet Ant (``spikehebb.envs.ant.AntBulletEnv``) with random
  actions, per env step (one body is one member).

Each cell is the median over ``--repeats`` interleaved repetitions of (wall time of ``--steps``
env steps) / (steps * P), in microseconds per member-env-step. Inputs are random observations
scaled like the ant's (N(0, 1)); weights U[-0.1, 0.1] as in the paper (the spiking network's
hidden layers fire at realistic rates: the mean spikes per neuron per env step is printed).
Target (issue 12): lif costs at most one physics step per member-env-step. Usage::

    python experiments/bench_spiking.py [--population 32] [--steps 200] [--repeats 5] [--substeps S]
    python experiments/bench_spiking.py --population 2 --steps 5 --repeats 1     # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from spikehebb.network import make_network, sample_weights
from spikehebb.network.spiking import SpikingPlasticNetwork
from spikehebb.rules import get_rule

SIZES = (28, 128, 64, 8)
RULE = "ABCD_lr"
CONTROL_PERIOD = 0.0165  # s, the ant's env step


def arm(net, population: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    k = get_rule(RULE).k
    coefficients = [rng.normal(0, 0.01, (population, a, b, k)) for a, b in zip(SIZES[:-1], SIZES[1:])]
    net.reset(coefficients, sample_weights(SIZES, population, rng=rng))


def time_network(net, inputs: np.ndarray) -> tuple[float, float]:
    """(seconds for len(inputs) env steps, mean spikes per neuron per env step or NaN)."""
    spikes, neurons = 0, 0
    start = time.perf_counter()
    for u in inputs:
        net.step(u)
    elapsed = time.perf_counter() - start
    if hasattr(net, "spike_counts"):
        counts = net.spike_counts()
        spikes, neurons = sum(int(c.sum()) for c in counts[1:]), sum(c.size for c in counts[1:])
    return elapsed, spikes / neurons if neurons else float("nan")


def time_physics(env, n_steps: int, rng) -> float:
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(n_steps):
        _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 8).astype(np.float32))
        if terminated or truncated:
            env.reset()
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--population", type=int, default=32, help="P members (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=200, help="env steps per timing (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repetitions (default: %(default)s)")
    parser.add_argument("--substeps", type=int, help="substeps per env step (default: 16, the ant's 16.5 ms in ~1 ms)")
    parser.add_argument("--dendrites", action="store_true", help="also time the two-compartment neurons")
    parser.add_argument("--max-rates", type=float, nargs="*", default=[250.0], metavar="HZ",
                        help="also time lif with these maximal rates 1/t_ref (default: %(default)s; the default "
                             "neuron's is 500 Hz): synaptic events grow with the rate, see the error curve of "
                             "experiments/rate_vs_spike.py for what a lower rate costs in fidelity")
    args = parser.parse_args(argv)
    if min(args.population, args.steps, args.repeats) < 1:
        parser.error("--population, --steps and --repeats must be at least 1")
    from spikehebb.envs.ant import AntBulletEnv

    P = args.population
    neuron = {"substeps": args.substeps}
    variants = {"lif": SpikingPlasticNetwork(SIZES, RULE, P, neuron=neuron, control_period=CONTROL_PERIOD)}
    if args.dendrites:
        variants["lif dendrites"] = SpikingPlasticNetwork(SIZES, RULE, P, neuron={**neuron, "dendrites": True},
                                                          control_period=CONTROL_PERIOD)
    # the drive's jump as runs made before LIFParams.drive ran it (0.76 of the drive: fewer spikes)
    variants["lif continuous"] = SpikingPlasticNetwork(SIZES, RULE, P, neuron={**neuron, "drive": "continuous"},
                                                       control_period=CONTROL_PERIOD)
    for rate in args.max_rates:
        variants[f"lif {rate:g} Hz"] = SpikingPlasticNetwork(SIZES, RULE, P, neuron={**neuron, "refractory_ms": 1e3 / rate},
                                                             control_period=CONTROL_PERIOD)
    variants["rate"] = make_network(SIZES, RULE, P)
    env = AntBulletEnv()
    rng = np.random.default_rng(0)
    inputs = rng.normal(0, 1, (args.steps, P, SIZES[0]))
    times = {name: [] for name in [*variants, "ant physics"]}
    rates = {}
    for _ in range(args.repeats):
        for name, net in variants.items():
            arm(net, P)
            seconds, rate = time_network(net, inputs)
            times[name].append(seconds / (args.steps * P) * 1e6)
            rates[name] = rate
        times["ant physics"].append(time_physics(env, args.steps, rng) / args.steps * 1e6)
    env.close()
    physics = statistics.median(times["ant physics"])
    S = variants["lif"].substeps
    print(f"network 28-128-64-8 {RULE} float32, P = {P}, {args.steps} env steps x {args.repeats} repeats, "
          f"lif: {S} substeps of {CONTROL_PERIOD / S * 1e3:.3f} ms")
    print(f"{'variant':<16} {'us / member-env-step':>21} {'x physics':>10} {'spikes/neuron/step':>19}")
    for name, values in times.items():
        median = statistics.median(values)
        spikes = f"{rates[name]:.2f}" if name in rates and rates[name] == rates[name] else ""
        print(f"{name:<16} {median:>21.1f} {median / physics:>10.2f} {spikes:>19}")


if __name__ == "__main__":
    main()
