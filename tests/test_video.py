"""Videos of a lifetime: one frame per step (or per `every` steps), real frames with the text band,
the lifetime `evaluate` scores, both tasks, both formats, and one-line errors for bad input."""

import imageio.v3 as iio
import numpy as np
import pytest

from spikehebb.assess import assess, load_run
from spikehebb.cli import main as cli_main
from spikehebb.train import TrainConfig, train
from spikehebb.video import annotate, record_video


def tiny_run(directory, task):
    config = TrainConfig.from_dict(dict(
        task=task, popsize=2, generations=1, max_env_steps=60 if task == "ant" else 30,
        train_variants=("default",), batch_size=2, evaluator="serial", runs_dir=str(directory),
        run_name=f"tiny_{task}", backend="numpy",
    ))
    return train(config, progress=False)


@pytest.fixture(scope="module")
def ant_run(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("ant"), "ant")


def check_frames(frames, shape):
    assert frames.shape[1:] == shape
    for frame in frames:
        assert frame.std() > 10, "a blank frame"
        # the text band: the top rows are darker than the scene below them
        assert frame[:8].mean() < frame[40:].mean() - 30
    assert np.abs(np.diff(frames.astype(float), axis=0)).mean() > 0, "the frames never change"


def test_ant_mp4_has_one_frame_per_step_and_the_evaluated_lifetime(ant_run, tmp_path):
    info = record_video(ant_run, tmp_path / "ant.mp4", "damage_left", max_env_steps=100)
    assert info.steps == 60 and info.frames == 60 and info.fps == 60 and info.variant == "damage_left"
    frames = iio.imread(info.path)
    assert len(frames) == 60
    check_frames(frames, (240, 320, 3))
    # episode 0 of the video is episode 0 of `evaluate`: the same fitness
    config, params = load_run(ant_run)
    (result,) = assess(config, params, ["damage_left"], episodes=1, max_env_steps=100)
    assert info.fitness == pytest.approx(result.fitness[0], rel=1e-6)


def test_gif_takes_every_third_step_and_plays_in_real_time(ant_run, tmp_path):
    from PIL import Image

    info = record_video(ant_run, tmp_path / "ant.gif", max_env_steps=61)
    assert info.steps == 21 and info.frames == 7 and info.fps == 20 and info.variant == "default"
    frames = iio.imread(info.path)
    assert frames.shape[0] == 7
    check_frames(frames[..., :3], (240, 320, 3))
    with Image.open(info.path) as gif:
        assert gif.info["duration"] == 50  # ms, whole hundredths: 3 steps of 1/60 s each
    # a rate a GIF cannot hold is rounded to whole hundredths, and the rate written is reported
    info = record_video(ant_run, tmp_path / "fast.gif", max_env_steps=45, every=2)
    assert info.fps == pytest.approx(100 / 3)  # 30 fps asked by real time; 3/100 s per frame stored


@pytest.mark.slow
def test_a_video_stopped_midway_leaves_the_earlier_one_whole_and_no_partial_file(ant_run, tmp_path, monkeypatch):
    import spikehebb.video

    out = tmp_path / "ant.gif"
    record_video(ant_run, out, max_env_steps=50)
    before = out.read_bytes()
    calls = []
    real = spikehebb.video.annotate

    def interrupted(frame, text):
        calls.append(text)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(frame, text)

    monkeypatch.setattr(spikehebb.video, "annotate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        record_video(ant_run, out, max_env_steps=50)
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["ant.gif"]


@pytest.mark.slow
def test_car_video(tmp_path):
    info = record_video(tiny_run(tmp_path, "car"), tmp_path / "car.mp4", "push_left", max_env_steps=12)
    frames = iio.imread(info.path)
    assert info.steps == 12 and len(frames) == 12 and info.fps == 50
    check_frames(frames, (400, 600, 3))


def test_annotate_draws_on_a_copy():
    frame = np.full((240, 320, 3), 200, np.uint8)
    out = annotate(frame, "default  step 1  fitness 0.0")
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert np.all(frame == 200) and out[:8].mean() < 120 and np.all(out[60:] == 200)
    assert out[:16].max() > 200  # white letters on the band


@pytest.mark.parametrize("every", [2.5, True, 0, np.int64(0)])
def test_every_must_be_a_whole_number_of_steps(ant_run, tmp_path, every):
    """every=2.5 took frames at steps 0, 5, 10 (t % 2.5 == 0) but set 60 / 2.5 = 24 fps: twice real time."""
    with pytest.raises(ValueError) as err:
        record_video(ant_run, tmp_path / "x.mp4", every=every)
    assert str(err.value) == f"every must be a positive integer (one frame per this many network steps), got {every!r}"
    assert list(tmp_path.iterdir()) == []


def test_the_pillow_that_annotate_needs_is_declared():
    """annotate's ImageFont.load_default(size=...) is Pillow 10.1's; nothing declared Pillow."""
    import configparser
    import importlib.metadata
    from pathlib import Path

    from packaging.requirements import Requirement

    setup = configparser.ConfigParser()
    setup.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    lines = [l for l in setup["options"]["install_requires"].splitlines() if l.strip() and not l.strip().startswith("#")]
    (pillow,) = [r for r in map(Requirement, lines) if r.name.lower() == "pillow"]
    assert "10.0.1" not in pillow.specifier and "10.1.0" in pillow.specifier
    assert importlib.metadata.version("pillow") in pillow.specifier


@pytest.mark.parametrize(
    "args, message",
    [
        (["RUN", "-o", "x.avi"], "output must end in .mp4 or .gif"),
        (["RUN", "-o", "x.mp4", "--variant", "three_legs"], "unknown ant variant"),
        (["RUN", "-o", "x.mp4", "--every", "0"], "every must be a positive"),
        (["no_such_model", "-o", "x.mp4"], "expected a run file (.h5) or the name of a model"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(ant_run, tmp_path, capsys, args, message):
    args = [str(ant_run) if a == "RUN" else str(tmp_path / a) if a.startswith("x.") else a for a in args]
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["video", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
