import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rais.catalogue import (
    CatalogueAssembler,
    catalogue_messages,
    declarations,
    digest_of,
    options_json,
    service_rows,
)
from rais.config import Command, ServiceConfig
from rais.ids import HostClusterId
from rais.wire import Catalogue, RowKey, ServiceDecl, encode_message
from rais.wire.messages import Checks
from rais.wire.rows import ServiceRow

HOST = HostClusterId.parse("1.2.0.5")
OTHER = HostClusterId.parse("1.2.0.6")
START = Command(("/bin/true",))


def config(name, probe="tcp", port=80, running=True, start=None, stop=None, **options):
    return ServiceConfig(name, probe, port, running, start, stop, 5.0, options)


def test_declarations_are_sorted_by_name_and_carry_the_declared_fields():
    services = {
        "web": config("web", "http", 8080, True, START, None, path="/health", expect=200),
        "db": config("db", "tcp", None, False, None, START),
    }
    assert declarations(services) == (
        ServiceDecl("db", "tcp", 0, False, False, True, "{}"),
        ServiceDecl("web", "http", 8080, True, True, False, '{"expect":200,"path":"/health"}'),
    )
    assert declarations({}) == ()


def test_options_are_canonical_ascii_json():
    assert options_json({"b": 1, "a": "é"}) == '{"a":"\\u00e9","b":1}'
    assert options_json({"b": 1, "a": 2}) == options_json({"a": 2, "b": 1})


def test_options_too_long_name_the_service():
    ok = config("fits", pad="x" * (512 - len('{"pad":""}')))
    assert len(declarations({"fits": ok})[0].options) == 512
    long = config("big", pad="x" * (513 - len('{"pad":""}')))
    with pytest.raises(ValueError, match=r"services\.big\b"):
        declarations({"fits": ok, "big": long})


DECL = ServiceDecl("web", "http", 80, True, True, False, '{"a":1}')


def test_digest_of_is_stable_and_sees_every_field():
    assert digest_of([DECL]) == digest_of((DECL,))
    assert len(digest_of([DECL])) == 8
    changes = dict(name="www", probe="tcp", port=81, running=False, can_start=False, can_stop=True,
                   options='{"a":2}', checks=Checks(1000, 0, 0, 0), address="10.0.0.9", exclusive=True,
                   can_refresh=True)
    assert set(changes) == {f.name for f in attrs.fields(ServiceDecl)}
    seen = {digest_of([DECL])}
    for field, value in changes.items():
        seen.add(digest_of([attrs.evolve(DECL, **{field: value})]))
    assert len(seen) == len(changes) + 1
    other = attrs.evolve(DECL, name="zzz")
    assert digest_of([DECL, other]) != digest_of([other, DECL])
    assert digest_of([DECL, other]) != digest_of([DECL])
    assert digest_of([]) != digest_of([DECL])


def many(n, options_size=500):
    return tuple(
        ServiceDecl(f"s{i:03}" + "n" * 58, "p" * 64, 65535, True, True, True,
                    '"' + "o" * (options_size - 2) + '"')
        for i in range(n)
    )


@pytest.mark.parametrize("decls", [(), (DECL,), many(1), many(7), many(200, 10), many(100),
                                   many(12, 342), many(12, 200), many(12, 512)])
def test_catalogue_chunks_fit_and_reassemble(decls):
    messages = catalogue_messages(decls)
    assert {m.count for m in messages} == {len(messages)}
    assert [m.index for m in messages] == list(range(len(messages)))
    assert {m.digest for m in messages} == {digest_of(decls)}
    for m in messages:
        assert len(encode_message(m)) <= 1300
    assert tuple(d for m in messages for d in m.services) == decls
    got = None
    assembler = CatalogueAssembler()
    for m in messages:
        got = assembler.receive(HOST, m)
    assert got == (digest_of(decls), decls)


@given(st.integers(0, 40), st.randoms(use_true_random=False), st.data())
def test_chunks_reassemble_in_any_order_with_duplicates(n, rnd, data):
    decls = many(n, options_size=data.draw(st.sampled_from([2, 100, 512])))
    messages = catalogue_messages(decls)
    stream = messages + data.draw(st.lists(st.sampled_from(messages), max_size=5))
    rnd.shuffle(stream)
    assembler = CatalogueAssembler()
    results = [r for m in stream if (r := assembler.receive(HOST, m)) is not None]
    assert results and all(r == (digest_of(decls), decls) for r in results)


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 10)), max_size=40))
def test_mixed_chunks_of_two_catalogues_never_give_a_wrong_result(picks):
    one, two = many(20, 300), many(15, 400)[3:]
    streams = {False: catalogue_messages(one), True: catalogue_messages(two)}
    good = {digest_of(one): one, digest_of(two): two}
    assembler = CatalogueAssembler()
    for which, index in picks:
        chunks = streams[which]
        result = assembler.receive(HOST, chunks[index % len(chunks)])
        if result is not None:
            digest, decls = result
            assert good[digest] == decls


