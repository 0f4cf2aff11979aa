"""Tables, plots and significance tests from raw benchmark results.

Raw results are the dicts `metanas.bench.run_one` returns, one per
(task, strategy, seed), stored as gzipped JSON (`save_results`/`load_results`).
"""

from __future__ import annotations

import gzip
import json
import math
import os
import zlib
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from metanas.bench.tasks import TASK_NAMES, TUNING_TASKS

__all__ = [
    "write_atomically",
    "save_results",
    "load_results",
    "check_run",
    "job_key",
    "group",
    "main_table",
    "true_score_table",
    "time_budget_table",
    "overhead_table",
    "significance_table",
    "bar_table",
    "hypervolume_table",
    "plot_curves",
    "best_peer",
]

#: Fewest seeds a peer needs to be the "best peer" of a significance test.
MIN_SEEDS_FOR_TEST = 5


def job_key(job: Mapping[str, Any]) -> Tuple:
    """What identifies a run: the same key means the same (deterministic) result."""
    settings = job.get("settings")
    return (
        job.get("task_name", job.get("task")),
        job["strategy"],
        int(job["seed"]),
        int(job.get("budget", job.get("evals", 100))),
        json.dumps(settings, sort_keys=True) if settings is not None else None,
        bool(job.get("multi_objective", False)),
        bool(job.get("use_time", True)),
        int(job.get("strategy_version", 1)),
        int(job.get("noise_protocol", 1)),
    )


