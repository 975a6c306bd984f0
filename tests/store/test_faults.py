"""Faults of the disk (issue 16): a full disk, a read-only directory, a creation killed midway.

Each case meets the real thing: a small tmpfs that fills up, a read-only bind mount, a kill -9
(the mount fixtures are in conftest.py and skip where this machine cannot mount).
"""

import errno
import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import spikehebb.store.runfile as runfile_module
import spikehebb.store.transaction as transaction_module
from spikehebb.store import RunFileBusyError, RunFileWriteError, RunStore, TraceWriter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
_spec = importlib.util.spec_from_file_location("record_run_v1", FIXTURES / "record_run_v1.py")
v1 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(v1)

MB = 1_000_000


def create(path, **kwargs):
    kwargs.setdefault("snapshot_every", v1.SNAPSHOT_EVERY)
    return RunStore.create(path, v1.CONFIG, sizes=v1.SIZES, rule=v1.RULE, popsize=v1.POPSIZE, fsync=False, **kwargs)


def append(store, g):
    store.append_generation(g, **v1.generation_values(g, store.n_params))


def assert_generations(path, g):
    """The file holds exactly generations 0..g-1 with their content, and the checkpoint of g-1."""
    store = RunStore.open(path)
    assert store.generations_completed == g
    h = store.history()
    for i in range(g):
        np.testing.assert_array_equal(h["fitness_raw"][i], v1.generation_values(i, store.n_params)["fitness_raw"])
    last = v1.generation_values(g - 1, store.n_params)
    ckpt = store.load_checkpoint()
    np.testing.assert_array_equal(ckpt.mean, last["mean"])
    np.testing.assert_array_equal(ckpt.strategy_state["optimizer"]["m"], last["strategy_state"]["optimizer"]["m"])


def one_line(err):
    text = str(err)
    assert "\n" not in text and "Traceback" not in text, text
    return text


def test_a_full_disk_fails_before_the_copy_and_the_run_goes_on_once_there_is_room(tmpfs):
    d = tmpfs(4 * MB)
    path = d / "run.h5"
    store = create(path)
    for g in range(3):
        append(store, g)
    ballast = tmpfs.fill(d, leave=300_000)
    with pytest.raises(RunFileWriteError) as info:
        append(store, 3)
    text = one_line(info.value)
    assert text.startswith(f"no space left to write generation 3 of {path}: it needs ")
    assert f"MB free in {d}, 0.3 MB are" in text and "holds its 3 complete generations" in text
    assert f"--resume {path}" in text
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC
    assert sorted(p.name for p in d.iterdir()) == ["ballast", "run.h5", "run.h5.lock"]  # no .tmp
    assert_generations(path, 3)
    store.close()
    ballast.unlink()
    with RunStore.open(path, "a") as again:  # --resume
        append(again, 3)
        append(again, 4)
    assert_generations(path, 5)
    assert sorted(p.name for p in d.iterdir()) == ["run.h5"]