def test_hosts_are_assembled_apart():
    messages = catalogue_messages(many(10))
    assert len(messages) > 1
    assembler = CatalogueAssembler()
    assert assembler.receive(HOST, messages[0]) is None
    assert assembler.receive(OTHER, messages[1]) is None
    for m in messages[1:-1]:
        assert assembler.receive(HOST, m) is None
    assert assembler.receive(HOST, messages[-1]) == (messages[0].digest, many(10))


def test_a_chunk_whose_index_is_past_its_count_is_ignored():
    messages = catalogue_messages(many(10))
    assembler = CatalogueAssembler()
    bogus = attrs.evolve(messages[0], index=len(messages))
    for m in [bogus] + messages[:-1]:
        assert assembler.receive(HOST, m) is None
    assert assembler.receive(HOST, messages[-1]) == (messages[0].digest, many(10))


def test_a_chunk_with_a_forged_digest_is_not_accepted():
    decls = many(3, 10)
    forged = Catalogue(digest_of(many(4, 10)), 0, 1, decls)
    assert CatalogueAssembler().receive(HOST, forged) is None


# --- rows ---


def existing_row(name, **changes):
    row = ServiceRow(host=HOST, name=name, probe="tcp", port=80, running=True, assigned=True, can_start=True,
                     can_stop=False, state="failed", result="critical", latency_us=1234,
                     detail="connection refused", options='{"a":1}', changed_ms=1000)
    return attrs.evolve(row, **changes)


def test_new_services_get_fresh_rows():
    decl = ServiceDecl("web", "http", 8080, True, True, False, '{"path":"/"}')
    rows, removes = service_rows(HOST, (decl,), [], 5000, 7)
    assert rows == [ServiceRow(host=HOST, name="web", probe="http", port=8080, running=True, assigned=True,
                               can_start=True, can_stop=False, state="running", result="none",
                               latency_us=None, detail="", options='{"path":"/"}', changed_ms=5000,
                               epoch=7)]  # found running: established in the host's boot 7
    assert removes == []
    stopped = attrs.evolve(decl, running=False)
    row = service_rows(HOST, (stopped,), [], 5000, 7)[0][0]
    assert (row.running, row.assigned, row.state, row.epoch) == (False, False, "stopped", 0)


def test_existing_rows_keep_what_probes_learned_and_take_the_declared_fields():
    old = existing_row("web")
    decl = ServiceDecl("web", "http", 8080, True, False, True, '{"b":2}')
    rows, removes = service_rows(HOST, (decl,), [old], 9000, 7)
    assert removes == []
    assert rows == [attrs.evolve(old, probe="http", port=8080, can_start=False, can_stop=True,
                                 options='{"b":2}')]  # state, result, latency, detail, changed_ms kept


def test_a_changed_running_flag_updates_the_state_and_its_time():
    old = existing_row("web", state="running")
    decl = ServiceDecl("web", "tcp", 80, False, True, False, '{"a":1}')
    row = service_rows(HOST, (decl,), [old], 9000, 7)[0][0]
    assert (row.running, row.state, row.changed_ms) == (False, "stopped", 9000)
    assert (row.result, row.latency_us, row.detail) == ("critical", 1234, "connection refused")
    assert row.assigned  # the cluster's decision, not the host's


def test_services_no_longer_declared_are_removed():
    a, b, c = existing_row("a"), existing_row("b"), existing_row("c")
    decl = ServiceDecl("b", "tcp", 80, True, True, False, '{"a":1}')
    rows, removes = service_rows(HOST, (decl,), [a, b, c], 9000, 7)
    assert [r.name for r in rows] == ["b"]
    assert len(removes) == 2 and set(removes) == {a.key, c.key}
    assert all(k == RowKey("services", HOST.value, k.name) for k in removes)
    rows, removes = service_rows(HOST, (), [a], 9000, 7)
    assert rows == [] and removes == [a.key]
