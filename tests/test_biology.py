"""Biology-minded networks (issue 11): Dale's law, non-negative rates, the three-factor rule,
lognormal weights, the rule every K steps on averaged rates."""

import math

import gymnasium as gym
import numpy as np
import pytest

from spikehebb.agents import AgentConfig
from spikehebb.biology import check_agent_task, dale_constraint, dale_signs
from spikehebb.coding import IdentityDecoder, OnOffEncoder, PairDecoder, RawEncoder
from spikehebb.config import TaskConfig
from spikehebb.network import LOGNORMAL_SIGMA, make_network, sample_weights
from spikehebb.network.constraints import DaleClip, DaleSmooth, DaleSquareplus
from spikehebb.rules import get_rule, reference_update, three_factor
from spikehebb.tasks import EpisodeRules, Task, get_task, positive_task

SIZES = (6, 5, 4, 3)
P = 3


def _coefficients(rule, scale, seed, sizes=SIZES, population=P):
    spec = get_rule(rule)
    rng = np.random.default_rng(seed)
    return [rng.normal(0, scale, (population, a, b, spec.k)) for a, b in zip(sizes[:-1], sizes[1:])]


def _lifetime(net, rule, scale, n_steps=30, seed=0, modulator=True):
    """Arm ``net`` with random coefficients (N(0, scale)) and Dale-signed weights; yield after each step."""
    rng = np.random.default_rng(seed + 1)
    signs = dale_signs(net.sizes, 0.7, seed)
    net.reset(_coefficients(rule, scale, seed, net.sizes, net.population), sample_weights(net.sizes, net.population, rng=seed, signs=signs))
    for _ in range(n_steps):
        m = rng.normal(0, 1, net.population) if modulator else None
        yield net.step(rng.normal(0, 2, (net.population, net.sizes[0])), m)


