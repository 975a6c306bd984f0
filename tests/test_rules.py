"""The rule family: names, fields, layout helpers and the reference update on hand-computed cases."""

import numpy as np
import pytest

from spikehebb.rules import (
    RULES,
    brian_model_lines,
    brian_update,
    coefficient_shapes,
    flatten_coefficients,
    fold_eta,
    get_rule,
    n_coefficients,
    numpy_delta,
    reference_update,
    three_factor,
    unflatten_coefficients,
)

ANT = (28, 128, 64, 8)


def test_paper_rules_and_fields():
    expected = {
        "A": ("A",),
        "AD": ("A", "D"),
        "AD_lr": ("eta", "A", "D"),
        "ABC": ("A", "B", "C"),
        "ABC_lr": ("eta", "A", "B", "C"),
        "ABCD": ("A", "B", "C", "D"),
        "ABCD_lr": ("eta", "A", "B", "C", "D"),
        # the authors' code's variants (enajx/HebbianMetaLearning --hebb_rule), not Table 2
        "ABCD_lr_D_out": ("eta", "A", "B", "C", "D_out"),
        "ABCD_lr_D_in_and_out": ("eta", "A", "B", "C", "D", "D_out"),
    }
    assert {name: spec.fields for name, spec in RULES.items()} == expected
    assert get_rule("ABCD_lr").name == "ABCD_lr" and get_rule("ABCD_lr").k == 5
    assert get_rule("ABCD_lr_D_out").k == 5 and get_rule("ABCD_lr_D_in_and_out").k == 6
    assert all(RULES[name].doc == "Najarro & Risi 2020, Table 2" for name in expected if "D_" not in name)
    for name in ("ABCD_lr_D_out", "ABCD_lr_D_in_and_out"):
        assert "enajx/HebbianMetaLearning" in RULES[name].doc and "not in the paper's Table 2" in RULES[name].doc
        # eta scales every term but the drift D_out
        assert {t.coefficient: t.eta_scaled for t in RULES[name].terms} == {
            f: f != "D_out" for f in RULES[name].fields if f != "eta"}


def test_unknown_rule_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown rule 'ABCDE'; valid rules are A, AD, AD_lr, ABC, ABC_lr, ABCD, ABCD_lr, "
                                         r"ABCD_lr_D_out, ABCD_lr_D_in_and_out \(each also as NAME\+mod\)"):
        get_rule("ABCDE")


def test_paper_sizes():
    # Najarro & Risi 2020: 12,288 synapses in the ant network, 61,440 coefficients with ABCD_lr.
    assert n_coefficients(ANT, "ABCD_lr") == 61_440
    assert n_coefficients(ANT, "A") == 12_288
    # The car's three plastic layers: 91,328 synapses, 456,640 coefficients.
    assert n_coefficients((648, 128, 64, 3), "ABCD_lr") == 456_640
    assert coefficient_shapes(ANT, "AD") == [(28, 128, 2), (128, 64, 2), (64, 8, 2)]


def test_flat_layout_round_trip_and_order():
    sizes = (3, 4, 2)
    flat = np.arange(2 * n_coefficients(sizes, "ABC"), dtype=float).reshape(2, -1)
    layers = unflatten_coefficients(flat, sizes, "ABC")
    assert [c.shape for c in layers] == [(2, 3, 4, 3), (2, 4, 2, 3)]
    # C-order: the fields of one synapse are adjacent, synapses pre-major.
    assert layers[0][1, 0, 1].tolist() == [flat.shape[1] + 3, flat.shape[1] + 4, flat.shape[1] + 5]
    assert layers[1][0, 0, 0, 0] == 3 * 4 * 3
    np.testing.assert_array_equal(flatten_coefficients(layers), flat)
    with pytest.raises(ValueError, match=r"must be \(n,\) or \(P, n\) with n=60, got shape \(2, 59\)"):
        unflatten_coefficients(flat[:, :-1], sizes, "ABC")


# A 2x2 layer with linear rates: pre o = (1, 2), post o = (4.5, -0.5) (see test_network.py).
PRE = np.array([[1.0, 2.0]])
POST = np.array([[4.5, -0.5]])
W = np.array([[[0.5, -1.0], [2.0, 0.25]]])
# Each coefficient alone at 0.1, worked out by hand from dw = eta*(A*o_i*o_j + B*o_i + C*o_j + D).
HAND_DW = {
    "A": [[0.45, -0.05], [0.90, -0.10]],
    "B": [[0.10, 0.10], [0.20, 0.20]],
    "C": [[0.45, -0.05], [0.45, -0.05]],
    "D": [[0.10, 0.10], [0.10, 0.10]],
}


