"""Transfer what a strategy learned on one task to a new, similar task.

Settings are not all a search learns: evolution ends with an *elite* (its best
configurations), the RL controller with a *policy*. `TransferStore` keeps them
per task in the meta storage (as Optuna study user attributes, so every
process and machine sharing the storage sees them) and hands them to a search
on a new task whose meta-features are close and whose search space matches:
the elite seeds the initial population (``initial_hps``), the policy the
controller. This is the warm start of Feurer et al., "Initializing Bayesian
Hyperparameter Optimization via Meta-Learning" (AAAI 2015), applied to the
strategy's own state rather than to a surrogate model.

Example:

    >>> store = TransferStore(MetaLearner("sqlite:///meta.db"))
    >>> store.save(task, oracle)                       # after a search
    >>> start = store.warm_start(features, hyperparameters=hp)
    >>> EvolutionOracle(objective="val_accuracy", max_trials=50, **start.oracle_kwargs())
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence

from keras_tuner.src.engine.hyperparameters import hp_types

from metanas.meta.features import check_features, check_max_distance, feature_distance, seen_in
from metanas.meta.learner import MetaLearner, MetaTask
from metanas.tuners import MetanasOracle, SearchSpaceCodec
from metanas.tuners.base import check_int

__all__ = ["TransferStore", "WarmStart", "elite_of", "policy_of", "space_config"]

PREFIX = "transfer/"


def _plain(value: Any) -> Any:
    """A JSON-safe copy of a hyperparameter value (numpy scalars to Python)."""
    if hasattr(value, "item"):
        return value.item()
    return value


def elite_of(oracle, size: Optional[int] = None) -> List[Dict[str, Any]]:
    """The best configurations of a finished search, best first.

    Args:
        oracle: A `MetanasOracle` (evolution: its final population; any other:
            all trials that ended).
        size: How many to keep; by default evolution's population size, or 10.

    Returns:
        ``{name: value}`` dicts of completed trials, by decreasing fitness.
    """
    members = list(getattr(oracle, "population", None) or oracle.end_order)
    if size is None:
        size = int(getattr(oracle, "population_size", 10))
    check_int("size", size, low=1)
    scored = [(oracle.fitness(oracle.trials[t]), t) for t in members]
    scored = [(f, t) for f, t in scored if f != -math.inf]
    scored.sort(key=lambda item: -item[0])
    return [
        {k: _plain(v) for k, v in oracle.trials[t].hyperparameters.values.items()}
        for _, t in scored[:size]
    ]


def policy_of(oracle) -> Optional[Dict[str, Any]]:
    """The RL controller's trained policy as JSON (weights and decisions), else None."""
    policy = getattr(oracle, "policy", None)
    if policy is None or not hasattr(policy, "to_base64"):
        return None
    return {
        "weights": policy.to_base64(),
        "decisions": [[n, int(s)] for n, s in zip(policy.decisions, policy.sizes)],
        "adam_step": int(getattr(policy, "adam_step", 0)),
        "units": getattr(policy, "units", None),
        "num_layers": getattr(policy, "num_layers", None),
    }


def space_config(hyperparameters) -> Dict[str, Dict[str, Any]]:
    """Each hyperparameter's definition, by name, as JSON: its type, range or
    choices, sampling and conditions (not its default, which changes no value)."""
    configs = {}
    for hp in getattr(hyperparameters, "space", ()):
        config = {k: v for k, v in hp.get_config().items() if k != "default"}
        configs[hp.name] = json.loads(json.dumps({"class": type(hp).__name__, **config},
                                                 default=str))
    return configs


