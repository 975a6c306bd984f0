"""Every model in models/ is whole: it opens as a run file, its /mean is the stored search mean it
says it chose, and its card beside it names that choice and tests every variant of its task."""

from pathlib import Path

import numpy as np
import pytest

from spikehebb.agents import lifetime_start
from spikehebb.assess import load_run
from spikehebb.lifetimes import MODELS_DIR, resolve_run
from spikehebb.models import _agent_words, _lr_words, candidate_means, model_info
from spikehebb.store import RunStore

SHIPPED = sorted(MODELS_DIR.glob("*.h5"))


@pytest.mark.parametrize("model", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_a_shipped_model_holds_the_mean_its_card_names(model: Path):
    info = model_info(model)
    assert info is not None, f"{model} has no 'model' record: make it with `spikehebb select`"
    config, params = load_run(model)
    # the exported /mean is the source run's stored mean after the chosen generation (the source runs
    # are committed in models/training/)
    generations, means = candidate_means(MODELS_DIR / "training" / info["source"])
    chosen = np.flatnonzero(generations == info["generation"])
    assert len(chosen), f"{info['source']} stores no mean after generation {info['generation']}"
    np.testing.assert_array_equal(params, means[chosen[-1]])
    assert max(info["selection"]["scores"].values()) == info["selection"]["scores"][str(info["generation"])]
    card = model.with_suffix(".md").read_text()
    assert f"the search mean after generation {info['generation']}, the best of {len(info['selection']['scores'])}" in card
    for variant in config.task.make().variants:
        assert f"| {variant} | " in card
    assert f"- agent: {_agent_words(config.agent)}; strategy {config.strategy.label}, population " \
           f"{config.strategy.popsize}, lr {_lr_words(config.strategy)}, sigma {config.strategy.sigma}\n" in card
    with RunStore.open(model) as store:  # every setting that is not the default, in inspect's words
        assert f"\n- settings: {store.config_line()}\n" in card
    # what a lifetime starts from is said of this agent: a static model's weights are not drawn
    assert f"Each lifetime starts from {lifetime_start(config.agent, config.task.make())} (test episodes" in card
    assert (model.parent / f"{model.stem}_curve.png").is_file()
    assert resolve_run(model.stem) == model


def test_models_ship():
    assert SHIPPED, f"no model in {MODELS_DIR}"


@pytest.mark.slow
@pytest.mark.parametrize("model", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_a_shipped_models_selection_score_reproduces(model: Path):
    """The chosen mean's recorded selection fitness is what scoring it again gives, to the bit
    (its selection lifetimes are seeded by episode number)."""
    from spikehebb.models import score_means

    info = model_info(model)
    episodes = info["selection"]["episodes_per_variant"]
    generations, scores = score_means(model, info["selection"]["variants"], episodes, generations=[info["generation"]])
    assert generations.tolist() == [info["generation"]]
    assert float(np.mean(list(scores[0]))) == info["selection"]["scores"][str(info["generation"])]


@pytest.mark.parametrize("model, damage_left", [("ant_abcd_lr", "no"), ("ant_abcd_lr_mirror", "mirror")])
def test_a_mirror_rule_is_tested_on_damage_left_as_on_the_mirror_of_its_training_body(model, damage_left):
    """The tables' "seen" column, from a short real test: the mirror-symmetric rule was trained on
    damage_left's mirror image (damage_right); the per-synapse rule never met it; long_back's
    mirror image (long_front) is no training body of either."""
    from spikehebb.assess import assess

    results = assess(*load_run(resolve_run(model)), ["damage_right", "damage_left", "long_back"], episodes=1, max_env_steps=60)
    assert [r.seen for r in results] == ["yes", damage_left, "no"]

