"""Tasks: an environment family, its train and test variants, the network, the episode rules.

A :class:`Task` says everything a rollout needs that is not the candidate itself: how to make an
env for a variant (a body of the ant, a dynamics variation of the car: both are "variants"), the
network's sizes and activations, the encoder and decoder, which reward term is the fitness,
which per-step signal is the modulator of three-factor rules, and when an episode ends
(:class:`EpisodeRules`, ``Task.episode``). The registry :data:`TASKS` holds the paper's tasks;
``get_task(name, **overrides)`` returns one with fields replaced (steps, variants, episode).

An encoder with evolved parameters (the car's convolutions) adds the genome part ``"encoder"``
(:meth:`Task.genome_parts`); the rollout hands each lifetime's values to the encoder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

from spikehebb.checks import is_integer
from spikehebb.agents.base import GenomePart
from spikehebb.coding import (
    CarDecoder, CarEncoder, Decoder, Encoder, IdentityDecoder, OnOffEncoder, PairDecoder, RawEncoder,
)
from spikehebb.plugins import missing

#: ``Task.modulator`` of a task that offers no per-step signal to three-factor rules.
NO_MODULATOR = "none"
#: :class:`EpisodeRules` fields of lifetimes that run to the step limit: no end after a run of
#: negative fitness terms, nor after ``terminated`` (only where :attr:`Task.steps_after_terminated`).
NO_EARLY_END = {"patience": 10**9, "end_on_terminated": False}


#: What the network sees at step 0 (:attr:`EpisodeRules.first_input`), in words.
FIRST_INPUT_WORDS = {"settled": "the observation after the burn-in",
                     "reset": "the one env.reset() returned before the burn-in"}
FIRST_INPUTS = tuple(FIRST_INPUT_WORDS)


@dataclass(frozen=True)
class EpisodeRules:
    """When a lifetime ends, and what the network sees of it (Najarro & Risi's code).

    Network steps t count from 0 after the burn-in. Member ends its episode after step t when
    ``t + 1 == max_env_steps - burn_in_steps`` (the env's own limit counts the burn-in), or, once
    ``t >= grace_steps``, when the env reports ``terminated`` (if ``end_on_terminated``) or the
    fitness term was negative for more than ``patience`` consecutive steps.
    """

    burn_in_steps: int = 40
    """Zero-action env steps before the network acts; they are not in the fitness (ant: 40)."""
    max_env_steps: int = 1000
    """The env's step limit, burn-in included (the gym registration's 1,000)."""
    grace_steps: int = 201
    """Network steps before falls and negative progress count (the authors' ``t > 200``: 201)."""
    patience: int = 30
    """End after more than this many consecutive negative fitness terms (ant 30, car 20)."""
    end_on_terminated: bool = True
    """Whether ``terminated`` (a fall) ends the episode once the grace steps are over."""
    first_input: str = "settled"
    """What the network sees at step 0: ``"settled"``, the observation after the burn-in (ours), or
    ``"reset"``, the one ``env.reset()`` returned before it, as the authors' code does (it keeps
    ``observation = env.reset()`` and discards the burn-in steps' observations: ``__ =
    env.step(action)``). From step 1 on both see the env's last observation."""

    def __post_init__(self) -> None:
        for name in ("burn_in_steps", "max_env_steps", "grace_steps", "patience"):
            value = getattr(self, name)
            if not is_integer(value) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
            object.__setattr__(self, name, int(value))  # a NumPy integer is stored as the int it is
        if not isinstance(self.end_on_terminated, bool):
            raise ValueError(f"end_on_terminated must be True or False, got {self.end_on_terminated!r}")
        if self.first_input not in FIRST_INPUTS:
            raise ValueError(f"first_input must be one of {FIRST_INPUTS}, got {self.first_input!r}")
        if self.max_env_steps <= self.burn_in_steps:
            raise ValueError(
                f"max_env_steps ({self.max_env_steps}) must exceed burn_in_steps ({self.burn_in_steps})"
            )

    @property
    def max_network_steps(self) -> int:
        return self.max_env_steps - self.burn_in_steps


class EpisodeState:
    """Per-slot bookkeeping of :class:`EpisodeRules` for a batch: fitness, steps, end flags.

    ``alive[b]`` says whether slot b lives a lifetime; :meth:`start` begins a new one in a slot.
    """

    def __init__(self, rules: EpisodeRules, alive: list[bool]):
        self.rules = rules
        self.alive = list(alive)
        n = len(alive)
        self.fitness = [0.0] * n
        self.steps = [0] * n
        self._negative = [0] * n

    def start(self, member: int) -> None:
        """A new lifetime in slot ``member``: fitness, steps and the negative count at 0."""
        self.alive[member] = True
        self.fitness[member], self.steps[member], self._negative[member] = 0.0, 0, 0

    def move(self, source: int, target: int) -> None:
        """Carry slot ``source``'s lifetime over to slot ``target`` (the source ends empty)."""
        for values in (self.alive, self.fitness, self.steps, self._negative):
            values[target] = values[source]
        self.alive[source] = False

    def alive_any(self) -> bool:
        return any(self.alive)

    def fail(self, member: int) -> None:
        """End the slot's lifetime as failed (fitness NaN: its outputs blew up)."""
        self.fitness[member] = float("nan")
        self.steps[member] += 1
        self.alive[member] = False

    def record(self, member: int, t: int, term: float, terminated: bool) -> None:
        """Add step t's fitness term of ``member`` and end its episode if the rules say so."""
        rules = self.rules
        self.fitness[member] += term
        self.steps[member] = t + 1
        if t >= rules.grace_steps:
            self._negative[member] = self._negative[member] + 1 if term < 0 else 0
            if (terminated and rules.end_on_terminated) or self._negative[member] > rules.patience:
                self.alive[member] = False
        if t + 1 >= rules.max_network_steps:
            self.alive[member] = False


def _make_ant(variant: str, **kwargs):
    from spikehebb.envs.ant import AntBulletEnv

    return AntBulletEnv(variant=variant, **kwargs)


def _ant_variants() -> tuple[str, ...]:
    from spikehebb.envs.morphology import PRESETS

    return tuple(PRESETS)


@dataclass(frozen=True)
class Task:
    """An environment family with its network, codes, fitness and episode rules."""

    name: str
    make_env: Callable[..., Any]
    """``make_env(variant, **env_kwargs)`` -> a gymnasium env (no wrappers)."""
    variants: tuple[str, ...]
    """Every variant the env accepts by name."""
    train_variants: tuple[str, ...]
    test_variants: tuple[str, ...]
    sizes: tuple[int, ...]
    activation: str | tuple[str, ...]
    encoder: Callable[[], Encoder]
    decoder: Callable[[], Decoder]
    fitness_term: str | None
    """Key of the ``info`` entry summed as fitness; None sums the env's reward."""
    episode: EpisodeRules = field(default_factory=EpisodeRules)
    """When a lifetime ends (:class:`EpisodeRules`)."""
    reward_terms: tuple[str, ...] = ()
    """Named reward terms the env puts in ``info`` (recorded in traces)."""
    n_actions: int = 0
    constraints: tuple[str, ...] = ()
    """Weight constraints after every rule update (:data:`spikehebb.network.CONSTRAINTS`; the
    car: ``("max_abs",)``); not applied to networks without a rule."""
    modulator: str | None = None
    """The per-step signal fed to modulated (three-factor) rules: a key of the env's ``info``, or
    ``"reward"``; None: the fitness term (the ant's progress, the car's reward);
    :data:`NO_MODULATOR`: none (``--modulated`` is refused)."""
    solved_fitness: float | None = None
    """Mean test fitness at which a variant counts as solved (None: the assessment's default)."""
    control_period: float | None = None
    """Seconds of simulated time per env step (a spiking agent runs this long per step)."""
    steps_after_terminated: bool = False
    """Whether the env goes on stepping after it reports ``terminated`` (pybullet's Ant reports a
    fall and simulates on), so that lifetimes may run past it (``end_on_terminated=False``)."""
    env_memory_mb: float = 0.0
    """Resident memory of one live env in MB, measured on Linux (0: not known). A training worker
    keeps one env per slot and training variant, so this sizes the default batch
    (:meth:`spikehebb.config.EvaluatorConfig.batch`)."""

    def __post_init__(self) -> None:
        if not self.episode.end_on_terminated and not self.steps_after_terminated:
            raise ValueError(f"the {self.name} env cannot go on after it reports terminated, so end_on_terminated "
                             "must stay True")
        for name in ("train_variants", "test_variants"):
            unknown = [v for v in getattr(self, name) if v not in self.variants]
            if unknown:
                raise ValueError(f"unknown {self.name} variant(s) {unknown}; valid: {', '.join(self.variants)}")
            if not getattr(self, name):
                raise ValueError(f"{name} of task {self.name!r} is empty")

    def check_variants(self, variants) -> tuple[str, ...]:
        unknown = [v for v in variants if v not in self.variants]
        if unknown:
            raise ValueError(f"unknown {self.name} variant(s) {unknown}; valid: {', '.join(self.variants)}")
        return tuple(variants)

    def genome_parts(self) -> tuple[GenomePart, ...]:
        """Genome parts the task adds: ``"encoder"`` when the encoder has evolved parameters (the
        car's 1,362 convolution weights), else none."""
        shapes = tuple(getattr(self.encoder(), "param_shapes", ()))
        return (GenomePart("encoder", shapes),) if shapes else ()

    @property
    def has_modulator(self) -> bool:
        """Whether the task offers a per-step modulator signal to three-factor rules."""
        return self.modulator != NO_MODULATOR

    def replace(self, **changes) -> "Task":
        """A copy with fields replaced; ``episode`` may be a dict of :class:`EpisodeRules` fields."""
        if isinstance(changes.get("episode"), dict):
            fields = [f.name for f in dataclasses.fields(EpisodeRules)]
            unknown = sorted(set(changes["episode"]) - set(fields))
            if unknown:
                raise ValueError(f"unknown episode field(s) {', '.join(unknown)}; valid: {', '.join(fields)}")
            changes["episode"] = dataclasses.replace(self.episode, **changes["episode"])
        return dataclasses.replace(self, **changes)

    def no_early_end(self) -> dict:
        """The :class:`EpisodeRules` fields of lifetimes that end only at the step limit (or when
        the env itself cannot go on): :data:`NO_EARLY_END`, less ``end_on_terminated`` where the
        env stops at ``terminated`` (the car: lap finished, off the playfield)."""
        if self.steps_after_terminated:
            return dict(NO_EARLY_END)
        return {k: v for k, v in NO_EARLY_END.items() if k != "end_on_terminated"}


ANT = Task(
    name="ant",
    make_env=_make_ant,
    variants=_ant_variants(),
    # Najarro & Risi 2020: trained on the whole body and the right-front damage, tested on the
    # left-front damage it never saw.
    train_variants=("default", "damage_right"),
    test_variants=("damage_left",),
    sizes=(28, 128, 64, 8),
    activation="tanh",
    encoder=lambda: RawEncoder(28),
    decoder=IdentityDecoder,
    fitness_term="reward_progress",
    episode=EpisodeRules(burn_in_steps=40, max_env_steps=1000, grace_steps=201, patience=30),
    reward_terms=("reward_alive", "reward_progress", "reward_electricity", "reward_joints_at_limit", "reward_feet_collision"),
    n_actions=8,
    control_period=0.0165,  # four pybullet substeps of 0.004125 s (spikehebb.envs.ant.CONTROL_DT)
    steps_after_terminated=True,
    # Each env is its own pybullet DIRECT client, whose command and stream buffers take ~30 MB on
    # Linux (pybullet 3.2.7; 8 MB stream chunks, 1 MB on macOS).
    env_memory_mb=32.0,
)


def _make_car(variant: str, **kwargs):
    from spikehebb.envs.car import CarRacingEnv

    return CarRacingEnv(variant=variant, **kwargs)


def _car_variants() -> tuple[str, ...]:
    # The preset names, without importing the car env (pygame, Box2D) for users of the ant.
    return ("default", "friction_half", "friction_double", "push_left", "push_right")


CAR = Task(
    name="car",
    make_env=_make_car,
    variants=_car_variants(),
    # Najarro & Risi 2020 train and test on the default track; Palm et al. 2021 vary the
    # friction and push the car sideways, here the test variants.
    train_variants=("default",),
    test_variants=("friction_half", "friction_double", "push_left", "push_right"),
    sizes=(648, 128, 64, 3),
    # The rule sees the raw last-layer outputs; the decoder squashes them into actions.
    activation=("tanh", "tanh", "linear"),
    encoder=CarEncoder,
    decoder=CarDecoder,
    fitness_term=None,  # the env reward: -0.1 per frame, +1000/N per new tile
    # No burn-in, the env's 1,000 steps, and from the first step on: the end of the track or
    # leaving the playfield (terminated) or more than 20 negative rewards in a row.
    episode=EpisodeRules(burn_in_steps=0, max_env_steps=1000, grace_steps=0, patience=20),
    n_actions=3,
    constraints=("max_abs",),
    solved_fitness=900.0,  # gymnasium's reward_threshold for CarRacing
    control_period=1 / 50,  # CarRacing's 50 frames per second
    env_memory_mb=10.0,  # the Box2D world, the track and the frame buffers
)

#: Every task by name.
TASKS: dict[str, Task] = {ANT.name: ANT, CAR.name: CAR}


def positive_task(task: Task) -> Task:
    """The task with non-negative rates everywhere (``--positive``, Burns 2021): inputs as on/off
    pairs (:class:`~spikehebb.coding.OnOffEncoder`), every layer rectified tanh (``"rtanh"``,
    see :data:`spikehebb.network.ACTIVATIONS`), each action from an agonist/antagonist output
    pair (:class:`~spikehebb.coding.PairDecoder`). Sizes double at both ends: the ant's
    (28, 128, 64, 8) becomes (56, 128, 64, 16). A task whose decoder cannot take a difference
    of two rates (the car's squashes raw signed outputs) is refused."""
    if not getattr(task.decoder, "pairable", False):
        raise ValueError(
            f"--positive needs a decoder that reads actions as r+ - r- pairs; task {task.name!r}'s "
            f"{getattr(task.decoder, '__name__', type(task.decoder).__name__)} cannot pair outputs"
        )
    encoder, decoder = task.encoder, task.decoder
    sizes = (2 * task.sizes[0],) + tuple(task.sizes[1:-1]) + (2 * task.sizes[-1],)
    return task.replace(
        sizes=sizes, activation="rtanh",
        encoder=lambda: OnOffEncoder(encoder()), decoder=lambda: PairDecoder(decoder()),
    )


def get_task(name: str, **overrides) -> Task:
    """A registered task, with fields replaced by ``overrides`` (see :meth:`Task.replace`)."""
    if missing(name, TASKS):  # (a plug-in's task: spikehebb.plugins)
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    task = TASKS[name]
    return task.replace(**overrides) if overrides else task
