"""A run file records its rule as declared, not by name alone: a rule edited in place (a
coefficient renamed, a term's factors changed, a term added) or no longer registered is named
in one line before a run's coefficients are read as another rule's, by every command that runs
them; `inspect` still shows the run, with the warning."""

import json

import h5py
import pytest

from spikehebb.agents import AgentConfig
from spikehebb.cli import main as cli_main
from spikehebb.config import EvaluatorConfig, StrategyConfig, TaskConfig, TrainConfig
from spikehebb.rules import DRIFT, HEBBIAN, POSTSYNAPTIC, RULES, RuleSpec, Term, declaration, formula
from spikehebb.store import RunFileError, RunStore
from spikehebb.train import train

NAME = "AD_record_test"
AS_TRAINED = RuleSpec(NAME, (HEBBIAN, DRIFT), learning_rate=True)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One finished generation of a tiny run (NumPy backend: no compile) with a rule registered
    for it alone, then taken out of the registry again."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(RULES, NAME, AS_TRAINED)
        config = TrainConfig(task=TaskConfig("ant", ("default",), max_env_steps=45),
                             agent=AgentConfig(rule=NAME, backend="numpy"), strategy=StrategyConfig(popsize=2),
                             evaluator=EvaluatorConfig("serial", batch_size=2), generations=1, seed=0,
                             runs_dir=str(tmp_path_factory.mktemp("runs")), run_name="record")
        return train(config, progress=False)


def test_a_run_records_its_rule_as_declared(run, monkeypatch):
    monkeypatch.setitem(RULES, NAME, AS_TRAINED)
    with RunStore.open(run) as store:
        assert store.rule_declaration == declaration(AS_TRAINED) == {
            "learning_rate": True, "fields": ["eta", "A", "D"],
            "terms": [{"coefficient": "A", "factors": ["pre", "post"], "eta_scaled": True},
                      {"coefficient": "D", "factors": [], "eta_scaled": True}], "state": []}
        assert store.run_config().agent.rule == NAME
    assert formula(declaration("ABCD_lr+mod")) == ("dw = eta*(A*pre*post + B*pre + C*post + D) + eta_m*mod*elig; "
                                                   "elig = decay_e * elig + dw_local")


EDITED = {  # the rule registered under the run's rule name, edited after training
    "renamed": RuleSpec(NAME, (HEBBIAN, Term("E", (), "drift")), learning_rate=True),
    "refactored": RuleSpec(NAME, (HEBBIAN, Term("D", ("post",), "drift")), learning_rate=True),
    "grown": RuleSpec(NAME, (HEBBIAN, DRIFT, POSTSYNAPTIC), learning_rate=True),
}
FORMULAS = {"renamed": "dw = eta*(A*pre*post + E)", "refactored": "dw = eta*(A*pre*post + D*post)",
            "grown": "dw = eta*(A*pre*post + D + C*post)"}


@pytest.mark.parametrize("edit", list(EDITED))
def test_a_rule_edited_since_the_run_is_named_before_its_coefficients_are_read(run, monkeypatch, capsys, edit):
    """Before: `evaluate` and `--resume` ran the edited rule on the stored coefficients without a
    word (renamed, refactored), or failed on the parameter count (grown)."""
    monkeypatch.setitem(RULES, NAME, EDITED[edit])
    said = (f"{run} was trained with the rule {NAME} as dw = eta*(A*pre*post + D); the rule registered under that "
            f"name now is {FORMULAS[edit]}: restore it as it was, or give the new rule another name")
    with RunStore.open(run) as store, pytest.raises(ValueError) as err:
        store.run_config()
    assert str(err.value) == said
    for command in (["evaluate", str(run), "--episodes", "1", "--eval-steps", "45", "--eval-workers", "1"],
                    ["train", "--resume", str(run), "--generations", "2"]):
        with pytest.raises(SystemExit) as exit_:
            cli_main(command)
        assert (exit_.value.code, capsys.readouterr().err) == (2, f"spikehebb {command[0]}: error: {said}\n")
    assert RunStore.open(run).generations_completed == 1
    assert cli_main(["inspect", str(run)]) == 0  # still shown, with the warning where the counts were
    assert f"\nwarning: {said}\n" in capsys.readouterr().out


def test_a_rule_no_longer_registered_is_named(run, capsys):
    with RunStore.open(run) as store, pytest.raises(ValueError) as err:
        store.run_config()
    assert str(err.value) == (f"{run} was trained with the rule '{NAME}', which is not registered here; register it as "
                              "it was (a plug-in's rule: name its module in SPIKEHEBB_PLUGINS)")
    assert cli_main(["inspect", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"rule {NAME}, " in out and "which is not registered here" in out


def test_a_file_from_before_the_record_is_checked_by_its_coefficient_names(run, tmp_path, monkeypatch):
    """Files written before the declaration was recorded name their coefficients
    (``/mean/coefficients/layer_l``'s ``fields``): a renamed or added coefficient is caught,
    a change of factors is not (nothing recorded it)."""
    old = tmp_path / "old.h5"
    old.write_bytes(run.read_bytes())
    with h5py.File(old, "a") as f:
        del f.attrs["rule_declaration"]
    monkeypatch.setitem(RULES, NAME, EDITED["renamed"])
    with RunStore.open(old) as store, pytest.raises(ValueError) as err:
        store.run_config()
    assert str(err.value) == (f"{old} was trained with the rule {NAME} whose coefficients were eta,A,D; the rule "
                              f"registered under that name now has eta,A,E: restore it as it was, or give the new rule "
                              f"another name")
    monkeypatch.setitem(RULES, NAME, EDITED["refactored"])
    with RunStore.open(old) as store:
        assert store.rule_declaration == {"fields": ["eta", "A", "D"]} and store.run_config().agent.rule == NAME
        assert json.loads(store.config_json)["agent"]["rule"] == NAME


def test_a_damaged_declaration_is_one_line(run, tmp_path):
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(run.read_bytes())
    with h5py.File(damaged, "a") as f:
        f.attrs["rule_declaration"] = "{}"
    with pytest.raises(RunFileError) as err:
        RunStore.open(damaged)
    assert str(err.value) == f"{damaged} is damaged: its rule_declaration attribute is not a rule's declaration ('{{}}')"


def test_a_resume_completes_an_older_files_record(run, tmp_path, monkeypatch):
    """An older file names its coefficients only; once a resume has checked them against the
    registered rule it records the whole declaration, so a later edit of the factors is caught."""
    old = tmp_path / "old.h5"
    old.write_bytes(run.read_bytes())
    with h5py.File(old, "a") as f:
        del f.attrs["rule_declaration"]
    monkeypatch.setitem(RULES, NAME, AS_TRAINED)
    assert cli_main(["train", "--resume", str(old), "--generations", "2", "--no-progress"]) == 0
    with RunStore.open(old) as store:
        assert store.generations_completed == 2 and store.rule_declaration == declaration(AS_TRAINED)
    monkeypatch.setitem(RULES, NAME, EDITED["refactored"])
    with RunStore.open(old) as store, pytest.raises(ValueError, match="now is dw = eta\\*\\(A\\*pre\\*post \\+ D\\*post\\)"):
        store.run_config()
