"""Chaos on real processes: every case asserts nothing lost, nothing duplicated, no partial file visible.

Each case builds its own small deployment (a :class:`Lab`): a private redis-server, a pair of queues on
moto's SQS server (one server per run), the SP-API simulator in this process with several sellers
notifying the queue, and the product's own processes, ``spreports worker -Q documents`` and ``python -m
spreports.workers.relay``, each logging to a file. The tasks travel through that Redis or, with
``--broker rabbitmq``, through a vhost of the case's own on the machine's RabbitMQ (``RABBITMQ_URL``; the
state stays in the Redis). Beat's requeue task runs in this process every second (beat runs it every
15 s), as the dead-worker test does, and beat's sweep every 10 s (beat: 15 minutes). Documents enter the
way Amazon's do: the simulator finishes a report and notifies SQS; the relay publishes; the worker
retrieves and stores.

While a case runs, a watcher reads the storage tree ten times a second: every document file that becomes
visible is hashed at once and compared with the simulator's bytes (a partial or wrong file under a final
name would be caught), and the moment each document's index manifest appears is its stored time. The case
injects its fault, notes when the fault ended, and waits until every expected document is stored (or its
deadline passes). Then, per case:

- expected / stored: documents the simulator finished (and notified intact) / stored once with its bytes;
- duplicated: documents with more than one file, or written more than once (the pipeline's "downloaded
  from" line, logged once per committed write, appears more than once);
- lost: expected documents not stored by the deadline (whether or not the failure ledger has them);
- partial: visible files whose bytes were not the document's, at any moment; tmp left: ``.part`` files
  left in the tree at the end;
- fault s: how long the fault lasted; recovery s: from the fault's end to the last document stored (0
  when everything was stored before the fault ended).

Run every case (about 6 minutes per broker on the project's 2-core machine), or some of them::

    .venv/bin/python benchmarks/chaos.py
    .venv/bin/python benchmarks/chaos.py --case worker-sigkill --case redis-freeze --keep
    .venv/bin/python benchmarks/chaos.py --broker redis --broker rabbitmq   # every case on both brokers
    .venv/bin/python benchmarks/chaos.py --case redis-kills --drain-documents 1500 --sweep-seconds 0

The exit status is 1 when any case lost, duplicated or exposed a partial document, 0 otherwise.
``tests/e2e/test_chaos.py`` and ``test_chaos_rabbitmq.py`` run the cheapest cases through this same code. The full-disk case mounts a
2 MiB tmpfs (root is needed); where mounting is not permitted the case is skipped and says so.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.server
import json
import logging
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import redis
import requests
from lab import (
    UNACKED,
    RedisProcess,
    Stall,
    aws_environment,
    close_connections,
    expected_utf8,
    machine,
    moto_server,
    notified_document,
    private_vhost,
    product_env,
    quick_config,
    rabbitmq_base_url,
    rabbitmq_problem,
    start_python,
    stop,
    task_text,
    vhost_of,
    wait_for,
    worker_args,
)

from spreports import names
from spreports.simulator import DocumentSpec, Simulator, start_simulator
from spreports.simulator.config import SellerAccount, generated_seller

SELLERS = 6
# The product's own limiter keeps Amazon's getReportDocument quota: a burst of 15 per seller, then one a
# minute. Every attempt spends one, so a case spreads its documents over the sellers to stay within it.
CLAIM_TTL = 10  # the least allowed: a dead worker's claim lapses within it
VISIBILITY_TIMEOUT = 8  # SQS: a batch in a killed relay's hands reappears after it
SWEEP_SECONDS = 10.0  # beat's sweep, compressed from its 15 minutes
SWEPT_REPORT_TYPE = "GET_MERCHANT_LISTINGS_ALL_DATA"  # the type of every document the cases make
RELAY_REDIS_TIMEOUT = 10  # the relay's Redis socket timeout (spreports.workers.relay.process)
WATCH_SECONDS = 0.1
INDEX = "_index"
DRAIN_DOCUMENTS = 300  # the redis-kills case's documents (--drain-documents)
REDIS_KILLS = 8


# --- the LWA endpoint behind a switch (the simulator has no LWA outage of its own) -------------------------


class LwaSwitch:
    """A forwarding proxy in front of the simulator's token endpoint; while ``down`` it answers 503
    ``temporarily_unavailable``, as LWA does in an outage."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.down = threading.Event()
        self.refused = 0
        switch = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if switch.down.is_set():
                    switch.refused += 1
                    status, payload = 503, json.dumps({"error": "temporarily_unavailable",
                                                       "error_description": "outage"}).encode()  # fmt: skip
                else:
                    answer = requests.post(switch.target, data=body, timeout=30,
                                           headers={"Content-Type": self.headers.get("Content-Type", "")})  # fmt: skip
                    status, payload = answer.status_code, answer.content
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # the form holds refresh tokens
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/auth/o2/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- what a case saw ---------------------------------------------------------------------------------------


@dataclass
class Watch:
    """What the watcher saw in the storage tree: stored times, partial files, temporary files."""

    stored_at: dict[str, float] = field(default_factory=dict)
    partial: list[str] = field(default_factory=list)
    checked: set[tuple[str, int, int]] = field(default_factory=set)
    parts_seen: int = 0


