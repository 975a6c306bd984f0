"""Fixtures shared by the strategy tests: every test runs over the whole registry."""

import h5py
import numpy as np
import pytest

from spikehebb.es import STRATEGIES, get_strategy

# Per-strategy settings for the small test problems. The paper's OpenAI-ES lr of 0.2 is tuned
# for its rule coefficients; on a 100-dimensional sphere at popsize 20 it overshoots.
TEST_KWARGS = {
    "openai-es": {"lr": 0.02},
    "cma": {"sigma0": 1.0},
}
# Structural switches on top of the registry, each with the step size used for the test problems.
VARIANTS = {
    "openai-es": ("openai-es", {"lr": 0.02}),
    "openai-es-adam": ("openai-es", {"optimizer": "adam", "lr": 0.05}),
    "cma": ("cma", {"diagonal": False, "sigma0": 1.0}),
    "cma-diagonal": ("cma", {"diagonal": True, "sigma0": 0.5}),
}


@pytest.fixture(params=sorted(STRATEGIES))
def strategy_name(request):
    return request.param


@pytest.fixture(params=sorted(VARIANTS))
def variant(request):
    """(registry name, constructor kwargs) for every strategy and its structural switches."""
    return VARIANTS[request.param]


def make(name, n_params, popsize, seed=0, **kwargs):
    return get_strategy(name, n_params=n_params, popsize=popsize, seed=seed, **{**TEST_KWARGS[name], **kwargs})


def run_generations(strategy, objective, generations):
    """Run ask/expand/tell; return the expanded populations, one (popsize, n) array per generation."""
    populations = []
    for _ in range(generations):
        keys = strategy.ask()
        sampler = strategy.sampler()
        population = np.array([sampler.params(k) for k in keys])
        populations.append(population)
        strategy.tell([objective(x) for x in population])
    return populations


def h5_roundtrip(state, path):
    """Write a nested state dict to HDF5 (groups, datasets) and read it back."""

    def write(group, mapping):
        for key, value in mapping.items():
            if isinstance(value, dict):
                write(group.create_group(key), value)
            else:
                group.create_dataset(key, data=value)

    def read(group):
        return {k: read(v) if isinstance(v, h5py.Group) else v[()] for k, v in group.items()}

    with h5py.File(path, "w") as f:
        write(f, state)
    with h5py.File(path, "r") as f:
        return read(f)
