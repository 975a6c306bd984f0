"""The HDF5 run file: round trips, refusals, crash safety under kill -9, traces.

Helpers live here rather than in a conftest: the suite runs with --import-mode=importlib.
"""

import dataclasses
import inspect
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from spikehebb.es import get_strategy
from spikehebb.agents.base import GenomePart
from spikehebb.genome import GenomeMap
from spikehebb.rules import coefficient_shapes
from spikehebb.rules import n_coefficients, unflatten_coefficients
from spikehebb.store import (
    FORMAT_VERSION,
    GENERATION_FIELDS,
    RunFileBusyError,
    RunFileError,
    RunStore,
    TraceWriter,
    read_state,
    write_state,
)

SIZES = (5, 4, 3)
RULE = "ABCD_lr"
N = n_coefficients(SIZES, RULE)  # 5*4*5 + 4*3*5 = 160
P = 6


@dataclasses.dataclass
class Config:
    task: str = "ant"
    seed: int = 3
    sizes: tuple = SIZES
    sigma: float = 0.1
    out: Path = Path("runs/x.h5")
    morphologies: tuple = ("normal", "right_front_damage")
    extra: dict = dataclasses.field(default_factory=lambda: {"l2": np.float64(0.01), "n": np.int64(2)})


def generation_values(g, n=N, p=P):
    """Deterministic content of generation g, so a reader can check every stored row."""
    rng = np.random.default_rng(g)
    return dict(
        fitness_raw=rng.standard_normal(p) * 10 + g,
        fitness_shaped=np.linspace(-0.5, 0.5, p),
        sigma=0.1 * 0.999**g,
        lr=0.2 * 0.995**g,
        wall_time_s=1.5 + g,
        env_steps=1000 * (g + 1),
        mean=rng.standard_normal(n),
        best_params=rng.standard_normal(n),
        best_fitness=float(g),
        strategy_state={"generation": g + 1, "mean": rng.standard_normal(n), "name": f"gen{g}", "opt": {"t": g}},
    )


def make_run(path, generations, **kwargs):
    store = RunStore.create(path, Config(), sizes=SIZES, rule=RULE, popsize=P, fsync=False, **kwargs)
    for g in range(generations):
        store.append_generation(g, **generation_values(g))
    return store


def test_config_history_and_checkpoint_round_trip(tmp_path):
    path = tmp_path / "run.h5"
    with make_run(path, 4):
        pass
    store = RunStore.open(path)
    assert store.config == {
        "task": "ant", "seed": 3, "sizes": [5, 4, 3], "sigma": 0.1, "out": "runs/x.h5",
        "morphologies": ["normal", "right_front_damage"], "extra": {"l2": 0.01, "n": 2},
    }
    assert json.loads(store.config_json) == store.config
    assert store.sizes == SIZES and store.rule == RULE and store.n_params == N and store.popsize == P
    assert store.generations_completed == 4
    h = store.history()
    assert set(h) == set(GENERATION_FIELDS)
    for g in range(4):
        v = generation_values(g)
        assert np.array_equal(h["fitness_raw"][g], v["fitness_raw"])
        assert np.array_equal(h["fitness_shaped"][g], v["fitness_shaped"])
        assert h["fitness_min"][g] == v["fitness_raw"].min() and h["fitness_max"][g] == v["fitness_raw"].max()
        assert h["fitness_mean"][g] == v["fitness_raw"].mean()
        assert (h["sigma"][g], h["lr"][g], h["wall_time"][g]) == (v["sigma"], v["lr"], v["wall_time_s"])
        assert h["env_steps"][g] == v["env_steps"] and h["generation"][g] == g and h["best_fitness"][g] == g
    last = generation_values(3)
    ckpt = store.load_checkpoint()
    assert ckpt.generation == 4 and ckpt.best_fitness == 3.0
    assert np.array_equal(ckpt.mean, last["mean"]) and np.array_equal(ckpt.best_params, last["best_params"])
    assert ckpt.strategy_state["name"] == "gen3" and ckpt.strategy_state["opt"] == {"t": 3}
    assert np.array_equal(ckpt.strategy_state["mean"], last["strategy_state"]["mean"])
    text = store.summary()
    assert "4 generations" in text and "best fitness 3.00 (in generation 4, counting from 1 as the log does)" in text and "rule ABCD_lr" in text


