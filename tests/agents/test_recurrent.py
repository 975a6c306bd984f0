"""LSTM and GRU agents: batched steps against a per-member loop of the documented equations."""

import re

import numpy as np
import pytest

from spikehebb.agents import AgentConfig, make_agent
from spikehebb.agents import genome_parts as agent_genome_parts
from spikehebb.agents.recurrent import (
    AGENTS,
    GRUAgent,
    LSTMAgent,
    genome_parts,
    parameter_count,
    parts_from_torch,
)
from spikehebb.genome import GenomeMap
from spikehebb.tasks import get_task

SIZES = (5, 6, 4, 3)


@pytest.fixture(params=sorted(AGENTS))
def kind(request):
    return request.param


def random_parts(kind, sizes, n, rng, scale=0.5):
    """Random parts for n members, in the agent's genome layout."""
    return {
        part.name: [scale * rng.standard_normal((n,) + shape) for shape in part.shapes]
        for part in genome_parts(kind, sizes)
    }


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


SQUASH = {"tanh": np.tanh, "linear": lambda v: v}


def reference_step(kind, member, x, h, c, activation="tanh"):
    """One step of ONE member, written from torch's LSTMCell / GRUCell equations.

    member: that member's parts {"recurrent": [W_ih, W_hh, b_ih, b_hh], "weights": [...]};
    x (n_in,), h (H,), c (H,); activation: one name for every layer or one per layer, the
    recurrent layer's first (its output is h whatever it says). Returns (output, h, c, activations).
    """
    n_dense = len(member["weights"])
    names = [activation] * (n_dense + 1) if isinstance(activation, str) else list(activation)
    assert len(names) == n_dense + 1
    w_ih, w_hh, b_ih, b_hh = member["recurrent"]
    H = h.size
    gate = {}
    if kind == "lstm":
        for k, name in enumerate("ifgo"):
            cols = slice(k * H, (k + 1) * H)
            gate[name] = x @ w_ih[:, cols] + b_ih[cols] + h @ w_hh[:, cols] + b_hh[cols]
        c = sigmoid(gate["f"]) * c + sigmoid(gate["i"]) * np.tanh(gate["g"])
        h = sigmoid(gate["o"]) * np.tanh(c)
    else:
        for k, name in enumerate("rzn"):
            cols = slice(k * H, (k + 1) * H)
            gate[name] = (x @ w_ih[:, cols] + b_ih[cols], h @ w_hh[:, cols] + b_hh[cols])
        r = sigmoid(gate["r"][0] + gate["r"][1])
        z = sigmoid(gate["z"][0] + gate["z"][1])
        n = np.tanh(gate["n"][0] + r * gate["n"][1])
        h = (1 - z) * n + z * h
    acts = [x, h]
    out = h
    for w, name in zip(member["weights"], names[1:]):
        out = SQUASH[name](out @ w)
        acts.append(out)
    return out, h, c, acts


def member_of(parts, b):
    return {name: [a[b] for a in arrays] for name, arrays in parts.items()}


def test_batched_steps_match_a_per_member_loop_over_50_steps(kind):
    rng = np.random.default_rng(0)
    B = 4
    agent = AGENTS[kind].build(SIZES, B)
    parts = random_parts(kind, SIZES, B, rng)
    agent.reset(parts)
    h = np.zeros((B, SIZES[1]))
    c = np.zeros((B, SIZES[1]))
    for t in range(50):
        x = rng.standard_normal((B, SIZES[0]))
        out = agent.step(x)
        for b in range(B):
            ref, h[b], c[b], acts = reference_step(kind, member_of(parts, b), x[b], h[b], c[b])
            np.testing.assert_allclose(out[b], ref, rtol=0, atol=1e-13)
            for got, want in zip(agent.activations(), acts):
                np.testing.assert_allclose(got[b], want, rtol=0, atol=1e-13)
    np.testing.assert_allclose(agent.state()["h"], h, rtol=0, atol=1e-13)
    if kind == "lstm":
        np.testing.assert_allclose(agent.state()["c"], c, rtol=0, atol=1e-13)
    # the state really carries information across steps: h is far from its first-step value
    assert np.abs(h).max() > 0.1


