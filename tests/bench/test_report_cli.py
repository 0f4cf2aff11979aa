"""`metanas bench`: raw results round-trip, the report and plots, and CLI errors."""

import gzip
import json
import os

import pytest

from metanas.bench import report
from metanas.cli import main

STRATEGIES = "metanas/evolution,metanas/random,ref/regularized-evolution,optuna/random"


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    code = main(["bench", "--tasks", "nb201/cifar10,hpobench/car", "--strategies", STRATEGIES,
                 "--seeds", "5", "--evals", "12", "--workers", "1", "--output", str(out)])
    assert code == 0
    return out


def test_cli_writes_raw_results_report_and_plots(bench_run):
    results = report.load_results(str(bench_run / "raw.json.gz"))
    assert len(results) == 2 * 4 * 5
    assert {(r["task"], r["strategy"]) for r in results} == {
        (t, s) for t in ("nb201/cifar10", "hpobench/car") for s in STRATEGIES.split(",")}
    assert all(r["regret"] >= 0 and len(r["curve"]) == 12 for r in results)
    text = (bench_run / "report.md").read_text()
    for heading in ("Mean regret of the returned configuration", "simulated training-time budget",
                    "true validation accuracy", "The bar", "Mann–Whitney U",
                    "Oracle overhead per evaluation"):
        assert heading in text
    # One row per task in the main table, and a best peer in the test table.
    assert text.count("| nb201/cifar10 |") >= 3
    assert "| hpobench/car (held out) |" not in text and "| hpobench/car |" in text
    assert "`ref/regularized-evolution`" in text.split("Mann–Whitney U")[1] or \
        "`optuna/random`" in text.split("Mann–Whitney U")[1]
    for name in ("nb201_cifar10.png", "hpobench_car.png"):
        png = bench_run / "plots" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_results_round_trip_and_reuse_gives_identical_results(bench_run, tmp_path, capsys):
    raw = str(bench_run / "raw.json.gz")
    results = report.load_results(raw)
    copy = tmp_path / "copy.json"
    report.save_results(results, str(copy))
    assert report.load_results(str(copy)) == results
    capsys.readouterr()
    assert main(["bench", "--tasks", "nb201/cifar10", "--strategies", "metanas/random",
                 "--seeds", "5", "--evals", "12", "--workers", "1", "--no-plots",
                 "--reuse", raw, "--output", str(tmp_path / "again")]) == 0
    assert "5 runs (5 reused)" in capsys.readouterr().out
    again = report.load_results(str(tmp_path / "again" / "raw.json.gz"))
    assert again == [r for r in results
                     if r["task"] == "nb201/cifar10" and r["strategy"] == "metanas/random"]


def test_significance_and_bar_tables_read_the_numbers():
    runs = []
    for seed in range(6):
        for strategy, regret in (("metanas/evolution", 0.1), ("ref/regularized-evolution", 1.0),
                                 ("metanas/random", 3.0)):
            runs.append({"task": "nb201/cifar10", "strategy": strategy, "seed": seed,
                         "regret": regret + 0.01 * seed})
    table = "\n".join(report.significance_table(runs, ["metanas/evolution"],
                                                ["ref/regularized-evolution"]))
    assert "better p=0.0022*" in table
    bar = "\n".join(report.bar_table(runs))
    assert "| yes | yes |" in bar
    worse = [dict(r, regret=5.0) if r["strategy"] == "metanas/evolution" else r for r in runs]
    assert "| NO | NO |" in "\n".join(report.bar_table(worse))


def test_load_results_rejects_other_files(tmp_path):
    bad = tmp_path / "bad.json.gz"
    with gzip.open(bad, "wt") as f:
        json.dump({"not": "a list"}, f)
    with pytest.raises(ValueError, match="not a benchmark results file"):
        report.load_results(str(bad))
    text = tmp_path / "text.json"
    text.write_text("{")
    with pytest.raises(ValueError, match="not a benchmark results file"):
        report.load_results(str(text))


@pytest.mark.parametrize("argv, message", [
    (["--tasks", "nb201/mnist"], "--tasks: unknown task(s) ['nb201/mnist']"),
    (["--strategies", "kt/hyperband"], "--strategies: unknown strategy(ies) ['kt/hyperband']"),
    (["--seeds", "0"], "--seeds must be >= 1, got 0"),
    (["--evals", "-3"], "--evals must be >= 1, got -3"),
    (["--first-seed", "-1"], "--first-seed must be >= 0, got -1"),
    (["--limit", "kt/bayesian=x"], "--limit 'kt/bayesian=x': expected STRATEGY=SEEDS"),
    (["--multi-objective", "--tasks", "hpobench/car"], "--multi-objective needs NAS-Bench-201"),
    (["--reuse", "/nonexistent/raw.json.gz"], "--reuse: no such file"),
])
def test_cli_errors_are_one_line_and_exit_2(argv, message, capsys, tmp_path):
    code = main(["bench", *argv, "--output", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("metanas bench: error: ") and message in err
    assert err.count("\n") == 1
    assert not os.listdir(tmp_path)


def test_cli_rejects_a_reuse_file_that_is_not_results(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert main(["bench", "--reuse", str(bad), "--output", str(tmp_path / "out")]) == 2
    assert "--reuse:" in capsys.readouterr().err


def test_a_killed_bench_keeps_its_finished_runs_and_the_same_command_resumes(tmp_path, capsys):
    import signal
    import subprocess
    import sys
    import time

    from metanas.bench import run_one
    from metanas.bench.command import PARTIAL_FILE

    out = tmp_path / "out"
    argv = ["bench", "--tasks", "hpobench/car", "--strategies", "optuna/tpe", "--seeds", "20",
            "--evals", "100", "--workers", "1", "--no-plots", "--output", str(out)]
    process = subprocess.Popen([sys.executable, "-m", "metanas", *argv],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = out / PARTIAL_FILE
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if partial.exists() and partial.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    kept = report.load_partial(str(partial))
    assert 2 <= len(kept) < 20 and not (out / "raw.json.gz").exists()

    capsys.readouterr()
    assert main(argv) == 0
    assert f"{len(kept)} kept from an interrupted run" in capsys.readouterr().out
    results = report.load_results(str(out / "raw.json.gz"))
    assert sorted(r["seed"] for r in results) == list(range(20)) and not partial.exists()
    # The kept runs are the runs an uninterrupted search makes.
    for run in kept[:2]:
        again = run_one("hpobench/car", "optuna/tpe", run["seed"], evals=100)
        assert (run["regret"], run["curve"], run["incumbent"]) == (
            again["regret"], again["curve"], again["incumbent"])
