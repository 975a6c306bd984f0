"""Mirror-symmetric rules (``coefficient_rows="mirror"``): a network whose synapses share their
rule with their mirror synapses maps the mirror image of a lifetime (inputs and initial weights)
to the mirror image of its outputs and weights, step after step."""

import numpy as np
import pytest

from spikehebb.agents import AgentConfig, HebbianAgent
from spikehebb.agents.hebbian import distinct_rules
from spikehebb.agents.mirror import field_parities, mirror_rows, mirror_weights
from spikehebb.envs.mirror import mirror_action, mirror_observation

SIZES = (28, 12, 6, 8)  # the Ant's inputs and actions, small even hidden layers


def lifetimes(config, coefficients, weights, inputs, modulators):
    """Outputs (T, 8) and final weights of one lifetime, and of its mirror image."""
    out = []
    for w, xs in ((weights, inputs), (mirror_weights(weights, SIZES), mirror_observation(inputs))):
        agent = HebbianAgent(config, SIZES, "tanh", 1)
        agent.reset({"coefficients": coefficients, "weights": w})
        ys = np.array([agent.step(x[None], None if m is None else np.array([m]))[0] for x, m in zip(xs, modulators)])
        out.append((ys, [w.copy() for w in agent.weights()]))
    return out


@pytest.mark.parametrize("rule, modulated, backend", [
    ("ABCD_lr", False, "numpy"), ("ABCD_lr", False, "brian2"), ("ABC", False, "numpy"), ("AD_lr", False, "numpy"),
    ("ABCD_lr", True, "numpy"), ("ABCD_lr", True, "brian2"),
    ("ABCD_lr_D_in_and_out", False, "numpy"), ("ABCD_lr_D_out", True, "numpy"),  # the drift D_out outside eta
])
def test_the_mirror_of_a_lifetime_is_the_lifetime_of_the_mirror(rule, modulated, backend):
    rng = np.random.default_rng(7)
    config = AgentConfig(rule=rule, modulated=modulated, backend=backend, dtype="float64", coefficient_rows="mirror")
    k = len(field_parities(config.network_rule))
    coefficients = [rng.normal(0, 0.3, (1, a, b, k)) for a, b in zip(SIZES[:-1], SIZES[1:])]
    weights = [rng.uniform(-0.1, 0.1, (1, a, b)) for a, b in zip(SIZES[:-1], SIZES[1:])]
    inputs = rng.normal(0, 1, (15, 28))
    modulators = rng.normal(0, 1, 15) if modulated else [None] * 15
    (ys, ws), (ys_m, ws_m) = lifetimes(config, coefficients, weights, inputs, modulators)
    assert np.abs(ys).max() > 0.1  # the network does something
    np.testing.assert_allclose(ys_m, mirror_action(ys), rtol=1e-9, atol=1e-9)
    for w, w0 in zip(ws, weights):
        assert np.abs(w - w0).max() > 0.01  # the rule changed every layer
    for w, w_m in zip(mirror_weights(ws, SIZES), ws_m):
        np.testing.assert_allclose(w_m, w, rtol=1e-9, atol=1e-9)
    # the same genome read per synapse is not mirror-symmetric
    plain = AgentConfig(rule=rule, modulated=modulated, backend=backend, dtype="float64")
    (ys, _), (ys_m, _) = lifetimes(plain, coefficients, weights, inputs, modulators)
    assert np.abs(ys_m - mirror_action(ys)).max() > 1e-3


def test_each_rule_is_read_by_a_synapse_and_its_mirror_with_the_signs_of_its_factors():
    ant = (28, 128, 64, 8)
    assert distinct_rules(ant, "mirror") == (28 * 128 + 128 * 64 + 64 * 8) // 2 == 6_144
    signs = []
    for rows, factors in mirror_rows(ant, "ABCD_lr"):
        assert np.all(np.bincount(rows.ravel())[np.unique(rows)] == 2)
        own = rows == np.arange(rows.size).reshape(rows.shape)
        assert np.all(factors[own] == 1)
        signs.append(set(np.unique(factors[~own])))
    assert signs == [{-1.0, 1.0}, {1.0}, {-1.0, 1.0}]  # hidden units mirror without a sign
    # eta, A (pre*post): no sign; B (pre): s_j; C (post): s_i; D: s_i s_j; the gated eta_m (mod*elig): none
    assert field_parities("ABCD_lr") == [(0, 0), (0, 0), (0, 1), (1, 0), (1, 1)]
    assert field_parities("ABCD_lr+mod")[-1] == (0, 0)
    # the authors' code's drift outside eta, D_out, reads no rate: s_i s_j, as D
    assert field_parities("ABCD_lr_D_in_and_out") == [(0, 0), (0, 0), (0, 1), (1, 0), (1, 1), (1, 1)]
    # input 1 (sin of the angle to the target, s = -1) to hidden unit 7, whose mirror unit is 1
    rows, factors = mirror_rows(SIZES, "ABCD_lr")[0]
    assert rows[1, 7] == 12 * 1 + 1 and factors[1, 7].tolist() == [1, 1, 1, -1, -1]


