"""docs/results.md quotes the shipped models' records (models/training/NAME/, copied there by
experiments/ship_ant.py) as they hold them: the recovery runs, the test run to the step limit and
the weights-by-body cosines. A number moved by hand, or a record remade without the docs, fails here
and says what to write."""

import json
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRAINING = ROOT / "models" / "training"
RESULTS = " ".join((ROOT / "docs" / "results.md").read_text().split())  # line breaks as spaces


def recovery(model: str, run: str) -> dict[str, dict]:
    """One recovery run's rows by perturbation (``perturb_ant.py --out``'s JSON)."""
    rows = json.loads((TRAINING / model / f"{run}.json").read_text())["rows"]
    return {row["perturbation"]: row for row in rows}


def median(row: dict) -> str:
    """The median steps to recover as the docs write it: "> 480" when most never recovered."""
    steps = float(row["median_steps"])
    return f"> {row['horizon']}" if math.isinf(steps) else str(round(steps))


def evaluated(model: str, log: str) -> dict[str, str]:
    """{variant: "mean ± std"} rounded to whole numbers, from an ``evaluate`` table in a record.
    A printed x.5 is ambiguous (the mean may lie on either side of it); ``round`` takes the even
    neighbour, so a doc quoting one must have been checked against the unrounded mean (602.5
    printed for the 300-generation rule's reset `default`, a mean of 602.48: 602)."""
    rows = re.findall(r"^(\w+) +\w+ +(-?[\d.]+) ± ([\d.]+)", (TRAINING / model / log).read_text(), re.M)
    return {variant: f"{round(float(mean))} ± {round(float(std))}" for variant, mean, std in rows}


def cosines(model: str) -> dict[str, str]:
    """weights_by_body.py's mean cosines, {"default vs damage_right": "0.915", "within default": "0.985", ...},
    and each body's fitness range by then, {"default": "200 to 289", ...}."""
    text = (TRAINING / model / "weights_by_body.log").read_text()
    found = dict(re.findall(r"^(within \w+|\w+ vs \w+): mean ([\d.]+)", text, re.M))
    for body, values in re.findall(r"^ *fitness over steps 0-300, (\w+): (.*)$", text, re.M):
        fitness = [float(v) for v in values.split(", ")]
        found[body] = f"{round(min(fitness))} to {round(max(fitness))}"
    return found


def assert_quoted(expected: str) -> None:
    assert expected in RESULTS, f"docs/results.md should say {expected!r} (the record's numbers)"


@pytest.mark.parametrize("model", ["ant_abcd_lr", "ant_abcd_lr_mirror"])
def test_each_shipped_model_has_its_records(model):
    for run in ("recovery_t480", "recovery_leg3", "recovery_t200", "recovery_t700"):
        settings = json.loads((TRAINING / model / f"{run}.json").read_text())["settings"]
        assert settings["hebbian"] == f"models/{model}.h5" and settings["episodes"] == 20
        assert (settings["t0"], settings["leg"]) == ((480, 3) if run == "recovery_leg3" else (int(run[-3:]), 0))
    assert (TRAINING / model / "no_early_end.log").read_text().startswith(f"$ spikehebb evaluate models/{model}.h5 ")
    assert f"models/{model}.h5: cosine similarity" in (TRAINING / model / "weights_by_body.log").read_text()


def test_the_shipped_rules_recovery_table_is_its_records():
    rows = recovery("ant_abcd_lr", "recovery_t480")
    leg3 = recovery("ant_abcd_lr", "recovery_leg3")["motor"]
    labels = {"none": "none (the control)", "redraw": "every weight redrawn", "freeze": "the rule frozen",
              "motor": "front left leg's motors off (leg 0, the leg `damage_left` shortens)"}
    table = [(labels[p], row) for p, row in rows.items()]
    table.append(("front right leg's motors off (leg 3, the leg `damage_right` shortens, seen in training)", leg3))
    for label, row in table:
        median_cell = f"**{median(row)}**" if label == labels["redraw"] else median(row)
        assert_quoted(f"| {label} | {row['walking']} / {row['lifetimes']} | {row['speed_before']:.3f} | {row['recovered']} | "
                      f"{row['within_paper']} | {median_cell} | {row['speed_end']:.3f} |")
    redraw = rows["redraw"]
    assert_quoted(f"rebuilds a walking network in {redraw['recovered']} of {redraw['lifetimes']} lifetimes, "
                  f"{redraw['within_paper']} of them within 100 steps (median {median(redraw)} steps, against "
                  f"{median(rows['none'])} for the control")
    within = sorted(recovery("ant_abcd_lr", f"recovery_t{t0}")["redraw"]["within_paper"] for t0 in (200, 480, 700))
    assert_quoted(f"recovers from new random weights within 100 steps in {within[0]} to {within[-1]} of 20 lifetimes")


