"""Rollout: the episode rules on a scripted env (hand-checked numbers), batching, seeding, and the
real Ant against a plain loop written out here."""

from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from spikehebb.agents import AgentConfig
from spikehebb.coding import IdentityDecoder, RawEncoder
from spikehebb.assess import without_early_ends
from spikehebb.config import TaskConfig, TrainConfig, WorkerSpec
from spikehebb.network import make_network, sample_weights
from spikehebb.rollout import Rollout
from spikehebb.tasks import EpisodeRules, Task
from spikehebb.worker import Worker

SIZES = (3, 4, 2)
BURN_IN = 3
BURN_IN_TERM = 1000.0  # what the scripted env reports during the burn-in: it must never count
RULES = EpisodeRules(burn_in_steps=BURN_IN, max_env_steps=BURN_IN + 20, grace_steps=5, patience=2)


def script(seed: int, t: int) -> tuple[float, bool, bool]:
    """(fitness term, terminated, truncated) of network step t of the member reset with ``seed``."""
    if seed == 0:  # always +1: runs to the step limit
        return 1.0, False, False
    if seed == 1:  # falls at t = 2 (grace: ignored) and at t = 7 (ends it)
        return 0.5, t in (2, 7), False
    if seed == 2:  # negative during the grace steps (ignored), then -,-,+,-,-,- from t = 5
        return {5: -1.0, 6: -1.0, 7: 2.0, 8: -1.0, 9: -1.0, 10: -1.0}.get(t, -3.0 if t < 5 else 1.0), False, False
    if seed == 3:  # the env itself truncates after t = 4
        return 0.25, False, t == 4
    raise ValueError(seed)


class ScriptedEnv(gym.Env):
    """Observation ``(env steps so far, seed, last action's first entry)``; term from :func:`script`."""

    observation_space = spaces.Box(-np.inf, np.inf, (3,), np.float64)
    action_space = spaces.Box(-1, 1, (2,), np.float64)

    def __init__(self, variant: str = "default"):
        self.actions: list[np.ndarray] = []

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.seed_, self.k, self.actions = int(seed), 0, []
        return self._obs(0.0), {}

    def step(self, action):
        self.actions.append(np.array(action, dtype=float))
        t = self.k - BURN_IN
        self.k += 1
        term, terminated, truncated = (BURN_IN_TERM, False, False) if t < 0 else script(self.seed_, t)
        return self._obs(float(action[0])), 0.0, terminated, truncated, {"term": term}

    def _obs(self, a0):
        return np.array([self.k, self.seed_, a0], dtype=np.float64)


class RecordingEncoder(RawEncoder):
    """The raw observations, remembering every batch it encoded (the network's inputs)."""

    def __init__(self, n_inputs):
        super().__init__(n_inputs)
        self.seen = []

    def __call__(self, observations, members=None):
        self.seen.append((np.array(observations), None if members is None else list(members)))
        return super().__call__(observations, members)


SCRIPTED = Task(
    name="scripted", make_env=lambda variant, **kw: ScriptedEnv(variant, **kw), variants=("default",),
    train_variants=("default",), test_variants=("default",), sizes=SIZES, activation="tanh",
    encoder=lambda: RecordingEncoder(SIZES[0]), decoder=IdentityDecoder, fitness_term="term", episode=RULES,
    steps_after_terminated=True,  # as the ant: a fall inside the grace steps does not end it
)


def arrays(n, seed=0, rule="ABCD"):
    rng = np.random.default_rng(seed)
    k = 4 if rule == "ABCD" else 5
    coefficients = [rng.normal(0, 0.01, (n, a, b, k)) for a, b in zip(SIZES[:-1], SIZES[1:])]
    return coefficients, sample_weights(SIZES, n, rng=rng)


def source(coefficients, weights):
    """The rollout's ``parts(i)`` for per-layer arrays with one row per lifetime."""
    return lambda i: {"coefficients": [c[i : i + 1] for c in coefficients], "weights": [w[i : i + 1] for w in weights]}


@pytest.fixture(scope="module")
def scripted():
    rollout = Rollout(SCRIPTED, AgentConfig(rule="ABCD", backend="numpy", dtype="float64"), 5)
    yield rollout
    rollout.close()


