"""Choosing a run's rule as the authors did (the best stored search mean) and shipping it as a
model file with a card; every run-file command reads the model."""

import json
import re

import h5py
import numpy as np
import pytest

from spikehebb.assess import VariantResult, assess, load_run
from spikehebb.cli import main as cli_main
from spikehebb.models import SELECTION_EPISODE0, card, candidate_means, export, model_info, select
from spikehebb.store import RunStore
from spikehebb.train import TrainConfig, train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    config = TrainConfig.from_dict(dict(rule="A", popsize=4, generations=5, max_env_steps=60, train_variants=("default",),
                                        batch_size=4, evaluator="serial", snapshot_every=2,
                                        runs_dir=str(tmp_path_factory.mktemp("runs")), run_name="run"))
    return train(config, progress=False)


def test_candidates_are_the_snapshots_and_the_final_mean(run):
    generations, means = candidate_means(run)
    assert generations.tolist() == [2, 4, 5]
    with RunStore.open(run) as store:
        np.testing.assert_array_equal(means[-1], store.load_checkpoint().mean)
        np.testing.assert_array_equal(means[:2], store.snapshots()[1])


def test_select_scores_each_mean_on_lifetimes_apart_from_the_tests_and_export_ships_the_best(run, tmp_path):
    selection = select(run, episodes=2, progress=False)
    assert selection.generations.tolist() == [2, 4, 5] and selection.variants == ("default",)
    # a score is the mean fitness of that mean's selection lifetimes (episodes from SELECTION_EPISODE0)
    from spikehebb.config import WorkerSpec
    from spikehebb.worker import Worker

    config, _ = load_run(run)
    _, means = candidate_means(run)
    worker = Worker(WorkerSpec(config.task, config.agent, 2, config.seed), full_length=True)
    try:
        want = worker.evaluate_params(means[1], "default", [SELECTION_EPISODE0, SELECTION_EPISODE0 + 1])[0].mean()
    finally:
        worker.close()
    assert selection.scores[1] == want
    model = export(run, tmp_path / "models" / "ant.h5", selection)
    _, params = load_run(model)
    np.testing.assert_array_equal(params, means[selection.best])
    info = model_info(model)
    assert info["generation"] == selection.generations[selection.best] and info["source"] == "run.h5"
    assert set(info["selection"]["scores"]) == {"2", "4", "5"}
    with pytest.raises(FileExistsError, match="already exists"):
        export(run, model, selection)
    assert model_info(run) is None


def test_cli_select_writes_the_model_and_its_card(run, tmp_path, capsys):
    out = tmp_path / "m" / "ant_a.h5"
    assert cli_main(["select", str(run), "-o", str(out), "--episodes", "1", "--test-episodes", "1", "--workers", "1",
                     "--command", "spikehebb train --rule A"]) == 0
    # the tests ran full length (the run trained on 60-step lifetimes), and the table says so
    assert "episodes: at most 960 network steps" in capsys.readouterr().out
    text = out.with_suffix(".md").read_text()
    assert "`spikehebb train --rule A`, seed 0" in text and "5 generations" in text and "damage_left" in text
    assert "best of 3 stored means on 1 selection lifetimes per training variant" in text
    info = model_info(out)
    chosen = info["generation"]
    # every stored mean's score in the selection table, the chosen one marked; the curve beside the card
    for g, score in info["selection"]["scores"].items():
        assert f"| {g} | {score:.1f}{' (chosen)' if int(g) == chosen else ''} |" in text
    assert text.count("(chosen)") == 1
    assert "![training curve](ant_a_curve.png)" in text and (out.parent / "ant_a_curve.png").stat().st_size > 0
    # the test table: one row per variant, the rule A has no paper column
    fitness = assess(*load_run(out), ["damage_left"], episodes=1)[0].fitness
    assert f"| damage_left | no | {fitness[0]:.1f} ± 0.0 | {'yes' if fitness[0] >= 100 else 'no'} |\n" in text
    assert "paper" not in text.split("## Test table")[1]
    capsys.readouterr()
    assert cli_main(["inspect", str(out)]) == 0
    assert f"model: the search mean after generation {chosen} (selection fitness" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        cli_main(["select", str(run), "-o", str(out)])
    assert exc.value.code == 2 and "already exists" in capsys.readouterr().err
    # a select stopped after the model, before its card: the same command makes the card, the model untouched
    from spikehebb.models import model_without_card

    assert model_without_card(out, run) is None  # its card is there
    model_bytes = out.read_bytes()
    out.with_suffix(".md").unlink()
    assert model_without_card(out, run) == info and model_without_card(out, tmp_path / "other_run.h5") is None
    assert model_without_card(run, run) is None  # a run file is no model
    (tmp_path / "m" / "junk.h5").write_text("not HDF5")
    assert model_without_card(tmp_path / "m" / "junk.h5", run) is None
    assert cli_main(["select", str(run), "-o", str(out), "--episodes", "1", "--test-episodes", "1", "--workers", "1",
                     "--command", "spikehebb train --rule A"]) == 0
    assert f"exists without its card: it keeps the mean it chose (generation {chosen})" in capsys.readouterr().out
    assert out.read_bytes() == model_bytes and out.with_suffix(".md").read_text() == text


