"""Meta-features: what a dataset (or benchmark task) looks like to the meta-layer.

Tasks that look alike should search alike (auto-sklearn's meta-learning warm
start: Feurer et al., "Initializing Bayesian Hyperparameter Optimization via
Meta-Learning", AAAI 2015). Features are plain JSON numbers and strings, so they
travel in Optuna's user attributes.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import numpy as np

__all__ = ["dataset_features", "label_features", "TASK_TYPES", "space_features", "feature_distance",
           "nearest_tasks", "FEATURE_SCALES", "check_features", "MODALITIES",
           "CATEGORICAL_VALUES", "seen_in"]

#: Typical spread of each numeric feature; differences are divided by it.
FEATURE_SCALES: Dict[str, float] = {
    "log_samples": 1.0,
    "log_input_size": 1.0,
    "input_rank": 1.0,
    "log_classes": 1.0,
    "class_balance": 0.25,
    "decisions": 4.0,
    "log_space_size": 2.0,
    "categorical_fraction": 0.5,
}
#: Features compared as equal / different (distance 0 or 1).
CATEGORICAL = ("modality", "task_type")


def _first_array(x, name: str = "x") -> np.ndarray:
    if isinstance(x, Mapping):
        if not x:
            raise ValueError(f"{name} must hold at least one array, got an empty dict.")
        x = next(iter(x.values()))
    if isinstance(x, (list, tuple)) and x and not np.isscalar(x[0]):
        x = x[0]
    return np.asarray(x)


#: Task types `dataset_features` tells apart.
TASK_TYPES = ("classification", "regression")
#: Modalities `dataset_features` tells apart.
MODALITIES = ("image", "text", "tabular")
#: The values of each `CATEGORICAL` feature that `dataset_features` makes.
CATEGORICAL_VALUES: Dict[str, Tuple[str, ...]] = {"modality": MODALITIES, "task_type": TASK_TYPES}
#: Integer targets with at most this many distinct values are taken as class labels.
MAX_INFERRED_CLASSES = 50


def label_features(counts) -> Dict[str, Any]:
    """``task_type``, ``log_classes`` and ``class_balance`` from class counts (None: regression)."""
    if counts is None:
        return {"task_type": "regression", "log_classes": 0.0, "class_balance": 1.0}
    frequencies = np.asarray(counts, dtype=float) / float(sum(counts))
    entropy = float(-(frequencies * np.log(frequencies)).sum())
    return {
        "task_type": "classification",
        "log_classes": math.log10(len(frequencies)),
        "class_balance": entropy / math.log(len(frequencies)) if len(frequencies) > 1 else 1.0,
    }


def _labels(target: np.ndarray, task_type: Optional[str]) -> Optional[np.ndarray]:
    """Class labels of ``target``, or None for a regression target."""
    if target.ndim == 2 and target.shape[1] > 1 and set(np.unique(target)) <= {0, 1}:
        return target.argmax(axis=1)  # one-hot rows
    column = target.reshape(len(target), -1)[:, 0]
    if task_type is not None:
        return column if task_type == "classification" else None
    if column.dtype.kind in "bOSU":
        return column
    if column.dtype.kind not in "iuf" or not np.all(np.isfinite(column)):
        return None
    if not np.all(column == np.round(column)):
        return None
    # Integer values: class labels when few, or when they are exactly 0..K-1
    # (sparse class labels, as Keras's losses take them); otherwise a count
    # or a rounded measurement to regress.
    values = np.unique(column)
    if len(values) <= MAX_INFERRED_CLASSES or np.array_equal(values, np.arange(len(values))):
        return column
    return None


def dataset_features(x, y=None, *, task_type: Optional[str] = None) -> Dict[str, Any]:
    """Meta-features of a dataset given as arrays.

    Args:
        x: Inputs: an array, or a list/dict of arrays (the first one is used).
        y: Targets: class labels, one-hot rows, or numbers for regression.
        task_type: ``"classification"`` or ``"regression"``; None infers it:
            one-hot rows, strings and booleans are classes, and so are
            integer values (of any dtype) when there are at most
            `MAX_INFERRED_CLASSES` of them or they are exactly ``0..K-1``;
            other numbers are regression targets. Give it for an integer
            target to regress (counts, prices in whole units).

    Returns:
        ``log_samples``, ``log_input_size``, ``input_rank``, ``modality``
        (``image``, ``text`` or ``tabular``), and with ``y``:
        ``task_type``, ``log_classes`` and ``class_balance`` (normalised
        entropy of the class frequencies; 1 when balanced).

    Raises:
        ValueError: ``x`` is empty, ``y`` holds no target per row or has
            another number of rows, or ``task_type`` is not one of `TASK_TYPES`.
    """
    if task_type is not None and task_type not in TASK_TYPES:
        raise ValueError(f"task_type must be one of {list(TASK_TYPES)} or None, got {task_type!r}.")
    array = _first_array(x)
    if array.ndim == 0 or len(array) == 0:
        raise ValueError(f"x must hold at least one sample, got shape {array.shape}.")
    shape = array.shape[1:]
    if array.dtype.kind in "OSU":
        modality = "text"
    elif len(shape) >= 2:  # (H, W) or (H, W, C), as AutoKeras's image inputs
        modality = "image"
    else:
        modality = "tabular"
    features: Dict[str, Any] = {
        "log_samples": math.log10(len(array)),
        "log_input_size": math.log10(max(int(np.prod(shape)) if shape else 1, 1)),
        "input_rank": float(len(shape)),
        "modality": modality,
    }
    if y is None:
        return features
    target = np.asarray(_first_array(y, "y"))
    if target.ndim == 0 or (target.ndim >= 2 and 0 in target.shape[1:]):
        raise ValueError(f"y must hold a target (a label, one-hot row or number) for each of "
                         f"the {len(array)} rows of x, got shape {target.shape}.")
    if len(target) != len(array):
        raise ValueError(f"y has {len(target)} rows but x has {len(array)}; they must match.")
    labels = _labels(target, task_type)
    features.update(label_features(None if labels is None else _class_counts(labels)))
    return features


def _class_counts(labels: np.ndarray) -> np.ndarray:
    """How many rows hold each class; ValueError for a missing or unorderable label."""
    if labels.dtype.kind in "fO":
        for row, value in enumerate(labels):
            if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
                raise ValueError(f"y holds a missing label ({value!r}) at row {row}; drop or "
                                 "fill such rows before computing meta-features.")
    try:
        return np.unique(labels, return_counts=True)[1]
    except TypeError:  # labels of several types (1 and "a"): as text
        return np.unique(labels.astype(str), return_counts=True)[1]


def space_features(hyperparameters) -> Dict[str, float]:
    """Meta-features of a keras-tuner search space (decisions and their sizes)."""
    from metanas.tuners import SearchSpaceCodec

    codec = SearchSpaceCodec(hyperparameters)
    names = codec.decision_names()
    decisions = [hp for hp in hyperparameters.space if hp.name in names]
    sizes = [codec.cardinality(hp) or 1000 for hp in decisions]
    categorical = sum(type(hp).__name__ in ("Choice", "Boolean") for hp in decisions)
    return {
        "decisions": float(len(names)),
        "log_space_size": float(sum(math.log10(s) for s in sizes)),
        "categorical_fraction": categorical / len(decisions) if decisions else 0.0,
    }


def feature_distance(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """Distance between two feature sets: scaled L1 on numbers, 0/1 on labels.

    A feature only one side has counts 1; the sum is divided by the number of
    features compared, so sets of different sizes stay comparable.

    Raises:
        ValueError: A feature both sides have is a number on one side and
            not a finite number on the other (NaN, None, ...).
    """
    keys = set(a) | set(b)
    if not keys:
        return 0.0
    total = 0.0
    for key in keys:
        if key not in a or key not in b:
            total += 1.0
        elif key in CATEGORICAL or isinstance(a[key], str) or isinstance(b[key], str):
            total += float(a[key] != b[key])
        else:
            difference = abs(_finite(key, a[key]) - _finite(key, b[key]))
            total += min(difference / FEATURE_SCALES.get(key, 1.0), 3.0)
    return total / len(keys)


def _is_number(value: Any) -> bool:
    return isinstance(value, (numbers.Real, np.number)) and not isinstance(value, (bool, np.bool_))


def _finite(key: str, value: Any) -> float:
    """A numeric meta-feature as a float; ValueError naming it unless it is a finite number."""
    if not _is_number(value) or not math.isfinite(float(value)):
        raise ValueError(f"meta-feature {key!r} must be a finite number, got {value!r}.")
    return float(value)


def seen_in(features: Iterable[Mapping[str, Any]]) -> Dict[str, Any]:
    """What `check_features` also allows, from the features of the tasks compared
    with: ``{"known": their names, "known_values": their categorical values}``."""
    features = list(features)
    return {"known": {key for f in features for key in f},
            "known_values": {key: {f[key] for f in features if isinstance(f.get(key), str)}
                             for key in CATEGORICAL}}


def check_features(features: Any, *, known: Iterable[str] = (),
                   known_values: Optional[Mapping[str, Iterable[str]]] = None
                   ) -> Mapping[str, Any]:
    """``features`` if it is a mapping of meta-features; else a ValueError naming what is wrong.

    Allowed: a non-empty mapping (as `dataset_features`, `space_features` and
    `metanas.meta.tasks.bench_features` make, or some of their keys) whose
    keys are those functions' (`FEATURE_SCALES` and `CATEGORICAL`) or among
    ``known`` (the features of the tasks it is compared with), whose numeric
    features are finite numbers and whose `CATEGORICAL` ones among
    `CATEGORICAL_VALUES` or ``known_values``. A misspelt key or value, or a
    value that is no number, would only add to every distance, and the answer
    would quietly follow no task at all.

    Args:
        features: What to check.
        known: Other feature names allowed (a number or a string each).
        known_values: Other values allowed for each `CATEGORICAL` feature
            (those of the tasks it is compared with).

    Returns:
        ``features``, unchanged.

    Raises:
        ValueError: ``features`` is no mapping, is empty, has an unknown key,
            or a value of the wrong kind (a string for a number, NaN, ...).
    """
    allowed = sorted(set(FEATURE_SCALES) | set(CATEGORICAL) | set(known))
    if not isinstance(features, Mapping):
        hint = (" (for a benchmark task, bench_features(name))"
                if isinstance(features, str) else "")
        raise ValueError(f"features must be a mapping of meta-features such as "
                         f"dataset_features(x, y) returns{hint}, got {features!r}.")
    if not features:
        raise ValueError(f"features must hold at least one meta-feature, of {allowed}; got {{}}.")
    unknown = sorted(str(key) for key in features if key not in allowed)
    if unknown:
        raise ValueError(f"unknown meta-features {unknown} in features; allowed: {allowed}.")
    for key, value in features.items():
        if key in CATEGORICAL:
            values = sorted(set(CATEGORICAL_VALUES[key]) | set((known_values or {}).get(key, ())))
            if not isinstance(value, str) or value not in values:
                raise ValueError(f"meta-feature {key!r} must be one of {values}, got {value!r}.")
        elif key in FEATURE_SCALES:
            _finite(key, value)
        elif not isinstance(value, str) and (
                not _is_number(value) or not math.isfinite(float(value))):
            raise ValueError(f"meta-feature {key!r} must be a finite number or a string, "
                             f"got {value!r}.")
    return features


def check_max_distance(max_distance: Any) -> float:
    """``max_distance`` as a float; ValueError unless it is a number >= 0."""
    if (isinstance(max_distance, bool) or not isinstance(max_distance, (int, float, np.number))
            or not float(max_distance) >= 0):
        raise ValueError(f"max_distance must be a number >= 0 (a feature_distance), "
                         f"got {max_distance!r}.")
    return float(max_distance)


def check_k(k: Any) -> int:
    """``k`` (how many similar tasks); ValueError unless it is an int >= 1."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}.")
    return int(k)


def nearest_tasks(
    features: Mapping[str, Any],
    tasks: Mapping[str, Mapping[str, Any]],
    *,
    k: int = 3,
    max_distance: float = 0.5,
) -> List[str]:
    """Names of the ``k`` tasks nearest to ``features`` within ``max_distance``, nearest first.

    ``tasks`` maps names to meta-features. Empty when no task is that near.
    `MetaLearner.recommend` averages over these tasks; meta-training on them
    alone focuses a meta-study on a new task (``metanas meta-train
    --similar-to``).

    Raises:
        ValueError: ``k`` is not an int >= 1, or ``max_distance`` not a number >= 0.
    """
    k, max_distance = check_k(k), check_max_distance(max_distance)
    distances = sorted((feature_distance(features, f), name) for name, f in tasks.items())
    return [name for d, name in distances[:k] if d <= max_distance]
