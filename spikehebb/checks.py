"""Predicates the input checks share."""

from __future__ import annotations

import numpy as np


def is_integer(value) -> bool:
    """An int or NumPy integer, not a bool (``True`` would pass as 1, ``2.7`` be cut to 2)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
