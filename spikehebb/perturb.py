"""Perturbations in the middle of a lifetime and how fast the ant recovers from them.

Najarro & Risi 2020 say their Hebbian ant adapts to damage "in less than 100 timesteps". This
module measures it. At network step ``t0`` of a test lifetime one of :data:`PERTURBATIONS` hits:

- ``"none"``: nothing (the control: how often the speed dips by chance);
- ``"redraw"``: every weight is drawn afresh from the run's initial distribution (U[-0.1, 0.1]);
- ``"motor"``: the two motors of one leg (default leg 0, front left, the leg ``damage_left``
  shortens) give no torque from then on: damage during life;
- ``"freeze"``: the rule stops; the weights stay as they are (no change for a static network).

**Speed** is the ant's ``reward_progress`` per step: the body centre's speed towards the walk
target (1 km along +x) in m/s. **Recovery** (:func:`recovery`): the network steps from ``t0``
to the end of the first 50-step window, wholly after ``t0``, whose mean speed reaches 80% of the
mean speed in the 50 steps before ``t0``; at least 50 by construction. A lifetime that never
gets there is censored at its end. Lifetimes that were not walking forwards before ``t0`` (mean
speed <= 0) have no level to regain and are counted apart. **The level at the end**: the mean
speed over the lifetime's last 100 steps (or those after ``t0``, if fewer), what the ant settled
at.

The lifetimes run without the task's early ends (falls and 30 steps without progress end
nothing), so a lifetime ends early only when its network's outputs turn non-finite (a failed
lifetime, NaN speed from then on). One that failed at or before ``t0`` has no step after the
perturbation to assess and counts as not walking when it came. One that failed after ``t0``,
before recovering, is censored at its failure and counted as never recovered. The median
(:func:`summarise`: the first step count by which half had recovered, censored lifetimes counted
as never) is therefore the Kaplan-Meier median when every lifetime ran to the horizon (one
censoring time for all); with failures after ``t0`` it can exceed Kaplan-Meier's, which would
drop a failed lifetime from those at risk at its failure instead of counting it never recovered
(never below it: the conservative side).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from spikehebb.checks import is_integer

#: Perturbations by name, in table order.
PERTURBATIONS = ("none", "redraw", "motor", "freeze")
#: Window (network steps) over which speed is averaged, and the fraction of the level before the
#: perturbation that counts as recovered (issue 14's definition).
WINDOW = 50
FRACTION = 0.8
#: The claim under test: recovery in less than this many steps (Najarro & Risi 2020).
PAPER_STEPS = 100
#: The lifetime's last steps whose mean speed is the level it settled at.
END_STEPS = 100
#: Action indices of each ant leg's (hip, ankle) motors (spikehebb/envs/morphology.py: leg 0 is
#: front left, 1 back left, 2 back right, 3 front right).
LEG_MOTORS = {0: (0, 1), 1: (2, 3), 2: (4, 5), 3: (6, 7)}


@dataclass(frozen=True)
class Recovery:
    """How one lifetime came back after the perturbation at ``t0``."""

    before: float
    """Mean speed (m/s) over the ``window`` steps before t0."""
    steps: float
    """Network steps from t0 until recovered; if censored, the steps observed after t0; NaN when
    the ant was not walking forwards before t0."""
    censored: bool
    """True when the lifetime ended before the speed came back."""
    end: float = math.nan
    """Mean speed (m/s) over the last :data:`END_STEPS` steps, those after t0 only (NaN: not measured)."""

    @property
    def walking(self) -> bool:
        return self.before > 0

    @property
    def recovered(self) -> bool:
        return self.walking and not self.censored


def recovery(speed: np.ndarray, t0: int, window: int = WINDOW, fraction: float = FRACTION) -> Recovery:
    """Recovery of one lifetime from its per-step speed ``(T,)`` (m/s) and the perturbation step
    ``t0`` (the first step run perturbed, which ``speed`` must hold): the smallest ``k - t0`` with
    ``k >= t0 + window`` and ``mean(speed[k - window:k]) >= fraction * mean(speed[t0 - window:t0])``."""
    speed = np.asarray(speed, dtype=np.float64)
    if speed.ndim != 1:
        raise ValueError(f"speed must be one lifetime's (T,) steps, got shape {speed.shape}")
    if not (is_integer(window) and window >= 1):
        raise ValueError(f"window must be a positive number of steps, got {window!r}")
    if not window <= t0 < len(speed):
        raise ValueError(f"t0 must leave a whole window before it and a step after it: {window} <= t0 < {len(speed)}, "
                         f"got {t0}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    before = float(speed[t0 - window : t0].mean())
    after = speed[t0:]
    end = float(after[-END_STEPS:].mean())
    if not before > 0:
        return Recovery(before, math.nan, False, end)
    if len(after) >= window:
        means = np.convolve(after, np.ones(window) / window, mode="valid")  # means[i]: steps t0+i .. t0+i+window-1
        hits = np.flatnonzero(means >= fraction * before)
        if hits.size:
            return Recovery(before, float(hits[0] + window), False, end)
    return Recovery(before, float(len(after)), True, end)


@dataclass(frozen=True)
class Summary:
    """One row of the recovery table: one model, one perturbation, n lifetimes."""

    model: str
    perturbation: str
    lifetimes: int
    walking: int
    """Lifetimes walking forwards before t0 and running on after it (the others have no level to
    regain, or failed by t0: see the module docstring)."""
    speed_before: float
    """Mean over the walking lifetimes of their speed before t0 (m/s); NaN if none."""
    speed_end: float
    """Mean over the walking lifetimes of their level at the end (:attr:`Recovery.end`, m/s); NaN
    if none."""
    recovered: int
    within_paper: int
    """Walking lifetimes recovered in fewer than :data:`PAPER_STEPS` steps."""
    median_steps: float
    """Median recovery of the walking lifetimes: the first step count by which at least half of
    them had recovered, censored ones counted as never (inf when fewer than half recovered; NaN
    when none walked)."""
    horizon: int
    """Steps observed after t0 (the censoring time)."""


def summarise(model: str, perturbation: str, recoveries: Sequence[Recovery], horizon: int) -> Summary:
    """Table row of a set of lifetimes (see :class:`Summary`)."""
    walking = [r for r in recoveries if r.walking]
    times = np.sort([r.steps if r.recovered else np.inf for r in walking])
    # the first time by which at least half have recovered (Kaplan-Meier's median when no lifetime
    # was censored before the horizon: see the module docstring)
    median = float(times[(len(times) + 1) // 2 - 1]) if len(times) else math.nan
    return Summary(
        model=model,
        perturbation=perturbation,
        lifetimes=len(recoveries),
        walking=len(walking),
        speed_before=float(np.mean([r.before for r in walking])) if walking else math.nan,
        speed_end=float(np.mean([r.end for r in walking])) if walking else math.nan,
        recovered=sum(r.recovered for r in walking),
        within_paper=sum(r.recovered and r.steps < PAPER_STEPS for r in walking),
        median_steps=median,
        horizon=int(horizon),
    )


def format_steps(median: float, horizon: int) -> str:
    """A median for a table: ``"73"``, ``"> 460"`` (censored), ``"-"`` (none walking)."""
    if math.isnan(median):
        return "-"
    return f"> {horizon}" if math.isinf(median) else f"{median:g}"


TABLE_COLUMNS = (
    "model", "perturbation", "walking before / lifetimes", "speed before (m/s)", "recovered",
    f"in < {PAPER_STEPS} steps", "median steps to recover", f"speed in the last {END_STEPS} steps (m/s)",
)
"""The recovery table's columns, in order (docs/results.md, ``perturb_ant.py``, ``spikehebb report``)."""


