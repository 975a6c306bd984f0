"""Extending the rule table: the synapse's own weight as a factor (Oja's rule, weight decay) on
every backend and constraint mode, the lif network's off copies of a rule that reads w, and the
checks on coefficient and rule names (spikehebb/rule_names.py)."""

import functools
import subprocess
import sys

import numpy as np
import pytest

from spikehebb import rule_names, rules
from spikehebb.network import make_network, sample_weights
from spikehebb.network.constraints import make_constraint
from spikehebb.network.spiking import SpikingPlasticNetwork, off_copy_negated, trace_rule_code
from spikehebb.rules import (
    DRIFT, DRIFT_OUT, FACTORS, HEBBIAN, RULES, RuleSpec, Term, brian_update, fold_eta, get_rule, numpy_delta,
    reference_update, three_factor,
)

#: Oja's rule, dw = eta * (A*o_i*o_j + E*o_j^2*w).
OJA = RuleSpec("OJA_lr", (HEBBIAN, Term("E", ("post", "post", "w"), "Oja's decay o_j^2*w")), learning_rate=True)
#: Every parity of w on the lif network's off copy: odd (E, F), even (G: w^2; A, D: none), and a
#: term outside eta that reads w (F, a weight decay).
PARITY = RuleSpec("PARITY_lr", (
    HEBBIAN,
    Term("E", ("post", "post", "w"), "Oja's decay o_j^2*w"),
    Term("G", ("pre", "w", "w"), "o_i*w^2"),
    DRIFT,
    Term("F", ("w",), "weight decay w, not scaled by eta", eta_scaled=False),
), learning_rate=True)


def coefficients_for(rule, sizes, population, seed, scale=0.05):
    """N(0, scale) coefficients, eta U[0.5, 1]."""
    rng = np.random.default_rng(seed)
    out = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        c = rng.normal(0, scale, (population, a, b, rule.k))
        if rule.has_eta:
            c[..., rule.index("eta")] = rng.uniform(0.5, 1.0, (population, a, b))
        out.append(c)
    return out


# --------------------------------------------------------------------------- the factor w
def test_w_is_a_factor_the_generated_code_reads():
    assert FACTORS["w"].brian_code("rbar") == "w"
    assert brian_update(OJA) == "w += A * r_pre * r_post + E * r_post * r_post * w"
    # a latent's rule (smooth Dale) changes v and reads the weight w
    assert brian_update(OJA, fold_eta=False, target="v", rate="rbar") == \
        "v += eta * (A * rbar_pre * rbar_post + E * rbar_post * rbar_post * w)"
    assert trace_rule_code(PARITY) == ("w += A * xs_pre * xs_post + E * xs_post * xs_post * w + G * xs_pre * w * w"
                                       " + D + F * w")
    assert all("w" not in spec.reads for spec in RULES.values())  # the registry is unchanged


def test_reference_update_reads_the_weights_hand_computed():
    w = np.array([[[0.5, -0.25]]])  # (1, 1, 2)
    pre, post = np.array([[2.0]]), np.array([[1.0, -3.0]])
    c = np.zeros((1, 1, 2, 3))
    c[..., 0], c[..., 1], c[..., 2] = 0.5, 0.1, -0.2  # eta, A, E
    # w + 0.5 * (0.1 * 2 * o_j + (-0.2) * o_j^2 * w)
    expected = [0.5 + 0.5 * (0.2 * 1.0 - 0.2 * 1.0 * 0.5), -0.25 + 0.5 * (0.2 * -3.0 - 0.2 * 9.0 * -0.25)]
    np.testing.assert_allclose(reference_update(w, pre, post, c, OJA)[0, 0], expected, rtol=1e-15)
    # the rule changes a latent v and reads the weights w given apart
    v = np.full_like(w, 7.0)
    np.testing.assert_allclose(reference_update(v, pre, post, c, OJA, w=w)[0, 0],
                               7.0 + np.array(expected) - w[0, 0], rtol=1e-15)
    decay = RuleSpec("DECAY", (Term("F", ("w",), "weight decay", eta_scaled=False),), learning_rate=True)
    np.testing.assert_allclose(reference_update(w, pre, post, np.full((1, 1, 2, 2), -0.1), decay), 0.9 * w, rtol=1e-15)


