"""spikehebb/CarRacing-v0: pixel identity with CarRacing-v3, the API, variations, bad input."""

import math
import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless

import gymnasium
import numpy as np
import pygame
import pytest
from gymnasium.utils.env_checker import check_env

import spikehebb.envs.car as car_module
from spikehebb.envs import CAR_ENV_ID, VARIATIONS, CarRacingEnv, CarVariation, get_variation
from spikehebb.envs.car_render import fill_rows, rotation, transform

IDENTITY_SEEDS = (0, 1, 2)
IDENTITY_STEPS = 200


def random_actions(seed, n, continuous=True):
    """``n`` actions drawn uniformly from CarRacing's action space with their own generator."""
    rng = np.random.default_rng(1000 + seed)
    if not continuous:
        return [int(a) for a in rng.integers(0, 5, size=n)]
    return list(rng.uniform([-1, 0, 0], [1, 1, 1], size=(n, 3)).astype(np.float32))


def assert_same_episode(ours, reference, seed, actions, render=False):
    """Step both envs through ``actions``; every output (and render(), if asked) is equal."""
    obs_a, info_a = ours.reset(seed=seed)
    obs_b, info_b = reference.reset(seed=seed)
    np.testing.assert_array_equal(obs_a, obs_b, err_msg="reset observation")
    assert info_a == info_b
    for k, action in enumerate(actions):
        out_a = ours.step(action)
        out_b = reference.step(action)
        np.testing.assert_array_equal(out_a[0], out_b[0], err_msg=f"seed {seed} step {k}")
        assert out_a[0].dtype == out_b[0].dtype and out_a[0].shape == out_b[0].shape
        assert out_a[1:] == out_b[1:], f"seed {seed} step {k}: {out_a[1:]} != {out_b[1:]}"
        if render:
            np.testing.assert_array_equal(ours.render(), reference.render(), err_msg=f"render {k}")
        if out_a[2] or out_a[3]:
            break


@pytest.fixture
def make():
    """gymnasium.make, closing every env after the test."""
    envs = []

    def _make(*args, **kwargs):
        envs.append(gymnasium.make(*args, **kwargs))
        return envs[-1]

    yield _make
    for env in envs:
        env.close()


# ----------------------------------------------------------------------------- pixel identity


@pytest.mark.parametrize("seed", IDENTITY_SEEDS)
def test_identical_to_carracing_v3(seed, make):
    """Observations, rewards, terminated, truncated and info equal CarRacing-v3's at every step."""
    ours = make(CAR_ENV_ID)
    reference = make("CarRacing-v3")
    assert_same_episode(ours, reference, seed, random_actions(seed, IDENTITY_STEPS))


def test_identical_through_termination_and_a_second_reset(make):
    """Driving off the playfield (-100, terminated) and resetting again stay identical."""
    ours = make(CAR_ENV_ID)
    reference = make("CarRacing-v3")
    # Full gas straight ahead: on seed 6's track the car leaves the playfield at step 175.
    actions = [np.array([0.0, 1.0, 0.0], dtype=np.float32)] * 200
    assert_same_episode(ours, reference, 6, actions)
    assert reference.unwrapped.car.hull.position[0] > 2000 / 6.0  # it did leave: terminated
    assert_same_episode(ours, reference, 8, random_actions(8, 60))


def test_identical_discrete_and_domain_randomized(make):
    ours = make(CAR_ENV_ID, continuous=False, domain_randomize=True)
    reference = make("CarRacing-v3", continuous=False, domain_randomize=True)
    assert_same_episode(ours, reference, 3, random_actions(3, 80, continuous=False))


def test_identical_rgb_array_render_with_skid_marks(make):
    """render() in rgb_array mode (600x400, skid marks drawn) equals CarRacing-v3's."""
    ours = make(CAR_ENV_ID, render_mode="rgb_array")
    reference = make("CarRacing-v3", render_mode="rgb_array")
    actions = [np.array([1.0, 1.0, 0.0], dtype=np.float32)] * 40 + random_actions(4, 30)
    assert_same_episode(ours, reference, 4, actions, render=True)


def test_identical_on_the_full_size_path(make, monkeypatch):
    """With the indicators said not to fit the bar, the frame is made by flipping the canvas."""
    monkeypatch.setattr(car_module, "INDICATOR_LIMIT", -math.inf)
    fits = []
    check = car_module.CarRacingEnv._indicators_fit_bar
    monkeypatch.setattr(car_module.CarRacingEnv, "_indicators_fit_bar", lambda self: fits.append(check(self)) or fits[-1])
    ours = make(CAR_ENV_ID)
    reference = make("CarRacing-v3")
    assert_same_episode(ours, reference, 7, random_actions(7, 60))
    assert fits and not any(fits)  # every frame took the full-size path


