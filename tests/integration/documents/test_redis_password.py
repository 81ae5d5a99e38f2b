"""A Redis with a password, end to end: a real worker process stores a document, and the password shows nowhere."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from spreports import enqueue_document
from spreports.settings import Settings
from spreports.simulator import DocumentSpec, Simulator
from spreports.storage import open_storage
from tests.integration.documents.helpers import check_stored, expected_utf8
from tests.processes import product_env, spreports_process
from tests.servers import RedisServer, redis_server

PASSWORD = "s3cret-redis-passw0rd"


@pytest.fixture
def guarded_redis() -> Iterator[str]:
    """A private Redis that demands a password; yields its URL with the password in it."""
    with redis_server() as server:
        redis.Redis.from_url(server.url).config_set("requirepass", PASSWORD)
        yield _with_password(server)


def _with_password(server: RedisServer) -> str:
    return f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"


def test_a_worker_on_a_password_protected_redis_stores_documents_and_never_shows_the_password(
    sim: Simulator, settings: Settings, guarded_redis: str, tmp_path: Path, sqs_queue_url: str
) -> None:
    settings = settings.model_copy(update={"broker_url": guarded_redis})
    env = {
        **sim.env(),
        "SPREPORTS_LWA__CLIENT_ID": settings.lwa.client_id or "",
        "SPREPORTS_BROKER_URL": guarded_redis,
        "SPREPORTS_STORAGE__URL": settings.storage.url,
        "SPREPORTS_DOCUMENTS__ALLOWED_HOSTS": f'["{sim.url}"]',
        "SPREPORTS_DATA_DIR": str(tmp_path / "data"),
        "SPREPORTS_SQS__QUEUE_URL": sqs_queue_url,  # check needs a queue that answers
    }
    document_id = sim.add_document(DocumentSpec(gzip=True, charset="Cp1252"), notify=False)
    log = tmp_path / "worker.log"
    with spreports_process("worker", "-Q", "documents", "-c", "1", env=env, cwd=tmp_path, log=log):
        summary = enqueue_document(document_id, settings=settings).get(timeout=120)
    manifest = open_storage(settings).find(sim.seller_id, document_id)
    assert manifest is not None and summary["location"] == manifest.location
    check_stored(manifest, expected_utf8(sim, document_id, "Cp1252"))

    checked = subprocess.run(
        [sys.executable, "-m", "spreports.workers.cli", "check"],
        env=product_env(env), cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "spreports.workers.cli", "config"],
        env=product_env(env), cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "SPREPORTS_BROKER_URL=redis://:**********@127.0.0.1:" in shown.stdout
    for output in (log.read_text(), checked.stdout + checked.stderr, shown.stdout + shown.stderr, str(summary)):
        assert PASSWORD not in output


def test_a_wrong_password_is_one_clear_line(guarded_redis: str, tmp_path: Path) -> None:
    wrong = guarded_redis.replace(PASSWORD, "not-the-password")
    result = subprocess.run(
        [sys.executable, "-m", "spreports.workers.cli", "check"],
        env=product_env({"SPREPORTS_BROKER_URL": wrong, "SPREPORTS_STORAGE__URL": str(tmp_path / "r")}),
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("spreports: error: Redis at redis://127.0.0.1:") and "does not answer" in line
    assert "not-the-password" not in result.stderr
