"""Files written by the store before it became a package (format 1) open, resume and append, and
the package writes the same layout: every group, dataset, dtype, shape, chunking, filter and
attribute of ``tests/fixtures/run_v1.h5`` (recorded by ``tests/fixtures/record_run_v1.py``)."""

import importlib.util
import json
import shutil
from pathlib import Path

import h5py
import numpy as np

from spikehebb.rules import declaration
from spikehebb.store import FORMAT_VERSION, RunStore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
_spec = importlib.util.spec_from_file_location("record_run_v1", FIXTURES / "record_run_v1.py")
v1 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(v1)
OLD = FIXTURES / "run_v1.h5"
VOLATILE = {"created", "spikehebb_version"}  # root attributes that differ between any two writes
#: Root attributes written since the fixture was recorded (readers of format 1 do without them).
ADDED = {"rule_declaration"}


def describe(path):
    """Everything about a file but the volatile root attributes: name -> description."""
    out = {}

    def attrs(obj):
        return {k: (v.tolist() if isinstance(v, np.ndarray) else repr(v)) for k, v in obj.attrs.items() if not (obj.name == "/" and k in VOLATILE | ADDED)}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = dict(
                attrs=attrs(obj), shape=obj.shape, dtype=str(obj.dtype), chunks=obj.chunks, maxshape=obj.maxshape,
                compression=obj.compression, opts=obj.compression_opts, shuffle=obj.shuffle,
                fill=repr(obj.fillvalue), data=obj[()].tobytes() if obj.shape != () else repr(obj[()]),
            )
        else:
            out[name] = dict(attrs=attrs(obj))

    with h5py.File(path, "r") as f:
        out["/"] = dict(attrs=attrs(f))
        f.visititems(visit)
    return out


def test_the_old_file_reads_as_written():
    store = RunStore.open(OLD)
    assert store.generations_completed == v1.GENERATIONS and store.sizes == v1.SIZES and store.rule == v1.RULE
    h = store.history()
    for g in range(v1.GENERATIONS):
        v = v1.generation_values(g, store.n_params)
        np.testing.assert_array_equal(h["fitness_raw"][g], v["fitness_raw"])
        assert h["sigma"][g] == v["sigma"]
    last = v1.generation_values(v1.GENERATIONS - 1, store.n_params)
    ckpt = store.load_checkpoint()
    state = ckpt.strategy_state
    assert state["hist"] == last["strategy_state"]["hist"] and state["shape"] == (3, 4) and state["nothing"] is None
    assert type(state["flag"]) is bool and state["np_int"].dtype == np.int32
    np.testing.assert_array_equal(ckpt.best_params, last["best_params"])
    assert store.snapshots()[0].tolist() == [2, 4]
    assert f"format {FORMAT_VERSION}" in store.summary() and "traces: default" in store.summary()


def test_the_package_writes_the_same_file(tmp_path):
    v1.write_run(tmp_path / "new.h5")
    assert describe(tmp_path / "new.h5") == describe(OLD)
    with h5py.File(tmp_path / "new.h5", "r") as new, h5py.File(OLD, "r") as old:
        assert json.loads(new.attrs["rule_declaration"]) == declaration(v1.RULE) and "rule_declaration" not in old.attrs


def test_an_old_file_resumes_and_appends_like_a_new_one(tmp_path):
    old = tmp_path / "old.h5"
    shutil.copyfile(OLD, old)
    with RunStore.open(old, "a") as store:
        g = store.generations_completed
        store.append_generation(g, **v1.generation_values(g, store.n_params))
    v1.write_run(tmp_path / "new.h5", generations=v1.GENERATIONS + 1)
    assert describe(old) == describe(tmp_path / "new.h5")
