"""KerasTuner `Tuner`s for the metanas oracles, used like `keras_tuner.RandomSearch`."""

from __future__ import annotations

import contextlib
import numbers
import os
import re
import sys
import time
import warnings
from typing import Any, Dict, List, Optional, Type

import keras
import keras_tuner
from keras_tuner.src import config as kt_config
from keras_tuner.src.backend import io as kt_io
from keras_tuner.src.engine.stateful import Stateful
from keras_tuner.src.engine import tuner as kt_tuner
from keras_tuner.src.engine import tuner_utils
import numpy as np

from metanas import usage
from metanas.tuners import distributed, hooks, objectives, reads, storage
from metanas.tuners.base import (
    MetanasOracle, SavedStateError, check_int, is_oversized, keyword_settings,
    oversized_parameters, release_oracle,
)
from metanas.tuners.evolution import EvolutionOracle
from metanas.tuners.random_search import RandomSearchOracle
from metanas.tuners.rl import RLControllerOracle

__all__ = ["StrategyTuner", "RandomSearch", "EvolutionSearch", "RLControllerSearch"]

#: Pause of a worker told to wait (IDLE) before it asks the chief again.
IDLE_SECONDS = 1.0


def split_oracle_kwargs(
    oracle_class: Type[MetanasOracle], kwargs: Dict[str, Any]
) -> Dict[str, Any]:
    """Pops from ``kwargs`` the settings ``oracle_class`` (or its bases) accept."""
    names = {name for name, _ in keyword_settings(oracle_class)}
    return {name: kwargs.pop(name) for name in list(kwargs) if name in names}


def strategy_settings(oracle_class: Type[MetanasOracle], given: Dict[str, Any],
                      oracle: Optional[MetanasOracle] = None) -> Dict[str, Any]:
    """Every keyword setting of ``oracle_class``: ``given`` over the defaults.

    With ``oracle`` (made with ``given``), a None default that the oracle
    resolved (``racing_fraction``, ``tournament_size``, ``seed``...) is the
    value it uses, when that is a plain number, string or bool; so is the seed
    of a resumed search, which keeps its saved one.
    """
    settings = dict(keyword_settings(oracle_class))
    settings.update(given)
    for name, value in settings.items():
        resolved = getattr(oracle, name, None)
        # (A resumed search keeps its saved seed, whatever the one given.)
        if (value is None or name == "seed") and isinstance(
                resolved, (bool, int, float, str, np.number)):
            settings[name] = resolved.item() if isinstance(resolved, np.number) else resolved
    return settings


