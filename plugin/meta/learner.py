"""The meta-layer: learn which strategy, with which settings, searches best.

An Optuna study (TPE by default) whose *meta-trials* each pick a strategy and
its settings, run searches with them on a pool of tasks, and score them with a
scale-free meta-objective (`OBJECTIVES`: the area under the regret curve,
`normalized_regret_auc`, or the returned configuration's regret; one study
holds one, `MetaLearner.ensure_objective`). The study lives in an
Optuna storage (an SQLite file by default, or any RDB URL), so meta-training
can be spread over processes and machines and resumed at will. `recommend`
answers for a new task from the meta-trials' results on the most similar tasks
(by meta-features), in the manner of auto-sklearn's meta-learned warm start
(Feurer et al., AAAI 2015); the answer can also warm-start a new meta-study
(`enqueue_trial`).

Example:

    >>> learner = MetaLearner("sqlite:///meta.db")
    >>> learner.meta_train(tasks, evaluate=evaluate, n_trials=50)
    >>> choice = learner.recommend(dataset_features(x, y))
    >>> oracle = choice.make_oracle(objective="val_accuracy", max_trials=30)
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import numbers
import os
import re
import socket
import warnings
from typing import (Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple,
                    Union)

import numpy as np
import optuna

from metanas.meta.features import (check_features, check_k, check_max_distance, nearest_tasks,
                                   seen_in)
from metanas.security import redact
from metanas.tuners.base import check_int

__all__ = [
    "OBJECTIVES",
    "MetaLearner",
    "MetaTask",
    "ObjectiveError",
    "Recommendation",
    "StrategyError",
    "around_defaults",
    "check_objective",
    "normalized_regret_auc",
    "redact",
    "scored_with",
    "strategy_classes",
]

DEFAULT_STORAGE = "sqlite:///metanas-meta.db"
#: A running meta-trial records a heartbeat this often (seconds).
HEARTBEAT_SECONDS = 60
#: A running meta-trial whose heartbeat is this old (seconds) is not counted on:
#: `meta_train` queues its settings again (the defaults' among them), as its
#: process may be dead. It is not failed yet: a process whose heartbeat is only
#: late (a long wait for a SQLite write lock, `SQLITE_BUSY_SECONDS`) finishes it,
#: and the settings ran twice, which costs time but loses nothing.
SILENT_SECONDS = 3 * HEARTBEAT_SECONDS
#: A running meta-trial whose heartbeat is this old (seconds) is failed (Optuna's
#: grace period; every process checks before each meta-trial it starts).
STALE_SECONDS = 600
#: The trial system attribute naming the process that runs a meta-trial
#: (`_this_process`): a later process on the same machine sees at once that it
#: is gone (killed), where a heartbeat tells only after `SILENT_SECONDS`.
PROCESS_KEY = "metanas:process"
#: A running meta-trial with neither a process record (`PROCESS_KEY`) nor a
#: heartbeat this old (seconds) was abandoned between Optuna's ``ask`` and its
#: first step, where a live process records both at once: a kill then left it.
#: Optuna's grace period, as for a trial whose heartbeat stopped (a process
#: waiting on a lock, a clock a little off, must not lose a live meta-trial).
ORPHAN_SECONDS = STALE_SECONDS
DEFAULT_STUDY = "metanas-meta"
#: The user attribute of a meta-trial queued again for one whose process was
#: killed (`MetaLearner._fail_abandoned`): that one's number.
RETRY_KEY = "retry_of"
#: The meta-objectives: "auc", the normalised area under the best-so-far regret
#: curve (anytime; production searches are scored so, `search_score`), and
#: "final", the normalised regret of the configuration a search returns
#: (`metanas.meta.evaluate.BenchEvaluator`; needs the task's optimum).
OBJECTIVES = ("auc", "final")
OBJECTIVE_KEY = "meta/objective"  # the study's user attribute
#: The study's user attribute: evaluations per search of its meta-trained scores.
BUDGET_KEY = "meta/budget"


class ObjectiveError(ValueError):
    """Scores of one meta-objective (or budget) offered to a study that holds another."""


class StrategyError(ValueError):
    """A strategy outside those a meta-study's ``"strategy"`` parameter ranges over."""


def check_objective(objective: Any) -> str:
    """``objective`` if it is one of `OBJECTIVES`; else a ValueError naming them."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {list(OBJECTIVES)}, got {objective!r}.")
    return objective


def scored_with(trial: optuna.trial.FrozenTrial) -> str:
    """The meta-objective a finished trial's score is in (unstamped, from before: ``"auc"``)."""
    return trial.user_attrs.get("objective", "auc")


def meta_trained(study: optuna.Study) -> List[optuna.trial.FrozenTrial]:
    """The study's finished meta-trials: not its recorded production searches
    (`MetaLearner.record`), each one search on another task, on its own scale."""
    return [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if t.user_attrs.get("source") == "meta-train"]


def best_of(study: optuna.Study, trials: Sequence[optuna.trial.FrozenTrial]):
    """The best of ``trials`` in the study's direction, or None if there are none."""
    pick = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
    return pick(trials, key=lambda t: t.value) if trials else None




def strategy_classes() -> Dict[str, type]:
    """The strategies the meta-layer chooses among, by name."""
    from metanas import tuners

    classes = {"evolution": tuners.EvolutionOracle, "random": tuners.RandomSearchOracle}
    if hasattr(tuners, "RLControllerOracle"):
        classes["rl"] = tuners.RLControllerOracle
    return classes


def normalized_regret_auc(regrets: Sequence[float], scale: float) -> float:
    """Mean best-so-far regret over the budget, in units of ``scale``.

    The ``"auc"`` meta-objective. ``regrets[t]`` is the regret of the best configuration
    found after ``t + 1`` evaluations; ``scale`` is the regret of a typical
    random configuration (`metanas.meta.evaluate` uses the table's median). The area under the regret curve rewards
    finding good configurations early as well as finally, and the division
    makes tasks of any metric and range comparable: 1 means no better than a
    single random guess throughout, 0 the optimum from the first evaluation.
    """
    try:
        values = np.asarray(regrets, dtype=float).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"regrets must be numbers, got {regrets!r}.") from None
    if len(values) == 0:
        raise ValueError("regrets must hold at least one value.")
    if not np.isfinite(values).all():
        raise ValueError(f"regrets must be finite numbers, got {values.tolist()!r}.")
    if (isinstance(scale, bool) or not isinstance(scale, numbers.Real)
            or not 0 < scale < math.inf):
        raise ValueError(f"scale must be > 0 and finite, got {scale!r}.")
    return float(np.mean(values) / scale)


@dataclasses.dataclass(frozen=True)
class MetaTask:
    """A task the meta-layer can run searches on.

    Args:
        name: A unique, non-empty name (``"nb201/cifar10"``, ``"my-dataset"``).
        features: Its meta-features (`dataset_features`, `space_features`): a mapping.

    Raises:
        ValueError: ``name`` is not a non-empty string, ``features`` not a mapping,
            or one of its values neither a string nor a finite number (NaN, None,
            a bool...): stored, such a value would make every later
            `MetaLearner.recommend` and `TransferStore.warm_start` on the
            storage fail (no distance to it can be computed).
    """

    name: str
    features: Mapping[str, Any]

    def __post_init__(self) -> None:
        # The name keys the task's scores and transfer records: "" would be a task too.
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"a MetaTask's name must be a non-empty string, got {self.name!r}.")
        if not isinstance(self.features, Mapping):
            raise ValueError(f"a MetaTask's features must be a mapping of meta-features (as "
                             f"dataset_features returns), got {self.features!r}.")
        if self.features:  # the checks `recommend` makes, any name and label of its own allowed
            try:
                check_features(self.features, **seen_in([self.features]))
            except ValueError as error:
                raise ValueError(f"MetaTask {self.name!r}: {error}") from None


@dataclasses.dataclass
class Recommendation:
    """A strategy and its settings, as recommended for a task.

    Attributes:
        strategy: ``"evolution"``, ``"random"`` or ``"rl"``.
        params: The meta-space values (what `MetaLearner.enqueue` takes).
        settings: The oracle's constructor keywords made from ``params``.
        source: Where it came from: ``"similar tasks: ..."``, ``"all tasks"``,
            ``"defaults"`` (nothing learnt yet), ``"defaults (no candidate
            beats them beyond noise; ...)"`` or ``"defaults (candidates
            untested: ...)"`` (the defaults have no finished meta-trial on
            those tasks to test the best candidate against).
        expected: The meta-objective it scored there (with several seeds per
            task: on the half not used to choose it); None for the defaults
            recommended with nothing learnt, or with nothing to test against.
    """

    strategy: str
    params: Dict[str, Any]
    settings: Dict[str, Any]
    source: str
    expected: Optional[float] = None

    def make_oracle(self, **kwargs):
        """The recommended oracle, built with ``kwargs`` (objective, max_trials...)."""
        return strategy_classes()[self.strategy](**{**self.settings, **kwargs})


