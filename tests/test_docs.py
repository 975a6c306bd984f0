"""What a new user meets first: the run-file doc's snippets run as written, every subcommand and
flag says what it is, the test table explains its columns, and recording traces again is a flag
away."""

import argparse
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from spikehebb.assess import VariantResult, format_table
from spikehebb.cli import main as cli_main
from spikehebb.tracefile import drop_traces, trace_names
from spikehebb.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]


def tiny_run(directory, name="run"):
    config = TrainConfig.from_dict(dict(popsize=2, generations=1, max_env_steps=60, train_variants=("default",), batch_size=2,
                         evaluator="serial", runs_dir=str(directory), run_name=name, backend="numpy"))
    return train(config, progress=False)


def python_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_run_file_snippets_run_as_written(tmp_path, monkeypatch):
    matplotlib.use("Agg")
    tiny_run(tmp_path / "runs", "ant_seed1")
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(ROOT / "docs" / "run-file.md")
    assert len(blocks) == 6
    namespace = {}
    for block in blocks:
        exec(compile(block, "docs/run-file.md", "exec"), namespace)
    # what the snippets computed: a Hebbian rule's coefficients, a real recorded lifetime, a plot
    assert [c.shape for c in namespace["rule"]] == [(28, 128, 5), (128, 64, 5), (64, 8, 5)]
    assert trace_names("runs/ant_seed1.h5") == ["damage_right/episode_0"]
    assert trace_names("runs/my_traces.h5") == ["damage_right/episode_0", "damage_right/episode_1"]
    assert namespace["life"].ndim == 1 and len(namespace["progress"]) == len(namespace["life"]) > 0
    trace = namespace["trace"]
    assert namespace["w2"].shape == (trace.steps, 128, 64) and namespace["seen"].shape == (trace.steps, 28)
    assert trace.attrs["first_input"] == "settled" and trace.spikes is None
    assert namespace["b"].get_ylabel() == "approach to target (m)"


def test_the_readme_plugin_snippet_registers_a_rule_that_reads_the_weight(monkeypatch):
    from spikehebb.rules import RULES, get_rule, reference_update

    (block,) = [b for b in python_blocks(ROOT / "README.md") if "RULES[" in b]
    monkeypatch.setitem(RULES, "Oja_lr", None)  # taken out again after the test
    exec(compile(block, "README.md", "exec"), {})
    rule = get_rule("Oja_lr")
    assert rule.fields == ("eta", "A", "E")
    w, pre, post = np.full((1, 1, 1), 0.5), np.array([[2.0]]), np.array([[3.0]])
    coefficients = np.array([[[[0.1, 1.0, -1.0]]]])  # eta, A, E
    # w + eta * (A * o_i * o_j + E * o_j * o_j * w) = 0.5 + 0.1 * (6 - 4.5)
    np.testing.assert_allclose(reference_update(w, pre, post, coefficients, rule), [[[0.65]]])


def test_the_readme_layouts_snippet_runs_as_written():
    (block,) = [b for b in python_blocks(ROOT / "README.md") if "make_network" in b]
    namespace = {}
    exec(compile(block, "README.md", "exec"), namespace)
    outputs, net = namespace["outputs"], namespace["net"]
    assert outputs.shape == (16, 8) and np.all(np.abs(outputs) <= 1) and np.any(outputs != 0)
    assert [w.shape for w in net.weights] == [(16, 28, 128), (16, 128, 64), (16, 64, 8)]


