"""Videos of one test lifetime (``spikehebb video``): the env's ``rgb_array`` frames, rendered
headless, with the variant, the network step and the fitness so far written on each frame.

Encoding is imageio's: ``.mp4`` through its ffmpeg plugin (H.264, the binary ships with the
``imageio-ffmpeg`` package), ``.gif`` through Pillow. Frames are written as they come, so a
lifetime of any length needs the memory of one frame.

Frame sizes: the ant 320x240 (pyBullet's TinyRenderer, camera following the torso), the car
600x400 (CarRacing's video frame). One frame per ``every`` network steps, played at the env's
real time by default (the ant: 60 frames per second of 0.0165 s steps; the car: 50).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spikehebb.checks import is_integer
from spikehebb.lifetimes import Lifetimes
from spikehebb.store.transaction import check_can_write, whole_file

#: Output formats by suffix.
FORMATS = (".mp4", ".gif")
#: Frames per second the GIF format can play back reliably: its delays are in 1/100 s, and
#: browsers stretch delays under 2/100 s to 1/10 s.
GIF_MAX_FPS = 50
BAND_COLOUR = (0, 0, 0, 160)  # RGBA of the text band at the top of each frame
TEXT_COLOUR = (255, 255, 255)


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`record_video` wrote."""

    path: Path
    frames: int
    steps: int
    """Network steps of the lifetime."""
    fitness: float
    """The lifetime's fitness (the task's; see :func:`spikehebb.assess.assess`)."""
    fps: float
    variant: str


def annotate(frame: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``frame`` ``(H, W, 3)`` uint8 with ``text`` on a dark band along its top."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)).convert("RGBA")
    size = max(10, image.height // 20)
    font = ImageFont.load_default(size=size)
    band = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(band)
    draw.rectangle((0, 0, image.width, int(size * 1.6)), fill=BAND_COLOUR)
    draw.text((4, int(size * 0.3)), text, font=font, fill=TEXT_COLOUR)
    return np.asarray(Image.alpha_composite(image, band).convert("RGB"))


def _writer(path: Path, fps: float):
    import imageio.v2 as imageio

    if path.suffix == ".gif":
        return imageio.get_writer(path, mode="I", duration=1000.0 / fps, loop=0)
    # macro_block_size=1: keep the frame size (both renderers give even sizes, as H.264 needs).
    return imageio.get_writer(path, fps=fps, codec="libx264", quality=7, macro_block_size=1)


def record_video(
    run: str | Path,
    output: str | Path,
    variant: str | None = None,
    *,
    episode: int = 0,
    which: str = "mean",
    max_env_steps: int | None = None,
    every: int | None = None,
    fps: float | None = None,
) -> VideoInfo:
    """Render test episode ``episode`` of ``variant`` (default: the task's first training
    variant) of a run file or shipped model into ``output`` (``.mp4`` or ``.gif``).

    every: one frame per ``every`` network steps, an integer >= 1 (default 1 for mp4, 3 for gif); fps: playback
    rate (default: real time, the env's ``render_fps / every``, at most 50 for a GIF). A GIF
    stores each frame's delay in hundredths of a second, so its rate is the nearest 100 / n
    (the ant's 60 / 3 = 20 fps and the car's 50 / 3 are exact); the rate written is returned.

    ``output``'s missing folders are made. Before any rendering, an ``output`` that cannot be
    written (a folder, below a file, in a folder that cannot be made or takes no file) is a
    one-line OSError; a video already at ``output`` is replaced only once the new one is whole.
    """
    output = Path(output)
    if output.suffix not in FORMATS:
        raise ValueError(f"output must end in {' or '.join(FORMATS)}, got {output.name!r}")
    # Said now, not after minutes of rendering: a folder in the video's place, a file where a
    # folder should be, a folder that cannot be made or takes no file (ffmpeg would only say
    # "Broken pipe" at the end). Creates nothing; the folder is made just before writing.
    check_can_write([output], "-o", output, make_folders=True)
    if every is None:
        every = 3 if output.suffix == ".gif" else 1
    if not (is_integer(every) and every >= 1):  # 2.5 would take frames at 0, 5, 10 but play at 60 / 2.5 fps
        raise ValueError(f"every must be a positive integer (one frame per this many network steps), got {every!r}")
    if episode < 0:
        raise ValueError(f"episode must be a non-negative index, got {episode}")
    if fps is not None and not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    with Lifetimes(run, which, render=True, max_env_steps=max_env_steps) as lives:
        variant = variant or lives.task.train_variants[0]
        lives.task.check_variants([variant])
        if fps is None:
            fps = lives.env(variant).metadata.get("render_fps", 30) / every
            if output.suffix == ".gif":
                fps = min(fps, GIF_MAX_FPS)
        if output.suffix == ".gif":
            fps = 100 / max(100 / GIF_MAX_FPS, round(100 / fps))  # whole hundredths of a second per frame
        output.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the output and renamed over it once whole: an error or Ctrl-C midway leaves
        # neither a truncated video nor an earlier one lost.
        with whole_file(output, "write the video") as partial:
            fitness, steps, frames = _render(lives, variant, episode, every, fps, partial)
    return VideoInfo(output, frames, steps, fitness, float(fps), variant)


def _render(lives, variant: str, episode: int, every: int, fps: float, path: Path):
    """Render the lifetime into ``path``; returns (fitness, network steps, frames written)."""
    label = lives.label
    fitness, frames = 0.0, 0
    with _writer(path, fps) as writer:


        def on_step(t, controller, actions, infos):
            nonlocal fitness, frames
            if infos[0] is None:
                return
            fitness += lives.fitness_term(infos[0])
            if t % every == 0:
                text = f"{variant}  {label}  step {t + 1}  fitness {fitness:.1f}"
                writer.append_data(annotate(lives.frame(variant), text))
                frames += 1

        result = lives.run(variant, [episode], on_step)
    return float(result.fitness[0]), int(result.steps[0]), frames
