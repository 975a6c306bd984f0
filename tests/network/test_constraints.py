"""Weight constraints after the rule: the car's per-layer ``w / max|w|`` normalisation, both backends."""

import numpy as np
import pytest

from spikehebb.biology import dale_signs
from spikehebb.network import ACTIVATIONS, DaleSmooth, MaxAbsNormalisation, make_network, sample_weights
from spikehebb.rules import reference_update

BACKENDS = ["brian2", "numpy"]
CAR_LIKE = (10, 8, 6, 3)
CAR_ACTIVATION = ("tanh", "tanh", "linear")


def reference_normalised(coefficients, weights, inputs, rule, activation, normalise):
    """The car's loop in float64: forward pass, rule on every layer, then w / max|w| per member
    on the layers named in ``normalise``. Returns (outputs (T, P, n_out), final weights)."""
    w = [x.astype(np.float64).copy() for x in weights]
    outputs = []
    for x in inputs:
        rates = [x]
        for layer, name in zip(w, activation):
            rates.append(ACTIVATIONS[name][1](np.einsum("pi,pij->pj", rates[-1], layer)))
        w = [reference_update(w[l], rates[l], rates[l + 1], coefficients[l], rule) for l in range(len(w))]
        for l, norm in enumerate(normalise):
            if norm == "max_abs":
                for p in range(len(w[l])):
                    m = np.abs(w[l][p]).max()
                    if m > 0:
                        w[l][p] = w[l][p] / m
        outputs.append(rates[-1])
    return np.array(outputs), w


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_computed_step(network, backend):
    """One layer 2 -> 2, linear, rule A (dw = A*o_i*o_j) with A = 1; member 1 is all zeros."""
    net = network(backend, "A", 2, "float64", (2, 2), "linear", constraints=("max_abs",))
    w0 = np.array([[0.1, -0.2], [0.3, 0.05]])
    weights = [np.stack([w0, np.zeros((2, 2))])]
    coefficients = [np.stack([np.ones((2, 2, 1)), np.zeros((2, 2, 1))])]
    net.reset(coefficients, weights)
    out = net.step(np.array([[1.0, 2.0], [1.0, 2.0]]))
    # o = x @ w = [1*0.1 + 2*0.3, 1*(-0.2) + 2*0.05] = [0.7, -0.1]
    np.testing.assert_allclose(out[0], [0.7, -0.1], atol=1e-15)
    # w + x_i*o_j = [[0.1+0.7, -0.2-0.1], [0.3+1.4, 0.05-0.2]] = [[0.8, -0.3], [1.7, -0.15]]; max 1.7
    want = np.array([[0.8, -0.3], [1.7, -0.15]]) / 1.7
    np.testing.assert_allclose(net.weights[0][0], want, atol=1e-15)
    # An all-zero layer is left as it is (no division by zero).
    np.testing.assert_array_equal(net.weights[0][1], np.zeros((2, 2)))


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-10), ("float32", 1e-4)])
@pytest.mark.parametrize("constraints", [("max_abs",), (MaxAbsNormalisation(layers=(1, 2)),)])
@pytest.mark.parametrize("backend", BACKENDS)
def test_matches_reference_and_step_equals_run(network, lifetime, backend, constraints, dtype, tol):
    coefficients, weights, inputs = lifetime(CAR_LIKE, "ABCD_lr", 3, 40, seed=11)
    coefficients = [c * 20 for c in coefficients]  # large updates: the normalisation must bite
    names = ("max_abs",) * 3 if constraints == ("max_abs",) else (None, "max_abs", "max_abs")
    ref_out, ref_w = reference_normalised(coefficients, weights, inputs, "ABCD_lr", CAR_ACTIVATION, names)
    for l, norm in enumerate(names):
        peak = np.abs(ref_w[l]).max(axis=(1, 2))
        if norm:
            np.testing.assert_allclose(peak, 1.0)
        else:
            assert np.all(peak > 1.0)  # un-normalised: the rule grew the weights past 1

    net = network(backend, "ABCD_lr", 3, dtype, CAR_LIKE, CAR_ACTIVATION, constraints=constraints)
    net.reset(coefficients, weights)
    outputs = np.array([net.step(x) for x in inputs])
    for got, want in zip(net.weights, ref_w):
        assert np.abs(got - want).max() < tol
    assert np.abs(outputs - ref_out).max() / max(1.0, np.abs(ref_out).max()) < tol

    stepped = net.weights
    net.reset(coefficients, weights)
    seen = []

    def feed(t, out):
        seen.append(out)
        return inputs[t + 1] if t + 1 < len(inputs) else None

    assert net.run(inputs[0], len(inputs), feed) == len(inputs)
    np.testing.assert_array_equal(np.array(seen), outputs)
    for a, b in zip(net.weights, stepped):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend, fold_eta", [("numpy", None), ("brian2", True), ("brian2", False)],
                         ids=["numpy", "brian2-folded", "brian2-eta-apart"])
