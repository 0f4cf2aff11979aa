"""`MetaTuner`: a KerasTuner tuner whose strategy the meta-layer chooses, and learns from."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import warnings
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import optuna

from metanas.meta.features import TASK_TYPES, dataset_features, space_features
from metanas.meta.learner import (
    DEFAULT_STUDY,
    OBJECTIVE_KEY,
    MetaLearner,
    MetaTask,
    ObjectiveError,
    Recommendation,
    StrategyError,
    meta_space,
    scored_with,
    strategy_classes,
)
from metanas.meta.transfer import TransferStore, WarmStart
from metanas.tuners import (
    EvolutionOracle, MetanasOracle, SavedStateError, ShortSearchWarning, StrategyTuner,
    distributed,
)
from metanas.tuners.storage import save_json_atomically, searching_in
from metanas.tuners.tuner import split_oracle_kwargs, strategy_settings

__all__ = ["MetaTuner", "search_score"]

CHOICE_FILE = "meta_choice.json"
SEARCH_ID_FILE = "meta_search_id.json"
#: In the tuner's ``directory``: results waiting for the meta storage, one file per project.
PENDING_DIRNAME = ".metanas-meta-pending"


def search_score(trials, maximize: bool) -> Optional[float]:
    """The meta-objective of a finished production search, or None if uninformative.

    Without a known optimum, the regret of step ``t`` is taken against the
    best score the search found, in units of the spread between that best and
    the median completed trial (a stand-in for the regret of a random guess),
    but at least half the spread between the best and the worst trial (when
    most trials come close to the best, the median's spread alone would blow
    the score up); the score is the mean regret over the trials, as
    `normalized_regret_auc`, so at most 2. A search with fewer than two
    completed trials, or whose completed trials all scored the same, says
    nothing about its strategy (None).

    Every evaluation counts on its own, a configuration evaluated again (a
    final race, see ``racing_fraction``) included: the score depends on the
    sequence of scores only. Ranking repeats by their running mean instead,
    with the regret clipped at 0 where a lucky first evaluation was later
    revised down, rewards racing even on pure noise (the final best falls as
    repeats regress to the mean, so every earlier step looks better): the
    meta-layer would learn to race for the score's sake. As it is, a race on
    pure noise scores like no race.
    """
    scores = [float(t.score) for t in trials if t.status == "COMPLETED" and t.score is not None]
    scores = [s if maximize else -s for s in scores if np.isfinite(s)]
    if len(scores) < 2:
        return None
    best_so_far = np.maximum.accumulate(scores)
    best = best_so_far[-1]
    scale = max(best - float(np.median(scores)), (best - min(scores)) / 2)
    if scale <= 0:
        return None
    return float(np.mean(best - best_so_far) / scale)


def _load_choice(path: str) -> Recommendation:
    """The recommendation a search saved in ``path`` (`CHOICE_FILE`).

    Raises:
        SavedStateError: The file is not one (corrupt, or another strategy's).
    """
    try:
        with open(path, encoding="utf-8") as handle:
            saved = json.load(handle)
        if not isinstance(saved, dict):
            raise ValueError(f"a JSON {type(saved).__name__}, where an object was expected")
        choice = Recommendation(**saved)
        if choice.strategy not in strategy_classes():
            raise ValueError(f"strategy {choice.strategy!r} is not one of "
                             f"{sorted(strategy_classes())}")
        if not isinstance(choice.settings, dict):
            raise ValueError(f"'settings': expected an object, got {choice.settings!r}")
        if choice.settings.get("selection", "tournament") != "tournament":
            # (Saved before a tournament's size was set for tournaments only.)
            choice.settings.pop("tournament_size", None)
        return choice
    except (ValueError, TypeError, KeyError) as error:
        raise SavedStateError.corrupt("meta-search file", path, error) from error


def _is_stream(data) -> bool:
    """A tf.data dataset, generator or iterator: no rows to describe up front."""
    return hasattr(data, "element_spec") or not hasattr(data, "__len__")


class MetaTuner(StrategyTuner):
    """A tuner that asks the meta-layer for its strategy and settings.

    At the start of the search it computes the dataset's meta-features (from
    the ``x`` and ``y`` given to `search`, and the search space), asks
    `MetaLearner.recommend` for the strategy and settings expected to search
    best, and runs that strategy. At the end it reports the search back to the
    meta storage as a new meta-trial, so the meta-layer keeps learning in
    production. The choice is saved in the project directory: a search resumed
    with ``overwrite=False`` keeps its strategy and state.

    Args:
        hypermodel, objective, max_trials: As for `keras_tuner.Tuner`.
        meta_storage: The Optuna storage URL of the meta-study (see
            `MetaLearner`); an SQLite file in the working directory by default.
        study_name: The meta-study's name.
        task_name: The name this dataset is recorded under (default: the
            project name; without one, or with a default one such as
            ``untitled_project``, that name, ``-`` and a digest of the
            dataset's meta-features, so that datasets searched without names
            are not taken for one task).
        strategies: Only choose among these (``"evolution"``, ``"random"``,
            ``"rl"``).
        record: Report the finished search to the meta storage, scored with
            the ``"auc"`` objective (`search_score`). A meta-study scored with
            ``"final"`` (which needs the task's optimum) cannot take it: the
            constructor raises `ObjectiveError` there (pass ``record=False``),
            as it raises `StrategyError` for ``strategies`` the study lacks.
        transfer: Start from the elite (evolution) or policy (RL controller)
            that a search on the most similar task with the same space left in
            the meta storage (`TransferStore`), and leave this search's there.
            Explicit ``initial_hps`` are tried before the transferred elite.
        task_type: ``"classification"`` or ``"regression"``, for the
            dataset's meta-features; None infers it from ``y``
            (`dataset_features`). Give it for an integer target to regress.
        **kwargs: `StrategyTuner` keywords (``seed``, ``hyperparameters``,
            ``directory``, ``project_name``, ``overwrite``, ...).

    Example:

        >>> tuner = MetaTuner(build_model, objective="val_accuracy", max_trials=30,
        ...                   meta_storage="sqlite:///meta.db", project_name="digits")
        >>> tuner.search(x, y, validation_split=0.2, epochs=5)
        >>> tuner.recommendation.strategy, tuner.recommendation.source
    """

    #: Project names that do not name a dataset (the default ones).
    unnamed_projects: Tuple[Optional[str], ...] = (None, "untitled_project")

    def __init__(
        self,
        hypermodel=None,
        objective=None,
        max_trials: Optional[int] = 10,
        *,
        meta_storage: Optional[str] = None,
        study_name: str = DEFAULT_STUDY,
        task_name: Optional[str] = None,
        strategies: Optional[Sequence[str]] = None,
        record: bool = True,
        transfer: bool = True,
        task_type: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        if "oracle" in kwargs:  # (before the meta-study is opened)
            raise ValueError(f"MetaTuner chooses its strategy when it sees the data, got "
                             f"oracle={kwargs['oracle']!r}: give an oracle to a "
                             "keras_tuner.Tuner, or leave the choice to MetaTuner.")
        if not isinstance(transfer, bool):
            raise ValueError(f"transfer must be True or False, got {transfer!r}.")
        if task_type is not None and task_type not in TASK_TYPES:
            raise ValueError(f"task_type must be one of {list(TASK_TYPES)} or None, "
                             f"got {task_type!r}.")
        self.task_type = task_type
        if distributed.is_chief() or distributed.is_worker():
            raise ValueError(
                f"MetaTuner does not run in keras-tuner's chief/worker mode "
                f"(KERASTUNER_TUNER_ID={os.environ.get('KERASTUNER_TUNER_ID')!r}): each process "
                "would pick its own strategy. Ask MetaLearner(...).recommend(...) once and "
                "scale out the recommended strategy's tuner (Recommendation.make_oracle)."
            )
        self.transfer = transfer
        self.warm_start: Optional[WarmStart] = None
        self.learner = MetaLearner(meta_storage, study_name=study_name)
        if strategies is not None:
            meta_space(strategies)  # ValueError naming an unknown one
        self.strategies = list(strategies) if strategies is not None else None
        if not isinstance(record, bool):
            raise ValueError(f"record must be True or False, got {record!r}.")
        if task_name is not None and (not isinstance(task_name, str) or not task_name.strip()):
            raise ValueError(f"task_name must be a non-empty string or None, got {task_name!r}.")
        self.record = record
        if record:  # refused now, not after the search it would not record
            self._check_recordable()
        project_dir = os.path.join(
            str(kwargs.get("directory") or "."), kwargs.get("project_name") or "untitled_project"
        )
        # Without a name, the task is named when its data is seen (`_name_task`).
        named = kwargs.get("project_name") not in self.unnamed_projects
        self.task_name: Optional[str] = task_name or (
            os.path.basename(project_dir) if named else None)
        self.recommendation: Optional[Recommendation] = None
        choice_path = os.path.join(project_dir, CHOICE_FILE)
        if not kwargs.get("overwrite", False) and os.path.exists(choice_path):
            self.recommendation = _load_choice(choice_path)
        # Until the data is seen, the oracle is evolution with its defaults;
        # `search` replaces it by the recommended one before the first trial.
        self.oracle_class = (
            strategy_classes()[self.recommendation.strategy]
            if self.recommendation
            else EvolutionOracle
        )
        # The oracle keywords every strategy takes (seed, hyperparameters, ...).
        self._base_kwargs = split_oracle_kwargs(MetanasOracle, dict(kwargs))
        if self.recommendation:  # the oracle keywords given win, as in the first search
            kwargs.update({name: value for name, value in self.recommendation.settings.items()
                           if name not in self._base_kwargs})
        self._objective_arg, self._max_trials_arg = objective, max_trials
        with warnings.catch_warnings():
            if not self.recommendation:  # (the stand-in's settings are not the search's)
                warnings.simplefilter("ignore", ShortSearchWarning)
            super().__init__(hypermodel, objective, max_trials, **kwargs)

    def _check_recordable(self) -> None:
        """Raises what `MetaLearner.record` would at the end of the search, read only.

        Raises:
            StrategyError: A strategy it may choose is outside the study's, or the
                study holds one of its settings with another range.
            ObjectiveError: The study's scores are of another meta-objective
                (``"final"``): a production search is scored by the area.
        """
        learner = self.learner
        if self.strategies is not None:  # (without them, it chooses among the study's)
            learner.check_strategies(self.strategies, new=tuple(strategy_classes()))
        learner.check_settings_space(self.strategies or learner.strategy_choices())
        recorded = learner.study.user_attrs.get(OBJECTIVE_KEY)
        if recorded not in (None, "auc") and recorded in (
                scored_with(t) for t in learner.study.get_trials(
                    deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))):
            raise ObjectiveError(
                f"study {learner.study.study_name!r} holds scores of the meta-objective "
                f"{recorded!r}; a MetaTuner records its search scored by 'auc' (the task's "
                "optimum is unknown). Pass record=False, or use another study (study_name)."
            )

    # ------------------------------------------------------------- choosing
    def features(self, fit_args, fit_kwargs) -> Dict[str, Any]:
        data = dict(zip(("x", "y"), fit_args))
        data.update({k: fit_kwargs[k] for k in ("x", "y") if k in fit_kwargs})
        features: Dict[str, Any] = {}
        x, y = data.get("x"), data.get("y")
        if x is not None and not _is_stream(x):  # arrays, DataFrames, lists, dicts
            try:
                target = None if y is None or _is_stream(y) else y
                features.update(dataset_features(x, target, task_type=self.task_type))
            except (ValueError, TypeError) as error:
                warnings.warn(f"no dataset meta-features ({error}); the recommendation "
                              "uses the search space's only.", stacklevel=3)
        else:
            warnings.warn("no dataset meta-features from a dataset stream (tf.data, a "
                          "generator): the recommendation uses the search space's only; "
                          "pass arrays to search() for a recommendation by similar data.",
                          stacklevel=3)
        features.update(space_features(self.oracle.hyperparameters))
        return features

    def _name_task(self, features: Dict[str, Any]) -> None:
        """Names an unnamed task by its meta-features.

        Every search without a ``project_name`` (or ``task_name``) runs in
        keras-tuner's ``untitled_project``: were they all recorded under that
        name, the meta-layer would take different datasets for one task.
        """
        if self.task_name is None:
            digest = hashlib.sha1(
                json.dumps(features, sort_keys=True, default=str).encode()).hexdigest()[:10]
            self.task_name = f"{os.path.basename(self.project_dir)}-{digest}"

    def _choose(self, fit_args, fit_kwargs) -> None:
        features = self.features(fit_args, fit_kwargs)
        self._name_task(features)
        self.recommendation = self.learner.recommend(features, strategies=self.strategies)
        self._features = features
        space, verbose = self.oracle.hyperparameters, self.oracle.verbose
        kwargs = dict(self._base_kwargs)
        if self.transfer:
            self.warm_start = TransferStore(self.learner).warm_start(
                features, hyperparameters=space, exclude_tasks=[self.task_name]
            )
            elite = self.warm_start.oracle_kwargs().get("initial_hps", [])
            kwargs["initial_hps"] = list(kwargs.get("initial_hps") or []) + elite
        oracle = self.recommendation.make_oracle(
            objective=self._objective_arg, max_trials=self._max_trials_arg, **kwargs
        )
        if self.warm_start is not None:
            self.warm_start.apply(oracle)
        oracle.hyperparameters = space
        oracle._set_project_dir(self.directory, self.project_name)
        oracle.verbose = verbose
        self.oracle = oracle
        # What trackers log as the search's settings: the recommended strategy's.
        self.oracle_class = type(oracle)
        self.strategy_settings = strategy_settings(
            type(oracle), {**self.recommendation.settings, **self._base_kwargs}, oracle)
        path = os.path.join(self.project_dir, CHOICE_FILE)
        save_json_atomically(path, vars(self.recommendation), default=str)

    def search(self, *fit_args, **fit_kwargs):
        """Chooses the strategy (first time only), searches, and reports back."""
        # The choice is written before the search: hold the directory from here.
        with searching_in(self.project_dir):
            self._flush_pending()
            self._search_id()  # a corrupt id file fails here, not after the search
            if self.recommendation is None:
                self._choose(fit_args, fit_kwargs)
            elif not hasattr(self, "_features"):
                self._features = self.features(fit_args, fit_kwargs)
                self._name_task(self._features)
            result = super().search(*fit_args, **fit_kwargs)
            self._report()
            return result

    # ------------------------------------------------------------ reporting
    def _report(self) -> None:
        """Leaves the search's elite (``transfer``) and records its score (``record``)."""
        score = search_score(
            [self.oracle.trials[t] for t in self.oracle.end_order],
            self.oracle.objective.direction == "max",
        )
        if self.transfer:
            try:
                TransferStore(self.learner).save(MetaTask(self.task_name, self._features), self.oracle)
            except Exception as error:  # the storage is down: the elite is not essential
                warnings.warn(f"could not keep the search's elite in the meta storage ({error}).",
                              stacklevel=2)
        if score is None or not self.record:
            return
        entry = {
            "task": {"name": self.task_name, "features": self._features},
            "strategy": self.recommendation.strategy,
            "params": self.recommendation.params,
            "score": score,
            # The search as it stands: searching again with nothing new to run
            # (or resuming a finished search) reports the same key, recorded once;
            # a new search in the project (overwrite=True) has a new id.
            "key": f"{self._search_id()}#{len(self.oracle.end_order)}",
        }
        try:
            self._send(entry)
        except ObjectiveError as error:
            warnings.warn(f"the search is not recorded in the meta storage: {error} A production "
                          "search is scored with 'auc' (the task's optimum is unknown); pass "
                          "record=False to a MetaTuner on this study.", stacklevel=2)
        except ValueError as error:  # StrategyError, or a result MetaTask or record refuses
            warnings.warn(f"the search is not recorded in the meta storage: {error}", stacklevel=2)
        except Exception as error:  # the storage is down: keep the result for later
            try:
                self._keep_pending(self._pending() + [entry])
            except OSError as keep_error:  # a full or read-only disk: say so, once
                message = (
                    f"the search's trials are saved in {self.project_dir}, but the search is not "
                    f"recorded in the meta storage ({error}), nor could it be kept for later in "
                    f"{self.pending_path} ({keep_error.strerror or keep_error}). Once there is "
                    "room (free disk space, a writable folder), run search() again on this "
                    "project (overwrite=False): it records the search without running its "
                    "trials again."
                )
                args = (message,) if keep_error.errno is None else (keep_error.errno, message)
                raise OSError(*args) from keep_error
            warnings.warn(
                f"could not record the search in the meta storage ({error}); it is kept "
                f"in {self.pending_path} and sent with the next MetaTuner search.",
                stacklevel=2,
            )

    def _search_id(self) -> str:
        """This search's id, kept in its project directory (which overwrite=True deletes)."""
        path = os.path.join(self.project_dir, SEARCH_ID_FILE)
        if os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as handle:
                    search_id = json.load(handle)["id"]
                if not isinstance(search_id, str) or not search_id:
                    raise ValueError(f"'id' is {search_id!r}, not a non-empty string")
            except (ValueError, KeyError, TypeError) as error:
                raise SavedStateError.corrupt("meta-search file", path, error) from error
            return search_id
        search_id = uuid.uuid4().hex
        save_json_atomically(path, {"id": search_id})
        return search_id

    def _send(self, entry) -> None:
        self.learner.record(
            task=MetaTask(entry["task"]["name"], entry["task"]["features"]),
            strategy=entry["strategy"],
            params=entry["params"],
            score=entry["score"],
            key=entry.get("key"),
        )

    @property
    def pending_path(self) -> str:
        """Where results wait for the meta storage: beside the project directory,
        which ``overwrite=True`` deletes (``<directory>/.metanas-meta-pending/<project>.json``)."""
        return os.path.join(self.directory, PENDING_DIRNAME, f"{self.project_name}.json")

    def _pending(self) -> list:
        """The results waiting in `pending_path` (none if there is no such file).

        Raises:
            SavedStateError: The file is not a list of search results (corrupt):
                read as one, it would pass for an unreachable storage forever.
        """
        if not os.path.exists(self.pending_path):
            return []
        try:
            with open(self.pending_path, encoding="utf-8") as handle:
                pending = json.load(handle)
            if not isinstance(pending, list):
                raise ValueError(f"a JSON {type(pending).__name__}, where a list was expected")
            for entry in pending:
                if not isinstance(entry, dict) or not isinstance(entry.get("task"), dict) or {
                        "strategy", "params", "score"} - set(entry) or {
                        "name", "features"} - set(entry["task"]):
                    raise ValueError(f"{entry!r:.80} is no search result (task, strategy, "
                                     "params, score)")
        except (ValueError, UnicodeDecodeError) as error:
            raise SavedStateError(
                f"The meta-layer's file of search results waiting for the meta storage, "
                f"{self.pending_path}, is corrupt ({error}). It was left as it is: restore it, "
                "or delete it (the results in it are then not recorded), and search again."
            ) from error
        return pending

    def _flush_pending(self) -> None:
        pending = self._pending()
        while pending:
            try:
                self._send(pending[0])
            except ValueError as error:
                # A study claimed by "final" meanwhile (ObjectiveError), another
                # strategy space, or a result no storage takes (a meta-feature
                # MetaTask refuses): no outage, and it must not block the others.
                warnings.warn(f"a pending search result is dropped: {error} (it was "
                              f"{json.dumps(pending[0], default=str):.300})", stacklevel=2)
            except Exception as error:  # noqa: BLE001 - the storage is still down: keep them
                warnings.warn(f"the meta storage is still unavailable ({error}); "
                              f"{len(pending)} search result(s) stay in {self.pending_path}.",
                              stacklevel=2)
                break
            pending.pop(0)
            self._keep_pending(pending)

    def _keep_pending(self, pending: list) -> None:
        """Rewrites the unsent results; a crash mid-write keeps the old list."""
        os.makedirs(os.path.dirname(self.pending_path), exist_ok=True)
        save_json_atomically(self.pending_path, pending, default=str)
