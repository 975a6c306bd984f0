"""Synapse traces: per-step rates, actions, reward terms and weights of evaluation episodes.

:class:`TraceWriter` records into a run file or a separate traces-only file (format
``spikehebb-traces``); :class:`EpisodeTrace` is one episode being recorded. The layout is in
``docs/run-file.md`` (section ``/traces``) and in :class:`TraceWriter`'s docstring.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, NoReturn, Sequence

import h5py
import numpy as np

from spikehebb import __version__
from spikehebb.checks import is_integer
from spikehebb.store.fileformat import FORMAT, FORMAT_VERSION, TRACES_FORMAT, open_checked
from spikehebb.store.transaction import Transaction, WriterLock, _raise_translated, is_no_space, real_path, write_error


#: What to do instead of writing traces into a run file another process is writing, said after
#: "wait for it to finish, or " (:class:`~spikehebb.store.RunFileBusyError`).
SEPARATE_FILE_ADVICE = "record the traces into a separate file (spikehebb.assess.record_traces(..., into=FILE))"


class TraceWriter:
    """Record per-step traces of evaluation episodes into ``path`` (a run file or a traces file).

    A missing ``path`` becomes a traces-only file (format ``spikehebb-traces``). The recording
    goes into a copy of the file that replaces it when the writer closes: a crash or an exception
    inside the ``with`` block leaves the file as it was. ``replace``: morphologies whose traces
    already in the file are replaced: the copy is made without them, so they are gone only once the
    new recording has replaced the file, and kept when it fails. Layout per episode, under
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
        replace: Sequence[str] = (),
        _lock: WriterLock | None = None,
    ) -> None:
        self.path = real_path(path)
        self.sizes = tuple(int(s) for s in sizes)
        if len(self.sizes) < 2 or min(self.sizes) < 1:
            raise ValueError(f"sizes must list at least two positive layer sizes, got {sizes}")
        for name, value in (("n_actions", n_actions), ("block", block), ("sample_seed", sample_seed)):
            if not (is_integer(value) and value >= (0 if name == "sample_seed" else 1)):
                raise ValueError(f"{name} must be {'a non-negative' if name == 'sample_seed' else 'a positive'} "
                                 f"integer, got {value!r}")
        self.n_actions = int(n_actions)
        self.reward_terms = tuple(reward_terms)
        if len(set(self.reward_terms)) != len(self.reward_terms) or any("/" in t or not t for t in self.reward_terms):
            raise ValueError(f"reward_terms must be unique names without '/', got {reward_terms}")
        if synapses is not None and not (is_integer(synapses) and synapses >= 1):
            raise ValueError(f"synapses must be None (all) or a positive count, got {synapses!r}")
        self.synapses, self.sample_seed = synapses, int(sample_seed)
        self.block = int(block)
        self.compression = compression
        self.replace = tuple(replace)
        if any(not v or "/" in v for v in self.replace):
            raise ValueError(f"replace must list morphology names without '/', got {replace}")
        # drawn before the lock is taken: a draw that fails leaves nothing held or on disk
        self._samples = [self._sample(l, a * b) for l, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:]), 1)]
        self._own_lock = _lock is None
        self._lock = _lock or WriterLock(self.path, "record traces into", advice=SEPARATE_FILE_ADVICE)
        self._txn: Transaction | None = None
        try:
            if self.path.exists():
                with open_checked(self.path, (FORMAT, TRACES_FORMAT)) as f:
                    dropped = [v for v in self.replace if f"traces/{v}" in f]
                if dropped:  # a fresh copy without them (HDF5 would keep a deleted group's space)
                    size = self.path.stat().st_size
                    self._txn = Transaction(self.path, fsync, new=True, reserve=size, what="record traces into",
                                            in_memory=False)
                    copy_without_traces(self.path, self._txn.file, dropped)
                else:
                    self._txn = Transaction(self.path, fsync, what="record traces into", in_memory=False)
            else:
                self._txn = Transaction(self.path, fsync, new=True, what="record traces into", in_memory=False)
                self._txn.file.attrs["format"] = TRACES_FORMAT
                self._txn.file.attrs["format_version"] = FORMAT_VERSION
                self._txn.file.attrs["spikehebb_version"] = __version__
        except BaseException as e:
            try:
                self._discard(e)
            finally:
                if self._own_lock:
                    self._lock.release()
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

    @property
    def closed(self) -> bool:
        """Whether the recording is over (closed, aborted or failed): nothing more is written."""
        return self._txn is None

    def close(self) -> None:
        """Write the recording into ``path`` (an unfinished episode is ended as it stands)."""
        if self._txn is None:
            return
        txn = self._txn
        try:
            try:
                if self._open_episode is not None:
                    self._open_episode.end()
            except BaseException as e:  # e.g. a full disk in the last flush
                self._discard(e)
            txn.commit()  # aborts (no .tmp left) and raises RunFileWriteError itself when it fails
        finally:
            self._txn = None
            self._open_episode = None
            if self._own_lock:
                self._lock.release()

    def _discard(self, err: BaseException) -> NoReturn:
        """Discard the copy (``path`` stays as it was) and raise ``err``, a write failure as the
        one-line :class:`RunFileWriteError` that names the file; the caller releases the lock."""
        if self._txn is not None:
            self._txn.abort()
            self._txn = None
        if isinstance(err, Exception):
            _raise_translated(err, self.path, "record traces into", None, None)
        raise err

    def abort(self) -> None:
        """Discard everything recorded by this writer; ``path`` stays as it was."""
        if self._txn is None:
            return
        try:
            self._txn.abort()
        finally:
            self._txn = None
            self._open_episode = None
            if self._own_lock:
                self._lock.release()

    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc_type is None:
            self.close()
            return
        self.abort()
        if exc is not None and is_no_space(exc):  # a full disk while recording: one line, file as it was
            raise write_error(self.path, exc, "record traces into") from None


