"""`metanas bench`: raw results round-trip, the report and plots, and CLI errors."""

import gzip
import json
import os

import numpy as np
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


def test_holm_adjusts_as_the_step_down_procedure_does():
    # Sorted 0.005, 0.01, 0.03, 0.04: x4, x3, x2, x1, each at least the one before.
    assert report.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert report.holm([0.5, 0.9]) == [1.0, 1.0] and report.holm([]) == []
    # A NaN (a test of NaN scores) counts as 1, wherever it stands.
    for p in ([0.001, float("nan"), 0.002], [float("nan"), 0.001, 0.002]):
        adjusted = report.holm(p)
        assert sorted(adjusted) == pytest.approx([0.003, 0.004, 1.0])


def test_the_hypervolume_table_reads_the_means(monkeypatch):
    from metanas.bench import hypervolume

    monkeypatch.setattr(hypervolume, "best_hypervolume", lambda task: 0.99)
    runs = [{"task": "nb201/cifar10", "strategy": strategy, "seed": seed, "hypervolume": value}
            for strategy, values in (("metanas/evolution-nsga2", (0.98, 0.99)),
                                     ("optuna/nsga2", (0.96, 0.97)))
            for seed, value in enumerate(values)]
    assert report.hypervolume_table(runs, ["metanas/evolution-nsga2", "optuna/nsga2"])[2] == (
        "| nb201/cifar10 | 0.9900 | **0.9850 ± 0.0050** | 0.9650 ± 0.0050 |")


def test_the_median_table_is_not_moved_by_one_diverged_seed():
    runs = [{"task": "hpolib/naval_propulsion", "strategy": strategy, "seed": seed,
             "regret": regret}
            for strategy, regrets in (("metanas/evolution", (1e-5, 2e-5, 3e-5, 0.25)),
                                      ("optuna/tpe", (4e-5, 5e-5, 6e-5, 7e-5)))
            for seed, regret in enumerate(regrets)]
    order = ["metanas/evolution", "optuna/tpe"]
    assert report.main_table(runs, order)[2].endswith("| **5.5e-05 ± 6.45e-06** |")
    assert report.median_table(runs, order)[2] == (
        "| hpolib/naval_propulsion | **2.5e-05** | 5.5e-05 |")


def test_the_plot_band_is_a_95_percent_t_interval():
    # It was 1.96 standard errors: 91% coverage at 5 seeds, 94% at 20.
    curves = np.array([[1.0, 2.0], [3.0, 2.0], [2.0, 2.0], [4.0, 2.0], [0.0, 2.0]])
    half = report.band_half_width(curves)
    assert half[0] == pytest.approx(2.776445 * np.std(curves[:, 0], ddof=1) / np.sqrt(5))
    assert half[1] == 0.0
    assert report.band_half_width(curves[:1]).tolist() == [0.0, 0.0]


