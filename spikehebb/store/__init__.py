"""The HDF5 run file: config, per-generation history, checkpoint, best parameters and traces.

One file per run, laid out as ``docs/run-file.md`` documents. One module per job:

- :mod:`~spikehebb.store.runfile`: :class:`RunStore` (create, append a generation, resume,
  history, snapshots, summary), the run's schema (:data:`GENERATION_FIELDS`), :class:`Checkpoint`;
- :mod:`~spikehebb.store.traces`: :class:`TraceWriter` and :class:`EpisodeTrace`, per-step
  synapse traces into a run file or a traces-only file;
- :mod:`~spikehebb.store.state`: nested state dicts <-> HDF5 groups (:func:`write_state`,
  :func:`read_state`), how a strategy's checkpoint is stored;
- :mod:`~spikehebb.store.transaction`: the writer lock and the copy, write, fsync, rename
  transaction that keeps the file whole through kills, full disks and read-only directories;
- :mod:`~spikehebb.store.fileformat`: the format names and version, and the checks on opening.

Errors: :class:`RunFileError` (a ``ValueError``: not a run file of this format version),
:class:`RunFileBusyError` (another process writes the run), :class:`RunFileWriteError` (an
``OSError`` with a one-line message: no space left, a read-only or unwritable directory; the
file keeps its last complete generation).
"""

from spikehebb.store.fileformat import FORMAT, FORMAT_VERSION, TRACES_FORMAT, RunFileError
from spikehebb.store.runfile import (
    GENERATION_FIELDS,
    Checkpoint,
    RunStore,
    config_to_json,
    layout_from_json,
    layout_to_json,
)
from spikehebb.store.state import read_state, write_state
from spikehebb.store.traces import EpisodeTrace, TraceWriter
from spikehebb.store.transaction import RunFileBusyError, RunFileWriteError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "TRACES_FORMAT",
    "GENERATION_FIELDS",
    "Checkpoint",
    "EpisodeTrace",
    "RunFileBusyError",
    "RunFileError",
    "RunFileWriteError",
    "RunStore",
    "TraceWriter",
    "config_to_json",
    "layout_from_json",
    "layout_to_json",
    "read_state",
    "write_state",
]
