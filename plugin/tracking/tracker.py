"""`MlflowTracker`: every metanas search a parent run, every trial a nested run."""

from __future__ import annotations

import base64
import contextlib
import errno
import io
import json
import logging
import math
import os
import pathlib
import re
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional

from metanas.security import creation_error, redact, sqlite_problem
from metanas.tracking import records as rec
from metanas.tracking.spool import REJECTED_NAME, Spool

__all__ = ["MlflowTracker", "SEARCH_FILE", "SPOOL_DIRNAME", "StoreUnwritable", "server_problem",
           "short_http_retries", "spool_dir_problem", "store_problem", "strategy_name",
           "uri_scheme_problem"]

logger = logging.getLogger(__name__)

#: In the project directory: the search id, so a resumed search finds its parent run.
SEARCH_FILE = "metanas_tracking.json"
#: In the tuner's ``directory``, one folder per project: the spool of waiting records.
#: Beside the project directory rather than in it, so ``overwrite=True`` (which
#: deletes the project directory) cannot delete records not yet sent.
SPOOL_DIRNAME = ".metanas-mlflow-spool"

# A tracking server that is down must cost the search seconds, not the
# minutes of MLflow's default HTTP retries; applied only around our calls and
# only where the user has not chosen otherwise.
_HTTP_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",  # a failed record waits in the spool instead
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
#: After a slow failed delivery, records are spooled without trying MLflow for
#: this long, doubled after each further one up to the limit (a server that
#: hangs costs one timeout per back-off, not one per record).
_RETRY_SECONDS = 30.0
_MAX_RETRY_SECONDS = 600.0
#: A failure slower than this (a timeout, not a refused connection) backs off.
_SLOW_FAILURE_SECONDS = 1.5
#: The schemes in MLflow's error for a URI of an unknown scheme.
_SCHEMES = re.compile(r"[Ss]upported URI schemes are: (\[[^\]]*\])")
#: keras-tuner statuses of a trial that has ended (its run is due in MLflow).
_ENDED = ("COMPLETED", "FAILED", "INVALID")


def strategy_name(oracle) -> str:
    """``EvolutionOracle`` -> ``evolution``, ``RLControllerOracle`` -> ``rl-controller``."""
    name = type(oracle).__name__
    if name.endswith("Oracle") and len(name) > len("Oracle"):
        name = name[: -len("Oracle")]
    out = ""
    for i, char in enumerate(name):
        starts_word = char.isupper() and i > 0 and (
            name[i - 1].islower() or (i + 1 < len(name) and name[i + 1].islower())
        )
        out += ("-" if starts_word else "") + char.lower()
    return out


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


