import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rais.ids import HostClusterId
from rais.keys import Key, Keyring
from rais.sync import NO_DIGEST, SyncClient, SyncServer, Target, chunk_transfer, split_rows
from rais.tables import Delta, Ledger, Tables
from rais.wire import MAX_DATAGRAM, RowKey, SyncRequest, Transfer, WireError, seal
from rais.wire.messages import MAX_MISSING, MAX_REMOVED
from rais.wire.rows import CpuRow, ServiceRow
from rais.wire.schema import clip

U64 = 2**64 - 1
RING = Keyring((Key(1, bytes(range(32))),))
MASTER = HostClusterId.parse("1.2.0.1")
TOP = HostClusterId(0xFFFFFFFF)
RETRY = 1.0
RESEND = 0.5


def big_service(i, detail="d" * 200):
    name = f"{i:0>64}"
    return ServiceRow(host=TOP, name=name, probe="p" * 64, port=65535, running=True, assigned=True, can_start=True,
                      can_stop=True, state="unknown", result="critical",
                      latency_us=U64, detail=detail, options="o" * 512, changed_ms=U64)


def far_key(i):
    return RowKey("services", 2**32 - 1, f"{i:0>64}")


def assert_fits(chunks):
    for c in chunks:
        assert len(seal(RING, TOP, U64, U64, U64, c)) <= MAX_DATAGRAM


def reassemble(chunks):
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert {c.count for c in chunks} == {len(chunks)}
    rows = [r for c in chunks for r in split_rows(c.rows)]
    removes = [k for c in chunks for k in c.removed]
    return rows, removes


BIG_TRANSFER = Transfer(U64, False, U64 - 1, U64)


@pytest.mark.parametrize("n_rows,n_removes", [(0, 0), (1, 0), (30, 0), (0, 300), (7, 150), (1, 1)])
def test_chunks_of_big_rows_and_many_removes_fit_and_reassemble(n_rows, n_removes):
    rows = tuple(big_service(i) for i in range(n_rows))
    removes = tuple(far_key(i) for i in range(n_removes))
    chunks = chunk_transfer(BIG_TRANSFER, b"\xff" * 16, Delta(rows, removes))
    assert_fits(chunks)
    assert all(len(c.removed) <= MAX_REMOVED for c in chunks)
    assert all(c.rows or c.removed for c in chunks) or len(chunks) == 1
    assert reassemble(chunks) == (list(rows), list(removes))


def test_rows_that_could_not_fit_a_datagram_cannot_be_made():
    # Multi-byte characters would blow the chunk budget: the row refuses them past 200 bytes.
    with pytest.raises(ValueError):
        big_service(0, detail="€" * 140 + "d" * 60)
    row = big_service(0, detail=clip("€" * 140, 200))
    assert len(row.detail.encode()) <= 200
    for rows in [(row,), (row, CpuRow(TOP, 1)), (CpuRow(TOP, 1), row, CpuRow(TOP, 2))]:
        chunks = chunk_transfer(BIG_TRANSFER, bytes(16), Delta(rows, ()))
        assert_fits(chunks)
        assert all(c.rows for c in chunks)
        assert reassemble(chunks)[0] == list(rows)


def test_split_rows_rejects_damage():
    data = big_service(0).der + CpuRow(TOP, 5).der
    assert split_rows(data) == [big_service(0), CpuRow(TOP, 5)]
    assert split_rows(b"") == []
    for bad in (data[:-1], data + b"\x00", data[:1], b"\x30\x83\x00\x00\x01\x00"):
        with pytest.raises(WireError):
            split_rows(bad)


# --- server and client ---


def host(i):
    return HostClusterId(0x0102_0000 | i)


def master_ledger(n=10, term=5):
    ledger = Ledger(Tables.empty())
    for i in range(1, n + 1):
        ledger.stage(CpuRow(host(i), i % 1001))
    ledger.commit(term)
    return ledger


def target(ledger):
    t = ledger.current
    return Target(MASTER, t.term, t.generation, t.digest)


