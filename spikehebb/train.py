"""Training: the ask -> evaluate -> tell -> store loop, with resume.

:class:`TrainConfig` is the one record of a run (saved as JSON in the run file); :func:`train`
runs it: the strategy asks for candidates (keys), the evaluator runs their lifetimes, the
strategy is told the fitness and the run file gets the generation and a checkpoint. A killed run
continues with ``train(resume=path)``; because candidates, initial weights and env starts all
derive from the run seed, the continued run equals an uninterrupted one.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from spikehebb.config import (
    AgentConfig,
    EvaluatorConfig,
    StrategyConfig,
    TaskConfig,
    TrainConfig,
    WorkerSpec,
)
from spikehebb.evaluators import make_evaluator
from spikehebb.genome import GenomeMap
from spikehebb.store import RunStore

__all__ = ["AgentConfig", "EvaluatorConfig", "StrategyConfig", "TaskConfig", "TrainConfig", "WorkerSpec",
           "train", "run_genome"]


def run_genome(config: TrainConfig) -> GenomeMap:
    """The genome map of a run: the task's parts, then the agent's (searched parts only)."""
    from spikehebb.agents import genome_parts

    return GenomeMap.of(genome_parts(config.agent, config.task.make()))


def train(
    config: TrainConfig | None = None,
    *,
    resume: str | Path | None = None,
    progress: bool = True,
    stop_after: int | None = None,
) -> Path:
    """Run (or continue) a training run; returns the run file's path.

    config: a new run's config; with ``resume``, None (the file's config) or the file's config
        with only ``generations`` changed (raise it to extend a finished run); any other
        difference is refused with the list of differences.
    resume: path of a run file to continue from its last completed generation.
    stop_after: end after this many generations in this call (tests, time-boxed sessions).
    """
    store = RunStore.open(resume, "a") if resume is not None else None
    try:
        if store is not None:
            stored = TrainConfig.from_dict(store.config)
            if config is not None:
                # where the file lies and what it is called are not settings of the run (a study
                # may take over a run file made by another under its own name)
                free = ("generations:", "evaluator.", "runs_dir:", "run_name:")
                differences = [d for d in stored.differences(config) if not d.startswith(free)]
                if differences:
                    raise ValueError(
                        f"{resume} was started with other settings and a resumed run keeps them; drop the "
                        f"flags that change {'; '.join(differences)} (only --generations, where lifetimes "
                        f"run and the run's name may change)"
                    )
                stored = stored.replace(generations=config.generations, evaluator=config.evaluator)
            config = stored
        config = config or TrainConfig()
        spec = config.worker_spec()
        task = spec.make_task()  # a bad episode setting fails here, before a file is written
        genome = run_genome(config)
    except BaseException:
        if store is not None:
            store.close()
        raise
    if store is None:
        path = config.default_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        store = RunStore.create(
            path, config.to_dict(), sizes=task.sizes, rule=config.agent.network_rule, popsize=config.strategy.popsize,
            layout=genome, snapshot_every=config.snapshot_every,
        )
    with store:
        strategy = config.make_strategy(genome.n_params)
        checkpoint = store.load_checkpoint()
        if checkpoint is not None:
            strategy.load_state_dict(checkpoint.strategy_state)
        start = store.generations_completed
        end = config.generations if stop_after is None else min(config.generations, start + stop_after)
        if start >= end:
            return store.path
        try:
            _run_generations(config, spec, store, strategy, start, end, progress)
        except KeyboardInterrupt:
            # Ctrl-C may land after a generation's commit and before the store counted it: ask the file.
            raise TrainingInterrupted(store.path, store.generations_on_disk()) from None
        return store.path


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: the run file holds every generation finished before it."""

    def __init__(self, path: Path, generations: int):
        super().__init__(
            f"interrupted: {path} holds {generations} finished generation(s); continue with --resume {path}"
        )
        self.path, self.generations = path, generations


def _run_generations(config: TrainConfig, spec: WorkerSpec, store: RunStore, strategy, start: int, end: int,
                     progress: bool) -> None:
    """Generations ``start`` to ``end - 1``: ask, evaluate, tell, store each."""
    ev = config.evaluator
    with make_evaluator(ev.name, spec, workers=config.n_workers, address=ev.ray_address) as evaluator:
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
                rule_table=strategy.rule_table() if hasattr(strategy, "rule_table") else None,
            )
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(
                    best=f"{strategy.best_fitness:.1f}", mean=f"{np.nanmean(stats['raw']):.1f}",
                    max=f"{np.nanmax(stats['raw']):.1f}", steps_s=f"{env_steps / wall:.0f}",
                )


def _progress(generations, config: TrainConfig, start: int, enabled: bool):
    if not enabled:
        return generations
    from tqdm.auto import tqdm

    return tqdm(
        generations, total=config.generations, initial=start, unit="gen",
        desc=f"{config.task.name} {config.agent.label} {config.strategy.label}",
    )
