"""Cost of one member-step (forward pass + rule) of the plastic network, per backend.

Times, in one process and interleaved, the ant's network (28-128-64-8, ABCD_lr) at several
population sizes P:

- ``brian2 cython``: the default backend, the closed loop ``run()`` (one Brian2 ``Network.run``
  per call, a ``network_operation`` feeding inputs each step)
- ``brian2 numpy``: the same equations with Brian2's numpy code-generation target
- ``numpy batched``: the NumPy backend (all P members at once; its products go through
  ``batched_matvec``, an einsum that sums in index order, so its numbers do not depend on the CPU)
- ``numpy BLAS``: the same backend with ``np.matmul`` in place of ``batched_matvec``, as it ran
  before commit ecade26 (faster; its last bits depend on the OpenBLAS kernel the CPU gets)
- ``per-member loop``: one network at a time with the paper's update written out, as the
  original code runs a population

Each cell is the median over ``--repeats`` interleaved repetitions of (wall time of a run of
``n`` steps) / (n * P), in microseconds. The compiled variants run one whole ant lifetime per
timing (960 network steps, the paper's 1,000 env steps less the 40 burn-in steps), so the fixed
cost of one ``run()`` call (printed on its own) is spread as it is in training; the slow
variants run about 4,000 member-steps. Usage::

    python experiments/bench_network.py [--populations 1 16 64 256] [--repeats 5] [--dtype float32]

``--biology`` times instead the biology-minded options (issue 11) in the Brian2 backend, each next
to plain ABCD_lr in the same process, interleaved: Dale clip, Dale smooth, positive rates (the
ant's 56-128-64-16 network: 1.33x the synapses), the three-factor rule, the rule every 4 steps
on rates averaged over 4 steps, and all of Dale smooth + positive + three-factor at once; the
target is at most 1.3x plain ABCD_lr per member-step::

    python experiments/bench_network.py --biology [--populations 16 64] [--repeats 5]

``--lstm`` times Palm et al.'s LSTM agent's step (28-128-64-8, the LSTM as the first layer) with
its products through ``batched_matvec`` (einsum) and through ``np.matmul`` (BLAS), interleaved::

    python experiments/bench_network.py --lstm [--populations 32 64] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from spikehebb.network import make_network, sample_weights
from spikehebb.rules import get_rule

SIZES = (28, 128, 64, 8)
RULE = "ABCD_lr"
#: Network steps of one ant lifetime: 1,000 env steps less the 40 burn-in steps.
LIFETIME = 960
#: Member-steps per timed run of the slow variants (about 0.5 s each).
SLOW_WORK = 4_000


def random_arrays(population: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    k = get_rule(RULE).k
    coefficients = [rng.normal(0, 0.01, (population, a, b, k)) for a, b in zip(SIZES[:-1], SIZES[1:])]
    return coefficients, sample_weights(SIZES, population, rng=rng)


class PerMemberLoop:
    """The original code's shape: each member's network stepped on its own, rule written out."""

    def __init__(self, population: int, dtype):
        self.population, self.dtype = population, dtype

    def reset(self, coefficients, weights):
        self.w = [w.astype(self.dtype) for w in weights]
        self.c = [[c[p].astype(self.dtype) for c in coefficients] for p in range(self.population)]

    def run(self, inputs, n_steps, callback):
        for t in range(n_steps):
            outputs = np.empty((self.population, SIZES[-1]), self.dtype)
            for p in range(self.population):
                rates = [inputs[p]]
                for layer in range(len(SIZES) - 1):
                    rates.append(np.tanh(rates[-1] @ self.w[layer][p]))
                for layer, c in enumerate(self.c[p]):
                    o_i, o_j = rates[layer][:, None], rates[layer + 1][None, :]
                    eta, A, B, C, D = (c[..., f] for f in range(5))
                    self.w[layer][p] += eta * (A * o_i * o_j + B * o_i + C * o_j + D)
                outputs[p] = rates[-1]
            inputs = callback(t, outputs)
        return n_steps


def blas_matvec(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``batched_matvec`` as it was before commit ecade26: ``np.matmul``, through BLAS."""
    return np.matmul(x[:, None, :], w)[:, 0]


