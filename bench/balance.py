"""Load balancing in the simulator: how often a service moves for load, and whether clients ever
find no copy answering meanwhile.

Four simulated hosts (real Node objects, rais.sim): a master and three hosts that can serve "web"
(it runs on host 2 at first; one copy; max_cpu 0.8, balance_after 30 s, move_hold 120 s). A copy
answers from when its start action ends until its stop action ends. Two loads, for SECONDS
simulated seconds each:
- busy: host 2 held at 90% on its own (whatever it serves), the others at 10%;
- busy, slow start: the same, but a started server answers only 3 s after its start action ends;
- busy, start that lies: the same, but a start action exits 0 and its server never answers;
- wandering: every host's CPU wanders between 77% and 83% (a random walk, a step a second).
Reported: the moves for load, and the longest and total time with no copy answering.
"""

from __future__ import annotations

import random

import attrs

from rais.ids import ClusterId, HostClusterId
from rais.probing.schedule import ProbeDefaults
from rais.sim import Simulation
from rais.wire import Load, ServiceDecl
from rais.wire.rows import PolicyRow

SECONDS = 600.0
STEP = 0.05
CLUSTER = ClusterId.parse("1.2")


@attrs.frozen
class Outcome:
    moves: int  # starts of web after the first placement: each one a move
    longest_gap: float  # seconds with no copy answering, the longest stretch
    total_gap: float


def _hid(n: int) -> HostClusterId:
    return HostClusterId.of(CLUSTER, n)


def run(load: str, seconds: float = SECONDS, seed: int = 1, serves_after: float | None = 0.0) -> Outcome:
    """One scenario (``busy`` or ``wandering``) in a fresh simulated cluster; a started server
    answers ``serves_after`` seconds after its start action ends (None: never)."""
    rng = random.Random(seed)
    services = {n: (ServiceDecl("web", "http", 80, n == 2, True, True, "{}"),) for n in (2, 3, 4)}
    sim = Simulation(["master", "active", "active", "standby"], seed=seed, services=services,
                     policies=(PolicyRow("web", 1, 800, None),),
                     probing=ProbeDefaults(interval=1.0, timeout=0.5, rise=1, fall=2))
    answering = {_hid(2)}
    starts = []

    def act(host: HostClusterId, action: str, service: str) -> tuple[bool, str]:
        if action == "start":
            starts.append(host)
            if serves_after is not None:
                sim.clock.callLater(serves_after, answering.add, host)
        elif action == "stop":
            answering.discard(host)
        return True, f"{action}ed"

    sim.action_result = act
    sim.probe_answer = lambda order: "ok" if order.key[0] in answering else "critical"
    cpu = {n: 100 for n in (1, 2, 3, 4)}
    if load == "busy":
        cpu[2] = 900
    else:
        cpu.update({n: rng.randint(770, 830) for n in (2, 3, 4)})
    sim.load_of = lambda host: Load(cpu[host.host], 0, 0)
    sim.run_until(sim.converged, 30)
    longest = total = gap = 0.0
    walked = sim.clock.seconds()
    end = sim.clock.seconds() + seconds
    while sim.clock.seconds() < end:
        sim.clock.advance(STEP)
        if load == "wandering" and sim.clock.seconds() - walked >= 1.0:
            walked = sim.clock.seconds()
            for n in (2, 3, 4):
                cpu[n] = min(830, max(770, cpu[n] + rng.randint(-10, 10)))
        gap = 0.0 if answering else gap + STEP
        total += 0.0 if answering else STEP
        longest = max(longest, gap)
    return Outcome(len(starts), round(longest, 2), round(total, 2))


SCENARIOS = {  # name: (load, serves_after)
    "busy": ("busy", 0.0),
    "busy, slow start": ("busy", 3.0),
    "busy, start that lies": ("busy", None),
    "wandering": ("wandering", 0.0),
}


def main() -> None:
    for name, (load, serves_after) in SCENARIOS.items():
        outcome = run(load, serves_after=serves_after)
        print(f"{name:22} {SECONDS:.0f} s: {outcome.moves} moves for load, no copy answering for "
              f"{outcome.total_gap:.2f} s in all (longest {outcome.longest_gap:.2f} s)", flush=True)
