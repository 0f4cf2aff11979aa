"""Build overhead: one garbage collection before each trial's build, against keras-tuner's two.

keras-tuner's ``Tuner._try_build`` calls ``keras.backend.clear_session()``,
which in Keras 3 runs ``gc.collect()``, and then ``gc.collect()`` again; each
pass walks every live object (TensorFlow's, Keras's, MLflow's, the data's).
metanas's tuners keep the first only. This runs the demo's evolution search
(`metanas.demo`: digits, population 6, tournament 3, MLflow tracking on, as a
user gets it) once with metanas's build and once with keras-tuner's, for each
seed, in one fresh process per search, alternating which goes first. Reported
per seed: the seconds spent in ``_try_build`` over the search (measured
directly, so other load on the machine blurs it less) and the search's wall
time, both ways; then the means over seeds and their ratios.

Usage:
    .venv/bin/python benchmarks/build_overhead.py --seeds 0 1 2 [--max-trials 12 --epochs 8]
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


def one_search(way: str, seed: int, max_trials: int, epochs: int) -> dict:
    """One demo search in this process; ``way`` is "metanas" or "keras-tuner"."""
    import keras
    import keras_tuner

    from metanas.demo import build_mlp, load_digits_split
    from metanas.tuners import EvolutionSearch

    build = keras_tuner.Tuner._try_build if way == "keras-tuner" else EvolutionSearch._try_build
    spent = [0.0]

    class Timed(EvolutionSearch):
        def _try_build(self, hp):
            started = time.perf_counter()
            try:
                return build(self, hp)
            finally:
                spent[0] += time.perf_counter() - started

    keras.utils.set_random_seed(seed)
    (x, y), validation = load_digits_split(seed)
    with tempfile.TemporaryDirectory() as folder:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder}/mlflow.db"
        tuner = Timed(build_mlp, objective="val_accuracy", max_trials=max_trials,
                      population_size=6, tournament_size=3, seed=seed, directory=folder,
                      project_name="build_overhead")
        started = time.perf_counter()
        tuner.search(x, y, validation_data=validation, epochs=epochs, batch_size=64, verbose=0)
        wall = time.perf_counter() - started
        trials = len(tuner.oracle.trials)
    return {"way": way, "seed": seed, "build_s": spent[0], "search_s": wall, "trials": trials}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--one", nargs=2, metavar=("WAY", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one_search(args.one[0], int(args.one[1]), args.max_trials,
                                    args.epochs)))
        return 0
    rows = []
    for i, seed in enumerate(args.seeds):
        ways = ["metanas", "keras-tuner"] if i % 2 == 0 else ["keras-tuner", "metanas"]
        for way in ways:
            out = subprocess.run(
                [sys.executable, __file__, "--one", way, str(seed), "--max-trials",
                 str(args.max_trials), "--epochs", str(args.epochs)],
                capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("| seed | way | trials | s in _try_build | s per build | search s |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['seed']} | {row['way']} | {row['trials']} | {row['build_s']:.2f} | "
              f"{row['build_s'] / row['trials']:.3f} | {row['search_s']:.1f} |")
    means = {way: {key: statistics.mean(r[key] for r in rows if r["way"] == way)
                   for key in ("build_s", "search_s")} for way in ("metanas", "keras-tuner")}
    print()
    for way, mean in means.items():
        print(f"mean over seeds, {way}: {mean['build_s']:.2f} s in _try_build, "
              f"{mean['search_s']:.1f} s search")
    print(f"ratio metanas / keras-tuner: _try_build "
          f"{means['metanas']['build_s'] / means['keras-tuner']['build_s']:.2f}, search "
          f"{means['metanas']['search_s'] / means['keras-tuner']['search_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