@pytest.mark.parametrize("field", "ABCD")
def test_reference_update_hand_computed(field):
    spec = get_rule("ABCD_lr")
    coef = np.zeros((1, 2, 2, 5))
    coef[..., spec.index("eta")] = 1.0
    coef[..., spec.index(field)] = 0.1
    np.testing.assert_allclose(reference_update(W, PRE, POST, coef, spec) - W, [HAND_DW[field]], atol=1e-15)
    # eta scales the whole update
    coef[..., spec.index("eta")] = 0.5
    np.testing.assert_allclose(reference_update(W, PRE, POST, coef, spec) - W, [np.multiply(HAND_DW[field], 0.5)], atol=1e-15)


def test_rules_without_lr_have_eta_one_and_missing_fields_zero():
    coef = np.full((1, 2, 2, 2), 0.1)  # AD: A = D = 0.1, no B, C, eta = 1
    np.testing.assert_allclose(
        reference_update(W, PRE, POST, coef, "AD") - W, [np.add(HAND_DW["A"], HAND_DW["D"])], atol=1e-15
    )


def test_fold_eta():
    coef = np.array([[2.0, 3.0, 5.0]])  # AD_lr: eta, A, D
    folded = fold_eta(coef, "AD_lr")
    assert set(folded) == {"A", "D"} and folded["A"][0] == 6.0 and folded["D"][0] == 10.0
    assert fold_eta(np.array([[3.0]]), "A")["A"][0] == 3.0


# The authors' code's variants with a drift outside eta, by hand on the same 2x2 layer, eta = 0.5
# and every other coefficient 0.1: ABCD_lr_D_out, dw = eta*(A*o_i*o_j + B*o_i + C*o_j) + D_out;
# ABCD_lr_D_in_and_out, dw = eta*(A*o_i*o_j + B*o_i + C*o_j + D) + D_out.
ABC_SUM = np.add(np.add(HAND_DW["A"], HAND_DW["B"]), HAND_DW["C"])  # [[1.0, 0.0], [1.55, 0.05]]


@pytest.mark.parametrize("rule, want", [
    ("ABCD_lr_D_out", [[0.6, 0.1], [0.875, 0.125]]),  # 0.5 * ABC_SUM + 0.1
    ("ABCD_lr_D_in_and_out", [[0.65, 0.15], [0.925, 0.175]]),  # 0.5 * (ABC_SUM + 0.1) + 0.1
])
def test_drift_outside_eta_hand_computed(rule, want):
    spec = get_rule(rule)
    coef = np.full((1, 2, 2, spec.k), 0.1)
    coef[..., spec.index("eta")] = 0.5
    np.testing.assert_allclose(ABC_SUM, [[1.0, 0.0], [1.55, 0.05]], atol=1e-15)
    np.testing.assert_allclose(reference_update(W, PRE, POST, coef, spec) - W, [want], atol=1e-15)
    # D_out alone adds 0.1 whatever eta is, not eta * 0.1 = 0.05; D alone adds eta * D
    coef[...] = 0
    coef[..., spec.index("eta")] = 0.5
    coef[..., spec.index("D_out")] = 0.1
    np.testing.assert_allclose(reference_update(W, PRE, POST, coef, spec) - W, np.full((1, 2, 2), 0.1), atol=1e-15)
    if "D" in spec.fields:
        coef[..., spec.index("D_out")] = 0
        coef[..., spec.index("D")] = 0.1
        np.testing.assert_allclose(reference_update(W, PRE, POST, coef, spec) - W, np.full((1, 2, 2), 0.05), atol=1e-15)
    # fold_eta multiplies eta into the scaled terms only
    folded = fold_eta(np.array([2.0, 3.0, 5.0, 7.0] + [11.0] * (spec.k - 4)), spec)
    assert folded == {"A": 6.0, "B": 10.0, "C": 14.0, **({"D": 22.0} if "D" in spec.fields else {}), "D_out": 11.0}


