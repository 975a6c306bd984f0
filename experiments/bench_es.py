"""Cost of one generation of each strategy at the paper's sizes, without any environment.

One generation (the second of the run) = ask + expand every candidate (as workers would, here one after another in this
process) + tell with random fitness. Sizes: the car (456,640 ABCD_lr coefficients, population
200) and the ant (61,440 coefficients, population 500). Peak memory is tracemalloc's peak above
the memory held before the phase (NumPy reports its buffers to tracemalloc). Also prints what
travels to a worker: a pickled key, a pickled sampler and a pickled parameter vector.

Shared rules (Palm et al. 2021, ``gmm``: :mod:`spikehebb.es.shared_rules`) on the ant only, at
rho = 32 (384 rules) and rho = 8 (1,536 rules); Palm et al. ran out of memory below their ant's
"rho = 32", which their code made 1,920 rules (it divided the 5N coefficients, not the N synapses):
the (N, M) logits are 36 MiB and 144 MiB in float64. ``--strategies`` picks rows and
``--popsize`` shrinks the populations for a quick check that the script runs.

    python experiments/bench_es.py [--sizes car ant] [--seed 0]
    python experiments/bench_es.py --sizes ant --strategies gmm-rho32 gmm-rho8
"""

from __future__ import annotations

import os

# one BLAS thread: the benchmark machine is shared and the strategies are not BLAS-bound
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import pickle
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np

from spikehebb.es import get_strategy

SIZES = {"car": (456_640, 200), "ant": (61_440, 500)}
#: Row name -> (registry name, constructor kwargs, sizes it runs on).
STRATEGIES = {
    "openai-es": ("openai-es", {}, ("car", "ant")),
    "sep-cma": ("cma", {"diagonal": True}, ("car", "ant")),
    # ABCD_lr: 5 coefficients per rule; noise "rule" is StrategyConfig's default
    "gmm-rho32": ("gmm", {"n_fields": 5, "rho": 32}, ("ant",)),
    "gmm-rho8": ("gmm", {"n_fields": 5, "rho": 8}, ("ant",)),
    "gmm-rho32-adam": ("gmm", {"n_fields": 5, "rho": 32, "optimizer": "adam"}, ("ant",)),
    "gmm-rho8-adam": ("gmm", {"n_fields": 5, "rho": 8, "optimizer": "adam"}, ("ant",)),
    "random-rho8": ("gmm", {"n_fields": 5, "rho": 8, "assign": "random"}, ("ant",)),
}


@dataclass
class Args:
    sizes: list[str]
    """which problem sizes to run: car, ant"""
    seed: int
    """strategy seed"""
    strategies: list[str]
    """rows of STRATEGIES to run"""
    popsize: int | None
    """population instead of the paper's (a quick check)"""


def measure(fn):
    """(result, seconds, peak MB above the memory held at the start)."""
    tracemalloc.reset_peak()
    start_mem = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] - start_mem
    return result, seconds, peak / 2**20


def _nbytes(state) -> int:
    """Bytes of array data in a nested state dict (what a checkpoint stores, roughly)."""
    if isinstance(state, dict):
        return sum(_nbytes(v) for v in state.values())
    return np.asarray(state).nbytes


def one_generation(name, kwargs, n_params, popsize, seed):
    rng = np.random.default_rng(seed)
    strategy, t_init, m_init = measure(lambda: get_strategy(
        name, n_params=n_params, popsize=popsize, seed=seed, **kwargs
    ))
    # one generation untimed first, so the timed one is a typical one (cma's diagonal scaling,
    # for one, is the identity until the first tell)
    strategy.ask()
    strategy.tell(rng.standard_normal(popsize))
    keys, t_ask, m_ask = measure(strategy.ask)

    def expand_all():
        sampler = strategy.sampler()
        checksum = 0.0
        for key in keys:
            checksum += float(sampler.params(key)[0])
        return sampler, checksum

    (sampler, _), t_expand, m_expand = measure(expand_all)
    params = sampler.params(keys[1])
    sizes = {
        "key": len(pickle.dumps(keys[1])),
        "sampler": len(pickle.dumps(sampler)),
        "vector": len(pickle.dumps(params)),
    }
    del sampler, params
    fitness = rng.standard_normal(popsize)
    _, t_tell, m_tell = measure(lambda: strategy.tell(fitness))
    sizes["state"] = _nbytes(strategy.state_dict())
    return {
        "init": (t_init, m_init),
        "ask": (t_ask, m_ask),
        "expand": (t_expand, m_expand),
        "tell": (t_tell, m_tell),
        "sizes": sizes,
    }


def main(args: Args) -> None:
    tracemalloc.start()
    rows = []
    for size in args.sizes:
        n_params, popsize = SIZES[size]
        popsize = args.popsize or popsize
        for name in args.strategies:
            registry, kwargs, sizes = STRATEGIES[name]
            if size not in sizes:
                continue
            r = one_generation(registry, kwargs, n_params, popsize, args.seed)
            rows.append((size, n_params, popsize, name, r))
            print(f"done {size} {name}", flush=True)

    print()
    print(f"{'problem':<5} {'n_params':>8} {'pop':>4} {'strategy':<14} "
          f"{'ask s':>6} {'expand s':>8} {'tell s':>7} {'total s':>7} "
          f"{'peak MB ask/expand/tell':>24} {'init s':>6}")
    for size, n_params, popsize, name, r in rows:
        total = r["ask"][0] + r["expand"][0] + r["tell"][0]
        peaks = "/".join(f"{r[p][1]:.0f}" for p in ("ask", "expand", "tell"))
        print(f"{size:<5} {n_params:>8} {popsize:>4} {name:<14} "
              f"{r['ask'][0]:>6.2f} {r['expand'][0]:>8.2f} {r['tell'][0]:>7.2f} {total:>7.2f} "
              f"{peaks:>24} {r['init'][0]:>6.2f}")

    print()
    print(f"{'problem':<5} {'strategy':<14} {'key B':>6} {'sampler B':>11} {'vector B':>10} "
          f"{'vector/key':>10} {'pop vectors B':>14} {'pop keys+sampler B':>19} {'state B':>10}")
    for size, n_params, popsize, name, r in rows:
        s = r["sizes"]
        naive = popsize * s["vector"]
        compact = popsize * s["key"] + s["sampler"]
        print(f"{size:<5} {name:<14} {s['key']:>6} {s['sampler']:>11} {s['vector']:>10} "
              f"{s['vector'] / s['key']:>10.0f} {naive:>14} {compact:>19} {s['state']:>10}")


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["car", "ant"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strategies", nargs="+", choices=list(STRATEGIES), default=list(STRATEGIES))
    parser.add_argument("--popsize", type=int, help="population for every size (default: the paper's)")
    return Args(**vars(parser.parse_args()))


if __name__ == "__main__":
    main(parse_args())
