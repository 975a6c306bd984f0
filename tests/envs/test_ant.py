"""spikehebb/AntBullet-v0: the API, equivalence with pybullet's AntBulletEnv-v0, morphologies, errors."""

import json
from pathlib import Path

import gymnasium
import numpy as np
import pybullet
import pytest
from gymnasium.utils.env_checker import check_env

from spikehebb.envs import ANT_ENV_ID, PRESETS, AntBulletEnv, Morphology
from spikehebb.envs.ant import REWARD_TERMS

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ant_reference.npz"
TOLERANCE = 1e-5  # the port must match the reference to this, at every step


@pytest.fixture(scope="module")
def reference():
    """Trajectories of pybullet's AntBulletEnv-v0 (see experiments/record_ant_fixture.py)."""
    with np.load(FIXTURE) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture
def make_env():
    """Build AntBulletEnvs and close them after the test."""
    envs = []

    def make(*args, **kwargs):
        envs.append(AntBulletEnv(*args, **kwargs))
        return envs[-1]

    yield make
    for env in envs:
        env.close()


def rollout(env, seed, actions, skip_reset=False):
    """Reset with ``seed`` and step through ``actions``; arrays like the fixture's."""
    obs = [env.reset(seed=seed)[0]]
    rewards, terms, dones = [], [], []
    for action in actions:
        o, reward, terminated, truncated, info = env.step(action)
        assert truncated is False
        obs.append(o)
        rewards.append(reward)
        terms.append([info[name] for name in REWARD_TERMS])
        dones.append(terminated)
    return {
        "obs": np.array(obs),
        "reward": np.array(rewards),
        "terms": np.array(terms),
        "done": np.array(dones),
    }


def assert_matches_reference(ours, reference, episode):
    """Observations, rewards, reward terms and done agree with the fixture episode at every step."""
    assert np.all(np.abs(ours["obs"]) <= 5.0)  # inside the observation space
    for key in ("obs", "reward", "terms"):
        expected = reference[f"{episode}__{key}"]
        assert ours[key].shape == expected.shape
        deviation = np.abs(ours[key] - expected).max()
        assert deviation <= TOLERANCE, f"{episode} {key}: max deviation {deviation:.3g}"
    np.testing.assert_array_equal(ours["done"], reference[f"{episode}__done"])


# --------------------------------------------------------------------------- equivalence


def test_fixture_documents_its_provenance(reference):
    meta = json.loads(str(reference["meta"]))
    assert meta["gym"] == "0.26.2"
    assert meta["pybullet_distribution"] == "3.2.7"
    assert [e[0] for e in meta["episodes"]][0] == "fresh_seed0"


def test_matches_reference_1000_steps_then_fresh_reset(reference, make_env):
    """A new env, seed 0, 1,000 random actions; then reset(seed=1) equals a new original env seeded 1."""
    env = make_env()
    actions = reference["fresh_seed0__actions"]
    assert len(actions) == 1000
    assert_matches_reference(rollout(env, 0, actions), reference, "fresh_seed0")
    ours = rollout(env, 1, reference["fresh_seed1__actions"])
    assert_matches_reference(ours, reference, "fresh_seed1")


def test_matches_reference_reused_reset(reference, make_env):
    """reset_mode="reused": a second reset behaves like the original's later resets."""
    env = make_env(reset_mode="reused")
    assert_matches_reference(rollout(env, 0, reference["fresh_seed0__actions"]), reference, "fresh_seed0")
    ours = rollout(env, 1, reference["reused_seed1__actions"])
    assert_matches_reference(ours, reference, "reused_seed1")
    # the two modes differ only in the starting potential, so only the first progress term
    fresh = reference["fresh_seed1__terms"]
    assert abs(ours["terms"][0, 1] - fresh[0, 1]) > 1e-4
    np.testing.assert_allclose(ours["terms"][1:], fresh[1:], atol=TOLERANCE)


def test_matches_reference_damaged_body_through_falls(reference, make_env):
    """The damage_left body against the original loading the same MJCF; it falls and keeps stepping."""
    env = make_env("damage_left")
    ours = rollout(env, 2, reference["damage_left_seed2__actions"])
    assert_matches_reference(ours, reference, "damage_left_seed2")
    assert ours["done"].any() and not ours["done"].all()


