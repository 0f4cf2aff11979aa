"""The installed package: layout, lazy neighbours, the command line."""

import os
import pathlib
import subprocess
import sys

import pytest

import metanas
from metanas import cli
from tests.paths import read_only


def run_python(code):
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )


def test_importing_tuners_imports_neither_mlflow_nor_autokeras_nor_optuna():
    result = run_python(
        "import sys, metanas.tuners;"
        "print(sorted(m for m in ('mlflow', 'autokeras', 'optuna') if m in sys.modules))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_help_and_the_bench_tables_do_not_import_tensorflow():
    # `metanas --help`, every subcommand's parser, the task list and the report
    # are light; only running a search needs keras-tuner and TensorFlow.
    result = run_python(
        "import sys\n"
        "from metanas import cli\n"
        "parser = cli.build_parser()\n"
        "import metanas.bench.report, metanas.bench.tasks\n"
        "from metanas.bench import TASK_NAMES, STRATEGIES\n"
        "assert len(TASK_NAMES) == 15 and 'metanas/evolution' in STRATEGIES\n"
        "print(sorted(m for m in ('tensorflow', 'keras_tuner', 'keras') if m in sys.modules))\n"
        "from metanas.bench import run_one\n"
        "print('keras_tuner' in sys.modules)\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "True"]


def test_bench_package_names_an_unknown_attribute():
    import metanas.bench

    with pytest.raises(AttributeError, match="no attribute 'run_none'"):
        metanas.bench.run_none  # noqa: B018
    assert set(metanas.bench.__all__) <= set(dir(metanas.bench))


def test_package_dirs_map_to_one_import_name():
    import metanas.tuners

    assert metanas.__file__.replace("\\", "/").endswith("plugin/__init__.py")
    assert metanas.tuners.__file__.replace("\\", "/").endswith("tuners/__init__.py")
    assert set(metanas.tuners.__all__) >= {
        "RandomSearchOracle", "EvolutionOracle", "RandomSearch", "EvolutionSearch",
    }


def test_the_wheel_holds_every_package_and_its_type_marker(tmp_path):
    import shutil
    import zipfile

    root = pathlib.Path(__file__).resolve().parents[1]
    source = tmp_path / "src"  # a copy: building writes build/ and egg-info/ next to setup.py
    shutil.copytree(root, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "benchmarks", "build", "*.egg-info", "mlruns", "demo_runs", "*.db",
        "__pycache__", "tests", "docs"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("metanas-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"metanas/py.typed", "metanas/tuners/py.typed"} <= names  # PEP 561
    for package in ("meta", "bench", "autokeras", "spaces", "tracking"):
        assert f"metanas/{package}/__init__.py" in names


def test_cli_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert metanas.__version__ in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["demo", "--max-trials", "0"], ["demo", "--epochs", "-1"]])
def test_cli_bad_input_is_one_line_and_exit_2(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "must be >= 1" in err


def test_python_dash_m_reports_a_subcommands_bad_input_in_one_line():
    # The meta subcommands live in another module; under `python -m metanas.cli`
    # their UsageError must still be the one main() catches.
    result = subprocess.run(
        [sys.executable, "-m", "metanas.cli", "meta-train", "--tasks", "nb201/bogus"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown task 'nb201/bogus'" in lines[0]


def test_cli_unknown_command_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["frobnicate"])
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_demo_command_prints_the_best_configuration(tmp_path):
    metanas_bin = pathlib.Path(sys.executable).with_name("metanas")
    result = subprocess.run(
        [str(metanas_bin), "demo", "--max-trials", "3", "--epochs", "1",
         "--directory", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "best val_accuracy:" in result.stdout and "layers =" in result.stdout
    # Only the values its model read: no units_2 for a model of fewer layers.
    printed = dict(line.strip().split(" = ") for line in result.stdout.splitlines()
                   if " = " in line)
    layers = int(printed["layers"])
    assert {k for k in printed if k.startswith("units_")} == {f"units_{i}" for i in range(layers)}
    assert "oneDNN" not in result.stderr  # the entry point silences TensorFlow


@pytest.mark.parametrize("argv, message", [
    (["demo", "--seed", "-1"], "--seed must be in 0..4294967295, got -1"),
    (["demo", "--directory", "afile"], "--directory: 'afile' is a file, not a directory"),
    (["bench", "--tasks", "hpobench/car", "--output", "afile"],
     "--output: 'afile' is a file, not a directory"),
    (["bench", "--tasks", "hpobench/car", "--output", "afile/sub"],
     "--output: cannot create the directory 'afile/sub' (Not a directory)"),
    (["meta-train", "--tasks", "hpobench/car", "--plots", "afile"],
     "--plots: 'afile' is a file, not a directory"),
    (["meta-train", "--tasks", "hpobench/car", "--seed", "4294967296"],
     "--seed must be in 0..4294967295, got 4294967296"),
    (["ui", "--backend-store-uri", "bogus://x", "--port", "1"],
     "--backend-store-uri: MLflow cannot use the tracking URI 'bogus://x'"),
    (["ui", "--backend-store-uri", "mlflow.db", "--port", "1"],
     "--backend-store-uri must be a URI such as sqlite:///mlflow.db (or file:///abs/mlruns "
     "with MLFLOW_ALLOW_FILE_STORE=true), got 'mlflow.db'"),
    # An empty host listens on every interface: the UI has no login.
    (["ui", "--host", "", "--port", "1"], "--host must name an address"),
    (["ui", "--port", "1", "env:./mlruns"],  # the store named by MLFLOW_TRACKING_URI
     "MLFLOW_TRACKING_URI must be a URI such as sqlite:///mlflow.db"),
    # Checked up front: MLflow retried opening a folder for ~100 s before failing.
    (["ui", "--backend-store-uri", "sqlite:///.", "--port", "1"],
     "is a directory, not a SQLite tracking store (give its file, such as sqlite:///mlflow.db)"),
])
def test_bad_paths_seeds_and_uris_are_one_line_and_exit_2(argv, message, tmp_path, monkeypatch,
                                                          capsys):
    # Checked before any work: nothing is trained, no store is created.
    monkeypatch.chdir(tmp_path)
    if argv[-1].startswith("env:"):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", argv.pop()[len("env:"):])
    (tmp_path / "afile").write_text("")
    if argv[0] == "ui":  # a port the probe can bind, so the URI is what fails
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            argv[-1] = str(probe.getsockname()[1])
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_an_interrupted_demo_says_how_to_keep_its_completed_trials(monkeypatch, capsys):
    from metanas import cli, demo

    def interrupted(**settings):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "run_demo", interrupted)
    assert cli.main(["demo", "--max-trials", "2"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted; its completed trials are kept: " \
        "--no-overwrite goes on from them" in err


def test_a_command_is_inside_its_ctrl_c_handling_before_any_heavy_import():
    # The CLI's set-up imported keras-tuner (TensorFlow: seconds) before the
    # command's KeyboardInterrupt handling: a Ctrl-C then printed a traceback.
    code = "\n".join([
        "import argparse, sys",
        "from metanas import cli",
        "parse = cli._OneLineErrors.parse_args",
        "def command(args):",
        "    assert not {'keras_tuner', 'tensorflow'} & set(sys.modules)",
        "    raise KeyboardInterrupt",
        "def parse_args(self, *args, **kwargs):",
        "    namespace = parse(self, *args, **kwargs)",
        "    namespace.func = command",
        "    return namespace",
        "cli._OneLineErrors.parse_args = parse_args",
        "sys.exit(cli.main(['demo']))",
    ])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 130, result.stderr
    assert result.stderr.startswith("metanas demo: interrupted; its completed trials are kept")
    assert result.stderr.count("\n") == 1, result.stderr  # one line, no traceback


def test_a_sigterm_its_parent_ignores_stays_ignored(monkeypatch):
    import os
    import signal

    from metanas import cli, demo

    def terminated(**settings):  # a SIGTERM while the command runs
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(demo, "run_demo", terminated)
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as `trap '' TERM` leaves it
    try:
        assert cli.main(["demo", "--max-trials", "2"]) == 0
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("argv", [
    ["demo", "--directory", "ro"],
    ["meta-train", "--tasks", "hpobench/car", "--budget", "6", "--meta-trials", "1",
     "--no-progress", "--plots", "ro"],
    ["bench", "--tasks", "hpobench/car", "--output", "ro"],
])
def test_a_read_only_output_directory_is_one_line_and_exit_2_before_any_work(
        argv, tmp_path, monkeypatch, capsys):
    # Was: a traceback, after the meta-training's searches for --plots.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ro").mkdir()
    flag = argv[argv.index("ro") - 1]
    with read_only(tmp_path / "ro"):
        assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"metanas {argv[0]}: error: {flag}: cannot write in the directory 'ro' "
                   f"({err.split('(', 1)[1].split(')')[0]}); give a writable one")
    assert "Traceback" not in err and "\n" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["ro"]  # no meta storage, nothing trained
    assert list((tmp_path / "ro").iterdir()) == []


def test_a_ctrl_c_stops_the_ui_and_exits_130(tmp_path, monkeypatch, capsys):
    # Was: exit status 0, where every other command exits 130.
    import socket

    from metanas.tracking import server

    class Server:
        pid = 0

        def poll(self):  # Ctrl-C while it starts
            raise KeyboardInterrupt

        def wait(self):
            raise AssertionError("waited on a server it was told to stop")

    stopped = []
    monkeypatch.setattr(subprocess, "Popen", lambda *args, **kwargs: Server())
    monkeypatch.setattr(server, "stop_server", stopped.append)
    (tmp_path / "mlflow.db").write_bytes(b"")
    monkeypatch.setattr("metanas.tracking.tracker.make_client", lambda uri: None)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = ["ui", "--backend-store-uri", f"sqlite:///{tmp_path}/mlflow.db", "--port", str(port)]
    assert cli.main(argv) == 130
    assert capsys.readouterr().err == "metanas ui: interrupted\n"
    assert len(stopped) == 1  # the server it started is stopped


def test_an_empty_store_is_refused_not_taken_for_the_default(tmp_path, capsys):
    # Was: the default store (./mlflow.db) served or synced.
    for argv, flag in ((["ui", "--backend-store-uri", ""], "--backend-store-uri"),
                       (["tracking", "sync", str(tmp_path), "--tracking-uri", " "],
                        "--tracking-uri")):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.endswith(f"error: {flag} must name a store (such as sqlite:///mlflow.db), "
                            f"got {argv[-1]!r}\n") and err.count("\n") == 1


@pytest.mark.parametrize("argv, line", [
    (["demo", "--max-trials", "abc"],
     "metanas demo: error: argument --max-trials: invalid int value: 'abc'"),
    (["meta-train", "--tasks", "tuning", "--sampler", "cmaes"],
     "metanas meta-train: error: argument --sampler: invalid choice: 'cmaes' (choose from "
     "'tpe', 'random')"),
    (["tracking"], "metanas tracking: error: the following arguments are required: action"),
    (["demo", "--bogus"], "metanas demo: error: unrecognized arguments: --bogus"),
    ([], "metanas: error: the following arguments are required: command"),
])
def test_a_bad_argument_is_one_line_and_exit_2(argv, line, capsys):
    # Was argparse's usage block before the line (up to 9 lines).
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)
    assert caught.value.code == 2
    prog = line.split(": error:")[0]
    assert capsys.readouterr().err == f"{line} (see {prog} --help)\n"


@pytest.mark.parametrize("argv, message", [
    # Was "no such directory" for a file that is there.
    (["tracking", "sync", "{file}"], "metanas tracking sync: error: '{file}' is a file, not a "
                                     "spool directory"),
    # Was taken for no --plots at all: the meta-study ran, and no plot was written.
    (["meta-train", "--tasks", "tuning", "--plots", ""],
     "metanas meta-train: error: --plots: cannot create the directory ''"),
])
def test_a_path_of_the_wrong_kind_is_named_as_such(tmp_path, capsys, argv, message):
    (tmp_path / "text.txt").write_text("x")
    argv = [a.format(file=tmp_path / "text.txt") for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message.format(file=tmp_path / "text.txt")) and err.count("\n") == 1


def test_errors_and_logged_warnings_name_the_subcommand_in_one_line(tmp_path, capsys):
    # Was "metanas tracking: error: ...", and a logged warning printed bare.
    assert cli.main(["tracking", "sync", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.startswith("metanas tracking sync: error: no such directory")
    code = "\n".join([
        "import argparse, logging, sys",
        "from metanas import cli",
        "parse = cli._OneLineErrors.parse_args",
        "def command(args):",
        "    logging.getLogger('metanas.tracking.tracker').warning('MLflow at %s is down', 'x')",
        "    logging.getLogger('other').warning('not ours')",
        "    return 0",
        "def parse_args(self, *args, **kwargs):",
        "    namespace = parse(self, *args, **kwargs)",
        "    namespace.func = command",
        "    return namespace",
        "cli._OneLineErrors.parse_args = parse_args",
        "sys.exit(cli.main(['tracking', 'sync']))",
    ])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ("metanas tracking sync: warning: MLflow at x is down\n"
                             "not ours\n")


def test_a_demo_on_a_full_disk_is_one_line_and_exit_1(monkeypatch, capsys):
    # Was: the DiskFullError's traceback (then a crash at exit).
    from metanas import demo
    from metanas.tuners import DiskFullError

    def full(**settings):
        raise DiskFullError("trial 3 could not write to disk (could not save x: fix the cause "
                            "and resume with overwrite=False); Free space and search\n again "
                            "(overwrite=False): this trial runs again")

    monkeypatch.setattr(demo, "run_demo", full)
    assert cli.main(["demo", "--max-trials", "2"]) == 1
    # The advice is the command line's: the demo's default, --overwrite, would have
    # deleted the trials the message says are kept (a review's finding).
    assert capsys.readouterr().err == (
        "metanas demo: error: trial 3 could not write to disk (could not save x: fix the cause "
        "and run metanas demo again with --no-overwrite); Free space and run metanas demo "
        "again with --no-overwrite: this trial runs again\n")


def test_a_demo_resumed_from_a_corrupt_search_is_one_line_and_exit_2(tmp_path, capsys):
    # Was a traceback (exit 1) from keras-tuner's reload.
    project = tmp_path / "runs" / "digits_evolution"
    project.mkdir(parents=True)
    (project / "oracle.json").write_text("garbage")
    argv = ["demo", "--no-overwrite", "--max-trials", "2", "--directory", str(tmp_path / "runs")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    # Two trials of a population of 6 breed no child: said on a line of its own.
    assert err == ("metanas demo: warning: max_trials=2 breeds no child: the first trials "
                   "are its population_size=6 random starting points, so this search is a "
                   "random search. Give max_trials >= 9, or a smaller population_size.\n"
                   f"metanas demo: error: The saved oracle state {project}/oracle.json is corrupt "
                   "(Expecting value: line 1 column 1 (char 0)). It was left as it is, with every "
                   "other file of the search: restore it, or start a new search with --overwrite "
                   "or another --directory.\n")
    assert (project / "oracle.json").read_text() == "garbage"


@pytest.mark.filterwarnings("ignore::metanas.tuners.ShortSearchWarning")  # 1-4 trials
@pytest.mark.parametrize("when", ["in an epoch", "after the last epoch"])
def test_a_ctrl_c_python_drops_in_training_still_stops_the_demo(when, tmp_path, monkeypatch,
                                                                capsys):
    import json
    import signal
    import weakref

    import keras

    from metanas import demo

    pressed = []

    class Garbage:
        pass

    class DropCtrlC(keras.callbacks.Callback):
        """Presses Ctrl-C in a weakref callback, where Python prints "Exception
        ignored in ..." and drops the KeyboardInterrupt (as it dropped one in
        TensorFlow's training, and the demo went on to its end)."""

        def press(self):
            handler = signal.getsignal(signal.SIGINT)  # the one the command installed
            garbage = Garbage()
            self.ref = weakref.ref(garbage, lambda _: (pressed.append(when),
                                                       handler(signal.SIGINT, None)))
            del garbage  # the handler runs, raises, and Python drops it

        def on_train_batch_end(self, batch, logs=None):
            if batch == 0 and when == "in an epoch":
                self.press()

        def on_train_end(self, logs=None):
            if when == "after the last epoch":  # of the last trial: the tuners' checks are past
                self.press()

    class PressedDuringTrial1(demo.EvolutionSearch):
        def _build_and_fit_model(self, trial, *args, **kwargs):
            if trial.trial_id == ("1" if when == "in an epoch" else "0"):
                kwargs["callbacks"] = [*kwargs["callbacks"], DropCtrlC()]
            return super()._build_and_fit_model(trial, *args, **kwargs)

    monkeypatch.setattr(demo, "EvolutionSearch", PressedDuringTrial1)
    printed = []  # what Python would print as "Exception ignored in ..."
    monkeypatch.setattr(sys, "unraisablehook", lambda raised: printed.append(raised.exc_type))
    unraisable = sys.unraisablehook
    trials = "4" if when == "in an epoch" else "1"
    # Python's own Ctrl-C handler, which the command replaces (pytest-xdist's workers
    # ignore SIGINT, and a command leaves an ignored SIGINT ignored).
    ignored = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        status = cli.main(["demo", "--max-trials", trials, "--epochs", "3", "--directory",
                           str(tmp_path)])
    finally:
        after = signal.signal(signal.SIGINT, ignored)
    assert after is signal.default_int_handler  # restored
    assert pressed == [when] and printed == []  # once: the search stopped there
    # One line: not the "Exception ignored in ..." traceback of the dropped interrupt.
    assert status == 130 and capsys.readouterr().err == (
        "metanas demo: interrupted; its completed trials are kept: --no-overwrite goes on "
        "from them (the default, --overwrite, starts afresh)\n")
    statuses = {path.parent.name: json.loads(path.read_text())["status"]
                for path in (tmp_path / "digits_evolution").glob("trial_*/trial.json")}
    assert statuses == ({"trial_0": "COMPLETED", "trial_1": "RUNNING"} if when == "in an epoch"
                        else {"trial_0": "COMPLETED"})
    assert sys.unraisablehook is unraisable


def test_constraints_pin_every_requirement_within_setup_py_ranges():
    """`make install` installs with constraints.txt: it must pin each of setup.py's
    requirements (the test extras included) to a version their ranges allow, or pip
    refuses the install (or, for a missing pin, takes whatever is newest)."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    root = pathlib.Path(__file__).resolve().parents[1]
    pinned = {}
    for line in (root / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not name==version"
            pinned[canonicalize_name(name)] = version
    checked = 0
    for text in metadata.requires("metanas"):
        requirement = Requirement(text)
        marker = requirement.marker
        if marker is not None and not any(
                marker.evaluate({"extra": extra}) for extra in ("", "test")):
            continue  # ui-check: not part of `make test`
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"constraints.txt does not pin {requirement.name}"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"constraints.txt pins {name}=={pinned[name]}, outside setup.py's {requirement}")
        checked += 1
    assert checked >= 10  # tensorflow-cpu, keras, keras-tuner, autokeras, ... pytest
