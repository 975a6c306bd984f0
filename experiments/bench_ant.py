"""Time spikehebb's AntBullet-v0 against pybullet's AntBulletEnv-v0 and against bare physics.

Three variants step the same body from the same seed with the same 1,000 random actions (those of
the test fixture, so all three follow the same trajectory):

- ``reference``: pybullet_envs' AntBulletEnv (needs gym 0.26; run in this process if ``import gym``
  works, otherwise in a subprocess under ``--reference-python``, otherwise skipped);
- ``spikehebb``: :class:`spikehebb.envs.ant.AntBulletEnv`;
- ``bare physics``: only ``setJointMotorControlArray`` + ``stepSimulation`` on spikehebb's client,
  the floor under any env.

Repetitions are interleaved (reference, spikehebb, bare, reference, ...) and medians reported, as
other processes share the machine. Time inside ``stepSimulation`` is measured by wrapping
``pybullet.stepSimulation`` with ``time.perf_counter`` (both envs call it through the module).

    python experiments/bench_ant.py --reference-python /tmp/antref/bin/python

(/tmp/antref: ``python3 -m venv /tmp/antref && /tmp/antref/bin/pip install gym==0.26.2
pybullet==3.2.7 "numpy<2"``; see experiments/record_ant_fixture.py.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from spikehebb.envs.ant import pybullet  # imported without its build-time banner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record_ant_fixture import make_reference_ant, reference_actions  # noqa: E402

SEED = 0


class _StepSimulationTimer:
    """Replace pybullet.stepSimulation by a wrapper that adds up the seconds spent inside it."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._original = pybullet.stepSimulation

    def __enter__(self) -> "_StepSimulationTimer":
        original = self._original

        def timed(*args, **kwargs):
            start = time.perf_counter()
            result = original(*args, **kwargs)
            self.seconds += time.perf_counter() - start
            return result

        pybullet.stepSimulation = timed
        return self

    def __exit__(self, *exc) -> None:
        pybullet.stepSimulation = self._original


def _timed_steps(step: Callable[[np.ndarray], object], actions: np.ndarray) -> dict[str, float]:
    """Run ``step`` over ``actions``; steps/s and the share of wall time inside stepSimulation."""
    with _StepSimulationTimer() as timer:
        start = time.perf_counter()
        for action in actions:
            step(action)
        elapsed = time.perf_counter() - start
    return {"steps_per_s": len(actions) / elapsed, "physics_share": timer.seconds / elapsed}


def time_reference(actions: np.ndarray) -> dict[str, float]:
    """pybullet_envs' AntBulletEnv, reset with env.seed(SEED) then stepped (needs gym)."""
    env = make_reference_ant()
    env.seed(SEED)
    env.reset()
    result = _timed_steps(env.step, actions)
    env.close()
    return result


def time_spikehebb(actions: np.ndarray) -> dict[str, float]:
    """spikehebb's AntBulletEnv, reset(seed=SEED) then stepped."""
    from spikehebb.envs.ant import AntBulletEnv

    env = AntBulletEnv()
    env.reset(seed=SEED)
    result = _timed_steps(env.step, actions)
    env.close()
    return result


def time_bare_physics(actions: np.ndarray) -> dict[str, float]:
    """Only the torque command and stepSimulation, on a freshly reset spikehebb env's client."""
    from spikehebb.envs.ant import TORQUE_SCALE, AntBulletEnv

    env = AntBulletEnv()
    env.reset(seed=SEED)
    robot, joints, cid = env.robot_id, env.joint_indices, env.client_id

    def step(action: np.ndarray) -> None:
        torques = TORQUE_SCALE * np.clip(action, -1, 1).astype(np.float64)
        pybullet.setJointMotorControlArray(
            robot, joints, pybullet.TORQUE_CONTROL, forces=torques, physicsClientId=cid
        )
        pybullet.stepSimulation(physicsClientId=cid)

    result = _timed_steps(step, actions)
    env.close()
    return result


def _reference_runner(reference_python: str | None, steps: int) -> Callable[[], dict] | None:
    """How to time the reference here: in process, in a subprocess, or not at all (None)."""
    try:
        import gym  # noqa: F401
    except ImportError:
        if reference_python is None:
            return None
        command = [reference_python, __file__, "--worker", "--steps", str(steps)]
        return lambda: json.loads(subprocess.run(command, check=True, capture_output=True,
                                                 text=True).stdout.strip().splitlines()[-1])
    return lambda: time_reference(reference_actions()[:steps])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="env steps per repetition (<= 1000)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repetitions per variant")
    parser.add_argument("--reference-python", help="a Python with gym==0.26.2 and pybullet")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(time_reference(reference_actions()[: args.steps])))
        return

    actions = reference_actions()[: args.steps]
    variants: dict[str, Callable[[], dict]] = {}
    reference = _reference_runner(args.reference_python, args.steps)
    if reference is None:
        print("reference skipped: `import gym` failed here and no --reference-python was given.\n"
              "  python3 -m venv /tmp/antref && /tmp/antref/bin/pip install gym==0.26.2 "
              "pybullet==3.2.7 'numpy<2'\n"
              "  python experiments/bench_ant.py --reference-python /tmp/antref/bin/python\n")
    else:
        variants["reference (pybullet_envs)"] = reference
    variants["spikehebb AntBullet-v0"] = lambda: time_spikehebb(actions)
    variants["bare physics"] = lambda: time_bare_physics(actions)

    results: dict[str, list[dict]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, run in variants.items():
            results[name].append(run())

    base_name = "reference (pybullet_envs)" if reference is not None else "spikehebb AntBullet-v0"
    base = statistics.median(r["steps_per_s"] for r in results[base_name])
    print(f"{args.steps} steps x {args.repeats} interleaved repetitions, medians (min-max)")
    print(f"{'variant':<27} {'steps/s':>8} {'(min-max)':>13} {'in stepSimulation':>18} "
          f"{'vs ' + base_name.split()[0]:>14}")
    for name, runs in results.items():
        rates = [r["steps_per_s"] for r in runs]
        share = statistics.median(r["physics_share"] for r in runs)
        rate = statistics.median(rates)
        print(f"{name:<27} {rate:>8.0f} {f'({min(rates):.0f}-{max(rates):.0f})':>13} "
              f"{share:>17.0%} {rate / base:>13.2f}x")


if __name__ == "__main__":
    main()