def test_transform_is_bit_identical_to_vector2():
    """NumPy transform == Vector2.rotate_rad * zoom + translation, angles near k*pi/2 too."""
    rng = np.random.default_rng(0)
    angles = list(rng.uniform(-20, 20, 40))
    angles += [k * math.pi / 2 + d for k in range(-4, 5) for d in (0.0, 1e-7, -3e-7, 2e-6)]
    for angle in angles:
        vertices = rng.uniform(-400, 400, size=(25, 2))
        zoom = float(rng.uniform(0.5, 17))
        translation = (float(rng.uniform(0, 1000)), float(rng.uniform(-200, 800)))
        ours = transform(vertices, zoom, translation, float(angle))
        for (x, y), (px, py) in zip(vertices.tolist(), ours.tolist()):
            v = pygame.math.Vector2((x, y)).rotate_rad(float(angle))
            assert (px, py) == (v[0] * zoom + translation[0], v[1] * zoom + translation[1])
    assert rotation(0.0) == (1.0, 0.0)


@pytest.mark.parametrize("depth", [32, 24])
def test_fill_rows_equals_surface_fill(depth):
    """fill_rows writes the bytes Surface.fill writes, and only from row ``top`` down."""
    rng = np.random.default_rng(1)
    ours = pygame.Surface((37, 23), 0, depth)
    pygame.surfarray.pixels3d(ours)[:] = rng.integers(0, 256, size=(37, 23, 3), dtype=np.uint8)
    reference = ours.copy()
    pixel = reference.map_rgb((12, 200, 77))
    fill_rows(ours, 5, pixel)
    reference.fill(pixel, (0, 5, 37, 18))
    assert pygame.image.tobytes(ours, "RGBA") == pygame.image.tobytes(reference, "RGBA")


# ----------------------------------------------------------------------------- API


def test_make_registers_time_limit_and_variation(make):
    env = make(CAR_ENV_ID, variant="friction_half")
    assert env.spec.max_episode_steps == 1000
    assert isinstance(env.unwrapped, CarRacingEnv)
    assert env.unwrapped.variation == VARIATIONS["friction_half"]
    assert env.observation_space.shape == (96, 96, 3)


def test_check_env_passes(make):
    env = make(CAR_ENV_ID, render_mode="rgb_array", variant="push_left")
    check_env(env.unwrapped)


def test_same_seed_same_episode(make):
    a = make(CAR_ENV_ID, variant="push_right")
    b = make(CAR_ENV_ID, variant="push_right")
    assert_same_episode(a, b, 11, random_actions(11, 40))


# ----------------------------------------------------------------------------- variations

VARIATION_STEPS = 100  # 2 s of simulated time


def drive(variation, seed=0, steps=VARIATION_STEPS):
    """Full gas straight ahead from the start; returns (forward, right) displacement in m."""
    env = CarRacingEnv(variant=variation)
    try:
        env.reset(seed=seed)
        angle = env.car.hull.angle
        start = np.array(env.car.hull.position)
        action = np.array([0.0, 1.0, 0.0], dtype=np.float32)
        for _ in range(steps):
            env.step(action)
        moved = np.array(env.car.hull.position) - start
    finally:
        env.close()
    forward = np.array([-math.sin(angle), math.cos(angle)])  # the car's +y axis at the start
    right = np.array([math.cos(angle), math.sin(angle)])  # its +x axis
    return float(moved @ forward), float(moved @ right)


@pytest.fixture(scope="module")
def default_drive():
    return drive("default")


def test_default_drives_straight(default_drive):
    forward, right = default_drive
    assert forward > 60.0  # about 91 m in 2 s
    assert abs(right) < 1.0


@pytest.mark.parametrize("name", [n for n in VARIATIONS if n != "default"])
def test_every_variation_changes_the_trajectory(name, default_drive):
    """Same seed and actions: after 100 steps the car is more than 10 m from the default's spot."""
    forward, right = drive(name)
    assert math.hypot(forward - default_drive[0], right - default_drive[1]) > 10.0


def test_friction_half_slips_and_friction_double_grips(default_drive):
    """Full gas: less grip makes the rear wheels spin (less distance), more grip more distance."""
    half, _ = drive("friction_half")
    double, _ = drive("friction_double")
    assert half < default_drive[0] - 20.0  # about 46 m against 91 m
    assert double > default_drive[0] + 10.0  # about 121 m


def test_push_left_and_right_drift_to_opposite_sides():
    """The lateral bias moves the car sideways, to its left (-x) and right (+x), symmetrically."""
    _, left = drive("push_left")
    _, right = drive("push_right")
    assert left < -10.0 and right > 10.0  # about -35 m and +35 m
    assert abs(left + right) < 1.0


def test_variation_object_is_accepted():
    custom = CarVariation(friction=0.8, side_force=2.0)
    env = CarRacingEnv(variant=custom)
    try:
        env.reset(seed=0)
        assert env.variation == custom
        assert env.car.friction_multiplier == 0.8 and env.car.side_force == 2.0
    finally:
        env.close()


# ----------------------------------------------------------------------------- bad input