@dataclass
class Row:
    """One case's line of the table."""

    case: str
    expected: int = 0
    stored: int = 0
    duplicated: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)
    tmp_left: list[str] = field(default_factory=list)
    fault_seconds: float = 0.0
    recovery_seconds: float | None = None
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None
    #: What went wrong beyond the counts: a fault that missed (the counts prove nothing), messages held.
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing lost, duplicated, wrong or partial under a final name (a skipped case is not ok).

        A ``.part`` file left behind is no visible document (its name is hidden and temporary): a writer
        killed mid-write leaves it, the sweep removes it after an hour; it is reported, not failed.
        """
        faults = self.duplicated or self.lost or self.wrong or self.partial
        return self.skipped is None and not (self.problems or faults)


# --- one deployment per case -------------------------------------------------------------------------------


class Lab:
    """Redis, queues, the simulator, a worker and a relay, and the watcher; see the module docstring."""

    def __init__(self, name: str, work: Path, aws: str, *, persistent_redis: bool = False,
                 storage: Path | None = None, lwa_switch: bool = False, pool: str = "prefork",
                 concurrency: int = 4, amqp_url: str | None = None, claim_ttl: int = CLAIM_TTL,
                 sellers: int = SELLERS) -> None:  # fmt: skip
        self.name, self.work, self.aws, self.pool, self.concurrency = name, work, aws, pool, concurrency
        self.claim_ttl = claim_ttl
        self.amqp_url = amqp_url  # RabbitMQ carries the tasks; None: the private Redis does
        work.mkdir(parents=True, exist_ok=True)
        self.root = storage or work / "reports"
        self.redis = RedisProcess(work / "redis", persistent=persistent_redis)
        self.sellers: tuple[SellerAccount, ...] = tuple(generated_seller(i) for i in range(1, sellers + 1))
        self.sim: Simulator = start_simulator(quick_config(sellers=self.sellers))
        self.lwa = LwaSwitch(self.sim.token_url) if lwa_switch else None
        self.sqs = boto3.client("sqs", endpoint_url=aws, region_name="us-east-1")
        tag = uuid.uuid4().hex[:10]
        self.queue_url = self.sqs.create_queue(QueueName=f"chaos-{tag}")["QueueUrl"]
        self.dlq_url = self.sqs.create_queue(QueueName=f"chaos-dlq-{tag}")["QueueUrl"]
        self.arn = f"arn:aws:sqs:us-east-1:123456789012:{self.queue_url.rsplit('/', 1)[1]}"
        for seller in self.sellers:
            self.sim.subscribe_queue(self.arn, seller_id=seller.seller_id)
        self.expected: dict[str, tuple[str, str]] = {}  # document id -> (seller, sha256 of what must be stored)
        # Finished reports whose notification never arrived intact: not expected, yet beat's sweep may find and
        # store them (as it must), whole and once like any other.
        self.unannounced: dict[str, tuple[str, str]] = {}
        self.watch = Watch()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._next_seller = 0
        self._starts: dict[str, int] = {"worker": 1, "relay": 1}  # how many times each was started
        self.requeued = 0  # documents the requeue task queued again

    # lifecycle

    def start(self) -> Lab:
        """Start Redis, the watcher, the requeue loop, the worker and the relay (waits until both are ready)."""
        self.redis.start()
        from spreports.settings import Settings
        from spreports.workers.app import create_app

        self.settings = Settings(broker_url=self.broker_url, redis_url=self.redis.url, data_dir=self.work / "data",
                                 storage={"url": str(self.root)}, documents={"claim_ttl_seconds": self.claim_ttl})  # fmt: skip
        self.app = create_app(self.settings)  # beat's requeue task runs here, on the lab's broker
        self.sweeper = create_app(self._sweep_settings())  # beat's sweep, with the product's full settings
        for loop in (self._watch_loop, self._requeue_loop, self._sweep_loop):
            thread = threading.Thread(target=loop, daemon=True, name=f"chaos-{loop.__name__}")
            thread.start()
            self._threads.append(thread)
        self.start_worker()
        self.start_relay()
        self.wait_ready()
        return self

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL), the threads, the simulator and Redis."""
        self._stopping.set()
        for name in list(self.processes):
            self.kill(name, signal.SIGTERM, timeout=30)
        for thread in self._threads:
            thread.join(timeout=10)
        with contextlib.suppress(Exception):
            self.app.close()
            self.sweeper.close()
        self.sim.stop()
        if self.lwa is not None:
            self.lwa.close()
        self.redis.signal(signal.SIGCONT)
        self.redis.kill()

    @property
    def broker_url(self) -> str:
        """Where the tasks travel: RabbitMQ's vhost, or the private Redis that also keeps the state."""
        return self.amqp_url or self.redis.url

    @property
    def broker(self) -> str:
        return "rabbitmq" if self.amqp_url else "redis"

    def queue_depth(self) -> str:
        """The documents queue: messages waiting, and delivered but not acknowledged."""
        if self.amqp_url:  # a passive declare (rabbitmqctl takes a second: the fault would come late)
            from kombu import Connection

            from spreports.workers.brokers import amqp_queue_depths

            with Connection(self.amqp_url, connect_timeout=5) as connection:
                ready = amqp_queue_depths(connection, [names.DOCUMENTS_QUEUE]).get(names.DOCUMENTS_QUEUE, 0)
            return f"{ready} queued on RabbitMQ"
        broker = redis.Redis.from_url(self.redis.url)
        try:
            return f"{broker.llen(names.DOCUMENTS_QUEUE)} queued, {broker.hlen(UNACKED)} unacked"
        finally:
            broker.close()

    def drop_broker_connections(self) -> int:
        """Close every client connection to the broker at once; how many were closed."""
        if self.amqp_url:
            return close_connections(vhost_of(self.amqp_url))
        client = redis.Redis.from_url(self.redis.url)
        try:
            return int(client.client_kill_filter(_type="normal", skipme=True))
        finally:
            client.close()

    def env(self) -> dict[str, str]:
        """The product processes' environment."""
        sellers = self.work / "sellers.toml"
        sellers.write_text("".join(f'[sellers.{s.seller_id}]\nrefresh_token = "{s.refresh_token}"\n'
                                   for s in self.sellers[1:]))  # fmt: skip
        return product_env({
            **self.sim.env(),
            **({"SPREPORTS_LWA__TOKEN_URL": self.lwa.url} if self.lwa else {}),
            "SPREPORTS_BROKER_URL": self.broker_url,
            "SPREPORTS_REDIS_URL": self.redis.url,
            "SPREPORTS_DATA_DIR": str(self.work / "data"),
            "SPREPORTS_STORAGE__URL": str(self.root),
            "SPREPORTS_SELLERS_FILE": str(sellers),
            "SPREPORTS_SQS__QUEUE_URL": self.queue_url,
            "SPREPORTS_SQS__DEAD_LETTER_QUEUE_URL": self.dlq_url,
            "SPREPORTS_SQS__WAIT_TIME_SECONDS": "1",
            "SPREPORTS_SQS__VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
            "SPREPORTS_SQS__RECEIVERS": "2",
            "SPREPORTS_DOCUMENTS__CLAIM_TTL_SECONDS": str(self.claim_ttl),
            "AWS_ENDPOINT_URL_SQS": self.aws,
        })  # fmt: skip

    def _start(self, name: str, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        process = start_python(argv, self.env(), self.work, self.work / f"{name}.log")
        self.processes[name] = process
        return process

    def start_worker(self) -> None:
        """A documents worker (threads pool), its log ``worker.log`` (appended across restarts)."""
        name = f"chaos-{self.name}-{self.broker}-{uuid.uuid4().hex[:6]}"
        self._start("worker", worker_args(name, "documents", self.concurrency, "--pool", self.pool, level="INFO"))

    def start_relay(self) -> None:
        """A relay, its log ``relay.log`` (appended across restarts)."""
        self._start("relay", ["-m", "spreports.workers.relay"])

    def wait_ready(self, timeout: float = 90) -> None:
        """Wait until the worker and the relay said they run (counting only their latest start)."""
        ready = {"worker": " ready.", "relay": "relaying "}
        for name, phrase in ready.items():

            def up(name: str = name, phrase: str = phrase) -> bool:
                return self.log(name).count(phrase) >= self._starts[name]

            wait_for(up, timeout, f"{self.name}: {name} up")

    def restart(self, name: str) -> None:
        """Start ``worker`` or ``relay`` again and wait until it is up."""
        self._starts[name] += 1
        (self.start_worker if name == "worker" else self.start_relay)()
        self.wait_ready()

    def kill(self, name: str, sig: int = signal.SIGKILL, timeout: float = 30) -> None:
        """Signal a process's whole group (a worker with its pool) and wait; SIGKILL after ``timeout``."""
        process = self.processes.get(name)
        if process is not None:
            stop(process, sig, timeout)

    def log(self, name: str) -> str:
        path = self.work / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # documents

    def seller(self) -> str:
        """The next seller, round robin (spreads the per-seller quota)."""
        seller = self.sellers[self._next_seller % len(self.sellers)].seller_id
        self._next_seller += 1
        return seller

    def add(self, spec: DocumentSpec | None = None, *, seller_id: str | None = None, notify: bool = True) -> str:
        """A finished report's document, notified to the queue; expected stored with the simulator's bytes."""
        spec = spec or DocumentSpec(size=16 * 1024, charset="UTF-8", seed=len(self.expected))
        assert spec.charset is not None, "the expected bytes are decoded from the charset named here"
        seller = seller_id or self.seller()
        document_id = self.sim.add_document(spec, seller_id=seller, notify=False)
        digest = hashlib.sha256(expected_utf8(self.sim, document_id, spec.charset)).hexdigest()
        self.expected[document_id] = (seller, digest)
        if notify:  # once expected: on a busy machine a quick worker stored it before it was, and the watcher
            # took the unknown file for a wrong one
            document = self.sim.world.documents[document_id]
            self.sim.notifier.report_finished(self.sim.world.reports[(document.seller_id, document.report_id)])
        return document_id

    def add_many(self, count: int, *, size: int = 16 * 1024, gzip: bool = True, charset: str = "UTF-8") -> list[str]:
        """``count`` documents over the sellers."""
        return [self.add(DocumentSpec(size=size, gzip=gzip, charset=charset, seed=len(self.expected) + i))
                for i in range(count)]  # fmt: skip

    def stored(self) -> int:
        return sum(1 for d in self.expected if d in self.watch.stored_at)

    def all_stored(self) -> bool:
        return all(d in self.watch.stored_at for d in self.expected)

    # background loops

    def _watch_loop(self) -> None:
        while not self._stopping.wait(WATCH_SECONDS):
            with contextlib.suppress(OSError):
                self._scan()

    def _scan(self) -> None:
        now = time.monotonic()
        if not self.root.exists():
            return
        for path in self.root.rglob("*"):
            name = path.name
            parts = path.relative_to(self.root).parts
            if parts and parts[0] == INDEX:
                if name.endswith(".manifest.json"):
                    self.watch.stored_at.setdefault(name.removesuffix(".manifest.json"), now)
                continue
            if name.endswith(".part"):
                self.watch.parts_seen += 1
                continue
            if name.endswith(".manifest.json") or not path.is_file() or name.startswith("."):
                continue
            with contextlib.suppress(FileNotFoundError):
                stat = path.stat()
                key = (str(path), stat.st_ino, stat.st_mtime_ns)
                if key in self.watch.checked:
                    continue
                self.watch.checked.add(key)
                document = self.document_of(name)
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                if document is None or digest != {**self.expected, **self.unannounced}[document][1]:
                    self.watch.partial.append(f"{path.relative_to(self.root)} ({stat.st_size} bytes)")

    def document_of(self, file_name: str) -> str | None:
        return next((d for d in [*self.expected, *self.unannounced] if file_name.startswith(d + ".")), None)

    def _requeue_loop(self) -> None:
        # Beat's requeue task, every second instead of every 15 s; a frozen or dead Redis only delays it.
        from spreports.tasks.documents import requeue_orphaned_documents

        while not self._stopping.wait(1.0):
            with contextlib.suppress(Exception):
                self.app.set_current()
                self.requeued += requeue_orphaned_documents.apply().get()

    def _sweep_settings(self) -> Any:
        from spreports.settings import load_settings

        saved = dict(os.environ)
        try:
            os.environ.clear()
            os.environ.update(self.env())
            os.environ["SPREPORTS_SQS__REPORT_TYPES"] = json.dumps([SWEPT_REPORT_TYPE])
            return load_settings(env_file=None)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def _sweep_loop(self) -> None:
        # Beat's sweep (getReports of finished reports not stored), every SWEEP_SECONDS instead of every
        # 15 minutes: it recovers what no queue, claim or ledger remembers any more, such as a message the
        # broker handed to a worker killed before the delivery was recorded.
        from spreports.tasks.sweep import sweep_finished_reports

        if SWEEP_SECONDS <= 0:  # --sweep-seconds 0: what the queues, claims and in-flight list recover alone
            return
        while not self._stopping.wait(SWEEP_SECONDS):
            with contextlib.suppress(Exception):
                self.sweeper.set_current()
                sweep_finished_reports.apply()

    # the outcome

    def settle(self, row: Row, fault_ended: float, deadline: float) -> Row:
        """Wait for every expected document (or ``deadline`` s), then fill ``row``."""
        with contextlib.suppress(TimeoutError):
            wait_for(self.all_stored, deadline, f"{self.name}: every document stored", interval=0.2)
        with contextlib.suppress(TimeoutError):  # a writer still finishing removes its temporary file
            wait_for(lambda: not list(self.root.rglob("*.part")), 5, "no temporary file")
        time.sleep(0.3)  # one more pass of the watcher over the final tree
        return self.tally(row, fault_ended)

    def tally(self, row: Row, fault_ended: float) -> Row:
        files = [p for p in self.root.rglob("*") if p.is_file() and not p.name.endswith((".manifest.json", ".part"))
                 and INDEX not in p.relative_to(self.root).parts and not p.name.startswith(".")]  # fmt: skip
        writes = written_per_document(self.log("worker"))
        from spreports.storage import open_storage

        storage = open_storage(self.settings)
        row.expected = len(self.expected)
        for document_id, (seller, digest) in self.expected.items():
            mine = [p for p in files if p.name.startswith(document_id + ".")]
            manifest = storage.find(seller, document_id)
            if not mine or manifest is None:
                row.lost.append(document_id)
                continue
            if len(mine) > 1 or writes.get(document_id, 0) > 1:
                row.duplicated.append(f"{document_id} ({len(mine)} files, {writes.get(document_id, 0)} writes)")
            if manifest.sha256 != digest or any(hashlib.sha256(p.read_bytes()).hexdigest() != digest for p in mine):
                row.wrong.append(document_id)
            elif len(mine) == 1 and writes.get(document_id, 0) <= 1:
                row.stored += 1
        swept = 0
        for document_id, (_, digest) in self.unannounced.items():
            mine = [p for p in files if p.name.startswith(document_id + ".")]
            swept += bool(mine)
            if len(mine) > 1 or writes.get(document_id, 0) > 1:
                row.duplicated.append(f"{document_id} ({len(mine)} files, {writes.get(document_id, 0)} writes)")
            if any(hashlib.sha256(p.read_bytes()).hexdigest() != digest for p in mine):
                row.wrong.append(document_id)
        if self.unannounced:
            row.notes.append(f"{swept} of {len(self.unannounced)} never notified intact stored by the sweep")
        row.partial = list(self.watch.partial)
        row.tmp_left = [str(p.relative_to(self.root)) for p in self.root.rglob("*.part")]
        if row.tmp_left:
            row.notes.append(f"{len(row.tmp_left)} hidden .part file(s) of a killed writer left for the sweep")
        row.notes.extend(f"lost {d[:40]}...: {self.whereabouts(d)}" for d in row.lost)
        times = [self.watch.stored_at[d] for d in self.expected if d in self.watch.stored_at]
        if times and not row.lost:
            row.recovery_seconds = max(0.0, max(times) - fault_ended)
        # The task's line for a document given up on (worded either way across versions).
        failed = len(re.findall(r"failed for good| not stored \(", self.log("worker")))
        if failed:
            row.notes.append(f"{failed} 'failed for good' (not stored) log line(s)")
        return row

    def whereabouts(self, document_id: str) -> str:
        """Where a document that was not stored is: its task queued, delivered and unacknowledged, in flight,
        in the failure ledger, or nowhere."""
        from spreports.documents.inflight import INFLIGHT_KEY
        from spreports.reports.failure_ledger import FailureLedger

        broker = redis.Redis.from_url(self.redis.url, socket_timeout=5)
        try:
            seller = self.expected[document_id][0]
            places = [] if not self.amqp_url else [f"RabbitMQ's documents queue: {self.queue_depth()}"]
            if any(document_id in task_text(entry) for entry in broker.hvals(UNACKED)):
                places.append("its task delivered and unacknowledged (back after the broker's visibility timeout)")
            if any(document_id in task_text(entry) for entry in broker.lrange(names.DOCUMENTS_QUEUE, 0, -1)):
                places.append("its task queued")
            if broker.hexists(INFLIGHT_KEY, f"{seller}:{document_id}"):
                places.append("listed in flight")
            if any(e.request.report_document_id == document_id for e in FailureLedger(broker).entries()):
                places.append("in the failure ledger")
            return ", ".join(places) or f"nowhere in Redis (seller {seller})"
        except (redis.RedisError, OSError) as exc:
            return f"Redis unreadable ({type(exc).__name__})"
        finally:
            broker.close()


def written_per_document(log: str) -> dict[str, int]:
    """How many committed writes of each document a worker log shows (one "downloaded from" line each)."""
    counts: dict[str, int] = {}
    for document_id in re.findall(r"document (\S+) of seller \S+ downloaded from", log):
        counts[document_id] = counts.get(document_id, 0) + 1
    return counts


def in_flight(lab: Lab) -> int:
    attributes = lab.sqs.get_queue_attributes(QueueUrl=lab.queue_url,
                                              AttributeNames=["ApproximateNumberOfMessagesNotVisible"])  # fmt: skip
    return int(attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"])


# --- the cases ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A chaos case: its name, what it does, how to build its lab, and the fault itself."""

    name: str
    title: str
    run: Callable[[Lab, Row], float]  # injects the fault; returns the monotonic time the fault ended
    deadline: float = 90.0
    lab: dict[str, Any] = field(default_factory=dict)
    quick: bool = False  # cheap enough for the test suite


def worker_sigkill(lab: Lab, row: Row) -> float:
    """A 4 MiB download held mid-body by the simulator, 11 more documents in flight; the worker's whole
    process group SIGKILLed; a new worker started (as a supervisor would). The dead run's claim lapses,
    the requeue task queues the document again."""
    stall = Stall(lab.sim, skip=2)  # getReport and getReportDocument answer; the download after them is held
    lab.sim.set_faults(slow_responses=3, slow_seconds=120.0)
    big = lab.add(DocumentSpec(size=4 * 2**20, charset="Cp1252", gzip=True, seed=4242))
    wait_for(lambda: stall.stalling.is_set() and list(lab.root.rglob("*.part")), 60, "the big download held")
    lab.add_many(11)
    wait_for(lambda: lab.stored() >= 3, 30, "some small documents stored")
    lab.kill("worker", signal.SIGKILL)
    killed = time.monotonic()
    stall.release()
    row.notes.append(f"killed with {len(lab.expected) - lab.stored()} of {len(lab.expected)} documents unstored "
                     f"(the {big[:18]}... download held mid-body)")  # fmt: skip
    lab.restart("worker")
    return killed


def pool_sigkill_claim_waits(lab: Lab, row: Row) -> float:
    """A 4 MiB download held mid-body; only the pool process running it SIGKILLed, so the worker hands the
    task back at once. The dead run's claim (45 s here) outlives three claim-wait countdowns: the task must
    come back from each (on RabbitMQ through overlapping delay queues, where a retry that carried the
    broker's dead-letter headers was held for good) and store the document once the claim lapses. On
    RabbitMQ, any message then held in the delay queues (read from the management API) is a problem."""
    stall = Stall(lab.sim, skip=2)  # getReport and getReportDocument answer; the download after them is held
    lab.sim.set_faults(slow_responses=3, slow_seconds=120.0)
    big = lab.add(DocumentSpec(size=4 * 2**20, charset="Cp1252", gzip=True, seed=4242))
    part = wait_for(lambda: next(lab.root.rglob("*.part"), None), 60, "the big download held")
    writer = wait_for(lambda: holder_of(part), 30, "the pool process writing the download")
    os.kill(writer, signal.SIGKILL)
    killed = time.monotonic()
    stall.release()
    lab.add_many(5)
    wait_for(lambda: lab.stored() == len(lab.expected), 150, "every document stored")
    waits = claim_waits(lab.log("worker"), big)
    row.notes.append(f"pool process {writer} killed mid-download; {waits} claim-wait countdown(s) came back")
    if waits < 2:
        row.problems.append(f"{waits} claim wait(s): the case needs 2 or more")
    if lab.amqp_url is not None:
        row.problems.extend(
            f"{count} message(s) held in {queue}" for queue, count in held_messages(lab.amqp_url).items()
        )
    return killed


def held_messages(amqp_url: str) -> dict[str, int]:
    """The messages RabbitMQ holds in the delay queues, once its statistics have caught up."""
    from spreports.workers.held_messages import STATISTICS_SECONDS, held_in_delay_queues

    time.sleep(STATISTICS_SECONDS)  # the management API's counts are refreshed every 5 s
    return held_in_delay_queues(amqp_url)


def holder_of(path: Path) -> int | None:
    """The process that has ``path`` open (read from /proc), or None."""
    for descriptors in Path("/proc").glob("[0-9]*/fd"):
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) == str(path) for fd in descriptors.iterdir()):
                return int(descriptors.parent.name)
    return None


