"""The `metanas` command line.

Each subcommand is a function ``add_<name>(subparsers)`` that registers its
parser and sets ``func``; bad input exits with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
import os
import signal
import sys
import threading
import warnings
from typing import List, Optional

# TensorFlow reads these once, at import: set them before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


from metanas.usage import (  # noqa: E402
    Terminated, UsageError, check_output_directory, check_seed, forget_interrupts,
    interrupt_noted, interrupted_status, note_interrupt, raise_noted_interrupt,
)


def add_demo(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="run an evolution search on scikit-learn's digits"
    )
    parser.add_argument("--max-trials", type=int, default=12, help="trials of the search")
    parser.add_argument("--epochs", type=int, default=8, help="training epochs per trial")
    parser.add_argument("--seed", type=int, default=1, help="seed of the search and of training")
    parser.add_argument("--directory", default="demo_runs",
                        help="folder of the search's trials (project 'digits_evolution')")
    parser.add_argument(
        "--overwrite", action=argparse.BooleanOptionalAction, default=True,
        help="start afresh (default) or resume the previous demo search",
    )
    parser.set_defaults(on_interrupt="its completed trials are kept: --no-overwrite goes on "
                                     "from them (the default, --overwrite, starts afresh)")

    def run(args) -> int:
        if args.max_trials < 1 or args.epochs < 1:
            raise UsageError(
                f"--max-trials and --epochs must be >= 1, got "
                f"{args.max_trials} and {args.epochs}"
            )
        check_seed("--seed", args.seed)
        check_output_directory("--directory", args.directory)
        from metanas.demo import run_demo
        from metanas.tuners import DiskFullError, SavedStateError

        try:
            run_demo(
                max_trials=args.max_trials,
                epochs=args.epochs,
                seed=args.seed,
                directory=args.directory,
                overwrite=args.overwrite,
            )
        except DiskFullError as error:  # its message says what was kept and how to go on
            text = " ".join(str(error).split())
            for said in ("search again (overwrite=False)", "resume with overwrite=False"):
                text = text.replace(said, "run metanas demo again with --no-overwrite")
            print(f"metanas demo: error: {text}", file=sys.stderr)
            return 1
        except SavedStateError as error:  # --no-overwrite on a search it cannot resume
            text = " ".join(str(error).split())
            raise UsageError(text.replace("overwrite=True or another project_name",
                                          "--overwrite or another --directory")) from None
        return 0

    parser.set_defaults(func=run)


def _raise_interrupt(signum, frame):
    note_interrupt(KeyboardInterrupt)  # raised again if Python drops it
    raise KeyboardInterrupt


def _ignoring_interrupts(hook):
    """``sys.unraisablehook`` that leaves out the interrupts `_raise_interrupt`
    and `_raise_terminated` raised where Python cannot raise (they are noted
    and raised again), and passes the rest to ``hook``."""

    def unraisable(raised):
        if not (interrupt_noted() and raised.exc_type
                and issubclass(raised.exc_type, KeyboardInterrupt)):
            hook(raised)

    return unraisable


def _raise_terminated(signum, frame):
    note_interrupt(Terminated)
    raise Terminated


def _check_listen(host: str, port: int) -> None:
    """Checks that a server could listen on ``host:port`` now.

    Binds every address ``host`` resolves to as the MLflow server (uvicorn, by
    asyncio's ``create_server``) will: SO_REUSEADDR, IPv6 sockets IPv6-only.
    Without it, a server that fails to bind leaves ``metanas ui`` printing a
    URL and exiting 0. The port can still be taken between this check and the
    server's start.

    Raises:
        UsageError: ``host`` does not resolve, or one of its addresses cannot be
            bound (the port is in use, or the address is not this machine's).
    """
    import socket

    probes = []
    try:
        infos = socket.getaddrinfo(host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0,
                                   socket.AI_PASSIVE)
        for family, kind, proto, _, address in dict.fromkeys(infos):
            try:
                probe = socket.socket(family, kind, proto)
            except OSError:  # a family this kernel lacks (IPv6 off): the server skips it too
                continue
            probes.append(probe)
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            probe.bind(address)
    except (OSError, UnicodeError) as error:  # UnicodeError: a malformed name ("a..b")
        reason = getattr(error, "strerror", None) or error
        raise UsageError(f"cannot listen on {_url_host(host)}:{port} ({reason}); "
                         "choose another --port or --host") from None
    finally:
        for probe in probes:
            probe.close()


def _url_host(host: str) -> str:
    """``host`` as it goes in a URL (an IPv6 address in brackets)."""
    return f"[{host}]" if ":" in host else host


def _probe_url(host: str, port: int) -> str:
    """Where this machine reaches a server listening on ``host`` (a wildcard: loopback)."""
    local = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://{_url_host(local)}:{port}"


def add_ui(subparsers) -> None:
    parser = subparsers.add_parser(
        "ui", help="open the MLflow UI on the default tracking store (127.0.0.1)"
    )
    parser.add_argument(
        "--backend-store-uri", default=None,
        help="store to browse (default: MLFLOW_TRACKING_URI, else ./mlflow.db)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on")
    parser.add_argument("--port", type=int, default=5000, help="port to serve on")

    def run(args) -> int:
        import subprocess

        from metanas.security import redact
        from metanas.tracking import server

        if not 0 < args.port < 65536:
            raise UsageError(f"--port must be in 1..65535, got {args.port}")
        if not args.host.strip():  # "" would listen on every interface, with no login
            raise UsageError(f"--host must name an address (127.0.0.1 is this machine only), "
                             f"got {args.host!r}")
        if args.backend_store_uri is not None and not args.backend_store_uri.strip():
            raise UsageError("--backend-store-uri must name a store (such as "
                             f"sqlite:///mlflow.db), got {args.backend_store_uri!r}")
        uri = args.backend_store_uri or server.default_store_uri()
        source = "--backend-store-uri" if args.backend_store_uri else (
            "MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI") else "the default store")
        if uri.startswith(("http://", "https://")):
            print(f"the tracking store is the server {redact(uri)}: open it in a browser")
            return 0
        if "://" not in uri and not uri.startswith("file:"):
            raise UsageError(f"{source} must be a URI such as sqlite:///mlflow.db (or "
                             f"file:///abs/mlruns with MLFLOW_ALLOW_FILE_STORE=true), "
                             f"got {redact(uri)!r}")
        _check_listen(args.host, args.port)
        from metanas.security import sqlite_file

        path = sqlite_file(uri)
        if path is not None and not os.path.exists(path):  # a typo, or nothing tracked yet
            raise UsageError(f"{source}: no tracking store at {path!r} (run a search first, "
                             "or check the path)")
        if path is not None and os.path.isdir(path):  # MLflow retried opening it for ~100 s
            raise UsageError(f"{source}: {path!r} is a directory, not a SQLite tracking store "
                             "(give its file, such as sqlite:///mlflow.db)")
        from metanas.tracking.tracker import make_client

        try:
            make_client(uri)  # an unknown scheme: one line here, not the server's traceback
        except ValueError as error:
            raise UsageError(f"{source}: {error}") from None
        url = f"http://{_url_host(args.host)}:{args.port}"
        print(f"Starting the MLflow UI for {redact(uri)} ...", flush=True)
        command = server.server_command(uri, host=args.host, port=args.port, ui_only=True)
        # The server runs in its own process group, stopped as a whole (mlflow starts
        # uvicorn workers) however this process ends: Ctrl-C, or a SIGTERM, SIGHUP (the
        # terminal closed) or SIGQUIT to this process alone. Handlers only on the main
        # thread (Python allows no other); from another thread the group is still
        # stopped when the wait ends.
        previous = {}
        if threading.current_thread() is threading.main_thread():
            numbers = (getattr(signal, name, None) for name in ("SIGTERM", "SIGHUP", "SIGQUIT"))
            for number in (n for n in numbers if n is not None):  # Windows: SIGTERM alone
                previous[number] = signal.signal(
                    number, _raise_terminated if number == signal.SIGTERM else _raise_interrupt)
        process = None
        try:  # Ctrl-C: `main` says so and exits 130 (143 for a SIGTERM), as every command does
            process = subprocess.Popen(command, start_new_session=True)
            # The address once it answers (MLflow takes seconds to start), not before.
            try:
                server.wait_until_up(_probe_url(args.host, args.port), timeout=math.inf,
                                     process=process)
                print(f"MLflow UI for {redact(uri)} on {url} (Ctrl-C stops it)", flush=True)
            except RuntimeError:
                pass  # it ended: its status is the command's
            return process.wait()
        finally:
            for number, handler in previous.items():
                signal.signal(number, signal.SIG_DFL if handler is None else handler)
            if process is not None:
                try:
                    server.stop_server(process)  # nothing to do if it ended on its own
                except KeyboardInterrupt:  # a second Ctrl-C: the group was killed
                    pass

    parser.set_defaults(func=run)


def add_tracking(subparsers) -> None:
    parser = subparsers.add_parser("tracking", help="MLflow tracking of searches")
    actions = parser.add_subparsers(dest="action", required=True)
    sync_parser = actions.add_parser(
        "sync", help="send the tracking records that waited for MLflow (spooled)"
    )
    sync_parser.add_argument(
        "directory", nargs="?", default=".",
        help="a tuner directory (every project under it), a project directory, or one "
             "spool directory",
    )
    sync_parser.add_argument("--tracking-uri", default=None,
                             help="default: MLFLOW_TRACKING_URI, else ./mlflow.db")

    def run(args) -> int:
        from metanas.tracking import sync

        if not os.path.isdir(args.directory):
            raise UsageError(f"{args.directory!r} is a file, not a spool directory"
                             if os.path.exists(args.directory)
                             else f"no such directory: {args.directory!r}")
        if args.tracking_uri is not None and not args.tracking_uri.strip():
            raise UsageError("--tracking-uri must name a store (such as "
                             f"sqlite:///mlflow.db), got {args.tracking_uri!r}")
        try:
            result = sync(args.directory, tracking_uri=args.tracking_uri)
        except ValueError as error:  # a URI MLflow cannot use, records for another store
            raise UsageError(str(error)) from None
        unreadable = (f"; {result['unreadable']} unreadable line(s) kept"
                      if result.get("unreadable") else "")
        print(f"sent {result['sent']} record(s); {result['waiting']} still waiting; "
              f"{result['rejected']} rejected{unreadable}")
        if result.get("unreadable"):
            print(f"{result['unreadable']} spooled line(s) hold no readable record (a write torn "
                  "by a crash or a full disk, or an edit): they are kept, not sent, in the "
                  "*.pending.jsonl.unreadable files of their spool directory (in its "
                  "*.pending.jsonl files if those could not be written)", file=sys.stderr)
        if result["waiting"]:
            print("MLflow is still unreachable: run `metanas tracking sync` again later",
                  file=sys.stderr)
            return 1
        if result["rejected"]:
            print("MLflow refused some records for good (or they are no tracking record): "
                  "they are kept, with the reason, in rejected.jsonl in their spool directory",
                  file=sys.stderr)
            return 1
        return 1 if result.get("unreadable") else 0

    sync_parser.set_defaults(func=run)


def add_bench(subparsers) -> None:
    from metanas.bench.command import add_bench as add

    add(subparsers)


from metanas.cli_meta import add_meta_train, add_recommend  # noqa: E402

class _HelpFormatter(argparse.HelpFormatter):
    """Adds ``(default: ...)`` to an option's help, unless the help says it or
    there is none to say (None, a flag's False, a repeatable option's [])."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or not action.option_strings or action.default is None
                or action.default is False or action.default == []
                or action.default == argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


class _OneLineErrors(argparse.ArgumentParser):
    """A parser whose usage errors are one line (and exit status 2), as every other
    command-line error of metanas is, instead of the usage block and the line.
    Options are taken whole only: ``--seed 3`` is not ``--seeds 3``."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str, prog: Optional[str] = None):
        prog = prog or self.prog
        print(f"{prog}: error: {message} (see {prog} --help)", file=sys.stderr)
        sys.exit(2)

    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:  # named by the (deepest) subcommand they were given to
            self.error(f"unrecognized arguments: {' '.join(extras)}",
                       getattr(parsed, "parser_prog", None))
        return parsed


class _Parser(_OneLineErrors):
    """A subcommand's parser (and its own subcommands'), with `_HelpFormatter`."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)
        self.set_defaults(parser_prog=self.prog)  # the deepest one parsed sets it last


SUBCOMMANDS = [add_demo, add_bench, add_meta_train, add_recommend, add_ui, add_tracking]


def build_parser() -> argparse.ArgumentParser:
    from metanas import __version__

    parser = _OneLineErrors(
        prog="metanas",
        description="Neural architecture search strategies for KerasTuner and AutoKeras.",
    )
    parser.add_argument("--version", action="version", version=f"metanas {__version__}")
    # Every subcommand's --help shows its defaults (`_HelpFormatter`).
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def _own_files() -> tuple:
    """The folders of metanas's modules (the package and its `tuners`).

    Found without importing `metanas.tuners` (keras-tuner and TensorFlow: seconds,
    which a Ctrl-C would interrupt outside the command's own handling).
    """
    spec = importlib.util.find_spec("metanas.tuners")
    return tuple(os.path.dirname(os.path.abspath(path)) + os.sep
                 for path in (__file__, spec.origin))


def _one_line_warnings(command: str):
    """A `warnings.showwarning` that prints metanas's warnings as one CLI line.

    ``metanas <command>: warning: <message>``, as errors are printed; a
    warning from another package keeps Python's format (its file and line).
    """
    own = _own_files()
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if not os.path.abspath(filename).startswith(own):
            return default(message, category, filename, lineno, file, line)
        print(f"metanas {command}: warning: {message}", file=sys.stderr if file is None else file)

    return show


class _OneLineHandler(logging.Handler):
    """Prints metanas's logged warnings and errors as one CLI line each.

    ``metanas <command>: warning: <message>``, as `_one_line_warnings` prints
    those of `warnings.warn`.
    """

    def __init__(self, command: str) -> None:
        super().__init__(logging.WARNING)
        self.command = command

    def emit(self, record: logging.LogRecord) -> None:
        try:
            kind = "warning" if record.levelno < logging.ERROR else "error"
            print(f"metanas {self.command}: {kind}: {record.getMessage()}", file=sys.stderr)
        except Exception:  # noqa: BLE001 - as logging's handlers: never fail the command
            self.handleError(record)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # "tracking sync": a command with actions is named with its action.
    command = " ".join(filter(None, (args.command, getattr(args, "action", None))))
    shown = warnings.showwarning
    warnings.showwarning = _one_line_warnings(command)
    # metanas's logged warnings in the same format, where Python would print their
    # bare message (no logging configured); an application's own logging is left alone.
    own_log = logging.getLogger("metanas")
    one_line = None
    if not logging.getLogger().handlers and not own_log.handlers:
        one_line = _OneLineHandler(command)
        own_log.addHandler(one_line)
    # MLflow's "Creating initial MLflow database tables..." on a new database.
    mlflow_db = logging.getLogger("mlflow.store.db.utils")
    level = mlflow_db.level
    mlflow_db.setLevel(logging.WARNING)
    # A SIGTERM (a job scheduler's stop, `kill`) ends a command as Ctrl-C does:
    # without it, `bench` left its worker processes running.
    # Ctrl-C as Python's own handler does, but noted: a tuner raises it again if
    # Python drops it (`metanas.usage.raise_noted_interrupt`).
    previous = {}
    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # not if ignored
            previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, _raise_terminated)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, _raise_interrupt)
    # ... and the "Exception ignored in ..." traceback Python prints for it, not shown.
    unraisable = sys.unraisablehook
    if previous:
        sys.unraisablehook = _ignoring_interrupts(unraisable)
    try:
        status = int(args.func(args) or 0)
        raise_noted_interrupt()  # dropped after the tuners' last look (a command reports its own)
        return status
    except UsageError as error:
        print(f"metanas {command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:  # what each command keeps, it has kept by now
        hint = getattr(args, "on_interrupt", None)
        print(f"metanas {command}: interrupted" + (f"; {hint}" if hint else ""),
              file=sys.stderr)
        return interrupted_status(interrupt)
    finally:
        if one_line is not None:
            own_log.removeHandler(one_line)
        warnings.showwarning = shown
        mlflow_db.setLevel(level)
        for number, handler in previous.items():
            signal.signal(number, handler)
        if previous:
            sys.unraisablehook = unraisable
        forget_interrupts()


if __name__ == "__main__":
    sys.exit(main())
