"""Plastic feed-forward rate networks: the interface and its Brian2 and NumPy backends."""

from spikehebb.network.base import (
    ACTIVATIONS,
    BACKENDS,
    NORMALISATIONS,
    WEIGHT_INITS,
    PlasticNetwork,
    sample_weights,
)

__all__ = ["ACTIVATIONS", "BACKENDS", "NORMALISATIONS", "WEIGHT_INITS", "PlasticNetwork", "sample_weights"]
