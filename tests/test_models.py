"""Choosing a run's rule as the authors did (the best stored search mean) and shipping it as a
model file with a card; every run-file command reads the model."""

import json

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


def test_card_puts_the_papers_numbers_beside_ours_where_the_paper_has_the_variant(run):
    results = [VariantResult("default", np.array([400.0, 600.0]), True),
               VariantResult("long_back", np.array([50.0, 90.0]), False)]
    text = card(run, results, "spikehebb train --paper", "a test machine", {"default": (1051, 113)})
    assert "| variant | seen | mean ± std (2 lifetimes) | solved | paper |" in text
    assert "| default | yes | 500.0 ± 100.0 | yes | 1051 ± 113 |" in text
    assert "| long_back | no | 70.0 ± 20.0 | no | - |" in text
    assert "Najarro & Risi 2020, Table 1" in text and "## Selection" not in text  # a plain run: nothing chosen
    assert "## Training curve" not in text and "5 generations" in text and "a test machine" in text


def test_evaluate_and_inspect_find_a_shipped_model_by_name(run, tmp_path, monkeypatch, capsys):
    import spikehebb.lifetimes

    models = tmp_path / "models"
    export(run, models / "ant_a.h5", select(run, episodes=1, progress=False))
    monkeypatch.setattr(spikehebb.lifetimes, "MODELS_DIR", models)
    monkeypatch.chdir(tmp_path)
    assert cli_main(["inspect", "ant_a"]) == 0
    assert capsys.readouterr().out.startswith(f"{models / 'ant_a.h5'}: spikehebb run")
    assert cli_main(["evaluate", "ant_a", "--variant", "default", "--episodes", "1", "--eval-steps", "60"]) == 0
    assert "default" in capsys.readouterr().out
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
