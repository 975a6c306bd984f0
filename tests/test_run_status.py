"""The docs quote the committed training runs (models/training/) as the files hold them.

Each session that resumes a long run moves these numbers by hand (models/README.md says how); a
stale or mistyped one fails here, saying what to write. A sentence whose wording changed (a run
finished) fails too: update the pattern here with it.
"""

import json
import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pytest

from spikehebb.models import model_info
from spikehebb.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
TRAINING = ROOT / "models" / "training"
PER_SYNAPSE = "ant_ABCD_lr_paper_pop200_s0"
MIRROR = "ant_ABCD_lr_mirror_paper_pop200_s0"
SEED_1 = "ant_ABCD_lr_paper_pop200_s1"
FIRST_INPUT_RESET = "ant_ABCD_lr_reset_paper_pop200_s0"
STATIC = "ant_static_fanin_paper_pop200_s0"


def text(doc: str) -> str:
    """The document with every run of whitespace (line breaks included) as one space."""
    return " ".join((ROOT / doc).read_text().split())


def quoted(doc: str, pattern: str) -> dict[str, str]:
    found = re.search(pattern, text(doc))
    assert found, f"{doc} no longer says {pattern!r}: update the sentence or this test"
    return found.groupdict()


def run_facts(stem: str) -> dict:
    """Generations, env steps (M, one decimal), the last population mean (rounded), wall hours of
    generations (``hours``: a float; see :func:`as_quoted`) and the history."""
    with RunStore.open(TRAINING / f"{stem}.h5") as store:
        history, generations = store.history(), store.generations_completed
    return {"g": str(generations), "steps": f"{history['env_steps'].sum() / 1e6:.1f}",
            "hours": history["wall_time"].sum() / 3600, "mean": str(round(history["fitness_mean"][-1])),
            "history": history}


def mean_at(facts: dict, g: int) -> str:
    """The run's population mean at generation ``g`` (counting from 1), rounded as the docs write it."""
    return str(round(facts["history"]["fitness_mean"][g - 1]))


def as_quoted(value: float, said: str) -> str:
    """``value`` written with as many decimals as the docs' ``said`` has."""
    return f"{value:.{len(said.partition('.')[2])}f}"


def stored_means(stem: str) -> dict[int, dict[str, str]]:
    """Per scored generation, each body's mean over the stored lifetimes, rounded as the docs write it."""
    scores = json.loads((TRAINING / f"{stem}_bodies.json").read_text())["scores"]
    return {int(g): {body: str(round(value)) for body, value in by_body.items()} for g, by_body in scores.items()}


def scored_to_the_last(stem: str, facts: dict) -> dict[int, dict[str, str]]:
    """:func:`stored_means`, checked to reach the run file's last stored mean (``facts``: :func:`run_facts`)."""
    means, g = stored_means(stem), int(facts["g"])
    last = max(means)
    assert g // 10 * 10 <= last <= g, f"the scores cache holds means to {last}, the run file {g} generations: score it again"
    return means


@pytest.fixture(scope="module")
def per_synapse():
    return run_facts(PER_SYNAPSE)


def test_the_per_synapse_runs_length_budget_and_mean_are_quoted_as_its_file_holds_them(per_synapse):
    facts = {k: per_synapse[k] for k in ("g", "steps", "mean")}
    said = quoted("README.md", r"finished at (?P<g>\d+) generations \((?P<steps>[\d.]+) M env steps, (?P<hours>[\d.]+) h "
                               r"of generations; population mean (?P<mean>\d+) at generation (?P<g2>\d+)")
    assert said == {**facts, "hours": as_quoted(per_synapse["hours"], said["hours"]), "g2": facts["g"]}
    said = quoted("models/README.md", r"finished at (?P<g>\d+) \([\d-]+: (?P<steps>[\d.]+) M env steps, (?P<hours>[\d.]+) "
                                      r"h of generations; population mean (?P<mean>\d+),")
    assert said == {**facts, "hours": as_quoted(per_synapse["hours"], said["hours"])}
    last_scored = str(max(stored_means(PER_SYNAPSE)))
    said = quoted("docs/results.md", r"it holds (?P<g>\d+) generations \(finished; population mean (?P<mean>\d+) at "
                                     r"generation (?P<g2>\d+) against \d+ at 300; stored means scored to generation "
                                     r"(?P<scored>\d+);")
    assert said == {"g": facts["g"], "mean": facts["mean"], "g2": facts["g"], "scored": last_scored}
    first = int(np.flatnonzero(per_synapse["history"]["fitness_mean"] > 1000)[0]) + 1
    assert quoted("README.md", r"first above 1,000 at (?P<g>\d+)\)") == {"g": str(first)}