def test_episode_rules_by_hand(scripted):
    seen = []  # (t, which members got no info) per step
    hook = lambda t, network, actions, infos: seen.append((t, [i is None for i in infos]))
    scripted.encoder.seen.clear()
    result = scripted.run("default", source(*arrays(4)), env_seeds=[0, 1, 2, 3], on_step=hook)
    # seed 0: +1 for each of max_env_steps - burn_in = 20 steps (the burn-in's 1000s not counted)
    # seed 1: the fall at t=2 is inside the 5 grace steps; the one at t=7 ends it: 8 steps of 0.5
    # seed 2: 5 x -3 (grace), -1, -1, +2 (resets the count), -1, -1, -1 (3 > patience 2: ends at t=10)
    # seed 3: truncated by the env after t=4: 5 steps of 0.25
    np.testing.assert_array_equal(result.steps, [20, 8, 11, 5])
    np.testing.assert_array_equal(result.fitness, [20.0, 4.0, -15 - 1 - 1 + 2 - 1 - 1 - 1, 1.25])
    assert result.env_steps == 20 + 8 + 11 + 5 + 4 * BURN_IN
    assert result.n_active == 4
    # members that ended stopped stepping their env; the burn-in went through it with zero actions
    for env, steps in zip(scripted.envs("default", 4), result.steps):
        assert len(env.actions) == BURN_IN + steps
        assert not np.any(env.actions[:BURN_IN])
    # the network never saw the burn-in: its first input is the observation after it
    inputs = [x for x, _ in scripted.encoder.seen]
    np.testing.assert_array_equal(inputs[0][:, :2], [[BURN_IN, s] for s in range(4)])
    np.testing.assert_array_equal(inputs[1][:, 0], [BURN_IN + 1] * 4)
    assert [t for t, _ in seen] == list(range(20))
    # only live members are encoded: never the padded fifth (no env), not the ended ones
    # (call i encodes the inputs of step t=i: seed 3 ended after t=4, seed 1 after t=7, seed 2
    # after t=10; after t=19 nobody is left and nothing is encoded)
    members = [[int(m) for m in ms] for _, ms in scripted.encoder.seen]
    assert members == [[0, 1, 2, 3]] * 5 + [[0, 1, 2]] * 3 + [[0, 2]] * 3 + [[0]] * 9
    # ended members get info None
    assert seen[0][1] == [False, False, False, False, True]
    assert seen[8][1] == [False, True, False, True, True]



def test_first_input_reset_shows_the_network_the_reset_observation_as_the_authors_code():
    """first_input="reset": step 0 sees env.reset()'s observation (k = 0), not the burn-in's last
    (k = BURN_IN); from step 1 on, and everything else, is the same."""
    task = replace(SCRIPTED, episode=replace(RULES, first_input="reset"))
    rollout = Rollout(task, AgentConfig(rule="ABCD", backend="numpy", dtype="float64"), 4)
    try:
        settled = Rollout(SCRIPTED, AgentConfig(rule="ABCD", backend="numpy", dtype="float64"), 4)
        try:
            base = settled.run("default", source(*arrays(4)), env_seeds=[0, 1, 2, 3])
            first = list(settled.encoder.seen)
        finally:
            settled.close()
        result = rollout.run("default", source(*arrays(4)), env_seeds=[0, 1, 2, 3])
        inputs = [x for x, _ in rollout.encoder.seen]
        np.testing.assert_array_equal(inputs[0][:, :2], [[0, s] for s in range(4)])
        np.testing.assert_array_equal(first[0][0][:, :2], [[BURN_IN, s] for s in range(4)])
        np.testing.assert_array_equal(inputs[1][:, 0], [BURN_IN + 1] * 4)
        # the scripted terms do not depend on the actions: the same lifetimes, the same env steps
        np.testing.assert_array_equal(result.steps, base.steps)
        np.testing.assert_array_equal(result.fitness, base.fitness)
        assert result.env_steps == base.env_steps
    finally:
        rollout.close()
    with pytest.raises(ValueError, match=r"first_input must be one of \('settled', 'reset'\), got 'raw'"):
        EpisodeRules(first_input="raw")


