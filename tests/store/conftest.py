"""Shared fixtures of the store's fault tests: a small tmpfs (a disk that fills up) and a read-only
view of a directory (a bind mount remounted read-only). Both need the right to mount (root, as on
the project's machines); elsewhere the tests that use them are skipped, saying why. chmod cannot
stand in for them: root writes through any mode bits."""

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest


def _mount(*args: str) -> None:
    if shutil.which("mount") is None:
        raise OSError("no mount command")
    out = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
    if out.returncode:
        raise OSError(out.stderr.strip() or f"mount exited with {out.returncode}")


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


@pytest.fixture
def tmpfs(tmp_path):
    """tmpfs(size_bytes) -> a fresh directory on a tmpfs of that size; tmpfs.fill(where, leave)
    and tmpfs.resize(where, size) fill it up and make it larger."""
    mounted = []

    def make(size: int) -> Path:
        where = tmp_path / f"tmpfs{len(mounted)}"
        where.mkdir()
        try:
            _mount("-t", "tmpfs", "-o", f"size={int(size)}", "tmpfs", str(where))
        except OSError as e:
            pytest.skip(f"cannot mount a tmpfs here ({e}); the full-disk tests need the right to mount")
        mounted.append(where)
        return where

    make.fill, make.resize = fill, resize
    yield make
    for where in reversed(mounted):
        _umount(where)


def resize(where: Path, size: int) -> None:
    _mount("-o", f"remount,size={int(size)}", str(where))


def fill(where: Path, leave: int) -> Path:
    """Fill the file system of ``where`` with a ballast file, leaving about ``leave`` bytes free."""
    ballast = where / "ballast"
    free = shutil.disk_usage(where).free
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.posix_fallocate(fd, 0, max(free - int(leave), 4096))
    finally:
        os.close(fd)
    return ballast


@pytest.fixture
def read_only(tmp_path):
    """read_only(directory) -> a read-only view of ``directory`` (bind mount, remounted ro)."""
    mounted = []

    def make(directory: Path) -> Path:
        where = tmp_path / f"ro{len(mounted)}"
        where.mkdir()
        try:
            _mount("--bind", str(directory), str(where))
        except OSError as e:
            pytest.skip(f"cannot bind-mount here ({e}); the read-only tests need the right to mount")
        mounted.append(where)
        try:
            _mount("-o", "remount,ro,bind", str(where))
            (where / ".probe").touch()
        except OSError as e:
            if getattr(e, "errno", None) != errno.EROFS:
                pytest.skip(f"cannot make a read-only bind mount here ({e})")
        else:
            pytest.skip("the bind mount stayed writable after remount,ro")
        return where

    yield make
    for where in reversed(mounted):
        _umount(where)