def test_a_full_disk_met_by_the_write_itself_is_the_same_one_line(tmpfs, monkeypatch):
    """Without the reservation (as if the growth were underestimated) the final write meets the
    full disk; HDF5 works in memory, so that is a plain error too, not a crash."""
    d = tmpfs(4 * MB)
    path = d / "run.h5"
    store = create(path)
    append(store, 0)
    size = path.stat().st_size
    monkeypatch.setattr(transaction_module, "MARGIN", 0)
    monkeypatch.setattr(runfile_module, "state_nbytes", lambda state: -(10**12))
    tmpfs.fill(d, leave=size // 2)
    with pytest.raises(RunFileWriteError) as info:
        append(store, 1)
    text = one_line(info.value)
    assert text.startswith(f"no space left to write generation 1 of {path}: it needs ")
    assert sorted(p.name for p in d.iterdir()) == ["ballast", "run.h5", "run.h5.lock"]
    assert_generations(path, 1)
    store.close()


def test_creating_a_run_on_a_full_disk_leaves_nothing(tmpfs):
    d = tmpfs(2 * MB)
    tmpfs.fill(d, leave=100_000)
    with pytest.raises(RunFileWriteError, match=f"^no space left to create {d / 'run.h5'}: it needs 1.0 MB free"):
        create(d / "run.h5")
    assert sorted(p.name for p in d.iterdir()) == ["ballast"]


def run_of_one_generation(d):
    """``d/run.h5`` holding generation 0, and its bytes."""
    path = d / "run.h5"
    create(path).close()
    with RunStore.open(path, "a") as store:
        append(store, 0)
    return path, path.read_bytes()


def test_traces_on_a_full_disk_leave_the_file_as_it_was(tmpfs):
    d = tmpfs(3 * MB)
    path, before = run_of_one_generation(d)
    sizes = (28, 128, 64, 8)
    rng = np.random.default_rng(0)
    w = [rng.standard_normal((a, b)).astype(np.float32) for a, b in zip(sizes[:-1], sizes[1:])]
    for target in (path, d / "traces.h5"):
        with pytest.raises(RunFileWriteError) as info:
            with TraceWriter(target, sizes=sizes, n_actions=8, reward_terms=["progress"], fsync=False) as tw:
                for k in range(100):  # 64 steps of all synapses: 3 MB raw
                    with tw.episode("default", k) as ep:
                        for t in range(64):
                            ep.step([np.zeros(n) for n in sizes], np.zeros(8), {"progress": 0.0}, w)
        assert one_line(info.value).startswith(f"no space left to record traces into {target}: it needs more than")
        assert sorted(p.name for p in d.iterdir()) == ["run.h5"]
    assert path.read_bytes() == before


@pytest.mark.parametrize("how", ["close", "with"])
def test_a_full_disk_in_the_last_flush_of_close_leaves_no_tmp_and_says_so(tmpfs, how):
    """The steps of an episode still open are flushed by close(): a full disk there aborts the
    recording (no .tmp, the file and the hook as they were, the lock free) with the named error."""
    d = tmpfs(3 * MB)
    path, before = run_of_one_generation(d)
    sizes = (28, 128, 64, 8)
    w = [np.zeros((a, b), np.float32) for a, b in zip(sizes[:-1], sizes[1:])]
    hook = sys.unraisablehook
    tw = TraceWriter(path, sizes=sizes, n_actions=8, reward_terms=["progress"], fsync=False)
    ep = tw.episode("default", 0)
    for t in range(40):  # fewer than a block (64 steps): all of them still buffered, 2 MB raw
        ep.step([np.zeros(n) for n in sizes], np.zeros(8), {"progress": 0.0}, w)
    tmpfs.fill(d, leave=200_000)
    with pytest.raises(RunFileWriteError) as info:
        if how == "close":
            tw.close()
        else:
            with tw:
                pass
    assert one_line(info.value).startswith(f"no space left to record traces into {path}: it needs more than")
    assert info.value.errno == errno.ENOSPC and info.value.path == path
    assert sorted(p.name for p in d.iterdir()) == ["ballast", "run.h5"]  # no .tmp, no lock
    assert sys.unraisablehook is hook
    assert path.read_bytes() == before
    tw.close()  # closed already: nothing more to do
    RunStore.open(path, "a").close()  # the lock was released


def test_a_read_only_directory_reads_and_refuses_to_write_in_one_line(tmp_path, read_only):
    src = tmp_path / "src"
    src.mkdir()
    with create(src / "run.h5") as store:
        for g in range(3):
            append(store, g)
    with TraceWriter(src / "traces.h5", sizes=v1.SIZES, n_actions=3, reward_terms=["progress"]):
        pass
    listing = sorted(os.listdir(src))
    ro = read_only(src)
    store = RunStore.open(ro / "run.h5")  # reading needs no lock
    assert store.generations_completed == 3 and "3 generations" in store.summary()
    assert store.load_checkpoint().generation == 3 and store.snapshots()[0].tolist() == [2]
    assert_generations(ro / "run.h5", 3)
    expected = "{}: {} is on a read-only file system; reading a run needs no write access"
    with pytest.raises(RunFileWriteError) as info:
        RunStore.open(ro / "run.h5", "a")
    assert one_line(info.value).startswith("cannot write " + expected.format(ro / "run.h5", ro))
    assert info.value.errno == errno.EROFS
    with pytest.raises(RunFileWriteError, match="^cannot create " + expected.format(ro / "new.h5", ro)):
        create(ro / "new.h5")
    for target in (ro / "run.h5", ro / "traces.h5", ro / "new_traces.h5"):
        with pytest.raises(RunFileWriteError, match=f"^cannot record traces into {target}: {ro} is on a read-only"):
            TraceWriter(target, sizes=v1.SIZES, n_actions=3, reward_terms=["progress"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        RunStore.open(ro / "missing.h5", "a")
    assert sorted(os.listdir(src)) == listing


def test_leftovers_of_a_killed_creation_are_removed_by_the_next_open_or_create(tmp_path):
    path = tmp_path / "run.h5"
    tmp, lock = tmp_path / "run.h5.tmp", tmp_path / "run.h5.lock"
    tmp.write_bytes(b"\x89HDF\r\n\x1a\n half a file")
    lock.write_text("999999")  # a lock file nobody holds
    with pytest.raises(FileNotFoundError, match=r"run file .*run.h5 does not exist \(its creation was interrupted; removed the leftover run.h5.tmp\)"):
        RunStore.open(path, "a")
    assert sorted(os.listdir(tmp_path)) == []
    tmp.write_bytes(b"partial")
    lock.write_text("999999")
    with create(path) as store:
        assert not tmp.exists()
        append(store, 0)
    assert sorted(os.listdir(tmp_path)) == ["run.h5"]
    assert_generations(path, 1)


KILLED_CREATION = textwrap.dedent(
    """
    import sys, time
    import spikehebb.store.runfile as runfile
    def stall(layout):
        print("creating", flush=True)
        time.sleep(60)
    runfile.layout_to_json = stall
    runfile.RunStore.create(sys.argv[1], {}, sizes=(5, 4, 3), rule="ABCD_lr", popsize=6)
    """
)


def test_kill_9_during_creation_then_create_again(tmp_path):
    path = tmp_path / "run.h5"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_CREATION, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "creating"
        with pytest.raises(RunFileBusyError):  # the lock is held while the creation runs
            create(path)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert sorted(os.listdir(tmp_path)) in ([], ["run.h5.lock"])  # the new file is built in memory: no .tmp
    with pytest.raises(FileNotFoundError):
        RunStore.open(path, "a")
    with create(path) as store:
        append(store, 0)
    assert sorted(os.listdir(tmp_path)) == ["run.h5"]


def test_a_failed_final_rename_keeps_the_old_file_and_leaves_no_copy(tmp_path, monkeypatch):
    path = tmp_path / "run.h5"
    store = create(path)
    append(store, 0)

    def refuse(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))

    monkeypatch.setattr(transaction_module.os, "replace", refuse)
    with pytest.raises(RunFileWriteError, match=r"^cannot write generation 1 of .*run\.h5: .* is not writable "
                                                r"\(permission denied\)") as info:
        append(store, 1)
    one_line(info.value)
    assert str(path) in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5", "run.h5.lock"]  # no run.h5.tmp
    monkeypatch.undo()
    assert_generations(path, 1)
    append(store, 1)  # the run goes on
    assert_generations(path, 2)
    store.close()


def test_a_whole_file_is_synced_before_its_rename_and_its_folder_after(tmp_path, monkeypatch):
    """Cards, curves, videos and caches: the new content reaches the disk before it replaces the
    old file, and the rename reaches it before the writer reports success."""
    path = tmp_path / "card.md"
    path.write_text("old")
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(transaction_module.os, "fsync", fsync)
    monkeypatch.setattr(transaction_module.os, "replace", replace)
    with transaction_module.whole_file(path, "write the card") as tmp:
        tmp.write_text("new")
    tmp = str(tmp_path / ".card.partial.md")
    assert events == [("fsync", tmp), ("replace", tmp, str(path)), ("fsync", str(tmp_path))]
    assert path.read_text() == "new"


def test_check_can_write_says_which_option_to_change_before_the_work(tmp_path, refuse_write_probe):
    """The report's -o and perturb_ant's --out: a missing folder, a folder in the file's place and
    a folder that takes no file (a real write: a probe, removed again) are one line naming the flag."""
    check = transaction_module.check_can_write
    out = tmp_path / "r.html"
    check([out], "-o", out)
    assert list(tmp_path.iterdir()) == []  # the probe is gone
    with pytest.raises(FileNotFoundError, match=rf"^-o {tmp_path}/no/r.html: its folder {tmp_path}/no does not exist; "
                                                r"create it or choose another -o$"):
        check([tmp_path / "no" / "r.html"], "-o", tmp_path / "no" / "r.html")
    (tmp_path / "rec.json").mkdir()
    with pytest.raises(IsADirectoryError, match=rf"^--out {tmp_path}/rec: {tmp_path}/rec.json is a folder; choose another --out$"):
        check([tmp_path / "rec.png", tmp_path / "rec.json"], "--out", tmp_path / "rec")
    refuse_write_probe(PermissionError(errno.EACCES, "Permission denied"))
    with pytest.raises(OSError, match=rf"^-o {out}: cannot write in {tmp_path} \(Permission denied\); choose another -o$"):
        check([out], "-o", out)