def claim_waits(log: str, document_id: str) -> int:
    """How many times the worker found ``document_id`` claimed by another run and sent it back on a countdown."""
    return len(re.findall(rf"document {re.escape(document_id)} of seller \S+ is being retrieved by another task", log))


def relay_sigkill(lab: Lab, row: Row) -> float:
    """30 notifications; the relay SIGKILLed while it holds received, undeleted messages; restarted at once.
    They reappear after the SQS visibility timeout and are relayed (deduplicated by notification id)."""
    lab.add_many(30)
    wait_for(lambda: "relayed notification" in lab.log("relay") and in_flight(lab) > 0, 60, "the relay mid-batch",
          interval=0.02)  # fmt: skip
    held = in_flight(lab)
    lab.kill("relay", signal.SIGKILL)
    killed = time.monotonic()
    relayed = lab.log("relay").count("relayed notification")
    row.notes.append(f"killed holding {held} received, undeleted message(s), after {relayed} relayed")
    lab.restart("relay")
    return killed


def redis_restart(lab: Lab, row: Row) -> float:
    """appendonly yes (fsync always): Redis SIGKILLed with tasks queued and running, restarted 2 s later."""
    lab.add_many(30)
    wait_for(lambda: lab.stored() >= 5, 60, "a few documents stored")
    depth = lab.queue_depth()
    lab.redis.kill()
    down = time.monotonic()
    row.notes.append(f"killed with {lab.stored()} stored, {depth}")
    time.sleep(2.0)  # the outage: the time a supervisor takes to restart it
    lab.redis.start()
    row.fault_seconds = time.monotonic() - down
    return time.monotonic()


