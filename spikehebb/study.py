"""Resumable studies: several training runs ("arms"), each trained to its budget and tested on
chosen variants, with results cached so that a killed study continues where it stopped.

    arms = [Arm("per-synapse", config_a), Arm("gmm rho=128", config_b)]
    results = run_study(arms, variants=["default"], episodes=20, cache="runs/study/results.json")
    print(format_study(results, ["default"]))

An arm's run file is ``config.runs_dir / config.run_name + ".h5"`` (the arm's config must name
it): a missing file starts the run, an unfinished one resumes it (bit for bit, see
:mod:`spikehebb.train`), a finished one is only read. Test results land in the JSON ``cache``
under the arm's name with the generations they were measured at, the episodes and the test
length; they are reused only when all three match. The cache also keeps each arm's training
history (env steps, population mean fitness and wall time per generation) and its parameter
counts, so a study whose arms have all finished can be reported from the cache alone: an arm
whose run file is missing but whose cache entry holds its full number of generations is not
trained again (a few kilobytes to carry between machines or sessions instead of the run files).
Each entry also records the arm's settings (:func:`arm_settings`: the config less where it runs
and what its file is called); an arm whose config no longer matches them (a run renamed to the
old run_name, its old file deleted) reuses neither the cached run nor its tests: it is trained
(or its run file read) and tested anew, with one line on stderr naming the differences. Entries
written before the settings were recorded are checked on what they hold: the population and the
searched parameter count (:func:`legacy_differences`). Test lifetimes are those of
:func:`spikehebb.assess.assess` (fresh random weights, seeded by episode and variant, the search
mean of the last generation).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from spikehebb.config import TrainConfig
from spikehebb.stopping import STOP_REQUEST
from spikehebb.store.transaction import whole_file


@dataclass(frozen=True)
class Arm:
    """One row of a study: a name for the table and the run's config (with ``run_name`` set)."""

    name: str
    config: TrainConfig

    def __post_init__(self) -> None:
        if not self.config.run_name:
            raise ValueError(f"arm {self.name!r}: its config must name the run file (run_name) so a study can resume it")

    @property
    def path(self) -> Path:
        return self.config.default_path()


@dataclass
class ArmResult:
    """What one arm gave: its budget and its test fitness per variant (one value per episode)."""

    name: str
    path: str
    generations: int
    popsize: int
    env_steps: int
    wall_s: float
    n_params: int
    fitness: dict[str, np.ndarray] = field(default_factory=dict)
    history: dict[str, np.ndarray] = field(default_factory=dict)
    """Per generation: ``env_steps``, ``fitness_mean`` (population mean), ``wall_time`` (s)."""
    final_rules: int | None = None
    """Shared-rule runs: coefficients of the final rule table (M x k), else None."""

    @property
    def final_parameters(self) -> int:
        """Parameters of the final agent: M * k rule coefficients for shared rules (M as the run
        file holds it: Evolve & Merge reaches N / rho only with enough generations), else the
        genome's searched numbers."""
        return self.n_params if self.final_rules is None else self.final_rules

    @property
    def lifetimes(self) -> int:
        """Training lifetimes: generations x popsize x training variants are counted in env_steps;
        this is generations x popsize (candidates evaluated)."""
        return self.generations * self.popsize

    def mean(self, variant: str) -> float:
        return float(np.mean(self.fitness[variant]))

    def std(self, variant: str) -> float:
        return float(np.std(self.fitness[variant]))


def across_seeds_std(values, axis: int = 0) -> np.ndarray:
    """The spread of per-seed results: the sample standard deviation (ddof 1: over three seeds
    the population std understates it by a fifth); 0 for one seed."""
    values = np.asarray(values, dtype=np.float64)
    return np.std(values, axis=axis, ddof=1) if values.shape[axis] > 1 else np.zeros_like(np.mean(values, axis=axis))


#: The history columns a study keeps per arm (its cache carries them).
HISTORY_FIELDS = ("env_steps", "fitness_mean", "wall_time")