def test_the_shipped_rules_recovery_by_step_is_its_records():
    for t0 in (200, 480, 700):
        rows = recovery("ant_abcd_lr", f"recovery_t{t0}")
        redraw, control = rows["redraw"], rows["none"]
        assert_quoted(f"| {t0} | {median(redraw)} ({median(control)}) [")
        assert_quoted(f"| {redraw['within_paper']} of {redraw['lifetimes']} [")
        assert_quoted(f"| {redraw['speed_end']:.2f} ({control['speed_end']:.2f}) [")
        row = re.search(rf"\| {t0} \| {median(redraw)} \({median(control)}\) \[\d+\] \| {redraw['within_paper']} of "
                        rf"{redraw['lifetimes']} \[[\d of]+\] \| {redraw['speed_end']:.2f} \({control['speed_end']:.2f}\) ",
                        RESULTS)
        assert row, f"docs/results.md's row for weights redrawn at step {t0} should read from recovery_t{t0}.json"


def test_the_mirror_rules_recovery_is_its_records():
    rows = {t0: recovery("ant_abcd_lr_mirror", f"recovery_t{t0}") for t0 in (200, 480, 700)}
    at480 = rows[480]["redraw"]
    assert_quoted(f"it walks again in {at480['recovered']} of {at480['lifetimes']} lifetimes, {at480['within_paper']} "
                  f"within 100 steps, after a median {median(at480)} steps")
    assert_quoted(f"at {at480['speed_end']:.2f} m/s over the last 100 steps against the control's "
                  f"{rows[480]['none']['speed_end']:.2f}")
    r200, r700 = rows[200]["redraw"], rows[700]["redraw"]
    assert_quoted(f"at step 200, {r200['recovered']} recover, {r200['within_paper']} within 100 steps, median {median(r200)}")
    assert_quoted(f"at 700, {r700['recovered']}, {r700['within_paper']}, median {median(r700)}")
    leg0 = rows[480]["motor"]
    leg3 = recovery("ant_abcd_lr_mirror", "recovery_leg3")["motor"]
    assert_quoted(f"({leg0['recovered']} of {leg0['lifetimes']} with leg 0's motors off, {leg3['recovered']} of "
                  f"{leg3['lifetimes']} with leg 3's)")
    ships = recovery("ant_abcd_lr", "recovery_t480")["redraw"]
    assert_quoted(f"(the shipped per-synapse rule: {ships['recovered']}, {ships['within_paper']}, median {median(ships)};")


def test_the_runs_to_the_step_limit_are_their_records():
    plain = evaluated("ant_abcd_lr", "no_early_end.log")
    assert_quoted(f"`damage_left` scores {plain['damage_left']} and `default` {plain['default']}, the same as with the "
                  f"authors' early ends")
    assert_quoted(f"| `evaluate --no-early-end` | {plain['damage_left']} (the 300-generation rule:")
    mirror = evaluated("ant_abcd_lr_mirror", "no_early_end.log")
    assert_quoted(f"`damage_left` gives {mirror['damage_left']} and `default` the same {mirror['default'].split(' ±')[0]}.")


def test_the_first_input_checks_are_their_records():
    """The 300-generation rule (git show 6756919:models/ant_abcd_lr.h5) tested with the reset
    observation first and with the settled one, 20 lifetimes per body."""
    logs = {first: (TRAINING / "ant_abcd_lr_300" / f"first_input_{first}.log").read_text() for first in ("reset", "settled")}
    for first, log in logs.items():
        assert log.startswith("$ git show 6756919:models/ant_abcd_lr.h5 > runs/ant_abcd_lr_300.h5 && spikehebb evaluate "
                              f"runs/ant_abcd_lr_300.h5 --variant default damage_right damage_left --episodes 20 "
                              f"--eval-workers 1 --first-input {first}\n")
    reset, settled = (evaluated("ant_abcd_lr_300", f"first_input_{first}.log") for first in ("reset", "settled"))
    assert_quoted(f"{reset['default']} / {reset['damage_right']} on the training bodies against "
                  f"{settled['default'].split(' ±')[0]} / {settled['damage_right'].split(' ±')[0]} settled | "
                  f"{reset['damage_left']} ({settled['damage_left']} settled) |")


