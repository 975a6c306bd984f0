"""The spiking network (spikehebb.network.spiking) and the lif agent: single neurons against
their closed forms, the rule on traces against a hand-computed step, numpy target against cython,
lifetimes on the ant and the car, bad input."""

import functools
import math

import numpy as np
import pytest

from spikehebb.network import sample_weights
from spikehebb.network.spiking import LIFParams, SpikingPlasticNetwork, trace_rule_code
from spikehebb.rules import get_rule, reference_update


@functools.lru_cache(maxsize=None)
def network(sizes, rule, population, control_period=0.0165, dtype="float64", target="cython", **neuron):
    return SpikingPlasticNetwork(sizes, rule, population, neuron=neuron, control_period=control_period,
                                 dtype=dtype, target=target)


def arm(net, seed=0, scale=1.0, coef=0.01):
    rng = np.random.default_rng(seed)
    weights = sample_weights(net.sizes, net.population, scale=scale, rng=rng)
    coefficients = [rng.normal(0, coef, s) for s in net.coefficient_shapes] if net.plastic else None
    net.reset(coefficients, weights)
    return coefficients, weights


# ------------------------------------------------------------------------- single neurons
def five_steps_then_one(net, seed=2):
    """Five env steps of inputs U(-1, 1), then a sixth: the weights before the sixth and the
    traces after it (the rule of that step reads them)."""
    rng = np.random.default_rng(seed)
    for _ in range(5):
        net.step(rng.uniform(-1, 1, (net.population, net.sizes[0])))
    before = net.weights
    net.step(rng.uniform(-1, 1, (net.population, net.sizes[0])))
    return before, net.traces()


def test_lif_first_spike_at_the_analytic_time():
    """Input neuron driven by a constant 20 mV (bias 0): v(t) = v_rest + 20 mV (1 - exp(-t/tau_m))
    crosses the threshold 15 mV above rest at T = -tau_m ln(1 - 15/20); with exact integration the
    first spike falls in the first substep ending after T."""
    dt = 1e-4  # one substep per env step of 0.1 ms
    net = network((1, 1), None, 1, control_period=dt, substeps=1, bias_mV=0.0, gain_mV=20.0)
    T = -5e-3 * math.log(1 - 15 / 20)  # 6.93 ms
    counts = []
    net.reset(None, [np.zeros((1, 1, 1))])
    for _ in range(200):
        net.step(np.ones((1, 1)))
        counts.append(net.spike_counts()[0][0, 0])
    first = next(k for k, c in enumerate(counts) if c[0] > 0) + 1  # substeps lived until the spike
    assert first == math.ceil(T / dt)
    assert all(c[1] == 0 for c in counts)  # the off neuron sees -20 mV and never fires
    # Brian2 stamps a spike at the start of the substep whose update crossed the threshold (here
    # (n - 1) dt, n = ceil(T/dt)) and holds the neuron for t_ref from that stamp; then it
    # integrates from the reset (= rest) again and needs n substeps as before.
    second = next(k for k, c in enumerate(counts) if c[0] > 0 and k + 1 > first) + 1
    assert (second - 1) * dt == pytest.approx((first - 1) * dt + 2e-3 + (math.ceil(T / dt) - 1) * dt)