def test_the_per_synapse_runs_last_stored_means_are_quoted_as_scored():
    means = stored_means(PER_SYNAPSE)
    last, before = sorted(means)[-1], sorted(means)[-2]
    trio = lambda g: [means[g][body] for body in ("default", "damage_right", "damage_left")]  # noqa: E731
    said = quoted("README.md", r"scored (?P<d>\d+) / (?P<r>\d+) / (?P<l>\d+) on `default` / `damage_right` / "
                               r"`damage_left` at generation (?P<g>\d+) \((?P<d2>\d+) / (?P<r2>\d+) / (?P<l2>\d+) at "
                               r"(?P<g2>\d+);")
    assert said == dict(zip(("d", "r", "l", "g", "d2", "r2", "l2", "g2"), [*trio(last), str(last), *trio(before), str(before)]))
    said = quoted("docs/results.md", r"\| the paper's lifetime budget \(300 x 500\) \| the extension of our run to "
                                     r"750 x 200, at (?P<g>\d+) \|.*?\(training bodies (?P<d>\d+) and (?P<r>\d+) at "
                                     r"(?P<g2>\d+)\) \|")
    assert said == {"g": str(last), "d": trio(last)[0], "r": trio(last)[1], "g2": str(last)}


def card_table(model: str) -> dict[str, str]:
    """A shipped model's test table from its card: {variant: "mean ± std"}, each of the card's one-decimal
    numbers rounded half up, as a reader of the card would (326.5 -> 327)."""
    rows = re.findall(r"^\| (\w+) \| \w+ \| (-?[\d.]+) ± ([\d.]+) \|", (ROOT / "models" / f"{model}.md").read_text(), re.M)
    whole = lambda number: str(Decimal(number).quantize(Decimal(1), ROUND_HALF_UP))  # noqa: E731
    return {variant: f"{whole(mean)} ± {whole(std)}" for variant, mean, std in rows}


def test_the_mirror_run_and_its_model_are_quoted_as_their_files_hold_them(per_synapse):
    mirror = run_facts(MIRROR)
    g = int(mirror["g"])
    ps = mean_at(per_synapse, g)
    said = quoted("README.md", r"Mirror-symmetric rules \(below\) at the same settings and seed, finished at (?P<g>\d+) "
                               r"generations \((?P<steps>[\d.]+) M env steps, (?P<hours>[\d.]+) h of generations; population "
                               r"mean (?P<mean>\d+) against (?P<ps>\d+) per synapse at generation (?P<g2>\d+)\)")
    assert said == {**{k: mirror[k] for k in ("g", "steps", "mean")}, "hours": as_quoted(mirror["hours"], said["hours"]),
                    "ps": ps, "g2": mirror["g"]}
    said = quoted("models/README.md", r"Finished at (?P<g>\d+) \([\d-]+: (?P<steps>[\d.]+) M env steps, (?P<hours>[\d.]+) h "
                                      r"of generations; population mean (?P<mean>\d+) at generation (?P<g2>\d+), where the "
                                      r"per-synapse run stood at (?P<ps>\d+)\)")
    assert said == {**{k: mirror[k] for k in ("g", "steps", "mean")}, "hours": as_quoted(mirror["hours"], said["hours"]),
                    "g2": mirror["g"], "ps": ps}
    results = text("docs/results.md")
    assert f"Its {g} generations" in results and f"one seed, {g} generations." in results

    chosen = model_info(ROOT / "models" / "ant_abcd_lr_mirror.h5")["generation"]
    table = card_table("ant_abcd_lr_mirror")
    said = quoted("README.md", r"the search mean after generation (?P<g>\d+)\)\. Over 100 test lifetimes per body it walks on "
                               r"`default` far beyond the paper's rule \(\*\*(?P<default>[\d ±]+)\*\* against 1051 ± 113\), on "
                               r"`damage_right` less far \((?P<damage_right>[\d ±]+) against 1019 ± 116;.*?and on `damage_left` "
                               r"as on `damage_right` \((?P<damage_left>[\d ±]+)\)\..*?\(`long_back` (?P<long_back>[\d ±]+), "
                               r"`long_front` (?P<long_front>[\d ±]+), `palm_damage_right` (?P<palm_damage_right>[\d ±]+),")
    assert said == {"g": str(chosen), **table}
    said = quoted("models/README.md", r"`ant_abcd_lr_mirror\.h5` .*?chosen at generation (?P<g>\d+) \| (?P<default>[\d ±]+) \| "
                                      r"(?P<damage_right>[\d ±]+) \| (?P<damage_left>[\d ±]+) \(mirror\) \|")
    assert said == {"g": str(chosen), **{k: table[k] for k in ("default", "damage_right", "damage_left")}}
    said = quoted("docs/results.md", r"\| body \| the mirror rule: seen in training \|.*?\| `default` \| yes \| \*\*(?P<default>[\d ±]+)\*\* \|.*?\| `damage_right` \| yes \| "
                                     r"(?P<damage_right>[\d ±]+) \|.*?\| `damage_left` \| its mirror image \| (?P<damage_left>[\d ±]+) \|"
                                     r".*?\| `palm_damage_right` \| no \| (?P<palm_damage_right>[\d ±]+) \|.*?\| `long_back` \| no \| "
                                     r"(?P<long_back>[\d ±]+) \|.*?\| `long_front` \| no \| (?P<long_front>[\d ±]+) \|")
    assert said == table


