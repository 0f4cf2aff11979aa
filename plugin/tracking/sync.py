"""Replaying spooled tracking records (``metanas tracking sync``)."""

from __future__ import annotations

import logging
import os
import pathlib
from typing import Dict, Iterable, Optional

from metanas.security import redact
from metanas.tracking.spool import PENDING_SUFFIX, REJECTED_NAME, UNREADABLE_SUFFIX, Spool
from metanas.tracking.tracker import (
    SPOOL_DIRNAME,
    MlflowTracker,
    make_client,
    store_problem,
    store_target,
)

logger = logging.getLogger(__name__)

__all__ = ["sync", "find_spools"]


def find_spools(path: os.PathLike) -> Dict[pathlib.Path, int]:
    """Spool directories under ``path`` (a tuner ``directory``, a project or a spool),
    with their waiting record counts."""
    root = pathlib.Path(path)
    found: Dict[pathlib.Path, int] = {}
    for pending in sorted(root.rglob(f"*{PENDING_SUFFIX}")):
        if SPOOL_DIRNAME in pending.parts or pending.parent == root:
            found.setdefault(pending.parent, 0)
            found[pending.parent] += len(Spool.read(pending))
    beside = root.resolve().parent / SPOOL_DIRNAME / root.resolve().name
    if not found and beside.is_dir():  # a project directory: its spool sits beside it
        return find_spools(beside)
    return found


def sync(path: os.PathLike = ".", *, tracking_uri: Optional[str] = None) -> Dict[str, int]:
    """Replays every spooled record under ``path`` to MLflow.

    Args:
        path: A tuner ``directory`` (every project's spool under it), or one
            spool directory.
        tracking_uri: Where to send them. Default: ``MLFLOW_TRACKING_URI``,
            else MLflow's default store in the working directory.

    Records a killed search left being sent (in a ``*.inflight.jsonl`` no
    live process holds) are sent too.

    Returns:
        ``{"sent": n, "waiting": m, "rejected": r, "unreadable": u}``: records
        applied, records still waiting (MLflow unreachable), records MLflow
        refused for good, or that are no record metanas can apply (a JSON
        object without the fields of one), kept with the reason in a
        ``rejected.jsonl`` under ``path`` (by this call or by an earlier
        search or sync: they wait for a person, so every sync counts them
        until that file is dealt with), and spooled
        lines that hold no readable record (a write torn by a crash or a full
        disk, or JSON that is no object; kept in ``<pending file>.unreadable``,
        never sent nor deleted).

    Raises:
        ValueError: MLflow cannot use ``tracking_uri`` (or it names a SQLite
            store that cannot be written; without it, ``MLFLOW_TRACKING_URI``
            is of a scheme MLflow does not know), or, with no
            ``tracking_uri``, the records were meant for another store than
            the default (nothing is sent, and every record keeps waiting).
    """
    for leftover in {p.parent for p in _beside(path, Spool.inflight_files)}:
        try:
            Spool(leftover).recover_inflight()
        except OSError as error:  # they stay in flight, sent next time; the others go now
            logger.warning("could not move the records a killed search left in %s to its "
                           "spool (%s); they are sent once it can be written", leftover, error)
    spools = find_spools(path)
    if tracking_uri is None:
        # Checked before a client opens the default store (and creates its file).
        default = store_target(MlflowTracker().tracking_uri)
        targets = {
            record["target"]
            for directory in spools
            for pending in Spool(directory).files()
            for record in Spool.read(pending)
            if isinstance(record.get("target"), str)  # one that is not: rejected when sent
        } - {default}
        if targets:
            raise ValueError(
                f"the records under {str(path)!r} were meant for {sorted(targets)}, not the "
                f"default store {default!r} (MLFLOW_TRACKING_URI, else ./mlflow.db); say "
                "where they go (metanas tracking sync --tracking-uri URI)."
            )
    if tracking_uri is not None or spools:
        uri = tracking_uri if tracking_uri is not None else MlflowTracker().tracking_uri
        problem = store_problem(uri)
        if problem is not None:  # before MLflow retries creating it for ~100 s
            raise ValueError(f"the MLflow store {redact(uri)!r} cannot be written: {problem}.")
        make_client(tracking_uri)  # None: MLFLOW_TRACKING_URI, else MLflow's default
    sent = waiting = 0
    for directory, count in spools.items():
        _set_aside_unreadable(directory)
        # Its spool is set here, not checked as a spool_dir setting is: a spool
        # that cannot be written (another user's) waits, and the others are sent.
        tracker = MlflowTracker(tracking_uri=tracking_uri)
        tracker._spool = Spool(directory)
        tracker._any_target = True  # sent where this call says, whatever they were meant for
        left = tracker.flush()
        sent += count - left - tracker.rejected
        waiting += left
    unreadable = sum(sum(Spool(d).unreadable().values()) for d in _with_unreadable(path, spools))
    # Counted from the files, not from this call: a record a search had
    # refused is as much in need of a person as one refused now.
    rejected_dirs = set(spools) | {p.parent for p in _beside(path, _rejected_files)}
    rejected = sum(Spool(d).rejected() for d in rejected_dirs)
    return {"sent": sent, "waiting": waiting, "rejected": rejected, "unreadable": unreadable}


def _set_aside_unreadable(directory: pathlib.Path) -> None:
    """Moves the lines of ``directory``'s pending files that hold no record to
    their ``.unreadable`` side files, as a replay does.

    A replay only runs when a record waits: a pending file of torn lines alone
    kept them where they were, though `sync` said they were in a side file.
    Lines a side file cannot take (an OSError) stay in their pending file.
    """
    spool = Spool(directory)
    try:
        with spool.locked():
            for path in spool.files():
                Spool.load_setting_aside(path)
    except OSError as error:
        logger.warning("could not move the unreadable lines of the spool %s to their "
                       ".unreadable files (%s); they stay in its pending files", directory, error)


def _rejected_files(root: pathlib.Path):
    return sorted(root.rglob(REJECTED_NAME)) if root.is_dir() else []


def _beside(path: os.PathLike, finder) -> list:
    """``finder(directory)`` for ``path`` and for the spool beside it (a project directory's)."""
    root = pathlib.Path(path)
    found = list(finder(root))
    beside = root.resolve().parent / SPOOL_DIRNAME / root.resolve().name
    if beside.is_dir() and beside.resolve() != root.resolve():
        found += [p for p in finder(beside) if p not in found]
    return found


def _with_unreadable(path: os.PathLike, spools: Iterable[pathlib.Path]) -> set:
    """The spool directories to count unreadable lines in: ``spools`` and those under
    ``path`` (or beside it, for a project directory) with a ``.unreadable`` file."""
    root = pathlib.Path(path)
    found = set(spools)
    for base in (root, root.resolve().parent / SPOOL_DIRNAME / root.resolve().name):
        if base.is_dir():
            sides = base.rglob(f"*{PENDING_SUFFIX}{UNREADABLE_SUFFIX}")
            found.update(side.parent for side in sides)
    return found