def chosen_record(name: str, run: str) -> dict:
    """A rule chosen by `spikehebb select` from a 300-generation run (models/training/NAME/: select.log,
    which starts with its command, the card NAME.md and mirror_ant.json): the chosen generation, how
    many means were stored, the test table (:func:`evaluated`), env steps (M, one decimal) and hours
    from the card, and the mirror table as {body: [as itself, through the mirror]}."""
    log = (TRAINING / name / "select.log").read_text()
    assert log.startswith(f"$ spikehebb select models/training/{run}.h5 "), log.splitlines()[0]
    card = (TRAINING / name / f"{name}.md").read_text()
    steps, hours = re.search(r"^- budget: 300 generations, ([\d,]+) env steps, ([\d.]+) h of wall time", card, re.M).groups()
    table = json.loads((TRAINING / name / "mirror_ant.json").read_text())["table"]
    return {"command": log.splitlines()[0], "chosen": re.search(r"the mean after generation (\d+) ", log)[1],
            "stored": len(re.findall(r"^generation +\d+: selection fitness", log, re.M)),
            "table": evaluated(name, "select.log"), "steps": f"{int(steps.replace(',', '')) / 1e6:.1f}", "hours": hours,
            "mirror": {body: row.split(" | ") for body, row in
                       re.findall(r"^\| `(\w+)` \| (-?\d+ ± \d+ \| -?\d+ ± \d+) \|", table, re.M)}}


def seed_0_after_300() -> dict[str, str]:
    """Seed 0's rule after 300 generations, as results.md's table row on it says."""
    seed_0 = re.search(r"\| the same run's rule after 300 generations \(shipped before it\) \| [^|]+ \| (?P<default>[\d ±]+) "
                       r"\(solved\) \| (?P<damage_right>[\d ±]+) \(solved\) \| (?P<damage_left>[\d ±]+) \(unseen\) \|", RESULTS)
    assert seed_0, "results.md's row on the 300-generation rule is not found"
    return seed_0.groupdict()


def test_the_second_seeds_chosen_rule_is_its_record():
    """Seed 1's rule, chosen by `spikehebb select` at 300 generations (models/training/ant_abcd_lr_s1/)."""
    r = chosen_record("ant_abcd_lr_s1", "ant_ABCD_lr_paper_pop200_s1")
    chosen, s1, plain, seed_0 = r["chosen"], r["table"], r["mirror"], seed_0_after_300()
    assert_quoted(f"| the same settings with `--seed 1`, 300 generations, chosen at generation {chosen} by `spikehebb "
                  f"select`; 100 test lifetimes (`models/training/ant_abcd_lr_s1/`) | {r['steps']} M env steps, "
                  f"{r['hours']} h of generations (")
    assert_quoted(f"| {s1['default']} (solved) | {s1['damage_right']} (solved) | {s1['damage_left']} (unseen) |")
    assert_quoted(f"its chosen rule {s1['damage_left']} (seed 0's after 300 generations: {seed_0['damage_left']})")
    assert_quoted(f"behind on `default` ({s1['default']} against {seed_0['default']}; `damage_right` {s1['damage_right']} "
                  f"against {seed_0['damage_right']})")
    assert_quoted(f"`damage_left` {plain['damage_left'][0]} as itself and {plain['damage_left'][1]} through the mirror, "
                  f"`damage_right` {plain['damage_right'][0]} and {plain['damage_right'][1]}, `default` "
                  f"{plain['default'][0].split(' ±')[0]} and {plain['default'][1].split(' ±')[0]}.")
    readme = " ".join((ROOT / "README.md").read_text().split())
    said = (f"(`spikehebb select`: the mean after generation {chosen}, the best of its {r['stored']} stored means), over "
            f"100 test lifetimes per body walks on `damage_right` ({s1['damage_right']}) and `default` ({s1['default']}) "
            f"and not on `damage_left` ({s1['damage_left']})")
    assert said in readme, f"README.md should say {said!r}"