def client_at(tables, ledger):
    client = SyncClient(tables, RETRY)
    client.follow(target(ledger))
    return client


def converged(client, ledger):
    return (client.tables.version == ledger.current.version
            and client.tables.digest == ledger.current.digest
            and dict(client.tables.rows) == dict(ledger.current.rows))


def exchange(client, server, ledger, now):
    """One round without loss; the transfer answered, or None if nothing was asked."""
    request = client.request(now)
    if request is None:
        return None
    chunks = server.answer(ledger, request, now)
    for c in chunks:
        client.receive(c, now)
    return chunks


def test_a_client_with_nothing_gets_a_snapshot():
    ledger = master_ledger()
    client = client_at(Tables.empty(), ledger)
    server = SyncServer(RESEND)
    assert client.behind()
    chunks = exchange(client, server, ledger, 10.0)
    assert chunks and all(c.transfer.snapshot for c in chunks)
    assert converged(client, ledger)
    assert not client.behind()
    assert client.request(100.0) is None


def test_a_client_one_commit_behind_gets_a_delta():
    ledger = master_ledger()
    client = client_at(ledger.current, ledger)
    ledger.stage(CpuRow(host(3), 999))
    ledger.stage_remove(CpuRow(host(4), 0).key)
    ledger.commit(5)
    client.follow(target(ledger))
    chunks = exchange(client, SyncServer(RESEND), ledger, 10.0)
    assert len(chunks) == 1
    assert chunks[0].transfer == Transfer(5, False, 1, 2)
    assert split_rows(chunks[0].rows) == [CpuRow(host(3), 999)]
    assert chunks[0].removed == (CpuRow(host(4), 0).key,)
    assert converged(client, ledger)


def test_a_client_up_to_date_gets_nothing():
    ledger = master_ledger()
    client = client_at(ledger.current, ledger)
    assert client.request(10.0) is None
    request = SyncRequest(MASTER, 5, 1, ledger.current.digest)
    assert SyncServer(RESEND).answer(ledger, request, 10.0) == []


@pytest.mark.parametrize("fork_term", [4, 5], ids=["older-term", "same-term"])
def test_a_client_on_a_fork_gets_a_snapshot(fork_term):
    ledger = master_ledger()
    ledger.stage(CpuRow(host(1), 500))
    ledger.commit(5)  # generation 2
    fork = Tables.of(fork_term, 2, [CpuRow(host(1), 1), CpuRow(host(77), 7)])
    client = client_at(fork, ledger)
    server = SyncServer(RESEND)
    now = 10.0
    for _ in range(5):
        exchange(client, server, ledger, now)
        now += RETRY + RESEND
        if converged(client, ledger):
            break
    assert converged(client, ledger)
    assert client.tables.get(CpuRow(host(77), 0).key) is None


def test_a_client_whose_tables_look_newer_than_the_masters_takes_the_masters():
    """Tables from a master that lost (a partition, a restart) give way to the one followed."""
    ledger = master_ledger(term=7)
    stale = Tables.of(9, 5, [CpuRow(host(1), 1), CpuRow(host(77), 7)])
    client = client_at(stale, ledger)
    assert client.behind()
    chunks = exchange(client, SyncServer(RESEND), ledger, 10.0)
    assert chunks[0].transfer.snapshot
    assert converged(client, ledger)


def test_lost_chunks_are_asked_for_by_index_and_only_they_are_sent():
    ledger = master_ledger(n=400)  # several chunks
    client = client_at(Tables.empty(), ledger)
    server = SyncServer(RESEND)
    first = server.answer(ledger, client.request(0.0), 0.0)
    assert len(first) >= 4
    lost = {1, len(first) - 1}
    for c in first:
        if c.index not in lost:
            client.receive(c, 0.0)
    assert client.request(0.5) is None  # too soon
    request = client.request(0.0 + RETRY + 0.01)
    assert request.transfer == first[0].transfer
    assert set(request.missing) == lost
    again = server.answer(ledger, request, 1.01)
    assert [c.index for c in again] == sorted(lost)
    assert again == [first[i] for i in sorted(lost)]
    for c in reversed(again):
        client.receive(c, 1.02)
    assert converged(client, ledger)


