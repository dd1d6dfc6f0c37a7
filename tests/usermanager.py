"""A real systemd manager for tests, on a machine where systemd is not PID 1.

``UserManager`` runs ``/usr/lib/systemd/systemd --user`` as a child process, driven with
``systemctl --user`` through its private socket in an ``XDG_RUNTIME_DIR`` of its own, with its
units in a folder of its own and nothing else started (``--unit`` names an empty target).

Two things stop a plain ``systemd --user`` here, and what is done about each:

- It refuses to run unless ``/run/systemd/system`` exists, which means "systemd is PID 1" to
  every program on the machine. It runs in a private mount namespace where a tmpfs on ``/run``
  holds that folder, so nothing outside sees it.
- It takes the cgroup it starts in for its own and moves every process in it into its
  ``init.scope``, in every cgroup hierarchy it finds mounted. Started as-is in the root cgroup
  it moves every process of the machine (tried: that is how this was learnt). So it starts in a
  new cgroup of its own (``rais-um-PID`` under this process's, in the hierarchies systemd tracks
  processes in: cgroup v2 and the v1 ``name=systemd`` one), in a cgroup namespace rooted there,
  and its mount namespace mounts only those hierarchies: it sees no v1 controller to manage.

Its log goes to a file (it writes to /dev/console, which its mount namespace binds to the file).
It dies with the process that made it (``setpriv --pdeathsig``); ``close()`` stops it, kills
whatever is left in its cgroups and removes them, and ``sweep()`` removes those left by a test
process that was killed outright.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from types import TracebackType

from rais.netcluster import alive

SYSTEMD = "/usr/lib/systemd/systemd"
PREFIX = "rais-um-"  # the cgroups it makes: rais-um-<pid of the test process>
TARGET = "rais-test.target"  # what the manager starts: nothing

# In the new mount and cgroup namespaces: the marker folder, the log, the tracking hierarchies
# seen from the manager's own cgroup; then the manager, which dies with the test process.
INNER = """set -eu
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/systemd/system
mount --bind "$LOG" /dev/console
if [ "$LAYOUT" = unified ]; then
    mount -t cgroup2 cgroup2 /sys/fs/cgroup
else
    mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup
    for point in $V1; do mkdir -p "$point"; mount -t cgroup -o none,name=systemd cgroup "$point"; done
    for point in $V2; do mkdir -p "$point"; mount -t cgroup2 cgroup2 "$point"; done