def write_atomically(path: str, write, opener=open) -> None:
    """Writes ``path`` through ``write(file)`` so that a kill mid-write leaves the old file whole."""
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with opener(temporary, "wt", encoding="utf-8") as f:
            write(f)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def save_results(results: Sequence[Mapping[str, Any]], path: str) -> None:
    """Writes results as gzipped JSON (``.json.gz``) or plain JSON."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_atomically(path, lambda f: json.dump(list(results), f, separators=(",", ":")),
                      gzip.open if path.endswith(".gz") else open)


def save_partial(path: str, results: Sequence[Mapping[str, Any]]) -> None:
    """Replaces ``path`` (JSON lines, as `append_partial` writes) with ``results``."""
    write_atomically(path, lambda f: f.writelines(
        json.dumps(r, separators=(",", ":")) + "\n" for r in results))


def append_partial(path: str, result: Mapping[str, Any]) -> None:
    """Appends one finished run to ``path`` (JSON lines) and syncs it to disk.

    After a torn last line (a process killed mid-write, a full disk) the run
    starts a line of its own: joined to the torn one, neither would read.
    """
    with open(path, "a+b") as f:
        torn = False
        if f.seek(0, os.SEEK_END) > 0:
            f.seek(-1, os.SEEK_END)
            torn = f.read(1) != b"\n"
        line = json.dumps(result, separators=(",", ":")) + "\n"
        f.write((("\n" if torn else "") + line).encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


def read_partial(path: str) -> Tuple[List[Dict[str, Any]], List[bytes]]:
    """The runs `append_partial` kept in ``path`` and its lines that are not one.

    A line that is not a finished run (torn: the process died while writing
    it; not UTF-8 or JSON; a run with a bad value, see `check_run`) is
    returned as read, for the caller to keep aside rather than lose.

    Raises:
        ValueError: ``path`` is a directory.
    """
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory, not a file of finished runs")
    if not os.path.exists(path):
        return [], []
    runs, unreadable = [], []
    with open(path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                run = json.loads(line.decode("utf-8"))
                check_run(run)
            except ValueError:  # UnicodeDecodeError and JSONDecodeError among them
                unreadable.append(line if line.endswith(b"\n") else line + b"\n")
                continue
            runs.append(run)
    return runs, unreadable


def load_partial(path: str) -> List[Dict[str, Any]]:
    """The runs `append_partial` kept in ``path`` ([] if none); lines that are not
    one (a torn last line) are skipped: see `read_partial`."""
    return read_partial(path)[0]


def set_aside(path: str, lines: Sequence[bytes]) -> None:
    """Appends ``lines`` (as `read_partial` returned them) to ``path`` and syncs it."""
    with open(path, "ab") as f:
        f.writelines(lines)
        f.flush()
        os.fsync(f.fileno())


#: Fields of a run `job_key` and the report read as ints.
INT_FIELDS = ("seed", "budget", "evals", "strategy_version", "noise_protocol", "unique")

#: Fields of a run the report reads as numbers (None or absent: not measured).
NUMBER_FIELDS = ("regret", "found_regret", "true_score", "time_regret", "hypervolume",
                 "overhead_ms", "propose_ms")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_run(run: Any) -> None:
    """Checks that ``run`` is a finished run the report can read.

    Args:
        run: A dict as `metanas.bench.run_one` returns it, read back from JSON.

    Raises:
        ValueError: ``run`` is not a dict with ``task``, ``strategy`` and
            ``seed``, or one of its fields has a bad value (named).
    """
    if not isinstance(run, dict) or not {"task", "strategy", "seed"} <= set(run):
        raise ValueError("not a run: expected a dict with task, strategy and seed")
    for field in ("task", "strategy"):
        if not isinstance(run[field], str):
            raise ValueError(f"{field} must be a string, got {run[field]!r:.60}")
    for field in INT_FIELDS:
        value = run.get(field, 0)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{field} must be an int, got {value!r:.60}")
    for field in NUMBER_FIELDS:
        value = run.get(field)
        if value is not None and not _is_number(value):
            raise ValueError(f"{field} must be a number or null, got {value!r:.60}")
    curve = run.get("curve")
    if curve is not None and not (isinstance(curve, list) and all(map(_is_number, curve))):
        raise ValueError(f"curve must be a list of numbers, got {curve!r:.60}")


def load_results(path: str) -> List[Dict[str, Any]]:
    """Reads what `save_results` wrote; ValueError if it is not a results file."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, EOFError, zlib.error, json.JSONDecodeError, UnicodeDecodeError) as error:
        # EOFError, zlib.error: a truncated or corrupt gzip file.
        raise ValueError(f"{path} is not a benchmark results file: {error}") from error
    if not isinstance(data, list) or not all(
        isinstance(r, dict) and {"task", "strategy", "seed"} <= set(r) for r in data
    ):
        raise ValueError(f"{path} is not a benchmark results file: expected a list of runs.")
    for i, run in enumerate(data):
        try:
            check_run(run)
        except ValueError as error:
            where = (f"run {i} ({run['task']!r:.60}, {run['strategy']!r:.60}, "
                     f"seed {run['seed']!r:.20})")
            raise ValueError(f"{path} is not a benchmark results file: {where} has a bad "
                             f"value ({error}).") from None
    return data


def group(results: Iterable[Mapping[str, Any]], field: str) -> Dict[Tuple[str, str], List[float]]:
    """``{(task, strategy): [field of each seed]}``."""
    out: Dict[Tuple[str, str], List[float]] = {}
    for r in results:
        if field in r and r[field] is not None:
            out.setdefault((r["task"], r["strategy"]), []).append(float(r[field]))
    return out


def _ordered(names: Iterable[str], order: Sequence[str]) -> List[str]:
    names = set(names)
    return [n for n in order if n in names] + sorted(names - set(order))


def _tasks(results) -> List[str]:
    return _ordered({r["task"] for r in results}, TASK_NAMES)


def _strategies(results, order: Sequence[str] = ()) -> List[str]:
    return _ordered({r["strategy"] for r in results}, order)


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _sem(values: Sequence[float]) -> float:
    return float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0


