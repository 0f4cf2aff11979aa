"""Atomic JSON writes for a search's state files.

keras-tuner writes ``oracle.json``, ``trial.json`` and ``tuner0.json`` by
opening the file for writing and writing into it, so a process killed in the
middle leaves an empty or truncated file and the search cannot be resumed.
metanas writes a sibling temporary file and renames it over the old one: a
rename within one directory is atomic on POSIX and Windows, so a reader (or a
restarted search) sees the old state or the new one, never half of it.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, Callable, Optional

__all__ = ["save_json_atomically"]


def save_json_atomically(
    path: str, obj: Any, *, default: Optional[Callable[[Any], Any]] = None
) -> str:
    """Writes ``obj`` as JSON to ``path`` so that a crash never truncates it.

    Remote paths (``gs://...``) are written by keras-tuner as before: object
    stores replace whole objects, so they are atomic already.

    Args:
        path: The JSON file to (over)write.
        obj: A JSON-serialisable object.
        default: As for `json.dumps`: turns what JSON cannot hold into what it can.

    Returns:
        The JSON text written, like ``keras_tuner``'s ``utils.save_json``.
    """
    path = str(path)
    text = json.dumps(obj, default=default)
    if "://" in path:
        from keras_tuner.src.backend import io  # imports TensorFlow

        with io.File(path, "w") as handle:
            handle.write(text)
        return text
    # Unique per process and thread: the chief saves from gRPC threads too.
    temporary = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return text
