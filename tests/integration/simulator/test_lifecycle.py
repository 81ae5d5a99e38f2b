"""Starting and stopping simulators from Python."""

from __future__ import annotations

import socket

import pytest
import requests

from spreports.simulator import Simulator, start_simulator
from tests.sim import quick_config


def test_stop_is_safe_unstarted_and_twice() -> None:
    Simulator(quick_config()).stop()
    with start_simulator(quick_config()) as sim:
        assert requests.get(f"{sim.url}/_sim/faults", timeout=30).status_code == 200
    sim.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{sim.url}/_sim/faults", timeout=5)


def test_a_busy_port_raises_instead_of_exiting() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(OSError):
            Simulator(quick_config(), port=busy.getsockname()[1])


def test_unknown_paths_and_methods_get_the_error_list(simulator: Simulator) -> None:
    missing = requests.get(f"{simulator.url}/reports/2020-09-04/reports", timeout=30)
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "NotFound"
    assert missing.headers["x-amzn-RequestId"]
    wrong = requests.put(f"{simulator.url}/reports/2021-06-30/reports", timeout=30)
    assert wrong.status_code == 405 and "x-amzn-RateLimit-Limit" not in wrong.headers


def test_a_public_url_is_used_in_presigned_urls_and_the_environment() -> None:
    from spreports.simulator import DocumentSpec

    with start_simulator(quick_config(), public_url="http://simulator:8000/") as sim:
        assert sim.env()["SPREPORTS_SPAPI__ENDPOINT"] == "http://simulator:8000"
        document_id = sim.add_document(DocumentSpec(size=10))
        local = sim.url.replace("http://simulator:8000", f"http://127.0.0.1:{sim.port}")
        answer = requests.get(f"{local}/reports/2021-06-30/documents/{document_id}",
                              headers={"x-amz-access-token": sim.access_token()}, timeout=30)  # fmt: skip
        assert answer.json()["url"].startswith("http://simulator:8000/sim-reports/")