def test_drift_outside_eta_brian2_code():
    """With eta stored apart (fold_eta=False) eta multiplies the scaled terms only; D_out follows
    outside (before the fix every term sat inside ``eta * (...)``)."""
    d_out, d_in_and_out = get_rule("ABCD_lr_D_out"), get_rule("ABCD_lr_D_in_and_out")
    assert brian_update(d_out, fold_eta=False) == "w += eta * (A * r_pre * r_post + B * r_pre + C * r_post) + D_out"
    assert brian_update(d_in_and_out, fold_eta=False) == (
        "w += eta * (A * r_pre * r_post + B * r_pre + C * r_post + D) + D_out")
    assert brian_update(d_out) == "w += A * r_pre * r_post + B * r_pre + C * r_post + D_out"
    assert brian_update(d_in_and_out) == "w += A * r_pre * r_post + B * r_pre + C * r_post + D + D_out"
    assert brian_update(d_out, fold_eta=False, target="v", rate="rbar", gate="g") == (
        "v += g_post * (eta * (A * rbar_pre * rbar_post + B * rbar_pre + C * rbar_post) + D_out)")
    assert brian_update(three_factor(d_out), fold_eta=False) == (
        "dw_local = eta * (A * r_pre * r_post + B * r_pre + C * r_post) + D_out\n"
        "elig = decay_e * elig + dw_local\n"
        "w += dw_local + eta_m * m_post * elig")
    assert brian_update(three_factor(d_in_and_out), gate="g") == (
        "dw_local = g_post * (A * r_pre * r_post + B * r_pre + C * r_post + D + D_out)\n"
        "elig = decay_e * elig + dw_local\n"
        "w += dw_local + g_post * (eta_m * m_post * elig)")
    # the folded model marks the scaled coefficients "(times eta)", not D_out
    assert brian_model_lines(d_in_and_out)[-2:] == [
        "D : 1 (constant)  # coefficient of constant drift (times eta)",
        "D_out : 1 (constant)  # coefficient of constant drift, not scaled by eta",
    ]
    assert [line.split(" :")[0] for line in brian_model_lines(d_out, fold_eta=False)] == ["eta", "A", "B", "C", "D_out"]


@pytest.mark.parametrize("rule", ["ABCD_lr_D_out", "ABCD_lr_D_in_and_out"])
def test_drift_outside_eta_numpy_delta_equals_the_reference(rule):
    """The NumPy backend's update (folded coefficients, a rule_every gate) and the three-factor
    version's trace and weights against reference_update, on random inputs."""
    rng = np.random.default_rng(5)
    for spec in (get_rule(rule), three_factor(rule)):
        coefficients = rng.normal(size=(3, 4, 5, spec.k))
        w, pre, post, m = rng.normal(size=(3, 4, 5)), rng.normal(size=(3, 4)), rng.normal(size=(3, 5)), rng.normal(size=3)
        constants = {"decay_e": 0.8}
        elig = rng.normal(size=(3, 4, 5))
        ref_state, state = {"elig": elig.copy()}, {"elig": elig.copy()}
        want = reference_update(w, pre, post, coefficients, spec, m, ref_state, constants)
        got = w + numpy_delta(fold_eta(coefficients, spec), pre, post, m, spec, state, constants)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(state["elig"], ref_state["elig"], rtol=1e-12, atol=1e-12)
        gate = np.array([1.0, 0.0, 1.0])  # member 1 rests: its weights stay
        state = {"elig": np.zeros((3, 4, 5))}
        gated = numpy_delta(fold_eta(coefficients, spec), pre, post, m, spec, state, constants, gate)
        assert np.all(gated[1] == 0)
        np.testing.assert_allclose(gated[[0, 2]], (reference_update(w, pre, post, coefficients, spec, m, {
            "elig": np.zeros((3, 4, 5))}, constants) - w)[[0, 2]], rtol=1e-12, atol=1e-12)


def test_three_factor_drift_outside_eta_is_part_of_dw_local_by_hand():
    """One synapse, two steps, w0 = 0.4, eta 0.5, A 1, B 0.2, C -0.3, D_out 0.1, eta_m 2,
    decay_e 0.75: dw_local = eta*(A*o_i*o_j + B*o_i + C*o_j) + D_out, and the trace sums it.

    step 1, o = (1.5, 0.6), m = 0: dw_local = 0.5 * (0.9 + 0.3 - 0.18) + 0.1 = 0.61, e = 0.61, w = 1.01
    step 2, o = (-2, 0.3), m = 3:  dw_local = 0.5 * (-0.6 - 0.4 - 0.09) + 0.1 = -0.445,
                                   e = 0.75 * 0.61 - 0.445 = 0.0125, w = 1.01 - 0.445 + 2 * 3 * 0.0125 = 0.64
    """
    spec = three_factor("ABCD_lr_D_out")
    assert spec.name == "ABCD_lr_D_out+mod" and spec.fields == ("eta", "A", "B", "C", "D_out", "eta_m")
    assert get_rule("ABCD_lr_D_out+mod") == spec
    coef = np.array([0.5, 1.0, 0.2, -0.3, 0.1, 2.0]).reshape(1, 1, 1, 6)
    w, state = np.full((1, 1, 1), 0.4), {"elig": np.zeros((1, 1, 1))}
    for o_i, o_j, m, e, want in [(1.5, 0.6, 0.0, 0.61, 1.01), (-2.0, 0.3, 3.0, 0.0125, 0.64)]:
        w = reference_update(w, np.array([[o_i]]), np.array([[o_j]]), coef, spec, np.array([m]), state, {"decay_e": 0.75})
        assert state["elig"][0, 0, 0] == pytest.approx(e, rel=1e-12)
        assert w[0, 0, 0] == pytest.approx(want, rel=1e-12)
