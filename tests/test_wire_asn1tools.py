"""The shipped ASN.1 module, compiled by asn1tools, agrees with the pyasn1 side byte for byte."""

import hashlib
import hmac
import importlib.resources

import asn1tools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rais.ids import ClusterId, HostClusterId
from rais.keys import Key, Keyring
from rais.wire import (
    MESSAGES,
    PROTOCOL_VERSION,
    ReplayGuard,
    decode_message,
    encode_message,
    open_datagram,
    schema_text,
    seal,
)
from rais.wire.rows import ROWS, decode_row
from rais.wire.schema import asn1_name
from tests.asn1dict import choice_value
from tests.strategies import U64, messages, rows

CLUSTER = ClusterId.parse("1.2")
RING = Keyring((Key(3, bytes(range(32))),))

headers = st.fixed_dictionaries(
    {
        "sender": st.integers(1, 0xFFFF).map(lambda host: HostClusterId.of(CLUSTER, host)),
        "bootEpoch": st.integers(0, U64),
        "sequence": st.integers(0, U64),
        "term": st.integers(0, U64),
    }
)


def schema_path():
    return importlib.resources.as_file(importlib.resources.files("rais.wire") / "rais.asn")


@pytest.fixture(scope="module")
def spec():
    with schema_path() as path:
        return asn1tools.compile_files(str(path), "der")


def as_dict(record):
    return choice_value(MESSAGES, record)


def test_schema_text_is_the_shipped_file():
    with schema_path() as path:
        assert schema_text() == path.read_text("utf-8")


@pytest.mark.parametrize("choice", [MESSAGES, ROWS], ids=lambda c: c.name)
def test_registry_matches_module(spec, choice):
    module = spec.types[choice.name].type
    assert module.has_extension_marker  # so later alternatives can be added compatibly
    in_module = {member.name: bytes(member.tag) for member in module.members}
    # Each alternative is a constructed SEQUENCE with a low context tag: one octet 0xA0 | n.
    in_registry = {name: bytes([0xA0 | tag]) for name, (tag, _record) in choice.alternatives.items()}
    assert in_registry == in_module
    for name, (_tag, record) in choice.alternatives.items():
        assert module.name_to_member[name].type_name == record.__name__
        members = spec.types[record.__name__].type.root_members
        ours = [(asn1_name(name), optional) for name, _kind, optional in record.__wire_components__]
        assert ours == [(m.name, m.optional) for m in members], record.__name__


@settings(max_examples=300, deadline=None)
@given(message=messages)
def test_message_encodings_identical(spec, message):
    ours = encode_message(message)
    theirs = spec.encode("Message", as_dict(message))
    assert ours == theirs == MESSAGES.encode_with_pyasn1(message)
    assert MESSAGES.decode_with_pyasn1(ours) == message
    assert spec.decode("Message", ours) == as_dict(message)
    assert decode_message(theirs) == message


@settings(max_examples=200, deadline=None)
@given(row=rows)
def test_row_encodings_identical(spec, row):
    assert row.der == spec.encode("TableRow", choice_value(ROWS, row)) == ROWS.encode_with_pyasn1(row)
    assert ROWS.decode_with_pyasn1(row.der) == row
    assert spec.decode("TableRow", row.der) == choice_value(ROWS, row)
    assert decode_row(row.der) == row


@settings(max_examples=100, deadline=None)
@given(header=headers, hb=messages)
def test_sealed_datagram_read_by_asn1tools(spec, header, hb):
    data = seal(RING, header["sender"], header["bootEpoch"], header["sequence"], header["term"], hb)
    envelope = spec.decode("Envelope", data)
    assert envelope["header"] == {
        "version": PROTOCOL_VERSION,
        "keyId": 3,
        "sender": header["sender"].value,
        **{k: header[k] for k in ("bootEpoch", "sequence", "term")},
    }
    assert spec.decode("Message", envelope["body"]) == as_dict(hb)
    assert spec.encode("Envelope", envelope) == data


@settings(max_examples=50, deadline=None)
@given(header=headers, hb=messages)
def test_asn1tools_datagram_opened(spec, header, hb):
    envelope = {
        "header": {"version": PROTOCOL_VERSION, "keyId": 3, **header, "sender": header["sender"].value},
        "body": spec.encode("Message", as_dict(hb)),
        "tag": bytes(32),
    }
    unsigned = spec.encode("Envelope", envelope)
    # The signed part runs from after the outer SEQUENCE's length to before the tag TLV.
    outer = 2 if unsigned[1] < 0x80 else 2 + (unsigned[1] & 0x7F)
    envelope["tag"] = hmac.digest(RING.signing.secret, unsigned[outer:-34], hashlib.sha256)
    data = spec.encode("Envelope", envelope)
    got = open_datagram(data, RING, CLUSTER, ReplayGuard())
    assert (got.sender, got.boot_epoch, got.sequence, got.term, got.message) == (
        header["sender"],
        header["bootEpoch"],
        header["sequence"],
        header["term"],
        hb,
    )
    assert data == seal(RING, header["sender"], header["bootEpoch"], header["sequence"], header["term"], hb)


@settings(max_examples=50, deadline=None)
@given(rows=st.lists(rows, max_size=5))
def test_tables_file_read_by_asn1tools(spec, rows):
    from rais.statefile import decode_tables, encode_tables
    from rais.tables import Tables

    tables = Tables.of(65537, 9, rows)
    data = encode_tables(tables)
    saved = spec.decode("TablesFile", data)
    assert (saved["tablesTerm"], saved["generation"], saved["digest"]) == (65537, 9, tables.digest)
    assert spec.encode("TablesFile", saved) == data
    assert decode_tables(data) == tables
