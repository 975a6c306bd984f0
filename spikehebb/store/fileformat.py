"""What a spikehebb HDF5 file is: its format names and version, and the checks on opening one.

Run files (``spikehebb-run``, :mod:`spikehebb.store.runfile`) and traces-only files
(``spikehebb-traces``, :mod:`spikehebb.store.traces`) carry the root attributes ``format`` and
``format_version``; :func:`open_checked` refuses anything else with a :class:`RunFileError`.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import h5py

from spikehebb import __version__

#: Value of the root attribute ``format`` of a run file.
FORMAT = "spikehebb-run"
#: Value of the root attribute ``format`` of a file that holds only traces.
TRACES_FORMAT = "spikehebb-traces"
#: Bumped whenever the layout changes; a reader refuses other versions.
FORMAT_VERSION = 1


class RunFileError(ValueError):
    """A file that is not a readable spikehebb run file of this format version."""


def attr_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@contextmanager
def open_checked(path: Path, expected: tuple[str, ...] = (FORMAT,)) -> Iterator[h5py.File]:
    """Open ``path`` read-only after checking it is a spikehebb file of this format version.

    Raises FileNotFoundError (no such path), IsADirectoryError (a folder, ``models/``) or
    :class:`RunFileError` (not HDF5, truncated, foreign, another format version), each one line."""
    if not path.exists():
        raise FileNotFoundError(f"run file {path} does not exist")
    what = "a spikehebb run file" if expected == (FORMAT,) else "a spikehebb run or traces file"
    if path.is_dir():  # h5py would call it a file without the HDF5 signature
        raise IsADirectoryError(f"{path} is a directory, not {what}")
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
        fmt = attr_str(f.attrs["format"])
        if fmt not in expected:
            raise RunFileError(f"{path} is a {fmt!r} file, expected format {' or '.join(map(repr, expected))}")
        try:
            version = int(f.attrs.get("format_version", -1))
        except (TypeError, ValueError):
            raise RunFileError(f"{path} is damaged: its format_version is {f.attrs['format_version']!r}, not a "
                               "number") from None
        if version != FORMAT_VERSION:
            raise RunFileError(
                f"{path} was written by format version {version}, this spikehebb ({__version__}) reads "
                f"version {FORMAT_VERSION}"
            )
        yield f

