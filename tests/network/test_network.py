"""PlasticNetwork behaviour: hand-computed steps, the step order, run(), re-arming, bad input."""

import numpy as np
import pytest

from spikehebb.network import make_network, sample_weights
from spikehebb.rules import get_rule

BACKENDS = ["brian2", "numpy"]

# One 2x2 linear layer: inputs (1, 2) and W = [[0.5, -1], [2, 0.25]] give outputs (4.5, -0.5).
X = np.array([[1.0, 2.0]])
W = np.array([[[0.5, -1.0], [2.0, 0.25]]])
# Each coefficient alone at 0.1: dw = eta*(A*o_i*o_j + B*o_i + C*o_j + D), worked out by hand.
HAND_DW = {
    "A": [[0.45, -0.05], [0.90, -0.10]],
    "B": [[0.10, 0.10], [0.20, 0.20]],
    "C": [[0.45, -0.05], [0.45, -0.05]],
    "D": [[0.10, 0.10], [0.10, 0.10]],
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("field", "ABCD")
def test_hand_computed_step(network, backend, field):
    spec = get_rule("ABCD_lr")
    net = network(backend, "ABCD_lr", 1, "float64", (2, 2), "linear")
    for eta in (1.0, 0.5):
        coef = np.zeros((1, 2, 2, 5))
        coef[..., spec.index("eta")] = eta
        coef[..., spec.index(field)] = 0.1
        net.reset([coef], [W])
        np.testing.assert_allclose(net.step(X), [[4.5, -0.5]], atol=1e-15)
        np.testing.assert_allclose(net.weights[0] - W, [np.multiply(HAND_DW[field], eta)], atol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
def test_step_order_forward_then_rule(network, backend):
    """Outputs of a step come from the weights before that step's update, through every layer,
    and the update uses the rates of that same pass (a lagged schedule fails this)."""
    sizes = (2, 2, 2)
    net = network(backend, "ABCD_lr", 1, "float64", sizes, "linear")
    w1, w2 = np.array([[[1.0, 0.0], [0.0, 1.0]]]), np.array([[[2.0, 0.0], [0.0, 3.0]]])
    coef = np.zeros((1, 2, 2, 5))
    coef[..., 0] = 1.0
    coef[..., 1] = 0.01  # A only: dw = 0.01 * o_i * o_j
    net.reset([coef, coef], [w1, w2])
    out = net.step(np.array([[1.0, 2.0]]))
    np.testing.assert_allclose(out, [[2.0, 6.0]])  # layer 1 (1, 2), layer 2 (2, 6)
    rates = net.activations
    np.testing.assert_allclose(rates[1], [[1.0, 2.0]])
    np.testing.assert_allclose(net.weights[0][0], w1[0] + 0.01 * np.outer([1, 2], [1, 2]))
    np.testing.assert_allclose(net.weights[1][0], w2[0] + 0.01 * np.outer([1, 2], [2, 6]))
    # The second step sees the updated weights.
    out2 = net.step(np.array([[1.0, 0.0]]))
    h = np.array([1.0, 0.0]) @ (w1[0] + 0.01 * np.outer([1, 2], [1, 2]))
    np.testing.assert_allclose(net.activations[1][0], h)
    np.testing.assert_allclose(out2[0], h @ (w2[0] + 0.01 * np.outer([1, 2], [2, 6])))


@pytest.mark.parametrize("backend", BACKENDS)
def test_members_are_independent(network, backend):
    """Member p of a batch computes exactly what a population of one computes with its arrays."""
    rng = np.random.default_rng(0)
    sizes, P = (5, 4, 3), 4
    coef = [rng.normal(0, 0.1, (P, a, b, 5)) for a, b in zip(sizes[:-1], sizes[1:])]
    weights = sample_weights(sizes, P, rng=1)
    inputs = rng.normal(size=(10, P, 5))
    batch = network(backend, "ABCD_lr", P, "float64", sizes)
    batch.reset(coef, weights)
    outs = np.array([batch.step(x) for x in inputs])
    single = network(backend, "ABCD_lr", 1, "float64", sizes)
    for p in range(P):
        single.reset([c[p : p + 1] for c in coef], [w[p : p + 1] for w in weights])
        for t, x in enumerate(inputs):
            np.testing.assert_allclose(single.step(x[p : p + 1])[0], outs[t, p], atol=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
def test_reset_rearms_a_fresh_lifetime(network, backend, lifetime):
    coefficients, weights, inputs = lifetime((28, 128, 64, 8), "ABCD_lr", 2, 30, seed=9)
    net = network(backend, "ABCD_lr", 2, "float32")
    results = []
    for _ in range(2):
        net.reset(coefficients, weights)
        np.testing.assert_array_equal(net.activations[-1], 0)
        np.testing.assert_array_equal(net.weights[1], weights[1].astype(np.float32))
        results.append(np.array([net.step(x) for x in inputs]))
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_run_stops_when_callback_returns_none(network, backend, lifetime):
    coefficients, weights, inputs = lifetime((28, 128, 64, 8), "AD", 2, 20, seed=4)
    net = network(backend, "AD", 2, "float64")
    net.reset(coefficients, weights)
    for x in inputs[:10]:
        net.step(x)
    stepped = net.weights
    net.reset(coefficients, weights)
    calls = []

    def feed(t, out):
        calls.append(t)
        return None if t == 9 else inputs[t + 1]

    assert net.run(inputs[0], 100, feed) == 10
    assert calls == list(range(10))
    for a, b in zip(net.weights, stepped):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_callback_errors_propagate_and_network_stays_usable(network, backend):
    net = network(backend, "A", 1, "float64", (2, 2))
    net.reset([np.zeros((1, 2, 2, 1))], [W])

    def bad(t, out):
        raise KeyError("env exploded")

    with pytest.raises(KeyError, match="env exploded"):
        net.run(X, 5, bad)
    with pytest.raises(ValueError, match=r"callback's next inputs must be \(P, n_in\) = \(1, 2\), got \(3,\)"):
        net.run(X, 5, lambda t, out: np.zeros(3))
    assert net.run(X, 3, lambda t, out: X) == 3
    np.testing.assert_allclose(net.activations[-1], np.tanh([[4.5, -0.5]]))


# ------------------------------------------------------------------------------- bad input
def test_unknown_rule_backend_activation_target():
    with pytest.raises(ValueError, match="unknown rule 'ABX'; valid rules are A, AD"):
        make_network((2, 2), "ABX", backend="numpy")
    with pytest.raises(ValueError, match=r"unknown backend 'torch'; expected one of \('brian2', 'numpy'\)"):
        make_network((2, 2), "A", backend="torch")
    with pytest.raises(ValueError, match="unknown activation 'softplus'"):
        make_network((2, 2), "A", backend="numpy", activation="softplus")
    with pytest.raises(ValueError, match=r"activation needs one name or 2"):
        make_network((2, 2, 2), "A", backend="numpy", activation=("tanh",))
    with pytest.raises(ValueError, match="unknown code-generation target 'cuda'"):
        make_network((2, 2), "A", backend="brian2", target="cuda")
    with pytest.raises(ValueError, match="population must be a positive integer, got 0"):
        make_network((2, 2), "A", 0, backend="numpy")
    with pytest.raises(ValueError, match="dtype must be one of"):
        make_network((2, 2), "A", backend="numpy", dtype="float16")
    with pytest.raises(ValueError, match="at least two positive integer layer sizes"):
        make_network((2,), "A", backend="numpy")


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_arrays_are_rejected_with_the_expected_shape(network, backend):
    net = network(backend, "ABCD_lr", 5, "float32")
    coef = [np.zeros(s) for s in net.coefficient_shapes]
    weights = sample_weights(net.sizes, 5)
    bad = list(coef)
    bad[1] = np.zeros((5, 64, 128, 5))
    with pytest.raises(ValueError, match=r"coefficients for layer 2 must be \(P, n_pre, n_post, k\) = \(5, 128, 64, 5\) for rule ABCD_lr \('eta', 'A', 'B', 'C', 'D'\), got \(5, 64, 128, 5\)"):
        net.reset(bad, weights)
    bad[1] = np.zeros((5, 128, 64, 5))
    bad[1][3, 7, 2, 1] = np.nan
    with pytest.raises(ValueError, match="coefficients for layer 2 contain NaN or inf"):
        net.reset(bad, weights)
    with pytest.raises(ValueError, match=r"weights for layer 3 must be \(P, n_pre, n_post\) = \(5, 64, 8\), got \(5, 64, 9\)"):
        net.reset(coef, weights[:2] + [np.zeros((5, 64, 9))])
    with pytest.raises(ValueError, match="coefficients must be a sequence of 3 arrays"):
        net.reset(coef[:2], weights)
    net.reset(coef, weights)
    with pytest.raises(ValueError, match=r"inputs must be \(P, n_in\) = \(5, 28\), got \(5, 27\)"):
        net.step(np.zeros((5, 27)))
    with pytest.raises(ValueError, match="inputs contain NaN or inf"):
        net.step(np.full((5, 28), np.inf))
    with pytest.raises(ValueError, match="n_steps must be a non-negative integer"):
        net.run(np.zeros((5, 28)), -1, lambda t, o: o)


def test_step_before_reset():
    net = make_network((2, 2), "A", backend="numpy")
    with pytest.raises(RuntimeError, match=r"call reset\(coefficients, weights\) first"):
        net.step(X)


def test_sample_weights():
    uni = sample_weights((28, 128, 64, 8), 3, rng=0)
    assert [w.shape for w in uni] == [(3, 28, 128), (3, 128, 64), (3, 64, 8)]
    assert all(np.abs(w).max() <= 0.1 for w in uni) and np.abs(uni[1]).max() > 0.099
    normal = sample_weights((28, 128, 64, 8), 3, init="normal", scale=0.1, rng=0)
    assert abs(normal[1].std() - 0.1) < 0.002
    np.testing.assert_array_equal(sample_weights((3, 2), 2, rng=5)[0], sample_weights((3, 2), 2, rng=5)[0])
    with pytest.raises(ValueError, match=r"unknown weight init 'xavier'; expected one of \('uniform', 'normal', 'lognormal'\)"):
        sample_weights((3, 2), 1, init="xavier")


@pytest.mark.parametrize("backend", BACKENDS)
def test_static_network_keeps_its_weights(network, backend):
    """rule=None: the paper's static-weights baseline, a plain tanh network."""
    rng = np.random.default_rng(2)
    net = network(backend, None, 3, "float64", (5, 4, 3))
    assert not net.plastic and net.coefficient_shapes == []
    weights = sample_weights(net.sizes, 3, rng=3)
    net.reset(None, weights)
    for x in rng.normal(size=(5, 3, 5)):
        out = net.step(x)
    np.testing.assert_allclose(out, np.tanh(np.einsum("pi,pij->pj", np.tanh(np.einsum("pi,pij->pj", x, weights[0])), weights[1])), atol=1e-14)
    for a, b in zip(net.weights, weights):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"a static network \(rule=None\) takes coefficients=None"):
        net.reset([np.zeros((3, 5, 4, 1))], weights)


@pytest.mark.parametrize("backend", BACKENDS)
def test_activations_do_not_alias_the_callers_inputs(network, backend):
    net = network(backend, "A", 1, "float64", (2, 2))
    net.reset([np.zeros((1, 2, 2, 1))], [W])
    x = X.copy()
    net.step(x)
    x[:] = 99.0  # a caller reusing its buffer for the next observation
    np.testing.assert_array_equal(net.activations[0], X)


@pytest.mark.parametrize("backend", ["numpy", "brian2"])
def test_freeze_and_set_weights_in_mid_lifetime(network, backend, lifetime, reference):
    """A frozen step is the forward pass alone; set_weights swaps the weights and nothing else."""
    net = network(backend, "ABCD_lr", 3, "float64")
    coefficients, weights, inputs = lifetime((28, 128, 64, 8), "ABCD_lr", 3, 4, seed=11)
    net.reset(coefficients, weights)
    net.step(inputs[0])
    after_one = net.weights
    net.frozen = True
    try:
        out = net.step(inputs[1])
        assert all(np.array_equal(a, b) for a, b in zip(after_one, net.weights))
        x = inputs[1]
        for w in after_one:  # the forward pass on the unchanged weights
            x = np.tanh(np.einsum("pi,pij->pj", x, w))
        np.testing.assert_allclose(out, x, rtol=1e-12, atol=1e-12)
    finally:
        net.frozen = False
    net.set_weights(weights)
    assert all(np.array_equal(a, b) for a, b in zip(weights, net.weights))
    # From here on the lifetime is the reference's from its first step, with rates kept.
    expected = reference(coefficients, weights, inputs[2:], "ABCD_lr", "tanh")[1]
    net.step(inputs[2])
    net.step(inputs[3])
    for got, want in zip(net.weights, expected):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match=r"weights for layer 1 must be \(P, n_pre, n_post\)"):
        net.set_weights([w[:, :2] for w in weights])


@pytest.mark.parametrize("shape", [(1, 28, 128), (8, 128, 64), (64, 64, 8), (3, 5, 2)])
def test_batched_matvec_sums_in_index_order(shape):
    # The order that makes the NumPy backend's numbers independent of the CPU's BLAS kernel:
    # one multiply and one add per input, in index order, for every output.
    from spikehebb.network.base import batched_matvec

    B, n, m = shape
    rng = np.random.default_rng(n * m)
    x = rng.standard_normal((B, n)).astype(np.float32)
    w = rng.standard_normal((B, n, m)).astype(np.float32)
    sequential = np.zeros((B, m), np.float32)
    for i in range(n):
        sequential = sequential + x[:, i, None] * w[:, i, :]
    got = batched_matvec(x, w)
    assert got.dtype == np.float32 and got.shape == (B, m)
    np.testing.assert_array_equal(got, sequential)
    np.testing.assert_allclose(got, np.matmul(x[:, None, :], w)[:, 0], rtol=1e-4, atol=1e-4)


def test_brian2s_numpy_target_does_not_claim_to_step_a_prefix():
    """Compaction lowers the loop bound compiled code reads at each call; Brian2's numpy target (the
    fallback without a C++ compiler) works on whole arrays and would fail on its next step."""
    cython = make_network((3, 4, 2), "ABCD_lr", 4, backend="brian2", target="cython")
    numpy_target = make_network((3, 4, 2), "ABCD_lr", 4, backend="brian2", target="numpy")
    assert cython.can_compact and not numpy_target.can_compact
    with pytest.raises(NotImplementedError, match="cannot step a prefix"):
        numpy_target.set_active(2)


@pytest.mark.parametrize("kwargs, message", [
    ({"sizes": (2, 2.7, 1)}, r"sizes must list at least two positive integer layer sizes \(units per layer, inputs "
                             r"first\), got \(2, 2.7, 1\)"),
    ({"sizes": "23"}, r"sizes must list at least two positive integer layer sizes \(units per layer, inputs first\), "
                      "got '23'"),
    ({"rule": "ABCD_lr+mod", "eligibility_tau": None}, "eligibility_tau must be a number of steps >= 1, got None"),
])
def test_network_settings_that_were_truncated_or_a_traceback(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_network(**{"sizes": (2, 3), "rule": "ABCD_lr", "backend": "numpy", **kwargs})


def test_complex_numbers_are_refused():
    net = make_network((2, 2), "ABCD", 1, backend="numpy", dtype="float64")
    with pytest.raises(ValueError, match="coefficients for layer 1 must be real numbers, got dtype complex128"):
        net.reset([np.ones((1, 2, 2, 4)) * (1 + 1j)], sample_weights((2, 2), 1, rng=0))
    net.reset([np.zeros((1, 2, 2, 4))], sample_weights((2, 2), 1, rng=0))
    with pytest.raises(ValueError, match="inputs must be real numbers, got complex ones"):
        net.step(np.ones((1, 2)) * (1 + 1j))


def test_sample_weights_refuses_what_it_cannot_draw():
    with pytest.raises(ValueError, match=r"signs must list one \+1/-1 per unit of every layer \(2, 3\)"):
        sample_weights((2, 3), 1, signs=[[1, 0], [1, 1, 1]], rng=0)
    with pytest.raises(ValueError, match="population must be a positive integer, got 0"):
        sample_weights((2, 3), 0, rng=0)
    with pytest.raises(ValueError, match="weight scale must be finite and positive, got inf"):
        sample_weights((2, 3), 1, scale=float("inf"), rng=0)


def test_a_malformed_constraint_spec_is_one_line():
    from spikehebb.network.constraints import make_constraint

    with pytest.raises(ValueError, match="weight constraint 'dale_clip': .*signs"):
        make_constraint("dale_clip")
    with pytest.raises(ValueError, match="weight constraint 'max_abs': .*layer"):
        make_constraint({"name": "max_abs", "layer": [0]})


def test_tied_rows_check_the_genomes_shape():
    """With the authors' rows the agent gathers row i + j of each layer: any array with enough rows
    would do, so it checks the genome's (n_pre, n_post, k) first, as per-synapse rows do."""
    from spikehebb.agents import AgentConfig, make_agent
    from spikehebb.tasks import get_task

    task = get_task("ant")
    agent = make_agent(AgentConfig(rule="ABCD_lr", backend="numpy", coefficient_rows="i_plus_j"), task, 1)
    weights = sample_weights(task.sizes, 1, rng=0)
    transposed = [np.zeros((1, b, a, 5)) for a, b in zip(task.sizes[:-1], task.sizes[1:])]
    with pytest.raises(ValueError, match=r"coefficients must be per layer \(P, n_pre, n_post, k\) with"):
        agent.reset({"coefficients": transposed, "weights": weights})
    agent.reset({"coefficients": [np.zeros((1, a, b, 5)) for a, b in zip(task.sizes[:-1], task.sizes[1:])],
                 "weights": weights})


@pytest.mark.parametrize("sizes", [(3, 0, 2), (3.0, 2), (3,), "32", None, 5, (3, True)])
def test_sample_weights_refuses_sizes_that_are_not_layers(sizes):
    """(3, 0, 2) gave empty layers without a word, (3.0, 2) a bare TypeError from NumPy."""
    with pytest.raises(ValueError, match=r"^sizes must list at least two positive integer layer sizes \(units per "
                                         r"layer, inputs first\), got "):
        sample_weights(sizes, 1, rng=0)
    assert [w.shape for w in sample_weights(np.array([3, 2]), 1, rng=0)] == [(1, 3, 2)]  # NumPy integers are sizes


@pytest.mark.parametrize("name", ["rate_tau", "baseline_tau", "eligibility_tau"])
def test_numpy_numbers_are_time_constants(name):
    """np.int64(5) was "must be a number of steps >= 1, got np.int64(5)"; the value is the same as 5."""
    rule = "ABCD_lr+mod" if name != "rate_tau" else "ABCD_lr"
    for tau in (np.int64(5), np.float32(5.0)):
        net = make_network((2, 3), rule, 1, backend="numpy", **{name: tau})
        assert getattr(net, name) == 5.0 and type(getattr(net, name)) is float
    with pytest.raises(ValueError, match=rf"^{name} must be a number of steps >= 1, got np.float64\(nan\)$"):
        make_network((2, 3), rule, 1, backend="numpy", **{name: np.float64("nan")})


def test_layers_that_are_not_a_sequence_say_what_is_expected():
    """Each was "TypeError: object of type 'NoneType' has no len()" (or of a generator)."""
    net = make_network((2, 3), "ABCD_lr", 1, backend="numpy", dtype="float64")
    w = sample_weights((2, 3), 1, rng=0)
    c = [np.zeros((1, 2, 3, 5))]
    expected = r" must be a sequence of 1 arrays \(one per layer, a list or tuple\) with shapes "
    with pytest.raises(ValueError, match=r"^coefficients" + expected + r"\[\(1, 2, 3, 5\)\], got None$"):
        net.reset(None, w)  # a plastic network's coefficients left out
    for weights, got in [(None, "got None"), ((x for x in w), "got a generator"),
                         (w[0], r"got one array of shape \(1, 2, 3\)"), ({"weights": w}, "got a dict"),
                         (w + w, "got 2 arrays")]:
        with pytest.raises(ValueError, match=r"^weights" + expected + rf"\[\(1, 2, 3\)\], {got}$"):
            net.reset(c, weights)
    net.reset(c, tuple(w))  # a tuple is a sequence
    with pytest.raises(ValueError, match=r"^weights" + expected + r"\[\(1, 2, 3\)\], got a generator$"):
        net.set_weights(x for x in w)