def test_mean_and_best_are_stored_in_the_coefficient_layout(tmp_path):
    path = tmp_path / "run.h5"
    with make_run(path, 2):
        pass
    v = generation_values(1)
    expected_mean = unflatten_coefficients(v["mean"], SIZES, RULE)
    expected_best = unflatten_coefficients(v["best_params"], SIZES, RULE)
    with h5py.File(path, "r") as f:  # plain h5py, the documented paths
        for l in (1, 2):
            assert f[f"mean/coefficients/layer_{l}"].shape == (SIZES[l - 1], SIZES[l], 5)
            assert np.array_equal(f[f"mean/coefficients/layer_{l}"][()], expected_mean[l - 1][0])
            assert np.array_equal(f[f"best/coefficients/layer_{l}"][()], expected_best[l - 1][0])
            assert f[f"mean/coefficients/layer_{l}"].attrs["fields"] == "eta,A,B,C,D"
    assert np.array_equal(RunStore.open(path).params("mean")["coefficients"][1], expected_mean[1][0])


def test_static_weights_layout(tmp_path):
    n = 5 * 4 + 4 * 3
    store = RunStore.create(tmp_path / "s.h5", {"task": "ant"}, sizes=SIZES, rule=None, popsize=P, fsync=False)
    v = generation_values(0, n=n)
    store.append_generation(0, **v)
    w = store.params("best")["weights"]
    assert w[0].shape == (5, 4) and w[1].shape == (4, 3)
    assert np.array_equal(np.concatenate([w[0].ravel(), w[1].ravel()]), v["best_params"])
    assert store.rule is None and "static weights" in store.summary()


def test_a_layout_with_extra_parts_round_trips(tmp_path):
    """The car's shape of search: evolved conv weights first, then coefficients and initial weights."""
    layout = GenomeMap((
        GenomePart("conv", ((6, 3, 3, 3), (8, 6, 5, 5))),
        GenomePart("coefficients", tuple(coefficient_shapes(SIZES, RULE))),
        GenomePart("weights", ((5, 4), (4, 3))),
    ))
    n = layout.n_params
    store = RunStore.create(tmp_path / "c.h5", {}, sizes=SIZES, rule=RULE, popsize=P, layout=layout, fsync=False)
    v = generation_values(0, n=n)
    store.append_generation(0, **v)
    store.close()
    again = RunStore.open(tmp_path / "c.h5")
    assert again.layout == layout and again.n_params == n
    assert np.array_equal(again.load_checkpoint().best_params, v["best_params"])
    with h5py.File(tmp_path / "c.h5", "r") as f:
        assert f["best/conv/layer_2"].shape == (8, 6, 5, 5) and f["best/weights/layer_1"].shape == (5, 4)
        expected = layout.split(v["best_params"])
        assert np.array_equal(f["best/coefficients/layer_2"][()], expected["coefficients"][1][0])


STATE = {
    "strategy": "cma",
    "version": 1,
    "big": 2**40,
    "sigma": 0.25,
    "flag": True,
    "off": False,
    "nothing": None,
    "np_scalar": np.float64(1.5),
    "np_int": np.int32(-7),
    "zero_d": np.array(3.0),
    "empty": np.zeros(0),
    "matrix": np.arange(12, dtype=np.float32).reshape(3, 4),
    "bools": np.array([True, False]),
    "hist": [1.0, 2.0, 3.5],
    "shape": (3, 4),
    "nested": {"deeper": {"x": np.ones(3), "name": "adam", "t": 7}, "empty": {}},
    "values": {"sm.C": np.eye(2), "gp.tf_geno": None, "sp.weights[]": np.arange(3.0)},
}


def assert_same(a, b, where="state"):
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), where
    else:
        assert a == b, where


def test_state_dict_round_trip_keeps_types(tmp_path):
    with h5py.File(tmp_path / "s.h5", "w") as f:
        write_state(f.create_group("s"), STATE)
    with h5py.File(tmp_path / "s.h5", "r") as f:
        assert_same(read_state(f["s"]), STATE)


