"""A small local HTTP server for the pipeline's tests: serves chosen bytes with chosen headers and faults;
and a getReportDocument stand-in handing out its URLs."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pydantic import SecretStr


@dataclass
class Route:
    """What one path answers. ``faults`` are consumed one per request (None = serve normally)."""

    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    # Per request, in order: "expired" (403), "5xx" (503), "truncate" (Content-Length says more, then
    # close), "drop" (close the connection mid-body), "slow" (send slowly); then normal service.
    faults: list[str] = field(default_factory=list)


class DocumentServer:
    """ThreadingHTTPServer on 127.0.0.1 with a request log (path only)."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.log: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                server.log.append(path)
                route = server.routes.get(path)
                if route is None:
                    self.send_error(404)
                    return
                fault = route.faults.pop(0) if route.faults else None
                server.answer(self, route, fault)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        # shutdown() waits for serve_forever to look at its flag, every poll_interval (0.5 s by default).
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def add(self, path: str, route: Route) -> str:
        """Serve ``route`` at ``path``; return a pre-signed-looking URL for it (with a secret query)."""
        self.routes[path] = route
        return f"{self.origin}{path}?X-Amz-Signature=SECRETSIGNATURE&X-Amz-Expires=300"

    def answer(self, handler: BaseHTTPRequestHandler, route: Route, fault: str | None) -> None:
        """Write the response for one request."""
        if fault == "expired":
            body = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
            self._head(handler, 403, {"Content-Type": "application/xml"}, len(body))
            handler.wfile.write(body)
            return
        if fault == "5xx":
            self._head(handler, 503, {}, 0)
            return
        body = route.body
        if fault == "truncate":
            self._head(handler, route.status, route.headers, len(body))
            handler.wfile.write(body[: len(body) // 2])
            handler.close_connection = True
            return
        if fault == "drop":
            self._head(handler, route.status, route.headers, len(body))
            handler.wfile.write(body[: len(body) // 3])
            handler.wfile.flush()
            handler.connection.shutdown(2)
            handler.close_connection = True
            return
        self._head(handler, route.status, route.headers, len(body))
        if fault == "slow":
            for start in range(0, len(body), 4096):
                handler.wfile.write(body[start : start + 4096])
                handler.wfile.flush()
                time.sleep(0.01)
            return
        handler.wfile.write(body)

    @staticmethod
    def _head(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], length: int) -> None:
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(length))
        handler.end_headers()

    def stop(self) -> None:
        """Shut the server down."""
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Located:
    """A getReportDocument answer."""

    report_document_id: str
    url: SecretStr
    compression_algorithm: str | None = None


class Locator:
    """Answers getReportDocument with the given URLs in turn (the last one repeats); counts calls."""

    def __init__(self, document_id: str, urls: list[str], compression: str | None = None) -> None:
        self.document_id = document_id
        self.urls = urls
        self.compression = compression
        self.calls = 0

    def __call__(self) -> Located:
        url = self.urls[min(self.calls, len(self.urls) - 1)]
        self.calls += 1
        return Located(self.document_id, SecretStr(url), self.compression)
