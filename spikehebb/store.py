"""The HDF5 run file: config, per-generation history, checkpoint, best parameters and traces.

One file per run. :class:`RunStore` writes it (``create``, ``append_generation`` after every
generation) and reads it (``open``, ``load_checkpoint`` for ``--resume``, ``history``,
``summary`` for ``spikehebb inspect``). :class:`TraceWriter` records synapse traces (rates, actions,
reward terms and weights per step) into the same file or a separate one. The layout, with every
group, dataset, shape, dtype and unit, is documented in ``docs/run-file.md``; the short version::

    /                      attrs: format="spikehebb-run", format_version, config (JSON), sizes,
                                  rule, layout (JSON), n_params, popsize, generations_completed
    /generations/*         (G, P) fitness_raw, fitness_shaped; (G,) fitness_min/mean/max,
                           best_fitness, sigma, lr, wall_time, env_steps, generation
    /mean/<part>/layer_l   current mean of the search distribution split by the run's
                           spikehebb.params.ParamLayout: coefficients/layer_l (n_pre, n_post, k),
                           weights/layer_l (n_pre, n_post), parts of the task (the car's conv)
    /best/<part>/layer_l   best candidate so far (raw fitness), same layout; attrs fitness, generation
    /checkpoint/strategy   the strategy's state_dict() as nested groups (see write_state)
    /traces/<morphology>/episode_<k>/...   optional, see TraceWriter

Crash safety (copy, write, rename). HDF5 is not crash-safe when written in place: the library
caches metadata (B-trees, heaps, object headers) and writes it back in no particular order, so a
``kill -9`` during a flush can leave a file whose counter, rows and checkpoint disagree (measured:
an in-place writer that flushes after every generation, killed 30 times at random, left 3 such
files) or one that does not open. SWMR mode orders those writes but forbids creating groups,
datasets or attributes, which a replaced checkpoint needs. So every write is a transaction on a
copy: copy the run file to ``<run>.tmp`` (``shutil.copyfile``, an in-kernel copy), apply the
generation to the copy (rows appended, mean/best/checkpoint overwritten in place,
``generations_completed`` last), close it, ``fsync`` it, ``os.replace`` it over the run file and
``fsync`` the directory. The file at the run's path is therefore always a complete, closed HDF5
file holding a whole number of generations: a kill at any moment loses at most the generation in
flight (its ``.tmp`` is ignored and overwritten by the next write). A writer also holds an
exclusive ``flock`` on ``<run>.lock`` for as long as the store is open for writing, so two trainers
(or a trainer and a trace recording) never write the same run; the second gets
:class:`RunFileBusyError`.

Cost, measured by ``python -m spikehebb.store`` (:func:`_bench`, fsync on, this repository's disk,
2 shared cores): one append with an OpenAI-ES + Adam state (checkpoint = mean, best and two Adam
moments of the searched size) takes 7.5 ms at 61,440 parameters (popsize 500, file 3.7 MB) and
24 ms at 456,640 parameters (popsize 200, file 22 MB). A generation is minutes of physics, so this
is noise. The alternative of writing in place with flushes would save the copy but not the risk
above; the copy makes the cost grow with the file, so traces recorded into a run file are copied
by every later append (a 1,000-step ant episode with all 12,288 synapses is about 40 MB): record
them after training, or into a separate file (:class:`TraceWriter` takes any path).

Kill test (tests/test_store.py, and 65 more kills by hand at 25,000 and 456,640 parameters, 44 of
them inside a write): every time, the file opened, held a consistent prefix of generations and
a checkpoint equal to the last one.
"""

from __future__ import annotations

import dataclasses
import datetime
import fcntl
import json
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import h5py
import numpy as np

from spikehebb import __version__
from spikehebb.params import ParamLayout
from spikehebb.rules import get_rule

#: Value of the root attribute ``format`` of a run file.
FORMAT = "spikehebb-run"
#: Value of the root attribute ``format`` of a file that holds only traces.
TRACES_FORMAT = "spikehebb-traces"
#: Bumped whenever the layout changes; a reader refuses other versions.
FORMAT_VERSION = 1

#: Datasets of ``/generations``, one row per generation: name -> (dtype, unit / meaning).
GENERATION_FIELDS = {
    "generation": ("int64", "index of the generation, 0-based"),
    "fitness_raw": ("float64", "(G, P) raw fitness of every candidate, in ask() order; NaN = failed"),
    "fitness_shaped": ("float64", "(G, P) what the strategy used (penalty, centred ranks, ...)"),
    "fitness_min": ("float64", "min of the finite raw fitness"),
    "fitness_mean": ("float64", "mean of the finite raw fitness"),
    "fitness_max": ("float64", "max of the finite raw fitness"),
    "best_fitness": ("float64", "best raw fitness so far"),
    "sigma": ("float64", "the strategy's step size during this generation"),
    "lr": ("float64", "learning rate during this generation (NaN when the strategy has none)"),
    "wall_time": ("float64", "seconds of wall-clock time spent on this generation"),
    "env_steps": ("int64", "environment steps taken by this generation"),
}
_ROWS_PER_CHUNK = 64


