"""The readable form of a node's status document, for `rais status` and /status on the control endpoint."""

from __future__ import annotations

from typing import Any

from rais.costs import Cost


def _fmt(value: Any, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}{suffix}"
    return f"{value}{suffix}"


def _rate(bps: float | None) -> str:
    if bps is None:
        return "-"
    for unit in ("B/s", "kB/s", "MB/s"):
        if bps < 1000:
            return f"{bps:.0f}{unit}"
        bps /= 1000
    return f"{bps:.0f}GB/s"


COLUMNS = ("HOST", "ADDRESS", "ROLE", "CONFIGURED", "PRI", "STATUS", "HEARD", "CPU", "NET IN", "NET OUT", "LATENCY")


def pool_line(pool: dict[str, Any]) -> str:
    """The cluster's state and its spares (rais.pool), in one line."""
    state = pool["state"] + (f" ({'; '.join(pool['short'])})" if pool["short"] else "")
    free = ", ".join(pool["free"]) or "none"
    words = [f"cluster {state}", f"spares free {len(pool['free'])} ({free})", f"in use {len(pool['in_use'])}",
             f"min_spares {pool['min_spares']}" + (", spares missing" if pool["missing"] else "")]
    if pool["resting"]:
        words.append("resting after a failure: " + ", ".join(pool["resting"]))
    return "; ".join(words)


def render_status(doc: dict[str, Any]) -> str:
    behind = "  (catching up)" if doc.get("behind") else ""
    lines = [
        f"node {doc['self']}  cluster {doc['cluster']}  role {doc['role']}  "
        f"master {doc['master'] or 'none'}  term {doc.get('term_text', doc['term'])}  "
        f"generation {doc['generation']}{behind}",
    ]
    rows = [COLUMNS, (doc["self"], doc["address"], doc["role"], doc.get("configured_role", "-"), str(doc["priority"]),
                      "self", "-", "-", "-", "-", "-")]
    for h in doc["hosts"]:
        rows.append((
            h["id"], h["address"], h["role"], h.get("configured_role", "-"), str(h["priority"]), h["status"],
            _fmt(h["last_heard"], "s"), _fmt(h["cpu"]),
            _rate(h["net_rx_bps"]), _rate(h["net_tx_bps"]), _fmt(h.get("latency_ms"), "ms"),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    pool = doc.get("pool")
    if pool:
        lines.append(pool_line(pool))
    drained = [r["host"] for r in doc.get("tables", {}).get("servers", []) if r.get("drained")]
    if drained:
        lines.append(f"drained by the operator: {', '.join(drained)}")
    services = doc.get("tables", {}).get("services", [])
    if services:
        lines.append("services: " + ", ".join(
            f"{s['name']}@{s['host']} {s['state']}{'' if s['assigned'] else ' (not assigned)'}"
            + (f" ({s['result']} in {s['latency_us'] / 1000:.1f}ms)" if s["latency_us"] is not None else "")
            for s in services))
    costs = doc.get("tables", {}).get("costs", [])
    if costs:  # learned by the masters (rais.costs), counted where the planner places a copy
        lines.append("costs learned: " + ", ".join(
            f"{c['name']} {Cost(c['cpu_permille'] / 1000, c['net_bps'], c['samples']).text()}" for c in costs))
    for name, decisions in sorted(doc.get("decisions", {}).items()):
        if decisions:  # the master's latest word on each service
            lines.append(f"decided about {name}: " + decisions[-1]["text"].split("\n", 1)[0])
    twin = doc.get("duplicate_id")
    if twin:
        lines.append(f"WARNING: another process uses this host's id (from {twin['source']}, boot epoch "
                     f"{twin['boot_epoch']}): neither may be master while both run")
    traffic = doc.get("traffic")
    if traffic:
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(traffic["dropped"].items())) or "none"
        lines.append(f"datagrams: received {traffic['received']}, sent {traffic['sent']}, dropped: {dropped}")
    return "\n".join(lines) + "\n"
