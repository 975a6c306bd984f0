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
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, (bool, np.bool_)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float's range (10**400)
        return False


def check_timeout(name: str, value, owner: str = "") -> float | None:
    """A timeout in seconds, checked: a positive finite number (returned as a plain float), or
    None (no timeout); ``owner`` ("evaluator") begins the message when given."""
    if value is None:
        return None
    if not (is_finite_real(value) and value > 0):
        raise ValueError(f"{owner + ': ' if owner else ''}{name} must be a positive number of seconds or None, "
                         f"got {value!r}")
    return float(value)


def repeated(items) -> list:
    """The items that occur more than once in ``items``, sorted (empty when all are distinct)."""
    items = list(items)
    return sorted({item for item in items if items.count(item) > 1})


def check_episodes(episodes) -> list[int]:
    """Episode numbers as a list of ints, or a one-line ValueError unless each is an integer >= 0
    (``int()`` would cut 1.5 to episode 1 without a word)."""
    episodes = list(episodes)
    if not all(is_integer(e) and e >= 0 for e in episodes):
        raise ValueError(f"episode numbers must be non-negative integers, got {episodes!r}")
    return [int(e) for e in episodes]


def check_bool(config, owner: str, name: str) -> None:
    """A one-line error unless the field ``name`` of the frozen dataclass ``config`` is True or
    False (a string such as "no" would switch the feature on); a NumPy bool is stored as the plain
    bool it is. ``owner`` names the config in the message ("agent", "task", ...)."""
    value = getattr(config, name)
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{owner}: {name} must be True or False, got {value!r}")
    object.__setattr__(config, name, bool(value))


def check_name(owner: str, name: str, value) -> None:
    """A one-line error unless ``value``, the setting ``name`` of the config ``owner``, is a name
    (a string): it is then compared with lists of choices or looked up, where a list or a number
    would fail with Python's own words."""
    if not isinstance(value, str):
        raise ValueError(f"{owner}: {name} must be a name (a string), got {value!r}")
