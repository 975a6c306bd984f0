"""A rate agent's config and reset: bad input is a one-line error before anything runs, and the
weights the training draws pass the network's Dale check."""

import numpy as np
import pytest

from spikehebb.agents import AgentConfig, HebbianAgent, NetworkAgent, make_agent
from spikehebb.network import sample_weights
from spikehebb.tasks import get_task


@pytest.mark.parametrize("name", ["eligibility_tau", "baseline_tau"])
@pytest.mark.parametrize("modulated", [True, False])
def test_the_rule_time_constants_are_never_none(name, modulated):
    """None passed the config and raised float(None)'s TypeError when the agent was built, after
    the run file was written; only rate_average has a None (the rule reads the rates)."""
    with pytest.raises(ValueError, match=rf"^{name} must be a finite number of steps >= 1, got None$"):
        AgentConfig(backend="numpy", modulated=modulated, **{name: None})
    assert AgentConfig(backend="numpy", rate_average=None).rate_average is None
    agent = HebbianAgent(AgentConfig(backend="numpy", modulated=True, **{name: 7}), (3, 2), "tanh", 1)
    assert getattr(agent.network, name) == 7.0


def test_a_kind_without_a_rule_says_to_pass_rule_none():
    """The default rule (ABCD_lr) was named as if the user had given it."""
    with pytest.raises(ValueError, match=r"^a static agent has no plasticity rule, got rule='ABCD_lr' \(the default "
                                         r"when none is given\): pass rule=None$"):
        AgentConfig(kind="static")
    assert AgentConfig(kind="static", rule=None).rule is None


def test_reset_names_the_parts_it_needs():
    """A missing part was "object of type 'NoneType' has no len()" from the network (or a KeyError)."""
    agent = HebbianAgent(AgentConfig(backend="numpy"), (3, 2), "tanh", 1)
    weights = sample_weights((3, 2), 1, rng=0)
    for parts, got in [({"weights": weights}, r"\['weights'\]"), ({"coefficients": [np.zeros((1, 3, 2, 5))]},
                                                                   r"\['coefficients'\]"), ([weights], "a list")]:
        with pytest.raises(ValueError, match=r"^a hebbian agent's reset takes a mapping of the parts \['coefficients', "
                                             rf"'weights'\] to per-layer arrays, got {got}$"):
            agent.reset(parts)
    static = make_agent(AgentConfig(kind="static", rule=None, backend="numpy"), get_task("ant"), 1)
    with pytest.raises(ValueError, match=r"^a static agent's reset takes a mapping of the parts \['weights'\]"):
        static.reset({})
    lif = make_agent(AgentConfig(kind="lif"), get_task("ant"), 1)  # its reset read parts["weights"]: a KeyError
    with pytest.raises(ValueError, match=r"^a lif agent's reset takes a mapping of the parts \['coefficients', "
                                         r"'weights'\] to per-layer arrays, got \['coefficients', 'noise_seed'\]$"):
        lif.reset({"coefficients": [np.zeros((1, 28, 128, 5))], "noise_seed": [np.zeros(1)]})


@pytest.mark.parametrize("mode", ["clip", "smooth", "squareplus"])
@pytest.mark.parametrize("init", ["uniform", "normal", "lognormal"])
def test_the_weights_training_draws_carry_dale_signs(mode, init):
    """The network refuses weights against Dale's signs at reset and set_weights: every lifetime's
    draw (draw_part), the perturbation's redraw (Lifetimes.random_weights: sample_weights with
    NetworkAgent.signs) and the rollout's zero padding pass it."""
    task = get_task("ant")
    config = AgentConfig(backend="numpy", dale=0.8, dale_mode=mode, weight_init=init)
    agent = make_agent(config, task, 3)
    rng = np.random.default_rng(0)
    draws = [HebbianAgent.draw_part(config, task.sizes, "weights", rng) for _ in range(2)]
    weights = [np.concatenate([*layers, np.zeros_like(layers[0])]) for layers in zip(*draws)]  # a zero slot, padded
    coefficients = [np.zeros((3, *s[1:])) for s in agent.network.coefficient_shapes]
    agent.reset({"coefficients": coefficients, "weights": weights})
    agent.reset({"coefficients": [c[:1] for c in coefficients], "weights": draws[0]}, members=[2])
    agent.set_weights(sample_weights(task.sizes, 3, init, config.weight_scale, rng,
                                     signs=NetworkAgent.signs(config, task.sizes)))
    with pytest.raises(ValueError, match="break dale_"):
        agent.set_weights(sample_weights(task.sizes, 3, init, config.weight_scale, rng))
