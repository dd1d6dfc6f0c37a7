"""`rais plan` as an operator runs it, on a real status document from the simulator: the plan
it shows, and every malformed variant of the document or of --fail refused with one line that
names the place, exit status 2, and no traceback."""

import contextlib
import copy
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rais
from rais.cli import main
from rais.sim import Simulation
from rais.wire import ServiceDecl

BIG = "x" * 5_000_000  # a 5 MB field: an error quotes a little of it, never the whole
LONGEST = 300  # characters in an error line
DEEP = 100_000  # nested arrays: past any recursion limit
DELETE = object()  # in an edit: remove the key
EXCEPTION = re.compile(r"\b[A-Z]\w*(Error|Exception|Warning)\b|Traceback")


def decl(name, running):
    return ServiceDecl(name, "tcp", 80, running, True, True, "{}")


@pytest.fixture(scope="module")
def document():
    """The master's status document, as `rais status --json` saves it: db runs on 1.2.0.1, web on
    1.2.0.2; web is declared on 1.2.0.1 and 1.2.0.3 as well; 1.2.0.3 serves nothing."""
    services = {1: (decl("db", True), decl("web", False)), 2: (decl("web", True),), 3: (decl("web", False),)}
    sim = Simulation(["master", "active", "standby"], services=services)
    sim.run_until(sim.converged, 30)
    sim.run(3)
    doc = json.loads(json.dumps(sim.masters()[0].node.status(sim.clock.seconds())))
    # The rows the cases below point into, by index.
    tables = doc["tables"]
    assert [(r["host"], r["name"], r["assigned"]) for r in tables["services"]] == [
        ("1.2.0.1", "db", True), ("1.2.0.1", "web", False), ("1.2.0.2", "web", True), ("1.2.0.3", "web", False)]
    assert [r["host"] for r in tables["servers"]] == ["1.2.0.1", "1.2.0.2", "1.2.0.3"]
    assert [r["host"] for r in tables["cpu"]] == [r["host"] for r in tables["network"]] == ["1.2.0.1", "1.2.0.2",
                                                                                          "1.2.0.3"]
    assert [r["host"] for r in tables["latency"]] == ["1.2.0.2", "1.2.0.3"]
    assert [r["name"] for r in tables["policy"]] == ["db", "web"]
    assert doc["master"] == "1.2.0.1" and doc["reconcile"]["orders"] == []
    return doc


