"""How much of a table's observed score is noise, among its best configurations.

For each task, over the top 1% of configurations by true (seed-averaged) score
(at least 100), the per-seed scores are split as a two-way layout:
``score[c, s] = grand + true effect of c + seed effect of s + rest``. The
seed effect is shared by every configuration trained with seed ``s`` (on
HPOBench it is large: a seed fixes more than the initialisation); the rest is
each evaluation's own noise. A search returns its best configuration by
observed score, so when the noise is many times the spread of the true scores
among the best configurations, which of them it returns is mostly chance.

``--head-start`` adds a bound on what choosing under that noise allows: a
search told in advance which configurations are the table's best ``K`` (the
top 1%, 3.3% and 10%), spending its 100 evaluations on ``m`` of them drawn at
random, each evaluated ``r`` times (seeds drawn as the harness draws them),
and returning the best by mean, with the best ``(m, r)`` for each ``K``; its
mean regret over random search's (100 configurations, one evaluation each,
best by observed score), both simulated here. A real search has to spend
evaluations finding such configurations, so it cannot expect to do better.

``--common-seeds`` adds an offline simulation of common random numbers (the
``k``-th evaluation of every configuration reads the same table seed,
``base + k``, as SMAC's intensification compares on shared seeds): default
evolution and metanas random search, both with that protocol, on the tuning
tasks, against the harness's protocol (each evaluation a seed drawn at
random). It answers whether a search that could pair its evaluations on
shared training seeds would reach half of random search's regret.

Usage:
    python benchmarks/table_noise.py [--head-start] [--common-seeds --seeds 30] [--out FILE]
"""

import argparse
import datetime
import os
import pathlib
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402

from metanas.bench.tasks import TASK_NAMES, TUNING_TASKS, load_task  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


def decompose(task, share: float = 0.01):
    """Standard deviations of the true, seed and own effects among the top configurations."""
    rows = np.all(np.isfinite(task.scores), axis=1)
    scores = task.scores[rows]
    true = scores.mean(axis=1)
    regret = (task.optimum - true) if task.maximize else (true - task.optimum)
    top = scores[np.argsort(regret)[: max(100, int(share * len(true)))]]
    grand = top.mean()
    config = top.mean(axis=1, keepdims=True) - grand
    seed = top.mean(axis=0, keepdims=True) - grand
    rest = top - grand - config - seed
    return {
        "configs": len(true),
        "seeds": scores.shape[1],
        "top": len(top),
        "true_sd": float(config.std()),
        "seed_sd": float(seed.std(ddof=1)),
        # Two-way layout without replication: (n - 1)(S - 1) degrees of freedom.
        "rest_sd": float(np.sqrt(np.sum(rest ** 2) / ((len(top) - 1) * (top.shape[1] - 1)))),
        "eval_sd": float(np.median(top.std(axis=1, ddof=1))),
    }


_HARNESS_OBSERVE = None


def _set_protocol(paired: bool) -> None:
    """`Task.observe` as the harness draws seeds, or under common random numbers."""
    global _HARNESS_OBSERVE
    from metanas.bench import tasks

    if _HARNESS_OBSERVE is None:
        _HARNESS_OBSERVE = tasks.Task.observe
    if not paired:
        tasks.Task.observe = _HARNESS_OBSERVE
        return
    runs = {}  # one table seed base per run (per noise source)

    def observe(self, values, rng):
        state = runs.get(id(rng))
        if state is None or state[0] is not rng:
            state = runs[id(rng)] = (rng, int(rng.integers(self.num_seeds)), {})
        _, base, counts = state
        code = self.code(values)
        k = counts.get(code, 0)
        counts[code] = k + 1
        return float(self.scores[code, (base + k) % self.seed_counts[code]])

    tasks.Task.observe = observe


def _regrets(job):
    task_name, strategy, seeds, paired = job
    _set_protocol(paired)  # a pool process runs jobs of both protocols
    from metanas.bench.runner import run_one

    return [run_one(task_name, strategy, seed, evals=100, use_time=False)["regret"]
            for seed in seeds]


def common_seeds(seeds: int, workers: int):
    import multiprocessing

    strategies = ("metanas/evolution", "metanas/random")
    jobs = [(t, s, list(range(seeds)), paired) for t in TUNING_TASKS for s in strategies
            for paired in (False, True)]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        out = pool.map(_regrets, jobs)
    means = {job[:2] + (job[3],): float(np.mean(r)) for job, r in zip(jobs, out)}
    rows = []
    for t in TUNING_TASKS:
        rnd, evo = means[(t, strategies[1], False)], means[(t, strategies[0], False)]
        rnd_p, evo_p = means[(t, strategies[1], True)], means[(t, strategies[0], True)]
        rows.append(f"| {t} | {evo / rnd:.2f} | {evo_p / rnd_p:.2f} | {evo_p / rnd:.2f} "
                    f"| {rnd_p / rnd:.2f} |")
    return rows


