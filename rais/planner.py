"""The failover planner: where a service should run, with the reasons, as plain data.

Pure: a tables snapshot and an event in, decisions out, each with a score
breakdown for every host considered and a human explanation. The same code
serves the master and `rais plan`, so a dry run shows exactly what the
master would do.

Candidates are the hosts that declare the service. Hard limits rule a host
out (down, the host the service failed on, already serving it, over the
policy's max_cpu or max_latency_ms, probe failing with no start action).
The rest are scored, higher is better, as a weighted sum of components in
0..1 (see ``Weights``); ties go to the lower host id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from rais.ids import HostClusterId
from rais.tables import Tables
from rais.wire import RowKey
from rais.wire.rows import PolicyRow, ServerRow, ServiceRow

NET_SCALE = 125_000_000  # bytes/s: a saturated gigabit link scores 0
DEFAULT_MAX_LATENCY_MS = 50.0  # what latency is scored against when the policy sets no limit
ROLE_SCORE = {"standby": 1.0, "active": 0.5, "master": 0.0}  # an idle standby before a busy active


@attrs.frozen
class Weights:
    """How much each component counts; documented in README ("The planner")."""

    overlap: float = 3.0  # the service already answers there, or its companions run there
    latency: float = 2.0
    cpu: float = 2.0
    network: float = 1.0
    role: float = 1.0
    stickiness: float = 1.0  # it ran there before: moving back costs least


DEFAULT_WEIGHTS = Weights()


def weights_for(policy: PolicyRow | None, base: Weights = DEFAULT_WEIGHTS) -> Weights:
    """The weights a service's policy asks for, part by part, over ``base``."""
    if policy is None:
        return base
    given = {name: value / 1000 for name, value in attrs.asdict(policy.weights).items() if value is not None}
    return attrs.evolve(base, **given)


@attrs.frozen
class Score:
    host: HostClusterId
    total: float | None  # None: ruled out
    parts: tuple[tuple[str, float], ...] = ()
    reason: str = ""  # why it was ruled out

    @property
    def eligible(self) -> bool:
        return self.total is not None


@attrs.frozen
class Decision:
    action: str  # "assign", "release" or "degraded" (no host qualifies)
    service: str
    host: HostClusterId | None
    explanation: str
    scores: tuple[Score, ...] = ()


