"""Files that hold secrets (the cluster key file, the manhole's password file): read only if they
are regular files that no one but their owner may read, as ssh does with its keys."""

from __future__ import annotations

import os
import stat


class PrivateFileError(Exception):
    """The file is missing, unreadable, open to others, or not ASCII text; the message names it."""


def read_private_lines(path: str, missing: str) -> list[str]:
    """The file's lines, split at \\n only (so the numbers are those an editor shows); ``missing``
    says how to make the file when there is none."""
    try:
        data = _read(path)
    except FileNotFoundError:
        raise PrivateFileError(f"{path}: no such file ({missing})") from None
    except OSError as e:
        raise PrivateFileError(f"{path}: {e.strerror}") from None
    try:
        return data.decode("ascii").split("\n")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise PrivateFileError(f"{path}: line {line}: not ASCII text (byte {data[e.start]:#04x})") from None


def _read(path: str) -> bytes:
    # O_NONBLOCK: opening a FIFO for reading would wait for a writer; it is refused below instead.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise PrivateFileError(f"{path} is not a regular file")
        if mode & 0o077:
            raise PrivateFileError(f"{path} is readable by others (mode {stat.S_IMODE(mode):04o}); chmod 600 it")
        with open(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)
