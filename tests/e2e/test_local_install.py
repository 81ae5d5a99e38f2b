"""The demo profile's image, for real: a fresh venv with the local extra, as docker-compose.yml builds it.

Beside ``test_core_install.py`` (whose helpers it uses) in a file of its own: the two venvs are the
suite's slowest set-ups, and two files go to two pytest workers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from dotenv import dotenv_values

from tests.e2e.test_core_install import (
    COMPOSE_VARIABLES,
    ROOT,
    CoreVenv,
    build_venv,
    check_every_package_pinned,
    compose,
    compose_services,
    listen_port,
    machine_addresses,
    profile_services,
    running,
    wait_serving,
)
from tests.processes import wait_for
from tests.servers import free_port

# The venv's install is the set-up of the file's first test: on a busy machine it alone may take minutes (a
# hang guard, not a speed claim).
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="session")
def local_venv(tmp_path_factory: pytest.TempPathFactory) -> CoreVenv:
    """A fresh venv holding what the demo profile's image installs (its build arguments from the compose file)."""
    args = {str(k): str(v) for k, v in compose()["x-spreports-local"]["build"]["args"].items()}
    return build_venv(tmp_path_factory.mktemp("local-install"), args)


def test_every_installed_package_is_pinned_with_the_local_extra(local_venv: CoreVenv, tmp_path: Path) -> None:
    check_every_package_pinned(local_venv, tmp_path)


@pytest.mark.timeout(600)
def test_the_demo_profile_serves_the_simulator_and_a_local_sqs(local_venv: CoreVenv, tmp_path: Path) -> None:
    demo = profile_services("demo")
    assert {"simulator", "sqs"} <= set(demo), "docker compose --profile demo has no simulator or no local SQS"
    # The names the README and .env.demo use are the demo services' own.
    assert listen_port(demo["simulator"]) == 8000
    env = {k: v for k, v in dotenv_values(ROOT / ".env.demo").items() if v is not None and k not in COMPOSE_VARIABLES}
    assert env["SPREPORTS_SPAPI__ENDPOINT"] == "http://simulator:8000"
    addresses = machine_addresses(free_port(), tmp_path)
    services = compose_services(local_venv, "demo", addresses, env, tmp_path)
    by_name = {service.name: service for service in services}
    # compose starts the simulator once the local SQS is healthy (its health check creates the queue).
    with running(local_venv, [by_name["sqs"]]):
        wait_serving(local_venv, by_name["sqs"], timeout=120)
        with running(local_venv, [by_name["simulator"]]):
            simulator = by_name["simulator"]
            wait_serving(local_venv, simulator, timeout=120)
            wait_for(lambda: "Notifications: REPORT_PROCESSING_FINISHED ->" in simulator.output(), timeout=30)
            token = requests.post(
                f"http://127.0.0.1:{simulator.port}/auth/o2/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": env["SPREPORTS_LWA__REFRESH_TOKEN"],
                    "client_id": env["SPREPORTS_LWA__CLIENT_ID"],
                    "client_secret": env["SPREPORTS_LWA__CLIENT_SECRET"],
                },
                timeout=10,
            )
            assert token.status_code == 200, "the simulator refuses .env.demo's credentials"
