"""Storage URLs: keeping their credentials out of logs, params and messages, and
finding a SQLite URL's database file."""

from __future__ import annotations

import os
import re
import tempfile
from typing import Optional

__all__ = ["creation_error", "redact", "sqlite_file", "sqlite_in_memory", "sqlite_problem"]

_USERINFO = re.compile(r"(//[^/:@\s]+):[^/@\s]*@")
#: ``https://TOKEN@host``: a web URL's user alone is a token (a database URL's
#: user alone is a name, its password kept elsewhere, e.g. ``.pgpass``).
_WEB_TOKEN = re.compile(r"(\bhttps?://)[^/:@\s]+@", re.IGNORECASE)
_SECRET_QUERY = re.compile(
    r"([?&](?:password|passwd|pwd|token|access_token|secret|api_key|apikey|key)=)[^&#\s]*",
    re.IGNORECASE,
)


def redact(url: str) -> str:
    """``url`` (or any text holding URLs) with its credentials replaced by ``***``.

    Covers ``scheme://user:password@host``, ``https://token@host`` and
    secret query parameters (``?password=``, ``?token=``, ...).

    Example:

        >>> redact("postgresql://bob:hunter2@db:5432/mlflow?sslmode=require&token=abc")
        'postgresql://bob:***@db:5432/mlflow?sslmode=require&token=***'
    """
    text = _USERINFO.sub(r"\1:***@", str(url))
    return _SECRET_QUERY.sub(r"\1***", _WEB_TOKEN.sub(r"\1***@", text))


def sqlite_file(url: str) -> Optional[str]:
    """The absolute path of a SQLite URL's database file, or None.

    None for another scheme and for an in-memory database (``sqlite:///``,
    ``sqlite:///:memory:``); a relative path is taken from the working
    directory, as SQLAlchemy takes it.

    Example:

        >>> sqlite_file("sqlite:////data/meta.db?timeout=30")
        '/data/meta.db'
    """
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    path = url[len(prefix):].split("?", 1)[0]
    return os.path.abspath(path) if path and path != ":memory:" else None


def sqlite_in_memory(url: str) -> bool:
    """Whether ``url`` names an in-memory SQLite database (``sqlite://``,
    ``sqlite:///:memory:``, or a driver's variant of them): gone when its process ends."""
    scheme, _, rest = url.partition("://")
    return scheme.split("+", 1)[0] == "sqlite" and rest.split("?", 1)[0] in ("", "/", "/:memory:")


def sqlite_problem(url: str, *, journal: bool = True) -> Optional[str]:
    """Why the SQLite file of ``url`` cannot be written, or None.

    MLflow retries opening a SQLite store it cannot write for about 100 s, and
    Optuna blames "invalid data" in its commit; this check costs a few file
    operations. It opens, not asks (``os.access`` says yes to root even where
    nothing can be created, e.g. ``/proc`` or a read-only mount): the database
    file for writing if it exists (its content untouched), and, with
    ``journal`` (a process that writes: SQLite writes its journal beside the
    file), an unnamed temporary file in its folder, or in the nearest existing
    folder of a file to be created; it leaves nothing behind. Other URLs
    (servers, other databases, in-memory SQLite) are not checked.
    """
    path = sqlite_file(url)
    if path is None:
        return None
    if os.path.isdir(path):
        return f"{path} is a folder, not a SQLite database file"
    if os.path.exists(path):
        try:
            with open(path, "r+b"):
                pass
        except OSError as error:
            return f"{path} cannot be opened for writing ({error.strerror or error})"
        folder = os.path.dirname(path)
        if journal and creation_error(folder) is not None:
            return f"{path} is in a folder, {folder}, where SQLite cannot write its journal"
        return None
    folder = os.path.dirname(path)
    while not os.path.lexists(folder):  # MLflow creates missing folders
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        return f"{path} cannot be created: {folder} is not a folder"
    if creation_error(folder) is not None:
        return f"{path} does not exist and its folder {folder} is not writable"
    return None


def creation_error(folder: str) -> Optional[OSError]:
    """Why no file can be created in ``folder`` (tried: an unnamed temporary one,
    which leaves nothing behind), or None when one can."""
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".metanas-probe-"):
            return None
    except OSError as error:
        return error