#: TrainConfig fields that do not change an arm's numbers (where its lifetimes run, where its file
#: lies and what it is called, how many snapshots it keeps), or that the cache checks on its own
#: (generations: the length of the cached history and the tests' key).
FREE_FIELDS = ("generations", "evaluator", "runs_dir", "run_name", "snapshot_every")


def arm_settings(config: TrainConfig) -> dict:
    """The settings a cache entry records for its arm: the config's JSON form less :data:`FREE_FIELDS`."""
    settings = json.loads(json.dumps(config.to_dict()))
    for name in FREE_FIELDS:
        settings.pop(name, None)
    return settings


def settings_differences(config: TrainConfig, recorded: dict) -> list[str]:
    """``"section.field: cached -> now"`` for every setting of ``config`` that differs from the
    ``recorded`` :func:`arm_settings`; a field the record lacks (one added since) reads as its
    default, as a resumed run file's does."""
    current = config.to_dict()
    try:
        cached = TrainConfig.from_dict({**recorded, **{name: current[name] for name in FREE_FIELDS}})
    except (ValueError, TypeError) as err:
        return [f"settings the config cannot read ({err})"]
    return cached.differences(config)


def legacy_differences(config: TrainConfig, recorded: dict) -> list[str]:
    """For a cache entry written before the settings were recorded (no ``config``): the
    differences that what it does record shows, the population and the searched parameter count
    (the agent), as :func:`settings_differences` words them."""
    from spikehebb.train import run_genome

    changed = []
    if "popsize" in recorded and recorded["popsize"] != config.strategy.popsize:
        changed.append(f"strategy.popsize: {recorded['popsize']} -> {config.strategy.popsize}")
    if "n_params" in recorded and not config.strategy.shares_rules:
        n = run_genome(config).n_params
        if recorded["n_params"] != n:
            changed.append(f"searched parameters: {recorded['n_params']:,} -> {n:,}")
    return changed


def train_arm(arm: Arm, progress: bool = True) -> Path:
    """Train the arm to its config's generations: start, resume or leave a finished run alone."""
    from spikehebb.train import train

    path = arm.path
    if path.exists():
        return train(arm.config, resume=path, progress=progress)
    return train(arm.config, progress=progress)