class RunFileError(ValueError):
    """A file that is not a readable spikehebb run file of this format version."""


class RunFileBusyError(RuntimeError):
    """The run file is open for writing by another process."""


# --------------------------------------------------------------------------------------------
# Parameter layout (spikehebb.params.ParamLayout) <-> JSON, and flat vectors <-> stored arrays.


def layout_to_json(layout: ParamLayout) -> str:
    return json.dumps({"parts": [[name, [list(s) for s in shapes]] for name, shapes in layout.parts]})


def layout_from_json(text: str) -> ParamLayout:
    parts = json.loads(text)["parts"]
    return ParamLayout(tuple((name, tuple(tuple(s) for s in shapes)) for name, shapes in parts))


def _layer_paths(layout: ParamLayout) -> list[tuple[str, int, tuple[int, ...]]]:
    """(part, layer number from 1, shape) of every stored array, in flat-vector order."""
    return [(name, l, tuple(shape)) for name, shapes in layout.parts for l, shape in enumerate(shapes, 1)]


# --------------------------------------------------------------------------------------------
# Nested state dicts <-> HDF5 groups.

_KIND = "spikehebb_kind"  # dataset attribute: the Python type to rebuild (absent: as read)


def write_state(group: h5py.Group, state: Mapping[str, Any]) -> None:
    """Write a nested dict into ``group`` so that :func:`read_state` returns an equal dict.

    dict -> subgroup; str -> attribute of the group; None -> empty attribute; bool, int, float ->
    scalar dataset tagged with its Python type; NumPy scalars and numeric/bool arrays (any shape,
    0-d included) -> datasets, read back with their dtype; lists and tuples of numbers -> 1-d+
    datasets, read back as list / tuple. Existing members that ``state`` lacks are deleted;
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


# --------------------------------------------------------------------------------------------
# Files: the writer lock, the copy-write-rename transaction and the checks on open.


class _WriterLock:
    """Exclusive ``flock`` on ``<run>.lock``, held while a store or trace writer may write."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self._fd: int | None = None
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise RunFileBusyError(
                    f"{path} is open for writing by another process (pid {owner}); wait for it to "
                    "finish, or record traces into a separate file"
                ) from None
            try:  # the previous holder may have unlinked the file we opened: retry on the new one
                current = os.stat(self.lock_path).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(fd).st_ino:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            self.lock_path.unlink(missing_ok=True)  # unlink before unlocking: see the retry above
            os.close(self._fd)
            self._fd = None


def _tmp_path(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Transaction:
    """Copy the file to ``<path>.tmp`` (or start it empty), edit the copy, then rename it over."""

    def __init__(self, path: Path, fsync: bool, new: bool = False) -> None:
        self.path, self.fsync, self.tmp = path, fsync, _tmp_path(path)
        if new:
            self.file = h5py.File(self.tmp, "w")
        else:
            shutil.copyfile(path, self.tmp)
            self.file = h5py.File(self.tmp, "r+")

    def commit(self) -> None:
        self.file.close()
        if self.fsync:
            _fsync_path(self.tmp)
        os.replace(self.tmp, self.path)
        if self.fsync:
            _fsync_path(self.path.parent)

    def abort(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)


@contextmanager
def _transaction(path: Path, fsync: bool, new: bool = False) -> Iterator[h5py.File]:
    txn = _Transaction(path, fsync, new)
    try:
        yield txn.file
    except BaseException:
        txn.abort()
        raise
    txn.commit()


def _attr_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@contextmanager
def _open_checked(path: Path, expected: tuple[str, ...] = (FORMAT,)) -> Iterator[h5py.File]:
    """Open ``path`` read-only after checking it is a spikehebb file of this format version."""
    if not path.exists():
        raise FileNotFoundError(f"run file {path} does not exist")
    what = "a spikehebb run file" if expected == (FORMAT,) else "a spikehebb run or traces file"
    if not h5py.is_hdf5(path):
        raise RunFileError(f"{path} is not {what} (HDF5 signature missing or truncated)")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise RunFileError(f"{path} is not {what}: the HDF5 file is truncated or corrupt ({e})") from None
    with f:
        if "format" not in f.attrs:
            raise RunFileError(
                f"{path} is a foreign HDF5 file, not {what} (no 'format' attribute; "
                f"top-level members: {sorted(f.keys())[:8]})"
            )
        fmt = _attr_str(f.attrs["format"])
        if fmt not in expected:
            raise RunFileError(f"{path} is a {fmt!r} file, expected format {' or '.join(map(repr, expected))}")
        version = int(f.attrs.get("format_version", -1))
        if version != FORMAT_VERSION:
            raise RunFileError(
                f"{path} was written by format version {version}, this spikehebb ({__version__}) reads "
                f"version {FORMAT_VERSION}"
            )
        yield f


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (Path, os.PathLike)):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"config value {value!r} of type {type(value).__name__} is not JSON-serialisable")


