"""metanas.meta: learn which search strategy, and which settings, across datasets.

Importing it imports Optuna. See `MetaLearner`.
"""

from metanas.meta.evaluate import BenchEvaluator
from metanas.meta.features import dataset_features, feature_distance, nearest_tasks, space_features
from metanas.meta.learner import (
    OBJECTIVES,
    MetaLearner,
    MetaTask,
    ObjectiveError,
    Recommendation,
    StrategyError,
    around_defaults,
    normalized_regret_auc,
    redact,
    strategy_classes,
)
from metanas.meta.transfer import TransferStore, WarmStart, elite_of
from metanas.meta.tuner import MetaTuner, search_score

__all__ = [
    "OBJECTIVES",
    "BenchEvaluator",
    "MetaLearner",
    "MetaTask",
    "MetaTuner",
    "ObjectiveError",
    "Recommendation",
    "StrategyError",
    "around_defaults",
    "dataset_features",
    "feature_distance",
    "nearest_tasks",
    "normalized_regret_auc",
    "redact",
    "search_score",
    "space_features",
    "strategy_classes",
    "TransferStore",
    "WarmStart",
    "elite_of",
]