def _load_cache(cache: Path) -> dict:
    if not cache.exists():
        return {}
    try:
        return json.loads(cache.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{cache} is not a study cache (JSON): {err}; move it away to start the tests afresh") from None


def save_cache(cache: Path, data: dict) -> None:
    """Write ``data`` as JSON to ``cache`` whole: beside it, then renamed over it."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    with whole_file(cache, "write the study cache") as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def run_arm(
    arm: Arm,
    variants: Sequence[str],
    episodes: int,
    cache: str | Path,
    workers: int = 1,
    max_env_steps: int | None = None,
    progress: bool = True,
) -> ArmResult:
    """Train the arm (resuming), test its final search mean on ``variants`` (cached), return both."""
    from spikehebb.assess import assess, load_run
    from spikehebb.store import RunStore

    cache = Path(cache)
    entry = _load_cache(cache).get(arm.name, {})
    recorded = entry.get("record", {})
    path = arm.path
    if "config" in recorded:
        changed = settings_differences(arm.config, recorded["config"])
    else:  # written before the settings were recorded: what it does hold must match
        changed = legacy_differences(arm.config, recorded)
    if changed:
        redo = (f"its run file {path} is resumed and tested anew (a run file of the other settings is refused: move "
                f"it away to train anew)" if path.exists() else "it is trained and tested anew")
        print(f"study: arm {arm.name!r}: {cache} holds results of other settings ({'; '.join(changed)}); "
              f"they are not reused: {redo}", file=sys.stderr)
        entry, recorded = {}, {}
    finished_in_cache = len(recorded.get("history", {}).get("env_steps", ())) == arm.config.generations
    fresh = not path.exists() and not finished_in_cache  # a run started now: no cached test can be of it
    if path.exists() or not finished_in_cache:
        path = train_arm(arm, progress)
        with RunStore.open(path) as store:
            full, shared = store.history(), store.shared_rules()
            recorded = {
                "history": {k: full[k].tolist() for k in HISTORY_FIELDS},
                "n_params": int(store.n_params), "popsize": int(store.popsize),
                "final_rules": None if shared is None else int(shared["rules"].size),
                "config": arm_settings(arm.config),  # the run file's own (a resume refuses others)
            }
    history = {k: np.asarray(v) for k, v in recorded["history"].items()}
    generations = len(history["env_steps"])
    key = {"generations": generations, "episodes": int(episodes), "max_env_steps": max_env_steps}
    reuse = entry.get("key") == key and not fresh
    fitness = {v: np.asarray(f) for v, f in entry.get("fitness", {}).items()} if reuse else {}
    missing = [v for v in variants if v not in fitness]
    if missing:
        if not path.exists():
            raise ValueError(f"arm {arm.name!r}: {path} is missing and the cache {cache} has no test on {missing}")
        config, params = load_run(path, "mean")
        for result in assess(config, params, missing, episodes, workers, max_env_steps):
            fitness[result.variant] = result.fitness
    if missing or entry.get("record") != recorded:
        data = _load_cache(cache)  # another arm of this study may have written meanwhile
        data[arm.name] = {"run": str(path), "key": key, "fitness": {v: np.asarray(f).tolist() for v, f in fitness.items()},
                          "record": recorded}
        save_cache(cache, data)
    return ArmResult(
        arm.name, str(path), generations, recorded["popsize"], int(history["env_steps"].sum()),
        float(history["wall_time"].sum()), recorded["n_params"], {v: fitness[v] for v in variants},
        history, recorded["final_rules"],
    )


def run_study(arms: Sequence[Arm], variants: Sequence[str], episodes: int, cache: str | Path, workers: int = 1,
              max_env_steps: int | None = None, progress: bool = True) -> list[ArmResult]:
    """:func:`run_arm` for every arm, in order (a killed study resumes at the arm it was in).

    SIGUSR1 stops it at the next boundary: inside an arm's training after the generation in flight
    (:class:`~spikehebb.train.TrainingInterrupted`), else once the arm in flight is tested and
    cached (:class:`~spikehebb.stopping.StudyInterrupted`); after the last arm the study just ends."""
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise ValueError(f"arm names must be distinct, got {names}")
    paths = [a.path for a in arms]
    if len(set(paths)) != len(paths):
        raise ValueError("arms must have distinct run files (run_name)")
    results = []
    with STOP_REQUEST:
        for i, arm in enumerate(arms):
            results.append(run_arm(arm, variants, episodes, cache, workers, max_env_steps, progress))
            STOP_REQUEST.stop_after(f"arm {arm.name!r} and its tests", last=i + 1 == len(arms))
    return results


def format_study(results: Sequence[ArmResult], variants: Sequence[str], reference: dict[str, dict[str, float]] | None = None,
                 marks: dict[str, str] | None = None) -> str:
    """One row per arm: the final agent's parameters (:attr:`ArmResult.final_parameters`), budget (generations x popsize, env steps, hours),
    then mean ± std per variant; ``reference``: per arm name, per variant a published number shown
    beside ours in brackets; ``marks``: per variant a suffix for its header (e.g. "*" held out)."""
    marks = marks or {}
    head = f"{'agent':<24} {'params':>8} {'gens x pop':>11} {'env steps':>11} {'hours':>6}"
    cols = [f"{v + marks.get(v, ''):>22}" for v in variants]
    lines = [head + " " + " ".join(cols)]
    for r in results:
        row = f"{r.name:<24} {r.final_parameters:>8,} {f'{r.generations}x{r.popsize}':>11} {r.env_steps:>11,} {r.wall_s / 3600:>6.2f}"
        cells = []
        for v in variants:
            cell = f"{r.mean(v):.0f} ± {r.std(v):.0f}"
            ref = (reference or {}).get(r.name, {}).get(v)
            cell += f" ({ref:.0f})" if ref is not None else ""
            cells.append(f"{cell:>22}")
        lines.append(row + " " + " ".join(cells))
    return "\n".join(lines)
