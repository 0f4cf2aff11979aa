"""AutoKeras `AutoTuner`s driven by the metanas oracles.

Importing this module imports AutoKeras.
"""

from __future__ import annotations

import importlib
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence

from autokeras import blocks as ak_blocks
from autokeras import nodes as ak_nodes
from autokeras.engine import tuner as ak_tuner
from autokeras.tuners import task_specific
import keras_tuner
from keras_tuner.src.engine.hyperparameters import hp_types

from metanas.meta.tuner import MetaTuner as _KerasMetaTuner
from metanas.tuners import distributed
from metanas.tuners.base import is_oversized
from metanas.tuners.tuner import StrategyTuner

__all__ = [
    "AutoKerasStrategyTuner",
    "EvolutionTuner",
    "MetaTuner",
    "RLControllerTuner",
    "RandomTuner",
    "task_initial_hps",
]


def head_task_type(hypermodel) -> Optional[str]:
    """``"classification"`` or ``"regression"`` from the graph's single head, else None."""
    outputs = list(getattr(hypermodel, "outputs", None) or [])
    if len(outputs) != 1 or not outputs[0].in_blocks:
        return None
    head = outputs[0].in_blocks[0]
    if isinstance(head, ak_blocks.ClassificationHead):
        return "classification"
    if isinstance(head, ak_blocks.RegressionHead):
        return "regression"
    return None


def task_initial_hps(hypermodel, hyperparameters=None) -> List[Dict[str, Any]]:
    """AutoKeras's task-specific first trials for the graph of ``hypermodel``.

    The task tuners of AutoKeras (`autokeras.tuners.task_specific`) start from
    known-good configurations for an image, text or structured-data classifier
    and a structured-data regressor; the task is read from the graph's single
    input node and single head. Other graphs (regressors without such a list,
    multi-input or multi-output models) get none, and a graph without a
    block the list sets (a custom one) gets only the settings of the blocks
    it has. A starting point for another block type than the one the block
    was given (``ImageBlock(block_type="vanilla")``, or a ``Fixed`` or
    ``Choice`` of it in ``hyperparameters``) is left out: its settings would
    be a ResNet's on a vanilla network. Settings the block was given are left
    out too (it registers none for them). (Settings of a sub-block a switch
    turns off, such as ``augment=False``'s augmentation, are kept: the trial
    lists them as unused.)
    """
    inputs = list(getattr(hypermodel, "inputs", None) or [])
    outputs = list(getattr(hypermodel, "outputs", None) or [])
    if len(inputs) != 1 or len(outputs) != 1 or not outputs[0].in_blocks:
        return []
    classify, regress = (head_task_type(hypermodel) == kind
                         for kind in ("classification", "regression"))
    node = inputs[0]
    if isinstance(node, ak_nodes.ImageInput) and classify:
        table = task_specific.IMAGE_CLASSIFIER
    elif isinstance(node, ak_nodes.TextInput) and classify:
        table = task_specific.TEXT_CLASSIFIER
    elif isinstance(node, ak_nodes.StructuredDataInput) and classify:
        table = task_specific.STRUCTURED_DATA_CLASSIFIER
    elif isinstance(node, ak_nodes.StructuredDataInput) and regress:
        table = task_specific.STRUCTURED_DATA_REGRESSOR
    else:
        return []
    # Only the settings of blocks this graph has (a custom graph, such as a
    # `CellBlock` on an image input, has no `image_block_1`), and graph-wide ones.
    blocks = {getattr(block, "name", None): block
              for block in getattr(hypermodel, "blocks", None) or []}
    # The values ``hyperparameters`` allows a name: a Fixed one, or a Choice's.
    allowed = {hp.name: [hp.value] if isinstance(hp, hp_types.Fixed) else list(hp.values)
               for hp in getattr(hyperparameters, "space", ())
               if isinstance(hp, (hp_types.Fixed, hp_types.Choice))}
    out: List[Dict[str, Any]] = []
    for values in table:
        kept: Optional[Dict[str, Any]] = {}
        for name, value in values.items():
            block, _, setting = name.partition("/")
            if not setting:  # graph-wide (optimizer, learning_rate)
                kept[name] = value
                continue
            if block not in blocks:
                continue
            given = getattr(blocks[block], setting, None) if "/" not in setting else None
            choices = allowed.get(name) if given is None else [given]
            if setting == "block_type" and choices is not None and value not in choices:
                kept = None  # a starting point for another block type
                break
            if given is None:
                kept[name] = value
        if kept and kept not in out:
            out.append(kept)
    return out


