"""The rule family: names, fields, layout helpers and the reference update on hand-computed cases."""

import numpy as np
import pytest

from spikehebb.rules import (
    RULES,
    coefficient_shapes,
    flatten_coefficients,
    fold_eta,
    get_rule,
    n_coefficients,
    reference_update,
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
    }
    assert {name: spec.fields for name, spec in RULES.items()} == expected
    assert get_rule("ABCD_lr").name == "ABCD_lr" and get_rule("ABCD_lr").k == 5


def test_unknown_rule_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown rule 'ABCDE'.*A, AD, AD_lr, ABC, ABC_lr, ABCD, ABCD_lr"):
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
