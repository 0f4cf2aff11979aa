"""metanas.meta: learn which search strategy, and which settings, across datasets.

Importing it imports Optuna. See `MetaLearner`.
"""

from metanas.meta.features import dataset_features, feature_distance, space_features
from metanas.meta.learner import (
    MetaLearner,
    MetaTask,
    Recommendation,
    normalized_regret_auc,
    redact,
    strategy_classes,
)

__all__ = [
    "MetaLearner",
    "MetaTask",
    "Recommendation",
    "dataset_features",
    "feature_distance",
    "normalized_regret_auc",
    "redact",
    "space_features",
    "strategy_classes",
]