@pytest.mark.parametrize("activation", [("tanh", "tanh", "linear"), ("linear", "linear", "tanh")])
def test_batched_steps_follow_each_layers_activation(kind, activation):
    """The dense layers use their own activation (the car: tanh, then a linear last layer)."""
    rng = np.random.default_rng(10)
    B = 3
    agent = AGENTS[kind].build(SIZES, B, activation=activation)
    parts = random_parts(kind, SIZES, B, rng, scale=1.5)
    agent.reset(parts)
    h, c = np.zeros((B, SIZES[1])), np.zeros((B, SIZES[1]))
    for t in range(10):
        x = rng.standard_normal((B, SIZES[0]))
        out = agent.step(x)
        for b in range(B):
            ref, h[b], c[b], acts = reference_step(kind, member_of(parts, b), x[b], h[b], c[b], activation)
            np.testing.assert_allclose(out[b], ref, rtol=0, atol=1e-13)
            for got, want in zip(agent.activations(), acts):
                np.testing.assert_allclose(got[b], want, rtol=0, atol=1e-13)
    if activation[-1] == "linear":
        assert np.abs(out).max() > 1  # not squashed


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_a_car_lifetime_matches_the_reference_with_a_linear_last_layer(kind):
    """A few steps of two car lifetimes from one genome map ("encoder", "recurrent", "weights"):
    the agent made for the car task runs its layers with the task's ("tanh", "tanh", "linear"), so
    its raw outputs, which the decoder squashes into actions, leave [-1, 1]."""
    task = get_task("car")
    config = AgentConfig(kind, rule=None, dtype="float64")
    genome = GenomeMap.of(agent_genome_parts(config, task))
    assert genome.names == ("encoder", "recurrent", "weights")
    B = 2
    parts = genome.split(0.5 * np.random.default_rng(11).standard_normal((B, genome.n_params)))
    encoder, decoder = task.encoder(), task.decoder()
    encoder.set_params(parts.pop("encoder"))
    agent = make_agent(config, task, B)
    assert agent.activation == ("tanh", "tanh", "linear")
    agent.reset(parts)
    envs = [task.make_env("default") for _ in range(B)]
    try:
        obs = np.stack([env.reset(seed=b)[0] for b, env in enumerate(envs)])
        h, c = np.zeros((B, 128)), np.zeros((B, 128))
        for t in range(4):
            x = encoder(obs)
            out = agent.step(x)
            for b in range(B):
                ref, h[b], c[b], acts = reference_step(kind, member_of(parts, b), x[b].astype(np.float64), h[b], c[b],
                                                       task.activation)
                np.testing.assert_allclose(out[b], ref, rtol=0, atol=1e-12, err_msg=f"step {t} member {b}")
                for got, want in zip(agent.activations(), acts):
                    np.testing.assert_allclose(got[b], want, rtol=0, atol=1e-12)
            assert np.abs(out).max() > 1  # the last layer is linear
            actions = decoder(out)
            obs = np.stack([env.step(a)[0] for env, a in zip(envs, actions)])
    finally:
        for env in envs:
            env.close()
    assert np.abs(h).max() > 0.1


def test_ant_sizes_step_and_readout_shapes(kind):
    B = 3
    agent = AGENTS[kind].build((28, 128, 64, 8), B)
    G = 4 if kind == "lstm" else 3
    agent.reset(random_parts(kind, (28, 128, 64, 8), B, np.random.default_rng(1), scale=0.1))
    out = agent.step(np.random.default_rng(2).standard_normal((B, 28)))
    assert out.shape == (B, 8) and np.all(np.abs(out) < 1)
    assert [w.shape for w in agent.weights()] == [(B, 28, G * 128), (B, 128, 64), (B, 64, 8)]
    assert [a.shape for a in agent.activations()] == [(B, 28), (B, 128), (B, 64), (B, 8)]
    np.testing.assert_array_equal(agent.activations()[-1], out)
    assert {k: v.shape for k, v in agent.recurrent_weights().items()} == {
        "W_ih": (B, 28, G * 128), "W_hh": (B, 128, G * 128), "b_ih": (B, G * 128), "b_hh": (B, G * 128)
    }


