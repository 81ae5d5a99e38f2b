"""The machine's RabbitMQ for tests and benchmarks: a vhost of its own for each run.

``RABBITMQ_URL`` names the server (default the machine's, guest on 127.0.0.1:5672). A run gets a
vhost of its own (``rabbitmqctl add_vhost``, deleted at the end), so parallel and repeated runs never
share a queue; without ``rabbitmqctl`` (or the right to the node's cookie) the URL's own vhost is used.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from urllib.parse import quote, unquote, urlsplit, urlunsplit

DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
RABBITMQCTL_TIMEOUT = 30


def rabbitmq_base_url() -> str:
    """The server's URL: ``RABBITMQ_URL`` or the machine's default."""
    return os.environ.get("RABBITMQ_URL", DEFAULT_RABBITMQ_URL)


def rabbitmq_problem(url: str) -> str | None:
    """Why the server at ``url`` cannot be used (it does not answer), or None."""
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or 5672)
    try:
        socket.create_connection(address, timeout=2).close()
    except OSError:
        return f"RabbitMQ at {address[0]}:{address[1]} does not answer"
    return None


def rabbitmqctl(*args: str) -> bool:
    """Run ``rabbitmqctl``; False when it is missing, refuses (no right to the node's cookie) or hangs."""
    binary = shutil.which("rabbitmqctl")
    if binary is None:
        return False
    try:
        done = subprocess.run([binary, *args], capture_output=True, timeout=RABBITMQCTL_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


@contextlib.contextmanager
def private_vhost(base: str, prefix: str = "spreports-test") -> Iterator[str]:
    """``base`` on a new vhost (deleted on exit), or ``base`` itself where one cannot be created."""
    parts = urlsplit(base)
    vhost = f"{prefix}-{uuid.uuid4().hex[:10]}"
    user = parts.username or "guest"
    if not (rabbitmqctl("add_vhost", vhost) and rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")):
        yield base  # the URL's own vhost: runs on it share the product's queue names
        return
    try:
        yield urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))
    finally:
        rabbitmqctl("delete_vhost", vhost)


def management_problem(url: str, timeout: float = 90.0) -> str | None:
    """Why RabbitMQ's management API (port 15672 of ``url``'s host) cannot be used, or None.

    Where it does not answer and ``rabbitmq-plugins`` is at hand (the machine's RabbitMQ), the plugin is
    enabled, as an operator would, and waited for.
    """
    import requests

    api = f"http://{urlsplit(url).hostname or '127.0.0.1'}:15672/api/overview"
    parts = urlsplit(url)
    auth = (unquote(parts.username or "guest"), unquote(parts.password or "guest"))

    def answers() -> bool:
        try:
            return requests.get(api, auth=auth, timeout=5).status_code == 200
        except requests.RequestException:
            return False

    if answers():
        return None
    plugins = shutil.which("rabbitmq-plugins")
    if plugins is None:
        return "RabbitMQ's management API does not answer and rabbitmq-plugins is not here to enable it"
    subprocess.run([plugins, "enable", "rabbitmq_management"], capture_output=True, timeout=120, check=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answers():
            return None
        time.sleep(0.5)
    return f"RabbitMQ's management API does not answer at {api} (rabbitmq_management enabled)"


def vhost_of(url: str) -> str:
    """The vhost an AMQP URL names ("/" when none)."""
    path = urlsplit(url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def close_connections(vhost: str) -> int:
    """Close every client connection to ``vhost`` (as a broker failover does); how many it closed."""
    binary = shutil.which("rabbitmqctl")
    if binary is None:
        raise RuntimeError("rabbitmqctl is needed to close the broker's connections")
    done = subprocess.run([binary, "-q", "close_all_connections", "-p", vhost, "chaos: connections dropped"],
                          capture_output=True, text=True, timeout=RABBITMQCTL_TIMEOUT, check=True)  # fmt: skip
    closed = re.search(r"Closed (\d+) connection", done.stdout)
    return int(closed.group(1)) if closed else 0


@contextlib.contextmanager
def forwarded(url: str, listen_host: str) -> Iterator[str]:
    """``url`` reachable at ``listen_host``: a TCP forwarder to its server; yields the URL through it.

    For hosts that cannot reach the server's address (a RabbitMQ listening on 127.0.0.1, test hosts in
    network namespaces). The server sees connections from the forwarder, so loopback-only users work.
    """
    parts = urlsplit(url)
    target = (parts.hostname or "127.0.0.1", parts.port or 5672)
    listener = socket.create_server((listen_host, 0))
    port = listener.getsockname()[1]
    stopping = threading.Event()

    def pipe(source: socket.socket, sink: socket.socket, open_directions: list[int], lock: threading.Lock) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):  # one side ended: end both, as a connection through a router would
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with lock:
            open_directions[0] -= 1
            if open_directions[0] == 0:  # the other direction ended too: the pair is done
                source.close()
                sink.close()

    def accept() -> None:
        while not stopping.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was shut down
            try:
                server = socket.create_connection(target, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            open_directions, lock = [2], threading.Lock()
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=pipe, args=(source, sink, open_directions, lock), daemon=True).start()

    threading.Thread(target=accept, daemon=True, name="amqp-forwarder").start()
    userinfo = parts.netloc.rpartition("@")[0]
    try:
        yield urlunsplit(
            parts._replace(netloc=f"{userinfo}@{listen_host}:{port}" if userinfo else f"{listen_host}:{port}")
        )
    finally:
        stopping.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (close alone does not)
        listener.close()