class MlflowTracker:
    """Tracks a metanas search in MLflow; the default ``tracking`` of every metanas tuner.

    One parent run per search: the strategy and its settings as params, the
    objective, the search space (``search_space.json``), the best score so
    far stepped by trial number (``best_so_far``), the strategy's diagnostics
    (`MetanasOracle.strategy_diagnostics`), and at the end the search curve
    (``search_curve.png``) and a table of every trial (``trials.csv``). One
    nested run per trial, named ``<strategy>-trial-<id>``: the
    hyperparameters as params, per-epoch metrics (step = epoch), the final
    ``objective``, ``duration_s``, the keras-tuner status as the
    ``metanas.status`` tag (a failed trial is a FAILED run with its error in
    the ``error`` tag and, when it raised, ``traceback.txt``), the model summary and
    architecture as artifacts.

    A resumed search (``overwrite=False``) continues its parent run; workers
    of a distributed search log their trials under the chief's parent run.
    When the tracking server cannot be reached the search goes on: records
    wait in a spool (JSON lines under ``<directory>/.metanas-mlflow-spool/
    <project_name>/``) and are replayed at a later trial, at the end of the
    search, or by ``metanas tracking sync``. Every record is applied
    idempotently, so nothing is logged twice. No kill loses a trial's run:
    records are written to disk before they are sent (a kill mid-send leaves
    them for the next search or ``sync``), and a resumed single-process
    search logs, from its oracle, every ended trial with no finished run in
    MLflow (one killed after the oracle ended it, before its record was
    written), and so does the chief of a distributed search at its end (for
    a worker killed so, or one that could not reach MLflow).

    Args:
        tracking_uri: MLflow tracking URI. Default: ``MLFLOW_TRACKING_URI``,
            else MLflow's default (with mlflow 3.17: ``sqlite:///mlflow.db`` in
            the working directory, artifacts in ``./mlruns``).
        experiment_name: Default: the tuner's ``project_name``.
        run_name: The parent run's name. Default: ``<strategy>-<project_name>``.
        log_models: Log each trial's model summary and architecture.
        spool_dir: Where records wait when MLflow is unreachable (created
            on the first record it keeps; it, or its nearest existing folder,
            must be a folder this process can write in). Default:
            ``<directory>/.metanas-mlflow-spool/<project_name>``.
        search_id: Identifies the search (tag ``metanas.search_id``).
            Default: a new id kept in the project directory, so a resumed
            search keeps it and ``overwrite=True`` starts a new one.

    Raises:
        ValueError: A bad setting, a ``spool_dir`` where no spool can be
            kept, or a ``tracking_uri`` (or, without one, an
            ``MLFLOW_TRACKING_URI``) MLflow cannot use (an unknown scheme).
            MLflow is not contacted here, so a server that is down is no
            error, nor is a local SQLite store that cannot be written (nor a
            full disk under the spool): records wait, for a later trial or
            ``metanas tracking sync``.

    Example:

        >>> tracker = MlflowTracker(tracking_uri="http://127.0.0.1:5000",
        ...                         experiment_name="digits")
        >>> tuner = EvolutionSearch(build_model, objective="val_accuracy",
        ...                         tracking=tracker)
    """

    def __init__(
        self,
        *,
        tracking_uri: Optional[str] = None,
        experiment_name: Optional[str] = None,
        run_name: Optional[str] = None,
        log_models: bool = True,
        spool_dir: Optional[os.PathLike] = None,
        search_id: Optional[str] = None,
    ) -> None:
        for label, value in (
            ("tracking_uri", tracking_uri), ("experiment_name", experiment_name),
            ("run_name", run_name), ("search_id", search_id),
        ):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{label} must be a non-empty string or None, "
                                 f"got {redact(repr(value))}.")
        if search_id is not None and not all(c.isalnum() or c in "-_." for c in search_id):
            raise ValueError(
                f"search_id may hold letters, digits, '-', '_' and '.', got {search_id!r}."
            )
        if not isinstance(log_models, bool):
            raise ValueError(f"log_models must be True or False, got {log_models!r}.")
        if spool_dir is not None and (
                not isinstance(spool_dir, (str, os.PathLike)) or not str(spool_dir).strip()):
            raise ValueError(f"spool_dir must be a non-empty path or None, got {spool_dir!r}.")
        if spool_dir is not None:
            problem = spool_dir_problem(spool_dir)
            if problem is not None:  # was: every record lost at the end of the search
                raise ValueError(f"spool_dir {str(spool_dir)!r} cannot hold the tracking spool: "
                                 f"{problem}; give a folder this process can write in.")
        if tracking_uri is None:
            _check_environment_uri()
        self._tracking_uri = tracking_uri
        self.run_name = run_name
        self.log_models = log_models
        # What the user gave; a search fills the rest from its tuner (`_setup`),
        # anew for each search a tracker is given to.
        self._given = {"experiment_name": experiment_name, "search_id": search_id,
                       "spool_dir": None if spool_dir is None else pathlib.Path(spool_dir)}
        self.experiment_name = experiment_name
        self.spool_dir = self._given["spool_dir"]
        self.search_id = search_id
        self._other_experiments: List[str] = []
        self._client = None
        self._warned_stores: set = set()
        if tracking_uri is not None and store_problem(tracking_uri) is None:
            self._client = make_client(tracking_uri)  # a URI MLflow cannot use: ValueError now
        self._cache = rec.RunCache()
        self._spool: Optional[Spool] = None
        self._trial: Dict[str, Dict[str, Any]] = {}
        self._parent: Dict[str, Any] = {}
        self._is_worker = False
        self.last_error: Optional[str] = None
        # After a slow failed delivery (a timeout), records go straight to the
        # spool until then (time.monotonic()), so that a server that hangs costs
        # one timeout per back-off, not one per record; the back-off doubles up
        # to its limit. The end of a search (`flush`) tries once more, unless the
        # last slow failure ended less than _RETRY_SECONDS before.
        self._down_until = 0.0
        self._backoff = _RETRY_SECONDS
        self._failed_at = -float("inf")  # when the last slow failure ended (time.monotonic())
        # Records the spool could not take (a full or read-only disk), oldest
        # first: tried again at the next record and at the end of the search.
        self._held: List[Dict[str, Any]] = []
        self._spool_error: Optional[str] = None
        self._spool_failing = False
        #: Records neither delivered nor spooled by the end of a search (a warning names them).
        self.lost = 0
        #: Spooled lines that held no readable record, moved to ``*.unreadable``.
        self.unreadable = 0
        #: Records MLflow refused for good (kept in the spool's rejected.jsonl).
        self.rejected = 0
        # Replay only records meant for this tracker's store (`sync` with an
        # explicit URI sends them all where it is told).
        self._any_target = False

    # ---------------------------------------------------------------- setup
    @property
    def tracking_uri(self) -> str:
        """The tracking URI in use (resolved once; print it with `redact`)."""
        if self._tracking_uri is None:
            import mlflow

            self._tracking_uri = mlflow.get_tracking_uri()
        return self._tracking_uri

    @property
    def client(self):
        """The MLflow client of `tracking_uri`.

        Raises:
            ValueError: MLflow cannot use the URI (an unknown scheme...): a
                setting to fix, not a bad record, so what waits for it is kept.
        """
        if self._client is None:
            problem = self._warn_store(self.tracking_uri)
            if problem is not None:
                # Before MLflow tries: it retries creating such a store for ~100 s.
                raise StoreUnwritable(f"the MLflow store {redact(self.tracking_uri)} "
                                      f"cannot be written: {problem}")
            self._client = make_client(self.tracking_uri)
        return self._client

    def _setup(self, tuner) -> None:
        from metanas.tuners import distributed

        self._is_worker = distributed.is_worker()
        project = tuner.project_name
        given = self._given
        # Each search its own id: read from its project directory again (another
        # project, or the same one after overwrite=True, has another).
        self.search_id = given["search_id"]
        self.experiment_name = given["experiment_name"] or project
        self._other_experiments = []  # others the search was tracked in before, if any
        self.spool_dir = given["spool_dir"] or (
            pathlib.Path(tuner.directory) / SPOOL_DIRNAME / project)
        self._spool = Spool(self.spool_dir, name=str(getattr(tuner, "tuner_id", "tuner0")))
        try:
            # What a killed search was sending: replayed with the other spooled records.
            self._spool.recover_inflight()
        except OSError as error:
            logger.warning("could not move the records a killed search left in %s to its "
                           "spool (%s); they stay there for `metanas tracking sync`",
                           self.spool_dir, error)
        oracle = getattr(tuner, "local_oracle", tuner.oracle)
        strategy = strategy_name(oracle)
        self._parent = {
            "strategy": strategy,
            "project": project,
            "name": self.run_name or f"{strategy}-{project}",
            "project_dir": pathlib.Path(tuner.project_dir),
        }
        self.search_id = self._read_search_id(tuner, self.search_id)

    def _note_experiment(self, path: pathlib.Path, saved: Dict[str, Any]) -> None:
        """Notes the other experiments the search of ``saved`` (its `SEARCH_FILE`)
        was tracked in, if any: its runs there are looked for too
        (`_finished_runs`), not logged again here as if the search had been
        killed. A new one is added to the file (with a warning)."""
        from metanas.tuners.storage import save_json_atomically  # keras-tuner: lazily

        known = saved.get("experiments")
        if not isinstance(known, list):  # (absent, or not a list: the earlier form's)
            known = [saved.get("experiment")]
        known = list(dict.fromkeys(e for e in known if isinstance(e, str)))
        self._other_experiments = [e for e in known if e != self.experiment_name]
        if self.experiment_name in known or self._is_worker:
            return
        if known:
            logger.warning("this search was tracked in MLflow experiment(s) %s before: its "
                           "runs so far stay there, and a new parent run in %r holds the rest",
                           ", ".join(map(repr, known)), self.experiment_name)
        try:
            save_json_atomically(str(path), {**saved,
                                             "experiments": known + [self.experiment_name]})
        except OSError as error:
            logger.warning("could not note the experiment in %s (%s)", path, error)

    def _read_search_id(self, tuner, given: Optional[str] = None) -> Optional[str]:
        """The search's id: ``given``, else read from its project directory (made
        there for a new search). That file also lists the experiments the search
        was tracked in (`_note_experiment`)."""
        from metanas.tuners.storage import save_json_atomically  # keras-tuner: lazily

        path = pathlib.Path(tuner.project_dir) / SEARCH_FILE
        if path.is_file():
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
                search_id = str(saved["search_id"])
            except (ValueError, KeyError, TypeError):
                logger.warning("ignoring unreadable %s", path)
            else:
                if given in (None, search_id):  # (else another search's file)
                    self._note_experiment(path, saved)
                return given or search_id
        if self._is_worker:
            return given  # if None: found from MLflow tags when the trial is logged
        search_id = given or uuid.uuid4().hex[:16]
        path.parent.mkdir(parents=True, exist_ok=True)
        # Atomically: a crash or a full disk mid-write must not leave a torn file
        # (a resumed search would then start a new parent run).
        save_json_atomically(str(path), {"search_id": search_id,
                                         "experiments": [self.experiment_name]})
        return search_id

    @property
    def parent_key(self) -> Optional[str]:
        return None if self.search_id is None else f"{self.search_id}/search"

    def _parent_ref(self) -> Dict[str, Any]:
        if self.parent_key is not None:
            return {
                "key": self.parent_key,
                "name": self._parent["name"],
                "tags": {rec.PROJECT_TAG: self._parent["project"], rec.SEARCH_TAG: self.search_id},
            }
        return {"project": self._parent["project"], "before_ms": rec.now_ms()}

    # --------------------------------------------------------------- events
    def on_search_begin(self, tuner) -> None:
        self._setup(tuner)
        if self._is_worker:
            return
        oracle = getattr(tuner, "local_oracle", tuner.oracle)
        params: Dict[str, Any] = {
            "strategy": self._parent["strategy"],
            "objective": _objective_text(oracle.objective),
            "max_trials": oracle.max_trials,
            "executions_per_trial": getattr(tuner, "executions_per_trial", 1),
            "project_name": self._parent["project"],
        }
        for name, value in (getattr(tuner, "strategy_settings", None) or {}).items():
            if name == "hyperparameters":
                continue
            params[f"setting.{name}"] = _jsonable(value)
        self._submit({
            "type": "search_begin",
            "key": self.parent_key,
            "name": self._parent["name"],
            "start_ms": rec.now_ms(),
            "reopen": True,
            "params": params,
            "tags": {
                rec.ROLE_TAG: "search",
                rec.PROJECT_TAG: self._parent["project"],
                rec.SEARCH_TAG: self.search_id,
                "metanas.strategy": self._parent["strategy"],
                # A param keeps its first value; a resumed search's budget is here.
                "metanas.max_trials": str(oracle.max_trials),
                "mlflow.note.content": (
                    f"metanas {self._parent['strategy']} search of project "
                    f"{self._parent['project']}; trials are nested runs."
                ),
            },
            "artifacts": {"search_space.json": {"text": _space_json(oracle)}},
        })
        self._reconcile(tuner)

    def _reconcile(self, tuner, *, search_done: bool = False) -> None:
        """Logs the trials a killed search ended in its oracle but not in MLflow.

        A search killed (SIGKILL, Ctrl-C) after the oracle ended a trial and
        before its record was on disk left no trace of that trial's run; one
        killed while MLflow wrote the run left it RUNNING and half written.
        Each such trial gets its run rebuilt from the oracle (hyperparameters,
        the oracle's metrics, score, status, error), applied only where the
        run is missing or unfinished (``if_unfinished``). Trials whose record
        waits in the spool are left to it. Costs one query when the search
        has ended trials, none for a new search.

        A distributed chief does so only once its search is done
        (``search_done``, from `on_search_end`), for the trials of workers
        killed before their record was on disk: its live workers have sent
        theirs by then (a worker asks for its next trial only once its record
        is sent or spooled). Only when MLflow answers: otherwise it cannot
        tell which are missing, and rebuilds none. No run is ever deleted: a
        late record (a dead worker's disk recovered by ``sync``, a worker
        that spooled on a disk of its own) updates the rebuilt run when it has
        the same key, and adds a second run of the trial when it has a
        worker's own key: a duplicate, never a loss (see `metanas.tracking.records`).
        """
        chief = _is_chief()
        if self.search_id is None or (chief and not search_done):
            # Before the end, a chief's trials are logged by its workers, which
            # may still be sending them as it restarts.
            return
        oracle = getattr(tuner, "local_oracle", tuner.oracle)
        prefix = f"{self.search_id}/trial/"
        ended = [t for t in oracle.trials.values() if str(t.status) in _ENDED]
        if not ended:
            return
        if chief:
            with contextlib.suppress(OSError):  # what dead workers were sending: replayed
                self._spool.recover_inflight()
        try:
            waiting = self._waiting_trials(prefix, in_flight=chief)
        except OSError:
            waiting = set()
        ended = [t for t in ended if prefix + str(t.trial_id) not in waiting]
        if not ended:
            return
        logged = self._finished_runs(prefix, by_parent=chief)
        if logged is None and chief:
            return  # MLflow cannot say which runs are missing: none is rebuilt
        missing = [t for t in sorted(ended, key=_trial_number)
                   if logged is None or prefix + str(t.trial_id) not in logged]
        if not missing:
            return
        records = []
        for trial in missing:
            try:
                record = self._trial_record(tuner, trial, None)
            except Exception as error:  # noqa: BLE001 - the other trials still get theirs
                logger.warning("could not rebuild the run of trial %s: %s", trial.trial_id, error)
                continue
            record["if_unfinished"] = True
            if self._other_experiments:
                record["also_in"] = list(self._other_experiments)
            records.append(self._stamp(record))
        if logged is None:
            # MLflow cannot say which are there: every ended trial waits in the
            # spool, and is applied only where its run turns out to be missing.
            self._keep(records)
            return
        logger.warning("%d ended trial(s) of this search had no finished run in MLflow (%s): "
                       "logging trial(s) %s from the oracle", len(records),
                       "a worker killed or unable to reach MLflow" if chief
                       else "a search killed while tracking them",
                       ", ".join(r["tags"]["metanas.trial_id"] for r in records))
        self._send_or_keep(self._take_held() + records)

    def _waiting_trials(self, prefix: str, *, in_flight: bool) -> set:
        """Keys (``prefix`` + trial id) of this search's trial records in the spool
        (and, ``in_flight``, being sent by a live process: a slow worker).

        Raises:
            OSError: The spool could not be read.
        """
        paths = list(self._spool.files())
        if in_flight:
            paths += Spool.inflight_files(self._spool.directory)
        keys = set()
        for path in paths:
            for record in Spool.read(path):
                if rec.record_problem(record) is not None:
                    continue  # no trial's: rejected when it is replayed
                key, parent = str(record.get("key")), record.get("parent") or {}
                keys.add(key)
                trial_id = (record.get("tags") or {}).get(rec.TRIAL_TAG)
                if (record.get("type") == "trial" and trial_id is not None
                        and not key.startswith(prefix)
                        and parent.get("project") == self._parent["project"]):
                    keys.add(prefix + str(trial_id))  # a worker's without the search id
        return keys

    def _finished_runs(self, prefix: str, *, by_parent: bool = False) -> Optional[set]:
        """Keys of this search's finished (not RUNNING) trial runs; None if MLflow cannot tell.

        ``by_parent``: also the runs nested under the search's parent run,
        by trial id (``prefix`` + id), whatever their key: a distributed
        worker that did not share the project directory logs under one of
        its own.
        """
        if time.monotonic() < self._down_until or not self._server_is_up():
            return None
        try:
            with short_http_retries():
                client = self.client
                # (And those a search resumed under another name was tracked in.)
                experiments = [e for e in (client.get_experiment_by_name(name) for name in
                                           [self.experiment_name, *self._other_experiments])
                               if e is not None]
                searches = []
                for experiment in experiments:
                    searches.append((experiment, f"tags.`{rec.KEY_TAG}` LIKE '{prefix}%'"))
                    parent = by_parent and rec.find_run(client, experiment.experiment_id,
                                                        self.parent_key)
                    if parent:
                        searches.append(
                            (experiment, f"tags.`{rec.PARENT_TAG}` = '{parent.info.run_id}'"))
                keys = set()
                for experiment, where in searches:
                    token = None
                    while True:
                        # '_' is a LIKE wildcard (search ids may hold it): keys
                        # are matched exactly below.
                        page = client.search_runs([experiment.experiment_id],
                                                  filter_string=where, max_results=1000,
                                                  page_token=token)
                        for run in page:
                            if run.info.status == "RUNNING":
                                continue
                            keys.add(run.data.tags.get(rec.KEY_TAG))
                            trial_id = run.data.tags.get(rec.TRIAL_TAG)
                            if by_parent and trial_id is not None:
                                keys.add(prefix + trial_id)
                        token = page.token
                        if not token:
                            break
                return {k for k in keys if k and k.startswith(prefix)}
        except Exception as error:  # noqa: BLE001 - unreachable: the records wait
            text = redact(str(error)).strip().splitlines()
            self.last_error = text[0] if text else type(error).__name__
            return None

    def on_trial_begin(self, tuner, trial) -> None:
        if self._spool is None:
            self._setup(tuner)
        if self.search_id is None:
            # A worker that started before the chief wrote the search id.
            self.search_id = self._read_search_id(tuner)
        self._trial[trial.trial_id] = {
            "start_ms": rec.now_ms(),
            "start": time.monotonic(),
            "metrics": [],
            "step": 0,
            "artifacts": {},
        }

    def on_epoch_end(self, tuner, trial, model, epoch, logs) -> None:
        state = self._trial.get(trial.trial_id)
        if state is None:
            return
        # Costs do not change by epoch: logged once, at the trial's end.
        values = {k: v for k, v in (logs or {}).items() if not str(k).startswith("cost/")}
        # Step = epoch: with executions_per_trial > 1, each execution logs its
        # epochs at the same steps (the trial's score is keras-tuner's mean).
        step = state["step"] if epoch is None else int(epoch)
        state["metrics"].extend(rec.metric_rows(values, step=step))
        state["step"] = max(state["step"], step + 1)
        if self.log_models and not state["artifacts"] and model is not None:
            state["artifacts"] = _model_artifacts(model)

    def on_trial_end(self, tuner, trial) -> None:
        state = self._trial.pop(trial.trial_id, None) or {
            "start_ms": rec.now_ms(), "start": time.monotonic(), "metrics": [], "step": 0,
            "artifacts": {},
        }
        message = getattr(trial, "message", None)
        try:
            # The oracle's copy holds the score (and on a worker, the only one).
            trial = tuner.oracle.get_trial(trial.trial_id)
        except Exception:  # noqa: BLE001 - a worker's chief may be away a moment
            pass
        number = _trial_number(trial)
        self._submit(self._trial_record(tuner, trial, state, message))
        if self._is_worker or self.parent_key is None:
            return
        progress = {"trials_done": float(number + 1)}
        best = _best_score(tuner)
        if best is not None:
            progress["best_so_far"] = best
        progress.update(_diagnostics(tuner))
        self._submit({
            "type": "search_progress",
            "key": self.parent_key,
            "metrics": rec.metric_rows(progress, step=number),
        })

    def _trial_record(self, tuner, trial, state: Optional[Dict[str, Any]],
                      message: Optional[str] = None) -> Dict[str, Any]:
        """The record of an ended trial's run.

        Args:
            tuner: The tuner.
            trial: The trial, as the oracle holds it (its score and status).
            state: What this process saw of it (`on_trial_begin`,
                `on_epoch_end`); None to rebuild the run from the oracle
                alone (`_reconcile`): its metrics at their steps, no per-epoch
                history, duration or model files.
            message: The trial's error, if the oracle's copy lacks it.
        """
        status = str(trial.status)
        final: Dict[str, float] = {}
        rebuilt = state is None
        if state is not None:
            final["duration_s"] = time.monotonic() - state["start"]
            metrics = list(state["metrics"])
            step = max(state["step"] - 1, 0)
            artifacts = dict(state["artifacts"])
        else:
            state = {"start_ms": rec.now_ms()}
            metrics, artifacts = _oracle_metric_rows(trial), {}
            step = int(getattr(trial, "best_step", 0) or 0)
        final.update(_cost_metrics(trial))
        if trial.score is not None and status == "COMPLETED":
            final["objective"] = trial.score  # (a failed trial's NaN is no score)
        tags = {
            rec.ROLE_TAG: "trial",
            rec.PROJECT_TAG: self._parent["project"],
            "metanas.trial_id": trial.trial_id,
            "metanas.status": status,
            "metanas.strategy": self._parent["strategy"],
        }
        if rebuilt:  # says why the run lacks its epochs, duration and model files
            tags[rec.REBUILT_TAG] = ("from the oracle, its worker killed or unable to reach "
                                     "MLflow before it logged it"
                                     if _is_chief() else
                                     "from the oracle, after the search was killed")
        unused = getattr(tuner, "unused_hyperparameters", lambda _: None)(trial.trial_id)
        if unused:  # logged as params, but the model never read them
            tags["metanas.unused_hyperparameters"] = ",".join(unused)[:4000]
        message = getattr(trial, "message", None) or message
        if status != "COMPLETED":
            if message:
                message = redact(str(message))
                lines = [line for line in message.strip().splitlines() if line.strip()]
                tags["error"] = (lines[-1] if lines else message)[:4000]
                artifacts["traceback.txt"] = {"text": message}
            else:
                tags["error"] = f"trial ended {status} with score {trial.score}"
        return {
            "type": "trial",
            "key": f"{self.search_id or uuid.uuid4().hex[:16]}/trial/{trial.trial_id}",
            "parent": self._parent_ref(),
            "name": f"{self._parent['strategy']}-trial-{trial.trial_id}",
            "start_ms": state["start_ms"],
            "end_ms": rec.now_ms(),
            "status": "FINISHED" if status == "COMPLETED" else "FAILED",
            "params": {k: _jsonable(v) for k, v in trial.hyperparameters.values.items()},
            "metrics": metrics + rec.metric_rows(final, step=step),
            "tags": tags,
            "artifacts": artifacts,
        }

    def on_search_end(self, tuner) -> None:
        if self._spool is None:
            self._setup(tuner)
        if not self._is_worker and self.parent_key is not None:
            if _is_chief():
                # Done: trials of workers killed before their record was on disk.
                try:
                    self._reconcile(tuner, search_done=True)
                except Exception as error:  # noqa: BLE001 - the search's end is logged all the same
                    logger.warning("could not check the trials' runs in MLflow: %s", error)
            self._submit({
                "type": "search_end",
                "key": self.parent_key,
                "end_ms": rec.now_ms(),
                "status": "FINISHED",
                **self._summary(tuner),
            })
        self.flush()
        waiting = sum(self._ours(r) for p in self._spool.files() for r in Spool.read(p))
        if waiting:  # nothing is lost, but MLflow shows the search unfinished until sent
            logger.warning(
                "%d MLflow record(s) of this store wait in %s (MLflow could not take them); "
                "the next search tracked to it sends them, or `metanas tracking sync` (see "
                "the README, \"When MLflow is down\")", waiting, self._spool.directory)

    def _summary(self, tuner) -> Dict[str, Any]:
        """The parent run's closing metrics and artifacts (counts, best, curve, table)."""
        oracle = getattr(tuner, "local_oracle", tuner.oracle)
        trials = sorted(oracle.trials.values(), key=_trial_number)
        metrics = rec.metric_rows(_diagnostics(tuner), step=len(trials))
        final: Dict[str, float] = {
            "trials_completed": sum(str(t.status) == "COMPLETED" for t in trials),
            "trials_failed": sum(str(t.status) in ("FAILED", "INVALID") for t in trials),
        }
        if _is_chief():
            # Workers cannot log the global best, nor the count, as they go: now.
            metrics += _best_so_far_rows(oracle, trials)
            final["trials_done"] = float(len(oracle.end_order))
        best = _best_score(tuner)
        if best is not None:
            final["best_score"] = best
        metrics += rec.metric_rows(final, step=len(trials))
        return {
            "metrics": metrics,
            "artifacts": {
                "search_space.json": {"text": _space_json(oracle)},
                "trials.csv": {"text": _trials_table(oracle, trials)},
                "search_curve.png": {"b64": _curve_png(oracle, trials)},
                **_pareto_artifacts(tuner, trials),
            },
        }

    def on_search_error(self, tuner, error: BaseException) -> None:
        """The search raised (e.g. too many consecutive failed trials): parent FAILED,
        with the summary of the trials it ran."""
        if self._spool is None or self._is_worker or self.parent_key is None:
            return
        text = redact(str(error)).strip().splitlines()
        try:
            summary = self._summary(tuner)
        except Exception as summary_error:  # noqa: BLE001 - the error is what must be logged
            logger.warning("no summary for the failed search (%s)", summary_error)
            summary = {}
        self._submit({
            "type": "search_end",
            "key": self.parent_key,
            "end_ms": rec.now_ms(),
            "status": "FAILED",
            "tags": {"error": _error_line(error, text)[:4000]},
            **summary,
        })
        self.flush()

    # ------------------------------------------------------------ delivery
    def _submit(self, record: Dict[str, Any]) -> None:
        # Records that could be neither sent nor spooled before go first.
        self._send_or_keep(self._take_held() + [self._stamp(record)])

    def _stamp(self, record: Dict[str, Any]) -> Dict[str, Any]:
        """``record`` with its id, experiment and target store."""
        record.setdefault("id", uuid.uuid4().hex)
        record.setdefault("experiment", self.experiment_name)
        # Where it was meant to go (without credentials): `sync` checks it.
        record.setdefault("target", store_target(self.tracking_uri))
        return record

    def _take_held(self) -> List[Dict[str, Any]]:
        held, self._held = self._held, []
        return held

    def _send_or_keep(self, records: List[Dict[str, Any]]) -> None:
        """Delivers ``records`` in order, or keeps them (spooled, else in memory)."""
        if not records:
            return
        if time.monotonic() < self._down_until:
            self._keep(records)  # MLflow failed a moment ago: do not wait on it again
            return
        try:
            delivered = self._deliver_pending()
        except Exception as error:  # noqa: BLE001 - whatever happens, the records are kept
            logger.warning("could not replay the spooled records (%s); spooling", error)
            delivered = False
        if not delivered:
            self._keep(records)
            return
        # Written ahead: a kill while MLflow takes them (the run created, its
        # params not yet) leaves them on disk for the next search or `sync`.
        with self._spool.write_ahead(records) as ahead:
            self._deliver(records, spool_on_failure=True)
            # Not sent, and the spool could not take them: the copy written
            # ahead is their only one on disk.
            ahead.keep = any(r is held for r in records for held in self._held)

    def _keep(self, records: List[Dict[str, Any]]) -> None:
        """Spools ``records``; those the spool cannot take (a full or read-only
        disk) are held in memory and tried again at the next record and at the
        end of the search (`flush`)."""
        for i, record in enumerate(records):
            try:
                self._spool.append(record)
            except Exception as error:  # noqa: BLE001 - an OSError mostly; keep it in memory
                text = redact(str(error)).strip().splitlines()
                self._spool_error = text[0] if text else type(error).__name__
                if not self._spool_failing:  # once until the spool takes a record again
                    logger.warning(
                        "could not spool a tracking record to %s (%s); keeping it in memory, "
                        "to try again at the next record and at the end of the search",
                        self._spool.directory, self._spool_error)
                self._spool_failing = True
                self._held.extend(records[i:])
                return
            self._spool_failing = False

    def flush(self) -> int:
        """Replays the spooled records now; returns how many are still waiting.

        Records held in memory (the spool could not take them) are sent or
        spooled first; those that still cannot be are lost, with a warning
        that names them and why. Then the spool's in-flight file is let go
        of (`Spool.drop_inflight`).
        """
        if self._spool is None:
            return 0
        if time.monotonic() - self._failed_at >= _RETRY_SECONDS:
            # The end of a search (or `sync`) tries once more, but not a store
            # that has just failed: that would cost a second timeout in a row.
            self._down_until = 0.0
        held = self._take_held()
        if held:
            self._send_or_keep(held)
        elif time.monotonic() >= self._down_until:
            try:
                self._deliver_pending()
            except Exception as error:  # noqa: BLE001 - they stay in the spool
                logger.warning("could not replay the spooled records in %s (%s)",
                               self._spool.directory, error)
        if self._held:
            self._report_lost(self._take_held())
        self._spool.drop_inflight()
        return sum(len(Spool.read(p)) for p in self._spool.files())

    def _report_lost(self, lost: List[Dict[str, Any]]) -> None:
        trials = sorted({str(r.get("tags", {}).get("metanas.trial_id")) for r in lost
                         if r.get("type") == "trial"}, key=lambda t: (len(t), t))
        parts = []
        if trials:
            parts.append(f"the run{'s' if len(trials) > 1 else ''} of trial"
                         f"{'s' if len(trials) > 1 else ''} {', '.join(trials)}")
        others = len(lost) - sum(r.get("type") == "trial" for r in lost)
        if others:
            parts.append(f"{others} update(s) of the search's parent run")
        self.lost += len(lost)
        logger.warning(
            "%d tracking record(s) are lost (%s): MLflow at %s could not take them (%s) and "
            "the spool %s could not keep them (%s).",
            len(lost), " and ".join(parts), redact(self.tracking_uri),
            self.last_error or "unreachable", self._spool.directory,
            self._spool_error)

    def _server_is_up(self) -> bool:
        uri = self.tracking_uri
        if self._warn_store(uri) is not None:
            return False
        return server_problem(uri) is None

    def _warn_store(self, uri: str) -> Optional[str]:
        """Warns once that a local store cannot be written; returns the problem, if any."""
        problem = store_problem(uri)
        if problem is not None and uri not in self._warned_stores:
            self._warned_stores.add(uri)
            logger.warning("the MLflow store %s cannot be written: %s; tracking records wait "
                           "in the spool %s (send them later with `metanas tracking sync`)",
                           redact(uri), problem, self._spool.directory if self._spool else "")
        return problem

    def _ours(self, record: Dict[str, Any]) -> bool:
        """Whether a spooled record is this tracker's to send (meant for its store).

        A record that names no store as a string is its to send too: it is no
        record any store can take, and is rejected (`_deliver`), not left waiting.
        """
        target = record.get("target")
        return (self._any_target or not isinstance(target, str)
                or target == store_target(self.tracking_uri))

    def _deliver_pending(self) -> bool:
        """Replays the spooled records meant for this store; True when none is left waiting.

        Records meant for another store (spooled by a search that tracked to
        another server) stay for ``metanas tracking sync --tracking-uri``.
        Lines that hold no record (a torn write) are moved to the pending
        file's ``.unreadable`` side file, never dropped.
        """
        if not self._spool.has_pending(self._ours):
            return True
        started = time.monotonic()
        if not self._server_is_up():
            self._back_off(time.monotonic() - started)
            return False
        with self._spool.locked():
            for path in self._spool.files():
                waiting, unreadable, side = Spool.load_setting_aside(path)
                if unreadable:
                    self.unreadable += len(unreadable)
                    logger.warning("%d line(s) of %s hold no readable record (a torn write, or "
                                   "JSON that is no object); kept in %s", len(unreadable), path,
                                   side)
                others = [r for r in waiting if not self._ours(r)]
                mine = [r for r in waiting if self._ours(r)]
                for i, record in enumerate(mine):
                    # Marked on a copy: what waits on stays as it was spooled.
                    if not self._deliver([{**record, "replay": True}], spool_on_failure=False):
                        Spool.rewrite(path, others + mine[i:])
                        return False
                Spool.rewrite(path, others)
        return True

    def _back_off(self, waited: float) -> None:
        """After a failure that took ``waited`` seconds: a slow one (a server that
        hangs, a timeout) is not tried again for a while; a quick one (a refused
        connection: the server is down) costs nothing to try at the next record."""
        if waited < _SLOW_FAILURE_SECONDS:
            return
        self._failed_at = time.monotonic()
        self._down_until = self._failed_at + self._backoff
        self._backoff = min(self._backoff * 2, _MAX_RETRY_SECONDS)

    def _deliver(self, batch: List[Dict[str, Any]], *, spool_on_failure: bool) -> bool:
        for i, record in enumerate(batch):
            problem = rec.record_problem(record)
            if problem is not None:
                # Not an outage: it would fail so at every replay, and wait for ever.
                reason = f"not a tracking record metanas can apply: {problem}"
                if self._reject(record, reason, f"a spooled line is {reason}"):
                    continue
                if spool_on_failure:
                    self._keep(batch[i:])
                return False
            started = time.monotonic()
            try:
                with short_http_retries():
                    rec.apply_record(self.client, record, self._cache)
            except Exception as error:  # noqa: BLE001 - any failure: keep the record
                text = redact(str(error)).strip().splitlines()
                self.last_error = text[0] if text else type(error).__name__
                if rec.is_permanent(error):
                    if self._reject(record, self.last_error, f"MLflow refused a "
                                    f"{record.get('type')} record ({self.last_error})"):
                        continue
                else:
                    self._back_off(time.monotonic() - started)
                    if spool_on_failure and not isinstance(error, StoreUnwritable):
                        logger.warning("MLflow at %s unavailable (%s); spooling to %s",
                                       redact(self.tracking_uri), self.last_error,
                                       self._spool.directory)
                if spool_on_failure:
                    self._keep(batch[i:])
                return False
        self._backoff = _RETRY_SECONDS  # delivered: the next failure waits briefly again
        return True

    def _reject(self, record: Dict[str, Any], reason: str, what: str) -> bool:
        """Keeps a record no retry can deliver in the spool's rejected.jsonl, with
        ``reason``, and warns (``what``: what happened and why, for the warning).

        Returns False when that file could not take it: the record then waits
        where it is (in the spool, else in memory), as if MLflow were away.
        """
        where = self._spool.directory / REJECTED_NAME
        # As it was spooled: without the mark a replay adds (`_deliver_pending`).
        kept = {k: v for k, v in record.items() if k != "replay"}
        try:
            self._spool.reject(kept, reason)
        except OSError as error:
            logger.warning("%s, and %s could not keep it (%s); it waits in the spool",
                           what, where, error)
            return False
        logger.warning("%s; kept in %s", what, where)
        self.rejected += 1
        return True


