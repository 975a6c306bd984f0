"""A failed test lifetime (its network's outputs turned non-finite) says at which network step it
failed: the table row (VariantResult.failed_note), its legend, the model card; assess reports the
steps Worker and Rollout count, serially and in its process pool, with the same fitness numbers."""

import numpy as np
import pytest

from spikehebb.assess import FAILED_NOTE, FAILED_STEP_NOTE, VariantResult, assess, failed_legend, format_table
from spikehebb.config import TaskConfig, TrainConfig, WorkerSpec
from spikehebb.models import card
from spikehebb.train import train
from spikehebb.worker import Worker

OVER = "mean, std and solved over the other"


def result(fitness, steps=None, variant="default", role="trained") -> VariantResult:
    return VariantResult(variant, np.asarray(fitness, dtype=float), role, steps=None if steps is None else np.asarray(steps))


def failing(n: int, at: dict[int, int], lived: int = 960) -> VariantResult:
    """n lifetimes of fitness 120 that lived ``lived`` steps, but lifetime i failed at step at[i]."""
    fitness, steps = np.full(n, 120.0), np.full(n, lived)
    for i, s in at.items():
        fitness[i], steps[i] = np.nan, s
    return result(fitness, steps)


# ------------------------------------------------------------------------------------ the wording
@pytest.mark.parametrize("r, note", [
    (failing(100, {}), ""),
    (failing(100, {7: 412}), f" (1 of 100 failed at network step 412: {OVER} 99)"),
    (failing(1, {0: 7}), " (1 of 1 failed at network step 7)"),
    (failing(2, {0: 15, 1: 13}), " (2 of 2 failed, at network steps 13 and 15)"),
    (failing(5, {4: 15, 0: 3, 2: 13}), f" (3 of 5 failed, at network steps 3, 13 and 15: {OVER} 2)"),
    (failing(5, {1: 9, 3: 9}), f" (2 of 5 failed, all at network step 9: {OVER} 3)"),
    (failing(4, {0: 9, 1: 9, 3: 20}), f" (3 of 4 failed, at network steps 9, 9 and 20: {OVER} 1)"),
    (failing(3, {0: 2, 1: 2, 2: 2}), " (3 of 3 failed, all at network step 2)"),
    (failing(100, {i: 12 for i in range(2, 40)} | {0: 57, 1: 3}),
     f" (40 of 100 failed, at network steps 3 to 57, median 12: {OVER} 60)"),
    (failing(6, {0: 3, 1: 11, 2: 57, 3: 10}), f" (4 of 6 failed, at network steps 3 to 57, median 10.5: {OVER} 2)"),
    (failing(6, {0: 3, 1: 11, 2: 57, 3: 12}), f" (4 of 6 failed, at network steps 3 to 57, median 11.5: {OVER} 2)"),
    (failing(5, {0: 3, 1: 2_000_001, 2: 2_000_002, 3: 2_000_009}, lived=3_000_000),
     f" (4 of 5 failed, at network steps 3 to 2000009, median 2000001.5: {OVER} 1)"),
])
def test_a_row_says_at_which_network_steps_its_lifetimes_failed(r, note):
    assert r.failed_note() == note
    assert r.solved_cell() == ("yes" if r.failed < len(r.fitness) else "no") + note


def test_without_steps_a_row_keeps_its_old_words_and_the_legend_its_line():
    one, gone = result([100.0, np.nan, 140.0]), result([np.nan, np.nan, np.nan], variant="damage_left", role="unseen")
    assert one.failed_note() == f" (1 of 3 failed: {OVER} 2)" and gone.failed_note() == " (3 of 3 failed)"
    assert one.failed_at() == "" and gone.cells() == ("- ± -", "no (3 of 3 failed)")
    assert failed_legend([one, gone]) == FAILED_NOTE and failed_legend([result([1.0, 2.0])]) == ""
    assert format_table([one, gone], "rule", "ant", 960).splitlines()[5] == FAILED_NOTE


def test_the_legend_says_what_the_step_is_where_a_row_names_one():
    known, unknown = failing(3, {1: 30}), result([1.0, np.nan, 3.0], variant="damage_left", role="unseen")
    assert failed_legend([unknown, known]) == f"{FAILED_NOTE} {FAILED_STEP_NOTE}"
    assert failed_legend([unknown, failing(3, {})]) == FAILED_NOTE  # only rows with failures count
    lines = format_table([known, unknown], "rule", "ant", 960).splitlines()
    assert lines[1].endswith(f"yes (1 of 3 failed at network step 30: {OVER} 2)")
    assert lines[2].endswith(f"no (1 of 3 failed: {OVER} 2)")
    assert lines[5] == f"{FAILED_NOTE} {FAILED_STEP_NOTE}"
    assert "counted from 1 without the burn-in steps" in FAILED_STEP_NOTE


