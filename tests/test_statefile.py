import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger

from rais.ids import HostClusterId
from rais.statefile import (
    TABLES_FILE,
    StateFileError,
    TableSaver,
    decode_tables,
    encode_tables,
    load_tables,
    save_tables,
)
from rais.tables import Tables
from rais.wire.rows import CpuRow, ServiceRow
from tests.strategies import rows as any_rows

HOST = HostClusterId.parse("1.2.0.1")


def sample(generation=3, n=5):
    rows = [CpuRow(HostClusterId(0x0102_0000 | i), i * 7) for i in range(1, n + 1)]
    rows.append(ServiceRow(host=HOST, name="web", probe="http", port=80, running=True, assigned=True, can_start=False,
                           can_stop=False, state="running", result="ok", latency_us=120,
                           detail="200 OK", options='{"path":"/"}', changed_ms=99))
    return Tables.of(2**40 + 7, generation, rows)


def same(a, b):
    return a.version == b.version and a.digest == b.digest and dict(a.rows) == dict(b.rows)


@given(st.lists(any_rows, max_size=8), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_encode_decode_round_trip(rows, term, generation):
    tables = Tables.of(term, generation, rows)
    data = encode_tables(tables)
    assert same(decode_tables(data), tables)
    assert encode_tables(decode_tables(data)) == data


def test_the_encoding_does_not_depend_on_insertion_order():
    t = sample()
    assert encode_tables(Tables.of(t.term, t.generation, reversed(list(t.rows.values())))) == encode_tables(t)


def test_empty_tables_round_trip():
    assert same(decode_tables(encode_tables(Tables.empty())), Tables.empty())


def test_save_then_load(tmp_path):
    save_tables(str(tmp_path), encode_tables(sample(1)))
    save_tables(str(tmp_path), encode_tables(sample(2)))
    assert same(load_tables(str(tmp_path)), sample(2))
    assert sorted(os.listdir(tmp_path)) == [TABLES_FILE]


def test_a_failed_save_leaves_the_old_file(tmp_path, monkeypatch):
    save_tables(str(tmp_path), encode_tables(sample(1)))

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        save_tables(str(tmp_path), encode_tables(sample(2)))
    monkeypatch.undo()
    assert same(load_tables(str(tmp_path)), sample(1))


def test_save_writes_a_temporary_file_then_renames_it(tmp_path, monkeypatch):
    renames = []
    real = os.replace

    def spy(src, dst):
        renames.append((os.path.basename(src), os.path.basename(dst), open(src, "rb").read()))
        real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    data = encode_tables(sample())
    save_tables(str(tmp_path), data)
    ((temporary, renamed, written),) = renames
    assert temporary.startswith(f".{TABLES_FILE}-") and (renamed, written) == (TABLES_FILE, data)
    assert os.listdir(tmp_path) == [TABLES_FILE]  # nothing left beside it


def test_nothing_saved_is_none(tmp_path):
    assert load_tables(str(tmp_path)) is None


def flip(data, at):
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def damaged_files():
    data = encode_tables(sample())
    tables = sample()
    other_digest = encode_tables(Tables(tables.term, tables.generation, tables.rows, tables.digest_value ^ 1))
    return {
        "truncated": data[:-3],
        "half": data[: len(data) // 2],
        "empty": b"",
        "trailing": data + b"\x00",
        "flipped row byte": flip(data, len(data) - 5),
        "flipped digest byte": flip(data, data.index(tables.digest) + 3),
        "digest mismatch": other_digest,
        "garbage": b"\x30\x03\x02\x01\x00",
    }


@pytest.mark.parametrize("name", sorted(damaged_files()))
def test_a_damaged_file_is_refused_and_moved_aside(tmp_path, name):
    data = damaged_files()[name]
    path = tmp_path / TABLES_FILE
    path.write_bytes(data)
    with pytest.raises(StateFileError):
        load_tables(str(tmp_path))
    assert not path.exists()
    assert (tmp_path / (TABLES_FILE + ".damaged")).read_bytes() == data
    assert load_tables(str(tmp_path)) is None


@given(st.data())
def test_any_flipped_bit_in_the_rows_or_digest_is_caught(data):
    raw = encode_tables(sample())
    start = raw.index(sample().digest)
    at = data.draw(st.integers(start, len(raw) - 1))
    bit = data.draw(st.integers(0, 7))
    bad = raw[:at] + bytes([raw[at] ^ (1 << bit)]) + raw[at + 1:]
    with pytest.raises(StateFileError):
        decode_tables(bad)


# --- the saver ---


class FakeLog:
    def __init__(self):
        self.failures = []

    def failure(self, fmt, failure=None, **kwargs):
        self.failures.append((fmt, failure, kwargs))


class Threads:
    """A run_in_thread whose calls wait until the test fires them."""

    def __init__(self):
        self.calls = []

    def __call__(self, f, *args):
        d = Deferred()
        self.calls.append((f, args, d))
        return d

    def finish(self, index=0):
        f, args, d = self.calls.pop(index)
        try:
            result = f(*args)
        except Exception as e:
            d.errback(e)
        else:
            d.callback(result)


def synchronous(f, *args):
    return succeed(f(*args))


def test_the_saver_saves_the_tables(tmp_path):
    saver = TableSaver(str(tmp_path), synchronous, FakeLog())
    saver.save(sample(1))
    saver.save(sample(2))
    assert same(load_tables(str(tmp_path)), sample(2))
    assert same(saver.saved, sample(2))
    flushed = []
    saver.flush().addCallback(flushed.append)
    assert flushed == [None]


def test_tables_changed_during_a_write_are_saved_after_it_skipping_between(tmp_path):
    threads = Threads()
    log = FakeLog()
    saver = TableSaver(str(tmp_path), threads, log)
    saver.save(sample(1))
    for generation in (2, 3, 4):
        saver.save(sample(generation))
    assert len(threads.calls) == 1  # one write at a time
    flushed = []
    saver.flush().addCallback(flushed.append)
    threads.finish()
    assert same(load_tables(str(tmp_path)), sample(1))
    assert flushed == []
    assert len(threads.calls) == 1
    assert threads.calls[0][1][1] == sample(4)  # 2 and 3 skipped
    threads.finish()
    assert flushed == [None]
    assert threads.calls == []
    assert same(load_tables(str(tmp_path)), sample(4))
    assert same(saver.saved, sample(4))
    assert log.failures == []


def test_flush_with_nothing_to_write_fires_at_once(tmp_path):
    flushed = []
    TableSaver(str(tmp_path), Threads(), FakeLog()).flush().addCallback(flushed.append)
    assert flushed == [None]


def test_every_flush_waiting_fires_once_all_is_written(tmp_path):
    threads = Threads()
    saver = TableSaver(str(tmp_path), threads, FakeLog())
    saver.save(sample(1))
    fired = []
    saver.flush().addCallback(lambda _: fired.append("a"))
    saver.save(sample(2))
    saver.flush().addCallback(lambda _: fired.append("b"))
    threads.finish()
    assert fired == []
    threads.finish()
    assert sorted(fired) == ["a", "b"]


def test_a_failing_write_is_logged_and_the_next_one_still_happens(tmp_path):
    threads = Threads()
    log = FakeLog()
    missing = tmp_path / "gone"
    saver = TableSaver(str(missing), threads, log)
    saver.save(sample(1))
    saver.save(sample(2))
    flushed = []
    saver.flush().addCallback(flushed.append)
    threads.finish()  # no such directory
    assert len(log.failures) == 1
    assert log.failures[0][1].check(OSError)
    assert saver.saved is None
    missing.mkdir()
    threads.finish()
    assert flushed == [None]
    assert same(saver.saved, sample(2))
    assert len(log.failures) == 1


def test_a_failure_goes_to_a_real_logger(tmp_path):
    events = []
    saver = TableSaver(str(tmp_path), lambda f, *a: fail(OSError("no space")), Logger(observer=events.append))
    saver.save(sample(1))
    assert len(events) == 1
    assert events[0]["log_failure"].check(OSError)
    assert events[0]["dir"] == str(tmp_path)
    assert saver.saved is None
    flushed = []
    saver.flush().addCallback(flushed.append)
    assert flushed == [None]


def test_a_flipped_bit_in_the_version_is_caught():
    raw = encode_tables(sample())
    generation_byte = raw.index(sample().digest) - 3  # ...generation INTEGER(3), digest tag, length
    assert raw[generation_byte] == 3
    with pytest.raises(StateFileError):
        decode_tables(flip(raw, generation_byte))