# ------------------------------------------------------------------------------- Dale's law
def test_dale_signs_are_seeded_and_count_the_fraction():
    a, b = dale_signs((28, 128, 64, 8), 0.8, seed=3), dale_signs((28, 128, 64, 8), 0.8, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert [int((s > 0).sum()) for s in a] == [22, 102, 51, 6]  # round(0.8 * n)
    assert not all(np.array_equal(x, y) for x, y in zip(a, dale_signs((28, 128, 64, 8), 0.8, seed=4)))
    assert all(np.all(s == 1) for s in dale_signs((5, 7), 1.0, 0))


@pytest.mark.parametrize("fraction", [0, -0.1, 1.01, float("nan"), True])
def test_dale_fraction_outside_zero_one_is_refused(fraction):
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        AgentConfig(dale=fraction)


@pytest.mark.parametrize("mode", ["clip", "smooth", "squareplus"])
@pytest.mark.parametrize("scale", [0.01, 1.0, 1e3, 1e6])
def test_dale_signs_never_flip_for_any_member_at_any_step(mode, scale):
    signs = dale_signs(SIZES, 0.7, 0)
    rule = "ABCD_lr+mod"
    net = make_network(SIZES, rule, P, backend="numpy", dtype="float64", baseline_tau=10.0,
                       constraints=[dale_constraint(SIZES, 0.7, mode, 0)])
    for _ in _lifetime(net, rule, scale):
        for layer, w in enumerate(net.weights):
            s = signs[layer].astype(float)[None, :, None]
            assert np.all(np.isfinite(w))
            assert np.all(s * w >= 0), f"layer {layer}: a weight crossed its unit's sign"


def test_balanced_gains_make_e_and_i_efficacies_sum_alike():
    c = dale_constraint((8, 5, 3), 0.75, "clip", 0, balance=True)
    g = c.input_gain(0)
    s = c.signs[0]
    assert int((s > 0).sum()) == 6
    np.testing.assert_allclose(g[s > 0], 8 / 12)  # n / (2 n_E)
    np.testing.assert_allclose(g[s < 0], 8 / 4)  # n / (2 n_I)
    assert g[s > 0].sum() == pytest.approx(g[s < 0].sum()) == pytest.approx(4.0)
    assert dale_constraint((8, 5, 3), 0.75, "clip", 0).input_gain(0) is None
    np.testing.assert_array_equal(dale_constraint((4, 3), 1.0, "clip", 0, balance=True).input_gain(0), np.ones(4))


@pytest.mark.parametrize("backend", ["numpy", pytest.param("brian2", marks=pytest.mark.slow)])
def test_balanced_forward_pass_sends_each_rate_with_its_unit_gain(backend):
    sizes = (8, 5, 3)
    constraint = dale_constraint(sizes, 0.75, "clip", 2, balance=True)
    net = make_network(sizes, "ABCD_lr", 2, backend=backend, dtype="float64", constraints=[constraint])
    w = sample_weights(sizes, 2, rng=4, signs=dale_signs(sizes, 0.75, 2))
    net.reset(_coefficients("ABCD_lr", 0.0, 0, sizes, 2), w)  # a zero rule: the weights stay
    x = np.random.default_rng(5).normal(0, 1, (2, 8))
    out = net.step(x)
    hidden = np.tanh(np.einsum("pi,pij->pj", x * constraint.input_gain(0), w[0]))
    want = np.tanh(np.einsum("pi,pij->pj", hidden * constraint.input_gain(1), w[1]))
    np.testing.assert_allclose(out, want, rtol=1e-12)
    np.testing.assert_allclose(net.weights[0], w[0])  # the rule and the clip act on w, not on g * w


def test_dale_clip_is_the_hand_computed_clip():
    c = DaleClip([[1, -1], [1, 1]])
    w = np.array([[[0.3, -0.2], [0.4, -0.1]]])
    c.apply(w, 0)
    np.testing.assert_array_equal(w, [[[0.3, 0.0], [0.0, -0.1]]])


def test_dale_smooth_maps_latent_and_back():
    c = DaleSmooth([[1, -1, 1], [1, 1]])
    w = np.array([[[0.05, 0.2], [-0.1, -0.003], [1e-9, 3.0]]])
    v = c.to_latent(w, 0)
    back = c.from_latent(v, 0)
    expected = w.copy()
    expected[0, 2, 0] = DaleSmooth.MIN_MAGNITUDE  # raised to the floor
    np.testing.assert_allclose(back, expected, rtol=1e-9)
    # softplus by hand at one point: s = -1, v = 0.7 -> w = -log(1 + e^-0.7)
    assert c.from_latent(np.full((1, 3, 2), 0.7), 0)[0, 1, 0] == pytest.approx(-math.log1p(math.exp(-0.7)))


def test_dale_squareplus_maps_latent_and_back():
    c = DaleSquareplus([[1, -1, 1], [1, 1]])
    w = np.array([[[0.05, 0.2], [-0.1, -0.003], [1e-9, 3.0]]])
    back = c.from_latent(c.to_latent(w, 0), 0)
    expected = w.copy()
    expected[0, 2, 0] = DaleSquareplus.MIN_MAGNITUDE
    np.testing.assert_allclose(back, expected, rtol=1e-9)
    # by hand: s = -1, v = 0.3 -> w = -(-0.3 + sqrt(0.09 + 0.04)) / 2; v = 0 -> |w| = c = 0.1
    latent = np.full((1, 3, 2), 0.3)
    assert c.from_latent(latent, 0)[0, 1, 0] == pytest.approx(-(-0.3 + math.sqrt(0.13)) / 2)
    assert c.from_latent(np.zeros((1, 3, 2)), 0)[0, 0, 0] == pytest.approx(0.1)


def test_initial_weights_follow_dale_signs():
    signs = dale_signs(SIZES, 0.5, 1)
    for init in ("uniform", "normal", "lognormal"):
        for layer, w in enumerate(sample_weights(SIZES, 4, init, 0.1, rng=0, signs=signs)):
            assert np.all(w * signs[layer][None, :, None] > 0)
    plain = sample_weights(SIZES, 4, "uniform", 0.1, rng=0)
    signed = sample_weights(SIZES, 4, "uniform", 0.1, rng=0, signs=signs)
    assert all(np.array_equal(np.abs(a), np.abs(b)) for a, b in zip(plain, signed))  # same draws


def test_lognormal_magnitudes():
    (w,) = sample_weights((400, 500), 1, "lognormal", 0.1, rng=0)
    log_m = np.log(np.abs(w))
    assert log_m.std() == pytest.approx(LOGNORMAL_SIGMA, rel=0.01)
    assert np.abs(w).mean() == pytest.approx(0.05, rel=0.02)  # scale / 2, the uniform's mean |w|
    assert (w > 0).mean() == pytest.approx(0.5, abs=0.01)


# --------------------------------------------------------------------- non-negative rates
@pytest.mark.parametrize("scale", [0.01, 1.0, 1e6])
def test_rates_never_negative(scale):
    net = make_network((56, 16, 8, 16), "ABCD_lr", 4, backend="numpy", dtype="float64", activation="rtanh",
                       constraints=[dale_constraint((56, 16, 8, 16), 0.8, "clip", 0)])
    enc = OnOffEncoder(RawEncoder(28))
    rng = np.random.default_rng(0)
    signs = dale_signs(net.sizes, 0.8, 0)  # the constraint's: reset refuses weights against them
    net.reset(_coefficients("ABCD_lr", scale, 0, net.sizes, 4), sample_weights(net.sizes, 4, rng=0, signs=signs))
    for _ in range(40):
        net.step(enc(rng.normal(0, 3, (4, 28))))
        assert all(np.all(r >= 0) for r in net.activations)


def test_on_off_pairs_and_agonist_antagonist_decoding():
    x = np.array([[0.5, -2.0, 0.0]])
    np.testing.assert_array_equal(OnOffEncoder(RawEncoder(3))(x), [[0.5, 0, 0, 0, 2.0, 0]])
    np.testing.assert_array_equal(PairDecoder(IdentityDecoder())(np.array([[0.75, 0.25, 0.5, 0.5]])), [[0.25, -0.25]])


def test_positive_task_doubles_the_ends_and_refuses_unpairable_decoders():
    ant = positive_task(get_task("ant"))
    assert ant.sizes == (56, 128, 64, 16) and ant.activation == "rtanh"
    assert ant.encoder().n_inputs == 56
    with pytest.raises(ValueError, match="cannot pair outputs"):
        TaskConfig("car", positive=True)


def test_shared_rules_of_the_three_factor_rule_have_its_six_fields():
    from spikehebb.config import StrategyConfig, TrainConfig

    config = TrainConfig(agent=AgentConfig(modulated=True), strategy=StrategyConfig(rho=128))
    assert config.shared_rule_fields() == 6  # eta, A, B, C, D, eta_m: 96 rules of 6 coefficients
    assert config.make_strategy(12_288 * 6).n_rules == 96
    assert TrainConfig(strategy=StrategyConfig(rho=128)).shared_rule_fields() == 5


def test_a_three_factor_rule_name_is_given_as_the_plain_rule_and_modulated():
    with pytest.raises(ValueError, match=r"rule='ABCD_lr\+mod': give the plain rule 'ABCD_lr' and modulated=True"):
        AgentConfig(rule="ABCD_lr+mod")
    with pytest.raises(ValueError, match="give the plain rule 'AD'"):
        AgentConfig(rule="AD+mod", modulated=True)
    assert AgentConfig(rule="AD", modulated=True).network_rule == "AD+mod"


def test_modulated_needs_a_modulator_signal():
    task = get_task("ant").replace(modulator="none")
    check_agent_task(AgentConfig(), task)
    with pytest.raises(ValueError, match="modulator signal"):
        check_agent_task(AgentConfig(modulated=True), task)


def test_biology_needs_a_rule():
    with pytest.raises(ValueError, match="need a plastic rule"):
        AgentConfig(kind="static", rule=None, dale=0.8)


# -------------------------------------------------------------------------- three factors
def test_three_factor_layout_and_hand_computed_steps():
    spec = three_factor("ABCD_lr")
    assert spec.fields == ("eta", "A", "B", "C", "D", "eta_m") and get_rule("ABCD_lr+mod") == spec
    # One synapse, linear units, two steps, by hand.
    eta, A, B, C, D, eta_m, tau = 0.5, 1.0, 0.2, -0.3, 0.1, 2.0, 4.0
    decay = math.exp(-1 / tau)
    coefficients = [np.array([eta, A, B, C, D, eta_m]).reshape(1, 1, 1, 6)]
    net = make_network((1, 1), spec, 1, backend="numpy", dtype="float64", activation="linear",
                       eligibility_tau=tau, baseline_tau=None)
    w0 = 0.4
    net.reset(coefficients, [np.full((1, 1, 1), w0)])
    w, e = w0, 0.0
    for x, m in [(1.5, 0.0), (-2.0, 3.0)]:
        net.step(np.array([[x]]), np.array([m]))
        o = w * x
        local = eta * (A * x * o + B * x + C * o + D)
        e = decay * e + local
        w = w + local + eta_m * m * e
        assert net.weights[0][0, 0, 0] == pytest.approx(w, rel=1e-12)
    # the reference form agrees
    state = {"elig": np.zeros((1, 1, 1))}
    ref = reference_update(np.full((1, 1, 1), w0), np.array([[1.5]]), np.array([[w0 * 1.5]]), coefficients[0], spec,
                           np.array([0.0]), state, {"decay_e": decay})
    assert ref[0, 0, 0] == pytest.approx(w0 + eta * (A * 1.5 * 0.6 + B * 1.5 + C * 0.6 + D))


def test_modulator_baseline_by_hand():
    net = make_network((2, 2), "ABCD+mod", 2, backend="numpy", dtype="float64", baseline_tau=4.0)
    net.reset(_coefficients("ABCD+mod", 0.01, 0, (2, 2), 2), sample_weights((2, 2), 2, rng=0))
    b = np.zeros(2)
    for s in ([1.0, -2.0], [3.0, 0.5], [0.0, 1.0]):
        net.step(np.ones((2, 2)), np.array(s))
        np.testing.assert_allclose(net.modulator, np.array(s) - b)
        b = b + (np.array(s) - b) / 4.0
    net.reset(_coefficients("ABCD+mod", 0.01, 0, (2, 2), 1), sample_weights((2, 2), 1, rng=0), members=[1])
    net.step(np.ones((2, 2)), np.array([1.0, 1.0]))
    assert net.modulator[1] == 1.0  # a new lifetime starts its baseline at 0


class _SignalEnv(gym.Env):
    """Observation 3 zeros; info["progress"] of env step k (counted from 1) is 10 * k."""

    observation_space = gym.spaces.Box(-1, 1, (3,))
    action_space = gym.spaces.Box(-1, 1, (2,))

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.k = 0
        return np.zeros(3), {}

    def step(self, action):
        self.k += 1
        return np.zeros(3), 0.0, False, False, {"progress": 10.0 * self.k}


def test_the_modulator_arrives_on_the_step_it_belongs_to():
    from spikehebb.agents import genome_parts
    from spikehebb.genome import GenomeMap
    from spikehebb.rollout import Rollout

    task = Task(
        name="signal", make_env=lambda variant, **kw: _SignalEnv(), variants=("default",),
        train_variants=("default",), test_variants=("default",), sizes=(3, 2), activation="tanh",
        encoder=lambda: RawEncoder(3), decoder=IdentityDecoder, fitness_term="progress",
        episode=EpisodeRules(burn_in_steps=2, max_env_steps=8, grace_steps=100, patience=5),
    )
    agent = AgentConfig(backend="numpy", dtype="float64", modulated=True, baseline_tau=2.0)
    rollout = Rollout(task, agent, 1)
    genome = GenomeMap.of(genome_parts(agent, task))
    params = np.zeros(genome.n_params)
    seen = []
    rollout.run("default", lambda i: {**genome.split(params), "weights": [np.zeros((1, 3, 2))]}, [0],
                lambda t, a, actions, infos: seen.append(a.network.modulator[0]))
    # Network step t reads the signal of the env step that network step t-1's action caused:
    # 0 at t = 0 (nothing happened yet), then 30, 40, ... (the env's steps 1 and 2 are the
    # burn-in, which the network never sees), minus the baseline b_t = b_{t-1} + (s_t - b_{t-1}) / 2.
    signals, b, expected = [0.0, 30.0, 40.0, 50.0, 60.0, 70.0], 0.0, []
    for s in signals:
        expected.append(s - b)
        b += (s - b) / 2
    np.testing.assert_allclose(seen, expected)


# ------------------------------------------------------------------ a slower rule timescale
@pytest.mark.parametrize("K, tau", [(3, 2.5), (3, None), (1, 1.0), (1, None)],
                         ids=["every-3-averaged", "every-3-raw", "every-step-tau-1", "every-step-raw"])
def test_rule_every_k_on_averages_against_the_reference(K, tau):
    """The rule every K steps of each member, on moving averages of the rates over tau steps (the
    raw rates without tau; with tau = 1 the average is the rate), against a plain loop."""
    rule = "ABCD_lr"
    net = make_network(SIZES, rule, P, backend="numpy", dtype="float64", rule_every=K, rate_tau=tau)
    coefficients, weights = _coefficients(rule, 0.05, 0), sample_weights(SIZES, P, rng=0)
    net.reset(coefficients, weights)
    w = [x.copy() for x in weights]
    avg = [np.zeros((P, n)) for n in SIZES]
    rng = np.random.default_rng(0)
    for t in range(10):
        x = rng.normal(0, 1, (P, SIZES[0]))
        net.step(x)
        rates = [x]
        for layer in w:
            rates.append(np.tanh(np.einsum("pi,pij->pj", rates[-1], layer)))
        avg = rates if tau is None else [a + (r - a) / tau for a, r in zip(avg, rates)]
        if (t + 1) % K == 0:
            w = [reference_update(w[l], avg[l], avg[l + 1], coefficients[l], rule) for l in range(len(w))]
        for got, want in zip(net.weights, w):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert all(np.abs(got - start).max() > 1e-3 for got, start in zip(net.weights, weights))  # the rule moved them


# ----------------------------------------------------------------------- Brian2 against NumPy
OPTIONS = {
    "dale_clip": dict(rule="ABCD_lr", constraints="clip"),
    "dale_smooth": dict(rule="ABCD_lr", constraints="smooth"),
    "dale_squareplus": dict(rule="ABCD_lr", constraints="squareplus"),
    "dale_balanced": dict(rule="ABCD_lr", constraints="clip", balance=True),
    "positive": dict(rule="ABCD_lr", activation="rtanh"),
    "modulated": dict(rule="ABCD_lr+mod", baseline_tau=5.0, eligibility_tau=7.0),
    "rule_every": dict(rule="ABCD", rule_every=3, rate_tau=4.0),
}
#: Every option at once: one Brian2 build in the quick suite (the per-option ones are slow).
ALL = dict(rule="ABCD_lr+mod", constraints="smooth", balance=True, activation="rtanh", baseline_tau=5.0, rule_every=2, rate_tau=3.0)


def _brian_against_numpy(options, population=P):
    options = dict(options)
    rule = options.pop("rule")
    mode = options.pop("constraints", None)
    if mode:
        options["constraints"] = [dale_constraint(SIZES, 0.7, mode, 0, balance=options.pop("balance", False))]
    results = []
    for backend in ("numpy", "brian2"):
        net = make_network(SIZES, rule, population, backend=backend, dtype="float64", **options)
        outputs = np.array(list(_lifetime(net, rule, 0.05, n_steps=25)))
        results.append((outputs, net.weights, net.activations))
    (o1, w1, a1), (o2, w2, a2) = results
    np.testing.assert_allclose(o2, o1, rtol=1e-9, atol=1e-12)
    for x, y in zip(w2, w1):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12)
    return results