def config_to_json(config: Any) -> str:
    """A config dataclass or mapping as JSON (NumPy values, paths and sets converted)."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dataclass instance or a mapping, got {type(config).__name__}")
    return json.dumps(config, default=_jsonable, indent=1)


# --------------------------------------------------------------------------------------------
# The run store.


@dataclasses.dataclass
class Checkpoint:
    """What ``--resume`` needs. ``generation``: generations completed = the next one to run."""

    generation: int
    strategy_state: dict[str, Any]
    mean: np.ndarray  # (n,) flat
    best_params: np.ndarray  # (n,) flat, NaN before any finite fitness
    best_fitness: float


class RunStore:
    """One run's HDF5 file. Build with :meth:`create` or :meth:`open`, not the constructor.

    A store opened for writing (``create``, ``open(path, "a")``) holds the run's writer lock until
    :meth:`close` (or the end of a ``with`` block). Every read opens the file anew, so a store in
    mode ``"r"`` sees the generations another process has appended since.
    """

    def __init__(self, path: Path, mode: str, lock: _WriterLock | None, fsync: bool) -> None:
        self.path, self.mode, self._lock, self.fsync = path, mode, lock, fsync
        with _open_checked(path) as f:
            #: The config exactly as stored (JSON text), and parsed.
            self.config_json = _attr_str(f.attrs["config"])
            self.config: dict[str, Any] = json.loads(self.config_json)
            self.layout = layout_from_json(_attr_str(f.attrs["layout"]))
            self.sizes = tuple(int(s) for s in f.attrs["sizes"])
            self.rule = _attr_str(f.attrs["rule"]) or None
            self.popsize = int(f.attrs["popsize"])
            self.n_params = int(f.attrs["n_params"])
            self._generations = int(f.attrs["generations_completed"])
            for name in GENERATION_FIELDS:
                ds = f["generations"].get(name)
                if ds is None or ds.shape[0] < self._generations:
                    raise RunFileError(
                        f"{path} is inconsistent: generations/{name} has "
                        f"{'no rows' if ds is None else ds.shape[0]} for {self._generations} generations"
                    )

    # ---- construction

    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        config: Any,
        *,
        sizes: Sequence[int],
        rule: str | None,
        popsize: int,
        layout: ParamLayout | None = None,
        fsync: bool = True,
        snapshot_every: int = 10,
    ) -> "RunStore":
        """Start a new run file at ``path`` and return it open for writing.

        config: the run's config dataclass or a mapping (stored as JSON). sizes: layer sizes
        ``(n_0, ..., n_L)``. rule: the plasticity rule's name, or None for a static-weights run.
        layout: the :class:`spikehebb.params.ParamLayout` of the searched vector; default
        ``ParamLayout.for_network(sizes, rule, "hebbian")``, or ``"static"`` when rule is None.
        snapshot_every: keep a copy of the search mean after every ``snapshot_every``-th
        generation in ``/snapshots`` (0: none), so that the final rule can be chosen as the
        authors did, the best of the stored generation means.
        Refuses to overwrite anything: an existing ``path`` raises FileExistsError.
        """
        path = Path(path)
        if not (isinstance(snapshot_every, (int, np.integer)) and snapshot_every >= 0):
            raise ValueError(f"snapshot_every must be a non-negative integer, got {snapshot_every!r}")
        if int(popsize) < 1:
            raise ValueError(f"popsize must be a positive integer, got {popsize}")
        if layout is None:
            layout = ParamLayout.for_network(sizes, rule, "hebbian" if rule is not None else "static")
        config_json = config_to_json(config)
        if path.exists():
            raise FileExistsError(
                f"{path} already exists; continue that run with --resume {path}, or choose a new path"
            )
        lock = _WriterLock(path)
        try:
            if path.exists():  # created between the check and the lock
                raise FileExistsError(f"{path} already exists; continue that run with --resume {path}")
            with _transaction(path, fsync, new=True) as f:
                f.attrs["format"] = FORMAT
                f.attrs["format_version"] = FORMAT_VERSION
                f.attrs["spikehebb_version"] = __version__
                f.attrs["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
                f.attrs["config"] = config_json
                f.attrs["sizes"] = np.asarray(sizes, dtype=np.int64)
                f.attrs["rule"] = get_rule(rule).name if rule is not None else ""
                f.attrs["layout"] = layout_to_json(layout)
                f.attrs["n_params"] = layout.n_params
                f.attrs["popsize"] = int(popsize)
                g = f.create_group("generations")
                for name, (dtype, unit) in GENERATION_FIELDS.items():
                    if name.startswith("fitness_") and name not in ("fitness_min", "fitness_mean", "fitness_max"):
                        shape, chunks = (0, int(popsize)), (_ROWS_PER_CHUNK, int(popsize))
                    else:
                        shape, chunks = (0,), (1024,)
                    ds = g.create_dataset(name, shape, dtype=dtype, maxshape=(None,) + shape[1:], chunks=chunks)
                    ds.attrs["units"] = unit
                for name in ("mean", "best"):
                    grp = f.create_group(name)
                    for part, l, shape in _layer_paths(layout):
                        ds = grp.create_dataset(f"{part}/layer_{l}", shape, dtype="f8", fillvalue=np.nan)
                        if part == "coefficients":
                            ds.attrs["fields"] = ",".join(get_rule(rule).fields)
                snaps = f.create_group("snapshots")
                snaps.attrs["every"] = int(snapshot_every)
                snaps.create_dataset("generations_completed", (0,), dtype="i8", maxshape=(None,), chunks=(256,))
                snaps.create_dataset(
                    "mean", (0, layout.n_params), dtype="f8", maxshape=(None, layout.n_params),
                    chunks=(1, layout.n_params),
                )
                f["best"].attrs["fitness"] = -np.inf
                f["best"].attrs["generation"] = -1
                f.create_group("checkpoint").attrs["generation"] = 0
                f.attrs["generations_completed"] = 0
        except BaseException:
            lock.release()
            raise
        return cls(path, "a", lock, fsync)

    @classmethod
    def open(cls, path: str | os.PathLike, mode: str = "r", *, fsync: bool = True) -> "RunStore":
        """Open an existing run file: ``"r"`` to read, ``"a"`` to append generations (resume).

        Raises FileNotFoundError, :class:`RunFileError` (not HDF5, truncated, foreign, other
        format version, inconsistent) or, for ``"a"``, :class:`RunFileBusyError`.
        """
        path = Path(path)
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
        if mode == "r":
            return cls(path, mode, None, fsync)
        if not path.exists():
            raise FileNotFoundError(f"run file {path} does not exist")
        lock = _WriterLock(path)
        try:
            _tmp_path(path).unlink(missing_ok=True)  # left by a writer killed mid-transaction
            return cls(path, mode, lock, fsync)
        except BaseException:
            lock.release()
            raise

    def close(self) -> None:
        """Release the writer lock (the file itself is never held open between calls)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None
            self.mode = "closed"

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r}, mode={self.mode!r}, generations={self._generations})"

    # ---- writing

    @property
    def generations_completed(self) -> int:
        """Generations stored (the next generation's index). Re-read from disk in mode "r"."""
        if self.mode == "r":
            with _open_checked(self.path) as f:
                self._generations = int(f.attrs["generations_completed"])
        return self._generations

    def append_generation(
        self,
        generation: int,
        *,
        fitness_raw: np.ndarray,
        fitness_shaped: np.ndarray,
        sigma: float,
        lr: float | None,
        wall_time_s: float,
        env_steps: int,
        mean: np.ndarray,
        best_params: np.ndarray,
        best_fitness: float,
        strategy_state: Mapping[str, Any],
    ) -> None:
        """Store one finished generation and the checkpoint after it, atomically.

        generation: index of the generation just told, 0-based; must equal
        :attr:`generations_completed`. fitness_raw, fitness_shaped: (P,) in ask() order.
        mean, best_params: flat ``(n,)`` vectors in the run's :class:`ParamLayout`.
        strategy_state: ``strategy.state_dict()`` taken after ``tell``.
        When this returns, the generation is on disk (fsynced unless ``fsync=False``).
        """
        if self.mode != "a":
            raise RuntimeError(f"{self.path} is open in mode {self.mode!r}; open it with mode 'a' to append")
        if int(generation) != self._generations:
            raise ValueError(
                f"{self.path} holds {self._generations} generations, so the next one to append is "
                f"generation {self._generations}, got {generation}"
            )
        raw = self._vector("fitness_raw", fitness_raw, self.popsize, "the popsize of this run")
        shaped = self._vector("fitness_shaped", fitness_shaped, self.popsize, "the popsize of this run")
        mean = self._vector("mean", mean, self.n_params, "the run's n_params")
        best_params = self._vector("best_params", best_params, self.n_params, "the run's n_params")
        if not np.all(np.isfinite(mean)):
            raise ValueError(f"mean has {int(np.sum(~np.isfinite(mean)))} non-finite values")
        if not isinstance(strategy_state, Mapping):
            raise TypeError(f"strategy_state must be a dict (strategy.state_dict()), got {type(strategy_state).__name__}")
        finite = raw[np.isfinite(raw)]
        row = {
            "generation": int(generation),
            "fitness_min": finite.min() if finite.size else np.nan,
            "fitness_mean": finite.mean() if finite.size else np.nan,
            "fitness_max": finite.max() if finite.size else np.nan,
            "best_fitness": float(best_fitness),
            "sigma": float(sigma),
            "lr": np.nan if lr is None else float(lr),
            "wall_time": float(wall_time_s),
            "env_steps": int(env_steps),
        }
        g_new = self._generations + 1
        with _transaction(self.path, self.fsync) as f:
            gens = f["generations"]
            for name, value in [("fitness_raw", raw), ("fitness_shaped", shaped), *row.items()]:
                ds = gens[name]
                ds.resize(g_new, axis=0)
                ds[g_new - 1] = value
            for group, flat in (("mean", mean), ("best", best_params)):
                for part, layers in self.layout.split(flat).items():
                    for l, array in enumerate(layers, 1):
                        f[group][part][f"layer_{l}"][...] = array[0]
            if float(best_fitness) > float(f["best"].attrs["fitness"]) or f["best"].attrs["generation"] < 0:
                f["best"].attrs["generation"] = int(generation)
            f["best"].attrs["fitness"] = float(best_fitness)
            snaps = f.get("snapshots")  # absent in files written before snapshots existed
            if snaps is not None and snaps.attrs["every"] and g_new % int(snaps.attrs["every"]) == 0:
                k = snaps["mean"].shape[0] + 1
                snaps["mean"].resize(k, axis=0)
                snaps["mean"][k - 1] = mean
                snaps["generations_completed"].resize(k, axis=0)
                snaps["generations_completed"][k - 1] = g_new
            write_state(f["checkpoint"].require_group("strategy"), strategy_state)
            f["checkpoint"].attrs["generation"] = g_new
            f.attrs["generations_completed"] = g_new
        self._generations = g_new

    @staticmethod
    def _vector(name: str, value: Any, n: int, what: str) -> np.ndarray:
        a = np.asarray(value, dtype=np.float64)
        if a.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},) ({what}), got {a.shape}")
        return a

    # ---- reading

    def load_checkpoint(self) -> Checkpoint | None:
        """The state after the last stored generation, or None if none is stored yet."""
        with _open_checked(self.path) as f:
            g = int(f.attrs["generations_completed"])
            if g == 0:
                return None
            if int(f["checkpoint"].attrs["generation"]) != g or "strategy" not in f["checkpoint"]:
                raise RunFileError(f"{self.path} is inconsistent: its checkpoint is not of generation {g}")
            return Checkpoint(
                generation=g,
                strategy_state=read_state(f["checkpoint/strategy"]),
                mean=self.layout.join(self._read_params(f, "mean", batch=True))[0],
                best_params=self.layout.join(self._read_params(f, "best", batch=True))[0],
                best_fitness=float(f["best"].attrs["fitness"]),
            )

    def params(self, which: str = "best") -> dict[str, np.ndarray]:
        """The stored ``"best"`` or ``"mean"`` parameters: per part of the layout
        (``"coefficients"``, ``"weights"``, ...) a list of per-layer arrays without a population
        axis, e.g. ``{"coefficients": [(28, 128, 5), (128, 64, 5), (64, 8, 5)]}``."""
        if which not in ("best", "mean"):
            raise ValueError(f"which must be 'best' or 'mean', got {which!r}")
        with _open_checked(self.path) as f:
            if int(f.attrs["generations_completed"]) == 0:
                raise ValueError(f"{self.path} holds no generation yet, so no {which} parameters")
            return self._read_params(f, which)

    def _read_params(self, f: h5py.File, which: str, batch: bool = False) -> dict[str, list[np.ndarray]]:
        out: dict[str, list[np.ndarray]] = {name: [] for name in self.layout.names}
        for part, l, _ in _layer_paths(self.layout):
            a = f[which][part][f"layer_{l}"][()]
            out[part].append(a[None] if batch else a)
        return out

    def snapshots(self) -> tuple[np.ndarray, np.ndarray]:
        """The stored search means: (generations completed when each was taken ``(S,)``, flat
        means ``(S, n_params)``); empty for runs without snapshots."""
        with _open_checked(self.path) as f:
            snaps = f.get("snapshots")
            g = int(f.attrs["generations_completed"])
            if snaps is None:
                return np.zeros(0, np.int64), np.zeros((0, self.n_params))
            gens = snaps["generations_completed"][()]
            keep = gens <= g  # a row beyond the counter cannot exist (one transaction), but be strict
            return gens[keep], snaps["mean"][()][keep]

    def history(self) -> dict[str, np.ndarray]:
        """Every ``/generations`` dataset, one row per stored generation (see GENERATION_FIELDS)."""
        with _open_checked(self.path) as f:
            g = int(f.attrs["generations_completed"])
            return {name: f["generations"][name][:g] for name in GENERATION_FIELDS}

    def summary(self) -> str:
        """A few lines for ``spikehebb inspect``."""
        h = self.history()
        with _open_checked(self.path) as f:
            created = _attr_str(f.attrs.get("created", "?"))
            best_gen = int(f["best"].attrs["generation"])
            best = float(f["best"].attrs["fitness"])
            traces = sorted(f["traces"].keys()) if "traces" in f else []
        g = len(h["generation"])
        what = f"rule {self.rule}" if self.rule else "static weights"
        lines = [
            f"{self.path}: spikehebb run (format {FORMAT_VERSION}), created {created}",
            f"network {'-'.join(map(str, self.sizes))}, {what}, {self.n_params:,} parameters, popsize {self.popsize}",
        ]
        essentials = {k: self.config[k] for k in ("task", "strategy", "seed", "generations") if k in self.config}
        if essentials:
            lines.append("config: " + ", ".join(f"{k}={v}" for k, v in essentials.items()))
        if g:
            lines.append(
                f"{g} generations, {h['env_steps'].sum():,} env steps, {h['wall_time'].sum() / 3600:.2f} h; "
                f"best fitness {best:.2f} (generation {best_gen}); last generation mean "
                f"{h['fitness_mean'][-1]:.2f}, max {h['fitness_max'][-1]:.2f}, sigma {h['sigma'][-1]:.4g}"
            )
        else:
            lines.append("no generation stored yet")
        if traces:
            lines.append(f"traces: {', '.join(traces)}")
        return "\n".join(lines)

    def trace_writer(self, **kwargs: Any) -> "TraceWriter":
        """A :class:`TraceWriter` into this run file (needs mode "a"; see its arguments)."""
        if self.mode != "a":
            raise RuntimeError(f"{self.path} is open in mode {self.mode!r}; traces need mode 'a'")
        return TraceWriter(self.path, _lock=self._lock, fsync=self.fsync, **kwargs)


