from hypothesis import given
from hypothesis import strategies as st

from rais.ids import HostClusterId
from rais.tables import Ledger, Tables
from rais.wire import RowKey
from rais.wire.rows import CpuRow, PolicyRow, ServiceRow
from tests.strategies import rows as any_rows

HOSTS = [HostClusterId.parse(f"1.2.0.{i}") for i in range(1, 4)]


def service(host, name, detail="", result="none"):
    return ServiceRow(host=host, name=name, probe="tcp", port=80, running=True, assigned=True, can_start=False,
                      can_stop=False, state="running", result=result, latency_us=None,
                      detail=detail, options="{}", changed_ms=0)


# Rows drawn from a small key space, so upserts overwrite and removes hit.
small_rows = st.one_of(
    st.builds(CpuRow, st.sampled_from(HOSTS), st.integers(0, 1000)),
    st.builds(service, st.sampled_from(HOSTS), st.sampled_from(["a", "b"]), st.sampled_from(["", "x"])),
    st.builds(PolicyRow, st.sampled_from(["p", "q"]), st.integers(1, 3), st.none(), st.none()),
)
some_rows = st.one_of(small_rows, any_rows)
keys = st.one_of(st.builds(lambda r: r.key, small_rows), st.builds(lambda r: r.key, any_rows))
steps = st.lists(st.tuples(st.lists(some_rows, max_size=4), st.lists(keys, max_size=3)), max_size=8)


def apply_naively(rows, upserts, removes):
    rows = dict(rows)
    for key in removes:
        rows.pop(key, None)
    for row in upserts:
        rows[row.key] = row
    return rows


def same(a, b):
    return a.version == b.version and a.digest == b.digest and dict(a.rows) == dict(b.rows)


@given(steps)
def test_incremental_digest_matches_a_fresh_one(steps):
    tables = Tables.empty()
    expected = {}
    for generation, (upserts, removes) in enumerate(steps, 1):
        tables = tables.changed(upserts, removes, 7, generation)
        expected = apply_naively(expected, upserts, removes)
        fresh = Tables.of(7, generation, expected.values())
        assert dict(tables.rows) == expected
        assert tables.digest == fresh.digest
        assert len(tables.digest) == 16


def test_digest_ignores_order_and_depends_on_rows():
    a, b = CpuRow(HOSTS[0], 1), CpuRow(HOSTS[1], 2)
    assert Tables.of(1, 1, [a, b]).digest == Tables.of(1, 1, [b, a]).digest
    assert Tables.of(1, 1, [a, b]).digest != Tables.of(1, 1, [a]).digest
    assert Tables.of(1, 1, [a]).digest != Tables.of(1, 1, [CpuRow(HOSTS[0], 3)]).digest
    assert Tables.empty().digest == bytes(16)
    removed = Tables.of(1, 1, [a, b]).changed([], [b.key], 1, 2)
    assert removed.digest == Tables.of(1, 2, [a]).digest


def test_changed_leaves_the_original_alone():
    t = Tables.of(1, 1, [CpuRow(HOSTS[0], 1)])
    t.changed([CpuRow(HOSTS[0], 2)], [], 1, 2)
    assert t.get(CpuRow(HOSTS[0], 0).key) == CpuRow(HOSTS[0], 1)
    assert t.generation == 1


def test_version_orders_by_term_then_generation():
    assert Tables.of(2, 1, []).version > Tables.of(1, 99, []).version
    assert Tables.of(2, 5, []).version > Tables.of(2, 4, []).version
    assert Tables.empty().version == (0, 0)


def test_table_lists_one_table_in_key_order():
    rows = [service(HOSTS[1], "b"), service(HOSTS[0], "z"), service(HOSTS[0], "a"), CpuRow(HOSTS[0], 5)]
    t = Tables.of(1, 1, rows)
    assert [(r.host, r.name) for r in t.table("services")] == [
        (HOSTS[0], "a"), (HOSTS[0], "z"), (HOSTS[1], "b")]
    assert t.table("cpu") == (CpuRow(HOSTS[0], 5),)
    assert t.table("cpu") is t.table("cpu")  # indexed once per snapshot
    assert t.table("policy") == ()


# --- the ledger ---


def test_commit_of_nothing_is_none():
    ledger = Ledger(Tables.empty())
    assert ledger.commit(0) is None
    row = CpuRow(HOSTS[0], 1)
    ledger.stage(row)
    first = ledger.commit(0)
    assert first.generation == 1
    ledger.stage(row)  # the same again
    ledger.stage_remove(CpuRow(HOSTS[1], 0).key)  # not there
    assert ledger.commit(0) is None
    assert ledger.current is first


def test_commit_bumps_the_generation_by_one():
    ledger = Ledger(Tables.of(3, 10, [CpuRow(HOSTS[0], 1)]))
    for value in range(2, 6):
        ledger.stage(CpuRow(HOSTS[0], value))
        t = ledger.commit(3)
        assert t.version == (3, 10 + value - 1)
        assert t is ledger.current


