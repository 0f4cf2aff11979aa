"""Tracking records and how they are applied to MLflow, idempotently.

A record is a JSON dict describing everything one event puts into MLflow:
a run found or created by its logical key (the ``metanas.key`` tag), params,
metrics with their own timestamps and steps, tags, text and binary
artifacts, and the run's final status. Applying a record twice changes
nothing: the run is looked up by key before it is created, params already
there are skipped, MLflow's SQL store drops a metric equal in key, value,
step and timestamp to one it holds, tags and artifacts overwrite themselves,
and a record already applied leaves its id in the run's
``metanas.records`` tag and is skipped outright. A record marked
``if_unfinished`` (a trial's run rebuilt from the oracle when a resumed
search finds it missing) is applied only when its run does not exist or was
never finished (a process killed while writing it left it RUNNING).

A distributed chief, at the end of its search, rebuilds the runs of ended
trials its workers did not log (``if_unfinished``, tag ``metanas.rebuilt``).
No run is ever deleted: a late record of that trial under the same key
(from a worker's spool on a disk of its own) updates the rebuilt run and drops its
``metanas.rebuilt`` tag; one under a worker's own key (a worker that did not
share the project directory) adds a second run of the trial: a duplicate,
never a loss.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import os
import pathlib
import re
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.uri import is_local_uri

from metanas.security import sqlite_file

__all__ = ["apply_record", "is_permanent", "record_problem", "RECORD_TYPES", "KEY_TAG",
           "ROLE_TAG", "PROJECT_TAG", "SEARCH_TAG", "REBUILT_TAG", "TRIAL_TAG"]

logger = logging.getLogger(__name__)

KEY_TAG = "metanas.key"
ROLE_TAG = "metanas.role"
PROJECT_TAG = "metanas.project"
SEARCH_TAG = "metanas.search_id"
RECORDS_TAG = "metanas.records"
#: On a search's run: the ids of the records that opened or reopened it.
BEGINS_TAG = "metanas.begins"
PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "metanas.trial_id"
#: On a trial's run rebuilt from the oracle (no epochs, duration or model files).
REBUILT_TAG = "metanas.rebuilt"

#: The kinds of record (``type``) a tracker writes.
RECORD_TYPES = ("search_begin", "search_progress", "search_end", "trial")

#: The statuses MLflow gives a run (``mlflow.entities.RunStatus``).
_RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")

#: MLflow error codes that mean "this record is wrong", not "the server is away".
_PERMANENT_CODES = {"INVALID_PARAMETER_VALUE", "BAD_REQUEST", "INVALID_STATE"}
_BATCH = 800  # MLflow takes at most 1000 entities (100 params, 100 tags) a log_batch
_PARAM_BATCH = 100
_PARAM_LENGTH = 6000  # MLflow's longest param value


def is_permanent(error: BaseException) -> bool:
    """Whether retrying ``error`` later cannot help (the record itself is bad)."""
    return isinstance(error, MlflowException) and error.error_code in _PERMANENT_CODES


def record_problem(record: Any) -> Optional[str]:
    """Why ``record`` is not a record `apply_record` can apply, or None.

    A spooled line may be JSON and no record (edited by hand, written by
    something else): applying it would fail the same way every time, which is
    no outage to wait out; the caller keeps it aside with this reason (the
    spool's ``rejected.jsonl``). Checks the fields `apply_record` reads, and
    their types, before anything is sent, so such a record creates no run.
    """
    try:
        return _record_problem(record)
    except Exception as error:  # noqa: BLE001 - a value no check foresaw: not applicable either
        return f"it holds a value that cannot be read ({type(error).__name__}: {error})"


def _record_problem(record: Any) -> Optional[str]:
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    for field in ("id", "key"):
        value = record.get(field)
        if not isinstance(value, str) or not value.strip():
            return f"its {field!r} is {_shown(value)}, not a non-empty string"
    if record.get("type") not in RECORD_TYPES:
        return f"its 'type' is {_shown(record.get('type'))}, not one of {list(RECORD_TYPES)}"
    if not isinstance(record.get("experiment"), str):  # MLflow judges the name itself
        return f"its 'experiment' is {_shown(record.get('experiment'))}, not a string"
    for field in ("target", "name"):
        if record.get(field) is not None and not isinstance(record[field], str):
            return f"its {field!r} is {_shown(record[field])}, not a string"
    if record.get("status") is not None and record["status"] not in _RUN_STATUSES:
        # MLflow fails on another with a plain Exception: it would wait for ever.
        return f"its 'status' is {_shown(record['status'])}, not one of {list(_RUN_STATUSES)}"
    for field in ("start_ms", "end_ms"):
        value = record.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return f"its {field!r} is {_shown(value)}, not a time in milliseconds"
    for field in ("params", "tags", "artifacts"):
        if not isinstance(record.get(field, {}), dict):
            return f"its {field!r} is {_shown(record[field])}, not an object"
    for name, content in record.get("artifacts", {}).items():
        # Written under a temporary folder (`_log_artifacts`): a relative path in it.
        parts = name.replace("\\", "/").split("/")
        if (not name or os.path.isabs(name) or os.path.splitdrive(name)[0]
                or any(part in ("", ".", "..") for part in parts)):
            return f"its artifact name {_shown(name)} is not a relative path without '..'"
        if not isinstance(content, dict):
            return f"its artifact {_shown(name)} holds no 'text' or 'b64' string"
        if "b64" in content:  # `_log_artifacts` reads it first
            if not isinstance(content["b64"], str):
                return f"its artifact {_shown(name)} holds no 'text' or 'b64' string"
            base64.b64decode(content["b64"], validate=True)  # binascii.Error: a ValueError
        elif not isinstance(content.get("text"), str):
            return f"its artifact {_shown(name)} holds no 'text' or 'b64' string"
    names = sorted(record.get("artifacts", {}))
    for first, second in zip(names, names[1:]):
        if second.startswith(first + "/"):
            return f"its artifact {_shown(first)} is also the folder of {_shown(second)}"
    metrics = record.get("metrics", [])
    if not isinstance(metrics, list):
        return f"its 'metrics' is {_shown(metrics)}, not a list"
    for row in metrics:
        if not (isinstance(row, list) and len(row) == 4 and isinstance(row[0], str)
                and isinstance(row[1], (int, float)) and not isinstance(row[1], bool)
                and all(isinstance(v, int) and not isinstance(v, bool)
                        or isinstance(v, float) and v.is_integer() for v in row[2:])
                and all(abs(v) < 2 ** 63 for v in row[2:])):
            return f"its metric row {_shown(row)} is not [name, value, timestamp_ms, step]"
    parent = record.get("parent")
    if parent is not None and not (
            isinstance(parent, dict) and (isinstance(parent.get("key"), str) and parent["key"]
                                          or isinstance(parent.get("project"), str))):
        return f"its 'parent' is {_shown(parent)}, not an object with a 'key' or 'project'"
    if parent is not None and not isinstance(parent.get("tags", {}), dict):
        return f"its parent's 'tags' is {_shown(parent['tags'])}, not an object"
    before = None if parent is None else parent.get("before_ms")
    if before is not None and (isinstance(before, bool) or not isinstance(before, int)):
        return f"its parent's 'before_ms' is {_shown(before)}, not a time in milliseconds"
    return None


def _shown(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters (a message names the value, not all of it)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def now_ms() -> int:
    return int(time.time() * 1000)


class RunCache:
    """Experiment ids and run ids by logical key, remembered per client."""

    def __init__(self) -> None:
        self.experiments: Dict[str, str] = {}
        # By (experiment id, key): a search resumed under another experiment
        # name has a run of that key in each.
        self.runs: Dict[Tuple[str, str], str] = {}
        # The records tag of each run as this process last wrote or read it.
        self.applied: Dict[str, List[str]] = {}


def experiment_id(client: MlflowClient, name: str, cache: RunCache) -> str:
    if name in cache.experiments:
        return cache.experiments[name]
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            exp_id = client.create_experiment(
                name,
                artifact_location=local_artifact_location(client.tracking_uri, name),
                # MLflow 3's UI opens experiments of unknown kind on its GenAI
                # pages; a search is model training: open on the runs table.
                tags={"mlflow.experimentKind": "custom_model_development"},
            )
        except MlflowException as error:  # another worker created it first
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            exp_id = client.get_experiment_by_name(name).experiment_id
    else:
        exp_id = experiment.experiment_id
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(exp_id)
    cache.experiments[name] = exp_id
    return exp_id


def local_artifact_location(tracking_uri: str, experiment: str) -> Optional[str]:
    """For a SQLite file store, ``<folder of the .db>/mlruns/<experiment>``, else None.

    MLflow would put artifacts in ``./mlruns`` of whatever the working
    directory is; beside the database they stay with the runs they belong to.
    """
    db = sqlite_file(tracking_uri)
    if db is None:
        return None
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in experiment) or "experiment"
    return (pathlib.Path(db).parent / "mlruns" / slug).as_uri()


def find_run(client: MlflowClient, exp_id: str, key: str):
    runs = client.search_runs(
        [exp_id], filter_string=f"tags.`{KEY_TAG}` = '{key}'", max_results=2
    )
    return runs[0] if runs else None


def find_search_run(client: MlflowClient, exp_id: str, project: str, before_ms: Optional[int]):
    """The latest search (parent) run of ``project`` started before ``before_ms``."""
    runs = client.search_runs(
        [exp_id],
        filter_string=f"tags.`{ROLE_TAG}` = 'search' and tags.`{PROJECT_TAG}` = '{project}'",
        order_by=["attributes.start_time DESC"],
        max_results=20,
    )
    for run in runs:
        if before_ms is None or run.info.start_time <= before_ms:
            return run
    return None


def _parent_id(client, exp_id, record, cache) -> Optional[str]:
    parent = record.get("parent")
    if not parent:
        return None
    if parent.get("key"):
        key = parent["key"]
        if (exp_id, key) not in cache.runs:
            run = find_run(client, exp_id, key)
            if run is None:
                # The search's own record has not been applied yet (a worker's
                # spool replayed first): create the parent; its record fills it.
                run = client.create_run(
                    exp_id,
                    start_time=record.get("start_ms"),
                    tags={KEY_TAG: key, ROLE_TAG: "search", **parent.get("tags", {})},
                    run_name=parent.get("name"),
                )
            cache.runs[exp_id, key] = run.info.run_id
        return cache.runs[exp_id, key]
    run = find_search_run(client, exp_id, parent["project"], parent.get("before_ms"))
    if run is None:
        raise MlflowException(
            f"no search run of project {parent['project']!r} to nest the trial under yet",
            error_code="TEMPORARILY_UNAVAILABLE",
        )
    return run.info.run_id


def apply_record(client: MlflowClient, record: Dict[str, Any], cache: RunCache) -> str:
    """Applies ``record`` to MLflow (idempotently) and returns its run id."""
    exp_id = experiment_id(client, record["experiment"], cache)
    key = record["key"]
    parent_id = _parent_id(client, exp_id, record, cache)
    run_id = cache.runs.get((exp_id, key))
    existing = None
    if run_id is None:
        existing = find_run(client, exp_id, key)
    elif record.get("replay") or record.get("params") or record.get("if_unfinished"):
        # A run this process knows already, but one with params: MLflow refuses
        # a param's new value (a resumed search's max_trials), so the values it
        # holds are needed to keep them (one call, at a search's start).
        existing = client.get_run(run_id)
    if (existing is not None and record.get("if_unfinished")
            and existing.info.status != "RUNNING"):
        cache.runs[exp_id, key] = existing.info.run_id
        return existing.info.run_id  # logged in full meanwhile (its own record came)
    if existing is None and record.get("if_unfinished"):
        # A search resumed under another experiment name: its run in one it
        # was tracked in before is its run (not logged again here).
        for name in record.get("also_in", ()):
            other = client.get_experiment_by_name(name)
            run = other and find_run(client, other.experiment_id, key)
            if run and run.info.status != "RUNNING":
                return run.info.run_id
    if existing is not None:
        run_id = existing.info.run_id
        done = [i for i in existing.data.tags.get(RECORDS_TAG, "").split(",") if i]
        cache.applied[run_id] = done
        if record["id"] in done:
            cache.runs[exp_id, key] = run_id
            return run_id
    tags = dict(record.get("tags", {}))
    tags[KEY_TAG] = key
    # The ids of the records that (re)opened the run, all of them: one sent again
    # (a replay) reopens nothing, after any number of later records.
    begun = [] if existing is None else [
        i for i in existing.data.tags.get(BEGINS_TAG, "").split(",") if i]
    if record.get("reopen"):
        # (The last 100: a tag holds 5000 characters.)
        tags[BEGINS_TAG] = ",".join(list(dict.fromkeys(begun + [record["id"]]))[-100:])
    if parent_id:
        tags[PARENT_TAG] = parent_id
    if run_id is None:
        # No run is ever deleted for another: a trial's run rebuilt by a chief
        # and its worker's late record under a key of its own make two runs of
        # the trial, a duplicate, never a loss.
        run = client.create_run(
            exp_id, start_time=record.get("start_ms"), tags=tags, run_name=record.get("name")
        )
        run_id = run.info.run_id
    elif record.get("reopen") and record["id"] not in begun:
        client.update_run(run_id, status="RUNNING")
    cache.runs[exp_id, key] = run_id

    params, artifacts = {}, dict(record.get("artifacts", {}))
    logged = {} if existing is None else existing.data.params
    for name, value in record.get("params", {}).items():
        key, text = safe_key(name), str(value)
        if len(text) > _PARAM_LENGTH:  # MLflow refuses longer values: the whole one beside
            if logged.get(key) == text[:_PARAM_LENGTH]:
                text = logged[key]  # cut without a note before metanas noted it: the same
            else:
                artifact = f"params/{_file_name(key)}.txt"
                note = f"... (cut; whole: artifact {artifact})"
                if key not in logged:  # (MLflow keeps a param's first value: its file too)
                    artifacts[artifact] = {"text": text}
                text = text[:_PARAM_LENGTH - len(note)] + note
        params[key] = text
    params_given = dict(params)
    if existing is not None:
        for name, value in existing.data.params.items():
            if name in params and params.pop(name) != value:
                logger.warning(
                    "MLflow keeps a param's first value: %s stays %r in run %r (now %r%s)",
                    name, value, record.get("name") or run_id, params_given[name],
                    "; the tag metanas.max_trials holds it" if name == "max_trials" else "")
    metrics = [
        Metric(safe_key(m[0]), float(m[1]), int(m[2]), int(m[3])) for m in record.get("metrics", [])
    ]
    if existing is not None and metrics:
        metrics = _not_logged(client, run_id, existing, metrics)
    # (A run this process knows: the ids it wrote there, not only the newest.)
    done_ids = cache.applied.get(run_id, []) if existing is None else cache.applied[run_id]
    applied = (done_ids + [record["id"]])[-40:]
    ends = bool(record.get("status")) or (
        existing is not None and REBUILT_TAG in existing.data.tags and REBUILT_TAG not in tags)
    if not ends:
        tags[RECORDS_TAG] = ",".join(applied)
    tag_list = [RunTag(k, str(v)[:5000]) for k, v in tags.items() if k != PARENT_TAG or parent_id]
    # Artifacts first; then everything else in as few calls as MLflow's limits
    # allow, the records tag last (with the last batch, or after the status and
    # the tags deleted), so a record half applied is applied again in full.
    _log_artifacts(client, run_id, artifacts)
    param_list = [Param(k, v) for k, v in params.items()]
    while len(metrics) > _BATCH or len(param_list) > _PARAM_BATCH:
        client.log_batch(run_id, metrics=metrics[:_BATCH], params=param_list[:_PARAM_BATCH])
        metrics, param_list = metrics[_BATCH:], param_list[_PARAM_BATCH:]
    client.log_batch(run_id, metrics=metrics, params=param_list, tags=tag_list)
    if existing is not None and REBUILT_TAG in existing.data.tags and REBUILT_TAG not in tags:
        client.delete_tag(run_id, REBUILT_TAG)  # the trial's own record came late: whole now
    if record.get("status"):
        if (record.get("type") == "search_end" and record["status"] == "FINISHED"
                and "error" not in tags and "error" in client.get_run(run_id).data.tags):
            client.delete_tag(run_id, "error")  # a failed search resumed and finished
        client.set_terminated(run_id, status=record["status"], end_time=record.get("end_ms"))
    if ends:
        client.set_tag(run_id, RECORDS_TAG, ",".join(applied))
    cache.applied[run_id] = applied
    return run_id


def _not_logged(client: MlflowClient, run_id: str, existing, metrics: List[Metric]) -> List[Metric]:
    """``metrics`` but those a ``file:`` store's run holds already (same step,
    timestamp and value).

    A record applied again after a store error part-way logs its metrics again:
    SQL stores and servers drop such duplicates themselves, a ``file:`` store
    appends them. Only the histories of names with a value at or before the
    run's latest one (by step, then time) are read: a replay's records, newer
    one by one, read none (a read per record made a replay quadratic).
    """
    if not is_local_uri(client.tracking_uri):
        return metrics
    latest = {m.key: (m.step, m.timestamp)
              for m in getattr(existing.data, "_metric_objs", None) or []}
    names = {m.key for m in metrics if m.key in existing.data.metrics
             and (m.step, m.timestamp) <= latest.get(m.key, (math.inf, math.inf))}
    held = {(m.key, m.step, m.timestamp, repr(m.value))
            for name in names for m in client.get_metric_history(run_id, name)}
    return [m for m in metrics if (m.key, m.step, m.timestamp, repr(m.value)) not in held]


def _log_artifacts(client: MlflowClient, run_id: str, artifacts: Dict[str, Dict[str, str]]) -> None:
    if not artifacts:
        return
    with tempfile.TemporaryDirectory(prefix="metanas-artifacts-") as tmp:
        for name, content in artifacts.items():
            path = os.path.join(tmp, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if "b64" in content:
                with open(path, "wb") as handle:
                    handle.write(base64.b64decode(content["b64"]))
            else:
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(content["text"])
        client.log_artifacts(run_id, tmp)


def _file_name(key: str) -> str:
    """``key`` as a file name any system takes: ASCII letters, digits, ``_ - .``, at
    most 100 characters, with 8 hex digits of its hash if it had to change."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", key)[:100]
    if name == key:
        return name
    return f"{name}_{hashlib.sha256(key.encode('utf-8')).hexdigest()[:8]}"


