"""The operator's commands carried from any node to the master (rais.commands): once each, answered,
and harmless when captured and sent again."""

from rais.commands import Answered, Answers, Asker, OperatorCommand, replies
from rais.ids import HostClusterId
from rais.sim import Simulation
from rais.wire import Command, CommandReply, ServiceDecl, decode_message, encode_message
from rais.wire.messages import MAX_REPLIES, REPLY_TEXT
from rais.wire.rows import PolicyRow

ME, MASTER = HostClusterId.parse("1.2.0.3"), HostClusterId.parse("1.2.0.1")


def test_a_long_answer_is_split_between_characters_and_cut_short_past_the_limit():
    text = "é" * 1200 + "x"  # 2401 bytes: three datagrams, none splitting an é
    parts = replies(ME, 7, True, text)
    assert [p.count for p in parts] == [3, 3, 3] and [p.index for p in parts] == [0, 1, 2]
    assert "".join(p.text for p in parts) == text
    assert all(len(p.text.encode()) <= REPLY_TEXT and decode_message(encode_message(p)) == p for p in parts)
    huge = replies(ME, 7, False, "y" * (REPLY_TEXT * MAX_REPLIES + 5))
    assert len(huge) == MAX_REPLIES and huge[-1].text.endswith("(cut short: see the master's log)")
    assert replies(ME, 7, True, "") == (CommandReply(ME, 7, True, 0, 1, ""),)


def test_the_master_carries_out_a_request_once_and_answers_every_copy_the_same():
    answers, done = Answers(limit=2), []

    def carry_out(n):
        return lambda: done.append(n) or (True, f"done {n}")

    first, fresh = answers.answer(ME, 5, 1, carry_out(1))
    assert fresh and answers.answer(ME, 5, 1, carry_out(2)) == (first, False) and done == [1]
    answers.answer(ME, 6, 1, carry_out(3))  # a later boot of the asker numbers afresh
    answers.answer(ME, 6, 2, carry_out(4))  # and the oldest answer is forgotten past the limit
    assert done == [1, 3, 4] and answers.answer(ME, 5, 1, carry_out(5))[1]


def test_the_asker_resends_until_answered_assembles_the_parts_and_gives_up_after_its_patience():
    asker = Asker(ME, resend=0.5, patience=3.0)
    sent = asker.ask(10.0, 1, OperatorCommand("drain", host=ME), MASTER, 77, 9)
    assert sent == Command(MASTER, 77, 1, "drain", "", ME.value, ())
    assert asker.due(10.4) == ([], []) and asker.due(10.5) == ([sent], [])
    two = replies(ME, 1, True, "a" * REPLY_TEXT + "b")
    other = HostClusterId.parse("1.2.0.2")
    assert asker.replied(other, 9, two[0]) is None  # not the master asked
    assert asker.replied(MASTER, 8, two[0]) is None  # nor its term
    assert asker.replied(MASTER, 9, replies(other, 1, True, "x")[0]) is None  # another asker's
    assert asker.replied(MASTER, 9, two[1]) is None
    assert asker.replied(MASTER, 9, two[1]) is None  # a duplicate part
    assert asker.replied(MASTER, 9, two[0]) == Answered(1, True, "a" * REPLY_TEXT + "b")
    assert asker.replied(MASTER, 9, two[0]) is None and asker.due(20.0) == ([], [])  # answered once

    asker.ask(30.0, 2, OperatorCommand("policyReset", "web"), MASTER, 77, 9)
    again, given_up = asker.due(33.0)
    assert again == [] and [(a.request, a.ok) for a in given_up] == [(2, False)]
    assert "may or may not have done it" in given_up[0].text


def cluster(**faults):
    web = ServiceDecl("web", "tcp", 80, True, True, True, "{}")
    sim = Simulation(["master", "active", "standby"], services={1: (web,), 2: (web,), 3: (web,)},
                     policies=(PolicyRow("web", 1, None, None),))
    sim.probe_answer = lambda order: "ok"
    sim.run_until(sim.converged, 30)
    sim.run(3)
    for name, value in faults.items():
        setattr(sim.faults, name, value)
    return sim


