"""rais.pause: the gaps a periodic timer shows when the process was not scheduled."""

import pytest

from rais.pause import PauseWatch


def test_a_timer_on_time_or_a_little_late_is_no_pause():
    watch = PauseWatch(every=0.05, threshold=0.2)
    assert [watch.ran(t) for t in (10.0, 10.05, 10.1, 10.3, 10.35)] == [None] * 5  # 0.15 s late: not over


def test_a_gap_over_the_threshold_is_the_time_not_scheduled_and_counts_from_the_run_after():
    watch = PauseWatch(every=0.05, threshold=0.2)
    watch.ran(10.0)
    assert watch.ran(10.85) == pytest.approx(0.8)
    assert watch.ran(10.9) is None  # on time again


def test_just_after_a_pause_the_judgement_waits_one_run_and_never_two():
    watch = PauseWatch(every=0.05, threshold=0.2)
    runs = [(t, watch.ran(t) is not None, watch.wait) for t in (10.0, 10.05, 11.0, 11.05, 12.0, 13.0, 14.0, 14.05)]
    assert [(paused, wait) for _, paused, wait in runs] == [
        (False, False), (False, False),
        (True, True), (False, False),  # one pause: the run after judges
        (True, True), (True, False), (True, True),  # late at every run: every other run judges
        (False, False)]
