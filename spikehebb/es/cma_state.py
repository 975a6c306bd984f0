"""Serialise the dynamic state of a ``cma.CMAEvolutionStrategy`` into arrays, scalars and strings.

cma has no state_dict of its own, and its object graph holds callables, loggers and option
dictionaries that are not data. Instead of pickling, :func:`capture` walks the instance attributes
of the strategy and of every nested object defined in the ``cma`` package, and records each DATA leaf
under its dotted path (``"sm.C"``, ``"adapt_sigma.ps"``, ``"fit.hist"``, ``"countiter"``):

- numeric or bool ndarrays, Python and NumPy scalars, strings, None;
- lists and tuples of numbers (``fit.hist``) or of equal-shape arrays (stacked into one array);
- dicts with string keys whose values are all such leaves (``sm._parameters``), as nested dicts;
- an array or object reached a second time is recorded as an alias of its first path, so arrays
  that cma shares between attributes (e.g. ``B`` of the strategy and of its sampler) stay shared.

Everything else (callables, dicts, option objects, the logger, the timer, the last population
which ``ask`` rebuilds) is not recorded. :func:`restore` assumes a FRESH strategy built with the
same x0, sigma0 and options, and writes every recorded leaf back with ``setattr``. The result is
a plain dict: ``{"values": {path: value}, "kinds": {path: kind}}``.

Whether the recorded leaves suffice is an empirical claim, checked by the resume tests (full and
diagonal CMA, 10 + 10 generations == 20, bit for bit). A future cma version that keeps state in a
dict or a new container type would need a line here; the tests would catch it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SKIPPED = frozenset(
    {
        "opts",  # options: rebuilt by the constructor from the same arguments
        "inopts",
        "inputargs",
        "_es_opts",
        "logger",  # output only
        "timer",  # wall-clock, not search state
        "more_to_write",
        "callbackstop",
        "integer_centering",
        "randn",  # our keyed sampler: no state beyond the generation counter
        "eigenmethod",
        "pop",  # the last population, (popsize, n): rebuilt by the next ask()
        "pop_sorted",
        "ary",
        "_tell2_args",
    }
)

_SCALAR_KINDS = {bool: "bool", int: "int", float: "float", str: "str"}


def _is_cma_object(value: Any) -> bool:
    return type(value).__module__.startswith("cma") and hasattr(value, "__dict__")


def _encode_sequence(seq: list | tuple) -> tuple[str, Any] | None:
    kind = "list" if isinstance(seq, list) else "tuple"
    if len(seq) == 0:
        return kind, np.zeros(0)
    if all(isinstance(v, np.ndarray) and v.dtype != object for v in seq):
        if len({v.shape for v in seq}) == 1:
            return f"{kind}_of_arrays", np.stack(seq)
        return None
    if all(isinstance(v, (bool, int, float, np.bool_, np.integer, np.floating)) for v in seq):
        return kind, np.asarray(seq)
    return None


def _encode_leaf(value: Any) -> tuple[str, Any] | None:
    """(kind, plain value) of a data leaf, or None if ``value`` is not data we record."""
    if isinstance(value, np.ndarray):
        return None if value.dtype == object else ("ndarray", value.copy())
    if isinstance(value, (list, tuple)):
        return _encode_sequence(value)
    if isinstance(value, np.generic):
        return f"numpy:{value.dtype.str}", value.copy()
    if value is None:
        return "none", ""
    if isinstance(value, range):  # cma's selective mirrors at small populations
        return "range", np.array([value.start, value.stop, value.step])
    if type(value) in _SCALAR_KINDS:
        return _SCALAR_KINDS[type(value)], value
    if isinstance(value, dict) and value and all(isinstance(k, str) and "/" not in k for k in value):
        items = {k: _encode_leaf(v) for k, v in value.items()}
        if all(item is not None for item in items.values()):
            return "dict", {
                "values": {k: item[1] for k, item in items.items()},
                "kinds": {k: item[0] for k, item in items.items()},
            }
    return None


def capture(es: Any) -> dict[str, dict[str, Any]]:
    """Data leaves of ``es`` as ``{"values": {path: value}, "kinds": {path: kind}}``."""
    values: dict[str, Any] = {}
    kinds: dict[str, str] = {}
    seen: dict[int, str] = {}

    def walk(obj: Any, prefix: str) -> None:
        for name, value in vars(obj).items():
            if name in SKIPPED:
                continue
            path = prefix + name
            if isinstance(value, (np.ndarray, list, tuple, dict)) or _is_cma_object(value):
                if id(value) in seen:
                    kinds[path], values[path] = "alias", seen[id(value)]
                    continue
                seen[id(value)] = path
            if _is_cma_object(value):
                kinds[path], values[path] = "object", ""
                walk(value, path + ".")
                if isinstance(value, list):
                    encoded = _encode_sequence(value)
                    if encoded is not None:
                        kinds[path + "[]"], values[path + "[]"] = encoded
                continue
            encoded = _encode_leaf(value)
            if encoded is not None:
                kinds[path], values[path] = encoded

    walk(es, "")
    return {"values": values, "kinds": kinds}


def _decode(kind: str, value: Any) -> Any:
    if kind == "ndarray":
        return np.array(value, copy=True)
    if kind in ("list", "tuple"):
        items = np.asarray(value).tolist()
        return items if kind == "list" else tuple(items)
    if kind in ("list_of_arrays", "tuple_of_arrays"):
        items = [np.array(row, copy=True) for row in np.asarray(value)]
        return items if kind == "list_of_arrays" else tuple(items)
    if kind.startswith("numpy:"):
        return np.asarray(value, dtype=np.dtype(kind[len("numpy:"):]))[()]
    if kind == "range":
        return range(*np.asarray(value).tolist())
    if kind == "none":
        return None
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "str":
        return value.decode() if isinstance(value, bytes) else str(value)
    if kind == "dict":
        return {k: _decode(_text(value["kinds"][k]), v) for k, v in value["values"].items()}
    raise ValueError(f"unknown cma state kind {kind!r}")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _resolve(root: Any, path: str) -> Any:
    obj = root
    for name in path.split("."):
        obj = getattr(obj, name)
    return obj


def restore(es: Any, state: dict[str, dict[str, Any]]) -> None:
    """Write a :func:`capture` result into a fresh ``es`` built with the same arguments. An array
    whose shape differs from the fresh strategy's (non-empty, not scalar) one is refused with a ValueError."""
    kinds = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in state["kinds"].items()}
    values = state["values"]
    restored: dict[str, Any] = {}
    order = sorted(kinds, key=lambda p: (kinds[p] == "alias", p.count("."), p))
    for path in order:
        kind = kinds[path]
        if kind == "object":
            continue
        if path.endswith("[]"):
            _resolve(es, path[:-2])[:] = _decode(kind, values[path])
            continue
        parent_path, _, name = path.rpartition(".")
        parent = _resolve(es, parent_path) if parent_path else es
        if kind == "alias":
            target = values[path]
            target = target.decode() if isinstance(target, bytes) else str(target)
            value = restored[target] if target in restored else _resolve(es, target)
        else:
            value = _decode(kind, values[path])
            fresh = getattr(parent, name, None)
            if (isinstance(value, np.ndarray) and isinstance(fresh, np.ndarray) and fresh.size and fresh.ndim
                    and value.shape != fresh.shape):  # a damaged state, or another cma's layout
                raise ValueError(f"{path} has shape {value.shape} where cma keeps {fresh.shape}")
        restored[path] = value
        setattr(parent, name, value)