#: Runs beside seed 0's at the same settings: (file stem, how README.md's bullet on it begins).
BESIDE_SEED_0 = {
    SEED_1: r"A second seed of the per-synapse run \(`--seed 1`, the same settings\), ",
    FIRST_INPUT_RESET: r"The per-synapse run with the authors' first input \(`--first-input reset`, seed 0, the same "
                       r"settings\), ",
    STATIC: r"The static-weights baseline beside the per-synapse run \(\"seed 0\" here; `--static --init fan_in`, the "
            r"authors' start, the same settings and seed\), ",
}


@pytest.mark.parametrize("stem", BESIDE_SEED_0)
def test_a_run_beside_seed_0_is_quoted_as_its_file_holds_it(per_synapse, stem):
    """Its length, env steps, hours and population mean, beside seed 0's at the same generation."""
    run = run_facts(stem)
    g = int(run["g"])
    beside = {"s0": mean_at(per_synapse, g),
              "s0_steps": f"{per_synapse['history']['env_steps'][:g].sum() / 1e6:.1f}"}
    with RunStore.open(TRAINING / f"{stem}.h5") as store:
        finished = g >= int(store.config["generations"])
    length = r"finished at (?P<g>\d+) generations" if finished else r"(?P<g>\d+) generations so far"
    said = quoted("README.md", BESIDE_SEED_0[stem] + length + r": population mean "
                               r"(?P<mean>-?\d+) against (?P<s0>-?\d+) for seed 0 at generation (?P<g2>\d+) "
                               r"\((?P<steps>[\d.]+) M env steps against (?P<s0_steps>[\d.]+) M\)")
    assert said == {**{k: run[k] for k in ("g", "steps", "mean")}, "g2": run["g"], **beside}
    paragraph = rf"`training/{stem}\.h5`:(?:(?!`training/).)*?"  # within its own paragraph
    said = quoted("models/README.md", paragraph + r"(?P<g>\d+) of 300 generations \((?P<steps>[\d.]+) M env steps, "
                                      r"(?P<hours>[\d.]+) h of generations; population mean (?P<mean>-?\d+) at generation "
                                      r"(?P<g2>\d+), where seed 0 stood at (?P<s0>-?\d+)\)")
    assert said == {**{k: run[k] for k in ("g", "steps", "mean")}, "hours": as_quoted(run["hours"], said["hours"]),
                    "g2": run["g"], "s0": beside["s0"]}