def test_traces_and_readout_follow_their_closed_forms():
    """x(t) = sum over spikes exp(-(t - t_k)/tau_trace) (+1 per spike after the decay of its
    substep); the readout y_n = a y_{n-1} + (1 - a) count_n t_ref / (S dt)."""
    dt, S = 1e-4, 1
    net = network((1, 1), "ABCD_lr", 1, control_period=dt, substeps=S, bias_mV=0.0, gain_mV=40.0)
    net.reset([np.zeros((1, 1, 1, 5))], [np.zeros((1, 1, 1))])
    p = net.params
    x = y = 0.0
    a = math.exp(-dt * 1e3 / p.tau_readout_ms)
    for k in range(300):
        u = 1.0 if k < 150 else 0.0
        net.step(np.full((1, 1), u))
        c = net.spike_counts()[0][0, 0, 0]
        x = x * math.exp(-dt * 1e3 / p.tau_trace_ms) + c
        y = a * y + (1 - a) * c * p.refractory_ms * 1e-3 / dt
        np.testing.assert_allclose(net._x[0][0], x, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(net.activations[0][0, 0], y, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(net.traces()[0][0, 0], x * p.refractory_ms / p.tau_trace_ms, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------- the rule
def test_rule_on_traces_is_the_abcd_rule_with_traces_for_rates():
    assert trace_rule_code(get_rule("ABCD_lr")) == "w += A * xs_pre * xs_post + B * xs_pre + C * xs_post + D"
    net = network((3, 4, 2), "ABCD_lr", 2)
    coefficients, weights = arm(net, seed=1, coef=0.05)
    before, traces = five_steps_then_one(net)
    # hand-computed signed traces from the on/off neurons' x
    for layer, n in enumerate(net.sizes):
        x = net._x[layer].reshape(2, n, 2)
        np.testing.assert_allclose(traces[layer], (x[..., 0] - x[..., 1]) * net.t_ref * 1e3 / 10, rtol=1e-12)
    assert any(np.abs(t).max() > 0.05 for t in traces[1:])  # the network spikes
    for layer in range(2):
        expected = reference_update(before[layer], traces[layer], traces[layer + 1], coefficients[layer], "ABCD_lr")
        np.testing.assert_allclose(net.weights[layer], expected, rtol=1e-10, atol=1e-12)
        # the two Brian2 synapses of a weight (from the on and the off neuron) store w and -w
        w = net._w[layer].reshape(2, net.sizes[layer], 2, net.sizes[layer + 1])
        np.testing.assert_array_equal(w[:, :, 1], -w[:, :, 0])


@pytest.mark.parametrize("fold_eta", [True, False], ids=["folded", "eta-apart"])
def test_drift_outside_eta_on_traces_is_the_reference_rule(fold_eta):
    """The authors' code's ABCD_lr_D_in_and_out, dw = eta*(A xs_i xs_j + B xs_i + C xs_j + D) +
    D_out, on the traces: one env step against reference_update, and the off copies, which store
    eta and D_out negated when eta is apart (else every coefficient), stay exact negatives."""
    rule = "ABCD_lr_D_in_and_out"
    code = "A * xs_pre * xs_post + B * xs_pre + C * xs_post + D"
    assert trace_rule_code(get_rule(rule), fold_eta) == (f"w += {code} + D_out" if fold_eta else f"w += eta * ({code}) + D_out")
    net = SpikingPlasticNetwork((3, 4, 2), rule, 2, fold_eta=fold_eta, dtype="float64")
    coefficients, weights = arm(net, seed=1, coef=0.05)
    before, traces = five_steps_then_one(net)
    assert any(np.abs(t).max() > 0.05 for t in traces[1:])  # the network spikes
    for layer in range(2):
        expected = reference_update(before[layer], traces[layer], traces[layer + 1], coefficients[layer], rule)
        np.testing.assert_allclose(net.weights[layer], expected, rtol=1e-10, atol=1e-12)
        w = net._w[layer].reshape(2, net.sizes[layer], 2, net.sizes[layer + 1])
        np.testing.assert_array_equal(w[:, :, 1], -w[:, :, 0])
        for field, c in net._coef[layer].items():
            c = c.reshape(2, net.sizes[layer], 2, net.sizes[layer + 1])
            sign = -1 if fold_eta or field in ("eta", "D_out") else 1
            np.testing.assert_array_equal(c[:, :, 1], sign * c[:, :, 0])


@pytest.mark.parametrize("fold_eta", [True, False], ids=["folded", "eta-apart"])
def test_rule_per_substep_spreads_the_drift_outside_eta_too(fold_eta):
    """eta = 0.5, D = 0.02, D_out = 0.01 (ABCD_lr_D_in_and_out): every env step adds 0.5 * 0.02 +
    0.01 = 0.02 to every weight, also as S updates of dw / S (D_out carries 1/S as eta does)."""
    coefficients = [np.zeros((1, 2, 2, 6)), np.zeros((1, 2, 1, 6))]
    for c in coefficients:
        c[..., 0], c[..., 4], c[..., 5] = 0.5, 0.02, 0.01  # eta, D, D_out
    net = SpikingPlasticNetwork((2, 2, 1), "ABCD_lr_D_in_and_out", 1, neuron={"rule_every": "substep"},
                                fold_eta=fold_eta, dtype="float64")
    net.reset(coefficients, [np.zeros((1, 2, 2)), np.zeros((1, 2, 1))])
    for _ in range(3):
        net.step(np.zeros((1, 2)))
    for w, copies in zip(net.weights, net._w):
        np.testing.assert_allclose(w, 0.06, rtol=1e-9)
        copies = copies.reshape(w.shape[1], 2, w.shape[2])
        np.testing.assert_array_equal(copies[:, 1], -copies[:, 0])


@pytest.mark.parametrize("period, substeps, t_ref_steps, max_spikes", [
    (0.0165, None, 2, 8),   # the ant: dt = 1.03 ms, t_ref 2 ms runs as 2 substeps (Brian2 would floor it to 1)
    (0.020, None, 2, 10),   # the car: dt = 1 ms, 2 substeps exactly
    (0.0165, 8, 1, 8),      # dt = 2.06 ms: t_ref rounds to one substep
])
def test_a_saturated_unit_fires_at_the_rate_read_as_one(period, substeps, t_ref_steps, max_spikes):
    """At the strongest drive every neuron fires once per refractory period as run: the outputs
    and activations read 1, the traces the rule reads their hand-computed peak."""
    net = SpikingPlasticNetwork((3, 4, 2), "ABCD_lr", 1, control_period=period, neuron={"substeps": substeps},
                                dtype="float64")
    assert net.t_ref == pytest.approx(t_ref_steps * net.dt, rel=1e-12)
    net.reset([np.zeros((1, 3, 4, 5)), np.zeros((1, 4, 2, 5))], [np.full((1, 3, 4), 2.0), np.full((1, 4, 2), 2.0)])
    for _ in range(30):
        outputs = net.step(np.full((1, 3), 3.0))
    assert [int(c[..., 0].max()) for c in net.spike_counts()] == [max_spikes] * 3
    np.testing.assert_allclose(outputs, 1.0, rtol=1e-12)
    for values in net.activations:
        assert np.abs(values).max() <= 1 + 1e-12
    # the normalised trace of a spike train of period T = t_ref lies between its value just before
    # a spike and just after, (T / tau) exp(-T / tau) / (1 - exp(-T / tau)) and (T / tau) / (1 -
    # exp(-T / tau)), the mean 1 between them (with t_ref floored to one substep it reached ~2)
    ratio = net.t_ref / 0.010
    peak = ratio / (1 - math.exp(-ratio))
    for values in net.traces()[1:]:
        assert peak * math.exp(-ratio) - 1e-9 <= values.min() and values.max() <= peak + 1e-9


def test_a_run_recorded_before_the_rounded_period_reads_and_runs_as_it_ran():
    """A run file's neuron record without ``refractory`` (written before 2026-11-29) is read as
    "floored", Brian2's flooring of the nominal period, so the run resumes and tests as it ran
    (bit for bit against the code of that day, checked when the option was added); new runs
    record "rounded"."""
    from spikehebb.agents import AgentConfig

    old = LIFParams().to_dict()
    del old["refractory"], old["drive"]  # neither existed then
    assert LIFParams.of(old).refractory == "floored" and LIFParams.of({"substeps": 8}).refractory == "rounded"
    assert LIFParams.of(old).drive == "continuous"
    assert AgentConfig(kind="lif", options=old).options["refractory"] == "floored"
    assert AgentConfig(kind="lif").options["refractory"] == "rounded"
    net = SpikingPlasticNetwork((3, 4, 2), "ABCD_lr", 1, control_period=0.0165, neuron=old, dtype="float64")
    assert net.t_ref == 0.002
    net.reset([np.zeros((1, 3, 4, 5)), np.zeros((1, 4, 2, 5))], [np.full((1, 3, 4), 2.0), np.full((1, 4, 2), 2.0)])
    for _ in range(30):
        outputs = net.step(np.full((1, 3), 3.0))
    assert [int(c[..., 0].max()) for c in net.spike_counts()] == [16] * 3  # a spike every substep, as it was
    np.testing.assert_allclose(outputs, 16 * 0.002 / 0.0165, rtol=1e-9)  # 1.94: the old reading
    with pytest.raises(ValueError, match="lif: refractory must be one of"):
        LIFParams(refractory="ceil")


@pytest.mark.parametrize("drive", ["exact", "continuous"])
def test_a_pre_neuron_at_the_rate_read_as_one_drives_gain_times_w(drive):
    """The rate network's summed input in mV: a pre neuron firing at 1/t_ref through w = 0.1
    gives the post unit a mean drive of gain * w = 4 mV as its neurons read it, at the ant's
    dt = 1.03 ms. With the continuous-time jump (runs recorded before ``drive``) they read
    a e^-a / (1 - e^-a) = 0.764 of that, a = dt / tau_syn. One substep per step; the drive each
    substep's update read is recovered from the post neuron's exact membrane update (held below
    a far threshold): v' = v_inf + (v - v_inf) e^-b, v_inf = v_rest + bias + g, b = dt / tau_m."""
    neuron = {"substeps": 1, "drive": drive, "v_threshold_mV": 1000.0}
    net = SpikingPlasticNetwork((1, 1), None, 1, control_period=0.0165 / 16, neuron=neuron, dtype="float64")
    net.reset(None, [np.full((1, 1, 1), 0.1)])
    v = []
    for _ in range(400):
        net.step(np.full((1, 1), 1000.0))  # the input's on neuron fires whenever it is not refractory
        v.append(net._v[1][0])  # the post unit's on neuron
    p, decay = net.params, math.exp(-net.dt / 5e-3)
    v = np.array(v)
    read = (v[1:] - v[:-1] * decay) / (1 - decay) - (p.v_rest_mV + p.bias_mV) * 1e-3
    assert np.all(np.diff(read[198:]) != 0)  # the drive comes in jumps (a spike every second substep)
    a = net.dt / 2e-3
    fraction = 1.0 if drive == "exact" else a * math.exp(-a) / -math.expm1(-a)
    assert drive == "exact" or fraction == pytest.approx(0.764, abs=1e-3)
    np.testing.assert_allclose(read[198:398].mean(), 0.040 * 0.1 * fraction, rtol=1e-9)


def test_a_new_run_whose_refractory_period_does_not_divide_the_step_is_refused():
    """At 15 substeps of the ant's step (dt = 1.1 ms) the 2 ms period runs as 2 substeps: a unit
    could fire 8 times in a step, read as 1.07, and its outputs (actions) would leave [-1, 1]. A
    new run is refused in one line; the network itself still runs it (a stored run resumes)."""
    from spikehebb.agents import AgentConfig
    from spikehebb.config import TaskConfig, TrainConfig

    config = TrainConfig(task=TaskConfig("ant"), agent=AgentConfig(kind="lif", options={"substeps": 15}))
    with pytest.raises(ValueError, match=r"^lif: the refractory period of 2 ms runs as 2 substeps of 1.1 ms, which do "
                                         r"not divide the 15 substeps of an env step: a unit could fire 8 times in a step "
                                         r"\(1.07 of the rate read as 1\)"):
        config.check_new_run()
    TrainConfig(task=TaskConfig("ant"), agent=AgentConfig(kind="lif", options={"substeps": 16})).check_new_run()
    TrainConfig(task=TaskConfig("car"), agent=AgentConfig(kind="lif")).check_new_run()  # 20 substeps, 2 each
    floored = TrainConfig(task=TaskConfig("ant"), agent=AgentConfig(kind="lif", options={"refractory": "floored"}))
    with pytest.raises(ValueError, match=r"^lif: refractory='floored' is how run files recorded before 2026-11-29 ran"):
        floored.check_new_run()  # its units fire every substep at the ant's dt: outputs up to 1.94
    net = SpikingPlasticNetwork((3, 2), None, 1, neuron={"substeps": 15}, dtype="float64")
    net.reset(None, [np.full((1, 3, 2), 2.0)])
    for _ in range(10):
        outputs = net.step(np.full((1, 3), 3.0))
    assert net.spike_counts()[-1][..., 0].max() == 8 and outputs.max() > 1


@pytest.mark.parametrize("fold_eta, every", [(True, "env_step"), (False, "substep")], ids=["folded", "eta-apart"])
def test_off_copies_stay_the_on_copies_negated_bit_for_bit(fold_eta, every):
    """The off copy of a weight stores -w and the coefficients dw is linear in negated (eta when
    stored apart, else all), so the rule gives it exactly -dw: through float32 lifetimes, a
    re-armed slot and set_weights, the copies stay exact negatives."""
    net = SpikingPlasticNetwork((5, 6, 3), "ABCD_lr", 3, neuron={"rule_every": every}, fold_eta=fold_eta)
    _, initial = arm(net, seed=7, coef=0.05)
    rng = np.random.default_rng(8)
    for t in range(60):
        if t == 30:
            coefficients = [rng.normal(0, 0.05, (1,) + s[1:]) for s in net.coefficient_shapes]
            net.reset(coefficients, sample_weights(net.sizes, 1, rng=rng), members=[1])
            net.set_weights([w * np.float32(1.1) for w in net.weights])
        net.step(rng.uniform(-1, 1, (3, 5)))
    for layer, (w, shape) in enumerate(zip(net._w, net.weight_shapes)):
        (P, n_pre, n_post) = shape
        copies = w.reshape(P, n_pre, 2, n_post)
        np.testing.assert_array_equal(copies[:, :, 1], -copies[:, :, 0])
        assert np.abs(net.weights[layer] - initial[layer]).max() > 0.01  # the rule moved them
        for field, c in net._coef[layer].items():
            c = c.reshape(P, n_pre, 2, n_post)
            sign = -1 if field == "eta" or fold_eta else 1
            np.testing.assert_array_equal(c[:, :, 1], sign * c[:, :, 0])


def test_rule_per_substep_spreads_the_step_over_substeps():
    """Drift D alone: once per env step adds D, per substep adds D/S at each of the S substeps."""
    coefficients = [np.full((1, 2, 2, 3), 0.0), np.full((1, 2, 1, 3), 0.0)]
    for c in coefficients:
        c[..., 0], c[..., 2] = 1.0, 0.01  # eta = 1, A = 0, D = 0.01
    results = []
    for every in ("env_step", "substep"):
        net = network((2, 2, 1), "AD_lr", 1, rule_every=every)
        net.reset(coefficients, [np.zeros((1, 2, 2)), np.zeros((1, 2, 1))])
        for _ in range(3):
            net.step(np.zeros((1, 2)))
        results.append(net.weights)
    for a, b in zip(*results):
        np.testing.assert_allclose(a, 0.03, rtol=1e-9)
        np.testing.assert_allclose(b, 0.03, rtol=1e-9)


def test_rule_per_substep_is_the_rule_at_every_substep_with_eta_over_s():
    """A spiking network with the rule at each of its S substeps learns what a network of one
    substep per env step of T/S learns with eta / S, stepped S times per input; the rule once per
    env step learns something else."""
    S, T = 4, 0.0165
    rng = np.random.default_rng(3)
    spread = network((3, 4, 2), "ABCD_lr", 1, substeps=S, rule_every="substep")
    once = network((3, 4, 2), "ABCD_lr", 1, substeps=S, rule_every="env_step")
    fine = network((3, 4, 2), "ABCD_lr", 1, control_period=T / S, substeps=1)
    coefficients = [rng.normal(0, 0.5, shape) for shape in spread.coefficient_shapes]
    weights = sample_weights(spread.sizes, 1, rng=rng)
    over_s = [c.copy() for c in coefficients]
    for c in over_s:
        c[..., get_rule("ABCD_lr").index("eta")] /= S
    for net, c in ((spread, coefficients), (once, coefficients), (fine, over_s)):
        net.reset(c, weights)
    inputs = rng.uniform(-1, 1, (8, 1, 3))
    for x in inputs:
        spread.step(x)
        once.step(x)
        for _ in range(S):
            fine.step(x)
    assert any(np.abs(t).max() > 0.05 for t in fine.traces()[1:])  # the network spikes
    for a, b, c, w in zip(spread.weights, fine.weights, once.weights, weights):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
        assert np.abs(a - w).max() > 1e-3 and np.abs(a - c).max() > 1e-3


# ------------------------------------------------------------------------ whole network
@pytest.mark.parametrize("neuron", [{}, {"dendrites": True}], ids=["point", "dendrites"])
def test_numpy_target_matches_cython_over_100_env_steps(neuron):
    nets = [network((5, 6, 3), "ABCD_lr", 2, target=t, **neuron) for t in ("numpy", "cython")]
    rng = np.random.default_rng(3)
    inputs = rng.uniform(-1, 1, (100, 2, 5))
    out = []
    for net in nets:
        arm(net, seed=4, coef=0.02)
        steps = [(net.step(u), net.spike_counts()) for u in inputs]
        out.append((steps, net.weights))
    assert nets[0].target == "numpy" and nets[1].target == "cython"
    total = 0
    for (o1, s1), (o2, s2) in zip(out[0][0], out[1][0]):
        np.testing.assert_allclose(o1, o2, atol=1e-9)
        for a, b in zip(s1, s2):
            np.testing.assert_array_equal(a, b)
            total += a.sum()
    assert total > 100
    for a, b in zip(out[0][1], out[1][1]):
        np.testing.assert_allclose(a, b, atol=1e-9)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_drives_decay_by_the_exact_factor_and_the_injected_current_holds(dtype):
    """Zero weights (no synaptic input): over an env step of S substeps the hidden drives decay as
    ``g <- exp(-dt / tau_syn) g`` (the factor in double, g rounded to the network's dtype after
    each substep), the input layer's drive stays ``gain * u``."""
    S = 4
    net = network((3, 4, 2), None, 2, control_period=S * 1e-3, dtype=dtype, substeps=S)
    net.reset(None, [np.zeros((2, 3, 4)), np.zeros((2, 4, 2))])
    rng = np.random.default_rng(11)
    start = [rng.normal(0, 0.01, g.shape).astype(dtype) for g in net._g[1:]]
    for g, value in zip(net._g[1:], start):
        g[:] = value
    u = rng.uniform(-1, 1, (2, 3))
    net.step(u)
    injected = (40.0 * 1e-3) * u.astype(dtype)  # gain_mV in volts times u in the network's dtype
    np.testing.assert_array_equal(net._g[0], injected.reshape(-1).astype(dtype))
    factor = math.exp(-1e-3 / float(np.float64(2e-3).astype(dtype)))
    for g, value in zip(net._g[1:], start):
        for _ in range(S):
            value = (factor * value.astype(np.float64)).astype(dtype)
        np.testing.assert_array_equal(g, value)


@pytest.mark.parametrize("sizes", [(3, 4, 2), (3, 4, 4, 4, 2)], ids=["1 hidden", "3 hidden"])
@pytest.mark.parametrize("encoding, calls", [("current", 6), ("poisson", 11)])
def test_a_substep_runs_one_compiled_call_per_stage_whatever_the_depth(sizes, encoding, calls):
    """Every LIF layer shares one neuron group, one unit group and one synapses object: the drives'
    decay, state update, threshold, spike push, on_pre and reset; a Poisson input layer adds its
    own group's update, threshold and reset and its synapses' push and on_pre."""
    net = network(sizes, "ABCD_lr", 2, encoding=encoding, poisson_seed=1 if encoding == "poisson" else None)
    assert len(net._substep_calls) == calls


def test_members_are_independent_in_every_layer():
    """Current input: two slots armed with the same lifetime and fed the same inputs agree in
    every layer's spikes, traces, rates and weights, a third differs (each layer's block of the
    shared groups is member-major)."""
    net = network((4, 6, 5, 3), "ABCD_lr", 3)
    rng = np.random.default_rng(12)
    coefficients = [np.repeat(rng.normal(0, 0.05, (1,) + s[1:]), 3, axis=0) for s in net.coefficient_shapes]
    weights = [np.repeat(w, 3, axis=0) for w in sample_weights(net.sizes, 1, scale=1.0, rng=13)]
    weights = [np.concatenate([w[:2], -w[2:]]) for w in weights]
    net.reset(coefficients, weights)
    for u in rng.uniform(-1, 1, (20, 1, 4)):
        net.step(np.concatenate([u, u, -u]))
    for state in (net.spike_counts(), net.traces(), net.activations, net.weights):
        for layer in state:
            np.testing.assert_array_equal(layer[0], layer[1])
    assert all(not np.array_equal(c[0], c[2]) for c in net.spike_counts())


def test_slots_are_independent_and_rearmed_lifetimes_repeat():
    """Poisson input: a lifetime's numbers depend on its noise seed, not on its slot or its
    neighbours; re-arming a slot replays it."""
    net = network((4, 5, 2), "ABCD_lr", 3, encoding="poisson", poisson_seed=7)
    rng = np.random.default_rng(5)
    coefficients = [np.repeat(rng.normal(0, 0.02, (1,) + s[1:]), 3, axis=0) for s in net.coefficient_shapes]
    weights = [np.repeat(w, 3, axis=0) for w in sample_weights(net.sizes, 1, scale=1.0, rng=6)]
    inputs = np.repeat(rng.uniform(-1, 1, (30, 1, 4)), 3, axis=1)
    net.reset(coefficients, weights, noise_seeds=[11, 11, 12])
    first = [net.step(u) for u in inputs]
    np.testing.assert_array_equal(np.array(first)[:, 0], np.array(first)[:, 1])
    assert not np.array_equal(np.array(first)[:, 0], np.array(first)[:, 2])
    net.reset([c[:1] for c in coefficients], [w[:1] for w in weights], members=[2], noise_seeds=[11])
    again = [net.step(u) for u in inputs]
    np.testing.assert_array_equal(np.array(again)[:, 2], np.array(first)[:, 0])


def test_a_blown_up_member_gives_nan_outputs_and_its_neighbours_run_on():
    """Coefficients of 1e30 make member 1's float32 weights non-finite at its first step; its filtered
    counts stayed finite (a NaN drive silences its neurons) and the rollout ranked the dead
    network by a zero-action fitness. Its outputs are now NaN, as the rate network's, from the
    step its drive went non-finite; member 0 runs as it does alone; no overflow warning."""
    import warnings

    pair, alone = network((3, 4, 2), "ABCD_lr", 2, dtype="float32"), network((3, 4, 2), "ABCD_lr", 1, dtype="float32")
    rng = np.random.default_rng(3)
    coefficients = [rng.normal(0, 0.01, (1,) + s[1:]) for s in pair.coefficient_shapes]
    weights = sample_weights(pair.sizes, 1, scale=1.0, rng=4)
    inputs = rng.uniform(-1, 1, (10, 1, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pair.reset([np.concatenate([c, np.full_like(c, 1e30)]) for c in coefficients],
                   [np.concatenate([w, w]) for w in weights])
        both = np.array([pair.step(np.concatenate([u, u])) for u in inputs])
    alone.reset(coefficients, weights)
    single = np.array([alone.step(u) for u in inputs])
    np.testing.assert_array_equal(both[:, 0], single[:, 0])
    assert np.isfinite(both[0, 1]).all() and np.isnan(both[2:, 1]).all()
    assert not np.isfinite(np.concatenate([w[1].ravel() for w in pair.weights])).all()


def test_the_network_refuses_bad_periods_and_noise_seeds_in_one_line():
    for period in (math.inf, True, 0.0, "0.02"):
        with pytest.raises(ValueError, match=r"^control_period must be a positive number of seconds, got "):
            SpikingPlasticNetwork((3, 2), None, 1, control_period=period)
    net = network((3, 4, 2), "ABCD_lr", 2, encoding="poisson", poisson_seed=7)
    coefficients = [np.zeros(s) for s in net.coefficient_shapes]
    weights = sample_weights(net.sizes, 2, scale=1.0, rng=1)
    # three seeds for two slots (numpy's reshape error), four (regrouped into pairs), fractional
    # (cut), negative (5 and -5 gave the same stream)
    net.reset(coefficients, weights, noise_seeds=[1, 2])
    before = [w.copy() for w in net.weights]
    for seeds in ([1, 2, 3], [1, 2, 3, 4], [1.7, 2.0], [5, -5]):
        with pytest.raises(ValueError, match=r"^noise_seeds must be one non-negative integer per armed slot \(2\), got "):
            net.reset(coefficients, [-w for w in weights], noise_seeds=seeds)
        for w, b in zip(net.weights, before):  # refused before anything was armed
            np.testing.assert_array_equal(w, b)
    net.reset(coefficients, weights, noise_seeds=np.array([5, 6], dtype=np.uint64))


def test_filtered_rates_follow_the_rate_network_with_the_same_weights():
    """Steady input, same weights: the spiking outputs come close to tanh network outputs."""
    from spikehebb.network import make_network

    sizes = (4, 8, 3)
    spiking = network(sizes, None, 4, substeps=64)
    rate = make_network(sizes, None, 4, backend="numpy", dtype="float64")
    weights = sample_weights(sizes, 4, scale=0.6, rng=8)
    spiking.reset(None, weights)
    rate.reset(None, weights)
    u = np.random.default_rng(9).uniform(-1, 1, (4, 4))
    for _ in range(40):
        out = spiking.step(u)
    target = rate.step(u)
    assert np.abs(out - target).mean() < 0.15


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("options, message", [
    ({"substeps": 0}, "substeps must be an integer of at least 1"),
    ({"v_threshold_mV": -70.0}, "threshold (-70.0 mV) must lie above the reset (-65.0 mV)"),
    ({"encoding": "poisson"}, "Poisson encoding needs a seed"),
    ({"tau_m_ms": -1.0}, "tau_m_ms must be a positive number"),
    ({"taum": 1.0}, "unknown neuron options ['taum']"),
    ({"dendrite_coupling": 2.0}, "lif: dendrite_coupling shape the dendrite of two-compartment neurons; without "
                                 "dendrites nothing reads them"),
])
def test_bad_neuron_options_fail_in_one_line(options, message):
    from spikehebb.agents import AgentConfig

    with pytest.raises(ValueError) as err:
        AgentConfig(kind="lif", options=options)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_run_config_records_the_whole_neuron_model():
    from spikehebb.agents import AgentConfig
    from spikehebb.config import TrainConfig

    config = TrainConfig(agent=AgentConfig(kind="lif", options={"substeps": 8, "dendrites": True}))
    stored = config.to_dict()["agent"]["options"]
    assert stored == LIFParams(substeps=8, dendrites=True).to_dict()
    assert TrainConfig.from_dict(config.to_dict()).agent == config.agent
    with pytest.raises(ValueError, match="hebbian agent takes no options"):
        AgentConfig(kind="hebbian", options={"substeps": 8})


def test_cli_flags_build_the_lif_config_and_bad_flags_exit_2(tmp_path, capsys):
    import argparse

    from spikehebb.cli import add_train_arguments, config_from_args, main

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    config = config_from_args(parser.parse_args(["--neuron", "lif", "--substeps", "8", "--dendrites", "--rule", "AD_lr"]))
    assert config.agent.kind == "lif" and config.agent.rule == "AD_lr"
    assert config.agent.options["substeps"] == 8 and config.agent.options["dendrites"] is True
    assert config_from_args(parser.parse_args([])).agent.kind == "hebbian"
    with pytest.raises(ValueError, match="add --neuron lif"):
        config_from_args(parser.parse_args(["--substeps", "8"]))
    for flags, message in ((["--substeps", "0"], "substeps must be an integer of at least 1"),
                           (["--spike-encoding", "poisson"], "Poisson encoding needs a seed")):
        with pytest.raises(SystemExit) as exit_:
            main(["train", "--neuron", "lif", *flags, "--runs-dir", str(tmp_path), "--popsize", "2",
                  "--generations", "1", "--max-env-steps", "45", "--evaluator", "serial", "--no-progress"])
        assert exit_.value.code == 2
        assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------ lifetimes
@pytest.mark.parametrize("task, steps", [("ant", 60), ("car", 15)])
def test_a_lifetime_end_to_end(task, steps):
    from spikehebb.agents import AgentConfig
    from spikehebb.config import TaskConfig, WorkerSpec
    from spikehebb.worker import Worker

    worker = Worker(WorkerSpec(TaskConfig(task, max_env_steps=steps), AgentConfig(kind="lif"), batch_size=2, seed=0))
    try:
        assert worker.rollout.agent.network.substeps == {"ant": 16, "car": 20}[task]
        params = np.random.default_rng(0).normal(0, 0.1, (2, worker.genome.n_params))
        spikes = []
        fitness, env_steps = worker.lifetimes(params, worker.task.train_variants[0], [(0, 0, 0), (0, 1, 0)],
                                              lambda t, agent, actions, infos: spikes.append(agent.spike_counts()))
        assert fitness.shape == (2,) and np.all(np.isfinite(fitness)) and env_steps > 0
        assert sum(int(s[1].sum()) for s in spikes) > 0  # the hidden layer spikes
    finally:
        worker.close()
