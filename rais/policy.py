"""A service's policy as a row of the policy table, and as the operator edits it live.

`rais policy set SERVICE key=value...` takes the config's keys ([policy.NAME]), checked by the
config's own rules (rais.config.check_policy): the row in the tables is turned back into those
keys, the operator's values laid over it, and the whole checked and turned into a row again.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from typing import Any

import attrs

from rais.config import ConfigError, PolicyConfig, check_policy
from rais.states import Spare
from rais.wire.rows import PolicyRow, Weights

BPS_PER_MBPS = 125_000  # bytes per second in a megabit per second


def policy_row(policy: PolicyConfig, live: bool = False) -> PolicyRow:
    return PolicyRow(
        policy.name,
        policy.replicas,
        None if policy.max_cpu is None else max(1, round(policy.max_cpu * 1000)),
        None if policy.max_latency_ms is None else round(policy.max_latency_ms * 1000),
        None if policy.max_net_mbps is None else round(policy.max_net_mbps * BPS_PER_MBPS),
        Weights(**{name: round(weight * 1000) for name, weight in policy.weights.items()}),
        policy.prefer,
        round(policy.failback_after * 1000),
        live,
        policy.spare,
    )


def policy_table(row: PolicyRow) -> dict[str, Any]:
    """The row in the config's keys and units, as a [policy.NAME] table would say it."""
    table: dict[str, Any] = {"replicas": row.replicas, "failback_after": row.failback_ms / 1000}
    if row.max_cpu_permille is not None:
        table["max_cpu"] = row.max_cpu_permille / 1000
    if row.max_latency_us is not None:
        table["max_latency_ms"] = row.max_latency_us / 1000
    if row.max_net_bps is not None:
        table["max_net_mbps"] = row.max_net_bps / BPS_PER_MBPS
    if row.prefer is not None:
        table["prefer"] = str(row.prefer)
    if row.spare != Spare.PREFER:
        table["spare"] = str(row.spare)
    weights = {k: v / 1000 for k, v in attrs.asdict(row.weights).items() if v is not None}
    if weights:
        table["weights"] = weights
    return table


def _value(text: str) -> Any:
    """A value as TOML would read it (2, 0.8, "a"); a bare word that is not TOML is a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def edit(row: PolicyRow | None, name: str, assignments: Mapping[str, str]) -> PolicyRow:
    """``row`` (None: the defaults) with ``assignments`` (KEY or weights.PART to a value; an empty
    value goes back to the default) laid over it, marked live; ValueError saying what is wrong."""
    if not assignments:
        raise ValueError("nothing to set: give KEY=VALUE (replicas, max_cpu, max_latency_ms, max_net_mbps, "
                         "prefer, failback_after, spare, weights.PART)")
    table = policy_table(row) if row is not None else {}
    weights = dict(table.get("weights", {}))
    for key, text in assignments.items():
        part = key.removeprefix("weights.")
        target, field = (weights, part) if part != key else (table, key)
        if text == "":
            target.pop(field, None)
        else:
            target[field] = _value(text)
    table.pop("weights", None)
    if weights:
        table["weights"] = weights
    try:
        return policy_row(check_policy(name, table), live=True)
    except ConfigError as e:
        raise ValueError("; ".join(e.problems)) from None


def describe(row: PolicyRow) -> str:
    """One line: the policy's keys as the config says them, and whether it was set live."""
    table = policy_table(row)
    weights = table.pop("weights", {})
    words = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in table.items()]
    words += [f"weights.{k}={v:g}" for k, v in weights.items()]
    return f"{row.name}: {' '.join(words)}" + (" (set live)" if row.live else "")
