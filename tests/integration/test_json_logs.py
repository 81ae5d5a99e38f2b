"""One log format for the relay and the worker: with SPREPORTS_LOG_FORMAT=json every line is a JSON object
carrying the work's ids, and never a secret.

A notification goes through the real relay process into a real worker process; the worker's download
fails (the LWA credentials point at nothing), which is enough for both to log about that document.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3

from tests.processes import spreports_process, wait_for
from tests.servers import free_port
from tests.unit.relay.messages import body, notification

SECRET = "amzn1.oa2-cs.v1.json-logs-secret"
REFRESH = "Atzr|json-logs-refresh-token"


def json_lines(log: Path) -> list[dict[str, Any]]:
    """Every line of ``log`` that is not JSON fails the test (Celery's banner goes to stdout, not here)."""
    records = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def test_the_relay_and_the_worker_log_json_lines_with_the_work_s_ids(
    redis_url: str, sqs_queue_url: str, tmp_path: Path
) -> None:
    env = {
        "SPREPORTS_BROKER_URL": redis_url,
        "SPREPORTS_STORAGE__URL": str(tmp_path / "reports"),
        "SPREPORTS_DATA_DIR": str(tmp_path / "data"),
        "SPREPORTS_LOG_FORMAT": "json",
        "SPREPORTS_SQS__QUEUE_URL": sqs_queue_url,
        "SPREPORTS_SQS__WAIT_TIME_SECONDS": "1",
        "SPREPORTS_SELLER_ID": "A3TH9S8BH6GOGM",
        "SPREPORTS_LWA__CLIENT_ID": "amzn1.application-oa2-client.json-logs",
        "SPREPORTS_LWA__CLIENT_SECRET": SECRET,
        "SPREPORTS_LWA__REFRESH_TOKEN": REFRESH,
        # Nothing listens there: the worker's token call fails at once.
        "SPREPORTS_LWA__TOKEN_URL": f"http://127.0.0.1:{free_port()}/auth/o2/token",
        "SPREPORTS_SPAPI__ENDPOINT": f"http://127.0.0.1:{free_port()}",
    }
    message = notification(notification_id=str(uuid.uuid4()))
    report = message["payload"]["reportProcessingFinishedNotification"]
    boto3.client("sqs").send_message(QueueUrl=sqs_queue_url, MessageBody=body(message))
    relay_log, worker_log = tmp_path / "relay.log", tmp_path / "worker.log"
    node = f"json-{uuid.uuid4().hex[:6]}@%h"
    worker_args = ("worker", "-Q", "documents", "-P", "threads", "-c", "1", "--without-mingle", "--without-gossip", "-n", node)  # fmt: skip
    with (
        spreports_process("relay", env=env, cwd=tmp_path, log=relay_log),
        spreports_process(*worker_args, env=env, cwd=tmp_path, log=worker_log),
    ):

        def about_the_document(log: Path) -> list[dict[str, Any]]:
            return [r for r in json_lines(log) if r.get("report_document_id") == report["reportDocumentId"]]

        relayed = wait_for(lambda: about_the_document(relay_log), timeout=60)
        worked = wait_for(lambda: about_the_document(worker_log), timeout=90)
    expected = {
        "seller_id": report["sellerId"],
        "report_type": report["reportType"],
        "report_id": report["reportId"],
        "report_document_id": report["reportDocumentId"],
        "notification_id": message["notificationMetadata"]["notificationId"],
        "task_id": f"notification-{message['notificationMetadata']['notificationId']}",
    }
    for record in (relayed[0], worked[0]):
        assert {key: record.get(key) for key in expected} == expected, record
        assert {"time", "level", "logger", "message"} <= set(record)
    assert worked[0]["task_name"] == "spreports.retrieve_report_document"
    for log in (relay_log, worker_log):
        text = log.read_text(errors="replace")
        assert SECRET not in text and REFRESH not in text
        # Both processes log in the one format: every record line is a JSON object.
        records = [line for line in text.splitlines() if line.strip() and not line.startswith((" ", "-", "[", "."))]
        assert records and all(line.startswith("{") for line in records if '"level"' in line or " INFO " in line)
        assert not [line for line in text.splitlines() if " INFO " in line or " WARNING " in line], log.name
