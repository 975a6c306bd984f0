"""Gymnasium-native environments; importing this package registers them.

- ``spikehebb/AntBullet-v0``: pybullet's AntBulletEnv-v0 ported to gymnasium, with exchangeable
  lower legs (``gymnasium.make("spikehebb/AntBullet-v0", variant="damage_left")``).
- ``spikehebb/CarRacing-v0``: gymnasium's CarRacing-v3 with pixel-identical observations drawn
  several times faster, and Palm et al.'s tyre variations
  (``gymnasium.make("spikehebb/CarRacing-v0", variant="friction_half")``).
"""

import gymnasium

from spikehebb.envs.morphology import PRESETS, Morphology, get_morphology

ANT_ENV_ID = "spikehebb/AntBullet-v0"
CAR_ENV_ID = "spikehebb/CarRacing-v0"

if ANT_ENV_ID not in gymnasium.registry:
    gymnasium.register(
        id=ANT_ENV_ID,
        entry_point="spikehebb.envs.ant:AntBulletEnv",
        max_episode_steps=1000,  # as AntBulletEnv-v0
        reward_threshold=2500.0,  # as AntBulletEnv-v0
    )

if CAR_ENV_ID not in gymnasium.registry:
    gymnasium.register(
        id=CAR_ENV_ID,
        entry_point="spikehebb.envs.car:CarRacingEnv",
        max_episode_steps=1000,  # as CarRacing-v3
        reward_threshold=900,  # as CarRacing-v3
    )

# The envs load on first use: spikehebb.envs.car imports pygame and Box2D, which users of the Ant
# alone need not pay for (nor see pygame's banner); spikehebb.envs.ant imports pybullet, which
# prints its build-time banner on import (nothing to see for `spikehebb --help` or the car).
_CAR_NAMES = ("VARIATIONS", "CarRacingEnv", "CarVariation", "get_variation")


def __getattr__(name: str):
    if name in _CAR_NAMES:
        from spikehebb.envs import car

        return getattr(car, name)
    if name == "AntBulletEnv":
        from spikehebb.envs.ant import AntBulletEnv

        return AntBulletEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ANT_ENV_ID",
    "CAR_ENV_ID",
    "PRESETS",
    "VARIATIONS",
    "AntBulletEnv",
    "CarRacingEnv",
    "CarVariation",
    "Morphology",
    "get_morphology",
    "get_variation",
]
