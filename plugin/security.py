"""Storage URLs: keeping their credentials out of logs, params and messages, and
finding a SQLite URL's database file."""

from __future__ import annotations

import os
import re
import tempfile
from typing import Optional

__all__ = ["can_create_in", "redact", "sqlite_file"]

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


def can_create_in(folder: str) -> bool:
    """Whether a file can be created in ``folder`` (tried: an unnamed temporary one).

    Tried, not asked (`os.access`): root passes that test on a read-only mount.
    """
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".metanas-probe-"):
            return True
    except OSError:
        return False