class StrategyTuner(hooks.HookedTunerMixin, keras_tuner.Tuner):
    """A `keras_tuner.Tuner` driven by the metanas oracle ``oracle_class``.

    Subclasses set ``oracle_class``. Keyword arguments that the oracle accepts
    (``seed``, ``hyperparameters``, the strategy's settings, ...) go to it;
    every other keyword goes to `keras_tuner.Tuner` (``directory``,
    ``project_name``, ``overwrite``, ``executions_per_trial``, ...).

    Beyond keras-tuner, every trial records its costs (``cost/params``,
    ``cost/flops``, ``cost/size_bytes``, ``cost/latency_ms``; see
    `metanas.tuners.objectives.measure_costs`) unless ``cost_measures=False``,
    an objective that training will not log is an error before the first
    trial, and `get_pareto_front` returns the trade-off between objectives.

    Every search is tracked in MLflow (`metanas.tracking.MlflowTracker`: a
    parent run per search, a nested run per trial) unless ``tracking=False``;
    pass a tracker object (any `metanas.tuners.hooks.SearchHook`) for full
    control.
    """

    oracle_class: Type[MetanasOracle] = MetanasOracle

    def __init__(
        self,
        hypermodel=None,
        objective=None,
        max_trials: Optional[int] = 10,
        *,
        cost_measures: bool = True,
        tracking: Any = True,
        **kwargs: Any,
    ) -> None:
        if not isinstance(cost_measures, bool):
            raise ValueError(f"cost_measures must be True or False, got {cost_measures!r}.")
        if "oracle" in kwargs:  # (keras-tuner's Tuner takes one; here it is made)
            raise ValueError(
                f"{type(self).__name__} makes its own {self.oracle_class.__name__} from the "
                f"settings given to it, got oracle={kwargs['oracle']!r}: give the settings "
                "here, or the oracle to a keras_tuner.Tuner.")
        size = kwargs.get("max_model_size")
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
                raise ValueError(f"max_model_size must be an int >= 1 (trainable parameters) "
                                 f"or None, got {size!r}.")
            kwargs["max_model_size"] = int(size)
        check_int("executions_per_trial", kwargs.get("executions_per_trial", 1), low=1)
        overwrite = kwargs.get("overwrite", False)
        if not isinstance(overwrite, (bool, np.bool_)):  # "no" would delete every trial
            raise ValueError(f"overwrite must be True or False, got {overwrite!r}.")
        kwargs["overwrite"] = bool(overwrite)
        directory, project_name = kwargs.get("directory"), kwargs.get("project_name")
        if directory is not None and not isinstance(directory, (str, os.PathLike)):
            raise ValueError(f"directory must be a path (a str or os.PathLike) or None, "
                             f"got {directory!r}.")
        if project_name is not None and (not isinstance(project_name, str)
                                         or not project_name.strip()):
            raise ValueError(f"project_name must be a non-empty string or None, "
                             f"got {project_name!r}.")
        storage.check_project_path(str(kwargs.get("directory") or "."),
                                   str(kwargs.get("project_name") or "untitled_project"))
        self.cost_measures = cost_measures
        # Names each running trial's run_trial read (`metanas.tuners.reads`).
        self._reads: Dict[str, reads.ReadRecord] = {}
        # Values each trial ended here left unread (`unused_hyperparameters`).
        self._unused: Dict[str, List[str]] = {}
        if distributed.is_worker():
            # Workers share the chief's project directory: only the chief may
            # wipe it, or a late worker deletes the trials already run.
            kwargs["overwrite"] = False
        elif kwargs.get("overwrite"):  # not the trials of a search running elsewhere
            storage.check_no_search_in(os.path.join(
                str(kwargs.get("directory") or "."), kwargs.get("project_name") or "untitled_project"))
        given = split_oracle_kwargs(self.oracle_class, kwargs)
        oracle = self.oracle_class(objective=objective, max_trials=max_trials, **given)
        super().__init__(oracle=oracle, hypermodel=hypermodel, tracking=tracking, **kwargs)
        # After keras-tuner's reload (a resumed search's oracle has its saved
        # seed); trackers read them when the search begins.
        self.strategy_settings = strategy_settings(self.oracle_class, given, oracle)
        if distributed.is_worker():
            self.oracle = distributed.ResilientOracleClient(
                self.oracle, project_dir=self.project_dir)
        elif distributed.is_chief():  # an earlier search's marker is not this one's
            distributed.mark_chief_started(self.project_dir)

    def reload(self) -> None:
        """Reloads a saved search (keras-tuner's `BaseTuner.reload`); a corrupt file
        of it is a `SavedStateError` that names it, and is left as it is."""
        if not self._is_worker():
            self.oracle.reload()  # (its own files: `MetanasOracle.reload`)
        try:  # this tuner's file alone
            Stateful.reload(self, self._get_tuner_fname())  # (what BaseTuner's calls next)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise SavedStateError.corrupt("tuner state", self._get_tuner_fname(),
                                          error) from error

    @property
    def local_oracle(self) -> MetanasOracle:
        """The metanas oracle object of this process (a worker's proxy wraps it)."""
        return getattr(self.oracle, "_oracle", self.oracle)

    def search(self, *fit_args, **fit_kwargs):
        """Runs the search; see `keras_tuner.Tuner.search`.

        In keras-tuner's distributed mode the chief serves the oracle until the
        search is done (`metanas.tuners.distributed.serve_chief`) and each
        worker sends heartbeats for its running trial.
        """
        validate_fit_data(fit_args, fit_kwargs)
        try:
            # One process searches in a directory (and its workers with it).
            with (contextlib.nullcontext() if distributed.is_worker()
                  else storage.searching_in(self.project_dir)):
                if not distributed.is_chief():
                    self._check_objective_before_search(fit_args, fit_kwargs)
                if distributed.is_chief():
                    try:  # (keras-tuner's `search`, which the mixin's wraps, is not called)
                        return self._chief_search(fit_args, fit_kwargs)
                    except BaseException as error:
                        self._report_search_error(error)
                        raise
                return super().search(*fit_args, **fit_kwargs)
        finally:  # else keras-tuner keeps the oracle alive for the life of the process
            release_oracle(self.local_oracle)

    def _chief_search(self, fit_args, fit_kwargs):
        """What `search` does on the chief; a subclass may add steps around serving."""
        self._serve_as_chief(fit_kwargs)

    def _serve_as_chief(self, fit_kwargs) -> None:
        """The chief's part of a search: serves the oracle until every trial is done."""
        if "verbose" in fit_kwargs:
            self.oracle.verbose = fit_kwargs["verbose"]
        self.save()
        distributed.mark_chief_started(self.project_dir)  # a search again in this process
        self._call_hook("on_search_begin")
        try:
            distributed.serve_chief(self.oracle)
        except RuntimeError:
            failure = getattr(self.local_oracle, "failure", None)
            if failure:  # too many failed trials: late workers should not wait
                distributed.mark_chief_ended(self.project_dir, f"failed: {failure}")
            raise
        distributed.mark_chief_ended(self.project_dir, "done")
        self._call_hook("on_search_end")

    def _check_objective_before_search(self, fit_args, fit_kwargs) -> None:
        """Fails fast when training will not log the objective.

        Builds the model once with the space's defaults and evaluates it on
        two rows to learn the logged names. Skipped where the names cannot be
        known from here: a custom `run_trial`, `HyperModel.fit`, or
        `_build_and_fit_model` (AutoKeras), or data that is not arrays. With
        callbacks or a model with its own ``train_step`` (either may log
        metrics that evaluating does not), a missing name is a warning
        instead. So is a default model that fails on the two rows: data that
        fits no model of the space would fail every trial.
        """
        if (
            self.hypermodel is None
            or type(self).run_trial is not keras_tuner.Tuner.run_trial
            or type(self)._build_and_fit_model is not StrategyTuner._build_and_fit_model
            or type(self.hypermodel).fit is not keras_tuner.HyperModel.fit
            or not objectives.objective_names(self.oracle.objective)
        ):
            return
        data = dict(zip(("x", "y"), fit_args))
        data.update({k: fit_kwargs[k] for k in ("x", "y") if k in fit_kwargs})
        x, y = data.get("x"), data.get("y")
        if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray) or len(x) < 2:
            return
        try:
            # As a trial builds it: with the tuner's optimizer, loss and metrics
            # (keras-tuner's compile overrides) and under its distribution strategy.
            model = self._build_hypermodel(self.oracle.get_space())
        except Exception:  # a broken default model fails its own trial instead
            return
        try:
            names = list(model.evaluate(x[:2], y[:2], return_dict=True, verbose=0))
        except Exception as error:  # most often data that fits no model of the space
            # Keras wraps the cause: "Exception encountered when calling ...", then it (bold).
            lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(error)).splitlines()
                     if line.strip() and not line.startswith("Exception encountered")]
            warnings.warn(
                f"the model of the space's default values fails on the first two rows of "
                f"the data ({type(error).__name__}: {lines[0] if lines else ''}); if x or y "
                "does not fit the model's inputs and outputs, every trial will fail.",
                stacklevel=3)
            return
        logged = set(names)
        if fit_kwargs.get("validation_data") is not None or fit_kwargs.get("validation_split"):
            logged |= {f"val_{name}" for name in names}
        if self.cost_measures:
            logged |= set(objectives.COST_METRICS)
        try:
            objectives.check_objective_is_logged(self.oracle.objective, logged)
        except ValueError as error:
            # Callbacks, and a train_step of the model's own, may log metrics
            # that evaluating cannot show.
            if fit_kwargs.get("callbacks"):
                warnings.warn(f"{error} (unless one of the callbacks logs it)", stacklevel=3)
            elif type(model).train_step is not keras.Model.train_step:
                warnings.warn(f"{error} (unless the model's own train_step logs it)",
                              stacklevel=3)
            else:
                raise

    def _try_build(self, hp):
        """keras-tuner's build of a trial's model, with one garbage collection
        before it instead of two: Keras 3's ``clear_session()`` collects, and
        keras-tuner's ``gc.collect()`` right after walks every live object
        again (TensorFlow's, MLflow's, the data's) for nothing left to free
        (`benchmarks/build_overhead.md`)."""
        keras.backend.clear_session()  # free_memory=True: a gc.collect() of its own
        model = self._build_hypermodel(hp)
        if not isinstance(model, keras.Model):
            raise keras_tuner.errors.FatalTypeError(
                "Expected the model-building function, or HyperModel.build() to return a "
                f"valid Keras Model instance. Received: {model} of type {type(model)}.")
        size = kt_tuner.maybe_compute_model_size(model)
        if self.max_model_size and size > self.max_model_size:
            raise keras_tuner.errors.FailedTrialError(
                f"Oversized model: {size} parameters. Skip model.")  # keras-tuner's words
        return model

    def _build_and_fit_model(self, trial, *args, **kwargs):
        kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + [_RaiseNotedInterrupt()]
        for callback in kwargs["callbacks"]:
            # keras-tuner's best-epoch checkpoint (one instance for all of a
            # trial's executions), written so that a full disk keeps the last one.
            if type(callback) is tuner_utils.SaveBestEpoch:
                callback.__class__ = _AtomicSaveBestEpoch
        if self.cost_measures:  # first: every other callback (keras-tuner's best-epoch
            # checkpoint, the user's) sees the costs, as an objective may need them
            kwargs["callbacks"].insert(0, objectives.CostLogger())
        return super()._build_and_fit_model(trial, *args, **kwargs)

    def get_best_models(self, num_models: int = 1):
        """The best models; with a hard budget, only models within it.

        Raises:
            RuntimeError: Trials ran and none completed.
            ValueError: ``num_models`` is not an int >= 0, or no completed trial
                is within a hard budget.
        """
        if check_int("num_models", num_models, low=0) == 0:
            return []  # (as keras-tuner)
        return [self.load_model(trial) for trial in self._best_trials(num_models)]

    def get_best_hyperparameters(self, num_trials: int = 1):
        """The best hyperparameters (of completed trials); with a hard budget,
        only those within it. Raises as `get_best_models`."""
        if check_int("num_trials", num_trials, low=0) == 0:
            return []  # (as keras-tuner)
        return [trial.hyperparameters for trial in self._best_trials(num_trials)]

    def _best_trials(self, num_trials: int) -> list:
        """The oracle's best trials, asked once (a worker asks the chief, which may
        be gone a moment later), after checking that some trial completed:
        completed trials come first, so a best trial that did not complete means
        none did (keras-tuner would return it)."""
        best = self.oracle.get_best_trials(num_trials)
        # (A worker's own oracle holds no trials: the count is the chief's to tell.)
        trials = list(getattr(self.local_oracle, "trials", {}).values())
        if (best and best[0].status != "COMPLETED") or (  # (a hard budget returns none)
                not best and trials and all(t.status != "COMPLETED" for t in trials)):
            oversized = sum(is_oversized(t) for t in trials or best)
            raise RuntimeError(
                (f"no trial of {len(trials)} completed" if trials else "no trial completed")
                + (f" ({oversized} exceeded max_model_size={self.max_model_size})"
                   if oversized else "")
                + "; there is no best model. See the trials' messages "
                "(tuner.oracle.trials[...].message), or search again.")
        objective = self.oracle.objective
        if getattr(objective, "hard", False) and not best and trials:
            raise ValueError(
                f"no completed trial is within the budget {objective.cost} <= "
                f"{objective.target:g}; raise the target or search longer."
            )
        return [trial for trial in best if trial.status == "COMPLETED"]  # (not failed ones)

    def get_pareto_front(self, objectives_: Optional[list] = None) -> list:
        """The completed trials no other completed trial dominates.

        Args:
            objectives_: Objectives (names or `keras_tuner.Objective`) to trade
                off; by default the tuner's: a `ConstrainedObjective`'s metric
                and cost, or each objective of a list.

        Returns:
            The non-dominated trials, best first on the first objective.

        Raises:
            ValueError: Fewer than two objectives, or one that no completed
                trial logged (the message lists the logged metrics).
        """
        if objectives_ is None:
            chosen = objectives.resolve_objectives(self.oracle.objective)
        else:
            chosen = [objectives.create_objective(o) for o in objectives_]
        if len(chosen) < 2:
            raise ValueError(
                f"a Pareto front needs two or more objectives, got {[o.name for o in chosen]}."
            )
        completed = [t for t in self.oracle.trials.values() if t.status == "COMPLETED"]
        logged = {name for t in completed for name in t.metrics.metrics}
        missing = [o.name for o in chosen if o.name not in logged]
        if completed and missing:
            raise ValueError(f"no completed trial logged {missing}; the trials logged "
                             f"{sorted(logged)}.")
        return objectives.pareto_front(completed, chosen)

    def pre_create_trial(self):
        # keras-tuner asks again at once after an IDLE answer; pause instead of
        # spinning on the chief while a possibly lost trial is still out.
        if getattr(self, "_asked_without_trial", False):
            time.sleep(IDLE_SECONDS)
        self._asked_without_trial = True
        super().pre_create_trial()

    def on_trial_begin(self, trial):
        self._asked_without_trial = False
        usage.raise_noted_interrupt()  # a Ctrl-C that Python dropped, before training again
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        if distributed.is_worker() and trial.status in ("FAILED", "INVALID") and trial.message:
            # For the chief's trial.json: keras-tuner's gRPC carries no message.
            distributed.keep_failure_message(self.get_trial_dir(trial.trial_id), trial.message)
        record = self._reads.pop(trial.trial_id, None)
        if record is not None and trial.status == "COMPLETED":
            unused = reads.unread_decisions(trial.hyperparameters, record)
            if unused is not None:
                self._unused[trial.trial_id] = unused
                if distributed.is_worker():  # the chief takes it
                    distributed.keep_unused(self.get_trial_dir(trial.trial_id), unused)
                elif hasattr(self.oracle, "note_unused"):
                    self.oracle.note_unused(trial.trial_id, unused)
        super().on_trial_end(trial)

    def unused_hyperparameters(self, trial_id: str) -> Optional[List[str]]:
        """Values of a trial completed in this process that its run_trial never
        read (see `metanas.tuners.reads`), or None if that is not known."""
        return self._unused.get(trial_id)

    def _run_and_update_trial(self, trial, *fit_args, **fit_kwargs):
        record = self._reads.setdefault(trial.trial_id, reads.ReadRecord())
        run_trial = self.run_trial

        def recorded_run_trial(trial_, *args, **kwargs):
            # Only run_trial: keras-tuner's update_trial after it saves every value.
            with reads.recording_reads(trial_.hyperparameters, record):
                results = run_trial(trial_, *args, **kwargs)
            # keras-tuner looks for the objective's name in a returned metrics
            # dict before the oracle sees it: a computed objective's value (a
            # list's, a ConstrainedObjective's) is derived first.
            if isinstance(results, dict):
                results = objectives.with_computed_values(self.oracle.objective, results)
            return results

        self.run_trial = recorded_run_trial  # what keras-tuner's loop calls
        try:
            return super()._run_and_update_trial(trial, *fit_args, **fit_kwargs)
        except Exception as error:
            cause = storage.disk_failure(error)
            if cause is None:
                raise  # the trial failed; keras-tuner records it
            raise DiskFullError(
                f"trial {trial.trial_id} could not write to disk ({cause}); the search "
                "stops rather than fail trials for want of space. Free space and search "
                "again (overwrite=False): this trial runs again, and every ended trial is kept."
            ) from error
        finally:
            del self.run_trial

    def _try_run_and_update_trial(self, trial, *fit_args, **fit_kwargs):
        timeout = self.local_oracle.heartbeat_timeout
        if not distributed.is_worker() or timeout is None:
            return self._try_run_reporting(trial, *fit_args, **fit_kwargs)
        with distributed.Heartbeat(self.oracle, trial.trial_id, interval=timeout / 4):
            return self._try_run_reporting(trial, *fit_args, **fit_kwargs)

    def _try_run_reporting(self, trial, *fit_args, **fit_kwargs):
        """keras-tuner's trial run, which prints a failed trial's traceback (with
        its ``config.DEBUG``, on by default); a model over ``max_model_size`` is
        a rejection, not an error, and gets one line instead."""
        debug, kt_config.DEBUG = kt_config.DEBUG, False
        try:
            return super()._try_run_and_update_trial(trial, *fit_args, **fit_kwargs)
        finally:
            kt_config.DEBUG = debug
            if debug and trial.status in ("FAILED", "INVALID") and trial.message:
                size = oversized_parameters(trial)
                if size is not None:
                    print(f"Trial {trial.trial_id}: a model of {size} parameters, over "
                          f"max_model_size={self.max_model_size}; not trained.", file=sys.stderr)
                else:
                    print(trial.message, end="", file=sys.stderr)  # as keras-tuner does


