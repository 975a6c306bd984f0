"""The Ant seen in a mirror: the controller's left and right swapped.

Reflecting the world in the x-z plane (y -> -y; the Ant walks along +x, +y is its left) maps the
Ant onto itself with its legs swapped, leg 0 (front left) <-> leg 3 (front right) and leg 1 (back
left) <-> leg 2 (back right) (legs as in :mod:`spikehebb.envs.morphology`), and so maps
``damage_left`` onto ``damage_right`` and ``long_front`` onto ``long_back``. :class:`MirroredAnt`
shows the controller the mirror image of what its body senses and plays the mirror image of
what the controller commands: a controller driving ``damage_left`` through the mirror drives it
as it would drive ``damage_right``, up to the physics engine's own asymmetries (contact order).

What the reflection does to the 28 observations (:mod:`spikehebb.envs.ant`'s layout) and the 8
actions, joint k = 2 * leg + (0 hip, 1 ankle):

- torso: z, cos(angle to target), forward speed vx, vz and pitch keep their values; sin(angle to
  target), sideways speed vy and roll change sign (a reflection reverses rotations about x and
  z and keeps those about y);
- joints: each leg takes its mirror leg's values; a hip turns about z, so its angle, speed and
  torque change sign; each ankle's axis is the reflection of its mirror leg's (``-1 1 0`` <->
  ``1 1 0`` in ant.xml, ranges equal), so ankles keep their sign;
- feet contacts: each leg takes its mirror leg's.

The map is its own inverse.
"""

from __future__ import annotations

from typing import Sequence

import gymnasium
import numpy as np

#: The mirror leg of each leg (front left <-> front right, back left <-> back right).
MIRROR_LEG = (3, 2, 1, 0)
#: The preset whose body is each preset's mirror image (``palm_damage_right``'s, leg 2 short, is
#: not a preset).
MIRROR_PRESET = {"default": "default", "damage_left": "damage_right", "damage_right": "damage_left",
                 "long_back": "long_front", "long_front": "long_back"}


#: What a body can be to a run (:func:`body_roles`).
BODY_ROLES = ("trained", "mirror of trained", "unseen")


def body_roles(variants: Sequence[str], train_variants: Sequence[str], mirror_rule: bool = False) -> dict[str, str]:
    """What each body is to a run trained on ``train_variants`` (one of :data:`BODY_ROLES`):
    "trained", "unseen", or, for a mirror-symmetric rule (``mirror_rule``), "mirror of trained"
    where its mirror image is a training body (``damage_left`` for a run trained on
    ``damage_right``): the rule meets it as it meets the training body, so it is not a test of
    generalisation."""
    trained = set(train_variants)
    return {v: "trained" if v in trained
            else "mirror of trained" if mirror_rule and MIRROR_PRESET.get(v) in trained else "unseen"
            for v in variants}


#: Sign of a joint's angle, speed and torque in the mirror: hip (about z) -1, ankle +1.
JOINT_SIGN = (-1.0, 1.0)

_JOINT_SOURCE = np.array([2 * MIRROR_LEG[k // 2] + k % 2 for k in range(8)])
_JOINT_SIGN = np.array([JOINT_SIGN[k % 2] for k in range(8)], dtype=np.float32)

#: Action k of the mirror is ``ACTION_SIGN[k] * action[ACTION_SOURCE[k]]``.
ACTION_SOURCE = _JOINT_SOURCE
ACTION_SIGN = _JOINT_SIGN

#: Observation i of the mirror is ``OBSERVATION_SIGN[i] * observation[OBSERVATION_SOURCE[i]]``:
#: 8 torso values (z, sin, cos, vx, vy, vz, roll, pitch), 8 (angle, speed) pairs, 4 feet.
OBSERVATION_SOURCE = np.concatenate([
    np.arange(8),
    np.stack([8 + 2 * _JOINT_SOURCE, 9 + 2 * _JOINT_SOURCE], axis=1).ravel(),
    24 + np.array(MIRROR_LEG),
])
OBSERVATION_SIGN = np.concatenate([
    np.array([1, -1, 1, 1, -1, 1, -1, 1], dtype=np.float32),
    np.repeat(_JOINT_SIGN, 2),
    np.ones(4, dtype=np.float32),
])


def mirror_observation(observation: np.ndarray) -> np.ndarray:
    """The Ant's observation ``(..., 28)`` as its mirror image would sense it."""
    observation = np.asarray(observation)
    if observation.shape[-1:] != OBSERVATION_SIGN.shape:
        raise ValueError(f"observation must have shape (..., {OBSERVATION_SIGN.size}), got {observation.shape}")
    return (OBSERVATION_SIGN * observation[..., OBSERVATION_SOURCE]).astype(observation.dtype, copy=False)


def mirror_action(action: np.ndarray) -> np.ndarray:
    """The torques ``(..., 8)`` that play the mirror image of ``action``."""
    action = np.asarray(action)
    if action.shape[-1:] != ACTION_SIGN.shape:
        raise ValueError(f"action must have shape (..., {ACTION_SIGN.size}), got {action.shape}")
    return (ACTION_SIGN * action[..., ACTION_SOURCE]).astype(action.dtype, copy=False)


class MirroredAnt(gymnasium.Wrapper):
    """An Ant env (``spikehebb/AntBullet-v0``) whose controller sees and drives its mirror image;
    rewards and infos are the body's own (forward progress is the same in the mirror)."""

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        return mirror_observation(observation), info

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(mirror_action(action))
        return mirror_observation(observation), reward, terminated, truncated, info