def _cell_table(results, field: str, order: Sequence[str], lower_is_better: Optional[bool],
                task_better: Optional[Mapping[str, bool]] = None, median: bool = False
                ) -> List[str]:
    """Mean ± standard error of ``field`` per task and strategy (or the median), best bold.

    Only a cell of several runs is bold (keras-tuner's Bayesian optimisation
    often has one seed: its luck is no measured best), unless none has several.
    """
    center = np.median if median else np.mean
    data = group(results, field)
    tasks = _tasks(results)
    strategies = _strategies(results, order)
    lines = ["| task | " + " | ".join(f"`{s}`" for s in strategies) + " |",
             "|---|" + "---|" * len(strategies)]
    for task in tasks:
        means = {s: float(center(data[(task, s)])) for s in strategies if (task, s) in data}
        best = None
        if means:
            low = lower_is_better if lower_is_better is not None else not task_better[task]
            ranked = [m for s, m in means.items() if len(data[(task, s)]) > 1] or means.values()
            best = min(ranked) if low else max(ranked)
        cells = []
        for s in strategies:
            if s not in means:
                cells.append("–")
                continue
            values = data[(task, s)]
            text = _fmt(means[s]) if median else f"{_fmt(means[s])} ± {_fmt(_sem(values))}"
            if means[s] == best:
                text = f"**{text}**"
            cells.append(text)
        mark = "" if task in TUNING_TASKS else " (held out)"
        lines.append(f"| {task}{mark} | " + " | ".join(cells) + " |")
    return lines


def main_table(results, order: Sequence[str] = ()) -> List[str]:
    """Mean regret ± standard error of the returned configuration, per task and strategy."""
    return _cell_table(results, "regret", order, lower_is_better=True)


def median_table(results, order: Sequence[str] = ()) -> List[str]:
    """Median regret of the returned configuration: unlike the mean, not moved by a
    few seeds (on HPOLib, a returned configuration one of whose training seeds
    diverged has a regret hundreds of times the others')."""
    return _cell_table(results, "regret", order, lower_is_better=True, median=True)


def found_table(results, order: Sequence[str] = ()) -> List[str]:
    """Mean regret of the best configuration each search evaluated (by true score)."""
    return _cell_table(results, "found_regret", order, lower_is_better=True)


def true_score_table(results, order: Sequence[str] = ()) -> List[str]:
    """Mean true (seed-averaged) score of the returned configuration."""
    from metanas.bench.tasks import load_task

    better = {t: load_task(t).maximize for t in _tasks(results)}
    return _cell_table(results, "true_score", order, lower_is_better=None, task_better=better)


def time_budget_table(results, order: Sequence[str] = ()) -> List[str]:
    """Mean regret at NAS-Bench-201's simulated training-time budget."""
    timed = [r for r in results if "time_regret" in r]
    return _cell_table(timed, "time_regret", order, lower_is_better=True) if timed else []


def seeds_table(results, order: Sequence[str] = ()) -> List[str]:
    """Seeds run per strategy (the minimum and maximum over tasks) and tasks covered."""
    counts: Dict[str, List[int]] = {}
    for (task, strategy), values in group(results, "seed").items():
        counts.setdefault(strategy, []).append(len(values))
    lines = ["| strategy | seeds per task | tasks |", "|---|---|---|"]
    for s in _strategies(results, order):
        c = counts.get(s, [0])
        seeds = f"{min(c)}" if min(c) == max(c) else f"{min(c)}–{max(c)}"
        lines.append(f"| `{s}` | {seeds} | {len(c)} |")
    return lines


def overhead_table(results, order: Sequence[str] = (), descriptions: Optional[Mapping[str, str]] = None
                   ) -> List[str]:
    """Strategy time per evaluation and the share of evaluations that were new configurations."""
    lines = ["| strategy | what | oracle ms/eval (median) | propose ms/eval (median) | "
             "unique configs / evals (mean) |", "|---|---|---|---|---|"]
    for s in _strategies(results, order):
        runs = [r for r in results if r["strategy"] == s and "overhead_ms" in r]
        if not runs:
            continue
        unique = np.mean([r["unique"] / max(r["evals"], 1) for r in runs])
        lines.append(
            f"| `{s}` | {(descriptions or {}).get(s, '')} | "
            f"{np.median([r['overhead_ms'] for r in runs]):.2f} | "
            f"{np.median([r['propose_ms'] for r in runs]):.2f} | {unique:.3f} |"
        )
    return lines


