"""The machine's RabbitMQ for tests and benchmarks: a vhost of its own for each run.

``RABBITMQ_URL`` names the server (default the machine's, guest on 127.0.0.1:5672). A run gets a
vhost of its own (``rabbitmqctl add_vhost``, deleted at the end), so parallel and repeated runs never
share a queue; without ``rabbitmqctl`` (or the right to the node's cookie) the URL's own vhost is used.
What the benchmarks use as well (the server's URL, the private vhost) lives in ``benchmarks/lab.py``; the
management API and the forwarder are the tests' own.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit, urlunsplit

from benchmarks.lab import private_vhost as private_vhost
from benchmarks.lab import rabbitmq_base_url as rabbitmq_base_url
from benchmarks.lab import rabbitmq_problem as rabbitmq_problem


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
