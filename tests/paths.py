"""Test helpers for paths: a file or folder made read-only for the duration of a block."""

import contextlib
import os
import subprocess

import pytest


@contextlib.contextmanager
def read_only(path):
    """``path`` (a file or folder) read-only while in the block, to root too (``chattr +i``)."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("cannot make a path read-only to root here (chattr +i)")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
