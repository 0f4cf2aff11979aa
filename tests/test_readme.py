"""The README's Python examples run as written, in order, on smaller budgets."""

import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"

#: Budgets shrunk so that the examples run in minutes: (pattern, replacement).
SMALLER = [
    (r"\bmax_trials=\d+", "max_trials=2"),
    (r"\bepochs=\d+", "epochs=1"),
]

#: What the examples take from the reader's own session.
PREAMBLE = """\
import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
"""

#: Defined by the reader between two examples ("a new, similar dataset").
BETWEEN = {"x_b": "x_b, y_b = x[::2], y[::2]\n"}


def python_blocks(text: str):
    """The ```python fenced blocks of ``text``, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def readme_script() -> str:
    parts = [PREAMBLE]
    for block in python_blocks(README.read_text()):
        for name, definition in BETWEEN.items():
            if re.search(rf"\b{name}\b", block) and definition not in parts:
                parts.append(definition)
        for pattern, replacement in SMALLER:
            block = re.sub(pattern, replacement, block)
        parts.append(block)
    parts.append('print("README examples ran")\n')
    return "\n".join(parts)


def command_lines(text: str):
    """The README's ``metanas ...`` command lines (continuations joined, comments cut)."""
    text = re.sub(r"\\\n\s*", " ", text)
    lines = []
    for line in text.splitlines():
        found = re.match(r"^\s{4,}(?:\.venv/bin/)?metanas (.*)$", line)
        if found:  # placeholders filled in as a reader would: <a thing>, [--optional URI]
            line = re.sub(r"<[^>]+>", "runs/project", found.group(1))
            line = re.sub(r"\[([^\]]+)\]", r"\1", line).replace(" URI", " sqlite:///mlflow.db")
            lines.append(shlex.split(line, comments=True))
    return lines


def test_every_readme_command_line_parses() -> None:
    from metanas.cli import build_parser

    commands = command_lines(README.read_text())
    assert {words[0] for words in commands} >= {"ui", "tracking", "meta-train", "recommend",
                                                  "bench"}
    parser = build_parser()
    for words in commands:
        try:
            parser.parse_args(words)
        except SystemExit as stop:
            raise AssertionError(f"README: metanas {' '.join(words)}") from stop


def test_the_readme_has_its_quick_starts() -> None:
    blocks = python_blocks(README.read_text())
    # KerasTuner, RL controller, AutoKeras, cell space, objectives, meta-layer, transfer.
    assert len(blocks) >= 7
    script = readme_script()
    assert "max_trials=30" not in script and "max_trials=2" in script


@pytest.mark.slow
def test_the_readme_examples_run_as_written(tmp_path) -> None:
    script = tmp_path / "readme_examples.py"
    script.write_text(readme_script())
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/mlflow.db")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "README examples ran" in result.stdout
    # Every search of the README left its trials (2 each): KerasTuner's evolution and
    # RL controller, AutoKeras's image classifier, the constrained and NSGA-II searches
    # and the MetaTuner.
    searched = {path.parent.parent.name for path in tmp_path.rglob("trial_*/trial.json")}
    wanted = {"digits", "digits_rl", "image_classifier", "small", "pareto", "my-data"}
    assert wanted <= searched, searched
    assert (tmp_path / "meta.db").exists()
