"""The Driver: one guarded step per input, one dispatch of outputs to an IEffects."""

import pytest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from rais.effects import Decided, Driver, Notify, Persist, RunAction, RunProbe, Send, TablesChanged
from rais.interfaces import IEffects, ProbeResult, Status
from rais.reconcile import Decision


@implementer(IEffects)
class Recorder:
    def __init__(self):
        self.calls = []
        self.action = Deferred()

    def send(self, message, term):
        self.calls.append(("send", message, term))

    def persist(self, tables):
        self.calls.append(("persist", tables))

    def run(self, action):
        self.calls.append(("run", action))
        return self.action

    def probe(self, order):
        self.calls.append(("probe", order))
        return succeed(ProbeResult(Status.OK, 0.001, "fine"))

    def notify(self, words):
        self.calls.append(("notify", words))

    def log(self, event):
        self.calls.append(("log", event))

    def answered(self, answer):
        self.calls.append(("answered", answer))


class FakeNode:
    term = 7

    def __init__(self, outputs):
        self.outputs = outputs
        self.inputs = []

    def _input(self, name):
        def step(now, *args):
            self.inputs.append((name, now, *args))
            return self.outputs.pop(0) if self.outputs else []
        return step

    def __getattr__(self, name):
        return self._input(name)


def test_every_output_goes_to_its_effect_in_order():
    action = RunAction("start", "web", 7, 1)
    event = TablesChanged("committed", 3, 7)
    node = FakeNode([[Send("hello"), Persist("tables"), Notify(("role", "a", "b")), action, event]])
    effects = Recorder()
    clock = Clock()
    clock.advance(12)
    Driver(node, effects, clock).received("datagram", "1.2.3.4:5")
    assert verifyObject(IEffects, effects)
    assert effects.calls == [("send", "hello", 7), ("persist", "tables"), ("notify", ("role", "a", "b")),
                             ("log", action), ("run", action), ("log", event)]
    assert node.inputs == [("receive", 12, "datagram", "1.2.3.4:5")]


def test_results_come_back_as_inputs_through_the_same_step():
    action = RunAction("start", "web", 7, 1)
    probe = RunProbe("order", 7)
    node = FakeNode([[action, probe]])
    effects = Recorder()
    clock = Clock()
    driver = Driver(node, effects, clock)
    driver.tick()
    assert ("probe_done", 0, probe, ProbeResult(Status.OK, 0.001, "fine")) in node.inputs
    clock.advance(2)
    effects.action.callback((True, "started"))
    assert node.inputs[-1] == ("action_done", 2, action, True, "started")


def test_a_tick_is_followed_by_the_reconcile_it_committed_for():
    node = FakeNode([])
    Driver(node, Recorder(), Clock()).tick()
    assert [i[0] for i in node.inputs] == ["tick", "reconcile"]


def test_a_node_error_costs_one_input_and_is_raised_when_strict():
    class Broken(FakeNode):
        def receive(self, now, *args):
            raise RuntimeError("bug")

    driver = Driver(Broken([]), Recorder(), Clock())
    assert driver.received("datagram", "x") is False
    assert driver.received("datagram", "x") is False  # and again: the node is still fed
    with pytest.raises(RuntimeError):
        Driver(Broken([]), Recorder(), Clock(), strict=True).received("datagram", "x")


def test_events_say_what_they_are_for_the_log():
    decision = Decision("assign", "web", None, "web -> 1.2.0.3")
    assert Decided(decision).log_level() == "info" and Decided(decision, repeated=True).log_level() == "debug"
    assert RunAction("start", "web", (3 << 16) | 4, 9).fields()["term_text"] == "3/4"
