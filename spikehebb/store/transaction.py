"""Writing a run file safely: the writer lock and the copy, write, fsync, rename transaction.

Crash safety. HDF5 is not crash-safe when written in place: the library caches metadata
(B-trees, heaps, object headers) and writes it back in no particular order, so a ``kill -9``
during a flush can leave a file whose counter, rows and checkpoint disagree (measured: an
in-place writer that flushes after every generation, killed 30 times at random, left 3 such
files) or one that does not open. SWMR mode orders those writes but forbids creating groups,
datasets or attributes, which a replaced checkpoint needs. So every write is a
:class:`Transaction` on a copy: copy the file to ``<path>.tmp``, apply the change to the copy,
close it, ``fsync`` it, ``os.replace`` it over the file and ``fsync`` the directory. The file at
the path is therefore always a complete, closed HDF5 file: a kill at any moment loses at most the
change in flight (its ``.tmp`` is removed by the next writer).

One writer at a time. A writer holds an exclusive ``flock`` on ``<path>.lock``
(:class:`WriterLock`) for as long as it may write, so two trainers (or a trainer and a trace
recording) never write the same run; the second gets :class:`RunFileBusyError`. A lock file left
by a killed process is held by nobody and is simply taken over. Readers take no lock.

Full disks and read-only directories. Before the copy the transaction reserves (``fallocate``)
the copy's size plus the growth its caller announces, so a disk without that much room fails
before anything is written, with :class:`RunFileWriteError` naming the space needed. HDF5 does
not survive running out of space inside a write (h5py reports "Can't decrement id ref count" on
close and the interpreter crashes at exit), so the reservation is what keeps HDF5 away from
ENOSPC; HDF5 writes into the reserved zeros and trims the file to its end on close. Should a write
outgrow the reservation anyway (a trace recording, whose size nobody knows in advance), the
transaction frees the copy's space before closing HDF5's handles, so they close cleanly, deletes
the copy and raises :class:`RunFileWriteError`. A directory that cannot be written (read-only file
system, no permission) fails the same way when the lock is taken, before any work.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import h5py

from spikehebb import unraisable

#: Free space kept beyond the copy and the announced growth (HDF5 metadata, rounding to chunks).
MARGIN = 1 << 20

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


class RunFileBusyError(RuntimeError):
    """The run file is open for writing by another process."""


class RunFileWriteError(OSError):
    """A run file could not be written: no space left, a read-only or unwritable directory.

    The message is one line naming the file (and, for a full disk, the space needed); the file at
    ``path`` is left as it was, with its last complete generation, and no ``.tmp`` is left behind.
    ``errno`` is the cause (``errno.ENOSPC``, ``errno.EROFS``, ...), ``path`` the file.
    """

    def __init__(self, message: str, code: int | None = None, path: Path | None = None) -> None:
        super().__init__(message)
        self.errno = code  # set after construction, so str(err) stays the one-line message
        self.path = path


def real_path(path: str | os.PathLike) -> Path:
    """``path``, or the file a symbolic link at it names: the lock and the atomic rename act on the
    file itself (through the link they would lock the link's name and replace the link by a copy)."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def tmp_path(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def check_folder(path: Path, what: str) -> None:
    """A one-line FileNotFoundError naming the folder, unless the folder ``path`` is to be
    written in exists (``what``: what was to be done to ``path``, "create"); said before the
    lock, whose file ``<path>.lock`` the user never named."""
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot {what} {path}: its folder {path.parent} does not exist; create it first "
                                "or choose another path")


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def free_bytes(path: Path) -> int:
    """Free bytes on the file system holding ``path``'s directory."""
    return shutil.disk_usage(path.parent).free


def is_no_space(err: BaseException) -> bool:
    """Whether ``err`` (an OSError, or h5py's RuntimeError about a failed write) means a full disk."""
    if isinstance(err, OSError) and err.errno in _NO_SPACE:
        return True
    text = str(err)
    return "No space left on device" in text or "Disk quota exceeded" in text