def test_mirror_rows_are_refused_where_they_cannot_be_mirror_symmetric():
    from spikehebb.cli import add_train_arguments, config_from_args
    import argparse

    assert AgentConfig(coefficient_rows="mirror").label == "ABCD_lr_mirror"
    assert AgentConfig(coefficient_rows="mirror").controller_label == "Hebbian ABCD_lr_mirror"
    assert AgentConfig(coefficient_rows="i_plus_j", modulated=True).controller_label == "Hebbian ABCD_lr_iplusj"
    assert AgentConfig(kind="static", rule=None).controller_label == "static"
    with pytest.raises(ValueError, match="--coefficient-rows mirror with --dale: Dale's E/I signs are drawn per unit"):
        AgentConfig(coefficient_rows="mirror", dale=0.8)
    with pytest.raises(ValueError, match="--coefficient-rows mirror with --coevolve: the evolved initial weights"):
        AgentConfig(coefficient_rows="mirror", evolve_initial_weights=True)
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    assert config_from_args(parser.parse_args(["--coefficient-rows", "mirror"])).agent.coefficient_rows == "mirror"
    with pytest.raises(ValueError, match=r"--coefficient-rows mirror on task 'ant' \(--positive's on/off inputs and "
                                         r"paired actions\): mirror-symmetric rules are the "
                                         r"Ant's: .* got sizes \(56, 128, 64, 16\)"):
        config_from_args(parser.parse_args(["--coefficient-rows", "mirror", "--positive"]))
    with pytest.raises(ValueError, match="--coefficient-rows mirror on task 'car'"):
        config_from_args(parser.parse_args(["--coefficient-rows", "mirror", "--task", "car"]))


def test_the_ants_mirror_rows_are_pinned():
    """A stored run says only coefficient_rows="mirror": these arrays are what it means. Changing
    them reads every stored mirror run as another network; give a new pairing a new name."""
    import hashlib

    digest = hashlib.sha256()
    for rows, factors in mirror_rows((28, 128, 64, 8), "ABCD_lr+mod"):
        digest.update(rows.astype("<i8").tobytes())
        digest.update(factors.astype("<f8").tobytes())
    assert digest.hexdigest()[:16] == "73eaaa896b450a1c"


def test_a_slot_armed_alone_reads_its_mirror_rows_as_the_whole_batch_does():
    """reset(..., members=[m]) reads the tied rows as a reset of every slot does: a mirror agent
    equals a per-synapse agent given coefficients_as_read, slot by slot."""
    from spikehebb.agents.hebbian import coefficients_as_read

    rng = np.random.default_rng(3)
    B = 3
    mirror = AgentConfig(backend="numpy", dtype="float64", coefficient_rows="mirror")
    coefficients = [rng.normal(0, 0.3, (B, a, b, 5)) for a, b in zip(SIZES[:-1], SIZES[1:])]
    weights = [rng.uniform(-0.1, 0.1, (B, a, b)) for a, b in zip(SIZES[:-1], SIZES[1:])]
    tied = HebbianAgent(mirror, SIZES, "tanh", B)
    plain = HebbianAgent(AgentConfig(backend="numpy", dtype="float64"), SIZES, "tanh", B)
    tied.reset({"coefficients": coefficients, "weights": weights})
    plain.reset({"coefficients": coefficients_as_read(mirror, SIZES, coefficients), "weights": weights})
    fresh = [rng.normal(0, 0.3, (1, a, b, 5)) for a, b in zip(SIZES[:-1], SIZES[1:])]
    fresh_w = [rng.uniform(-0.1, 0.1, (1, a, b)) for a, b in zip(SIZES[:-1], SIZES[1:])]
    for t in range(6):
        x = rng.normal(0, 1, (B, 28))
        np.testing.assert_array_equal(tied.step(x), plain.step(x))
        if t == 2:
            tied.reset({"coefficients": fresh, "weights": fresh_w}, members=[1])
            plain.reset({"coefficients": coefficients_as_read(mirror, SIZES, fresh), "weights": fresh_w}, members=[1])


def test_inspect_says_how_many_rows_a_tied_run_reads(capsys):
    from pathlib import Path

    from spikehebb.cli import main

    run = Path(__file__).resolve().parents[2] / "models" / "training" / "ant_ABCD_lr_iplusj_paper_pop200_s0.h5"
    main(["inspect", str(run)])
    assert "coefficient rows i_plus_j: the synapses read 417 of the 12,288 rows of the genome" in capsys.readouterr().out