def test_steps_must_match_the_fitness():
    with pytest.raises(ValueError, match=r"^steps must give each lifetime's network steps, shape \(3,\) as fitness, "
                                         r"got shape \(2,\)$"):
        result([1.0, 2.0, np.nan], [5, 6])
    assert result([1.0, 2.0], [5, 6]).steps.tolist() == [5, 6]


def test_the_model_card_names_the_steps(tmp_path):
    config = TrainConfig.from_dict(dict(popsize=2, generations=1, max_env_steps=60, train_variants=("default",),
                                        batch_size=2, evaluator="serial", runs_dir=str(tmp_path), run_name="run"))
    path = train(config, progress=False)
    results = [failing(2, {0: 15, 1: 13}), result([50.0, np.nan], [960, 4], variant="long_back", role="unseen")]
    text = card(path, results, "spikehebb train ...", "a test machine")
    assert "| default | yes | - ± - | no (2 of 2 failed, at network steps 13 and 15) |" in text
    assert f"| long_back | no | 50.0 ± 0.0 | no (1 of 2 failed at network step 4: {OVER} 1) |" in text
    assert f"{FAILED_NOTE} {FAILED_STEP_NOTE}" in text


# ---------------------------------------------------------------------------------- real lifetimes
EPISODE = {"burn_in_steps": 5, "grace_steps": 50}
CONFIG = TrainConfig(task=TaskConfig("ant", ("default",), 60, EPISODE))
VARIANTS = ["default", "damage_left"]
EPISODES = 3


@pytest.fixture(scope="module")
def rule() -> np.ndarray:
    """A direction in the ABCD_lr rule's coefficients; scaled, a rule that blows up."""
    return np.random.default_rng(0).normal(0.0, 1.0, WorkerSpec(CONFIG.task, CONFIG.agent).genome().n_params)


@pytest.fixture(scope="module")
def worker():
    built = Worker(WorkerSpec(CONFIG.task, CONFIG.agent, EPISODES, CONFIG.seed))
    yield built
    built.close()


def test_an_absurd_rule_fails_every_lifetime_at_its_second_network_step(rule):
    # 1e20 overflows float32 in the first update: the first step's outputs are finite, the second's not
    results = assess(CONFIG, rule * 1e20, VARIANTS, EPISODES, workers=1, max_env_steps=60)
    for r in results:
        assert r.steps.tolist() == [2] * EPISODES and np.isnan(r.fitness).all()
        assert r.cells() == ("- ± -", "no (3 of 3 failed, all at network step 2)")
    assert format_table(results, "rule", "ant", 55).splitlines()[5] == f"{FAILED_NOTE} {FAILED_STEP_NOTE}"


@pytest.mark.slow
@pytest.mark.parametrize("scale", [0.1, 1e18])
def test_assess_reports_the_steps_the_worker_counts_serially_and_in_processes(rule, worker, scale):
    """0.1: no lifetime fails, each lives its 55 steps; 1e18: weights grow until they overflow, at
    a step that differs from lifetime to lifetime."""
    params = rule * scale
    runs = [assess(CONFIG, params, VARIANTS, EPISODES, workers=1, max_env_steps=60)]
    if scale > 1:
        runs.append(assess(CONFIG, params, VARIANTS, EPISODES, workers=2, max_env_steps=60))
    for v, *rows in zip(VARIANTS, *runs):
        batch = worker.test_lifetimes(params, v, range(EPISODES))
        fitness, _ = worker.evaluate_params(params, v, range(EPISODES))
        for r in rows:
            assert r.variant == v
            np.testing.assert_array_equal(r.fitness, fitness)  # bit for bit (NaN equals NaN here)
            np.testing.assert_array_equal(r.fitness, batch.fitness)
            np.testing.assert_array_equal(r.steps, batch.steps)
            cell = r.solved_cell()
            if scale < 1:
                assert r.failed == 0 and (r.steps <= 55).all() and cell == "no"
            else:
                assert r.failed == EPISODES and all(2 < s < 55 for s in r.steps)
                assert cell.startswith("no (3 of 3 failed, ") and all(str(s) in cell for s in r.steps), cell
