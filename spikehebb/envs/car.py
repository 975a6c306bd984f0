"""gymnasium's CarRacing-v3 with a vectorised renderer and Palm et al.'s dynamics variations.

Credits: the task, track generation, physics, reward and picture are gymnasium's
``gymnasium/envs/box2d/car_racing.py`` and ``car_dynamics.py`` (CarRacing-v3; Oleg Klimov, after
Chris Campbell's top-down car tutorial, maintained by the Farama Foundation). The variations are
Palm, Najarro & Risi, "Testing the Genomic Bottleneck Hypothesis in Hebbian Meta-Learning"
(NeurIPS 2020 Pre-registration Workshop, PMLR 148, 2021), from their code,
github.com/rasmusbergpalm/hebbian-evolution (``envs/car_dynamics.py``, ``envs/car_racing.py``,
``main.py``, ``eval.py``).

:class:`CarRacingEnv` subclasses gymnasium's ``CarRacing`` and keeps its physics, reward, track
and termination. Only the drawing of the frame changes (see :mod:`spikehebb.envs.car_render`):
observations are pixel-identical to ``CarRacing-v3``'s for the same seed and actions, and a step
is several times faster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.box2d.car_dynamics import (
    ENGINE_POWER,
    FRICTION_LIMIT,
    SIZE,
    WHEEL_MOMENT_OF_INERTIA,
)
from gymnasium.envs.box2d.car_dynamics import Car as _GymCar
from gymnasium.envs.box2d.car_racing import (
    STATE_H,
    STATE_W,
    VIDEO_H,
    VIDEO_W,
    WINDOW_H,
    WINDOW_W,
    SCALE,
    ZOOM,
    CarRacing,
    FrictionDetector,
)
from gymnasium.error import DependencyNotInstalled
from gymnasium.utils import EzPickle

try:
    import pygame
except ImportError as e:  # pragma: no cover - gymnasium[box2d] brings pygame-ce
    raise DependencyNotInstalled(
        'pygame is not installed, run `pip install "gymnasium[box2d]"`'
    ) from e

from spikehebb.checks import is_finite_real
from spikehebb.envs.car_render import INDICATOR_ROWS, CarPainter, TrackRenderer

# --- Variations (Palm et al. 2021, hebbian-evolution main.py / eval.py) ---
FRICTION_SCALE_HALF = 0.5  # {'friction': 0.5}
FRICTION_SCALE_DOUBLE = 2.0  # {'friction': 2.0}
# {'side_force': +-10.0}: added to every wheel's lateral slip before the tyre model, so in
# velocity units (m/s of pretend sideways slip); x 205000 * SIZE^2 = 82 it asks for 820 N per
# wheel, more than the 400 N (road) / 240 N (grass) the tyre can give, so at rest each wheel
# pushes sideways at its friction limit and a moving car drifts until its real slip cancels it.
PUSH_SIDE_FORCE = 10.0
# The tyre model's "random coefficient to cut oscillations" (gymnasium car_dynamics.Car.step).
TYRE_GAIN = 205000 * SIZE * SIZE
BRAKE_FORCE = 15  # rad/s per unit brake (car_dynamics.Car.step)
GRASS_FRICTION = 0.6  # friction limit off the road, relative to FRICTION_LIMIT (car_dynamics)

# The fast state frame needs the indicators inside the bar: each vertical one reaches 4 bar units
# (of H/40) at its top; keep 0.5 unit (10 px) to spare.
INDICATOR_LIMIT = 3.5
# Font for the score in the bottom-left corner (CarRacing._render).
SCORE_FONT_SIZE = 42
SCORE_TEXT_CACHE = 4096  # rendered score strings kept per env (scores run from about -200 to 1000)


@dataclass(frozen=True)
class CarVariation:
    """A change to the car's tyre dynamics, after Palm et al. 2021 (``envs/car_dynamics.py``).

    Args:
        friction: factor (dimensionless, > 0) on every wheel's friction limit, on the road
            (``FRICTION_LIMIT * tile.road_friction``) and on grass (``FRICTION_LIMIT * 0.6``)
            alike, as Palm et al.'s ``friction_multiplier``. 1 is gymnasium's car.
        side_force: added to each wheel's lateral force term before the tyre model scales and
            clips it (Palm et al.'s ``p_force = -vs + side_force``), in the wheel's own frame:
            positive pushes towards the car's right (+x of the car, the side the steering
            action +1 turns to), negative to its left. Units of the wheel's side speed (m/s).
        name: label for logs and run files (not part of equality).
    """

    friction: float = 1.0
    side_force: float = 0.0
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        for attr in ("friction", "side_force"):
            value = getattr(self, attr)
            # float() would read "10" as 10 and True as 1: a typo in a config would run unnoticed
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ValueError(f"CarVariation.{attr} must be a number (int or float), got {value!r}")
            if not is_finite_real(value):
                raise ValueError(f"CarVariation.{attr} must be finite, got {value!r}")
            object.__setattr__(self, attr, float(value))
        if self.friction <= 0:
            raise ValueError(f"CarVariation.friction must be > 0, got {self.friction!r}")


VARIATIONS: dict[str, CarVariation] = {
    "default": CarVariation(name="default"),
    "friction_half": CarVariation(friction=FRICTION_SCALE_HALF, name="friction_half"),
    "friction_double": CarVariation(friction=FRICTION_SCALE_DOUBLE, name="friction_double"),
    "push_left": CarVariation(side_force=-PUSH_SIDE_FORCE, name="push_left"),
    "push_right": CarVariation(side_force=+PUSH_SIDE_FORCE, name="push_right"),
}


def get_variation(spec: str | CarVariation) -> CarVariation:
    """Return the CarVariation named by ``spec`` (a key of :data:`VARIATIONS`) or ``spec`` itself.

    Raises:
        ValueError: ``spec`` is an unknown name or neither a name nor a CarVariation.
    """
    if isinstance(spec, CarVariation):
        return spec
    if isinstance(spec, str):
        if spec not in VARIATIONS:
            raise ValueError(
                f"unknown car variation {spec!r}; presets are {', '.join(VARIATIONS)}, "
                "or pass a CarVariation(friction=..., side_force=...)"
            )
        return VARIATIONS[spec]
    raise ValueError(
        f"variation must be a preset name ({', '.join(VARIATIONS)}) or a CarVariation, "
        f"got {type(spec).__name__}: {spec!r}"
    )


def _sign(x: float) -> float:
    """``np.sign`` of one float without NumPy's scalar overhead: 1.0, -1.0, 0.0 or NaN."""
    if x > 0:
        return 1.0
    if x < 0:
        return -1.0
    return 0.0 if x == 0 else x