# ------------------------------------------------------------------ helpers
def store_target(tracking_uri: str) -> str:
    """``tracking_uri`` as records note it: credentials redacted, SQLite paths absolute."""
    if tracking_uri.startswith("sqlite:///") and not tracking_uri.startswith("sqlite:////"):
        tracking_uri = "sqlite:///" + os.path.abspath(tracking_uri[len("sqlite:///"):])
    return redact(tracking_uri)


class StoreUnwritable(OSError):
    """A local MLflow store (a SQLite file) that cannot be created or written."""


#: Why the local SQLite store of a tracking URI cannot be written, or None
#: (`metanas.security.sqlite_problem`; servers and other stores are not checked).
store_problem = sqlite_problem


def server_problem(tracking_uri: str, timeout: float = 2.0) -> Optional[str]:
    """Why the tracking server of ``tracking_uri`` does not answer, or None.

    One GET of its ``/health`` page (MLflow's TLS settings apply), at most
    ``timeout`` seconds: a server that is down costs that, not the minutes
    of MLflow's own HTTP retries. Other URIs (local stores, databases) are
    not checked: None.
    """
    if not tracking_uri.lower().startswith(("http://", "https://")):
        return None
    import requests

    url = tracking_uri.rstrip("/") + "/health"
    try:
        response = requests.get(url, timeout=timeout, **_tls_settings())
    except requests.RequestException as error:
        # The socket's own words ("[Errno 111] Connection refused"), not urllib3's paragraph.
        cause = re.search(r"\[Errno -?\d+\][^)'\"]*", str(error))
        return (f"{redact(url)} did not answer "
                f"({cause.group(0).strip() if cause else type(error).__name__})")
    # Any answer but a server error is a server that is up: a proxy that asks for
    # credentials on /health (401, 403) may take MLflow's own (its calls say so).
    if response.status_code >= 500:
        return f"{redact(url)} answered HTTP {response.status_code}"
    return None


