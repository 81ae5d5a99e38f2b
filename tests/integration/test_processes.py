"""The real processes: workers on several 'machines' share the queue; Flower watches them."""

from __future__ import annotations

from pathlib import Path

import requests

from spreports import names
from spreports.settings import Settings
from tests.processes import spreports_process, wait_for
from tests.servers import free_port


def test_two_worker_processes_share_the_work(celery_app, settings: Settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = {"SPREPORTS_BROKER_URL": str(settings.broker_url), "SPREPORTS_STORAGE__URL": str(tmp_path / "r")}
    with (
        spreports_process(
            "worker", "-Q", "control", "-c", "1", "-n", "one@%h", env=env, cwd=tmp_path, log=tmp_path / "w1.log"
        ),
        spreports_process(
            "worker", "-Q", "control", "-c", "1", "-n", "two@%h", env=env, cwd=tmp_path, log=tmp_path / "w2.log"
        ),
    ):
        wait_for(lambda: len(celery_app.control.ping(timeout=1.0)) == 2, timeout=90)
        results = [celery_app.send_task(names.PING, kwargs={"value": str(n), "delay": 0.2}) for n in range(20)]
        assert [r.get(timeout=60) for r in results] == [str(n) for n in range(20)]
        # result_extended stores which worker ran each task: both took a share of the queue.
        workers = {celery_app.backend.get_task_meta(r.id)["worker"].split("@")[0] for r in results}
        assert workers == {"one", "two"}


def test_flower_answers_and_exports_metrics(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    env = {"SPREPORTS_BROKER_URL": str(settings.broker_url)}
    with spreports_process("flower", f"--port={port}", "--address=127.0.0.1", env=env, cwd=tmp_path) as flower:

        def healthy() -> bool:
            assert flower.poll() is None, (tmp_path / "flower.log").read_text()
            try:
                return requests.get(f"http://127.0.0.1:{port}/healthcheck", timeout=2).text == "OK"
            except requests.ConnectionError:
                return False

        wait_for(healthy, timeout=90, interval=0.5)
        metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert "flower_events_total" in metrics or "flower_worker_online" in metrics
