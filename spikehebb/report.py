"""One self-contained HTML page per run (``spikehebb report``): what a researcher sends a colleague.

Sections, each present when there is something to show:

1. the run: what ``spikehebb inspect`` says;
2. training curves (:func:`spikehebb.plots.plot_fitness`);
3. the test table: fresh test lifetimes per variant (:func:`spikehebb.assess.assess`), with
   Najarro & Risi 2020's numbers beside ours where the paper gives them (:data:`PAPER`);
4. what the rule does: the trace figures of every lifetime the run file holds
   (``evaluate --traces``; :mod:`spikehebb.plots`);
5. recovery from perturbations: the JSON and PNG ``experiments/perturb_ant.py`` writes
   (by default ``<run>_recovery.json`` and ``.png`` beside the run file);
6. videos: ``.mp4`` / ``.gif`` files made by ``spikehebb video`` (by default ``<run>.mp4`` and
   ``<run>_<variant>.mp4`` for the task's variants, and the same ``.gif``, beside the run file).

Every image and video is embedded as a base64 ``data:`` URI and the page has no scripts, style
sheets or links to other files: it is one file that opens anywhere.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from matplotlib.figure import Figure

from spikehebb import __version__
from spikehebb.config import AgentConfig, TrainConfig
from spikehebb.store.transaction import check_can_write, whole_file
from spikehebb.tracefile import is_traces_file

#: Najarro & Risi 2020, Table 1 (100 rollouts each): mean ± std per morphology, keyed by the
#: (task, agent kind, rule) they were measured with; README.md and docs/results.md quote the same numbers.
PAPER = {
    ("ant", "hebbian", "ABCD_lr"): {"default": (1051, 113), "damage_right": (1019, 116), "damage_left": (452, 95)},
    ("ant", "static", None): {"default": (1604, 171), "damage_right": (1431, 54), "damage_left": (68, 56)},
}
VIDEO_TYPES = {".mp4": "video/mp4", ".gif": "image/gif"}
STYLE = """
body { font-family: sans-serif; max-width: 62rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #bbb; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img, video { max-width: 100%; display: block; margin: 0.5rem 0 1.2rem; }
pre { background: #f4f4f4; padding: 0.6rem; overflow-x: auto; }
.note { color: #555; font-size: 0.9rem; }
"""


def paper_numbers(config: TrainConfig) -> dict[str, tuple[int, int]]:
    """The paper's numbers a run of ``config`` compares with: {} unless the run is the paper's
    setting (its ant, trained on ``default`` and ``damage_right``, its episode rules and fitness,
    rates of either sign, one rule per synapse or the authors' shared rows ``i_plus_j`` and no
    shared-rule strategy, and the Hebbian ABCD_lr rule or static weights, with none of the biology
    options; backend and dtype aside). A mirror-symmetric rule gets none either: the paper's unseen
    body, damage_left, is the mirror image of its training body damage_right, so the paper's row
    would be no match."""
    task, agent = config.task, config.agent
    numbers = PAPER.get((task.name, agent.kind, agent.rule), {})
    if not numbers or config.strategy.shares_rules or set(task.make().train_variants) != {"default", "damage_right"}:
        return {}
    return numbers if papers_protocol(config, allow_rows=("i_plus_j",)) else {}


def papers_protocol(config: TrainConfig, allow_rows: Sequence[str] = ()) -> bool:
    """Whether a run is the papers' network and protocol, whatever its bodies, budget and
    strategy: the task's episode rules (either first input: "reset" is the authors' code's,
    design.md) and fitness, rates of either sign, one rule per synapse (or rows in
    ``allow_rows``), none of the biology options; backend and dtype aside. Najarro & Risi's
    and Palm et al.'s numbers are shown only beside such runs."""
    task, agent = config.task, config.agent
    # the lifetime length is a budget, as the population and generations are
    if task.positive or task.episode not in (None, {"first_input": "reset"}) or task.fitness_floor is not None:
        return False
    rows = agent.coefficient_rows if agent.coefficient_rows in allow_rows else "per_synapse"
    reference = AgentConfig(kind=agent.kind, rule=agent.rule, backend=agent.backend, dtype=agent.dtype,
                            coefficient_rows=rows)
    unused = {}  # settings that do nothing without their option
    if agent.dale is None:
        unused.update(dale_mode=reference.dale_mode, dale_seed=reference.dale_seed, dale_balance=reference.dale_balance)
    if not agent.modulated:
        unused.update(eligibility_tau=reference.eligibility_tau, baseline_tau=reference.baseline_tau)
    return replace(agent, **unused) == reference


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def figure_img(fig: Figure, alt: str) -> str:
    """An ``<img>`` holding the figure as an embedded PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return f'<img alt="{html.escape(alt)}" src="{data_uri(buf.getvalue(), "image/png")}">'


def file_media(path: Path) -> str:
    """An embedded ``<img>`` (PNG, GIF) or ``<video>`` (MP4) of a file."""
    suffix = path.suffix.lower()
    if suffix == ".mp4":
        return f'<video controls muted loop src="{data_uri(path.read_bytes(), "video/mp4")}"></video>'
    mime = {".png": "image/png", ".gif": "image/gif"}.get(suffix)
    if mime is None:
        raise ValueError(f"cannot embed {path.name}: expected .png, .gif or .mp4")
    return f'<img alt="{html.escape(path.name)}" src="{data_uri(path.read_bytes(), mime)}">'


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def test_section(path: Path, episodes: int, variants: Sequence[str] | None, workers: int) -> str:
    """Fresh test lifetimes of the run's search mean, with the paper's numbers beside them."""
    from spikehebb.agents import lifetime_start
    from spikehebb.assess import FITNESS_UNITS, assess, failed_legend, load_run, seen_note
    from spikehebb.lifetimes import run_label
    from spikehebb.plots import run_task
    from spikehebb.tasks import get_task

    name, label = run_task(path), run_label(path)
    task = get_task(name)
    config, params = load_run(path)
    # the run's own training bodies first (a run may train on others than the task's defaults)
    trained = config.task.make().train_variants
    variants = list(variants or dict.fromkeys(trained + task.train_variants + task.test_variants))
    paper = paper_numbers(config)
    results = assess(config, params, variants, episodes, workers)
    rows = [
        (r.variant, r.seen, *r.cells(), "{} ± {}".format(*paper[r.variant]) if r.variant in paper else "-")
        for r in results
    ]
    solved_at = results[0].solved_at
    note = (
        f"{label}, the search mean after {_generations(path)} generations; mean ± std over {episodes} lifetimes "
        f"per variant, each from {lifetime_start(config.agent, config.task.make())}. {seen_note(results)} "
        f"solved: mean fitness >= {solved_at:g}. fitness: {FITNESS_UNITS.get(name, 'the summed env reward')}."
    )
    if legend := failed_legend(results):
        note += f" {legend}"
    if paper:  # the paper's row for this agent (PAPER)
        which = "static-weights" if config.agent.kind == "static" else f"Hebbian {config.agent.rule}"
        note += f" Paper: Najarro & Risi 2020, Table 1, 100 lifetimes of their {which} {name}."
    return table(["variant", "seen", f"ours ({episodes} lifetimes)", "solved", "paper"], rows) + f'<p class="note">{html.escape(note)}</p>'


def trace_section(path: Path) -> str:
    from spikehebb.plots import PLOTTERS, load_trace, trace_names

    parts = []
    for name in trace_names(path):
        trace = load_trace(path, name)
        parts.append(f"<h3>{html.escape(trace.variant)}, episode {trace.episode} "
                     f"(fitness {trace.fitness:.1f}, {trace.steps} network steps)</h3>")
        for kind, plot in PLOTTERS.items():
            if kind == "matrices" and trace.subsampled:
                continue
            parts.append(figure_img(plot(trace), f"{kind}, {name}"))
    return "".join(parts)


def read_recovery(recovery: Path) -> tuple[list, dict]:
    """The rows and settings of a recovery table (the JSON ``experiments/perturb_ant.py`` writes),
    or a one-line ValueError saying it is not one."""
    from spikehebb.perturb import rows_from_json

    try:
        data = json.loads(recovery.read_text())
        return rows_from_json(data["rows"]), dict(data.get("settings", {}))
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{recovery} is not a recovery table of experiments/perturb_ant.py "
                         f"({type(err).__name__}: {err})") from None


def recovery_section(recovery: Path, rows: list, s: dict) -> str:
    from spikehebb.perturb import TABLE_COLUMNS, table_cells

    body = table(list(TABLE_COLUMNS), [table_cells(r) for r in rows])
    note = (f"Perturbation at network step {s.get('t0', '?')} on the {s.get('variant', 'default')} body "
            "(spikehebb/perturb.py): recovery = steps until the 50-step mean speed regains 80% of its level "
            "before the perturbation; censored at the lifetime's end."
            + (f" motor: the two motors of leg {s.get('leg', 0)} off (0 front left, 1 back left, 2 back right, "
               "3 front right)." if any(r.perturbation == "motor" for r in rows) else ""))
    png = recovery.with_suffix(".png")
    return body + f'<p class="note">{html.escape(note)}</p>' + (file_media(png) if png.is_file() else "")


def default_videos(path: Path, variants: Sequence[str]) -> list[Path]:
    """The videos beside the run named for it: ``RUN.mp4`` and ``RUN_<variant>.mp4`` (or .gif) for
    the task's ``variants`` (not ``RUN_mirror.mp4``: that is another model's)."""
    names = [path.stem] + [f"{path.stem}_{v}" for v in variants]
    return [path.parent / (n + suffix) for suffix in VIDEO_TYPES for n in names if (path.parent / (n + suffix)).is_file()]


def build_report(
    run: str | Path,
    output: str | Path | None = None,
    *,
    episodes: int = 10,
    variants: Sequence[str] | None = None,
    workers: int = 1,
    test: bool = True,
    videos: Sequence[str | Path] | None = None,
    recovery: str | Path | None = None,
) -> Path:
    """Write the HTML page of a run (default ``<run>.html`` beside it); returns its path.

    episodes: test lifetimes per variant (``test=False`` skips the test table); variants: which
    (default: the task's training and test variants); videos: files to embed (default: those
    beside the run, see the module docstring); recovery: the perturbation JSON (default
    ``<run>_recovery.json`` if present).
    """
    from spikehebb.plots import plot_fitness, run_task
    from spikehebb.store import RunStore

    path = Path(run)
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    if is_traces_file(path):
        raise ValueError(f"{path} is a traces file: it holds recorded lifetimes, not a run; give the run file to "
                         f"report it (plot these traces with `spikehebb plot {path}`)")
    out = Path(output) if output is not None else path.with_suffix(".html")
    check_output(out, path)
    with RunStore.open(path) as store:
        summary, history = store.summary(), store.history()
    from spikehebb.tasks import get_task

    task = get_task(run_task(path))
    if variants is not None:
        task.check_variants(variants)
        if len(set(variants)) != len(variants):
            raise ValueError(f"variants must be distinct, got {list(variants)}")
    videos = default_videos(path, task.variants) if videos is None else [Path(v) for v in videos]
    for v in videos:
        if v.suffix.lower() not in VIDEO_TYPES:
            raise ValueError(f"videos must be .mp4 or .gif, got {v}")
        if not v.is_file():
            raise FileNotFoundError(f"video {v} does not exist")
    default_recovery = path.with_name(path.stem + "_recovery.json")
    recovery = Path(recovery) if recovery is not None else (default_recovery if default_recovery.is_file() else None)
    if recovery is not None and not recovery.is_file():
        raise FileNotFoundError(f"recovery table {recovery} does not exist (experiments/perturb_ant.py writes it)")
    recovery_rows = read_recovery(recovery) if recovery is not None else None

    sections = [("The run", f"<pre>{html.escape(summary)}</pre>")]
    if len(history["generation"]):
        sections.append(("Training", figure_img(plot_fitness(history, path.name, run_task(path)), "training curves")))
    if test:
        sections.append(("Test lifetimes", test_section(path, episodes, variants, workers)))
    traces = trace_section(path)
    if traces:
        sections.append(("What the rule does (recorded lifetimes)", traces))
    if recovery is not None:
        sections.append(("Recovery from perturbations", recovery_section(recovery, *recovery_rows)))
    if videos:
        sections.append(("Videos", "".join(f"<h3>{html.escape(v.name)}</h3>{file_media(v)}" for v in videos)))

    created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = "".join(f"<h2>{html.escape(title)}</h2>\n{content}\n" for title, content in sections)
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(path.name)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(path.name)}</h1>\n"
        f'<p class="note">spikehebb {__version__} report, {created}. Everything on this page is embedded in it.</p>\n'
        f"{body}</body>\n</html>\n"
    )
    with whole_file(out, "write the report") as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out


def check_output(out: Path, run: Path) -> None:
    """A one-line error, said before any lifetime runs, unless ``out`` can take the report of
    ``run``: an .html or .htm file in a folder that takes it, not a folder, not the run file
    itself (by any name: a link to it too)."""
    if out.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"the report is an HTML page: -o must end in .html or .htm, got {out}")
    if out.resolve() == run.resolve() or (out.exists() and run.exists() and os.path.samefile(out, run)):
        raise ValueError(f"-o {out} is the run file {run} itself; the report goes to another file, e.g. "
                         f"{run.with_suffix('.html')}")
    check_can_write([out], "-o", out)


def _generations(path: Path) -> int:
    """Generations behind the run's ``/mean``: a model's chosen mean (``spikehebb select`` may pick
    an earlier one than the run's last), else the run's count."""
    from spikehebb.models import model_info
    from spikehebb.store import RunStore

    info = model_info(path)
    if info is not None and "generation" in info:
        return int(info["generation"])
    with RunStore.open(path) as store:
        return store.generations_completed