def uri_scheme_problem(tracking_uri: str) -> Optional[str]:
    """Why MLflow cannot store runs at ``tracking_uri`` (an unknown scheme), or None.

    Asks MLflow's store registry for the scheme alone: nothing is opened,
    created or contacted. Whatever the registry cannot say is left to MLflow
    (None).
    """
    try:
        from mlflow.tracking._tracking_service import utils as tracking_utils

        tracking_utils._tracking_store_registry.get_store_builder(tracking_uri)
    except Exception as error:  # noqa: BLE001 - MLflow's private API: no answer is no problem
        schemes = _SCHEMES.search(str(error))
        if schemes:
            return f"MLflow stores runs only at URIs of the schemes {schemes.group(1)}"
    return None


def _check_environment_uri() -> None:
    """A ValueError (one line and exit status 2 on the command line) when
    ``MLFLOW_TRACKING_URI`` is set to a URI MLflow cannot use.

    Was: a search tracked by default spooled every record as if MLflow were
    merely down, and ended without a word.
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        return
    problem = uri_scheme_problem(uri)
    if problem is not None:
        from metanas.usage import UsageError  # a ValueError the command line reports in one line

        raise UsageError(f"MLFLOW_TRACKING_URI={redact(uri)!r} is not a tracking URI MLflow "
                         f"can use: {problem}; set it to one (e.g. sqlite:///mlflow.db or "
                         "http://host:5000) or unset it.")


def spool_dir_problem(spool_dir: os.PathLike) -> Optional[str]:
    """Why no spool can be kept in ``spool_dir``, or None.

    It must be a folder a file can be created in, or a path whose nearest
    existing folder is one (the spool creates the rest on its first record).
    Nothing is created and nothing is left behind (the probe is an unnamed
    temporary file, `metanas.security.creation_error`). A full disk is no
    problem here: the tracker keeps records in memory until the spool takes
    them again.
    """
    path = pathlib.Path(os.path.abspath(os.fspath(spool_dir)))
    folder = path
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        where = "it" if folder == path else f"its parent {str(folder)!r}"
        return f"{where} is not a folder"
    error = creation_error(str(folder))
    if error is None or error.errno in (errno.ENOSPC, errno.EDQUOT):
        return None
    where = "it" if folder == path else f"its nearest existing folder {str(folder)!r}"
    return f"no file can be created in {where} ({error.strerror or error})"


def _tls_settings() -> Dict[str, Any]:
    """``requests`` keywords for MLflow's TLS settings (its environment variables)."""
    out: Dict[str, Any] = {}
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        out["verify"] = False
    elif os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
        out["verify"] = os.environ["MLFLOW_TRACKING_SERVER_CERT_PATH"]
    if os.environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH"):
        out["cert"] = os.environ["MLFLOW_TRACKING_CLIENT_CERT_PATH"]
    return out


