"""Shared test set-up.

In CI (CI=true) a skipped test fails the run: a green run that skipped the
real checks proves nothing.
"""

import contextlib
import os

import pytest
from hypothesis import settings

from rais.netcluster import NetCluster, unavailable

settings.register_profile("ci", max_examples=200, deadline=None)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped:
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped in CI, which must run every check: {reason}"


@pytest.fixture
def net_cluster(tmp_path):
    """A factory of NetClusters (rais.netcluster: nodes in network namespaces) with folders in
    tmp_path; every cluster made is closed after the test, however it ends. Where namespaces
    cannot be made (not root, no nftables), the test is skipped with the reason."""
    reason = unavailable()
    if reason:
        pytest.skip(f"network namespaces: {reason}")
    with contextlib.ExitStack() as stack:
        made = 0

        def make(roles, interval=1.0, dead_after=3, **options):
            nonlocal made
            made += 1
            base = tmp_path / f"cluster{made}"
            base.mkdir()
            return stack.enter_context(NetCluster(str(base), roles, interval, dead_after, **options))

        yield make
