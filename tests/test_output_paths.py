"""Paths a command cannot use are one line said before the work: a video's -o that is a folder,
lies below a file or in a folder that takes no file (checked before any frame is rendered, nothing
the user has changed); a folder given as a run file; the docs' TraceWriter snippet from a clean
folder."""

import errno
import re
from pathlib import Path

import pytest

import spikehebb.video
from spikehebb.cli import main as cli_main
from spikehebb.store import RunStore
from spikehebb.store.fileformat import open_checked
from spikehebb.store.transaction import check_can_write
from spikehebb.video import record_video

ROOT = Path(__file__).resolve().parents[1]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture
def no_rendering(monkeypatch):
    """Any lifetime started fails the test: the checks must come first."""
    def rendered(*args, **kwargs):
        raise AssertionError("a lifetime was rendered before the output path was checked")

    monkeypatch.setattr(spikehebb.video, "Lifetimes", rendered)


@pytest.fixture
def refused_probe(refuse_write_probe):
    """A folder that takes no new file (/proc: the write probe fails with ENOENT)."""
    refuse_write_probe(FileNotFoundError(errno.ENOENT, "No such file or directory"))


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): (p.is_dir(), None if p.is_dir() else p.read_bytes()) for p in folder.rglob("*")}


# ---------------------------------------------------------------------------------------- check_can_write
def test_missing_folders_that_can_be_made_pass_and_nothing_is_created(tmp_path):
    out = tmp_path / "a" / "b" / "v.mp4"
    check_can_write([out], "-o", out, make_folders=True)
    assert list(tmp_path.iterdir()) == []  # no folder made, the probe removed
    with pytest.raises(FileNotFoundError, match=r"its folder .*/a/b does not exist; create it or choose another -o$"):
        check_can_write([out], "-o", out)  # without make_folders a missing folder is still refused


def test_a_file_where_a_folder_should_be_is_named_in_one_line(tmp_path):
    (tmp_path / "notes.md").write_text("mine")
    for out in (tmp_path / "notes.md" / "v.mp4", tmp_path / "notes.md" / "x" / "y" / "v.mp4"):
        for make_folders in (True, False):
            with pytest.raises(NotADirectoryError, match=rf"^-o {out}: {tmp_path}/notes.md is a file, not a folder; "
                                                         r"choose another -o$"):
                check_can_write([out], "-o", out, make_folders=make_folders)
    assert (tmp_path / "notes.md").read_text() == "mine"


def test_a_folder_that_cannot_be_made_says_where(tmp_path, refused_probe):
    out = tmp_path / "new" / "v.mp4"
    with pytest.raises(OSError, match=rf"^-o {out}: cannot create {tmp_path}/new in {tmp_path} \(it takes no new "
                                      r"files\); choose another -o$"):
        check_can_write([out], "-o", out, make_folders=True)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------- the video's -o
@pytest.mark.parametrize("case", ["folder", "below a file", "takes no file", "new folder takes none"])
def test_the_video_refuses_an_unusable_output_before_rendering(case, tmp_path, no_rendering, request):
    (tmp_path / "adir.mp4").mkdir()
    (tmp_path / "adir.mp4" / "keep.txt").write_text("mine")
    (tmp_path / "README.md").write_text("mine")
    if case.startswith(("takes", "new")):
        request.getfixturevalue("refused_probe")
    out, message = {
        "folder": (tmp_path / "adir.mp4", f"{tmp_path}/adir.mp4 is a folder"),
        "below a file": (tmp_path / "README.md" / "ant.mp4", f"{tmp_path}/README.md is a file, not a folder"),
        "takes no file": (tmp_path / "ant.mp4", f"cannot write in {tmp_path} (it takes no new files)"),
        "new folder takes none": (tmp_path / "videos" / "ant.mp4",
                                  f"cannot create {tmp_path}/videos in {tmp_path} (it takes no new files)"),
    }[case]
    before = snapshot(tmp_path)
    with pytest.raises(OSError) as err:
        record_video("ant_abcd_lr", out, max_env_steps=60)
    assert str(err.value) == f"-o {out}: {message}; choose another -o"
    assert snapshot(tmp_path) == before  # nothing made, moved or lost