def test_arming_one_slot_mid_run_leaves_the_others_unchanged(kind):
    rng = np.random.default_rng(3)
    B = 3
    parts = random_parts(kind, SIZES, B, rng)
    inputs = rng.standard_normal((30, B, SIZES[0]))
    straight = AGENTS[kind].build(SIZES, B)
    straight.reset(parts)
    rearmed = AGENTS[kind].build(SIZES, B)
    rearmed.reset(parts)
    new = random_parts(kind, SIZES, 1, rng)
    for t in range(30):
        if t == 12:
            rearmed.reset(new, members=[2])
        a, b = straight.step(inputs[t]), rearmed.step(inputs[t])
        np.testing.assert_array_equal(a[:2], b[:2])
        if t >= 12:
            assert not np.allclose(a[2], b[2])
    # slot 2 now runs a fresh lifetime of `new`: a separate one-slot agent from the same step
    alone = AGENTS[kind].build(SIZES, 1)
    alone.reset(new)
    again = AGENTS[kind].build(SIZES, B)
    again.reset(parts)
    for t in range(12):
        again.step(inputs[t])
    again.reset(new, members=[2])
    for t in range(12, 30):
        np.testing.assert_allclose(again.step(inputs[t])[2], alone.step(inputs[t][2:3])[0], rtol=0, atol=1e-14)


def test_moved_members_go_on_in_their_new_slots_and_a_prefix_steps_alone(kind):
    """move_members carries parameters, h and c; set_active(k) steps only the first k slots."""
    rng = np.random.default_rng(8)
    B = 4
    parts = random_parts(kind, SIZES, B, rng)
    inputs = rng.standard_normal((12, B, SIZES[0]))
    agent, twin = AGENTS[kind].build(SIZES, B), AGENTS[kind].build(SIZES, B)
    agent.reset(parts)
    twin.reset(parts)
    for t in range(5):
        agent.step(inputs[t])
        twin.step(inputs[t])
    agent.move_members([3], [1])  # member 3 goes on in slot 1
    agent.set_active(2)
    for t in range(5, 12):
        x = inputs[t].copy()
        x[1] = inputs[t][3]
        out, want = agent.step(x), twin.step(inputs[t])
        np.testing.assert_array_equal(out[:2], want[[0, 3]])
        np.testing.assert_array_equal(agent.state()["h"][:2], twin.state()["h"][[0, 3]])
    before = agent.state()["h"][2:].copy()
    agent.step(inputs[0])
    np.testing.assert_array_equal(agent.state()["h"][2:], before)  # outside the prefix: not stepped
    agent.set_active(None)
    with pytest.raises(ValueError, match="slot count in 1..4"):
        agent.set_active(0)
    with pytest.raises(ValueError, match="as many targets as sources"):
        agent.move_members([0, 1], [2])


def test_reset_zeroes_the_state_of_armed_slots_only(kind):
    rng = np.random.default_rng(4)
    B = 3
    agent = AGENTS[kind].build(SIZES, B)
    parts = random_parts(kind, SIZES, B, rng)
    agent.reset(parts)
    for _ in range(5):
        agent.step(rng.standard_normal((B, SIZES[0])))
    before = agent.state()
    assert np.all(np.abs(before["h"]) > 0)
    agent.reset(random_parts(kind, SIZES, 2, rng), members=[0, 2])
    after = agent.state()
    assert np.all(after["h"][[0, 2]] == 0) and np.all(after["c"][[0, 2]] == 0)
    np.testing.assert_array_equal(after["h"][1], before["h"][1])
    np.testing.assert_array_equal(after["c"][1], before["c"][1])
    assert all(np.all(a[[0, 2]] == 0) for a in agent.activations())
    # from zero state, the first step of a slot equals the reference's first step
    x = rng.standard_normal((B, SIZES[0]))
    member = {name: [a[0] for a in arrays] for name, arrays in agent_parts(agent).items()}
    ref, *_ = reference_step(kind, member, x[0], np.zeros(SIZES[1]), np.zeros(SIZES[1]))
    np.testing.assert_allclose(agent.step(x)[0], ref, rtol=0, atol=1e-14)


def agent_parts(agent):
    rec = agent.recurrent_weights()
    return {"recurrent": [rec[k] for k in ("W_ih", "W_hh", "b_ih", "b_hh")], "weights": agent.weights()[1:]}