def test_the_second_seeds_damage_left_is_quoted_as_its_stored_means_scored(per_synapse):
    """The highest `damage_left` score of each seed's stored means up to seed 1's last generation."""
    g = int(run_facts(SEED_1)["g"])
    best = {stem: max(int(by_body["damage_left"]) for at, by_body in stored_means(stem).items() if at <= g)
            for stem in (SEED_1, PER_SYNAPSE)}
    assert_said = lambda doc, said: quoted(doc, re.escape(said))  # noqa: E731
    assert_said("README.md", f"Its stored means scored at most {best[SEED_1]} on `damage_left` at any generation to {g}, "
                             f"seed 0's at most {best[PER_SYNAPSE]} (10 lifetimes each)")
    assert_said("docs/results.md", f"| seed 1: at most {best[SEED_1]} at every stored mean to {g} (seed 0 at most "
                                   f"{best[PER_SYNAPSE]});")


BODIES = ("default", "damage_right", "damage_left", "palm_damage_right", "long_back", "long_front")
#: "A-B at G1-G2", "A to B at G1-G2", "between A and B from generation G1 to G2": a body's lowest and
#: highest score over the stored means in a window of generations
RANGE = re.compile(r"(?<![\d.])(?P<lo>-?\d+)(?:-| to )(?P<hi>-?\d+) at (?P<g1>\d+)-(?P<g2>\d+)"
                   r"|between (?P<lo2>-?\d+) and (?P<hi2>-?\d+) from generation (?P<g1b>\d+) to (?P<g2b>\d+)")


def test_every_range_of_the_per_synapse_runs_stored_means_is_their_lowest_and_highest():
    """A range quoted for a body (the last body named in backticks earlier in its sentence) is the
    lowest and highest score of the per-synapse run's stored means in that window. A range of
    another run written this way fails too: tell them apart here."""
    means = stored_means(PER_SYNAPSE)
    checked = 0
    for doc in ("README.md", "docs/results.md"):
        whole = text(doc)
        for found in RANGE.finditer(whole):
            sentence = whole[whole.rfind(". ", 0, found.start()) + 1:found.start()]
            at, body = max((sentence.rfind(f"`{body}`"), body) for body in BODIES)
            if at < 0:
                continue  # no body named: not a range of scores
            lo, hi, g1, g2 = (int(found[k] or found[k2]) for k, k2 in (("lo", "lo2"), ("hi", "hi2"), ("g1", "g1b"),
                                                                           ("g2", "g2b")))
            window = [int(by_body[body]) for g, by_body in means.items() if g1 <= g <= g2]
            assert window and (min(window), max(window)) == (lo, hi), (
                f"{doc}: `{body}` {found[0]!r}: the stored means there score {min(window, default=None)} to "
                f"{max(window, default=None)}")
            checked += 1
    assert checked >= 14  # the sentences are still found (13 ranges at 636 and 712; 14 at 750, with the mirror section's)


def test_the_first_input_runs_stored_means_are_quoted_as_scored():
    """results.md's paragraph on the run with the authors' first input: its stored means (scored to the
    committed file's last) on the training bodies and `damage_left`, beside seed 0's to the same generation."""
    reset, seed_0 = scored_to_the_last(FIRST_INPUT_RESET, run_facts(FIRST_INPUT_RESET)), stored_means(PER_SYNAPSE)
    last = max(reset)
    said = quoted("docs/results.md",
                  r"On `damage_right` its stored means reached (?P<W>-?\d+) \(seed 0's (?P<W0>-?\d+) by then\); on `default` "
                  r"none scored 100 or more until generation (?P<first_r>\d+) \(at most (?P<before>-?\d+) from generation "
                  r"(?P<after>\d+) on\), where seed 0's reached 100 at generation (?P<first>\d+); by (?P<G>\d+) they reached "
                  r"(?P<D>-?\d+) and (?P<D0>-?\d+)\. On `damage_left` at most (?P<L>-?\d+) \(seed 0's (?P<L0>-?\d+)\)")
    after = int(said["after"])

    def best(means, body, start=0, end=last):
        return str(max(int(by_body[body]) for at, by_body in means.items() if start <= at <= end))

    def first_solved(means, start=0):
        return min(at for at, by_body in means.items() if at >= start and int(by_body["default"]) >= 100)

    first_r = first_solved(reset, after)
    assert said == {"W": best(reset, "damage_right"), "W0": best(seed_0, "damage_right"), "first_r": str(first_r),
                    "before": best(reset, "default", after, first_r - 1), "after": str(after),
                    "first": str(first_solved(seed_0)), "G": str(last), "D": best(reset, "default"),
                    "D0": best(seed_0, "default"), "L": best(reset, "damage_left"), "L0": best(seed_0, "damage_left")}


