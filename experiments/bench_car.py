"""Steps per second of gymnasium's CarRacing-v3 against spikehebb/CarRacing-v0, side by side.

Both envs get the same seed and the same random actions; repetitions alternate which one runs
first, so load from other processes hits both alike. Each repetition is one episode of
``--steps`` steps from reset (``env.reset`` included in neither time). Reported: median steps/s
over the repetitions for the first second (50 steps, the camera zooms in and most of the track is
in view), for the rest, and overall, the ratio ours / gymnasium, and the share of step time spent
drawing the frame (``_render``); the remainder is physics, reward and gymnasium's bookkeeping.
The observations of the two envs are compared on the way (they must be equal).

    python experiments/bench_car.py --steps 300 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless: the envs never open a window
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import numpy as np  # noqa: E402
from gymnasium.envs.box2d.car_racing import CarRacing, FPS  # noqa: E402

from spikehebb.envs.car import CarRacingEnv  # noqa: E402

ZOOM_STEPS = FPS  # the camera's zoom animation lasts one second of simulated time


@dataclass
class Args:
    steps: int = 300
    """env steps per repetition (an episode from reset; the first 50 are the zoom-in)"""
    repeats: int = 5
    """repetitions per env; medians are reported"""
    seed: int = 0
    """track seed and action seed"""


@dataclass
class Timing:
    zoom_s: float  # seconds for the first ZOOM_STEPS steps
    rest_s: float  # seconds for the remaining steps
    render_s: float  # seconds inside _render over all steps
    steps: int
    observations: list


def run(env: CarRacing, seed: int, actions: np.ndarray) -> Timing:
    """Reset with ``seed``, step through ``actions``; time zoom phase, rest, and rendering."""
    render_time = [0.0]
    render = env._render

    def timed_render(mode):
        start = time.perf_counter()
        out = render(mode)
        render_time[0] += time.perf_counter() - start
        return out

    env._render = timed_render  # instance attribute: shadows the method for this env only
    env.reset(seed=seed)
    render_time[0] = 0.0
    observations = []
    marks = [time.perf_counter()]
    for k, action in enumerate(actions):
        obs, _, terminated, truncated, _ = env.step(action)
        if k % 25 == 0:
            observations.append(obs)
        if k + 1 == ZOOM_STEPS:
            marks.append(time.perf_counter())
        if terminated or truncated:
            break
    marks.append(time.perf_counter())
    env.close()
    return Timing(marks[1] - marks[0], marks[-1] - marks[1], render_time[0], k + 1, observations)


def main(args: Args) -> None:
    rng = np.random.default_rng(args.seed)
    low, high = np.array([-1.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0])
    actions = rng.uniform(low, high, size=(args.steps, 3)).astype(np.float32)
    makers = {"gymnasium CarRacing-v3": CarRacing, "spikehebb CarRacing-v0": CarRacingEnv}
    results: dict[str, list[Timing]] = {name: [] for name in makers}
    for rep in range(args.repeats):
        order = list(makers) if rep % 2 == 0 else list(makers)[::-1]
        for name in order:
            results[name].append(run(makers[name](), args.seed, actions))
        ref, ours = (results[name][-1] for name in makers)
        same = all(np.array_equal(a, b) for a, b in zip(ref.observations, ours.observations))
        if not same or ref.steps != ours.steps:
            raise SystemExit(f"repetition {rep}: observations differ between the two envs")

    def rate(timings: list[Timing], part: str) -> float:
        values = []
        for t in timings:
            zoom_steps = min(t.steps, ZOOM_STEPS)
            if part == "zoom":
                values.append(zoom_steps / t.zoom_s)
            elif part == "rest":
                rest = t.steps - zoom_steps
                values.append(rest / t.rest_s if rest > 0 else float("nan"))
            else:
                values.append(t.steps / (t.zoom_s + t.rest_s))
        return statistics.median(values)

    def render_share(timings: list[Timing]) -> float:
        return statistics.median(t.render_s / (t.zoom_s + t.rest_s) for t in timings)

    steps = results[next(iter(makers))][0].steps
    print(f"{steps} steps per episode (first {ZOOM_STEPS}: zoom-in), {args.repeats} repetitions, "
          f"seed {args.seed}; medians; observations identical")
    header = (
        f"{'env':24s} {'zoom steps/s':>13s} {'rest steps/s':>13s} {'all steps/s':>12s} "
        f"{'render share':>13s}"
    )
    print(header)
    print("-" * len(header))
    for name, timings in results.items():
        print(
            f"{name:24s} {rate(timings, 'zoom'):13.0f} {rate(timings, 'rest'):13.0f} "
            f"{rate(timings, 'all'):12.0f} {render_share(timings):13.0%}"
        )
    ref, ours = (results[name] for name in makers)
    print(
        f"{'ratio ours / gymnasium':24s} {rate(ours, 'zoom') / rate(ref, 'zoom'):13.2f} "
        f"{rate(ours, 'rest') / rate(ref, 'rest'):13.2f} "
        f"{rate(ours, 'all') / rate(ref, 'all'):12.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Args()
    parser.add_argument(
        "--steps", type=int, default=defaults.steps, help="env steps per repetition"
    )
    parser.add_argument("--repeats", type=int, default=defaults.repeats, help="repetitions per env")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="track and action seed")
    main(Args(**vars(parser.parse_args())))