class _RaiseNotedInterrupt(keras.callbacks.Callback):
    """Ends training at the end of an epoch when the command line's Ctrl-C
    was dropped by Python (`metanas.usage.raise_noted_interrupt`). Epoch ends
    only: a batch-end hook would take Keras's asynchronous dispatch away."""

    def on_epoch_end(self, epoch, logs=None):
        usage.raise_noted_interrupt()


class _AtomicSaveBestEpoch(tuner_utils.SaveBestEpoch):
    """keras-tuner's `SaveBestEpoch`, writing with `storage.save_weights_atomically`:
    a full disk fails the trial's write, not HDF5 in the middle of the file."""

    def _save_model(self):
        if keras.config.backend() != "tensorflow":
            storage.save_weights_atomically(self.model, self.filepath)
            return
        # As keras-tuner does: non-chief replicas of a tf.distribute strategy
        # write to a temporary path.
        write_filepath = kt_io.write_filepath(self.filepath, self.model.distribute_strategy)
        storage.save_weights_atomically(self.model, write_filepath)
        kt_io.remove_temp_dir_with_filepath(write_filepath, self.model.distribute_strategy)


class DiskFullError(keras_tuner.errors.FatalError):
    """A trial could not write to disk (full, over quota, read-only): not the
    model's failure, so the search stops instead of failing trial after trial,
    and the trial runs again when the search is resumed."""


