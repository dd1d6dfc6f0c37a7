"""RAIS installed as a host installs it: a wheel built from this tree, in a new virtual environment.

Nothing here runs from the tree: the commands are the new environment's, run in a folder outside
the tree with no PYTHONPATH, so a file left out of the wheel, or a dependency left out of its
metadata, fails here as it would on a host. The dependencies come from the running environment,
repacked as wheels, so the install needs no network and gets the versions the other tests ran.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Iterator
from email.parser import Parser
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from test_probe_registry import BUILTINS

from rais.localcluster import LocalCluster, service_rows, wait_for

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "etc" / "probes.d" / "tcp_expect.py"
# Not packaging inputs: version control, environments, caches, and a build's own leftovers (a
# stale build/lib would leak into the wheel). Plugin caches and __pycache__ are copied, so the
# wheel is checked not to take them.
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", ".*_cache", ".hypothesis",
                                    "_trial_temp*")


def pip_env() -> dict[str, str]:
    """This environment without pip's settings: the machine's config files (find-links, an extra
    index, constraints) and PIP_* variables must not decide what this test installs."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_") and key != "PYTHONPATH"}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def run(argv: list[str | Path], **options: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=300, **options)
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of this tree, built by pip with this environment's setuptools, from a copy of the
    tree so that the build writes nothing here."""
    have = metadata.version("setuptools")
    assert Version(have) >= Version("70.1"), (
        f"setuptools {have} here cannot build wheels by itself; the test extras ask for 70.1 or later "
        "(make install brings it)")
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE, symlinks=True)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--wheel-dir", base / "dist", source], env=pip_env())
    [built] = (base / "dist").glob("rais-*.whl")
    return built


# --- the dependencies, as wheels, from the running environment -------------------------------------


def needed(requires: Iterable[str] | None, extras: Iterable[str] = ()) -> Iterator[Requirement]:
    """The requirements among ``requires`` that apply here, with ``extras`` asked for."""
    for line in requires or ():
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": extra}) for extra in ("", *extras)):
            yield requirement


def installed_closure(requires: Iterable[str]) -> list[metadata.Distribution]:
    """The running environment's distributions that ``requires`` need, all the way down."""
    extras: dict[str, set[str]] = {}
    todo = list(needed(requires))
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in extras and extras[name] >= requirement.extras:
            continue
        extras.setdefault(name, set()).update(requirement.extras)
        todo.extend(needed(metadata.distribution(name).requires, extras[name]))
    return [metadata.distribution(name) for name in sorted(extras)]