def best_peer(results, task: str, peers: Sequence[str], field: str = "regret",
              lower_is_better: bool = True) -> Optional[str]:
    """The peer with the best mean ``field`` on ``task`` among those with enough seeds."""
    data = group(results, field)
    sign = 1.0 if lower_is_better else -1.0
    candidates = [(sign * float(np.mean(data[(task, p)])), p) for p in peers
                  if len(data.get((task, p), [])) >= MIN_SEEDS_FOR_TEST]
    return min(candidates)[1] if candidates else None


def _p_value(p: float, alpha: float = 0.05) -> str:
    """``p`` to 2 significant digits, or more where 2 would round it across ``alpha``
    (0.0498 is "0.0498", not a starred "0.05")."""
    for digits in range(2, 17):
        text = f"{p:.{digits}g}"
        if (float(text) < alpha) == (p < alpha):
            return text
    return repr(p)


def holm(p_values: Sequence[float]) -> List[float]:
    """Holm's step-down adjusted p-values (Holm 1979), in the order given: each
    is below ``alpha`` exactly where Holm's procedure rejects at ``alpha``,
    keeping the chance of any false "significant" among them at most ``alpha``.
    A NaN (a test of NaN scores) counts as 1."""
    p_values = [1.0 if math.isnan(p) else p for p in p_values]  # a NaN score's test
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def significance_table(results, metanas: Sequence[str], peers: Sequence[str],
                       field: str = "regret", lower_is_better: bool = True) -> List[str]:
    """Two-sided Mann-Whitney U of each metanas strategy's final ``field`` vs the best peer's.

    Cells: ``better``/``worse`` (the side the test finds: which of the two
    beats the other in more pairs of seeds) and the p-value; ``*`` marks p < 0.05,
    and ``†`` a test still below 0.05 after Holm's correction (`holm`) for the
    strategy's tests on all the table's tasks (its column).
    """
    from scipy.stats import mannwhitneyu

    data = group(results, field)
    metanas = [m for m in metanas if any(k[1] == m for k in data)]
    sign = 1.0 if lower_is_better else -1.0
    rows: List[Tuple[str, str, List[Any]]] = []  # cells: text, or (word, p) tested
    for task in _tasks(results):
        peer = best_peer(results, task, peers, field, lower_is_better)
        if peer is None:
            continue
        cells: List[Any] = []
        for m in metanas:
            a, b = data.get((task, m), []), data[(task, peer)]
            if len(a) < 2:
                cells.append("–")
            elif np.allclose(a, a[0]) and np.allclose(b, a[0]):
                cells.append("tie p=1")
            else:
                test = mannwhitneyu(a, b, alternative="two-sided")
                # The test's own direction: the share of seed pairs where ``a`` is the
                # larger (ties count half), not the means, which one seed can turn.
                larger = float(test.statistic) / (len(a) * len(b)) - 0.5
                word = "tie" if larger == 0 else (
                    "better" if sign * larger < 0 else "worse")
                cells.append((word, float(test.pvalue)))
        rows.append((task, peer, cells))
    # Holm within each column: one strategy's tests over the tasks.
    adjusted = [iter(holm([cells[column][1] for _, _, cells in rows
                           if isinstance(cells[column], tuple)]))
                for column in range(len(metanas))]
    lines = ["| task | best peer | " + " | ".join(f"`{m}`" for m in metanas) + " |",
             "|---|---|" + "---|" * len(metanas)]
    for task, peer, cells in rows:
        texts = []
        for column, cell in enumerate(cells):
            if isinstance(cell, tuple):
                word, p = cell
                cell = (f"{word} p={_p_value(p)}{'*' if p < 0.05 else ''}"
                        f"{'†' if next(adjusted[column]) < 0.05 else ''}")
            texts.append(cell)
        lines.append(f"| {task} | `{peer}` | " + " | ".join(texts) + " |")
    return lines


