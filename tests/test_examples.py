"""The examples run as a user runs them (tiny budgets)."""

import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


AUTOKERAS = [
    # (script, extra arguments): one per AutoKeras task, --quick = a few hundred rows.
    ("autokeras_image.py", ["--task", "classifier", "--tuner", "evolution"]),
    ("autokeras_image.py", ["--task", "regressor", "--tuner", "metanas-random"]),
    ("autokeras_text.py", ["--task", "classifier", "--tuner", "rl"]),
    ("autokeras_text.py", ["--task", "regressor", "--tuner", "evolution"]),
    ("autokeras_structured.py", ["--task", "classifier", "--tuner", "rl"]),
    ("autokeras_structured.py", ["--task", "regressor", "--tuner", "evolution"]),
    ("autokeras_multi_io.py", ["--tuner", "evolution"]),
    ("autokeras_cell_space.py", ["--tuner", "evolution"]),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    "script,extra",
    [("kerastuner_evolution.py", []), ("kerastuner_random_search.py", [])]
    + [(script, extra + ["--quick"]) for script, extra in AUTOKERAS],
    ids=lambda value: " ".join(value) if isinstance(value, list) else value,
)
def test_example_runs(script, extra, tmp_path):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--max-trials", "2", "--epochs", "1",
         "--directory", str(tmp_path), *extra],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "best" in result.stdout
    trials = list(tmp_path.glob("*/trial_*/trial.json"))
    assert len(trials) == 2
