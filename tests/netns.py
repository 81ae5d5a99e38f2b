"""Several hosts on one machine for the tests: network namespaces joined by a bridge, or a loopback fallback.

:class:`NetworkLab` makes the root namespace the hub (a bridge holding the hub's address) and gives every
other host a network namespace of its own, joined to the bridge by a veth pair. Addresses come from
TEST-NET-2 (198.51.100.0/24, a documentation range, RFC 5737): never a private range, never anything
routed elsewhere; a run takes a free /28 of it, so concurrent runs do not collide. Every name starts
with ``spf<pid in hex>-``: what a run leaves behind (a killed test process) is found by that prefix and
removed by the next run once its process is gone.

Cutting a host takes its veth pair's bridge end down: its packets go nowhere and nobody hears of it
(no reset, no unreachable), as when a machine drops off the network.

Where namespaces cannot be had (no ``ip``, no CAP_NET_ADMIN), :class:`LoopbackHosts` offers the same
surface with every host on 127.0.0.1 as separate processes; there a host is cut off by freezing its
processes (SIGSTOP) and brought back with SIGCONT. :func:`open_hosts` picks one and says which
(``TESTS_NETNS=off`` forces the fallback).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator, Sequence
from typing import Protocol

#: Every name this module creates starts with this, then the creating process's id in hex and a dash.
FAMILY = "spf"
_OWNED = re.compile(rf"^{FAMILY}([0-9a-f]+)-")
#: TEST-NET-2: reserved for documentation, never routed on the internet nor used by private networks.
DOCUMENTATION_RANGE = ipaddress.IPv4Network("198.51.100.0/24")
SLICE_PREFIX = 28  # 14 addresses: the hub and up to 13 hosts per run


class Hosts(Protocol):
    """Where a test's hosts live and how to reach, run on, cut off and restore each."""

    #: True for namespaces, False for the loopback fallback.
    isolated: bool
    #: The address the hub's services bind and everyone connects to.
    hub_address: str

    def describe(self) -> str:
        """One line saying what the hosts are, for the test's output."""
        ...

    def command(self, host: str, argv: Sequence[str]) -> list[str]:
        """``argv`` as run on ``host``."""
        ...

    def attach(self, host: str, pid: int) -> None:
        """Record that process (group) ``pid`` runs on ``host``."""
        ...

    def host_of(self, pid: int) -> str | None:
        """The host an attached process runs on."""
        ...

    def cut(self, host: str) -> None:
        """Cut ``host`` off the network."""
        ...

    def restore(self, host: str) -> None:
        """Bring a cut host back."""
        ...


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def unavailable_reason() -> str | None:
    """Why namespaces cannot be used here (None when they can): tries to create and remove one.

    ``TESTS_NETNS=off`` in the environment turns them off (to run the fallback where namespaces work).
    """
    if os.environ.get("TESTS_NETNS", "").lower() == "off":
        return "TESTS_NETNS=off"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    probe = f"{FAMILY}{os.getpid():x}-probe"
    try:
        created = _ip("netns", "add", probe, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`ip netns add` cannot run ({exc})"
    if created.returncode != 0:
        return f"`ip netns add` is not permitted here ({created.stderr.strip() or created.returncode})"
    _ip("netns", "delete", probe, check=False)
    return None


def remove_leftovers() -> list[str]:
    """Remove namespaces and links of this module whose creating process is gone; return their names."""
    names = [line.split()[0] for line in _ip("netns", "list", check=False).stdout.splitlines() if line.strip()]
    links = [line.split(":")[1].strip().split("@")[0] for line in _ip("-o", "link", "show").stdout.splitlines()]
    removed = []
    for name in names + links:
        owner = _OWNED.match(name)
        if owner is None or _alive(int(owner.group(1), 16)):
            continue
        kind = ("netns", "delete", name) if name in names else ("link", "delete", name)
        if _ip(*kind, check=False).returncode == 0:  # a veth goes with its peer: the second delete fails
            removed.append(name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_slice() -> ipaddress.IPv4Network:
    """A /28 of the documentation range that no interface of this machine has an address in."""
    used = set()
    for line in _ip("-o", "-4", "addr", "show").stdout.splitlines():
        found = re.search(r"inet (\S+)", line)
        if found:
            used.add(ipaddress.IPv4Interface(found.group(1)).ip)
    for candidate in DOCUMENTATION_RANGE.subnets(new_prefix=SLICE_PREFIX):
        if not any(address in candidate for address in used):
            return candidate
    raise RuntimeError(f"every /{SLICE_PREFIX} of {DOCUMENTATION_RANGE} is in use on this machine")


class NetworkLab:
    """The root namespace as hub on a bridge, and one network namespace per other host (see the module)."""

    isolated = True

    def __init__(self, hosts: Sequence[str]) -> None:
        self.prefix = f"{FAMILY}{os.getpid():x}-"
        self.hosts = list(hosts)
        self.bridge = f"{self.prefix}br"
        remove_leftovers()  # first: their addresses would keep a slice of the range taken
        self.subnet = _free_slice()
        addresses = [str(a) for a in self.subnet.hosts()]
        if len(self.hosts) + 1 > len(addresses):
            raise ValueError(f"at most {len(addresses) - 1} hosts per lab")
        self.hub_address = addresses[0]
        self._address = dict(zip(self.hosts, addresses[1:], strict=False))
        self._pids: dict[int, str] = {}

    def describe(self) -> str:
        """One line saying what the hosts are."""
        hosts = ", ".join(f"{h}={self._address[h]} (netns {self.namespace(h)})" for h in self.hosts)
        return f"network namespaces: hub={self.hub_address} (root namespace, bridge {self.bridge}); {hosts}"

    def namespace(self, host: str) -> str:
        """The network namespace of ``host``."""
        return f"{self.prefix}{host}"

    def address(self, host: str) -> str:
        """The address of ``host``."""
        return self._address[host]

    def _bridge_end(self, host: str) -> str:
        return f"{self.prefix}{self.hosts.index(host)}b"

    def start(self) -> NetworkLab:
        """Create the bridge and the hosts; on failure remove what was made and raise."""
        length = self.subnet.prefixlen
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.hub_address}/{length}", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for index, host in enumerate(self.hosts):
                namespace, inside = self.namespace(host), f"{self.prefix}{index}h"
                _ip("netns", "add", namespace)
                _ip("link", "add", self._bridge_end(host), "type", "veth", "peer", "name", inside)
                _ip("link", "set", inside, "netns", namespace)
                _ip("link", "set", self._bridge_end(host), "master", self.bridge, "up")
                _ip("-n", namespace, "addr", "add", f"{self.address(host)}/{length}", "dev", inside)
                _ip("-n", namespace, "link", "set", inside, "up")
                _ip("-n", namespace, "link", "set", "lo", "up")
        except subprocess.CalledProcessError as exc:
            self.stop()
            raise RuntimeError(f"{' '.join(exc.cmd)} failed: {exc.stderr.strip()}") from None
        return self

    def stop(self) -> None:
        """Remove every namespace and link of this lab (those never made are skipped)."""
        for host in self.hosts:
            _ip("netns", "delete", self.namespace(host), check=False)  # takes its veth pair along
        _ip("link", "delete", self.bridge, check=False)

    def command(self, host: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run in ``host``'s namespace (``ip netns exec`` execs it: the pid stays the same)."""
        return ["ip", "netns", "exec", self.namespace(host), *argv]

    def attach(self, host: str, pid: int) -> None:
        """Record that process ``pid`` runs on ``host``."""
        self._pids[pid] = host

    def host_of(self, pid: int) -> str | None:
        """The host of an attached process, else the one whose namespace the kernel says it is in."""
        if pid in self._pids:
            return self._pids[pid]
        named = _ip("netns", "identify", str(pid), check=False).stdout.strip()
        return next((h for h in self.hosts if self.namespace(h) == named), None)

    def cut(self, host: str) -> None:
        """Take the bridge end of ``host``'s link down: its traffic is dropped silently both ways."""
        _ip("link", "set", self._bridge_end(host), "down")

    def restore(self, host: str) -> None:
        """Bring ``host``'s link back up."""
        _ip("link", "set", self._bridge_end(host), "up")


class LoopbackHosts:
    """The fallback: every host is separate processes on 127.0.0.1; cutting one freezes its processes."""

    isolated = False
    hub_address = "127.0.0.1"

    def __init__(self, hosts: Sequence[str], reason: str) -> None:
        self.hosts = list(hosts)
        self.reason = reason
        self._pids: dict[int, str] = {}

    def describe(self) -> str:
        """One line saying what the hosts are, and why not namespaces."""
        return f"FALLBACK to separate processes on 127.0.0.1 (no network namespaces: {self.reason})"

    def address(self, host: str) -> str:
        """Every host is 127.0.0.1."""
        return self.hub_address

    def command(self, host: str, argv: Sequence[str]) -> list[str]:
        """``argv`` as it is."""
        return list(argv)

    def attach(self, host: str, pid: int) -> None:
        """Record that process group ``pid`` makes up part of ``host``."""
        self._pids[pid] = host

    def host_of(self, pid: int) -> str | None:
        """The host of an attached process."""
        return self._pids.get(pid)

    def cut(self, host: str) -> None:
        """Freeze ``host``'s processes: they neither send nor answer, as behind a cut link."""
        self._signal(host, signal.SIGSTOP)

    def restore(self, host: str) -> None:
        """Let ``host``'s processes run on."""
        self._signal(host, signal.SIGCONT)

    def _signal(self, host: str, sig: int) -> None:
        for pid, owner in self._pids.items():
            if owner == host:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, sig)


@contextlib.contextmanager
def open_hosts(hosts: Sequence[str]) -> Iterator[Hosts]:
    """Namespaces for ``hosts`` when permitted, else the loopback fallback; removed when the block ends."""
    reason = unavailable_reason()
    if reason is not None:
        yield LoopbackHosts(hosts, reason)
        return
    lab = NetworkLab(hosts).start()
    try:
        yield lab
    finally:
        lab.stop()
