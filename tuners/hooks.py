"""Search hooks: the small interface trackers plug into a metanas tuner with.

A hook sees the search through keras-tuner's own events (search begin/end,
trial begin/end, epoch end) and never reaches into the oracle's private
state. `HookedTunerMixin` gives any `keras_tuner.Tuner` subclass these events,
so an AutoKeras tuner that mixes it in (or subclasses `StrategyTuner`) is
tracked like a KerasTuner one.

This module imports neither MLflow nor anything outside keras-tuner: the
default tracker (`metanas.tracking.MlflowTracker`) is imported by name only
when a tuner is constructed with ``tracking=True`` (the default).
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any, Dict, Optional

from metanas.tuners.storage import save_json_atomically

__all__ = ["SearchHook", "HookedTunerMixin", "resolve_tracking", "DEFAULT_TRACKER"]

logger = logging.getLogger(__name__)

#: ``module:attribute`` of the tracker built for ``tracking=True``.
DEFAULT_TRACKER = "metanas.tracking:MlflowTracker"


class SearchHook:
    """Receives the events of a search; every method is optional.

    Methods get the tuner first. ``trial`` is a `keras_tuner.engine.trial.Trial`
    (on ``on_trial_end`` its ``status`` is final and a failed trial's
    ``message`` holds the traceback).
    """

    def on_search_begin(self, tuner) -> None:
        """The search starts (in a distributed search: the chief and each worker)."""

    def on_trial_begin(self, tuner, trial) -> None:
        """A trial starts in this process."""

    def on_epoch_end(self, tuner, trial, model, epoch: int, logs: Optional[Dict[str, Any]]) -> None:
        """An epoch of the trial's training ended, with its ``logs``."""

    def on_trial_end(self, tuner, trial) -> None:
        """The trial ended and was reported to the oracle."""

    def on_search_end(self, tuner) -> None:
        """The search is over in this process."""

    # Optional: ``on_search_error(self, tuner, error)`` when the search raises.


def resolve_tracking(tracking: Any) -> Optional[SearchHook]:
    """The hook for a tuner's ``tracking`` argument.

    Args:
        tracking: True for the default MLflow tracker, False or None for none,
            or an object with the `SearchHook` methods.

    Returns:
        The hook, or None when tracking is off.
    """
    if tracking is None or tracking is False:
        return None
    if tracking is True:
        module, _, name = DEFAULT_TRACKER.partition(":")
        return getattr(importlib.import_module(module), name)()
    if all(callable(getattr(tracking, name, None)) for name in _EVENTS):
        return tracking
    raise ValueError(
        f"tracking must be True, False or a tracker with the methods {list(_EVENTS)} "
        f"(e.g. metanas.tracking.MlflowTracker(...)), got {tracking!r}."
    )


_EVENTS = ("on_search_begin", "on_trial_begin", "on_epoch_end", "on_trial_end", "on_search_end")


class HookedTunerMixin:
    """Calls ``self.tracker`` (a `SearchHook`, or None) on keras-tuner's events.

    Put it before the `keras_tuner.Tuner` class in the bases; the tuner then
    takes a keyword ``tracking`` (see `resolve_tracking`; default True: the
    MLflow tracker). A hook that raises is reported as a warning: tracking
    never stops a search.

    Example (an AutoKeras tuner, tracked like every metanas tuner):

        >>> class EvolutionAutoTuner(HookedTunerMixin, autokeras.engine.tuner.AutoTuner):
        ...     ...
        >>> ak.AutoModel(..., tuner=EvolutionAutoTuner, tracking=False)  # or a tracker
    """

    tracker: Optional[SearchHook] = None

    def __init__(self, *args, tracking: Any = True, **kwargs) -> None:
        # Resolved first: a bad value must fail before keras-tuner touches
        # the project directory.
        self.tracker = resolve_tracking(tracking)
        super().__init__(*args, **kwargs)
        # keras-tuner resumes only from the tuner's file, first written when
        # trial 0 has ended and the oracle is saved: a kill between the two
        # files would start the search afresh over trial 0. The oracle's file
        # is the search's state; resume from it.
        if (not kwargs.get("overwrite") and not self._is_worker()
                and not os.path.exists(self._get_tuner_fname())
                and os.path.exists(self.oracle._get_oracle_fname())):
            print(f"Reloading Oracle from {self.oracle._get_oracle_fname()}")
            self.oracle.reload()

    def _call_hook(self, event: str, *args) -> None:
        hook = getattr(self, "tracker", None)
        if hook is None:
            return
        try:
            getattr(hook, event)(self, *args)
        except Exception as error:  # noqa: BLE001 - tracking must not stop a search
            logger.warning("tracker %s failed in %s: %s", type(hook).__name__, event, error)

    def save(self) -> None:
        """Saves the oracle (on the chief) and the tuner's own state atomically.

        keras-tuner's ``save`` truncates the file before it writes, so a kill
        at the wrong moment left a search that could not be resumed.
        """
        if not self._is_worker():
            self.oracle.save()
        save_json_atomically(self._get_tuner_fname(), self.get_state())

    def on_search_begin(self):
        super().on_search_begin()
        self._call_hook("on_search_begin")

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        self._call_hook("on_trial_begin", trial)

    def on_epoch_end(self, trial, model, epoch, logs=None):
        super().on_epoch_end(trial, model, epoch, logs=logs)
        self._call_hook("on_epoch_end", trial, model, epoch, logs)

    def on_trial_end(self, trial):
        try:
            super().on_trial_end(trial)
        finally:
            # Also when the oracle raises for too many consecutive failures:
            # the trial that tipped it over is recorded too.
            self._call_hook("on_trial_end", trial)

    def search(self, *fit_args, **fit_kwargs):
        from metanas.tuners.distributed import WorkerFinished

        try:
            return super().search(*fit_args, **fit_kwargs)
        except WorkerFinished:
            raise
        except BaseException as error:
            self._report_search_error(error)
            raise

    def _report_search_error(self, error: BaseException) -> None:
        """Tells the tracker that the search stopped on ``error`` (it marks its run failed)."""
        hook = getattr(self, "tracker", None)
        if hook is not None and callable(getattr(hook, "on_search_error", None)):
            self._call_hook("on_search_error", error)

    def on_search_end(self):
        super().on_search_end()
        self._call_hook("on_search_end")