def test_brian2_matches_numpy_with_every_option_at_once():
    (outputs, weights, rates), _ = _brian_against_numpy(ALL)
    signs = dale_signs(SIZES, 0.7, 0)
    assert all(np.all(w * s[None, :, None] >= 0) for w, s in zip(weights, signs))
    assert all(np.all(r >= 0) for r in rates[1:])


@pytest.mark.slow
@pytest.mark.parametrize("option", list(OPTIONS))
def test_brian2_matches_numpy_per_option(option):
    _brian_against_numpy(OPTIONS[option])


@pytest.mark.slow
@pytest.mark.parametrize("scale", [1.0, 1e6])
def test_brian2_dale_and_rates_hold_with_huge_coefficients(scale):
    rule = "ABCD_lr+mod"
    for mode in ("clip", "smooth", "squareplus"):
        net = make_network(SIZES, rule, P, backend="brian2", dtype="float32", activation="rtanh",
                           baseline_tau=5.0, constraints=[dale_constraint(SIZES, 0.7, mode, 0)])
        signs = dale_signs(SIZES, 0.7, 0)
        for _ in _lifetime(net, rule, scale):
            assert all(np.all(w * s[None, :, None] >= 0) for w, s in zip(net.weights, signs))
            assert all(np.all(r >= 0) for r in net.activations[1:])