fi
exec setpriv --pdeathsig KILL "$SYSTEMD" --user --unit="$TARGET" --log-level=info
"""
# The manager's first step, still in the test's namespaces: into its own cgroups, then out.
OUTER = 'for procs; do echo $$ > "$procs"; done; exec unshare --cgroup --mount --propagation private sh -c "$INNER"'


def hierarchies() -> list[tuple[str, str, str]]:
    """(kind, mount point, this process's cgroup there) for the hierarchies systemd tracks
    processes in: "v2" (cgroup2) and "v1" (cgroup v1 with name=systemd), each once."""
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            number, controllers, path = line.rstrip("\n").split(":", 2)
            if number == "0" and controllers == "":
                own["v2"] = path
            elif "name=systemd" in controllers.split(","):
                own["v1"] = path
    found: dict[str, tuple[str, str, str]] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields, _, tail = line.partition(" - ")
            kind_fs, _, options = (tail.split() + ["", "", ""])[:3]
            root, point = fields.split()[3:5]
            if root != "/":
                continue  # a bind mount of part of a hierarchy
            kind = "v2" if kind_fs == "cgroup2" else \
                "v1" if kind_fs == "cgroup" and "name=systemd" in options.split(",") else None
            if kind in own and kind not in found:
                found[kind] = (kind, point, own[kind])
    return sorted(found.values())


def unavailable() -> str | None:
    """Why a user manager cannot be run here, or None."""
    if os.geteuid() != 0:
        return "a systemd user manager in its own namespaces needs root"
    if not os.access(SYSTEMD, os.X_OK):
        return f"{SYSTEMD} is not installed (Debian: systemd)"
    for tool, package in (("systemctl", "systemd"), ("unshare", "util-linux"), ("setpriv", "util-linux")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: {package})"
    found = hierarchies()
    if not found:
        return "no cgroup v2 or name=systemd hierarchy is mounted"
    if not any(point == "/sys/fs/cgroup" for _, point, _ in found) and \
            not all(point.startswith("/sys/fs/cgroup/") for _, point, _ in found):
        return f"cgroup hierarchies mounted where systemd does not look: {found}"
    return None


def _remove(folders: list[str]) -> None:
    """Kill every process left in these cgroups and remove them, deepest first."""
    deadline = time.monotonic() + 5
    for top in folders:
        while os.path.isdir(top):
            for folder, _, _ in os.walk(top):
                try:
                    with open(os.path.join(folder, "cgroup.procs")) as f:
                        for pid in f.read().split():
                            os.kill(int(pid), signal.SIGKILL)
                except (FileNotFoundError, ProcessLookupError):
                    pass
            for folder, _, _ in sorted(os.walk(top), key=lambda walked: -walked[0].count("/")):
                try:
                    os.rmdir(folder)
                except OSError:
                    pass  # a process still leaving it, or a child not removed yet
            if os.path.isdir(top):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"cannot remove cgroup {top}")
                time.sleep(0.05)


def sweep() -> None:
    """Remove the cgroups of managers whose test process no longer runs (killed outright)."""
    for _, point, own in hierarchies():
        base = os.path.join(point, own.lstrip("/"))
        stale = [os.path.join(base, name) for name in os.listdir(base)
                 if name.startswith(PREFIX) and name[len(PREFIX):].isdigit() and not alive(int(name[len(PREFIX):]))]
        _remove(stale)


class UserManager:
    """A systemd user manager with the given unit files ({name: text}); ``env`` drives it."""

    def __init__(self, units: dict[str, str], timeout: float = 10.0) -> None:
        sweep()
        self.folder = tempfile.mkdtemp(prefix=PREFIX)  # short: the socket path must fit in 108 bytes
        self.runtime = os.path.join(self.folder, "run")
        self.log_path = os.path.join(self.folder, "manager.log")
        self.cgroups: list[str] = []
        self.process: subprocess.Popen | None = None
        try:
            self._start(units, timeout)
        except BaseException:
            self.close()
            raise

    @property
    def env(self) -> dict[str, str]:
        """The environment of a client of this manager: systemctl --user finds it by XDG_RUNTIME_DIR."""
        return dict(os.environ, XDG_RUNTIME_DIR=self.runtime, SYSTEMCTL_SCOPE="--user")

    def systemctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["systemctl", "--user", *args], env=self.env, capture_output=True, text=True)

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def _start(self, units: dict[str, str], timeout: float) -> None:
        os.mkdir(self.runtime, 0o700)
        config = os.path.join(self.folder, "config")
        os.makedirs(os.path.join(config, "systemd", "user"))
        for name, text in {TARGET: "[Unit]\nDescription=RAIS tests: nothing else\n", **units}.items():
            with open(os.path.join(config, "systemd", "user", name), "w") as f:
                f.write(text)
        open(self.log_path, "w").close()
        found = hierarchies()
        procs = []
        for _, point, own in found:
            cgroup = os.path.join(point, own.lstrip("/"), f"{PREFIX}{os.getpid()}")
            os.mkdir(cgroup)
            self.cgroups.append(cgroup)
            procs.append(os.path.join(cgroup, "cgroup.procs"))
        points = {kind: " ".join(point for k, point, _ in found if k == kind) for kind in ("v1", "v2")}
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": self.folder, "LANG": "C.UTF-8",
            "XDG_RUNTIME_DIR": self.runtime, "XDG_CONFIG_HOME": config,
            "XDG_DATA_HOME": os.path.join(self.folder, "data"), "XDG_STATE_HOME": os.path.join(self.folder, "state"),
            "INNER": INNER, "LOG": self.log_path, "SYSTEMD": SYSTEMD, "TARGET": TARGET,
            "LAYOUT": "unified" if any(point == "/sys/fs/cgroup" for _, point, _ in found) else "hybrid",
            "V1": points["v1"], "V2": points["v2"],
        }
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(["sh", "-c", OUTER, "sh", *procs], env=env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while self.systemctl("is-active", "--quiet", TARGET).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"systemd --user did not start (exit {self.process.poll()}):\n{self.log()}")
            time.sleep(0.05)

    def close(self) -> None:
        """Stop the manager (its units with it), then remove its cgroups and folder. Safe to call again."""
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()  # a user manager stops its units and exits on SIGTERM
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            _remove(self.cgroups)
            self.cgroups = []
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> UserManager:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