def test_lstm_by_hand_with_one_unit():
    # n_in = 1, H = 1, one dense layer 1 -> 1 of weight 1: every gate pre-activation by hand
    agent = LSTMAgent.build((1, 1, 1), 1)
    # gates (i, f, g, o): input weights 1, 2, 3, 4; recurrent 0.5 each; b_ih 0.1, b_hh -0.1 cancel
    parts = parts_from_torch(
        "lstm",
        weight_ih=np.array([[1.0], [2.0], [3.0], [4.0]]),
        weight_hh=np.full((4, 1), 0.5),
        bias_ih=np.full(4, 0.1),
        bias_hh=np.full(4, -0.1),
        dense=[np.array([[1.0]])],
    )
    agent.reset(parts)
    x = 0.3
    c1 = sigmoid(1 * x) * np.tanh(3 * x)  # f * 0 + i * g
    h1 = sigmoid(4 * x) * np.tanh(c1)
    np.testing.assert_allclose(agent.step(np.array([[x]]))[0, 0], np.tanh(h1), rtol=1e-15)
    c2 = sigmoid(2 * x + 0.5 * h1) * c1 + sigmoid(x + 0.5 * h1) * np.tanh(3 * x + 0.5 * h1)
    h2 = sigmoid(4 * x + 0.5 * h1) * np.tanh(c2)
    np.testing.assert_allclose(agent.step(np.array([[x]]))[0, 0], np.tanh(h2), rtol=1e-15)


def test_gru_by_hand_with_one_unit():
    agent = GRUAgent.build((1, 1, 1), 1)
    # gates (r, z, n): input weights 1, 2, 3; recurrent 0.5, 0.25, -1; b_hh of n is 0.2 (inside r * (.))
    parts = parts_from_torch(
        "gru",
        weight_ih=np.array([[1.0], [2.0], [3.0]]),
        weight_hh=np.array([[0.5], [0.25], [-1.0]]),
        bias_ih=np.zeros(3),
        bias_hh=np.array([0.0, 0.0, 0.2]),
        dense=[np.array([[1.0]])],
    )
    agent.reset(parts)
    x = 0.3
    h = 0.0
    for _ in range(2):
        r = sigmoid(x + 0.5 * h)
        z = sigmoid(2 * x + 0.25 * h)
        n = np.tanh(3 * x + r * (-1.0 * h + 0.2))
        h = (1 - z) * n + z * h
        np.testing.assert_allclose(agent.step(np.array([[x]]))[0, 0], np.tanh(h), rtol=1e-15)


def test_parameter_counts_by_hand():
    ant = (28, 128, 64, 8)
    assert parameter_count("lstm", ant) == 4 * 128 * 28 + 4 * 128 * 128 + 2 * 4 * 128 + 128 * 64 + 64 * 8 == 89_600
    assert parameter_count("gru", ant) == 3 * 128 * 28 + 3 * 128 * 128 + 2 * 3 * 128 + 128 * 64 + 64 * 8 == 69_376
    assert parameter_count("static", ant) == 28 * 128 + 128 * 64 + 64 * 8 == 12_288
    assert parameter_count("hebbian", ant, rule="ABCD_lr") == 12_288 * 5 == 61_440
    assert LSTMAgent.genome_parts(None, ant)[0].shapes == ((28, 512), (128, 512), (512,), (512,))
    assert GRUAgent.genome_parts(None, ant)[1].shapes == ((128, 64), (64, 8))
    with pytest.raises(ValueError, match=r"kind must be one of \['gru', 'lstm', 'hebbian', 'static'\], got 'rnn'"):
        parameter_count("rnn", ant)


def test_parameter_counts_include_the_tasks_searched_parts():
    """Every car agent also evolves the encoder's 1,362 convolution weights: with the task's parts
    the counts are the genome maps' lengths (Palm et al.'s LSTM car: 408,082); the ant adds none."""
    for name, want in (("car", {"hebbian": 458_002, "static": 92_690, "lstm": 408_082, "gru": 308_498}),
                       ("ant", {"hebbian": 61_440, "static": 12_288, "lstm": 89_600, "gru": 69_376})):
        task = get_task(name)
        for kind, count in want.items():
            rule = "ABCD_lr" if kind == "hebbian" else None
            genome = GenomeMap.of(agent_genome_parts(AgentConfig(kind, rule=rule), task))
            assert parameter_count(kind, task.sizes, rule, task_parts=task.genome_parts()) == genome.n_params == count
    car = get_task("car").sizes
    assert parameter_count("lstm", car) == 408_082 - 1362  # the agent's own parts alone
    with pytest.raises(ValueError) as info:
        parameter_count("lstm", car, task_parts=[(6, 3, 3, 3)])
    assert str(info.value) == "task_parts must be GenomeParts (Task.genome_parts()), got ((6, 3, 3, 3),)"