def redis_kills(lab: Lab, row: Row) -> float:
    """appendonly yes (fsync always): while DRAIN_DOCUMENTS documents drain, Redis SIGKILLed every 5 s, 8 times,
    restarted at once each time. A kill between a consumer's pop of a message and its record as delivered
    loses the message; a delayed message a worker held is left unacknowledged until the visibility timeout."""
    lab.add_many(DRAIN_DOCUMENTS)  # they drain as they are notified
    started = time.monotonic()
    at_kills = []
    for _ in range(REDIS_KILLS):
        time.sleep(5.0)
        at_kills.append(lab.stored())
        lab.redis.kill()
        lab.redis.start()
    row.fault_seconds = time.monotonic() - started
    row.notes.append(f"{REDIS_KILLS} kills with {', '.join(map(str, at_kills))} stored; {lab.queue_depth()} after")
    ended = time.monotonic()
    with contextlib.suppress(TimeoutError):  # settle() tells what is lost
        wait_for(lab.all_stored, 240, "every document stored", interval=0.2)
    row.notes.append(f"{lab.requeued} queued again by the requeue task by the end")
    return ended


def drain_sellers() -> int:
    """Enough sellers that each one's getReportDocument burst (15) covers its share of the drained documents."""
    return max(SELLERS, -(-DRAIN_DOCUMENTS // 12))


def redis_freeze(lab: Lab, row: Row) -> float:
    """Redis SIGSTOPped for 15 s (the relay's Redis timeout is 10 s, the SQS visibility timeout 8 s) while
    documents are notified, then SIGCONTinued."""
    lab.add_many(12)
    wait_for(lambda: lab.stored() >= 3, 60, "a few documents stored")
    lab.redis.signal(signal.SIGSTOP)
    frozen = time.monotonic()
    lab.add_many(12)
    time.sleep(RELAY_REDIS_TIMEOUT + 5)
    lab.redis.signal(signal.SIGCONT)
    row.fault_seconds = time.monotonic() - frozen
    row.notes.append(f"{lab.log('relay').count('Redis unavailable')} 'Redis unavailable' relay log line(s)")
    return time.monotonic()


def broker_disconnect(lab: Lab, row: Row) -> float:
    """Every client connection to the broker closed at once (a failover, a proxy's reset) with 48 documents
    notified: the worker and the relay reconnect, deliveries left unacknowledged come back."""
    lab.add_many(48)
    wait_for(lambda: lab.stored() >= 3, 60, "a few documents stored", interval=0.02)
    # The rest's SP-API answers are held until the connections are closed: closing them takes a moment, in
    # which a quick worker would otherwise store all 48 and the case would close idle connections only.
    sleep = lab.sim.core.sleep
    stall = Stall(lab.sim)
    lab.sim.set_faults(slow_responses=10_000, slow_seconds=120.0)
    try:
        closed = lab.drop_broker_connections()
        ended = time.monotonic()
        stored = lab.stored()  # counted once the connections are closed: what was left to store went through them
    finally:
        lab.sim.set_faults(slow_responses=0)
        stall.release()
        lab.sim.core.sleep = sleep
    row.notes.append(f"{closed} connection(s) closed with {stored} stored, {lab.queue_depth()}")
    return ended


def throttle_storm(lab: Lab, row: Row) -> float:
    """A 429 storm: the next 36 SP-API calls (getReport, getReportDocument) answer 429 QuotaExceeded."""
    lab.sim.set_faults(throttle=36)
    started = time.monotonic()
    lab.add_many(12)
    ended = wait_for(lambda: lab.sim.faults.throttle == 0 and time.monotonic(), 60, "the storm spent")
    row.fault_seconds = ended - started
    return float(ended)


def lwa_outage(lab: Lab, row: Row) -> float:
    """LWA answers 503 for 8 s from the moment 12 documents are notified (no token cached yet)."""
    assert lab.lwa is not None
    lab.lwa.down.set()
    started = time.monotonic()
    lab.add_many(12)
    wait_for(lambda: lab.lwa is not None and lab.lwa.refused >= 2, 30, "the outage met")
    time.sleep(max(0.0, 8.0 - (time.monotonic() - started)))
    lab.lwa.down.clear()
    row.fault_seconds = time.monotonic() - started
    row.notes.append(f"{lab.lwa.refused} token request(s) refused")
    return time.monotonic()


def expired_urls(lab: Lab, row: Row) -> float:
    """The next 8 pre-signed URLs getReportDocument returns have already expired (403 on GET)."""
    lab.sim.set_faults(expired_urls=8)
    started = time.monotonic()
    lab.add_many(12)
    ended = wait_for(lambda: lab.sim.faults.expired_urls == 0 and time.monotonic(), 60, "the expired URLs served")
    row.fault_seconds = ended - started
    return float(ended)


def bad_documents(lab: Lab, row: Row) -> float:
    """Truncated gzip streams (3), GZIP declared for plain bytes (3), plain declared for gzip bytes (3)."""
    lab.sim.set_faults(truncated_gzip=3, gzip_declared_plain=3, plain_declared_gzip=3)
    started = time.monotonic()
    lab.add_many(7, gzip=True, charset="Cp1252")
    lab.add_many(5, gzip=False, charset="UTF-8")
    faults = lab.sim.faults

    def spent() -> float | None:
        left = faults.truncated_gzip + faults.gzip_declared_plain + faults.plain_declared_gzip
        return time.monotonic() if left == 0 else None

    ended = wait_for(spent, 60, "the bad documents served")
    row.fault_seconds = ended - started
    return float(ended)


def full_disk(lab: Lab, row: Row) -> float:
    """The storage's file system (a 2 MiB tmpfs) filled up; 8 documents of 96 KiB meet ENOSPC; 5 s after
    the first refusal the filler is removed. Stored files must be whole; the retries come back later."""
    filler = lab.root.parent / "filler"
    with open(filler, "wb", buffering=0) as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 16384)
    started = time.monotonic()
    lab.add_many(8, size=96 * 1024)
    wait_for(lambda: "no space left on the device" in lab.log("worker"), 60, "a write refused")
    time.sleep(5.0)
    filler.unlink()
    row.fault_seconds = time.monotonic() - started
    row.notes.append(f"{lab.log('worker').count('no space left on the device')} ENOSPC log line(s) before the end")
    return time.monotonic()


def notification_bursts(lab: Lab, row: Row) -> float:
    """12 documents: 4 notified twice, 2 ten times, 2 replaced by malformed bodies (their documents are not
    expected: Amazon's notification never arrived intact; the sweep may still store them, whole and once),
    plus 40 copies of one valid body."""
    lab.sim.set_faults(duplicate_notifications=4, repeated_notifications=2, malformed_notifications=2)
    started = time.monotonic()
    ids = lab.add_many(12)
    lab.sim.notifier.flush()
    intact = {document for sent in lab.sim.notifications() if (document := notified_document(lab.sim, sent.body))}
    for document_id in set(ids) - intact:
        lab.unannounced[document_id] = lab.expected.pop(document_id)
    valid = next(s.body for s in lab.sim.notifications() if notified_document(lab.sim, s.body))
    for _ in range(40):
        lab.sim.notifier.send_raw(lab.arn, valid)
    lab.sim.notifier.flush()
    row.notes.append(f"{len(ids) - len(intact)} malformed (dead-lettered: see dlq), "
                     f"{len(lab.sim.notifications())} messages sent for {len(intact)} documents")  # fmt: skip
    row.fault_seconds = time.monotonic() - started
    return time.monotonic()


CASES = [
    Case("worker-sigkill", "a worker SIGKILLed mid-download", worker_sigkill),
    Case(
        "pool-sigkill-claim-waits",
        "a pool process SIGKILLed mid-download, claim waits after",
        pool_sigkill_claim_waits,
        deadline=150,
        lab={"claim_ttl": 45},
    ),
    Case("relay-sigkill", "the relay SIGKILLed mid-batch", relay_sigkill),
    Case(
        "redis-restart",
        "Redis SIGKILLed and restarted, appendonly yes",
        redis_restart,
        deadline=120,
        lab={"persistent_redis": True},
    ),
    Case(
        "redis-kills",
        "Redis SIGKILLed every 5 s while documents drain",
        redis_kills,
        deadline=240,
        lab={"persistent_redis": True},
    ),
    Case("redis-freeze", "Redis frozen (SIGSTOP) 15 s, past the relay's timeouts", redis_freeze, deadline=120),
    Case("broker-disconnect", "every broker connection closed at once", broker_disconnect, quick=True),
    Case("throttle-storm", "a 429 storm (36 calls)", throttle_storm),
    Case("lwa-outage", "an LWA outage (503 for 8 s)", lwa_outage, lab={"lwa_switch": True}),
    Case("expired-urls", "expired pre-signed URLs (8)", expired_urls, quick=True),
    Case("bad-documents", "truncated and mislabelled documents (9)", bad_documents, quick=True),
    Case("full-disk", "a full disk on the storage path (2 MiB tmpfs)", full_disk, deadline=150),
    Case("notification-bursts", "bursts of duplicate and malformed notifications", notification_bursts, quick=True),
]
QUICK = [case.name for case in CASES if case.quick]


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "2m") -> Iterator[str | None]:
    """A tmpfs of ``size`` mounted at ``path`` (yields None), or the reason it cannot be (yields it)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True, check=False)  # fmt: skip
    if mounted.returncode != 0:
        yield f"mount -t tmpfs is not permitted here ({mounted.stderr.strip() or mounted.returncode})"
        return
    try:
        yield None
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def run_case(case: Case, work: Path, aws: str, pool: str = "prefork", broker: str = "redis") -> Row:
    """Build the case's lab, inject its fault, settle and tally; the lab is always taken down.

    With ``broker="rabbitmq"`` the tasks travel through a vhost of the case's own on the machine's
    RabbitMQ (``RABBITMQ_URL``), the product's state stays in the case's Redis.
    """
    row = Row(case.name)
    began = time.monotonic()
    place = work / f"{case.name}-{broker}"
    for again in range(2, 10_000):  # a repeated case gets a directory of its own each time
        if not place.exists():
            break
        place = work / f"{case.name}-{broker}-{again}"
    with contextlib.ExitStack() as stack:
        options: dict[str, Any] = {"pool": pool, **case.lab}
        if broker == "rabbitmq":
            options["amqp_url"] = stack.enter_context(private_vhost(rabbitmq_base_url(), prefix="spreports-chaos"))
        if case.name == "full-disk":
            disk = place / "disk"
            reason = stack.enter_context(small_filesystem(disk))
            if reason is not None:
                row.skipped = reason
                return row
            options["storage"] = disk / "reports"
        if case.name == "redis-kills":
            options["sellers"] = drain_sellers()
        lab = Lab(case.name, place, aws, **options)
        stack.callback(lab.stop)
        lab.start()
        ended = case.run(lab, row)
        lab.settle(row, ended, case.deadline)
        if case.name == "notification-bursts":
            dead = int(lab.sqs.get_queue_attributes(QueueUrl=lab.dlq_url, AttributeNames=[
                "ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"])  # fmt: skip
            row.notes.append(f"{dead} message(s) in the dead-letter queue")
    row.notes.append(f"case took {time.monotonic() - began:.0f} s")
    return row


@contextlib.contextmanager
def moto_sqs() -> Iterator[str]:
    """moto's server for the run; AWS_* set in this process (the simulator's notifier sends to it)."""
    with moto_server() as url, aws_environment(url):
        yield url


def run(
    chosen_names: Sequence[str],
    work: Path,
    *,
    pool: str = "prefork",
    broker: str = "redis",
    echo: Callable[[str], None] = print,
) -> list[Row]:
    """Run the named cases one after the other on one moto server, workers of ``pool`` on ``broker``."""
    chosen = [next(c for c in CASES if c.name == name) for name in chosen_names]
    rows = []
    if broker == "rabbitmq" and (problem := rabbitmq_problem(rabbitmq_base_url())) is not None:
        raise RuntimeError(problem)
    with moto_sqs() as aws:
        for case in chosen:
            echo(f"-- {case.name} ({broker}): {case.title}")
            row = run_case(case, work, aws, pool, broker)
            echo(f"   {format_row(row)}")
            rows.append(row)
    return rows


HEADER = "| case | expected | stored | duplicated | lost | partial seen | tmp left | fault s | recovery s | notes |"


def format_row(row: Row) -> str:
    """One Markdown table line."""
    if row.skipped:
        return f"| {row.case} | - | - | - | - | - | - | - | - | SKIPPED: {row.skipped} |"

    recovery = "-" if row.recovery_seconds is None else f"{row.recovery_seconds:.1f}"
    lost = len(row.lost) + len(row.wrong)
    notes = "; ".join(row.notes + [f"PROBLEM: {problem}" for problem in row.problems]
                      + [f"lost: {', '.join(row.lost)}"] * bool(row.lost)
                      + [f"wrong bytes: {', '.join(row.wrong)}"] * bool(row.wrong)
                      + [f"duplicated: {', '.join(row.duplicated)}"] * bool(row.duplicated)
                      + [f"partial: {', '.join(row.partial)}"] * bool(row.partial))  # fmt: skip
    return (f"| {row.case} | {row.expected} | {row.stored} | {len(row.duplicated)} | {lost} | {len(row.partial)} | "
            f"{len(row.tmp_left)} | {row.fault_seconds:.1f} | {recovery} | {notes} |")  # fmt: skip


def table(rows: Sequence[Row]) -> str:
    """The Markdown table of ``rows``."""
    return "\n".join([HEADER, "|" + "---|" * 10, *(format_row(row) for row in rows)])


SUMMARY_HEADER = "| case | runs | ok | expected | stored | duplicated | lost | recovery s median | recovery s worst |"


def summary(rows: Sequence[Row]) -> str:
    """Per case, the runs added up: how many were ok, the documents, and the recovery's median and worst."""
    lines = [SUMMARY_HEADER, "|" + "---|" * 9]
    for case in dict.fromkeys(row.case for row in rows):
        runs = [row for row in rows if row.case == case and not row.skipped]
        recoveries = sorted(row.recovery_seconds for row in runs if row.recovery_seconds is not None)
        median = f"{statistics.median(recoveries):.1f}" if recoveries else "-"
        worst = f"{recoveries[-1]:.1f}" if recoveries else "-"
        lines.append(
            f"| {case} | {len(runs)} | {sum(row.ok for row in runs)} | {sum(row.expected for row in runs)} | "
            f"{sum(row.stored for row in runs)} | {sum(len(row.duplicated) for row in runs)} | "
            f"{sum(len(row.lost) + len(row.wrong) for row in runs)} | {median} | {worst} |"
        )
    return "\n".join(lines)


