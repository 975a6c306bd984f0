"""Train a Hebbian ant (or the static baseline), then test it on every morphology.

With no flags: a run that learns within 10 minutes on 2 cores (population 64, 60 generations of
1,000-step lifetimes on the whole body, the paper's OpenAI-ES with its lr scaled to population 64),
written to runs/, then 5 test lifetimes of 1,000 steps on each of the six morphologies, printed as
the paper's Table 1: the whole body walks (solved: mean >= 100), the damaged bodies it never saw
mostly do not.

    python experiments/run_ant.py                      # short run
    python experiments/run_ant.py --paper              # Najarro & Risi 2020: population 500, 300 generations
    python experiments/run_ant.py --static             # the static-weights baseline
    python experiments/run_ant.py --resume runs/X.h5   # continue a killed run
    python experiments/run_ant.py --episodes 100 --traces

Everything is stored in the run file (HDF5); see docs/run-file.md.
"""

from spikehebb.console import experiment_main

if __name__ == "__main__":
    experiment_main("ant", __doc__.split("\n")[0])