class _ChiefServes(keras_tuner.Tuner):
    """Below AutoKeras's ``search`` in the MRO: the chief serves the metanas oracle
    (`StrategyTuner._serve_as_chief`) where keras-tuner would start its own server."""

    def search(self, *fit_args, **fit_kwargs):
        if distributed.is_chief():
            self._serve_as_chief(fit_kwargs)
            return None
        return super().search(*fit_args, **fit_kwargs)


class AutoKerasStrategyTuner(StrategyTuner, ak_tuner.AutoTuner, _ChiefServes):
    """An AutoKeras tuner driven by a metanas oracle.

    Built with the arguments AutoKeras passes to every tuner (``hypermodel,
    overwrite, objective, max_trials, directory, seed, project_name,
    max_model_size, **kwargs``); keywords the oracle accepts
    (``hyperparameters``, ``initial_hps``, the strategy's settings) go to it.

    Beyond AutoKeras's own tuners:

    - ``initial_hps`` defaults to AutoKeras's task-specific first trials (see
      `task_initial_hps`), repaired to the space: values the space rejects
      (e.g. a ``Fixed`` block type) are re-drawn, and duplicates skipped.
    - A model over ``max_model_size`` fails its trial before training and does
      not count toward ``max_consecutive_failed_trials``; even the space's
      default model may be oversized without stopping the search.
    - ``fit`` again with ``overwrite=False`` and a larger ``max_trials``
      continues the finished search, as AutoKeras's own tuners do (a finished
      search saved as such is continued too).
    - In keras-tuner's chief/worker mode the workers run the trials and their
      ``fit`` returns None; the chief serves the oracle, then trains and saves
      the best model once (AutoKeras alone would have every worker do it).

    Subclasses name their oracle as ``oracle_path = "module:Class"``; it is
    imported when the tuner is built, so a strategy that is not installed only
    fails the tuner that needs it.
    """

    oracle_path: str = ""
    oracle_class = None

    @classmethod
    def resolve_oracle_class(cls) -> type:
        """The oracle class named by ``oracle_path``; ImportError if absent."""
        module_name, _, class_name = cls.oracle_path.partition(":")
        try:
            return getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as error:
            raise ImportError(
                f"{cls.__name__} needs {module_name}.{class_name}, which this "
                f"metanas does not provide ({error})."
            ) from error

    @classmethod
    def is_available(cls) -> bool:
        """Whether the oracle this tuner needs can be imported."""
        try:
            cls.resolve_oracle_class()
        except ImportError:
            return False
        return True

    def __init__(
        self,
        hypermodel=None,
        objective: Any = "val_loss",
        max_trials: Optional[int] = 10,
        **kwargs: Any,
    ) -> None:
        if self.oracle_class is None:
            self.oracle_class = self.resolve_oracle_class()
        if kwargs.get("initial_hps") is None:
            kwargs["initial_hps"] = task_initial_hps(hypermodel, kwargs.get("hyperparameters"))
        self._in_trial = False
        super().__init__(hypermodel, objective, max_trials, **kwargs)
        done = len(self.local_oracle.trials)
        if self._finished and done < (self.local_oracle.max_trials or math.inf):
            self._finished = False

    def _check_objective_before_search(self, fit_args, fit_kwargs) -> None:
        # AutoKeras compiles its own metrics from the heads; nothing to check.
        return

    def run_trial(self, trial, *args, **kwargs):
        self._in_trial = True
        try:
            return super().run_trial(trial, *args, **kwargs)
        finally:
            self._in_trial = False

    def search(self, *fit_args, **fit_kwargs):
        try:
            return super().search(*fit_args, **fit_kwargs)
        except distributed.WorkerFinished:
            return None

    def _chief_search(self, fit_args, fit_kwargs):
        # AutoKeras's search: its space set-up, then (`_ChiefServes`) serving
        # until every trial is done, then the final fit and save, here only.
        return ak_tuner.AutoTuner.search(self, *fit_args, **fit_kwargs)

    def on_search_end(self):
        super().on_search_end()
        if distributed.is_worker():
            raise distributed.WorkerFinished()
        # AutoKeras goes on to train the best trial's model; without one it
        # would fail with an IndexError deep inside.
        trials = self.oracle.trials.values()
        if not any(t.status == "COMPLETED" for t in trials):
            oversized = sum(is_oversized(t) for t in trials)
            raise RuntimeError(
                f"no trial of {len(trials)} completed ({oversized} exceeded "
                f"max_model_size={self.max_model_size}); there is no model to return. "
                "Raise max_model_size or max_trials, or see the trials' messages."
            )

    def _try_build(self, hp):
        # Outside a trial (AutoKeras builds the default model to populate the
        # space, and rebuilds the best one) the size limit must not raise.
        if self._in_trial:
            return super()._try_build(hp)
        limit, self.max_model_size = self.max_model_size, None
        try:
            return super()._try_build(hp)
        finally:
            self.max_model_size = limit