class VariedCar(_GymCar):
    """gymnasium's Car with Palm et al.'s friction factor and side force in the tyre model.

    ``step`` is gymnasium 1.4's ``Car.step`` with the two changes Palm et al. made to gym's
    (marked below); with ``friction=1, side_force=0`` it computes the same numbers, which the
    pixel-identity test checks. ``gas`` and ``step`` use Python's scalar arithmetic where the
    original calls NumPy on single floats (``np.clip``, ``np.sign``, ``np.sqrt(np.square(.))``):
    the same IEEE operations, a few microseconds less per step.
    """

    def gas(self, gas):
        """Rear-wheel drive, gas clipped to [0, 1]; gymnasium's Car.gas without np.clip."""
        gas = min(max(gas, 0), 1)
        for w in self.wheels[2:4]:
            diff = gas - w.gas
            if diff > 0.1:
                diff = 0.1  # gradually increase, but stop immediately
            w.gas += diff

    def __init__(self, world, init_angle, init_x, init_y, variation: CarVariation):
        super().__init__(world, init_angle, init_x, init_y)
        self.friction_multiplier = variation.friction
        self.side_force = variation.side_force

    def step(self, dt):
        for w in self.wheels:
            # Steer each wheel
            dir = _sign(w.steer - w.joint.angle)
            val = abs(w.steer - w.joint.angle)
            w.joint.motorSpeed = dir * min(50.0 * val, 3.0)

            # Position => friction_limit; Palm et al.: x friction_multiplier, grass and road alike
            grass = True
            friction_limit = self.friction_multiplier * FRICTION_LIMIT * GRASS_FRICTION
            for tile in w.tiles:
                friction_limit = max(
                    friction_limit, self.friction_multiplier * FRICTION_LIMIT * tile.road_friction
                )
                grass = False

            # Force
            forw = w.GetWorldVector((0, 1))
            side = w.GetWorldVector((1, 0))
            v = w.linearVelocity
            vf = forw[0] * v[0] + forw[1] * v[1]  # forward speed
            vs = side[0] * v[0] + side[1] * v[1]  # side speed

            w.omega += dt * ENGINE_POWER * w.gas / WHEEL_MOMENT_OF_INERTIA / (abs(w.omega) + 5.0)
            self.fuel_spent += dt * ENGINE_POWER * w.gas

            if w.brake >= 0.9:
                w.omega = 0
            elif w.brake > 0:
                dir = -_sign(w.omega)
                val = BRAKE_FORCE * w.brake
                if abs(val) > abs(w.omega):
                    val = abs(w.omega)  # low speed => same as = 0
                w.omega += dir * val
            w.phase += w.omega * dt

            vr = w.omega * w.wheel_rad  # rotating wheel speed
            f_force = -vf + vr  # force direction is direction of speed difference
            p_force = -vs
            if self.side_force != 0.0:  # Palm et al.: p_force = -vs + side_force
                p_force += self.side_force

            f_force *= TYRE_GAIN
            p_force *= TYRE_GAIN
            force = math.sqrt(f_force * f_force + p_force * p_force)

            # Skid trace
            if abs(force) > 2.0 * friction_limit:
                if (
                    w.skid_particle
                    and w.skid_particle.grass == grass
                    and len(w.skid_particle.poly) < 30
                ):
                    w.skid_particle.poly.append((w.position[0], w.position[1]))
                elif w.skid_start is None:
                    w.skid_start = w.position
                else:
                    w.skid_particle = self._create_particle(w.skid_start, w.position, grass)
                    w.skid_start = None
            else:
                w.skid_start = None
                w.skid_particle = None

            if abs(force) > friction_limit:
                f_force /= force
                p_force /= force
                force = friction_limit
                f_force *= force
                p_force *= force

            w.omega -= dt * f_force * w.wheel_rad / WHEEL_MOMENT_OF_INERTIA

            w.ApplyForceToCenter(
                (
                    p_force * side[0] + f_force * forw[0],
                    p_force * side[1] + f_force * forw[1],
                ),
                True,
            )