def watch(sim):
    """Every Command datagram sent, and every host's operated events, as they happen."""
    commands, operated = [], []
    multicast = sim.multicast

    def recording(sender, datagram):
        if isinstance(datagram.message, Command):
            commands.append(datagram)
        multicast(sender, datagram)
    sim.multicast = recording
    for host in sim.hosts.values():
        log = host.log
        host.log = lambda event, log=log, host=host: (
            operated.append((host.id, event)) if type(event).__name__ == "Operated" else None, log(event))
    return commands, operated


def drained(host, hid):
    return next(r.drained for r in host.node.tables.table("servers") if r.host == hid)


def test_a_command_through_a_follower_is_carried_out_once_and_answered_despite_lost_datagrams():
    sim = cluster(loss=0.4, duplicate=0.3)
    commands, operated = watch(sim)
    standby = next(h for h in sim.alive() if h.node.role == "standby")
    master = sim.masters()[0]
    standby.driver.operate(1, OperatorCommand("drain", host=standby.id))
    sim.run_until(lambda: standby.answers, 10)
    assert [(a.request, a.ok) for a in standby.answers] == [(1, True)], standby.answers
    assert standby.answers[0].text.startswith(f"draining {standby.id}")
    assert [(h, e.by, e.ok) for h, e in operated] == [(master.id, standby.id, True)]  # once, however often sent
    sim.faults.loss = sim.faults.duplicate = 0.0
    sim.run(3)
    assert all(drained(h, standby.id) for h in sim.alive())


def test_a_refusal_comes_back_as_the_masters_reason_and_the_master_itself_answers_at_once():
    sim = cluster()
    standby = next(h for h in sim.alive() if h.node.role == "standby")
    standby.driver.operate(4, OperatorCommand("move", "mail", sim.masters()[0].id))
    sim.run(1)
    assert standby.answers == [Answered(4, False, "no host declares mail")]
    master = sim.masters()[0]
    master.driver.operate(5, OperatorCommand("policySet", "web", settings=(("replicas", "two"),)))
    assert len(master.answers) == 1 and not master.answers[0].ok and "replicas" in master.answers[0].text


def test_a_command_captured_and_sent_again_does_nothing_to_a_restarted_or_a_new_master():
    sim = cluster()
    commands, operated = watch(sim)
    standby = next(h for h in sim.alive() if h.node.role == "standby")
    master = sim.masters()[0]
    standby.driver.operate(1, OperatorCommand("drain", host=standby.id))
    sim.run(1)
    master.driver.operate(2, OperatorCommand("undrain", host=standby.id))
    sim.run(2)
    assert len(operated) == 2 and not drained(master, standby.id)
    (captured,) = commands

    master.deliver(captured)  # the same bytes again: the replay guard drops them
    sim.run(1)
    assert len(operated) == 2 and master.dropped == 1

    # A restarted master's replay guard starts empty: until it hears the asker's newer datagrams
    # it would let the copy through, so the copy goes straight to the node here.
    restarted = sim.restart(master.id, preempt=True)
    sim.run_until(lambda: sim.masters() == [restarted] and sim.converged(), 30)
    restarted.driver.received(captured, "replayed")
    sim.run(1)
    assert len(operated) == 2 and not drained(restarted, standby.id)

    sim.kill(restarted.id)  # and to the next master
    sim.run_until(lambda: len(sim.masters()) == 1 and sim.masters()[0].id != restarted.id, 30)
    successor = sim.masters()[0]
    successor.driver.received(captured, "replayed")
    sim.run(1)
    assert len(operated) == 2 and not drained(successor, standby.id)


def test_an_asker_whose_master_dies_gives_up_saying_the_outcome_is_unknown():
    sim = cluster()
    standby = next(h for h in sim.alive() if h.node.role == "standby")
    master = sim.masters()[0]
    sim.faults.groups = [{master.id}, {h.id for h in sim.alive() if h is not master}]
    standby.driver.operate(1, OperatorCommand("drain", host=standby.id))
    sim.run(4)
    assert [(a.ok, "no answer from the master" in a.text) for a in standby.answers] == [(False, True)]