def test_reward_terms_sum_to_reward(make_env):
    env = make_env()
    env.reset(seed=5)
    rng = np.random.default_rng(5)
    for _ in range(50):
        _, reward, _, _, info = env.step(rng.uniform(-1, 1, 8))
        assert sum(info[name] for name in REWARD_TERMS) == pytest.approx(reward, abs=1e-12)
        assert info["reward_feet_collision"] == 0.0
        assert info["reward_alive"] in (-1.0, 1.0)


# --------------------------------------------------------------------------- gymnasium API


def test_make_with_preset_and_time_limit():
    env = gymnasium.make(ANT_ENV_ID, variant="default")
    try:
        assert env.spec.max_episode_steps == 1000
        assert env.unwrapped.morphology == PRESETS["default"]
        env.reset(seed=0)
        steps = 0
        truncated = False
        while not truncated:
            _, _, _, truncated, _ = env.step(np.zeros(8, dtype=np.float32))
            steps += 1
        assert steps == 1000
    finally:
        env.close()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_check_env_passes(name):
    env = gymnasium.make(ANT_ENV_ID, variant=name)
    try:
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


def test_check_env_with_render_and_a_morphology_object():
    env = gymnasium.make(
        ANT_ENV_ID, variant=Morphology((1.0, 0.5, 1.0, 1.0)), render_mode="rgb_array"
    )
    try:
        check_env(env.unwrapped)
    finally:
        env.close()


def test_same_seed_same_trajectory_side_by_side(make_env):
    """Two envs in one process, stepped alternately, follow identical trajectories."""
    first, second = make_env(), make_env()
    assert first.client_id != second.client_id
    first.reset(seed=11)
    second.reset(seed=11)
    rng = np.random.default_rng(11)
    for _ in range(200):
        action = rng.uniform(-1, 1, 8).astype(np.float32)
        a = first.step(action)
        b = second.step(action)
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:4] == b[1:4]


def test_different_seeds_start_differently(make_env):
    env = make_env()
    obs_a, _ = env.reset(seed=1)
    obs_b, _ = env.reset(seed=2)
    assert not np.array_equal(obs_a[8:24], obs_b[8:24])


def test_reset_does_not_reload_and_close_releases_client(make_env):
    env = make_env()
    cid, robot = env.client_id, env.robot_id
    for seed in range(3):
        env.reset(seed=seed)
        env.step(np.zeros(8))
    assert env.robot_id == robot
    assert pybullet.getNumBodies(physicsClientId=cid) == 2  # floor and Ant, nothing added
    env.close()
    assert pybullet.getConnectionInfo(physicsClientId=cid)["isConnected"] == 0
    env.close()  # a second close is harmless
    with pytest.raises(RuntimeError, match="closed"):
        env.step(np.zeros(8))