class CarRacingEnv(CarRacing):
    """gymnasium's CarRacing-v3, rendered several times faster, with dynamics variations.

    ## Description
    The top-down racing task of gymnasium's ``CarRacing-v3`` (see its docstring): a random closed
    track of tiles each episode, a rear-wheel-drive car, a 96x96 RGB picture as observation. Track,
    physics (Box2D), reward and episode end are gymnasium's code, inherited; the picture is drawn
    by :class:`~spikehebb.envs.car_render.TrackRenderer`, which transforms all track and grass
    polygons in one NumPy operation and draws only those that can be seen, with the same pygame
    calls and coordinates as the original: for the same seed and actions every observation,
    reward and flag equals ``CarRacing-v3``'s (``tests/envs/test_car.py``). ``variation`` changes
    the tyre dynamics as in Palm et al. 2021; ``"default"`` is gymnasium's car.

    ## Action Space
    As CarRacing-v3. Continuous (default): ``Box([-1, 0, 0], [1, 1, 1], (3,), float32)``, steering
    (-1 full left, +1 full right), gas, brake (>= 0.9 locks the wheels). Discrete
    (``continuous=False``): ``Discrete(5)``, do nothing, steer right, steer left, gas, brake.

    ## Observation Space
    ``Box(0, 255, (96, 96, 3), uint8)``: the 1000x800 scene (camera behind the car, zooming in
    during the first second) smooth-scaled to 96x96, with the indicator bar at the bottom (speed,
    four wheel speeds, steering angle, yaw rate) and the score.

    ## Rewards
    -0.1 per frame and +1000/N for each of the N track tiles the first time a wheel touches it;
    -100 (instead) on the step the car leaves the playfield.

    ## Starting State
    The car at rest on the first tile, facing along the track. ``reset(seed=s)`` builds the same
    track as ``CarRacing-v3`` does for ``s``.

    ## Episode End
    ``terminated`` when all tiles are visited, or tile 0 is reached after more than
    ``lap_complete_percent`` of them (``info["lap_finished"] = True``), or the car leaves the
    playfield (``info["lap_finished"] = False``). ``truncated`` after 1000 steps, from the
    registration's ``max_episode_steps`` (gymnasium's TimeLimit), as for CarRacing-v3.

    ## Arguments
    ```python
    gymnasium.make("spikehebb/CarRacing-v0", render_mode=None, verbose=False,
                   lap_complete_percent=0.95, domain_randomize=False, continuous=True,
                   variant="default")
    ```
    - ``variant``: the dynamics variation, a preset name or a :class:`CarVariation`. Presets (:data:`VARIATIONS`):
      ``default``; ``friction_half`` / ``friction_double``: every wheel's friction limit (road and
      grass) x 0.5 / x 2; ``push_left`` / ``push_right``: a lateral bias of -10 / +10 in every
      wheel's tyre force, in the wheel's frame (so towards the car's left / right). Values and
      placement are Palm et al.'s (hebbian-evolution ``main.py``, ``envs/car_dynamics.py``).
    - ``render_mode``, ``verbose``, ``lap_complete_percent``, ``domain_randomize``,
      ``continuous``: as gymnasium's CarRacing-v3.

    ## Version History
    - v0: CarRacing-v3 of gymnasium 1.4 with the vectorised renderer and Palm et al.'s variations.
    """

    def __init__(
        self,
        render_mode: str | None = None,
        verbose: bool = False,
        lap_complete_percent: float = 0.95,
        domain_randomize: bool = False,
        continuous: bool = True,
        variant: str | CarVariation = "default",
    ) -> None:
        self._variation = get_variation(variant)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, "
                f"got {render_mode!r}"
            )
        for name, value in (("verbose", verbose), ("domain_randomize", domain_randomize), ("continuous", continuous)):
            if not isinstance(value, (bool, np.bool_)):  # "no" would read as True
                raise ValueError(f"{name} must be True or False, got {value!r}")
        if (isinstance(lap_complete_percent, bool) or not isinstance(lap_complete_percent, (int, float, np.number))
                or not 0 <= lap_complete_percent <= 1):  # else it fails in Box2D's contact callback at reset
            raise ValueError(f"lap_complete_percent must be a number in [0, 1], got {lap_complete_percent!r}")
        super().__init__(
            render_mode=render_mode,
            verbose=verbose,
            lap_complete_percent=lap_complete_percent,
            domain_randomize=domain_randomize,
            continuous=continuous,
        )
        EzPickle.__init__(
            self,
            render_mode,
            verbose,
            lap_complete_percent,
            domain_randomize,
            continuous,
            variant,
        )
        self._track_renderer = TrackRenderer()
        self._canvas: pygame.Surface | None = None  # the scene, kept from frame to frame
        self._bar: pygame.Surface | None = None  # the indicator bar of the state frame
        self._narrow: pygame.Surface | None = None  # the state frame filtered to 96 columns
        self._narrow_scene: pygame.Surface | None = None  # its scene rows before the flip
        self._state: pygame.Surface | None = None  # the 96x96 frame
        self._car_painter: CarPainter | None = None
        self._score_font: pygame.font.Font | None = None
        self._score_texts: dict[str, pygame.Surface] = {}

    @property
    def variation(self) -> CarVariation:
        """The tyre dynamics this env simulates."""
        return self._variation

    def step(self, action):
        """CarRacing.step, after a check of the action: continuous (steer, gas, brake) finite
        numbers (gymnasium's own step would cut a longer action short, and a NaN would corrupt the
        physics and fail later in the renderer), or one of the five discrete actions."""
        if not hasattr(self, "t"):  # gymnasium's own check is a bare assert
            raise RuntimeError("call reset() before step(): this CarRacingEnv has not been reset")
        if action is not None and self.continuous:
            try:
                a = np.asarray(action)
            except (TypeError, ValueError):  # a ragged nest of lists
                a = None
            # the dtype kind keeps out what float() would convert: strings ("1"), bools, objects
            if (a is None or a.dtype.kind not in "iuf" or a.shape != (3,)
                    or not np.all(np.isfinite(a.astype(np.float64)))):
                raise ValueError(f"action must be 3 finite numbers (steer, gas, brake), got {action!r}")
            action = a.astype(np.float64)
        elif action is not None and (isinstance(action, (bool, np.bool_))  # Discrete takes True as 1
                                     or not self.action_space.contains(action)):
            raise ValueError(f"action must be one of the discrete actions 0-4 (nothing, right, left, gas, "
                             f"brake), got {action!r}")
        return super().step(action)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """A new track and the car on it; CarRacing.reset with the variation's car."""
        # gymnasium 1.4's CarRacing.reset, line for line, except the Car class.
        gym.Env.reset(self, seed=seed)
        self._destroy()
        self.world.contactListener_bug_workaround = FrictionDetector(
            self, self.lap_complete_percent
        )
        self.world.contactListener = self.world.contactListener_bug_workaround
        self.reward = 0.0
        self.prev_reward = 0.0
        self.tile_visited_count = 0
        self.t = 0.0
        self.new_lap = False
        self.road_poly = []

        if self.domain_randomize:
            randomize = True
            if isinstance(options, dict) and "randomize" in options:
                randomize = options["randomize"]
            self._reinit_colors(randomize)

        while True:
            if self._create_track():
                break
            if self.verbose:
                print(
                    "retry to generate track (normal if there are not many"
                    "instances of this message)"
                )
        self.car = VariedCar(self.world, *self.track[0][1:4], variation=self._variation)

        if self.render_mode == "human":
            self.render()
        return self.step(None)[0], {}

    def _score_text(self) -> pygame.Surface:
        """The score as CarRacing._render writes it; rendered once per distinct string."""
        text = f"{self.reward:04.0f}"
        surface = self._score_texts.get(text)
        if surface is None:
            if len(self._score_texts) >= SCORE_TEXT_CACHE:
                self._score_texts.clear()
            try:
                surface = self._font().render(text, True, (255, 255, 255), (0, 0, 0))
            except pygame.error:
                # Another env's close() ran pygame.quit() (gymnasium does when a human-mode window
                # is open) and a later render re-initialised the font module: our font is dead,
                # and pygame offers no way to ask. A new one renders the same pixels.
                self._score_font = None
                surface = self._font().render(text, True, (255, 255, 255), (0, 0, 0))
            self._score_texts[text] = surface
        return surface

    def _font(self) -> pygame.font.Font:
        """The score's font, made on first use (with the font module initialised)."""
        if self._score_font is None:
            if not pygame.font.get_init():
                pygame.font.init()
            self._score_font = pygame.font.Font(pygame.font.get_default_font(), SCORE_FONT_SIZE)
        return self._score_font

    def _indicators_fit_bar(self) -> bool:
        """Whether every indicator stays inside the black bar (the bottom INDICATOR_ROWS rows).

        The vertical indicators grow upwards by ``val`` bar units of H/40 from H - H/40; they leave
        the bar above ``val = 4``. Speeds and wheel speeds that high are rare; then the frame is
        made the original way.
        """
        assert self.car is not None
        vx, vy = self.car.hull.linearVelocity
        values = [0.02 * math.sqrt(vx * vx + vy * vy)]
        values.extend(0.01 * wheel.omega for wheel in self.car.wheels)
        return max(values) < INDICATOR_LIMIT

    def _state_frame(self) -> np.ndarray:
        """The 96x96 observation without flipping the 1000x800 canvas.

        The original computes ``smoothscale(F, (96, 96))`` of the flipped canvas F with the
        indicator bar drawn over its bottom rows. pygame's smoothscale filters rows first (to
        96 x 800, 8 bits per channel), then columns, and the row filter treats each row alone;
        so we filter the canvas's visible rows and the bar separately, flip the narrow 96-pixel
        result (a tenth of the bytes) and stack them before the column filter: the same bytes.
        All intermediate surfaces are kept: fresh buffers every frame cost more than the copies.
        """
        assert self._canvas is not None
        scene_rows = WINDOW_H - INDICATOR_ROWS
        if self._narrow is None:
            like = self._canvas
            self._bar = pygame.Surface((WINDOW_W, WINDOW_H), 0, like)
            self._narrow = pygame.Surface((STATE_W, WINDOW_H), 0, like)
            self._narrow_scene = pygame.Surface((STATE_W, scene_rows), 0, like)
            self._state = pygame.Surface((STATE_W, STATE_H), 0, like)
        smoothscale = pygame.transform.smoothscale
        scene = self._canvas.subsurface(TrackRenderer.visible_rect)
        smoothscale(scene, (STATE_W, scene_rows), dest_surface=self._narrow_scene)
        narrow = pygame.surfarray.pixels2d(self._narrow)  # (x, y) view, locks the surface
        narrow[:, :scene_rows] = pygame.surfarray.pixels2d(self._narrow_scene)[:, ::-1]
        del narrow  # unlock

        # the bar as the original draws it after the flip; _render_indicators draws on self.surf
        self.surf = self._bar
        self._render_indicators(WINDOW_W, WINDOW_H)
        self._blit_score()
        bar = self._bar.subsurface((0, scene_rows, WINDOW_W, INDICATOR_ROWS))
        narrow_bar = self._narrow.subsurface((0, scene_rows, STATE_W, INDICATOR_ROWS))
        smoothscale(bar, (STATE_W, INDICATOR_ROWS), dest_surface=narrow_bar)

        # CarRacing._create_image_array, into a kept surface; tobytes gives the (H, W, RGB) array
        # in one copy, where the original copies the (x, y) view and transposes the copy.
        smoothscale(self._narrow, (STATE_W, STATE_H), dest_surface=self._state)
        rgb = bytearray(pygame.image.tobytes(self._state, "RGB"))  # writable, as the original's
        return np.frombuffer(rgb, dtype=np.uint8).reshape(STATE_H, STATE_W, 3)

    def _blit_score(self) -> None:
        """The score text onto self.surf, where CarRacing._render puts it."""
        text = self._score_text()
        text_rect = text.get_rect()
        text_rect.center = (60, WINDOW_H - WINDOW_H * 2.5 / 40.0)
        self.surf.blit(text, text_rect)

    def _render(self, mode: str):
        """CarRacing._render with the road drawn by TrackRenderer, canvas and font reused, and
        the 96x96 state frame made without the full-size flip (see _state_frame)."""
        assert mode in self.metadata["render_modes"]

        if not pygame.font.get_init():
            pygame.font.init()
            self._score_font = None  # fonts die with the font module
            self._score_texts.clear()
        if self.screen is None and mode == "human":
            pygame.display.init()
            self.screen = pygame.display.set_mode((WINDOW_W, WINDOW_H))
        if self.clock is None:
            self.clock = pygame.time.Clock()

        if "t" not in self.__dict__:
            return  # reset() not called yet

        if self._canvas is None:
            self._canvas = TrackRenderer.make_canvas()

        assert self.car is not None
        # computing transformations (as the original)
        angle = -self.car.hull.angle
        zoom = 0.1 * SCALE * max(1 - self.t, 0) + ZOOM * SCALE * min(self.t, 1)
        scroll_x = -(self.car.hull.position[0]) * zoom
        scroll_y = -(self.car.hull.position[1]) * zoom
        trans = pygame.math.Vector2((scroll_x, scroll_y)).rotate_rad(angle)
        trans = (WINDOW_W / 2 + trans[0], WINDOW_H / 4 + trans[1])

        self._track_renderer.draw(
            self._canvas, self.road_poly, self.bg_color, self.grass_color, zoom, trans, angle
        )
        if mode in ["state_pixels_list", "state_pixels"]:  # no skid marks in the state frame
            if self._car_painter is None or self._car_painter.car is not self.car:
                self._car_painter = CarPainter(self.car)
            self._car_painter.draw(self._canvas, zoom, trans, angle)
        else:
            self.car.draw(self._canvas, zoom, trans, angle, True)

        if mode == "state_pixels" and self._indicators_fit_bar():
            return self._state_frame()

        self.surf = pygame.transform.flip(self._canvas, False, True)

        # showing stats
        self._render_indicators(WINDOW_W, WINDOW_H)
        self._blit_score()

        if mode == "human":
            pygame.event.pump()
            self.clock.tick(self.metadata["render_fps"])
            assert self.screen is not None
            self.screen.fill(0)
            self.screen.blit(self.surf, (0, 0))
            pygame.display.flip()
        elif mode == "rgb_array":
            return self._create_image_array(self.surf, (VIDEO_W, VIDEO_H))
        elif mode == "state_pixels":
            return self._create_image_array(self.surf, (STATE_W, STATE_H))
        else:
            return self.isopen

    def close(self) -> None:
        self._score_font = None
        self._score_texts.clear()
        self._canvas = self._bar = self._narrow = self._narrow_scene = self._state = None
        super().close()
