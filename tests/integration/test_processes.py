"""The real processes: workers on several 'machines' share the queue; Flower watches them."""

from __future__ import annotations

from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

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
        wait_for(lambda: len(celery_app.control.ping(timeout=1.0, limit=2)) == 2, timeout=90)  # back once both answer
        results = [celery_app.send_task(names.PING, kwargs={"value": str(n), "delay": 0.2}) for n in range(20)]
        assert [r.get(timeout=60) for r in results] == [str(n) for n in range(20)]
        # result_extended stores which worker ran each task: both took a share of the queue.
        workers = {celery_app.backend.get_task_meta(r.id)["worker"].split("@")[0] for r in results}
        assert workers == {"one", "two"}


def _samples(port: int) -> list[Sample]:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def test_flower_answers_and_exports_metrics(celery_app, settings: Settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    env = {"SPREPORTS_BROKER_URL": str(settings.broker_url), "SPREPORTS_STORAGE__URL": str(tmp_path / "r")}
    with (
        spreports_process("flower", f"--port={port}", "--address=127.0.0.1", env=env, cwd=tmp_path) as flower,
        spreports_process("worker", "-Q", "control", "-c", "1", "-n", "watched@%h", env=env, cwd=tmp_path),
    ):

        def healthy() -> bool:
            assert flower.poll() is None, (tmp_path / "flower.log").read_text()
            try:
                return requests.get(f"http://127.0.0.1:{port}/healthcheck", timeout=2).text == "OK"
            except requests.ConnectionError:
                return False

        wait_for(healthy, timeout=90, interval=0.5)
        wait_for(lambda: celery_app.control.ping(timeout=1.0, limit=1), timeout=90)

        def task_counted() -> list[Sample]:
            # Flower only counts events it saw: run tasks until one ran after it started listening.
            assert celery_app.send_task(names.PING, kwargs={"value": "x"}).get(timeout=60) == "x"
            return [
                sample
                for sample in _samples(port)
                if sample.name == "flower_events_total"
                and sample.labels.get("type") == "task-succeeded"
                and sample.labels.get("task") == names.PING
                and sample.labels.get("worker", "").startswith("watched@")
                and sample.value >= 1
            ]

        wait_for(task_counted, timeout=90, interval=1.0)
        # The worker's heartbeats mark it online.
        online = wait_for(
            lambda: [
                s
                for s in _samples(port)
                if s.name == "flower_worker_online" and s.labels.get("worker", "").startswith("watched@")
            ],
            timeout=60,
            interval=1.0,
        )
        assert online[0].value == 1.0
