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
    PROTOCOL_VERSION,
    REGISTRY,
    Heartbeat,
    ReplayGuard,
    decode_message,
    encode_message,
    open_datagram,
    schema_text,
    seal,
)
from tests.strategies import U64, heartbeats

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


def as_dict(hb: Heartbeat) -> dict:
    value = {"role": hb.role, "priority": hb.priority, "generation": hb.generation, "address": hb.address}
    if hb.load is not None:
        value["load"] = {
            "cpuPermille": hb.load.cpu_permille,
            "netRxBytesPerSec": hb.load.net_rx_bps,
            "netTxBytesPerSec": hb.load.net_tx_bps,
        }
    return value


def test_schema_text_is_the_shipped_file():
    with schema_path() as path:
        assert schema_text() == path.read_text("utf-8")


def test_registry_matches_module(spec):
    choice = spec.types["Message"].type
    assert choice.has_extension_marker  # so later messages can be added compatibly
    in_module = {member.name: bytes(member.tag) for member in choice.members}
    # Each alternative is a constructed SEQUENCE with a low context tag: one octet 0xA0 | n.
    in_registry = {kind.name: bytes([0xA0 | kind.tag]) for kind in REGISTRY.values()}
    assert in_registry == in_module
    for kind in REGISTRY.values():
        assert choice.name_to_member[kind.name].type_name == kind.asn1.__name__.removesuffix("Asn1")


@settings(max_examples=100, deadline=None)
@given(hb=heartbeats)
def test_message_encodings_identical(spec, hb):
    ours = encode_message(hb)
    theirs = spec.encode("Message", ("heartbeat", as_dict(hb)))
    assert ours == theirs
    assert spec.decode("Message", ours) == ("heartbeat", as_dict(hb))
    assert decode_message(theirs) == hb


@settings(max_examples=100, deadline=None)
@given(header=headers, hb=heartbeats)
def test_sealed_datagram_read_by_asn1tools(spec, header, hb):
    data = seal(RING, header["sender"], header["bootEpoch"], header["sequence"], header["term"], hb)
    envelope = spec.decode("Envelope", data)
    assert envelope["header"] == {
        "version": PROTOCOL_VERSION,
        "keyId": 3,
        "sender": header["sender"].value,
        **{k: header[k] for k in ("bootEpoch", "sequence", "term")},
    }
    assert spec.decode("Message", envelope["body"]) == ("heartbeat", as_dict(hb))
    assert spec.encode("Envelope", envelope) == data


@settings(max_examples=50, deadline=None)
@given(header=headers, hb=heartbeats)
def test_asn1tools_datagram_opened(spec, header, hb):
    envelope = {
        "header": {"version": PROTOCOL_VERSION, "keyId": 3, **header, "sender": header["sender"].value},
        "body": spec.encode("Message", ("heartbeat", as_dict(hb))),
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
