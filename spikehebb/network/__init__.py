"""Plastic feed-forward rate networks: the interface and its Brian2 and NumPy backends."""

from spikehebb.network.base import ACTIVATIONS, BACKENDS, WEIGHT_INITS, PlasticNetwork, sample_weights

__all__ = ["ACTIVATIONS", "BACKENDS", "WEIGHT_INITS", "PlasticNetwork", "sample_weights"]
