"""experiments/minimal_ant.py, the whole method in one file, runs as a newcomer would run it."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "minimal_ant.py"


def test_minimal_ant_runs_and_reports_each_generation():
    out = subprocess.run([sys.executable, str(SCRIPT), "--popsize", "2", "--generations", "2", "--steps", "20"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith("generation")]
    assert [line.split(":")[0] for line in lines] == ["generation 0", "generation 1"]
    assert len(SCRIPT.read_text().splitlines()) < 150
    bad = subprocess.run([sys.executable, str(SCRIPT), "--popsize", "3"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--popsize must be an even number >= 2 (mirrored pairs), got 3" in bad.stderr
