"""Predicates the input checks share."""

from __future__ import annotations

import math

import numpy as np

#: The largest run seed: it is stored as a 64-bit integer in the run file's checkpoint.
MAX_SEED = 2**63 - 1


def is_integer(value) -> bool:
    """An int or NumPy integer, not a bool (``True`` would pass as 1, ``2.7`` be cut to 2)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_finite_real(value) -> bool:
    """A finite int, float or NumPy real number, not a bool or a string."""
    return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
            and math.isfinite(value))