def test_a_single_run_is_not_bold_as_the_best():
    # keras-tuner's Bayesian optimisation has one seed per task: one lucky run was
    # bold as the task's best over strategies measured on 20 seeds.
    runs = [{"task": "hpobench/car", "strategy": strategy, "seed": seed, "regret": regret}
            for strategy, regrets in (("metanas/evolution", (0.2, 0.4)),
                                      ("kt/bayesian", (0.1,)))
            for seed, regret in enumerate(regrets)]
    order = ["metanas/evolution", "kt/bayesian"]
    assert report.main_table(runs, order)[2] == (
        "| hpobench/car | **0.3 ± 0.1** | 0.1 ± 0 |")
    alone = [run for run in runs if run["strategy"] == "kt/bayesian"]
    assert report.main_table(alone, order)[2] == "| hpobench/car | **0.1 ± 0** |"


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
    # A p just under 0.05 is not printed as a starred "0.05".
    close = [{"task": "nb201/cifar10", "strategy": strategy, "seed": seed, "regret": regret}
             for strategy, regrets in (("metanas/evolution", (3, 5, 14, 16, 17, 25, 28, 35)),
                                       ("ref/regularized-evolution",
                                        (13, 22, 27, 31, 34, 39, 40, 41)))
             for seed, regret in enumerate(regrets)]
    table = "\n".join(report.significance_table(close, ["metanas/evolution"],
                                                ["ref/regularized-evolution"]))
    assert "better p=0.0499*" in table
    # Better or worse is the side the test finds, not the means: one diverged seed of
    # ten moves evolution's mean behind the reference's, not its ranks.
    diverged = [{"task": "nb201/cifar10", "strategy": strategy, "seed": seed,
                 "regret": regret(seed)}
                for strategy, regret in (
                    ("metanas/evolution", lambda seed: 30.0 if seed == 9 else 0.1 + 0.01 * seed),
                    ("ref/regularized-evolution", lambda seed: 1.0 + 0.01 * seed))
                for seed in range(10)]
    means = report.group(diverged, "regret")
    assert np.mean(means[("nb201/cifar10", "metanas/evolution")]) > 1.1  # behind in mean
    rows = report.significance_table(diverged, ["metanas/evolution"],
                                     ["ref/regularized-evolution"])
    assert rows[2].startswith("| nb201/cifar10 | `ref/regularized-evolution` | better p=")
    # Holm's correction over the table's tests: 0.0022 (x 3) survives, 0.0499 (x 2) does not.
    three = [r for r in runs if r["strategy"] != "metanas/random"] + [
        dict(r, task=task) for task in ("nb201/cifar100", "nb201/imagenet") for r in close]
    rows = report.significance_table(three, ["metanas/evolution"], ["ref/regularized-evolution"])
    assert [row.split(" | ")[2].rstrip(" |") for row in rows[2:]] == [
        "better p=0.0022*†", "better p=0.0499*", "better p=0.0499*"]
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
    (["--first-seed", "-1"], "--first-seed must be in 0..4294967295, got -1"),
    (["--limit", "kt/bayesian=x"], "--limit 'kt/bayesian=x': expected STRATEGY=SEEDS"),
    (["--multi-objective", "--tasks", "hpobench/car"], "--multi-objective needs NAS-Bench-201"),
    (["--reuse", "/nonexistent/raw.json.gz"], "--reuse: no such file"),
    (["--reuse", "/"], "--reuse: '/' is a directory, not a results file"),
    (["--tasks", "hpobench/car,hpobench/car"], "--tasks: hpobench/car given more than once"),
    (["--strategies", "optuna/tpe,optuna/tpe"], "--strategies: optuna/tpe given more than once"),
    (["--first-seed", "4294967295"], "--first-seed + --seeds - 1 must be <= 4294967295"),
    (["--first-seed", "4294967296", "--seeds", "1"], "--first-seed must be in 0..4294967295"),
    (["--limit", "optuna/tpe=\u00b2"], "expected STRATEGY=SEEDS"),
    (["--limit", "optuna/tpe=2@"], "after @, at least one task"),
    (["--limit", "optuna/tpe=2@nb201/foo"], "--limit 'optuna/tpe=2@nb201/foo': unknown task"),
    (["--tasks", "hpobench/car", "--limit", "optuna/tpe=2@nb201/cifar10"],
     "nb201/cifar10 not among the tasks being run"),
    (["--limit", "optuna/tpe=2", "--limit", "optuna/tpe=3"], "optuna/tpe is limited more than once"),
    (["--strategies", "optuna/tpe,kt/random", "--limit", "nope=1"],
     "('nope' is not one of the strategies being run: optuna/tpe, kt/random)"),
    (["--strategy-module", "no_such_module_xyz"],
     "--strategy-module: cannot import the strategy module 'no_such_module_xyz'"),
    # Was a traceback, with exit status 1.
    (["--first-seed", "4294967295", "--seeds", "1", "--limit", "optuna/random=2"],
     "--first-seed + the seeds of --limit optuna/random - 1 must be <= 4294967295"),
])
def test_cli_errors_are_one_line_and_exit_2(argv, message, capsys, tmp_path):
    code = main(["bench", *argv, "--output", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("metanas bench: error: ") and message in err
    assert err.count("\n") == 1
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("content", [b"[1, 2]", b"\x1f\x8b", b"\x1f\x8b\x08\x00garbage"])
def test_cli_rejects_a_reuse_file_that_is_not_results(capsys, tmp_path, content):
    bad = tmp_path / "bad.json.gz"  # a list, a truncated gzip, a corrupt one
    bad.write_bytes(gzip.compress(content) if content.startswith(b"[") else content)
    assert main(["bench", "--reuse", str(bad), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "--reuse:" in err and "not a benchmark results file" in err and err.count("\n") == 1


def test_groups_may_be_listed_with_names():
    from metanas.bench import HELD_OUT_TASKS, STRATEGIES, TUNING_TASKS
    from metanas.bench.command import resolve_strategies, resolve_tasks

    assert resolve_tasks("tuning, nb201/imagenet") == [*TUNING_TASKS, "nb201/imagenet"]
    assert resolve_tasks(" held-out") == list(HELD_OUT_TASKS)
    assert resolve_strategies(" all ", False) == list(STRATEGIES)
    with pytest.raises(ValueError, match="nb201/cifar10 given more than once"):
        resolve_tasks("tuning,nb201/cifar10")


def test_results_are_replaced_whole(tmp_path, monkeypatch):
    path = tmp_path / "raw.json.gz"
    report.save_results([{"task": "t", "strategy": "s", "seed": 0}], str(path))

    def killed(*args, **kwargs):  # the process dies in the middle of writing
        raise KeyboardInterrupt

    monkeypatch.setattr(report.json, "dump", killed)
    with pytest.raises(KeyboardInterrupt):
        report.save_results([{"task": "t", "strategy": "s", "seed": 1}], str(path))
    assert report.load_results(str(path)) == [{"task": "t", "strategy": "s", "seed": 0}]
    assert os.listdir(tmp_path) == ["raw.json.gz"]


def test_finished_runs_another_command_kept_are_not_deleted(tmp_path, capsys):
    from metanas.bench import run_one
    from metanas.bench.command import PARTIAL_FILE

    out = tmp_path / "out"
    out.mkdir()
    # An interrupted command (seeds 0-2) kept two finished runs.
    earlier = [run_one("hpobench/car", "metanas/random", seed, evals=10) for seed in (0, 2)]
    for run in [dict(earlier[0], strategy_version=0)] + earlier:  # and an old version's
        report.append_partial(str(out / PARTIAL_FILE), run)
    argv = ["bench", "--tasks", "hpobench/car", "--strategies", "metanas/random", "--seeds", "1",
            "--evals", "10", "--workers", "1", "--no-plots", "--output", str(out)]
    assert main(argv) == 0  # another command, seed 0 only: it takes seed 0's run
    assert "1 kept from an interrupted run" in capsys.readouterr().out
    # Seed 2's stays; seed 0's of an earlier version of the strategy would run again.
    assert report.load_partial(str(out / PARTIAL_FILE)) == [earlier[1]]
    assert main([*argv[:6], "3", *argv[7:]]) == 0  # the first command again: seeds 0-2
    assert "1 kept from an interrupted run" in capsys.readouterr().out
    results = report.load_results(str(out / "raw.json.gz"))
    assert [r["seed"] for r in results] == [0, 1, 2] and results[2] == earlier[1]
    assert not (out / PARTIAL_FILE).exists()


def _wait_for_runs(process, partial, runs: int) -> None:
    """Until ``process`` has kept ``runs`` finished runs in ``partial`` (or ended)."""
    import time

    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if partial.exists() and partial.read_text().count("\n") >= runs:
            return
        time.sleep(0.05)


def test_a_killed_bench_keeps_its_finished_runs_and_the_same_command_resumes(tmp_path, capsys):
    import signal
    import subprocess
    import sys

    from metanas.bench import run_one
    from metanas.bench.command import PARTIAL_FILE

    out = tmp_path / "out"
    argv = ["bench", "--tasks", "hpobench/car", "--strategies", "optuna/tpe", "--seeds", "20",
            "--evals", "100", "--workers", "1", "--no-plots", "--output", str(out)]
    process = subprocess.Popen([sys.executable, "-m", "metanas", *argv],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = out / PARTIAL_FILE
    _wait_for_runs(process, partial, 2)
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


def test_a_bench_stopped_while_it_writes_its_report_goes_on_from_its_runs(
        tmp_path, capsys, monkeypatch):
    # Was: the finished runs left the partial file once raw.json.gz held them,
    # before the report was made; a Ctrl-C then said "0 finished run(s) kept"
    # and the same command ran them all again.
    from metanas.bench.command import PARTIAL_FILE

    out = tmp_path / "out"
    (out / "report.md").parent.mkdir()
    (out / "report.md").write_text("an earlier report\n")
    argv = ["bench", "--tasks", "hpobench/car", "--strategies", "optuna/tpe", "--seeds", "3",
            "--evals", "5", "--workers", "1", "--no-plots", "--output", str(out)]
    main_table = report.main_table

    def stopped(*args, **kwargs):  # Ctrl-C while the report is made
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "main_table", stopped)
    assert main(argv) == 130
    partial = out / PARTIAL_FILE
    assert f"interrupted; 3 finished run(s) kept in {partial}" in capsys.readouterr().err
    assert (out / "report.md").read_text() == "an earlier report\n"
    monkeypatch.setattr(report, "main_table", main_table)
    assert main(argv) == 0
    assert "3 runs (3 reused, 3 kept from an interrupted run" in capsys.readouterr().out
    written = (out / "report.md").read_text()
    assert not partial.exists() and "optuna/tpe" in written
    # Tables with nothing to show say why (were a header and no row).
    assert "No rows: it needs runs of metanas/evolution, ref/regularized-evolution" in written
    assert "No rows: it needs runs of a metanas strategy and of a peer with >= 5 seeds" in written


STRATEGY_MODULE = '''
import optuna

from metanas.bench import Strategy, register_strategy


def make(*, seed):
    return optuna.samplers.RandomSampler(seed=seed + 1000)


register_strategy(Strategy("mine/random", "optuna", make, True, "a user's own"))
'''


def test_a_users_strategy_module_runs_in_every_worker_and_is_tested_as_metanas(
        tmp_path, monkeypatch, capsys):
    import sys

    from metanas.bench import STRATEGIES

    (tmp_path / "mine_strategies.py").write_text(STRATEGY_MODULE)
    monkeypatch.chdir(tmp_path)  # found in the working directory, as `python -m` would
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        out = tmp_path / "out"
        assert main(["bench", "--tasks", "hpobench/car", "--strategies", "mine/random,optuna/random",
                     "--seeds", "5", "--evals", "10", "--workers", "2", "--no-plots",
                     "--strategy-module", "mine_strategies", "--output", str(out)]) == 0
        results = report.load_results(str(out / "raw.json.gz"))
        assert sorted({r["strategy"] for r in results}) == ["mine/random", "optuna/random"]
        assert len(results) == 10
        tests = (out / "report.md").read_text().split("Mann–Whitney U")[1]
        assert "`mine/random`" in tests.split("### Oracle overhead")[0]  # tested, as metanas
    finally:
        STRATEGIES.pop("mine/random", None)
        sys.modules.pop("mine_strategies", None)


def test_a_strategy_whose_make_returns_no_oracle_is_one_line_and_exit_2(tmp_path, capsys):
    from metanas.bench import STRATEGIES, Strategy, register_strategy

    def make(*, objective, max_trials, seed):
        return "notanoracle"

    def make_sampler(*, seed):
        from metanas.tuners import RandomSearchOracle

        return RandomSearchOracle()

    def make_raising(*, seed):  # was a traceback, with exit status 1
        raise RuntimeError("no sampler today")

    register_strategy(Strategy("mine/bad", "keras-tuner", make, True, "a mistake"))
    register_strategy(Strategy("mine/bad-optuna", "optuna", make_sampler, True, "another"))
    register_strategy(Strategy("mine/raising", "optuna", make_raising, True, "a third"))
    try:
        for name, expected in (("mine/bad", "make returned str 'notanoracle', expected a "
                                            "keras_tuner Oracle"),
                               ("mine/bad-optuna", "make returned RandomSearchOracle"),
                               ("mine/raising", "make raised RuntimeError: no sampler today; "
                                                "no run had finished")):
            assert main(["bench", "--tasks", "hpobench/car", "--strategies", name, "--seeds",
                         "1", "--evals", "5", "--workers", "1", "--no-plots",
                         "--output", str(tmp_path / name.replace("/", "_"))]) == 2
            (line,) = capsys.readouterr().err.strip().splitlines()
            assert line.startswith(f"metanas bench: error: strategy '{name}' (")
            assert expected in line
    finally:
        for name in ("mine/bad", "mine/bad-optuna", "mine/raising"):
            STRATEGIES.pop(name, None)


def test_a_strategy_module_that_fails_in_a_worker_is_an_error_not_a_hang(tmp_path):
    import subprocess
    import sys

    (tmp_path / "parent_only.py").write_text(
        "import multiprocessing\n"
        "if multiprocessing.parent_process() is not None:\n"
        "    raise ImportError('needs the parent process')\n" + STRATEGY_MODULE)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "metanas", "bench", "--tasks", "hpobench/car", "--strategies",
         "mine/random", "--seeds", "2", "--evals", "5", "--workers", "2", "--no-plots",
         "--strategy-module", "parent_only", "--output", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    (line,) = done.stderr.strip().splitlines()
    assert ("--strategy-module: in a worker process, cannot import the strategy module "
            "'parent_only': ImportError: needs the parent process") in line


@pytest.mark.parametrize("field", ["strategy_version", "noise_protocol"])
def test_reuse_runs_again_what_an_earlier_version_of_a_strategy_made(tmp_path, capsys, field):
    from metanas.bench import run_one

    old = dict(run_one("hpobench/car", "kt/random", seed=1, evals=5), regret=123.0)
    # As version 1 of the strategy wrote it, or the harness before the noise's own stream.
    del old[field]
    raw = tmp_path / "old.json.gz"
    report.save_results([old], str(raw))
    assert main(["bench", "--tasks", "hpobench/car", "--strategies", "kt/random", "--seeds", "1",
                 "--first-seed", "1", "--evals", "5", "--workers", "1", "--no-plots",
                 "--reuse", str(raw), "--output", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "runs of kt/random in --reuse were made by an earlier version" in printed
    assert "1 runs (0 reused)" in printed
    (run,) = report.load_results(str(tmp_path / "out" / "raw.json.gz"))
    assert run["regret"] != 123.0 and run["strategy_version"] == 2 and run["noise_protocol"] == 2


def test_a_torn_last_line_does_not_take_the_next_run_with_it(tmp_path):
    partial = tmp_path / "raw.partial.jsonl"
    first, second, third = ({"task": "t", "strategy": "s", "seed": i} for i in range(3))
    report.append_partial(str(partial), first)
    report.append_partial(str(partial), second)
    partial.write_bytes(partial.read_bytes()[:-9])  # killed while writing the second
    report.append_partial(str(partial), third)
    assert report.load_partial(str(partial)) == [first, third]


def test_a_reuse_file_with_a_bad_value_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.json.gz"
    report.save_results([{"task": "hpobench/car", "strategy": "optuna/tpe", "seed": "x"}],
                        str(bad))
    assert main(["bench", "--tasks", "hpobench/car", "--strategies", "optuna/tpe", "--seeds",
                 "1", "--reuse", str(bad), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("metanas bench: error: --reuse: ") and err.count("\n") == 1
    assert "run 0 ('hpobench/car', 'optuna/tpe', seed 'x') has a bad value (seed must be an int, " \
        "got 'x')" in err


def test_an_output_holding_other_results_keeps_them_beside_the_new_ones(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--tasks", "hpobench/car", "--seeds", "2", "--evals", "5", "--workers", "1",
            "--no-plots", "--output", str(out)]
    assert main(["bench", "--strategies", "optuna/tpe", *argv]) == 0
    first = report.load_results(str(out / "raw.json.gz"))
    capsys.readouterr()
    assert main(["bench", "--strategies", "optuna/tpe", *argv]) == 0  # the same runs again
    assert "kept as" not in capsys.readouterr().out
    assert main(["bench", "--strategies", "optuna/random", *argv]) == 0  # other runs
    assert "holds runs these results do not; kept as" in capsys.readouterr().out
    (kept,) = [p for p in out.iterdir() if p.name.startswith("raw.2")]
    assert [(r["strategy"], r["seed"], r["curve"]) for r in report.load_results(str(kept))] == [
        (r["strategy"], r["seed"], r["curve"]) for r in first]
    assert {r["strategy"] for r in report.load_results(str(out / "raw.json.gz"))} == {
        "optuna/random"}


def test_an_abbreviated_option_is_not_taken_for_a_longer_one(tmp_path, capsys):
    # Was taken as --seeds 3 (argparse's abbreviations): 3 seeds from 0, not seed 3.
    with pytest.raises(SystemExit) as exited:
        main(["bench", "--seed", "3", "--output", str(tmp_path)])
    assert exited.value.code == 2
    assert "metanas bench: error: unrecognized arguments: --seed 3" in capsys.readouterr().err
    assert not os.listdir(tmp_path)


def test_a_second_bench_on_a_busy_output_is_refused_in_one_line(tmp_path, capsys):
    # Was: both ran; each rewrote the partial file from what it read when it
    # started, and the finished runs of the other were lost (a review's finding).
    from metanas import locks
    from metanas.bench.command import LOCK_FILE

    out = tmp_path / "out"
    out.mkdir()
    with open(out / LOCK_FILE, "a+b") as held:
        locks.lock(held)  # a bench running there
        code = main(["bench", "--tasks", "hpobench/car", "--strategies", "optuna/tpe",
                     "--seeds", "1", "--evals", "5", "--no-plots", "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"metanas bench: error: --output: another metanas bench is writing "
                          f"to {str(out)!r}")
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]


def test_results_kept_aside_in_one_second_do_not_overwrite_each_other(tmp_path, monkeypatch):
    import datetime

    from metanas.bench import command

    class Frozen(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime(2026, 12, 7, 17, 20, 1, tzinfo=tz)

    monkeypatch.setattr(command.datetime, "datetime", Frozen)
    for text in ("first", "second"):
        (tmp_path / "raw.json.gz").write_text(text)  # not results: kept all the same
        command._keep_other_results(str(tmp_path / "raw.json.gz"), [])
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "raw.20261207T172001.json.gz": "first", "raw.20261207T172001-2.json.gz": "second"}


def test_the_report_s_command_line_is_quoted_for_a_shell(tmp_path, monkeypatch):
    out = tmp_path / "with space"
    argv = ["bench", "--tasks", "hpobench/car", "--strategies", "optuna/tpe", "--seeds", "1",
            "--evals", "5", "--no-plots", "--output", str(out)]
    monkeypatch.setattr("sys.argv", ["metanas", *argv])
    assert main(argv) == 0
    assert f"    metanas bench {' '.join(argv[1:-1])} '{out}'\n" in (out / "report.md").read_text()


def test_a_full_disk_is_one_line_and_the_finished_runs_stay(tmp_path, capsys, monkeypatch):
    import errno

    written = []
    append = report.append_partial

    def full(path, result):  # room for two runs
        if len(written) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", path)
        append(path, result)
        written.append(result)

    monkeypatch.setattr(report, "append_partial", full)
    out = tmp_path / "out"
    argv = ["bench", "--tasks", "hpobench/car", "--strategies", "optuna/tpe", "--seeds", "4",
            "--evals", "5", "--workers", "1", "--no-plots", "--output", str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("metanas bench: error: cannot write ") and err.count("\n") == 1
    assert "No space left on device; 2 finished run(s) kept in " in err
    monkeypatch.setattr(report, "append_partial", append)  # room again: it goes on
    assert main(argv) == 0
    assert "2 kept from an interrupted run" in capsys.readouterr().out


def test_the_report_names_a_commit_only_when_run_from_a_metanas_checkout(tmp_path, monkeypatch):
    import shutil
    import subprocess

    from metanas import __version__
    from metanas.bench import command

    assert command._commit().endswith(f" (metanas {__version__})")  # the tests run from one
    other = tmp_path / "project"  # an installed copy inside another repository, or none
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    for folder in (other / "site" / "metanas" / "bench", tmp_path / "loose"):
        folder.mkdir(parents=True)
        shutil.copy(command.__file__, folder / "command.py")
        monkeypatch.setattr(command, "__file__", str(folder / "command.py"))
        assert command._commit() == f"metanas {__version__}"


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_bench_says_so_in_one_line_keeps_its_runs_and_stops_its_workers(
        tmp_path, how):
    import signal
    import subprocess
    import sys
    import time

    from metanas.bench.command import PARTIAL_FILE

    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "metanas", "bench", "--tasks", "hpobench/car", "--strategies",
         "optuna/tpe", "--seeds", "40", "--evals", "100", "--workers", "2", "--no-plots",
         "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
        # A pytest-xdist worker ignores SIGINT, and a child would inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    partial = out / PARTIAL_FILE
    _wait_for_runs(process, partial, 1)
    workers = [int(pid) for pid in subprocess.run(
        ["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()]
    assert workers, "no worker processes"
    if how == "ctrl-c":
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the whole group
    else:
        process.send_signal(signal.SIGTERM)  # the main process alone, as `kill PID` does
    err = process.communicate(timeout=120)[1]
    assert process.returncode == (130 if how == "ctrl-c" else 143), err
    assert "Traceback" not in err and err.count("\n") == 1
    kept = len(report.load_partial(str(partial)))
    assert 1 <= kept < 40
    assert f"metanas bench: interrupted; {kept} finished run(s) kept in {partial}" in err
    deadline = time.monotonic() + 30
    alive = list(workers)
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if os.path.exists(f"/proc/{pid}")
                 and "Z" not in open(f"/proc/{pid}/stat").read().split()[2]]
        time.sleep(0.2)
    for pid in alive:  # do not leave them running, then fail
        os.kill(pid, signal.SIGKILL)
    assert not alive, f"worker processes {alive} outlived the bench"


BASE = ["bench", "--tasks", "hpobench/car", "--strategies", "optuna/random", "--seeds", "1",
        "--evals", "3", "--workers", "1", "--no-plots"]


@pytest.mark.parametrize("line", [
    b"\xff\xfe\x00 not text\n",
    b'{"task":"hpobench/car","strategy":"optuna/random","seed":"x"}\n',
    b'{"task":"hpobench/car","strategy":"optuna/random","seed":0,"regret":"abc"}\n',
])
def test_lines_of_the_partial_file_that_are_not_runs_are_skipped_and_kept_aside(
        tmp_path, capsys, line):
    # Were: a UnicodeDecodeError or a ValueError traceback; skipped, a line
    # would be lost when the file is removed at the end.
    from metanas.bench.command import PARTIAL_FILE, UNREADABLE_FILE

    out = tmp_path / "out"
    out.mkdir()
    run = {"task": "hpobench/car", "strategy": "optuna/random", "seed": 5, "regret": 0.5}
    (out / PARTIAL_FILE).write_bytes(line + json.dumps(run).encode() + b"\n")
    assert report.load_partial(str(out / PARTIAL_FILE)) == [run]
    assert main([*BASE, "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"1 line(s) of {out / PARTIAL_FILE} that are not finished runs" in printed
    assert (out / UNREADABLE_FILE).read_bytes() == line
    assert report.load_partial(str(out / PARTIAL_FILE)) == [run]  # another command's: stays


def test_a_directory_in_place_of_the_partial_file_is_one_line_and_exit_2(tmp_path, capsys):
    from metanas.bench.command import PARTIAL_FILE, _kept

    out = tmp_path / "out"
    (out / PARTIAL_FILE).mkdir(parents=True)
    assert main([*BASE, "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("metanas bench: error: --output: ") and err.count("\n") == 1
    assert f"{str(out / PARTIAL_FILE)!r} is a directory" in err
    with pytest.raises(ValueError, match="is a directory"):
        report.load_partial(str(out / PARTIAL_FILE))
    # What an error handler says where the runs are does not fail in turn.
    assert _kept(str(out)) == (f"the finished runs are kept in {out / PARTIAL_FILE}: the same "
                               f"command goes on from them")


@pytest.mark.parametrize("field, value, message", [
    ("regret", "abc", "regret must be a number or null, got 'abc'"),
    ("found_regret", [1], "found_regret must be a number or null, got [1]"),
    ("curve", [0.1, "x"], "curve must be a list of numbers, got [0.1, 'x']"),
    ("unique", True, "unique must be an int, got True"),
    ("evals", 2.5, "evals must be an int, got 2.5"),
])
def test_a_reuse_file_with_a_bad_number_is_one_line_and_exit_2(tmp_path, capsys, field, value,
                                                                message):
    # Was: reused, written to raw.json.gz, then a traceback from the report's tables.
    from metanas.bench import run_one

    bad = tmp_path / "bad.json.gz"
    run = dict(run_one("hpobench/car", "optuna/random", seed=0, evals=3), **{field: value})
    report.save_results([run], str(bad))
    assert main([*BASE, "--reuse", str(bad), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("metanas bench: error: --reuse: ") and err.count("\n") == 1
    assert f"run 0 ('hpobench/car', 'optuna/random', seed 0) has a bad value ({message})" in err
    assert not (tmp_path / "out" / "raw.json.gz").exists()


@pytest.mark.parametrize("change, message", [
    (dict(kind="sklearn"), "Strategy.kind must be 'keras-tuner' or 'optuna', got 'sklearn'"),
    (dict(name="a,b"), "a strategy name must be a non-empty string without commas"),
    (dict(version="2"), "Strategy.version must be an int, got '2'"),
])
def test_a_strategy_registered_with_a_bad_field_is_refused(change, message):
    # A version that is no int made every run of the strategy unreadable to --reuse.
    import dataclasses

    from metanas.bench import STRATEGIES, Strategy, register_strategy

    strategy = Strategy("mine/checked", "optuna", lambda *, seed: None, True, "checked")
    with pytest.raises(ValueError, match=message):
        register_strategy(dataclasses.replace(strategy, **change))
    assert "mine/checked" not in STRATEGIES
