"""Meta-features: what a dataset (or benchmark task) looks like to the meta-layer.

Tasks that look alike should search alike (auto-sklearn's meta-learning warm
start: Feurer et al., "Initializing Bayesian Hyperparameter Optimization via
Meta-Learning", AAAI 2015). Features are plain JSON numbers and strings, so they
travel in Optuna's user attributes.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

__all__ = ["dataset_features", "space_features", "feature_distance", "nearest_tasks", "FEATURE_SCALES"]

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


def _first_array(x) -> np.ndarray:
    if isinstance(x, Mapping):
        x = next(iter(x.values()))
    if isinstance(x, (list, tuple)) and x and not np.isscalar(x[0]):
        x = x[0]
    return np.asarray(x)


def dataset_features(x, y=None) -> Dict[str, Any]:
    """Meta-features of a dataset given as arrays.

    Args:
        x: Inputs: an array, or a list/dict of arrays (the first one is used).
        y: Targets: class labels, one-hot rows, or numbers for regression.

    Returns:
        ``log_samples``, ``log_input_size``, ``input_rank``, ``modality``
        (``image``, ``text`` or ``tabular``), and with ``y``:
        ``task_type``, ``log_classes`` and ``class_balance`` (normalised
        entropy of the class frequencies; 1 when balanced).

    Raises:
        ValueError: ``x`` is empty or ``y`` has another number of rows.
    """
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
    target = np.asarray(_first_array(y))
    if len(target) != len(array):
        raise ValueError(f"y has {len(target)} rows but x has {len(array)}; they must match.")
    if target.ndim == 2 and target.shape[1] > 1 and set(np.unique(target)) <= {0, 1}:
        labels = target.argmax(axis=1)
    elif target.dtype.kind in "iubOSU" or (
        target.dtype.kind == "f" and np.all(target == np.round(target)) and len(np.unique(target)) <= 50
    ):
        labels = target.reshape(len(target), -1)[:, 0]
    else:
        features.update(task_type="regression", log_classes=0.0, class_balance=1.0)
        return features
    _, counts = np.unique(labels, return_counts=True)
    frequencies = counts / counts.sum()
    entropy = float(-(frequencies * np.log(frequencies)).sum())
    features.update(
        task_type="classification",
        log_classes=math.log10(len(counts)),
        class_balance=entropy / math.log(len(counts)) if len(counts) > 1 else 1.0,
    )
    return features


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
            total += min(abs(float(a[key]) - float(b[key])) / FEATURE_SCALES.get(key, 1.0), 3.0)
    return total / len(keys)


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
        ValueError: ``k`` is not an int >= 1.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}.")
    distances = sorted((feature_distance(features, f), name) for name, f in tasks.items())
    return [name for d, name in distances[:k] if d <= max_distance]
