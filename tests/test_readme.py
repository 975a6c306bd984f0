"""The README's two set-up commands are the ones CI and users run."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(python3 -m venv .*?)\n```", text)


def test_readme_has_exactly_two_setup_commands():
    main, test = readme_commands()
    assert main.endswith("python experiments/run_ant.py")
    assert test.endswith("python -m pytest")


def test_ci_runs_the_readme_test_command_verbatim():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci_lines


def test_the_spikehebb_command_is_installed():
    import shutil
    import subprocess

    exe = shutil.which("spikehebb")
    assert exe is not None, "pip install -e . installs the spikehebb console script (setup.cfg entry_points)"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    assert all(cmd in out for cmd in ("train", "evaluate", "inspect", "plot"))


def test_the_minimal_script_is_as_long_as_the_readme_says():
    """"the whole method in N lines": N is the file's length (it drifted from 88 to 97 unseen)."""
    said = re.search(r"`experiments/minimal_ant.py` is the whole method in (\d+) lines", (ROOT / "README.md").read_text())
    assert said is not None
    assert int(said.group(1)) == len((ROOT / "experiments" / "minimal_ant.py").read_text().splitlines())
