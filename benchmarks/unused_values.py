"""What noting a model's unread values buys on keras-tuner's tutorial space.

keras-tuner's tutorial model registers ``units_i`` only when it builds layer
``i``, without a condition: once a three-layer model was built, every later
configuration carries ``units_1`` and ``units_2``, read or not. Without the
tuner's record of what each model read (`metanas.tuners.reads`), a mutation
of an unread value, or a proposal that differs from a tried configuration only
there, trains a model already trained.

Both arms run the metanas tuners through keras-tuner's search loop and build a
real Keras model per trial; the model is scored by a formula of its layers
(no training, so the runs are deterministic and fast): the optimum, score 0,
is three layers of (48, 32, 16) units with ``relu`` and a learning rate of
1e-3. Evolution runs without its final race (which re-evaluates on purpose, and
gains nothing from exact scores). "reads off" drops the tuner's record before the oracle sees it (the
behaviour before the record existed). Measures per run: distinct models among
the trials (by the values the model read), and the regret of the best model.

Usage:
    python benchmarks/unused_values.py [--seeds 10] [--trials 60] [--workers 2] [--out FILE]
"""

import argparse
import datetime
import multiprocessing
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
TARGET_UNITS = (48, 32, 16)
STRATEGIES = ("evolution", "random", "rl")


def make_hypermodel():
    import keras
    import keras_tuner

    class Tutorial(keras_tuner.HyperModel):
        def build(self, hp):
            model = keras.Sequential([keras.Input((4,))])
            units = []
            for i in range(hp.Int("num_layers", 1, 3)):
                units.append(hp.Int(f"units_{i}", 8, 64, step=8))
                model.add(keras.layers.Dense(units[-1], activation=hp.Choice(
                    "activation", ["relu", "tanh"])))
            model.add(keras.layers.Dense(1))
            model.spec = (units, hp.get("activation"),
                          hp.Choice("learning_rate", [1e-2, 1e-3, 1e-4]))
            return model

        def fit(self, hp, model, *args, **kwargs):
            return {"score": score(*model.spec)}

    return Tutorial()


def score(units, activation, learning_rate) -> float:
    """0 at the target; minus the distance to it otherwise."""
    padded = list(units) + [0] * (3 - len(units))
    return -(sum(abs(u - t) / 8 for u, t in zip(padded, TARGET_UNITS))
             + (activation != "relu") + abs(np.log10(learning_rate) + 3))


def run(job):
    strategy, reads_on, seed, trials = job
    import keras_tuner

    from metanas import tuners

    base = {"evolution": tuners.EvolutionSearch, "random": tuners.RandomSearch,
            "rl": tuners.RLControllerSearch}[strategy]

    class Tuner(base):
        def on_trial_end(self, trial):
            if not reads_on:  # as before the record: the oracle learns nothing
                self._reads.pop(trial.trial_id, None)
            super().on_trial_end(trial)

    with tempfile.TemporaryDirectory() as directory:
        # No final race for evolution: with exact scores it re-evaluates on purpose.
        extra = {"racing_fraction": 0.0} if strategy == "evolution" else {}
        tuner = Tuner(make_hypermodel(), objective=keras_tuner.Objective("score", "max"),
                      max_trials=trials, seed=seed, directory=directory, tracking=False,
                      cost_measures=False, **extra)
        started = time.perf_counter()
        tuner.search(verbose=0)
        seconds = time.perf_counter() - started
        models, best = set(), -np.inf
        for trial in tuner.oracle.trials.values():
            values = trial.hyperparameters.values
            units = tuple(values[f"units_{i}"] for i in range(values["num_layers"]))
            models.add((units, values["activation"], values["learning_rate"]))
            best = max(best, score(units, values["activation"], values["learning_rate"]))
    return {"strategy": strategy, "reads": reads_on, "seed": seed, "trials": trials,
            "models": len(models), "regret": -best, "seconds": seconds}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "unused_values.md"))
    args = parser.parse_args(argv)
    strategies = [s for s in STRATEGIES if s in args.strategies.split(",")]
    jobs = [(s, on, seed, args.trials) for s in strategies for on in (True, False)
            for seed in range(args.seeds)]
    rows = []
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        for row in pool.imap_unordered(run, jobs):
            rows.append(row)
            print(f"  {len(rows)}/{len(jobs)} runs", flush=True)
    rows.sort(key=lambda r: (STRATEGIES.index(r["strategy"]), not r["reads"], r["seed"]))
    from scipy.stats import mannwhitneyu

    from metanas.bench.command import _commit

    lines = [
        "# Noting unread values: keras-tuner's tutorial space",
        "",
        f"Generated {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC at "
        f"commit {_commit()}, {args.seeds} seeds per arm, "
        f"{args.trials} trials per run, {args.workers} processes.",
        "",
        "Command:",
        "",
        f"    python benchmarks/unused_values.py --seeds {args.seeds} --trials {args.trials} "
        f"--workers {args.workers}"
        + (f" --strategies {args.strategies}" if strategies != list(STRATEGIES) else ""),
        "",
        __doc__.split("\n\n", 1)[1].split("Usage:")[0].strip(),
        "",
        "| strategy | reads | distinct models (mean) | of trials | mean regret of the best "
        "| Mann-Whitney p (regret, on vs off) | mean seconds per run |",
        "|---|---|---|---|---|---|---|",
    ]
    for strategy in strategies:
        arms = {on: [r for r in rows if r["strategy"] == strategy and r["reads"] == on]
                for on in (True, False)}
        on, off = ([r["regret"] for r in arms[k]] for k in (True, False))
        p = mannwhitneyu(on, off).pvalue if on != off else 1.0
        for flag in (True, False):
            arm = arms[flag]
            lines.append(
                f"| {strategy} | {'on' if flag else 'off'} | "
                f"{np.mean([r['models'] for r in arm]):.1f} | {args.trials} | "
                f"{np.mean([r['regret'] for r in arm]):.2f} | "
                f"{f'{p:.3g}' if flag else ''} | "
                f"{np.mean([r['seconds'] for r in arm]):.1f} |")
    lines += ["", "Raw rows (strategy, reads, seed, distinct models, regret):", ""]
    lines += [f"    {r['strategy']} {'on ' if r['reads'] else 'off'} {r['seed']:2d} "
              f"{r['models']:3d} {r['regret']:.2f}" for r in rows]
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:len(lines) - len(rows)]))


if __name__ == "__main__":
    sys.exit(main())
