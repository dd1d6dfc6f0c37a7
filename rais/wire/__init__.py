"""The RAIS wire protocol: ASN.1/DER messages in HMAC-authenticated envelopes."""

from rais.wire.envelope import (
    MAX_DATAGRAM,
    PROTOCOL_VERSION,
    Datagram,
    ReplayGuard,
    open_datagram,
    seal,
)
from rais.wire.messages import (
    REASONS,
    REGISTRY,
    ROLES,
    Heartbeat,
    Load,
    WireError,
    decode_message,
    encode_message,
    message,
    schema_text,
)

__all__ = [
    "MAX_DATAGRAM",
    "PROTOCOL_VERSION",
    "REASONS",
    "REGISTRY",
    "ROLES",
    "Datagram",
    "Heartbeat",
    "Load",
    "ReplayGuard",
    "WireError",
    "decode_message",
    "encode_message",
    "message",
    "open_datagram",
    "schema_text",
    "seal",
]