def validate_fit_data(fit_args, fit_kwargs) -> None:
    """Rejects NaN/inf inputs and mismatched lengths before the first trial.

    Left to training, they would fail every trial with a NaN loss or a shape
    error deep in Keras; here the error names the argument. (NaN targets are a
    warning only: a masked loss takes them, multi-task data with missing
    labels, as keras-tuner does.) Errors too: a
    ``validation_split`` outside [0, 1), which Keras accepts and scores
    nonsense with, and ``epochs`` that are not an int >= 1.
    """
    split = fit_kwargs.get("validation_split")
    if split is not None and (isinstance(split, bool) or not isinstance(split, numbers.Real)
                              or not 0 <= split < 1):
        raise ValueError(f"validation_split must be a number in [0, 1), got {split!r}.")
    if fit_kwargs.get("epochs") is not None:
        check_int("epochs", fit_kwargs["epochs"], low=1)
    named = dict(zip(("x", "y"), fit_args))
    named.update({k: fit_kwargs[k] for k in ("x", "y") if k in fit_kwargs})
    validation = fit_kwargs.get("validation_data")
    if isinstance(validation, (tuple, list)) and len(validation) >= 2:
        named["validation_data[0]"], named["validation_data[1]"] = validation[:2]
    lengths = {}
    for name, value in named.items():
        if not isinstance(value, np.ndarray):
            continue
        bad = _count_non_finite(value)
        if bad and name in ("x", "validation_data[0]"):
            raise ValueError(
                f"{name} holds {bad} NaN or infinite value(s); the search needs "
                "finite numbers (impute or drop them first)."
            )
        if bad:  # a masked loss takes NaN labels (missing targets of multi-task data)
            warnings.warn(
                f"{name} holds {bad} NaN or infinite value(s): unless the loss masks "
                "them, every trial's loss is NaN and the trial fails.", stacklevel=3)
        lengths[name] = len(value)
    for x_name, y_name in (("x", "y"), ("validation_data[0]", "validation_data[1]")):
        if x_name in lengths and y_name in lengths and lengths[x_name] != lengths[y_name]:
            raise ValueError(
                f"{x_name} has {lengths[x_name]} samples but {y_name} has "
                f"{lengths[y_name]}; they must have the same length."
            )


