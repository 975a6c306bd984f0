"""Evolution strategies for spikehebb: OpenAI-ES as Najarro & Risi ran it, and CMA-ES via ``cma``.

Fitness is MAXIMISED by every strategy. The interface, written once in :class:`Strategy`::

    strategy = get_strategy("openai-es", n_params=61_440, popsize=500, seed=1)
    keys = strategy.ask()                  # list of CandidateKey(generation, index, sign)
    sampler = strategy.sampler()           # small, picklable; expands this generation's keys
    fitness = [evaluate(sampler.params(k)) for k in keys]
    stats = strategy.tell(fitness)         # raw, penalty, fitness, shaped, nan_count
    checkpoint = strategy.state_dict()     # nested dict of arrays / scalars / strings (HDF5-ready)

Candidates travel as keys, not vectors. For OpenAI-ES, ``strategy.sampler()`` is a
:class:`NoiseSampler` holding the generation's mean, sigma and the run seed; it rebuilds candidate
``i`` as ``mean + sign * sigma * eps`` where ``eps`` is a counter-based Philox stream keyed by
(seed, generation, i // 2). A pool of persistent workers receives the sampler once per generation
(one mean vector: 3.7 MB for 456,640 coefficients) and then only keys (68 bytes each, pickled), so 200
candidates of the car never cross a process boundary as 200 x 456,640 floats. ``tell`` rebuilds the
noise itself from the keys, so it needs no vectors back either, only fitness. For separable
CMA-ES (the only CMA that fits 61,440 or 456,640 dimensions) the sampler is a
:class:`DiagonalSampler`: cma draws its normals through our keyed ``randn``, and the sampler rebuilds
candidate i from cma's mean, sigma and diagonal scaling with cma's own expression (checked bit for
bit against cma's vectors at every ask). Full CMA-ES, and separable CMA in the rare case that check
fails, uses a :class:`PopulationSampler` that holds the vectors; send each worker
``sampler.subset(its_keys)``. ``candidate_params(key)`` expands a key on the strategy's side for all.

The static-weights baseline uses the same strategies: they are dimension-agnostic and search any
flat vector.
"""

from spikehebb.es.base import Strategy
from spikehebb.es.candidates import (
    CandidateKey,
    DiagonalSampler,
    NoiseSampler,
    PopulationSampler,
    expand,
    noise_vector,
)
from spikehebb.es.cma_es import CMAES
from spikehebb.es.merge import EvolveMerge
from spikehebb.es.open_es import OpenAIES
from spikehebb.es.shared_rules import SharedRules
from spikehebb.es.shaping import centred_ranks, failures_as_worst, l2_penalty, ranks, standardise

STRATEGIES: dict[str, type[Strategy]] = {
    OpenAIES.name: OpenAIES,
    CMAES.name: CMAES,
    SharedRules.name: SharedRules,  # Palm et al. 2021: M shared rules as a Gaussian mixture
    EvolveMerge.name: EvolveMerge,  # Pedersen & Risi 2021: per-synapse rules merged by k-means
}
"""Every strategy by name; tests are parametrised over it."""


def get_strategy(name: str, **kwargs) -> Strategy:
    """Build a registered strategy: ``get_strategy("cma", n_params=20, popsize=12, seed=0)``."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; valid names: {sorted(STRATEGIES)}") from None
    return cls(**kwargs)


__all__ = [
    "CMAES",
    "EvolveMerge",
    "STRATEGIES",
    "SharedRules",
    "CandidateKey",
    "DiagonalSampler",
    "NoiseSampler",
    "OpenAIES",
    "PopulationSampler",
    "Strategy",
    "centred_ranks",
    "expand",
    "failures_as_worst",
    "get_strategy",
    "l2_penalty",
    "noise_vector",
    "ranks",
    "standardise",
]
