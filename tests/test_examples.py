"""The examples run as a user runs them (tiny budgets)."""

import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow
@pytest.mark.parametrize("script", ["kerastuner_evolution.py", "kerastuner_random_search.py"])
def test_example_runs(script, tmp_path):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--max-trials", "2", "--epochs", "1",
         "--directory", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "best" in result.stdout
    trials = list(tmp_path.glob("*/trial_*/trial.json"))
    assert len(trials) == 2