def test_duplicate_and_reordered_chunks_are_harmless():
    ledger = master_ledger(n=400)
    client = client_at(Tables.empty(), ledger)
    chunks = SyncServer(RESEND).answer(ledger, client.request(0.0), 0.0)
    results = [client.receive(c, 0.0) for c in [chunks[0]] * 3 + chunks[::-1] + chunks]
    assert [r is not None for r in results].count(True) == 1
    assert converged(client, ledger)
    assert client.corrupt == 0


def test_chunks_of_an_older_transfer_are_ignored():
    ledger = master_ledger(n=400)
    client = client_at(Tables.empty(), ledger)
    server = SyncServer(RESEND)
    old = server.answer(ledger, client.request(0.0), 0.0)
    client.receive(old[0], 0.0)
    ledger.stage(CpuRow(host(1), 1000))
    ledger.commit(5)
    client.follow(target(ledger))
    new = server.answer(ledger, SyncRequest(MASTER, 0, 0, bytes(16)), 0.1)
    assert new[0].transfer.to_generation == 2
    for c in new[:-1]:
        client.receive(c, 0.2)
    for c in old[1:]:  # would complete the old transfer
        assert client.receive(c, 0.3) is None
    assert client.receive(new[-1], 0.4) is not None
    assert converged(client, ledger)
    for c in old:
        assert client.receive(c, 0.5) is None
    assert converged(client, ledger)


def test_an_identical_fresh_request_is_answered_once_per_resend_interval():
    ledger = master_ledger()
    server = SyncServer(RESEND)
    request = SyncRequest(MASTER, 0, 0, bytes(16))
    assert server.answer(ledger, request, 0.0)
    assert server.answer(ledger, request, 0.4) == []
    assert server.answer(ledger, request, 0.6)
    # A request for missing chunks is always answered.
    chunks = server.answer(ledger, request, 1.5)
    missing = attrs.evolve(request, transfer=chunks[0].transfer, missing=(0,))
    assert server.answer(ledger, missing, 1.5) == chunks[:1]


def test_missing_chunks_of_a_forgotten_transfer_get_a_fresh_answer():
    ledger = master_ledger()
    server = SyncServer(RESEND)
    gone = Transfer(5, False, 7, 9)
    request = SyncRequest(MASTER, 0, 0, bytes(16), gone, (0, 1))
    chunks = server.answer(ledger, request, 0.0)
    assert chunks and chunks[0].transfer == Transfer(5, True, 0, 1)


def test_many_missing_chunks_are_asked_for_in_batches():
    ledger = Ledger(Tables.empty())
    for i in range(MAX_MISSING + 50):  # one row per chunk
        ledger.stage(big_service(i))
    ledger.commit(5)
    client = client_at(Tables.empty(), ledger)
    server = SyncServer(RESEND)
    chunks = server.answer(ledger, client.request(0.0), 0.0)
    assert len(chunks) > MAX_MISSING + 1
    client.receive(chunks[-1], 0.0)
    now = 0.0
    for _ in range(5):
        now += RETRY + 0.01
        request = client.request(now)
        if request is None:
            break
        assert 0 < len(request.missing) <= MAX_MISSING
        for c in server.answer(ledger, request, now):
            client.receive(c, now)
    assert converged(client, ledger)