def _count_non_finite(value: np.ndarray, chunk_bytes: int = 1 << 24) -> int:
    """NaN and infinite entries of ``value``, checked a slice at a time so that a
    large array costs no full-size temporary; integers hold none."""
    if not np.issubdtype(value.dtype, np.inexact) or value.size == 0:
        return 0
    if value.ndim == 0:
        return int(not np.isfinite(value))
    # Slices along the first axis: views, whatever the memory layout.
    step = max(1, chunk_bytes // max(1, value[0].nbytes))
    return sum(int(value[i:i + step].size - np.count_nonzero(np.isfinite(value[i:i + step])))
               for i in range(0, len(value), step))


class RandomSearch(StrategyTuner):
    """Random search without repeats; see `RandomSearchOracle`.

    Example:

        >>> tuner = RandomSearch(build_model, objective="val_accuracy",
        ...                      max_trials=10, seed=1, directory="runs")
        >>> tuner.search(x, y, validation_split=0.2, epochs=3)
    """

    oracle_class = RandomSearchOracle


class EvolutionSearch(StrategyTuner):
    """Steady-state evolution; see `EvolutionOracle` for the settings.

    Example:

        >>> tuner = EvolutionSearch(build_model, objective="val_accuracy",
        ...                         max_trials=30, population_size=10,
        ...                         selection="roulette", seed=1)
        >>> tuner.search(x, y, validation_split=0.2, epochs=3)
    """

    oracle_class = EvolutionOracle


class RLControllerSearch(StrategyTuner):
    """An LSTM controller trained by REINFORCE; see `RLControllerOracle` for the settings.

    Example:

        >>> tuner = RLControllerSearch(build_model, objective="val_accuracy",
        ...                            max_trials=50, learning_rate=0.01,
        ...                            entropy_weight=1e-3, seed=1)
        >>> tuner.search(x, y, validation_split=0.2, epochs=3)
    """

    oracle_class = RLControllerOracle
