"""The manhole's password file: its format, writing an entry, and the checker that logs in.

One entry a line, ``USER:scrypt:N:R:P:SALT-HEX:KEY-HEX``, with ``#`` comments:
the password run through hashlib.scrypt with a random 16-byte salt and the
cost parameters written in the line, so stronger ones can come later without
invalidating old entries. The file is refused, as the cluster key file is,
unless it is a regular file that only its owner may read.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from rais.atomicfile import replace_file
from rais.privatefile import PrivateFileError, read_private_lines

USER = re.compile(r"[A-Za-z0-9_.-]{1,64}")
SALT_BYTES = 16
KEY_BYTES = 32
# scrypt's interactive-login costs (Percival): 16 MiB and some 50 ms a check.
N, R, P = 2**14, 8, 1
MAX_MEMORY = 256 * 2**20  # bytes one check may take: a bigger cost in the file is refused


class PasswdFileError(ValueError):
    """A password file is missing, unreadable, too open or malformed."""


@attrs.frozen
class Entry:
    user: str
    n: int
    r: int
    p: int
    salt: bytes
    key: bytes = attrs.field(repr=False)

    @property
    def line(self) -> str:
        return f"{self.user}:scrypt:{self.n}:{self.r}:{self.p}:{self.salt.hex()}:{self.key.hex()}"

    def matches(self, password: bytes) -> bool:
        # compare_digest: how long the comparison takes says nothing of where the keys differ.
        return hmac.compare_digest(_scrypt(password, self.salt, self.n, self.r, self.p, len(self.key)), self.key)


def _memory(n: int, r: int, p: int) -> int:
    """What OpenSSL's scrypt needs, and checks against maxmem."""
    return 128 * r * (n + p + 2)


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=_memory(n, r, p) + 2**20, dklen=length)


def new_entry(user: str, password: str) -> Entry:
    salt = secrets.token_bytes(SALT_BYTES)
    return Entry(user, N, R, P, salt, _scrypt(password.encode(), salt, N, R, P, KEY_BYTES))


def check_user(user: str) -> None:
    if not USER.fullmatch(user):
        raise PasswdFileError(f"user {user!r}: use 1 to 64 of A-Z a-z 0-9 _ . -")


def _parse_line(fields: list[str]) -> Entry:
    if len(fields) != 7 or fields[1] != "scrypt":
        raise PasswdFileError("expected 'USER:scrypt:N:R:P:SALT-HEX:KEY-HEX' (write one with 'rais manhole-passwd')")
    user, _, *costs, salt_hex, key_hex = fields
    check_user(user)
    if not all(c.isascii() and c.isdigit() for c in costs):
        raise PasswdFileError("N, R and P must be integers")
    n, r, p = map(int, costs)
    if n < 2 or n & (n - 1) or not 1 <= r <= 64 or not 1 <= p <= 64 or _memory(n, r, p) > MAX_MEMORY:
        raise PasswdFileError(f"scrypt costs N={n} R={r} P={p}: N must be a power of 2, R and P 1..64, "
                              f"and a check at most {MAX_MEMORY >> 20} MiB")
    try:
        salt, key = bytes.fromhex(salt_hex), bytes.fromhex(key_hex)
    except ValueError:
        raise PasswdFileError("salt or key is not hexadecimal") from None
    if len(salt) < 8 or len(key) < 16:
        raise PasswdFileError("salt needs 8 bytes or more, the key 16 or more")
    return Entry(user, n, r, p, salt, key)


def parse_entries(lines: Iterable[str]) -> dict[str, Entry]:
    entries: dict[str, Entry] = {}
    for number, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            entry = _parse_line(line.split(":"))
        except PasswdFileError as e:
            raise PasswdFileError(f"line {number}: {e}") from None
        if entry.user in entries:
            raise PasswdFileError(f"line {number}: user {entry.user} appears twice")
        entries[entry.user] = entry
    return entries