class View:
    """The parts of the tables the planner reads, indexed once per snapshot."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.servers: dict[HostClusterId, ServerRow] = {r.host: r for r in tables.table("servers")}
        self.by_name: dict[str, list[ServiceRow]] = {}
        self.by_host: dict[HostClusterId, list[ServiceRow]] = {}
        for row in tables.table("services"):
            self.by_name.setdefault(row.name, []).append(row)
            self.by_host.setdefault(row.host, []).append(row)

    def services(self, name: str) -> list[ServiceRow]:
        return self.by_name.get(name, [])

    def policy(self, name: str) -> PolicyRow | None:
        return self.tables.get(RowKey("policy", 0, name))

    def cpu(self, host: HostClusterId) -> float | None:
        row = self.tables.get(RowKey("cpu", host.value, ""))
        return None if row is None else row.cpu_permille / 1000

    def net(self, host: HostClusterId) -> int | None:
        row = self.tables.get(RowKey("network", host.value, ""))
        return None if row is None else row.rx_bps + row.tx_bps

    def latency_ms(self, host: HostClusterId) -> float | None:
        row = self.tables.get(RowKey("latency", host.value, ""))
        return None if row is None else row.rtt_us / 1000

    def running_on(self, host: HostClusterId) -> set[str]:
        return {r.name for r in self.by_host.get(host, []) if serves(r)}

    def serving(self, name: str) -> list[ServiceRow]:
        """The rows where the service is assigned and not failed, on hosts that are up."""
        return [r for r in self.services(name) if r.assigned and r.state != "failed"
                and r.host in self.servers and self.servers[r.host].status == "up"]


def serves(row: ServiceRow) -> bool:
    return row.assigned and row.state == "running"


def score_host(view: View, row: ServiceRow, exclude: Mapping[HostClusterId, str],
               weights: Weights, origin: HostClusterId | None = None,
               master: HostClusterId | None = None) -> Score:
    """Rule a candidate out, or score it; ``origin`` is the host the service leaves."""
    host = row.host
    server = view.servers.get(host)
    policy = view.policy(row.name)
    if server is None or server.status != "up":
        return Score(host, None, reason=f"{server.status if server else 'unknown'}")
    if host in exclude:
        return Score(host, None, reason=exclude[host])
    if serves(row):
        return Score(host, None, reason="already serves it")
    cpu, latency, net = view.cpu(host), view.latency_ms(host), view.net(host)
    if policy is not None and policy.max_cpu_permille is not None and cpu is not None \
            and cpu * 1000 > policy.max_cpu_permille:
        return Score(host, None, reason=f"cpu {cpu:.2f} > max_cpu {policy.max_cpu_permille / 1000:.2f}")
    limit_ms = None if policy is None or policy.max_latency_us is None else policy.max_latency_us / 1000
    if limit_ms is not None and latency is not None and latency > limit_ms:
        return Score(host, None, reason=f"latency {latency:.1f} ms > max_latency_ms {limit_ms:g}")
    if policy is not None and policy.max_net_bps is not None and net is not None and net > policy.max_net_bps:
        return Score(host, None, reason=f"network {net * 8 / 1e6:.1f} Mbit/s > max_net_mbps "
                                        f"{policy.max_net_bps * 8 / 1e6:g}")
    if row.result == "critical" and not row.can_start:
        return Score(host, None, reason="its probe fails and it has no start action")
    # Services that ran beside it where it comes from, and run here too, go well together.
    companions = view.running_on(origin) - {row.name} if origin is not None else set()
    here = view.running_on(host)
    warm = 1.0 if row.result in ("ok", "warning") else 0.0
    overlap = warm * 0.5 + 0.5 * (len(companions & here) / len(companions) if companions else 0.0)
    role = "master" if host == master else server.role
    parts = (
        ("overlap", overlap),
        ("latency", 1.0 - min((latency or 0.0) / (limit_ms or DEFAULT_MAX_LATENCY_MS), 1.0)),
        ("cpu", 1.0 - (cpu or 0.0)),
        ("network", 1.0 - min((net or 0) / NET_SCALE, 1.0)),
        ("role", ROLE_SCORE.get(role, 0.0)),
        ("stickiness", 1.0 if row.assigned else 0.0),
    )
    weights = weights_for(policy, weights)
    total = sum(getattr(weights, name) * value for name, value in parts)
    return Score(host, round(total, 6), parts)


def rank(scores: Iterable[Score]) -> list[Score]:
    """Eligible first, best first; ties to the lower host id; then the ruled out, by id."""
    return sorted(scores, key=lambda s: (not s.eligible, -(s.total or 0.0), s.host))


def place(view: View, service: str, exclude: Mapping[HostClusterId, str] | None = None,
          weights: Weights = DEFAULT_WEIGHTS, origin: HostClusterId | None = None,
          master: HostClusterId | None = None) -> Decision:
    """Choose the host for one more copy of ``service``; ``exclude`` maps hosts to why not."""
    scores = rank(score_host(view, row, exclude or {}, weights, origin, master)
                  for row in view.services(service))
    eligible = [s for s in scores if s.eligible]
    if not eligible:
        why = "; ".join(f"{s.host}: {s.reason}" for s in scores) or "no host declares it"
        return Decision("degraded", service, None, f"{service}: no host qualifies ({why})", tuple(scores))
    best = eligible[0]
    lines = [f"{service} -> {best.host} (score {best.total:.2f}: {_parts(best)})"]
    for s in scores[1:]:
        if s.eligible:
            lines.append(f"  {s.host}: score {s.total:.2f}, {best.total - s.total:.2f} less ({_parts(s)})")
        else:
            lines.append(f"  {s.host}: {s.reason}")
    return Decision("assign", service, best.host, "\n".join(lines), tuple(scores))


def _parts(score: Score) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in score.parts)


def service_failed(view: View, host: HostClusterId, service: str, weights: Weights = DEFAULT_WEIGHTS,
                   master: HostClusterId | None = None) -> list[Decision]:
    """A service failed on a host: release it there, and place it elsewhere."""
    decisions = [Decision("release", service, host, f"{service} failed on {host}: release it there")]
    return decisions + [place(view, service, {host: "the service failed here"}, weights, host, master)]


def host_down(view: View, host: HostClusterId, weights: Weights = DEFAULT_WEIGHTS,
              master: HostClusterId | None = None) -> list[Decision]:
    """A host went down: place elsewhere every service it served."""
    lost = sorted({r.name for r in view.by_host.get(host, []) if r.assigned})
    return [place(view, name, {host: "down"}, weights, host, master) for name in lost]


def replicas(view: View, service: str, weights: Weights = DEFAULT_WEIGHTS,
             master: HostClusterId | None = None) -> list[Decision]:
    """Keep ``service`` at its policy's replica count: add the best hosts, or release the worst."""
    policy = view.policy(service)
    want = policy.replicas if policy is not None else 1
    serving = view.serving(service)
    if len(serving) > want:
        scored = rank(score_host(view, attrs.evolve(r, assigned=False, state="stopped"), {},
                                 weights, None, master) for r in serving)
        return [Decision("release", service, s.host, f"{service}: {len(serving)} copies, policy wants {want}; "
                         f"{s.host} scores lowest") for s in scored[want:][::-1]]
    decisions = []
    chosen: dict[HostClusterId, str] = {}
    for _ in range(want - len(serving)):
        decision = place(view, service, chosen, weights, None, master)
        decisions.append(decision)
        if decision.host is None:
            break
        chosen[decision.host] = "chosen for another copy"
    return decisions
