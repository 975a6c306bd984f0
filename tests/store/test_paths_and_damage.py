"""The run file through a symbolic link, damaged files, the rule table's size over generations, a
closed store, the unraisable hook of several trace writers, the largest seed, file modes, room for spike counts, a
trace writer beside the store's appends, a missing folder, the rule table's fields (reviews' findings)."""

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from spikehebb import unraisable
from spikehebb.store import RunFileError, RunStore, TraceWriter
from spikehebb.store.transaction import RunFileBusyError

P, SIZES = 4, (2, 1)


def generation(store, g, value=0.0, **extra):
    n = store.n_params
    store.append_generation(g, fitness_raw=np.arange(P) + value, fitness_shaped=np.zeros(P), sigma=0.1, lr=0.1,
                            wall_time_s=1.0, env_steps=1, mean=np.full(n, value), best_params=np.zeros(n),
                            best_fitness=value, strategy_state={"g": g}, **extra)


def new_run(path, **kwargs):
    RunStore.create(path, {"generations": 5}, sizes=SIZES, rule="ABCD_lr", popsize=P, fsync=False, **kwargs).close()
    return path


def test_a_run_opened_through_a_symbolic_link_locks_and_writes_the_file_itself(tmp_path):
    run = new_run(tmp_path / "run.h5")
    (tmp_path / "latest.h5").symlink_to("run.h5")
    with RunStore.open(run, "a"):
        with pytest.raises(RunFileBusyError):
            RunStore.open(tmp_path / "latest.h5", "a")  # the same file: one writer
    with RunStore.open(tmp_path / "latest.h5", "a") as store:
        generation(store, 0, 7.0)
    assert (tmp_path / "latest.h5").is_symlink()  # the link was not replaced by a copy
    assert RunStore.open(run).history()["fitness_raw"][0, 0] == 7.0


@pytest.mark.parametrize("mode", [0o600, 0o664, 0o444])
def test_a_write_keeps_the_mode_the_owner_gave_the_run_file(tmp_path, mode):
    run = new_run(tmp_path / "run.h5")
    run.chmod(mode)
    with RunStore.open(run, "a") as store:  # each generation replaces the file by an edited copy
        generation(store, 0, 7.0)
    assert run.stat().st_mode & 0o777 == mode
    assert RunStore.open(run).history()["fitness_raw"][0, 0] == 7.0


@pytest.mark.parametrize("damage, message", [
    (lambda f: f.attrs.__delitem__("config"), "is damaged or incomplete: the attribute 'config' is missing$"),
    (lambda f: f.__delitem__("generations"), "is damaged or incomplete: the member 'generations' is missing$"),
    (lambda f: f.attrs.__setitem__("layout", "{not json"), "is damaged or incomplete: Expecting property name"),
    (lambda f: f.attrs.__setitem__("format_version", "abc"), "is damaged: its format_version is 'abc', not a number"),
])
def test_a_damaged_run_file_is_one_line(tmp_path, damage, message):
    run = new_run(tmp_path / "run.h5")
    with h5py.File(run, "a") as f:
        damage(f)
    with pytest.raises(RunFileError, match=message):
        RunStore.open(run)


def test_a_missing_checkpoint_is_one_line(tmp_path):
    run = new_run(tmp_path / "run.h5")
    with RunStore.open(run, "a") as store:
        generation(store, 0)
    with h5py.File(run, "a") as f:
        del f["best"]
    with pytest.raises(RunFileError, match="is damaged or incomplete: the member 'best' is missing$"):
        RunStore.open(run).load_checkpoint()
    # inspect read /best outside the one-line check: a KeyError traceback
    with pytest.raises(RunFileError, match="is damaged or incomplete: the member 'best' is missing$"):
        RunStore.open(run).summary()