class RandomTuner(AutoKerasStrategyTuner):
    """Random search without repeats for AutoKeras; see `RandomSearchOracle`.

    Example:

        >>> clf = ak.ImageClassifier(tuner=RandomTuner, max_trials=10, seed=1)
    """

    oracle_path = "metanas.tuners.random_search:RandomSearchOracle"


class EvolutionTuner(AutoKerasStrategyTuner):
    """Evolution (tournament or roulette) for AutoKeras; see `EvolutionOracle`.

    Settings go through AutoKeras's ``**kwargs``:

        >>> clf = ak.ImageClassifier(tuner=EvolutionTuner, max_trials=30, seed=1,
        ...                          population_size=8, selection="roulette")
    """

    oracle_path = "metanas.tuners.evolution:EvolutionOracle"


class RLControllerTuner(AutoKerasStrategyTuner):
    """The RL controller (Zoph & Le 2017) for AutoKeras; see `RLControllerOracle`.

        >>> clf = ak.TextClassifier(tuner=RLControllerTuner, max_trials=30, seed=1)
    """

    oracle_path = "metanas.tuners.rl:RLControllerOracle"


class MetaTuner(_KerasMetaTuner, AutoKerasStrategyTuner):
    """AutoKeras tuner whose strategy and settings the meta-layer recommends.

    See `metanas.meta.MetaTuner`: the dataset's meta-features pick the
    strategy at the start of `fit`, and the finished search is recorded back
    to the meta storage (``meta_storage=``, an Optuna storage URL).

        >>> clf = ak.StructuredDataClassifier(tuner=MetaTuner, max_trials=20,
        ...                                   meta_storage="sqlite:///meta.db")
    """

    # The oracle until the data is seen; `fit` replaces it by the recommended one.
    oracle_path = "metanas.tuners.evolution:EvolutionOracle"
    # AutoKeras's default project names (`AutoModel` and its task classes).
    unnamed_projects = (*_KerasMetaTuner.unnamed_projects, "auto_model", *(
        f"{kind}_{task}" for kind in ("image", "text", "structured_data")
        for task in ("classifier", "regressor")))

    def __init__(self, hypermodel=None, objective: Any = "val_loss",
                 max_trials: Optional[int] = 10, **kwargs: Any) -> None:
        if kwargs.get("initial_hps") is None:
            kwargs["initial_hps"] = task_initial_hps(hypermodel, kwargs.get("hyperparameters"))
        if kwargs.get("task_type") is None:  # the head says what the target is
            kwargs["task_type"] = head_task_type(hypermodel)
        super().__init__(hypermodel, objective, max_trials, **kwargs)

    def features(self, fit_args, fit_kwargs) -> Dict[str, Any]:
        fit_kwargs = dict(fit_kwargs)
        for key in ("x", "y"):
            fit_kwargs[key] = _as_array(fit_kwargs.get(key))
        return super().features(fit_args, fit_kwargs)


def _as_array(data: Any, limit: int = 4096):
    """Up to ``limit`` rows of a `tf.data.Dataset` (one tensor) as a numpy array."""
    import numpy as np
    import tensorflow as tf

    if not isinstance(data, tf.data.Dataset) or isinstance(data.element_spec, (tuple, dict)):
        return data
    rows = [np.asarray(batch) for batch in data.unbatch().take(limit).batch(limit)]
    return rows[0] if rows else None
