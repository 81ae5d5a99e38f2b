"""docker-compose.yml can be validated but not run here: check it against the real command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml

from spreports.workers.cli import main

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_every_product_service_runs_a_real_spreports_command() -> None:
    services = compose()["services"]
    product = {name: s for name, s in services.items() if s.get("image") == "spreports:latest"}
    assert set(product) == {"relay", "worker-documents", "worker-control", "beat", "flower"}
    for name, service in product.items():
        command = service["command"][0]
        assert main.get_command(click.Context(main), command) is not None, (
            f"{name}: spreports has no command {command!r}"
        )
        assert service["environment"]["SPREPORTS_BROKER_URL"] == "redis://redis:6379/0"


def test_workers_consume_the_product_queues_and_beat_is_single() -> None:
    services = compose()["services"]
    assert services["worker-documents"]["command"][:3] == ["worker", "-Q", "documents"]
    assert services["worker-control"]["command"][:3] == ["worker", "-Q", "control"]
    assert services["beat"]["deploy"]["replicas"] == 1
    # Long enough for a relay batch (20 s long poll) and for the workers' 30 s soft shutdown.
    assert int(services["relay"]["stop_grace_period"].rstrip("s")) > 20
    assert int(services["worker-documents"]["stop_grace_period"].rstrip("s")) > 30
    assert services["relay"]["healthcheck"]["test"] == ["CMD", "spreports", "relay", "--check"]


def test_dockerfile_installs_what_the_services_need() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for part in ("spreports", "workers", "tasks", "beat_schedule.py", "pyproject.toml"):
        assert part in dockerfile
    assert 'ENTRYPOINT ["spreports"]' in dockerfile
