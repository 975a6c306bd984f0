"""Fitness shaping and one OpenAI-ES update, against numbers computed independently here."""

import numpy as np
import pytest

from spikehebb.es import OpenAIES, centred_ranks, failures_as_worst, ranks


def test_centred_ranks_by_hand():
    # sorted: -1 (rank 0), 0 (1), 3 (2), 10 (3); rank/3 - 0.5
    np.testing.assert_allclose(centred_ranks([3.0, -1.0, 10.0, 0.0]), [1 / 6, -1 / 2, 1 / 2, -1 / 6])
    assert centred_ranks([5.0, 7.0]).tolist() == [-0.5, 0.5]


def test_ties_share_their_mean_rank():
    assert ranks([-np.inf, 2.0, -np.inf, 1.0]).tolist() == [0.5, 3.0, 0.5, 2.0]
    assert centred_ranks([4.0, 4.0, 4.0]).tolist() == [0.0, 0.0, 0.0]


def test_nan_has_no_rank_and_failures_rank_lowest():
    """ranks([1, nan, 2, nan]) was [0, 2, 1, 3]: the sort put NaN last, so a blown-up lifetime
    ranked best wherever raw fitness reached the ranks (experiments/minimal_ant.py)."""
    for shaping in (ranks, centred_ranks):
        with pytest.raises(ValueError, match=r"fitness must not contain NaN: map failed evaluations to -inf first \(failures_as_worst"):
            shaping([1.0, np.nan, 2.0, np.nan])
    assert ranks([np.inf, 1.0, -np.inf]).tolist() == [2.0, 1.0, 0.0]  # infinities have their place
    worst = failures_as_worst([1.0, np.nan, np.inf, -np.inf, 2.5])
    assert worst.tolist() == [1.0, -np.inf, -np.inf, -np.inf, 2.5]
    assert ranks(worst).tolist() == [3.0, 1.0, 1.0, 1.0, 4.0]


def test_ranks_reject_2d():
    with pytest.raises(ValueError, match=r"1-D \(population,\), got shape \(2, 2\)"):
        ranks(np.zeros((2, 2)))


def _philox_noise(seed, generation, pair, n):
    """The documented noise contract, written out without spikehebb."""
    seq = np.random.SeedSequence(seed, spawn_key=(0, generation, pair))
    return np.random.Generator(np.random.Philox(seq)).standard_normal(n)


