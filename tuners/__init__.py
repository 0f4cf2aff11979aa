"""metanas search strategies: keras-tuner Oracles and their Tuners.

Importing this package imports keras-tuner (and so Keras), never MLflow,
Optuna or AutoKeras.
"""

from metanas.tuners.base import (
    MetanasOracle,
    ResumedSettingsWarning,
    SavedStateError,
    ShortNoiseCheckWarning,
    ShortSearchWarning,
)
from metanas.tuners.codec import SearchSpaceCodec, values_hash
from metanas.tuners.evolution import EvolutionOracle
from metanas.tuners.random_search import RandomSearchOracle
from metanas.tuners.rl import RLControllerOracle
from metanas.tuners.selection import (
    NSGA2Selection,
    RouletteSelection,
    Selection,
    TournamentSelection,
)
from metanas.tuners.tuner import (
    DiskFullError,
    EvolutionSearch,
    RandomSearch,
    RLControllerSearch,
    StrategyTuner,
)

__all__ = [
    "DiskFullError",
    "EvolutionOracle",
    "EvolutionSearch",
    "MetanasOracle",
    "NSGA2Selection",
    "RandomSearch",
    "RandomSearchOracle",
    "ResumedSettingsWarning",
    "RLControllerOracle",
    "RLControllerSearch",
    "RouletteSelection",
    "SavedStateError",
    "SearchSpaceCodec",
    "Selection",
    "ShortNoiseCheckWarning",
    "ShortSearchWarning",
    "StrategyTuner",
    "TournamentSelection",
    "values_hash",
]
