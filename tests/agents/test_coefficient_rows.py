"""The authors' coefficient rows (``coefficient_rows="i_plus_j"``): synapse (i, j) reads row i + j
of its layer, as Najarro & Risi's published code did before its fix of 2020-10-13."""

import numpy as np
import pytest

from spikehebb.agents import AgentConfig, HebbianAgent
from spikehebb.agents.hebbian import distinct_rules
from spikehebb.cli import add_train_arguments, config_from_args

SIZES = (3, 5, 2)


#: Their per-synapse update of a --hebb_rule (hebbian_weights_update.py at commit 6991484), c a
#: heb_coeffs row: ABCD_lr runs hebbian_update_ABCD_lr_D_in; the two variants with D outside lr.
AUTHORS_UPDATE = {
    "ABCD_lr": lambda c, o_i, o_j: c[3] * (c[0] * o_i * o_j + c[1] * o_i + c[2] * o_j + c[4]),
    "ABCD_lr_D_out": lambda c, o_i, o_j: c[3] * (c[0] * o_i * o_j + c[1] * o_i + c[2] * o_j) + c[4],
    "ABCD_lr_D_in_and_out": lambda c, o_i, o_j: c[3] * (c[0] * o_i * o_j + c[1] * o_i + c[2] * o_j + c[4]) + c[5],
}


def authors_lifetime(coefficients, weights, inputs, rule="ABCD_lr"):
    """Their fitness loop for a Bullet env, rule ABCD_lr (their ABCD_lr_D_in) unless told, at
    commit 6991484, in NumPy: forward (tanh layers, the rule seeing tanh of the output), then per
    synapse ``w[:, i][j] += c[3] * (c[0]*o_i*o_j + c[1]*o_i + c[2]*o_j + c[4])`` with
    ``c = heb_coeffs[heb_offset + i + j]`` (:data:`AUTHORS_UPDATE`). Their weights are (n_post,
    n_pre) torch matrices; here (n_pre, n_post). coefficients: their heb_coeffs, (sum of
    n_pre * n_post, k)."""
    weights = [w.copy() for w in weights]
    outputs = []
    for x in inputs:
        o = [x]
        for w in weights:
            o.append(np.tanh(o[-1] @ w))
        outputs.append(o[-1])
        offset = 0
        for l, w in enumerate(weights):
            pre, post = o[l], o[l + 1]
            for i in range(w.shape[0]):
                for j in range(w.shape[1]):
                    c = coefficients[offset + i + j]
                    w[i, j] += AUTHORS_UPDATE[rule](c, pre[i], post[j])
            offset += w.shape[0] * w.shape[1]
    return np.array(outputs), weights


@pytest.mark.parametrize("backend", ["numpy", "brian2"])
def test_i_plus_j_rows_reproduce_the_authors_loop(backend):
    rng = np.random.default_rng(4)
    theirs = rng.normal(0, 0.3, (sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:])), 5))
    # our fields are (eta, A, B, C, D); theirs are (A, B, C, eta, D); our genome is C-order (n_pre, n_post, k)
    ours, offset = [], 0
    for a, b in zip(SIZES[:-1], SIZES[1:]):
        rows = theirs[offset:offset + a * b][:, [3, 0, 1, 2, 4]]
        ours.append(rows.reshape(1, a, b, 5))
        offset += a * b
    weights = [rng.uniform(-0.1, 0.1, (1, a, b)) for a, b in zip(SIZES[:-1], SIZES[1:])]
    inputs = rng.normal(0, 1, (6, SIZES[0]))
    config = AgentConfig(rule="ABCD_lr", backend=backend, dtype="float64", coefficient_rows="i_plus_j")
    agent = HebbianAgent(config, SIZES, "tanh", 1)
    agent.reset({"coefficients": ours, "weights": weights})
    got = np.array([agent.step(x[None])[0] for x in inputs])
    want, want_weights = authors_lifetime(theirs, [w[0] for w in weights], inputs)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    for mine, ref in zip(agent.weights(), want_weights):
        np.testing.assert_allclose(mine[0], ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rule, order", [("ABCD_lr_D_out", [3, 0, 1, 2, 4]), ("ABCD_lr_D_in_and_out", [3, 0, 1, 2, 4, 5])])
def test_the_authors_drift_outside_eta_variants_load_permuted(rule, order):
    """Their --hebb_rule ABCD_lr_D_out, [A, B, C, eta, D_out], and ABCD_lr_D_in_and_out, [A, B, C,
    eta, D_in, D_out], are ours with the fields permuted: the same lifetime as their loop."""
    rng = np.random.default_rng(5)
    theirs = rng.normal(0, 0.3, (sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:])), len(order)))
    ours, offset = [], 0
    for a, b in zip(SIZES[:-1], SIZES[1:]):
        ours.append(theirs[offset:offset + a * b][:, order].reshape(1, a, b, len(order)))
        offset += a * b
    weights = [rng.uniform(-0.1, 0.1, (1, a, b)) for a, b in zip(SIZES[:-1], SIZES[1:])]
    inputs = rng.normal(0, 1, (6, SIZES[0]))
    agent = HebbianAgent(AgentConfig(rule=rule, backend="numpy", dtype="float64", coefficient_rows="i_plus_j"), SIZES, "tanh", 1)
    agent.reset({"coefficients": ours, "weights": weights})
    got = np.array([agent.step(x[None])[0] for x in inputs])
    want, want_weights = authors_lifetime(theirs, [w[0] for w in weights], inputs, rule)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    for mine, ref, start in zip(agent.weights(), want_weights, weights):
        assert np.abs(ref - start[0]).max() > 0.01  # the rule moved them
        np.testing.assert_allclose(mine[0], ref, rtol=1e-12, atol=1e-12)