def test_the_first_input_runs_chosen_rule_is_its_record():
    """The rule of the run trained with the authors' first input, chosen by `spikehebb select` at 300
    generations (models/training/ant_abcd_lr_reset/), beside seed 0's after 300 generations."""
    r = chosen_record("ant_abcd_lr_reset", "ant_ABCD_lr_reset_paper_pop200_s0")
    assert r["command"].endswith('--command "spikehebb train --paper --popsize 200 --seed 0 --first-input reset"')
    chosen, rule, mirror, seed_0 = r["chosen"], r["table"], r["mirror"], seed_0_after_300()
    assert_quoted(f"| the same settings with the authors' first input (`--first-input reset`), 300 generations, chosen at "
                  f"generation {chosen} by `spikehebb select`; 100 test lifetimes, each with that first input "
                  f"(`models/training/ant_abcd_lr_reset/`) | {r['steps']} M env steps, {r['hours']} h of generations (")
    assert_quoted(f"| {rule['default']} (solved) | {rule['damage_right']} (solved) | {rule['damage_left']} (unseen) |")
    assert_quoted(f"its chosen rule {rule['damage_left']} (seed 0's after 300 generations: {seed_0['damage_left']}), and "
                  f"behind on the training bodies")
    assert_quoted(f"(`spikehebb select`: the mean after generation {chosen}, the best of its {r['stored']} stored means; "
                  f"card and log in `models/training/ant_abcd_lr_reset/`), over 100 test lifetimes per body, each with "
                  f"that first input: `default` {rule['default']}, `damage_right` {rule['damage_right']}, `damage_left` "
                  f"{rule['damage_left']} (seed 0's after 300 generations: {seed_0['default']}, {seed_0['damage_right']} and "
                  f"{seed_0['damage_left']}).")
    assert_quoted(f"Through the mirror it walks on `damage_left` ({mirror['damage_left'][1]} against "
                  f"{mirror['damage_left'][0]} as itself; `damage_right` {mirror['damage_right'][0]}; 20 lifetimes")
    readme = " ".join((ROOT / "README.md").read_text().split())
    said = (f"Its rule, chosen as seed 0's was (the mean after generation {chosen}), over 100 test lifetimes per body "
            f"walks on `damage_right` ({rule['damage_right']}) and on `default` just past the paper's threshold of "
            f"100 ({rule['default']}), and not on `damage_left` ({rule['damage_left']}; through the mirror "
            f"{mirror['damage_left'][1]})")
    assert said in readme, f"README.md should say {said!r}"


def test_the_weights_by_body_cosines_are_their_records():
    c = cosines("ant_abcd_lr")
    assert_quoted(f"| default (fitness by then {c['default']}) | {c['within default']} | {c['default vs damage_right']} | "
                  f"{c['default vs damage_left']} |")
    assert_quoted(f"| damage_right ({c['damage_right']}) | | {c['within damage_right']} | {c['damage_right vs damage_left']} |")
    assert_quoted(f"| damage_left ({c['damage_left']}) | | | {c['within damage_left']} |")
    m = cosines("ant_abcd_lr_mirror")
    assert_quoted(f"(cosine {m['default vs damage_right']} with `damage_right`, {m['default vs damage_left']} with "
                  f"`damage_left`) and least alike between the two damaged ones ({m['damage_right vs damage_left']})")


def test_the_default_commands_table_is_its_record():
    """`python experiments/run_ant.py` with no flag but where its run file goes
    (models/training/run_ant_default/run_ant.log: its output, then `spikehebb inspect`)."""
    log = (TRAINING / "run_ant_default" / "run_ant.log").read_text()
    command = log.splitlines()[0]
    assert re.fullmatch(r"\$ python experiments/run_ant\.py --runs-dir \S+", command), command
    table = evaluated("run_ant_default", "run_ant.log")
    assert "(5 episodes)" in log and len(table) == 6
    steps = int(re.search(r"^60 generations, ([\d,]+) env steps", log, re.M)[1].replace(",", ""))
    wall = int(re.search(r"^wall: (\d+) s$", log, re.M)[1])
    first, last = (re.search(rf"^ant ABCD_lr openai-es generation {g}/60: mean (-?[\d.]+),", log, re.M)[1] for g in (1, 60))
    took = f"{steps / 1e6:.1f} M env steps, {wall // 60} min {wall % 60} s on 2 cores"
    assert_quoted(f"| {took}, the whole command (`models/training/run_ant_default/`")
    assert_quoted(f"| **{table['default']} (solved)** | {table['damage_right']} (unseen) | {table['damage_left']} (unseen) |")
    assert_quoted(f"`palm_damage_right` solved ({table['palm_damage_right']}, unseen), `long_front` "
                  f"{table['long_front']} and `long_back` {table['long_back']}. Its training curve rises from "
                  f"{round(float(first))} to a population mean of {round(float(last))} by the last generation")
    readme = " ".join((ROOT / "README.md").read_text().split())
    said = (f"(`python experiments/run_ant.py`, population 64, 60 generations, {took}): **{table['default']}** on "
            f"`default` over 5 test lifetimes")
    assert said in readme, f"README.md should say {said!r}"
    assert f"of the unseen bodies `palm_damage_right` too ({table['palm_damage_right']})" in readme
