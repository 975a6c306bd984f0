"""Mirror-symmetric rules for the Ant (``coefficient_rows="mirror"``): every synapse shares its
rule with its mirror synapse, so that the lifetimes on a body and on its left-right mirror image
are mirror images of each other.

The Ant's mirror (:mod:`spikehebb.envs.mirror`) maps input i to ``s_i * input[pi(i)]`` and action
k to ``s_k * action[pi(k)]``. Here hidden unit j of a layer of n units is paired with unit
``(j + n/2) mod n``, sign +1. A network whose weights and rule satisfy, for every synapse (i, j)
of every layer (pi and s of the layer's pre- and postsynaptic units),

    w_ij   = s_i s_j w_pi(i)pi(j)      eta_ij = eta_pi(i)pi(j)      A_ij = A_pi(i)pi(j)
    B_ij   = s_j B_pi(i)pi(j)          C_ij   = s_i C_pi(i)pi(j)    D_ij = s_i s_j D_pi(i)pi(j)

maps the mirror image of its inputs to the mirror image of its outputs (tanh is odd) and keeps
the weights so after every update: a coefficient times its factors must change as the weight
does, by s_i s_j, and the rate o_i changes by s_i, o_j by s_j, the modulator m(t) not at all and
an eligibility trace as the weight (so eta_m_ij = eta_m_pi(i)pi(j)). Each lifetime draws its
initial weights afresh from a distribution the mirror leaves as it is (U[-0.1, 0.1] or lognormal
magnitudes, signs at random), so the weights' condition holds in distribution: a mirror-symmetric
rule's lifetimes on ``damage_left`` are those on ``damage_right`` seen in a mirror, up to the
physics engine's own asymmetries (contact order).

Synapse (i, j) reads the genome row of whichever of (i, j) and its mirror synapse comes first in
the layer (row ``n_post * i + j``), times the signs above; the other half of the rows is not read
(as with ``i_plus_j``). No synapse is its own mirror: the hidden pairing has no fixed unit.

A stored run says only ``coefficient_rows="mirror"``: it means exactly this pairing and the maps
of :mod:`spikehebb.envs.mirror` (pinned by ``tests/agents/test_mirror_rules.py``); a different
pairing needs a new name, or stored mirror runs would be read as other networks. The genome rows
that are not read drift under the search's noise: read a run's coefficients as the network does
(:func:`spikehebb.agents.hebbian.coefficients_as_read`), not from the file's arrays directly. The
modulator of a three-factor rule must be one the mirror leaves alone (the ant's progress term).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from spikehebb.envs.mirror import ACTION_SIGN, ACTION_SOURCE, OBSERVATION_SIGN, OBSERVATION_SOURCE
from spikehebb.rules import get_rule

#: How a factor of a rule's term changes in the mirror, as exponents (a, b) of s_i^a s_j^b.
FACTOR_PARITY = {"pre": (1, 0), "post": (0, 1), "mod": (0, 0), "elig": (1, 1), "w": (1, 1)}


def unit_mirror(sizes: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per layer of units, inputs first: (source, sign), unit u's mirror image being
    ``sign[u] * unit[source[u]]``. Needs the Ant's 28 inputs and 8 actions and even hidden layers."""
    sizes = tuple(int(n) for n in sizes)
    if (len(sizes) < 2 or sizes[0] != len(OBSERVATION_SOURCE) or sizes[-1] != len(ACTION_SOURCE)
            or any(n % 2 for n in sizes[1:-1])):
        raise ValueError(f"mirror-symmetric rules are the Ant's: a network of {len(OBSERVATION_SOURCE)} inputs, "
                         f"{len(ACTION_SOURCE)} actions and hidden layers of even size, got sizes {sizes}")
    layers = [(OBSERVATION_SOURCE, OBSERVATION_SIGN.astype(np.float64))]
    for n in sizes[1:-1]:
        layers.append(((np.arange(n) + n // 2) % n, np.ones(n)))
    layers.append((ACTION_SOURCE, ACTION_SIGN.astype(np.float64)))
    return layers


def field_parities(rule: str) -> list[tuple[int, int]]:
    """Per field of the rule's layout, the exponents (a, b) of its mirror sign s_i^a s_j^b."""
    spec = get_rule(rule)
    parities = {"eta": (0, 0)} if spec.has_eta else {}
    for term in spec.terms:
        unknown = [f for f in term.factors if f not in FACTOR_PARITY]
        if unknown:
            raise ValueError(f"rule {spec.name!r}: no mirror parity for factor(s) {unknown}")
        a = (1 + sum(FACTOR_PARITY[f][0] for f in term.factors)) % 2
        b = (1 + sum(FACTOR_PARITY[f][1] for f in term.factors)) % 2
        parities[term.coefficient] = (a, b)
    return [parities[name] for name in spec.fields]


def mirror_rows(sizes: Sequence[int], rule: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per weight layer: the row each synapse reads, ``(n_pre, n_post)`` ints into the layer's
    ``n_pre * n_post`` genome rows, and the factor for each of its fields, ``(n_pre, n_post, k)``
    (+-1; all 1 where a synapse reads its own row)."""
    units = unit_mirror(sizes)
    parities = field_parities(rule)
    out = []
    for (pre, s_pre), (post, s_post) in zip(units[:-1], units[1:]):
        n_pre, n_post = len(pre), len(post)
        own = n_post * np.arange(n_pre)[:, None] + np.arange(n_post)[None, :]
        mirror = n_post * pre[:, None] + post[None, :]
        if np.any(own == mirror):
            raise ValueError("a synapse is its own mirror image; mirror_rows has no rule for it")
        rows = np.minimum(own, mirror)
        factors = np.ones((n_pre, n_post, len(parities)))
        reads_other = rows != own
        for f, (a, b) in enumerate(parities):
            sign = np.outer(s_pre ** a, s_post ** b)
            factors[..., f] = np.where(reads_other, sign, 1.0)
        out.append((rows, factors))
    return out


def mirror_weights(weights: Sequence[np.ndarray], sizes: Sequence[int]) -> list[np.ndarray]:
    """The mirror image of a network's weights, per layer ``(..., n_pre, n_post)``:
    ``w'_ij = s_i s_j w_pi(i)pi(j)``."""
    units = unit_mirror(sizes)
    out = []
    for w, (pre, s_pre), (post, s_post) in zip(weights, units[:-1], units[1:]):
        w = np.asarray(w)
        out.append((np.outer(s_pre, s_post) * w[..., pre, :][..., :, post]).astype(w.dtype, copy=False))
    return out
