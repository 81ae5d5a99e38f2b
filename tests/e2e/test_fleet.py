"""A fleet across hosts: hundreds of reports from many sellers, and a worker host cut off mid-download.

The hub host holds Redis (a private redis-server), the SP-API simulator and the local SQS (moto's
server), each bound to the hub's address; two worker hosts each run a documents worker
(``python -m spreports.workers.cli worker -Q documents``) and a relay (``python -m
spreports.workers.relay``), reaching the hub over the network only. The hosts are network namespaces
joined by a bridge (:mod:`tests.netns`, addresses of the documentation range 198.51.100.0/24); where
namespaces are not permitted the hosts are separate processes on 127.0.0.1, and the output says so.
Storage is one directory all hosts share (as a network file system would be). The test runs with Redis
as the broker here and with RabbitMQ in ``test_fleet_rabbitmq.py`` (a vhost of its own on the machine's
server, reached by the hosts through a TCP forwarder on the hub's address; the product's state stays in
the hub's Redis).

1. The simulator finishes hundreds of reports of many sellers and notifies the queue; every document
   is stored exactly once, with the bytes (and sha256) the simulator generated, by both hosts.
2. A large document's download is held by the simulator; the host downloading it is cut off (its
   link down; in the fallback its processes frozen). More documents arrive meanwhile. The cut host's
   claim lapses, the requeue task (beat's, run here every second) queues the document again, and the
   other host stores it: the time from the cut to the stored document is printed. Then the link comes
   back and the held download resumes: still one file, the right bytes, no temporary file left.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
import redis

from benchmarks.lab import UNACKED, task_text
from spreports import names
from spreports.documents.claim import CLAIM_PREFIX
from spreports.settings import Settings
from spreports.simulator import DocumentSpec, Simulator, start_simulator
from spreports.simulator.config import SellerAccount, generated_seller
from spreports.storage import open_storage
from tests.integration.documents.helpers import expected_utf8
from tests.integration.relay.conftest import queue_counts
from tests.netns import Hosts, open_hosts
from tests.processes import product_env, wait_for
from tests.rabbitmq import forwarded, private_vhost, rabbitmq_base_url, rabbitmq_problem
from tests.servers import redis_server_binary, unavailable
from tests.sim import Stall, quick_config

HOSTS = ("w1", "w2")
SELLERS = 20
# 300 documents in the first phase. Each seller's getReportDocument quota (burst 15, then one a minute) is
# spent by it: the second phase has sellers of its own, or its documents would wait a minute for quota.
PER_SELLER = 15
CHAOS_SELLERS = 4
DURING_CUT = 24  # documents notified while a host is cut off (spread over the chaos sellers but the first)
CHARSETS = ("UTF-8", "Cp1252", "windows-31j", "Shift_JIS")
BIG = 4 * 2**20  # the document held mid-download
CLAIM_TTL = 10  # the least allowed: the cut host's claim lapses within it
HOLD_SECONDS = 120.0  # the simulator holds the download at most this long (released by the test)


@dataclass
class Expected:
    """The documents the simulator made: seller and charset by document id, in order."""

    seller: dict[str, str] = field(default_factory=dict)
    charset: dict[str, str] = field(default_factory=dict)

    def add(self, sim: Simulator, seller_id: str, spec: DocumentSpec) -> str:
        assert spec.charset is not None, "the expected bytes are decoded from the charset named here"
        document_id = sim.add_document(spec, seller_id=seller_id, notify=True)
        self.seller[document_id] = seller_id
        self.charset[document_id] = spec.charset
        return document_id


class Fleet:
    """The product's processes on the hosts, each logging to ``<host>-<name>.log``; all stopped at the end."""

    def __init__(self, hosts: Hosts, env: Callable[[str], dict[str, str]], cwd: Path) -> None:
        self.hosts, self.env, self.cwd = hosts, env, cwd
        self.started: dict[tuple[str, str], subprocess.Popen[bytes]] = {}

    def start(self, host: str, name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(self.cwd / f"{host}-{name}.log", "ab") as out:
            process = subprocess.Popen(
                self.hosts.command(host, [sys.executable, *args]), env=self.env(host), cwd=self.cwd,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.hosts.attach(host, process.pid)
        self.started[(host, name)] = process
        return process

    def worker(self, host: str) -> None:
        self.start(
            host, "worker", "-m", "spreports.workers.cli", "worker", "-Q", "documents", "--pool", "threads", "-c", "4",
            "-l", "INFO", "--without-mingle", "--without-gossip", "-n", f"fleet-{host}-{uuid.uuid4().hex[:6]}@%h",
        )  # fmt: skip

    def relay(self, host: str) -> None:
        self.start(host, "relay", "-m", "spreports.workers.relay")

    def log(self, host: str, name: str) -> str:
        path = self.cwd / f"{host}-{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self) -> None:
        for process in self.started.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.started.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def free_port_on(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def redis_on(address: str, directory: Path) -> Iterator[str]:
    """A private redis-server listening on ``address`` only, with a password (as a shared Redis has); yields its URL."""
    binary = redis_server_binary()
    if binary is None:
        unavailable("no redis-server binary (install redis-server or the local extra)")
    port = free_port_on(address)
    password = secrets.token_urlsafe(16)
    directory.mkdir(parents=True)
    process = subprocess.Popen(
        [str(binary), "--port", str(port), "--bind", address, "--save", "", "--appendonly", "no",
         "--dir", str(directory), "--requirepass", password],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://:{password}@{address}:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        wait_for(lambda: _answers(client), timeout=10, interval=0.05)
        client.close()
        yield url
    finally:
        process.kill()
        process.wait()


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@contextmanager
def moto_on(address: str) -> Iterator[str]:
    """moto's server (SQS) listening on ``address``; yields its endpoint."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        unavailable("moto[server] is not installed")
        raise
    port = free_port_on(address)
    server = ThreadedMotoServer(ip_address=address, port=port, verbose=False)
    server.start()
    try:
        yield f"http://{address}:{port}"
    finally:
        server.stop()


def document_files(root: Path) -> list[Path]:
    """Visible stored documents: not manifests, not the index, not temporary files."""
    return [
        p for p in root.rglob("*")
        if p.is_file() and not p.name.endswith((".manifest.json", ".part")) and "_index" not in p.relative_to(root).parts
    ]  # fmt: skip


def temporary_files(root: Path) -> list[Path]:
    return list(root.rglob("*.part"))


def stored_count(root: Path) -> int:
    """Documents whose index manifest is written (the last step of a retrieval)."""
    return sum(1 for _ in (root / "_index").rglob("*.manifest.json")) if (root / "_index").exists() else 0


def downloads_by_document(logs: str) -> dict[str, int]:
    """How many retrievals wrote each document (the pipeline logs each after its file is committed)."""
    counts: dict[str, int] = {}
    for document_id in re.findall(r"document (\S+) of seller \S+ downloaded from", logs):
        counts[document_id] = counts.get(document_id, 0) + 1
    return counts


@dataclass
class Tally:
    expected: int
    stored: int
    duplicated: list[str]
    lost: list[str]
    wrong: list[str]
    unexpected: list[Path]
    temporary: list[Path]


def tally(root: Path, settings: Settings, sim: Simulator, expected: Expected) -> Tally:
    """Each expected document: one visible file whose bytes, and manifest's sha256, are the simulator's."""
    files = document_files(root)
    storage = open_storage(settings)
    duplicated, lost, wrong, good = [], [], [], 0
    for document_id, seller_id in expected.seller.items():
        mine = [p for p in files if p.name.startswith(document_id + ".")]
        if not mine:
            lost.append(document_id)
            continue
        if len(mine) > 1:
            duplicated.append(document_id)
        digest = hashlib.sha256(expected_utf8(sim, document_id, expected.charset[document_id])).hexdigest()
        manifest = storage.find(seller_id, document_id)
        if manifest is None or manifest.sha256 != digest or any(_sha256(p) != digest for p in mine):
            wrong.append(document_id)
        elif len(mine) == 1:
            good += 1
    unexpected = [p for p in files if not any(p.name.startswith(d + ".") for d in expected.seller)]
    return Tally(len(expected.seller), good, duplicated, lost, wrong, unexpected, temporary_files(root))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def in_broker(broker: redis.Redis, document_id: str) -> bool:
    """Whether a retrieval task of the document waits in the documents queue or is recorded as delivered."""
    raw: list[bytes] = list(broker.hvals(UNACKED))
    for key in broker.scan_iter(match=f"{names.DOCUMENTS_QUEUE}*"):
        if broker.type(key) == b"list":
            raw.extend(broker.lrange(key, 0, -1))
    return any(document_id in task_text(entry) for entry in raw)


def sellers_file(path: Path, sellers: tuple[SellerAccount, ...]) -> Path:
    """The product's sellers file (the first seller comes from SPREPORTS_SELLER_ID and the LWA settings)."""
    path.write_text("".join(f'[sellers.{s.seller_id}]\nrefresh_token = "{s.refresh_token}"\n' for s in sellers[1:]))
    return path


@pytest.mark.timeout(300)
def test_a_fleet_across_hosts_stores_each_document_once_and_recovers_a_host_cut_off_mid_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    check_fleet("redis", tmp_path, monkeypatch)


def check_fleet(broker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole test on ``broker`` (``test_fleet_rabbitmq.py`` runs it on RabbitMQ, on another pytest worker)."""
    began = time.monotonic()
    with ExitStack() as stack:
        hosts = stack.enter_context(open_hosts(HOSTS))
        print(f"\nfleet hosts: {hosts.describe()}; broker: {broker}")
        hub = hosts.hub_address
        redis_url = stack.enter_context(redis_on(hub, tmp_path / "redis"))
        broker_url = redis_url
        if broker == "rabbitmq":  # a vhost of the test's own, reached by the hosts through the hub
            if (problem := rabbitmq_problem(rabbitmq_base_url())) is not None:
                unavailable(problem)
            vhost_url = stack.enter_context(private_vhost(rabbitmq_base_url(), prefix="spreports-fleet"))
            broker_url = stack.enter_context(forwarded(vhost_url, hub))
        aws = stack.enter_context(moto_on(hub))
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", aws)  # where the simulator's notifier sends
        sqs = boto3.client("sqs", endpoint_url=aws, region_name="us-east-1")
        queue_url = sqs.create_queue(QueueName=f"fleet-{uuid.uuid4().hex[:10]}")["QueueUrl"]
        dlq_url = sqs.create_queue(QueueName=f"fleet-dlq-{uuid.uuid4().hex[:10]}")["QueueUrl"]
        sellers = tuple(generated_seller(i) for i in range(1, SELLERS + CHAOS_SELLERS + 1))
        sim = start_simulator(quick_config(sellers=sellers), host=hub)
        stack.callback(sim.stop)
        arn = f"arn:aws:sqs:us-east-1:123456789012:{queue_url.rsplit('/', 1)[1]}"
        for seller in sellers:
            sim.subscribe_queue(arn, seller_id=seller.seller_id)
        root = tmp_path / "reports"
        settings = Settings(broker_url=broker_url, redis_url=redis_url, data_dir=tmp_path / "data",
                            storage={"url": str(root)}, documents={"claim_ttl_seconds": CLAIM_TTL})  # fmt: skip
        common = {
            **sim.env(),
            "SPREPORTS_BROKER_URL": broker_url,
            "SPREPORTS_REDIS_URL": redis_url,
            "SPREPORTS_STORAGE__URL": str(root),
            "SPREPORTS_SELLERS_FILE": str(sellers_file(tmp_path / "sellers.toml", sellers)),
            "SPREPORTS_SQS__QUEUE_URL": queue_url,
            "SPREPORTS_SQS__DEAD_LETTER_QUEUE_URL": dlq_url,
            "SPREPORTS_SQS__WAIT_TIME_SECONDS": "1",
            "SPREPORTS_SQS__VISIBILITY_TIMEOUT": "10",  # a batch in a cut host's hands reappears after it
            "SPREPORTS_SQS__RECEIVERS": "2",
            "SPREPORTS_DOCUMENTS__CLAIM_TTL_SECONDS": str(CLAIM_TTL),
            # Longer than the cut: the held download is still alive when the link comes back.
            "SPREPORTS_SPAPI__READ_TIMEOUT": "120",
            "AWS_ENDPOINT_URL_SQS": aws,
        }

        def host_env(host: str) -> dict[str, str]:
            return product_env({**common, "SPREPORTS_DATA_DIR": str(tmp_path / host / "data")})

        fleet = Fleet(hosts, host_env, tmp_path)
        stack.callback(fleet.stop_all)
        for host in HOSTS:
            fleet.worker(host)
            fleet.relay(host)
        for host in HOSTS:
            wait_for(lambda h=host: " ready." in fleet.log(h, "worker"), timeout=60)
            wait_for(lambda h=host: "relaying" in fleet.log(h, "relay"), timeout=60)
        print(f"fleet up in {time.monotonic() - began:.1f} s")

        expected = Expected()
        first_phase(sim, sellers[:SELLERS], expected, root, fleet)
        chaos = sellers[SELLERS:]
        recovery, held = cut_off_mid_download(sim, chaos, expected, root, fleet, hosts, settings, stack)

        wait_for(lambda: stored_count(root) >= len(expected.seller), timeout=120)
        wait_for(lambda: queue_counts(sqs, queue_url) == (0, 0), timeout=60)
        wait_for(lambda: not temporary_files(root), timeout=30)
        result = tally(root, settings, sim, expected)
        writes = downloads_by_document("".join(fleet.log(h, "worker") for h in HOSTS))
        rewritten = sorted(d for d, n in writes.items() if n > 1)
        print(
            f"fleet: expected {result.expected}, stored {result.stored}, duplicated {len(result.duplicated)}, "
            f"lost {len(result.lost)}, wrong bytes {len(result.wrong)}, unexpected files {len(result.unexpected)}, "
            f"temporary files left {len(result.temporary)}; documents written twice over the same name "
            f"{len(rewritten)}; recovery after the cut {recovery:.1f} s; notified during the cut and held by the "
            f"cut host until it came back: {held}; real time {time.monotonic() - began:.1f} s "
            f"({'network namespaces' if hosts.isolated else 'FALLBACK: processes on loopback'})"
        )
        assert not result.lost, result.lost
        assert not result.duplicated, result.duplicated
        assert not result.wrong, result.wrong
        assert not result.unexpected, result.unexpected
        assert not result.temporary, result.temporary
        # The cut host's download, resumed after another host stored the document, is not written over it.
        assert not rewritten, rewritten
        assert result.stored == result.expected


def first_phase(
    sim: Simulator, sellers: tuple[SellerAccount, ...], expected: Expected, root: Path, fleet: Fleet
) -> None:
    """Hundreds of documents of many sellers, interleaved; each host must store a share of them."""
    started = time.monotonic()
    for n in range(PER_SELLER):
        for index, seller in enumerate(sellers):
            spec = DocumentSpec(size=2048 + 997 * ((n * SELLERS + index) % 23), gzip=(n + index) % 3 != 0,
                                charset=CHARSETS[(n + index) % len(CHARSETS)], seed=n * SELLERS + index)  # fmt: skip
            expected.add(sim, seller.seller_id, spec)
    wait_for(lambda: stored_count(root) >= len(expected.seller), timeout=120)
    took = time.monotonic() - started
    shares = {h: sum(downloads_by_document(fleet.log(h, "worker")).values()) for h in HOSTS}
    print(f"first phase: {len(expected.seller)} documents of {len(sellers)} sellers stored in {took:.1f} s "
          f"({len(expected.seller) / took:.0f}/s); written per host: {shares}")  # fmt: skip
    assert all(shares.values()), f"a host stored nothing: {shares}"


def cut_off_mid_download(
    sim: Simulator,
    sellers: tuple[SellerAccount, ...],
    expected: Expected,
    root: Path,
    fleet: Fleet,
    hosts: Hosts,
    settings: Settings,
    stack: ExitStack,
) -> tuple[float, int]:
    """Cut the host holding a large download; return the time until another stored it, and how many
    documents notified during the cut were stored only after the link came back."""
    from spreports.tasks.documents import requeue_orphaned_documents
    from spreports.workers.app import create_app

    app = create_app(settings)  # the requeue task runs here, as beat would have a worker run it
    app.set_current()
    app.set_default()
    stack.callback(app.close)
    state = redis.Redis.from_url(settings.redis_url or "")  # claims; with Redis as the broker, its queues too
    stack.callback(state.close)

    stall = Stall(sim, skip=2)  # getReport and getReportDocument answer; the download after them is held
    stack.callback(stall.release)
    sim.set_faults(slow_responses=3, slow_seconds=HOLD_SECONDS)
    seller_id = sellers[0].seller_id
    big = expected.add(sim, seller_id, DocumentSpec(size=BIG, charset="Cp1252", gzip=True, seed=4242))
    claim = f"{CLAIM_PREFIX}:{seller_id}:{big}"
    owner = wait_for(lambda: stall.stalling.is_set() and temporary_files(root) and state.get(claim), timeout=60)
    pid = int(owner.decode().rsplit(":", 2)[1])  # the claim's owner: "<task>@<hostname>:<pid>:<random>"
    cut = hosts.host_of(pid)
    assert cut in HOSTS, f"the download's process {pid} is on no known host"
    survivor = next(h for h in HOSTS if h != cut)
    visible = [p for p in document_files(root) if p.name.startswith(big + ".")]
    assert not visible, f"a partial document is visible under its final name: {visible}"

    hosts.cut(cut)
    cut_at = time.monotonic()
    stack.callback(hosts.restore, cut)  # whatever happens, the host comes back before the fleet stops
    how = "its link down" if hosts.isolated else "its processes frozen with SIGSTOP"
    print(f"chaos: host {cut} cut off ({how}) while downloading {big} ({BIG >> 20} MiB, held mid-body)")
    during = [
        expected.add(
            sim, sellers[1 + i % (len(sellers) - 1)].seller_id, DocumentSpec(size=4096, charset="UTF-8", seed=9000 + i)
        )
        for i in range(DURING_CUT)
    ]
    storage = open_storage(settings)

    def recovered() -> bool:
        requeue_orphaned_documents.apply().get()
        return storage.find(seller_id, big) is not None

    wait_for(recovered, timeout=90, interval=1.0)
    recovery = time.monotonic() - cut_at
    by_survivor = f"document {big} of seller {seller_id} downloaded from" in fleet.log(survivor, "worker")
    held = [d for d in during if storage.find(expected.seller[d], d) is None]
    # With Redis as the broker, a document not stored yet whose task is neither queued nor recorded as
    # delivered was popped by the cut host's pending BRPOP: it exists only in that host's socket buffers until
    # the link comes back. (RabbitMQ keeps a delivery unacknowledged until the cut host's connection is dead.)
    unseen = (
        ""
        if settings.redis_url != settings.broker_url
        else (f", of which {sum(1 for d in held if not in_broker(state, d))} in no Redis queue nor unacked entry")
    )
    print(f"chaos: {big} stored {recovery:.1f} s after the cut (by host {survivor}: {by_survivor}); "
          f"{DURING_CUT - len(held)} of {DURING_CUT} documents notified during the cut stored meanwhile, "
          f"{len(held)} not yet{unseen}")  # fmt: skip
    assert by_survivor, fleet.log(survivor, "worker")[-3000:]
    # The claim lapses within its TTL and beat's requeue runs every 15 s (here every second): within a minute.
    assert recovery < 60, f"stored {recovery:.0f} s after the cut"

    hosts.restore(cut)
    stall.release()  # the cut host's download goes on where it was held
    restored_at = time.monotonic()
    # The cut host's run ends, one way or another (stored over the same name, or given up).
    ended = re.compile(rf"(stored document {re.escape(big)} |document {re.escape(big)} .*retrieval ended with)")
    wait_for(lambda: ended.search(fleet.log(cut, "worker")), timeout=120, interval=0.5)
    print(f"chaos: host {cut}'s held run ended {time.monotonic() - restored_at:.1f} s after the link came back")
    return recovery, len(held)
