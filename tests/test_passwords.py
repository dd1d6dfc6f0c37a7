"""Tests for rais.passwords: the manhole's password file, `rais manhole-passwd`, and the checker."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import maybeDeferred

from rais.cli import main
from rais.passwords import N, P, PasswdFileChecker, PasswdFileError, R, load_entries, set_password, verify


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_is_private_and_holds_a_salted_scrypt_line(tmp_path: Path) -> None:
    path = tmp_path / "manhole.passwd"
    assert set_password(str(path), "ops", "s3cret") is False
    assert mode(path) == 0o600
    (line,) = [x for x in path.read_text().splitlines() if not x.startswith("#")]
    user, kind, n, r, p, salt, key = line.split(":")
    assert (user, kind, int(n), int(r), int(p)) == ("ops", "scrypt", N, R, P)
    assert len(bytes.fromhex(salt)) == 16 and len(bytes.fromhex(key)) == 32
    assert "s3cret" not in path.read_text()


def test_same_password_two_users_two_salts(tmp_path: Path) -> None:
    path = str(tmp_path / "p")
    set_password(path, "a", "same")
    set_password(path, "b", "same")
    entries = load_entries(path)
    assert entries["a"].salt != entries["b"].salt and entries["a"].key != entries["b"].key


def test_replacing_a_password_keeps_the_other_users_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "p"
    set_password(str(path), "a", "one")
    set_password(str(path), "b", "two")
    before = path.read_text().splitlines()
    assert set_password(str(path), "a", "three") is True
    after = path.read_text().splitlines()
    assert len(after) == len(before) and after[0] == before[0] and after[2] == before[2]
    assert verify(str(path), b"a", b"three") and not verify(str(path), b"a", b"one")
    assert verify(str(path), b"b", b"two")
    assert mode(path) == 0o600


def test_verify_refuses_wrong_password_unknown_user_and_bad_names(tmp_path: Path) -> None:
    path = str(tmp_path / "p")
    set_password(path, "ops", "s3cret")
    assert verify(path, b"ops", b"s3cret")
    assert not verify(path, b"ops", b"s3cret ")
    assert not verify(path, b"nobody", b"s3cret")
    assert not verify(path, b"\xff", b"s3cret")


@pytest.mark.parametrize(("text", "message"), [
    ("", "holds no user"),
    ("# only a comment\n", "holds no user"),
    ("ops:s3cret\n", "line 1: expected 'USER:scrypt:N:R:P:SALT-HEX:KEY-HEX'"),
    ("ops:md5:1:1:1:00:00\n", "line 1: expected 'USER:scrypt:"),
    ("o p:scrypt:16384:8:1:" + "00" * 16 + ":" + "00" * 32 + "\n", "line 1: user 'o p': use 1 to 64"),
    ("ops:scrypt:1000:8:1:" + "00" * 16 + ":" + "00" * 32 + "\n", "line 1: scrypt costs N=1000 R=8 P=1"),
    ("ops:scrypt:1048576:8:1:" + "00" * 16 + ":" + "00" * 32 + "\n", "a check at most 256 MiB"),
    ("ops:scrypt:x:8:1:" + "00" * 16 + ":" + "00" * 32 + "\n", "line 1: N, R and P must be integers"),
    ("\nops:scrypt:16384:8:1:zz:" + "00" * 32 + "\n", "line 2: salt or key is not hexadecimal"),
    ("ops:scrypt:16384:8:1:00:" + "00" * 32 + "\n", "line 1: salt needs 8 bytes or more"),
    ("é\n", "line 1: not ASCII text (byte 0xc3)"),
])
def test_malformed_files_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p"
    path.write_bytes(text.encode())
    path.chmod(0o600)
    with pytest.raises(PasswdFileError, match="^" + str(path).replace(".", r"\.") + ": ") as info:
        load_entries(str(path))
    assert message in str(info.value)


def test_a_user_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p"
    set_password(str(path), "ops", "x")
    path.write_text(path.read_text() + path.read_text().splitlines()[-1] + "\n")
    with pytest.raises(PasswdFileError, match="line 3: user ops appears twice"):
        load_entries(str(path))


@pytest.mark.parametrize("bits", [0o640, 0o604, 0o660])
def test_a_file_others_may_read_is_refused_as_the_key_file_is(tmp_path: Path, bits: int) -> None:
    path = tmp_path / "p"
    set_password(str(path), "ops", "x")
    path.chmod(bits)
    with pytest.raises(PasswdFileError) as info:
        load_entries(str(path))
    assert str(info.value) == f"{path} is readable by others (mode {bits:04o}); chmod 600 it"
    with pytest.raises(PasswdFileError):  # nor is it rewritten, with its secrets still open
        set_password(str(path), "ops", "y")


def test_missing_file_and_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(PasswdFileError, match=r"no such file \(add a user with 'rais manhole-passwd "):
        load_entries(str(tmp_path / "absent"))
    os.mkfifo(tmp_path / "fifo", 0o600)
    with pytest.raises(PasswdFileError, match="is not a regular file"):
        load_entries(str(tmp_path / "fifo"))


# --- the checker -----------------------------------------------------------


def login(checker: PasswdFileChecker, user: bytes, password: bytes) -> object:
    outcome: list[object] = []
    checker.requestAvatarId(UsernamePassword(user, password)).addBoth(outcome.append)
    return outcome[0]


def test_checker_logs_in_by_the_file_read_at_each_login(tmp_path: Path) -> None:
    path = str(tmp_path / "p")
    set_password(path, "ops", "s3cret")
    # In the daemon, in_thread runs verify in the reactor's thread pool; here, in place.
    checker = PasswdFileChecker(path, maybeDeferred)
    assert login(checker, b"ops", b"s3cret") == b"ops"
    assert login(checker, b"ops", b"wrong").check(UnauthorizedLogin)
    assert login(checker, b"eve", b"s3cret").check(UnauthorizedLogin)
    set_password(path, "eve", "hers")  # no restart needed
    assert login(checker, b"eve", b"hers") == b"eve"
    os.chmod(path, 0o644)  # a file opened up since is refused for everyone
    assert login(checker, b"ops", b"s3cret").check(UnauthorizedLogin)


# --- rais manhole-passwd ---------------------------------------------------


def test_cli_reads_the_password_from_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p"
    monkeypatch.setattr("sys.stdin", io.StringIO("pass word\n"))
    assert main(["manhole-passwd", str(path), "ops", "--stdin"]) == 0
    assert capsys.readouterr().out == f"{path}: added ops (mode 0600)\n"
    assert verify(str(path), b"ops", b"pass word")
    monkeypatch.setattr("sys.stdin", io.StringIO("other\n"))
    assert main(["manhole-passwd", str(path), "ops", "--stdin"]) == 0
    assert capsys.readouterr().out == f"{path}: new password for ops (mode 0600)\n"
    assert verify(str(path), b"ops", b"other")


def test_cli_asks_twice_on_the_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p"
    answers = iter(["one", "two"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    assert main(["manhole-passwd", str(path), "ops"]) == 2
    assert capsys.readouterr().err == "rais manhole-passwd: the passwords differ; nothing written\n"
    assert not path.exists()


@pytest.mark.parametrize(("user", "stdin", "message"), [
    ("ops", "\n", "rais manhole-passwd: empty password; nothing written"),
    ("o:ps", "x\n", "rais manhole-passwd: user 'o:ps': use 1 to 64 of A-Z a-z 0-9 _ . -"),
])
def test_cli_refuses_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str], user: str, stdin: str, message: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert main(["manhole-passwd", str(tmp_path / "p"), user, "--stdin"]) == 2
    assert capsys.readouterr().err == message + "\n"