@pytest.mark.parametrize("sizes", [(28.9, 128.5, 64, 8), (28.0, 128, 64, 8), (True, 3, 2), (28, 0, 8), (28, -4, 8),
                                   ("28", 128, 8), 28])
def test_sizes_must_be_positive_integers(kind, sizes):
    """int() would cut 28.9 to 28 and read True as 1: a wrong network without a word."""
    message = ("sizes must be (n_in, hidden, ..., n_out), at least 3 positive integers, e.g. (28, 128, 64, 8), "
               f"got {sizes!r}")
    for call in (lambda: AGENTS[kind].build(sizes, 2), lambda: parameter_count(kind, sizes),
                 lambda: parameter_count("static", sizes), lambda: parameter_count("hebbian", sizes, "ABCD_lr"),
                 lambda: genome_parts(kind, sizes)):
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == message
    assert AGENTS[kind].build(np.array([5, 6, 3]), 1).sizes == (5, 6, 3)  # NumPy integers are fine


def test_bad_shapes_give_one_line_errors_naming_the_expected_shapes(kind):
    G = 4 if kind == "lstm" else 3
    agent = AGENTS[kind].build(SIZES, 2)
    parts = random_parts(kind, SIZES, 2, np.random.default_rng(5))

    def error(**kwargs):
        with pytest.raises(ValueError) as info:
            agent.reset(**kwargs)
        assert "\n" not in str(info.value)
        return str(info.value)

    swapped = dict(parts, recurrent=[parts["recurrent"][0].transpose(0, 2, 1)] + parts["recurrent"][1:])
    assert error(parts=swapped) == (
        f"parts['recurrent'][0] must be (2, 5, {G * 6}) for 2 members, got (2, {G * 6}, 5)"
    )
    assert error(parts={"recurrent": parts["recurrent"]}) == (
        "parts must contain ['recurrent', 'weights'], got ['recurrent']"
    )
    assert error(parts=dict(parts, weights=parts["weights"][:1])) == (
        "parts['weights'] must hold 2 arrays of shapes [(2, 6, 4), (2, 4, 3)], got 1"
    )
    assert error(parts=parts, members=[0]).startswith("parts['recurrent'][0] must be (1, 5, ")
    assert error(parts=random_parts(kind, SIZES, 1, np.random.default_rng(6)), members=[2]) == (
        "members must be slot indices in [0, 2), got [2]"
    )
    one = random_parts(kind, SIZES, 1, np.random.default_rng(6))
    for members in ([True], [0.7]):  # not slot 1 and slot 0
        assert error(parts=one, members=members) == (
            f"members must be a list of slot indices (integers), got {members}")
    for batch in (True, 2.9):
        with pytest.raises(ValueError, match=re.escape(f"batch_size must be a positive integer, got {batch!r}")):
            AGENTS[kind].build(SIZES, batch)
    nan = dict(parts, weights=[parts["weights"][0], np.full((2, 4, 3), np.nan)])
    assert error(parts=nan) == "parts['weights'][1] must be finite, got NaN or inf"
    with pytest.raises(RuntimeError, match=re.escape("call reset(parts) first")):
        AGENTS[kind].build(SIZES, 2).step(np.zeros((2, 5)))
    agent.reset(parts)
    with pytest.raises(ValueError, match=re.escape("inputs must be (2, 5), got (5, 2)")):
        agent.step(np.zeros((5, 2)))
    with pytest.raises(ValueError, match=re.escape("sizes must be (n_in, hidden, ..., n_out)")):
        AGENTS[kind].build((28, 8), 2)


def test_float32_agents_track_float64(kind):
    rng = np.random.default_rng(7)
    parts = random_parts(kind, SIZES, 2, rng)
    a64, a32 = AGENTS[kind].build(SIZES, 2), AGENTS[kind].build(SIZES, 2, dtype="float32")
    a64.reset(parts)
    a32.reset(parts)
    for _ in range(20):
        x = rng.standard_normal((2, SIZES[0]))
        out32 = a32.step(x)
        assert out32.dtype == np.float32
        np.testing.assert_allclose(out32, a64.step(x), atol=1e-5)