def test_state_is_replaced_not_merged_and_the_file_does_not_grow(tmp_path):
    path = tmp_path / "run.h5"
    store = make_run(path, 0, snapshot_every=0)  # snapshots grow the file on purpose
    other = {"a": {"b": 1}, "strategy": np.zeros(3), "x": "s"}
    for g, state in enumerate([STATE, other, STATE]):
        store.append_generation(g, **{**generation_values(g), "strategy_state": state})
        assert_same(store.load_checkpoint().strategy_state, state)
    sizes = []
    for g in range(3, 60):  # a real strategy's state: same structure, a history that grows
        v = generation_values(g)
        v["strategy_state"] = {**STATE, "hist": np.arange(min(g, 40), dtype=float), "name": f"g{g % 3}"}
        store.append_generation(g, **v)
        sizes.append(path.stat().st_size)
    assert sizes[-1] == sizes[40], f"file grows: {sizes}"


def test_state_rejects_what_it_cannot_store(tmp_path):
    with h5py.File(tmp_path / "s.h5", "w") as f:
        with pytest.raises(TypeError, match="/s/obj: cannot store object"):
            write_state(f.create_group("s"), {"obj": object()})
        with pytest.raises(ValueError, match="without '/'"):
            write_state(f.create_group("t"), {"a/b": 1})
        with pytest.raises(TypeError, match="numeric or bool"):
            write_state(f.create_group("u"), {"names": np.array(["a", "b"])})


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("openai-es", {"lr": 0.02}),
        ("openai-es", {"lr": 0.05, "optimizer": "adam"}),
        ("cma", {"sigma0": 1.0, "diagonal": True}),
        ("cma", {"sigma0": 1.0, "diagonal": False}),
    ],
)
def test_resume_through_the_run_file_is_bit_identical(tmp_path, name, kwargs):
    def objective(x):
        return -float(np.sum((x - 0.5) ** 2))

    def run(strategy, store, generations):
        for _ in range(generations):
            keys = strategy.ask()
            sampler = strategy.sampler()
            stats = strategy.tell([objective(sampler.params(k)) for k in keys])
            store.append_generation(
                strategy.generation - 1, fitness_raw=stats["raw"], fitness_shaped=stats["shaped"],
                sigma=strategy.sigma, lr=getattr(strategy, "lr", None), wall_time_s=0.0, env_steps=0,
                mean=strategy.mean, best_params=strategy.best_params, best_fitness=strategy.best_fitness,
                strategy_state=strategy.state_dict(),
            )

    n = 20
    straight = get_strategy(name, n_params=n, popsize=P, seed=4, **kwargs)
    with RunStore.create(tmp_path / "a.h5", {}, sizes=(4, 1), rule="ABCD_lr", popsize=P, fsync=False) as a:
        run(straight, a, 8)
    with RunStore.create(tmp_path / "b.h5", {}, sizes=(4, 1), rule="ABCD_lr", popsize=P, fsync=False) as b:
        run(get_strategy(name, n_params=n, popsize=P, seed=4, **kwargs), b, 5)
    with RunStore.open(tmp_path / "b.h5", "a") as b:
        resumed = get_strategy(name, n_params=n, popsize=P, seed=4, **kwargs)
        resumed.load_state_dict(b.load_checkpoint().strategy_state)
        run(resumed, b, 3)
    assert np.array_equal(resumed.mean, straight.mean) and resumed.sigma == straight.sigma
    ha, hb = RunStore.open(tmp_path / "a.h5").history(), RunStore.open(tmp_path / "b.h5").history()
    assert np.array_equal(ha["fitness_raw"], hb["fitness_raw"])


def test_refuses_to_overwrite(tmp_path):
    path = tmp_path / "run.h5"
    make_run(path, 1).close()
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match=f"--resume {path}"):
        RunStore.create(path, {}, sizes=SIZES, rule=RULE, popsize=P)
    assert path.read_bytes() == before


def test_missing_foreign_and_non_hdf5_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        RunStore.open(tmp_path / "nope.h5")
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["data"] = np.zeros(3)
    with pytest.raises(RunFileError, match=r"foreign HDF5 file.*\['data'\]"):
        RunStore.open(tmp_path / "foreign.h5")
    (tmp_path / "text.h5").write_text("step,fitness\n0,1.0\n")
    with pytest.raises(RunFileError, match="not a spikehebb run file .HDF5 signature missing"):
        RunStore.open(tmp_path / "text.h5")
    with TraceWriter(tmp_path / "traces.h5", sizes=SIZES, n_actions=3, reward_terms=["progress"]):
        pass
    with pytest.raises(RunFileError, match="'spikehebb-traces' file, expected format 'spikehebb-run'"):
        RunStore.open(tmp_path / "traces.h5")