class WithBlasMatvec:
    """A NumPy-backend network run with ``np.matmul`` for its products (the BLAS path)."""

    def __init__(self, net):
        self.net = net

    def reset(self, coefficients, weights):
        self.net.reset(coefficients, weights)

    def run(self, inputs, n_steps, callback):
        from unittest import mock

        with mock.patch("spikehebb.network.reference.batched_matvec", blas_matvec):
            return self.net.run(inputs, n_steps, callback)


def make_variants(population: int, dtype: str, with_numpy_target: bool):
    variants = {
        "brian2 cython": (make_network(SIZES, RULE, population, dtype=dtype), "fast"),
        "numpy batched": (make_network(SIZES, RULE, population, backend="numpy", dtype=dtype), "fast"),
        "numpy BLAS": (WithBlasMatvec(make_network(SIZES, RULE, population, backend="numpy", dtype=dtype)), "fast"),
        "per-member loop": (PerMemberLoop(population, np.dtype(dtype)), "slow"),
    }
    if with_numpy_target:
        variants["brian2 numpy"] = (make_network(SIZES, RULE, population, dtype=dtype, target="numpy"), "slow")
    return variants


def biology_variants(population: int, dtype: str) -> dict:
    """Brian2 networks with each biology-minded option (name -> network), plain ABCD_lr first."""
    from spikehebb.biology import dale_constraint
    from spikehebb.rules import three_factor

    positive = (2 * SIZES[0],) + SIZES[1:-1] + (2 * SIZES[-1],)

    def dale(sizes, mode):
        return [dale_constraint(sizes, 0.8, mode, 0)]

    options = {
        "plain ABCD_lr": (SIZES, RULE, {}),
        "dale clip": (SIZES, RULE, dict(constraints=dale(SIZES, "clip"))),
        "dale smooth": (SIZES, RULE, dict(constraints=dale(SIZES, "smooth"))),
        "dale squareplus": (SIZES, RULE, dict(constraints=dale(SIZES, "squareplus"))),
        "positive": (positive, RULE, dict(activation="rtanh")),
        "modulated": (SIZES, three_factor(RULE), dict(baseline_tau=100.0)),
        "rule every 4, avg 4": (SIZES, RULE, dict(rule_every=4, rate_tau=4.0)),
        "dale+positive": (positive, RULE, dict(constraints=dale(positive, "squareplus"), activation="rtanh")),
        "dale+positive+mod": (positive, three_factor(RULE),
                              dict(constraints=dale(positive, "squareplus"), activation="rtanh", baseline_tau=100.0)),
    }
    return {name: make_network(sizes, rule, population, dtype=dtype, **kw) for name, (sizes, rule, kw) in options.items()}


def time_biology(net, population: int, n_steps: int) -> float:
    """Seconds of a closed-loop run of ``n_steps`` with a modulator fed each step."""
    rng = np.random.default_rng(0)
    k = net.rule.k
    coefficients = [rng.normal(0, 0.01, (population, a, b, k)) for a, b in zip(net.sizes[:-1], net.sizes[1:])]
    signs = getattr(net.constraints[0], "signs", None) if net.constraints else None
    net.reset(coefficients, sample_weights(net.sizes, population, rng=rng, signs=signs))
    inputs = np.abs(rng.normal(size=(population, net.sizes[0])))
    modulator = rng.normal(size=population)
    start = time.perf_counter()
    for _ in range(n_steps):
        net.step(inputs, modulator)
    return time.perf_counter() - start


def bench_biology(populations, repeats: int, dtype: str, n_steps: int = LIFETIME) -> None:
    print(f"biology-minded options, brian2 cython, {dtype}; us per member-step (forward + rule + constraints), "
          f"median of {repeats}; ratio to plain ABCD_lr (target <= 1.3x)")
    for population in populations:
        variants = biology_variants(population, dtype)
        for net in variants.values():
            time_biology(net, population, 2)
        costs = {name: [] for name in variants}
        for _ in range(repeats):
            for name, net in variants.items():
                costs[name].append(time_biology(net, population, n_steps) / (n_steps * population) * 1e6)
        med = {name: float(np.median(v)) for name, v in costs.items()}
        base = med["plain ABCD_lr"]
        print(f"P = {population}")
        for name, cost in med.items():
            print(f"  {name:>22} | {cost:8.2f} us | {cost / base:5.2f}x")