def test_the_static_baseline_and_its_rule_are_quoted_as_their_files_hold_them(per_synapse):
    """results.md's paragraph, rows and main-table row on the static baseline, the README's bullet and
    models/README's row: its length, budget, stored means on the bodies (scored to its last
    generation) beside the per-synapse run's, and its rule's card and mirror test."""
    run = run_facts(STATIC)
    g = int(run["g"])
    static, seed_0 = scored_to_the_last(STATIC, run), stored_means(PER_SYNAPSE)
    last = max(static)
    said = quoted("docs/results.md",
                  r"was started on 2026-11-27 and finished at (?P<g>\d+) generations \((?P<steps>[\d.]+) M env steps, "
                  r"(?P<hours>[\d.]+) h of generations; population mean (?P<mean>-?\d+) at generation (?P<g2>\d+), where "
                  r"the per-synapse Hebbian run stood at (?P<s0>-?\d+) after (?P<s0_steps>[\d.]+) M env steps;.*? at "
                  r"generation (?P<g10>\d+) on `default` / `damage_right` (?P<D>-?\d+) / (?P<R>-?\d+), where the Hebbian "
                  r"run's scored (?P<D0>-?\d+) / (?P<R0>-?\d+); on the unseen `damage_left` at most (?P<L>-?\d+) at every "
                  r"stored mean to generation (?P<G>\d+), where the Hebbian run's scored at most (?P<L0>-?\d+)\.")
    g10 = max(at for at in static if at % 10 == 0)
    best = lambda means, body: str(max(int(by_body[body]) for at, by_body in means.items() if at <= last))  # noqa: E731
    assert said == {"g": run["g"], "steps": run["steps"], "hours": as_quoted(run["hours"], said["hours"]),
                    "mean": run["mean"], "g2": run["g"], "s0": mean_at(per_synapse, g),
                    "s0_steps": f"{per_synapse['history']['env_steps'][:g].sum() / 1e6:.1f}", "g10": str(g10),
                    "D": static[g10]["default"], "R": static[g10]["damage_right"], "D0": seed_0[g10]["default"],
                    "R0": seed_0[g10]["damage_right"], "G": str(last), "L": best(static, "damage_left"),
                    "L0": best(seed_0, "damage_left")}
    assert quoted("docs/results.md", r"for the static-weights baseline at the same settings \(finished at (?P<g>\d+)\)") == {"g": run["g"]}

    chosen = str(model_info(ROOT / "models" / "ant_static.h5")["generation"])
    rule = card_table("ant_static")
    card = (ROOT / "models" / "ant_static.md").read_text()
    steps, hours = re.search(r"^- budget: 300 generations, ([\d,]+) env steps, ([\d.]+) h of wall time", card, re.M).groups()
    stored = len(model_info(ROOT / "models" / "ant_static.h5")["selection"]["scores"])
    mirror = {body: row.split(" | ") for body, row in re.findall(
        r"^\| `(\w+)` \| (-?\d+ ± \d+ \| -?\d+ ± \d+) \|", json.loads((TRAINING / "mirror_ant_static.json").read_text())["table"], re.M)}
    hebbian = quoted("docs/results.md", r"\| the same run's rule after 300 generations \(shipped before it\) \| [^|]+ \| "
                                        r"(?P<d>[\d ±]+) \(solved\) \| (?P<r>[\d ±]+) \(solved\) \| (?P<l>[\d ±]+) \(unseen\) \|")
    d, r, l = rule["default"], rule["damage_right"], rule["damage_left"]
    cell = r"-?\d+ ± \d+"
    said = quoted("docs/results.md",
                  rf"Its rule, chosen as the Hebbian ones were \(`spikehebb select`: the mean after generation (?P<chosen>\d+), "
                  rf"the best of its (?P<stored>\d+) stored means; `models/ant_static.h5`, card `models/ant_static.md`\), over "
                  rf"100 test lifetimes per body: `default` (?P<d>{cell}), `damage_right` (?P<r>{cell}), `damage_left` "
                  rf"(?P<l>{cell}) \(the per-synapse Hebbian rule after 300 generations: (?P<d0>[\d ±]+), (?P<r0>[\d ±]+) "
                  rf"and (?P<l0>[\d ±]+);.*?Through the mirror \(`mirror_ant.py`, 20 lifetimes\) it scores (?P<ml>{cell}) "
                  rf"on `damage_left`, against (?P<il>{cell}) as itself \(`damage_right` (?P<ir>{cell}) as itself\)")
    assert said == {"chosen": chosen, "stored": str(stored), "d": d, "r": r, "l": l, "d0": hebbian["d"], "r0": hebbian["r"],
                    "l0": hebbian["l"], "ml": mirror["damage_left"][1], "il": mirror["damage_left"][0],
                    "ir": mirror["damage_right"][0]}
    solved = lambda c: rf"{c} \(solved\)" if int(c.split(" ±")[0]) >= 100 else c  # noqa: E731
    assert re.search(rf"\| \*\*`models/ant_static.h5`\*\*: .*?chosen at generation {chosen} by `spikehebb select`; 100 test "
                     rf"lifetimes \(Najarro & Risi's static network: 1604 ± 171, 1431 ± 54, 68 ± 56\) \| "
                     rf"{int(steps.replace(',', '')) / 1e6:.1f} M env steps, {hours} h of generations \| {solved(d)} \| "
                     rf"{solved(r)} \| {l} \(unseen\) \|", text("docs/results.md")), "results.md's main-table row on ant_static"
    row = quoted("docs/results.md", r"--static --init fan_in`, finished at (?P<g>\d+): its rule chosen at (?P<chosen>\d+) "
                                    r"\(`models/ant_static.h5`, 100 test lifetimes\) and its stored means on all six bodies "
                                    r"\(10 lifetimes each\) \| its rule (?P<l>-?[\d]+ ± [\d]+) \(the Hebbian rule after 300 "
                                    r"generations: (?P<l0>[\d ±]+)\); its stored means at most (?P<L>-?\d+) to generation "
                                    r"(?P<G>\d+) \(the Hebbian run's at most (?P<L0>-?\d+)\) \|")
    assert row == {"g": run["g"], "chosen": chosen, "l": l, "l0": hebbian["l"], "L": best(static, "damage_left"),
                   "G": str(last), "L0": best(seed_0, "damage_left")}
    bullet = quoted("README.md", r"Its rule, shipped as `models/ant_static.h5` \(\[card\]\(models/ant_static.md\), the search "
                                 r"mean after generation (?P<chosen>\d+)\), over 100 test lifetimes per body: `default` "
                                 r"(?P<d>-?\d+ ± \d+), `damage_right` (?P<r>-?\d+ ± \d+), `damage_left` (?P<l>-?\d+ ± \d+) \(.*?"
                                 r"Its stored means on `damage_left` at most (?P<L>-?\d+) to generation (?P<G>\d+) \(the "
                                 r"Hebbian run's at most (?P<L0>-?\d+); \[docs/results.md\]")
    assert bullet == {"chosen": chosen, "d": d, "r": r, "l": l, **{k: row[k] for k in ("L", "G", "L0")}}
    assert re.search(rf"\| `ant_static.h5` \(\[card\]\(ant_static.md\)\) \| .*?chosen at generation {chosen} \| {d} \| {r} \| "
                     rf"{l} \|", text("models/README.md")), "models/README.md's row on ant_static.h5"


POP500 = "ant_ABCD_lr_paper_pop500_s0"


def test_the_population_500_run_is_quoted_as_its_file_holds_it(per_synapse):
    """Its length, env steps, hours and population mean, beside the population-200 run's mean
    after as many env steps (the first generation whose env steps reach the population-500 run's)."""
    run = run_facts(POP500)
    steps_200 = np.cumsum(per_synapse["history"]["env_steps"])
    g200 = int(np.searchsorted(steps_200, run["history"]["env_steps"].sum())) + 1
    said = quoted("docs/results.md", r"\| population 500 instead of 200 \|(?:(?!\n).)*?(?P<g>\d+) of 300 generations so far "
                                     r"\((?P<steps>[\d.]+) M env steps, (?P<hours>[\d.]+) h of generations\): population "
                                     r"mean (?P<mean>-?\d+), where the population-200 run stood at (?P<s200>-?\d+) after "
                                     r"as many env steps \(generation (?P<g200>\d+)\)")
    assert said == {**{k: run[k] for k in ("g", "steps", "mean")}, "hours": as_quoted(run["hours"], said["hours"]),
                    "s200": mean_at(per_synapse, g200), "g200": str(g200)}
