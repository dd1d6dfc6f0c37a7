"""The events a node keeps for operators (rais.events) and how `rais events` shows them (rais.eventview)."""

import io
import json

from twisted.internet.task import Clock

from rais.effects import Decided, Fenced, Operated, RoleChanged, RunAction, TablesChanged
from rais.events import EventLog
from rais.eventview import Seen, follow, json_line, person_line
from rais.ids import HostClusterId
from rais.membership import Transition
from rais.reconcile import Decision
from rais.states import HostStatus

ME, OTHER = HostClusterId.parse("1.2.0.1"), HostClusterId.parse("1.2.0.3")


def test_kept_events_say_when_what_whom_in_one_line_and_leave_out_the_noise():
    clock = Clock()
    log = EventLog(ME, clock)
    placed = Decision("assign", "web", OTHER, "web: placed on 1.2.0.3 (score 0.9)\n  1.2.0.3: 0.9\n  1.2.0.4: 0.5")
    clock.advance(100)
    log.record(Transition(OTHER, HostStatus.UP, HostStatus.DOWN))
    clock.advance(1)
    log.record(RoleChanged("standby", "master", 0x10001, "no master heard"))
    log.record(TablesChanged("committed", 3, 0x10001))  # the tables are in the document already
    log.record(Decided(placed))
    log.record(Decided(placed, repeated=True))  # a degraded service re-planned each tick: once
    log.record(Fenced("db", "a minority"))
    log.record(RunAction("start", "web", 0x10001, 4))
    log.record(Operated(OTHER, "drain 1.2.0.3", True, "draining 1.2.0.3\nthen the master will:\n  move nothing"))
    assert log.json() == [
        {"seq": 1, "at": 100.0, "kind": "host", "host": "1.2.0.3", "text": "host 1.2.0.3 is down (was up)"},
        {"seq": 2, "at": 101.0, "kind": "role", "host": "1.2.0.1",
         "text": "role standby -> master in term 1/1: no master heard"},
        {"seq": 3, "at": 101.0, "kind": "decided", "host": "1.2.0.3", "text": "web: placed on 1.2.0.3 (score 0.9)"},
        {"seq": 4, "at": 101.0, "kind": "fenced", "host": "1.2.0.1", "text": "fencing: stopping db: a minority"},
        {"seq": 5, "at": 101.0, "kind": "action", "host": "1.2.0.1", "text": "start web (order 4 of term 1/1)"},
        {"seq": 6, "at": 101.0, "kind": "operator", "host": "1.2.0.3",
         "text": "operator's drain 1.2.0.3 (through 1.2.0.3): draining 1.2.0.3"},
    ]


def test_the_log_keeps_the_latest_few_and_counts_on():
    log = EventLog(ME, Clock(), size=3)
    for n in range(5):
        log.record(Fenced("db", f"time {n}"))
    assert [(e["seq"], e["text"]) for e in log.json()] == [
        (3, "fencing: stopping db: time 2"), (4, "fencing: stopping db: time 3"), (5, "fencing: stopping db: time 4")]


def doc(boot, *seqs):
    return {"self": "1.2.0.1", "boot_epoch": boot,
            "events": [{"seq": s, "at": 1e9 + s, "kind": "role", "host": "1.2.0.1", "text": f"event {s}"}
                       for s in seqs]}


def test_following_prints_each_event_once_and_a_restarted_node_from_its_first():
    seen = Seen()
    assert [e["seq"] for e in seen.new(doc(7, 1, 2))] == [1, 2]
    assert [e["seq"] for e in seen.new(doc(7, 1, 2))] == []
    assert [e["seq"] for e in seen.new(doc(7, 2, 3, 4))] == [3, 4]  # the ring moved on
    assert [e["seq"] for e in seen.new(doc(8, 1))] == [1]  # a new boot counts from 1 again


def test_lines_for_a_person_and_for_a_script():
    event = doc(7, 5)["events"][0]
    assert person_line(event).endswith("  role          event 5")
    assert person_line(event)[:4].isdigit()  # the local date and time first
    assert json.loads(json_line(event)) == event


def test_follow_says_once_that_the_node_is_lost_and_when_it_answers_again():
    answers = [doc(7, 1), OSError("refused"), OSError("refused"), doc(7, 1, 2), KeyboardInterrupt()]

    def fetch():
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    out, err = io.StringIO(), io.StringIO()
    seen = Seen()
    try:
        follow(fetch, seen, lambda e: e["text"], out, err, interval=0)
    except KeyboardInterrupt:
        pass
    assert out.getvalue() == "event 1\nevent 2\n"
    assert err.getvalue() == ("rais events: cannot ask the node: refused; still trying\n"
                              "rais events: the node answers again\n")