def _distribution(setting) -> optuna.distributions.BaseDistribution:
    if setting.kind == "int":
        return optuna.distributions.IntDistribution(int(setting.low), int(setting.high), log=setting.log)
    if setting.kind == "float":
        return optuna.distributions.FloatDistribution(setting.low, setting.high, log=setting.log)
    return optuna.distributions.CategoricalDistribution(list(setting.choices))


def meta_space(strategies: Sequence[str]) -> Dict[str, Dict[str, optuna.distributions.BaseDistribution]]:
    """Each strategy's settings as Optuna distributions, named ``strategy.setting``.

    Raises:
        ValueError: ``strategies`` is empty, a string, or names an unknown strategy.
    """
    classes = strategy_classes()
    if isinstance(strategies, str):
        raise ValueError(f"strategies must be a list of names such as ['evolution'], "
                         f"got the string {strategies!r}.")
    unknown = [s for s in strategies if s not in classes]
    if unknown or not strategies:
        raise ValueError(f"unknown strategies {unknown or strategies!r}; allowed: {sorted(classes)}.")
    return {
        name: {f"{name}.{k}": _distribution(v) for k, v in classes[name].settings_space().items()}
        for name in strategies
    }


def _score_of(evaluate: Callable, score: Any, task: MetaTask, strategy: str, seed: int) -> float:
    """The meta-objective ``evaluate`` returned, as a float; ValueError unless it is a
    number, not infinite (NaN fails the meta-trial, as Optuna does)."""
    value = math.inf
    if not isinstance(score, (bool, np.bool_)) and isinstance(score, (numbers.Real, np.number)):
        try:
            value = float(score)
        except (OverflowError, TypeError):  # (10**400; a complex number)
            pass
    if math.isinf(value):
        # (An infinite score stood as the defaults' expected score, and no
        # candidate could beat it.)
        name = getattr(evaluate, "__qualname__", type(evaluate).__qualname__)
        raise ValueError(f"the evaluate function {name} must return a finite number (the "
                         f"meta-objective) or NaN, got {score!r:.80} for task {task.name!r}, "
                         f"strategy {strategy!r}, seed {seed}.")
    return value


