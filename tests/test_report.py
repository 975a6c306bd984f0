"""The report: valid HTML whose every image and video is embedded (data: URIs only), with the
sections there is something to show for, the paper's numbers beside the test table."""

import base64
import json
from html.parser import HTMLParser

import numpy as np
import pytest

from spikehebb.assess import load_run, record_traces
from spikehebb.cli import main as cli_main
from spikehebb.perturb import Recovery, rows_to_json, summarise
from spikehebb.report import PAPER, build_report
from spikehebb.train import TrainConfig, train
from spikehebb.video import record_video

VOID = {"meta", "img", "br", "hr", "link", "input", "source"}
LINKING = {"src", "href", "srcset", "poster", "data", "action"}


class Page(HTMLParser):
    """Checks nesting and collects headings, tables and every attribute that can point to a file."""

    def __init__(self):
        super().__init__()
        self.stack, self.links, self.headings, self.cells, self.tags = [], [], [], [], []
        self._text = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [(tag, v) for k, v in attrs if k in LINKING]
        if tag not in VOID:
            self.stack.append(tag)
        if tag in ("h2", "td", "th"):
            self._text = []

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()
        if tag == "h2":
            self.headings.append("".join(self._text))
        elif tag in ("td", "th"):
            self.cells.append("".join(self._text))
        if tag in ("h2", "td", "th"):
            self._text = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)


def parse(path):
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert page.stack == [], f"unclosed tags {page.stack}"
    return page


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    config = TrainConfig.from_dict(dict(popsize=2, generations=2, max_env_steps=60, train_variants=("default", "damage_right"), batch_size=2,
                         evaluator="serial", runs_dir=str(tmp_path_factory.mktemp("run")), run_name="ant", backend="numpy"))
    path = train(config, progress=False)
    record_traces(path, *load_run(path), ["damage_left"], 1, None, 60)
    return path


def test_a_full_report_embeds_everything(run, tmp_path):
    video = record_video(run, run.with_name("ant_damage_left.gif"), "damage_left", max_env_steps=50).path
    rows = [summarise("Hebbian ABCD_lr", "motor", [Recovery(1.0, 60.0, False), Recovery(0.5, 400.0, True), Recovery(0.75, 400.0, True)], 400)]
    recovery = run.with_name("ant_recovery.json")
    recovery.write_text(json.dumps({"settings": {"t0": 480, "variant": "default"}, "rows": rows_to_json(rows)}))
    out = build_report(run, tmp_path / "report.html", episodes=2)
    page = parse(out)
    assert page.headings == ["The run", "Training", "Test lifetimes", "What the rule does (recorded lifetimes)",
                             "Recovery from perturbations", "Videos"]
    assert page.tags.count("img") == 1 + 4 + 1  # curves, four trace figures, the gif
    assert all(value.startswith("data:") for _, value in page.links) and len(page.links) == 6
    assert "script" not in page.tags and "link" not in page.tags
    for _, value in page.links:
        mime, payload = value[5:].split(";base64,")
        data = base64.b64decode(payload, validate=True)
        assert data[:8] == b"\x89PNG\r\n\x1a\n" if mime == "image/png" else data[:6] == b"GIF89a"
    assert video.name in page.cells or video.name in out.read_text()
    # the test table: our numbers beside the paper's
    cells = page.cells
    i = cells.index("damage_left")
    assert cells[i + 1] == "no" and " ± " in cells[i + 2] and cells[i + 4] == "{} ± {}".format(*PAPER["ant", "hebbian", "ABCD_lr"]["damage_left"])
    i = cells.index("motor")
    assert cells[i - 1] == "Hebbian ABCD_lr" and cells[i + 1:i + 6] == ["3 / 3", "0.750", "1", "1", "> 400"]
    text = out.read_text()
    assert "the search mean after 2 generations" in text
    assert "100 lifetimes of their Hebbian ABCD_lr ant." in text
    assert "motor: the two motors of leg 0 off (0 front left" in text


def test_a_bare_report_and_mp4(run, tmp_path):
    video = record_video(run, tmp_path / "clip.mp4", max_env_steps=45).path
    out = build_report(run, tmp_path / "bare.html", test=False, videos=[video], recovery=None)
    page = parse(out)
    assert "Test lifetimes" not in page.headings and page.headings[-1] == "Videos"
    (mp4,) = [v for t, v in page.links if t == "video"]
    assert mp4.startswith("data:video/mp4;base64,") and base64.b64decode(mp4.split(",", 1)[1])[4:8] == b"ftyp"