def test_i_plus_j_equals_per_synapse_rows_filled_from_the_anti_diagonals():
    """Tied rows are a gather: the same lifetime as a per-synapse network given, at (i, j), the
    layer's row i + j; slots armed alone keep their own coefficients."""
    rng = np.random.default_rng(0)
    B = 3
    coefficients = [rng.normal(0, 0.3, (B, a, b, 5)) for a, b in zip(SIZES[:-1], SIZES[1:])]
    expanded = []
    for c in coefficients:
        flat = c.reshape(B, -1, 5)
        i, j = np.indices(c.shape[1:3])
        expanded.append(flat[:, i + j])
    weights = [rng.uniform(-0.1, 0.1, (B, a, b)) for a, b in zip(SIZES[:-1], SIZES[1:])]
    tied = HebbianAgent(AgentConfig(backend="numpy", dtype="float64", coefficient_rows="i_plus_j"), SIZES, "tanh", B)
    plain = HebbianAgent(AgentConfig(backend="numpy", dtype="float64"), SIZES, "tanh", B)
    tied.reset({"coefficients": coefficients, "weights": weights})
    plain.reset({"coefficients": expanded, "weights": weights})
    fresh = [rng.uniform(-0.1, 0.1, (1, a, b)) for a, b in zip(SIZES[:-1], SIZES[1:])]
    for t in range(5):
        x = rng.normal(0, 1, (B, SIZES[0]))
        np.testing.assert_array_equal(tied.step(x), plain.step(x))
        if t == 2:  # slot 1 starts a new lifetime alone
            tied.reset({"coefficients": [c[1:2] for c in coefficients], "weights": fresh}, members=[1])
            plain.reset({"coefficients": [c[1:2] for c in expanded], "weights": fresh}, members=[1])
    for a, b in zip(tied.weights(), plain.weights()):
        np.testing.assert_array_equal(a, b)


def test_the_ants_network_reads_417_rules_with_the_authors_rows():
    ant = (28, 128, 64, 8)
    assert distinct_rules(ant, "i_plus_j") == (28 + 128 - 1) + (128 + 64 - 1) + (64 + 8 - 1) == 417
    assert distinct_rules(ant, "per_synapse") == 28 * 128 + 128 * 64 + 64 * 8 == 12_288
    assert AgentConfig(coefficient_rows="i_plus_j").label == "ABCD_lr_iplusj" and AgentConfig().label == "ABCD_lr"


def test_bad_coefficient_rows_are_one_line_errors():
    import argparse

    with pytest.raises(ValueError, match=r"unknown coefficient rows 'diagonal'; expected one of \('per_synapse', 'i_plus_j', 'mirror'\)"):
        AgentConfig(coefficient_rows="diagonal")
    with pytest.raises(ValueError, match="is an option of Hebbian rate networks, not of a static agent"):
        AgentConfig(kind="static", rule=None, coefficient_rows="i_plus_j")
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    config = config_from_args(parser.parse_args(["--coefficient-rows", "i_plus_j", "--rule", "AD_lr"]))
    assert config.agent.coefficient_rows == "i_plus_j" and config.agent.rule == "AD_lr"
    assert config_from_args(parser.parse_args([])).agent.coefficient_rows == "per_synapse"
    with pytest.raises(ValueError, match="--coefficient-rows is an option of Hebbian rate networks, not of a static agent"):
        config_from_args(parser.parse_args(["--coefficient-rows", "i_plus_j", "--static"]))