def write_error(
    path: Path, err: BaseException, what: str, need: int | None = None, after: str | None = None
) -> BaseException:
    """A :class:`RunFileWriteError` for ``err`` met while trying to ``what`` ``path`` ("write
    generation 7 of", "create"), or ``err`` itself when it is not about space or permissions.
    need: the bytes that had to be free (None: unknown); after: what the user can do."""
    if isinstance(err, RunFileWriteError):
        return err
    if is_no_space(err):
        free = free_bytes(path)
        needs = f"{_mb(need)} free in {path.parent}, {_mb(free)} are" if need is not None else (
            f"more than the {_mb(free)} free in {path.parent}"
        )
        after = after or "the file is as it was (no .tmp left); free some space and try again"
        return RunFileWriteError(f"no space left to {what} {path}: it needs {needs}; {after}", errno.ENOSPC, path)
    if isinstance(err, OSError) and err.errno in _READ_ONLY:
        why = "is on a read-only file system" if err.errno == errno.EROFS else "is not writable (permission denied)"
        return RunFileWriteError(
            f"cannot {what} {path}: {path.parent} {why}; reading a run needs no write access, writing "
            "one does (copy it to a writable directory)",
            err.errno, path,
        )
    return err


class WriterLock:
    """Exclusive ``flock`` on ``<path>.lock``, held while a store or trace writer may write.

    path: the file written (the lock is ``<path>.lock`` beside it). what: what the holder does to
    it, for the one-line error of a directory that cannot be written ("record traces into").
    advice: what the user can do instead of waiting when another process holds the lock, said
    after "wait for it to finish, or " in the :class:`RunFileBusyError` (the caller knows its
    context: "record the traces into a separate file ..."); None: only the wait.
    """

    def __init__(self, path: Path, what: str = "write", advice: str | None = None) -> None:
        self.path = path
        self.lock_path = lock_path(path)
        self._fd: int | None = None
        while True:
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:
                check_folder(path, what)  # the folder is missing: say so, not the lock's name
                raise
            except OSError as e:
                raise write_error(path, e, what) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _owner(fd)
                os.close(fd)
                otherwise = f", or {advice}" if advice else ""
                raise RunFileBusyError(
                    f"{path} is open for writing by another process (pid {owner}); wait for it to finish{otherwise}"
                ) from None
            try:  # the previous holder may have unlinked the file we opened: retry on the new one
                current = os.stat(self.lock_path).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(fd).st_ino:
                break
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        except OSError as e:  # a full disk: the lock is held all the same, the pid is only a hint
            if not is_no_space(e):
                self.lock_path.unlink(missing_ok=True)
                os.close(fd)
                raise write_error(path, e, what) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            self.lock_path.unlink(missing_ok=True)  # unlink before unlocking: see the retry above
            os.close(self._fd)
            self._fd = None