def test_unknown_variation_lists_presets():
    with pytest.raises(ValueError, match="unknown car variation 'ice'.*friction_half.*push_right"):
        gymnasium.make(CAR_ENV_ID, variant="ice")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"friction": 0.0}, "friction must be > 0"),
        ({"friction": -1.0}, "friction must be > 0"),
        ({"friction": math.nan}, "friction must be finite"),
        ({"side_force": math.inf}, "side_force must be finite"),
        ({"side_force": "left"}, "side_force must be a number"),
        ({"side_force": "10"}, r"^CarVariation.side_force must be a number \(int or float\), got '10'$"),
        ({"friction": True}, r"^CarVariation.friction must be a number \(int or float\), got True$"),
        ({"friction": np.bool_(True)}, r"^CarVariation.friction must be a number \(int or float\), got np.True_$"),
    ],
)
def test_bad_variation_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CarVariation(**kwargs)


def test_variation_of_wrong_type():
    with pytest.raises(ValueError, match="preset name .* or a CarVariation, got float"):
        get_variation(0.5)


def test_bad_render_mode():
    with pytest.raises(ValueError, match="render_mode must be None or one of"):
        CarRacingEnv(render_mode="window")


@pytest.mark.parametrize("action", [np.zeros(2), np.zeros(4), np.array([np.nan, 0.5, 0.0]), np.array([0.0, np.inf, 0.0]),
                                    ["0", "1", "0"], [True, False, False], np.array([0.0, 1.0, 0.0], dtype=object)])
def test_a_bad_continuous_action_is_one_line(action):
    """gymnasium's step would cut a longer action short, fail on a shorter one with an IndexError,
    and a NaN would corrupt the car's physics and fail later in the renderer; strings and bools
    would pass through float() as numbers."""
    env = CarRacingEnv()
    try:
        env.reset(seed=0)
        with pytest.raises(ValueError, match=r"action must be 3 finite numbers \(steer, gas, brake\)"):
            env.step(action)
        assert env.step([0.0, 0.5, 0.0])[0].shape == (96, 96, 3)  # a list is a fine action too
    finally:
        env.close()


def test_bad_settings_actions_and_a_step_before_reset_are_one_line_errors():
    """gymnasium's CarRacing takes these and fails later (a bad lap share inside Box2D's contact
    callback at reset), reads "no" as True, raises InvalidAction or a bare AssertionError."""
    for kwargs, message in ((dict(lap_complete_percent="x"), "lap_complete_percent must be a number in [0, 1], got 'x'"),
                            (dict(lap_complete_percent=1.5), "lap_complete_percent must be a number in [0, 1], got 1.5"),
                            (dict(continuous="no"), "continuous must be True or False, got 'no'"),
                            (dict(domain_randomize="no"), "domain_randomize must be True or False, got 'no'")):
        with pytest.raises(ValueError) as info:
            CarRacingEnv(**kwargs)
        assert str(info.value) == message
    env = CarRacingEnv()
    discrete = CarRacingEnv(continuous=False)
    try:
        with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
            env.step(np.zeros(3))
        env.reset(seed=0)
        with pytest.raises(ValueError, match=r"action must be 3 finite numbers \(steer, gas, brake\), got \{'a': 1\}"):
            env.step({"a": 1})
        discrete.reset(seed=0)
        for action in (7, 1.0, "x", -1, True, np.bool_(True)):  # gymnasium's Discrete takes True as 1
            with pytest.raises(ValueError) as info:
                discrete.step(action)
            assert str(info.value) == ("action must be one of the discrete actions 0-4 (nothing, right, left, gas, "
                                       f"brake), got {action!r}")
        assert discrete.step(3)[0].shape == (96, 96, 3) and discrete.step(np.int64(1))[0].shape == (96, 96, 3)
    finally:
        env.close()
        discrete.close()


# ----------------------------------------------------------------------------- several envs


def test_envs_render_on_after_another_env_closes_its_window():
    """gymnasium's close() runs pygame.quit() when a human-mode window is open: every font made
    before is dead, and the next render of one env re-initialises the font module, so the others
    cannot see it. Each env must still draw its score, the same pixels as a fresh env."""
    window, b, c = CarRacingEnv(render_mode="human"), CarRacingEnv(), CarRacingEnv()
    fresh = None
    try:
        for env in (window, b, c):
            env.reset(seed=0)
        action = np.array([0.0, 1.0, 0.0])
        for _ in range(3):
            for env in (window, b, c):
                env.step(action)
        scores_before = {f"{b.reward:04.0f}"}
        window.close()
        fresh = CarRacingEnv()
        fresh.reset(seed=0)
        for _ in range(3):
            fresh.step(action)
        scores = []
        for k in range(12):
            want = fresh.step(action)
            for env in (b, c):
                got = env.step(action)
                np.testing.assert_array_equal(got[0], want[0], err_msg=f"step {k}")
                assert got[1:] == want[1:]
            scores.append(f"{b.reward:04.0f}")
        assert set(scores) - scores_before  # a score never rendered before: the font was needed
    finally:
        for env in (window, b, c, fresh):
            if env is not None:
                env.close()