def test_without_early_ends_by_hand():
    """``evaluate --no-early-end``: the same scripted lifetimes as above run to the step limit;
    neither the fall (seed 1) nor the negative run (seed 2) ends one, the env's own truncation
    (seed 3) still does, and the config's other episode fields are kept."""
    config = without_early_ends(TrainConfig(task=TaskConfig("ant", ("default",), 80, {"grace_steps": 20})))
    assert config.task.episode["grace_steps"] == 20 and config.task.make().episode.grace_steps == 20
    assert not config.task.make().episode.end_on_terminated
    episode = {k: v for k, v in config.task.episode.items() if k != "grace_steps"}
    rollout = Rollout(replace(SCRIPTED, episode=replace(RULES, **episode), steps_after_terminated=True),
                      AgentConfig(rule="ABCD", backend="numpy", dtype="float64"), 5)
    try:
        result = rollout.run("default", source(*arrays(4)), env_seeds=[0, 1, 2, 3])
    finally:
        rollout.close()
    np.testing.assert_array_equal(result.steps, [20, 20, 20, 5])
    # seed 2: 5 x -3 (grace), then -1, -1, +2, -1, -1, -1 (t = 5..10), then +1 for t = 11..19
    np.testing.assert_array_equal(result.fitness, [20.0, 10.0, -15 - 3 + 9, 1.25])
    # The car's env stops at terminated (lap finished, off the playfield): only its patience goes,
    # and asking it to run past terminated is refused in one line.
    car = without_early_ends(TrainConfig(task=TaskConfig("car"), agent=AgentConfig(rule="ABCD_lr")))
    assert car.task.episode == {"patience": 10**9} and car.task.make().episode.end_on_terminated
    with pytest.raises(ValueError, match="^the car env cannot go on after it reports terminated, so end_on_terminated must stay True$"):
        TaskConfig("car", episode={"end_on_terminated": False})

@pytest.fixture(scope="module")
def action_scored():
    """A rollout whose fitness counts every action: a slot armed with another lifetime's parts, or
    keeping the last lifetime's weights, would change the numbers (the scripted env's would not)."""
    rollout = Rollout(ACTION_SCORED, AgentConfig(rule="ABCD", backend="numpy", dtype="float64"), 5)
    yield rollout
    rollout.close()


def test_short_batch_is_padded_and_members_do_not_depend_on_the_batch(scripted, action_scored):
    coefficients, weights = arrays(3, seed=1)
    for rollout in (scripted, action_scored):
        alone = rollout.run("default", source([c[1:2] for c in coefficients], [w[1:2] for w in weights]), [2])
        together = rollout.run("default", source(coefficients, weights), [0, 2, 1])
        assert alone.n_active == 1 and alone.fitness.shape == (1,)
        assert together.fitness[1] == alone.fitness[0] and together.steps[1] == alone.steps[0]
        assert alone.env_steps == alone.steps[0] + BURN_IN
    other = action_scored.run("default", source([c[0:1] for c in coefficients], [w[0:1] for w in weights]), [2])
    assert other.fitness[0] != alone.fitness[0]  # another lifetime's parts give other numbers


def test_more_lifetimes_than_slots_refill_the_slots_that_end(scripted, action_scored):
    """Nine lifetimes on five slots: a slot whose lifetime ends takes the next one at once; every
    lifetime gives what it gives alone (also where the fitness counts every action the network
    takes), and the batch runs only as long as the longest chain."""
    coefficients, weights = arrays(9, seed=2)
    seeds = [3, 1, 2, 3, 0, 1, 3, 2, 0]
    seen = []
    result = scripted.run("default", source(coefficients, weights), seeds, on_step=lambda t, *a: seen.append(t))
    scored = action_scored.run("default", source(coefficients, weights), seeds)
    assert len(set(scored.fitness.tolist())) == 9  # every lifetime's own numbers
    for i, seed in enumerate(seeds):
        parts = source([c[i : i + 1] for c in coefficients], [w[i : i + 1] for w in weights])
        for rollout, together in ((scripted, result), (action_scored, scored)):
            alone = rollout.run("default", parts, [seed])
            assert (together.fitness[i], together.steps[i]) == (alone.fitness[0], alone.steps[0])
    assert result.n_active == 9 and result.env_steps == result.steps.sum() + 9 * BURN_IN
    # slot 3 lives seed 3 (5 steps), then the seventh lifetime (seed 3 again, 5 steps), then the
    # ninth (seed 0, 20 steps): 30 steps in all, the longest chain of the five slots
    assert len(seen) == 30
    with pytest.raises(ValueError, match="at least one lifetime, got 0"):
        scripted.run("default", source(coefficients, weights), [])