def test_a_new_term_commits_even_without_row_changes():
    base = Tables.of(3, 4, [CpuRow(HOSTS[0], 1)])
    ledger = Ledger(base)
    t = ledger.commit(9)
    assert t.version == (9, 5)
    assert t.digest == base.digest
    assert ledger.commit(9) is None
    assert ledger.delta_since(4, base.digest).upserts == ()


def test_view_shows_staged_rows_and_removes():
    a, b = CpuRow(HOSTS[0], 1), CpuRow(HOSTS[1], 2)
    ledger = Ledger(Tables.of(1, 1, [a]))
    assert ledger.view(a.key) == a
    assert ledger.view(b.key) is None
    ledger.stage(b)
    ledger.stage_remove(a.key)
    assert ledger.view(b.key) == b
    assert ledger.view(a.key) is None
    assert ledger.current.get(a.key) == a  # not yet committed
    ledger.commit(1)
    assert ledger.view(b.key) == b and ledger.view(a.key) is None


def test_stage_then_remove_of_a_new_row_commits_nothing():
    ledger = Ledger(Tables.empty())
    row = CpuRow(HOSTS[0], 1)
    ledger.stage(row)
    ledger.stage_remove(row.key)
    assert ledger.commit(0) is None


def apply_delta(tables, delta, current):
    return tables.changed(delta.upserts, delta.removes, current.term, current.generation)


@given(st.lists(steps, min_size=1, max_size=5), st.data())
def test_delta_since_any_kept_generation_rebuilds_the_current_tables(commits, data):
    ledger = Ledger(Tables.empty())
    seen = [ledger.current]
    for term, batch in enumerate(commits, 1):
        for upserts, removes in batch:
            for row in upserts:
                ledger.stage(row)
            for key in removes:
                ledger.stage_remove(key)
            t = ledger.commit(term)
            if t is not None:
                seen.append(t)
    current = ledger.current
    old = data.draw(st.sampled_from(seen))
    delta = ledger.delta_since(old.generation, old.digest)
    assert delta is not None
    assert not set(r.key for r in delta.upserts) & set(delta.removes)
    rebuilt = apply_delta(old, delta, current)
    assert same(rebuilt, current)
    assert rebuilt.digest == Tables.of(0, 0, current.rows.values()).digest


def test_delta_holds_only_what_changed():
    rows = [CpuRow(h, 1) for h in HOSTS]
    ledger = Ledger(Tables.of(1, 1, rows))
    ledger.stage(CpuRow(HOSTS[0], 2))
    ledger.commit(1)
    ledger.stage_remove(rows[1].key)
    ledger.commit(1)
    ledger.stage(CpuRow(HOSTS[0], 3))
    ledger.commit(1)
    delta = ledger.delta_since(1, Tables.of(1, 1, rows).digest)
    assert delta.upserts == (CpuRow(HOSTS[0], 3),)
    assert delta.removes == (rows[1].key,)
    assert ledger.delta_since(3, ledger.current.changed([], [], 1, 3).digest) is None  # gen 3 had row 0 = 2
    assert ledger.delta_since(4, ledger.current.digest) == type(delta)((), ())


def test_delta_refused_for_an_unknown_generation_or_a_wrong_digest():
    ledger = Ledger(Tables.of(1, 5, [CpuRow(HOSTS[0], 1)]))
    ledger.stage(CpuRow(HOSTS[0], 2))
    ledger.commit(1)
    assert ledger.delta_since(4, Tables.empty().digest) is None  # before the ledger began
    assert ledger.delta_since(7, ledger.current.digest) is None  # the future
    assert ledger.delta_since(5, bytes(16)) is None
    assert ledger.delta_since(6, Tables.of(1, 5, [CpuRow(HOSTS[0], 1)]).digest) is None
    assert ledger.delta_since(5, Tables.of(1, 5, [CpuRow(HOSTS[0], 1)]).digest) is not None


def test_delta_refused_once_the_generation_is_pruned():
    base = Tables.empty()
    ledger = Ledger(base, history=3)
    seen = [base]
    for value in range(1, 7):
        ledger.stage(CpuRow(HOSTS[0], value))
        ledger.stage(CpuRow(HOSTS[value % 3], value))
        seen.append(ledger.commit(1))
    current = ledger.current
    for old in seen:
        delta = ledger.delta_since(old.generation, old.digest)
        if old.generation < current.generation - 3:
            assert delta is None, old.generation
        else:
            assert delta is not None, old.generation
            assert same(apply_delta(old, delta, current), current)


def test_a_row_key_is_table_host_and_name():
    assert service(HOSTS[0], "a").key == RowKey("services", HOSTS[0].value, "a")
    assert CpuRow(HOSTS[0], 1).key == RowKey("cpu", HOSTS[0].value, "")
    assert PolicyRow("p", 1, None, None).key == RowKey("policy", 0, "p")