def bench_lstm(populations, repeats: int, dtype: str, n_steps: int = 500) -> None:
    from unittest import mock

    from spikehebb.agents.recurrent import LSTMAgent, genome_parts

    print(f"LSTM agent {'-'.join(map(str, SIZES))}, {dtype}; us per member-step, median of {repeats}")
    for population in populations:
        agent = LSTMAgent.build(SIZES, population, dtype=dtype)
        rng = np.random.default_rng(0)
        agent.reset({p.name: [rng.normal(0, 0.1, (population, *s)) for s in p.shapes] for p in genome_parts("lstm", SIZES)})
        inputs = rng.normal(size=(population, SIZES[0])).astype(dtype)

        def cost(steps=n_steps):
            start = time.perf_counter()
            for _ in range(steps):
                agent.step(inputs)
            return (time.perf_counter() - start) / (steps * population) * 1e6

        cost(20)
        einsum, matmul = [], []
        for _ in range(repeats):
            einsum.append(cost())
            with mock.patch("spikehebb.agents.recurrent.batched_matvec", blas_matvec):
                matmul.append(cost())
        e, m = float(np.median(einsum)), float(np.median(matmul))
        print(f"  P = {population:>4}: batched_matvec {e:7.2f} us | np.matmul {m:7.2f} us | {e / m:5.2f}x")


def time_run(net, population: int, n_steps: int) -> float:
    coefficients, weights = random_arrays(population)
    net.reset(coefficients, weights)
    inputs = np.random.default_rng(1).normal(size=(population, SIZES[0]))
    start = time.perf_counter()
    net.run(inputs, n_steps, lambda t, outputs: inputs)
    return time.perf_counter() - start


def run_overhead(net, population: int, repeats: int) -> float:
    """Fixed cost of one run() call: a 1-step run minus one step's cost."""
    one = np.median([time_run(net, population, 1) for _ in range(repeats)])
    many = np.median([time_run(net, population, 201) for _ in range(repeats)])
    return one - (many - one) / 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--populations", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--skip-numpy-target", action="store_true", help="leave out brian2's numpy target")
    parser.add_argument("--biology", action="store_true", help="time the biology-minded options against plain ABCD_lr")
    parser.add_argument("--steps", type=int, default=LIFETIME, help="with --biology: steps per timed run (default: %(default)s)")
    parser.add_argument("--lstm", action="store_true", help="time the LSTM agent's step, einsum against matmul")
    args = parser.parse_args()
    if args.lstm:
        bench_lstm(args.populations, args.repeats, args.dtype)
        return
    if args.biology:
        bench_biology(args.populations, args.repeats, args.dtype, args.steps)
        return

    names = ["brian2 cython"] + ([] if args.skip_numpy_target else ["brian2 numpy"]) + ["numpy batched", "numpy BLAS", "per-member loop"]
    print(f"network {'-'.join(map(str, SIZES))}, rule {RULE}, {args.dtype}; "
          f"us per member-step (forward + rule), median of {args.repeats}")
    header = f"{'P':>5} | " + " | ".join(f"{n:>15}" for n in names) + " | loop/cython | run() overhead"
    print(header)
    print("-" * len(header))
    for population in args.populations:
        variants = make_variants(population, args.dtype, not args.skip_numpy_target)
        for net, _ in variants.values():  # warm up: first-touch of arrays, caches
            time_run(net, population, 2)
        costs = {name: [] for name in variants}
        for _ in range(args.repeats):
            for name, (net, kind) in variants.items():
                n_steps = LIFETIME if kind == "fast" else max(2, SLOW_WORK // population)
                costs[name].append(time_run(net, population, n_steps) / (n_steps * population) * 1e6)
        med = {name: float(np.median(v)) for name, v in costs.items()}
        overhead = run_overhead(variants["brian2 cython"][0], population, args.repeats)
        print(f"{population:>5} | " + " | ".join(f"{med[n]:>15.2f}" for n in names)
              + f" | {med['per-member loop'] / med['brian2 cython']:>10.2f}x | {overhead * 1e3:>8.1f} ms")


if __name__ == "__main__":
    main()
