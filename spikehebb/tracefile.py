"""Recorded lifetimes in a run or traces file: read one whole (:class:`Trace`), list them, drop
them before recording anew.

The layout is ``docs/run-file.md``'s ``/traces/<variant>/episode_<k>`` (written by
:class:`spikehebb.store.TraceWriter`); T = network steps, L = weight layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from spikehebb.store import RunStore
from spikehebb.store.fileformat import FORMAT, TRACES_FORMAT, attr_str, open_checked
from spikehebb.store.traces import copy_without_traces
from spikehebb.store.transaction import WriterLock, real_path, transaction


@dataclass
class Trace:
    """One recorded lifetime, read whole.

    rates: per layer ``(T, n_l)``, inputs first; weights: per layer ``(T, n_pre, n_post)``, or
    ``(T, m)`` when subsampled (``synapses[l]`` ``(m, 2)`` then gives (pre, post) of each);
    rewards: per term ``(T,)``; actions ``(T, n_act)``; spikes (LIF runs, else None): per layer
    ``(T, n_l, 2)`` int16, the spikes of each unit's on and off neuron in each env step; attrs:
    every attribute of the episode's group (``seed``, ``steps``, ``first_input``,
    ``episode_rules``, ...: docs/run-file.md), as Python values.
    """

    name: str
    """``<variant>/episode_<k>``."""
    variant: str
    episode: int
    fitness: float
    rates: list[np.ndarray]
    weights: list[np.ndarray]
    actions: np.ndarray
    rewards: dict[str, np.ndarray]
    synapses: list[np.ndarray | None] = field(default_factory=list)
    spikes: list[np.ndarray] | None = None
    attrs: dict = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return len(self.actions)

    @property
    def subsampled(self) -> bool:
        return any(s is not None for s in self.synapses)


def trace_names(path: str | Path) -> list[str]:
    """The recorded episodes of a run or traces file, as ``<variant>/episode_<k>`` (a missing,
    foreign or damaged file: one-line FileNotFoundError or RunFileError)."""
    with open_checked(real_path(path), (FORMAT, TRACES_FORMAT)) as f:
        return _trace_names(f)


def _trace_names(f: h5py.File) -> list[str]:
    if "traces" not in f:
        return []
    return [f"{v}/{e}" for v in f["traces"] for e in sorted(f["traces"][v], key=lambda n: int(n.split("_")[-1]))]


def is_traces_file(path: str | Path) -> bool:
    """Whether ``path`` is a traces-only file (``record_traces(into=...)``, a ``TraceWriter`` of
    its own): recorded lifetimes and no run. False for anything else, a missing file included
    (opening it as a run then says what is wrong)."""
    path = Path(path)
    if not path.is_file() or not h5py.is_hdf5(path):
        return False
    try:
        with h5py.File(path, "r") as f:
            return attr_str(f.attrs.get("format", "")) == TRACES_FORMAT
    except OSError:  # truncated or corrupt: not readable as a traces file either
        return False


def load_trace(path: str | Path, name: str) -> Trace:
    """Read episode ``name`` (``<variant>/episode_<k>``) of a run or traces file."""
    with open_checked(real_path(path), (FORMAT, TRACES_FORMAT)) as f:
        names = _trace_names(f)
        if name not in names:  # a variant alone is a group too: it would pass a membership test in the file
            raise ValueError(f"{path} holds no trace {name!r}: expected '<variant>/episode_<k>', one of: "
                             f"{', '.join(names) or 'none recorded'}")
        g = f[f"traces/{name}"]
        n_rates = len(g["rates"])
        sub = int(g["weights"].attrs["subsample"])
        spikes = [g[f"spikes/layer_{l}"][()] for l in range(n_rates)] if "spikes" in g else None
        return Trace(
            name=name,
            variant=str(g.attrs["morphology"]),
            episode=int(g.attrs["episode"]),
            fitness=float(g.attrs["fitness"]),
            rates=[g[f"rates/layer_{l}"][()] for l in range(n_rates)],
            weights=[g[f"weights/layer_{l}"][()] for l in range(1, n_rates)],
            actions=g["actions"][()],
            rewards={k: v[()] for k, v in g["rewards"].items()} if "rewards" in g else {},  # the car's: none
            synapses=[g[f"weights/layer_{l}_synapses"][()] if sub >= 0 else None for l in range(1, n_rates)],
            spikes=spikes,
            attrs={k: attr_str(v) if isinstance(v, (str, bytes)) else v.item() if isinstance(v, np.generic) else v
                   for k, v in g.attrs.items()},
        )


def drop_traces(path: str | Path, variants: Sequence[str] | None = None) -> list[str]:
    """Remove the recorded lifetimes of ``variants`` (None: all) from a run or traces file, so
    that they can be recorded again; returns the dropped ``<variant>/episode_<k>`` names.

    The file is rewritten without them (HDF5 does not give back the space of deleted objects)
    under the file's writer lock, by the store's copy-and-rename transaction: a crash leaves the
    file as it was.
    """
    path = Path(path)
    with open_checked(path, (FORMAT, TRACES_FORMAT)) as f:
        traces_only = f.attrs["format"] == TRACES_FORMAT
    dropped = [n for n in trace_names(path) if variants is None or n.split("/")[0] in variants]
    if not dropped:
        return []
    gone = {n.split("/")[0] for n in dropped}
    if traces_only:  # no run to open: the writer lock alone
        lock = WriterLock(real_path(path), "drop traces from")
        try:
            with transaction(real_path(path), True, new=True, what="drop traces from") as dst:
                copy_without_traces(path, dst, gone)
        finally:
            lock.release()
        return dropped
    with RunStore.open(path, "a") as store:
        with transaction(real_path(path), store.fsync, new=True, what="drop traces from") as dst:
            copy_without_traces(path, dst, gone)
    return dropped
