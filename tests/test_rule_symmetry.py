"""experiments/rule_symmetry.py: how close a rule's coefficients are to a mirror-symmetric network's."""

import json
from pathlib import Path

import numpy as np
import pytest

from spikehebb.agents import AgentConfig
from spikehebb.agents.hebbian import coefficients_as_read
from spikehebb.agents.mirror import field_parities, unit_mirror

ROOT = Path(__file__).resolve().parents[1]
TRAINING = ROOT / "models" / "training"
PARITIES = field_parities("ABCD_lr")


@pytest.fixture(scope="module")
def symmetry(experiment_script):
    return experiment_script("rule_symmetry")


def random_layers(sizes, rng):
    return [rng.normal(size=(1, a, b, len(PARITIES))) for a, b in zip(sizes[:-1], sizes[1:])]


def relabel_hidden(layers, sizes, rng):
    """The same network with each hidden layer's units permuted and some of them negated (tanh is
    odd, the initial weights' law symmetric): field f of synapse (u, v) becomes
    flip_u^a flip_v^b times field f of synapse (R[u], R[v])."""
    maps = [(np.arange(n), np.ones(n)) for n in sizes]
    for h in range(1, len(sizes) - 1):
        maps[h] = (rng.permutation(sizes[h]), rng.choice([-1.0, 1.0], sizes[h]))
    a, b = (np.array([p[i] for p in PARITIES]) for i in (0, 1))
    out = []
    for layer, ((pre, pre_flip), (post, post_flip)) in zip(layers, zip(maps[:-1], maps[1:])):
        out.append(layer[pre][:, post] * pre_flip[:, None, None] ** a * post_flip[None, :, None] ** b)
    return out


@pytest.mark.parametrize("sizes", [(28, 6, 4, 8), (28, 128, 64, 8)])
def test_a_mirror_symmetric_rule_with_its_hidden_units_relabelled_and_negated_scores_one(symmetry, sizes):
    rng = np.random.default_rng(4)
    tied = coefficients_as_read(AgentConfig(coefficient_rows="mirror"), sizes, random_layers(sizes, rng))
    layers = relabel_hidden([t[0] for t in tied], sizes, rng)
    np.testing.assert_allclose(symmetry.layer_symmetry(layers, unit_mirror(sizes), PARITIES), 1.0, atol=1e-12)
    # a per-synapse rule (nothing tied) does not
    untied = [c[0] for c in random_layers(sizes, rng)]
    assert max(symmetry.layer_symmetry(untied, unit_mirror(sizes), PARITIES)) < 0.6


def mixed(sizes, share, rng):
    """Coefficients whose variance is ``share`` a mirror-symmetric rule's and the rest noise."""
    tied = coefficients_as_read(AgentConfig(coefficient_rows="mirror"), sizes, random_layers(sizes, rng))
    return [np.sqrt(share) * t[0] + np.sqrt(1 - share) * rng.normal(size=t[0].shape) for t in tied]


@pytest.mark.parametrize("share", [0.3, 0.2, 0.1])
def test_the_power_the_docs_state(symmetry, share):
    """A symmetric part of 30% of the variance stands out in every layer and pooled, 20% pooled,
    10% not even pooled (z against 8 wrong mirrors)."""
    sizes = (28, 128, 64, 8)
    rng = np.random.default_rng(7)
    layers, units = mixed(sizes, share, rng), unit_mirror(sizes)
    real = np.array(symmetry.layer_symmetry(layers, units, PARITIES))
    null = np.array([symmetry.layer_symmetry(layers, symmetry.relabelled(units, rng), PARITIES) for _ in range(8)])
    z = (real - null.mean(0)) / null.std(0)
    if share == 0.3:
        assert np.all(z > 5), z
    elif share == 0.2:
        assert z[-1] > 4, z
    else:
        assert abs(z[-1]) < 2, z


def test_a_rule_without_mirror_structure_scores_as_the_wrong_mirrors_do(symmetry):
    """iid coefficients: the real mirror is one more mirror of its shape, within the nulls' spread."""
    sizes = (28, 128, 64, 8)
    rng = np.random.default_rng(5)
    layers, units = [c[0] for c in random_layers(sizes, rng)], unit_mirror(sizes)
    real = np.array(symmetry.layer_symmetry(layers, units, PARITIES))
    null = np.array([symmetry.layer_symmetry(layers, symmetry.relabelled(units, rng), PARITIES) for _ in range(20)])
    assert np.all(np.abs(real - null.mean(0)) < 4 * null.std(0) + 0.01), (real, null.mean(0), null.std(0))


def test_a_null_mirror_keeps_the_real_ones_cycles_and_signs_and_pairs_other_units(symmetry):
    units = unit_mirror((28, 128, 64, 8))
    null = symmetry.relabelled(units, np.random.default_rng(6))
    for layer in (0, 3):
        (source, sign), (null_source, null_sign) = units[layer], null[layer]
        assert np.array_equal(null_source[null_source], np.arange(len(source)))  # still an involution
        assert np.sum(null_source == np.arange(len(source))) == np.sum(source == np.arange(len(source)))
        assert sorted(null_sign) == sorted(sign) and not np.array_equal(null_source, source)
        fixed = null_source == np.arange(len(source))  # a unit that is its own image keeps its sign's kind
        assert sorted(null_sign[fixed]) == sorted(sign[source == np.arange(len(source))])
    for layer in (1, 2):
        assert all(np.array_equal(x, y) for x, y in zip(null[layer], units[layer]))


def test_the_mirror_runs_stored_means_score_one_and_a_static_run_is_refused(symmetry, tmp_path, capsys):
    out = tmp_path / "symmetry.json"
    symmetry.main([str(TRAINING / "ant_ABCD_lr_mirror_paper_pop200_s0.h5"), "--every", "3", "--nulls", "2",
                   "--out", str(out)])
    scores = json.loads(out.read_text())["scores"]
    assert [row["generation"] for row in scores][:2] == [10, 40] and len(scores) >= 2
    np.testing.assert_allclose([row["mirror"] for row in scores], 1.0, atol=1e-12)
    # a wrong mirror of the body can leave the hidden-to-hidden layer symmetric (its symmetry is
    # the hidden units' alone), not the layers that touch the body
    nulls = np.array([row["null"] for row in scores])  # (means, nulls, 3 layers + pooled)
    assert nulls[..., [0, 2, 3]].max() < 0.8
    with pytest.raises(SystemExit) as info:
        symmetry.main([str(TRAINING / "ant_static_fanin_paper_pop200_s0.h5")])
    assert info.value.code == 2
    assert "is a ant static run: the mirror is the Ant's, of a rule's coefficients" in capsys.readouterr().err
