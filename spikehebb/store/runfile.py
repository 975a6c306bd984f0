"""The run file: one HDF5 file per training run, and :class:`RunStore`, which writes and reads it.

:class:`RunStore` writes it (``create``, ``append_generation`` after every generation) and reads
it (``open``, ``load_checkpoint`` for ``--resume``, ``history``, ``snapshots``, ``params``,
``summary`` for ``spikehebb inspect``). Every write is a transaction on a copy
(:mod:`spikehebb.store.transaction`), so the file at the run's path always holds a whole number
of generations. The layout, with every group, dataset, shape, dtype and unit, is in
``docs/run-file.md``; the short version::

    /                      attrs: format="spikehebb-run", format_version, config (JSON), sizes,
                                  rule, layout (JSON), n_params, popsize, generations_completed
    /generations/*         (G, P) fitness_raw, fitness_shaped; (G,) fitness_min/mean/max,
                           best_fitness, sigma, lr, wall_time, env_steps, generation
    /mean/<part>/layer_l   current mean of the search distribution split by the run's
                           spikehebb.genome.GenomeMap: coefficients/layer_l (n_pre, n_post, k),
                           weights/layer_l (n_pre, n_post), parts of the task (the car's conv)
    /best/<part>/layer_l   best candidate so far (raw fitness), same layout; attrs fitness, generation
    /snapshots/*           the search mean every k-th generation
    /shared_rules/*        runs with shared rules only: rules (M, k), assignment/layer_l
                           (n_pre, n_post) rule indices of the search mean, n_rules (G,) per generation
    /checkpoint/strategy   the strategy's state_dict() as nested groups (spikehebb.store.state)
    /traces/<morphology>/episode_<k>/...   optional, see spikehebb.store.traces

Cost, measured by ``experiments/bench_store.py`` (fsync on, this repository's disk, 2 shared
cores, 10 appends): one append with an OpenAI-ES + Adam state (checkpoint = mean, best and two
Adam moments of the searched size) takes 77 ms at 61,440 parameters (popsize 500, file 4 MB) and
0.3 s at 456,640 parameters (popsize 200, file 26 MB); the on-disk copy this replaced took 58 ms
and 0.14 s on the same machine, and could crash the interpreter on a full disk. A generation is
minutes of physics, so this is noise. The cost grows with the file (and the memory: the file's
size, about three times over during the write), so traces recorded into a run file are copied by
every later append (a 1,000-step ant episode with all 12,288 synapses is about 40 MB): record
them after training, or into a separate file (:class:`~spikehebb.store.traces.TraceWriter` takes
any path).

Kill test (tests/test_store.py, and 65 more kills by hand at 25,000 and 456,640 parameters, 44 of
them inside a write): every time, the file opened, held a consistent prefix of generations and
a checkpoint equal to the last one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import h5py
import numpy as np

from spikehebb import __version__
from spikehebb.agents.base import GenomePart
from spikehebb.checks import is_integer
from spikehebb.genome import GenomeMap
from spikehebb.plugins import ENV_VAR as PLUGINS_VAR
from spikehebb.plugins import missing
from spikehebb.rules import RULES, THREE_FACTOR_SUFFIX, coefficient_shapes, declaration, formula, get_rule
from spikehebb.store.fileformat import FORMAT, FORMAT_VERSION, RunFileError, attr_str, open_checked
from spikehebb.store.state import read_state, state_nbytes, write_state
from spikehebb.store.traces import TraceWriter
from spikehebb.store.transaction import (
    RunFileBusyError, WriterLock, check_folder, lock_path, real_path, remove_leftovers, tmp_path, transaction,
)

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


# --------------------------------------------------------------------------------------------
# The genome map (spikehebb.genome.GenomeMap) <-> JSON, and flat vectors <-> stored arrays.


def layout_to_json(layout: GenomeMap) -> str:
    return layout.to_json()


def layout_from_json(text: str) -> GenomeMap:
    return GenomeMap.from_json(text)


def default_layout(sizes: Sequence[int], rule: str | None) -> GenomeMap:
    """A plain network's genome: the rule's coefficients, or static weights when rule is None."""
    if rule is not None:
        return GenomeMap((GenomePart("coefficients", tuple(coefficient_shapes(sizes, rule))),))
    return GenomeMap((GenomePart("weights", tuple((a, b) for a, b in zip(sizes[:-1], sizes[1:]))),))


def _layer_paths(layout: GenomeMap) -> list[tuple[str, int, tuple[int, ...]]]:
    """(part, layer number from 1, shape) of every stored array, in flat-vector order."""
    return [(p.name, l, tuple(shape)) for p in layout.parts for l, shape in enumerate(p.shapes, 1)]


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


def _parameter_counts(sizes: Sequence[int], rule: str | None, task_parts: Sequence[GenomePart] = ()) -> str:
    """Searched parameters of every agent kind on this network, for comparing baselines: each
    kind's genome length, its own parts plus ``task_parts``, the task's searched parts that every
    kind evolves alike (the car's encoder, 1,362 convolution weights)."""
    from spikehebb.agents.recurrent import parameter_count

    hebbian = parameter_count("hebbian", sizes, rule or "ABCD_lr", task_parts)
    counts = [f"hebbian {rule or 'ABCD_lr'} {hebbian:,}"]
    counts += [f"{kind} {parameter_count(kind, sizes, task_parts=task_parts):,}" for kind in ("static", "lstm", "gru")]
    shared = sum(p.size for p in task_parts)
    also = f" (each including the task's {', '.join(p.name for p in task_parts)}, {shared:,} parameters)" if shared else ""
    return f"parameters of each agent on this network{also}: " + ", ".join(counts)


def _stored_declaration(f: h5py.File) -> dict[str, Any] | None:
    """The run's rule declaration: its ``rule_declaration`` attribute, or in a file written before
    it, the ``fields`` its coefficient datasets name (None where neither is there)."""
    text = attr_str(f.attrs.get("rule_declaration", ""))
    if text:
        try:
            declared = json.loads(text)
        except ValueError:
            declared = None
        if not (isinstance(declared, dict) and isinstance(declared.get("fields"), list)
                and isinstance(declared.get("terms"), list)):
            raise RunFileError(f"{f.filename} is damaged: its rule_declaration attribute is not a rule's declaration "
                               f"({text[:60]!r})")
        return declared
    ds = f.get("mean/coefficients/layer_1")
    fields = attr_str(ds.attrs.get("fields", "")) if ds is not None else ""
    return {"fields": fields.split(",")} if fields else None


def rule_change(path: str | os.PathLike, name: str, declared: Mapping[str, Any] | None) -> str | None:
    """Why the rule registered as ``name`` now cannot read the coefficients of a run that
    declared it as ``declared`` (a :func:`spikehebb.rules.declaration`, or an older file's
    ``{"fields": [...]}``), in one sentence; None when it can (or nothing was recorded). A rule
    edited in place would otherwise read a trained run's coefficients as another rule's, without
    a word."""
    if declared is None:
        return None
    plain = name.removesuffix(THREE_FACTOR_SUFFIX)
    if missing(name, RULES) and missing(plain, RULES):  # a plug-in that fails to import says so (ValueError)
        return (f"{path} was trained with the rule {name!r}, which is not registered here; register it as it was "
                f"(a plug-in's rule: name its module in {PLUGINS_VAR})")
    now = declaration(name)
    if "terms" not in declared:  # an older file: its layout alone
        if list(declared["fields"]) == now["fields"]:
            return None
        return (f"{path} was trained with the rule {name} whose coefficients were {','.join(declared['fields'])}; the "
                f"rule registered under that name now has {','.join(now['fields'])}: restore it as it was, or give "
                f"the new rule another name")
    if dict(declared) == now:
        return None
    return (f"{path} was trained with the rule {name} as {formula(declared)}; the rule registered under that name now "
            f"is {formula(now)}: restore it as it was, or give the new rule another name")


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


@contextlib.contextmanager
def damaged_as_one_line(path: Path):
    """A run file with its format attributes but a member or attribute missing or unreadable (cut
    short by hand, written by a broken tool) raises :class:`RunFileError` naming what is wrong."""
    try:
        yield
    except KeyError as e:
        text = str(e.args[0] if e.args else e)
        # h5py says "Unable to synchronously open object (object 'best' doesn't exist)": name the member
        member = re.search(r"object '([^']+)' doesn't exist", text)
        attribute = re.search(r"attribute: '([^']+)'", text)
        what = (f"the member {member[1]!r}" if member else f"the attribute {attribute[1]!r}" if attribute else text)
        raise RunFileError(f"{path} is damaged or incomplete: {what} is missing") from None
    except (TypeError, ValueError) as e:  # json.JSONDecodeError is a ValueError
        if isinstance(e, RunFileError):
            raise
        raise RunFileError(f"{path} is damaged or incomplete: {e}") from None


def wall_time(seconds: float) -> str:
    """A run's wall time as one reads it: seconds under a minute, minutes under an hour, hours
    beyond (``"42 s"``, ``"12.5 min"``, ``"32.20 h"``)."""
    if round(seconds) < 60:  # the unit from the rounded value: 59.7 s is "1.0 min", not "60 s"
        return f"{seconds:.0f} s"
    if round(seconds / 60, 1) < 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


class RunStore:
    """One run's HDF5 file. Build with :meth:`create` or :meth:`open`, not the constructor.

    A store opened for writing (``create``, ``open(path, "a")``) holds the run's writer lock until
    :meth:`close` (or the end of a ``with`` block). Every read opens the file anew, so a store in
    mode ``"r"`` sees the generations another process has appended since. While a
    :meth:`trace_writer` of the store is open, its recording is the file's copy ``<path>.tmp``, so
    the store's other writes (``append_generation``, ``set_target``) and a second trace writer are
    refused until it closes.
    """

    def __init__(self, path: Path, mode: str, lock: WriterLock | None, fsync: bool) -> None:
        self.path, self.mode, self._lock, self.fsync = path, mode, lock, fsync
        self._trace_writer: TraceWriter | None = None  # the last one made by trace_writer()
        with open_checked(path) as f, damaged_as_one_line(path):
            #: The config exactly as stored (JSON text), and parsed.
            self.config_json = attr_str(f.attrs["config"])
            self.config: dict[str, Any] = json.loads(self.config_json)
            self.layout = layout_from_json(attr_str(f.attrs["layout"]))
            self.sizes = tuple(int(s) for s in f.attrs["sizes"])
            self.rule = attr_str(f.attrs["rule"]) or None
            #: The rule as the run declared it (:func:`spikehebb.rules.declaration`); a file written
            #: before declarations were recorded: its coefficient layout alone, ``{"fields": [...]}``.
            self.rule_declaration: dict[str, Any] | None = _stored_declaration(f) if self.rule else None
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
        layout: GenomeMap | None = None,
        fsync: bool = True,
        snapshot_every: int = 10,
    ) -> "RunStore":
        """Start a new run file at ``path`` and return it open for writing.

        config: the run's config dataclass or a mapping (stored as JSON). sizes: layer sizes
        ``(n_0, ..., n_L)``. rule: the plasticity rule's name, or None for a static-weights run.
        layout: the :class:`spikehebb.genome.GenomeMap` of the searched vector; default
        :func:`default_layout` (the rule's coefficients, or static weights when rule is None).
        snapshot_every: keep a copy of the search mean after every ``snapshot_every``-th
        generation in ``/snapshots`` (0: none), so that the final rule can be chosen as the
        authors did, the best of the stored generation means.
        Refuses to overwrite anything: an existing ``path`` raises FileExistsError. A folder that
        does not exist raises FileNotFoundError naming it; one that cannot be written or has no
        room raises :class:`RunFileWriteError` (one line).
        """
        path = real_path(path)
        if not (is_integer(snapshot_every) and snapshot_every >= 0):
            raise ValueError(f"snapshot_every must be a non-negative integer, got {snapshot_every!r}")
        if int(popsize) < 1:
            raise ValueError(f"popsize must be a positive integer, got {popsize}")
        if layout is None:
            layout = default_layout(sizes, rule)
        config_json = config_to_json(config)
        check_folder(path, "create")
        if path.exists():
            raise FileExistsError(
                f"{path} already exists; continue that run with --resume {path}, or choose a new path"
            )
        lock = WriterLock(path, "create")
        try:
            if path.exists():  # created between the check and the lock
                raise FileExistsError(f"{path} already exists; continue that run with --resume {path}")
            remove_leftovers(path)  # the copy of a creation that was killed
            with transaction(path, fsync, new=True, what="create") as f:
                f.attrs["format"] = FORMAT
                f.attrs["format_version"] = FORMAT_VERSION
                f.attrs["spikehebb_version"] = __version__
                f.attrs["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
                f.attrs["config"] = config_json
                f.attrs["sizes"] = np.asarray(sizes, dtype=np.int64)
                f.attrs["rule"] = get_rule(rule).name if rule is not None else ""
                f.attrs["rule_declaration"] = json.dumps(declaration(rule)) if rule is not None else ""
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
            return cls(path, "a", lock, fsync)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def open(cls, path: str | os.PathLike, mode: str = "r", *, fsync: bool = True,
             advice: str | None = None) -> "RunStore":
        """Open an existing run file: ``"r"`` to read, ``"a"`` to append generations (resume).

        Raises FileNotFoundError, IsADirectoryError (a folder), :class:`RunFileError` (not HDF5,
        truncated, foreign, other format version, inconsistent) or, for ``"a"``,
        :class:`RunFileBusyError` and :class:`RunFileWriteError` (a read-only directory). Reading
        takes no lock and writes nothing, so it works in a read-only directory.

        advice: for ``"a"``, what the user can do instead of waiting when another process writes
        the run, said after "wait for it to finish, or " in the :class:`RunFileBusyError` (e.g.
        "record the traces into a separate file ..." for a trace recording); None: only the wait.
        """
        path = real_path(path)
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
        if mode == "r":
            return cls(path, mode, None, fsync)
        if not path.exists():
            raise FileNotFoundError(f"run file {path} does not exist{cls._clean_failed_creation(path)}")
        lock = WriterLock(path, advice=advice)
        try:
            remove_leftovers(path)  # left by a writer killed mid-transaction
            return cls(path, mode, lock, fsync)
        except BaseException:
            lock.release()
            raise

    @staticmethod
    def _clean_failed_creation(path: Path) -> str:
        """Remove what a creation of ``path`` killed before its first rename left (``.tmp``, a
        lock nobody holds); returns a note for the error message."""
        tmp = tmp_path(path)
        if not (tmp.exists() or lock_path(path).exists()):
            return ""
        try:
            lock = WriterLock(path)
        except (RunFileBusyError, OSError):
            return " (it is being created, or its directory cannot be written)"
        try:
            had_tmp = tmp.exists()
            if not path.exists():  # checked again under the lock
                remove_leftovers(path)
        finally:
            lock.release()
        return f" (its creation was interrupted; removed the leftover {tmp.name})" if had_tmp else ""

    def close(self) -> None:
        """Release the writer lock (the file itself is never held open between calls). A
        :meth:`trace_writer` of the store still open is closed first, its recording written into
        the file: it writes under the store's lock, which it could not do once released."""
        if self._lock is not None:
            try:
                if self._trace_writer is not None:
                    self._trace_writer.close()
            finally:
                self._trace_writer = None
                self._lock.release()
                self._lock = None
                self.mode = "closed"

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        # a block that failed discards a recording still open (as a TraceWriter's own block does)
        if exc_type is not None and self._trace_writer is not None:
            self._trace_writer.abort()
        self.close()

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r}, mode={self.mode!r}, generations={self._generations})"

    # ---- writing

    @property
    def generations_completed(self) -> int:
        """Generations stored (the next generation's index). Re-read from disk in mode "r"."""
        return self.generations_on_disk() if self.mode == "r" else self._generations

    def generations_on_disk(self) -> int:
        """Generations the file holds, read from disk: after an interruption (Ctrl-C) that may have
        come between a generation's commit and the in-memory count catching up, the true count."""
        with open_checked(self.path) as f:
            self._generations = int(f.attrs["generations_completed"])
        return self._generations

    def set_target(self, generations: int) -> None:
        """Record ``generations`` as the run's length in its stored config: a run extended with a
        larger ``--generations`` says so, and a later ``--resume`` without it goes on to there."""
        if self.mode != "a":
            raise RuntimeError(f"{self.path} is {'closed' if self.mode == 'closed' else 'open read-only'}; open it with "
                               "mode 'a' to change its target")
        if self.config.get("generations") == int(generations):
            return
        self._check_no_recording("record the new length of")
        config = {**self.config, "generations": int(generations)}
        config_json = config_to_json(config)
        with transaction(self.path, self.fsync, what="record the new length of") as f:
            f.attrs["config"] = config_json
        self.config_json, self.config = config_json, config

    def record_rule_declaration(self) -> None:
        """Write the rule's whole declaration (:func:`spikehebb.rules.declaration`) into a file
        written before declarations were recorded, where the registered rule's coefficient names
        match the file's (a resume does it once): later checks then compare the whole rule, not
        the names alone. Nothing for a file that has one, a run without a rule, or a rule changed."""
        if self.mode != "a":
            raise RuntimeError(f"{self.path} is {'closed' if self.mode == 'closed' else 'open read-only'}; open it with "
                               "mode 'a' to record its rule")
        if not self.rule or self.rule_declaration is None or "terms" in self.rule_declaration or self._rule_change():
            return
        self._check_no_recording("record the rule of")
        declared = declaration(self.rule)
        with transaction(self.path, self.fsync, what="record the rule of") as f:
            f.attrs["rule_declaration"] = json.dumps(declared)
        self.rule_declaration = declared

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
        rule_table: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Store one finished generation and the checkpoint after it, atomically.

        generation: index of the generation just told, 0-based; must equal
        :attr:`generations_completed`. fitness_raw, fitness_shaped: (P,) in ask() order.
        mean, best_params: flat ``(n,)`` vectors in the run's :class:`GenomeMap`.
        strategy_state: ``strategy.state_dict()`` taken after ``tell``.
        rule_table: runs with shared rules: (rules ``(M, k)``, assignment ``(N,)`` rule index of
        every synapse in the coefficient layout's order) of the search mean, so that
        ``expand(rules, assignment) == mean``; stored in ``/shared_rules`` (see :meth:`shared_rules`).
        When this returns, the generation is on disk (fsynced unless ``fsync=False``). Without
        room for it, raises :class:`RunFileWriteError` and the file keeps the generations before.
        """
        if self.mode != "a":
            raise RuntimeError(f"{self.path} is open in mode {self.mode!r}; open it with mode 'a' to append")
        self._check_no_recording(f"append generation {generation} to")
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
        if rule_table is not None:
            rule_table = self._rule_table(*rule_table)
        g_new = self._generations + 1
        # What this generation may add to the file: the state rewritten elsewhere (a change of
        # structure), mean/best (written in place, allocated by the first generation), a
        # snapshot, and a new chunk of rows in each /generations dataset.
        growth = state_nbytes(strategy_state) + 3 * 8 * self.n_params + 8 * _ROWS_PER_CHUNK * (2 * self.popsize + 9 * 128)
        if rule_table is not None:
            growth += rule_table[0].nbytes + 4 * rule_table[1].size
        after = (
            f"the file still holds its {self._generations} complete generations (no .tmp left); free some "
            f"space and continue with --resume {self.path}"
        )
        with transaction(self.path, self.fsync, reserve=growth, what=f"write generation {generation} of", after=after) as f:
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
            if rule_table is not None:
                self._write_rule_table(f, g_new, *rule_table)
            f["checkpoint"].attrs["generation"] = g_new
            f.attrs["generations_completed"] = g_new
        self._generations = g_new

    def _rule_table(self, rules: Any, assignment: Any) -> tuple[np.ndarray, np.ndarray]:
        rules = np.asarray(rules, dtype=np.float64)
        assignment = np.asarray(assignment)
        n_synapses = sum(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:]))
        if rules.ndim != 2 or rules.shape[0] < 1 or assignment.shape != (n_synapses,):
            raise ValueError(f"rule_table must be rules (M, k) and an assignment ({n_synapses},), got {rules.shape} and {assignment.shape}")
        if assignment.min() < 0 or assignment.max() >= rules.shape[0]:
            raise ValueError(f"rule_table assignment must index the {rules.shape[0]} rules, got {assignment.min()}..{assignment.max()}")
        return rules, assignment.astype(np.int32)

    def _write_rule_table(self, f: h5py.File, g_new: int, rules: np.ndarray, assignment: np.ndarray) -> None:
        """``/shared_rules``: this generation's rules and assignment replace the last ones; the
        rule count is appended (row g = after generation g).

        ``rules`` is a resizable dataset written in place (Evolve & Merge shrinks M), so its
        ``fields`` attribute, a plain string as ``/mean/coefficients/layer_l``'s, is written once:
        rewritten every generation it would leak a 4 KB heap collection per generation. A table
        written before (a fixed-size dataset, ``fields`` fixed-length bytes) is replaced once."""
        grp = f.require_group("shared_rules")
        table = grp.get("rules")
        if table is not None and (table.maxshape != (None, rules.shape[1]) or not isinstance(table.attrs.get("fields"), str)):
            del grp["rules"]
            table = None
        if table is None:
            table = grp.create_dataset("rules", data=rules, maxshape=(None, rules.shape[1]), chunks=True)
            table.attrs["fields"] = ",".join(get_rule(self.rule).fields) if self.rule else ""
        else:
            table.resize(rules.shape[0], axis=0)
            table[...] = rules
        if "assignment" in grp:
            del grp["assignment"]
        start = 0
        for l, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:]), 1):
            grp.create_dataset(f"assignment/layer_{l}", data=assignment[start : start + a * b].reshape(a, b))
            start += a * b
        if "n_rules" not in grp:
            grp.create_dataset("n_rules", (0,), dtype="i8", maxshape=(None,), chunks=(1024,))
        counts = grp["n_rules"]
        counts.resize(g_new, axis=0)  # a resumed run rewrites the rows of generations it re-ran
        counts[g_new - 1] = rules.shape[0]
        grp.attrs["generation"] = g_new - 1

    def shared_rules(self) -> dict[str, Any] | None:
        """A shared-rule run's last stored rule table, None for other runs: ``rules`` (M, k),
        ``assignment`` per layer (n_pre, n_post) rule indices, ``n_rules`` (G,) M after each
        generation (Evolve & Merge shrinks it), ``generation`` of the table, ``fields`` the
        names of a rule's k coefficients (the attribute ``fields``, read as a str whether it was
        written as one or, before, as fixed-length bytes)."""
        with open_checked(self.path) as f:
            grp = f.get("shared_rules")
            if grp is None:
                return None
            g = int(f.attrs["generations_completed"])
            layers = len(self.sizes) - 1
            fields = attr_str(grp["rules"].attrs.get("fields", ""))
            return {
                "rules": grp["rules"][()],
                "assignment": [grp[f"assignment/layer_{l}"][()] for l in range(1, layers + 1)],
                "n_rules": grp["n_rules"][:g],
                "generation": int(grp.attrs["generation"]),
                "fields": tuple(fields.split(",")) if fields else (),
            }

    @staticmethod
    def _vector(name: str, value: Any, n: int, what: str) -> np.ndarray:
        a = np.asarray(value, dtype=np.float64)
        if a.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},) ({what}), got {a.shape}")
        return a

    # ---- reading

    def load_checkpoint(self) -> Checkpoint | None:
        """The state after the last stored generation, or None if none is stored yet."""
        with open_checked(self.path) as f, damaged_as_one_line(self.path):
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
        with open_checked(self.path) as f:
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
        with open_checked(self.path) as f:
            snaps = f.get("snapshots")
            g = int(f.attrs["generations_completed"])
            if snaps is None:
                return np.zeros(0, np.int64), np.zeros((0, self.n_params))
            gens = snaps["generations_completed"][()]
            keep = gens <= g  # a row beyond the counter cannot exist (one transaction), but be strict
            return gens[keep], snaps["mean"][()][keep]

    def history(self) -> dict[str, np.ndarray]:
        """Every ``/generations`` dataset, one row per stored generation (see GENERATION_FIELDS)."""
        with open_checked(self.path) as f:
            g = int(f.attrs["generations_completed"])
            return {name: f["generations"][name][:g] for name in GENERATION_FIELDS}

    def run_config(self):
        """The run's :class:`~spikehebb.config.TrainConfig`, for running its parameters (testing,
        resuming, selecting): a one-line ValueError when the rule registered under the run's rule
        name no longer reads them as the run did (:func:`rule_change`)."""
        from spikehebb.config import TrainConfig  # the store does not import the configs at load

        changed = self._rule_change()
        if changed is not None:
            raise ValueError(changed)
        return TrainConfig.from_dict(self.config)

    def _rule_change(self) -> str | None:
        """:func:`rule_change` of this run's rule (None for a run without one)."""
        return rule_change(self.path, self.rule, self.rule_declaration) if self.rule else None

    def config_line(self) -> str:
        """The run's settings in one line: task, agent, strategy, seed, length, then every other
        setting that is not the default (where lifetimes ran and the file's name left out)."""
        from spikehebb.config import TrainConfig  # the store does not import the configs at load

        try:
            config = TrainConfig.from_dict(self.config)
        except (ValueError, TypeError) as err:  # a config this version cannot read: say so, show it raw
            return f"(not readable by this version: {err}) {self.config}"
        t, a, s = config.task, config.agent, config.strategy
        kind = f"{a.kind} {a.network_rule}" if a.network_rule else a.kind
        head = (f"task {t.name} on {', '.join(t.train_variants or t.make().train_variants)}, agent {kind}, "
                f"{s.name} population {s.popsize}, seed {config.seed}, {config.generations} "
                f"generation{'s' * (config.generations != 1)}")
        fixed = ("task.name", "task.train_variants", "agent.kind", "agent.rule", "strategy.name", "strategy.popsize",
                 "seed", "generations", "runs_dir", "run_name")
        other = [f"{key} {value!r}" for key, (_, value) in TrainConfig().changed(config).items()
                 if key not in fixed and not key.startswith("evaluator.")]
        return head + ("; also " + ", ".join(other) if other else "")

    def _task_parts(self) -> tuple[GenomePart, ...]:
        """The searched parts the run's task adds to every agent's genome (the car's encoder), as
        its config's task makes them; from a config this version cannot read, the stored layout's
        ``"encoder"`` part, the one part a task adds (:meth:`spikehebb.tasks.Task.genome_parts`)."""
        from spikehebb.config import TrainConfig  # the store does not import the configs at load

        try:
            return tuple(p for p in TrainConfig.from_dict(self.config).task.make().genome_parts() if p.searched)
        except (ValueError, TypeError):
            return tuple(p for p in self.layout.parts if p.name == "encoder")

    def totals(self) -> str:
        """One line of what the run holds: its generations, env steps and wall time (:func:`wall_time`), the best fitness
        and the last generation's mean, max and sigma (``spikehebb inspect`` shows it, and
        ``spikehebb train`` ends with it)."""
        h = self.history()
        with open_checked(self.path) as f, damaged_as_one_line(self.path):
            best_gen = int(f["best"].attrs["generation"])
            best = float(f["best"].attrs["fitness"])
        g = len(h["generation"])
        if not g:
            return "no generation stored yet"
        return (
            f"{g} generation{'s' * (g != 1)}, {h['env_steps'].sum():,} env steps, {wall_time(h['wall_time'].sum())}; "
            + (f"best fitness {best:.2f} (in generation {best_gen + 1}, counting from 1 as the log does)"
               if np.isfinite(best) else "no finite fitness yet (every lifetime so far failed)")
            + f"; last generation mean "
            f"{h['fitness_mean'][-1]:.2f}, max {h['fitness_max'][-1]:.2f}, sigma {h['sigma'][-1]:.4g}"
        )

    def summary(self) -> str:
        """A few lines for ``spikehebb inspect``."""
        totals = self.totals()
        with open_checked(self.path) as f, damaged_as_one_line(self.path):
            created = attr_str(f.attrs.get("created", "?"))
            traces = sorted(f["traces"].keys()) if "traces" in f else []
        agent = self.config.get("agent") if isinstance(self.config.get("agent"), dict) else {}
        kind = agent.get("kind", "hebbian" if self.rule else "static")
        what = f"rule {self.rule}" if self.rule else ("static weights" if kind == "static" else f"{kind} agent")
        changed = self._rule_change()
        lines = [
            f"{self.path}: spikehebb run (format {FORMAT_VERSION}), created {created}",
            f"network {'-'.join(map(str, self.sizes))}, {what}, {self.n_params:,} parameters, popsize {self.popsize}",
            # the other kinds' counts are the registered rule's: with another one, the warning instead
            _parameter_counts(self.sizes, self.rule, self._task_parts()) if changed is None else f"warning: {changed}",
        ]
        rows = agent.get("coefficient_rows", "per_synapse")
        if rows != "per_synapse" and self.rule and changed is None:
            from spikehebb.agents.hebbian import distinct_rules

            n_rows = sum(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:]))
            lines.append(f"coefficient rows {rows}: the synapses read {distinct_rules(self.sizes, rows, self.rule):,} of "
                         f"the {n_rows:,} rows of the genome; the others are searched but never read "
                         "(spikehebb.agents.hebbian.coefficients_as_read gives what each synapse reads)")
        shared = self.shared_rules()
        if shared is not None:
            n_syn = sum(a.size for a in shared["assignment"])
            m, k = shared["rules"].shape
            counts = shared["n_rules"]
            change = f"; M per generation {counts[0]:,} -> {counts[-1]:,}" if counts.size and counts[0] != counts[-1] else ""
            lines.append(f"shared rules: {m:,} rules of {k} coefficients for {n_syn:,} synapses "
                         f"(rho {n_syn / m:.4g}, {m * k:,} coefficients){change}")
        lines.append("config: " + self.config_line())
        lines.append(totals)
        if traces:
            lines.append(f"traces: {', '.join(traces)}")
        return "\n".join(lines)

    def trace_writer(self, **kwargs: Any) -> TraceWriter:
        """A :class:`TraceWriter` into this run file (needs mode "a"; ``kwargs``: its arguments
        but the path). Until it closes, the store refuses its other writes (see the class)."""
        if self.mode != "a":
            raise RuntimeError(f"{self.path} is open in mode {self.mode!r}; traces need mode 'a'")
        self._check_no_recording("start another trace writer on")
        self._trace_writer = TraceWriter(self.path, _lock=self._lock, fsync=self.fsync, **kwargs)
        return self._trace_writer

    def _check_no_recording(self, what: str) -> None:
        """A one-line RuntimeError while a trace writer of this store is open: its recording is the
        file's copy ``<path>.tmp``, which any other write would need too. ``what``: the refused write."""
        if self._trace_writer is not None and not self._trace_writer.closed:
            raise RuntimeError(f"cannot {what} {self.path} while a trace writer records into it: close the trace "
                               "writer first (its recording is written into the file when it closes)")
