"""Ship an ant rule: select it from a training run and remake every figure the docs show of it.

One command for what the README's results table and docs/results.md's "The ant" and "What the
shipped rule does during a lifetime" sections were made with, each step the command line they quote:

    python experiments/ship_ant.py models/training/ant_ABCD_lr_paper_pop200_s0.h5 --dry-run
    cp runs/paper/ant_ABCD_lr_paper_pop200_s0.h5 models/training/
    python experiments/ship_ant.py models/training/ant_ABCD_lr_paper_pop200_s0.h5 --workers 2

Ship from the committed copy in ``models/training/``: the bodies step's scores are cached beside
the run file (``*_bodies.json``), and the committed cache is the one kept current (and checked by
``tests/test_run_status.py``); beside a copy elsewhere every stored mean would be scored anew.

Steps, in order (``--steps`` picks some): ``select`` (the model, its card and training curve under
``models/``), ``gifs`` (the first 400 steps of test lifetime 0 on three bodies, ``docs/img/``),
``no_early_end`` (the test run to the step limit on default and damage_left), ``mirror``
(``mirror_ant.py``: 20 test lifetimes on three bodies, as themselves and through a left-right
mirror, to ``models/training/``), ``traces`` (one recorded lifetime on a copy of the model; its
norms figure to ``docs/img/``), ``recovery`` (``perturb_ant.py`` at step 480, the front-right leg
at 480, redraws at 200 and 700), ``weights_by_body`` and ``bodies`` (each stored mean of the paper's
runs on all six bodies: the one figure of them all, the shipped run first when it is not one of
them). Every step's output goes to ``--log-dir``/STEP.log, by default ``runs/ship/NAME/`` (scratch,
not committed); the records whose numbers README.md and docs/results.md quote are copied to
``models/training/NAME/`` (the recovery runs' JSON, the ``no_early_end`` and ``weights_by_body``
logs), beside ``models/training/mirror_NAME.json`` and the bodies caches. Every file a step writes but that figure is named
after the model, so another run ships beside the first without touching its files (the bodies
figure gains a panel when the run is not one of the paper runs it draws)::

    python experiments/ship_ant.py models/training/ant_ABCD_lr_mirror_paper_pop200_s0.h5 \
        --name ant_abcd_lr_mirror --command "spikehebb train --paper --popsize 200 --seed 0 --coefficient-rows mirror"

A step is skipped when its files exist and it made them, recorded beside its log, from what they are
made from as it is now (the run file for ``select`` and ``bodies``, the model for the rest: its
SHA-256), unless ``--force``. ``spikehebb select`` does not overwrite a model: remove the old one
first (it stays in git history); a new model then remakes every figure. A model that a stopped
select left without its card gets the card from the same command, keeping the mean it chose.
"""
from __future__ import annotations