@pytest.mark.parametrize("keep", [0.02, 0.5, 0.999])
def test_truncated_file_is_a_clear_error(tmp_path, keep):
    path = tmp_path / "run.h5"
    make_run(path, 3).close()
    data = path.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * keep))])
    with pytest.raises(RunFileError, match="not a spikehebb run file.*(truncated|signature missing)"):
        RunStore.open(path, "a")
    assert len(path.read_bytes()) == max(1, int(len(data) * keep))  # left alone


def test_other_format_version_is_refused(tmp_path):
    path = tmp_path / "run.h5"
    make_run(path, 1).close()
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(RunFileError, match=f"format version {FORMAT_VERSION + 1}, this spikehebb .* reads version {FORMAT_VERSION}"):
        RunStore.open(path, "a")


def test_bad_appends_say_what_was_expected(tmp_path):
    store = make_run(tmp_path / "run.h5", 1)
    v = generation_values(1)
    with pytest.raises(ValueError, match="next one to append is generation 1, got 3"):
        store.append_generation(3, **v)
    with pytest.raises(ValueError, match=r"fitness_raw must have shape \(6,\) \(the popsize of this run\), got \(5,\)"):
        store.append_generation(1, **{**v, "fitness_raw": np.zeros(5)})
    with pytest.raises(ValueError, match=rf"mean must have shape \({N},\) \(the run's n_params\), got \(7,\)"):
        store.append_generation(1, **{**v, "mean": np.zeros(7)})
    with pytest.raises(ValueError, match="non-finite"):
        store.append_generation(1, **{**v, "mean": np.full(N, np.nan)})
    with pytest.raises(TypeError, match="cannot store object"):
        store.append_generation(1, **{**v, "strategy_state": {"x": object()}})
    assert store.generations_completed == 1 and RunStore.open(store.path).generations_completed == 1
    assert not (tmp_path / "run.h5.tmp").exists()
    store.close()
    with pytest.raises(RuntimeError, match="mode 'r'"):
        RunStore.open(store.path).append_generation(1, **v)


def test_one_writer_at_a_time(tmp_path):
    path = tmp_path / "run.h5"
    store = make_run(path, 1)
    with pytest.raises(RunFileBusyError, match=f"pid {os.getpid()}"):
        RunStore.open(path, "a")
    with pytest.raises(RunFileBusyError):
        TraceWriter(path, sizes=SIZES, n_actions=3, reward_terms=["progress"])
    assert RunStore.open(path, "r").generations_completed == 1  # readers are welcome
    store.close()
    with RunStore.open(path, "a") as again:
        again.append_generation(1, **generation_values(1))
    assert not (tmp_path / "run.h5.lock").exists()


def test_a_busy_run_file_says_the_advice_its_opener_gives(tmp_path):
    """What to do instead of waiting comes from whoever opens the file (it knows why), not from
    the lock's reading of what the opener does."""
    from spikehebb.store.transaction import WriterLock

    path = tmp_path / "run.h5"
    store = make_run(path, 1)
    busy = f"{path} is open for writing by another process (pid {os.getpid()}); wait for it to finish"
    try:
        with pytest.raises(RunFileBusyError) as info:
            RunStore.open(path, "a")
        assert str(info.value) == busy
        with pytest.raises(RunFileBusyError) as info:
            RunStore.open(path, "a", advice="record the traces elsewhere")
        assert str(info.value) == f"{busy}, or record the traces elsewhere"
        with pytest.raises(RunFileBusyError) as info:
            WriterLock(path, "record traces into")
        assert str(info.value) == busy
        with pytest.raises(RunFileBusyError) as info:
            TraceWriter(path, sizes=SIZES, n_actions=3, reward_terms=["progress"])
        assert str(info.value) == f"{busy}, or record the traces into a separate file (spikehebb.assess.record_traces(..., into=FILE))"
    finally:
        store.close()
    with RunStore.open(path, "a", advice="unused") as again:  # free again: the advice is said only when busy
        assert again.generations_completed == 1


