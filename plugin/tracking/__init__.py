"""MLflow tracking of metanas searches: a parent run per search, a nested run per trial.

Every metanas tuner is tracked by default (`MlflowTracker`); pass
``tracking=False`` to turn it off or ``tracking=MlflowTracker(...)`` for full
control. Records that cannot reach MLflow wait in a spool and are replayed
later, or by `sync` (``metanas tracking sync``).
"""

from metanas.tracking.sync import sync
from metanas.tracking.tracker import MlflowTracker, strategy_name

__all__ = ["MlflowTracker", "strategy_name", "sync"]