import argparse
import hashlib
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: How the run was trained, for the model card (the paper's run, issue 15): ``--paper`` is 300
#: generations; the run was extended to 750 with ``--resume`` (the same numbers as 750 from the
#: start: nothing in the search depends on the run's length).
PAPER_COMMAND = "spikehebb train --paper --popsize 200 --seed 0 --generations 750"
GIF_BODIES = ("default", "damage_right", "damage_left")
#: The runs of the bodies figure (docs/img/paper_bodies_over_training.png), in its order: the paper's
#: run per synapse, with the authors' shared coefficient rows, the static-weights baseline and
#: mirror-symmetric rules, all at the same settings. A shipped run not among them is drawn first.
COMPARE = ("models/training/ant_ABCD_lr_paper_pop200_s0.h5", "models/training/ant_ABCD_lr_iplusj_paper_pop200_s0.h5",
           "models/training/ant_static_fanin_paper_pop200_s0.h5", "models/training/ant_ABCD_lr_mirror_paper_pop200_s0.h5")


@dataclass
class Step:
    """One step: the command lines it runs (in order) and the files it leaves (skip when all exist)."""

    name: str
    source: Path  # what its files are made from: remade when it is newer than any of them
    commands: list[list[str]]
    outputs: list[Path] = field(default_factory=list)
    before: list[tuple[Path, Path]] = field(default_factory=list)  # (from, to) copies before the commands
    then: list[tuple[Path, Path]] = field(default_factory=list)  # and after them


def steps(run: Path, name: str, args: argparse.Namespace) -> list[Step]:
    model = Path("models") / f"{name}.h5"
    img = Path("docs/img")
    workers = ["--workers", str(args.workers)] if args.workers else []
    eval_workers = ["--eval-workers", str(args.workers)] if args.workers else []  # evaluate's name for it
    python = [sys.executable, "experiments/"]
    script = lambda file, *rest: [python[0], python[1] + file, *rest]  # noqa: E731
    traced = Path(args.log_dir) / f"{name}_traces.h5"
    recovery = img / f"{name}_recovery"
    mirror = Path("models/training") / f"mirror_{name}.json"
    kept = Path("models/training") / name  # the records whose numbers the docs quote (log_dir is scratch)
    log = lambda file: Path(args.log_dir) / file  # noqa: E731
    recovery_runs = ("recovery_t480", "recovery_leg3", "recovery_t200", "recovery_t700")
    return [
        Step("select", run, [["spikehebb", "select", str(run), "-o", str(model), "--command", args.command,
                         "--machine", args.machine, *workers]],
             [model, model.with_suffix(".md"), model.with_name(f"{name}_curve.png")]),
        Step("gifs", model, [["spikehebb", "video", str(model), "--variant", body, "--eval-steps", "440", "--every", "6",
                       "-o", str(img / f"{name}_{body}.gif")] for body in GIF_BODIES],
             [img / f"{name}_{body}.gif" for body in GIF_BODIES]),
        Step("no_early_end", model, [["spikehebb", "evaluate", str(model), "--variant", "default", "damage_left",
                               "--no-early-end", "--episodes", "100", *eval_workers]],
             [kept / "no_early_end.log"], then=[(log("no_early_end.log"), kept / "no_early_end.log")]),  # its numbers
        Step("mirror", model, [script("mirror_ant.py", str(model), "--episodes", "20", "--out", str(mirror))],
             [mirror]),
        Step("traces", model, [["spikehebb", "evaluate", str(traced), "--variant", "default", "--episodes", "1", "--traces"],
                        ["spikehebb", "plot", str(traced), "--traces", "--out-dir", str(args.log_dir)]],
             [img / f"{name}_norms_default.png"], before=[(model, traced)],
             then=[(Path(args.log_dir) / f"{name}_traces_default_ep0_norms.png", img / f"{name}_norms_default.png")]),
        Step("recovery", model, [script("perturb_ant.py", "--hebbian", str(model), "--t0", "480", "--out",
                                        str(log("recovery_t480"))),
                          script("perturb_ant.py", "--hebbian", str(model), "--t0", "480", "--perturbations", "motor",
                                 "--leg", "3", "--out", str(log("recovery_leg3"))),
                          *(script("perturb_ant.py", "--hebbian", str(model), "--t0", str(t0), "--perturbations", "none",
                                   "redraw", "--out", str(log(f"recovery_t{t0}"))) for t0 in (200, 700))],
             [recovery.with_suffix(".png"), *(kept / f"{run}.json" for run in recovery_runs)],
             then=[(log("recovery_t480.png"), recovery.with_suffix(".png")),
                   *((log(f"{run}.json"), kept / f"{run}.json") for run in recovery_runs)]),
        Step("weights_by_body", model, [script("weights_by_body.py", str(model), "--episodes", "5",
                                        "--out", str(img / f"{name}_weights_by_body.png"))],
             [img / f"{name}_weights_by_body.png", kept / "weights_by_body.log"],
             then=[(log("weights_by_body.log"), kept / "weights_by_body.log")]),
        # no files declared: it always runs, scoring only the stored means its caches lack (the
        # compared runs change too)
        Step("bodies", run, [script("bodies_over_training.py", *([] if str(run) in args.compare else [str(run)]),
                                    *args.compare, *workers,
                               "--out", str(img / "paper_bodies_over_training.png"))]),
    ]


def digest(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def record_of(step: Step, log_dir: Path) -> Path:
    """Where a finished step records the digest of the source it was made from."""
    return ROOT / log_dir / f"{step.name}.made_from"


def up_to_date(step: Step, log_dir: Path) -> bool:
    """Whether every file of ``step`` exists and this script made them from its source as it is
    now (the step's record holds the source's digest). Git keeps no file times, so a fresh clone
    has no records and every step runs. False for a step without files."""
    source, record = ROOT / step.source, record_of(step, log_dir)
    return (bool(step.outputs) and source.exists() and record.exists()
            and all((ROOT / out).exists() for out in step.outputs) and record.read_text().strip() == digest(source))


def from_root(path: str | Path) -> Path:
    """``path`` (relative to the working directory) as the steps name it: relative to the
    repository root, where they run, when it lies inside it."""
    path = Path(path).resolve()
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="the training run file (.h5) to select from")
    parser.add_argument("--name", default="ant_abcd_lr", help="model name: models/NAME.h5 (default: %(default)s)")
    parser.add_argument("--command", help="how the run was trained, for the card (needed for a run other than the "
                                          f"per-synapse paper run, whose command is {PAPER_COMMAND!r})")
    parser.add_argument("--machine", default="this project's 2-core machine", help="where it trained, for the card")
    parser.add_argument("--compare", nargs="*", default=None, metavar="RUNFILE",
                        help="the runs of the bodies figure, the shipped run first when not among them (default: the "
                             "paper's runs per synapse, with shared rows, static and mirror-symmetric)")
    parser.add_argument("--steps", nargs="+", metavar="STEP", help="only these steps (default: all, in order)")
    parser.add_argument("--workers", type=int, help="processes for select, the tests and the bodies step (default: "
                                                    "one per core for select and the tests, one for the bodies)")
    parser.add_argument("--log-dir", help="each step's output and scratch files (default: runs/ship/NAME)")
    parser.add_argument("--force", action="store_true", help="run steps whose files exist too")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    args.run = from_root(args.run)
    args.log_dir = from_root(args.log_dir) if args.log_dir else Path("runs/ship") / args.name
    args.compare = [str(from_root(path)) for path in args.compare] if args.compare is not None else list(COMPARE)
    if args.command is None and args.run == Path(COMPARE[0]):
        args.command = PAPER_COMMAND
    plan = steps(args.run, args.name, args)
    known = [step.name for step in plan]
    unknown = sorted(set(args.steps or ()) - set(known))
    if unknown:
        parser.error(f"unknown step(s) {', '.join(unknown)}; the steps are {', '.join(known)}")
    if not (ROOT / args.run).is_file():
        parser.error(f"no run file {args.run}")
    chosen = [step for step in plan if args.steps is None or step.name in args.steps]
    select = next((step for step in chosen if step.name == "select"), None)
    if select and args.command is None:
        parser.error(f"--command is needed for {args.run}: how it was trained, for the model card (the default is the "
                     f"per-synapse paper run's, {COMPARE[0]})")
    from spikehebb import models  # here, not at the top: the plan and --dry-run need no h5py

    model_in_the_way = bool(select) and not args.dry_run and (args.force or not up_to_date(select, args.log_dir)) \
        and (ROOT / select.outputs[0]).exists()
    if model_in_the_way and models.model_without_card(ROOT / select.outputs[0], args.run):
        # a select stopped between the model and its card: `spikehebb select` makes the card
        print(f"{select.outputs[0]} exists without its card: the select step makes the card for the mean it holds")
    elif model_in_the_way:
        present = [str(out) for out in select.outputs if (ROOT / out).exists()]
        others = " ".join(step.name for step in plan if step.name != "select")
        parser.error(f"{select.outputs[0]} exists: to select anew remove it first (git rm {' '.join(present)}, or rm "
                     f"when not committed), or remake the rest for it (--steps {others})")
    log_dir = ROOT / args.log_dir
    for step in chosen:
        done = up_to_date(step, args.log_dir)
        print(f"== {step.name}" + (f" (made from {step.source} as it is: skipped; --force to redo)"
                                   if done and not args.force else ""))
        for source, target in step.before:
            print(f"   cp {source} {target}")
        for command in step.commands:
            print("   " + shlex.join(["python" if word == sys.executable else word for word in command]))
        if args.dry_run or (done and not args.force):
            continue
        log_dir.mkdir(parents=True, exist_ok=True)
        record_of(step, args.log_dir).unlink(missing_ok=True)  # made anew: a failure now must not count as made
        for source, target in step.before:
            shutil.copyfile(ROOT / source, ROOT / target)
        with open(log_dir / f"{step.name}.log", "w") as log:
            for command in step.commands:
                log.write(f"$ {shlex.join(command)}\n")
                log.flush()
                # this interpreter runs the CLI, so an environment that is not activated still works
                argv = [sys.executable, "-m", "spikehebb.cli", *command[1:]] if command[0] == "spikehebb" else command
                code = subprocess.run(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
                if code:
                    print(f"ship_ant.py: step {step.name} failed (exit {code}); see {args.log_dir / (step.name + '.log')}",
                          file=sys.stderr)
                    return code
        for source, target in step.then:
            (ROOT / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / source, ROOT / target)
        record_of(step, args.log_dir).write_text(digest(ROOT / step.source) + "\n")
        print(f"   -> {args.log_dir / (step.name + '.log')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