def test_dale_latent_and_rule_every_with_the_drift_outside_eta(network, lifetime, backend, fold_eta):
    """The authors' code's ABCD_lr_D_in_and_out (dw = eta*(A*o_i*o_j + B*o_i + C*o_j + D) +
    D_out) on Dale's smooth latent v (w = s * softplus(s * v)), every 2nd step: reference_update
    on v, float64."""
    sizes, rule, population = (6, 5, 4), "ABCD_lr_D_in_and_out", 2
    signs = dale_signs(sizes, 0.7, 0)
    dale = DaleSmooth(signs)
    coefficients, _, inputs = lifetime(sizes, rule, population, 30, seed=21)
    coefficients = [c * 10 for c in coefficients]  # large updates: the link must bend
    weights = sample_weights(sizes, population, rng=3, signs=signs)
    options = {} if fold_eta is None else {"fold_eta": fold_eta}
    net = network(backend, rule, population, "float64", sizes, constraints=(dale,), rule_every=2, **options)
    net.reset(coefficients, weights)
    v = [dale.to_latent(w, l) for l, w in enumerate(weights)]
    w = [dale.from_latent(x, l) for l, x in enumerate(v)]
    for t, x in enumerate(inputs):
        net.step(x)
        rates = [x]
        for layer in w:
            rates.append(np.tanh(np.einsum("pi,pij->pj", rates[-1], layer)))
        if (t + 1) % 2 == 0:
            v = [reference_update(v[l], rates[l], rates[l + 1], coefficients[l], rule) for l in range(len(v))]
            w = [dale.from_latent(x, l) for l, x in enumerate(v)]
        for got, want in zip(net.weights, w):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert all(np.abs(a - b).max() > 0.05 for a, b in zip(w, weights))  # the rule moved every layer
    assert all(np.all(a * s[None, :, None] >= 0) for a, s in zip(net.weights, signs))


def test_backends_agree_in_float64(network, lifetime):
    coefficients, weights, inputs = lifetime(CAR_LIKE, "ABCD_lr", 2, 20, seed=5)
    got = []
    for backend in BACKENDS:
        net = network(backend, "ABCD_lr", 2, "float64", CAR_LIKE, CAR_ACTIVATION, constraints=("max_abs",))
        net.reset(coefficients, weights)
        for x in inputs:
            net.step(x)
        got.append(net.weights)
    for a, b in zip(*got):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "constraints, message",
    [
        (("l2",), "unknown weight constraint 'l2'"),
        (({"name": "max_abs", "layers": [3]},), r"max_abs constraint names layers \(3,\); this network has layers 0..2"),
    ],
)
def test_bad_constraints(constraints, message):
    with pytest.raises(ValueError, match=message):
        make_network(CAR_LIKE, "ABCD_lr", 1, backend="numpy", constraints=constraints)


def test_static_network_refuses_constraints():
    with pytest.raises(ValueError, match="need a rule"):
        make_network(CAR_LIKE, None, 1, backend="numpy", constraints=("max_abs",))


