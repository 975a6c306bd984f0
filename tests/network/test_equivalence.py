"""Both backends against the reference loop: every rule, P = 1 and 5, float64 and float32."""

import math

import numpy as np
import pytest

from spikehebb.rules import RULES, reference_update


ANT = (28, 128, 64, 8)
N_STEPS = 200
TOLERANCE = {"float64": 1e-10, "float32": 1e-4}


def max_error(got, want):
    """Largest absolute difference, relative to the reference's scale where it exceeds 1."""
    return max(np.abs(g - w).max() / max(1.0, np.abs(w).max()) for g, w in zip(got, want))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("population", [1, 5])
@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("backend", ["brian2", "numpy"])
def test_backend_matches_reference(network, lifetime, reference, backend, rule, population, dtype):
    coefficients, weights, inputs = lifetime(ANT, rule, population, N_STEPS, seed=population)
    ref_outputs, ref_weights, ref_rates = reference(coefficients, weights, inputs, rule)
    # The rule must move the weights well beyond their initial range U[-0.1, 0.1] for the
    # comparison to mean something.
    assert max(np.abs(a - b).max() for a, b in zip(ref_weights, weights)) > 0.25

    net = network(backend, rule, population, dtype)
    net.reset(coefficients, weights)
    outputs = np.array([net.step(x) for x in inputs])
    tol = TOLERANCE[dtype]
    assert outputs.dtype == np.dtype(dtype)
    assert max_error(net.weights, ref_weights) < tol
    assert max_error(net.activations, ref_rates) < tol
    assert max_error(outputs, ref_outputs) < tol

    # The closed loop gives the same numbers as step(); the same compiled code runs in both.
    stepped = [w.copy() for w in net.weights]
    net.reset(coefficients, weights)
    seen = []

    def feed(t, out):
        seen.append(out)
        return inputs[t + 1] if t + 1 < N_STEPS else None

    assert net.run(inputs[0], N_STEPS, feed) == N_STEPS
    np.testing.assert_array_equal(np.array(seen), outputs)
    for a, b in zip(net.weights, stepped):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("activation", ["linear", "sigmoid", "relu"])
def test_other_activations(network, lifetime, reference, activation):
    sizes = (6, 5, 4)
    coefficients, weights, inputs = lifetime(sizes, "ABCD_lr", 3, 50, seed=7)
    _, ref_weights, ref_rates = reference(coefficients, weights, inputs, "ABCD_lr", activation)
    for backend in ("brian2", "numpy"):
        net = network(backend, "ABCD_lr", 3, "float64", sizes, activation)
        net.reset(coefficients, weights)
        for x in inputs:
            net.step(x)
        assert max_error(net.weights, ref_weights) < 1e-10, backend
        assert max_error(net.activations, ref_rates) < 1e-10, backend


def test_per_layer_activation(network, lifetime):
    """The car's network: tanh hidden layers, raw (linear) last layer seen by the rule."""
    sizes = (10, 8, 6, 3)
    coefficients, weights, inputs = lifetime(sizes, "ABCD_lr", 2, 30, seed=3)
    net = network("brian2", "ABCD_lr", 2, "float64", sizes, ("tanh", "tanh", "linear"))
    net.reset(coefficients, weights)
    for x in inputs:
        out = net.step(x)
    rates = net.activations
    np.testing.assert_allclose(out, np.einsum("pi,pij->pj", rates[2], _weights_before_last_update(net, rates, coefficients)), atol=1e-12)


def _weights_before_last_update(net, rates, coefficients):
    """Undo the last rule step on the last layer (ABCD_lr) to recover the forward-pass weights."""
    c = coefficients[-1]
    o_i, o_j = rates[-2][:, :, None], rates[-1][:, None, :]
    dw = c[..., 0] * (c[..., 1] * o_i * o_j + c[..., 2] * o_i + c[..., 3] * o_j + c[..., 4])
    return net.weights[-1] - dw


def test_brian2_numpy_target_matches_reference(network, lifetime, reference):
    coefficients, weights, inputs = lifetime(ANT, "ABCD_lr", 2, 20, seed=11)
    _, ref_weights, _ = reference(coefficients, weights, inputs, "ABCD_lr")
    net = network("brian2", "ABCD_lr", 2, "float64", target="numpy")
    assert net.target == "numpy"
    net.reset(coefficients, weights)
    net.run(inputs[0], 20, lambda t, out: inputs[min(t + 1, 19)])
    assert max_error(net.weights, ref_weights) < 1e-10


@pytest.mark.parametrize("rule", ["AD_lr", "ABCD_lr_D_out", "ABCD_lr_D_in_and_out"])
def test_unfolded_eta_matches_reference(network, lifetime, reference, rule):
    """eta stored apart: ``w += eta * (...)`` over the eta-scaled terms, the authors' code's
    drift D_out outside it."""
    coefficients, weights, inputs = lifetime(ANT, rule, 2, 50, seed=5)
    _, ref_weights, _ = reference(coefficients, weights, inputs, rule)
    net = network("brian2", rule, 2, "float64", fold_eta=False)
    net.reset(coefficients, weights)
    for x in inputs:
        net.step(x)
    assert max_error(net.weights, ref_weights) < 1e-10


@pytest.mark.parametrize("rule", ["ABCD_lr_D_out+mod", "ABCD_lr_D_in_and_out+mod"])
@pytest.mark.parametrize("backend, fold_eta", [("numpy", None), ("brian2", True), ("brian2", False)],
                         ids=["numpy", "brian2-folded", "brian2-eta-apart"])
def test_three_factor_drift_outside_eta_matches_reference(network, lifetime, rule, backend, fold_eta):
    """The three-factor version of the authors' code's variants: dw_local (the rule's terms, the
    unscaled D_out included) feeds the eligibility trace, the modulator gates it; every backend
    against reference_update with the trace, a modulator each step, float64."""
    sizes, population, n_steps, tau = (6, 5, 4), 2, 40, 7.0
    coefficients, weights, inputs = lifetime(sizes, rule, population, n_steps, seed=13)
    modulators = np.random.default_rng(14).normal(0, 1, (n_steps, population))
    options = {} if fold_eta is None else {"fold_eta": fold_eta}
    net = network(backend, rule, population, "float64", sizes, eligibility_tau=tau, **options)
    net.reset(coefficients, weights)
    w = [x.copy() for x in weights]
    state = [{"elig": np.zeros_like(x)} for x in weights]
    for x, m in zip(inputs, modulators):
        net.step(x, m)
        rates = [x]
        for layer in w:
            rates.append(np.tanh(np.einsum("pi,pij->pj", rates[-1], layer)))
        w = [reference_update(w[l], rates[l], rates[l + 1], coefficients[l], rule, m, state[l],
                              {"decay_e": math.exp(-1 / tau)}) for l in range(len(w))]
    assert max(np.abs(a - b).max() for a, b in zip(w, weights)) > 0.1  # the rule moved the weights
    assert max_error(net.weights, w) < 1e-10