def test_numpy_delta_with_the_weights_is_the_reference():
    rng = np.random.default_rng(3)
    P, n_pre, n_post = 2, 3, 4
    w = rng.uniform(-1, 1, (P, n_pre, n_post))
    pre, post, m = rng.normal(size=(P, n_pre)), rng.normal(size=(P, n_post)), rng.normal(size=P)
    for rule in (OJA, PARITY):
        c = coefficients_for(rule, (n_pre, n_post), P, seed=4)[0]
        delta = numpy_delta(fold_eta(c, rule), pre, post, None, rule, weights=w)
        np.testing.assert_allclose(w + delta, reference_update(w, pre, post, c, rule), rtol=1e-13, atol=1e-15)
    # a three-factor rule: the trace low-passes dw_local, w's term included
    rule = three_factor(OJA)
    c = coefficients_for(rule, (n_pre, n_post), P, seed=5)[0]
    mine, truth = {"elig": np.full((P, n_pre, n_post), 0.3)}, {"elig": np.full((P, n_pre, n_post), 0.3)}
    delta = numpy_delta(fold_eta(c, rule), pre, post, m, rule, mine, {"decay_e": 0.9}, weights=w)
    expected = reference_update(w, pre, post, c, rule, m, truth, {"decay_e": 0.9})
    np.testing.assert_allclose(w + delta, expected, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(mine["elig"], truth["elig"], rtol=1e-13)
    with pytest.raises(ValueError) as e:
        numpy_delta(fold_eta(c, rule), pre, post, m, rule, mine, {"decay_e": 0.9})
    assert str(e.value) == "rule 'OJA_lr+mod' reads the weight w: numpy_delta needs weights="


# ------------------------------------------------------------- backends and constraint modes
#: Five synaptic layers, one per constraint mode: dale_smooth (with E/I balance: input gains),
#: dale_squareplus, dale_clip, max_abs, none. Order: clip first (fused into the rule's code),
#: then max_abs (NumPy), then the latents (their own code after it).
SIZES = (3, 4, 4, 4, 3, 2)


def signs(seed=7):
    rng = np.random.default_rng(seed)
    return [np.where(np.arange(n) % 2, -1, 1) * (1 if rng.random() < 0.5 else -1) for n in SIZES]


def constraints():
    s = signs()
    return ({"name": "dale_clip", "signs": s, "layers": [2]}, {"name": "max_abs", "layers": [3]},
            {"name": "dale_smooth", "signs": s, "layers": [0], "balance": True},
            {"name": "dale_squareplus", "signs": s, "layers": [1]})


@functools.lru_cache(maxsize=None)
def rate_network(backend, rule=OJA, constrained=True, **kwargs):
    """Brian2's cython target for the plain rule, its numpy target (the same generated code, no
    compile: the file stays fast on an empty Brian2 cache) for the others."""
    if backend == "brian2" and (constrained or rule is not OJA):
        kwargs["target"] = "numpy"
    return make_network(SIZES if constrained else SIZES[:3], rule, 2, backend=backend, dtype="float64",
                        constraints=constraints() if constrained else (), **kwargs)


def hand_lifetime(rule, sizes, constrained, coefficients, weights, inputs):
    """The truth: forward pass (tanh, Dale's input gains), reference_update per layer on w or on
    the latent v (reading w), then the constraints in order. Returns the weights after each step."""
    cs = [make_constraint(c) for c in constraints()] if constrained else []
    w = [x.copy() for x in weights]
    latent = [next((c for c in cs if c.latent and c.acts_on(l)), None) for l in range(len(w))]
    v = [None if c is None else c.to_latent(w[l], l) for l, c in enumerate(latent)]
    w = [x if c is None else c.from_latent(v[l], l) for l, (x, c) in enumerate(zip(w, latent))]
    history = []
    for x in inputs:
        rates = [x]
        for l, wl in enumerate(w):
            gain = next((g for c in cs if c.acts_on(l) and (g := c.input_gain(l)) is not None), None)
            sent = rates[-1] if gain is None else rates[-1] * gain
            rates.append(np.tanh(np.einsum("bn,bnm->bm", sent, wl)))
        for l in range(len(w)):
            if latent[l] is None:
                w[l] = reference_update(w[l], rates[l], rates[l + 1], coefficients[l], rule)
            else:
                v[l] = reference_update(v[l], rates[l], rates[l + 1], coefficients[l], rule, w=w[l])
        for c in cs:
            for l in range(len(w)):
                if c.acts_on(l):
                    if c.latent:
                        w[l] = c.from_latent(v[l], l)
                    else:
                        c.apply(w[l], l)
        history.append([x.copy() for x in w])
    return history


def lifetime_inputs(sizes, seed, n_steps=12):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (n_steps, 2, sizes[0]))