# ----------------------------------------------------------------------------- the real Ant
SPEC = WorkerSpec(TaskConfig("ant", ("default",), 100), batch_size=4)


@pytest.fixture(scope="module")
def ant_worker():
    worker = Worker(SPEC)
    yield worker
    worker.close()


@pytest.mark.slow
def test_ant_fitness_does_not_depend_on_the_batch_and_repeats(ant_worker):
    rng = np.random.default_rng(3)
    params = rng.normal(0, 0.05, (3, ant_worker.genome.n_params))
    paths = [(0, 0, 0), (0, 1, 0), (0, 2, 0)]
    together, steps = ant_worker.lifetimes(params, "default", paths)
    alone, _ = ant_worker.lifetimes(params[1:2], "default", paths[1:2])
    again, steps_again = ant_worker.lifetimes(params, "default", paths)
    assert alone[0] == together[1]
    np.testing.assert_array_equal(again, together)
    assert steps == steps_again
    # different lifetimes (initial weights, env start) give different fitness
    other, _ = ant_worker.lifetimes(params[1:2], "default", [(0, 1, 1)])
    assert other[0] != alone[0]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "brian2"])
def test_ant_rollout_matches_a_plain_loop(backend):
    """One known candidate in the second slot of a batch against one env and network stepped by
    hand: reset(seed), 40 zero steps, then network step / env step, summing the progress term."""
    from spikehebb.envs.ant import AntBulletEnv
    from spikehebb.tasks import get_task

    task = get_task("ant", episode={"max_env_steps": 100, "burn_in_steps": 40, "grace_steps": 201})
    rng = np.random.default_rng(7)
    coefficients = [rng.normal(0, 0.01, (2, a, b, 5)) for a, b in zip(task.sizes[:-1], task.sizes[1:])]
    weights = sample_weights(task.sizes, 2, rng=rng)
    seeds = [11, 12]

    rollout = Rollout(task, AgentConfig(rule="ABCD_lr", backend=backend, dtype="float64"), 3)
    try:
        result = rollout.run("default", source(coefficients, weights), seeds)
    finally:
        rollout.close()

    env = AntBulletEnv()
    network = make_network(task.sizes, "ABCD_lr", 1, backend="numpy", dtype="float64")
    network.reset([c[1:2] for c in coefficients], [w[1:2] for w in weights])
    obs, _ = env.reset(seed=seeds[1])
    for _ in range(40):
        obs = env.step(np.zeros(8))[0]
    fitness = 0.0
    for _ in range(60):
        action = network.step(np.asarray(obs, dtype=np.float64)[None])[0]
        obs, _, _, _, info = env.step(action)
        fitness += info["reward_progress"]
    env.close()

    assert result.steps[1] == 60
    if backend == "numpy":
        assert result.fitness[1] == fitness
    else:  # same equations compiled by Brian2: equal up to float64 rounding grown over 60 steps
        np.testing.assert_allclose(result.fitness[1], fitness, rtol=1e-6)


# ------------------------------------------------------------------ compaction at the tail
class ActionScoredEnv(ScriptedEnv):
    """The scripted env whose fitness term also counts the action: every number the network
    computes reaches the fitness, so a member that lost its state in a move would show."""

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        if info["term"] != BURN_IN_TERM:
            info["term"] += float(action[0]) + 0.5 * float(action[1])
        return obs, reward, terminated, truncated, info


ACTION_SCORED = Task(
    name="action_scored", make_env=lambda variant, **kw: ActionScoredEnv(variant, **kw), variants=("default",),
    train_variants=("default",), test_variants=("default",), sizes=SIZES, activation="tanh",
    encoder=lambda: RawEncoder(SIZES[0]), decoder=IdentityDecoder, fitness_term="term", episode=RULES,
    steps_after_terminated=True,  # as the ant: a fall inside the grace steps does not end it
)


