"""Replacing a file so that a crash, or a power cut, leaves the old file or the new one, whole."""

from __future__ import annotations

import os
import tempfile


def replace_file(path: str, data: bytes) -> None:
    """Write ``data`` to a new file beside ``path`` (mode 0600), make it durable, rename it over
    ``path``, and make the rename durable: a boot epoch, the tables, a password file."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
