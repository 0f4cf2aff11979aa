"""keras-tuner's chief/worker mode, made robust for the metanas oracles.

keras-tuner runs one oracle on the chief and proxies workers' calls to it over
gRPC (``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP``,
``KERASTUNER_ORACLE_PORT``). On top of that protocol, without changing it:

* workers send heartbeats (a ``GetTrial`` call for their running trial every
  ``heartbeat_timeout / 4`` seconds), so the chief can reclaim the trial of a
  worker that died (see `MetanasOracle.reclaim_lost_trials`);
* the chief exits as soon as the search is done and every live worker has been
  told to stop, instead of polling every 20 s and waiting forever for workers
  that died (keras-tuner issues #254, #256);
* the chief's server does not print keras-tuner's stray condition values;
* workers retry calls while the chief is unreachable, so a chief killed and
  restarted with ``overwrite=False`` resumes with its workers;
* a chief that ends its search leaves a marker in the project directory
  (`CHIEF_ENDED_FILE`), so a worker started after the end stops instead of
  waiting an hour for a chief that will not come back (keras-tuner's clients
  cannot tell a chief that has ended from one that has not started yet).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import threading
import time
from concurrent import futures
from typing import List, Optional

from keras_tuner.src.distribute import utils as dist_utils

from metanas.tuners import storage

__all__ = ["is_worker", "is_chief", "serve_chief", "Heartbeat", "ResilientOracleClient",
           "WorkerFinished", "CHIEF_ENDED_FILE", "mark_chief_started", "mark_chief_ended",
           "FAILURE_FILE", "keep_failure_message", "take_failure_message",
           "UNUSED_FILE", "keep_unused", "take_unused"]

#: Written by a chief in its project directory when its search has ended.
CHIEF_ENDED_FILE = "chief_ended.json"
#: A worker that finds the marker of a search that ended before the worker
#: started waits this long for a new chief (whose tuner deletes the marker)
#: before it stops: the marker may be left by an earlier search in the same
#: directory whose new chief is still starting.
ENDED_GRACE_SECONDS = 60.0
#: How long a worker waits for a chief it never reached (keras-tuner's own
#: client timeout: a chief may take minutes to start; its issue #990).
FIRST_CONTACT_SECONDS = 3600.0
#: A worker says once that it is waiting, after this long without the chief.
ANNOUNCE_SECONDS = 10.0
#: Where a worker leaves a failed trial's message for the chief, in the trial's
#: directory (keras-tuner's gRPC Trial has no field for it).
FAILURE_FILE = "worker_failure.txt"
#: Where a worker leaves the names its completed trial did not read.
UNUSED_FILE = "worker_unused.json"
#: The longest message kept (a traceback's end is its most useful part).
FAILURE_MESSAGE_CHARS = 20_000


class WorkerFinished(Exception):
    """A worker's trials are done; skips what a framework does after a search.

    AutoKeras trains and saves the best model at the end of ``search``; in
    chief/worker mode only the chief does that, so a worker's AutoKeras tuner
    raises this from ``on_search_end`` and its ``search`` returns None. Not
    an error: trackers are not told of it.
    """


def is_chief() -> bool:
    return dist_utils.is_chief_oracle()


def is_worker() -> bool:
    return dist_utils.has_chief_oracle() and not dist_utils.is_chief_oracle()


@contextlib.contextmanager
def _quiet():
    # keras-tuner's `Parent.to_proto` prints a value on every call.
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def _quiet_servicer(oracle):
    # Imported here, as keras-tuner does, to keep gRPC and protobuf out of
    # `import metanas.tuners`.
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    class QuietServicer(oracle_chief.OracleServicer):
        def GetSpace(self, request, context):
            with _quiet():
                return super().GetSpace(request, context)

        def CreateTrial(self, request, context):
            trial = self.oracle.create_trial(request.tuner_id)
            if trial.status == "STOPPED":
                self.stop_triggered = True
            with _quiet():
                return protos.get_service().CreateTrialResponse(trial=trial.to_proto())

        def UpdateTrial(self, request, context):
            with _quiet():
                return super().UpdateTrial(request, context)

        def GetTrial(self, request, context):
            with _quiet():
                return super().GetTrial(request, context)

        def GetBestTrials(self, request, context):
            with _quiet():
                return super().GetBestTrials(request, context)

    return QuietServicer(oracle)


def serve_chief(oracle, *, poll_seconds: float = 0.5, max_seconds: Optional[float] = None):
    """Serves ``oracle`` to the workers until the search is done.

    Done means: some worker was told to stop (the trials are used up or the
    space is exhausted), or the search had nothing left to run (a finished
    search resumed), no trial is running, and every worker that is still
    alive has been told to stop. Lost trials are reclaimed while it waits.
    After too many consecutive failed trials every worker is told to stop,
    and the chief raises that error once they have.

    Raises:
        RuntimeError: The search stopped after too many consecutive failures
            (``max_consecutive_failed_trials``).
    """
    import grpc
    from keras_tuner.src import protos

    address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    # Without SO_REUSEPORT off, gRPC binds a port another chief listens on, and
    # the kernel shares the workers out between the two searches.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1),
                         options=[("grpc.so_reuseport", 0)])
    servicer = _quiet_servicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:  # (grpcio raises where older versions returned 0)
        bound = 0
    if bound == 0:
        server.stop(0)
        raise RuntimeError(f"the chief could not listen on {address} (KERASTUNER_ORACLE_IP:"
                           "KERASTUNER_ORACLE_PORT): is another chief, or another program, "
                           "listening there? Give this search another port.")
    server.start()
    started = time.monotonic()
    try:
        while max_seconds is None or time.monotonic() - started < max_seconds:
            time.sleep(poll_seconds)
            if hasattr(oracle, "reclaim_lost_trials"):
                oracle.reclaim_lost_trials()
            failure = getattr(oracle, "failure", None)
            finished = getattr(oracle, "search_finished", lambda: False)()
            if not (servicer.stop_triggered or failure or finished) or oracle.ongoing_trials:
                continue
            live = oracle.live_tuner_ids() if hasattr(oracle, "live_tuner_ids") else oracle.tuner_ids
            if not live:
                break
    finally:
        server.stop(grace=2).wait()
    if getattr(oracle, "failure", None):
        # Too many consecutive failures: the chief fails as a single process would.
        raise RuntimeError(oracle.failure)


def mark_chief_started(project_dir: str) -> None:
    """Deletes an ended search's marker: this chief serves the directory now."""
    if not storage.is_remote(project_dir):  # workers look for the marker on local paths only
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(str(project_dir), CHIEF_ENDED_FILE))


