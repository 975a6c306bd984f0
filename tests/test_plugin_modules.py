"""Plug-ins: a module of one's own that registers an agent kind (or a rule, a task, a weight
constraint) is found by the commands and by every worker process (Python starts them fresh, so a
registration made only in the parent was unknown there), named by SPIKEHEBB_PLUGINS or an entry
point; one that fails to import ends a command in one line."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PLUGIN = textwrap.dedent('''
    """A plug-in: static weights under a kind of its own, and a task that is the ant by another name."""
    import dataclasses

    from spikehebb.agents import AGENTS
    from spikehebb.agents.hebbian import StaticAgent
    from spikehebb.network.constraints import CONSTRAINTS, MaxAbsNormalisation
    from spikehebb.rules import HEBBIAN, RULES, RuleSpec, Term
    from spikehebb.tasks import TASKS


    class PlugStatic(StaticAgent):
        kind = "plug_static"


    AGENTS[PlugStatic.kind] = PlugStatic
    CONSTRAINTS["plug_max_abs"] = type("PlugMaxAbs", (MaxAbsNormalisation,), {"name": "plug_max_abs"})
    TASKS["plug_ant"] = dataclasses.replace(TASKS["ant"], name="plug_ant")
    # Oja's rule, its decay reading the weight: dw = eta*(A*o_i*o_j + E*o_j*o_j*w)
    RULES["Oja_lr"] = RuleSpec("Oja_lr", (HEBBIAN, Term("E", ("post", "post", "w"), "Oja's decay")), learning_rate=True)
''')

TRAIN = textwrap.dedent('''
    import sys
    from spikehebb.agents import AgentConfig
    from spikehebb.config import EvaluatorConfig, StrategyConfig, TaskConfig, TrainConfig
    from spikehebb.train import train

    config = TrainConfig(task=TaskConfig("plug_ant", ("default",), max_env_steps=45),
                         agent=AgentConfig(kind="plug_static", rule=None), strategy=StrategyConfig(popsize=4),
                         evaluator=EvaluatorConfig("processes", workers=2), generations=1, seed=0,
                         runs_dir=sys.argv[1], run_name="plug")
    print(train(config, progress=False))
''')


def run(args, tmp_path, plugins: str | None, **kwargs):
    env = {k: v for k, v in os.environ.items() if k != "SPIKEHEBB_PLUGINS"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT)])
    if plugins is not None:
        env["SPIKEHEBB_PLUGINS"] = plugins
    return subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600, **kwargs)


@pytest.fixture(scope="module")
def plugged(tmp_path_factory):
    """The plug-in module's folder and a run of its kind on its task, trained on 2 worker processes."""
    folder = tmp_path_factory.mktemp("plugin")
    (folder / "my_plugin.py").write_text(PLUGIN)
    done = run(["-c", TRAIN, str(folder / "runs")], folder, "my_plugin")
    assert done.returncode == 0, done.stderr[-3000:]
    return folder, Path(done.stdout.strip().splitlines()[-1])


def test_a_plugin_kind_trains_on_worker_processes_and_is_evaluated(plugged):
    folder, path = plugged
    assert path.is_file()
    done = run(["-m", "spikehebb.console", "evaluate", str(path), "--variant", "default", "--episodes", "2",
                "--eval-steps", "45", "--eval-workers", "2"], folder, "my_plugin")
    assert done.returncode == 0 and "default" in done.stdout, done.stderr[-3000:]


def trained_with_plugin(folder: Path, flags: list[str], runs: str) -> str:
    """`spikehebb train FLAGS` for one tiny generation, with the plug-in; what `spikehebb
    inspect` then says of the run."""
    done = run(["-m", "spikehebb.console", "train", *flags, "--popsize", "4", "--generations", "1", "--max-env-steps",
                "45", "--train-variants", "default", "--no-progress", "--runs-dir", runs], folder, "my_plugin")
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = (folder / runs).glob("*.h5")
    return run(["-m", "spikehebb.console", "inspect", str(path)], folder, "my_plugin").stdout


def test_a_plugin_rule_is_a_choice_of_train_and_runs_on_worker_processes(plugged):
    folder, _ = plugged
    shown = trained_with_plugin(folder, ["--rule", "Oja_lr", "--backend", "numpy", "--workers", "2"], "oja")
    assert "rule Oja_lr, 36,864 parameters" in shown  # eta, A, E per synapse of 12,288
    help_text = run(["-m", "spikehebb.console", "train", "--help"], folder, "my_plugin").stdout
    assert "Oja_lr" in " ".join(help_text.split())


def test_a_plugin_kind_is_a_choice_of_train(plugged):
    folder, _ = plugged
    shown = trained_with_plugin(folder, ["--agent", "plug_static", "--task", "plug_ant", "--evaluator", "serial"], "kind")
    assert "agent plug_static, openai-es population 4" in shown
    refused = run(["-m", "spikehebb.console", "train", "--agent", "plug_static", "--rule", "AD"], folder, "my_plugin")
    assert refused.stderr == "spikehebb train: error: a plug_static agent has no plasticity rule: drop --rule/--coevolve\n"


def test_without_the_plugin_its_run_is_refused_in_one_line(plugged):
    folder, path = plugged
    done = run(["-m", "spikehebb.console", "evaluate", str(path), "--episodes", "1"], folder, None)
    assert (done.returncode, done.stderr) == (2, "spikehebb evaluate: error: unknown task 'plug_ant'; valid tasks: ant, car\n")


def test_a_plugin_constraint_is_found_by_its_name(plugged):
    """A constraint is stored by name (its to_dict) and made again from it in the workers."""
    folder, _ = plugged
    made = "from spikehebb.network.constraints import make_constraint; print(make_constraint({'name': 'plug_max_abs'}))"
    assert run(["-c", made], folder, "my_plugin").stdout == "PlugMaxAbs(layers=None)\n"
    refused = run(["-c", made], folder, None)
    assert "ValueError: unknown weight constraint 'plug_max_abs'" in refused.stderr


@pytest.mark.parametrize("plugins, said", [
    ("no_such_plugin", "spikehebb: error: the plug-in 'no_such_plugin' (SPIKEHEBB_PLUGINS) failed to import: "
                       "ModuleNotFoundError: No module named 'no_such_plugin'"),
    ("my_plugin, broken_plugin", "spikehebb: error: the plug-in 'broken_plugin' (SPIKEHEBB_PLUGINS) failed to import: "
                                 "KeyError: 'no_such_registry_entry'"),
])
def test_a_plugin_that_fails_to_import_ends_any_command_in_one_line(plugged, plugins, said):
    folder, path = plugged
    (folder / "broken_plugin.py").write_text("from spikehebb.tasks import TASKS\nTASKS['no_such_registry_entry']\n")
    done = run(["-m", "spikehebb.console", "inspect", str(path)], folder, plugins)
    assert (done.returncode, done.stderr, done.stdout) == (2, said + "\n", "")
