"""A run's configuration: nested objects, one per concern, saved in the run file as they are.

    TrainConfig
      task:      TaskConfig       which task, its training variants, its lifetime length
      agent:     AgentConfig      which agent kind, its rule and network options (spikehebb.agents)
      strategy:  StrategyConfig   which evolution strategy, population, its constants
      evaluator: EvaluatorConfig  where lifetimes run: serial, processes, Ray; workers; batch size
      generations, seed, runs_dir, run_name, extra

:meth:`TrainConfig.to_dict` / :meth:`TrainConfig.from_dict` give the JSON form stored in the run
file; ``from_dict`` also reads the flat form of run files written before the configs were
nested (``{"task": "ant", "rule": "ABCD_lr", "static": false, "popsize": 32, ...}``). Workers get
the task and agent configs themselves (:class:`WorkerSpec`). Every value is checked when the
object is built, so a bad flag fails before anything is written.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spikehebb.agents import AgentConfig
from spikehebb.checks import MAX_SEED, check_bool, check_name, check_timeout, is_finite_real, is_integer, repeated  # MAX_SEED: the largest run seed (config's users import it here)
from spikehebb.tasks import Task, get_task

STRATEGY_NAMES = ("openai-es", "cma")
#: Where a search can start (:attr:`StrategyConfig.init`).
STRATEGY_INITS = ("normal", "uniform", "zeros", "fan_in")
SHARED_ASSIGNMENTS = ("gmm", "random", "merge")
"""How shared rules are assigned to synapses (``StrategyConfig.assign``)."""
EVALUATOR_NAMES = ("serial", "processes", "ray")


def check_run_name(name) -> None:
    """A one-line error unless ``name`` can be a run file's name in the runs directory: a non-empty
    string without a path separator, not starting with a dot, without the ``.h5`` (added)."""
    if not isinstance(name, str) or not name or name.strip() != name:
        raise ValueError(f"train: run_name must be a non-empty name without surrounding spaces, got {name!r}")
    if "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"train: run_name must be a file name in the runs directory (no '/', not starting with '.'), "
                         f"got {name!r}; --runs-dir says where it goes")
    if name.lower().endswith(".h5"):
        raise ValueError(f"train: run_name is given without .h5 (the file is NAME.h5), got {name!r}")


def _check_number(owner: str, name: str, value, *, positive: bool = False, integer: bool = False, minimum=None,
                  maximum=None) -> int | float:
    """One-line errors for numeric settings: finite, an integer where needed, in range. ``owner``
    names the config in the message ("strategy"), ``name`` the setting. Returns ``value`` as a
    plain int or float (a NumPy number is the number it is: ``np.int64(32)`` gives 32), so the
    stored JSON and comparisons stay plain; bools are refused (``True`` is not a count)."""
    if not (is_integer(value) if integer else is_finite_real(value)):
        kind = "an integer" if integer else "a finite number"
        raise ValueError(f"{owner}: {name} must be {kind}, got {value!r}")
    value = value.item() if isinstance(value, np.generic) else value
    if positive and not value > 0:
        raise ValueError(f"{owner}: {name} must be positive, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{owner}: {name} must be at least {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{owner}: {name} must be at most {maximum}, got {value!r}")
    return value


def _check_field(config, owner: str, name: str, **limits) -> None:
    """:func:`_check_number` on the field ``name`` of the frozen dataclass ``config`` (``owner``
    names it in the message; ``limits``: ``_check_number``'s keywords), storing the plain number
    back in the field."""
    object.__setattr__(config, name, _check_number(owner, name, getattr(config, name), **limits))


@dataclass(frozen=True)
class TaskConfig:
    """Which task and how its lifetimes run in training.

    name: a registered task (:data:`spikehebb.tasks.TASKS`); train_variants: the variants whose
    mean fitness is the training fitness (None: the task's: the ant's default and damage_right);
    max_env_steps: env steps per lifetime, burn-in included (None: the task's, 1,000);
    episode: other :class:`~spikehebb.tasks.EpisodeRules` fields to replace (``burn_in_steps``,
    ``grace_steps``, ``patience``, ``end_on_terminated``), for training and test lifetimes alike.
    positive: non-negative rates (``--positive``): on/off input pairs, rectified-tanh layers,
    agonist/antagonist output pairs (:func:`spikehebb.tasks.positive_task`). A task option
    because it changes the task's interface (encoder, decoder, sizes), which every agent and
    every tool building from this config then sees alike.
    fitness_floor: each training lifetime's fitness is raised to at least this before the mean
    over the training variants (None: not floored). The authors' code until 2020-10-08 returned
    ``max(rew_ep, 0)`` per lifetime (``--fitness-floor 0``): candidates that walk backwards tie
    and the L2 penalty alone orders them. Test and selection lifetimes are never floored.
    """

    name: str = "ant"
    train_variants: tuple[str, ...] | None = None
    max_env_steps: int | None = None
    episode: dict[str, Any] | None = None
    positive: bool = False
    fitness_floor: float | None = None

    def __post_init__(self) -> None:
        check_name("task", "name", self.name)
        task = get_task(self.name)
        if self.train_variants is not None:
            variants = self.train_variants  # a string would be taken for its letters
            if not isinstance(variants, (list, tuple)) or not all(isinstance(v, str) for v in variants):
                raise ValueError(f"task: train_variants must be a list of variant names (None: the task's own), "
                                 f"got {variants!r}")
            object.__setattr__(self, "train_variants", task.check_variants(tuple(variants)))
        if self.episode is not None:
            if not isinstance(self.episode, Mapping) or not all(isinstance(k, str) for k in self.episode):
                raise ValueError(f"task: episode must be a dict of EpisodeRules fields by name (None: the task's "
                                 f"own), got {self.episode!r}")
            object.__setattr__(self, "episode", dict(self.episode))
            if "max_env_steps" in self.episode:
                raise ValueError("task: give the lifetime length as max_env_steps, not inside episode")
        if self.max_env_steps is not None:  # before make(), which would cut it with int()
            _check_field(self, "task", "max_env_steps", integer=True, minimum=1)
        check_bool(self, "task", "positive")
        if self.fitness_floor is not None:
            _check_field(self, "task", "fitness_floor")
        task = self.make()  # bad episode fields fail here, with EpisodeRules' message
        if self.max_env_steps is not None:
            _check_number("task", "max_env_steps", self.max_env_steps, integer=True,
                          minimum=task.episode.burn_in_steps + 1)

    def with_first_input(self, first_input: str) -> "TaskConfig":
        """This config with ``first_input`` as what the network sees at step 0 (``"settled"`` or
        ``"reset"``: :attr:`~spikehebb.tasks.EpisodeRules.first_input`), the other episode fields
        kept. ``"settled"``, the rules' default, is stored as no entry, as in a run made without
        ``--first-input``."""
        episode = {k: v for k, v in (self.episode or {}).items() if k != "first_input"}
        episode.update({"first_input": first_input} if first_input != "settled" else {})
        return dataclasses.replace(self, episode=episode or None)

    def overrides(self, full_length: bool = False) -> dict[str, Any]:
        """The fields this config replaces in the registered task (``full_length``: keep the
        task's own lifetime length)."""
        out: dict[str, Any] = {}
        if self.train_variants is not None:
            out["train_variants"] = tuple(self.train_variants)
        episode = dict(self.episode or {})
        if self.max_env_steps is not None and not full_length:
            episode["max_env_steps"] = int(self.max_env_steps)
        if episode:
            out["episode"] = episode
        return out

    def make(self, full_length: bool = False) -> Task:
        """The task with this config's fields; ``full_length``: the task's own lifetime length
        (test lifetimes), whatever the training length."""
        task = get_task(self.name, **self.overrides(full_length))
        if self.positive:
            from spikehebb.tasks import positive_task

            task = positive_task(task)
        return task


@dataclass(frozen=True)
class StrategyConfig:
    """The evolution strategy (fitness is maximised).

    name: "openai-es" (Najarro & Risi 2020's, the default) or "cma" (CMA-ES through ``cma``);
    popsize: candidates per generation (even for OpenAI-ES, whose candidates come in mirrored
    pairs); lr: OpenAI-ES learning rate, decays x0.995 per generation (0.2 in the paper);
    sigma: noise scale / CMA's sigma0 (0.1 in the paper; OpenAI-ES decays it x0.999); l2_coeff:
    OpenAI-ES (and shared-rule) fitness penalty -l2_coeff * mean(h^2) (0.01, the authors' code);
    CMA-ES runs without a penalty (its record keeps the default, which it refuses to change).

    Shared rules (the genomic bottleneck; a Hebbian agent whose genome is its coefficients alone):
    shared_rules: M rules for the network's N synapses, or rho: synapses per rule (M = N / rho,
    rho must divide N); neither: a rule per synapse (the default). assign: how synapses get their
    rule: "gmm" (Palm et al. 2021's evolved mixture, :class:`~spikehebb.es.SharedRules`),
    "random" (a seeded fixed assignment, only the rules evolve) or "merge" (Pedersen & Risi 2021's
    Evolve & Merge, :class:`~spikehebb.es.EvolveMerge`: per synapse at first, k-means merges
    every ``merge_every`` generations remove ``merge_fraction`` of the rules until M are left).
    noise ("gmm"/"random"): "rule", one draw per rule, so every candidate IS M rules (the
    default: the bottleneck acts in every lifetime and the score costs O(N) per candidate), or
    "synapse", Palm et al.'s code, one draw per synapse around its rule's mean (the search
    distribution is bottlenecked, the candidates are not; O(N M k) per candidate).
    optimizer: "sgd" (the papers') or "adam"; lr_decay: the learning rate's factor per generation
    (0.995, both papers' SGD runs; Palm et al.'s best shared-rule ant, 555 +- 89 at rho = 128,
    used Adam with lr 1.0 decayed x0.5 every 100 generations: ``optimizer="adam", lr=1.0,
    lr_decay=0.5 ** (1 / 100)``, 0.99309). OpenAI-ES and Evolve & Merge stop decaying at lr 0.001
    (the authors' code); Palm et al.'s shared rules ("gmm", "random") decay without a floor.

    Lower-variance search (options; the paper's settings use neither):
    paired_seeds: common random numbers: both members of an OpenAI-ES mirrored pair live with the
    same initial weights and env starts, so their fitness difference measures the noise direction
    and not the luck of the draw. lr_reference_popsize: scale the learning rate with the
    population as ``lr * sqrt(popsize / lr_reference_popsize)``: the update's noise per coefficient
    grows as lr / (sigma * sqrt(popsize)), so this keeps it at what ``lr`` gives at the reference
    population (e.g. 500, the paper's); None: ``lr`` as given.

    init: where the search starts. "normal": N(0, 1) per searched number (the authors' Hebbian
    code, ``distribution='normal'``, and Palm et al.'s ``t.randn`` means; the default for every
    agent); "uniform": U[-1, 1]; "zeros": all zero (evostrat's ``NormalPopulation`` start, which
    Palm et al.'s code overrode); "fan_in":
    static weights as torch's ``nn.Linear`` draws them, U(+-1/sqrt(n_pre)) per layer, where the
    authors' static-weights baseline (enajx/ES) started (static agents only).
    """

    name: str = "openai-es"
    popsize: int = 32
    lr: float = 0.2
    sigma: float = 0.1
    l2_coeff: float = 0.01
    shared_rules: int | None = None
    rho: int | None = None
    assign: str = "gmm"
    noise: str = "rule"
    optimizer: str = "sgd"
    lr_decay: float = 0.995
    merge_every: int = 20
    merge_fraction: float = 0.5
    paired_seeds: bool = False
    lr_reference_popsize: int | None = None
    init: str = "normal"

    def __post_init__(self) -> None:
        from spikehebb.es.optim import OPTIMIZERS

        for name in ("name", "assign", "noise", "optimizer", "init"):
            check_name("strategy", name, getattr(self, name))
        if self.init not in STRATEGY_INITS:
            raise ValueError(f"strategy: init must be one of {STRATEGY_INITS}, got {self.init!r}")

        if self.name not in STRATEGY_NAMES:
            raise ValueError(f"unknown strategy {self.name!r}; expected one of {STRATEGY_NAMES}")
        _check_field(self, "strategy", "popsize", integer=True, minimum=2)
        if self.name == "openai-es" and self.popsize % 2 and not (self.shares_rules and self.assign != "merge"):
            raise ValueError(
                f"popsize must be even for OpenAI-ES, whose candidates come in mirrored pairs, got {self.popsize}"
            )
        _check_field(self, "strategy", "lr", positive=True)
        _check_field(self, "strategy", "sigma", positive=True)
        _check_field(self, "strategy", "l2_coeff", minimum=0)
        if self.shared_rules is not None and self.rho is not None:
            raise ValueError(f"strategy: give shared_rules (M) or rho (synapses per rule), not both "
                             f"(got shared_rules={self.shared_rules}, rho={self.rho})")
        if self.shared_rules is not None:
            _check_field(self, "strategy", "shared_rules", integer=True, minimum=1)
        if self.rho is not None:
            _check_field(self, "strategy", "rho", integer=True, minimum=1)
        if self.assign not in SHARED_ASSIGNMENTS:
            raise ValueError(f"unknown rule assignment {self.assign!r}; expected one of {SHARED_ASSIGNMENTS}")
        if self.noise not in ("rule", "synapse"):
            raise ValueError(f"strategy: noise must be 'rule' or 'synapse', got {self.noise!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"strategy: optimizer must be one of {tuple(OPTIMIZERS)}, got {self.optimizer!r}")
        _check_field(self, "strategy", "merge_every", integer=True, minimum=1)
        _check_field(self, "strategy", "merge_fraction", positive=True)
        if not self.merge_fraction < 1:
            raise ValueError(f"strategy: merge_fraction (the share of rules a merge removes) must be below 1, got {self.merge_fraction}")
        if self.shares_rules and self.name != "openai-es":
            raise ValueError(f"shared rules are searched by their own evolution strategy (assign={self.assign!r}), "
                             f"not by {self.name!r}: drop the strategy or the shared rules")
        _check_field(self, "strategy", "lr_decay", positive=True, maximum=1)
        if self.name == "cma" and self.lr_decay != StrategyConfig.lr_decay:
            raise ValueError(f"strategy: CMA-ES has no learning rate to decay: leave lr_decay at its default (got {self.lr_decay})")
        if self.name == "cma" and self.optimizer != "sgd":
            raise ValueError(f"optimizer={self.optimizer!r} is for OpenAI-ES and shared rules; CMA-ES has its own update")
        if not self.shares_rules and self.assign != "gmm":
            raise ValueError(f"assign={self.assign!r} needs shared rules: give shared_rules (M) or rho")
        check_bool(self, "strategy", "paired_seeds")
        if self.paired_seeds and (self.name != "openai-es" or (self.shares_rules and self.assign != "merge")):
            raise ValueError("paired_seeds pairs the mirrored candidates of OpenAI-ES; this strategy has no pairs")
        if self.lr_reference_popsize is not None:
            _check_field(self, "strategy", "lr_reference_popsize", integer=True, minimum=1)
        if self.shares_rules and self.init != "normal":
            raise ValueError(f"strategy: init={self.init!r} sets where a per-synapse search starts; shared rules start "
                             "their rule means N(0, 1) (Palm et al.'s GMM population)")

    @property
    def effective_lr(self) -> float:
        """The learning rate the strategy starts with (``lr``, scaled with the population when
        ``lr_reference_popsize`` is set)."""
        if self.lr_reference_popsize is None:
            return self.lr
        return self.lr * math.sqrt(self.popsize / self.lr_reference_popsize)

    @property
    def shares_rules(self) -> bool:
        """Whether the network's synapses share M rules (shared_rules or rho given)."""
        return self.shared_rules is not None or self.rho is not None

    @property
    def label(self) -> str:
        """A short name for run files and tables: ``openai-es``, ``cma``, ``gmm-rho128``, ``merge-M384``."""
        if not self.shares_rules:
            return self.name
        return f"{self.assign}-" + (f"rho{self.rho}" if self.rho is not None else f"M{self.shared_rules}")

    def n_rules(self, n_synapses: int) -> int | None:
        """M for a network of ``n_synapses`` (None without shared rules); a one-line error when M
        exceeds the synapse count or rho does not divide it."""
        if not self.shares_rules:
            return None
        if self.rho is not None:
            if self.rho > n_synapses or n_synapses % self.rho:
                divisors = [d for d in (8, 16, 32, 64, 128, 256, 512) if n_synapses % d == 0]
                raise ValueError(
                    f"rho={self.rho} must divide the network's {n_synapses:,} synapses (M = N / rho rules); "
                    f"divisors: {', '.join(map(str, divisors)) or 'none of 8..512'}; or give shared_rules M instead"
                )
            return n_synapses // self.rho
        if self.shared_rules > n_synapses:
            raise ValueError(f"shared_rules={self.shared_rules:,} is more rules than the network's {n_synapses:,} synapses")
        return self.shared_rules

    def make(self, n_params: int, seed: int, n_fields: int = 1, start=None):
        """The strategy for a searched vector of ``n_params``; with shared rules that vector is N
        synapses of ``n_fields`` (k) coefficients each. ``start``: the initial vector, for
        ``init="fan_in"`` (which needs the genome's layer shapes: :meth:`TrainConfig.make_strategy`)."""
        from spikehebb.es import get_strategy

        if start is None and self.init == "fan_in":
            raise ValueError("init='fan_in' needs the genome's layer shapes: build the strategy with TrainConfig.make_strategy")
        init = start if start is not None else self.init

        if self.shares_rules:
            n_rules = self.n_rules(n_params // n_fields)
            if self.assign == "merge":
                return get_strategy(
                    "merge", n_params=n_params, popsize=self.popsize, seed=seed, n_fields=n_fields,
                    final_rules=n_rules, merge_every=self.merge_every, merge_fraction=self.merge_fraction,
                    lr=self.effective_lr, lr_decay=self.lr_decay, sigma=self.sigma, l2_coeff=self.l2_coeff, optimizer=self.optimizer,
                )
            return get_strategy(
                "gmm", n_params=n_params, popsize=self.popsize, seed=seed, n_fields=n_fields, n_rules=n_rules,
                assign=self.assign, noise=self.noise, lr=self.effective_lr, lr_decay=self.lr_decay, sigma=self.sigma,
                l2_coeff=self.l2_coeff,
                optimizer=self.optimizer,
            )
        if self.name == "openai-es":
            return get_strategy(
                "openai-es", n_params=n_params, popsize=self.popsize, seed=seed,
                lr=self.effective_lr, lr_decay=self.lr_decay, sigma=self.sigma, l2_coeff=self.l2_coeff,
                optimizer=self.optimizer, init=init,
            )
        return get_strategy("cma", n_params=n_params, popsize=self.popsize, seed=seed, sigma0=self.sigma, init=init)


ENV_MEMORY_SHARE = 0.6
"""Of the memory available when a run starts, the share its workers' envs may take by default (the
rest: the networks, the strategy, other programs)."""


def available_memory_mb() -> float | None:
    """Memory available to new programs (``MemAvailable`` of ``/proc/meminfo``) in MB; None where
    there is no such file (not Linux)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def megabytes(mb: float) -> str:
    """``mb`` for people: "250 MB", "8.2 GB"."""
    return f"{mb:.0f} MB" if mb < 1024 else f"{mb / 1024:.1f} GB"


#: The most slots of a worker's default batch.
MAX_SLOTS = 64

#: Default seconds a busy worker may go without finishing a lifetime (and a new one without
#: answering that it is built) before it is taken for hung (:class:`EvaluatorConfig`).
STALL_TIMEOUT_S = 1800.0


def serial_ignores(fields: Mapping[str, Any]) -> list[str]:
    """The names of the :class:`EvaluatorConfig` fields (given by name) the serial evaluator
    would ignore: more than one worker, a timeout other than the default."""
    ignored = ["workers"] if fields.get("workers") not in (None, 1) else []
    return ignored + [name for name in ("stall_timeout", "build_timeout")
                      if name in fields and fields[name] != STALL_TIMEOUT_S]


@dataclass(frozen=True)
class EvaluatorConfig:
    """Where lifetimes run.

    name: "serial" (this process), "processes" (persistent worker processes, the default) or
    "ray"; workers: processes or Ray actors (None: one per core); ray_address: the Ray cluster
    to join (None: a local instance); batch_size: slots of each worker's lockstep batch (None:
    popsize / workers in equal batches of at most 64, :meth:`batch`).
    stall_timeout: seconds a busy worker process or Ray actor may go without finishing a lifetime
    before it is taken for hung, stopped and replaced, its work run again (None: never);
    build_timeout: seconds a new one may take to be built (Brian2's first compile included; on
    Ray, waiting for a free CPU too) before it is taken for hung likewise (None: never). Both
    30 minutes by default (:data:`STALL_TIMEOUT_S`), far above what a healthy worker takes on a
    loaded machine. The serial evaluator (its worker is the calling process) takes neither, nor more
    than one worker: other values are refused, not ignored. Like
    the rest of this section they change where and how lifetimes run, never their numbers, and
    a resumed run may change them.
    """

    name: str = "processes"
    workers: int | None = None
    ray_address: str | None = None
    batch_size: int | None = None
    stall_timeout: float | None = STALL_TIMEOUT_S
    build_timeout: float | None = STALL_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.name not in EVALUATOR_NAMES:
            raise ValueError(f"unknown evaluator {self.name!r}; expected one of {EVALUATOR_NAMES}")
        if self.workers is not None:
            _check_field(self, "evaluator", "workers", integer=True, minimum=1)
        if self.batch_size is not None:
            _check_field(self, "evaluator", "batch_size", integer=True, minimum=1)
        if self.ray_address is not None and self.name != "ray":
            raise ValueError(f"ray_address={self.ray_address!r} is for the ray evaluator only, not {self.name!r}")
        for name in ("stall_timeout", "build_timeout"):
            object.__setattr__(self, name, check_timeout(name, getattr(self, name), owner="evaluator"))
        if self.name == "serial" and (ignored := serial_ignores(self.__dict__)):
            said = ", ".join(f"{name}={getattr(self, name)}" for name in ignored)
            raise ValueError(f"evaluator: the serial one runs every lifetime in the calling process, on one core and "
                             f"with nothing to stop it; it would ignore {said}: leave "
                             f"{'it' if len(ignored) == 1 else 'them'} out or use 'processes'")

    def n_workers(self, popsize: int | None = None) -> int:
        """Workers to start: serial 1; otherwise ``workers`` or one per core, never more than
        ``popsize`` (a worker without candidates would only cost memory)."""
        if self.name == "serial":
            return 1
        n = self.workers or os.cpu_count() or 1
        return min(n, popsize) if popsize else n

    def batch(self, popsize: int, slot_mb: float = 0.0, available_mb: float | None = None) -> int:
        """Slots per worker batch: ``batch_size``, else a worker's share of the population in the
        fewest equal batches of at most 64 (one batch where it fits) and, given the memory of one
        slot's envs (``slot_mb``, MB) and the memory available (MB), where all workers' envs fit
        in :data:`ENV_MEMORY_SHARE` of it. A batch's size changes where lifetimes run, not their
        numbers. Equal batches: lifetimes of equal length (an ant that walks to the step limit)
        end their rounds together, and the last round is shared by every worker (population 200
        on 2 workers: 50 slots, 4 full rounds each, where 64 left a round of 16 to one worker)."""
        if self.batch_size:
            return self.batch_size
        share = math.ceil(popsize / max(1, self.n_workers(popsize)))
        slots = max(1, math.ceil(share / math.ceil(share / MAX_SLOTS)))
        fits = self.slots_that_fit(popsize, slot_mb, available_mb)
        return slots if fits is None else max(1, min(slots, fits))

    def slots_that_fit(self, popsize: int, slot_mb: float, available_mb: float | None) -> int | None:
        """The most slots per worker whose envs, over all workers, take at most
        :data:`ENV_MEMORY_SHARE` of ``available_mb`` (None when either memory is unknown)."""
        if slot_mb <= 0 or available_mb is None:
            return None
        return int(ENV_MEMORY_SHARE * available_mb / (max(1, self.n_workers(popsize)) * slot_mb))

    def check_memory(self, popsize: int, slot_mb: float, available_mb: float | None, what: str) -> None:
        """Refuse (one line) a batch whose envs, over all workers, need more than the available
        memory: ``what`` names one slot's envs for the message."""
        fits = self.slots_that_fit(popsize, slot_mb, available_mb)
        if fits is None:
            return
        n, slots = max(1, self.n_workers(popsize)), self.batch(popsize, slot_mb, available_mb)
        need = n * slots * slot_mb
        if need > available_mb:
            advice = f"--batch-size {fits} or fewer" if fits >= 1 else "fewer"
            raise ValueError(
                f"the run's envs would take about {megabytes(need)} ({n} worker{'s' * (n > 1)} x {slots} "
                f"slot{'s' * (slots > 1)} x {what}) and {megabytes(available_mb)} is available; use {advice} --workers"
            )


def slot_memory(task: Task) -> tuple[float, str]:
    """MB of one worker slot's envs (one per training variant of ``task``) and the words for it."""
    per_env, n = task.env_memory_mb, len(task.train_variants)
    return n * per_env, f"{n} {'bodies' if n > 1 else 'body'} x {per_env:.0f} MB per {task.name} env"


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process builds (picklable): the task and agent configs as they are, its
    batch size and the run seed."""

    task: TaskConfig = field(default_factory=TaskConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    batch_size: int = 32
    seed: int = 0
    paired_seeds: bool = False
    """Both members of a mirrored pair (indices 2k, 2k + 1) live with the same seeds."""

    def make_task(self, full_length: bool = False) -> Task:
        return self.task.make(full_length)

    def genome(self):
        """The :class:`~spikehebb.genome.GenomeMap` of this worker's candidates."""
        from spikehebb.agents import genome_parts
        from spikehebb.genome import GenomeMap

        return GenomeMap.of(genome_parts(self.agent, self.task.make()))


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (defaults: a short run of a few minutes)."""

    task: TaskConfig = field(default_factory=TaskConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    generations: int = 20
    seed: int = 0
    runs_dir: str = "runs"
    run_name: str | None = None
    """File name (without .h5) of the run; None: task_label_strategy_sSEED_TIME."""
    snapshot_every: int = 10
    """Keep the search mean after every k-th generation in the run file (0: none), to choose the
    final rule from (``spikehebb select``)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form notes stored with the config."""

    def __post_init__(self) -> None:
        for name, kind in (("task", TaskConfig), ("agent", AgentConfig), ("strategy", StrategyConfig),
                           ("evaluator", EvaluatorConfig)):
            if not isinstance(getattr(self, name), kind):  # "ant" or a dict would fail later, in Python's words
                article = "an" if kind.__name__[0] in "AEIOU" else "a"
                raise ValueError(f"train: {name} must be {article} {kind.__name__} (TrainConfig.from_dict reads the "
                                 f"dict form of a run file), got {getattr(self, name)!r}")
        _check_field(self, "train", "generations", integer=True, minimum=1)
        _check_field(self, "train", "snapshot_every", integer=True, minimum=0)
        _check_field(self, "train", "seed", integer=True, minimum=0, maximum=MAX_SEED)
        runs_dir = self.runs_dir
        if not isinstance(runs_dir, (str, os.PathLike)) or not isinstance(os.fspath(runs_dir), str) or not os.fspath(runs_dir):
            raise ValueError(f"train: runs_dir must be a folder's path (a non-empty string or path), got {runs_dir!r}")
        if self.run_name is not None:
            check_run_name(self.run_name)
        from spikehebb.biology import check_agent_task

        check_agent_task(self.agent, self.task.make())
        if self.strategy.shares_rules:
            self.shared_rule_fields()  # a run that cannot share rules fails here, before a file is written
        if self.strategy.init == "fan_in":
            self.fan_in_layers()  # likewise

    def shared_rule_fields(self) -> int:
        """k, the coefficients of one shared rule (the agent's rule's fields), after checking that
        this run can share rules: a Hebbian agent whose searched genome is its coefficients alone,
        and M (or rho) that fits its synapse count."""
        from spikehebb.agents import AGENTS, genome_parts
        from spikehebb.rules import get_rule

        what = f"shared rules ({self.strategy.label})"
        if not AGENTS[self.agent.kind].takes_rule:
            raise ValueError(f"{what} need an agent with a plasticity rule, not a {self.agent.kind} agent")
        searched = [p for p in genome_parts(self.agent, self.task.make()) if p.searched]
        others = [f"{p.name} ({p.size:,} values)" for p in searched if p.name != "coefficients"]
        if others:
            raise ValueError(f"{what} search the rule coefficients alone; this {self.task.name} run also evolves "
                             f"{', '.join(others)}")
        if self.agent.coefficient_rows != "per_synapse":
            raise ValueError(f"{what} assign a rule to each synapse; --coefficient-rows {self.agent.coefficient_rows} "
                             "makes synapses read other synapses' rows: drop one of the two")
        k = len(get_rule(self.agent.network_rule).fields)  # the three-factor rule has one more field
        self.strategy.n_rules(searched[0].size // k)
        return k

    def make_strategy(self, n_params: int):
        """The run's strategy for a searched vector of ``n_params`` (the run's genome map)."""
        k = self.shared_rule_fields() if self.strategy.shares_rules else 1
        start = None
        if self.strategy.init == "fan_in":
            from spikehebb.es.open_es import fan_in_mean

            start = fan_in_mean(self.fan_in_layers(), self.seed)
        return self.strategy.make(n_params, self.seed, k, start)

    def fan_in_layers(self) -> tuple[tuple[int, ...], ...]:
        """The weight layers ``init="fan_in"`` draws, after checking that the run searches static
        weights alone (one-line errors otherwise)."""
        from spikehebb.agents import genome_parts

        if self.agent.kind != "static":
            raise ValueError(f"init='fan_in' starts static weights where torch's nn.Linear would (the authors' static "
                             f"baseline); a {self.agent.kind} agent searches other numbers: use 'normal' or 'uniform'")
        searched = [p for p in genome_parts(self.agent, self.task.make()) if p.searched]
        others = [f"{p.name} ({p.size:,} values)" for p in searched if p.name != "weights"]
        if others:
            raise ValueError(f"init='fan_in' draws weight matrices alone; this {self.task.name} run also evolves "
                             f"{', '.join(others)}")
        return searched[0].shapes

    def worker_spec(self, available_mb: float | None = None) -> WorkerSpec:
        """What each worker builds. ``available_mb``: the memory the workers may use (MB); with it
        the default batch fits their envs (:meth:`EvaluatorConfig.batch`) and a given
        ``batch_size`` that cannot fit is refused."""
        popsize, (slot_mb, what) = self.strategy.popsize, slot_memory(self.task.make())
        self.evaluator.check_memory(popsize, slot_mb, available_mb, what)
        return WorkerSpec(self.task, self.agent, self.evaluator.batch(popsize, slot_mb, available_mb), self.seed,
                          self.strategy.paired_seeds)

    @property
    def n_workers(self) -> int:
        return self.evaluator.n_workers(self.strategy.popsize)

    def check_new_run(self) -> None:
        """Settings a NEW run refuses (one-line ValueError) that a stored config may hold from before
        they were refused (it still opens, and resumes as it ran): a training variant named twice
        (lifetimes are seeded by the variant's position, so a repeat weighs that body double), and
        an l2_coeff for CMA-ES, which runs without the penalty whatever it says; a lif agent whose
        refractory period does not divide the env step's substeps (its outputs would leave [-1, 1])."""
        bodies = self.task.train_variants or ()
        twice = repeated(bodies)
        if twice:
            raise ValueError(f"task: train_variants names {', '.join(twice)} more than once; give each training "
                             f"variant once (got {' '.join(bodies)})")
        if self.strategy.name == "cma" and self.strategy.l2_coeff != StrategyConfig.l2_coeff:
            raise ValueError(f"strategy: l2_coeff is the fitness penalty of OpenAI-ES and shared rules; CMA-ES runs "
                             f"without one: leave it at its default (got {self.strategy.l2_coeff})")
        period = self.task.make().control_period if self.agent.kind == "lif" else None
        if period is not None:  # (a task without one: the agent says so when it is built)
            from spikehebb.network.spiking import LIFParams

            LIFParams.of(self.agent.options).check_outputs_in_range(period)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def default_path(self) -> Path:
        name = self.run_name or "_".join(
            [self.task.name, self.agent.label, self.strategy.label, f"s{self.seed}",
             datetime.datetime.now().strftime("%Y%m%d-%H%M%S")]
        )
        return Path(self.runs_dir) / f"{name}.h5"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """The config from its ``to_dict`` form, or from the flat form of older run files."""
        d = dict(d)
        flat_only = _FLAT_FIELDS - {f.name for f in dataclasses.fields(cls)}
        if isinstance(d.get("task"), str) or set(d) & flat_only:
            d = _from_flat(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config fields {sorted(unknown)}; known: {sorted(known)}")
        parts = {
            "task": TaskConfig, "agent": AgentConfig, "strategy": StrategyConfig, "evaluator": EvaluatorConfig,
        }
        for name, kind in parts.items():
            if name in d:
                sub = dict(d[name])
                names = {f.name for f in dataclasses.fields(kind)}
                if set(sub) - names:
                    raise ValueError(f"unknown {name} config fields {sorted(set(sub) - names)}; known: {sorted(names)}")
                if sub.get("train_variants") is not None:
                    sub["train_variants"] = tuple(sub["train_variants"])
                if kind is EvaluatorConfig and sub.get("name") == "serial":  # written before serial refused them
                    for ignored in serial_ignores(sub):
                        sub.pop(ignored)
                d[name] = kind(**sub)
        return cls(**d)

    def changed(self, other: "TrainConfig") -> dict[str, tuple[Any, Any]]:
        """``{"section.field": (mine, other's)}`` for every setting that differs (flattened, sorted),
        compared as the run file stores them (:func:`_as_stored`): a tuple and the list a stored
        config gives back, or a set and its sorted list, are the same setting."""
        mine, theirs = _flatten(_as_stored(self)), _flatten(_as_stored(other))
        return {k: (mine.get(k), theirs.get(k)) for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)}

    def differences(self, other: "TrainConfig") -> list[str]:
        """``"section.field: mine -> other's"`` for every setting that differs (flattened)."""
        return [f"{k}: {a!r} -> {b!r}" for k, (a, b) in self.changed(other).items()]


def _as_stored(config: TrainConfig) -> dict[str, Any]:
    """``config.to_dict()`` as the run file's JSON gives it back (tuples and sets as lists, NumPy
    numbers and paths plain): two configs are the same run when these are equal."""
    from spikehebb.store.runfile import config_to_json  # the store imports the configs lazily too

    return json.loads(config_to_json(config))


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "extra":
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out


#: Fields of the flat config of run files written before the configs were nested.
_FLAT_FIELDS = {
    "task", "rule", "static", "coevolve", "strategy", "popsize", "generations", "seed", "lr", "sigma",
    "l2_coeff", "train_variants", "max_env_steps", "evaluator", "workers", "ray_address", "batch_size",
    "backend", "dtype", "runs_dir", "run_name", "extra", "snapshot_every",
}


def _from_flat(d: dict[str, Any]) -> dict[str, Any]:
    """The nested form of an older run file's flat config (same run, same numbers)."""
    unknown = set(d) - _FLAT_FIELDS
    if unknown:
        raise ValueError(f"unknown config fields {sorted(unknown)}; known: {sorted(_FLAT_FIELDS)}")
    static = bool(d.get("static", False))
    return {
        "task": {"name": d.get("task", "ant"), "train_variants": d.get("train_variants"),
                 "max_env_steps": d.get("max_env_steps")},
        "agent": {"kind": "static" if static else "hebbian", "rule": None if static else d.get("rule", "ABCD_lr"),
                  "evolve_initial_weights": bool(d.get("coevolve", False)),
                  "backend": d.get("backend", "brian2"), "dtype": d.get("dtype", "float32")},
        "strategy": {"name": d.get("strategy", "openai-es"), "popsize": d.get("popsize", 32),
                     "lr": d.get("lr", 0.2), "sigma": d.get("sigma", 0.1), "l2_coeff": d.get("l2_coeff", 0.01)},
        "evaluator": {"name": d.get("evaluator", "processes"), "workers": d.get("workers"),
                      "ray_address": d.get("ray_address"), "batch_size": d.get("batch_size")},
        **{k: d[k] for k in ("generations", "seed", "runs_dir", "run_name", "extra", "snapshot_every") if k in d},
    }