@pytest.mark.parametrize("mode", ["clip", "smooth", "squareplus"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_weights_against_dale_signs_are_refused_at_reset_and_set_weights(network, backend, mode):
    """Unsigned weights used to pass: clipping gave a first forward pass with the wrong signs, a
    latent mode turned each wrong-signed weight into +-1e-6 without a word."""
    from spikehebb.biology import dale_constraint

    sizes = (6, 5, 4)
    signs = dale_signs(sizes, 0.6, 0)
    net = network(backend, "ABCD_lr", 2, "float64", sizes, constraints=(dale_constraint(sizes, 0.6, mode, 0),))
    coefficients = [np.zeros(s) for s in net.coefficient_shapes]
    unsigned = sample_weights(sizes, 2, rng=2)
    wrong = int(np.sum(signs[0].astype(float)[None, :, None] * unsigned[0] < 0))
    assert wrong > 0
    name = f"dale_{mode}"
    message = (rf"^weights for layer 1 break {name}'s signs: {wrong} of 60 have the sign opposite to their "
               r"presynaptic unit's \(draw them with sample_weights\(\.\.\., signs=\.\.\.\)\)$")
    with pytest.raises(ValueError, match=message):
        net.reset(coefficients, unsigned)
    signed = sample_weights(sizes, 2, rng=2, signs=signs)
    signed[1][:, 0] = 0.0  # a silent synapse keeps every sign
    net.reset(coefficients, signed)
    with pytest.raises(ValueError, match=message):
        net.set_weights(unsigned)
    one = [w[:1] for w in signed]
    one[1] = -one[1]  # a slot's re-arm is checked too, layer by layer
    with pytest.raises(ValueError, match=rf"^weights for layer 2 break {name}'s signs: "):
        net.reset([c[:1] for c in coefficients], one, members=[1])
    np.testing.assert_allclose(net.weights[0], signed[0])  # nothing was armed


@pytest.mark.parametrize("latent", ["smooth", "squareplus"])
def test_a_latent_dale_mode_with_a_constraint_on_w_is_refused(latent):
    """The latent mode writes w = from_latent(v) after every update: max_abs's change to w was
    overwritten the next step (biology.check_agent_task refused it for tasks only)."""
    from spikehebb.biology import dale_constraint

    dale = dale_constraint(CAR_LIKE, 0.8, latent, 0)
    for constraints in ([dale, "max_abs"], ["max_abs", dale], [dale, MaxAbsNormalisation(layers=(2,))]):
        layer = 2 if isinstance(constraints[-1], MaxAbsNormalisation) else 0
        with pytest.raises(ValueError, match=rf"^layer {layer}: dale_{latent} sets the weights from its latent v after "
                                             r"every update, so max_abs on w would be undone; drop one \(Dale's clip "
                                             r"mode acts on w\)$"):
            make_network(CAR_LIKE, "ABCD_lr", 1, backend="numpy", constraints=constraints)
    make_network(CAR_LIKE, "ABCD_lr", 1, backend="numpy", constraints=[dale_constraint(CAR_LIKE, 0.8, "clip", 0), "max_abs"])
    make_network(CAR_LIKE, "ABCD_lr", 1, backend="numpy",
                 constraints=[DaleSmooth(dale.signs, layers=(0, 1)), MaxAbsNormalisation(layers=(2,))])


def test_dale_smooth_keeps_small_weights_in_float32_and_the_backends_agree(network):
    """softplus as log(1 + exp(-|x|)) rounded 1 + exp(-|x|) first: in float32 |w| = 1e-6 came back
    as 9.54e-7 from the NumPy backend, while Brian2's code kept it."""
    sizes = (3, 2)
    signs = [np.array([1, -1, 1]), np.array([1, 1])]
    dale = DaleSmooth(signs)
    s = dale.sign(0)
    for magnitude in (1e-6, 1e-5, 3e-4):
        w = s * np.full((1, 3, 2), magnitude)
        back = dale.from_latent(dale.to_latent(w, 0).astype(np.float32), 0)
        np.testing.assert_allclose(back, w, rtol=1e-6)
    got = []
    for backend in BACKENDS:
        net = network(backend, "ABCD_lr", 1, "float32", sizes, constraints=(dale,))
        w = [s * np.array([[[1e-6, 2e-6], [1e-5, 1e-6], [3e-4, 1e-6]]])]
        net.reset([np.zeros((1, 3, 2, 5))], w)  # a zero rule: v stays, w = from_latent(v) after the step
        net.step(np.ones((1, 3)))
        np.testing.assert_allclose(net.weights[0], w[0], rtol=1e-6)
        got.append(net.weights[0])
    np.testing.assert_array_equal(got[0], got[1])