def repack(dist: metadata.Distribution, folder: Path) -> Path:
    """A wheel of an installed distribution from the files its RECORD lists (less the byte code
    and the scripts, which an install makes anew), with the tags it was installed with."""
    files = [f for f in dist.files or () if f.parts[0] != ".." and not os.path.isabs(f)
             and "__pycache__" not in f.parts and f.name not in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")]
    wheel_file = [f for f in files if f.name == "WHEEL" and f.parent.name.endswith(".dist-info")]
    tags = [line.split(":", 1)[1].strip() for line in (dist.read_text("WHEEL") or "").splitlines()
            if line.startswith("Tag:")]
    assert wheel_file and tags, f"{dist.metadata['Name']} was not installed from a wheel: cannot repack it"
    info = wheel_file[0].parent
    tag = "-".join(".".join(dict.fromkeys(parts)) for parts in zip(*(t.split("-") for t in tags), strict=True))
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    path = folder / f"{name}-{dist.version}-{tag}.whl"
    record = []
    # Stored, not compressed: the wheel is read once, just below.
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as out:
        for f in files:
            data = Path(str(dist.locate_file(f))).read_bytes()
            out.writestr(f.as_posix(), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{f.as_posix()},sha256={digest},{len(data)}\n")
        out.writestr(f"{info.as_posix()}/RECORD", "".join(record) + f"{info.as_posix()}/RECORD,,\n")
    return path


@attrs.frozen
class Installed:
    """A virtual environment with RAIS installed from its wheel, and a folder outside the tree."""

    root: Path
    site: Path  # its site-packages
    home: Path

    @property
    def env(self) -> dict[str, str]:
        # What a service manager gives a daemon: the environment's bin first on PATH, nothing of ours.
        return {"PATH": f"{self.root / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(self.home),
                "LANG": "C.UTF-8"}

    def run(self, program: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
        """One of its programs, from the folder outside the tree; it must succeed."""
        return run([self.root / "bin" / program, *args], cwd=self.home, env=self.env)


@pytest.fixture(scope="module")
def installed(tmp_path_factory, wheel) -> Installed:
    base = tmp_path_factory.mktemp("installed")
    root, house, home = base / "venv", base / "wheelhouse", base / "home"
    house.mkdir()
    home.mkdir()
    # Without pip inside: this environment's pip installs into it (--python), which saves seconds.
    run([sys.executable, "-m", "venv", "--without-pip", root])
    with zipfile.ZipFile(wheel) as built:
        info = next(n for n in built.namelist() if n.endswith(".dist-info/METADATA"))
        requires = Parser().parsestr(built.read(info).decode()).get_all("Requires-Dist") or []
    for dist in installed_closure(requires):
        repack(dist, house)
    # Only what the wheel's metadata asks for is installed: the wheelhouse and no index. Without
    # compiling to byte code (4 of 7 s here): Python compiles what it imports, when it does.
    run([sys.executable, "-m", "pip", "--python", root / "bin" / "python", "install", "--no-index", "--no-compile",
         "--find-links", house, wheel], env=pip_env())
    site = next((root / "lib").glob("python3.*/site-packages"))
    return Installed(root, site, home)


def test_the_wheel_holds_the_package_and_nothing_else(wheel):
    def files(pattern: str) -> set[str]:
        found = ROOT.glob(pattern)
        return {p.relative_to(ROOT).as_posix() for p in found if p.is_file() and "__pycache__" not in p.parts}

    expected = (files("rais/**/*.py") | files("probes/*.py") | files("rais/page/*") | files("rais/wire/*.asn")
                | {"twisted/plugins/rais_plugin.py"})
    with zipfile.ZipFile(wheel) as built:
        got = {name for name in built.namelist() if ".dist-info/" not in name}
    # No twisted/__init__.py or twisted/plugins/__init__.py (they would replace Twisted's own),
    # no plugin cache from this machine, no tests, benches or examples.
    assert got == expected, f"missing: {sorted(expected - got)}; stray: {sorted(got - expected)}"


def test_the_installed_commands_find_their_plugins_in_site_packages(installed):
    assert ROOT not in installed.home.parents and ROOT not in installed.root.parents
    usage = installed.run("rais", "--help").stdout
    for command in ("check-config", "keygen", "status", "probes", "probe", "plan"):
        assert re.search(rf"^    {command} ", usage, re.MULTILINE), usage

    # The operator's step after installing: fresh Twisted plugin caches (Makefile's install does it too).
    installed.run("python", "-m", "rais.plugincache")
    caches = [installed.site / "twisted" / "plugins" / "dropin.cache", installed.site / "probes" / "dropin.cache"]
    written = [cache.stat().st_mtime_ns for cache in caches]

    plugins = installed.run("twistd", "--help").stdout
    assert re.search(r"^    rais +A RAIS high-availability node", plugins, re.MULTILINE), plugins
    listed = installed.run("rais", "probes").stdout
    for name in BUILTINS:
        module = {"https": "http"}.get(name, name)
        assert f"{name}: {installed.site / 'probes' / module}.py (" in listed, listed
    # Both found through their caches: fresh, so neither was written again.
    assert [cache.stat().st_mtime_ns for cache in caches] == written


CONTROL_SERVICE = r"""
[probes]
paths = ["probes.d"]

# The node probes its own control endpoint with the sample drop-in probe.
[services.control]
probe = "tcp_expect"
port = {port}
running = true
probe_interval = 0.3
rise = 1
send = "GET / HTTP/1.0\r\n\r\n"
expect = '^HTTP/1\.[01] 200'
"""


class InstalledCluster(LocalCluster):
    """LocalCluster's nodes, run by an installed RAIS with only its own environment."""

    def __init__(self, installed: Installed, base: Path, roles: list[str]) -> None:
        super().__init__(str(base), roles, interval=0.3, dead_after=3)
        self.twistd = str(installed.root / "bin" / "twistd")
        self.env = installed.env


def test_an_installed_node_runs_with_a_drop_in_probe_and_stops(installed, tmp_path):
    cluster = InstalledCluster(installed, tmp_path, ["master"])
    [node] = cluster.nodes
    # The sample probe copied beside the config, as an operator copies it into /etc/rais/probes.d.
    (Path(node.folder) / "probes.d").mkdir()
    shutil.copy(SAMPLE, Path(node.folder) / "probes.d")
    with open(node.config_path, "a") as config:
        config.write(CONTROL_SERVICE.format(port=node.control_port))
    installed.run("rais", "check-config", node.config_path)
    try:
        cluster.start_all()
        # The master's probe of its own service, with the drop-in loaded by the installed node.
        assert wait_for(lambda: [r["result"] for r in service_rows(node, "control").values()] == ["ok"], 15), (
            node.status()["tables"]["services"], cluster.tail(node))
        [row] = service_rows(node, "control").values()
        assert row["detail"] == "HTTP/1.0 200 OK", row
        shown = installed.run("rais", "status", "--control", f"127.0.0.1:{node.control_port}").stdout
        assert "role master" in shown and "services: control@1.2.0.1 running (ok in " in shown, shown
    finally:
        cluster.stop_all()
    # twistd ends by the signal it was stopped with, after a clean shutdown (systemd counts it a success).
    assert node.process is not None and node.process.returncode == -signal.SIGTERM, cluster.tail(node)
    log = Path(node.log_path).read_text()
    assert "Main loop terminated." in log and "Server Shut Down." in log and "Traceback" not in log, log