def bar_table(results, strategy: str = "metanas/evolution",
              reference: str = "ref/regularized-evolution",
              random: str = "metanas/random") -> List[str]:
    """The bar: ``strategy``'s mean regret <= the reference's and <= half of random's."""
    data = group(results, "regret")
    lines = [f"| task | `{strategy}` | `{reference}` | `{random}` / 2 | >= reference | "
             "<= half random |", "|---|---|---|---|---|---|"]
    for task in [t for t in _tasks(results) if t in TUNING_TASKS]:
        if not all((task, s) in data for s in (strategy, reference, random)):
            continue
        ours, ref, rnd = (float(np.mean(data[(task, s)])) for s in (strategy, reference, random))
        lines.append(f"| {task} | {_fmt(ours)} | {_fmt(ref)} | {_fmt(rnd / 2)} | "
                     f"{'yes' if ours <= ref else 'NO'} | {'yes' if ours <= rnd / 2 else 'NO'} |")
    return lines


def hypervolume_table(results, order: Sequence[str] = ()) -> List[str]:
    """Mean hypervolume (scaled; 1 = the table's whole front) ± standard error."""
    from metanas.bench.hypervolume import best_hypervolume

    data = group(results, "hypervolume")
    strategies = _strategies(results, order)
    lines = ["| task | front of the whole table | " + " | ".join(f"`{s}`" for s in strategies)
             + " |", "|---|---|" + "---|" * len(strategies)]
    for task in _tasks(results):
        means = {s: float(np.mean(data[(task, s)])) for s in strategies if (task, s) in data}
        top = max(means.values()) if means else None
        cells = []
        for s in strategies:
            if s not in means:
                cells.append("–")
                continue
            text = f"{means[s]:.4f} ± {_sem(data[(task, s)]):.4f}"
            cells.append(f"**{text}**" if means[s] == top else text)
        lines.append(f"| {task} | {best_hypervolume(task):.4f} | " + " | ".join(cells) + " |")
    return lines


def band_half_width(curves: np.ndarray) -> np.ndarray:
    """Half the width of the 95% confidence band of the mean of ``curves`` (runs x
    evaluations): Student's t over the runs (with 5-20 seeds, 1.96 standard
    errors is narrower than 95%); 0 for a single run."""
    from scipy.stats import t as t_dist

    n = len(curves)
    if n < 2:
        return np.zeros(curves.shape[1:])
    return t_dist.ppf(0.975, n - 1) * curves.std(axis=0, ddof=1) / math.sqrt(n)


def plot_curves(results, directory: str, order: Sequence[str] = ()) -> List[str]:
    """One PNG per task: mean regret against evaluations, with 95% confidence bands
    (Student's t over the seeds; none for a single run).

    Returns the paths written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(directory, exist_ok=True)
    paths = []
    for task in _tasks(results):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for s in _strategies(results, order):
            curves = [r["curve"] for r in results if r["task"] == task and r["strategy"] == s
                      and r.get("curve")]
            if not curves:
                continue
            n = min(len(c) for c in curves)
            arr = np.asarray([c[:n] for c in curves], dtype=float)
            mean = arr.mean(axis=0)
            half = band_half_width(arr)
            x = np.arange(1, n + 1)
            style = "-" if s.startswith("metanas/") else "--"
            line, = ax.plot(x, mean, style, label=f"{s} (n={len(arr)})", linewidth=1.4)
            ax.fill_between(x, np.maximum(mean - half, 0), mean + half, alpha=0.15,
                            color=line.get_color())
        ax.set_yscale("symlog", linthresh=_linthresh(results, task))
        ax.set_xlabel("evaluations")
        ax.set_ylabel("regret of the incumbent (true score)")
        ax.set_title(f"{task}: mean regret, 95% confidence band")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        path = os.path.join(directory, task.replace("/", "_") + ".png")
        fig.savefig(path, dpi=80)
        plt.close(fig)
        paths.append(path)
    return paths


def _linthresh(results, task: str) -> float:
    finals = [r["regret"] for r in results if r["task"] == task and r.get("regret", 0) > 0]
    return float(min(finals)) if finals else 1e-3