@pytest.mark.slow
def test_live_lifetimes_move_into_a_prefix_at_the_tail_with_the_same_numbers(monkeypatch):
    """Brian2 agents step only their live lifetimes once none is left to claim: the rollout moves
    them into the first slots (network state, env, bookkeeping) and the network steps that prefix.
    Every lifetime gives what it gives without the moves, and alone, bit for bit."""
    from spikehebb.agents.hebbian import NetworkAgent

    coefficients, weights = arrays(11, seed=5, rule="ABCD_lr")
    seeds = [0, 3, 1, 2, 3, 0, 1, 3, 2, 0, 1]
    rollout = Rollout(ACTION_SCORED, AgentConfig(rule="ABCD_lr", backend="brian2", dtype="float64"), 6)
    prefixes = []
    set_active = rollout.agent.set_active
    monkeypatch.setattr(rollout.agent, "set_active", lambda n: (prefixes.append(n), set_active(n)))
    try:
        compacted = rollout.run("default", source(coefficients, weights), seeds)
        assert any(n is not None and n < 6 for n in prefixes), prefixes  # it did step a prefix
        assert prefixes[-1] is None  # and left the network whole
        monkeypatch.setattr(NetworkAgent, "can_compact", property(lambda self: False))
        plain = rollout.run("default", source(coefficients, weights), seeds)
        np.testing.assert_array_equal(compacted.fitness, plain.fitness)
        np.testing.assert_array_equal(compacted.steps, plain.steps)
        assert compacted.env_steps == plain.env_steps
        for i in (2, 8):
            alone = rollout.run("default", source([c[i : i + 1] for c in coefficients], [w[i : i + 1] for w in weights]), [seeds[i]])
            assert (alone.fitness[0], alone.steps[0]) == (compacted.fitness[i], compacted.steps[i])
    finally:
        rollout.close()


def test_move_members_and_prefix_by_hand():
    """Moving a member carries every state of it; a prefix steps only its slots."""
    net = make_network(SIZES, "ABCD_lr", 4, backend="brian2", dtype="float64")
    coefficients, weights = arrays(4, seed=7, rule="ABCD_lr")
    net.reset(coefficients, weights)
    rng = np.random.default_rng(0)
    for _ in range(3):
        net.step(rng.normal(size=(4, SIZES[0])))
    twin = make_network(SIZES, "ABCD_lr", 4, backend="brian2", dtype="float64")
    twin.reset(coefficients, weights)
    rng = np.random.default_rng(0)
    for _ in range(3):
        twin.step(rng.normal(size=(4, SIZES[0])))
    net.move_members([3], [1])  # member 3 goes on in slot 1
    net.set_active(2)
    for _ in range(4):
        x = rng.normal(size=(4, SIZES[0]))
        moved = x.copy()
        moved[1] = x[3]
        out, want = net.step(moved), twin.step(x)
        np.testing.assert_array_equal(out[:2], want[[0, 3]])
    np.testing.assert_array_equal(net.weights[0][1], twin.weights[0][3])
    untouched = net.weights[1][2].copy()
    net.step(rng.normal(size=(4, SIZES[0])))
    np.testing.assert_array_equal(net.weights[1][2], untouched)  # outside the prefix: not stepped
    net.set_active(None)
    with pytest.raises(ValueError, match="slot count in 1..4"):
        net.set_active(5)
    with pytest.raises(ValueError, match="as many targets as sources"):
        net.move_members([0, 1], [2])
    numpy_net = make_network(SIZES, "ABCD_lr", 2, backend="numpy")
    assert not numpy_net.can_compact
    with pytest.raises(NotImplementedError, match="cannot move members"):
        numpy_net.move_members([0], [1])


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_recurrent_agents_compact_at_the_tail_with_the_same_numbers(monkeypatch, kind):
    """The LSTM and GRU baselines step only their live lifetimes at a generation's tail too, and
    every lifetime gives the same numbers as without compaction, bit for bit."""
    from spikehebb.agents.recurrent import RecurrentAgent, genome_parts

    rng = np.random.default_rng(9)
    n = 11
    parts = {p.name: [rng.normal(0, 0.7, (n,) + s) for s in p.shapes] for p in genome_parts(kind, SIZES)}
    seeds = [0, 3, 1, 2, 3, 0, 1, 3, 2, 0, 1]

    def lifetimes(i):
        return {name: [a[i : i + 1] for a in arrays] for name, arrays in parts.items()}

    rollout = Rollout(ACTION_SCORED, AgentConfig(kind=kind, rule=None, dtype="float64"), 6)
    prefixes = []
    set_active = rollout.agent.set_active
    monkeypatch.setattr(rollout.agent, "set_active", lambda k: (prefixes.append(k), set_active(k)))
    try:
        compacted = rollout.run("default", lifetimes, seeds)
        assert any(k is not None and k < 6 for k in prefixes), prefixes
        assert prefixes[-1] is None
        monkeypatch.setattr(RecurrentAgent, "can_compact", False)
        plain = rollout.run("default", lifetimes, seeds)
        np.testing.assert_array_equal(compacted.fitness, plain.fitness)
        np.testing.assert_array_equal(compacted.steps, plain.steps)
        assert compacted.env_steps == plain.env_steps
    finally:
        rollout.close()


