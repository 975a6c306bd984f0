"""Evolve & Merge: a merge step, the schedule, and the per-synapse start equal to OpenAI-ES."""

import numpy as np
import pytest

from spikehebb.es import EvolveMerge, OpenAIES
from spikehebb.es.merge import merge_rules
from spikehebb.es.shared_rules import expand


def sphere(x):
    return -float(np.sum(x**2))


def generation(strategy, objective=sphere):
    keys = strategy.ask()
    sampler = strategy.sampler()
    population = np.array([sampler.params(k) for k in keys])
    strategy.tell([objective(x) for x in population])
    return population


def test_a_merge_gives_m_clusters_whose_centres_are_the_means_of_their_members():
    rng = np.random.default_rng(0)
    # 60 rules of 5 coefficients around 6 well-separated points: k-means must find those 6 groups
    centres = 10 * rng.standard_normal((6, 5))
    rules = centres[np.arange(60) % 6] + 0.01 * rng.standard_normal((60, 5))
    merged, labels = merge_rules(rules, 6, seed=1, generation=0)
    assert merged.shape == (6, 5) and labels.shape == (60,)
    assert set(labels.tolist()) == set(range(6))
    for j in range(6):
        members = rules[labels == j]
        np.testing.assert_allclose(merged[j], members.mean(axis=0), rtol=0, atol=1e-12)
    # the true groups are found: rules with the same group share a label
    assert all(len(set(labels[np.arange(60) % 6 == g].tolist())) == 1 for g in range(6))
    # random rules, 37 -> 11 clusters: still exact member means, every cluster used
    rules = rng.standard_normal((37, 3))
    merged, labels = merge_rules(rules, 11, seed=2, generation=5)
    assert merged.shape == (11, 3) and np.bincount(labels).min() >= 1
    for j in range(11):
        np.testing.assert_allclose(merged[j], rules[labels == j].mean(axis=0), rtol=0, atol=1e-12)


def test_duplicate_rules_leave_no_empty_cluster():
    rules = np.repeat(np.array([[1.0, 2.0], [3.0, 4.0]]), 5, axis=0)
    merged, labels = merge_rules(rules, 4, seed=0, generation=0)
    assert merged.shape[0] == 2 and np.bincount(labels).min() >= 1
    np.testing.assert_array_equal(np.sort(merged[:, 0]), [1.0, 3.0])


def test_strategy_merges_on_schedule_and_synapses_follow_their_cluster():
    n_syn, k = 64, 2
    strategy = EvolveMerge(n_syn * k, popsize=6, seed=3, n_fields=k, final_rules=6, merge_every=2, merge_fraction=0.5)
    counts = []
    for g in range(10):
        rules_before, assign_before = strategy.rule_table()
        population = generation(strategy)
        counts.append(strategy.n_rules)
        # every candidate of the generation shares coefficients exactly where synapses share a rule
        per_synapse = population.reshape(len(population), n_syn, k)
        for a in np.unique(assign_before):
            same = per_synapse[:, assign_before == a]
            assert np.all(same == same[:, :1])
        if g % 2 == 1 and rules_before.shape[0] > 6:
            # a merge ran after this generation: the new rules are means of the told rules' clusters
            told = strategy.merges[-1]
            assert told[0] == g and told[2] == strategy.n_rules
    assert counts == [64, 32, 32, 16, 16, 8, 8, 6, 6, 6]
    assert strategy.merges.tolist() == [[1, 64, 32], [3, 32, 16], [5, 16, 8], [7, 8, 6]]
    assert strategy.next_merge() is None
    rules, assignment = strategy.rule_table()
    np.testing.assert_array_equal(strategy.mean, expand(rules, assignment))


def test_a_small_merge_fraction_still_removes_a_rule_each_merge_until_the_final_count():
    """ceil(M (1 - f)) = M once M f < 1: every merge then removes one rule, not none."""
    strategy = EvolveMerge(3 * 2, popsize=4, seed=0, n_fields=2, final_rules=1, merge_every=1, merge_fraction=0.3)
    for _ in range(4):
        generation(strategy)
    assert strategy.merges.tolist() == [[0, 3, 2], [1, 2, 1]]
    assert strategy.n_rules == 1 and strategy.next_merge() is None
    big = EvolveMerge(40 * 2, popsize=4, seed=0, n_fields=2, final_rules=20, merge_every=1, merge_fraction=0.05)
    for _ in range(3):
        generation(big)
    assert big.merges.tolist() == [[0, 40, 38], [1, 38, 37], [2, 37, 36]]  # ceil(40 * 0.95) = 38, then at least one


def test_merge_step_centres_are_member_means_inside_the_strategy():
    n_syn, k = 40, 3
    strategy = EvolveMerge(n_syn * k, popsize=4, seed=0, n_fields=k, final_rules=10, merge_every=1, merge_fraction=0.5)
    strategy.ask()
    # tell by hand and rebuild the pre-merge rules from the same SGD step the strategy takes
    plain = OpenAIES(n_syn * k, popsize=4, seed=0)
    plain.ask()
    fitness = [3.0, 1.0, 2.0, 0.0]
    strategy.tell(fitness)
    plain.tell(fitness)
    told = plain.mean.reshape(n_syn, k)  # per-synapse rules after the update, before the merge
    rules, assignment = strategy.rule_table()
    assert rules.shape == (20, k)
    for j in range(20):
        np.testing.assert_allclose(rules[j], told[assignment == j].mean(axis=0), rtol=0, atol=1e-12)


def test_before_the_first_merge_it_is_openai_es_bit_for_bit():
    a = EvolveMerge(30, popsize=8, seed=4, n_fields=3, final_rules=2, merge_every=5)
    b = OpenAIES(30, popsize=8, seed=4)
    for g in range(5):
        np.testing.assert_array_equal(generation(a), generation(b))
        if g < 4:
            np.testing.assert_array_equal(a.mean, b.mean)
    assert a.n_rules == 5  # the merge after generation 4 (10 rules -> 5)
    assert not np.array_equal(a.mean, b.mean)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"final_rules": 11}, r"final_rules must be in \[1, 10\] \(the synapse count\), got 11"),
        ({"final_rules": 2.5}, r"final_rules must be an integer count of rules, got 2.5"),
        ({"final_rules": 2, "merge_fraction": 1.0}, r"merge_fraction \(the share of rules a merge removes\) must be a number in \(0, 1\), got 1.0"),
        # a string was a raw TypeError
        ({"final_rules": 2, "merge_fraction": "0.5"}, r"merge_fraction \(the share of rules a merge removes\) must be a number in \(0, 1\), got '0.5'"),
        ({"final_rules": 2, "merge_every": 0}, "merge_every must be a positive number of generations, got 0"),
    ],
)
def test_bad_schedules_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EvolveMerge(20, popsize=4, n_fields=2, **kwargs)


def test_k_means_runs_on_one_thread_so_a_merge_repeats_bit_for_bit(monkeypatch):
    # its threads' partial sums are added in lock order: more than one thread makes the last bits vary
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_info

    seen = []
    fit_predict = KMeans.fit_predict

    def recording(self, *args, **kwargs):
        seen.append({i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"})
        return fit_predict(self, *args, **kwargs)

    monkeypatch.setattr(KMeans, "fit_predict", recording)
    rules = np.random.default_rng(3).standard_normal((1000, 5))  # four chunks of 256
    first = merge_rules(rules, 7, seed=4, generation=2)
    assert seen == [{1}]  # scikit-learn's OpenMP pool, limited while k-means runs
    second = merge_rules(rules, 7, seed=4, generation=2)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