# --------------------------------------------------------------------------------------------
# Traces.


class TraceWriter:
    """Record per-step traces of evaluation episodes into ``path`` (a run file or a traces file).

    A missing ``path`` becomes a traces-only file (format ``spikehebb-traces``). The recording
    goes into a copy of the file that replaces it when the writer closes: a crash or an exception
    inside the ``with`` block leaves the file as it was. Layout per episode, under
    ``traces/<morphology>/episode_<k>/`` (T = network steps, datasets chunked along T in blocks of
    ``block`` steps and compressed)::

        rates/layer_0 .. layer_L   (T, n_l)  float32  activations of the forward pass, inputs first
        actions                    (T, n_act) float32 the decoded action sent to the env
        rewards/<term>             (T,)      float64  each reward term of the env step
        weights/layer_1 .. layer_L (T, n_{l-1}, n_l) float32, or (T, m) for a subsample
        weights/layer_l_synapses   (m, 2)    int32    (pre i, post j) of each sampled synapse

    Step t holds the weights that produced pass t (before the rule's update of step t), so
    ``weights[0]`` are the random initial weights. With ``synapses=m`` each layer records
    ``min(m, n_pre*n_post)`` synapses chosen by
    ``np.random.default_rng([sample_seed, l]).choice(n_pre*n_post, m, replace=False)``, sorted.

    Memory: at most ``block`` steps are buffered per dataset (64 steps of the ant's 12,288
    synapses: 3 MB), so an episode of any length is written in bounded memory.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        sizes: Sequence[int],
        n_actions: int,
        reward_terms: Sequence[str],
        synapses: int | None = None,
        sample_seed: int = 0,
        block: int = 64,
        compression: str | None = "gzip",
        fsync: bool = True,
        _lock: _WriterLock | None = None,
    ) -> None:
        self.path = Path(path)
        self.sizes = tuple(int(s) for s in sizes)
        if len(self.sizes) < 2 or min(self.sizes) < 1:
            raise ValueError(f"sizes must list at least two positive layer sizes, got {sizes}")
        self.n_actions = int(n_actions)
        self.reward_terms = tuple(reward_terms)
        if len(set(self.reward_terms)) != len(self.reward_terms) or any("/" in t or not t for t in self.reward_terms):
            raise ValueError(f"reward_terms must be unique names without '/', got {reward_terms}")
        if synapses is not None and int(synapses) < 1:
            raise ValueError(f"synapses must be None (all) or a positive count, got {synapses}")
        self.synapses, self.sample_seed = synapses, int(sample_seed)
        self.block = int(block)
        self.compression = compression
        self._own_lock = _lock is None
        self._lock = _lock or _WriterLock(self.path)
        try:
            if self.path.exists():
                with _open_checked(self.path, (FORMAT, TRACES_FORMAT)):
                    pass
                self._txn = _Transaction(self.path, fsync)
            else:
                self._txn = _Transaction(self.path, fsync, new=True)
                self._txn.file.attrs["format"] = TRACES_FORMAT
                self._txn.file.attrs["format_version"] = FORMAT_VERSION
                self._txn.file.attrs["spikehebb_version"] = __version__
        except BaseException:
            if self._own_lock:
                self._lock.release()
            raise
        self._samples = [self._sample(l, a * b) for l, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:]), 1)]
        self._open_episode: EpisodeTrace | None = None

    def _sample(self, layer: int, n: int) -> np.ndarray | None:
        if self.synapses is None:
            return None
        rng = np.random.default_rng([self.sample_seed, layer])
        return np.sort(rng.choice(n, min(int(self.synapses), n), replace=False))

    def episode(self, morphology: str, index: int, *, seed: int | None = None, **meta: Any) -> "EpisodeTrace":
        """Start recording episode ``index`` of ``morphology``; finish it with ``EpisodeTrace.end``."""
        if self._txn is None:
            raise RuntimeError("this TraceWriter is closed")
        if self._open_episode is not None:
            raise RuntimeError(f"episode {self._open_episode.group.name} is still open: call end() first")
        if not morphology or "/" in morphology:
            raise ValueError(f"morphology must be a non-empty name without '/', got {morphology!r}")
        name = f"traces/{morphology}/episode_{int(index)}"
        if name in self._txn.file:
            raise ValueError(f"{self.path} already holds {name}")
        group = self._txn.file.create_group(name)
        group.attrs.update({"morphology": morphology, "episode": int(index), "seed": -1 if seed is None else int(seed)})
        for key, value in meta.items():
            group.attrs[key] = value
        self._open_episode = EpisodeTrace(self, group)
        return self._open_episode

    def close(self) -> None:
        """Write the recording into ``path`` (an unfinished episode is ended as it stands)."""
        if self._txn is None:
            return
        try:
            if self._open_episode is not None:
                self._open_episode.end()
            self._txn.commit()
        finally:
            self._txn = None
            if self._own_lock:
                self._lock.release()

    def abort(self) -> None:
        """Discard everything recorded by this writer; ``path`` stays as it was."""
        if self._txn is None:
            return
        try:
            self._txn.abort()
        finally:
            self._txn = None
            if self._own_lock:
                self._lock.release()

    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class EpisodeTrace:
    """One episode being recorded; made by :meth:`TraceWriter.episode`."""

    def __init__(self, writer: TraceWriter, group: h5py.Group) -> None:
        self.writer, self.group = writer, group
        sizes, B = writer.sizes, writer.block
        self.steps = 0
        self._datasets: dict[str, h5py.Dataset] = {}
        self._buffers: dict[str, np.ndarray] = {}
        self._fill = 0
        kw = {"compression": writer.compression, "shuffle": writer.compression is not None}

        def add(name: str, shape: tuple[int, ...], dtype: str) -> None:
            self._datasets[name] = group.create_dataset(
                name, (0,) + shape, dtype=dtype, maxshape=(None,) + shape, chunks=(B,) + shape, **kw
            )
            self._buffers[name] = np.empty((B,) + shape, dtype=dtype)

        for l, n in enumerate(sizes):
            add(f"rates/layer_{l}", (n,), "f4")
        add("actions", (writer.n_actions,), "f4")
        for term in writer.reward_terms:
            add(f"rewards/{term}", (), "f8")
        for l, sample in enumerate(writer._samples, 1):
            if sample is None:
                add(f"weights/layer_{l}", (sizes[l - 1], sizes[l]), "f4")
            else:
                add(f"weights/layer_{l}", (sample.size,), "f4")
                pre, post = np.divmod(sample, sizes[l])
                ds = group.create_dataset(f"weights/layer_{l}_synapses", data=np.stack([pre, post], 1).astype(np.int32))
                ds.attrs["sample_seed"] = writer.sample_seed
        group["weights"].attrs["subsample"] = -1 if writer.synapses is None else int(writer.synapses)
        group["weights"].attrs["sample_seed"] = writer.sample_seed

    def step(
        self,
        rates: Sequence[np.ndarray],
        actions: np.ndarray,
        rewards: Mapping[str, float],
        weights: Sequence[np.ndarray],
    ) -> None:
        """Record one network step.

        rates: per layer ``(n_l,)``, inputs first (L+1 arrays); actions: ``(n_act,)``; rewards:
        every term named in ``reward_terms``; weights: per layer ``(n_{l-1}, n_l)`` (L arrays), the
        weights that produced this pass.
        """
        if self.group is None:
            raise RuntimeError("this episode has ended")
        sizes, i = self.writer.sizes, self._fill
        if len(rates) != len(sizes) or len(weights) != len(sizes) - 1:
            raise ValueError(
                f"expected {len(sizes)} rate arrays and {len(sizes) - 1} weight arrays for sizes {sizes}, "
                f"got {len(rates)} and {len(weights)}"
            )
        if set(rewards) != set(self.writer.reward_terms):
            raise ValueError(f"rewards must have the terms {self.writer.reward_terms}, got {tuple(rewards)}")
        for l, r in enumerate(rates):
            self._put(f"rates/layer_{l}", i, r)
        self._put("actions", i, actions)
        for term, value in rewards.items():
            self._buffers[f"rewards/{term}"][i] = value
        for l, (w, sample) in enumerate(zip(weights, self.writer._samples), 1):
            w = np.asarray(w)
            if w.shape != (sizes[l - 1], sizes[l]):
                raise ValueError(f"weights of layer {l} must be ({sizes[l - 1]}, {sizes[l]}), got {w.shape}")
            self._buffers[f"weights/layer_{l}"][i] = w if sample is None else w.reshape(-1)[sample]
        self._fill += 1
        self.steps += 1
        if self._fill == self.writer.block:
            self._flush()

    def _put(self, name: str, i: int, value: np.ndarray) -> None:
        buf = self._buffers[name]
        value = np.asarray(value)
        if value.shape != buf.shape[1:]:
            raise ValueError(f"{name} must have shape {buf.shape[1:]}, got {value.shape}")
        buf[i] = value

    def _flush(self) -> None:
        if self._fill == 0:
            return
        for name, ds in self._datasets.items():
            n = ds.shape[0]
            ds.resize(n + self._fill, axis=0)
            ds[n:] = self._buffers[name][: self._fill]
        self._fill = 0

    def end(self, fitness: float | None = None, **meta: Any) -> None:
        """Finish the episode: write the buffered steps and the metadata (fitness, steps, ...)."""
        if self.group is None:
            return
        self._flush()
        self.group.attrs["steps"] = self.steps
        self.group.attrs["fitness"] = np.nan if fitness is None else float(fitness)
        for key, value in meta.items():
            self.group.attrs[key] = value
        self.group = None
        self._buffers.clear()
        self.writer._open_episode = None

    def __enter__(self) -> "EpisodeTrace":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.end()


# --------------------------------------------------------------------------------------------


def _bench(n_params: int, popsize: int, generations: int, directory: Path) -> dict[str, float]:
    """Mean seconds per append_generation with an OpenAI-ES + Adam sized state."""
    rng = np.random.default_rng(0)
    sizes = (n_params // 5, 1)  # one layer of ABCD_lr coefficients with n_params entries
    path = directory / f"bench_{n_params}.h5"
    path.unlink(missing_ok=True)
    times = []
    with RunStore.create(path, {"bench": True}, sizes=sizes, rule="ABCD_lr", popsize=popsize) as store:
        for g in range(generations):
            state = {
                "strategy": "openai-es", "generation": g + 1, "best_params": rng.standard_normal(n_params),
                "strategy_state": {"mean": rng.standard_normal(n_params), "sigma": 0.1, "lr": 0.2,
                                   "optimizer": {"name": "adam", "m": rng.standard_normal(n_params),
                                                 "v": rng.standard_normal(n_params), "t": g}},
            }
            t0 = time.perf_counter()
            store.append_generation(
                g, fitness_raw=rng.standard_normal(popsize), fitness_shaped=rng.standard_normal(popsize),
                sigma=0.1, lr=0.2, wall_time_s=1.0, env_steps=1000, mean=state["strategy_state"]["mean"],
                best_params=state["best_params"], best_fitness=1.0, strategy_state=state,
            )
            times.append(time.perf_counter() - t0)
    return {"seconds": float(np.median(times)), "file_MB": path.stat().st_size / 1e6}


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(dir=".") as d:
        for n, p in ((61_440, 500), (456_640, 200)):
            for fsync in (True,):
                r = _bench(n, p, 20, Path(d))
                print(f"n_params {n:>7,}  popsize {p}  append {r['seconds'] * 1e3:7.1f} ms  file {r['file_MB']:.1f} MB")
