"""Does a rule walk on a damaged body, or only with the damage on the side it trained with?

Each body runs the same test lifetimes twice (those ``spikehebb evaluate`` scores: the same
initial weights and starts): as itself, and through a mirror (:class:`spikehebb.envs.mirror.
MirroredAnt`: the controller senses and drives the body's left-right mirror image, so through the
mirror ``damage_left`` is, to the controller, ``damage_right``, and ``long_front`` is
``long_back``). A rule that learned to walk with a short front leg whatever its side scores the
same both ways; one tied to the side it trained with scores on ``damage_left`` through the mirror
what it scores on ``damage_right`` as itself. Prints the table (mean ± std over the lifetimes,
with the authors' early ends) and writes it with every lifetime's fitness to ``--out`` (JSON).

    python experiments/mirror_ant.py [MODEL] [--variants default damage_right damage_left]
        [--episodes 20] [--batch-size 20] [--out runs/mirror_ant.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from spikehebb.assess import load_run
from spikehebb.envs.mirror import MIRROR_PRESET, MirroredAnt
from spikehebb.lifetimes import Lifetimes, resolve_run


def fitness_of(run: str, variants: list[str], episodes: int, mirrored: bool, batch_size: int) -> dict[str, list[float]]:
    """Each variant's test lifetimes 0 .. episodes-1, as itself or through the mirror (the
    rollout lives them ``batch_size`` at a time, refilling each slot as its lifetime ends)."""
    with Lifetimes(run, batch_size=batch_size, wrap_env=MirroredAnt if mirrored else None) as lives:
        return {variant: lives.run(variant, range(episodes)).fitness.tolist() for variant in variants}


def table(run: str, variants: list[str], plain: dict, mirrored: dict) -> str:
    """The Markdown table: per body, as itself, through the mirror, and the mirror's body."""
    cell = lambda f: f"{np.mean(f):.0f} ± {np.std(f):.0f}"  # noqa: E731
    lines = [f"| body ({run}) | as itself | through the mirror | the mirror's body |", "| --- | ---: | ---: | --- |"]
    for variant in variants:
        lines.append(f"| `{variant}` | {cell(plain[variant])} | {cell(mirrored[variant])} | `{MIRROR_PRESET[variant]}` |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", nargs="?", default="ant_abcd_lr", help="run file or model name (default: %(default)s)")
    parser.add_argument("--variants", nargs="+", default=["default", "damage_right", "damage_left"],
                        help=f"bodies, each with a mirror preset: {', '.join(MIRROR_PRESET)} (default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=20, help="test lifetimes per body and way (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=20, help="lifetimes stepped together (default: %(default)s)")
    parser.add_argument("--out", help="JSON of the table and every lifetime's fitness (default: none)")
    args = parser.parse_args(argv)
    try:
        if args.episodes < 1 or args.batch_size < 1:
            raise ValueError(f"--episodes and --batch-size must be positive, got {args.episodes} and {args.batch_size}")
        config, _ = load_run(resolve_run(args.model))
        if config.task.name != "ant":
            raise ValueError(f"{args.model} is a {config.task.name} run: the mirror is the Ant's")
        config.task.make().check_variants(args.variants)
        unmirrored = [v for v in args.variants if v not in MIRROR_PRESET]
        if unmirrored:
            raise ValueError(f"no preset is the mirror image of {', '.join(unmirrored)}; "
                             f"the bodies with one: {', '.join(MIRROR_PRESET)}")
    except (ValueError, OSError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")

    start = time.perf_counter()
    batch = min(args.batch_size, args.episodes)
    plain = fitness_of(args.model, args.variants, args.episodes, False, batch)
    mirrored = fitness_of(args.model, args.variants, args.episodes, True, batch)
    text = table(args.model, args.variants, plain, mirrored)
    print(f"{args.model}: {args.episodes} test lifetimes per body and way ({time.perf_counter() - start:.0f} s)")
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(dict(model=str(args.model), episodes=args.episodes, table=text,
                                                  plain=plain, mirrored=mirrored), indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