def copy_without_traces(src_path: Path, dst: h5py.File, variants: Sequence[str]) -> None:
    """Copy the file at ``src_path`` into the empty ``dst``, leaving out ``traces/<variant>`` of
    each of ``variants`` (the traces a recording replaces, or :func:`~spikehebb.tracefile.drop_traces`
    drops; the copy gives their space back, which HDF5's delete does not)."""
    with h5py.File(src_path, "r") as src:
        dst.attrs.update(dict(src.attrs))
        for name in src:
            if name != "traces":
                src.copy(src[name], dst, name)
        if "traces" in src and any(v not in variants for v in src["traces"]):
            traces = dst.create_group("traces")
            traces.attrs.update(dict(src["traces"].attrs))
            for variant in src["traces"]:
                if variant not in variants:
                    src.copy(src[f"traces/{variant}"], traces, variant)


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
        # Room for the block uncompressed, checked first: HDF5 must never meet a full disk.
        self.writer._txn.ensure_room(sum(b[: self._fill].nbytes for b in self._buffers.values()))
        for name, ds in self._datasets.items():
            n = ds.shape[0]
            ds.resize(n + self._fill, axis=0)
            ds[n:] = self._buffers[name][: self._fill]
        self._fill = 0

    def write(self, name: str, data: np.ndarray) -> None:
        """Write a whole dataset ``name`` (under the episode's group) at once, compressed as the
        per-step ones, after checking there is room for it uncompressed (HDF5 must never meet a
        full disk): a recording with a shape of its own, such as a spiking agent's spike counts."""
        if self.group is None:
            raise RuntimeError("this episode has ended")
        data = np.asarray(data)
        self.writer._txn.ensure_room(data.nbytes)
        kw = {"compression": self.writer.compression, "shuffle": self.writer.compression is not None}
        self.group.create_dataset(name, data=data, **kw)

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