def main() -> int:
    global DRAIN_DOCUMENTS, SWEEP_SECONDS  # the case functions take (lab, row) only
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", action="append", choices=[c.name for c in CASES], help="run only these (repeat)")
    parser.add_argument("--quick", action="store_true", help="only the cases the test suite runs")
    parser.add_argument("--pool", default="prefork", choices=["prefork", "threads"], help="the workers' pool")
    parser.add_argument("--broker", action="append", choices=["redis", "rabbitmq"],
                        help="the broker the tasks travel through (repeat for both; default redis)")  # fmt: skip
    parser.add_argument(
        "--repeat", type=int, default=1, help="run the chosen cases this many times (a summary follows)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, stored files)")
    parser.add_argument("--drain-documents", type=int, default=DRAIN_DOCUMENTS, metavar="N",
                        help=f"documents the redis-kills case drains (default {DRAIN_DOCUMENTS})")  # fmt: skip
    parser.add_argument("--sweep-seconds", type=float, default=SWEEP_SECONDS, metavar="S",
                        help=f"beat's sweep every S seconds (default {SWEEP_SECONDS:.0f}; 0: no sweep)")  # fmt: skip
    args = parser.parse_args()
    DRAIN_DOCUMENTS, SWEEP_SECONDS = args.drain_documents, args.sweep_seconds
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request lines
    chosen = args.case or (QUICK if args.quick else [c.name for c in CASES])
    work = Path(tempfile.mkdtemp(prefix="spreports-chaos-"))
    began = time.monotonic()
    tables = []
    try:
        for broker in args.broker or ["redis"]:
            rows = run(chosen * max(args.repeat, 1), work, pool=args.pool, broker=broker)
            tables.append((broker, rows))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nmachine: {machine()}, "
          f"workers --pool {args.pool}, load average {os.getloadavg()[0]:.1f}; {time.monotonic() - began:.0f} s; work dir {work}"
          f"{'' if args.keep else ' (removed)'}")  # fmt: skip
    for broker, rows in tables:
        print(f"\nbroker: {broker}\n\n{table(rows)}")
        if args.repeat > 1:
            print(f"\n{summary(rows)}")
    return 0 if all(row.ok or row.skipped for _, rows in tables for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
