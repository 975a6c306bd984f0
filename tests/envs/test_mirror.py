"""The mirror map is the reflection of the physics: a body driven by the mirror image of another
body's actions senses the mirror image of its observations."""

import gymnasium
import numpy as np
import pybullet
import pytest

from spikehebb.envs import ANT_ENV_ID
from spikehebb.envs.mirror import MirroredAnt, mirror_action, mirror_observation


def test_the_map_is_its_own_inverse_and_swaps_the_legs():
    rng = np.random.default_rng(0)
    obs, act = rng.normal(size=(5, 28)).astype(np.float32), rng.normal(size=(3, 8))
    np.testing.assert_array_equal(mirror_observation(mirror_observation(obs)), obs)
    np.testing.assert_array_equal(mirror_action(mirror_action(act)), act)
    assert mirror_observation(obs).dtype == np.float32
    a = np.arange(1.0, 9.0)  # hip_1, ankle_1, ..., hip_4, ankle_4
    np.testing.assert_array_equal(mirror_action(a), [-7, 8, -5, 6, -3, 4, -1, 2])
    o = mirror_observation(np.arange(28.0))
    np.testing.assert_array_equal(o[:8], [0, -1, 2, 3, -4, 5, -6, 7])
    np.testing.assert_array_equal(o[8:12], [-20, -21, 22, 23])  # leg 0 reads leg 3: hip negated, ankle not
    np.testing.assert_array_equal(o[24:], [27, 26, 25, 24])


def _mirror_the_joints(source, target):
    """Put ``target``'s joints in the mirror image of ``source``'s (angles and speeds)."""
    src, dst = source.unwrapped, target.unwrapped
    states = pybullet.getJointStates(src._robot, src._joints, physicsClientId=src._client)
    q = mirror_action(np.array([s[0] for s in states]))
    v = mirror_action(np.array([s[1] for s in states]))
    for k, joint in enumerate(dst._joints):
        pybullet.resetJointState(dst._robot, joint, q[k], v[k], physicsClientId=dst._client)


@pytest.mark.parametrize("variant, mirror", [("damage_right", "damage_left"), ("default", "default"),
                                             ("long_back", "long_front")])
def test_the_mirror_body_driven_by_mirrored_actions_senses_the_mirrored_observations(variant, mirror):
    body = gymnasium.make(ANT_ENV_ID, variant=variant)
    other = gymnasium.make(ANT_ENV_ID, variant=mirror)
    try:
        body.reset(seed=3)
        other.reset(seed=4)  # another start, then set to the mirror of the first
        _mirror_the_joints(body, other)
        rng = np.random.default_rng(1)
        lopsided = 0  # steps whose feet touch in a pattern that is not its own mirror image
        for t in range(28):
            action = rng.uniform(-1, 1, 8).astype(np.float32)
            obs, _, _, _, info = body.step(action)
            obs_m, _, _, _, info_m = other.step(mirror_action(action))
            if t < 10:  # in the air: the same to a few float32 roundings of the joints' reset
                np.testing.assert_allclose(obs_m, mirror_observation(obs), atol=1e-3)  # a wrong sign is off by ~0.1
                if t > 0:  # step 0's progress counts from the potential before the joints were set
                    assert info_m["reward_progress"] == pytest.approx(info["reward_progress"], abs=1e-5)
            # the landing (from step ~18): contacts let the two drift apart, but which feet touch agrees
            np.testing.assert_array_equal(obs_m[24:], mirror_observation(obs)[24:])
            lopsided += not np.array_equal(obs[24:], obs[24:][::-1])
        assert lopsided > 0  # so the feet's order was tested
    finally:
        body.close()
        other.close()


def test_the_wrapper_shows_the_mirror_and_plays_the_mirror():
    plain = gymnasium.make(ANT_ENV_ID, variant="damage_left")
    mirrored = MirroredAnt(gymnasium.make(ANT_ENV_ID, variant="damage_left"))
    try:
        obs, _ = plain.reset(seed=5)
        obs_m, _ = mirrored.reset(seed=5)
        np.testing.assert_array_equal(obs_m, mirror_observation(obs))
        action = np.linspace(-1, 1, 8, dtype=np.float32)
        obs, reward, *_ = plain.step(mirror_action(action))
        obs_m, reward_m, *_ = mirrored.step(action)
        np.testing.assert_array_equal(obs_m, mirror_observation(obs))
        assert reward_m == reward
    finally:
        plain.close()
        mirrored.close()


def test_each_mirror_preset_is_the_reflected_body():
    from spikehebb.envs import get_morphology
    from spikehebb.envs.mirror import MIRROR_LEG, MIRROR_PRESET

    for name, mirror in MIRROR_PRESET.items():
        scales, mirrored = get_morphology(name).ankle_scale, get_morphology(mirror).ankle_scale
        assert tuple(scales[MIRROR_LEG[leg]] for leg in range(4)) == tuple(mirrored), name


def test_body_roles_name_the_mirror_of_a_training_body_only_for_a_mirror_rule():
    from spikehebb.envs.mirror import body_roles

    bodies = ("default", "damage_left", "damage_right", "palm_damage_right", "long_back", "long_front")
    trained = ("default", "damage_right")
    assert body_roles(bodies, trained) == {"default": "trained", "damage_left": "unseen", "damage_right": "trained",
                                           "palm_damage_right": "unseen", "long_back": "unseen", "long_front": "unseen"}
    assert body_roles(bodies, trained, mirror_rule=True) == {
        "default": "trained", "damage_left": "mirror of trained", "damage_right": "trained",
        "palm_damage_right": "unseen", "long_back": "unseen", "long_front": "unseen"}
    assert body_roles(("long_front", "long_back"), ("default", "long_back"), mirror_rule=True)["long_front"] == "mirror of trained"


@pytest.mark.parametrize("shape", [(9,), (7,), ()])
def test_the_mirror_refuses_an_action_or_observation_of_another_shape(shape):
    with pytest.raises(ValueError, match=rf"action must have shape \(\.\.\., 8\), got {re_shape(shape)}"):
        mirror_action(np.zeros(shape))
    with pytest.raises(ValueError, match=r"observation must have shape \(\.\.\., 28\)"):
        mirror_observation(np.zeros(shape))


def re_shape(shape):
    return str(shape).replace("(", r"\(").replace(")", r"\)")
