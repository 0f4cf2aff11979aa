"""What crediting only the decisions a model read buys the RL controller.

keras-tuner's tutorial space (see `unused_values.py`): ``num_layers`` in 1-3,
``units_0..2`` in 8-64 (step 8), an activation and a learning rate; the
formula of `unused_values.score` scores a model (0 at the optimum, three
layers of (48, 32, 16) units, relu, 1e-3). The RL controller samples every
decision, ``units_2`` of a one-layer model too; the tuner tells it which
values the model did not read (`note_unused`), and REINFORCE then credits the
reward to the read decisions only (`RLControllerOracle._credit`). "credit
off" credits every sampled decision, as before. The oracle is driven
directly (no Keras model is built), so runs are cheap and deterministic.

Measures per run: the regret of the best model found, and the regret of the
policy's most likely model at the end.

Usage:
    python benchmarks/rl_credit.py [--seeds 30] [--trials 100] [--workers 2] [--out FILE]
"""

import argparse
import datetime
import multiprocessing
import os
import pathlib
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from unused_values import score  # noqa: E402


def space():
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    hp.Int("num_layers", 1, 3)
    for i in range(3):
        hp.Int(f"units_{i}", 8, 64, step=8)
    hp.Choice("activation", ["relu", "tanh"])
    hp.Choice("learning_rate", [1e-2, 1e-3, 1e-4])
    return hp


def model_of(values):
    units = tuple(values[f"units_{i}"] for i in range(values["num_layers"]))
    return units, values["activation"], values["learning_rate"]


def run(job):
    credit_on, seed, trials = job
    import keras_tuner
    from keras_tuner.src.engine import trial as trial_module

    from metanas.tuners import RLControllerOracle

    if not credit_on:  # as before: every sampled decision gets the reward
        RLControllerOracle._credit = staticmethod(lambda actions, unread: actions)
    oracle = RLControllerOracle(objective=keras_tuner.Objective("score", "max"), max_trials=trials, seed=seed,
                                hyperparameters=space())
    with tempfile.TemporaryDirectory() as directory:
        oracle._set_project_dir(directory, "p")
        oracle.verbose = 0
        best = -np.inf
        while True:
            trial = oracle.create_trial("tuner0")
            if trial.status == trial_module.TrialStatus.STOPPED:
                break
            values = trial.hyperparameters.values
            layers = values["num_layers"]
            oracle.note_unused(trial.trial_id, [f"units_{i}" for i in range(layers, 3)])
            value = score(*model_of(values))
            best = max(best, value)
            oracle.update_trial(trial.trial_id, {"score": value})
            trial.status = trial_module.TrialStatus.COMPLETED
            oracle.end_trial(trial)
        # The policy's most likely model: each decision's most likely value, in order.
        diagnostics = oracle.strategy_diagnostics()
        mode = {}
        for hp in oracle.hyperparameters.space:
            probs = {k.rsplit("/", 1)[1]: v for k, v in diagnostics.items()
                     if k.startswith(f"policy/prob/{hp.name}/")}
            if probs:
                text = max(probs, key=probs.get)
                mode[hp.name] = type(hp.default)(float(text)) if hp.name != "activation" else text
        mode_regret = (-score(*model_of(mode)) if {"num_layers", "activation", "learning_rate"}
                       <= mode.keys() and all(f"units_{i}" in mode
                                              for i in range(mode["num_layers"])) else np.nan)
    return {"credit": credit_on, "seed": seed, "regret": -best, "mode_regret": mode_regret}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "rl_credit.md"))
    args = parser.parse_args(argv)
    jobs = [(on, seed, args.trials) for on in (True, False) for seed in range(args.seeds)]
    rows = []
    with multiprocessing.get_context("spawn").Pool(args.workers, maxtasksperchild=1) as pool:
        for row in pool.imap_unordered(run, jobs):
            rows.append(row)
            print(f"  {len(rows)}/{len(jobs)} runs", flush=True)
    rows.sort(key=lambda r: (not r["credit"], r["seed"]))
    from scipy.stats import mannwhitneyu, wilcoxon

    from metanas.bench.command import _commit

    arms = {on: [r for r in rows if r["credit"] == on] for on in (True, False)}
    lines = [
        "# RL controller: credit only the decisions a model read",
        "",
        f"Generated {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC at "
        f"commit {_commit()}, {args.seeds} seeds per arm (the same seeds), "
        f"{args.trials} trials per run, {args.workers} processes.",
        "",
        "Command:",
        "",
        f"    python benchmarks/rl_credit.py --seeds {args.seeds} --trials {args.trials} "
        f"--workers {args.workers}",
        "",
        __doc__.split("\n\n", 1)[1].split("Usage:")[0].strip(),
        "",
        "| credit | mean regret of the best model | of the policy's most likely model "
        "| runs whose most likely model is complete |",
        "|---|---|---|---|",
    ]
    for on in (True, False):
        arm = arms[on]
        modes = [r["mode_regret"] for r in arm if not np.isnan(r["mode_regret"])]
        lines.append(f"| {'read decisions only' if on else 'every decision (before)'} | "
                     f"{np.mean([r['regret'] for r in arm]):.2f} | "
                     f"{np.mean(modes) if modes else float('nan'):.2f} | {len(modes)} |")
    on, off = ([r["regret"] for r in arms[k]] for k in (True, False))
    p = mannwhitneyu(on, off).pvalue if on != off else 1.0
    diffs = [a - b for a, b in zip(on, off)]
    p_paired = wilcoxon(diffs).pvalue if any(diffs) else 1.0
    lines += ["", f"Best model's regret, read-only credit vs every decision: Mann-Whitney "
              f"p = {p:.3g}; paired by seed (Wilcoxon) p = {p_paired:.3g}.", "",
              "Raw rows (credit, seed, regret of the best, of the most likely):", ""]
    lines += [f"    {'read' if r['credit'] else 'all '} {r['seed']:2d} {r['regret']:.2f} "
              f"{r['mode_regret']:.2f}" for r in rows]
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:len(lines) - len(rows)]))


if __name__ == "__main__":
    sys.exit(main())
