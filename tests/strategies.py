"""Hypothesis strategies for every wire record, derived from the records' schema kinds."""

from hypothesis import strategies as st

from rais.ids import HostClusterId
from rais.wire import MESSAGES
from rais.wire.rows import ROWS
from rais.wire.schema import Enum, Flag, HostId, ListOf, Octets, Struct, Text, UInt

U64 = 2**64 - 1

# Lone surrogates (category Cs) cannot be UTF-8; the records refuse them.
_CHARS = st.characters(blacklist_categories=("Cs",))


def for_kind(kind, list_limit=3):
    if isinstance(kind, UInt):
        return st.integers(kind.low, kind.high)
    if isinstance(kind, Enum):
        return st.sampled_from(kind.names)
    if isinstance(kind, Text):
        text = st.text(_CHARS, min_size=kind.low, max_size=min(kind.high, 80))
        if kind.max_bytes is not None:
            text = text.filter(lambda t: len(t.encode()) <= kind.max_bytes)
        return text
    if isinstance(kind, Octets):
        return st.binary(min_size=kind.low, max_size=min(kind.high, 64))
    if isinstance(kind, Flag):
        return st.booleans()
    if isinstance(kind, HostId):
        return st.integers(0x10001, 2**32 - 1).filter(lambda v: v & 0xFFFF).map(HostClusterId)
    if isinstance(kind, Struct):
        return for_record(kind.record)
    if isinstance(kind, ListOf):
        return st.lists(for_kind(kind.item), max_size=min(kind.high, list_limit)).map(tuple)
    raise TypeError(kind)


def for_record(record):
    fields = {}
    for name, kind, optional in record.__wire_components__:
        strategy = for_kind(kind)
        fields[name] = st.none() | strategy if optional else strategy
    return st.builds(record, **fields)


def alternatives(choice):
    return st.one_of(*(for_record(record) for _, record in choice.alternatives.values()))


messages = alternatives(MESSAGES)
rows = alternatives(ROWS)
heartbeats = for_record(MESSAGES.alternatives["heartbeat"][1])