def load_entries(path: str) -> dict[str, Entry]:
    """Read a password file, refusing anything but a regular file that only its owner may read;
    a problem with its content names the line. A file with no entry is refused too: nobody
    could log in."""
    try:
        entries = parse_entries(read_private_lines(path, f"add a user with 'rais manhole-passwd {path} USER'"))
    except PrivateFileError as e:
        raise PasswdFileError(str(e)) from None
    except PasswdFileError as e:
        raise PasswdFileError(f"{path}: {e}") from None
    if not entries:
        raise PasswdFileError(f"{path}: holds no user (add one with 'rais manhole-passwd {path} USER')")
    return entries


def set_password(path: str, user: str, password: str) -> bool:
    """Write ``user``'s entry into the file at ``path`` (made mode 0600 if new), replacing the
    user's old one; True if it replaced one. PasswdFileError if the file exists and is bad."""
    check_user(user)
    path = os.path.realpath(path)  # a symlinked file is written where it points, not replaced by a file
    try:
        lines = read_private_lines(path, "")
    except PrivateFileError as e:
        if os.path.lexists(path):
            raise PasswdFileError(str(e)) from None
        lines = ["# RAIS manhole users: 'USER:scrypt:N:R:P:SALT-HEX:KEY-HEX'; write with 'rais manhole-passwd'."]
    else:
        try:
            parse_entries(lines)  # a file already bad is the operator's to fix, not overwritten
        except PasswdFileError as e:
            raise PasswdFileError(f"{path}: {e}") from None
    mine = [i for i, line in enumerate(lines) if line.split("#", 1)[0].strip().split(":", 1)[0] == user]
    entry = new_entry(user, password).line
    if mine:
        lines[mine[0]] = entry
    else:
        while lines and not lines[-1]:  # the final newline's empty "line"
            lines.pop()
        lines.append(entry)
    replace_file(path, ("\n".join(lines).rstrip("\n") + "\n").encode("ascii"))
    return bool(mine)


# A check of an unknown user still costs one scrypt, so timing does not tell which users exist.
_NOBODY = Entry("-", N, R, P, b"\0" * SALT_BYTES, b"\0" * KEY_BYTES)

InThread = Callable[..., Deferred[Any]]  # f, *args -> a Deferred of f(*args) run off the reactor thread


def verify(path: str, user: bytes, password: bytes) -> bool:
    """Whether ``user`` may log in with ``password`` by the file at ``path`` now. Blocking."""
    entries: Mapping[str, Entry] = load_entries(path)
    try:
        name = user.decode("ascii")
    except UnicodeDecodeError:
        name = ""
    entry = entries.get(name)
    matched = (entry or _NOBODY).matches(password)
    return entry is not None and matched


@implementer(ICredentialsChecker)
class PasswdFileChecker:
    """Logs users in by the password file; the file is read and scrypt run in a thread, as a check
    takes some 50 ms of CPU the reactor cannot spare."""

    credentialInterfaces = (IUsernamePassword,)
    log = Logger()

    def __init__(self, path: str, in_thread: InThread) -> None:
        self.path = path
        self.in_thread = in_thread

    def requestAvatarId(self, credentials: Any) -> Deferred[Any]:  # the user's name, as bytes
        user = credentials.username.decode("ascii", "replace")  # for the log only
        d = self.in_thread(verify, self.path, credentials.username, credentials.password)

        def decided(ok: bool) -> bytes:
            if not ok:
                self.log.warn("manhole: login refused for user {user!r}", user=user)
                raise UnauthorizedLogin()
            self.log.info("manhole: user {user!r} logged in", user=user)
            return credentials.username

        def broken(failure: Failure) -> bytes:
            if failure.check(PasswdFileError):
                self.log.error("manhole: login refused: {why}", why=failure.getErrorMessage())
            else:
                self.log.failure("manhole: password check failed", failure)
            raise UnauthorizedLogin()

        return d.addCallbacks(decided, broken)
