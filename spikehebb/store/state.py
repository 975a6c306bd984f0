"""Nested state dicts <-> HDF5 groups: how a strategy's ``state_dict()`` is stored.

:func:`write_state` writes a nested dict into a group so that :func:`read_state` returns an equal
dict, types included (the table is in ``docs/run-file.md``, section ``/checkpoint``). The
checkpoint of every generation goes through here, so resumed runs continue bit for bit.
"""

from __future__ import annotations

from typing import Any, Mapping

import h5py
import numpy as np

_KIND = "spikehebb_kind"  # dataset attribute: the Python type to rebuild (absent: as read)


def write_state(group: h5py.Group, state: Mapping[str, Any]) -> None:
    """Write a nested dict into ``group`` so that :func:`read_state` returns an equal dict.

    dict -> subgroup; str -> attribute of the group; None -> empty attribute; bool, int, float ->
    scalar dataset tagged with its Python type; NumPy scalars and numeric/bool arrays (any shape,
    0-d included) -> datasets, read back with their dtype; lists and tuples of numbers -> 1-d+
    datasets, read back as list / tuple (of one number type, as NumPy makes them one array: [1,
    2.5] comes back [1.0, 2.5], and a nested tuple as a tuple of lists; no strategy's state holds
    either). Existing members that ``state`` lacks are deleted;
    arrays are stored resizable and rewritten in place when only their shape changes. Space freed
    by deleted members is not reused by HDF5 across sessions, so a state whose STRUCTURE changes
    every generation grows the file; strategies' states keep their structure (tested).
    Keys must be non-empty strings without ``/``.
    """
    for key in list(group.keys()):
        if key not in state or isinstance(state[key], (str, type(None))) or (
            isinstance(state[key], Mapping) != isinstance(group[key], h5py.Group)
        ):
            del group[key]
    for key in list(group.attrs.keys()):
        if key not in state or not isinstance(state[key], (str, type(None))):
            del group.attrs[key]
    for key, value in state.items():
        where = f"{group.name}/{key}" if isinstance(key, str) else f"{group.name}/{key!r}"
        if not isinstance(key, str) or not key or "/" in key or key == ".":
            raise ValueError(f"state keys must be non-empty strings without '/', got {where}")
        if isinstance(value, Mapping):
            write_state(group.require_group(key), value)
        elif isinstance(value, str):
            _set_str_attr(group, key, value)
        elif value is None:
            group.attrs[key] = h5py.Empty("f8")
        else:
            data, kind = _encode_leaf(value, where)
            old = group.get(key)
            if old is not None and old.dtype == data.dtype and old.shape != data.shape and old.maxshape == (None,) * data.ndim:
                old.resize(data.shape)
            if old is not None and old.shape == data.shape and old.dtype == data.dtype:
                if data.size:
                    old[...] = data
            else:
                if old is not None:
                    del group[key]
                if data.ndim:  # resizable, so an array that grows (cma's fit.hist) is rewritten in place
                    old = group.create_dataset(key, data=data, maxshape=(None,) * data.ndim, chunks=True)
                else:
                    old = group.create_dataset(key, data=data)
            if kind:
                _set_str_attr(old, _KIND, kind)
            elif _KIND in old.attrs:
                del old.attrs[_KIND]


def _set_str_attr(obj: h5py.HLObject, key: str, value: str) -> None:
    """Fixed-length UTF-8, rewritten only when it changes: a variable-length string attribute
    lives in the global heap, and every rewrite would leak a 4 KB heap collection per file copy."""
    old = obj.attrs.get(key)
    if isinstance(old, bytes) and old.decode() == value:
        return
    encoded = value.encode()
    obj.attrs.create(key, np.array(encoded, dtype=f"S{max(1, len(encoded))}"))


def _encode_leaf(value: Any, where: str) -> tuple[np.ndarray, str]:
    if isinstance(value, (bool, int, float)) and not isinstance(value, np.generic):  # np.float64 is a float
        kind = type(value).__name__
        return np.asarray(value, dtype={"bool": np.bool_, "int": np.int64, "float": np.float64}[kind]), kind
    if isinstance(value, (list, tuple)):
        data, kind = np.asarray(value), type(value).__name__
    elif isinstance(value, np.ndarray):
        data, kind = value, ("ndarray" if value.ndim == 0 else "")
    elif isinstance(value, np.generic):
        data, kind = np.asarray(value), ""
    else:
        raise TypeError(
            f"{where}: cannot store {type(value).__name__} in a run file; state leaves must be "
            "dicts, str, None, bool, int, float, NumPy scalars or numeric arrays, lists or tuples"
        )
    if data.dtype.kind not in "biufc":
        raise TypeError(f"{where}: arrays must be numeric or bool, got dtype {data.dtype}")
    return data, kind


def read_state(group: h5py.Group) -> dict[str, Any]:
    """Read a nested dict written by :func:`write_state`."""
    out: dict[str, Any] = {}
    for key, value in group.attrs.items():
        out[key] = None if isinstance(value, h5py.Empty) else (value.decode() if isinstance(value, bytes) else str(value))
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            out[key] = read_state(item)
            continue
        data = item[()]
        kind = item.attrs.get(_KIND, "")
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind in ("bool", "int", "float"):
            data = {"bool": bool, "int": int, "float": float}[kind](data)
        elif kind == "list":
            data = data.tolist()
        elif kind == "tuple":
            data = tuple(data.tolist())
        elif kind == "ndarray":
            data = np.asarray(data)
        out[key] = data
    return out



def state_nbytes(state: Mapping[str, Any]) -> int:
    """Bytes of array data in a nested state dict: at most what :func:`write_state` allocates."""
    total = 0
    for value in state.values():
        if isinstance(value, Mapping):
            total += state_nbytes(value)
        elif isinstance(value, (np.ndarray, np.generic, list, tuple)):
            total += np.asarray(value).nbytes
        elif value is not None:
            total += 8 + (len(value) if isinstance(value, str) else 0)
    return total