def test_the_cli_reports_a_damaged_file_in_one_line(tmp_path, capsys):
    from spikehebb.cli import main

    run = new_run(tmp_path / "run.h5")
    with h5py.File(run, "a") as f:
        del f.attrs["config"]
    with pytest.raises(SystemExit) as exc:
        main(["inspect", str(run)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "is damaged or incomplete" in err, err


def test_a_shared_rule_table_does_not_grow_the_file_each_generation(tmp_path):
    """The table is rewritten every generation; a variable-length attribute on it would leak a
    4 KB heap collection each time."""
    run = tmp_path / "run.h5"
    RunStore.create(run, {}, sizes=(28, 128, 64, 8), rule="ABCD_lr", popsize=8, fsync=False, snapshot_every=0).close()
    rng = np.random.default_rng(0)
    sizes = []
    with RunStore.open(run, "a") as store:
        n, synapses = store.n_params, store.n_params // 5
        for g in range(30):
            store.append_generation(g, fitness_raw=rng.normal(size=8), fitness_shaped=np.zeros(8), sigma=0.1, lr=0.1,
                                    wall_time_s=1.0, env_steps=1, mean=np.zeros(n), best_params=np.zeros(n),
                                    best_fitness=1.0, strategy_state={"m": np.zeros(64 * 5)},
                                    rule_table=(rng.normal(size=(64, 5)), rng.integers(0, 64, synapses)))
            sizes.append(run.stat().st_size)
    assert sizes[-1] - sizes[10] < 19 * 1024, np.diff(sizes)  # 4 KB a generation before
    with h5py.File(run) as f:
        assert f["shared_rules/rules"].attrs["fields"] == "eta,A,B,C,D"  # a str, written once


def test_a_closed_store_refuses_to_change_its_target(tmp_path):
    run = new_run(tmp_path / "run.h5")
    store = RunStore.open(run, "a")
    store.close()
    with RunStore.open(run, "a"):  # another writer holds the lock now
        with pytest.raises(RuntimeError, match="is closed; open it with mode 'a' to change its target"):
            store.set_target(50)
    assert RunStore.open(run).config["generations"] == 5


def test_trace_writers_closed_in_any_order_give_the_unraisable_hook_back(tmp_path):
    before = sys.unraisablehook
    kwargs = dict(sizes=(2, 1), n_actions=1, reward_terms=["r"], fsync=False)
    a, b = TraceWriter(tmp_path / "a.h5", **kwargs), TraceWriter(tmp_path / "b.h5", **kwargs)
    assert a._txn is not None and b._txn is not None  # each holds an on-disk transaction
    assert unraisable.held() == (a._txn._unraisable, b._txn._unraisable)
    a.close()
    assert unraisable.held() == (b._txn._unraisable,) and sys.unraisablehook is unraisable._hook
    b.close()
    assert unraisable.held() == () and sys.unraisablehook is before


def test_a_seed_beyond_64_bits_is_refused_before_training():
    from spikehebb.config import MAX_SEED, TrainConfig

    with pytest.raises(ValueError, match=f"train: seed must be at most {MAX_SEED}, got {MAX_SEED + 1}"):
        TrainConfig(seed=MAX_SEED + 1)
    assert TrainConfig(seed=MAX_SEED).seed == MAX_SEED


def test_a_creation_that_fails_to_read_back_its_file_releases_the_lock(tmp_path, monkeypatch):
    def unreadable(self, *args):
        raise RunFileError("cannot read it back")

    with monkeypatch.context() as patched:
        patched.setattr(RunStore, "__init__", unreadable)
        with pytest.raises(RunFileError, match="cannot read it back"):
            RunStore.create(tmp_path / "run.h5", {}, sizes=SIZES, rule="ABCD_lr", popsize=P, fsync=False)
    with RunStore.open(tmp_path / "run.h5", "a") as store:  # no lock left held by this process
        generation(store, 0)


def test_spike_counts_are_written_only_when_there_is_room_for_them(tmp_path, monkeypatch):
    import errno

    import spikehebb.store.transaction as transaction_module
    from spikehebb.assess import _write_spike_counts

    counts = [[np.full((3, 2), t, np.int16), np.ones((2, 2), np.int16)] for t in range(5)]  # 5 steps, 2 layers
    with TraceWriter(tmp_path / "traces.h5", sizes=(3, 2), n_actions=1, reward_terms=("r",), fsync=False) as writer:
        episode = writer.episode("default", 0)
        _write_spike_counts(episode, counts)
        episode.end(1.0)
        full = writer.episode("default", 1)
        monkeypatch.setattr(transaction_module, "free_bytes", lambda path: 0)
        with pytest.raises(OSError) as err:  # said before HDF5 writes a byte, not met by it
            _write_spike_counts(full, counts)
        assert err.value.errno == errno.ENOSPC and "checked before writing 60 bytes" in str(err.value)
        monkeypatch.undo()
        full.end()
    with h5py.File(tmp_path / "traces.h5") as f:
        spikes = f["traces/default/episode_0/spikes/layer_0"]
        assert spikes.shape == (5, 3, 2) and spikes.compression == "gzip"
        np.testing.assert_array_equal(spikes[:, 0, 0], np.arange(5))
        assert "spikes" not in f["traces/default/episode_1"]


def test_a_trace_writer_refuses_bad_counts_before_it_holds_anything(tmp_path):
    """The synapse sample was drawn after the lock and the on-disk copy were taken: a bad seed left
    the lock held (the next writer was told another process had it: its own pid) and a .tmp. Bad
    counts are now refused up front (and the draw comes before the lock)."""
    kwargs = dict(sizes=(2, 3), n_actions=1, reward_terms=["r"], fsync=False, synapses=2)
    with pytest.raises(ValueError, match="sample_seed must be a non-negative integer, got -1"):
        TraceWriter(tmp_path / "t.h5", sample_seed=-1, **kwargs)
    for bad, message in ((dict(block=0), "block must be a positive integer, got 0"),
                         (dict(n_actions=0), "n_actions must be a positive integer, got 0"),
                         (dict(synapses=1.5), r"synapses must be None \(all\) or a positive count, got 1.5")):
        with pytest.raises(ValueError, match=message):
            TraceWriter(tmp_path / "t.h5", **{**kwargs, **bad})
    assert list(tmp_path.iterdir()) == [] and unraisable.held() == ()
    TraceWriter(tmp_path / "t.h5", **kwargs).close()  # the file is free


def test_inspect_says_when_no_lifetime_has_a_finite_fitness_yet(tmp_path):
    """It printed "best fitness -inf (in generation 1, ...)" after a generation of failures."""
    run = tmp_path / "run.h5"
    RunStore.create(run, {"generations": 5}, sizes=(2, 3, 1), rule="ABCD_lr", popsize=P, fsync=False).close()
    with RunStore.open(run, "a") as store:
        n = store.n_params
        store.append_generation(0, fitness_raw=np.full(P, np.nan), fitness_shaped=np.zeros(P), sigma=0.1, lr=0.1,
                                wall_time_s=1.0, env_steps=1, mean=np.zeros(n), best_params=np.full(n, np.nan),
                                best_fitness=-np.inf, strategy_state={"g": 0})
    summary = RunStore.open(run).summary()
    assert "no finite fitness yet (every lifetime so far failed); last generation mean" in summary and "-inf (in" not in summary
    with RunStore.open(run, "a") as store:
        generation(store, 1, 3.0)
    assert "best fitness 3.00 (in generation 2, counting from 1" in RunStore.open(run).summary()


def record_one_episode(writer, index=0):
    with writer.episode("default", index) as episode:
        episode.step([np.zeros(2), np.ones(1)], np.ones(1), {"r": 1.0}, [np.full((2, 1), 0.5)])
        episode.end(2.0)


def test_a_trace_writer_of_the_store_holds_off_its_other_writes_and_keeps_its_traces(tmp_path):
    """append_generation opened the trace writer's <run>.tmp ("OSError: Unable to synchronously
    open file (file already exists)"), and its failing transaction deleted that copy: the writer's
    close raised FileNotFoundError and the traces were lost."""
    run = new_run(tmp_path / "run.h5")
    with RunStore.open(run, "a") as store:
        generation(store, 0, 1.0)
        before = run.read_bytes()
        writer = store.trace_writer(sizes=SIZES, n_actions=1, reward_terms=["r"])
        record_one_episode(writer)
        for refused, what in ((lambda: generation(store, 1, 2.0), "append generation 1 to"),
                              (lambda: store.set_target(9), "record the new length of"),
                              (lambda: store.trace_writer(sizes=SIZES, n_actions=1, reward_terms=["r"]),
                               "start another trace writer on")):
            with pytest.raises(RuntimeError) as err:
                refused()
            assert str(err.value) == (f"cannot {what} {run} while a trace writer records into it: close the trace "
                                      "writer first (its recording is written into the file when it closes)")
        assert run.read_bytes() == before and Path(f"{run}.tmp").exists()  # the recording is untouched
        writer.close()
        generation(store, 1, 2.0)  # once it is closed, the run goes on
        store.set_target(9)
    with h5py.File(run) as f:
        assert f["traces/default/episode_0"].attrs["fitness"] == 2.0
        np.testing.assert_array_equal(f["traces/default/episode_0/weights/layer_1"][()], np.full((1, 2, 1), 0.5))
    stored = RunStore.open(run)
    assert stored.generations_completed == 2 and stored.config["generations"] == 9
    assert stored.history()["fitness_raw"][:, 0].tolist() == [1.0, 2.0] and not Path(f"{run}.tmp").exists()


def test_closing_the_store_closes_its_trace_writer_before_the_lock_goes(tmp_path):
    """The store released its lock while its trace writer still recorded, and the writer's close
    then wrote into the run without it. Now closing the store writes the recording first; a block
    that fails discards it, as a TraceWriter's own block does; the lock is free either way."""
    run = new_run(tmp_path / "run.h5")
    with RunStore.open(run, "a") as store:
        writer = store.trace_writer(sizes=SIZES, n_actions=1, reward_terms=["r"])
        record_one_episode(writer)
    assert writer.closed and not Path(f"{run}.tmp").exists()
    with h5py.File(run) as f:
        assert f["traces/default/episode_0"].attrs["fitness"] == 2.0
    before = run.read_bytes()
    with pytest.raises(KeyError):
        with RunStore.open(run, "a") as store:
            writer = store.trace_writer(sizes=SIZES, n_actions=1, reward_terms=["r"], replace=("default",))
            record_one_episode(writer)
            raise KeyError("a failure while recording")
    assert writer.closed and run.read_bytes() == before and not Path(f"{run}.tmp").exists()
    RunStore.open(run, "a").close()  # the lock is free


def test_a_failed_transaction_leaves_a_copy_it_did_not_make(tmp_path, monkeypatch):
    import spikehebb.store.transaction as transaction_module
    from spikehebb.store import RunFileWriteError

    run = new_run(tmp_path / "run.h5")
    other = Path(f"{run}.tmp")
    other.write_bytes(b"another writer's copy")
    monkeypatch.setattr(transaction_module, "free_bytes", lambda path: 0)
    with pytest.raises(RunFileWriteError, match="no space left to write"):
        transaction_module.Transaction(run, fsync=False)
    assert other.read_bytes() == b"another writer's copy"  # deleted before: it was not this transaction's
    monkeypatch.undo()
    with pytest.raises(KeyError):  # a failure inside the block: aborted before the transaction wrote to disk
        with transaction_module.transaction(run, fsync=False, new=True) as f:
            f["missing"]
    assert other.read_bytes() == b"another writer's copy"


@pytest.mark.parametrize("make, what", [
    (lambda path: RunStore.create(path, {}, sizes=SIZES, rule="ABCD_lr", popsize=P, fsync=False), "create"),
    (lambda path: TraceWriter(path, sizes=SIZES, n_actions=1, reward_terms=["r"]), "record traces into"),
])
def test_a_missing_folder_is_named_not_the_lock_file(tmp_path, make, what):
    """It was "FileNotFoundError: [Errno 2] No such file or directory: '.../new.h5.lock'"."""
    path = tmp_path / "nodir" / "new.h5"
    with pytest.raises(FileNotFoundError) as err:
        make(path)
    assert str(err.value) == (f"cannot {what} {path}: its folder {tmp_path / 'nodir'} does not exist; create it first "
                              "or choose another path")
    assert list(tmp_path.iterdir()) == []


def shared_rule_generation(store, g, rules, assignment):
    n = store.n_params
    store.append_generation(g, fitness_raw=np.zeros(P), fitness_shaped=np.zeros(P), sigma=0.1, lr=0.1, wall_time_s=1.0,
                            env_steps=1, mean=np.zeros(n), best_params=np.zeros(n), best_fitness=0.0,
                            strategy_state={"g": g}, rule_table=(rules, assignment))


def test_the_rule_tables_fields_are_a_str_as_the_coefficients_and_older_bytes_still_read(tmp_path):
    """/shared_rules/rules.attrs["fields"] was fixed-length bytes while the coefficients' was a
    str: plain h5py gave np.bytes_ for one (``.split(",")`` failed)."""
    run = tmp_path / "run.h5"
    RunStore.create(run, {}, sizes=(3, 2), rule="ABCD_lr", popsize=P, fsync=False, snapshot_every=0).close()
    with RunStore.open(run, "a") as store:
        shared_rule_generation(store, 0, np.ones((4, 5)), np.arange(6) % 4)
        shared_rule_generation(store, 1, np.full((2, 5), 2.0), np.arange(6) % 2)  # Evolve & Merge shrinks M
    with h5py.File(run) as f:
        fields = f["shared_rules/rules"].attrs["fields"]
        assert fields.split(",") == f["mean/coefficients/layer_1"].attrs["fields"].split(",") == ["eta", "A", "B", "C", "D"]
        np.testing.assert_array_equal(f["shared_rules/rules"][()], np.full((2, 5), 2.0))
    table = RunStore.open(run).shared_rules()
    assert table["fields"] == ("eta", "A", "B", "C", "D") and table["n_rules"].tolist() == [4, 2]
    # a file written before: a fixed-size table, its fields fixed-length bytes; it reads alike and resumes
    with h5py.File(run, "a") as f:
        del f["shared_rules/rules"]
        f["shared_rules"].create_dataset("rules", data=np.full((2, 5), 2.0))
        f["shared_rules/rules"].attrs.create("fields", np.array(b"eta,A,B,C,D", dtype="S11"))
    assert RunStore.open(run).shared_rules()["fields"] == ("eta", "A", "B", "C", "D")
    with RunStore.open(run, "a") as store:
        shared_rule_generation(store, 2, np.full((2, 5), 3.0), np.arange(6) % 2)
    table = RunStore.open(run).shared_rules()
    assert table["fields"] == ("eta", "A", "B", "C", "D") and table["n_rules"].tolist() == [4, 2, 2]
    np.testing.assert_array_equal(table["rules"], np.full((2, 5), 3.0))
    with h5py.File(run) as f:
        assert f["shared_rules/rules"].attrs["fields"] == "eta,A,B,C,D"
