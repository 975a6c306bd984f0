"""Tiny runs give the numbers recorded before the agents-as-plug-ins refactor, bit for bit.

The fixture (``tests/fixtures/tiny_runs.npz``) was written by ``tests/fixtures/record_tiny_runs.py``
on the code before the refactor: Hebbian (Brian2 and NumPy), static, co-evolved, AD_lr with
CMA-ES, float64, and the car (Hebbian and static). Each case trains, then tests the final mean.
They are meant to hold on any machine (docs/design.md, "Across machines"); the CMA case's float64
mean, which comes out of cma's own update, is held to its float32 rounding and its head to 1e-12
(``record.LAST_BIT_CASES``).
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).with_name("fixtures")
_spec = importlib.util.spec_from_file_location("record_tiny_runs", FIXTURES / "record_tiny_runs.py")
record = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(record)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(record.CASES))
def test_tiny_run_numbers_are_unchanged(tmp_path, case):
    expected = np.load(FIXTURES / "tiny_runs.npz")
    got = record.run_case(case, str(tmp_path))
    keys = sorted(k.split("/", 1)[1] for k in expected.files if k.startswith(case + "/"))
    assert keys == sorted(got)
    for key in keys:
        if case in record.LAST_BIT_CASES and key == "mean_head":
            np.testing.assert_allclose(got[key], expected[f"{case}/{key}"], rtol=1e-12, atol=0, err_msg=f"{case}: {key}")
        else:
            np.testing.assert_array_equal(got[key], expected[f"{case}/{key}"], err_msg=f"{case}: {key}")
