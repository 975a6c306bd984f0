"""Every command the documents show parses: its subcommand, flags and choices still exist.

The commands are read from the markdown files (fenced shell blocks and inline code that starts with
``spikehebb`` or ``python experiments/``) and handed to the real parsers; the parse is stopped
there, so nothing trains. A command the prose shows in part (``spikehebb select``, no run file)
may lack a positional argument; any other parse error is a stale document.
"""
from __future__ import annotations

import argparse
import re
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from spikehebb.rules import RULES

ROOT = Path(__file__).resolve().parents[1]
#: Every markdown document a user reads: the README, the docs and the model cards.
DOCUMENTS = tuple(["README.md"] + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))
                  + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "models").glob("*.md")))
STARTS = ("spikehebb ", "python experiments/")


def documented_commands(text: str) -> list[str]:
    """The commands in ``text``: lines of fenced blocks (a trailing ``# comment``, ``nohup`` and
    redirections dropped) and inline code, its line breaks made spaces."""
    commands = []
    for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip().removeprefix("nohup ")
            line = re.split(r"\s(?:>>?|2>&1|&&|&)(?:\s|$)", line)[0].strip()
            if line.startswith(STARTS):
                commands.append(line)
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    for code in re.findall(r"`([^`]+)`", prose):
        code = " ".join(code.split())
        if code.startswith(STARTS) and " / " not in code:  # "train / evaluate / ..." is a list, not a command
            commands.extend(part.strip() for part in code.split(" && ") if part.strip().startswith(STARTS))
    return commands


def all_commands() -> list[tuple[str, str]]:
    seen, out = set(), []
    for name in DOCUMENTS:
        for command in documented_commands((ROOT / name).read_text()):
            if command not in seen:
                seen.add(command)
                out.append((name, command))
    return out


class Parsed(Exception):
    """Raised in place of returning from ``parse_args``: the command parsed."""


def parse_only(monkeypatch, command: str, failed: list | None = None) -> str | None:
    """Run ``command``'s parser on its arguments; None if it parsed, else argparse's message (and
    the parser that gave it appended to ``failed``)."""
    argv = shlex.split(command)
    original = argparse.ArgumentParser.parse_args

    def parse_args(self, args=None, namespace=None):
        original(self, args, namespace)
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_args)
    errors = []
    def error(self, message):
        errors.append(message)
        if failed is not None:
            failed.append(self)
        sys.exit(2)

    monkeypatch.setattr(argparse.ArgumentParser, "error", error)
    try:
        if argv[0] == "spikehebb":
            from spikehebb.cli import main

            main(argv[1:])
        else:
            monkeypatch.setattr(sys, "argv", argv[1:])
            runpy.run_path(str(ROOT / argv[1]), run_name="__main__")
    except Parsed:
        return None
    except SystemExit:
        return errors[0] if errors else "exited before parsing"
    return "returned without parsing"


def test_every_document_is_checked():
    assert {"README.md", "docs/design.md", "docs/results.md", "docs/benchmarks.md", "models/README.md",
            "models/ant_abcd_lr.md"} <= set(DOCUMENTS)