@pytest.mark.parametrize("backend", ["numpy", "brian2"])
def test_oja_on_every_backend_is_the_reference(backend):
    """No constraint: 12 steps against the hand loop, float64."""
    sizes = SIZES[:3]
    net = rate_network(backend, constrained=False)
    coefficients = coefficients_for(OJA, sizes, 2, seed=1, scale=0.3)
    weights = sample_weights(sizes, 2, scale=0.5, rng=2)
    inputs = lifetime_inputs(sizes, 3)
    net.reset(coefficients, weights)
    expected = hand_lifetime(OJA, sizes, False, coefficients, weights, inputs)
    moved = 0.0
    for x, truth in zip(inputs, expected):
        net.step(x)
        for got, want in zip(net.weights, truth):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    for w0, w1 in zip(weights, expected[-1]):
        moved = max(moved, np.abs(w1 - w0).max())
    assert moved > 0.05  # the rule moved the weights
    # the E term matters: without it the weights differ
    no_e = [c.copy() for c in coefficients]
    for c in no_e:
        c[..., OJA.index("E")] = 0
    assert np.abs(hand_lifetime(OJA, sizes, False, no_e, weights, inputs)[-1][0] - expected[-1][0]).max() > 1e-3


@pytest.mark.parametrize("backend", ["numpy", "brian2"])
def test_oja_under_every_constraint_mode_reads_the_weight(backend):
    """dale_smooth (balanced), dale_squareplus, dale_clip, max_abs and none, one layer each: the
    rule's w is the weight (not the latent v) on both backends, as the hand loop computes it."""
    net = rate_network(backend)
    coefficients = coefficients_for(OJA, SIZES, 2, seed=11, scale=0.3)
    weights = sample_weights(SIZES, 2, scale=0.5, rng=12, signs=signs())
    inputs = lifetime_inputs(SIZES, 13)
    net.reset(coefficients, weights)
    expected = hand_lifetime(OJA, SIZES, True, coefficients, weights, inputs)
    for x, truth in zip(inputs, expected):
        net.step(x)
        for got, want in zip(net.weights, truth):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    # with v read in place of w the smooth layers would differ: the test can tell them apart
    c = make_constraint(constraints()[2])
    v = c.to_latent(weights[0], 0)
    assert np.abs(reference_update(v, inputs[0], np.ones((2, 4)), coefficients[0], OJA, w=weights[0])
                  - reference_update(v, inputs[0], np.ones((2, 4)), coefficients[0], OJA)).max() > 1e-3


# ---------------------------------------------------------------------- the lif network
@functools.lru_cache(maxsize=None)
def lif(rule, fold):
    """Brian2's numpy target: the code the cython target compiles, without a compile (a cold
    Brian2 cache would take this file past a minute)."""
    return SpikingPlasticNetwork((3, 4, 2), rule, 2, dtype="float64", fold_eta=fold, target="numpy")


def test_off_copy_signs_follow_the_parity_of_w():
    """Folded: a coefficient is negated on the off copy when its term reads w an even number of
    times; with eta stored apart (and negated) the eta-scaled terms the other way round."""
    folded = ("A", "E", "G", "D", "F")
    assert off_copy_negated(PARITY, folded) == {"A", "G", "D"}
    assert off_copy_negated(PARITY, ("eta",) + folded) == {"eta", "E"}
    # every registered rule stores exactly what it did before: eta and D_out when eta is
    # apart, else every coefficient (so their numbers are unchanged)
    for spec in RULES.values():
        for stored in (rules.synapse_fields(spec, True), rules.synapse_fields(spec, False)):
            before = (("eta",) + tuple(t.coefficient for t in spec.terms if not t.eta_scaled)
                      if "eta" in stored else stored)
            assert off_copy_negated(spec, stored) == set(before)