def _within(distribution: optuna.distributions.BaseDistribution, value: Any) -> bool:
    """Whether ``value`` is one of ``distribution``'s (Optuna's own message names no parameter)."""
    try:
        return bool(distribution._contains(distribution.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False


def _split_params(params: Mapping[str, Any]) -> Tuple[str, Dict[str, Any]]:
    strategy = params["strategy"]
    prefix = f"{strategy}."
    return strategy, {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}


def default_recommendation(strategy: str = "evolution", source: str = "defaults") -> Recommendation:
    cls = strategy_classes()[strategy]
    raw = {k: s.default for k, s in cls.settings_space().items()}
    params = {"strategy": strategy, **{f"{strategy}.{k}": v for k, v in raw.items()}}
    return Recommendation(strategy, params, cls.settings_from_params(raw), source)


def around_defaults(
    strategy: str = "evolution", *, n: int, spread: float = 0.25, seed: int = 0
) -> List[Dict[str, Any]]:
    """Up to ``n`` distinct meta-space points near ``strategy``'s defaults.

    Each setting moves with probability one half (at least one per point): a
    number by a normal step of ``spread`` times its range (on a log scale for
    log settings), clipped to the range and rounded for ints; a categorical
    setting to another of its choices. Tuned defaults are a strong prior, and
    a random draw from the whole meta space rarely lands near them (a single
    int setting with six values already makes five draws in six differ), so
    meta-training around them refines where the defaults are good instead of
    re-exploring where they are not.

    Args:
        strategy: Whose defaults (a name of `strategy_classes`).
        n: How many points, >= 1.
        spread: Step size as a fraction of each numeric setting's range, in (0, 1].
        seed: Seed of the draws: equal seeds give equal points.

    Returns:
        Params as `MetaLearner.enqueue` and Optuna's ``enqueue_trial`` take
        them; fewer than ``n`` (with a warning) when the space near the
        defaults holds fewer distinct points.

    Raises:
        ValueError: ``strategy``, ``n``, ``spread`` or ``seed`` is not allowed.
    """
    classes = strategy_classes()
    if strategy not in classes:
        raise ValueError(f"unknown strategy {strategy!r}; allowed: {sorted(classes)}.")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}.")
    if isinstance(spread, bool) or not isinstance(spread, numbers.Real) or not 0 < spread <= 1:
        raise ValueError(f"spread must be a number in (0, 1], got {spread!r}.")
    check_int("seed", seed, low=0)
    space = classes[strategy].settings_space()
    rng = np.random.default_rng(seed)
    defaults = {k: s.default for k, s in space.items()}
    points: List[Dict[str, Any]] = []
    for _ in range(100 * n):
        if len(points) == n:
            break
        moved = [k for k in space if rng.random() < 0.5] or [list(space)[rng.integers(len(space))]]
        point = dict(defaults)
        for key in moved:
            setting = space[key]
            if setting.kind == "categorical":
                others = [c for c in setting.choices if c != setting.default]
                point[key] = others[rng.integers(len(others))]
                continue
            scale = math.log if setting.log else float
            step = rng.normal(0.0, spread * (scale(setting.high) - scale(setting.low)))
            value = scale(setting.default) + step
            value = min(max(math.exp(value) if setting.log else value, setting.low), setting.high)
            point[key] = int(round(value)) if setting.kind == "int" else float(value)
        params = {"strategy": strategy, **{f"{strategy}.{k}": v for k, v in point.items()}}
        if point != defaults and not any(_same_params(params, p) for p in points):
            points.append(params)
    if len(points) < n:
        warnings.warn(
            f"found only {len(points)} distinct points around the {strategy} defaults "
            f"(n={n}, spread={spread}); its settings space is too small or the spread too narrow.",
            stacklevel=2,
        )
    return points


def _default_strategy(allowed) -> str:
    """The strategy recommended with nothing learnt: evolution, if allowed."""
    return "evolution" if "evolution" in allowed else sorted(allowed)[0]


#: A `MetaTuner`'s record key: its search's id (32 hex digits) and its trial count.
_SEARCH_KEY = re.compile(r"([0-9a-f]{32})#([0-9]{1,9})")


def _search_of(key: Any) -> Optional[Tuple[str, int]]:
    """``(search, trials)`` of a `MetaTuner` record key; None for any other key (a
    user's own keys, "exp#1", "exp#2", name searches of their own)."""
    found = _SEARCH_KEY.fullmatch(key) if isinstance(key, str) else None
    return (found.group(1), int(found.group(2))) if found else None


def _superseded(keys: Sequence[Any]) -> List[bool]:
    """For each record key, whether a later state of its `MetaTuner` search was recorded.

    A resumed search is recorded again with more trials (a new key); its
    earlier record is the same search at an earlier state, not another search
    to pool with it.
    """
    parsed = [_search_of(key) for key in keys]
    most: Dict[str, int] = {}
    for search, trials in filter(None, parsed):
        most[search] = max(most.get(search, -1), trials)
    return [item is not None and item[1] < most[item[0]] for item in parsed]


def _same_params(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if set(a) != set(b):
        return False
    for key, value in a.items():
        other = b[key]
        if isinstance(value, bool) or isinstance(other, bool) or isinstance(value, str):
            if value != other:
                return False
        elif not math.isclose(float(value), float(other), rel_tol=1e-9, abs_tol=1e-12):
            return False
    return True


def _this_machine() -> Optional[List[str]]:
    """Where a process id names one process: host, boot, PID namespace and user; None off Linux.

    The boot id and PID namespace tell apart a rebooted machine and two
    containers that share a host name; the user, a process that ``hidepid``
    hides from another user (it would look gone).
    """
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            boot = handle.read().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except (OSError, AttributeError):  # not Linux, or no /proc
        return None
    return [socket.gethostname(), boot, namespace, str(os.getuid())]


def _process_start(pid: int) -> Optional[Tuple[str, int]]:
    """``(state, start time in clock ticks since boot)`` of process ``pid``; None if there is none.

    Raises:
        OSError: /proc cannot tell (other than: no such process).
    """
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rsplit(")", 1)[1].split()  # the command name may hold spaces and parentheses
    return fields[0], int(fields[19])


def _this_process() -> Optional[Dict[str, Any]]:
    """This process, as `PROCESS_KEY` records it (None where `_this_machine` is)."""
    machine = _this_machine()
    if machine is None:
        return None
    try:
        start = _process_start(os.getpid())
    except (OSError, ValueError, IndexError):
        return None
    return None if start is None else {"machine": machine, "pid": os.getpid(), "start": start[1]}


def _process_is_gone(record: Any) -> bool:
    """Whether the process ``record`` (`_this_process`) names has certainly ended.

    Only a process of this machine (same host, boot, PID namespace and user)
    can be looked up; one that no longer exists, is a zombie, or whose id now
    names a later process has ended. Anything else (another machine, no
    record, /proc unreadable) is not known to have ended: False.
    """
    if not isinstance(record, dict) or record.get("machine") != _this_machine():
        return False
    try:
        found = _process_start(record["pid"])
    except (OSError, ValueError, IndexError, KeyError, TypeError):
        return False
    return found is None or found[0] in ("Z", "X") or found[1] != record.get("start")


def _orphaned(trial: optuna.trial.FrozenTrial, ages: Optional[Dict[int, float]]) -> bool:
    """Whether a running ``trial`` was left between Optuna's ``ask`` and its first
    step: no process record, no heartbeat (where the storage keeps them: ``ages``
    not None), and started `ORPHAN_SECONDS` ago or more."""
    if PROCESS_KEY in trial.system_attrs or ages is None or trial._trial_id in ages:
        return False
    started = trial.datetime_start
    return started is not None and (
        datetime.datetime.now() - started).total_seconds() >= ORPHAN_SECONDS


def _upper_bound(differences: Sequence[float], level: float) -> float:
    """One-sided upper confidence bound of the mean of ``differences`` (Student's t)."""
    from scipy import stats

    n = len(differences)
    spread = float(np.std(differences, ddof=1)) / math.sqrt(n)
    return float(np.mean(differences)) + float(stats.t.ppf(1.0 - level, n - 1)) * spread


def _defaults_result(scored, chosen, allowed):
    """``(mean, result)`` of the default strategy's defaults with the most seeds on ``chosen``.

    A production record of the defaults (one seed per task, pooled across
    searches: `MetaLearner._results`) must not stand in for their multi-seed
    meta-trial: the result with the most seeds is taken. None when no result
    of the defaults covers all chosen tasks.
    """
    wanted = default_recommendation(_default_strategy(allowed)).params
    found = [(m, r) for m, r in scored if _same_params(r[0], wanted)]
    if not found:
        return None
    return max(found, key=lambda item: sum(len(item[1][3].get(n) or ()) for n in chosen))


def _beats_defaults(best_params, scored, chosen, allowed, alpha) -> Optional[Tuple[str, float]]:
    """``(strategy, mean)`` of the defaults to recommend instead of ``best_params``, or None.

    The defaults are those of the default strategy (`_default_strategy`), the
    choice with nothing learnt: not the best-looking of several strategies'
    defaults, which would be a lucky pick again. None when ``best_params``
    are those defaults, their meta-trial did not run on all ``chosen`` tasks,
    or the best beats them beyond noise: its per-seed differences from them
    (paired by task and seed; by task where seeds are missing) have a
    one-sided upper confidence bound (Student's t) below 0, at level
    ``alpha`` / (number of candidates - 1); also None, with a warning, when
    there is a single paired difference (no test is possible).
    """
    strategy = _default_strategy(allowed)
    found = _defaults_result(scored, chosen, allowed)
    if found is None:
        return None
    mean, baseline = found
    if _same_params(best_params, baseline[0]):
        return None
    candidate = next((r for _, r in scored if r[0] is best_params), None)
    if candidate is None:  # the best lacks some chosen task: nothing to pair
        return None
    differences: List[float] = []
    for name in chosen:
        ours, theirs = candidate[3].get(name), baseline[3].get(name)
        if ours and theirs and len(ours) == len(theirs):
            differences += [a - b for a, b in zip(ours, theirs)]
        else:
            differences.append(candidate[1][name] - baseline[1][name])
    if len(differences) < 2:
        warnings.warn(
            f"the best candidate has one paired score against the {strategy} defaults (one task, "
            "one seed): too few to test whether it beats them beyond noise; it is recommended "
            "untested. Meta-train with more seeds (or tasks) to test it.",
            stacklevel=3,
        )
        return None
    bound = _upper_bound(differences, alpha / max(len(scored) - 1, 1))
    return None if bound < 0 else (strategy, mean)


def _confirmed_choice(scored, chosen, allowed, alpha) -> Optional[Tuple[Dict[str, Any], float, bool]]:
    """The candidate chosen on half of the seeds and confirmed on the other half.

    Applies when the default strategy's defaults ran at least two seeds on
    every ``chosen`` task (None otherwise: the caller falls back to
    `_beats_defaults`). Candidates with at least as many seeds as the defaults
    on each chosen task compete, on their first that many (seeds are paired by
    position: meta-trials run seeds 0, 1, ...). The one with the best mean over
    the first half of each task's seeds is selected, then tested against the
    defaults on the second half only (one-sided paired t-test at level
    ``alpha``). The second half played no part in the selection itself, so
    the test needs no correction for the number of candidates (a holdout
    confirmation, a standard remedy for the winner's curse) and has more power
    than a Bonferroni test of the best of all seeds. The level is exact for a
    pool drawn without looking at scores (random, `around_defaults`); an
    adaptive sampler (TPE) saw every seed when it proposed candidates, a
    weaker dependence.

    Returns:
        ``(params, expected, confirmed)``: the selected candidate's params if
        it passed the test, else the defaults', with their mean on the
        second half (an unbiased estimate) and whether the test passed.
    """
    found = _defaults_result(scored, chosen, allowed)
    if found is None:
        return None
    baseline = found[1]
    counts = {name: len(baseline[3].get(name) or ()) for name in chosen}
    if min(counts.values(), default=0) < 2 or sum(n - n // 2 for n in counts.values()) < 2:
        return None
    paired = [r for _, r in scored if all(len(r[3].get(n) or ()) >= c for n, c in counts.items())]

    def half(result, name: str, second: bool) -> List[float]:
        c = counts[name]
        values = list(result[3][name][:c])
        return values[c // 2:] if second else values[: c // 2]

    def half_mean(result, second: bool) -> float:
        return float(np.mean([np.mean(half(result, n, second)) for n in counts]))

    best = min(paired, key=lambda r: half_mean(r, second=False))
    if best is not baseline and not _same_params(best[0], baseline[0]):
        differences = [
            a - b
            for n in counts
            for a, b in zip(half(best, n, second=True), half(baseline, n, second=True))
        ]
        if _upper_bound(differences, alpha) < 0:
            return best[0], half_mean(best, second=True), True
    return baseline[0], half_mean(baseline, second=True), False


class _StrategyAmong(optuna.samplers.BaseSampler):
    """``base``, except that the ``"strategy"`` parameter is drawn uniformly among ``strategies``.

    For meta-training on some of a study's strategies: Optuna fixes the
    parameter's choices in a study, so the restriction is made here. A queued
    trial's own values still come first (Optuna applies them before sampling).
    """

    def __init__(self, base: optuna.samplers.BaseSampler, strategies: Sequence[str],
                 rng: np.random.Generator) -> None:
        self.base, self.strategies, self.rng = base, list(strategies), rng

    def infer_relative_search_space(self, study, trial):
        space = dict(self.base.infer_relative_search_space(study, trial))
        space.pop("strategy", None)
        return space

    def sample_relative(self, study, trial, search_space):
        # Grouped TPE recomputes its own groups, "strategy" included: drop it.
        params = dict(self.base.sample_relative(study, trial, search_space))
        params.pop("strategy", None)
        return params

    def sample_independent(self, study, trial, param_name, param_distribution):
        if param_name == "strategy":
            return self.strategies[int(self.rng.integers(len(self.strategies)))]
        return self.base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial) -> None:
        self.base.before_trial(study, trial)

    def after_trial(self, study, trial, state, values) -> None:
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()


class _MissingStudy(Exception):
    """A reader asked for a study the storage does not hold, or a storage that is not one."""


#: Samplers `MetaLearner` makes by name.
SAMPLERS = ("tpe", "random")


def _named_sampler(name: str, seed: Optional[int]) -> optuna.samplers.BaseSampler:
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # Multivariate TPE with groups models each strategy's settings jointly
    # (the space is conditional on the strategy).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)


#: How long a process waits for another's write lock on a SQLite meta storage
#: (seconds). SQLite's own default, 5 s, failed meta-training processes that
#: shared one file on a busy machine ("database is locked").
SQLITE_BUSY_SECONDS = 120.0


def _check_is_optuna_storage(url: str, create: bool) -> None:
    """Refuses, before Optuna adds its tables, a database whose schema clashes.

    Optuna and MLflow (and any Alembic-managed schema) keep their schema
    version in a table named ``alembic_version``: a meta storage pointed at an
    MLflow tracking database (``mlflow.db`` sits next to ``metanas-meta.db`` by
    default) would gain Optuna's tables and then fail with a misleading
    version error. A database shared with other tables is fine.

    Raises:
        _MissingStudy: The database has an ``alembic_version`` table and none
            of Optuna's, or ``create`` is False and the SQLite file does not exist.
    """
    import sqlalchemy

    parsed = sqlalchemy.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not create and not os.path.exists(parsed.database):
            raise _MissingStudy(f"the meta storage {redact(url)!r} does not exist "
                                f"(no file {parsed.database!r})")
        if not os.path.exists(parsed.database):
            return
    try:
        engine = sqlalchemy.create_engine(url, **_engine_kwargs(url))
    except ImportError:  # no driver: Optuna says which to install
        return
    try:
        tables = set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    if "alembic_version" in tables and not {"studies", "version_info"} & tables:
        kind = " (an MLflow tracking store)" if {"experiments", "runs"} <= tables else ""
        raise _MissingStudy(
            f"{redact(url)!r} is not an Optuna meta storage{kind}: it holds another "
            f"schema's alembic_version table and the tables {sorted(tables)[:6]}"
            f"{'...' if len(tables) > 6 else ''}, none of Optuna's; give the meta-layer "
            f"a database of its own (the default is {DEFAULT_STORAGE!r})")


def _engine_kwargs(url: str) -> Dict[str, Any]:
    """SQLAlchemy engine settings for ``url``: a long lock wait for SQLite."""
    if url.split(":", 1)[0].split("+", 1)[0] == "sqlite":  # sqlite:, sqlite+pysqlite:
        return {"connect_args": {"timeout": SQLITE_BUSY_SECONDS}}
    return {}


class MetaLearner:
    """An Optuna meta-study of strategies and their settings across tasks.

    Args:
        storage: An Optuna storage URL (``sqlite:///file.db``,
            ``postgresql://user:pass@host/db``...) or None for
            ``sqlite:///metanas-meta.db`` in the working directory.
        study_name: The meta-study's name in the storage.
        sampler: Any Optuna sampler, or ``"tpe"`` (multivariate TPE, the
            default) or ``"random"``, seeded by ``seed``.
        seed: Seed of a named sampler. A study that already holds meta-trials
            seeds it with ``(seed, their number)``, so that meta-training again
            with the same seed draws new candidates, not the same ones again.
        create: Create the study if the storage has none of that name. False
            for a reader (``metanas recommend``): a mistyped name is refused
            instead of leaving an empty study behind.

    Raises:
        ValueError: The storage URL cannot be opened (the message shows the
            URL with its password redacted), has another schema's
            ``alembic_version`` table (an MLflow tracking database) and none of
            Optuna's tables, or ``create``
            is False and the storage (or its SQLite file) holds no study
            ``study_name`` (the message lists those it holds).
    """

    def __init__(
        self,
        storage: Optional[str] = None,
        *,
        study_name: str = DEFAULT_STUDY,
        sampler: Union[optuna.samplers.BaseSampler, str, None] = None,
        seed: Optional[int] = None,
        create: bool = True,
    ) -> None:
        if not isinstance(create, bool):
            raise ValueError(f"create must be True or False, got {create!r}.")
        if seed is not None:
            check_int("seed", seed, low=0, high=2**32 - 1)
        if sampler is not None and not isinstance(sampler, (str, optuna.samplers.BaseSampler)):
            raise ValueError(f"sampler must be an Optuna sampler or one of {list(SAMPLERS)}, "
                             f"got {sampler!r}.")
        self.seed = seed
        self._strategy_choices: Tuple[str, ...] = ()
        if not isinstance(study_name, str) or not study_name.strip():
            raise ValueError(f"the study's name (study_name) must be a non-empty string, "
                             f"got {study_name!r}.")
        self.storage_url = DEFAULT_STORAGE if storage is None else storage
        if not isinstance(self.storage_url, str) or "://" not in self.storage_url:
            raise ValueError(
                f"storage must be an Optuna storage URL such as 'sqlite:///meta.db', "
                f"got {redact(str(storage))!r}."
            )
        named = "tpe" if sampler is None else sampler
        if isinstance(named, str):
            if named not in SAMPLERS:
                raise ValueError(f"sampler must be an Optuna sampler or one of {list(SAMPLERS)}, "
                                 f"got {named!r}.")
            sampler = optuna.samplers.RandomSampler()  # until the study's size is known
        try:
            _check_is_optuna_storage(self.storage_url, create)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage_ = optuna.storages.RDBStorage(
                    self.storage_url, heartbeat_interval=HEARTBEAT_SECONDS,
                    grace_period=STALE_SECONDS, engine_kwargs=_engine_kwargs(self.storage_url))
            self._rdb = storage_  # its heartbeats (`_heartbeat_ages`)
            if not create:
                names = optuna.get_all_study_names(storage_)
                if study_name not in names:
                    raise _MissingStudy(
                        f"the meta storage {redact(self.storage_url)!r} holds no study "
                        f"{study_name!r}; its studies: {sorted(names)}")
            self.study = optuna.create_study(
                storage=storage_,
                study_name=study_name,
                direction="minimize",
                sampler=sampler,
                load_if_exists=True,
            )
        except _MissingStudy as error:
            raise ValueError(str(error)) from None
        except Exception as error:  # SQLAlchemy and driver errors vary by backend
            raise ValueError(
                f"cannot open the meta storage {redact(self.storage_url)!r}: "
                f"{redact(str(error)).splitlines()[0]}"
            ) from None
        if isinstance(named, str):
            done = len(self.study.get_trials(deepcopy=False))
            if seed is not None and done:
                seed = int(np.random.SeedSequence([seed, done]).generate_state(1)[0])
            self.study.sampler = _named_sampler(named, seed)

    # ------------------------------------------------------------- training
    def strategy_choices(self) -> Tuple[str, ...]:
        """The strategies the study's ``"strategy"`` parameter ranges over.

        Optuna fixes a categorical parameter's choices at its first use in a
        study: the strategies of the study's first meta-training or, when a
        production search was recorded first, every strategy
        (`strategy_classes`). Empty for a study without meta-trials. Once
        found, kept: they cannot change.
        """
        if not self._strategy_choices:
            for trial in self.study.get_trials(deepcopy=False):
                distribution = trial.distributions.get("strategy")
                if isinstance(distribution, optuna.distributions.CategoricalDistribution):
                    self._strategy_choices = tuple(distribution.choices)
                    break
        return self._strategy_choices

    def check_strategies(
        self, strategies: Sequence[str], *, new: Optional[Sequence[str]] = None
    ) -> Tuple[str, ...]:
        """The study's `strategy_choices`, if they hold ``strategies``.

        A new study's are ``new`` (default: ``strategies``).

        `meta_train` and `record` check this first; a caller can too, before
        it spends anything (``metanas meta-train`` does).

        Raises:
            StrategyError: One of ``strategies`` is not among the study's.
        """
        choices = self.strategy_choices() or tuple(strategies if new is None else new)
        outside = [s for s in strategies if s not in choices]
        if outside:
            raise StrategyError(
                f"study {self.study.study_name!r} ranges over the strategies {list(choices)} "
                f"(fixed by its first meta-trial); got {outside}. Use those strategies, or "
                "another study (study_name)."
            )
        return choices

    def check_settings_space(self, strategies: Sequence[str]) -> None:
        """StrategyError if the study holds a setting of ``strategies`` with another range.

        Optuna refuses a parameter's new range or choices in a study (a study
        meta-trained by another metanas version): the meta-trial failed with a
        traceback, the study left with a failed and a waiting trial. `meta_train`
        and `record` check this first (reading the study, as `recommend` does,
        needs no check).
        """
        if not strategies:  # (a new study, and a MetaTuner to choose among all)
            return
        stored: Dict[str, Any] = {}
        for trial in self.study.get_trials(deepcopy=False):
            for name, distribution in trial.distributions.items():
                stored.setdefault(name, distribution)
        for space in meta_space(list(strategies)).values():
            for name, distribution in space.items():
                if name not in stored:
                    continue
                try:
                    optuna.distributions.check_distribution_compatibility(
                        stored[name], distribution)
                except ValueError:
                    raise StrategyError(
                        f"study {self.study.study_name!r} holds the setting {name!r} as "
                        f"{stored[name]}, this metanas as {distribution} (the study was "
                        "meta-trained by another version?); use another study (study_name) "
                        "or storage."
                    ) from None

    def suggest(self, trial: optuna.Trial, strategies: Sequence[str]) -> Tuple[str, Dict[str, Any]]:
        """Samples a strategy and its settings in ``trial`` (define-by-run).

        The ``"strategy"`` parameter ranges over the study's `strategy_choices`
        (``strategies`` in a new study); when ``strategies`` are only some of
        them, `meta_train`'s sampler draws it among ``strategies``.
        """
        choices = self.strategy_choices() or tuple(strategies)
        strategy = trial.suggest_categorical("strategy", list(choices))
        for name, distribution in meta_space([strategy])[strategy].items():
            if isinstance(distribution, optuna.distributions.IntDistribution):
                trial.suggest_int(name, distribution.low, distribution.high, log=distribution.log)
            elif isinstance(distribution, optuna.distributions.FloatDistribution):
                trial.suggest_float(name, distribution.low, distribution.high, log=distribution.log)
            else:
                trial.suggest_categorical(name, distribution.choices)
        return _split_params(trial.params)

    def meta_train(
        self,
        tasks: Sequence[MetaTask],
        evaluate: Callable[[MetaTask, str, Dict[str, Any], int], float],
        *,
        n_trials: int,
        seeds: Sequence[int] = (1,),
        strategies: Sequence[str] = ("evolution", "random"),
        show_progress_bar: bool = False,
        callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = (),
        include_defaults: bool = True,
        objective: Optional[str] = None,
    ) -> optuna.Study:
        """Runs ``n_trials`` meta-trials; each scores one setting on every task.

        Args:
            tasks: The task pool.
            evaluate: ``evaluate(task, strategy, settings, seed)`` runs one search
                and returns its meta-objective (lower is better).
            n_trials: Meta-trials to add to the study.
            seeds: Search seeds per task; the task's score is their mean.
            strategies: Names the meta-trials choose among: the study's
                `strategy_choices` or some of them (a new study takes them as
                its choices). On some of them, each meta-trial's strategy is
                drawn at random (seeded by ``seed``) and the sampler chooses
                its settings; on all of them, the sampler chooses both.
            show_progress_bar: Optuna's progress bar.
            callbacks: Called after each meta-trial, as Optuna's ``optimize`` callbacks.
            include_defaults: First run each strategy's default settings (unless
                the study has them already), among the ``n_trials``: `recommend`
                compares its best candidate with them. Already means
                meta-trained on all of ``tasks`` with at least as many seeds
                (defaults meta-trained on other tasks cannot test a candidate
                on these), queued, or running in a process that may be
                alive; a meta-trial of them left running by a killed process
                does not count (see below), and if one stops counting while
                this call runs, a later meta-trial of this call runs them.
            objective: The meta-objective ``evaluate`` returns (`OBJECTIVES`).
                Default: ``evaluate.objective`` if it names one (as
                `BenchEvaluator`'s does), else ``"auc"``; give it for an
                evaluator that wraps a `BenchEvaluator` with ``"final"``.

        A meta-trial left running by a killed process is failed, and what it
        was running counts as not run: at once, when that process ran on this
        machine (each meta-trial records its process, `PROCESS_KEY`; Linux);
        else, its settings count as not run once its heartbeat is
        `SILENT_SECONDS` old, and it is failed once it is `STALE_SECONDS` old
        (a running meta-trial with a more recent heartbeat may be another
        live process's, and is left to it).

        An ``evaluate`` with an int ``budget`` attribute (evaluations per
        search, as `BenchEvaluator`'s) stamps it on each meta-trial, and the
        study keeps one budget (`ensure_budget`): a score after 50 evaluations
        and one after 200 are on different scales.

        Raises:
            ValueError: No task, duplicate task names, an ``objective`` not in
                `OBJECTIVES`, or one that contradicts ``evaluate.objective``.
            ObjectiveError: The study's scores are in another objective, or
                of searches with another budget: such scores cannot be
                compared, so one study holds one of each (`ensure_objective`,
                `ensure_budget`).
            StrategyError: One of ``strategies`` is not among the study's
                `strategy_choices`.
        """
        if isinstance(tasks, (str, bytes, Mapping)) or not isinstance(tasks, Sequence) or any(
                not isinstance(t, MetaTask) for t in tasks):
            raise ValueError(f"tasks must be a list of MetaTask, got {tasks!r:.200}.")
        if not tasks:
            raise ValueError("meta_train needs at least one task.")
        if not callable(evaluate):
            raise ValueError(f"evaluate must be a function (task, strategy, settings, seed) -> "
                             f"score, got {evaluate!r:.80}.")
        if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Sequence) or any(
                not callable(c) for c in callbacks):
            raise ValueError(f"callbacks must be a list of functions (study, trial), "
                             f"got {callbacks!r:.200}.")
        check_int("n_trials", n_trials, low=1)
        if objective is not None:
            check_objective(objective)
        if not isinstance(include_defaults, (bool, np.bool_)):
            raise ValueError(f"include_defaults must be True or False, got {include_defaults!r}.")
        if isinstance(seeds, (str, bytes, Mapping)) or not isinstance(
                seeds, (Sequence, np.ndarray)) or len(seeds) == 0 or any(
                isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)) or s < 0
                for s in seeds):
            raise ValueError(f"seeds must be a non-empty list of ints >= 0, got {seeds!r}.")
        seeds = [int(s) for s in seeds]
        names = [t.name for t in tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique, got {names}.")
        classes = strategy_classes()
        # A custom evaluator that names no objective is taken to score the area.
        named = getattr(evaluate, "objective", None)
        named = named if isinstance(named, str) and named in OBJECTIVES else None
        if objective is not None and named is not None and objective != named:
            raise ValueError(f"objective={objective!r} but the evaluator scores {named!r}.")
        scored_by = objective or named or "auc"
        meta_space(strategies)  # unknown names
        choices = self.check_strategies(strategies)
        self.check_settings_space(strategies)
        self.ensure_objective(scored_by)
        budget = getattr(evaluate, "budget", None)
        budget = budget if isinstance(budget, int) and not isinstance(budget, bool) else None
        if budget is not None:
            self.ensure_budget(budget)
        sampler = self.study.sampler
        if set(strategies) != set(choices):
            # Some of the study's strategies: the sampler would draw among all of
            # them, so this process draws the strategy (seeded, and on from the
            # study's size, so later calls draw anew) and the sampler the settings.
            seed = None if self.seed is None else [self.seed, len(self.study.trials)]
            sampler = _StrategyAmong(sampler, strategies, np.random.default_rng(seed))

        process = _this_process()

        def objective(trial: optuna.Trial) -> float:
            try:
                return run(trial)
            except KeyboardInterrupt:
                # Optuna fails the trial; a queued setting (the defaults, a warm
                # start's `enqueue`) is queued again, once, as a killed one is.
                fixed = self.study._storage.get_trial_system_attrs(trial._trial_id).get(
                    "fixed_params")
                if fixed and RETRY_KEY not in trial.user_attrs:
                    self.study.enqueue_trial(dict(fixed), user_attrs={RETRY_KEY: trial.number})
                raise

        def run(trial: optuna.Trial) -> float:
            if process is not None:  # so that a later process sees at once if this one dies
                self.study._storage.set_trial_system_attr(trial._trial_id, PROCESS_KEY, process)
            strategy, raw = self.suggest(trial, strategies)
            settings = classes[strategy].settings_from_params(raw)
            per_seed = {
                task.name: [_score_of(evaluate, evaluate(task, strategy, settings, s),
                                      task, strategy, s) for s in seeds]
                for task in tasks
            }
            per_task = {name: float(np.mean(scores)) for name, scores in per_seed.items()}
            trial.set_user_attr("per_task", per_task)
            trial.set_user_attr("per_seed", per_seed)
            trial.set_user_attr("features", {t.name: dict(t.features) for t in tasks})
            trial.set_user_attr("source", "meta-train")
            trial.set_user_attr("objective", scored_by)
            if budget is not None:
                trial.set_user_attr("budget", budget)
            # Another process may have claimed the study for another objective
            # meanwhile; the trial fails rather than mix (no take-over here).
            self._refuse_other(self.study.user_attrs.get(OBJECTIVE_KEY), scored_by)
            return float(np.mean(list(per_task.values())))

        # Meta-trials of a killed process stay RUNNING: fail those known to be
        # abandoned, and queue the defaults whose meta-trial is not known to be alive.
        retries = self._fail_abandoned()
        defaults = [default_recommendation(s).params for s in list(strategies)[:n_trials]]
        # Defaults meta-trained on other tasks, or on fewer seeds, cannot test a
        # candidate of this call (`recommend` pairs them by task and seed): run them.
        covering = {task.name: len(seeds) for task in tasks}
        if include_defaults:
            self._queue_missing(defaults, covering=covering)
        # A killed meta-trial's settings after the defaults (queued trials run in
        # order), if this call meta-trains their strategy and nothing runs them yet.
        skipped = []
        for number, params in retries:
            if params.get("strategy") not in strategies:
                skipped.append(number)
            elif not self._has_meta_trial(params):
                self.study.enqueue_trial(params, user_attrs={RETRY_KEY: number})
        if skipped:
            warnings.warn(f"meta-trials {skipped} were killed running a strategy this call "
                          f"does not meta-train ({list(strategies)}): their settings do not run "
                          "again.", stacklevel=2)
        told = []  # the meta-trials this call finished (a callback runs after each tell)

        requeued: set = set()  # defaults queued again by `after`: once each per call

        def after(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            told.append(trial.number)
            if include_defaults and len(told) < n_trials:
                # A defaults' meta-trial running elsewhere may have died since the
                # start (its heartbeat fell silent): run them here, within the budget
                # (once: defaults whose own meta-trial fails must not take it all).
                requeued.update(self._queue_missing(defaults, skip=requeued, covering=covering))

        own_sampler, self.study.sampler = self.study.sampler, sampler
        try:
            while len(told) < n_trials:
                try:
                    self.study.optimize(
                        objective, n_trials=n_trials - len(told),
                        show_progress_bar=show_progress_bar,
                        callbacks=[after, *callbacks],
                    )
                    break  # the budget ran out, or a callback stopped the study
                except ValueError as error:
                    if "Cannot tell a FAIL trial" in str(error):
                        # Its heartbeat stopped (a suspended process, a lost
                        # connection) and another process failed it as stale.
                        warnings.warn(f"a meta-trial was failed as stale by another process "
                                      f"({error}); its result is dropped.", stacklevel=2)
                        continue
                    if "Cannot tell a COMPLETE trial" not in str(error):
                        raise
                    # Two processes on one SQLite storage can both take the same queued
                    # meta-trial; the first result stands, and this process goes on.
                    warnings.warn(f"a queued meta-trial also ran in another process ({error}); "
                                  "its first result is kept.", stacklevel=2)
        finally:
            self.study.sampler = own_sampler
        return self.study

    @property
    def objective(self) -> str:
        """The meta-objective the study's scores are in (`OBJECTIVES`).

        A study that has recorded none is taken to score the area (``"auc"``):
        studies from before objectives were recorded did.
        """
        return self.study.user_attrs.get(OBJECTIVE_KEY, "auc")

    def ensure_objective(self, objective: str) -> None:
        """Records ``objective`` as the study's meta-objective, or refuses another.

        A study holds scores of one objective. The first call records it; while
        the study has no finished trial scored with the recorded one (a run that
        was stopped before its first meta-trial ended), another objective may
        take it over. A study with finished trials but no recorded objective
        (from before objectives were recorded) scores the area, ``"auc"``.

        Args:
            objective: One of `OBJECTIVES`.

        Raises:
            ValueError: ``objective`` is not one of `OBJECTIVES`.
            ObjectiveError: The study holds another objective's scores.
        """
        check_objective(objective)
        recorded = self.study.user_attrs.get(OBJECTIVE_KEY)
        if recorded != objective:
            stamps = [scored_with(t) for t in self.study.get_trials(
                deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
            if recorded is None or recorded not in stamps:
                # Unclaimed, or claimed by a run that finished nothing: the scores decide.
                claim = stamps[0] if stamps else objective
                self.study.set_user_attr(OBJECTIVE_KEY, claim)
                # Two processes may both claim; the last write stands, and the check
                # inside each meta-trial and the stamps (`_results`) catch the other.
                recorded = self.study.user_attrs.get(OBJECTIVE_KEY, claim)
        self._refuse_other(recorded, objective)

    def ensure_budget(self, budget: int) -> None:
        """Records ``budget`` (evaluations per search) as the study's, or refuses another.

        As `ensure_objective`: the first meta-training with a budget records
        it, and another may take it over while no finished meta-trial is
        stamped with the recorded one. Meta-trials from before budgets were
        stamped are taken to have the study's budget.

        Raises:
            ObjectiveError: The study's meta-trials searched with another budget.
        """
        recorded = self.study.user_attrs.get(BUDGET_KEY)
        if recorded is not None and recorded != budget:
            stamped = [t.user_attrs.get("budget") for t in self.study.get_trials(
                deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
            if recorded in stamped:
                raise ObjectiveError(
                    f"study {self.study.study_name!r} holds scores of searches of {recorded} "
                    f"evaluations; got a budget of {budget}. Scores after different budgets "
                    "cannot be compared: use the same budget, or another study (study_name)."
                )
        if recorded != budget:
            self.study.set_user_attr(BUDGET_KEY, budget)

    def _refuse_other(self, recorded: Optional[str], objective: str) -> None:
        if recorded != objective:
            raise ObjectiveError(
                f"study {self.study.study_name!r} is recorded as scored with objective "
                f"{recorded!r}; got scores of objective {objective!r}. Use the same objective, "
                "or another study (study_name)."
            )

    def _heartbeat_ages(self) -> Optional[Dict[int, float]]:
        """Seconds since the last heartbeat of each running trial that has one, by trial id.

        Read as Optuna reads them to fail stale trials (on the database's
        clock, so that machines' clocks need not agree). None if the storage
        cannot tell.
        """
        try:
            import sqlalchemy
            from optuna.storages._rdb import models
            from optuna.storages._rdb.storage import _create_scoped_session

            with _create_scoped_session(self._rdb.scoped_session) as session:
                now = session.execute(sqlalchemy.func.now()).scalar().replace(tzinfo=None)
                rows = (
                    session.query(models.TrialHeartbeatModel.trial_id,
                                  models.TrialHeartbeatModel.heartbeat)
                    .join(models.TrialModel)
                    .filter(models.TrialModel.study_id == self.study._study_id,
                            models.TrialModel.state == optuna.trial.TrialState.RUNNING)
                    .all()
                )
        except Exception:  # a newer Optuna's schema, a lost connection: cannot tell
            return None
        return {trial_id: (now - beat.replace(tzinfo=None)).total_seconds()
                for trial_id, beat in rows}

    def _may_be_running(self, trial: optuna.trial.FrozenTrial,
                        ages: Optional[Dict[int, float]]) -> bool:
        """Whether a RUNNING ``trial`` may still be running in some process.

        Not if its process (`PROCESS_KEY`) is known to be gone
        (`_process_is_gone`), nor if its heartbeat (or, before the first one,
        its start) is `SILENT_SECONDS` old. When the storage cannot tell its
        heartbeat (``ages`` None), it may.
        """
        if _process_is_gone(trial.system_attrs.get(PROCESS_KEY)) or _orphaned(trial, ages):
            return False
        if ages is None:
            return True
        age = ages.get(trial._trial_id)
        if age is None:  # asked, with no heartbeat yet (or outside `optimize`)
            started = trial.datetime_start
            age = 0.0 if started is None else (datetime.datetime.now() - started).total_seconds()
        return age < SILENT_SECONDS

    def _fail_abandoned(self) -> List[Tuple[int, Dict[str, Any]]]:
        """Fails the running meta-trials known to be abandoned.

        Those of a process of this machine that is gone (`_process_is_gone`),
        at once; those left between Optuna's ``ask`` and their first step, with
        no process record nor heartbeat, `ORPHAN_SECONDS` after they began
        (`_orphaned`); and those whose heartbeat is `STALE_SECONDS` old (Optuna's
        ``fail_stale_trials``). A trial that may belong to a live process
        (another machine's, with a recent heartbeat) is left running: two
        processes may meta-train on one storage.

        Returns:
            ``(number, params)`` of each meta-trial failed for its gone process
            whose settings are to run again (`meta_train` queues them after the
            defaults): once, so a retry killed in turn is not among them
            (settings that kill their process must not kill every later
            meta-training).
        """
        failed, retries = [], []
        running = (optuna.trial.TrialState.RUNNING,)
        ages = self._heartbeat_ages()
        # Gone processes first: once a heartbeat is STALE_SECONDS old, Optuna's
        # check would fail the trial itself, and its settings would not run again.
        for trial in self.study.get_trials(deepcopy=False, states=running):
            if _process_is_gone(trial.system_attrs.get(PROCESS_KEY)) or _orphaned(trial, ages):
                try:
                    self.study._storage.set_trial_state_values(
                        trial._trial_id, state=optuna.trial.TrialState.FAIL)
                except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError):
                    continue  # finished or failed meanwhile by another process
                failed.append(trial.number)
                # A queued setting whole: a kill amid its suggestions leaves a part.
                params = trial.system_attrs.get("fixed_params") or trial.params
                if params and RETRY_KEY not in trial.user_attrs:
                    retries.append((trial.number, dict(params)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(self.study)
        if failed:
            warnings.warn(f"meta-trials {failed} were left running by a process that has ended "
                          "(killed); they are failed, and their settings run "
                          "again (once) if this meta-training includes their strategy.",
                          stacklevel=3)
        return retries

    def _queue_missing(self, defaults: Sequence[Mapping[str, Any]],
                       skip: Sequence[int] = (),
                       covering: Optional[Mapping[str, int]] = None) -> List[int]:
        """Queues each of ``defaults`` (but those at the indices ``skip``) that the
        study neither has (on the tasks and seeds ``covering``) nor is running
        (`_has_meta_trial`); returns their indices."""
        ages: Dict[str, Optional[Dict[int, float]]] = {}
        queued = []
        for index, params in enumerate(defaults):
            if index not in skip and not self._has_meta_trial(params, ages, covering):
                self.study.enqueue_trial(dict(params))
                queued.append(index)
        return queued

    def _has_meta_trial(self, params: Mapping[str, Any],
                        cache: Optional[Dict[str, Optional[Dict[int, float]]]] = None,
                        covering: Optional[Mapping[str, int]] = None) -> bool:
        """Whether ``params`` are meta-trained, queued, or running in a process that may be alive.

        A production record does not count (the defaults' check needs their
        multi-seed meta-trial), nor a failed meta-trial, nor a running one
        whose process is gone or silent (`_may_be_running`): its settings are
        to run again. ``cache`` keeps the heartbeats read across calls. With
        ``covering`` (task name: seeds), a finished meta-trial counts only if
        it ran on each of those tasks with at least that many seeds: one on
        other tasks cannot test a candidate on these (`recommend`).
        """
        objective = self.objective
        cache = {} if cache is None else cache
        for trial in self.study.get_trials(deepcopy=False):
            state = trial.state
            if state == optuna.trial.TrialState.COMPLETE:
                if (trial.user_attrs.get("source") != "meta-train"
                        or scored_with(trial) != objective):
                    continue
                per_task = trial.user_attrs.get("per_task") or {}
                per_seed = trial.user_attrs.get("per_seed") or {}
                if covering is not None and any(
                        name not in per_task or len(per_seed.get(name) or [None]) < seeds
                        for name, seeds in covering.items()):
                    continue  # meta-trained on other tasks, or fewer seeds
            elif state not in (optuna.trial.TrialState.WAITING, optuna.trial.TrialState.RUNNING):
                continue  # failed or pruned: not run
            trial_params = trial.system_attrs.get("fixed_params", trial.params)
            if not trial_params or not _same_params(trial_params, params):
                continue
            if state == optuna.trial.TrialState.RUNNING:
                if "ages" not in cache:
                    cache["ages"] = self._heartbeat_ages()
                if not self._may_be_running(trial, cache["ages"]):
                    continue
            return True
        return False

    def record(
        self,
        *,
        task: MetaTask,
        strategy: str,
        params: Mapping[str, Any],
        score: float,
        source: str = "production",
        key: Optional[str] = None,
    ) -> int:
        """Adds a finished search as a meta-trial; returns its trial number.

        ``score`` is in the ``"auc"`` meta-objective (as `search_score` gives
        it for a production search). A ``key`` names the search: a search
        recorded under that key already is not added again (its number is
        returned), so that reporting a search twice counts it once. A
        `MetaTuner`'s key (``"<search id: 32 hex digits>#<trials>"``) recorded
        again with more trials (the search resumed) supersedes the search's
        earlier records in ``recommend``: they are one search, not several to
        pool.

        Raises:
            ValueError: ``task`` is not a `MetaTask`, ``score`` not a finite
                number, ``strategy`` not a known strategy, ``params`` not a
                dict, or one of its settings outside its range (names that are
                no setting of ``strategy`` are left out, with a warning).
            ObjectiveError: The study holds another objective's scores.
            StrategyError: The study's ``"strategy"`` parameter does not range
                over ``strategy`` (`strategy_choices`; a new study ranges over
                every strategy).
        """
        if not isinstance(task, MetaTask):
            raise ValueError(f"task must be a MetaTask(name, features), got {task!r}.")
        if not isinstance(params, Mapping):
            raise ValueError(f"params must be a dict of settings such as "
                             f"{{'evolution.population_size': 20}}, got {params!r:.80}.")
        if (isinstance(score, (bool, np.bool_)) or not isinstance(score, (numbers.Real, np.number))
                or not math.isfinite(float(score))):
            raise ValueError(f"score must be a finite number (the 'auc' meta-objective, as "
                             f"search_score gives it), got {score!r}.")
        space = meta_space([strategy])[strategy]
        choices = self.check_strategies([strategy], new=tuple(strategy_classes()))
        self.check_settings_space([strategy])
        self.ensure_objective("auc")
        if key is not None:
            for done in self.study.get_trials(deepcopy=False):
                if done.user_attrs.get("search_key") == key:
                    return done.number
        full = {"strategy": strategy, **{k: v for k, v in params.items() if k in space}}
        unknown = [k for k in params if k not in space and k != "strategy"]
        if unknown:
            # (Kept as a record, not refused: a search's result is never lost.)
            warnings.warn(f"params {unknown} are not settings of {strategy!r} (those are "
                          f"{sorted(space)}); the search is recorded without them.",
                          stacklevel=2)
        for name in full:
            if name != "strategy" and not _within(space[name], full[name]):
                raise ValueError(f"params[{name!r}] = {full[name]!r} is outside the setting's "
                                 f"range {space[name]}.")
        distributions = {"strategy": optuna.distributions.CategoricalDistribution(list(choices))}
        distributions.update({k: space[k] for k in full if k != "strategy"})
        trial = optuna.trial.create_trial(
            params=full,
            distributions=distributions,
            value=float(score),
            user_attrs={
                "per_task": {task.name: float(score)},
                "per_seed": {task.name: [float(score)]},
                "features": {task.name: dict(task.features)},
                "source": source,
                "objective": "auc",
                **({"search_key": key} if key is not None else {}),
            },
        )
        self.study.add_trial(trial)
        return self.study.trials[-1].number

    # -------------------------------------------------------- recommending
    def _results(self, exclude: Sequence[str]) -> List[Tuple[Dict[str, Any], Dict[str, float], Dict, Dict]]:
        """``(params, per_task, features, per_seed)`` of each finished meta-trial and setting.

        Production records (`record`: one search on one task each) of the same
        settings are pooled into one result: the settings' score on a task is
        the mean of its searches there (as one seed). Apart, the settings that
        a `MetaTuner` searched with on each of several similar tasks would
        never count as run on all of them, and their luckiest single search
        would stand for them (``recommend``'s ``expected``). Meta-trials are
        not pooled (their seeds pair with the defaults' by position).
        """
        out = []
        pooled: List[Tuple[Dict[str, Any], Dict[str, List[float]], Dict, Dict]] = []
        objective, budget = self.objective, self.study.user_attrs.get(BUDGET_KEY)
        complete = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        superseded = _superseded([trial.user_attrs.get("search_key") for trial in complete])
        for trial, earlier in zip(complete, superseded):
            if earlier:
                continue  # an earlier state of a search recorded again since (resumed)
            if scored_with(trial) != objective or (
                    budget is not None and trial.user_attrs.get("budget", budget) != budget):
                continue  # a score on another scale (a race between two claims)
            per_task = {
                k: v for k, v in trial.user_attrs.get("per_task", {}).items() if k not in exclude
            }
            features = {
                k: v for k, v in trial.user_attrs.get("features", {}).items() if k in per_task
            }
            per_seed = {
                k: list(v) for k, v in trial.user_attrs.get("per_seed", {}).items() if k in per_task
            }
            if not per_task or "strategy" not in trial.params:
                continue
            if trial.user_attrs.get("source") == "meta-train":
                out.append((trial.params, per_task, features, per_seed))
                continue
            group = next((g for g in pooled if _same_params(g[0], trial.params)), None)
            if group is None:
                group = (trial.params, {}, {}, {})
                pooled.append(group)
            for name, score in per_task.items():
                group[1].setdefault(name, []).append(float(score))
            group[2].update(features)
        for params, scores, features, _ in pooled:
            means = {name: float(np.mean(values)) for name, values in scores.items()}
            out.append((params, means, features, {name: [m] for name, m in means.items()}))
        return out

    def recommend(
        self,
        features: Mapping[str, Any],
        *,
        strategies: Optional[Sequence[str]] = None,
        k: int = 3,
        max_distance: float = 0.5,
        exclude_tasks: Sequence[str] = (),
        alpha: Optional[float] = 0.05,
    ) -> Recommendation:
        """The settings expected to search best on a task with ``features``.

        The ``k`` tasks nearest to ``features`` (within ``max_distance``) are
        found among those the meta-trials ran on; the meta-trial with the best
        mean score on them wins. With no task that near, the best mean over all
        tasks wins; with no meta-trial at all, the defaults (with a warning).
        Candidates that ran on all those tasks compete first; one that lacks
        some of them (a production search recorded on one task) competes only
        when none ran on all, as a mean over fewer tasks is not comparable.

        The best of many noisy candidates is partly the luckiest (the winner's
        curse), so it must beat the default strategy's defaults (evolution's,
        if allowed, else the first of the others by name: what is recommended
        with nothing learnt; the allowed strategies are the study's
        `strategy_choices`, or those of ``strategies`` it holds) on the same tasks
        (`meta_train` runs every strategy's defaults first), or the defaults
        are recommended instead. When the meta-trials ran several seeds per
        task, the candidate is selected on the first half of each task's seeds
        and must beat the defaults on the second half (a one-sided paired test
        at level ``alpha``; `_confirmed_choice`), and ``expected`` is its mean
        on that second half. Otherwise the best of all candidates must beat
        them beyond noise on all seeds (the same test, Bonferroni-corrected
        for the number of candidates). When the defaults have no finished
        meta-trial on those tasks (their meta-trial is still running, or was
        killed, or meta-training skipped them), no candidate can be tested:
        the defaults are recommended, with the source ``"defaults (candidates
        untested: ...)"``, ``expected`` None and a warning that names the
        untested best and the defaults' unfinished meta-trials (a single
        candidate, such as a study's one production record, is no choice
        among many and is recommended as before). With a single
        paired score against the defaults (one task, one seed) no test is
        possible either; the best is recommended, with a warning.

        Args:
            features: The new task's meta-features: a mapping as
                `dataset_features`, `space_features` or ``bench_features``
                make (or some of their keys; `check_features`).
            strategies: Only consider these strategies (default: the study's).
            k: How many similar tasks to average over.
            max_distance: `feature_distance` beyond which a task is not similar.
            exclude_tasks: Task names whose results are ignored (for
                leave-one-task-out evaluation).
            alpha: Level of the test against the defaults, in (0, 1); None
                recommends the best candidate untested.

        Raises:
            ValueError: ``features`` is no mapping of meta-features (empty, an
                unknown key, a value that is not a finite number or, for
                ``modality`` and ``task_type``, a string), or another argument
                is not allowed.
        """
        if alpha is not None and (
            isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < 1
        ):
            raise ValueError(f"alpha must be a number in (0, 1) or None, got {alpha!r}.")
        k, max_distance = check_k(k), check_max_distance(max_distance)
        if isinstance(exclude_tasks, (str, bytes, Mapping)) or not isinstance(
                exclude_tasks, (Sequence, set, frozenset, np.ndarray)) or not all(
                isinstance(name, str) for name in exclude_tasks):
            raise ValueError(f"exclude_tasks must be a list of task names such as "
                             f"['nb201/cifar10'], got {exclude_tasks!r}.")
        allowed = self._recommendable(strategies)
        results = [r for r in self._results(exclude_tasks) if r[0]["strategy"] in allowed]
        seen = [f for r in results for f in r[2].values() if isinstance(f, Mapping)]
        check_features(features, **seen_in(seen))
        if not results:
            others = [] if self.study.trials else sorted(
                set(optuna.get_all_study_names(self.storage_url)) - {self.study.study_name})
            held = set(self.strategy_choices())
            # A study of other strategies holds meta-trials, just none of these.
            of = (f" of {sorted(allowed)} (it ranges over {sorted(held)})"
                  if held and not allowed & held else "")
            if not of and exclude_tasks and any(
                    r[0]["strategy"] in allowed for r in self._results(())):
                # It holds some, all on the excluded tasks (leave-one-task-out).
                of = f" on tasks other than the excluded {sorted(set(exclude_tasks))}"
            warnings.warn(
                f"study {self.study.study_name!r} in the meta storage "
                f"{redact(self.storage_url)!r} has no meta-trial{of or ' to learn from'}"
                + (f" (the storage's other studies: {others})" if others else "")
                + "; recommending the default settings.",
                stacklevel=2,
            )
            return default_recommendation(_default_strategy(allowed))
        task_features: Dict[str, Dict] = {}
        for _, _, feats, _ in results:
            task_features.update(feats)
        near = nearest_tasks(features, task_features, k=k, max_distance=max_distance)
        chosen = near or list(task_features)
        scored = []  # (mean on the chosen tasks, result) of candidates with all of them
        partial = []  # (mean on the chosen tasks it has, params) of the others
        for result in results:
            params, per_task = result[0], result[1]
            scores = [per_task[name] for name in chosen if name in per_task]
            if len(scores) == len(chosen):
                scored.append((float(np.mean(scores)), result))
            elif scores:
                partial.append((float(np.mean(scores)), params))
        # A mean over fewer (perhaps easier) tasks is not comparable with one over
        # all of them: candidates that ran on every chosen task compete first.
        ranked = [(score, result[0]) for score, result in scored] or partial
        best = min(ranked, key=lambda item: item[0]) if ranked else None
        if best is None:  # the chosen tasks only have production trials of other kinds
            best = min(
                ((float(np.mean(list(p.values()))), params) for params, p, _, _ in results),
                key=lambda item: item[0],
            )
        source = f"similar tasks: {', '.join(near)}" if near else "all tasks"
        confirmed = None if alpha is None else _confirmed_choice(scored, chosen, allowed, alpha)
        if confirmed is not None:
            params, expected, passed = confirmed
            if not passed:
                source = f"defaults (no candidate beats them beyond noise; {source})"
            strategy, raw = _split_params(params)
            cls = strategy_classes()[strategy]
            return Recommendation(strategy, dict(params), cls.settings_from_params(raw), source, expected)
        if alpha is not None:
            untested = self._untested(best, len(ranked), scored, chosen, allowed, source)
            if untested is not None:
                return untested
            safe = _beats_defaults(best[1], scored, chosen, allowed, alpha)
            if safe is not None:
                baseline, mean = safe
                return dataclasses.replace(
                    default_recommendation(
                        baseline, source=f"defaults (no candidate beats them beyond noise; {source})"),
                    expected=mean,
                )
        strategy, raw = _split_params(best[1])
        cls = strategy_classes()[strategy]
        return Recommendation(strategy, dict(best[1]), cls.settings_from_params(raw), source, best[0])

    def _recommendable(self, strategies: Optional[Sequence[str]]) -> Set[str]:
        """The strategies `recommend` chooses among, and whose defaults it falls back to.

        Those of the study (`strategy_choices`), or of ``strategies`` only:
        a study that never ran evolution has no meta-trial of its defaults to
        test a candidate against, nor can it run one (its strategies are
        fixed), so its own strategies bound the choice and the fallback.
        When none of the named ``strategies`` is among the study's, they are
        kept as they are (the study holds nothing of them: their defaults).

        Raises:
            ValueError: ``strategies`` is empty, a string, or names an unknown strategy.
        """
        named = set(strategy_classes() if strategies is None else meta_space(strategies))
        return (named & set(self.strategy_choices())) or named

    def _untested(self, best, candidates: int, scored, chosen, allowed,
                  source: str) -> Optional[Recommendation]:
        """The defaults, when ``best`` is another candidate and the defaults have
        nothing to test it against.

        The best of many noisy candidates is mostly the luckiest, so an
        untested one is not recommended as if it had been tested. None when
        ``best`` is the defaults, is the only one of the ``candidates`` (no
        choice, so no winner's curse: a study's one production record), or
        the defaults have a finished meta-trial on all ``chosen`` tasks (the
        caller tests against it).
        """
        strategy = _default_strategy(allowed)
        baseline = default_recommendation(strategy).params
        if (candidates < 2 or _same_params(best[1], baseline)
                or _defaults_result(scored, chosen, allowed) is not None):
            return None
        trials = self.study.get_trials(deepcopy=False)
        pending = [
            f"{t.number} ({t.state.name})" for t in trials
            if t.state != optuna.trial.TrialState.COMPLETE
            and _same_params(t.system_attrs.get("fixed_params", t.params) or {}, baseline)
        ]
        # Tasks known only from production searches (`record`): meta-train cannot run them.
        trained = {name for t in trials if t.user_attrs.get("source") == "meta-train"
                   for name in t.user_attrs.get("per_task", {})}
        production = [name for name in chosen if name not in trained]
        if production:
            advice = (f"{production} {'is' if len(production) == 1 else 'are'} known only from "
                      f"production searches, which meta-train cannot run: pass "
                      f"exclude_tasks={production} to choose on the meta-trained tasks")
        else:
            advice = (f"Meta-train again with {strategy!r} among the strategies (its defaults "
                      "run first)")
        warnings.warn(
            f"the {strategy} defaults have no finished meta-trial on "
            f"{', '.join(production or chosen)}"
            + (f" (their meta-trials {', '.join(pending)} have no result: running elsewhere, "
               "queued, or killed)" if pending else "")
            + f", so the best candidate ({best[1]['strategy']}, mean {best[0]:.4g}) cannot be "
            f"tested against them; recommending the defaults. {advice}, or pass alpha=None to "
            "take the best candidate untested.",
            stacklevel=3,
        )
        return default_recommendation(
            strategy, source=f"defaults (candidates untested: the defaults have no finished "
                             f"meta-trial on these tasks; {source})")

    def enqueue_around_defaults(
        self, strategy: str = "evolution", *, n: int, spread: float = 0.25, seed: int = 0
    ) -> List[Dict[str, Any]]:
        """Queues ``n`` meta-trials near ``strategy``'s defaults (`around_defaults`).

        The next meta-trials (`meta_train`, from any process on this storage)
        run them before the sampler draws its own; returns their params.
        """
        points = around_defaults(strategy, n=n, spread=spread, seed=seed)
        for params in points:
            self.study.enqueue_trial(params, skip_if_exists=True)
        return points

    def enqueue(self, recommendation: Recommendation, study: Optional[optuna.Study] = None) -> None:
        """Warm-starts ``study`` (this one by default) with a recommendation."""
        (study or self.study).enqueue_trial(dict(recommendation.params), skip_if_exists=True)
