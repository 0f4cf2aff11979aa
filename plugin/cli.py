"""The `metanas` command line.

Each subcommand is a function ``add_<name>(subparsers)`` that registers its
parser and sets ``func``; bad input exits with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

# TensorFlow reads these once, at import: set them before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


class UsageError(ValueError):
    """Bad command-line input: reported in one line, exit status 2."""


def add_demo(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="run an evolution search on scikit-learn's digits"
    )
    parser.add_argument("--max-trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--directory", default="demo_runs")
    parser.add_argument(
        "--overwrite", action=argparse.BooleanOptionalAction, default=True,
        help="start afresh (default) or resume the previous demo search",
    )

    def run(args) -> int:
        if args.max_trials < 1 or args.epochs < 1:
            raise UsageError(
                f"--max-trials and --epochs must be >= 1, got "
                f"{args.max_trials} and {args.epochs}"
            )
        from metanas.demo import run_demo

        run_demo(
            max_trials=args.max_trials,
            epochs=args.epochs,
            seed=args.seed,
            directory=args.directory,
            overwrite=args.overwrite,
        )
        return 0

    parser.set_defaults(func=run)


def add_bench(subparsers) -> None:
    from metanas.bench.command import add_bench as add

    add(subparsers)


from metanas.cli_meta import add_meta_train, add_recommend  # noqa: E402 (needs UsageError)

SUBCOMMANDS = [add_demo, add_bench, add_meta_train, add_recommend]


def build_parser() -> argparse.ArgumentParser:
    from metanas import __version__

    parser = argparse.ArgumentParser(
        prog="metanas",
        description="Neural architecture search strategies for KerasTuner and AutoKeras.",
    )
    parser.add_argument("--version", action="version", version=f"metanas {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as error:
        print(f"metanas {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
