"""Fitness shaping: plain functions that compose (after evosax/core/fitness_shaping.py).

All functions take fitness to be MAXIMISED: larger is better.
"""

from __future__ import annotations

import numpy as np


def failures_as_worst(fitness: np.ndarray) -> np.ndarray:
    """Fitness with every failed evaluation (NaN, or an infinity: a fitness that overflowed, a
    simulation that blew up) replaced by -inf, the worst value, so that a failure never wins.

    fitness: (n,) float. Returns: (n,) float64, a new array. What :meth:`Strategy.tell
    <spikehebb.es.base.Strategy.tell>` does to raw fitness before anything ranks it.
    """
    fitness = np.asarray(fitness, dtype=np.float64)
    return np.where(np.isfinite(fitness), fitness, -np.inf)


def ranks(fitness: np.ndarray) -> np.ndarray:
    """Rank of each entry, 0 for the smallest, ``len - 1`` for the largest; ties share their mean rank.

    fitness: (n,) float, no NaN (a one-line ValueError: NaN has no place in an order, and the sort
    would rank it best; map failures to -inf first with :func:`failures_as_worst`); -inf ranks
    lowest, +inf highest. Distinct values get the integer ranks of the authors'
    ``compute_ranks``; tied values (typically failed evaluations, all -inf) share the average of
    their ranks instead of being ordered arbitrarily by the sort, so a pair of failures adds no
    direction to the OpenAI-ES gradient.
    Returns: (n,) float64.
    """
    fitness = np.asarray(fitness, dtype=np.float64)
    if fitness.ndim != 1:
        raise ValueError(f"fitness must be 1-D (population,), got shape {fitness.shape}")
    if np.isnan(fitness).any():
        raise ValueError("fitness must not contain NaN: map failed evaluations to -inf first "
                         "(failures_as_worst, as Strategy.tell does)")
    n = fitness.size
    order = np.argsort(fitness, kind="stable")
    ordered = fitness[order]
    starts_group = np.r_[True, ordered[1:] != ordered[:-1]]
    starts = np.flatnonzero(starts_group)
    ends = np.r_[starts[1:], n]
    out = np.empty(n)
    out[order] = ((starts + ends - 1) / 2)[np.cumsum(starts_group) - 1]
    return out


def centred_ranks(fitness: np.ndarray) -> np.ndarray:
    """Ranks mapped linearly onto [-0.5, 0.5] (Salimans et al. 2017; Najarro & Risi 2020 code).

    ``rank / (n - 1) - 0.5``: the worst candidate gets -0.5, the best +0.5.
    fitness: (n,) float, n >= 2. Returns: (n,) float64.
    """
    fitness = np.asarray(fitness)
    if fitness.size < 2:
        raise ValueError(f"centred ranks need at least 2 fitness values, got {fitness.size}")
    return ranks(fitness) / (fitness.size - 1) - 0.5


def standardise(values: np.ndarray) -> np.ndarray:
    """``(values - mean) / std``, as the authors' ``_update_coeffs`` does after the centred ranks.

    values: (n,) float with non-zero spread. Returns: (n,) float64.
    """
    values = np.asarray(values, dtype=np.float64)
    std = values.std()
    if std == 0:
        raise ValueError("cannot standardise fitness values with zero spread")
    return (values - values.mean()) / std


def l2_penalty(mean_squares: np.ndarray, coeff: float) -> np.ndarray:
    """The paper's fitness penalty ``-coeff * mean(h_i**2)`` for each candidate.

    mean_squares: (n,) float64, ``mean(params_i**2)`` of each candidate.
    Returns: (n,) float64, zero or negative; it is ADDED to the raw reward.
    """
    return -coeff * np.asarray(mean_squares, dtype=np.float64)
