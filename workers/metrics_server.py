"""The HTTP server of ``spreports metrics``: prometheus-client's ``/metrics`` app, behind a login when it has one.

prometheus-client serves without any login. Beyond loopback, the fleet's queue depths, failures and
seller ids are nobody else's business: :func:`serve` puts the app behind HTTP basic auth
(``SPREPORTS_METRICS_BASIC_AUTH``), which Prometheus sends with ``basic_auth`` in its scrape config.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

REALM = "spreports metrics"


def require_login(app: WsgiApp, user: str, password: str) -> WsgiApp:
    """``app`` answering 401 (with a ``WWW-Authenticate`` challenge) to any request without ``user:password``."""
    expected = f"{user}:{password}".encode()

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        given = _credentials(environ.get("HTTP_AUTHORIZATION", ""))
        if given is not None and hmac.compare_digest(given, expected):
            return app(environ, start_response)
        start_response(
            "401 Unauthorized",
            [("WWW-Authenticate", f'Basic realm="{REALM}"'), ("Content-Type", "text/plain; charset=utf-8")],
        )
        return [b"login required\n"]

    return guarded


def _credentials(header: str) -> bytes | None:
    """The ``user:password`` bytes of a ``Basic`` Authorization header, or None."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


class _Server(ThreadingMixIn, WSGIServer):
    # A scrape that hangs must not hold the others, nor the process at exit.
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No line per request (Prometheus scrapes every 15 s)."""


def serve(app: WsgiApp, host: str, port: int) -> WSGIServer:
    """Serve ``app`` on ``host:port`` from a daemon thread; the server (its ``server_port`` is the one bound)."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]

    class Server(_Server):
        # An IPv6 address (``::``) needs its own family: WSGIServer's is IPv4.
        address_family = family

    server = make_server(host, port, app, Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True).start()
    return server
