"""Hosts for multi-host tests: Linux network namespaces on one private switch.

Each host is a network namespace with ``lo`` and one veth interface (``eth0``) on
``SUBNET.0/24``; the other end of every veth is a port of a bridge that lives in a namespace of
its own (the "switch"), so nothing is added to the machine's own network namespace: no address,
no route, no interface, and the machine's firewall never sees the traffic. Names carry the
owning process id (``gtmh<pid>-...``), so concurrent runs do not collide and the leftovers of a
crashed run are recognised (its process is gone) and removed by the next one.

Processes are stopped by process id, namespace by namespace (``ip netns pids``), never by name:
``ray stop`` matches process names machine-wide and would stop every other Ray on the machine.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

PREFIX = "gtmh"
SUBNET = "10.213.0"
_NAME = re.compile(rf"^{PREFIX}(\d+)-")


def available() -> str | None:
    """None when namespaces can be created here, else the reason they cannot."""
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root (CAP_NET_ADMIN); running as a normal user"
    probe = f"{PREFIX}{os.getpid()}-probe"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return f"`ip netns add` failed (no CAP_NET_ADMIN?): {done.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def namespace_pids(namespace: str) -> list[int]:
    done = _ip("netns", "pids", namespace, check=False)
    return [int(x) for x in done.stdout.split() if x.strip().isdigit()]


def kill_namespace_processes(namespace: str, timeout: float = 30.0) -> None:
    """SIGKILL every process in ``namespace`` (again and again, until none is left)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        pids = [pid for pid in namespace_pids(namespace) if pid != os.getpid()]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    raise RuntimeError(f"processes left in {namespace}: {namespace_pids(namespace)}")


def _owner_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers() -> list[str]:
    """Remove namespaces of earlier runs whose process is gone; return their names."""
    done = _ip("netns", "list", check=False)
    removed = []
    for line in done.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        match = _NAME.match(name)
        if not match or _owner_alive(int(match.group(1))):
            continue
        kill_namespace_processes(name)
        _ip("netns", "del", name, check=False)
        removed.append(name)
    return removed


class Network:
    """A switch and hosts on ``SUBNET.0/24``; ``host(role)`` names map to fixed addresses."""

    def __init__(self, tag: str | None = None) -> None:
        self.tag = f"{PREFIX}{os.getpid()}" + (f"-{tag}" if tag else "")
        self.switch = f"{self.tag}-sw"
        self.hosts: dict[str, tuple[str, str]] = {}  # role -> (namespace, address)
        self._ports: dict[str, str] = {}  # role -> switch port

    def start(self) -> None:
        remove_leftovers()
        _ip("netns", "add", self.switch)
        _ip("-n", self.switch, "link", "set", "lo", "up")
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")

    def add_host(self, role: str, index: int) -> str:
        """Create host ``role`` at ``SUBNET.index``; return its address."""
        namespace, address = f"{self.tag}-{role}", f"{SUBNET}.{index}"
        port = f"p{index}"
        if namespace in _ip("netns", "list").stdout.split():
            raise RuntimeError(f"namespace {namespace} exists already")
        _ip("netns", "add", namespace)
        self.hosts[role] = (namespace, address)
        self._ports[role] = port
        _ip("link", "add", "eth0", "netns", namespace, "type", "veth",
            "peer", "name", port, "netns", self.switch)  # fmt: skip
        _ip("-n", self.switch, "link", "set", port, "master", "br0")
        _ip("-n", self.switch, "link", "set", port, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", namespace, "link", "set", "eth0", "up")
        return address

    def namespace(self, role: str) -> str:
        return self.hosts[role][0]

    def address(self, role: str) -> str:
        return self.hosts[role][1]

    def set_link(self, role: str, up: bool) -> None:
        """Plug or unplug the host's cable (both ends of its veth)."""
        state = "up" if up else "down"
        _ip("-n", self.switch, "link", "set", self._ports[role], state)
        _ip("-n", self.namespace(role), "link", "set", "eth0", state)

    def command(self, role: str, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace(role), *argv]

    def popen(
        self, role: str, argv: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path
    ) -> subprocess.Popen:
        """Start ``argv`` on host ``role`` in its own process group, output to ``log``."""
        with log.open("ab") as handle:
            return subprocess.Popen(
                self.command(role, argv), env=dict(env), cwd=cwd, stdout=handle,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip

    def run(
        self,
        role: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        log: Path,
        cwd: Path,
        timeout: float,
    ) -> subprocess.CompletedProcess:
        """Run ``argv`` on host ``role`` to the end; output appended to ``log`` and returned."""
        done = subprocess.run(
            self.command(role, argv), env=dict(env), cwd=cwd, capture_output=True, text=True,
            timeout=timeout, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        with log.open("a") as handle:
            handle.write(
                f"$ {' '.join(argv)}\n{done.stdout}{done.stderr}[exit {done.returncode}]\n"
            )
        return done

    def kill_host(self, role: str) -> None:
        kill_namespace_processes(self.namespace(role))

    def remove_host(self, role: str) -> None:
        namespace, _ = self.hosts.pop(role)
        port = self._ports.pop(role)
        kill_namespace_processes(namespace)
        _ip("netns", "del", namespace, check=False)
        _ip("-n", self.switch, "link", "del", port, check=False)

    def stop(self) -> None:
        """Kill every process of every host, then delete all namespaces (safe to call twice)."""
        errors = []
        for role in list(self.hosts):
            try:
                self.remove_host(role)
            except Exception as error:  # keep tearing down the rest
                errors.append(f"{role}: {error}")
        _ip("netns", "del", self.switch, check=False)
        left = [
            n for n in _ip("netns", "list", check=False).stdout.split() if n.startswith(self.tag)
        ]
        if errors or left:
            raise RuntimeError(f"teardown incomplete: {errors} left: {left}")


def tail(path: Path, chars: int = 3000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        return f"<{path}: {error}>"
    return f"--- {path.name} (last {chars} chars) ---\n{text[-chars:]}"
