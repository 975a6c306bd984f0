"""Time RunStore.append_generation: one generation's write (copy, write, fsync, rename).

    python experiments/bench_store.py [--dir DIR]

The state is an OpenAI-ES + Adam checkpoint of the searched size (mean, best and two Adam
moments); the run file lives in DIR (default: a temporary directory under the current one, so
the disk is this repository's). Prints the median milliseconds per append and the file size.
Measured (fsync on, 2 shared cores, --generations 10): 77 ms at 61,440 parameters (popsize 500,
file 4 MB), 0.3 s at 456,640 parameters (popsize 200, file 26 MB).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from spikehebb.store import RunStore


def bench(n_params: int, popsize: int, generations: int, directory: Path) -> dict[str, float]:
    """Median seconds per append_generation with an OpenAI-ES + Adam sized state."""
    rng = np.random.default_rng(0)
    sizes = (n_params // 5, 1)  # one layer of ABCD_lr coefficients with n_params entries
    path = directory / f"bench_{n_params}.h5"
    path.unlink(missing_ok=True)
    times = []
    with RunStore.create(path, {"bench": True}, sizes=sizes, rule="ABCD_lr", popsize=popsize) as store:
        for g in range(generations):
            state = {
                "strategy": "openai-es", "generation": g + 1, "best_params": rng.standard_normal(n_params),
                "strategy_state": {"mean": rng.standard_normal(n_params), "sigma": 0.1, "lr": 0.2,
                                   "optimizer": {"name": "adam", "m": rng.standard_normal(n_params),
                                                 "v": rng.standard_normal(n_params), "t": g}},
            }
            t0 = time.perf_counter()
            store.append_generation(
                g, fitness_raw=rng.standard_normal(popsize), fitness_shaped=rng.standard_normal(popsize),
                sigma=0.1, lr=0.2, wall_time_s=1.0, env_steps=1000, mean=state["strategy_state"]["mean"],
                best_params=state["best_params"], best_fitness=1.0, strategy_state=state,
            )
            times.append(time.perf_counter() - t0)
    return {"seconds": float(np.median(times)), "file_MB": path.stat().st_size / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=".", help="where the temporary run files go (default: here)")
    parser.add_argument("--generations", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        for n, p in ((61_440, 500), (456_640, 200)):
            r = bench(n, p, args.generations, Path(d))
            print(f"n_params {n:>7,}  popsize {p}  append {r['seconds'] * 1e3:7.1f} ms  file {r['file_MB']:.1f} MB")


if __name__ == "__main__":
    main()