@pytest.mark.parametrize("taken, message", [
    ("notes.md", "notes.md already exists and would be replaced by the new model's card"),
    ("notes_curve.png", "notes_curve.png already exists and would be replaced by the new model's curve"),
    (None, "-o names the model's run file, NAME.h5 (its card is NAME.md beside it), got "),
])
def test_select_never_replaces_a_file_and_says_so_before_scoring(run, tmp_path, capsys, monkeypatch, taken, message):
    import spikehebb.models

    monkeypatch.setattr(spikehebb.models, "select", lambda *a, **k: pytest.fail("scored before the check"))
    out = tmp_path / ("notes.h5" if taken else "notes.md")
    if taken:
        (tmp_path / taken).write_text("mine")
    with pytest.raises(SystemExit) as exc:
        cli_main(["select", str(run), "-o", str(out), "--workers", "1"])
    assert exc.value.code == 2 and message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ([taken] if taken else [])
    if taken:
        assert (tmp_path / taken).read_text() == "mine"


def test_select_checks_where_the_model_goes_before_scoring(run, tmp_path, capsys, monkeypatch):
    """A folder that cannot be made, or too little room, failed only after every stored mean was
    scored (hours on a long run)."""
    import spikehebb.models

    monkeypatch.setattr(spikehebb.models, "select", lambda *a, **k: pytest.fail("scored before the check"))
    (tmp_path / "a_file").write_text("mine")
    with pytest.raises(SystemExit) as exc:
        cli_main(["select", str(run), "-o", str(tmp_path / "a_file" / "m.h5"), "--workers", "1"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"cannot write the model {tmp_path / 'a_file' / 'm.h5'}: " in err and err.count("\n") == 1
    monkeypatch.setattr(spikehebb.models, "free_bytes", lambda path: 1000)
    with pytest.raises(SystemExit) as exc:
        cli_main(["select", str(run), "-o", str(tmp_path / "new" / "m.h5"), "--workers", "1"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1
    assert f"no space left to write the model {tmp_path / 'new' / 'm.h5'}: it needs " in err and "nothing was written" in err
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == []  # no probe left behind


def test_a_card_that_cannot_be_written_leaves_none_and_the_rerun_makes_it(run, tmp_path, capsys, monkeypatch):
    """The card was written in place: a full disk (or a kill) left an empty NAME.md, which made the
    rerun take the model for one with its card and refuse."""
    import errno
    import pathlib

    out = tmp_path / "ant_a.h5"
    real = pathlib.Path.write_text

    def full_disk(self, text, *args, **kwargs):
        real(self, text[:10], *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_text", full_disk)
    with pytest.raises(SystemExit) as exc:
        cli_main(["select", str(run), "-o", str(out), "--episodes", "1", "--test-episodes", "1", "--workers", "1"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"no space left to write the card {out.with_suffix('.md')}" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ant_a.h5", "ant_a_curve.png"]  # no card, no .tmp
    monkeypatch.setattr(pathlib.Path, "write_text", real)
    assert cli_main(["select", str(run), "-o", str(out), "--episodes", "1", "--test-episodes", "1", "--workers", "1"]) == 0
    assert "exists without its card" in capsys.readouterr().out and "## Test table" in out.with_suffix(".md").read_text()


def test_a_report_of_a_model_names_the_generation_of_its_chosen_mean(run, tmp_path):
    from spikehebb.models import Selection
    from spikehebb.report import _generations

    generations, _ = candidate_means(run)
    scores = np.where(generations == 2, 1.0, 0.0)  # the mean after generation 2 of 5 wins
    model = export(run, tmp_path / "m.h5", Selection(generations, scores, 1, ("default",)))
    assert _generations(run) == 5 and _generations(model) == 2


@pytest.mark.parametrize("chosen", [0, 1, 2])
def test_a_model_keeps_only_the_chosen_stored_mean_and_everything_else_of_the_run(run, tmp_path, chosen):
    from spikehebb.models import Selection

    generations, means = candidate_means(run)  # [2, 4] stored, 5 the final mean
    scores = np.where(np.arange(len(generations)) == chosen, 1.0, 0.0)
    model = export(run, tmp_path / "m.h5", Selection(generations, scores, 1, ("default",)))
    with RunStore.open(model) as store:
        kept_generations, kept_means = store.snapshots()
    if chosen < 2:
        assert kept_generations.tolist() == [generations[chosen]]
        np.testing.assert_array_equal(kept_means, means[chosen][None])
    else:  # the final mean is the checkpoint's, not a stored snapshot: none is kept
        assert kept_generations.tolist() == [] and kept_means.shape == (0, means.shape[1])
    np.testing.assert_array_equal(load_run(model)[1], means[chosen])
    # a model's one candidate is its chosen mean, under its own generation (not its run's last)
    model_generations, model_means = candidate_means(model)
    assert model_generations.tolist() == [generations[chosen]]
    np.testing.assert_array_equal(model_means, means[chosen][None])
    with h5py.File(run, "r") as a, h5py.File(model, "r") as b:
        assert set(b.attrs) == set(a.attrs) | {"model"} and set(b) == set(a)
        for key in a.attrs:
            np.testing.assert_array_equal(b.attrs[key], a.attrs[key])
            assert b.attrs.get_id(key).dtype == a.attrs.get_id(key).dtype, key
        assert dict(b["snapshots"].attrs) == dict(a["snapshots"].attrs)
        for name, ds in a["snapshots"].items():
            kept = b["snapshots"][name]
            assert (kept.dtype, kept.maxshape, kept.chunks, kept.shape[1:]) == (ds.dtype, ds.maxshape, ds.chunks, ds.shape[1:])
        seen = []

        def same(name, item):  # every dataset but the chosen /mean and the stored means is the run's
            if isinstance(item, h5py.Dataset) and not name.startswith(("mean/", "snapshots/")):
                seen.append(name)
                np.testing.assert_array_equal(b[name][()], item[()], err_msg=name)
                assert dict(b[name].attrs) == dict(item.attrs)

        a.visititems(same)
        assert "generations/fitness_raw" in seen and any(n.startswith("checkpoint/") for n in seen)


def test_a_nan_score_never_wins_the_selection_and_all_nan_is_refused():
    from spikehebb.models import Selection

    pick = lambda scores: Selection(np.array([10, 20, 30]), np.array(scores), 10, ("default",)).best  # noqa: E731
    assert pick([50.0, np.nan, 100.0]) == 2
    assert pick([np.nan, 7.0, np.nan]) == 1
    assert pick([5.0, 5.0, np.nan]) == 1  # the later one on a tie
    with pytest.raises(ValueError, match="no stored mean scored a number on default"):
        pick([np.nan, np.nan, np.nan])


def test_card_puts_the_papers_numbers_beside_ours_where_the_paper_has_the_variant(run):
    results = [VariantResult("default", np.array([400.0, 600.0]), "trained"),
               VariantResult("long_back", np.array([50.0, 90.0]), "unseen")]
    text = card(run, results, "spikehebb train --paper", "a test machine", {"default": (1051, 113)})
    assert "| variant | seen | mean ± std (2 lifetimes) | solved | paper |" in text
    assert "| default | yes | 500.0 ± 100.0 | yes | 1051 ± 113 |" in text
    assert "| long_back | no | 70.0 ± 20.0 | no | - |" in text
    assert "Najarro & Risi 2020, Table 1" in text and "## Selection" not in text  # a plain run: nothing chosen
    assert "## Training curve" not in text and "5 generations" in text and "a test machine" in text
    assert ("- settings: task ant on default, agent hebbian A, openai-es population 4, seed 0, 5 generations; also "
            in text and "task.max_env_steps 60" in text)  # every setting not the default, as inspect says them
    assert "failed" not in text
    # a failed lifetime (NaN) made the row "nan ± nan | no": the others are summarised, the failures counted
    results = [VariantResult("default", np.array([400.0, np.nan, 600.0]), "trained"),
               VariantResult("long_back", np.array([np.nan, np.nan, np.nan]), "unseen")]
    text = card(run, results, "spikehebb train --paper", "a test machine", {"default": (1051, 113)})
    assert ("| default | yes | 500.0 ± 100.0 | yes (1 of 3 failed: mean, std and solved over the other 2) | "
            "1051 ± 113 |") in text
    assert "| long_back | no | - ± - | no (3 of 3 failed) | - |" in text and "nan" not in text
    assert "failed: the lifetime's network outputs turned non-finite" in text


def test_evaluate_and_inspect_find_a_shipped_model_by_name(run, tmp_path, monkeypatch, capsys):
    import spikehebb.lifetimes

    models = tmp_path / "models"
    export(run, models / "ant_a.h5", select(run, episodes=1, progress=False))
    monkeypatch.setattr(spikehebb.lifetimes, "MODELS_DIR", models)
    monkeypatch.chdir(tmp_path)
    assert cli_main(["inspect", "ant_a"]) == 0
    assert capsys.readouterr().out.startswith(f"{models / 'ant_a.h5'}: spikehebb run")
    assert cli_main(["evaluate", "ant_a", "--variant", "default", "--episodes", "1", "--eval-steps", "60"]) == 0
    assert re.search(r"^default +yes +-?[\d.]+ ± [\d.]+ +(yes|no)$", capsys.readouterr().out, re.M)
    with pytest.raises(SystemExit) as exc:  # traces go into the file: a shipped model stays as shipped
        cli_main(["evaluate", "ant_a", "--variant", "default", "--episodes", "1", "--traces"])
    assert exc.value.code == 2 and "is a shipped model and --traces would write into it; copy it first" in capsys.readouterr().err
    assert model_info(models / "ant_a.h5") is not None and "traces" not in h5py.File(models / "ant_a.h5", "r")
    for name, message in (("ant_b", "or the name of a model in"), ("ant_b.h5", "run file ant_b.h5 does not exist")):
        with pytest.raises(SystemExit) as exc:
            cli_main(["inspect", name])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and message in err and len(err.strip().splitlines()) == 1
        assert ("(ant_a)" in err) == (name == "ant_b")  # the unknown name's error lists what ships


def test_a_path_with_a_folder_is_never_taken_for_a_shipped_models_name(run, tmp_path, monkeypatch, capsys):
    """`spikehebb evaluate runs/ant_a` (its .h5 forgotten) evaluated the shipped models/ant_a.h5:
    only a bare name is a model's; a path that is not a file is refused, naming it."""
    import shutil

    import spikehebb.lifetimes
    from spikehebb.lifetimes import resolve_run

    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(run, models / "ant_a.h5")
    monkeypatch.setattr(spikehebb.lifetimes, "MODELS_DIR", models)
    monkeypatch.chdir(tmp_path)
    assert resolve_run("ant_a") == models / "ant_a.h5"  # the name still finds the model
    with pytest.raises(FileNotFoundError, match=r"^expected a run file \(.h5\), got 'runs/ant_a', which is not a file$"):
        resolve_run("runs/ant_a")
    with pytest.raises(FileNotFoundError, match="got '/nonexistent/dir/ant_a', which is not a file"):
        resolve_run("/nonexistent/dir/ant_a")
    (tmp_path / "runs").mkdir()
    shutil.copy(run, tmp_path / "runs" / "ant_a.h5")
    with pytest.raises(FileNotFoundError, match=r"which is not a file; did you mean 'runs/ant_a.h5'\?"):
        resolve_run("runs/ant_a")
    for argv in (["evaluate", "runs/ant_a", "--variant", "default", "--episodes", "1"], ["inspect", "runs/ant_a"],
                 ["report", "runs/ant_a", "--no-test"], ["video", "runs/ant_a", "-o", "v.mp4"]):
        with pytest.raises(SystemExit) as exc:
            cli_main(argv)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert f"spikehebb {argv[0]}: error: expected a run file (.h5), got 'runs/ant_a', which is not a file; " \
               "did you mean 'runs/ant_a.h5'?" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "runs"]  # nothing written
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["ant_a.h5"]


def test_select_and_export_refuse_a_model_before_scoring(run, tmp_path, capsys, monkeypatch):
    """`spikehebb select models/m.h5` scored the model's mean and then refused it with a false
    "moved on to generation 5 while its model was written" (the model keeps its run's count)."""
    import spikehebb.models
    from spikehebb.models import Selection

    generations, _ = candidate_means(run)
    model = export(run, tmp_path / "m.h5", Selection(generations, np.array([0.0, 1.0, 0.0]), 1, ("default",)))
    message = (f"{model} is a model (the mean after generation 4 chosen by spikehebb select), not a run file: "
               "select from its training run (run.h5) instead")
    monkeypatch.setattr(spikehebb.models, "score_means", lambda *a, **k: pytest.fail("scored a model"))
    with pytest.raises(ValueError) as err:
        select(model, episodes=1, progress=False)
    assert str(err.value) == message
    with pytest.raises(ValueError) as err:
        export(model, tmp_path / "m2.h5", Selection(np.array([4]), np.array([1.0]), 1, ("default",)))
    assert str(err.value) == message and not (tmp_path / "m2.h5").exists()
    monkeypatch.setattr(spikehebb.models, "select", lambda *a, **k: pytest.fail("scored before the check"))
    (tmp_path / "bad.h5").write_bytes(b"x")  # not HDF5: named, not h5py's "file signature not found" alone
    for source, want in ((model, message), (tmp_path / "none.h5", f"expected a run file (.h5) written by spikehebb "
                                                                   f"train, got '{tmp_path / 'none.h5'}', which is not a file"),
                         (tmp_path / "bad.h5", f"{tmp_path / 'bad.h5'} is not a spikehebb run file (HDF5 signature "
                                               "missing or truncated)")):
        with pytest.raises(SystemExit) as exc:
            cli_main(["select", str(source), "-o", str(tmp_path / "out" / "x.h5"), "--workers", "1"])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and err == f"spikehebb select: error: {want}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.h5", "m.h5"]  # not even the model's folder


def test_lifetimes_refuse_a_member_past_the_batch_and_an_unknown_variant(run):
    """env/frame of a member past the batch gave an env that run() never resets or steps (a body
    standing at the origin); lifetime_parts of an unknown variant failed with tuple.index's words."""
    from spikehebb.lifetimes import Lifetimes

    with Lifetimes(run, batch_size=2) as lives:
        assert lives.env("default", 1) is lives.rollout.envs("default")[1]
        for member in (2, -1, 1.0, True, "0"):
            with pytest.raises(ValueError) as err:
                lives.env("default", member)
            assert str(err.value) == f"member must be an integer in 0 .. 1 (a member of the batch of 2), got {member!r}"
        with pytest.raises(ValueError, match=r"member must be an integer in 0 \.\. 1 .*, got 2$"):
            lives.frame("default", 2)
        for call in (lambda: lives.env("bogus"), lambda: lives.frame("bogus"), lambda: lives.lifetime_parts("bogus", 0),
                     lambda: lives.initial_weights("bogus", [0, 1])):
            with pytest.raises(ValueError, match=r"^unknown ant variant\(s\) \['bogus'\]; valid: default, "):
                call()


def test_score_means_scores_each_body_on_its_selection_lifetimes(run):
    from spikehebb.config import WorkerSpec
    from spikehebb.models import score_means
    from spikehebb.worker import Worker

    seen = []
    generations, scores = score_means(run, ("damage_left", "default"), 1, generations=[4],
                                      report=lambda g, row: seen.append((g, row.tolist())))
    assert generations.tolist() == [4] and scores.shape == (1, 2)
    config, _ = load_run(run)
    _, means = candidate_means(run)
    worker = Worker(WorkerSpec(config.task, config.agent, 2, config.seed), full_length=True)
    try:
        want = [worker.evaluate_params(means[1], v, [SELECTION_EPISODE0])[0].mean() for v in ("damage_left", "default")]
    finally:
        worker.close()
    assert scores[0].tolist() == want and seen == [(4, want)]
    with pytest.raises(ValueError, match="variants to score must be among the ant's: default, "):
        score_means(run, ("moon",), 1)
    with pytest.raises(ValueError, match=r"stores no mean after generation\(s\) \[3\]; it stores \[2, 4, 5\]"):
        score_means(run, None, 1, generations=[3, 4])


def test_bodies_over_training_caches_scores_and_scores_only_new_means(run, tmp_path, capsys, monkeypatch, experiment_script):
    from spikehebb.models import score_means

    script = experiment_script("bodies_over_training")
    cache, out = tmp_path / "scores.json", tmp_path / "bodies.png"
    flags = ["--episodes", "1", "--variants", "default", "long_back", "--cache", str(cache), "--out", str(out)]
    script.main([str(run), *flags])
    printed = capsys.readouterr().out
    assert "run.h5: scoring 3 stored mean(s) on default, long_back, 1 lifetimes each" in printed
    _, want = score_means(run, ("default", "long_back"), 1)
    record = json.loads(cache.read_text())
    assert record["episodes"] == 1 and record["first_episode"] == SELECTION_EPISODE0 and record["run"] == "run.h5"
    assert [[record["scores"][g][v] for v in ("default", "long_back")] for g in ("2", "4", "5")] == want.tolist()
    assert out.stat().st_size > 0
    assert f"{want[:, 1].max():.1f} (gen " in printed.splitlines()[-2]  # the best row
    # a second call reads the cache: nothing left to score; a new body is scored alone
    script.main([str(run), *flags])
    assert "scoring" not in capsys.readouterr().out
    script.main([str(run), *flags[:2], "--variants", "default", "damage_left", *flags[5:]])
    assert "run.h5: scoring 3 stored mean(s) on damage_left, 1 lifetimes each" in capsys.readouterr().out
    assert set(json.loads(cache.read_text())["scores"]["4"]) == {"default", "long_back", "damage_left"}
    with pytest.raises(SystemExit) as exit_:
        script.main([str(run), "--episodes", "2", *flags[2:]])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "holds scores of another run or protocol (its episodes differ)" in err
    # a run trained anew under the same name with other settings is not given the old scores
    kept = json.loads(cache.read_text())
    json.dump({**kept, "settings": {**kept["settings"], "seed": 99}}, cache.open("w"))
    with pytest.raises(SystemExit) as exit_:
        script.main([str(run), *flags])
    assert exit_.value.code == 2 and "(its settings differ)" in capsys.readouterr().err
    # a setting added since the cache was written reads as its default: the cache still serves
    older = json.loads(json.dumps(kept))
    del older["settings"]["agent"]["rule_every"]
    json.dump(older, cache.open("w"))
    script.main([str(run), *flags])
    assert "scoring" not in capsys.readouterr().out
    json.dump(kept, cache.open("w"))
    # two runs side by side: each scored into its own cache beside it, one figure
    import shutil

    other = tmp_path / "other" / "run.h5"
    other.parent.mkdir()
    shutil.copyfile(run, other)
    shutil.copyfile(cache, other.with_name("run_bodies.json"))  # the same run: nothing left to score
    script.main([str(run), str(other), "--episodes", "1", "--variants", "default", "--out", str(tmp_path / "two.png")])
    printed = capsys.readouterr().out
    assert "scoring 3 stored mean(s) on default" in printed and printed.count("best ") == 2
    assert (tmp_path / "two.png").stat().st_size > 0
    with pytest.raises(SystemExit):
        script.main([str(run), str(other), "--cache", str(cache)])
    assert "--cache names the cache of one run" in capsys.readouterr().err
    # nothing is written beside a shipped model
    import spikehebb.lifetimes

    before = sorted(other.parent.iterdir())
    with monkeypatch.context() as patched, pytest.raises(SystemExit):
        patched.setattr(spikehebb.lifetimes, "MODELS_DIR", other.parent)
        script.main([str(other), "--episodes", "1"])
    assert f"{other} is a shipped model, and nothing is written beside one: give --cache and --out" in capsys.readouterr().err
    assert sorted(other.parent.iterdir()) == before
    with monkeypatch.context() as patched, pytest.raises(SystemExit):
        patched.setattr(spikehebb.lifetimes, "MODELS_DIR", other.parent)
        script.main([str(run), str(other), "--episodes", "1"])
    assert f"{other} is a shipped model, and nothing is written beside one: draw the run it was chosen from" in capsys.readouterr().err
    # the Markdown table: per run, the population mean and the score at each of the first run's stored means;
    # a second run of another seed stored its means at 3 and 5 only: "-" at 2 and 4
    config = TrainConfig.from_dict(dict(rule="A", popsize=4, generations=5, max_env_steps=60, train_variants=("default",),
                                        batch_size=4, evaluator="serial", snapshot_every=3, seed=1,
                                        runs_dir=str(tmp_path / "third"), run_name="third"))
    third = train(config, progress=False)
    script.main([str(run), str(third), "--episodes", "1", "--variants", "default", "--markdown", "--labels", "a", "b c"])
    printed = capsys.readouterr().out
    assert "third.h5: scoring 2 stored mean(s) on default" in printed
    lines = printed[printed.index("| after generation"):].splitlines()
    assert lines[:2] == ["| after generation | a: population | a: `default` | b c: population | b c: `default` |",
                         "| ---: | ---: | ---: | ---: | ---: |"]
    scores = {name: json.loads(path.with_name(f"{path.stem}_bodies.json").read_text())["scores"]
              for name, path in (("a", run), ("b", third))}
    assert set(scores["b"]) == {"3", "5"}
    population = {}
    for name, path in (("a", run), ("b", third)):
        with RunStore.open(path) as store:
            population[name] = store.history()["fitness_mean"]
    assert not np.array_equal(population["a"], population["b"])
    for g, line in zip((2, 4, 5), lines[2:5]):
        b = f"{scores['b'][str(g)]['default']:.0f}" if str(g) in scores["b"] else "-"
        cells = [str(g), f"{population['a'][g - 1]:.0f}", f"{scores['a'][str(g)]['default']:.0f}",
                 f"{population['b'][g - 1]:.0f}", b]
        assert line == "| " + " | ".join(cells) + " |"
    assert len(lines) == 9 and lines[5:8:2] == ["", ""]
    assert lines[-1].startswith("b c: population = the population's mean fitness") and lines[-1].endswith("`default` trained.")
    assert not run.with_name("run_bodies.png").exists()  # no figure without --out
    with pytest.raises(SystemExit):
        script.main([str(run), str(other), "--markdown", "--labels", "a"])
    assert "--labels names each run once: 2 run file(s), 1 label(s)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main([str(run), "--labels", "a"])
    assert "--labels names the runs of the Markdown table: add --markdown" in capsys.readouterr().err


def test_other_pybullet_prints_the_test_table_and_can_drop_deterministic_pairs(run, capsys, monkeypatch, experiment_script):
    """experiments/other_pybullet.py with the installed pybullet: assess's numbers; with
    --no-deterministic-pairs only that engine setting is dropped (lifetimes still run)."""

    import pybullet

    real = pybullet.setPhysicsEngineParameter
    script = experiment_script("other_pybullet")
    script.main([str(run), "--variant", "default", "--episodes", "2"])
    lines = capsys.readouterr().out.splitlines()
    config, params = load_run(run)
    (want,) = assess(config, params, ["default"], 2)
    assert "deterministicOverlappingPairs on" in lines[0]
    assert lines[1] == f"default        {want.mean:7.1f} ± {want.std:5.1f}"
    assert lines[2].startswith("2 lifetimes per body, ")

    calls = []
    monkeypatch.setattr(pybullet, "setPhysicsEngineParameter", lambda *a, **kw: calls.append((a, kw)))
    script.drop_deterministic_pairs()
    pybullet.setPhysicsEngineParameter(deterministicOverlappingPairs=1, physicsClientId=3)
    assert calls == []  # the setting alone: nothing left to forward
    pybullet.setPhysicsEngineParameter(deterministicOverlappingPairs=1, numSubSteps=4, physicsClientId=3)
    assert calls == [((), {"numSubSteps": 4, "physicsClientId": 3})]

    # the option: the envs' calls reach the engine without the setting, and the lifetimes run
    calls = []
    monkeypatch.setattr(pybullet, "setPhysicsEngineParameter", lambda *a, **kw: (calls.append(kw), real(*a, **kw))[1])
    script.main([str(run), "--variant", "default", "--episodes", "1", "--no-deterministic-pairs"])
    lines = capsys.readouterr().out.splitlines()
    assert "deterministicOverlappingPairs off" in lines[0] and re.match(r"default +-?[\d.]+ ± +[\d.]+$", lines[1])
    assert any("numSubSteps" in kw for kw in calls) and not any("deterministicOverlappingPairs" in kw for kw in calls)
    with pytest.raises(SystemExit) as exit_:
        script.main(["no_such_model"])
    assert exit_.value.code == 2 and "no_such_model" in capsys.readouterr().err


def test_weights_by_body_takes_the_weights_the_traces_record(run, tmp_path, capsys, experiment_script):
    """experiments/weights_by_body.py: the weights it compares at step t are the ones `evaluate
    --traces` records for the same test lifetimes; the matrix is their cosine; bad input is one line."""

    from spikehebb.assess import record_traces
    from spikehebb.lifetimes import Lifetimes
    from spikehebb.tracefile import load_trace

    script = experiment_script("weights_by_body")

    config, params = load_run(run)
    traces = record_traces(run, config, params, ["long_back"], episodes=2, into=tmp_path / "traces.h5")
    step = 5  # inside the 201 grace steps: no lifetime has ended early by then, with or without early ends
    with Lifetimes(run, batch_size=2, early_ends=False) as lives:
        weights, fitness = script.weights_at(lives, "long_back", 2, step)
    # counts that int() cut without a word
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 2.5"):
        Lifetimes(run, batch_size=2.5)
    with pytest.raises(ValueError, match=r"max_env_steps must be a positive integer \(env steps, burn-in included\), got 99.7"):
        Lifetimes(run, max_env_steps=99.7)
    with Lifetimes(run, batch_size=1) as lives, pytest.raises(ValueError, match=r"episode numbers must be non-negative integers, got \[1.5\]"):
        lives._path("long_back", 1.5)
    for e in range(2):
        recorded = load_trace(traces, f"long_back/episode_{e}")
        # the traces hold the weights each step ran with (index 0: the initial ones), so index
        # step + 1 holds those after step `step`'s update
        want = np.concatenate([w[step + 1].ravel() for w in recorded.weights])
        np.testing.assert_allclose(weights[e], want, rtol=1e-6)
        np.testing.assert_allclose(fitness[e], recorded.rewards["reward_progress"][: step + 1].sum(), rtol=1e-9)
    np.testing.assert_allclose(script.cosines(np.array([[1.0, 0.0], [1.0, 1.0], [0.0, -2.0]])),
                               [[1, 2**-0.5, 0], [2**-0.5, 1, -(2**-0.5)], [0, -(2**-0.5), 1]])

    script.main([str(run), "--variants", "default", "long_back", "--episodes", "2", "--step", "5"])
    out = capsys.readouterr().out
    assert "cosine similarity of the weights after network step 5, 2 test lifetimes per body" in out
    assert "within default: mean " in out and "default vs long_back: mean " in out
    for flags, message in [(["--episodes", "1"], "--episodes must be at least 2"),
                           (["--step", "960"], "--step must be in 0 .. 959"),
                           (["--variants", "damage_middle"], "unknown ant variant(s) ['damage_middle']")]:
        with pytest.raises(SystemExit) as exit_:
            script.main([str(run), *flags])
        err = capsys.readouterr().err.strip()
        assert exit_.value.code == 2 and "\n" not in err and message in err


def test_inspect_says_the_runs_settings_in_one_line_with_what_is_not_the_default(run):
    line = next(l for l in RunStore.open(run).summary().splitlines() if l.startswith("config: "))
    assert line.startswith("config: task ant on default, agent hebbian A, openai-es population 4, seed 0, 5 generations; also ")
    assert "task.max_env_steps 60" in line and "snapshot_every 2" in line and "evaluator" not in line


def test_mirror_ant_scores_the_evaluated_lifetimes_as_themselves_and_their_mirror_through_it(run, tmp_path, capsys, experiment_script):
    """experiments/mirror_ant.py: as itself, a body scores what `evaluate` scores for the same test
    lifetimes; through the mirror, those lifetimes with the env wrapped in MirroredAnt, which
    changes them; bad input is one line."""

    from spikehebb.envs.mirror import MirroredAnt
    from spikehebb.lifetimes import Lifetimes

    script = experiment_script("mirror_ant")

    out = tmp_path / "mirror.json"
    script.main([str(run), "--variants", "damage_left", "--episodes", "3", "--batch-size", "2", "--out", str(out)])
    saved = json.loads(out.read_text())
    config, params = load_run(run)
    evaluated = assess(config, params, ["damage_left"], episodes=3)[0].fitness
    np.testing.assert_allclose(saved["plain"]["damage_left"], evaluated)

    with Lifetimes(run, batch_size=3, wrap_env=MirroredAnt) as lives:  # the map itself: tests/envs/test_mirror.py
        by_hand = lives.run("damage_left", range(3)).fitness
    np.testing.assert_allclose(saved["mirrored"]["damage_left"], by_hand)
    assert not np.allclose(saved["mirrored"]["damage_left"], evaluated)
    assert "| `damage_left` |" in capsys.readouterr().out

    with pytest.raises(SystemExit) as exit_:
        script.main([str(run), "--variants", "palm_damage_right"])
    assert exit_.value.code == 2 and "no preset is the mirror image of palm_damage_right" in capsys.readouterr().err


def test_bench_train_times_the_generation_a_resumed_run_trains_next(run, tmp_path, experiment_script):
    """experiments/bench_train.py --from: the candidates it times are the next generation's, the
    ones training resumed from the file evaluates (the same raw fitness, candidate by candidate)."""
    import shutil

    from spikehebb.evaluators import SerialEvaluator

    script = experiment_script("bench_train")
    copy = tmp_path / run.name
    shutil.copy(run, copy)
    worker_spec, sampler, keys, what = script.next_generation(str(copy), 4, 2)
    assert worker_spec.batch_size == 2 and [k.generation for k in keys] == [5] * 4
    assert what.startswith(f"generation 5 of {copy} (Hebbian A")
    with SerialEvaluator(worker_spec) as serial:
        fitness, _ = serial.evaluate(sampler, keys)
    with RunStore.open(copy) as store:
        config = TrainConfig.from_dict(store.config)
    train(config.replace(generations=6), resume=copy, progress=False)
    with RunStore.open(copy) as store:
        np.testing.assert_array_equal(store.history()["fitness_raw"][5], fitness)
    with pytest.raises(SystemExit, match="--popsize must be 1 to the run's population 4, got 5"):
        script.next_generation(str(copy), 5, 2)


def test_a_card_states_the_learning_rate_the_run_used_and_the_agent_as_configured():
    from spikehebb.agents import AgentConfig
    from spikehebb.config import StrategyConfig
    from spikehebb.models import _agent_words, _lr_words

    assert _lr_words(StrategyConfig(popsize=64, lr_reference_popsize=500)) == "0.07155 (0.2 x sqrt(64 / 500))"
    assert _lr_words(StrategyConfig(popsize=200)) == "0.2"
    assert _agent_words(AgentConfig(kind="static", rule=None)) == "static, no rule"
    assert _agent_words(AgentConfig(coefficient_rows="i_plus_j")) == "hebbian, rule ABCD_lr, coefficient rows i_plus_j"


@pytest.mark.parametrize("chosen, kept", [(0, False), (2, True)])
def test_a_model_keeps_the_runs_traces_only_when_they_are_of_its_mean(run, tmp_path, chosen, kept):
    import shutil

    from spikehebb.models import Selection

    copy = tmp_path / "run.h5"
    shutil.copy(run, copy)
    with h5py.File(copy, "a") as f:  # what `evaluate --traces` leaves: lifetimes of the run's final mean
        f.create_group("traces/default/episode_0").attrs["fitness"] = 1.0
    generations, _ = candidate_means(copy)
    scores = np.where(np.arange(len(generations)) == chosen, 1.0, 0.0)
    model = export(copy, tmp_path / "m.h5", Selection(generations, scores, 1, ("default",)))
    with h5py.File(model) as f:
        assert ("traces" in f) == kept


def test_a_model_refuses_its_runs_best_candidate(run, tmp_path):
    """A model keeps its source run's /best (the run's best candidate, from any generation, maybe
    after the chosen mean): `evaluate --which best` on it tested something the model does not ship."""
    from spikehebb.models import Selection

    generations, _ = candidate_means(run)
    model = export(run, tmp_path / "m.h5", Selection(generations, np.array([3.0, 1.0, 2.0]), 1, ("default",)))
    with pytest.raises(ValueError, match=r"m.h5 is a model: it holds the search mean it chose; the best candidate of its run "
                                         r"is in the run file \(evaluate that with --which best\)"):
        load_run(model, "best")
    assert load_run(run, "best")[1].shape == load_run(model)[1].shape  # the run file still gives it


def test_select_refuses_a_run_that_is_being_written_before_scoring(run, tmp_path, capsys, monkeypatch):
    """Its final mean changes every generation: the selection was refused only after scoring
    ("made on other snapshots"), or export could copy a later state than the one it chose."""
    import os

    import spikehebb.models
    from spikehebb.store import RunStore
    from spikehebb.store.transaction import writer_pid

    monkeypatch.setattr(spikehebb.models, "select", lambda *a, **k: pytest.fail("scored before the check"))
    assert writer_pid(run) is None
    with RunStore.open(run, "a"):  # a training run holds the writer lock
        assert writer_pid(run) == str(os.getpid())
        with pytest.raises(SystemExit) as exc:
            cli_main(["select", str(run), "-o", str(tmp_path / "m.h5"), "--workers", "1"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"{run} is being written by another process (pid {os.getpid()}, a training run?)" in err
    assert err.count("\n") == 1 and not (tmp_path / "m.h5").exists()
    assert writer_pid(run) is None  # the probe took nothing


def test_export_refuses_a_run_that_moved_on_while_it_was_copied(run, tmp_path, monkeypatch):
    import spikehebb.models
    from spikehebb.models import Selection

    generations, means = candidate_means(run)
    earlier = generations.copy()
    earlier[-1] -= 1  # as read one generation before the copy was made
    monkeypatch.setattr(spikehebb.models, "candidate_means", lambda path: (earlier, means))
    with pytest.raises(ValueError, match=r"run.h5 moved on to generation 5 while its model was written; select once its "
                                         r"training stops"):
        export(run, tmp_path / "m.h5", Selection(earlier, np.array([1.0, 2.0, 3.0]), 1, ("default",)))
    assert sorted(p.name for p in tmp_path.iterdir()) == []
