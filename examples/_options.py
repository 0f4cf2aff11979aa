"""Command-line options shared by the AutoKeras examples."""

import argparse

TUNERS = ["evolution", "rl", "metanas-random", "meta"]


def parse_args(doc, *, max_trials, epochs, tasks=False, tuners=TUNERS):
    """--tuner, --max-trials, --epochs, --directory, --quick (and --task if ``tasks``)."""
    parser = argparse.ArgumentParser(description=doc)
    if tasks:
        parser.add_argument("--task", choices=["classifier", "regressor"], default="classifier")
    parser.add_argument("--tuner", default="evolution", choices=tuners)
    parser.add_argument("--max-trials", type=int, default=max_trials)
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--directory", default="example_runs")
    parser.add_argument("--quick", action="store_true", help="a few hundred rows only (tests)")
    return parser.parse_args()