@pytest.mark.parametrize("fold", [True, False], ids=["folded", "eta-apart"])
def test_lif_rule_reading_w_keeps_the_off_copy_the_negative(fold):
    """20 env steps of a rule with odd, even and no w: the off copy is exactly -w every step (with
    every coefficient signed as for a rule without w, max|w_on + w_off| was 48.5 after them), and
    the 20th step is reference_update on the traces with the on copy's w."""
    net = lif(PARITY, fold)
    rng = np.random.default_rng(5)
    coefficients = coefficients_for(PARITY, net.sizes, 2, seed=6, scale=0.1)
    net.reset(coefficients, sample_weights(net.sizes, 2, scale=1.0, rng=rng))
    for step in range(20):
        before = net.weights
        net.step(rng.uniform(-1, 1, (2, 3)))
        for layer, copies in enumerate(net._w):
            copies = copies.reshape(2, net.sizes[layer], 2, net.sizes[layer + 1])
            np.testing.assert_array_equal(copies[:, :, 1], -copies[:, :, 0])
    traces = net.traces()
    assert any(np.abs(t).max() > 0.05 for t in traces[1:])  # the network spikes
    for layer in range(2):
        expected = reference_update(before[layer], traces[layer], traces[layer + 1], coefficients[layer], PARITY)
        np.testing.assert_allclose(net.weights[layer], expected, rtol=1e-10, atol=1e-12)
        assert np.abs(net.weights[layer] - before[layer]).max() > 1e-3


# ------------------------------------------------------------------ names of coefficients
EXPECTED = ("a coefficient's name must be a Python identifier that is no keyword, factor, state, state constant, "
            "eta, dw_local, variable of the Brian2 models (rule_names.BACKEND_NAMES) or name Brian2 reserves (units, "
            "functions, constants, t, xi_*, *_pre, *_post, _*, Cython's words)")


def checked_rule(name: str) -> RuleSpec:
    """A rule with a coefficient ``name``, checked as a Brian2 network checks it before building
    (Brian2's and Cython's names; the rest when the RuleSpec is made)."""
    spec = RuleSpec("X", (HEBBIAN, Term(name, ("pre",), "x")))
    rule_names.check_brian_names(spec)
    return spec


def test_brian2_names_are_checked_when_a_network_is_built_not_when_a_rule_is_made():
    """Brian2's import costs about 1.9 s: a rule (a plug-in's) is made without it; the network
    that needs Brian2 refuses the name in one line before Brian2 fails in many."""
    spec = RuleSpec("X", (HEBBIAN, Term("exp", ("pre",), "x")))
    with pytest.raises(ValueError, match=r"^rule 'X': coefficient 'exp': Brian2 reserves it \('exp' is the name of a "):
        make_network((2, 2), spec, population=1)
    assert make_network((2, 2), spec, population=1, backend="numpy").rule is spec


@pytest.mark.parametrize("name, why", [
    ("w", "it is a factor"),
    ("post", "it is a factor"),
    ("elig", "it is a factor"),
    ("decay_e", "it is a rule state or a state's constant"),
    ("dw_local", "it names the learning rate or the rules' local update"),
    ("r", "the Brian2 models already use it"),
    ("rbar", "the Brian2 models already use it"),
    ("m", "the Brian2 models already use it"),
    ("v", "the Brian2 models already use it"),
    ("lastupdate", "the Brian2 models already use it"),
    ("j", "the Brian2 models already use it"),
    ("lambda", "it is a Python keyword"),
    ("my coef", "it is not a Python identifier"),
    ("2A", "it is not a Python identifier"),
    ("mV", "Brian2 reserves it ('mV' is the name of a unit, cannot be used as a variable name)"),
    ("exp", "Brian2 reserves it ('exp' is the name of a function, cannot be used as a variable name)"),
    ("pi", "Brian2 reserves it ('pi' is the name of a constant, cannot be used as a variable name)"),
    ("xi_1", "Brian2 reserves it ('xi_1' has a special meaning in equations and cannot be used as a variable name)"),
    ("A_pre", "Brian2 reserves it ('A_pre' cannot be used as a variable name, the '_pre' and '_post' suffixes are "
              "used to refer to pre- and post-synaptic variables in synapses)"),
    ("cdef", "Brian2 reserves it ('cdef' is a word of its Cython target's code)"),
    ("sizeof", "Brian2 reserves it ('sizeof' is a word of its Cython target's code)"),
])
def test_a_coefficient_name_the_backends_cannot_take_is_refused_in_one_line(name, why):
    with pytest.raises(ValueError) as e:
        checked_rule(name)
    assert str(e.value) == f"rule 'X': coefficient {name!r}: {why}; {EXPECTED}"
    assert "\n" not in str(e.value)


