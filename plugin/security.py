"""Keeping credentials out of logs, params and messages."""

from __future__ import annotations

import re

__all__ = ["redact"]

_USERINFO = re.compile(r"(//[^/:@\s]+):[^/@\s]*@")
_SECRET_QUERY = re.compile(
    r"([?&](?:password|passwd|pwd|token|access_token|secret|api_key|apikey|key)=)[^&#\s]*",
    re.IGNORECASE,
)


def redact(url: str) -> str:
    """``url`` (or any text holding URLs) with its credentials replaced by ``***``.

    Covers ``scheme://user:password@host`` and secret query parameters
    (``?password=``, ``?token=``, ...).

    Example:

        >>> redact("postgresql://bob:hunter2@db:5432/mlflow?sslmode=require&token=abc")
        'postgresql://bob:***@db:5432/mlflow?sslmode=require&token=***'
    """
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(r"\1:***@", str(url)))
