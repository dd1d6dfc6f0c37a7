"""Cluster ids and host-cluster ids.

A cluster id is 16 bits written as two dotted octets ("1.2"). A host-cluster
id is 32 bits: the cluster id in the high 16 bits, the host id in the low 16,
written as four dotted octets ("1.2.0.7"). Cluster 0.0 and host 0 are invalid
so that an all-zero field on the wire can never name a real host.
"""

from __future__ import annotations

import attrs

MAX_HOST = 0xFFFF


class IdError(ValueError):
    """A text or number is not a valid cluster or host-cluster id."""


def _octets(text: str, count: int, what: str) -> list[int]:
    if not isinstance(text, str):
        raise IdError(f"{what} must be a string like {'1.2' if count == 2 else '1.2.0.7'}")
    parts = text.split(".")
    if len(parts) != count:
        raise IdError(f"{what} {text!r} must be {count} dotted octets")
    values = []
    for part in parts:
        # Plain ASCII digits only: int() would accept " 1", "+1", "1_0" and
        # non-ASCII digits, and a leading zero reads as octal to some tools.
        if not (part.isascii() and part.isdigit()) or (len(part) > 1 and part[0] == "0"):
            raise IdError(f"{what} {text!r}: {part!r} is not an octet")
        value = int(part)
        if value > 255:
            raise IdError(f"{what} {text!r}: {value} is over 255")
        values.append(value)
    return values


@attrs.frozen(order=True)
class ClusterId:
    """A 16-bit cluster id, never 0.0."""

    value: int = attrs.field()

    @value.validator
    def _check(self, _attribute: attrs.Attribute, value: int) -> None:
        if type(value) is not int or not 1 <= value <= 0xFFFF:
            raise IdError(f"cluster id {value!r} must be 1..65535 (0.0 is invalid)")

    @classmethod
    def parse(cls, text: str) -> ClusterId:
        high, low = _octets(text, 2, "cluster id")
        return cls((high << 8) | low)

    def __str__(self) -> str:
        return f"{self.value >> 8}.{self.value & 0xFF}"


@attrs.frozen(order=True)
class HostClusterId:
    """A 32-bit host-cluster id: cluster id high, host id low, neither zero."""

    value: int = attrs.field()

    @value.validator
    def _check(self, _attribute: attrs.Attribute, value: int) -> None:
        if type(value) is not int or not 0 <= value <= 0xFFFFFFFF:
            raise IdError(f"host-cluster id {value!r} must fit in 32 bits")
        if value >> 16 == 0:
            raise IdError(f"host-cluster id {value!r}: cluster 0.0 is invalid")
        if value & 0xFFFF == 0:
            raise IdError(f"host-cluster id {value!r}: host id 0 is invalid")

    @classmethod
    def of(cls, cluster: ClusterId, host: int) -> HostClusterId:
        if type(host) is not int or not 1 <= host <= MAX_HOST:
            raise IdError(f"host id {host!r} must be 1..{MAX_HOST}")
        return cls((cluster.value << 16) | host)

    @classmethod
    def parse(cls, text: str) -> HostClusterId:
        a, b, c, d = _octets(text, 4, "host-cluster id")
        return cls((a << 24) | (b << 16) | (c << 8) | d)

    @property
    def cluster(self) -> ClusterId:
        return ClusterId(self.value >> 16)

    @property
    def host(self) -> int:
        return self.value & 0xFFFF

    def __str__(self) -> str:
        v = self.value
        return f"{v >> 24}.{(v >> 16) & 0xFF}.{(v >> 8) & 0xFF}.{v & 0xFF}"
