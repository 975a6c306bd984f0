"""What each lifetime starts from, said per agent kind in test tables and model cards."""

import numpy as np
import pytest

from spikehebb.agents import AgentConfig, draws_weights, lifetime_start
from spikehebb.assess import VariantResult, format_table
from spikehebb.tasks import get_task

ANT = get_task("ant")
EVOLVED = "the evolved weights; the lifetimes differ only in the task's random start"


@pytest.mark.parametrize("config, words", [
    (AgentConfig(kind="hebbian", rule="ABCD_lr"), "fresh random weights"),
    (AgentConfig(kind="static", rule=None), EVOLVED),
    (AgentConfig(kind="lstm", rule=None), EVOLVED),
    (AgentConfig(kind="gru", rule=None), EVOLVED),
    (AgentConfig(kind="hebbian", rule="ABCD_lr", evolve_initial_weights=True),
     "the evolved initial weights; the lifetimes differ only in the task's random start"),
    (AgentConfig(kind="lif", rule="ABCD_lr", options={"encoding": "poisson", "poisson_seed": 1}),
     "fresh random weights and fresh input noise"),
], ids=["hebbian", "static", "lstm", "gru", "coevolved", "poisson_lif"])
def test_a_lifetime_starts_from_what_the_agent_draws_per_lifetime(config, words):
    assert lifetime_start(config, ANT) == words
    # the same decision --weight-init is refused by (cli._refuse_ignored_flags)
    assert draws_weights(config, ANT) == words.startswith("fresh random weights")


def test_the_test_table_says_what_the_lifetimes_start_from():
    results = [VariantResult("default", np.array([1.0, 3.0]), "trained")]
    static = format_table(results, "static", "ant", 960, start=lifetime_start(AgentConfig(kind="static", rule=None), ANT))
    assert f"mean ± std over 2 lifetimes, each from {EVOLVED}." in static and "fresh random" not in static
    assert "each from fresh random weights." in format_table(results, "Hebbian ABCD_lr", "ant", 960)
