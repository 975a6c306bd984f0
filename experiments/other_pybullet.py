"""A model's test table under another pyBullet build: does the physics engine's version matter?

The authors' code pinned pybullet 2.6.6 (January 2020); this project runs 3.2.7. The Ant's Python
side (``pybullet_envs``: robot, reward, episode) is the same in both apart from the camera and
one engine setting: 3.x's ``env_bases`` turns on ``deterministicOverlappingPairs``, 2.6.6's does
not. This script tests a model (the shipped rule by default) with whatever ``pybullet`` is first on
the path, so run it once as usual and once with an old build put first::

    python experiments/other_pybullet.py                      # the installed pybullet (3.2.7)
    PYTHONPATH=/tmp/pb266/site python experiments/other_pybullet.py
    PYTHONPATH=/tmp/pb266/site python experiments/other_pybullet.py --no-deterministic-pairs

An old build, once (pybullet 2.6.6 has no wheel for Python 3.11; about 15 min to compile on two
idle cores)::

    python -m venv /tmp/pbbuild && /tmp/pbbuild/bin/pip install wheel "setuptools<70"
    /tmp/pbbuild/bin/pip download pybullet==2.6.6 --no-deps -d /tmp/pb266
    /tmp/pbbuild/bin/python -m pip wheel --no-deps --no-build-isolation /tmp/pb266/pybullet-2.6.6.tar.gz -w /tmp/pb266
    python -m zipfile -e /tmp/pb266/pybullet-2.6.6-cp311-cp311-linux_x86_64.whl /tmp/pb266/site

``--no-deterministic-pairs`` drops that one setting, as the authors' 2.6.6 envs ran. The flag
``URDF_GOOGLEY_UNDEFINED_COLORS`` (colours only) did not exist before 3.x and is taken as 0 there.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pybullet

if not hasattr(pybullet, "URDF_GOOGLEY_UNDEFINED_COLORS"):
    pybullet.URDF_GOOGLEY_UNDEFINED_COLORS = 0  # before spikehebb.envs.ant reads it


def drop_deterministic_pairs() -> None:
    """Make ``setPhysicsEngineParameter`` ignore ``deterministicOverlappingPairs`` (2.6.6's envs)."""
    original = pybullet.setPhysicsEngineParameter

    def without(*args, **kwargs):
        kwargs.pop("deterministicOverlappingPairs", None)
        if args or kwargs.keys() - {"physicsClientId"}:
            return original(*args, **kwargs)
        return None

    pybullet.setPhysicsEngineParameter = without


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", nargs="?", default="ant_abcd_lr", help="run file or model name (default: %(default)s)")
    parser.add_argument("--variant", nargs="+", default=["default", "damage_right", "damage_left"],
                        help="bodies to test (default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=100, help="test lifetimes per body (default: %(default)s)")
    parser.add_argument("--no-deterministic-pairs", action="store_true",
                        help="leave deterministicOverlappingPairs off, as pybullet 2.6.6's envs did")
    args = parser.parse_args(argv)
    if args.no_deterministic_pairs:
        drop_deterministic_pairs()

    from spikehebb.assess import assess, load_run
    from spikehebb.lifetimes import resolve_run

    try:
        path = resolve_run(args.model)
        config, params = load_run(path)
    except (ValueError, OSError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    version = pybullet.getAPIVersion()
    pairs = "off" if args.no_deterministic_pairs else "on"
    print(f"pybullet API {version} from {pybullet.__file__}; deterministicOverlappingPairs {pairs}")
    start = time.perf_counter()
    for result in assess(config, params, args.variant, args.episodes, workers=1):
        fitness = np.asarray(result.fitness)
        print(f"{result.variant:<14} {fitness.mean():7.1f} ± {fitness.std():5.1f}")
    print(f"{args.episodes} lifetimes per body, {time.perf_counter() - start:.0f} s on one core")


if __name__ == "__main__":
    main()