def test_option_combinations_that_would_misbehave_are_refused_in_one_line():
    from spikehebb.network.spiking import SpikingPlasticNetwork
    from spikehebb.tasks import positive_task

    car = get_task("car")
    check_agent_task(AgentConfig(dale=0.8, dale_mode="clip"), car)  # clip acts on w: max_abs follows it
    for mode in ("smooth", "squareplus"):
        with pytest.raises(ValueError, match=f"--dale-mode {mode} acts on a latent weight that task 'car''s max_abs"):
            check_agent_task(AgentConfig(dale=0.8, dale_mode=mode), car)
    with pytest.raises(ValueError, match="--positive is an option of rate networks"):
        check_agent_task(AgentConfig(kind="lif"), positive_task(get_task("ant")))
    with pytest.raises(ValueError, match="the evolved initial weights carry no Dale signs"):
        AgentConfig(dale=0.8, evolve_initial_weights=True)
    sizes = (4, 3, 2)
    with pytest.raises(ValueError, match=r"dale_clip: signs for layers of \[1, 3, 2\] units; this network's layers have \[4, 3, 2\]"):
        make_network(sizes, "ABCD_lr", 1, backend="numpy", constraints=[DaleClip([[-1], [1, 1, 1], [1, 1]])])
    signs = dale_signs(sizes, 0.5, seed=0)
    with pytest.raises(ValueError, match="the lif network runs constraints on w alone; dale_smooth reparametrises"):
        SpikingPlasticNetwork(sizes, "ABCD_lr", 1, constraints=[DaleSmooth(signs)])
    with pytest.raises(ValueError, match=r"dale_clip scales inputs \(balance\)"):
        SpikingPlasticNetwork(sizes, "ABCD_lr", 1, constraints=[DaleClip(signs, balance=True)])
    # unbalanced clipping built, and every excitatory unit's off neuron inhibited through -w
    with pytest.raises(ValueError, match=r"^the lif network cannot keep Dale's law \(dale_clip\): every unit's off "
                                         r"neuron carries -w, so an excitatory unit would inhibit through it$"):
        SpikingPlasticNetwork(sizes, "ABCD_lr", 1, constraints=[DaleClip(signs)])
    # signs are checked before the cast to int8, which cut 1.5 to 1 and -1.7 to -1
    for bad in ([1.5, -1.7], [True, False]):
        with pytest.raises(ValueError, match=r"dale_clip: signs must be sequences of \+1 and -1 per layer"):
            DaleClip([bad, [1, 1, 1], [1, 1]])
