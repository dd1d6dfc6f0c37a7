"""This host's own load figures, sampled with psutil for the heartbeat."""

from __future__ import annotations

import math

import psutil

from rais.wire import Load

_MAX_RATE = 2**63 - 1
# Figures are averaged over about this many seconds: placement acts on sustained load (a host
# must stay over a limit for balance_after), and a sample per 0.2 s heartbeat is mostly noise.
SMOOTHING = 5.0


class LoadSampler:
    """CPU busy share and network byte rates, averaged exponentially over about SMOOTHING seconds.

    psutil.cpu_percent(interval=None) compares with its previous call, so
    sampling once a heartbeat never blocks the reactor.
    """

    def __init__(self, now: float) -> None:
        psutil.cpu_percent(interval=None)
        self._last = now
        self._net = psutil.net_io_counters()
        self._average: tuple[float, float, float] | None = None  # cpu %, rx and tx bytes/s

    def sample(self, now: float) -> Load:
        cpu = psutil.cpu_percent(interval=None)
        net = psutil.net_io_counters()
        elapsed = max(now - self._last, 1e-3)
        # Counters can wrap or reset (interface re-created): clamp at zero.
        rx = max(0, net.bytes_recv - self._net.bytes_recv) / elapsed
        tx = max(0, net.bytes_sent - self._net.bytes_sent) / elapsed
        self._last, self._net = now, net
        if self._average is not None:
            weight = 1 - math.exp(-elapsed / SMOOTHING)  # of the new sample, for any spacing of samples
            old_cpu, old_rx, old_tx = self._average
            cpu, rx, tx = old_cpu + weight * (cpu - old_cpu), old_rx + weight * (rx - old_rx), \
                old_tx + weight * (tx - old_tx)
        self._average = (cpu, rx, tx)
        return Load(
            cpu_permille=min(1000, round(cpu * 10)),
            net_rx_bps=min(_MAX_RATE, round(rx)),
            net_tx_bps=min(_MAX_RATE, round(tx)),
        )
