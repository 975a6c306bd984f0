"""Gymnasium-native environments; importing this package registers them.

- ``spikehebb/AntBullet-v0``: pybullet's AntBulletEnv-v0 ported to gymnasium, with exchangeable
  lower legs (``gymnasium.make("spikehebb/AntBullet-v0", morphology="damage_left")``).
"""

import gymnasium

from spikehebb.envs.ant import AntBulletEnv
from spikehebb.envs.morphology import PRESETS, Morphology, get_morphology

ANT_ENV_ID = "spikehebb/AntBullet-v0"

if ANT_ENV_ID not in gymnasium.registry:
    gymnasium.register(
        id=ANT_ENV_ID,
        entry_point="spikehebb.envs.ant:AntBulletEnv",
        max_episode_steps=1000,  # as AntBulletEnv-v0
        reward_threshold=2500.0,  # as AntBulletEnv-v0
    )

__all__ = ["ANT_ENV_ID", "PRESETS", "AntBulletEnv", "Morphology", "get_morphology"]
