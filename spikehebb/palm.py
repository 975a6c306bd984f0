"""Palm, Najarro & Risi 2021's protocol: five variants per task, leave one out, their Table 1.

[1] Palm, Najarro & Risi 2021, Testing the genomic bottleneck hypothesis in Hebbian meta-learning,
    https://arxiv.org/abs/2011.06811; code: github.com/rasmusbergpalm/hebbian-evolution.

Each agent is trained on four of a task's five variants (training fitness: the mean over the
four) and tested on all five; the fifth is the held-out one. The ant's five bodies are the
presets of :mod:`spikehebb.envs.morphology` that reproduce [1]'s XML files (``damage_left`` is
[1]'s "damage L", ``palm_damage_right`` its "damage R": the back-left leg, despite the file name;
``long_back`` and ``long_front`` lengthen the two right-hand and the two left-hand legs); the car's
five are [1]'s track variations (friction x0.5 and x2, a push to either side).
"""

from __future__ import annotations

#: [1]'s five variants per task, in their table's column order.
PALM_VARIANTS: dict[str, tuple[str, ...]] = {
    "ant": ("default", "damage_left", "palm_damage_right", "long_back", "long_front"),
    "car": ("default", "friction_half", "friction_double", "push_left", "push_right"),
}

#: Generations of [1]'s runs per task (their ``iterations``: 500 for every ant run, e.g.
#: hebbian-evolution 2ae317d and 18dd880; 300 for the car, dc2d0ba), at their population (500 for
#: the ant, 200 for the car, as ``--paper``'s). ``run_palm.py --paper`` trains this long.
PALM_GENERATIONS: dict[str, int] = {"ant": 500, "car": 300}

#: [1]'s held-out variant per task: the ant's Table 1 leaves out the long front legs; their car
#: runs (hebbian-evolution dc2d0ba, ``car_est_env = {'side_force': 10.0}``) the push to the right.
PALM_HOLDOUT: dict[str, str] = {"ant": "long_front", "car": "push_right"}

#: [1]'s column names for our variant names.
PALM_NAMES: dict[str, str] = {
    "default": "default", "damage_left": "damage L", "palm_damage_right": "damage R",
    "long_back": "long back", "long_front": "long front",
}

#: [1]'s Table 1 (ant, trained without long_front, mean over 100 test lifetimes), per agent.
#: Their shared rules at rho = 128 scored about 0 everywhere (555 +- 89 on the default body at
#: best, with Adam): not a row here.
PALM_TABLE1: dict[str, dict[str, dict[str, float]]] = {
    "ant": {
        "static": dict(zip(PALM_VARIANTS["ant"], (1545, 839, 1891, 1197, 202))),
        "lstm": dict(zip(PALM_VARIANTS["ant"], (1097, 1374, 1240, 806, 314))),
        "hebbian": dict(zip(PALM_VARIANTS["ant"], (928, 1102, 981, 741, 364))),
    },
}


def leave_one_out(task: str, holdout: str) -> tuple[str, ...]:
    """The training variants of ``task`` without ``holdout``: the other four of [1]'s five."""
    if task not in PALM_VARIANTS:
        raise ValueError(f"Palm et al.'s protocol has variants for the tasks {', '.join(PALM_VARIANTS)}, not {task!r}")
    variants = PALM_VARIANTS[task]
    if holdout not in variants:
        raise ValueError(f"unknown holdout {holdout!r} for the {task}; Palm et al.'s five are {', '.join(variants)}")
    return tuple(v for v in variants if v != holdout)


def reference(task: str, holdout: str, agent: str) -> dict[str, float] | None:
    """[1]'s numbers for ``agent`` ("static", "lstm", "hebbian") where they match this protocol."""
    if PALM_HOLDOUT.get(task) != holdout:
        return None
    return PALM_TABLE1.get(task, {}).get(agent)