def _choose(task, regret, pool, m, r, rng, reps):
    """Mean regret of the best-by-mean of ``m`` of ``pool``, each observed ``r`` times."""
    out = np.empty(reps)
    for i in range(reps):
        codes = rng.choice(pool, size=m, replace=False)
        seeds = rng.integers(task.seed_counts[codes][:, None], size=(m, r))
        observed = task.scores[codes[:, None], seeds].mean(axis=1)
        best = np.argmax(observed) if task.maximize else np.argmin(observed)
        out[i] = regret[codes[best]]
    return float(out.mean())


HEAD_START_SHARES = (0.01, 0.033, 0.1)
HEAD_START_REPEATS = (1, 2, 4, 5, 10, 20)


def head_start(task, evals: int = 100, reps: int = 2000, seed: int = 0):
    """Per share of the table: (best ratio to random search's regret, m, r)."""
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(np.isfinite(task.mean_scores))
    true = task.mean_scores[rows]
    regret = np.zeros(task.size)
    regret[rows] = (task.optimum - true) if task.maximize else (true - task.optimum)
    random = _choose(task, regret, rows, evals, 1, rng, reps)
    order = rows[np.argsort(regret[rows], kind="stable")]
    found = []
    for share in HEAD_START_SHARES:
        pool = order[: max(evals, int(round(share * len(rows))))]
        found.append(min((_choose(task, regret, pool, evals // r, r, rng, reps) / random,
                          evals // r, r) for r in HEAD_START_REPEATS))
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head-start", action="store_true")
    parser.add_argument("--common-seeds", action="store_true")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "table_noise.md"))
    args = parser.parse_args(argv)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    lines = [
        "# Noise among the best configurations of each table",
        "",
        f"Date {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"commit {commit}. Command: `python benchmarks/table_noise.py"
        + (" --head-start" if args.head_start else "")
        + (f" --common-seeds --seeds {args.seeds}" if args.common_seeds else "") + "`",
        "",
        "Over the top 1% of each table's configurations by true score (at least 100): the "
        "standard deviation of their true scores (*true*), of the seed effect shared by "
        "every configuration trained with one seed (*seed*), of each evaluation's own "
        "noise (*own*), and the median standard deviation of one configuration's "
        "evaluations (*one config*). Rows missing a seed are left out (NB201: 8169 of "
        "15625 have all 3), and a seed effect estimated from 3-5 seeds is rough. *noise / true* = one config / true: how many times the "
        "noise of one evaluation exceeds the spread it has to resolve. Descriptive only; "
        "nothing is chosen from it.",
        "",
        "| task | configs | seeds | true | seed | own | one config | noise / true |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in TASK_NAMES:
        d = decompose(load_task(name))
        held = "" if name in TUNING_TASKS else " (held out)"
        lines.append(
            f"| {name}{held} | {d['configs']} | {d['seeds']} | {d['true_sd']:.3g} "
            f"| {d['seed_sd']:.3g} | {d['rest_sd']:.3g} | {d['eval_sd']:.3g} "
            f"| {d['eval_sd'] / d['true_sd']:.1f} |")
    if args.head_start:
        shares = " | ".join(f"top {share:.1%}" for share in HEAD_START_SHARES)
        lines += [
            "",
            "## A head start: choosing among the best configurations, known in advance",
            "",
            "A search told which configurations are the table's best K (a share of its "
            "rows), spending its 100 evaluations on m of them drawn at random, each "
            "evaluated r times (seeds drawn as the harness draws them), and returning the "
            "best by mean: its mean regret over random search's (100 configurations, one "
            "evaluation each, best by observed score), for the best (m, r) per share "
            f"(r in {list(HEAD_START_REPEATS)}; 2000 simulated runs each, seed 0). A real "
            "search has to spend evaluations finding such configurations first. "
            "Descriptive only; nothing is chosen from it.",
            "",
            f"| task | {shares} |",
            "|---|" + "---|" * len(HEAD_START_SHARES),
        ]
        for name in TUNING_TASKS:
            cells = " | ".join(f"{ratio:.2f} ({m} x {r})" for ratio, m, r in
                               head_start(load_task(name)))
            lines.append(f"| {name} | {cells} |")
    if args.common_seeds:
        lines += [
            "",
            f"## Common random numbers (offline simulation, tuning tasks, seeds 0-{args.seeds - 1})",
            "",
            "Mean regret of default evolution over metanas random search's, 100 evaluations. "
            "*harness*: every evaluation a seed drawn at random (the benchmark's protocol); "
            "*paired*: both searches evaluate the k-th time any configuration on table seed "
            "base + k; *paired evolution / harness random*: evolution paired, random search "
            "not; last column: what pairing does to random search itself.",
            "",
            "| task | harness | paired | paired evolution / harness random | random paired / not |",
            "|---|---|---|---|---|",
        ] + common_seeds(args.seeds, args.workers)
    text = "\n".join(lines) + "\n"
    pathlib.Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
