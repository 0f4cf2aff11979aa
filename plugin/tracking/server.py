"""Starting and stopping an MLflow server or UI, and the default local store."""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from typing import List, Optional

__all__ = ["default_store_uri", "free_port", "start_server", "stop_server", "wait_until_up"]


def default_store_uri() -> str:
    """The store metanas tuners log to by default.

    ``MLFLOW_TRACKING_URI`` when set, else MLflow's own default: with mlflow
    3.17, ``sqlite:///<working directory>/mlflow.db`` (artifacts in ``./mlruns``).
    """
    import mlflow

    return mlflow.get_tracking_uri()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def server_command(
    backend_store_uri: str, *, host: str = "127.0.0.1", port: int = 5000,
    artifacts_destination: Optional[str] = None, workers: int = 1, ui_only: bool = False,
) -> List[str]:
    """The ``mlflow server`` (or ``mlflow ui``) command line."""
    # Beside this Python (a virtualenv's bin/, or Scripts\ on Windows), else on PATH.
    mlflow_bin = pathlib.Path(sys.executable).with_name("mlflow.exe" if os.name == "nt"
                                                        else "mlflow")
    command = [str(mlflow_bin) if mlflow_bin.exists() else "mlflow"]
    command += ["ui" if ui_only else "server", "--backend-store-uri", backend_store_uri,
                "--host", host, "--port", str(port), "--workers", str(workers)]
    if artifacts_destination:
        command += ["--artifacts-destination", artifacts_destination]
    return command


def start_server(
    backend_store_uri: str, *, host: str = "127.0.0.1", port: Optional[int] = None,
    artifacts_destination: Optional[str] = None, log_path: Optional[os.PathLike] = None,
    timeout: float = 90.0,
):
    """Starts ``mlflow server`` in its own process group and waits until it answers.

    Returns:
        ``(process, url)``. Stop it with `stop_server` (the whole group: the
        server starts uvicorn workers of its own).
    """
    port = port or free_port(host)
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    process = subprocess.Popen(
        server_command(backend_store_uri, host=host, port=port,
                       artifacts_destination=artifacts_destination),
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env,
    )
    url = f"http://{host}:{port}"
    try:
        wait_until_up(url, timeout=timeout, process=process)
    except BaseException:
        stop_server(process)
        raise
    return process, url


def wait_until_up(url: str, *, timeout: float = 90.0, process=None) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with status {process.returncode}")
        try:
            if requests.get(url + "/health", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"mlflow server at {url} did not answer within {timeout:g} s")


def stop_server(process, timeout: float = 20.0) -> None:
    """Stops a server started by `start_server`: its whole process group.

    SIGTERM first; SIGKILL if the group has not ended after ``timeout`` seconds,
    or at once on a KeyboardInterrupt during that wait (a second Ctrl-C), which
    is raised again once the group is killed. On Windows the process and its
    children are ended at once (``taskkill /T /F``; there is no SIGTERM to ask).
    """
    if process.poll() is not None:
        return
    interrupted = False
    try:
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            pass
        except KeyboardInterrupt:
            interrupted = True
        _signal_group(process, getattr(signal, "SIGKILL", signal.SIGTERM))
        process.wait(timeout=timeout)
    except ProcessLookupError:
        pass
    if interrupted:
        raise KeyboardInterrupt


def _signal_group(process, number: int) -> None:
    """Sends signal ``number`` to ``process``'s group (`start_server` starts it in
    its own session). Windows has neither process groups to signal nor SIGKILL:
    there the process and its children are ended (``taskkill /T /F``)."""
    if os.name == "nt":
        subprocess.run(["taskkill", "/T", "/F", "/PID", str(process.pid)],
                       capture_output=True, check=False)
    else:
        os.killpg(process.pid, number)