def every_parser():
    """The spikehebb parser and its subcommands' parsers, captured from cli.main."""
    captured = {}

    def capture(self, args=None, namespace=None):
        captured["parser"] = self
        raise SystemExit(0)

    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = capture
    try:
        with pytest.raises(SystemExit):
            cli_main([])
    finally:
        argparse.ArgumentParser.parse_args = original
    top = captured["parser"]
    (sub,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    return top, sub


def test_every_subcommand_and_flag_has_help():
    top, sub = every_parser()
    helps = {a.dest: a.help for a in sub._choices_actions}
    assert set(helps) == set(sub.choices) >= {"train", "evaluate", "inspect", "plot", "video", "report"}
    assert all(helps.values())
    missing = [
        f"{name} {a.option_strings or a.dest}"
        for name, parser in sub.choices.items()
        for a in parser._actions
        if not isinstance(a, argparse._HelpAction) and not a.help
    ]
    assert missing == []


def test_table_explains_its_columns():
    results = [VariantResult("default", np.array([90.0, 130.0]), "trained"), VariantResult("damage_left", np.array([1.0, 3.0]), "unseen")]
    table = format_table(results, "Hebbian ABCD_lr", "ant", 960).splitlines()
    assert table[1].split()[:3] == ["default", "yes", "110.0"] and table[1].endswith("yes")
    assert table[2].split()[:3] == ["damage_left", "no", "2.0"] and table[2].endswith("no")
    legend = "\n".join(table[3:])
    assert "seen: trained on that variant." in legend and "over 2 lifetimes" in legend
    assert "solved: mean fitness >= 100" in legend and "net approach to the target in m / 0.0165 s" in legend
    assert "at most 960 network steps" in legend
    for label in ("Hebbian ABCD_lr", "Hebbian ABCD_lr_mirror, shared rules rho 128"):  # a long label widens its column
        head, *rows = format_table(results, label, "ant", 960).splitlines()[:3]
        assert all(row.index("±") + 10 == head.index("solved") for row in rows)


def test_a_mirror_rules_mirror_of_a_training_body_is_marked_and_explained():
    plain = [VariantResult("default", np.array([90.0, 130.0]), "trained"), VariantResult("damage_left", np.array([1.0, 3.0]), "unseen")]
    mirrored = [plain[0], VariantResult("damage_left", np.array([1.0, 3.0]), "mirror of trained")]
    assert [r.seen for r in mirrored] == ["yes", "mirror"] and plain[1].seen == "no"
    assert [r.trained_on for r in mirrored] == [True, False]
    from spikehebb.assess import SEEN
    from spikehebb.envs.mirror import BODY_ROLES

    assert set(SEEN) == set(BODY_ROLES)  # every role body_roles gives has its column text
    with pytest.raises(ValueError, match="role must be one of \\('trained', 'mirror of trained', 'unseen'\\), got 'seen'"):
        VariantResult("default", np.array([1.0]), "seen")
    table = format_table(mirrored, "Hebbian ABCD_lr_mirror", "ant", 960).splitlines()
    assert table[2].split()[:3] == ["damage_left", "mirror", "2.0"]
    assert all(row.index("±") + 10 == table[0].index("solved") for row in table[1:3])  # columns still align
    assert "seen: trained on that variant; mirror: trained on its left-right mirror image, and the rule is mirror-symmetric" in table[3]
    assert "mirror:" not in format_table(plain, "Hebbian ABCD_lr", "ant", 960)
    assert format_table(plain, "x", "ant").splitlines()[0].startswith("variant              seen  ")  # as before


def test_traces_again_need_overwrite_traces(tmp_path, capsys):
    path = tiny_run(tmp_path)
    base = ["evaluate", str(path), "--variant", "default", "--episodes", "1", "--eval-steps", "60", "--eval-workers", "1"]
    cli_main(base + ["--traces"])
    assert trace_names(path) == ["default/episode_0"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        cli_main(base + ["--traces"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "already holds traces (default/episode_0); add --overwrite-traces" in err and err.count("\n") == 1
    size = path.stat().st_size
    cli_main(base + ["--traces", "--overwrite-traces", "--trace-episodes", "2"])
    assert trace_names(path) == ["default/episode_0", "default/episode_1"]
    assert drop_traces(path, ["damage_left"]) == []
    assert drop_traces(path) == ["default/episode_0", "default/episode_1"] and trace_names(path) == []
    assert path.stat().st_size < size  # dropped for real, not just unlinked inside the file
    cli_main(["inspect", str(path)])  # still a whole run file


def test_drop_traces_takes_a_traces_file_as_well_as_a_run_file(tmp_path):
    import h5py

    from spikehebb.store import TraceWriter

    path = tmp_path / "traces.h5"
    (tmp_path / "latest.h5").symlink_to("traces.h5")
    with TraceWriter(path, sizes=(2, 1), n_actions=1, reward_terms=("r",), fsync=False) as writer:
        for variant in ("default", "damage_left"):
            with writer.episode(variant, 0) as episode:
                episode.step([np.zeros(2), np.zeros(1)], np.zeros(1), {"r": 1.0}, [np.zeros((2, 1))])
    assert drop_traces(tmp_path / "latest.h5", ["default"]) == ["default/episode_0"]
    assert (tmp_path / "latest.h5").is_symlink() and trace_names(path) == ["damage_left/episode_0"]
    with h5py.File(path) as f:
        assert f.attrs["format"] == "spikehebb-traces"
    with TraceWriter(path, sizes=(2, 1), n_actions=1, reward_terms=("r",), fsync=False):  # the lock was let go
        pass


def _traced_run(tmp_path, capsys):
    """A tiny run holding traces of default/episode_0; the evaluate command line; the file's bytes."""
    path = tiny_run(tmp_path)
    base = ["evaluate", str(path), "--variant", "default", "--episodes", "1", "--eval-steps", "60", "--eval-workers", "1"]
    cli_main(base + ["--traces"])
    capsys.readouterr()
    return path, base, path.read_bytes()


def _no_lifetimes(monkeypatch):
    import spikehebb.assess

    def fail(*args, **kwargs):
        raise AssertionError("test lifetimes ran")

    monkeypatch.setattr(spikehebb.assess, "assess", fail)
    monkeypatch.setattr(spikehebb.assess, "record_traces", fail)


@pytest.mark.parametrize("bad, expected", [
    (["--trace-synapses", "0"], "--trace-synapses must be a positive count of synapses per layer (leave it out for all), got 0"),
    (["--trace-episodes", "0"], "--trace-episodes must be at least 1, got 0"),
    (["--trace-episodes", "-1"], "--trace-episodes must be at least 1, got -1"),
])
def test_overwrite_traces_with_bad_trace_arguments_fails_first_and_keeps_them(tmp_path, capsys, monkeypatch, bad, expected):
    path, base, before = _traced_run(tmp_path, capsys)
    _no_lifetimes(monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(base + ["--traces", "--overwrite-traces"] + bad)
    assert exit_info.value.code == 2
    out = capsys.readouterr()
    assert out.err == f"spikehebb evaluate: error: {expected}\n" and out.out == ""
    assert path.read_bytes() == before and trace_names(path) == ["default/episode_0"]


def test_overwrite_traces_of_a_busy_run_fails_first_and_keeps_them(tmp_path, capsys, monkeypatch):
    from spikehebb.store.transaction import WriterLock

    path, base, before = _traced_run(tmp_path, capsys)
    _no_lifetimes(monkeypatch)
    lock = WriterLock(path)  # a trainer writing the run
    try:
        with pytest.raises(SystemExit) as exit_info:
            cli_main(base + ["--traces", "--overwrite-traces"])
    finally:
        lock.release()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"spikehebb evaluate: error: {path} is open for writing by another process") and err.count("\n") == 1
    assert path.read_bytes() == before


@pytest.mark.parametrize("fault", [RuntimeError("recording failed"), KeyboardInterrupt()])
def test_overwrite_traces_that_fails_midway_keeps_the_old_ones(tmp_path, capsys, monkeypatch, fault):
    import spikehebb.assess
    from spikehebb.tracefile import load_trace

    path, base, before = _traced_run(tmp_path, capsys)
    old = load_trace(path, "default/episode_0")
    call = spikehebb.assess._TraceRecorder.__call__
    steps = []

    def recorder(self, *args):
        steps.append(1)
        if len(steps) == 30:  # midway through the second episode (20 steps each)
            raise fault
        call(self, *args)

    monkeypatch.setattr(spikehebb.assess._TraceRecorder, "__call__", recorder)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(base + ["--traces", "--overwrite-traces", "--trace-episodes", "2"])
    assert exit_info.value.code == (130 if isinstance(fault, KeyboardInterrupt) else 2)
    assert capsys.readouterr().err.count("\n") == 1
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no .tmp, no lock left
    np.testing.assert_array_equal(load_trace(path, "default/episode_0").weights[0], old.weights[0])
    monkeypatch.setattr(spikehebb.assess._TraceRecorder, "__call__", call)
    cli_main(base + ["--traces", "--overwrite-traces", "--trace-episodes", "2"])  # and then it works
    assert trace_names(path) == ["default/episode_0", "default/episode_1"]