# A writer that appends generations as fast as it can (about 200 KB of state each), so random
# kills land both inside transactions and between them.
WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    sys.path.insert(0, sys.argv[3])
    from test_store_helpers import generation_values, P
    from spikehebb.store import RunStore
    path, n = sys.argv[1], int(sys.argv[2])
    if int(sys.argv[4]):
        store = RunStore.create(path, {"task": "kill"}, sizes=(n // 5, 1), rule="ABCD_lr", popsize=P)
    else:
        store = RunStore.open(path, "a")
    if int(sys.argv[5]):
        # Park the writer between its finished copy and the rename, so the kill lands inside
        # a write on every machine, however fast its disk.
        import os, time
        def parked_replace(src, dst):
            print("mid-write", flush=True)
            time.sleep(600)
        os.replace = parked_replace
    print("ready", flush=True)
    g = store.generations_completed
    while True:
        store.append_generation(g, **generation_values(g, n=n))
        g += 1
    """
)


def check_prefix(path, n):
    store = RunStore.open(path, "a")  # also proves the lock of the killed writer is gone
    g = store.generations_completed
    h = store.history()
    assert all(len(h[k]) == g for k in h)
    for i in range(g):
        assert np.array_equal(h["fitness_raw"][i], generation_values(i, n=n)["fitness_raw"]), i
    if g:
        v = generation_values(g - 1, n=n)
        ckpt = store.load_checkpoint()
        assert ckpt.strategy_state["name"] == f"gen{g - 1}" and ckpt.strategy_state["generation"] == g
        assert np.array_equal(ckpt.strategy_state["mean"], v["strategy_state"]["mean"])
        assert np.array_equal(ckpt.mean, v["mean"]) and np.array_equal(ckpt.best_params, v["best_params"])
    store.close()
    return g


def test_kill_9_at_random_moments_leaves_a_consistent_prefix(tmp_path):
    helpers = tmp_path / "helpers"
    helpers.mkdir()
    # generation_values alone, not this whole file: its imports (the strategies, the rules) cost
    # each of the nine writers two seconds of CPU before it is ready to be killed
    (helpers / "test_store_helpers.py").write_text(f"import numpy as np\nN, P = {N}, {P}\n\n\n"
                                                   + inspect.getsource(generation_values))
    path, n = tmp_path / "run.h5", 25_000
    rng = np.random.default_rng(12)
    counts, mid_write = [], 0
    for round_ in range(9):
        park = round_ in (4, 8)  # two rounds killed inside a write for certain, the rest at random
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(n), str(helpers), str(int(round_ == 0)), str(int(park))],
            stdout=subprocess.PIPE, text=True,
        )
        assert proc.stdout.readline().strip() == "ready"
        if park:
            assert proc.stdout.readline().strip() == "mid-write"
        else:
            time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        mid_write += (tmp_path / "run.h5.tmp").exists()
        counts.append(check_prefix(path, n))
    assert counts == sorted(counts) and counts[-1] > counts[0], counts
    assert mid_write >= 2, "a parked writer left no .tmp; the test did not test a kill inside a write"


# ------------------------------------------------------------------------------------------ traces


def fake_episode(T, sizes=SIZES, seed=0):
    rng = np.random.default_rng(seed)
    rates = [rng.standard_normal((T, n)).astype(np.float32) for n in sizes]
    actions = rng.standard_normal((T, sizes[-1])).astype(np.float32)
    rewards = {"progress": rng.standard_normal(T), "electricity": -rng.random(T)}
    weights = [rng.standard_normal((T, a, b)).astype(np.float32) for a, b in zip(sizes[:-1], sizes[1:])]
    return rates, actions, rewards, weights


def record(writer, morphology, index, episode, fitness):
    rates, actions, rewards, weights = episode
    with writer.episode(morphology, index, seed=index + 10, damage="none") as ep:
        for t in range(len(actions)):
            ep.step([r[t] for r in rates], actions[t], {k: v[t] for k, v in rewards.items()}, [w[t] for w in weights])
        ep.end(fitness=fitness)


def test_traces_of_all_synapses_read_back_with_plain_h5py(tmp_path):
    path = tmp_path / "run.h5"
    with make_run(path, 2) as store:
        episodes = {("normal", 0): fake_episode(150, seed=1), ("right_front_damage", 0): fake_episode(64, seed=2)}
        with store.trace_writer(sizes=SIZES, n_actions=3, reward_terms=["progress", "electricity"], block=64) as tw:
            for (morph, k), ep in episodes.items():
                record(tw, morph, k, ep, fitness=12.5)
        store.append_generation(2, **generation_values(2))  # training can go on after tracing
    with h5py.File(path, "r") as f:
        for (morph, k), (rates, actions, rewards, weights) in episodes.items():
            g = f[f"traces/{morph}/episode_{k}"]
            assert g.attrs["steps"] == len(actions) and g.attrs["fitness"] == 12.5
            assert g.attrs["morphology"] == morph and g.attrs["seed"] == k + 10 and g.attrs["damage"] == "none"
            for l in range(3):
                assert np.array_equal(g[f"rates/layer_{l}"][()], rates[l])
            assert np.array_equal(g["actions"][()], actions)
            assert np.array_equal(g["rewards/progress"][()], rewards["progress"])
            assert np.array_equal(g["rewards/electricity"][()], rewards["electricity"])
            for l in (1, 2):
                ds = g[f"weights/layer_{l}"]
                assert ds.shape == weights[l - 1].shape and ds.dtype == np.float32
                assert ds.chunks[0] == 64 and ds.compression == "gzip"
                assert np.array_equal(ds[()], weights[l - 1])
            assert np.array_equal(g["weights/layer_2"][:, 1, 2], weights[1][:, 1, 2])  # one synapse's life
    assert "traces: normal, right_front_damage" in RunStore.open(path).summary()
    assert RunStore.open(path).generations_completed == 3


def test_traces_of_a_synapse_subsample(tmp_path):
    path = tmp_path / "traces.h5"
    sizes = (28, 128, 64, 8)
    ep = fake_episode(70, sizes=sizes, seed=3)
    with TraceWriter(path, sizes=sizes, n_actions=8, reward_terms=["progress", "electricity"], synapses=100, sample_seed=9) as tw:
        record(tw, "normal", 3, ep, fitness=1.0)
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "spikehebb-traces"
        g = f["traces/normal/episode_3/weights"]
        assert g.attrs["subsample"] == 100 and g.attrs["sample_seed"] == 9
        for l in (1, 2, 3):
            idx = g[f"layer_{l}_synapses"][()]
            assert idx.shape == (100, 2) and len({tuple(r) for r in idx}) == 100
            flat = np.sort(np.random.default_rng([9, l]).choice(sizes[l - 1] * sizes[l], 100, replace=False))
            assert np.array_equal(idx[:, 0] * sizes[l] + idx[:, 1], flat)  # the documented recipe
            assert np.array_equal(g[f"layer_{l}"][()], ep[3][l - 1][:, idx[:, 0], idx[:, 1]])


def test_traces_bad_input_and_failed_recording_leave_the_file_alone(tmp_path):
    path = tmp_path / "run.h5"
    make_run(path, 1).close()
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"weights of layer 2 must be \(4, 3\), got \(3, 4\)"):
        with TraceWriter(path, sizes=SIZES, n_actions=3, reward_terms=["progress"]) as tw:
            ep = tw.episode("normal", 0)
            ep.step([np.zeros(5), np.zeros(4), np.zeros(3)], np.zeros(3), {"progress": 1.0}, [np.zeros((5, 4)), np.zeros((3, 4))])
    assert path.read_bytes() == before and not (tmp_path / "run.h5.tmp").exists()
    with TraceWriter(path, sizes=SIZES, n_actions=3, reward_terms=["progress"]) as tw:
        with pytest.raises(ValueError, match=r"rewards must have the terms \('progress',\)"):
            tw.episode("normal", 0).step([np.zeros(5), np.zeros(4), np.zeros(3)], np.zeros(3), {"x": 1.0}, [np.zeros((5, 4)), np.zeros((4, 3))])
        with pytest.raises(RuntimeError, match="still open"):
            tw.episode("normal", 1)


def test_search_means_are_snapshotted_every_kth_generation(tmp_path):
    with make_run(tmp_path / "run.h5", 7, snapshot_every=3):
        pass
    gens, means = RunStore.open(tmp_path / "run.h5").snapshots()
    assert gens.tolist() == [3, 6]
    np.testing.assert_array_equal(means, [generation_values(2)["mean"], generation_values(5)["mean"]])
    with make_run(tmp_path / "none.h5", 2, snapshot_every=0):
        pass
    gens, means = RunStore.open(tmp_path / "none.h5").snapshots()
    assert gens.shape == (0,) and means.shape == (0, N)
    with pytest.raises(ValueError, match="snapshot_every must be a non-negative integer, got -1"):
        RunStore.create(tmp_path / "bad.h5", Config(), sizes=SIZES, rule=RULE, popsize=P, snapshot_every=-1)
    assert not (tmp_path / "bad.h5").exists()
