"""Benchmark tasks as meta-tasks: their meta-features, and the meta-objective of a search on them.

The benchmark tasks themselves (tables of NAS-Bench-201, HPOBench and HPOLib
read through keras-tuner) are `metanas.bench`'s; this module only describes
them to the meta-layer. A table holds no data set, so its dataset
meta-features are the published facts of the data set it was built on
(samples, input size, classes and their frequencies: NAS-Bench-201, Dong & Yang,
ICLR 2020; the OpenML / UCI data sets of HPOBench, Eggensperger et al., NeurIPS
2021 Datasets and Benchmarks, and of HPOLib's FCNet tables, Klein & Hutter,
2019), together with the features of the task's search space.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence

from metanas.meta.features import label_features
from metanas.meta.learner import MetaTask

__all__ = ["BENCH_DATASETS", "bench_features", "meta_tasks"]

#: name -> (samples, input shape, class counts or None for regression).
BENCH_DATASETS: Dict[str, tuple] = {
    "nb201/cifar10": (50_000, (32, 32, 3), [5_000] * 10),
    "nb201/cifar100": (50_000, (32, 32, 3), [500] * 100),
    "nb201/imagenet": (151_700, (16, 16, 3), [1_264] * 120),
    "hpobench/australian": (690, (14,), [383, 307]),
    "hpobench/blood_transfusion": (748, (4,), [570, 178]),
    "hpobench/car": (1_728, (6,), [1_210, 384, 69, 65]),
    "hpobench/credit_g": (1_000, (20,), [700, 300]),
    "hpobench/kc1": (2_109, (21,), [1_783, 326]),
    "hpobench/phoneme": (5_404, (5,), [3_818, 1_586]),
    "hpobench/segment": (2_310, (19,), [330] * 7),
    "hpobench/vehicle": (846, (18,), [212, 217, 218, 199]),
    "hpolib/naval_propulsion": (11_934, (16,), None),
    "hpolib/parkinsons_telemonitoring": (5_875, (20,), None),
    "hpolib/protein_structure": (45_730, (9,), None),
    "hpolib/slice_localization": (53_500, (384,), None),
}


def _dataset_part(samples: int, shape: Sequence[int], counts: Optional[List[int]]) -> Dict[str, Any]:
    features: Dict[str, Any] = {
        "log_samples": math.log10(samples),
        "log_input_size": math.log10(math.prod(shape)),
        "input_rank": float(len(shape)),
        "modality": "image" if len(shape) >= 2 else "tabular",
    }
    features.update(label_features(counts))
    return features
    total = float(sum(counts))
    entropy = -sum(c / total * math.log(c / total) for c in counts)
    features.update(
        task_type="classification",
        log_classes=math.log10(len(counts)),
        class_balance=entropy / math.log(len(counts)),
    )
    return features


def bench_features(name: str, hyperparameters=None) -> Dict[str, Any]:
    """Meta-features of a benchmark task: its data set's and, if given, its space's.

    Raises:
        ValueError: ``name`` is not a known benchmark task.
    """
    if name not in BENCH_DATASETS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(BENCH_DATASETS))}.")
    features = _dataset_part(*BENCH_DATASETS[name])
    if hyperparameters is not None:
        from metanas.meta.features import space_features

        features.update(space_features(hyperparameters))
    return features


def meta_tasks(names: Sequence[str], hyperparameters=None) -> List[MetaTask]:
    """`MetaTask`s of benchmark tasks by name (``hyperparameters(name)`` adds space features).

    Raises:
        ValueError: A name is unknown, repeated, or none is given.
    """
    names = list(names)
    if not names:
        raise ValueError("at least one task is needed.")
    if len(set(names)) != len(names):
        raise ValueError(f"task names must be unique, got {names}.")
    return [
        MetaTask(name, bench_features(name, hyperparameters(name) if hyperparameters else None))
        for name in names
    ]