def test_render_follows_the_torso(make_env, monkeypatch):
    env = make_env(render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    assert first.shape == (240, 320, 3) and first.dtype == np.uint8
    assert first.std() > 1.0  # an actual picture, not a blank
    targets = []
    view = pybullet.computeViewMatrixFromYawPitchRoll

    def recorded(**kw):
        targets.append(tuple(kw["cameraTargetPosition"]))
        return view(**kw)

    monkeypatch.setattr(pybullet, "computeViewMatrixFromYawPitchRoll", recorded)
    env.render()
    for _ in range(30):
        env.step(np.ones(8))
    moved = env.render()
    assert moved.shape == first.shape and not np.array_equal(moved, first)
    torso = pybullet.getBasePositionAndOrientation(env.robot_id, physicsClientId=env.client_id)[0]
    assert targets[-1] == tuple(torso) and targets[0] != targets[-1]  # the camera looks at the torso as it moves


# --------------------------------------------------------------------------- morphologies


def _ankle_lengths_in_pybullet(env):
    """Capsule lengths (m) of the four foot links, read back from pyBullet's visual shapes."""
    shapes = pybullet.getVisualShapeData(env.robot_id, physicsClientId=env.client_id)
    by_link = {shape[1]: shape for shape in shapes}
    return [by_link[link][3][0] for link in env.foot_links]


def _link_masses(env):
    return [
        pybullet.getDynamicsInfo(env.robot_id, link, physicsClientId=env.client_id)[0]
        for link in env.foot_links
    ]


@pytest.mark.parametrize("name", sorted(set(PRESETS) - {"default"}))
def test_morphologies_change_geometry_and_trajectory(name, make_env, reference):
    default, other = make_env("default"), make_env(name)
    morphology = PRESETS[name]
    lengths = _ankle_lengths_in_pybullet(other)
    np.testing.assert_allclose(lengths, morphology.ankle_lengths, rtol=1e-6)
    np.testing.assert_allclose(
        _ankle_lengths_in_pybullet(default), PRESETS["default"].ankle_lengths, rtol=1e-6
    )
    changed = [s != 1.0 for s in morphology.ankle_scale]
    masses_default, masses_other = _link_masses(default), _link_masses(other)
    for leg in range(4):
        assert (masses_other[leg] != pytest.approx(masses_default[leg])) == changed[leg]

    actions = reference["fresh_seed0__actions"][:100]
    ours = rollout(other, 0, actions)
    base = rollout(default, 0, actions)
    assert np.abs(ours["obs"][1:] - base["obs"][1:]).max() > 0.1


# --------------------------------------------------------------------------- bad input


def test_unknown_preset_through_make_lists_presets():
    with pytest.raises(ValueError, match="unknown morphology 'tripod'.*damage_left"):
        gymnasium.make(ANT_ENV_ID, variant="tripod")


def test_bad_leg_scale_through_make():
    with pytest.raises(ValueError, match=r"ankle_scale\[1\] must be a finite number"):
        gymnasium.make(ANT_ENV_ID, variant=Morphology((1.0, -1.0, 1.0, 1.0)))


@pytest.mark.parametrize(
    "action, message",
    [
        (np.zeros(7), r"action must have shape \(8,\), got shape \(7,\)"),
        (np.zeros((1, 8)), r"action must have shape \(8,\), got shape \(1, 8\)"),
        (np.full(8, np.nan), r"action must be finite"),
        (np.array(["a"] * 8), r"action must hold real numbers, got dtype <U1"),
    ],
)
def test_bad_action_is_rejected(action, message, make_env):
    env = make_env()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(action)


def test_integer_and_list_actions_are_accepted(make_env):
    """A list or an integer array steps as the same numbers in a float array do."""
    given, as_floats = make_env(), make_env()
    given.reset(seed=0)
    as_floats.reset(seed=0)
    for action in ([0, 1, 0, -1, 0, 1, 0, -1], np.array([1, 0, 0, 1, -1, 0, 0, 1], dtype=np.int64)):
        obs, reward, *_ = given.step(action)
        obs_f, reward_f, *_ = as_floats.step(np.asarray(action, dtype=np.float64))
        np.testing.assert_array_equal(obs, obs_f)
        assert reward == reward_f


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"reset_mode": "sometimes"}, r"reset_mode must be one of \('fresh', 'reused'\), got 'sometimes'"),
        ({"render_mode": "human"}, r"render_mode must be None or one of \['rgb_array'\], got 'human'"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AntBulletEnv(**kwargs)


def test_numpy_sum_is_numpys_reduction_bit_for_bit():
    """The part centre's mean is summed in plain Python in NumPy's pairwise order: every length
    up to past the block size, magnitudes mixed over eight decades, signed zeros."""
    from spikehebb.envs.ant import numpy_sum

    rng = np.random.default_rng(0)
    for n in [*range(0, 40), 127, 128, 129, 300]:
        for _ in range(300):
            values = (rng.standard_normal(n) * 10.0 ** rng.integers(-4, 5, n)).tolist()
            assert numpy_sum(values) == float(np.add.reduce(np.array(values))), (n, values)
    for zeros in ([-0.0], [-0.0, -0.0], [-0.0] * 9, [0.0, -0.0]):
        assert str(numpy_sum(zeros)) == str(float(np.add.reduce(np.array(zeros))))


def test_a_step_before_the_first_reset_is_refused():
    """Its progress would be measured from a potential never set (about -60,000 in one step)."""
    env = AntBulletEnv()
    try:
        with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
            env.step(np.zeros(8))
        env.reset(seed=0)
        env.step(np.zeros(8))
    finally:
        env.close()


def test_an_env_dropped_without_close_frees_its_client():
    env = AntBulletEnv()
    client = env._client
    assert pybullet.getConnectionInfo(client)["isConnected"]
    del env
    import gc

    gc.collect()
    assert not pybullet.getConnectionInfo(client)["isConnected"]
