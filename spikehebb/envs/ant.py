"""A gymnasium-native, faster port of pybullet's AntBulletEnv-v0, with exchangeable lower legs.

Credits: the task, physics settings, observation and reward are pybullet's ``pybullet_envs``
(``gym_locomotion_envs.py``, ``robot_locomotors.py``, ``robot_bases.py``, ``env_bases.py``,
``scene_stadium.py``, ``scene_abstract.py``; Erwin Coumans and contributors, after OpenAI's
Roboschool), which is written for the retired ``gym`` package. This port keeps its numbers (a test
compares 1,000 steps against it to 1e-5) and reads the simulation with pyBullet's vectorised calls.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from spikehebb.envs.morphology import Morphology, get_morphology


#: The line pybullet's C module writes to fd 2 (C stdio, not ``sys.stderr``) when it is imported,
#: once in every process (pybullet 3.2.7: "pybullet build time: Jan 29 2025 23:17:20").
PYBULLET_BANNER = b"pybullet build time:"


def _import_pybullet():
    """Import pybullet without its build-time banner, in every process.

    Printed once per process, the banner showed up before every command's output and once per
    worker of a run. The import runs with fd 2 sent to a temporary file; afterwards fd 2 is
    restored and whatever else the import wrote is written back, so only the banner is dropped.
    An ImportError propagates as usual (Python prints it after fd 2 is back)."""
    import sys

    if "pybullet" in sys.modules:  # imported already (its banner, if any, is out)
        return sys.modules["pybullet"]
    flush = getattr(sys.stderr, "flush", lambda: None)  # sys.stderr may be None or a stand-in
    flush()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (a daemon): nothing to show, nothing to hide
        import pybullet

        return pybullet
    try:
        captured = tempfile.TemporaryFile()
    except OSError:  # no writable temp folder: better the banner than no ant
        os.close(saved)
        import pybullet

        return pybullet
    with captured:
        os.dup2(captured.fileno(), 2)
        try:
            import pybullet
        finally:
            flush()  # Python's own writes during the import (warnings) into the file
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = b"".join(line for line in captured.read().splitlines(keepends=True)
                            if not line.startswith(PYBULLET_BANNER))
            with contextlib.suppress(OSError):  # a closed stderr must not hide the import's own error
                while kept:
                    kept = kept[os.write(2, kept):]
    return pybullet


pybullet = _import_pybullet()
import pybullet_data  # noqa: E402

# --- Scene and physics (pybullet_envs: WalkerBaseBulletEnv.create_single_player_scene, World) ---
TIMESTEP = 0.0165 / 4  # s, one physics substep
FRAME_SKIP = 4  # physics substeps per env step (Bullet numSubSteps)
CONTROL_DT = TIMESTEP * FRAME_SKIP  # s, one env step; the original's scene.dt
GRAVITY = 9.8  # m/s^2
NUM_SOLVER_ITERATIONS = 5  # World.numSolverIterations
DEFAULT_CONTACT_ERP = 0.9  # World.clean_everything
FLOOR_SDF = "plane_stadium.sdf"  # StadiumScene, from pybullet_data
FLOOR_LATERAL_FRICTION = 0.8  # StadiumScene.episode_restart
FLOOR_RESTITUTION = 0.5  # StadiumScene.episode_restart
FLOOR_RGBA = (1.0, 1.0, 1.0, 0.8)  # StadiumScene.episode_restart
# MJCFBasedRobot.reset: loadMJCF flags for a robot with self collision
MJCF_FLAGS = (
    pybullet.URDF_USE_SELF_COLLISION
    | pybullet.URDF_USE_SELF_COLLISION_EXCLUDE_ALL_PARENTS
    | pybullet.URDF_GOOGLEY_UNDEFINED_COLORS
)
MOTOR_GAIN = 0.1  # position and velocity gain of the disabled default motors (robot_bases)

# --- Robot (robot_locomotors.Ant, WalkerBase) ---
POWER = 2.5  # Ant power
POWER_COEF = 100.0  # XmlBasedRobot.addToScene, per joint
TORQUE_SCALE = POWER * POWER_COEF  # N m per unit action: 250
FOOT_LINK_NAMES = ("front_left_foot", "front_right_foot", "left_back_foot", "right_back_foot")
INITIAL_JOINT_NOISE = 0.1  # rad, joint positions start U[-0.1, 0.1] (robot_specific_reset)
WALK_TARGET_X = 1e3  # m, "kilometer away"
WALK_TARGET_Y = 0.0  # m
ALIVE_MIN_Z = 0.26  # m, torso height below which the Ant has fallen (Ant.alive_bonus)

# --- Observation scaling (WalkerBase.calc_state, Joint.current_relative_position) ---
JOINT_SPEED_SCALE = 0.1  # observation = 0.1 * joint speed (rad/s)
BODY_SPEED_SCALE = 0.3  # observation = 0.3 * torso speed (m/s) in the yaw frame
JOINT_AT_LIMIT = 0.99  # |scaled joint position| above this counts as "at limit"
OBS_CLIP = 5.0

# --- Reward weights (WalkerBaseBulletEnv) ---
ELECTRICITY_COST = -2.0  # per unit of mean |action * scaled joint speed|
STALL_TORQUE_COST = -0.1  # per unit of mean action^2
JOINTS_AT_LIMIT_COST = -0.1  # per joint at its limit
# WalkerBaseBulletEnv.foot_collision_cost (-1.0) is never applied (roboschool issue 63): the term is 0.
FEET_COLLISION_COST = 0.0

N_JOINTS = 8
OBS_DIM = 28
REWARD_TERMS = (
    "reward_alive",
    "reward_progress",
    "reward_electricity",
    "reward_joints_at_limit",
    "reward_feet_collision",
)
RESET_MODES = ("fresh", "reused")

# --- Rendering (MJCFBaseBulletEnv.render) ---
CAMERA_DISTANCE = 3.0  # m
CAMERA_YAW = 0.0  # deg
CAMERA_PITCH = -30.0  # deg
CAMERA_FOV = 60.0  # deg
CAMERA_NEAR, CAMERA_FAR = 0.1, 100.0  # m
RENDER_WIDTH, RENDER_HEIGHT = 320, 240  # px


def numpy_sum(values: list[float]) -> float:
    """``float(np.add.reduce(np.array(values)))`` bit for bit, in plain Python: NumPy's pairwise
    summation of float64 (``pairwise_sum`` in its ``loops_utils.h``; one block of 8 accumulators
    for 8 <= n <= 128, a plain loop below 8) added to the reduction's initial 0.0. The part
    centre's mean is summed this way to skip building a (22, 3) array each step (with the other
    changes of that commit the observation went from 38.6 to 34.8 us on a quiet machine, about 2%
    of a 230 us env step); the numbers must stay NumPy's (the port matches the original, runs
    resume bit for bit)."""
    n = len(values)
    if n > 128:  # NumPy recurses on halves above its block size; not needed for 21-22 parts
        return float(np.add.reduce(np.array(values, dtype=np.float64)))
    if n < 8:
        total = -0.0
        for v in values:
            total += v
        return 0.0 + total
    r0, r1, r2, r3, r4, r5, r6, r7 = values[:8]
    end = n - n % 8
    for i in range(8, end, 8):
        r0 += values[i]
        r1 += values[i + 1]
        r2 += values[i + 2]
        r3 += values[i + 3]
        r4 += values[i + 4]
        r5 += values[i + 5]
        r6 += values[i + 6]
        r7 += values[i + 7]
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for v in values[end:]:
        total += v
    return 0.0 + total


class AntBulletEnv(gym.Env):
    """pybullet's Ant (AntBulletEnv-v0) as a gymnasium env with a choice of lower-leg lengths.

    ## Description
    The quadruped of pybullet's ``AntBulletEnv-v0``: a torso sphere with four legs of two hinges
    each (hip about z, ankle in the leg's vertical plane), loaded from pybullet_data's
    ``mjcf/ant.xml`` onto the stadium floor, walking towards a target 1 km away along +x. The
    lower legs can be shortened or lengthened per leg (``morphology``; see
    :mod:`spikehebb.envs.morphology` for which leg is which). Each env owns its own pyBullet
    client in DIRECT mode, so many envs run side by side in one process; reset does not reload
    the model.

    ## Action Space
    ``Box(-1, 1, (8,), float32)``: torque of each joint in the order hip_1, ankle_1, hip_2,
    ankle_2, hip_3, ankle_3, hip_4, ankle_4, in units of 250 N m (power 2.5 x power_coef 100).
    Actions are clipped to [-1, 1] for the motors; the electricity cost uses them unclipped, as
    the original does.

    ## Observation Space
    ``Box(-5, 5, (28,), float32)`` (the original declares +-inf but clips every entry to [-5, 5]):

    ====  ==========================================================================
    idx   observation
    ====  ==========================================================================
    0     torso height minus its height at reset (m)
    1-2   sin and cos of the angle from the torso's yaw to the walk target (rad)
    3-5   0.3 x torso velocity (m/s), x and y rotated into the torso's yaw frame
    6-7   torso roll and pitch (rad)
    8-23  per joint (order as the actions): position scaled to [-1, 1] between its
          limits, then 0.1 x its speed (rad/s)
    24-27 1 if the foot (front_left, front_right, left_back, right_back link) touched
          the floor at the end of the previous step, else 0
    ====  ==========================================================================

    The "centre" used for the target angle (and for progress) is the mean position of the parts
    the original tracks: the torso, the 20 links, and, except for the starting observation of a
    ``reset_mode="fresh"`` reset, the floor (at the origin); see Arguments.

    ## Rewards
    Per step, summed in this order (each term is in ``info`` under its name):

    - ``reward_alive``: +1 while the torso is higher than 0.26 m, else -1.
    - ``reward_progress``: decrease of the distance from the part centre (above) to the walk
      target, divided by the step length 0.0165 s: about the centre's speed towards +x in m/s;
      the "distance walked" used as fitness.
    - ``reward_electricity``: -2 x mean |action x scaled joint speed| - 0.1 x mean action^2
      (the original's electricity cost, stall-torque cost included).
    - ``reward_joints_at_limit``: -0.1 per joint whose scaled position exceeds 0.99 in magnitude.
    - ``reward_feet_collision``: always 0 (the original computes but never applies it).

    ## Starting State
    Torso at (0, 0, 0.75) m with no rotation, all velocities zero, each joint position drawn from
    U[-0.1, 0.1] rad with ``self.np_random`` in joint order, exactly as the original draws them
    (its env and robot share one generator, seeded the same way): ``reset(seed=s)`` starts from
    the state the original reaches with ``env.seed(s)`` followed by ``env.reset()`` on a freshly
    built env.

    ## Episode End
    ``terminated`` is True when the torso is not higher than 0.26 m or the observation holds a
    NaN (a blown-up simulation; the original's ``np.isfinite`` check after clipping). Like the
    original, the env keeps stepping after that (the Hebbian papers ignore falls in the first
    200 steps), so stepping on after ``terminated`` is allowed. ``truncated`` comes from the
    registration's ``max_episode_steps=1000`` (gymnasium's TimeLimit).

    ## Arguments
    ```python
    gymnasium.make("spikehebb/AntBullet-v0", variant="default", render_mode=None,
                   reset_mode="fresh")
    ```
    - ``variant``: the body, a preset name (``default``, ``damage_left``, ``damage_right``,
      ``palm_damage_right``, ``long_back``, ``long_front``) or a
      :class:`~spikehebb.envs.morphology.Morphology` (its leg lengths).
    - ``render_mode``: ``None`` or ``"rgb_array"`` (320x240 RGB from pyBullet's TinyRenderer,
      camera 3 m from the torso, pitch -30 deg, following it).
    - ``reset_mode``: the original takes the starting potential (and the starting observation's
      target angle) over the 21 robot parts on the first reset of a freshly built env, and over
      22 parts (the floor included) on every later reset, so its first episode's first progress
      term differs from later episodes'. ``"fresh"`` (default) makes every reset behave like the
      first one of a freshly built env, which is how the papers' code uses it (a new env per
      rollout); ``"reused"`` makes every reset after the first behave like the original's later
      resets.

    ## Version History
    - v0: port of pybullet 3.2.7's AntBulletEnv-v0 with morphologies, vectorised state reads and
      named reward terms.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 60}  # the original's frames_per_second

    def __init__(
        self,
        variant: str | Morphology = "default",
        render_mode: str | None = None,
        reset_mode: str = "fresh",
    ) -> None:
        self._morphology = get_morphology(variant)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, "
                f"got {render_mode!r}"
            )
        if reset_mode not in RESET_MODES:
            raise ValueError(f"reset_mode must be one of {RESET_MODES}, got {reset_mode!r}")
        self.render_mode = render_mode
        self._reset_mode = reset_mode

        high = np.ones(N_JOINTS, dtype=np.float32)
        self.action_space = spaces.Box(-high, high, dtype=np.float32)
        # The original declares +-inf, but every entry is clipped to +-5, so the space says so.
        high = np.full(OBS_DIM, OBS_CLIP, dtype=np.float32)
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)

        self._client = pybullet.connect(pybullet.DIRECT)
        if self._client < 0:
            raise RuntimeError("pybullet.connect(DIRECT) failed")
        try:
            self._build_scene()
        except Exception:
            self.close()  # release the client, then let the error through
            raise

        self._saved_state = -1  # pyBullet state after the first reset, restored by later ones
        self._n_resets = 0
        self._initial_z = 0.0
        self._potential = 0.0
        self._feet_contact = [0.0] * len(FOOT_LINK_NAMES)
        self._torso_xyz = (0.0, 0.0, 0.0)
        self._body_xyz = (0.0, 0.0, 0.0)

    # ----------------------------------------------------------------------------- construction

    def _build_scene(self) -> None:
        """Load floor and Ant into this env's client in the original's order and settings."""
        cid = self._client
        pybullet.resetSimulation(physicsClientId=cid)
        pybullet.setPhysicsEngineParameter(deterministicOverlappingPairs=1, physicsClientId=cid)
        self._configure_world()
        (self._floor,) = pybullet.loadSDF(
            os.path.join(pybullet_data.getDataPath(), FLOOR_SDF), physicsClientId=cid
        )
        pybullet.changeDynamics(
            self._floor,
            -1,
            lateralFriction=FLOOR_LATERAL_FRICTION,
            restitution=FLOOR_RESTITUTION,
            physicsClientId=cid,
        )
        pybullet.changeVisualShape(self._floor, -1, rgbaColor=FLOOR_RGBA, physicsClientId=cid)
        self._floor_xyz = pybullet.getBasePositionAndOrientation(self._floor, physicsClientId=cid)[0]

        self._robot = self._load_robot()
        n_links = pybullet.getNumJoints(self._robot, physicsClientId=cid)
        joints, lower, upper, link_names = [], [], [], []
        for j in range(n_links):
            info = pybullet.getJointInfo(self._robot, j, physicsClientId=cid)
            # addToScene: every joint's default motor is turned into a zero-force position motor
            pybullet.setJointMotorControl2(
                self._robot,
                j,
                pybullet.POSITION_CONTROL,
                positionGain=MOTOR_GAIN,
                velocityGain=MOTOR_GAIN,
                force=0,
                physicsClientId=cid,
            )
            link_names.append(info[12].decode("utf8"))
            if not info[1].decode("utf8").startswith("jointfix"):
                joints.append(j)
                lower.append(info[8])
                upper.append(info[9])
        if len(joints) != N_JOINTS:
            raise RuntimeError(f"the Ant MJCF must have {N_JOINTS} hinge joints, loaded {len(joints)}")
        self._joints = joints
        self._links = list(range(n_links))
        self._feet = [link_names.index(name) for name in FOOT_LINK_NAMES]
        # Joint.current_relative_position: the scaled position is 2 (q - mid) / span
        self._joint_mid = [0.5 * (lo + hi) for lo, hi in zip(lower, upper)]
        self._joint_span = [hi - lo for lo, hi in zip(lower, upper)]

    def _configure_world(self) -> None:
        """Gravity, contact ERP and time stepping, as World.clean_everything sets them."""
        cid = self._client
        pybullet.setGravity(0, 0, -GRAVITY, physicsClientId=cid)
        pybullet.setDefaultContactERP(DEFAULT_CONTACT_ERP, physicsClientId=cid)
        pybullet.setPhysicsEngineParameter(
            fixedTimeStep=TIMESTEP * FRAME_SKIP,
            numSolverIterations=NUM_SOLVER_ITERATIONS,
            numSubSteps=FRAME_SKIP,
            physicsClientId=cid,
        )

    def _load_robot(self) -> int:
        """Write the morphology's MJCF to a temporary file, load it, and return the body id."""
        handle, path = tempfile.mkstemp(prefix="spikehebb_ant_", suffix=".xml")
        try:
            with os.fdopen(handle, "w") as file:
                file.write(self._morphology.to_mjcf())
            bodies = pybullet.loadMJCF(path, flags=MJCF_FLAGS, physicsClientId=self._client)
        finally:
            os.unlink(path)
        return bodies[0]

    # ----------------------------------------------------------------------------- properties

    @property
    def morphology(self) -> Morphology:
        """The body this env simulates."""
        return self._morphology

    @property
    def client_id(self) -> int:
        """This env's pyBullet physics client id (-1 once closed)."""
        return self._client

    @property
    def robot_id(self) -> int:
        """The Ant's body id in this env's client."""
        return self._robot

    @property
    def joint_indices(self) -> list[int]:
        """pyBullet joint indices of the 8 actuated hinges, in action order."""
        return list(self._joints)

    @property
    def foot_links(self) -> list[int]:
        """pyBullet link indices of the 4 feet (ankle capsules), in leg order."""
        return list(self._feet)

    @property
    def torso_position(self) -> tuple[float, float, float]:
        """Torso (x, y, z) in m after the last reset or step."""
        return self._torso_xyz

    # ----------------------------------------------------------------------------- gymnasium API

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Put the Ant back at the start with random joint angles; returns (obs (28,), info)."""
        super().reset(seed=seed)
        self._check_open()
        cid = self._client
        if self._saved_state >= 0:
            pybullet.restoreState(self._saved_state, physicsClientId=cid)
        self._configure_world()
        angles = self.np_random.uniform(-INITIAL_JOINT_NOISE, INITIAL_JOINT_NOISE, size=N_JOINTS)
        for joint, angle in zip(self._joints, angles):
            pybullet.resetJointState(
                self._robot, joint, targetValue=float(angle), targetVelocity=0, physicsClientId=cid
            )
            pybullet.setJointMotorControl2(
                self._robot,
                joint,
                controlMode=pybullet.POSITION_CONTROL,
                targetPosition=0,
                targetVelocity=0,
                positionGain=MOTOR_GAIN,
                velocityGain=MOTOR_GAIN,
                force=0,
                physicsClientId=cid,
            )
        self._feet_contact = [0.0] * len(FOOT_LINK_NAMES)
        include_floor = self._reset_mode == "reused" and self._n_resets > 0
        obs, _, _, _ = self._observe(include_floor, first=True)
        self._potential = self._calc_potential()
        if self._saved_state < 0:
            self._saved_state = pybullet.saveState(physicsClientId=cid)
        self._n_resets += 1
        return obs, {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply torques, advance 0.0165 s; returns (obs (28,), reward, terminated, False, info)."""
        a, values = self._check_action(action)
        cid = self._client
        # WalkerBase.apply_action: power * power_coef * clip(a, -1, 1), N m
        torques = [TORQUE_SCALE * min(max(v, -1.0), 1.0) for v in values]
        pybullet.setJointMotorControlArray(
            self._robot, self._joints, pybullet.TORQUE_CONTROL, forces=torques, physicsClientId=cid
        )
        pybullet.stepSimulation(physicsClientId=cid)

        obs, joint_speeds, joints_at_limit, finite = self._observe(include_floor=True, first=False)
        alive = 1.0 if float(obs[0]) + self._initial_z > ALIVE_MIN_Z else -1.0
        terminated = alive < 0 or not finite

        potential_old = self._potential
        self._potential = self._calc_potential()
        progress = float(self._potential - potential_old)

        self._update_feet_contact()

        # np.add.reduce(x) / n is ndarray.mean() without its Python overhead (same rounding)
        electricity = ELECTRICITY_COST * float(np.add.reduce(np.abs(a * joint_speeds)) / N_JOINTS)
        electricity += STALL_TORQUE_COST * float(np.add.reduce(np.square(a)) / N_JOINTS)
        joints_at_limit_cost = float(JOINTS_AT_LIMIT_COST * joints_at_limit)
        terms = (alive, progress, electricity, joints_at_limit_cost, FEET_COLLISION_COST)
        reward = sum(terms)  # the original's order of summation
        info = dict(zip(REWARD_TERMS, terms))
        info["x_position"], info["y_position"] = self._torso_xyz[0], self._torso_xyz[1]
        return obs, reward, terminated, False, info

    def render(self) -> np.ndarray | None:
        """(240, 320, 3) uint8 RGB from a camera following the torso; None without render_mode."""
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without render_mode; make the env with render_mode='rgb_array'"
            )
            return None
        self._check_open()
        cid = self._client
        view = pybullet.computeViewMatrixFromYawPitchRoll(
            cameraTargetPosition=self._torso_xyz,
            distance=CAMERA_DISTANCE,
            yaw=CAMERA_YAW,
            pitch=CAMERA_PITCH,
            roll=0,
            upAxisIndex=2,
            physicsClientId=cid,
        )
        projection = pybullet.computeProjectionMatrixFOV(
            fov=CAMERA_FOV,
            aspect=RENDER_WIDTH / RENDER_HEIGHT,
            nearVal=CAMERA_NEAR,
            farVal=CAMERA_FAR,
            physicsClientId=cid,
        )
        _, _, pixels, _, _ = pybullet.getCameraImage(
            RENDER_WIDTH,
            RENDER_HEIGHT,
            viewMatrix=view,
            projectionMatrix=projection,
            renderer=pybullet.ER_TINY_RENDERER,
            physicsClientId=cid,
        )
        rgba = np.reshape(np.asarray(pixels, dtype=np.uint8), (RENDER_HEIGHT, RENDER_WIDTH, 4))
        return np.ascontiguousarray(rgba[:, :, :3])

    def close(self) -> None:
        """Disconnect this env's pyBullet client; safe to call more than once."""
        if getattr(self, "_client", -1) >= 0:
            pybullet.disconnect(physicsClientId=self._client)
            self._client = -1

    def __del__(self) -> None:  # an env dropped without close() frees its client, as pybullet's own does
        try:
            self.close()
        except Exception:  # interpreter shutdown: pybullet may be gone already
            pass

    # ----------------------------------------------------------------------------- internals

    def _check_open(self) -> None:
        if self._client < 0:
            raise RuntimeError("this AntBulletEnv is closed; make a new one")

    def _check_action(self, action: Any) -> tuple[np.ndarray, list[float]]:
        """The action as a float array (8,) and as a list; a ValueError says what was wrong."""
        self._check_open()
        if self._n_resets == 0:  # the progress would be measured from a potential never set
            raise RuntimeError("call reset() before step(): this AntBulletEnv has not been reset")
        a = np.asarray(action)
        if a.shape != (N_JOINTS,):
            raise ValueError(f"action must have shape ({N_JOINTS},), got shape {a.shape}")
        if a.dtype.kind != "f":
            if a.dtype.kind not in "iub":
                raise ValueError(f"action must hold real numbers, got dtype {a.dtype}")
            a = a.astype(np.float64)
        values = a.tolist()
        if not all(map(math.isfinite, values)):
            raise ValueError(f"action must be finite, got {values}")
        return a, values

    def _observe(
        self, include_floor: bool, first: bool
    ) -> tuple[np.ndarray, np.ndarray, int, bool]:
        """Read the simulation as WalkerBase.calc_state does, with the same float32 rounding.

        Returns the observation (28,) float32, the scaled joint speeds (8,) float32 before clipping
        (for the electricity cost), the number of joints at their limit, and whether the
        observation is free of NaN (the original's ``np.isfinite(state)`` after clipping). ``first``
        marks a reset: the torso height seen now becomes the reference for observation 0.
        """
        cid = self._client
        robot = self._robot
        joint_states = pybullet.getJointStates(robot, self._joints, physicsClientId=cid)
        link_states = pybullet.getLinkStates(robot, self._links, physicsClientId=cid)
        torso_xyz, torso_quat = pybullet.getBasePositionAndOrientation(robot, physicsClientId=cid)
        (vx_world, vy_world, vz), _ = pybullet.getBaseVelocity(robot, physicsClientId=cid)

        # The original's parts dict: link 0, the torso, links 1..19, then (once added) the floor.
        # Same order and the same NumPy reduction, so the mean rounds the same way.
        parts = [link_states[0][0], torso_xyz, *[state[0] for state in link_states[1:]]]
        if include_floor:
            parts.append(self._floor_xyz)
        x = numpy_sum([xyz[0] for xyz in parts]) / len(parts)
        y = numpy_sum([xyz[1] for xyz in parts]) / len(parts)
        z = torso_xyz[2]
        self._body_xyz = (x, y, z)
        self._torso_xyz = torso_xyz
        if first:
            self._initial_z = z
        roll, pitch, yaw = pybullet.getEulerFromQuaternion(torso_quat, physicsClientId=cid)

        angle_to_target = math.atan2(WALK_TARGET_Y - y, WALK_TARGET_X - x) - yaw
        cos_yaw, sin_yaw = math.cos(-yaw), math.sin(-yaw)  # rotate the velocity into the yaw frame
        values = [
            z - self._initial_z,
            math.sin(angle_to_target),
            math.cos(angle_to_target),
            BODY_SPEED_SCALE * (cos_yaw * vx_world - sin_yaw * vy_world),
            BODY_SPEED_SCALE * (sin_yaw * vx_world + cos_yaw * vy_world),
            BODY_SPEED_SCALE * vz,
            roll,
            pitch,
        ]
        for (position, speed, _, _), mid, span in zip(joint_states, self._joint_mid, self._joint_span):
            values.append(2 * (position - mid) / span)
            values.append(JOINT_SPEED_SCALE * speed)
        values.extend(self._feet_contact)

        raw = np.fromiter(values, np.float32, OBS_DIM)
        joint_speeds = raw[9:24:2].copy()
        raw_values = raw.tolist()
        joints_at_limit = sum(abs(v) > JOINT_AT_LIMIT for v in raw_values[8:24:2])
        finite = not any(map(math.isnan, raw_values))  # clipping makes +-inf finite, not NaN
        # np.clip, without its Python wrapper's cost (same values, NaN kept)
        np.minimum(np.maximum(raw, -OBS_CLIP, out=raw), OBS_CLIP, out=raw)
        return raw, joint_speeds, joints_at_limit, finite

    def _calc_potential(self) -> float:
        """Minus the distance (m) from the body centre to the walk target, per step length (s)."""
        x, y, _ = self._body_xyz
        return -math.hypot(WALK_TARGET_Y - y, WALK_TARGET_X - x) / CONTROL_DT

    def _update_feet_contact(self) -> None:
        """Mark each foot touching the floor after the last substep (seen by the next observation)."""
        contacts = pybullet.getContactPoints(
            bodyA=self._robot, bodyB=self._floor, physicsClientId=self._client
        )
        touching = {c[3] for c in contacts if c[4] == -1}
        self._feet_contact = [1.0 if link in touching else 0.0 for link in self._feet]
