"""Finding the probe plugins: the built-ins in ``probes/`` and the drop-in folders.

For the config loader (rais.config, which checks each service's probe and
options), the CLI (``rais probes``, ``rais probe``) and the reactor shell
(rais.tap): :func:`discover` returns a :class:`ProbeRegistry` of every probe
found, by name, with every module that failed to load and why.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

import attrs
from twisted.logger import ILogObserver, globalLogPublisher
from twisted.plugin import getCache
from twisted.python.failure import Failure
from twisted.python.modules import getModule
from zope.interface import implementer
from zope.interface.exceptions import Invalid
from zope.interface.verify import verifyObject

import probes as _package
from rais.interfaces import IProbe
from rais.probing.base import exception, short

# The package's own folders (this source tree or the installed copy, plus
# any `probes` folder elsewhere on sys.path); [probes] paths come after them.
_BUILTIN_PATH = tuple(_package.__path__)


@attrs.frozen
class LoadFailure:
    """A probe module that could not be used, and why."""

    file: str
    reason: str


class UnknownProbe(LookupError):
    pass


@attrs.frozen
class ProbeRegistry:
    """Every probe found, by name, with the file it came from, and every failure."""

    probes: Mapping[str, IProbe]
    sources: Mapping[str, str]
    failures: tuple[LoadFailure, ...]

    def lookup(self, name: str) -> IProbe:
        """The probe called ``name``; UnknownProbe says what exists and what failed to load."""
        try:
            return self.probes[name]
        except KeyError:
            pass
        known = ", ".join(sorted(self.probes)) or "none"
        broken = [f"{f.file}: {f.reason}" for f in self.failures
                  if os.path.splitext(os.path.basename(f.file))[0] == name]
        because = f"; {'; '.join(broken)}" if broken else ""
        raise UnknownProbe(f"unknown probe {name!r} (found: {known}){because}")

    def service_problems(self, name: str, options: Mapping[str, Any],
                         has_port: bool = True) -> list[tuple[str, str]]:
        """A service's probe problems, as (key, what is wrong): ``probe``, ``port`` or an option."""
        try:
            probe = self.lookup(name)
        except UnknownProbe as e:
            return [("probe", str(e))]
        problems = sorted(probe.validate(options).items())
        if not has_port and probe.default_port is None:
            problems.insert(0, ("port", f"missing required key (probe {name} has no default port)"))
        return problems


def discover(paths: Sequence[str] = ()) -> ProbeRegistry:
    """Find every probe in the ``probes`` package and in the folders ``paths``.

    The folders are searched after the built-ins (a module named like an
    earlier one is reported as shadowed, not loaded). A module that fails
    to import, a plugin that fails ``verifyObject(IProbe, ...)`` and a second
    probe of one name are failures; every other probe still loads.
    """
    _package.__path__[:] = [*_BUILTIN_PATH, *(p for p in paths if p not in _BUILTIN_PATH)]
    failures = _shadowed(_package.__path__)
    # In search order, so of two probes with one name the earlier one wins.
    candidates = {m.filePath.path: m.name for m in getModule(_package.__name__).iterModules()}
    files = {module: file for file, module in candidates.items()}
    found: dict[str, IProbe] = {}
    sources: dict[str, str] = {}
    with _logged_failures() as import_errors:
        # getCache is what getPlugins(IProbe, probes) walks; used directly,
        # it also names the module each plugin comes from.
        dropins = sorted(getCache(_package).values(), key=lambda d: _search_key(files.get(d.moduleName, "")))
        for dropin in dropins:
            for plugin in dropin.plugins:
                file = files.get(dropin.moduleName, dropin.moduleName)
                try:
                    probe = IProbe(plugin, None)
                    if probe is not None:
                        verifyObject(IProbe, probe)
                except Invalid as e:
                    failures.append(LoadFailure(file, f"{plugin.name}: does not provide IProbe: {short(str(e))}"))
                    continue
                except Exception as e:  # a module broken since its cache entry was written
                    failures.append(LoadFailure(file, _reason(e)))
                    continue
                if probe is None:
                    continue
                if probe.name in found:
                    failures.append(LoadFailure(
                        file, f"{plugin.name}: probe name {probe.name!r} already taken by {sources[probe.name]}"))
                    continue
                found[probe.name] = probe
                sources[probe.name] = file
    for file, module in candidates.items():
        if module not in sys.modules and not any(f.file == file for f in failures):
            reasons = [_reason(exception(f)) for f in import_errors if _failure_file(f, candidates) == file]
            failures.append(LoadFailure(file, reasons[0] if reasons else "failed to import"))
    return ProbeRegistry(MappingProxyType(dict(sorted(found.items()))), MappingProxyType(sources),
                         tuple(sorted(failures, key=lambda f: f.file)))


def _search_key(file: str) -> tuple[int, str]:
    folder = os.path.dirname(file)
    where = [n for n, path in enumerate(_package.__path__) if os.path.abspath(path) == folder]
    return (where[0] if where else len(_package.__path__)), file


def _shadowed(folders: Sequence[str]) -> list[LoadFailure]:
    seen: dict[str, str] = {}
    failures = []
    for folder in folders:
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            module, ext = os.path.splitext(name)
            if ext != ".py" or module == "__init__":
                continue
            file = os.path.join(folder, name)
            if module in seen:
                failures.append(LoadFailure(file, f"shadowed by {seen[module]}: rename it"))
            else:
                seen[module] = file
    return failures


@contextmanager
def _logged_failures() -> Iterator[list[Failure]]:
    """Collect the failures logged meanwhile: getCache logs import errors and goes on."""
    caught: list[Failure] = []

    @implementer(ILogObserver)
    def observe(event: dict[str, Any]) -> None:
        # Legacy log.err events (as getCache's) carry "failure", new ones "log_failure".
        failure = event.get("log_failure") or event.get("failure")
        if isinstance(failure, Failure):
            caught.append(failure)

    globalLogPublisher.addObserver(observe)
    try:
        yield caught
    finally:
        globalLogPublisher.removeObserver(observe)


def _failure_file(failure: Failure, candidates: Mapping[str, str]) -> str | None:
    """Which candidate module file an import failure came from."""
    if isinstance(failure.value, SyntaxError) and failure.value.filename in candidates:
        return failure.value.filename
    # The outermost frame in a candidate file is the module being imported.
    return next((frame[1] for frame in failure.frames if frame[1] in candidates), None)


def _reason(e: BaseException) -> str:
    return short(f"{type(e).__name__}: {e}")
