"""A running simulator: the werkzeug server and the clock's ticker in background threads, and the Python API
the tests drive it with."""

from __future__ import annotations

import copy
import errno
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from spreports.simulator.app import SimulatorApp
from spreports.simulator.clock import SimClock
from spreports.simulator.config import Faults, SimulatorConfig
from spreports.simulator.content import DocumentSpec
from spreports.simulator.http import Core, RequestRecord
from spreports.simulator.notify import NOTIFICATION_TYPE, Notifier, SentNotification
from spreports.simulator.ratelimit import RateLimiter
from spreports.simulator.world import Destination, Report, Subscription, World

TICK_SECONDS = 0.05


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's handler without its access log: request lines hold pre-signed URLs, which must never be logged."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class Simulator:
    """An offline SP-API on ``url``; build it with :func:`start_simulator`."""

    def __init__(
        self, config: SimulatorConfig, host: str = "127.0.0.1", port: int = 0, public_url: str | None = None
    ) -> None:
        """Bind ``host:port``; ``public_url`` is the base others reach it by (e.g. ``http://simulator:8000`` in
        docker compose), used in pre-signed URLs and ``env()``; default ``http://host:port``."""
        self.config = config
        self.clock = SimClock(config.speed, config.start)
        self.faults: Faults = copy.deepcopy(config.faults)
        self.world = World(config, self.clock, self.faults)
        self.notifier = Notifier(self.world, self.faults)
        self.world.on_finished = self.notifier.report_finished
        limiter = RateLimiter(self.clock, enabled=config.rate_limits, sandbox=config.static_sandbox)
        self.core = Core(config, self.clock, self.world, self.faults, limiter, self.notifier)
        self._server: BaseWSGIServer = _listen(host, port, SimulatorApp(self.core))
        self._server.daemon_threads = True  # type: ignore[attr-defined]  # ThreadedWSGIServer has it
        self.host = host
        self.port: int = self._server.server_port
        self.url = public_url.rstrip("/") if public_url else f"http://{host}:{self.port}"
        self.core.base_url = self.url
        self._stopping = threading.Event()
        self._started = False
        self._threads = [
            threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="simulator-http", daemon=True
            ),
            threading.Thread(target=self._tick, name="simulator-clock", daemon=True),
        ]

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> Simulator:
        """Serve in background threads."""
        self.notifier.start()
        for thread in self._threads:
            thread.start()
        self._started = True
        return self

    def stop(self) -> None:
        """Stop serving (pending notifications are sent first)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._started:  # shutdown() would wait forever for a serve_forever() that never ran
            self._server.shutdown()
            self.notifier.stop()
            for thread in self._threads:
                thread.join(timeout=10)
        self._server.server_close()

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _tick(self) -> None:
        while not self._stopping.wait(TICK_SECONDS):
            self.world.tick()
            self.notifier.release_late()

    # --- credentials and environment ----------------------------------------------------------------

    @property
    def token_url(self) -> str:
        """The LWA token endpoint."""
        return f"{self.url}/auth/o2/token"

    @property
    def client_id(self) -> str:
        """The LWA client id accepted."""
        return self.config.client_id

    @property
    def client_secret(self) -> str:
        """The LWA client secret accepted."""
        return self.config.client_secret

    @property
    def refresh_tokens(self) -> dict[str, str]:
        """seller id -> refresh token."""
        return {s.seller_id: s.refresh_token for s in self.config.sellers}

    @property
    def seller_id(self) -> str:
        """The first (default) seller."""
        return self.config.sellers[0].seller_id

    @property
    def application_id(self) -> str:
        """The application id put in notifications."""
        return self.config.application_id

    def env(self) -> dict[str, str]:
        """The SPREPORTS_* variables that point the product at this simulator (default seller)."""
        seller = self.config.sellers[0]
        return {
            "SPREPORTS_SPAPI__ENDPOINT": self.url,
            "SPREPORTS_LWA__TOKEN_URL": self.token_url,
            "SPREPORTS_LWA__CLIENT_ID": self.client_id,
            "SPREPORTS_LWA__CLIENT_SECRET": self.client_secret,
            "SPREPORTS_LWA__REFRESH_TOKEN": seller.refresh_token,
            "SPREPORTS_SELLER_ID": seller.seller_id,
            "SPREPORTS_SQS__APPLICATION_ID": self.application_id,
            "SPREPORTS_DOCUMENTS__ALLOWED_HOSTS": json.dumps([self.url]),
        }

    def access_token(self, seller_id: str | None = None, *, grantless: bool = False) -> str:
        """An access token minted directly (no HTTP), for tests that skip LWA."""
        scope = "sellingpartnerapi::notifications" if grantless else None
        return self.world.grant(
            None if grantless else (seller_id or self.seller_id), self.config.token_lifetime, scope=scope
        )

    # --- driving the simulation ---------------------------------------------------------------------

    def add_document(self, spec: DocumentSpec | None = None, *, seller_id: str | None = None,
                     marketplace_ids: tuple[str, ...] | None = None, notify: bool = False) -> str:  # fmt: skip
        """Put a DONE report with a document of ``spec`` in place; returns its reportDocumentId.

        With ``notify`` the REPORT_PROCESSING_FINISHED goes to the seller's subscriptions, as for any
        finished report. The report is ``report_of_document(id)``.
        """
        spec = spec or DocumentSpec()
        seller = seller_id or self.seller_id
        marketplaces = marketplace_ids or self._seller(seller).marketplace_ids
        report = self.world.create_report(seller, spec.report_type, marketplaces)
        with self.world.lock:
            report.stuck = report.queued = False
            report.started = report.ended = self.clock.seconds()
            report.status = "DONE"
            self.world.active.discard((seller, report.report_id))
            document = self.world.add_document(report, spec)
            report.document_id = document.document_id
        if notify:
            self.notifier.report_finished(report)
        return document.document_id

    def report_of_document(self, document_id: str) -> dict[str, Any]:
        """The Report (model JSON) a document belongs to."""
        document = self.world.documents[document_id]
        return self.world.reports[(document.seller_id, document.report_id)].to_json(self.clock)

    def report(self, report_id: str, seller_id: str | None = None) -> dict[str, Any]:
        """A report as getReport would return it."""
        return self.world.reports[(seller_id or self.seller_id, report_id)].to_json(self.clock)

    def document_content(self, document_id: str) -> Iterator[bytes]:
        """The uncompressed bytes of a document, streamed (to compare with what a client stored)."""
        return self.world.documents[document_id].body.iter_plain()

    def finish_report(self, report_id: str, status: str = "DONE", *, seller_id: str | None = None,
                      spec: DocumentSpec | None = None) -> dict[str, Any]:  # fmt: skip
        """End a report now (even a stuck one); returns the Report."""
        if status not in ("DONE", "CANCELLED", "FATAL"):
            raise ValueError("status must be DONE, CANCELLED or FATAL")
        report: Report = self.world.reports[(seller_id or self.seller_id, report_id)]
        if report.status in ("DONE", "CANCELLED", "FATAL"):
            raise ValueError(f"report {report_id} has finished already ({report.status})")
        self.world.finish(report, status, spec)
        return report.to_json(self.clock)

    def advance(self, seconds: float) -> None:
        """Move the simulated clock ahead and let due schedules and reports move."""
        self.clock.advance(seconds)
        self.world.tick()
        self.notifier.release_late()

    def set_faults(self, faults: Faults | None = None, **changes: Any) -> Faults:
        """Replace the faults (``faults``) and/or change some by name; returns the live object."""
        if faults is not None:
            self.faults.update(faults.as_dict())
        self.faults.update(changes)
        return self.faults

    def set_rate_limits(self, enabled: bool) -> None:
        """Switch Amazon's usage plans on or off while running."""
        self.core.limiter.enabled = enabled

    def subscribe_queue(self, queue: str, seller_id: str | None = None, payload_version: str = "1.0") -> str:
        """Route a seller's REPORT_PROCESSING_FINISHED to an SQS queue (ARN or URL) without the API; returns the subscription id."""
        arn = queue if queue.startswith("arn:") else _arn_of(queue)
        seller = seller_id or self.seller_id
        with self.world.lock:
            destination = next((d for d in self.world.destinations.values() if d.arn == arn), None)
            if destination is None:
                destination = Destination(f"sim-{len(self.world.destinations) + 1}-{seller}", "simulator", arn)
                self.world.destinations[destination.destination_id] = destination
            subscription = Subscription(
                seller,
                NOTIFICATION_TYPE,
                f"sim-subscription-{seller}-{arn.rsplit(':', 1)[1]}",
                payload_version,
                destination.destination_id,
            )
            self.world.subscriptions.setdefault((seller, NOTIFICATION_TYPE), []).append(subscription)
        return subscription.subscription_id

    # --- observing ----------------------------------------------------------------------------------

    def requests(self, operation: str | None = None, seller_id: str | None = None) -> list[RequestRecord]:
        """The request log (oldest first), optionally filtered."""
        return self.core.log.records(operation, seller_id)

    def notifications(self) -> list[SentNotification]:
        """Every SQS message sent so far."""
        return list(self.notifier.sent)

    def wait_for_notifications(self, count: int, timeout: float = 30.0) -> list[SentNotification]:
        """Wait until at least ``count`` messages were sent; raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while len(self.notifier.sent) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.notifier.sent)} of {count} notifications sent")
            time.sleep(0.02)
        self.notifier.flush(max(0.0, deadline - time.monotonic()))
        return self.notifications()

    def _seller(self, seller_id: str) -> Any:
        for seller in self.config.sellers:
            if seller.seller_id == seller_id:
                return seller
        raise KeyError(f"unknown seller {seller_id}")


def _listen(host: str, port: int, app: SimulatorApp) -> BaseWSGIServer:
    # werkzeug answers a busy port with a message and sys.exit(); a library must raise instead.
    if port:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server itself binds
            probe.bind((host, port))  # raises OSError (address in use, not available, ...)
    try:
        return make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
    except SystemExit:
        raise OSError(errno.EADDRINUSE, f"{host}:{port} is in use") from None


def _arn_of(queue_url: str) -> str:
    """An SQS queue URL's ARN (``https://sqs.<region>.amazonaws.com/<account>/<name>``, or moto's)."""
    import boto3

    sqs = boto3.client("sqs")
    arn: str = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return arn


def start_simulator(config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0,
                    public_url: str | None = None) -> Simulator:  # fmt: skip
    """Start a simulator in background threads; ``port=0`` picks a free port (see ``sim.url``)."""
    return Simulator(config or SimulatorConfig(), host, port, public_url).start()