@pytest.mark.parametrize("standardise", [True, False])
def test_one_openai_es_update_by_hand(standardise):
    seed, n, pop = 11, 3, 4
    h0 = np.array([0.5, -1.0, 2.0])
    lr, sigma, l2 = 0.2, 0.1, 0.01
    es = OpenAIES(n, pop, seed=seed, init=h0, standardise_ranks=standardise)

    eps = [_philox_noise(seed, 0, p, n) for p in range(pop // 2)]
    candidates = [h0 + sigma * eps[0], h0 - sigma * eps[0], h0 + sigma * eps[1], h0 - sigma * eps[1]]
    keys = es.ask()
    assert [tuple(k) for k in keys] == [(0, 0, 1), (0, 1, -1), (0, 2, 1), (0, 3, -1)]
    for key, expected in zip(keys, candidates):
        np.testing.assert_array_equal(es.candidate_params(key), expected)

    reward = np.array([1.0, 3.0, 2.0, 3.0])
    penalty = np.array([-l2 * np.mean(c**2) for c in candidates])
    fitness = reward + penalty
    # the two rewards of 3.0 differ only through their penalties, which decide their order
    order = np.argsort(fitness)
    rank = np.empty(pop)
    rank[order] = [0, 1, 2, 3]
    shaped = rank / 3 - 0.5
    if standardise:
        shaped = (shaped - shaped.mean()) / shaped.std()
    signs = [1, -1, 1, -1]
    grad = sum(shaped[i] * signs[i] * eps[i // 2] for i in range(pop)) / (pop * sigma)
    expected_mean = h0 + lr * grad

    stats = es.tell(reward)
    np.testing.assert_allclose(stats["penalty"], penalty, rtol=1e-14)
    np.testing.assert_allclose(stats["fitness"], fitness, rtol=1e-14)
    np.testing.assert_allclose(stats["shaped"], shaped, rtol=1e-14)
    np.testing.assert_array_equal(stats["raw"], reward)
    np.testing.assert_allclose(es.mean, expected_mean, rtol=1e-13)
    assert es.lr == pytest.approx(0.2 * 0.995)
    assert es.sigma == pytest.approx(0.1 * 0.999)


def test_schedules_stop_at_their_floors():
    es = OpenAIES(2, 2, lr=0.001004, sigma=0.01001, l2_coeff=0.0)
    for _ in range(3):
        es.ask()
        es.tell([0.0, 1.0])
    # the authors' code decays while above the floor, so each ends one step below it
    assert es.lr == pytest.approx(0.001004 * 0.995)
    assert es.sigma == pytest.approx(0.01001 * 0.999)


def test_uniform_init_is_in_range_and_normal_is_standard():
    u = OpenAIES(10_000, 2, seed=1, init="uniform").mean
    assert u.min() >= -1 and u.max() <= 1 and abs(u.mean()) < 0.05
    g = OpenAIES(10_000, 2, seed=1, init="normal").mean
    assert abs(g.std() - 1) < 0.05


def test_fan_in_init_is_torchs_linear_default_per_layer_and_only_for_static_weights():
    """``init="fan_in"``: each static weight layer (n_pre, n_post) U(+-1/sqrt(n_pre)), as torch's
    nn.Linear draws it (the authors' static baseline); written out here with the documented
    initial-mean stream. The default stays N(0, 1); other agents and parts are refused."""
    from spikehebb.agents import AgentConfig
    from spikehebb.config import StrategyConfig, TaskConfig, TrainConfig
    from spikehebb.es.open_es import fan_in_mean, initial_mean

    shapes = [(28, 128), (128, 64), (64, 8)]
    rng = np.random.Generator(np.random.Philox(np.random.SeedSequence(3, spawn_key=(1,))))
    want = np.concatenate([rng.uniform(-1 / np.sqrt(n), 1 / np.sqrt(n), n * m) for n, m in shapes])
    np.testing.assert_array_equal(fan_in_mean(shapes, 3), want)
    bounds = np.concatenate([np.full(n * m, n ** -0.5) for n, m in shapes])
    assert np.all(np.abs(want) <= bounds)
    for (n, m), layer in zip(shapes, np.split(want, np.cumsum([n * m for n, m in shapes])[:-1])):
        assert abs(layer.std() - n ** -0.5 / 3 ** 0.5) < 0.05 * n ** -0.5  # U(-b, b): std b / sqrt(3)

    static = AgentConfig(kind="static", rule=None)
    config = TrainConfig(agent=static, strategy=StrategyConfig(popsize=4, init="fan_in"), seed=3)
    np.testing.assert_array_equal(config.make_strategy(12_288).mean, want)
    cma = TrainConfig(agent=static, strategy=StrategyConfig("cma", popsize=4, init="fan_in"), seed=3)
    np.testing.assert_array_equal(cma.make_strategy(12_288).mean, want)
    default = TrainConfig(agent=static, strategy=StrategyConfig(popsize=4), seed=3)
    np.testing.assert_array_equal(default.make_strategy(12_288).mean, initial_mean("normal", 12_288, 3))
    with pytest.raises(ValueError, match="^init='fan_in' starts static weights .* a hebbian agent searches other numbers"):
        TrainConfig(strategy=StrategyConfig(init="fan_in"))
    with pytest.raises(ValueError, match=r"^init='fan_in' draws weight matrices alone; this car run also evolves encoder \(1,362 values\)$"):
        TrainConfig(task=TaskConfig("car"), agent=static, strategy=StrategyConfig(init="fan_in"))
    lstm = TrainConfig(agent=AgentConfig(kind="lstm", rule=None), strategy=StrategyConfig(popsize=4, init="zeros"))
    assert not np.any(lstm.make_strategy(1000).mean)  # Palm et al.'s start (evostrat's NormalPopulation)
    with pytest.raises(ValueError, match=r"^strategy: init='zeros' sets where a per-synapse search starts; shared rules"):
        StrategyConfig(init="zeros", rho=128)
    with pytest.raises(ValueError, match=r"^strategy: init must be one of \('normal', 'uniform', 'zeros', 'fan_in'\), got 'xavier'$"):
        StrategyConfig(init="xavier")
    with pytest.raises(ValueError, match=r"fan-in init draws weight matrices \(n_pre, n_post\), got a layer of shape \(2, 3, 5\)"):
        fan_in_mean([(2, 3, 5)], 0)