def local_links(text: str) -> list[str]:
    """The targets of ``text``'s markdown links and images that point into the repository
    (not web addresses), each with its ``#anchor``."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", prose) if not re.match(r"[a-z]+:", t)]


def anchors(text: str) -> set[str]:
    """GitHub's anchors of ``text``'s headings: lower case, punctuation dropped, spaces as dashes."""
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.*)$", re.sub(r"```.*?```", "", text, flags=re.S), re.M)}


def test_anchors_are_githubs():
    assert anchors("# The ant: the paper's run\n## Palm et al.'s baselines\n") == {
        "the-ant-the-papers-run", "palm-et-als-baselines"}
    assert local_links("[a](docs/x.md#y) ![b](img/c.png) [w](https://e.org/z)\n```\n[no](code.md)\n```") == [
        "docs/x.md#y", "img/c.png"]


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_link_and_image_of_a_document_is_there(name):
    here = ROOT / name
    for target in local_links(here.read_text()):
        path, _, anchor = target.partition("#")
        file = (here.parent / path).resolve() if path else here
        assert file.is_file(), f"{name} links to {target}, which does not exist"
        if anchor and file.suffix == ".md":
            assert anchor in anchors(file.read_text()), f"{name} links to {target}: no such heading"


def test_the_documents_show_commands_to_check():
    commands = [c for _, c in all_commands()]
    assert len(commands) > 40
    assert "spikehebb train --paper --popsize 200 --seed 0" in commands
    assert any(c.startswith("python experiments/bodies_over_training.py") and c.endswith(".png") for c in commands)


def test_documented_commands_are_found_in_blocks_and_inline():
    text = ("```bash\nnohup spikehebb train --resume r.h5 --workers 2 >> log 2>&1 &\n"
            "python experiments/run_ant.py   # the default\n```\n"
            "run `spikehebb evaluate a.h5\n--episodes 3 && spikehebb plot a.h5` or `spikehebb train / evaluate`")
    assert documented_commands(text) == [
        "spikehebb train --resume r.h5 --workers 2", "python experiments/run_ant.py",
        "spikehebb evaluate a.h5 --episodes 3", "spikehebb plot a.h5",
    ]


def test_a_stale_flag_is_caught(monkeypatch):
    assert "unrecognized arguments: --no-such-flag" in parse_only(monkeypatch, "spikehebb train --no-such-flag")
    assert "invalid choice" in parse_only(monkeypatch, "python experiments/run_ant.py --strategy XYZ")
    assert parse_only(monkeypatch, "python experiments/run_ant.py --rule XYZ") is None  # checked after parsing: below
    assert parse_only(monkeypatch, "spikehebb train --popsize 8") is None


def every_option(monkeypatch) -> set[str]:
    """The option strings of every parser: spikehebb's subcommands and each script in experiments/."""
    options: set[str] = set()

    def collect(parser):
        options.update(parser._option_string_actions)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    collect(sub)

    def parse_args(self, args=None, namespace=None):
        collect(self)
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_args)
    from spikehebb.cli import main

    with pytest.raises(Parsed):
        main(["train"])
    for script in sorted((ROOT / "experiments").glob("*.py")):
        if not re.search(r"ArgumentParser|experiment_main", script.read_text()):
            continue  # no parser: running it would run it
        monkeypatch.setattr(sys, "argv", [str(script)])
        try:
            runpy.run_path(str(script), run_name="__main__")
        except Parsed:
            pass
    return options


def test_every_flag_the_documents_name_is_an_option_of_some_parser(monkeypatch):
    options = every_option(monkeypatch)
    assert {"--paper", "--scale-lr", "--baseline-init", "--no-early-end", "--every"} <= options
    for name in DOCUMENTS:
        named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", (ROOT / name).read_text()))
        assert named - options == set(), f"{name} names flags no parser has"


@pytest.mark.parametrize("where, command", all_commands(), ids=lambda x: x[:70])
def test_documented_command_parses(monkeypatch, where, command):
    failed = []
    error = parse_only(monkeypatch, command, failed)
    assert error is None or error.startswith("the following arguments are required"), f"{where}: {command}: {error}"
    for rule in re.findall(r"--rule[ =](\S+)", command):  # --rule's value is checked after parsing (one line)
        assert rule in RULES, f"{where}: {command}: --rule {rule} is not a registered rule"
    if error:  # argparse names a missing positional before a flag it does not know: check the flags here
        unknown = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", command)) - set(failed[0]._option_string_actions)
        assert not unknown, f"{where}: {command}: {sorted(unknown)} not options of {failed[0].prog}"


def test_a_stale_flag_beside_a_missing_argument_is_caught(monkeypatch):
    failed = []
    assert parse_only(monkeypatch, "spikehebb evaluate --no-such-flag", failed).startswith("the following arguments")
    assert failed[0].prog.endswith("evaluate") and "--no-such-flag" not in failed[0]._option_string_actions


def test_every_command_ship_ant_runs_parses(monkeypatch, capsys, experiment_script):
    ship = experiment_script("ship_ant")
    ship.main(["models/training/ant_ABCD_lr_paper_pop200_s0.h5", "--dry-run", "--workers", "2"])
    printed = [line.strip() for line in capsys.readouterr().out.splitlines() if line.startswith("   ")]
    commands = [c for c in printed if c.startswith(STARTS)]
    assert len(commands) == len(printed) - 1 == 14  # all but the traces step's copy
    for command in commands:
        assert parse_only(monkeypatch, command) is None, command
    # the processes asked for reach the steps that take them: select, the 200 tests, the bodies
    assert [c.split()[1] for c in commands if "--workers 2" in c or "--eval-workers 2" in c] == [
        "select", "evaluate", "experiments/bodies_over_training.py"]
    # the card's command trains the run for as long as the run file says it was trained
    from spikehebb.assess import load_run

    config, _ = load_run(ROOT / "models/training/ant_ABCD_lr_paper_pop200_s0.h5")
    assert ship.PAPER_COMMAND.endswith(f" --generations {config.generations}")


