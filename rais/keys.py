"""Cluster keys: the key file format, the keyring and key generation.

A key file holds one key per line, ``KEY-ID HEX-SECRET``, with ``#`` comments.
The first key signs; every key verifies. To rotate without downtime, add the
new key second on every host, then move it first everywhere, then drop the old.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable

import attrs

from rais.privatefile import PrivateFileError, read_private_lines

MIN_SECRET = 16  # bytes: HMAC-SHA256 keys shorter than the 128-bit tag add nothing
KEY_BYTES = 32
MAX_KEY_ID = 0xFFFF


class KeyFileError(ValueError):
    """A key file is missing, unreadable, too open or malformed."""


@attrs.frozen
class Key:
    id: int
    secret: bytes = attrs.field(repr=False)


@attrs.frozen
class Keyring:
    """The keys of one cluster: ``signing`` signs, all of ``keys`` verify."""

    keys: tuple[Key, ...]

    def __attrs_post_init__(self) -> None:
        if not self.keys:
            raise KeyFileError("no keys")
        ids = [k.id for k in self.keys]
        if len(set(ids)) != len(ids):
            raise KeyFileError("duplicate key id")

    @property
    def signing(self) -> Key:
        return self.keys[0]

    def find(self, key_id: int) -> Key | None:
        for key in self.keys:
            if key.id == key_id:
                return key
        return None


def parse_keys(lines: Iterable[str]) -> Keyring:
    keys = []
    seen: set[int] = set()
    for number, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 2:
            raise KeyFileError(f"line {number}: expected 'KEY-ID HEX-SECRET'")
        key_id, hexed = fields
        if not (key_id.isascii() and key_id.isdigit()) or not 0 <= int(key_id) <= MAX_KEY_ID:
            raise KeyFileError(f"line {number}: key id {key_id!r} must be 0..{MAX_KEY_ID}")
        try:
            secret = bytes.fromhex(hexed)
        except ValueError:
            raise KeyFileError(f"line {number}: secret is not hexadecimal") from None
        if len(secret) < MIN_SECRET:
            raise KeyFileError(f"line {number}: secret has {len(secret)} bytes, needs {MIN_SECRET} or more")
        if int(key_id) in seen:
            raise KeyFileError(f"line {number}: key id {key_id} appears twice")
        seen.add(int(key_id))
        keys.append(Key(int(key_id), secret))
    if not keys:
        raise KeyFileError("holds no key")
    return Keyring(tuple(keys))


def load_keyring(path: str) -> Keyring:
    """Read a key file, refusing anything but a regular file that only its owner may read (as ssh
    does); a problem with its content names the line."""
    try:
        lines = read_private_lines(path, f"create one with 'rais keygen {path}'")
    except PrivateFileError as e:
        raise KeyFileError(str(e)) from None
    try:
        return parse_keys(lines)
    except KeyFileError as e:
        raise KeyFileError(f"{path}: {e}") from None


def new_key_line(key_id: int = 1) -> str:
    return f"{key_id} {secrets.token_hex(KEY_BYTES)}\n"


def write_new_key_file(path: str, key_id: int = 1) -> None:
    """Create ``path`` holding one new random key, mode 0600, never overwriting."""
    # O_EXCL: overwriting a cluster key by accident would cut this host off.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write("# RAIS cluster key file: 'KEY-ID HEX-SECRET' per line; the first key signs.\n")
        f.write(new_key_line(key_id))