@pytest.fixture
def run(document, tmp_path, monkeypatch, capsys):
    """``rais plan [--tables doc.json] ARGS`` in-process, the file made by ``make(document)``
    (not written if ``make`` is None): (exit status, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)  # the file is doc.json in every message

    def run(make, *args):
        if make is not None:
            (tmp_path / "doc.json").write_bytes(make(document))
        code = main(["plan", *args] if "--tables" in args else ["plan", "--tables", "doc.json", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def unchanged(doc):
    return json.dumps(doc).encode()


# --- the plan ---


def test_the_document_as_saved_plans_nothing(run, document):
    generation = document["generation"]
    assert run(unchanged) == (0, f"next, on the tables at generation {generation}, the master would:\nnothing\n", "")


def test_a_host_going_down_moves_its_copy_to_another_host(run, document):
    code, out, err = run(unchanged, "--fail", "1.2.0.2")
    assert (code, err) == (0, "")
    head, unassign, assign, *scores = out.splitlines()
    assert head == f"if 1.2.0.2 goes down (tables at generation {document['generation']}), the master would:"
    assert unassign == "unassign: web lost on 1.2.0.2 (down)"
    assert assign.startswith("assign: web -> 1.2.0.3 (score ")
    assert scores[0].startswith("  1.2.0.1: score ") and scores[1:] == ["  1.2.0.2: down"]


def test_a_service_failing_is_released_there_and_started_elsewhere(run, document):
    code, out, err = run(unchanged, "--fail", "1.2.0.2:web")
    assert (code, err) == (0, "")
    head, release, assign, *_ = out.splitlines()
    assert head == f"if web fails on 1.2.0.2 (tables at generation {document['generation']}), the master would:"
    assert release == "release: web lost on 1.2.0.2 (the service failed here)"
    assert assign.startswith("assign: web -> 1.2.0.3 (score ")


def test_a_host_serving_nothing_going_down_changes_nothing(run):
    code, out, err = run(unchanged, "--fail", "1.2.0.3")
    assert (code, out.splitlines()[1:], err) == (0, ["nothing: 1.2.0.3 serves no service"], "")


def test_json_without_a_failure(run, document):
    code, out, err = run(unchanged, "--json")
    assert (code, err) == (0, "")
    plan = json.loads(out)
    assert plan["event"] is None and (plan["at"], plan["generation"]) == (document["at"], document["generation"])
    assert plan["decisions"] == [] and plan["rows"] == [] and plan["resend"] == []


def test_json_of_a_host_going_down_names_the_new_host_with_every_score_and_the_order(run, document):
    code, out, err = run(unchanged, "--fail", "1.2.0.2", "--json")
    assert (code, err) == (0, "")
    plan = json.loads(out)
    assert plan["event"] == "1.2.0.2 goes down"
    for d in plan["decisions"]:
        assert set(d) == {"action", "service", "host", "explanation", "scores", "order"}
    unassign, assign = plan["decisions"]
    assert (unassign["action"], unassign["service"], unassign["host"], unassign["order"]) == (
        "unassign", "web", "1.2.0.2", None)
    assert (assign["action"], assign["service"], assign["host"]) == ("assign", "web", "1.2.0.3")
    assert assign["explanation"].startswith("web -> 1.2.0.3 (score ")
    epoch = {r["host"]: r["boot_epoch"] for r in document["tables"]["servers"]}["1.2.0.3"]
    assert assign["order"] == {"order": 1, "action": "assign", "host": "1.2.0.3", "service": "web", "epoch": epoch}
    scores = {s["host"]: s for s in assign["scores"]}
    assert set(scores) == {"1.2.0.1", "1.2.0.2", "1.2.0.3"}
    assert scores["1.2.0.2"]["ruled_out"] == "down" and scores["1.2.0.3"]["ruled_out"] is None
    assert scores["1.2.0.3"]["score"] > scores["1.2.0.1"]["score"]
    assert set(scores["1.2.0.3"]["parts"]) >= {"cpu", "latency", "role"}
    assert {"table": "services", "host": "1.2.0.2", "name": "web"}.items() <= plan["rows"][0].items()


@pytest.mark.parametrize("change", [
    pytest.param((("master",), None), id="no-master-known"),  # from a host that knows of none
    pytest.param((("reconcile",), DELETE), id="no-reconcile-section"),  # not the master's: no memory
])
def test_what_a_document_from_another_host_may_lack_is_not_an_error(run, change):
    code, out, err = run(edit(change), "--fail", "1.2.0.2")
    assert (code, err) == (0, "") and "assign: web -> 1.2.0.3" in out


# --- malformed variants, each made from the valid document ---


def edit(*changes):
    """The document with each (path, value) change made; DELETE removes the key."""
    def make(doc):
        doc = copy.deepcopy(doc)
        for path, value in changes:
            *steps, last = path
            target = doc
            for step in steps:
                target = target[step]
            if value is DELETE:
                del target[last]
            else:
                target[last] = value
        return json.dumps(doc).encode()  # NaN and Infinity as Python's json writes them
    return make


def row(table, index, **fields):
    return edit(*((("tables", table, index, name), value) for name, value in fields.items()))


def twice(table, index):
    """A second copy of one row, at the end of its table."""
    def make(doc):
        doc = copy.deepcopy(doc)
        doc["tables"][table].append(doc["tables"][table][index])
        return json.dumps(doc).encode()
    return make


def orders(*changes, next_order=None):
    """The document with orders in flight: one per dict of changes to a valid order (DELETE removes)."""
    def make(doc):
        at = doc["at"]
        valid = {"order": 1, "action": "assign", "host": "1.2.0.3", "service": "web", "epoch": 1, "sent_at": at,
                 "deadline": at + 100}
        entries = [{k: v for k, v in {**valid, **c}.items() if v is not DELETE} for c in changes]
        return edit((("reconcile", "orders"), entries),
                    (("reconcile", "next_order"), next_order or len(entries) + 1))(doc)
    return make


def order(**fields):
    return orders(fields)


def entries(key, *items):
    return edit((("reconcile", key), list(items)))


def spliced(path, json_text):
    """The document with ``json_text`` at ``path``, as written (what json.dumps would not write)."""
    def make(doc):
        return edit((path, "@@here@@"))(doc).replace(b'"@@here@@"', json_text.encode())
    return make


def nested(path, depth=DEEP):
    return spliced(path, "[" * depth + "]" * depth)


def raw(content):
    return lambda doc: content


HOST = 'expected a host-cluster id like "1.2.0.7"'
WEB = "tables.services[2] (1.2.0.2 web)"
NOT_A_DOCUMENT = "doc.json: not a status document: "
EXCLUDED = {"host": "1.2.0.3", "service": "web", "why": "down", "until": 1.0}

# (id, the file's content made from the document (None: no file written), arguments, what the line says)
MALFORMED = [
    # The file
    ("not-json", raw(b'{"tables": '), [], "doc.json: not JSON: Expecting value: line 1 column 12"),
    ("empty-file", raw(b""), [], "doc.json: not JSON: Expecting value: line 1 column 1"),
    ("top-array", raw(b"[]"), [], NOT_A_DOCUMENT + "expected a JSON object, got an array"),
    ("top-string", raw(b'"status"'), [], NOT_A_DOCUMENT + "expected a JSON object, got a string"),
    ("top-number", raw(b"42"), [], NOT_A_DOCUMENT + "expected a JSON object, got a number"),
    ("top-true", raw(b"true"), [], NOT_A_DOCUMENT + "expected a JSON object, got true or false"),
    ("top-null", raw(b"null"), [], NOT_A_DOCUMENT + "expected a JSON object, got null"),
    ("invalid-utf8", raw(b'{"master": "\xff\xfe"}'), [], "doc.json: not UTF-8: byte 0xff at offset 12"),
    ("deeply-nested-file", raw(b"[" * DEEP + b"]" * DEEP), [], NOT_A_DOCUMENT + "nested too deeply"),
    ("deeply-nested-master", nested(("master",)), [], NOT_A_DOCUMENT + "nested too deeply"),
    ("deeply-nested-in-a-row", nested(("tables", "services", 2, "detail")), [], NOT_A_DOCUMENT + "nested too deeply"),
    ("900-nested-master", nested(("master",), 900), [], f"doc.json: master: {HOST}, got an array"),
    ("900-nested-in-a-row", nested(("tables", "services", 2, "detail"), 900), [],
     f"doc.json: {WEB}: detail: expected a string of 0 to 200 characters, got an array"),
    ("5000-digit-number", spliced(("generation",), "1" * 5000), [], NOT_A_DOCUMENT + "a number of more than 4300"),
    ("a-key-twice", lambda doc: b'{"master": "1.2.0.9", ' + json.dumps(doc).encode()[1:], [],
     NOT_A_DOCUMENT + '"master" twice in one object'),
    ("no-such-file", None, ["--tables", "missing.json"], "rais plan: missing.json: No such file or directory"),
    ("a-directory", None, ["--tables", "."], "rais plan: .: Is a directory"),
    ("empty-file-name", None, ["--tables", ""], "rais plan: --tables: expected a file name"),
    # The tables
    ("tables-missing", edit((("tables",), DELETE)), [], "doc.json: tables: missing"),
    ("tables-an-array", edit((("tables",), [])), [], "doc.json: tables: expected a JSON object, got an array"),
    ("unknown-table", edit((("tables", "zones"), [])), [], 'doc.json: tables: unknown table "zones" (the tables are'),
    ("table-not-an-array", edit((("tables", "services"), {})), [],
     "doc.json: tables.services: expected a JSON array, got an object"),
    ("row-not-an-object", edit((("tables", "services", 2), "web")), [],
     "doc.json: tables.services[2]: expected a JSON object, got a string"),
    ("row-missing-a-field", row("services", 2, state=DELETE), [], f"doc.json: {WEB}: state: missing"),
    ("row-unknown-field", row("services", 2, colour="red"), [], f'doc.json: {WEB}: unknown field "colour"'),
    ("host-id-a-number", row("servers", 1, host=7), [], f"doc.json: tables.servers[1]: host: {HOST}, got 7"),
    ("host-id-bad-octet", row("cpu", 0, host="1.2.0.x"), [],
     f"doc.json: tables.cpu[0]: host: {HOST}, got \"1.2.0.x\" ('x' is not an octet)"),
    ("host-id-host-zero", row("cpu", 0, host="1.2.0.0"), [], '"1.2.0.0" (host id 0 is invalid)'),
    ("host-id-null", row("network", 0, host=None), [], f"doc.json: tables.network[0]: host: {HOST}, got null"),
    ("state-unknown", row("services", 2, state="sleeping"), [],
     f'doc.json: {WEB}: state: expected one of running, stopped, failed, unknown, got "sleeping"'),
    ("status-unknown", row("servers", 1, status="lost"), [],
     'doc.json: tables.servers[1] (1.2.0.2): status: expected one of up, suspect, down, got "lost"'),
    ("role-a-number", row("servers", 1, role=3), [], "tables.servers[1] (1.2.0.2): role: expected one of"),
    ("result-null", row("services", 2, result=None), [], f"{WEB}: result: expected one of none, ok, "),
    ("integer-a-string", row("services", 2, port="80"), [],
     f'doc.json: {WEB}: port: expected a whole number 0..65535, got "80"'),
    ("integer-a-fraction", row("latency", 0, rtt_us=2.5), [], "tables.latency[0] (1.2.0.2): rtt_us: "),
    ("integer-true", row("services", 2, changed_ms=True), [], f"{WEB}: changed_ms: expected a whole number"),
    ("port-out-of-range", row("services", 2, port=70000), [], f"{WEB}: port: expected a whole number 0..65535, got"),
    ("cpu-over-1000", row("cpu", 0, cpu_permille=1001), [], "tables.cpu[0] (1.2.0.1): cpu_permille: "),
    ("priority-over-255", row("servers", 0, priority=256), [], "tables.servers[0] (1.2.0.1): priority: "),
    ("integer-2**70", row("servers", 0, boot_epoch=2**70), [], "tables.servers[0] (1.2.0.1): boot_epoch: "),
    ("negative-integer", row("network", 0, rx_bps=-1), [], "tables.network[0] (1.2.0.1): rx_bps: "),
    ("nan-integer", row("cpu", 0, cpu_permille=float("nan")), [],
     "tables.cpu[0] (1.2.0.1): cpu_permille: expected a whole number 0..1000, got NaN"),
    ("boolean-a-string", row("services", 2, running="yes"), [], f'{WEB}: running: expected true or false, got "yes"'),
    ("boolean-a-number", row("services", 2, assigned=1), [], f"{WEB}: assigned: expected true or false, got 1"),
    ("hex-not-hex", row("servers", 0, catalogue="zz"), [],
     'tables.servers[0] (1.2.0.1): catalogue: expected 8 bytes in hexadecimal, got "zz"'),
    ("hex-too-short", row("servers", 0, catalogue="00"), [], "tables.servers[0] (1.2.0.1): catalogue: expected 8"),
    ("hex-a-number", row("servers", 0, catalogue=5), [], "tables.servers[0] (1.2.0.1): catalogue: expected 8"),
    ("checks-a-string", row("services", 2, checks="fast"), [],
     f"doc.json: {WEB}: checks: expected a JSON object, got a string"),
    ("checks-negative", edit((("tables", "services", 2, "checks", "rise"), -1)), [],
     f"doc.json: {WEB}: checks: rise: expected a whole number 0..100, got -1"),
    ("checks-unknown-field", edit((("tables", "services", 2, "checks", "every"), 5)), [],
     f'doc.json: {WEB}: checks: unknown field "every"'),
    ("weights-a-string", edit((("tables", "policy", 1, "weights", "cpu"), "high")), [],
     'doc.json: tables.policy[1] (web): weights: cpu: expected a whole number 0..1000000, got "high"'),
    ("replicas-zero", row("policy", 1, replicas=0), [], "tables.policy[1] (web): replicas: expected a whole number 1"),
    ("name-empty", row("services", 2, name=""), [], "doc.json: tables.services[2]: name: expected a string of 1"),
    ("name-with-a-newline", row("services", 2, name="w\neb", port=-1), [],
     'doc.json: tables.services[2] (1.2.0.2 "w\\neb"): port: '),
    ("detail-over-200-bytes", row("services", 2, detail="é" * 150), [],
     f"doc.json: {WEB}: detail: 300 bytes of UTF-8, at most 200"),
    ("huge-detail", row("services", 2, detail=BIG), [],
     f'{WEB}: detail: expected a string of 0 to 200 characters, got "xxxxx'),
    ("huge-address", row("servers", 0, address=BIG), [], "tables.servers[0] (1.2.0.1): address: expected a string"),
    ("huge-name", row("services", 2, name=BIG), [], "doc.json: tables.services[2]: name: expected a string"),
    ("huge-host", row("servers", 0, host=BIG), [], f"doc.json: tables.servers[0]: host: {HOST}, got \"xxx"),
    ("huge-field-name", row("services", 2, **{BIG: 1}), [], f'doc.json: {WEB}: unknown field "xxx'),
    ("huge-table-name", edit((("tables", BIG), [])), [], 'doc.json: tables: unknown table "xxx'),
    ("huge-master", edit((("master",), BIG)), [], f"doc.json: master: {HOST}, got \"xxx"),
    ("huge-interval", edit((("timing", "interval"), BIG)), [], 'doc.json: timing.interval: expected a number, got "'),
    ("huge-order-service", order(service=BIG), [],
     "doc.json: reconcile.orders[0]: service: expected a string of 1 to 64 characters"),
    ("huge-reason", entries("excluded", {**EXCLUDED, "why": BIG}), [],
     "doc.json: reconcile.excluded[0].why: expected a string of 0 to 200 characters"),
    ("second-server-row", twice("servers", 0), [],
     "doc.json: tables.servers[3] (1.2.0.1): a second row with this key; the first is tables.servers[0]"),
    ("second-service-row", twice("services", 2), [],
     "doc.json: tables.services[4] (1.2.0.2 web): a second row with this key; the first is tables.services[2]"),
    ("second-policy-row", twice("policy", 1), [],
     "doc.json: tables.policy[2] (web): a second row with this key; the first is tables.policy[1]"),
    ("generation-negative", edit((("generation",), -1)), [], "doc.json: generation: expected a whole number"),
    ("generation-a-string", edit((("generation",), "5")), [], 'doc.json: generation: expected a whole number'),
    ("generation-2**70", edit((("generation",), 2**70)), [], "doc.json: generation: expected a whole number"),
    ("tables-term-negative", edit((("tables_term",), -1)), [], "doc.json: tables_term: expected a whole number"),
    # The master, its timing and its memory
    ("master-garbage", edit((("master",), "garbage")), [], f'doc.json: master: {HOST}, got "garbage"'),
    ("master-7", edit((("master",), 7)), [], f"doc.json: master: {HOST}, got 7"),
    ("master-an-object", edit((("master",), {"id": "1.2.0.1"})), [], f"doc.json: master: {HOST}, got an object"),
    ("master-missing", edit((("master",), DELETE)), [], "doc.json: master: missing"),
    ("timing-missing", edit((("timing",), DELETE)), [], "doc.json: timing: missing"),
    ("timing-an-array", edit((("timing",), [1, 3])), [], "doc.json: timing: expected a JSON object, got an array"),
    ("interval-a-string", edit((("timing", "interval"), "1")), [], 'doc.json: timing.interval: expected a number'),
    ("interval-zero", edit((("timing", "interval"), 0)), [], "doc.json: timing.interval: expected seconds over 0"),
    ("interval-nan", edit((("timing", "interval"), float("nan"))), [],
     "doc.json: timing.interval: expected a number, got NaN"),
    ("interval-infinity", edit((("timing", "interval"), float("inf"))), [],
     "doc.json: timing.interval: expected a number, got Infinity"),
    ("dead-after-missing", edit((("timing", "dead_after"), DELETE)), [], "doc.json: timing.dead_after: missing"),
    ("dead-after-a-fraction", edit((("timing", "dead_after"), 2.5)), [],
     "doc.json: timing.dead_after: expected a whole number"),
    ("quorum-a-string", edit((("timing", "quorum"), "no")), [], 'doc.json: timing.quorum: expected true or false'),
    ("timing-unknown-field", edit((("timing", "speed"), 1)), [], 'doc.json: timing: unknown field "speed"'),
    ("reconcile-a-string", edit((("reconcile",), "none")), [], "doc.json: reconcile: expected a JSON object"),
    ("reconcile-unknown-field", edit((("reconcile", "pending"), [])), [],
     'doc.json: reconcile: unknown field "pending"'),
    ("orders-an-object", edit((("reconcile", "orders"), {})), [], "doc.json: reconcile.orders: expected a JSON array"),
    ("order-bad-action", order(action="restart"), [],
     'doc.json: reconcile.orders[0]: action: expected one of assign, release, refresh, got "restart"'),
    ("order-bad-host", order(host="1.2.0"), [], f'doc.json: reconcile.orders[0]: host: {HOST}, got "1.2.0"'),
    ("order-service-a-number", order(service=5), [], "doc.json: reconcile.orders[0]: service: expected a string"),
    ("order-number-negative", order(order=-1), [], "doc.json: reconcile.orders[0]: order: expected a whole number"),
    ("order-number-2**70", order(order=2**70), [], "doc.json: reconcile.orders[0]: order: expected a whole number"),
    ("order-deadline-missing", order(deadline=DELETE), [], "doc.json: reconcile.orders[0].deadline: missing"),
    ("order-unknown-field", order(why="because"), [], 'doc.json: reconcile.orders[0]: unknown field "why"'),
    ("order-number-twice", orders({}, {"action": "release", "host": "1.2.0.2"}), [],
     "doc.json: reconcile.orders[1].order: a second order 1; the first is reconcile.orders[0]"),
    ("next-order-behind", orders({}, next_order=1), [],
     "doc.json: reconcile.next_order: expected at least 2, above every order in flight, got 1"),
    ("next-order-negative", edit((("reconcile", "next_order"), -1)), [],
     "doc.json: reconcile.next_order: expected a whole number"),
    ("excluded-bad-host", entries("excluded", {**EXCLUDED, "host": 7}), [],
     f"doc.json: reconcile.excluded[0].host: {HOST}, got 7"),
    ("excluded-no-until", entries("excluded", {k: v for k, v in EXCLUDED.items() if k != "until"}), [],
     "doc.json: reconcile.excluded[0].until: missing"),
    ("excluded-twice", entries("excluded", EXCLUDED, EXCLUDED), [],
     "doc.json: reconcile.excluded[1]: a second entry for 1.2.0.3 web"),
    ("released-at-negative", entries("released_at", {"host": "1.2.0.3", "service": "web", "at": -1}), [],
     "doc.json: reconcile.released_at[0].at: expected seconds, at least 0, got -1"),
    ("over-since-unknown-field", entries("over_since", {"host": "1.2.0.3", "service": "web", "since": 1, "x": 1}),
     [], 'doc.json: reconcile.over_since[0]: unknown field "x"'),
    ("leaving-not-a-host", edit((("reconcile", "leaving"), {"web": "now"})), [],
     "doc.json: reconcile.leaving.web: expected a host-cluster id like \"1.2.0.7\", got \"now\""),
    ("leaving-empty-name", edit((("reconcile", "leaving"), {"": "1.2.0.2"})), [],
     'doc.json: reconcile.leaving: expected a string of 1 to 64 characters, got ""'),
    ("at-a-string", edit((("at",), "yesterday")), [], 'doc.json: at: expected a number, got "yesterday"'),
    ("at-negative", edit((("at",), -1)), [], "doc.json: at: expected seconds, at least 0, got -1"),
    ("at-infinity", edit((("at",), float("inf"))), [], "doc.json: at: expected a number, got Infinity"),
    ("at-400-digits", spliced(("at",), "9" * 400), [], "doc.json: at: expected a number, got 99999"),
    ("at-missing", edit((("at",), DELETE)), [], "doc.json: at: missing"),
    # --fail
    ("fail-empty", edit(), ["--fail", ""], f'rais plan: --fail: {HOST}, got ""'),
    ("fail-host-colon", edit(), ["--fail", "1.2.0.2:"],
     'rais plan: --fail: "1.2.0.2:": after the host comes one service name (1 to 64 of A-Z a-z 0-9 _ . -)'),
    ("fail-two-colons", edit(), ["--fail", "1.2.0.2:web:x"],
     'rais plan: --fail: "1.2.0.2:web:x": after the host comes one service name'),
    ("fail-three-octets", edit(), ["--fail", "1.2.0"], f'rais plan: --fail: {HOST}, got "1.2.0"'),
    ("fail-host-zero", edit(), ["--fail", "1.2.0.0"], f'rais plan: --fail: {HOST}, got "1.2.0.0" (host id 0 is'),
    ("fail-a-service-name", edit(), ["--fail", "web"], f'rais plan: --fail: {HOST}, got "web"'),
    ("fail-10k-characters", edit(), ["--fail", "1" * 10_000],
     'rais plan: --fail: expected HOST or HOST:SERVICE, got "1'),
    ("fail-unknown-host", edit(), ["--fail", "1.2.0.9"],
     "rais plan: --fail: 1.2.0.9 is not in the servers table (hosts: 1.2.0.1, 1.2.0.2, 1.2.0.3)"),
    ("fail-another-cluster", edit(), ["--fail", "1.3.0.1"],
     "rais plan: --fail: 1.3.0.1 is in cluster 1.3; these tables are of cluster 1.2"),
    ("fail-a-service-declared-nowhere", edit(), ["--fail", "1.2.0.2:mail"], "rais plan: --fail: no host declares mail"),
    ("fail-a-service-not-declared-there", edit(), ["--fail", "1.2.0.3:db"],
     "rais plan: --fail: 1.2.0.3 does not declare db (declared on 1.2.0.1)"),
    ("fail-a-host-and-a-bad-document", edit((("master",), 7)), ["--fail", "1.2.0.9"], "doc.json: master: "),
]


def check_refused(code, out, err, says):
    """Exit status 2, nothing planned, one short line naming the place, no traceback."""
    assert (code, out) == (2, ""), err[:LONGEST]
    assert err.endswith("\n") and err.count("\n") == 1, err[:2000]
    line = err[:-1]
    assert line.startswith("rais plan: ") and says in line, line[:2000]
    assert len(line) <= LONGEST, line[:2000]
    assert not EXCEPTION.search(line), line


def test_there_are_at_least_46_malformed_inputs_each_different():
    assert len(MALFORMED) >= 46
    assert len({case[0] for case in MALFORMED}) == len(MALFORMED)


@pytest.mark.parametrize("make,args,says", [case[1:] for case in MALFORMED], ids=[case[0] for case in MALFORMED])
def test_a_malformed_input_is_one_line_naming_where_and_exit_2(run, make, args, says):
    check_refused(*run(make, *args), says)


@pytest.mark.parametrize("make,args,says", [
    (raw(b"[" * DEEP + b"]" * DEEP), [], NOT_A_DOCUMENT + "nested too deeply"),
    (edit((("master",), "garbage")), [], 'doc.json: master: expected a host-cluster id like "1.2.0.7", got "garbage"'),
    (unchanged, ["--fail", "1.2.0.2:web:x"], 'rais plan: --fail: "1.2.0.2:web:x": after the host'),
    (unchanged, ["--fail", "1.3.0.1"], "rais plan: --fail: 1.3.0.1 is in cluster 1.3"),
], ids=["deeply-nested", "master-garbage", "fail-two-colons", "fail-another-cluster"])
def test_the_command_itself_exits_2_without_a_traceback(document, tmp_path, make, args, says):
    (tmp_path / "doc.json").write_bytes(make(document))
    result = command(tmp_path, "--tables", "doc.json", *args)
    check_refused(result.returncode, result.stdout, result.stderr, says)


def test_the_command_itself_plans_the_move(document, tmp_path):
    (tmp_path / "doc.json").write_bytes(unchanged(document))
    result = command(tmp_path, "--tables", "doc.json", "--fail", "1.2.0.2", "--json")
    assert (result.returncode, result.stderr) == (0, "")
    assert [(d["action"], d["host"]) for d in json.loads(result.stdout)["decisions"]] == [
        ("unassign", "1.2.0.2"), ("assign", "1.2.0.3")]


def command(folder, *args):
    """`python -m rais.cli plan ARGS`, run in ``folder`` on the rais under test."""
    env = {**os.environ, "PYTHONPATH": str(Path(rais.__file__).parent.parent)}
    return subprocess.run([sys.executable, "-m", "rais.cli", "plan", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=60)


# --- any value anywhere: a plan, or one line and exit 2 ---

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(-2, 70000) | st.floats()
    | st.text(max_size=80) | st.sampled_from(["", "1.2.0.2", "1.3.0.1", "web", "running", "up", "00" * 8]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)


def places(doc):
    """Every place in the document a value could be put: each field of each row, of timing and
    of the master's memory, and the top-level fields rais plan reads."""
    out = [(key,) for key in ("at", "master", "generation", "tables_term", "timing", "reconcile", "tables")]
    for name, rows in doc["tables"].items():
        out.append(("tables", name))
        for index, item in enumerate(rows):
            out += [("tables", name, index, field) for field in item]
    out += [("timing", field) for field in doc["timing"]]
    out += [("reconcile", field) for field in doc["reconcile"]]
    return out


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@given(data=st.data())
def test_any_value_in_any_field_plans_or_is_refused_in_one_line(document, scratch, data):
    path = data.draw(st.sampled_from(places(document)))
    value = data.draw(json_values)
    fail = data.draw(st.none() | st.sampled_from(["1.2.0.1", "1.2.0.2", "1.2.0.3:web", "1.2.0.2:web"]))
    file = scratch / "doc.json"
    file.write_bytes(edit((path, value))(document))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["plan", "--tables", str(file), *(["--fail", fail] if fail else [])])
    if code == 0:
        assert err.getvalue() == "" and out.getvalue().count("\n") >= 2
    else:
        line = err.getvalue().replace(str(file), "doc.json")
        check_refused(code, out.getvalue(), line, "rais plan: ")