def make_client(tracking_uri: Optional[str]):
    """An ``MlflowClient`` of ``tracking_uri``; ValueError naming it if MLflow cannot use it."""
    import mlflow
    from mlflow.tracking import MlflowClient

    try:
        return MlflowClient(tracking_uri=tracking_uri)
    except Exception as error:  # noqa: BLE001 - MLflow's store lookup errors vary
        text = redact(str(error)).strip().splitlines()
        shown = repr(redact(tracking_uri)) if tracking_uri is not None else (
            f"{redact(mlflow.get_tracking_uri())!r} (MLFLOW_TRACKING_URI)")
        schemes = _SCHEMES.search(str(error))
        if schemes:  # MLflow's own words are of its model registry, which is not asked for
            reason = f"MLflow stores runs only at URIs of the schemes {schemes.group(1)}"
        else:
            reason = text[0] if text else type(error).__name__
        raise ValueError(f"MLflow cannot use the tracking URI {shown}: {reason}") from None


@contextlib.contextmanager
def short_http_retries() -> Iterator[None]:
    """MLflow's HTTP calls in the body fail in seconds, not minutes of retries
    (`_HTTP_ENV`, where the user has not set those variables)."""
    saved = {k: os.environ.get(k) for k in _HTTP_ENV}
    for key, value in _HTTP_ENV.items():
        if saved[key] is None:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)


