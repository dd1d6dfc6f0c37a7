"""Hypothesis strategies shared by the wire tests."""

from hypothesis import strategies as st

from rais.wire import ROLES, Heartbeat, Load

U64 = 2**64 - 1

# Lone surrogates (category Cs) cannot be UTF-8; the record refuses them.
addresses = st.text(st.characters(blacklist_categories=("Cs",)), max_size=255)
loads = st.builds(Load, st.integers(0, 1000), st.integers(0, U64), st.integers(0, U64))
heartbeats = st.builds(
    Heartbeat,
    role=st.sampled_from(ROLES),
    priority=st.integers(0, 255),
    generation=st.integers(0, U64),
    address=addresses,
    load=st.none() | loads,
)
