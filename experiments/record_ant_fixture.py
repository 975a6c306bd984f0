"""Record trajectories of pybullet's own AntBulletEnv-v0 as the reference for spikehebb's Ant.

The reference needs the retired ``gym`` package, which spikehebb does not depend on, so this script
runs in two halves: the parent (spikehebb's venv) writes the MJCF of each morphology to a temporary
folder and starts the worker half (``--worker``) under a Python that has gym; the worker imports
nothing from spikehebb.

How ``tests/fixtures/ant_reference.npz`` was produced (pybullet 3.2.7, gym 0.26.2, numpy 1.26.4,
CPython 3.11 on x86-64 Linux)::

    python3 -m venv /tmp/antref
    /tmp/antref/bin/pip install gym==0.26.2 pybullet==3.2.7 "numpy<2"
    . .venv/bin/activate
    python experiments/record_ant_fixture.py --reference-python /tmp/antref/bin/python

What the worker does:

- gym 0.26's registry is a dict, but ``pybullet_envs/__init__.py`` asks it for ``.env_specs``;
  :func:`make_reference_ant` gives the registry that attribute (returning itself) before the
  import, then builds ``pybullet_envs.gym_locomotion_envs.AntBulletEnv()`` directly (no gym
  wrappers, no time limit). For a non-default body it points ``env.robot.model_xml`` at the MJCF
  file (``os.path.join`` of the data folder and an absolute path is that path).
- Actions: ``numpy.random.default_rng(ACTION_SEED = 20240601).uniform(-1, 1, (1000, 8))`` cast to
  float32; every episode uses the first ``steps`` rows.
- Each episode: ``env.seed(seed)``, ``obs = env.reset()``, then ``steps`` calls to
  ``env.step(action)``, *ignoring done*: the original keeps stepping after a fall, and the Hebbian
  papers' protocol relies on that. Recorded per episode, with ``<name>__`` in front of the key:
  ``obs`` (steps + 1, 28) float32 (the reset observation first), ``reward`` (steps,) float64,
  ``terms`` (steps, 5) float64 (the original's ``env.rewards``: alive, progress, electricity,
  joints at limit, feet collision), ``done`` (steps,) bool, ``actions`` (steps, 8) float32.
  ``meta`` holds a JSON string with the versions, seeds and episode list.

Episodes (``EPISODES``): ``fresh_seed0`` (a new env, seed 0, 1,000 steps), ``reused_seed1``
(the same env reset again with seed 1: the original's later-reset behaviour), ``fresh_seed1``
(a new env, seed 1), ``damage_left_seed2`` (a new env on the ``damage_left`` body, seed 2).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ACTION_SEED = 20240601
N_ACTIONS = 1000
# (name, morphology preset, "new" env or the "same" env as the previous episode, seed, steps)
EPISODES = (
    ("fresh_seed0", "default", "new", 0, 1000),
    ("reused_seed1", "default", "same", 1, 300),
    ("fresh_seed1", "default", "new", 1, 300),
    ("damage_left_seed2", "damage_left", "new", 2, 300),
)
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "ant_reference.npz"


def reference_actions() -> np.ndarray:
    """The fixed action sequence, (1000, 8) float32 in [-1, 1]."""
    rng = np.random.default_rng(ACTION_SEED)
    return rng.uniform(-1.0, 1.0, size=(N_ACTIONS, 8)).astype(np.float32)


def make_reference_ant(mjcf_path: str | None = None):
    """Build pybullet's AntBulletEnv (needs gym 0.26); ``mjcf_path`` replaces ant.xml if given."""
    import gym.envs.registration as registration

    if not hasattr(registration.registry, "env_specs"):

        class _Registry(dict):
            """gym 0.26's registry dict with the ``env_specs`` view pybullet_envs expects."""

            @property
            def env_specs(self):
                return self

        registration.registry = _Registry(registration.registry)
    from pybullet_envs.gym_locomotion_envs import AntBulletEnv

    env = AntBulletEnv()
    if mjcf_path is not None:
        env.robot.model_xml = mjcf_path
    return env


def _record(mjcf_paths: dict[str, str], output: Path) -> None:
    """Worker half: run EPISODES in the reference env and write the .npz."""
    import gym
    import pybullet

    actions = reference_actions()
    arrays: dict[str, np.ndarray] = {}
    env = None
    for name, morphology, which, seed, steps in EPISODES:
        if which == "new":
            if env is not None:
                env.close()
            env = make_reference_ant(mjcf_paths.get(morphology))
        env.seed(seed)
        obs = [env.reset()]
        rewards, terms, dones = [], [], []
        for action in actions[:steps]:
            o, r, done, _ = env.step(action)
            obs.append(o)
            rewards.append(r)
            terms.append(list(env.rewards))
            dones.append(done)
        arrays[f"{name}__obs"] = np.asarray(obs, dtype=np.float32)
        arrays[f"{name}__reward"] = np.asarray(rewards, dtype=np.float64)
        arrays[f"{name}__terms"] = np.asarray(terms, dtype=np.float64)
        arrays[f"{name}__done"] = np.asarray(dones, dtype=bool)
        arrays[f"{name}__actions"] = actions[:steps].copy()
    env.close()
    meta = {
        "python": platform.python_version(),
        "gym": gym.__version__,
        "pybullet": pybullet.getAPIVersion(),
        "pybullet_distribution": _distribution_version("pybullet"),
        "numpy": np.__version__,
        "action_seed": ACTION_SEED,
        "episodes": [list(e) for e in EPISODES],
    }
    arrays["meta"] = np.array(json.dumps(meta))
    output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(output, **arrays)


def _distribution_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-python", default=sys.executable,
                        help="a Python with gym==0.26.2 and pybullet installed")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--worker", metavar="JSON", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker is not None:
        _record(json.loads(args.worker), args.output)
        return

    from spikehebb.envs.morphology import get_morphology

    with tempfile.TemporaryDirectory(prefix="antref_") as folder:
        mjcf_paths = {}
        for morphology in {e[1] for e in EPISODES} - {"default"}:
            path = os.path.join(folder, f"{morphology}.xml")
            Path(path).write_text(get_morphology(morphology).to_mjcf())
            mjcf_paths[morphology] = path
        subprocess.run(
            [args.reference_python, __file__, "--worker", json.dumps(mjcf_paths),
             "--output", str(args.output)],
            check=True,
        )
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
