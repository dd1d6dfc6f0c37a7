"""Finding probes (built-ins, drop-ins, broken modules), config checks, running checks, `rais probes`/`rais probe`."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from probe_stubs import Flawed
from test_cli import GOOD as CONFIG  # the smallest valid config: cluster 1.2, host 7, key rais.key
from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from rais.cli import main
from rais.config import ConfigError, load_config
from rais.ids import HostClusterId
from rais.interfaces import ProbeResult, Status
from rais.probing.conformance import closed_port
from rais.probing.discover import ProbeRegistry, discover
from rais.probing.runner import GUARD_SLACK, ProbeRunner, run_probe
from rais.probing.schedule import ProbeOrder

BUILTINS = {"dns", "exec", "http", "https", "smtp", "tcp"}

DROP_IN = '''
from twisted.internet.defer import succeed
from zope.interface import implementer

from rais.checks import text
from rais.interfaces import IProbe, Option, Status
from rais.probing.base import BaseProbe


@implementer(IProbe)
class Echo(BaseProbe):
    name = "{name}"
    description = "a drop-in probe for the tests"
    default_port = 7
    options = (Option("say", "what to report", text(), "hello"),)

    def attempt(self, reactor, host, port, values, timeout):
        return succeed((Status.OK, f"{{values['say']}} from {{host}}:{{port}}"))


probe = Echo()
'''

BROKEN = {
    "syntax": ("def (:\n", "SyntaxError: "),
    "imports": ("import no_such_module_for_rais\n", "ModuleNotFoundError: No module named 'no_such_module_for_rais'"),
    "raises": ("raise RuntimeError('cannot start')\n", "RuntimeError: cannot start"),
    "partial": (textwrap.dedent('''
        from zope.interface import implementer
        from rais.interfaces import IProbe

        @implementer(IProbe)
        class Half:
            name = "half"
            description = "claims IProbe but has no check"
            default_port = 1
            options = ()
            def validate(self, options):
                return {}

        half = Half()
        '''), "half: does not provide IProbe: "),
}


def unique(prefix: str) -> str:
    # Modules stay imported for the whole test run: every test gets new names.
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def drop_in(folder: Path, name: str, text: str | None = None) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(text if text is not None else DROP_IN.format(name=name))
    return path


def test_builtins_are_found_with_their_files():
    registry = discover()
    assert set(registry.probes) == BUILTINS
    assert registry.failures == ()
    root = Path(__file__).resolve().parent.parent / "probes"
    assert registry.sources["https"] == str(root / "http.py")
    assert registry.sources["tcp"] == str(root / "tcp.py")


def test_a_drop_in_module_is_a_new_probe(tmp_path):
    name = unique("echo")
    path = drop_in(tmp_path / "probes.d", name)
    registry = discover([str(tmp_path / "probes.d")])
    assert set(registry.probes) == BUILTINS | {name}
    assert registry.sources[name] == str(path)
    assert set(discover().probes) == BUILTINS  # the folder is searched only when listed


def test_broken_modules_are_reported_and_the_rest_still_load(tmp_path):
    folder = tmp_path / "probes.d"
    good = unique("good")
    drop_in(folder, good)
    files = {kind: drop_in(folder, unique(kind), text) for kind, (text, _) in BROKEN.items()}
    same_name = drop_in(folder, unique("zz_again"), DROP_IN.format(name=good))  # after good_*.py
    shadow = drop_in(folder, "tcp", DROP_IN.format(name="tcp2"))
    registry = discover([str(folder)])
    assert set(registry.probes) == BUILTINS | {good}
    reasons = {failure.file: failure.reason for failure in registry.failures}
    for kind, (_, reason) in BROKEN.items():
        assert reasons.pop(str(files[kind])).startswith(reason), kind
    assert reasons.pop(str(same_name)) == f"probe: probe name {good!r} already taken by {folder / good}.py"
    assert reasons.pop(str(shadow)).startswith("shadowed by ") and reasons == {}


def test_config_checks_probe_names_options_and_ports(tmp_path):
    assert main(["keygen", str(tmp_path / "rais.key")]) == 0
    name = unique("echo")
    drop_in(tmp_path / "probes.d", name)
    path = tmp_path / "rais.toml"
    path.write_text(CONFIG + f'''
[probes]
paths = ["probes.d"]

[services.mine]
probe = "{name}"
say = "hi"

[services.web]
probe = "http"
path = "health"
expect = 99
colour = "blue"

[services.db]
probe = "tcp"

[services.typo]
probe = "htp"
''')
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert info.value.problems == [
        f"{path}: services.web.colour: unknown key (neither a service key nor an option of this probe: "
        "path, method, host, headers, expect, body, body_regex)",
        f'{path}: services.web.expect: expected a status 100..599, a range like "200-299", or an array of them, got 99',
        f"{path}: services.web.path: expected a path starting with / and without spaces, got 'health'",
        f"{path}: services.db.port: missing required key (probe tcp has no default port)",
        f"{path}: services.typo.probe: unknown probe 'htp' (found: {', '.join(sorted(BUILTINS | {name}))})",
    ]


def test_config_probe_paths_must_be_folders(tmp_path):
    assert main(["keygen", str(tmp_path / "rais.key")]) == 0
    path = tmp_path / "rais.toml"
    path.write_text(CONFIG + '[probes]\npaths = ["nowhere"]\n')
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert info.value.problems == [f"{path}: probes.paths: item 1: {tmp_path / 'nowhere'}: no such folder"]


def rais(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rais.cli", *args], capture_output=True, text=True, timeout=30)


def test_rais_probes_and_rais_probe_use_a_drop_in_folder(tmp_path):
    assert main(["keygen", str(tmp_path / "rais.key")]) == 0
    name = unique("echo")
    good = drop_in(tmp_path / "probes.d", name)
    broken = drop_in(tmp_path / "probes.d", unique("broken"), BROKEN["raises"][0])
    config = tmp_path / "rais.toml"
    config.write_text(CONFIG + '[probes]\npaths = ["probes.d"]\n')

    listed = rais("probes", "--config", str(config))
    assert listed.returncode == 1, listed
    listing = f'{name}: {good} (port 7)\n    a drop-in probe for the tests\n    say = "hello": what to report\n'
    assert listing in listed.stdout
    assert f"{broken}: failed to load: RuntimeError: cannot start\n" in listed.stdout

    ran = rais("probe", name, "127.0.0.1:9", "--option", "say=hi there", "--config", str(config))
    assert (ran.returncode, ran.stdout.split(" (")[0]) == (0, f"OK: {name} 127.0.0.1:9: hi there from 127.0.0.1:9")
    assert rais("probe", name, "127.0.0.1:9").returncode == 3  # not found without the config's folder


def test_rais_probe_exits_like_a_nagios_plugin():
    port = closed_port()
    ran = rais("probe", "tcp", f"127.0.0.1:{port}", "--timeout", "2")
    assert ran.returncode == 2
    assert ran.stdout.startswith(f"CRITICAL: tcp 127.0.0.1:{port}: connection was refused by other side (")
    ran = rais("probe", "http", f"127.0.0.1:{port}", "-o", "expect=[200, 204]", "-o", "path=health")
    assert ran.returncode == 3
    assert ran.stderr == "rais probe: --option path: expected a path starting with / and without spaces, got 'health'\n"
    assert rais("probe", "nope", "127.0.0.1:1").returncode == 3
    assert rais("probe", "tcp", "127.0.0.1").returncode == 3


class TestRunProbe(TestCase):
    async def probe(self, how: str, timeout: float = 1.0) -> ProbeResult:
        return await run_probe(reactor, Flawed(how), "127.0.0.1", None, {}, timeout)

    async def test_a_probe_that_raises_is_unknown(self):
        result = await self.probe("raises")
        assert (result.status, result.detail) == (Status.UNKNOWN, "probe error: RuntimeError: bug in the probe")
        self.flushLoggedErrors(RuntimeError)

    async def test_a_target_error_is_critical(self):
        result = await self.probe("errbacks")
        assert (result.status, result.detail) == (Status.CRITICAL, "Connection reset by peer")

    async def test_junk_is_unknown(self):
        result = await self.probe("junk")
        assert result.status == Status.UNKNOWN
        self.flushLoggedErrors(ValueError)

    async def test_a_hanging_probe_is_critical_just_after_its_timeout(self):
        result = await self.probe("hangs", timeout=0.2)
        assert (result.status, result.detail) == (Status.CRITICAL, f"timed out after {0.2 + GUARD_SLACK:g} s")

    async def test_no_port_is_unknown(self):
        probe = discover().lookup("tcp")
        result = await run_probe(reactor, probe, "127.0.0.1", None, {}, 1.0)
        assert (result.status, result.detail) == (Status.UNKNOWN, "probe tcp needs a port")


def order(probe: str) -> ProbeOrder:
    return ProbeOrder((HostClusterId.parse("1.2.0.7"), "web"), probe, "127.0.0.1", 9, {}, 1.0, 5.0)


class _BrokenRegistry:
    def lookup(self, name):
        raise RuntimeError("bug in the registry")


class TestProbeRunner(TestCase):
    registry = ProbeRegistry({"errbacks": Flawed("errbacks")}, {"errbacks": "probe_stubs.py"}, ())

    async def test_an_order_runs_its_probe(self):
        result = await ProbeRunner(self.registry, reactor).run(order("errbacks"))
        assert (result.status, result.detail) == (Status.CRITICAL, "Connection reset by peer")

    async def test_an_unknown_probe_is_unknown(self):
        result = await ProbeRunner(self.registry, reactor).run(order("nope"))
        assert (result.status, result.detail) == (Status.UNKNOWN, "no probe named 'nope' here")

    async def test_a_bug_on_the_way_is_unknown_and_logged(self):
        result = await ProbeRunner(_BrokenRegistry(), reactor).run(order("errbacks"))
        assert (result.status, result.detail) == (Status.UNKNOWN, "probe error: RuntimeError: bug in the registry")
        assert len(self.flushLoggedErrors(RuntimeError)) == 1