def test_first_input_flag_records_reset_only_and_a_resume_keeps_it():
    import argparse

    from spikehebb.cli import add_train_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    config = lambda *flags, base=None: config_from_args(parser.parse_args(list(flags)), base)  # noqa: E731
    reset = config("--first-input", "reset")
    assert reset.task.episode == {"first_input": "reset"} and reset.task.make().episode.first_input == "reset"
    assert config("--first-input", "settled") == config()  # the default: the same config as without the flag
    assert config(base=reset).task.episode == {"first_input": "reset"}
    assert config("--first-input", "settled", base=reset).task.episode is None


class NaNEnv(ScriptedEnv):
    """The scripted env whose observation turns NaN (and terminated) at network step 2 for seed 1."""

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        if self.seed_ == 1 and self.k - BURN_IN == 3:
            return np.full_like(obs, np.nan), reward, True, truncated, info
        return obs, reward, terminated, truncated, info


def test_a_nan_observation_fails_its_lifetime_and_the_others_go_on():
    """Inside the grace steps a terminated lifetime goes on, so the NaN would reach the network:
    that lifetime fails (fitness NaN after its 3 steps); the other members are untouched."""
    task = replace(SCRIPTED, make_env=lambda variant, **kw: NaNEnv(variant, **kw))
    rollout = Rollout(task, AgentConfig(rule="ABCD", backend="numpy", dtype="float64"), 3)
    plain = Rollout(SCRIPTED, AgentConfig(rule="ABCD", backend="numpy", dtype="float64"), 3)
    try:
        result = rollout.run("default", source(*arrays(3)), env_seeds=[0, 1, 2])
        base = plain.run("default", source(*arrays(3)), env_seeds=[0, 1, 2])
    finally:
        rollout.close(), plain.close()
    assert np.isnan(result.fitness[1]) and result.steps[1] == 3
    np.testing.assert_array_equal(result.fitness[[0, 2]], base.fitness[[0, 2]])
    np.testing.assert_array_equal(result.steps[[0, 2]], base.steps[[0, 2]])


class NaNTermEnv(ScriptedEnv):
    """The scripted env whose fitness term turns NaN (or ``bad_term``) at network step 2 for seed
    1: with the observation too (a blown-up ant: its position, so its progress, is NaN) or alone."""

    obs_too, bad_term = True, float("nan")

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        if self.seed_ == 1 and self.k - BURN_IN == 3:
            info = {**info, "term": self.bad_term}
            return (np.full_like(obs, np.nan) if self.obs_too else obs), reward, self.obs_too, truncated, info
        return obs, reward, terminated, truncated, info