def _is_chief() -> bool:
    from metanas.tuners import distributed

    return distributed.is_chief()


def _trial_number(trial) -> int:
    try:
        return int(trial.trial_id)
    except (TypeError, ValueError):
        return 0


def _objective_text(objective) -> str:
    name = getattr(objective, "name", None)
    direction = getattr(objective, "direction", None)
    if name and direction:
        return f"{name} ({direction})"
    return repr(objective)


def _space_json(oracle) -> str:
    return json.dumps(oracle.get_space().get_config(), indent=2, sort_keys=True, default=repr)


def _model_artifacts(model) -> Dict[str, Dict[str, str]]:
    lines: List[str] = []
    try:
        model.summary(print_fn=lambda line, *a, **k: lines.append(line))
        summary = "\n".join(lines)
    except Exception as error:  # noqa: BLE001 - an unbuilt model has no summary
        summary = f"(no summary: {error})"
    try:
        architecture = json.dumps(json.loads(model.to_json()), indent=1)
    except Exception as error:  # noqa: BLE001 - custom layers may not serialise
        architecture = json.dumps({"error": str(error)})
    return {
        "model/summary.txt": {"text": summary},
        "model/architecture.json": {"text": architecture},
    }


def _cost_metrics(trial) -> Dict[str, float]:
    metrics = getattr(trial, "metrics", None)
    if metrics is None:
        return {}
    out = {}
    for name in getattr(metrics, "metrics", {}):
        if str(name).startswith("cost/"):
            value = metrics.get_last_value(name)
            if value is not None:
                out[name] = value
    return out


