"""Training: the ask -> evaluate -> tell -> store loop, with resume.

:class:`TrainConfig` is the one record of a run (saved as JSON in the run file); :func:`train`
runs it: the strategy asks for candidates (keys), the evaluator runs their lifetimes, the
strategy is told the fitness and the run file gets the generation and a checkpoint. A killed run
continues with ``train(resume=path)``; because candidates, initial weights and env starts all
derive from the run seed, the continued run equals an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shlex
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from spikehebb.config import (
    AgentConfig,
    EvaluatorConfig,
    StrategyConfig,
    TaskConfig,
    TrainConfig,
    WorkerSpec,
    available_memory_mb,
    megabytes,
    slot_memory,
)
from spikehebb.evaluators import make_evaluator
from spikehebb.genome import GenomeMap
from spikehebb.stopping import StopSignals, stopped_by
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
    started: Callable[[Path], None] | None = None,
) -> Path:
    """Run (or continue) a training run; returns the run file's path.

    Ctrl-C and SIGTERM (``kill``, a scheduler's notice) stop it the same way: the workers are
    closed and :class:`TrainingInterrupted` says how many generations the file holds and how to
    resume; the generation in flight is lost. SIGUSR1 (:data:`~spikehebb.stopping.STOP_AFTER_GENERATION`; e.g.
    SLURM's ``--signal=USR1@300``) lets the generation in flight finish and be stored first, then
    stops the same way.

    config: a new run's config; with ``resume``, None (the file's config) or the file's config
        with only ``generations`` changed (raise it to extend a finished run: the file records
        the new length); any other difference is refused with the list of differences.
    resume: path of a run file to continue from its last completed generation.
    stop_after: end after this many generations in this call (tests, time-boxed sessions).
    progress: show progress on stderr: a bar on a terminal, one line per generation otherwise
        (``nohup``, a log file); False shows nothing.
    started: called with the run file's path once the run is under way: every check passed, the
        file created (or opened to resume) and the workers started, before the first generation
        of this call (the command line says its notes and the file's name there); not called
        when there is no generation to run. With ``progress``, the note on a default batch
        shrunk to fit the memory available is said there too, just before it.
    """
    if resume is not None:  # a model is refused before its folder gets a writer's lock file (models/ may be read-only)
        RunStore.open(resume).close()  # reading takes no lock: a missing, foreign or damaged file says so first
        _refuse_a_model(resume)
    store = RunStore.open(resume, "a") if resume is not None else None
    try:
        if store is not None:
            stored = store.run_config()
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
                done = store.generations_completed
                if config.generations < done:
                    raise ValueError(f"{resume} holds {done} generation(s) and a run is not shortened: ask for "
                                     f"generations >= {done}, not {config.generations}")
                stored = stored.replace(generations=config.generations, evaluator=config.evaluator)
            config = stored
        config = config or TrainConfig()
        if store is None:
            config.check_new_run()
        if config.evaluator.name == "ray" and importlib.util.find_spec("ray") is None:
            raise ValueError('the "ray" evaluator needs Ray: pip install "spikehebb[ray]" (or drop --ray / --evaluator ray)')
        # a remote Ray cluster's memory is not this machine's
        local = config.evaluator.name != "ray" or config.evaluator.ray_address is None
        available = available_memory_mb() if local else None
        spec = config.worker_spec(available)
        task = spec.make_task()  # a bad episode setting fails here, before a file is written
        genome = run_genome(config)
        strategy = config.make_strategy(genome.n_params)  # so is a strategy that cannot be built
        if store is not None and config.generations > store.generations_completed:
            store.set_target(config.generations)  # an extended run records its new length, once it is known to run
            store.record_rule_declaration()  # an older file's, its coefficient names checked (run_config)
    except BaseException:
        if store is not None:
            store.close()
        raise
    unshrunk = config.evaluator.batch(config.strategy.popsize)
    shrunk = None  # said once the run starts, as the command line's notes are: a refused run says nothing
    if progress and spec.batch_size < unshrunk:
        slot_mb = slot_memory(task)[0]
        shrunk = (f"note: {spec.batch_size} slots per worker instead of {unshrunk}, "
                  f"so that the envs (about {megabytes(config.n_workers * spec.batch_size * slot_mb)}) fit in the "
                  f"{megabytes(available)} available (--batch-size sets it; the numbers do not depend on it)")

    def under_way(run_file: Path) -> None:
        if shrunk is not None:
            print(shrunk, file=sys.stderr)
        if started is not None:
            started(run_file)

    created = store is None
    if store is None:
        path = config.default_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        store = RunStore.create(
            path, config.to_dict(), sizes=task.sizes, rule=config.agent.network_rule, popsize=config.strategy.popsize,
            layout=genome, snapshot_every=config.snapshot_every,
        )
    empty = False  # a new run file that failed before its first generation: removed, not left behind
    try:
        with store:
            checkpoint = store.load_checkpoint()
            if checkpoint is not None:
                strategy.load_state_dict(checkpoint.strategy_state)
            start = store.generations_completed
            end = config.generations if stop_after is None else min(config.generations, start + stop_after)
            if start >= end:
                return store.path
            try:
                _run_generations(config, spec, store, strategy, start, end, progress, under_way)
            except KeyboardInterrupt as err:
                # the signal may land after a generation's commit and before the store counted it: ask the file
                raise TrainingInterrupted(
                    store.path, store.generations_on_disk(), signum=getattr(err, "signum", signal.SIGINT)
                ) from None
            except Exception:  # e.g. workers that could not start: a file with nothing in it is no run to resume
                with contextlib.suppress(Exception):  # the error to show is the one above
                    empty = created and store.generations_on_disk() == 0
                raise
            return store.path
    finally:
        if empty:
            store.path.unlink(missing_ok=True)


def _refuse_a_model(path: str | Path) -> None:
    """A model file (``spikehebb select``'s, root attribute ``model``) is not resumed: training on
    would replace the chosen rule in ``/mean`` under a record that still names it."""
    from spikehebb.lifetimes import is_shipped_model
    from spikehebb.models import model_info

    info = model_info(path)
    if info is None:
        return
    source = info.get("source")
    refused = (f"{path} is a model (the mean after generation {info.get('generation')} chosen by spikehebb select) "
               f"and training on would replace its rule")
    training = Path(path).parent / "training" / source if source and is_shipped_model(path) else None
    if training is None or not training.is_file():
        raise ValueError(f"{refused}; resume its training run ({source or 'the run it was selected from'}) instead")
    # a shipped model's run is in models/training/: committed history, read but never written
    raise ValueError(f"{refused}; resume its training run, {training}, instead, from a copy in a runs folder (files "
                     f"in models/ are committed, read-only history): mkdir -p runs && cp {shlex.quote(str(training))} "
                     f"runs/ && spikehebb train --resume {shlex.quote('runs/' + source)}")


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or SIGUSR1 during training: the run file holds every generation finished
    before it (after SIGUSR1, the one that was in flight too).

    ``signum``: the signal that stopped it. ``what``: :func:`stopped_by` of it. ``exit_code``: what
    a command line ends with, 128 + the signal's number (the shell's convention): 130 after
    Ctrl-C, 143 after SIGTERM, 138 after SIGUSR1 on Linux."""

    def __init__(self, path: Path, generations: int, signum: int = signal.SIGINT):
        self.what = stopped_by(signum)
        super().__init__(
            f"{self.what}: {path} holds {generations} finished generation(s); continue with --resume {path}"
        )
        self.path, self.generations, self.signum = path, generations, signum
        self.exit_code = 128 + int(signum)


def _run_generations(config: TrainConfig, spec: WorkerSpec, store: RunStore, strategy, start: int, end: int,
                     progress: bool, started: Callable[[Path], None] | None = None) -> None:
    """Generations ``start`` to ``end - 1``: ask, evaluate, tell, store each (``started(path)``
    first, once the workers are up: see :func:`train`)."""
    ev = config.evaluator
    timeouts = {} if ev.name == "serial" else {"stall_timeout": ev.stall_timeout, "build_timeout": ev.build_timeout}
    with (StopSignals() as stop,
          make_evaluator(ev.name, spec, workers=config.n_workers, address=ev.ray_address, **timeouts) as evaluator):
        if started is not None:
            started(store.path)  # before a progress bar is drawn
        with _Progress(config, start, progress) as shown:
            for generation in range(start, end):
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
                shown.update(generation, stats["raw"], strategy.best_fitness, env_steps, wall, end)
                stop.check(done=generation + 1 == end)


class _Progress:
    """What a run shows of itself on stderr: a tqdm bar on a terminal; where stderr is not one
    (``nohup``, a log file, a scheduler's output) one line per generation, which a bar's carriage
    returns would garble; nothing when disabled."""

    def __init__(self, config: TrainConfig, start: int, enabled: bool, stream=None):
        self.stream = sys.stderr if stream is None else stream
        self.total = config.generations
        self.label = f"{config.task.name} {config.agent.label} {config.strategy.label}"
        self.walls: list[float] = []
        self.bar = None
        self.lines = False
        if enabled and (_is_terminal(self.stream) or _in_notebook(self.stream)):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, initial=start, unit="gen", desc=self.label, file=self.stream)
        else:
            self.lines = enabled

    def update(self, generation: int, raw: np.ndarray, best: float, env_steps: int, wall: float, end: int) -> None:
        """After ``generation`` (0-based) ended: its raw fitness (P,), the best fitness seen so
        far, its env steps and wall seconds; ``end``: the generation this call stops before."""
        finite = raw[np.isfinite(raw)]  # a generation whose candidates all failed shows nan
        mean, top = (finite.mean(), finite.max()) if finite.size else (np.nan, np.nan)
        failed = raw.size - finite.size  # a lifetime's outputs (or a broken simulation) turned non-finite
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(best=f"{best:.1f}", mean=f"{mean:.1f}", max=f"{top:.1f}",
                                 steps_s=f"{env_steps / wall:.0f}", **({"failed": failed} if failed else {}))
        elif self.lines:
            self.walls.append(wall)
            left = (end - generation - 1) * float(np.mean(self.walls))
            eta = f"; {_duration(left)} to generation {end}" if generation + 1 < end else ""
            note = (f" ({failed} of {raw.size} candidates failed, non-finite"
                    + (": mean and max over the rest)" if finite.size else ")")) if failed else ""
            print(f"{self.label} generation {generation + 1}/{self.total}: mean {mean:.1f}, max {top:.1f}{note}, "
                  f"best so far {best:.1f}; {wall:.1f} s, {env_steps / wall:,.0f} env steps/s{eta}",
                  file=self.stream, flush=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _in_notebook(stream) -> bool:
    """stderr of a Jupyter kernel: not a terminal, but tqdm.auto draws a widget there."""
    return stream is sys.stderr and "ipykernel" in sys.modules


def _duration(seconds: float) -> str:
    """``seconds`` as "42 s", "17 min" or "3.4 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"