def test_a_lifetime_whose_fitness_term_alone_turns_nan_fails_at_that_step():
    """A NaN term with a finite observation, on a rule without a modulator: the lifetime's fitness
    was NaN, yet it lived on to its end, and its steps said it failed there. It ends at that step
    now (its third), failed; the others give what they give beside a healthy one."""
    env = type("Env", (NaNTermEnv,), {"obs_too": False})
    task = replace(SCRIPTED, make_env=lambda variant, **kw: env(variant, **kw))
    agent = AgentConfig(rule="ABCD", backend="numpy", dtype="float64")
    rollout, plain = Rollout(task, agent, 3), Rollout(SCRIPTED, agent, 3)
    try:
        result = rollout.run("default", source(*arrays(3)), env_seeds=[0, 1, 2])
        base = plain.run("default", source(*arrays(3)), env_seeds=[0, 1, 2])
    finally:
        rollout.close(), plain.close()
    assert np.isnan(result.fitness[1]) and result.steps[1] == 3 and base.steps[1] > 3
    np.testing.assert_array_equal(result.fitness[[0, 2]], base.fitness[[0, 2]])
    np.testing.assert_array_equal(result.steps[[0, 2]], base.steps[[0, 2]])


@pytest.mark.parametrize("obs_too, bad_term, dtype", [
    (True, float("nan"), "float64"), (False, float("nan"), "float64"), (False, 1e39, "float32"),
], ids=["nan_observation_and_term", "nan_term", "term_beyond_float32"])
def test_a_modulated_lifetime_whose_term_turns_nan_fails_alone(obs_too, bad_term, dtype):
    """A modulated rule reads the last term as the next step's modulator: a NaN term reached the
    network, which refused the whole batch (the generation, and the run, ended). Now that lifetime
    fails (fitness NaN) and the others give what they give beside a healthy one; with two slots and
    three lifetimes the failed slot is refilled, and at the tail it is left empty. A term finite in
    float64 but beyond float32 is inf to a float32 network: it fails the same way."""
    env = type("Env", (NaNTermEnv,), {"obs_too": obs_too, "bad_term": bad_term})
    task = replace(SCRIPTED, make_env=lambda variant, **kw: env(variant, **kw))
    agent = AgentConfig(rule="ABCD_lr", backend="numpy", dtype=dtype, modulated=True)
    from spikehebb.agents import agent_class, genome_parts

    def parts(i):  # the agent's own parts (a modulated rule has more coefficients), drawn per lifetime
        rng = np.random.default_rng(i)
        out = {p.name: [rng.normal(0, 0.1, (1,) + shape) for shape in p.shapes]
               for p in genome_parts(agent, SCRIPTED) if p.searched}
        out["weights"] = agent_class(agent).draw_part(agent, SCRIPTED.sizes, "weights", rng)
        return out

    for slots in (2, 3):
        rollout, plain = Rollout(task, agent, slots), Rollout(SCRIPTED, agent, slots)
        try:
            result = rollout.run("default", parts, env_seeds=[0, 1, 2])
            base = plain.run("default", parts, env_seeds=[0, 1, 2])
        finally:
            rollout.close(), plain.close()
        assert np.isnan(result.fitness[1]) and result.steps[1] == 3, slots
        np.testing.assert_array_equal(result.fitness[[0, 2]], base.fitness[[0, 2]])
        np.testing.assert_array_equal(result.steps[[0, 2]], base.steps[[0, 2]])


def test_an_env_that_cannot_go_on_ends_its_lifetime_at_terminated_grace_steps_or_not(scripted):
    """The car cannot step after it reports terminated (off the playfield): its lifetime ends
    there even inside the grace steps, which delay only what an env that goes on may ignore (the
    ant's falls, negative progress). The scripted seed 1 reports terminated at t = 2 and t = 7."""
    stops = replace(SCRIPTED, steps_after_terminated=False)
    rollout = Rollout(stops, AgentConfig(rule="ABCD", backend="numpy", dtype="float64"), 5)
    try:
        ended = rollout.run("default", source(*arrays(4)), env_seeds=[0, 1, 2, 3])
        goes_on = scripted.run("default", source(*arrays(4)), env_seeds=[0, 1, 2, 3])
    finally:
        rollout.close()
    assert goes_on.steps[1] == 8 and ended.steps[1] == 3  # t = 7 (past the grace) against t = 2
    assert ended.fitness[1] == 1.5  # three steps of 0.5
    np.testing.assert_array_equal(ended.fitness[[0, 2, 3]], goes_on.fitness[[0, 2, 3]])


