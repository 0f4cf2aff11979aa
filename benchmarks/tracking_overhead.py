"""Tracking overhead: the demo search with MLflow tracking on against off.

Runs the demo's evolution search (`metanas.demo`: digits, 12 trials of 8
epochs, population 6, tournament 3) once with ``tracking=False`` and once
with the default `MlflowTracker` (a local SQLite store, as a user gets it),
for each seed, alternating which goes first. Reports per seed the wall time
of ``search()`` both ways, their ratio, and the time spent inside the
tracker's hooks (measured directly, so it is not blurred by other load on
the machine), and the means over seeds.

Usage:
    .venv/bin/python benchmarks/tracking_overhead.py --seeds 0 1 2 [--max-trials 12 --epochs 8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras  # noqa: E402

from metanas.demo import build_mlp, load_digits_split  # noqa: E402
from metanas.tracking import MlflowTracker  # noqa: E402
from metanas.tuners import EvolutionSearch  # noqa: E402


class TimedTracker(MlflowTracker):
    """The default tracker, with the seconds spent in each of its hooks summed."""

    seconds = 0.0

    def __getattribute__(self, name):
        attribute = super().__getattribute__(name)
        if not name.startswith("on_"):
            return attribute

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                TimedTracker.seconds += time.perf_counter() - start

        return timed


def one_search(seed: int, tracked: bool, directory: str, uri: str, args) -> dict:
    keras.utils.set_random_seed(seed)
    (x, y), (x_val, y_val) = load_digits_split(seed)
    TimedTracker.seconds = 0.0
    tracker = TimedTracker(tracking_uri=uri) if tracked else False
    tuner = EvolutionSearch(
        build_mlp, objective="val_accuracy", max_trials=args.max_trials,
        population_size=6, tournament_size=3, seed=seed, directory=directory,
        project_name=f"digits_evolution_{seed}_{int(tracked)}", overwrite=True,
        tracking=tracker,
    )
    start = time.perf_counter()
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=args.epochs, batch_size=64,
                 verbose=0)
    wall = time.perf_counter() - start
    return {"wall_s": wall, "tracker_s": TimedTracker.seconds if tracked else 0.0,
            "trials": len(tuner.oracle.trials)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="metanas-bench-")
    uri = f"sqlite:///{work}/mlflow.db"
    # The store's schema is created once per store (~1.5 s), not per search:
    # create it before timing, as any second search of a user finds it.
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=uri).search_experiments()
    rows = []
    for i, seed in enumerate(args.seeds):
        order = [False, True] if i % 2 == 0 else [True, False]
        result = {tracked: one_search(seed, tracked, work, uri, args) for tracked in order}
        row = {
            "seed": seed,
            "off_s": result[False]["wall_s"],
            "on_s": result[True]["wall_s"],
            "ratio": result[True]["wall_s"] / result[False]["wall_s"],
            "tracker_s": result[True]["tracker_s"],
            "tracker_share": result[True]["tracker_s"] / result[True]["wall_s"],
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    summary = {
        "commit": commit,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "mean_off_s": statistics.mean(r["off_s"] for r in rows),
        "mean_on_s": statistics.mean(r["on_s"] for r in rows),
        "mean_ratio": statistics.mean(r["ratio"] for r in rows),
        "mean_tracker_share": statistics.mean(r["tracker_share"] for r in rows),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