def table_cells(r: Summary) -> tuple[str, ...]:
    """One row of the recovery table as text, in :data:`TABLE_COLUMNS` order."""
    return (r.model, r.perturbation, f"{r.walking} / {r.lifetimes}", f"{r.speed_before:.3f}", str(r.recovered),
            str(r.within_paper), format_steps(r.median_steps, r.horizon), f"{r.speed_end:.3f}")


def markdown_table(rows: Sequence[Summary]) -> str:
    """The recovery table in Markdown (docs/results.md, report)."""
    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |", "|" + " --- |" * len(TABLE_COLUMNS)]
    lines += ["| " + " | ".join(table_cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def rows_to_json(rows: Sequence[Summary]) -> list[dict]:
    """Rows as JSON-ready dicts (inf and NaN as strings, which JSON lacks)."""
    out = []
    for r in rows:
        d = asdict(r)
        for k, v in d.items():
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = str(v)
        out.append(d)
    return out


def rows_from_json(items: Sequence[dict]) -> list[Summary]:
    """Inverse of :func:`rows_to_json` (rows written before ``speed_end`` existed read it as NaN)."""
    return [Summary(**{**d, "speed_before": float(d["speed_before"]), "median_steps": float(d["median_steps"]),
                       "speed_end": float(d.get("speed_end", math.nan))})
            for d in items]


# ------------------------------------------------------------------------------ the experiment
class _LegOff:
    """Decoder wrapper: once ``active``, the chosen motors give no torque."""

    def __init__(self, decoder, motors: Sequence[int]):
        self.decoder, self.motors, self.active = decoder, list(motors), False

    def __call__(self, outputs: np.ndarray) -> np.ndarray:
        actions = self.decoder(outputs)
        if self.active:
            actions = np.array(actions, copy=True)
            actions[:, self.motors] = 0.0
        return actions


def perturbed_speeds(
    run: str | Path,
    perturbation: str,
    episodes: int = 20,
    t0: int = 480,
    *,
    variant: str = "default",
    leg: int = 0,
    which: str = "mean",
    max_env_steps: int | None = None,
) -> np.ndarray:
    """Per-step speed ``(episodes, T)`` (m/s, NaN after a lifetime's end) of test episodes
    ``0 .. episodes-1`` of ``variant``, one batch in lockstep, perturbed at network step ``t0``.
    The lifetimes are those of ``evaluate`` (same initial weights and starts), run without early
    ends."""
    from spikehebb.lifetimes import Lifetimes, freeze, set_weights

    if perturbation not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {perturbation!r}; valid: {', '.join(PERTURBATIONS)}")
    if leg not in LEG_MOTORS:
        raise ValueError(f"leg must be one of {sorted(LEG_MOTORS)} (0 front left, 1 back left, 2 back right, 3 front right), got {leg}")
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    legs: list[_LegOff] = []

    def wrap(decoder):
        legs.append(_LegOff(decoder, LEG_MOTORS[leg]))
        return legs[0]

    with Lifetimes(run, which, batch_size=episodes, max_env_steps=max_env_steps, early_ends=False, decoder=wrap) as lives:
        if lives.task.name != "ant":
            raise ValueError(f"perturbation experiments need an ant run, got task {lives.task.name!r}")
        if perturbation in ("redraw", "freeze") and not hasattr(lives.controller, "set_weights"):
            raise ValueError(f"the {perturbation} perturbation acts on a network's weights and rule; a "
                             f"{lives.agent.kind} agent has no such weights (motor and none apply to it)")
        T = lives.task.episode.max_network_steps
        if not WINDOW <= t0 < T:
            raise ValueError(f"t0 must lie in [{WINDOW}, {T - 1}] (a whole window before it), got {t0}")
        speed = np.full((episodes, T), np.nan)
        rng = np.random.default_rng([lives.config.seed, t0, PERTURBATIONS.index(perturbation)])

        def on_step(t, controller, actions, infos):
            for b, info in enumerate(infos[:episodes]):
                if info is not None:
                    speed[b, t] = info["reward_progress"]
            if t + 1 == t0:  # the hook runs after step t: what changes now acts from step t0 on
                if perturbation == "redraw":
                    set_weights(controller, lives.random_weights(lives.batch_size, rng))
                elif perturbation == "freeze" and not lives.static:
                    freeze(controller)
                elif perturbation == "motor":
                    legs[0].active = True

        try:
            lives.run(variant, range(episodes), on_step)
        finally:
            freeze(lives.controller, False)
    return speed


def mean_window_speed(speed: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Mean over lifetimes of the trailing ``window``-step mean speed: ``(T - window + 1,)``,
    entry i covers steps i .. i+window-1."""
    kernel = np.ones(window) / window
    return np.nanmean([np.convolve(s, kernel, mode="valid") for s in speed], axis=0)


def run_experiment(
    models: dict[str, str | Path],
    perturbations: Sequence[str] = PERTURBATIONS,
    episodes: int = 20,
    t0: int = 480,
    **kwargs,
) -> tuple[list[Summary], dict[tuple[str, str], np.ndarray]]:
    """Every model (label -> run file) under every perturbation: the table rows and, per
    (model, perturbation), the per-step speeds ``(episodes, T)``. ``kwargs`` go to
    :func:`perturbed_speeds` (variant, leg, which, max_env_steps)."""
    rows, speeds = [], {}
    for label, run in models.items():
        for name in perturbations:
            s = perturbed_speeds(run, name, episodes, t0, **kwargs)
            speeds[label, name] = s
            ends = [int(np.isfinite(row).sum()) for row in s]
            # a lifetime that failed (non-finite outputs) at or before t0 has no step after it to assess:
            # it was not walking when the perturbation came
            recoveries = [recovery(row[:end], t0) if end > t0 else Recovery(math.nan, math.nan, False)
                          for row, end in zip(s, ends)]
            rows.append(summarise(label, name, recoveries, max(ends) - t0))
    return rows, speeds