def test_a_task_without_a_modulator_runs_agents_that_read_none(scripted):
    """``modulator="none"`` (no per-step signal for three-factor rules): an unmodulated agent runs
    as on any task; the task's info has no key of that name to read."""
    plain = scripted.run("default", source(*arrays(4)), env_seeds=[0, 1, 2, 3])
    rollout = Rollout(replace(SCRIPTED, modulator="none"), AgentConfig(rule="ABCD", backend="numpy", dtype="float64"), 5)
    try:
        np.testing.assert_array_equal(rollout.run("default", source(*arrays(4)), env_seeds=[0, 1, 2, 3]).fitness, plain.fitness)
    finally:
        rollout.close()


class FailingEnv(ActionScoredEnv):
    """The action-scored env that raises at network step 15 of its third lifetime of seed 0 while
    ``ARMED`` holds True (after the rollout has compacted its tail)."""

    ARMED = [False]
    zeros = 0

    def reset(self, *, seed=None, options=None):
        if self.ARMED[0] and seed == 0:
            FailingEnv.zeros += 1
        self.doomed = self.ARMED[0] and seed == 0 and FailingEnv.zeros == 3
        return super().reset(seed=seed, options=options)

    def step(self, action):
        if self.doomed and self.k - BURN_IN == 15:
            raise RuntimeError("the env failed")
        return super().step(action)


@pytest.mark.slow
def test_a_rollout_that_raised_at_its_tail_steps_every_slot_next_time():
    """An error after the tail was compacted (the network stepping only its first slots) does not
    leave the network so: the next run, compacting or not, gives what it gave before the error."""
    task = replace(ACTION_SCORED, make_env=lambda variant, **kw: FailingEnv(variant, **kw))
    coefficients, weights = arrays(11, seed=5, rule="ABCD_lr")
    seeds = [0, 3, 1, 2, 3, 0, 1, 3, 2, 0, 1]
    rollout = Rollout(task, AgentConfig(rule="ABCD_lr", backend="brian2", dtype="float64"), 6)
    hook = lambda *a: None  # noqa: E731 (a step hook: no compaction)
    try:
        before = rollout.run("default", source(coefficients, weights), seeds, on_step=hook)
        FailingEnv.ARMED[0], FailingEnv.zeros = True, 0
        with pytest.raises(RuntimeError, match="the env failed"):
            rollout.run("default", source(coefficients, weights), seeds)
        FailingEnv.ARMED[0] = False
        after = rollout.run("default", source(coefficients, weights), seeds, on_step=hook)
        np.testing.assert_array_equal(after.fitness, before.fitness)
    finally:
        FailingEnv.ARMED[0] = False
        rollout.close()


def test_bad_batch_sizes_and_env_seeds_are_refused():
    agent = AgentConfig(rule="ABCD", backend="numpy", dtype="float64")
    for bad in (2.7, 0, True):
        with pytest.raises(ValueError, match=f"batch_size must be a positive integer, got {bad}"):
            Rollout(SCRIPTED, agent, bad)
    rollout = Rollout(SCRIPTED, agent, 2)
    try:
        with pytest.raises(ValueError, match=r"env seeds must be integers, got \[0, 1.9\]"):
            rollout.run("default", source(*arrays(2)), env_seeds=[0, 1.9])
    finally:
        rollout.close()


def test_close_closes_every_env_when_one_raises_and_raises_the_first_error():
    closed = []

    class Env(ScriptedEnv):
        def close(self):
            closed.append(self)
            if len(closed) in (1, 3):
                raise OSError(f"close {len(closed)} failed")

    task = replace(SCRIPTED, make_env=lambda variant, **kw: Env(variant), variants=("default", "other"))
    rollout = Rollout(task, AgentConfig(rule="ABCD", backend="numpy", dtype="float64"), 2)
    made = rollout.envs("default") + rollout.envs("other")
    with pytest.raises(OSError, match="close 1 failed"):
        rollout.close()
    assert closed == made and not rollout._envs  # all four closed, none kept to close again