@contextmanager
def whole_file(path: Path, what: str) -> Iterator[Path]:
    """``with whole_file(path, "write the card") as tmp:`` write ``tmp`` (beside ``path``, its
    suffix kept, so writers that pick a format by extension work); on leaving the block it is
    renamed over ``path``. An error or Ctrl-C midway removes it and leaves ``path`` as it was; a
    full disk or an unwritable folder is a one-line :class:`RunFileWriteError` naming ``path``
    (``what`` says what was being done). ``tmp`` is fsynced before the rename and the folder
    after it, so a power cut leaves the old file or the new one, never an empty one. For files
    other than HDF5 run files (cards, curves, videos, caches)."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        _raise_translated(e, path, what, None, None)


def probe_write(folder: Path) -> None:
    """Create and remove a file in ``folder``: an OSError where it takes none (a real write:
    permission bits say nothing to root or to a read-only mount)."""
    probe = Path(folder) / f".spikehebb-probe-{os.getpid()}"
    probe.touch()
    probe.unlink()


def _owner(fd: int) -> str:
    """The pid a lock file (open at ``fd``) names, or "unknown"."""
    return os.read(fd, 32).decode(errors="replace").strip() or "unknown"


def check_can_write(paths: Sequence[Path], flag: str, value: object, *, make_folders: bool = False) -> None:
    """A one-line error, said before the work whose results go to ``paths``, unless each can be
    written: its folder exists and takes a new file (a real write: permission bits say nothing
    to root or to a read-only mount) and it is no folder. ``flag`` and ``value`` (``"-o"``,
    ``out``) say in the message which option to change. make_folders: a missing folder is fine
    when it can be made (the writer makes it): its nearest existing ancestor is a folder that
    takes a new entry. Leaves nothing behind either way (the write probe's file is removed)."""
    paths = [Path(p) for p in paths]
    folders = {}  # folder to probe -> the folder the file goes in
    for path in paths:
        existing = _nearest_existing(path.parent)
        if not existing.is_dir():
            raise NotADirectoryError(f"{flag} {value}: {existing} is a file, not a folder; choose another {flag}")
        if existing != path.parent and not make_folders:
            raise FileNotFoundError(f"{flag} {value}: its folder {path.parent} does not exist; create it or choose "
                                    f"another {flag}")
        if path.is_dir():
            raise IsADirectoryError(f"{flag} {value}: {path} is a folder; choose another {flag}")
        folders.setdefault(existing, path.parent)
    for folder, target in folders.items():
        try:
            probe_write(folder)
        except OSError as e:
            what = f"write in {folder}" if folder == target else f"create {target} in {folder}"
            why = "it takes no new files" if e.errno == errno.ENOENT else e.strerror or e  # /proc: ENOENT
            raise OSError(f"{flag} {value}: cannot {what} ({why}); choose another {flag}") from None


def _nearest_existing(folder: Path) -> Path:
    """``folder`` or its nearest ancestor that exists (a file there, ``README.md`` of
    ``README.md/a/b``, is returned as it is: the caller says it is no folder)."""
    for candidate in (folder, *folder.parents):
        try:
            candidate.stat()
        except OSError:  # missing, below a file, or below a folder we may not search: look higher
            continue
        return candidate
    return folder


def writer_pid(path: Path) -> str | None:
    """The pid (as its lock file says it, or "unknown") of the process holding ``path``'s writer
    lock now, None when nobody holds it; creates and changes nothing (a shared ``flock`` probe on
    a read-only descriptor)."""
    try:
        fd = os.open(lock_path(Path(path)), os.O_RDONLY)
    except OSError:  # no lock file: no writer
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _owner(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _fallocate(fd: int, size: int) -> None:
    """Reserve ``size`` bytes for ``fd``: a full disk fails here, before any data is written."""
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):  # no fallocate on this file system
            raise


def _copy_reserved(src: Path, dst: Path, reserve: int) -> None:
    """Copy ``src`` to ``dst`` after reserving ``src``'s size + ``reserve`` bytes for ``dst``. The
    reserved zeros lie past HDF5's end of file: HDF5 allocates from them and trims the file to
    its end when it closes."""
    size = src.stat().st_size
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _fallocate(fd, size + reserve)
        with open(src, "rb") as f:
            offset = 0
            while offset < size:
                sent = os.sendfile(fd, f.fileno(), offset, min(size - offset, 1 << 26))
                if sent == 0:
                    break
                offset += sent
    finally:
        os.close(fd)


def _write_image(path: Path, image: bytes, fsync: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _fallocate(fd, len(image))
        view = memoryview(image)
        while view:
            view = view[os.write(fd, view):]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _keep_mode(path: Path, copy: Path) -> None:
    """Give ``copy`` the permission bits of ``path`` (when it exists), so that replacing the file
    by its edited copy keeps the mode its owner gave it (a run shared with a group, a read-only one)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    os.chmod(copy, mode)


def _open_image(image: bytes, name: str) -> h5py.File:
    """An HDF5 file held in memory (core driver, no backing store), opened read-write from ``image``."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_EARLIEST, h5py.h5f.LIBVER_LATEST)  # what h5py.File uses
    fapl.set_fapl_core(1 << 16, False)
    fapl.set_file_image(image)
    return h5py.File(h5py.h5f.open(name.encode(), h5py.h5f.ACC_RDWR, fapl=fapl))


class Transaction:
    """Edit a copy of the file (or a new, empty one), then rename it over ``path``.

    in_memory (run files): the copy is an HDF5 file image in memory (core driver), written to
    ``<path>.tmp`` in one piece at commit, so HDF5 itself never writes to the disk and a full disk
    is a plain ``OSError`` of that one write. Costs the file's size in memory, about three times
    over during the commit. Not in memory (traces, whose size has no bound): the copy is
    ``<path>.tmp`` on disk, with the copy's size reserved up front, and the caller checks for room
    (:meth:`ensure_room`) before each large write.
    reserve: bytes the edit may add to the file (a generation's rows, a snapshot, the checkpoint);
    the file's size plus this plus :data:`MARGIN` must be free before the copy is made. ``what``
    names the change in error messages ("write generation 7 of"), ``after`` what the user can do
    when it fails for want of space.

    The transaction removes ``<path>.tmp`` on failure only when it made it itself: a failed
    transaction never deletes the copy of another writer (the run file's
    :class:`~spikehebb.store.traces.TraceWriter`, whose recording lives there until it closes).
    """

    def __init__(
        self, path: Path, fsync: bool, new: bool = False, reserve: int = 0, what: str = "write",
        after: str | None = None, in_memory: bool = True,
    ) -> None:
        self.path, self.fsync, self.tmp, self.what, self.after = path, fsync, tmp_path(path), what, after
        self.in_memory = in_memory
        self.file: h5py.File | None = None
        self.need = (0 if new else path.stat().st_size) + int(reserve) + MARGIN
        self._failed: BaseException | None = None  # a full disk HDF5 met where it cannot raise
        self._made_tmp = False  # whether this transaction wrote <path>.tmp (abort removes only its own)
        if not in_memory:
            unraisable.hold(self._unraisable)
        try:
            if free_bytes(path) < self.need:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            if in_memory and new:
                self.file = h5py.File(str(self.tmp), "w", driver="core", backing_store=False)
            elif in_memory:
                self.file = _open_image(path.read_bytes(), str(self.tmp))
            elif new:
                self._made_tmp = True
                self.file = h5py.File(self.tmp, "w")
            else:
                self._made_tmp = True
                _copy_reserved(path, self.tmp, int(reserve) + MARGIN)
                self.file = h5py.File(self.tmp, "r+")
        except BaseException as e:
            self.abort()
            _raise_translated(e, path, what, self.need, after)

    def ensure_room(self, nbytes: int) -> None:
        """Raise ENOSPC unless ``nbytes`` + :data:`MARGIN` are free: call before a write to disk
        that may need them, so that HDF5 never meets a full disk (see the module docstring)."""
        if not self.in_memory and free_bytes(self.path) < int(nbytes) + MARGIN:
            raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (checked before writing {int(nbytes):,} bytes)")

    def _unraisable(self, info: Any) -> bool:
        """h5py closes a dataset when its Python object is collected and can only print what
        failed then; a full disk there is remembered and fails the commit instead."""
        if info.exc_value is not None and is_no_space(info.exc_value):
            self._failed = self._failed or info.exc_value
            return True
        return False

    def _restore_hook(self) -> None:
        unraisable.release(self._unraisable)

    def commit(self) -> None:
        need = None
        try:
            if self.in_memory:
                self.file.flush()
                image = self.file.id.get_file_image()
                self.file.close()
                self.file = None
                need = len(image)
                self._made_tmp = True
                _write_image(self.tmp, image, self.fsync)
                del image
            else:
                if self._failed is not None:
                    raise self._failed
                self.file.close()
                if self._failed is not None:
                    raise self._failed
                if self.fsync:
                    fsync_path(self.tmp)
        except BaseException as e:
            self.abort()
            _raise_translated(e, self.path, self.what, need, self.after)
        self._restore_hook()
        try:
            _keep_mode(self.path, self.tmp)
            os.replace(self.tmp, self.path)
        except OSError as e:  # the old file stays as it was; the finished copy is not left beside it
            self.tmp.unlink(missing_ok=True)
            _raise_translated(e, self.path, self.what, need, self.after)
        if self.fsync:
            fsync_path(self.path.parent)

    def abort(self) -> None:
        """Discard the copy. An on-disk copy that met a full disk holds metadata HDF5 could not
        write, and an HDF5 file that fails to close can crash the interpreter at exit: so when the
        close fails (or a failure was seen), free the copy's space (truncate it) and close again,
        which then can write what it holds; then delete the copy, when this transaction made it
        (a ``<path>.tmp`` it did not make is another writer's, and stays)."""
        try:
            if self.file is not None and self._failed is None:
                try:
                    self.file.close()
                    self.file = None
                except Exception:
                    pass
            if self.file is not None and self._made_tmp:
                try:
                    os.truncate(self.tmp, 0)
                except OSError:
                    pass
                try:
                    self.file.close()
                except Exception:
                    pass  # the copy is discarded; what it failed to write does not matter
                self.file = None
        finally:
            if self._made_tmp:
                self.tmp.unlink(missing_ok=True)
            self._restore_hook()


def _raise_translated(err: BaseException, path: Path, what: str, need: int | None, after: str | None) -> None:
    """Raise ``err`` as a :class:`RunFileWriteError` when it is one (one line, no chain)."""
    translated = write_error(path, err, what, need, after)
    if translated is err:
        raise err
    raise translated from None


@contextmanager
def transaction(
    path: Path, fsync: bool, new: bool = False, reserve: int = 0, what: str = "write", after: str | None = None
) -> Iterator[h5py.File]:
    """``with transaction(path, fsync) as f:`` edits a copy of ``path`` that replaces it on success."""
    txn = Transaction(path, fsync, new, reserve, what, after)
    try:
        yield txn.file
    except BaseException as e:
        txn.abort()
        _raise_translated(e, path, what, None, after)
    txn.commit()


def remove_leftovers(path: Path) -> None:
    """Delete ``<path>.tmp``, the copy of a writer killed mid-transaction; call with the lock held."""
    tmp_path(path).unlink(missing_ok=True)