def test_a_state_constant_of_the_rule_itself_is_refused():
    """A rule's own state (not registered in STATES): its names are checked per rule."""
    state = rules.SynapticState("trace", "k_t * trace + dw_local", ("k_t",), "a trace")
    with pytest.raises(ValueError, match=r"^rule 'X': coefficient 'k_t': it is a rule state or a state's constant; "):
        RuleSpec("X", (HEBBIAN, Term("k_t", (), "x")), state=(state,))


def test_good_names_pass_and_the_registry_names_pass_brian2():
    assert RuleSpec("E_ok", (HEBBIAN, Term("E", ("post",), "x"), Term("decay_w", ("w",), "y"))).fields == \
        ("A", "E", "decay_w")
    # the names the check takes without importing Brian2 pass Brian2's own check
    for spec in list(RULES.values()) + [three_factor(r) for r in RULES.values()]:
        for name in spec.fields:
            if name != "eta":
                rule_names._BRIAN_ACCEPTED.discard(name)
                assert rule_names._brian_refusal(name) is None, name
                assert name in rule_names._BRIAN_ACCEPTED


def test_every_variable_of_the_built_networks_is_refused_as_a_coefficient():
    """The variables of rate networks (a three-factor rule, gate, moving averages, every
    constraint) and of lif networks (dendrites, Poisson input): none can name a coefficient."""
    nets = [rate_network("brian2"), rate_network("brian2", three_factor(OJA), False, rule_every=2, rate_tau=3.0),
            lif(PARITY, True),
            SpikingPlasticNetwork((2, 2), "ABCD_lr", 1, neuron={"dendrites": True, "encoding": "poisson",
                                                                "poisson_seed": 1}, target="numpy")]
    names = set()
    for net in nets:
        own = set(net.rule.fields) | {s.name for s in net.rule.state} | set(net.rule.constants)
        for obj in net._net.objects:
            names |= {n for n in getattr(obj, "variables", {}) if not n.startswith("_")} - own
    assert {"w", "v", "r", "rbar", "m", "g", "s_dale", "g_dale", "xs", "x", "J", "v_d", "spike_in"} <= names
    for name in sorted(names):
        with pytest.raises(ValueError, match=f"^rule 'X': coefficient '{name}': "):
            checked_rule(name)


# ------------------------------------------------------------------------ names of rules
def test_a_rule_name_with_plus_is_refused_but_three_factor_builds_name_mod():
    message = ("rule 'Oja+mod': a rule's name holds no '+' (NAME+mod is the three-factor version three_factor() "
               "builds of rule NAME): register the plain rule under a name without '+'")
    with pytest.raises(ValueError) as e:
        RuleSpec("Oja+mod", OJA.terms, True)
    assert str(e.value) == message
    with pytest.raises(ValueError, match=r"^rule 'A\+B': a rule's name holds no '\+'"):
        RuleSpec("A+B", (HEBBIAN,))
    built = three_factor(OJA)
    assert built.name == "OJA_lr+mod" and built.fields == ("eta", "A", "E", "eta_m")
    assert get_rule("ABCD_lr+mod").name == "ABCD_lr+mod"
    assert three_factor(RuleSpec("ABC_D", (HEBBIAN, DRIFT_OUT))).name == "ABC_D+mod"


def test_making_and_checking_a_rule_imports_no_brian2():
    """A plug-in's rule is made at every command's start: its names are checked without Brian2's
    1.9 s import, which only building a Brian2 network pays (rule_names.check_brian_names)."""
    code = ("import sys; from spikehebb.rules import RuleSpec, HEBBIAN, Term; "
            "RuleSpec('Oja_x', (HEBBIAN, Term('E', ('post', 'post', 'w'), 'decay')), True); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'brian2'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
