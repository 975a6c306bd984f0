"""Training: the ask -> evaluate -> tell -> store loop, with resume.

:class:`TrainConfig` is the one record of a run (saved as JSON in the run file); :func:`train`
runs it: the strategy asks for candidates (keys), the evaluator runs their lifetimes, the
strategy is told the fitness and the run file gets the generation and a checkpoint. A killed run
continues with ``train(resume=path)``; because candidates, initial weights and env starts all
derive from the run seed, the continued run equals an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spikehebb.es import get_strategy
from spikehebb.evaluate import EVALUATORS, WorkerSpec, make_evaluator, worker_batch_size
from spikehebb.rules import get_rule
from spikehebb.store import RunStore
from spikehebb.tasks import get_task

STRATEGY_NAMES = ("openai-es", "cma")


@dataclass
class TrainConfig:
    """Everything that defines a training run (defaults: a short run of a few minutes)."""

    task: str = "ant"
    """Registered task name (``spikehebb.tasks.TASKS``)."""
    rule: str = "ABCD_lr"
    """Plasticity rule (``spikehebb.rules.RULES``); ignored when ``static``."""
    static: bool = False
    """Evolve the weights of a static network instead of a rule (the paper's baseline)."""
    coevolve: bool = False
    """Evolve the initial weights together with the rule (Najarro & Risi 2020, appendix 6.4)."""
    strategy: str = "openai-es"
    popsize: int = 32
    generations: int = 20
    seed: int = 0
    lr: float = 0.2
    """OpenAI-ES learning rate (Najarro & Risi 2020); decays x0.995 per generation."""
    sigma: float = 0.1
    """Noise scale / CMA's sigma0 (Najarro & Risi 2020); OpenAI-ES decays it x0.999."""
    l2_coeff: float = 0.01
    """OpenAI-ES fitness penalty -l2_coeff * mean(h^2) (Najarro & Risi 2020 code)."""
    train_variants: tuple[str, ...] | None = None
    """Variants whose mean fitness is the training fitness; None: the task's (ant: default, damage_right)."""
    max_env_steps: int | None = None
    """Env steps per lifetime, burn-in included; None: the task's (ant: 1,000)."""
    evaluator: str = "processes"
    workers: int | None = None
    """Worker processes / Ray actors; None: one per core."""
    ray_address: str | None = None
    batch_size: int | None = None
    """Members per lockstep batch in a worker; None: popsize / workers, at most 64."""
    backend: str = "brian2"
    dtype: str = "float32"
    runs_dir: str = "runs"
    run_name: str | None = None
    """File name (without .h5) of the run; None: task_rule_strategy_sSEED_TIME."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form notes stored with the config."""

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGY_NAMES:
            raise ValueError(f"unknown strategy {self.strategy!r}; expected one of {STRATEGY_NAMES}")
        if self.evaluator not in EVALUATORS:
            raise ValueError(f"unknown evaluator {self.evaluator!r}; expected one of {tuple(EVALUATORS)}")
        if self.static and self.coevolve:
            raise ValueError("static and coevolve exclude each other: a static network has no rule")
        if self.popsize < 2 or (self.strategy == "openai-es" and self.popsize % 2):
            raise ValueError(
                f"popsize must be even for OpenAI-ES's antithetic (mirrored) sampling, got {self.popsize}"
            )
        if self.generations < 1:
            raise ValueError(f"generations must be at least 1, got {self.generations}")
        task = get_task(self.task)
        if self.train_variants is not None:
            self.train_variants = task.check_variants(tuple(self.train_variants))
        if not self.static:
            get_rule(self.rule)

    @property
    def mode(self) -> str:
        return "static" if self.static else "coevolve" if self.coevolve else "hebbian"

    def task_overrides(self) -> dict[str, Any]:
        overrides: dict[str, Any] = {}
        if self.train_variants is not None:
            overrides["train_variants"] = tuple(self.train_variants)
        if self.max_env_steps is not None:
            overrides["rules"] = {"max_env_steps": int(self.max_env_steps)}
        return overrides

    def worker_spec(self) -> WorkerSpec:
        workers = self.n_workers
        batch = self.batch_size or worker_batch_size(self.popsize, workers)
        return WorkerSpec(
            task=self.task, task_overrides=self.task_overrides(), rule=None if self.static else self.rule,
            mode=self.mode, batch_size=batch, backend=self.backend, dtype=self.dtype, seed=self.seed,
        )

    @property
    def n_workers(self) -> int:
        return 1 if self.evaluator == "serial" else (self.workers or os.cpu_count() or 1)

    def make_strategy(self, n_params: int):
        if self.strategy == "openai-es":
            return get_strategy(
                "openai-es", n_params=n_params, popsize=self.popsize, seed=self.seed,
                lr=self.lr, sigma=self.sigma, l2_coeff=self.l2_coeff,
            )
        return get_strategy("cma", n_params=n_params, popsize=self.popsize, seed=self.seed, sigma0=self.sigma)

    def default_path(self) -> Path:
        name = self.run_name or "_".join(
            [self.task, "static" if self.static else self.rule, self.strategy, f"s{self.seed}",
             datetime.datetime.now().strftime("%Y%m%d-%H%M%S")]
        )
        return Path(self.runs_dir) / f"{name}.h5"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config fields {sorted(unknown)}; known: {sorted(known)}")
        d = dict(d)
        if d.get("train_variants") is not None:
            d["train_variants"] = tuple(d["train_variants"])
        return cls(**d)


def train(
    config: TrainConfig | None = None,
    *,
    resume: str | Path | None = None,
    progress: bool = True,
    stop_after: int | None = None,
) -> Path:
    """Run (or continue) a training run; returns the run file's path.

    config: a new run's config (ignored with ``resume``, which reads it from the file).
    resume: path of a run file to continue from its last completed generation.
    stop_after: end after this many generations in this call (tests, time-boxed sessions).
    """
    store = RunStore.open(resume, "a") if resume is not None else None
    try:
        config = TrainConfig.from_dict(store.config) if store is not None else config or TrainConfig()
        spec = config.worker_spec()
        task = spec.make_task()  # a bad episode setting fails here, before a file is written
        layout = spec.layout(task)
    except BaseException:
        if store is not None:
            store.close()
        raise
    if store is None:
        path = config.default_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        store = RunStore.create(
            path, config.to_dict(), sizes=task.sizes, rule=spec.rule, popsize=config.popsize, layout=layout,
        )
    with store:
        strategy = config.make_strategy(layout.n_params)
        checkpoint = store.load_checkpoint()
        if checkpoint is not None:
            strategy.load_state_dict(checkpoint.strategy_state)
        start = store.generations_completed
        end = config.generations if stop_after is None else min(config.generations, start + stop_after)
        if start >= end:
            return store.path
        with make_evaluator(config.evaluator, spec, workers=config.n_workers, address=config.ray_address) as evaluator:
            bar = _progress(range(start, end), config, start, progress)
            for generation in bar:
                t0 = time.perf_counter()
                keys = strategy.ask()
                fitness, env_steps = evaluator.evaluate(strategy.sampler(), keys)
                lr = getattr(strategy, "lr", None)
                stats = strategy.tell(fitness)
                wall = time.perf_counter() - t0
                store.append_generation(
                    generation, fitness_raw=stats["raw"], fitness_shaped=stats["shaped"],
                    sigma=stats["sigma"], lr=lr, wall_time_s=wall, env_steps=env_steps,
                    mean=strategy.mean, best_params=strategy.best_params,
                    best_fitness=strategy.best_fitness, strategy_state=strategy.state_dict(),
                )
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(
                        best=f"{strategy.best_fitness:.1f}", mean=f"{np.nanmean(stats['raw']):.1f}",
                        max=f"{np.nanmax(stats['raw']):.1f}", steps_s=f"{env_steps / wall:.0f}",
                    )
        return store.path


def _progress(generations, config: TrainConfig, start: int, enabled: bool):
    if not enabled:
        return generations
    from tqdm.auto import tqdm

    return tqdm(
        generations, total=config.generations, initial=start, unit="gen",
        desc=f"{config.task} {'static' if config.static else config.rule} {config.strategy}",
    )