def _alike(a: Any, b: Any) -> bool:
    """JSON values equal, floats to float32's precision (a bound given as
    ``np.float32(1e-4)`` is 9.9999997e-05 once keras-tuner makes it a float)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_alike(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_alike, a, b))
    if isinstance(a, float) or isinstance(b, float):
        return (isinstance(a, (int, float)) and isinstance(b, (int, float))
                and not isinstance(a, bool) and not isinstance(b, bool)
                and math.isclose(a, b, rel_tol=1e-6, abs_tol=0.0))
    return a == b and type(a) is type(b)


def _elite_here(record: Mapping[str, Any], codec,
                ours: Mapping[str, Any]) -> Optional[List[Dict[str, Any]]]:
    """``record``'s elite as values of ``codec``'s space, or None if the record does not
    qualify: the names its space shares with that space are defined otherwise.

    A space with the same names may give them other types, ranges or choices:
    its elite's values would be invalid, or mean other things (``units`` 8
    among 8..64 is not ``units`` 8 among 128..1024). Compared by definition
    where the record keeps them (`space_config`; floats to float32's
    precision), and always by whether each value of the elite is a legal
    value of the declaration of its name that is active under the elite's
    other values, walked in space order as the oracle does (`SearchSpaceCodec.
    repair`: a value of an inactive name is dropped, not judged). A float
    within float32's precision of a choice or a bound here (``np.float32(1e-4)``
    is 9.9999997e-05) is that choice or bound. ``codec`` (a `SearchSpaceCodec`)
    and ``ours`` (`space_config` of its space) are made once for all the records.
    """
    theirs = record.get("space_config")
    if isinstance(theirs, Mapping) and not all(
            _alike(theirs[name], config) for name, config in ours.items() if name in theirs):
        return None
    known = ours.keys()
    elite = []
    for config in record.get("elite", []):
        out: Dict[str, Any] = {}
        for hp in codec.space:
            if hp.name in out or config.get(hp.name) is None or not all(
                    condition.is_active(out) for condition in hp.conditions):
                continue
            value = _value_here(codec, hp, config[hp.name])
            if value is _ILLEGAL:
                return None
            out[hp.name] = value
        if not out and any(name in known for name in config):
            return None  # nothing of it holds here (a parent missing): no elite to start from
        # Names this space does not hold (yet) are passed on, as `initial_hps` are.
        out.update({name: value for name, value in config.items() if name not in known})
        elite.append(out)
    return elite


_ILLEGAL = object()


def _value_here(codec, hp, value: Any) -> Any:
    """``value`` as a legal value of ``hp``, or else, for a float, the choice or bound of
    ``hp`` within float32's precision of it; `_ILLEGAL` if neither."""
    canonical = codec.canonical_value(hp, value)
    if codec.is_valid_value(hp, canonical):
        return canonical
    if not isinstance(value, float):
        return _ILLEGAL
    # (A range's `values` would enumerate its whole grid: its bounds are enough.)
    options = list(hp.values) if isinstance(hp, hp_types.Choice) else []
    options += [getattr(hp, name, None) for name in ("min_value", "max_value", "value")]
    for option in options:
        if isinstance(option, float) and math.isclose(option, value, rel_tol=1e-6, abs_tol=0.0):
            option = codec.canonical_value(hp, option)
            if codec.is_valid_value(hp, option):
                return option
    return _ILLEGAL


def _check_task(task: Any) -> None:
    """A ValueError unless ``task`` is a `MetaTask` (whose name is non-empty: it checks)."""
    if not isinstance(task, MetaTask):
        raise ValueError(f"task must be a MetaTask(name, features) with a non-empty name, "
                         f"got {task!r}.")


@dataclasses.dataclass
class WarmStart:
    """What a new search starts from.

    Attributes:
        source: The task it was learned on (None: a cold start).
        distance: `feature_distance` to that task.
        elite: Configurations to try first (evolution's ``initial_hps``).
        policy: The RL controller's saved policy (its JSON state), if any.
    """

    source: Optional[str] = None
    distance: Optional[float] = None
    elite: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    policy: Optional[Dict[str, Any]] = None

    def oracle_kwargs(self) -> Dict[str, Any]:
        """Constructor keywords for an oracle (``initial_hps`` from the elite)."""
        return {"initial_hps": [dict(c) for c in self.elite]} if self.elite else {}

    def apply(self, oracle) -> bool:
        """Loads the saved controller policy into an RL ``oracle`` before its search.

        The controller starts from the weights (and optimiser state) learned
        on the similar task. Returns whether a policy was loaded: False for a
        cold start, an oracle without a policy, or one whose controller has
        another shape (``units``, ``num_layers``) or has already sampled.

        Raises:
            ValueError: the saved policy is corrupt.
        """
        policy = getattr(oracle, "policy", None)
        if not self.policy or policy is None or not hasattr(policy, "from_base64"):
            return False
        if getattr(oracle, "trials", None):  # the search has begun: its policy is its own
            return False
        decisions = [(str(n), int(s)) for n, s in self.policy["decisions"]]
        shape = [self.policy.get("units"), self.policy.get("num_layers")]
        if shape != [getattr(policy, "units", None), getattr(policy, "num_layers", None)]:
            return False
        policy.from_base64(self.policy["weights"], decisions, int(self.policy.get("adam_step", 0)))
        return True


