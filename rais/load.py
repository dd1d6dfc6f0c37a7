"""This host's own load figures, sampled with psutil for the heartbeat."""

from __future__ import annotations

import psutil

from rais.wire import Load

_MAX_RATE = 2**63 - 1


class LoadSampler:
    """CPU busy share and network byte rates since the previous sample.

    psutil.cpu_percent(interval=None) compares with its previous call, so
    sampling once a heartbeat never blocks the reactor.
    """

    def __init__(self, now: float) -> None:
        psutil.cpu_percent(interval=None)
        self._last = now
        self._net = psutil.net_io_counters()

    def sample(self, now: float) -> Load:
        cpu = psutil.cpu_percent(interval=None)
        net = psutil.net_io_counters()
        elapsed = max(now - self._last, 1e-3)
        # Counters can wrap or reset (interface re-created): clamp at zero.
        rx = max(0, net.bytes_recv - self._net.bytes_recv) / elapsed
        tx = max(0, net.bytes_sent - self._net.bytes_sent) / elapsed
        self._last, self._net = now, net
        return Load(
            cpu_permille=min(1000, round(cpu * 10)),
            net_rx_bps=min(_MAX_RATE, round(rx)),
            net_tx_bps=min(_MAX_RATE, round(tx)),
        )