def mark_chief_ended(project_dir: str, reason: str) -> None:
    """Tells workers that start later that this search has ended (and why)."""
    if storage.is_remote(project_dir):
        return
    try:
        storage.save_json_atomically(os.path.join(str(project_dir), CHIEF_ENDED_FILE),
                             {"ended_at": time.time(), "reason": reason})
    except OSError as error:  # the search itself is saved; late workers will wait
        print(f"Could not mark the search as ended ({error}); workers started from now "
              f"on will wait for the chief.", file=sys.stderr)


def _leave(trial_dir: str, name: str, text: str) -> None:
    """Leaves ``text`` in a trial's directory for the chief (gRPC's Trial has no
    field for it); lost, harmlessly, where the chief does not share the directory."""
    if storage.is_remote(trial_dir):
        return
    try:
        with open(os.path.join(str(trial_dir), name), "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError:
        pass


def _take(trial_dir: str, name: str) -> Optional[str]:
    """What a worker left in a trial's directory (`_leave`), removed, or None."""
    path = os.path.join(str(trial_dir), name)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        os.remove(path)
    except OSError:  # none: another file system, or nothing left
        return None
    return text or None


def keep_failure_message(trial_dir: str, message: str) -> None:
    """Leaves a worker's failed-trial message where the chief looks for it (else
    it stays in the worker's output)."""
    _leave(trial_dir, FAILURE_FILE, message[-FAILURE_MESSAGE_CHARS:])


def take_failure_message(trial_dir: str) -> Optional[str]:
    """The message a worker left for a failed trial (and removes it), or None."""
    return _take(trial_dir, FAILURE_FILE)


def keep_unused(trial_dir: str, names: List[str]) -> None:
    """Leaves the names a worker's completed trial did not read, for the chief."""
    _leave(trial_dir, UNUSED_FILE, json.dumps(list(names)))


def take_unused(trial_dir: str) -> Optional[List[str]]:
    """The names a worker's trial did not read (and removes the file), or None."""
    text = _take(trial_dir, UNUSED_FILE)
    try:
        names = json.loads(text) if text else None
    except json.JSONDecodeError:
        return None
    ok = isinstance(names, list) and all(isinstance(n, str) for n in names)
    return names if ok else None


class Heartbeat:
    """Tells the chief, from a worker, that its running trial is alive."""

    def __init__(self, oracle_client, trial_id: str, interval: float) -> None:
        self._client = oracle_client
        self._trial_id = trial_id
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{trial_id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._client.get_trial(self._trial_id)
            except Exception:  # a missed beat is retried; the chief may be restarting
                pass
            self._stop.wait(self._interval)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class _FailFastStub:
    """keras-tuner's stub, whose calls fail at once (``UNAVAILABLE``) with no chief.

    keras-tuner calls with ``wait_for_ready=True`` and an hour's timeout: a
    call made while no chief listens blocks, silently, for up to an hour.
    `ResilientOracleClient` does the waiting itself instead.
    """

    def __init__(self, stub) -> None:
        self._stub = stub

    def __getattr__(self, name):
        method = getattr(self._stub, name)

        def call(request, **kwargs):
            kwargs["wait_for_ready"] = False
            return method(request, **kwargs)

        return call


class ResilientOracleClient:
    """A worker's proxy to the chief that outlives a chief restart.

    keras-tuner's ``OracleClient`` raises on the first failed call, so a worker
    dies with its chief, and a call made while no chief listens waits silently
    for up to an hour. This wrapper retries a call the chief could not take
    (``UNAVAILABLE``), backing off to 5 s and saying so after
    `ANNOUNCE_SECONDS`, for up to ``patience`` seconds once the chief has
    answered (`FIRST_CONTACT_SECONDS` before), so a chief killed and restarted
    with ``overwrite=False`` finds its workers still there. Retried calls are
    safe: the metanas oracle ignores a second result for a trial and re-issues
    a lost one. While it waits it watches the project directory for the
    marker of an ended search (`mark_chief_ended`): there, a worker gets
    ``STOPPED`` from ``create_trial``, as from a chief whose trials are used up.

    Args:
        client: keras-tuner's ``OracleClient``.
        patience: Seconds to wait for a chief that answered before.
        project_dir: The search's project directory, shared with the chief
            (local paths only; elsewhere no marker is looked for).
    """

    _RETRIED = (
        "get_space", "update_space", "create_trial", "update_trial",
        "end_trial", "get_trial", "get_best_trials",
    )

    def __init__(self, client, *, patience: float = 600.0,
                 project_dir: Optional[str] = None) -> None:
        import grpc
        from keras_tuner.src import protos

        self._client = client
        self._patience = patience
        self._address = (f"{os.environ['KERASTUNER_ORACLE_IP']}:"
                         f"{os.environ['KERASTUNER_ORACLE_PORT']}")
        # Reconnects at least every 5 s (gRPC's default backs off to 2 min),
        # so a restarted chief is found soon.
        channel = grpc.insecure_channel(
            self._address, options=[("grpc.max_reconnect_backoff_ms", 5000)])
        client.stub = _FailFastStub(protos.get_service_grpc().OracleStub(channel))
        self._marker = (None if project_dir is None or storage.is_remote(project_dir)
                        else os.path.join(str(project_dir), CHIEF_ENDED_FILE))
        # A marker there already may be an earlier search's (see `_ended_search`).
        self._marker_at_start = self._read_marker()
        self._started = time.monotonic()
        self._answered = False
        # Set once the chief has told this worker to stop: the search is over,
        # and an unreachable chief has ended, not restarting.
        self._told_to_stop = False

    @property
    def _oracle(self):
        return self._client._oracle

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if name not in self._RETRIED:
            return attribute

        def call(*args, **kwargs):
            import grpc

            if name == "get_best_trials" and self._told_to_stop:
                return self._best_trials_of_an_ended_search(*args, **kwargs)
            began, delay, announced = None, 0.5, False
            while True:
                try:
                    result = attribute(*args, **kwargs)
                except grpc.RpcError as error:
                    code = error.code() if hasattr(error, "code") else None
                    if code == grpc.StatusCode.UNKNOWN:
                        # The chief's oracle raised: its message, not gRPC's wrapping.
                        details = error.details() if hasattr(error, "details") else str(error)
                        details = (details or "").replace("Exception calling application: ", "", 1)
                        raise RuntimeError(f"the chief refused {name}: {details}") from None
                    if code != grpc.StatusCode.UNAVAILABLE:
                        raise
                    ended = self._ended_search()
                    if ended is not None:
                        return self._after_the_end(name, ended, *args, **kwargs)
                    now = time.monotonic()
                    began = now if began is None else began
                    limit = self._patience if self._answered else FIRST_CONTACT_SECONDS
                    if now - began > limit:
                        raise RuntimeError(
                            f"no chief at {self._address} for {now - began:.0f} s "
                            f"(KERASTUNER_ORACLE_IP/KERASTUNER_ORACLE_PORT); start it, or "
                            f"restart it with overwrite=False to resume its search") from None
                    if not announced and now - began >= ANNOUNCE_SECONDS:
                        announced = True
                        print(f"Worker {self._client.tuner_id} is waiting for the chief at "
                              f"{self._address} (for up to {limit:.0f} s).",
                              file=sys.stderr, flush=True)
                    time.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                self._answered = True
                if name == "create_trial" and getattr(result, "status", None) == "STOPPED":
                    self._told_to_stop = True
                return result

        return call

    def _read_marker(self) -> Optional[dict]:
        if self._marker is None:
            return None
        try:
            with open(self._marker, encoding="utf-8") as handle:
                ended = json.load(handle)
        except (OSError, ValueError):  # none, or being replaced
            return None
        return ended if isinstance(ended, dict) else None

    def _ended_search(self) -> Optional[dict]:
        """The marker of an ended search, if it tells this worker to stop.

        A marker written since this worker started is this search's end. One
        that was there already may be an earlier search's, whose new chief is
        still starting (and deletes it): it counts after `ENDED_GRACE_SECONDS`.
        Contents are compared, not clocks (the chief may be another machine).
        """
        ended = self._read_marker()
        if ended is None:
            return None
        if ended != self._marker_at_start or (
                time.monotonic() - self._started >= ENDED_GRACE_SECONDS):
            return ended
        return None

    def _after_the_end(self, name: str, ended: dict, *args, **kwargs):
        """What a call returns when the chief has ended the search for good."""
        from keras_tuner.engine import trial as trial_module

        if name == "create_trial":
            if not self._told_to_stop:
                when = time.strftime("%Y-%m-%d %H:%M:%S",
                                     time.localtime(float(ended.get("ended_at", 0))))
                print(f"Worker {self._client.tuner_id}: the chief ended this search at "
                      f"{when} ({ended.get('reason', 'done')}); nothing left to run.",
                      file=sys.stderr, flush=True)
            self._told_to_stop = True
            return trial_module.Trial(self._oracle.hyperparameters.copy(), status="STOPPED")
        if name == "get_space":  # the worker's own copy (reloaded or built) will do
            return self._oracle.get_space()
        if name == "update_space":
            return None
        if name == "get_best_trials":
            return self._best_trials_of_an_ended_search(*args, **kwargs)
        raise RuntimeError(
            f"{name}: the chief ended the search ({ended.get('reason', 'done')}) and is gone")

    def _best_trials_of_an_ended_search(self, num_trials: int = 1):
        # keras-tuner's client waits up to an hour for a chief to be ready; one
        # that has told this worker to stop has ended, or soon will: ask once.
        import grpc
        from keras_tuner.engine import trial as trial_module
        from keras_tuner.src import protos

        try:
            response = self._client.stub.GetBestTrials(
                protos.get_service().GetBestTrialsRequest(num_trials=num_trials),
                wait_for_ready=False, timeout=30,
            )
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            raise RuntimeError(
                "get_best_trials: the chief has ended the search and is gone; ask the "
                "chief's process for results, or reopen the project with overwrite=False"
            ) from None
        return [trial_module.Trial.from_proto(t) for t in response.trials]
