"""Both backends against the reference loop: every rule, P = 1 and 5, float64 and float32."""

import numpy as np
import pytest

from spikehebb.rules import RULES


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


def test_unfolded_eta_matches_reference(network, lifetime, reference):
    coefficients, weights, inputs = lifetime(ANT, "AD_lr", 2, 50, seed=5)
    _, ref_weights, _ = reference(coefficients, weights, inputs, "AD_lr")
    net = network("brian2", "AD_lr", 2, "float64", fold_eta=False)
    net.reset(coefficients, weights)
    for x in inputs:
        net.step(x)
    assert max_error(net.weights, ref_weights) < 1e-10