def test_ship_ant_ships_another_run_beside_the_first_without_touching_its_files(tmp_path, capsys, experiment_script):
    ship = experiment_script("ship_ant")
    mirror = "models/training/ant_ABCD_lr_mirror_paper_pop200_s0.h5"
    with pytest.raises(SystemExit) as info:  # the card must not say it was trained as the paper run
        ship.main([mirror, "--name", "ant_m", "--dry-run"])
    assert info.value.code == 2 and "--command is needed for models/training/ant_ABCD_lr_mirror" in capsys.readouterr().err
    ship.main([mirror, "--name", "ant_m", "--command", "spikehebb train --paper --coefficient-rows mirror", "--dry-run"])
    printed = [line.strip() for line in capsys.readouterr().out.splitlines() if line.startswith("   ")]
    assert len(printed) == 15 and "--command 'spikehebb train --paper --coefficient-rows mirror'" in printed[0]
    written = [word for command in printed[:-1] for word in command.split()  # all but the bodies figure's
               if word.startswith(("docs/img/", "models/")) and word != mirror]
    assert len(set(written)) == 6 and all("ant_m" in word.rpartition("/")[2] for word in written), written
    bodies = printed[-1].split()
    assert bodies[1:6] == ["experiments/bodies_over_training.py", *ship.COMPARE]  # drawn once, in the figure's order
    assert bodies[-1] == "docs/img/paper_bodies_over_training.png"
    # a run that is not one of the figure's paper runs is added to it, first
    other = tmp_path / "other.h5"
    other.write_bytes(b"")
    ship.main([str(other), "--name", "ant_o", "--command", "spikehebb train --rule A", "--dry-run", "--steps", "bodies"])
    bodies = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("   ")][0]
    assert bodies[1:7] == ["experiments/bodies_over_training.py", str(other), *ship.COMPARE]


def test_ship_ant_skips_a_step_only_when_it_made_its_files_from_the_source_as_it_is(tmp_path, experiment_script):
    ship = experiment_script("ship_ant")
    source, out, logs = tmp_path / "model.h5", tmp_path / "fig.png", tmp_path / "logs"
    logs.mkdir()
    step = ship.Step("fig", source, [], [out])
    assert not ship.up_to_date(step, logs)  # neither exists
    source.write_text("m"), out.write_text("f")
    assert not ship.up_to_date(step, logs)  # files there, but not made by it (a fresh clone)
    ship.record_of(step, logs).write_text(ship.digest(source) + "\n")
    assert ship.up_to_date(step, logs)
    source.write_text("another model")  # a new model: remake
    assert not ship.up_to_date(step, logs)
    assert not ship.up_to_date(ship.Step("log only", source, []), logs)  # no files: always run


def test_ship_ant_refuses_to_select_over_an_older_model(tmp_path, monkeypatch, capsys, experiment_script):
    ship = experiment_script("ship_ant")
    run = tmp_path / "run.h5"
    run.write_text("newer than the model")
    with pytest.raises(SystemExit) as info:
        ship.main([str(run), "--steps", "select", "--command", "spikehebb train --rule A"])
    assert info.value.code == 2
    assert "models/ant_abcd_lr.h5 exists: to select anew remove it first (git rm models/ant_abcd_lr.h5 " in capsys.readouterr().err
    # a select stopped after the model, before its card: the step runs (spikehebb select makes the card)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "ant_abcd_lr.h5").write_text("no model: a file in the way")
    with monkeypatch.context() as patched, pytest.raises(SystemExit):
        patched.setattr(ship, "ROOT", tmp_path)
        ship.main([str(run), "--steps", "select", "--command", "spikehebb train --rule A"])
    assert "models/ant_abcd_lr.h5 exists: to select anew remove it first" in capsys.readouterr().err
    import spikehebb.models

    with monkeypatch.context() as patched:
        patched.setattr(ship, "ROOT", tmp_path)
        patched.setattr(spikehebb.models, "model_without_card",  # a model this run's select wrote, without its card
                        lambda model, run: {"source": "run.h5"} if Path(run).name == "run.h5" else None)
        assert ship.main([str(run), "--steps", "select", "--command", "spikehebb train --rule A", "--dry-run"]) == 0
        commands = []
        patched.setattr(ship.subprocess, "run", lambda argv, **kw: commands.append(argv) or subprocess.CompletedProcess(argv, 0))
        assert ship.main([str(run), "--steps", "select", "--command", "spikehebb train --rule A",
                          "--log-dir", str(tmp_path / "logs")]) == 0
    assert "models/ant_abcd_lr.h5 exists without its card: the select step makes the card" in capsys.readouterr().out
    assert [argv[3] for argv in commands] == ["select"] and "run.h5" in commands[0][4]
    with pytest.raises(SystemExit):
        ship.main([str(run), "--steps", "selct"])
    assert "unknown step(s) selct; the steps are select, gifs," in capsys.readouterr().err
