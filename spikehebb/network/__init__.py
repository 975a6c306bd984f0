"""Plastic feed-forward rate networks: the interface, its backends and weight constraints.

``make_network(sizes, rule, population, backend="brian2", ...)`` builds one; :data:`BACKENDS`
maps a backend's name to its class (the Brian2 class imports brian2 only when built).
"""

from spikehebb.network.base import ACTIVATIONS, DTYPES, LOGNORMAL_SIGMA, WEIGHT_INITS, PlasticNetwork, sample_weights
from spikehebb.network.brian import BrianPlasticNetwork
from spikehebb.network.constraints import (
    CONSTRAINTS, DaleClip, DaleSmooth, DaleSquareplus, MaxAbsNormalisation, WeightConstraint, make_constraint,
)
from spikehebb.network.reference import NumpyPlasticNetwork

#: Every backend by name.
BACKENDS: dict[str, type[PlasticNetwork]] = {
    BrianPlasticNetwork.backend: BrianPlasticNetwork,
    NumpyPlasticNetwork.backend: NumpyPlasticNetwork,
}


def make_network(sizes, rule, population: int = 1, *, backend: str = "brian2", **kwargs) -> PlasticNetwork:
    """A :class:`PlasticNetwork` of the named backend ("brian2": the rule as Brian2 equations
    compiled to C++, the default; "numpy": batched NumPy); ``kwargs`` go to the class."""
    try:
        cls = BACKENDS[backend]
    except (KeyError, TypeError):
        raise ValueError(f"unknown backend {backend!r}; expected one of {tuple(BACKENDS)}") from None
    return cls(sizes, rule, population, **kwargs)


__all__ = [
    "ACTIVATIONS", "BACKENDS", "CONSTRAINTS", "DTYPES", "LOGNORMAL_SIGMA", "WEIGHT_INITS", "BrianPlasticNetwork",
    "DaleClip", "DaleSmooth", "DaleSquareplus",
    "MaxAbsNormalisation", "NumpyPlasticNetwork", "PlasticNetwork", "WeightConstraint",
    "make_constraint", "make_network", "sample_weights",
]
