"""This host's load figures: psutil's, averaged so a heartbeat carries sustained load, not noise."""

import math
from collections import namedtuple

from rais import load
from rais.load import SMOOTHING, LoadSampler

Counters = namedtuple("Counters", "bytes_recv bytes_sent")


def test_figures_are_averaged_over_about_the_smoothing_time(monkeypatch):
    cpu, net = [0.0], [Counters(0, 0)]
    monkeypatch.setattr(load.psutil, "cpu_percent", lambda interval=None: cpu[0])
    monkeypatch.setattr(load.psutil, "net_io_counters", lambda: net[0])
    sampler = LoadSampler(0.0)
    assert sampler.sample(0.2).cpu_permille == 0
    cpu[0] = 100.0  # the host becomes busy, and stays busy
    now, seen = 0.2, []
    while now < 0.2 + SMOOTHING:
        now = round(now + 0.2, 6)
        net[0] = Counters(int(now * 1_000_000), 0)  # a steady 1 MB/s in
        seen.append(sampler.sample(now))
    assert seen[0].cpu_permille < 100  # one busy beat is not a busy host
    expected = 1000 * (1 - math.exp(-1))  # after one time constant
    assert abs(seen[-1].cpu_permille - expected) < 30
    assert 500_000 < seen[-1].net_rx_bps < 1_000_000
    assert [s.cpu_permille for s in seen] == sorted(s.cpu_permille for s in seen)