def _oracle_metric_rows(trial) -> List[list]:
    """``[key, value, timestamp_ms, step]`` rows of what the oracle holds of a
    trial's metrics (keras-tuner keeps each at its best step, not per epoch)."""
    metrics = getattr(trial, "metrics", None)
    rows: List[list] = []
    timestamp = rec.now_ms()
    for name, history in (getattr(metrics, "metrics", None) or {}).items():
        if str(name).startswith("cost/"):
            continue  # `_cost_metrics` logs them, as for a trial seen live
        for observation in history.get_history():
            rows += rec.metric_rows({name: observation.mean()}, step=int(observation.step),
                                    timestamp=timestamp)
    return rows


def _error_line(error: BaseException, text: List[str]) -> str:
    """What a search's error tag says: its type and first line (keras-tuner's
    "Number of consecutive failures exceeded ..."), and its last line if other
    (the last failure's own error, at the end of the traceback it quotes)."""
    if not text:
        return type(error).__name__
    line = f"{type(error).__name__}: {text[0]}"
    return line if len(text) == 1 else f"{line} ... {text[-1]}"


def _best_score(tuner) -> Optional[float]:
    """The best completed trial's score (keras-tuner's oracles may rank a failed
    trial's NaN first), or None."""
    try:
        best = tuner.oracle.get_best_trials(10)
    except Exception:  # noqa: BLE001 - a worker's chief may be away a moment
        return None
    for trial in best:
        if (str(trial.status) == "COMPLETED" and trial.score is not None
                and math.isfinite(float(trial.score))):
            return float(trial.score)
    return None


