"""Building the Brian2 network: compiled-code cache across processes, concurrent builds, fallback."""

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from spikehebb.network import make_network
from spikehebb.network import brian

SIZES = (4, 3, 2)
#: The cache test's network: one layer, so an empty cache takes 5 compiled modules, not the 9 of
#: SIZES' two layers (each a C++ compile of seconds of CPU).
CACHE_SIZES = (4, 2)


def _build_and_run(cache_dir, barrier=None):
    """In a fresh process: build against ``cache_dir``, run 20 steps, return the outputs."""
    from brian2 import prefs

    prefs.codegen.runtime.cython.cache_dir = str(cache_dir)
    if barrier is not None:
        barrier.wait()
    net = make_network(CACHE_SIZES, "ABCD_lr", 2, dtype="float64")
    assert net.target == "cython"
    rng = np.random.default_rng(0)
    net.reset([rng.normal(0, 0.1, s) for s in net.coefficient_shapes], [rng.uniform(-0.1, 0.1, s) for s in net.weight_shapes])
    return np.array([net.step(x) for x in rng.normal(size=(20, 2, CACHE_SIZES[0]))])


def _compiled_modules(cache_dir):
    return sorted(p.name for p in Path(cache_dir).iterdir() if p.suffix == ".so")


@pytest.mark.slow
def test_concurrent_builds_share_one_cache(tmp_path):
    """Two processes compiling the same network into an empty cache at once both work and agree;
    a third process finds everything compiled."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Manager().Barrier(2)
    with ctx.Pool(2) as pool:
        a, b = pool.starmap(_build_and_run, [(tmp_path, barrier), (tmp_path, barrier)])
    np.testing.assert_array_equal(a, b)
    modules = _compiled_modules(tmp_path)
    assert modules
    with ctx.Pool(1) as pool:
        c = pool.apply(_build_and_run, (tmp_path,))
    np.testing.assert_array_equal(a, c)
    assert _compiled_modules(tmp_path) == modules  # nothing new was compiled

    rng = np.random.default_rng(0)
    ref = make_network(CACHE_SIZES, "ABCD_lr", 2, backend="numpy", dtype="float64")
    ref.reset([rng.normal(0, 0.1, s) for s in ref.coefficient_shapes], [rng.uniform(-0.1, 0.1, s) for s in ref.weight_shapes])
    np.testing.assert_allclose(a, [ref.step(x) for x in rng.normal(size=(20, 2, CACHE_SIZES[0]))], atol=1e-12)


def test_falls_back_to_numpy_with_one_warning(monkeypatch):
    from brian2.codegen.runtime.cython_rt import CythonCodeObject

    monkeypatch.setattr(brian, "_cython_checked", None)
    monkeypatch.setattr(CythonCodeObject, "is_available", classmethod(lambda cls: False))
    with pytest.warns(RuntimeWarning, match="falls back to the much slower numpy target"):
        net = make_network(SIZES, "A", 1, dtype="float64")
    assert net.target == "numpy"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert make_network(SIZES, "A", 1, dtype="float64").target == "numpy"  # warned once only
    net.reset([np.full(s, 0.1) for s in net.coefficient_shapes], [np.full(s, 0.5) for s in net.weight_shapes])
    np.testing.assert_allclose(net.step(np.ones((1, 4))), np.tanh(np.full((1, 2), 3 * 0.5 * np.tanh(2.0))))


def test_generated_equations_follow_the_rule_spec():
    from spikehebb.rules import get_rule

    assert brian.rule_update(get_rule("ABCD_lr"), fold_eta=False) == (
        "w += eta * (A * r_pre * r_post + B * r_pre + C * r_post + D)"
    )
    assert brian.rule_update(get_rule("ABCD_lr")) == "w += A * r_pre * r_post + B * r_pre + C * r_post + D"
    assert brian.rule_update(get_rule("AD")) == "w += A * r_pre * r_post + D"
    model = brian.synapse_model(get_rule("AD_lr"), fold_eta=False)
    assert [line.split(" :")[0] for line in model.splitlines()] == ["w", "eta", "A", "D", "I_post = w * r_pre"]
    assert "(summed)" in model.splitlines()[-1]


def test_a_slow_build_tells_a_terminal_user_that_brian2_compiles(monkeypatch, capsys):
    import io
    import time

    from spikehebb.network import brian

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for stream, expect in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr("sys.stderr", stream)
        monkeypatch.setattr(brian, "COMPILE_NOTICE_AFTER_S", 0.05)
        with brian._compile_notice():
            time.sleep(0.3)
        assert ("spikehebb: compiling the Brian2 network to C++" in stream.getvalue()) == expect
        with brian._compile_notice():  # a fast build says nothing
            pass
        assert stream.getvalue().count("compiling") == int(expect)
