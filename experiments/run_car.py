"""Train a Hebbian car from pixels (or the static baseline), then test it on every variation.

The car sees the 96x96 frame through the paper's CNN (area resize to 84x84, two convolutions with
evolved static weights) and acts with a plastic 648 -> 128 -> 64 -> 3 network whose weights start
random every episode and are divided by their max |w| after every update (Najarro & Risi 2020).

With no flags: a short run (population 16, 10 generations, 200-step lifetimes on the default
track) that finishes in a few minutes on 2 cores, written to runs/, then 5 test lifetimes of
1,000 steps on the default track and on Palm et al.'s four variations (friction x0.5 and x2, a
push to the left and to the right), printed as the paper's Table 1.

    python experiments/run_car.py                      # short run
    python experiments/run_car.py --paper              # Najarro & Risi 2020: population 200, 1,000-step lifetimes
    python experiments/run_car.py --static             # the static-weights baseline
    python experiments/run_car.py --resume runs/X.h5   # continue a killed run
    python experiments/run_car.py --episodes 100 --traces

Everything is stored in the run file (HDF5); see docs/run-file.md.
"""

import os

# One BLAS thread per process, set before NumPy loads (worker processes inherit it): the encoder's
# small matmuls gain nothing from threads, and OpenBLAS threads spinning between calls slowed a
# whole lifetime step (env and network included) about 3x on 2 cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from spikehebb.console import experiment_main

if __name__ == "__main__":
    experiment_main("car", __doc__.split("\n")[0])
