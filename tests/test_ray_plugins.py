"""Plug-ins on a Ray cluster this process joins: the actors' environment is the cluster's, not
this process's, so SPIKEHEBB_PLUGINS and the plug-in modules' code travel with the job's
runtime_env (spikehebb.plugins.ray_runtime_env); a local instance this process starts inherits
both as the worker processes do."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

RULE = textwrap.dedent('''
    from spikehebb.rules import HEBBIAN, RULES, RuleSpec, Term
    RULES["Oja_ray"] = RuleSpec("Oja_ray", (HEBBIAN, Term("E", ("post", "post", "w"), "Oja's decay")), learning_rate=True)
''')


def python(code: str, folder: Path, plugins: str | None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter whose plug-in folder is on its sys.path alone (put
    there by the code, not by PYTHONPATH, which processes Ray starts here would inherit)."""
    env = {k: v for k, v in os.environ.items() if k not in ("SPIKEHEBB_PLUGINS", "PYTHONPATH")}
    env["PYTHONPATH"] = str(ROOT)
    if plugins is not None:
        env["SPIKEHEBB_PLUGINS"] = plugins
    code = f"import sys; sys.path.insert(0, {str(folder)!r})\n" + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_the_runtime_env_names_the_plugins_and_ships_their_top_level_modules(tmp_path):
    (tmp_path / "oja_ray.py").write_text(RULE)
    (tmp_path / "ray_pkg").mkdir()
    (tmp_path / "ray_pkg" / "__init__.py").write_text("")
    (tmp_path / "ray_pkg" / "rules.py").write_text("")
    done = python('''
        from spikehebb.plugins import ray_runtime_env
        import oja_ray, ray_pkg
        env = ray_runtime_env({"env_vars": {"OTHER": "1"}, "py_modules": ["s3://bucket/mine.zip"], "pip": ["x"]})
        assert env == {"env_vars": {"SPIKEHEBB_PLUGINS": "oja_ray, ray_pkg.rules", "OTHER": "1"},
                       "py_modules": ["s3://bucket/mine.zip", oja_ray, ray_pkg], "pip": ["x"]}, env
        # the user's own value wins; a module named twice is shipped once
        env = ray_runtime_env({"env_vars": {"SPIKEHEBB_PLUGINS": "mine"}, "py_modules": [oja_ray]})
        assert env == {"env_vars": {"SPIKEHEBB_PLUGINS": "mine"}, "py_modules": [oja_ray, ray_pkg]}, env
        print("ok")
    ''', tmp_path, "oja_ray, ray_pkg.rules")
    assert done.stdout.strip() == "ok", done.stderr[-2000:]
    none = python('''
        from spikehebb.plugins import ray_runtime_env
        assert ray_runtime_env(None) is None and ray_runtime_env({}) is None
        assert ray_runtime_env({"pip": ["x"]}) == {"pip": ["x"]}
        print("ok")
    ''', tmp_path, None)
    assert none.stdout.strip() == "ok", none.stderr[-2000:]
    broken = python('''
        from spikehebb.plugins import ray_runtime_env
        try:
            ray_runtime_env(None)
        except ValueError as err:
            print(err)
    ''', tmp_path, "no_such_plugin_ray")
    assert broken.stdout.strip() == ("the plug-in 'no_such_plugin_ray' (SPIKEHEBB_PLUGINS) failed to import: "
                                     "ModuleNotFoundError: No module named 'no_such_plugin_ray'"), broken.stderr[-2000:]


@pytest.mark.slow
def test_actors_of_a_joined_instance_get_the_plugin_and_give_the_serial_numbers(tmp_path):
    """address="local" joins a new instance as a cluster is joined (no PYTHONPATH of ours, the
    module on this process's sys.path only): the actor imports the shipped module, builds the
    plug-in's rule and gives the serial numbers bit for bit. Before, its build ended in "the
    plug-in 'oja_ray' (SPIKEHEBB_PLUGINS) failed to import: ModuleNotFoundError"."""
    pytest.importorskip("ray", reason='ray is not installed (pip install -e ".[test]" brings it)')
    (tmp_path / "oja_ray.py").write_text(RULE)
    done = python('''
        import numpy as np
        from spikehebb.config import AgentConfig, TaskConfig, WorkerSpec
        from spikehebb.es import get_strategy
        from spikehebb.evaluators import RayEvaluator, SerialEvaluator

        task = TaskConfig("ant", ("default",), 30, {"burn_in_steps": 5, "grace_steps": 20})
        spec = WorkerSpec(task, AgentConfig(rule="Oja_ray", backend="numpy"), batch_size=2)
        strategy = get_strategy("openai-es", n_params=spec.genome().n_params, popsize=4, seed=1)
        keys, sampler = strategy.ask(), strategy.sampler()
        with SerialEvaluator(spec) as serial:
            want, want_steps = serial.evaluate(sampler, keys)
        with RayEvaluator(spec, workers=1, address="local", num_cpus=1, include_dashboard=False,
                          log_to_driver=False) as evaluator:
            got, got_steps = evaluator.evaluate(sampler, keys)
        np.testing.assert_array_equal(got, want)
        assert got_steps == want_steps and len(set(want)) == 4
        print("ok")
    ''', tmp_path, "oja_ray")
    assert done.stdout.strip().splitlines()[-1:] == ["ok"], done.stderr[-3000:]
