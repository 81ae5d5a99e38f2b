"""``spreports notifications setup|status`` against the simulator: idempotent, and notifications then arrive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from spreports.workers.cli import main


def invoke(env: dict[str, str], *args: str) -> Any:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result


def test_setup_twice_then_status_then_a_notification_arrives(
    simulator: Any, redis_url: str, redis_client: Any, sqs: Any, sqs_queue_url: str, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    arn = f"arn:aws:sqs:us-east-1:123456789012:{sqs_queue_url.rsplit('/', 1)[1]}"
    env = {**simulator.env(), "SPREPORTS_BROKER_URL": redis_url, "SPREPORTS_DATA_DIR": str(tmp_path / "data")}

    first = invoke(env, "notifications", "setup", "--queue-arn", arn)
    assert first.exit_code == 0, first.output
    assert f"{simulator.seller_id} (na): subscribed" in first.output
    second = invoke(env, "notifications", "setup", "--queue-arn", arn, "--seller", simulator.seller_id)
    assert second.exit_code == 0, second.output
    assert "already subscribed" in second.output
    # Idempotent: the destination and the subscription were created once, then reused.
    assert len(simulator.requests("createDestination")) == 1
    assert len(simulator.requests("createSubscription")) == 1
    assert len(simulator.requests("getSubscription")) == 2

    status = invoke(env, "notifications", "status")
    assert status.exit_code == 0, status.output
    assert arn in status.output
    assert f"{simulator.seller_id} (na): subscribed" in status.output
    assert "Atzr|" not in first.output + second.output + status.output

    # The subscription routes the seller's finished reports to our queue.
    document_id = simulator.add_document(notify=True)
    simulator.wait_for_notifications(1)
    messages = sqs.receive_message(QueueUrl=sqs_queue_url, WaitTimeSeconds=5).get("Messages", [])
    finished = json.loads(messages[0]["Body"])["payload"]["reportProcessingFinishedNotification"]
    assert finished["reportDocumentId"] == document_id


def test_setup_rejects_bad_input(simulator: Any, redis_url: str, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    env = {**simulator.env(), "SPREPORTS_BROKER_URL": redis_url, "SPREPORTS_DATA_DIR": str(tmp_path / "data")}
    bad_arn = invoke(env, "notifications", "setup", "--queue-arn", "https://sqs.us-east-1.amazonaws.com/1/q")
    assert bad_arn.exit_code == 2 and "--queue-arn must look like" in bad_arn.output
    unknown = invoke(env, "notifications", "setup", "--queue-arn", "arn:aws:sqs:us-east-1:1:q", "--seller", "NOPE")
    assert unknown.exit_code == 2 and "seller NOPE is not configured" in unknown.output
    assert simulator.requests("createDestination") == []


def test_relay_check_command_fails_without_a_live_relay(redis_url: str, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"SPREPORTS_BROKER_URL": redis_url, "SPREPORTS_DATA_DIR": str(tmp_path / "data")}
    result = CliRunner().invoke(main, ["relay", "--check"], env=env)
    assert result.exit_code == 1
    assert "no fresh relay heartbeat" in result.output