def safe_key(name: str) -> str:
    """``name`` as a param or metric key MLflow accepts, distinct for distinct names.

    MLflow keys allow letters, digits, ``_ - . : /`` and spaces, at most 250
    characters, and must read as a normalised relative path (no empty, ``.``
    or ``..`` segment, no leading or trailing ``/``); a hyperparameter or a
    strategy's diagnostics (``policy/prob/<hp>/<value>``, a value may be ``""``)
    may hold anything. A name that has to change keeps what it can, with ``_``
    for what it cannot, and ends with ``_`` and 8 hex digits of its hash, so
    that two names never share a key (``lr(1)`` and ``lr[1]``).
    """
    name = str(name)
    segments = _UNSAFE.sub("_", name).split("/")
    key = "/".join("_" if s in ("", ".", "..") else s for s in segments)
    if key.startswith(".."):
        key = "_" + key
    if key == name and len(key) <= _KEY_LIMIT:
        return key
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    key = key[: _KEY_LIMIT - 9]
    while key.endswith("/") or key.split("/")[-1] in (".", ".."):
        key = key[:-1]  # what the cut left of a segment
    return f"{key}_{digest}"


_UNSAFE = re.compile(r"[^\w\-. :/]")
_KEY_LIMIT = 250


def metric_rows(values: Dict[str, Any], step: int, timestamp: Optional[int] = None) -> List[list]:
    """``[key, value, timestamp_ms, step]`` rows of the finite numbers in ``values``."""
    timestamp = now_ms() if timestamp is None else timestamp
    rows = []
    for name, value in values.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        rows.append([str(name), number, timestamp, int(step)])
    return rows
