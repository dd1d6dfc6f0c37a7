"""The conformance test catches probes that break the contract."""

from __future__ import annotations

import unittest

from probe_stubs import Flawed

from rais.probing.conformance import conformance_tests


def failed_tests(probe: Flawed) -> set[str]:
    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(conformance_tests(probe, {}, timeout=0.2)).run(result)
    return {test._testMethodName for test, _ in result.failures + result.errors}


def test_a_probe_that_keeps_the_contract_passes():
    assert failed_tests(Flawed("fine")) == set()


def test_each_flaw_is_caught():
    both = {"test_closed_port_is_critical", "test_hanging_connect_is_critical_in_time"}
    assert failed_tests(Flawed("errbacks")) == both
    assert failed_tests(Flawed("blocks")) == both
    assert failed_tests(Flawed("leaks")) == both  # trial: a timer left behind
    assert failed_tests(Flawed("lenient")) == {"test_unknown_option_is_reported"}