def test_cli_report_and_bad_input(run, tmp_path, capsys, monkeypatch):
    import spikehebb.assess

    not_a_table = tmp_path / "x.json"
    not_a_table.write_text('{"table": "x"}')
    cli_main(["report", str(run), "--no-test", "-o", str(tmp_path / "r.html")])
    assert (tmp_path / "r.html").is_file() and "wrote" in capsys.readouterr().out
    for args, message in [
        (["--video", str(tmp_path / "x.avi")], "videos must be .mp4 or .gif"),
        (["--recovery", str(tmp_path / "none.json")], "recovery table"),
        (["--episodes", "0"], "episodes must be at least 1"),
        (["--variant", "default", "default"], "variants must be distinct, got ['default', 'default']"),
        (["--recovery", str(not_a_table)], f"{not_a_table} is not a recovery table of experiments/perturb_ant.py (KeyError"),
        (["-o", str(tmp_path / "no_such_dir" / "r.html")], f"its folder {tmp_path / 'no_such_dir'} does not exist"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            cli_main(["report", str(run), "-o", str(tmp_path / "r.html"), *args])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and message in err and err.count("\n") == 1
        monkeypatch.setattr(spikehebb.assess, "assess", lambda *a, **k: pytest.fail("tested before the check"))


def test_only_the_papers_hebbian_ABCD_lr_and_static_ants_get_its_numbers():
    from spikehebb.config import AgentConfig, StrategyConfig, TaskConfig, TrainConfig
    from spikehebb.report import paper_numbers

    def numbers(task=TaskConfig("ant"), agent=AgentConfig(), **changes):
        return paper_numbers(TrainConfig(task=task, agent=agent, **changes))

    paper = {"default": (1051, 113), "damage_right": (1019, 116), "damage_left": (452, 95)}
    assert numbers() == paper
    assert numbers(TaskConfig("ant", ("damage_right", "default"), 1000), AgentConfig(backend="numpy", dtype="float64")) == paper
    assert numbers(agent=AgentConfig(coefficient_rows="i_plus_j")) == paper
    assert numbers(agent=AgentConfig(dale_seed=3, eligibility_tau=7.0)) == paper  # settings of options not taken
    assert numbers(TaskConfig("ant", episode={"first_input": "reset"})) == paper  # the authors' code's first input
    assert numbers(agent=AgentConfig(kind="static", rule=None)) == {
        "default": (1604, 171), "damage_right": (1431, 54), "damage_left": (68, 56)}
    ant = TaskConfig("ant")
    for task, agent in ((ant, AgentConfig(rule="A")), (ant, AgentConfig(kind="lstm", rule=None)),
                        (TaskConfig("car"), AgentConfig()),
                        # damage_left is the mirror image of a training body for a mirror-symmetric rule
                        (ant, AgentConfig(coefficient_rows="mirror")),
                        # the biology options, other bodies, non-negative rates, other episode rules or
                        # fitness: not the paper's network or protocol
                        (ant, AgentConfig(modulated=True)), (ant, AgentConfig(dale=0.8)),
                        (ant, AgentConfig(evolve_initial_weights=True)), (ant, AgentConfig(rule_every=4)),
                        (ant, AgentConfig(weight_init="lognormal")),
                        (TaskConfig("ant", ("default",)), AgentConfig()), (TaskConfig("ant", positive=True), AgentConfig()),
                        (TaskConfig("ant", fitness_floor=0.0), AgentConfig()),
                        (TaskConfig("ant", episode={"burn_in_steps": 0}), AgentConfig())):
        assert numbers(task, agent) == {}, (task, agent)
    assert numbers(strategy=StrategyConfig(rho=128)) == {}  # shared rules (Palm et al.'s bottleneck)




def test_the_report_tests_the_runs_own_training_bodies_and_embeds_only_its_own_videos(tmp_path, monkeypatch):
    import spikehebb.assess
    from spikehebb.assess import VariantResult
    from spikehebb.report import default_videos, test_section

    config = TrainConfig.from_dict(dict(popsize=2, generations=1, max_env_steps=45, train_variants=("long_back",),
                                        batch_size=2, evaluator="serial", runs_dir=str(tmp_path), run_name="ant", backend="numpy"))
    path = train(config, progress=False)
    tested = []

    def fake(config, params, variants, *args, **kwargs):
        tested.extend(variants)
        return [VariantResult(v, np.zeros(1), "trained" if v == "long_back" else "unseen") for v in variants]

    monkeypatch.setattr(spikehebb.assess, "assess", fake)
    test_section(path, 1, None, 1)
    assert tested == ["long_back", "default", "damage_right", "damage_left"]
    for name in ("ant.mp4", "ant_damage_left.gif", "ant_mirror.mp4", "ant_mirror_default.gif", "antelope.mp4"):
        (tmp_path / name).write_bytes(b"")
    found = default_videos(path, ("default", "damage_right", "damage_left"))
    assert sorted(v.name for v in found) == ["ant.mp4", "ant_damage_left.gif"]
