"""The console entry points (``spikehebb`` and ``experiments/run_<task>.py``), light on purpose.

Python runs these before anything heavy of the package is loaded: the command module pulls in
NumPy, gymnasium, pybullet's and Brian2's wrappers (about half a second). A Ctrl-C in that time
raised ``KeyboardInterrupt`` before the commands' own handler existed, so Python printed its
traceback; here it ends in the same one line and exit code 130 as a Ctrl-C later on. Everything
else is :mod:`spikehebb.cli`'s; this module imports nothing but ``os`` and ``sys``.
"""

from __future__ import annotations

import os
import sys


def _interrupted(prog: str) -> int:
    """The one line of a Ctrl-C before the command's own handler was in place; the shell's 130."""
    print(f"{prog}: interrupted", file=sys.stderr)
    return 130


def main(argv: list[str] | None = None) -> int:
    """``spikehebb``: :func:`spikehebb.cli.main`, with a Ctrl-C during its import caught."""
    try:
        from spikehebb.cli import main as cli_main

        return cli_main(argv)
    except KeyboardInterrupt:
        return _interrupted("spikehebb")


def experiment_main(task: str, description: str, argv: list[str] | None = None, episodes: int = 5) -> None:
    """``experiments/run_<task>.py``: :func:`spikehebb.cli.experiment_main`, with a Ctrl-C during
    its import caught."""
    try:
        from spikehebb.cli import experiment_main as run

        run(task, description, argv, episodes)
    except KeyboardInterrupt:
        sys.exit(_interrupted(os.path.basename(sys.argv[0])))


if __name__ == "__main__":  # python -m spikehebb.console, as the installed command
    sys.exit(main())