class TransferStore:
    """Per-task elites and policies in a meta storage.

    Args:
        learner: The `MetaLearner` whose storage (and study) holds them.
    """

    def __init__(self, learner: MetaLearner) -> None:
        if not isinstance(learner, MetaLearner):
            raise ValueError(f"learner must be a MetaLearner, got {type(learner).__name__}.")
        self.learner = learner

    @property
    def study(self):
        return self.learner.study

    def save(
        self,
        task: MetaTask,
        oracle,
        *,
        size: Optional[int] = None,
    ) -> Dict[str, Any]:
        """Keeps the elite (and the controller's policy, if any) of ``oracle`` for ``task``.

        A later save for the same task replaces the earlier one.

        Args:
            task: The task searched (a `MetaTask`).
            oracle: The search's oracle (a `metanas.tuners.MetanasOracle`).
            size: How many configurations to keep (`elite_of`).

        Returns:
            The stored record.

        Raises:
            ValueError: ``task`` is not a `MetaTask`, or ``oracle`` not a metanas oracle.
        """
        _check_task(task)
        if not isinstance(oracle, MetanasOracle):
            raise ValueError(f"oracle must be a metanas oracle (a MetanasOracle, such as "
                             f"EvolutionOracle or RLControllerOracle), got {oracle!r}.")
        return self.put(
            task,
            elite=elite_of(oracle, size),
            space=list(oracle.hyperparameters.values),
            strategy=type(oracle).__name__,
            policy=policy_of(oracle),
            definitions=space_config(oracle.hyperparameters),
        )

    def put(
        self,
        task: MetaTask,
        *,
        elite: Sequence[Mapping[str, Any]],
        space: Sequence[str],
        strategy: str,
        policy: Optional[Dict[str, Any]] = None,
        definitions: Optional[Mapping[str, Mapping[str, Any]]] = None,
    ) -> Dict[str, Any]:
        """Stores a record made elsewhere (e.g. in a worker process); see `save`.

        ``definitions`` (`space_config` of the search space) let `warm_start`
        refuse the record to a space whose names are defined otherwise.

        Raises:
            ValueError: ``task`` is not a `MetaTask`.
        """
        _check_task(task)
        record: Dict[str, Any] = {
            "features": dict(task.features),
            "space": sorted(space),
            "elite": [{k: _plain(v) for k, v in c.items()} for c in elite],
            "strategy": strategy,
        }
        if policy is not None:
            record["policy"] = policy
        if definitions is not None:
            record["space_config"] = json.loads(json.dumps(dict(definitions), default=str))
        self.study.set_user_attr(PREFIX + task.name, record)
        return record

    def records(self, exclude_tasks: Sequence[str] = ()) -> Dict[str, Dict[str, Any]]:
        """Stored records by task name (reloaded from the storage).

        Raises:
            ValueError: ``exclude_tasks`` is not a list of task names.
        """
        if isinstance(exclude_tasks, (str, bytes, Mapping)) or not all(
                isinstance(name, str) for name in exclude_tasks):
            raise ValueError(f"exclude_tasks must be a list of task names such as ['digits'], "
                             f"got {exclude_tasks!r}.")
        attrs = self.study.user_attrs
        return {
            key[len(PREFIX):]: value
            for key, value in attrs.items()
            if key.startswith(PREFIX) and key[len(PREFIX):] not in exclude_tasks
        }

    def warm_start(
        self,
        features: Mapping[str, Any],
        *,
        hyperparameters=None,
        max_distance: float = 0.5,
        exclude_tasks: Sequence[str] = (),
    ) -> WarmStart:
        """The record of the nearest task whose space matches, or a cold start.

        Args:
            features: The new task's meta-features.
            hyperparameters: The new search space (`HyperParameters`, or a list
                of names); a task qualifies only if its space shares at least
                half of the names of both together (Jaccard index >= 0.5: a
                space that grows during the search, as conditional ones do,
                still matches) and, given as `HyperParameters`, defines the
                names they share alike (type, range or choices, sampling:
                `space_config`). None: any space.
            max_distance: Tasks farther than this `feature_distance` do not
                qualify.
            exclude_tasks: Names never used (leave-one-task-out).

        Raises:
            ValueError: ``max_distance`` is not a number >= 0, ``features``
                is no mapping of meta-features (`check_features`),
                ``hyperparameters`` neither `HyperParameters` nor a list of
                names, or ``exclude_tasks`` not a list of names.
        """
        max_distance = check_max_distance(max_distance)
        records = self.records(exclude_tasks)
        check_features(features, **seen_in(r.get("features", {}) for r in records.values()))
        names, ours, codec = None, None, None
        if hyperparameters is not None:
            space = getattr(hyperparameters, "space", hyperparameters)
            if isinstance(space, (str, bytes, Mapping)) or not isinstance(
                    space, (list, tuple, set, frozenset)):
                raise ValueError(f"hyperparameters must be a keras-tuner HyperParameters or a "
                                 f"list of names, got {hyperparameters!r}.")
            names = [getattr(hp, "name", hp) for hp in space]
            if not all(isinstance(name, str) for name in names):
                raise ValueError(f"hyperparameters must be a keras-tuner HyperParameters or a "
                                 f"list of names, got {hyperparameters!r}.")
        best: Optional[tuple] = None
        for name, record in records.items():
            if not record.get("elite") and not record.get("policy"):
                continue
            if names is not None:
                theirs = set(record.get("space", []))
                union = theirs | set(names)
                if not union or len(theirs & set(names)) < 0.5 * len(union):
                    continue
                if hasattr(hyperparameters, "space"):
                    if codec is None:
                        codec, ours = SearchSpaceCodec(hyperparameters), space_config(
                            hyperparameters)
                    elite = _elite_here(record, codec, ours)
                    if elite is None:
                        continue
                    record = dict(record, elite=elite)
            distance = feature_distance(features, record.get("features", {}))
            if distance <= max_distance and (best is None or distance < best[0]):
                best = (distance, name, record)
        if best is None:
            return WarmStart()
        distance, name, record = best
        return WarmStart(name, distance, list(record.get("elite", [])), record.get("policy"))