def test_the_video_cli_says_one_line_before_rendering(tmp_path, no_rendering, capsys):
    (tmp_path / "adir.mp4").mkdir()
    (tmp_path / "README.md").write_text("mine")
    for out, message in ((tmp_path / "adir.mp4", f"{tmp_path}/adir.mp4 is a folder"),
                         (tmp_path / "README.md" / "ant.mp4", f"{tmp_path}/README.md is a file, not a folder")):
        with pytest.raises(SystemExit) as exc:
            cli_main(["video", "ant_abcd_lr", "--eval-steps", "60", "-o", str(out)])
        assert exc.value.code == 2
        assert one_error_line(capsys) == f"spikehebb video: error: -o {out}: {message}; choose another -o"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "adir.mp4"]
    assert list((tmp_path / "adir.mp4").iterdir()) == [] and (tmp_path / "README.md").read_text() == "mine"


class FakeLifetimes:
    """Just enough of :class:`spikehebb.lifetimes.Lifetimes` for record_video's bookkeeping."""

    class task:
        train_variants = ("default",)

        @staticmethod
        def check_variants(variants):
            pass

    def __init__(self, *args, **kwargs):
        pass

    def env(self, variant):
        return type("Env", (), {"metadata": {"render_fps": 60}})()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def test_the_video_makes_missing_folders_and_replaces_a_video_only_once_whole(tmp_path, monkeypatch):
    def render(lives, variant, episode, every, fps, path):
        path.write_bytes(b"new video")
        return 1.0, 3, 3

    monkeypatch.setattr(spikehebb.video, "Lifetimes", FakeLifetimes)
    monkeypatch.setattr(spikehebb.video, "_render", render)
    out = tmp_path / "videos" / "2026" / "ant.mp4"
    info = record_video("ant_abcd_lr", out)
    assert info.path == out and out.read_bytes() == b"new video"
    assert [p.name for p in out.parent.iterdir()] == ["ant.mp4"]  # no partial file left

    def interrupted(lives, variant, episode, every, fps, path):
        path.write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(spikehebb.video, "_render", interrupted)
    with pytest.raises(KeyboardInterrupt):
        record_video("ant_abcd_lr", out)
    assert out.read_bytes() == b"new video" and [p.name for p in out.parent.iterdir()] == ["ant.mp4"]


# ---------------------------------------------------------------------------------------- a folder as a run file
def test_a_folder_given_as_a_run_file_is_named_as_a_folder(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    for opener in (lambda p: open_checked(p).__enter__(), RunStore.open, lambda p: RunStore.open(p, "a")):
        with pytest.raises(IsADirectoryError, match=rf"^{folder} is a directory, not a spikehebb run file$"):
            opener(folder)
    assert list(tmp_path.iterdir()) == [folder]  # no models.lock left by the writer's attempt


@pytest.mark.parametrize("command", [["inspect"], ["evaluate", "--episodes", "1"]])
def test_the_cli_says_a_folder_is_no_run_file_in_one_line(command, tmp_path, capsys):
    folder = tmp_path / "models"
    folder.mkdir()
    with pytest.raises(SystemExit) as exc:
        cli_main([command[0], str(folder), *command[1:]])
    assert exc.value.code == 2
    assert one_error_line(capsys) == f"spikehebb {command[0]}: error: {folder} is a directory, not a spikehebb run file"


# ---------------------------------------------------------------------------------------- docs
def test_the_docs_trace_writer_snippet_runs_from_a_clean_folder(tmp_path, monkeypatch):
    from spikehebb.tracefile import trace_names

    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "run-file.md").read_text(), flags=re.S)
    (block,) = [b for b in blocks if "TraceWriter(" in b]
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "docs/run-file.md", "exec"), {})
    assert trace_names("runs/my_traces.h5") == ["damage_right/episode_0", "damage_right/episode_1"]
