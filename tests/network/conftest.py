"""Shared helpers: cached networks (Brian2 builds cost seconds) and the reference loop."""

import functools

import numpy as np
import pytest

from spikehebb.network import ACTIVATIONS, make_network
from spikehebb.rules import get_rule, reference_update

ANT = (28, 128, 64, 8)


@functools.lru_cache(maxsize=None)
def cached_network(backend, rule, population, dtype, sizes=ANT, activation="tanh", **kwargs):
    return make_network(sizes, rule, population, backend=backend, dtype=dtype, activation=activation, **kwargs)


@pytest.fixture
def network():
    """network(backend, rule, population, dtype, sizes=ANT, activation="tanh", **kwargs), cached."""
    return cached_network


@pytest.fixture
def lifetime():
    """lifetime(sizes, rule, population, n_steps, seed) -> (coefficients, weights, inputs)."""
    return random_lifetime


@pytest.fixture
def reference():
    """reference(coefficients, weights, inputs, rule, activation) -> (outputs, weights, rates)."""
    return reference_lifetime


def random_lifetime(sizes, rule, population, n_steps, seed):
    """Coefficients N(0, 0.005) (eta U[-1, 1]; N(0, 0.0025) without eta; D at half that, D_out at a quarter), weights U[-0.1, 0.1], inputs N(0, 1): (coefficients, weights, inputs)."""
    rng = np.random.default_rng(seed)
    spec = get_rule(rule)
    # Rules without eta get half the scale so every rule moves the weights by a similar amount
    # (mean |eta| is 0.5): large enough to test the rule, small enough that float32 rounding,
    # which grows with the weights, stays below the float32 tolerance.
    scale = 0.005 if spec.has_eta else 0.0025
    coefficients = [rng.normal(0, scale, (population, a, b, spec.k)) for a, b in zip(sizes[:-1], sizes[1:])]
    if "D" in spec.fields:  # the drift D moves weights linearly in time: keep it smaller
        for c in coefficients:
            c[..., spec.index("D")] *= 0.5
    if "D_out" in spec.fields:  # the same outside eta: a quarter, as eta*D with mean |eta| 0.5
        for c in coefficients:
            c[..., spec.index("D_out")] *= 0.25
    if spec.has_eta:
        for c in coefficients:
            c[..., spec.index("eta")] = rng.uniform(-1, 1, c.shape[:-1])
    weights = [rng.uniform(-0.1, 0.1, (population, a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    inputs = rng.normal(0, 1, (n_steps, population, sizes[0]))
    return coefficients, weights, inputs


def reference_lifetime(coefficients, weights, inputs, rule, activation="tanh"):
    """The paper's loop in float64: forward pass, then the rule on every layer. Returns
    (per-step outputs (T, P, n_out), final weights, final activations)."""
    act = ACTIVATIONS[activation][1]
    w = [x.astype(np.float64).copy() for x in weights]
    outputs = []
    for x in inputs:
        rates = [x]
        for layer in w:
            rates.append(act(np.einsum("pi,pij->pj", rates[-1], layer)))
        w = [reference_update(w[l], rates[l], rates[l + 1], coefficients[l], rule) for l in range(len(w))]
        outputs.append(rates[-1])
    return np.array(outputs), w, rates
