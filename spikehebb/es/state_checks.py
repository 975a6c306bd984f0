"""Reading a strategy's saved state: every field checked, a one-line ValueError for what is wrong.

A strategy's ``load_state_dict`` reads and checks every field with these before it changes
anything, so a damaged or foreign checkpoint is refused with a sentence (not a KeyError half way)
and a refused state leaves the strategy as it was. ``path`` names a field of the nested state
dict with dots: ``"optimizer.m"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spikehebb.checks import is_finite_real, is_integer


def state_field(state: dict[str, Any], path: str) -> Any:
    """``state[a][b]...`` for ``path`` "a.b...", or a one-line ValueError naming what is missing
    (a damaged or foreign checkpoint is refused, not met with a KeyError)."""
    value: Any = state
    for depth, name in enumerate(path.split(".")):
        if not isinstance(value, dict) or name not in value:
            where = "state_dict" + "".join(f".{n}" for n in path.split(".")[:depth])
            raise ValueError(f"{where} lacks {name!r}: not a whole strategy state")
        value = value[name]
    return value


def state_vector(state: dict[str, Any], path: str, n: int | tuple[int, ...], finite: bool = True) -> np.ndarray:
    """A float64 copy of a state's array, checked for shape (``n``: a length or a shape) and,
    if ``finite``, for NaN and infinities."""
    shape = (n,) if isinstance(n, (int, np.integer)) else tuple(n)
    value = state_field(state, path)
    try:
        value = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"state_dict {path} must be an array of numbers of shape {shape}") from None
    if value.shape != shape:
        raise ValueError(f"state_dict {path} must have shape {shape}, got {value.shape}")
    if finite and not np.all(np.isfinite(value)):
        raise ValueError(f"state_dict {path} must be finite, got NaN or inf")
    return value


def scalar(value: Any) -> Any:
    """A 0-d array (what HDF5 gives back for a stored scalar) as its Python scalar; else as is."""
    return value.item() if isinstance(value, np.ndarray) and value.shape == () else value


def state_number(state: dict[str, Any], path: str, positive: bool = False) -> float:
    """A state's finite number (> 0 if ``positive``) as a float."""
    value = scalar(state_field(state, path))
    if not is_finite_real(value) or (positive and not value > 0):
        raise ValueError(f"state_dict {path} must be a finite number{' > 0' if positive else ''}, got {value!r}")
    return float(value)


def state_count(state: dict[str, Any], path: str) -> int:
    """A state's integer >= 0."""
    value = scalar(state_field(state, path))
    if not (is_integer(value) and value >= 0):
        raise ValueError(f"state_dict {path} must be an integer >= 0, got {value!r}")
    return int(value)


def state_indices(state: dict[str, Any], path: str, n: int, below: int) -> np.ndarray:
    """A (n,) int64 copy of a state's index vector, every entry in [0, below)."""
    value = np.asarray(state_field(state, path))
    if value.shape != (n,) or value.dtype.kind not in "iu":
        raise ValueError(f"state_dict {path} must be ({n},) integers, got {value.dtype} of shape {value.shape}")
    if n and (value.min() < 0 or value.max() >= below):
        raise ValueError(f"state_dict {path} must index the {below} rules (0 to {below - 1})")
    return value.astype(np.int64)


def state_text(state: dict[str, Any], path: str) -> str:
    """A state's string (HDF5 gives bytes back)."""
    value = state_field(state, path)
    return value.decode() if isinstance(value, bytes) else str(value)