def test_a_corrupt_transfer_makes_the_client_ask_for_a_snapshot():
    ledger = master_ledger()
    honest = client_at(ledger.current, ledger)
    forked_rows = dict(ledger.current.rows)
    forked_rows[CpuRow(host(2), 0).key] = CpuRow(host(2), 222)
    forked = client_at(Tables.of(5, 1, forked_rows.values()), ledger)
    ledger.stage(CpuRow(host(1), 111))
    ledger.commit(5)
    for c in (honest, forked):
        c.follow(target(ledger))
    server = SyncServer(RESEND)
    delta = server.answer(ledger, honest.request(0.0), 0.0)
    assert not delta[0].transfer.snapshot
    for c in delta:  # multicast: the forked client hears the delta too
        honest.receive(c, 0.0)
        assert forked.receive(c, 0.0) is None
    assert converged(honest, ledger)
    assert forked.corrupt == 1
    assert forked.tables.generation == 1  # unchanged
    request = forked.request(0.0)
    assert request.have_digest == NO_DIGEST
    # A delta for its generation is no longer trusted.
    for c in delta:
        assert forked.receive(c, 0.1) is None
    snapshot = server.answer(ledger, request, 0.1)
    assert snapshot[0].transfer.snapshot
    for c in snapshot:
        forked.receive(c, 0.1)
    assert converged(forked, ledger)
    assert forked.request(5.0) is None


def test_a_tampered_chunk_is_not_applied():
    ledger = master_ledger()
    client = client_at(Tables.empty(), ledger)
    chunks = SyncServer(RESEND).answer(ledger, client.request(0.0), 0.0)
    bad = attrs.evolve(chunks[0], rows=chunks[0].rows[:-1])
    assert client.receive(bad, 0.0) is None
    assert client.tables == Tables.empty()
    assert client.corrupt == 1
    assert client.request(0.0).have_digest == NO_DIGEST


def test_following_a_new_term_drops_the_assembly():
    ledger = master_ledger(n=400)
    client = client_at(Tables.empty(), ledger)
    chunks = SyncServer(RESEND).answer(ledger, client.request(0.0), 0.0)
    client.receive(chunks[0], 0.0)
    client.follow(Target(MASTER, 9, 1, bytes(16)))
    request = client.request(5.0)
    assert request.transfer is None and request.missing == ()
    client.follow(None)
    assert not client.behind()
    assert client.request(10.0) is None


def test_replace_takes_the_tables_and_drops_the_assembly():
    ledger = master_ledger(n=400)
    client = client_at(Tables.empty(), ledger)
    chunks = SyncServer(RESEND).answer(ledger, client.request(0.0), 0.0)
    client.receive(chunks[0], 0.0)
    client.replace(ledger.current)
    assert not client.behind()
    assert client.request(10.0) is None


# --- convergence under loss ---

LOSSY = st.lists(st.tuples(
    st.booleans(),  # commit on the master first
    st.integers(0, 3),  # which change
    st.lists(st.integers(0, 2), max_size=12),  # per chunk: 0 lost, 1 delivered, 2 twice
    st.booleans(),  # reverse the delivery order
), max_size=12)


@given(st.integers(1, 300), LOSSY, st.randoms(use_true_random=False))
def test_the_client_converges_whatever_the_network_did(n, rounds, rnd):
    ledger = master_ledger(n=n)
    server = SyncServer(RESEND)
    client = client_at(Tables.empty(), ledger)
    now = 0.0
    for commit, change, fates, reverse in rounds:
        if commit:
            i = rnd.randrange(1, n + 40)
            if change == 0:
                ledger.stage_remove(CpuRow(host(i), 0).key)
            elif change == 1:
                ledger.commit(ledger.current.term + 1)
            else:
                for j in range(change * 20):
                    ledger.stage(CpuRow(host(1 + (i + j) % 255), rnd.randrange(1001)))
            ledger.commit(ledger.current.term)
            client.follow(target(ledger))
        now += rnd.choice([0.1, RESEND, RETRY + 0.01])
        request = client.request(now)
        if request is None:
            continue
        chunks = server.answer(ledger, request, now)
        delivered = []
        for i, c in enumerate(chunks):
            delivered += [c] * (fates[i] if i < len(fates) else 1)
        if reverse:
            rnd.shuffle(delivered)
        for c in delivered:
            client.receive(c, now)
    # The network heals: the client must get there in a few rounds.
    for _ in range(30):
        if converged(client, ledger):
            break
        now += RETRY + RESEND
        exchange(client, server, ledger, now)
    assert converged(client, ledger)
    assert client.corrupt == 0