def _diagnostics(tuner) -> Dict[str, float]:
    oracle = getattr(tuner, "local_oracle", tuner.oracle)
    diagnostics = getattr(oracle, "strategy_diagnostics", None)
    if diagnostics is None:
        return {}
    try:
        return {f"strategy/{k}": float(v) for k, v in diagnostics().items()}
    except Exception as error:  # noqa: BLE001
        logger.warning("strategy_diagnostics failed: %s", error)
        return {}


def _completed_scores(oracle, trials):
    direction = getattr(oracle.objective, "direction", "max")
    best, curve = None, []
    for trial in trials:
        score = trial.score if str(trial.status) == "COMPLETED" else None
        if score is not None and (
            best is None or (score > best if direction == "max" else score < best)
        ):
            best = float(score)
        curve.append((_trial_number(trial), score, best))
    return curve


def _best_so_far_rows(oracle, trials) -> List[list]:
    rows = []
    for number, _, best in _completed_scores(oracle, trials):
        if best is not None:
            rows += rec.metric_rows({"best_so_far": best}, step=number)
    return rows


def _trials_table(oracle, trials) -> str:
    import csv

    names = sorted({name for t in trials for name in t.hyperparameters.values})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["trial_id", "status", "score"] + names)
    for trial in trials:
        writer.writerow(
            [trial.trial_id, str(trial.status), "" if trial.score is None else trial.score]
            + [trial.hyperparameters.values.get(name, "") for name in names]
        )
    return out.getvalue()


def _curve_png(oracle, trials) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = _completed_scores(oracle, trials)
    fig, ax = plt.subplots(figsize=(6, 4))
    done = [(n, s) for n, s, _ in curve if s is not None]
    if done:
        ax.scatter(*zip(*done), s=16, c="0.55", label="trial score")
    best = [(n, b) for n, _, b in curve if b is not None]
    if best:
        ax.step(*zip(*best), where="post", c="tab:blue", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(_objective_text(oracle.objective))
    if done or best:  # none when every trial failed: no empty legend (and warning)
        ax.legend(loc="best")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _pareto_artifacts(tuner, trials) -> Dict[str, Dict[str, str]]:
    """``pareto_front.png`` for a search over two or more objectives, else nothing."""
    from metanas.tuners import objectives as objectives_module

    oracle = getattr(tuner, "local_oracle", tuner.oracle)
    chosen = objectives_module.resolve_objectives(oracle.objective)
    if len(chosen) < 2 or not hasattr(tuner, "get_pareto_front"):
        return {}
    import tempfile

    from metanas.plots import plot_pareto_front

    front = objectives_module.pareto_front(oracle.trials.values(), chosen)
    with tempfile.TemporaryDirectory() as folder:
        path = plot_pareto_front(trials, front, chosen, os.path.join(folder, "front.png"))
        with open(path, "rb") as handle:
            png = base64.b64encode(handle.read()).decode("ascii")
    return {"pareto_front.png": {"b64": png}}
