"""getReportDocument answering a URL on an allowed host whose name DNS cannot carry (the simulator's
``bad_url_hosts``), through a real worker process: a permanent DocumentRejected in one line and in the
failure ledger, never urllib3's LocationParseError reported as a bug."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import redis

from spreports import enqueue_document
from spreports.errors import DocumentRejected
from spreports.reports.failure_ledger import FailureLedger
from spreports.settings import Settings
from spreports.simulator import Simulator
from tests.processes import spreports_process, wait_for


def test_a_url_host_with_a_bad_dns_label_fails_for_good_in_one_line(
    sim: Simulator, settings: Settings, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    documents = [sim.add_document() for _ in range(2)]
    sim.set_faults(bad_url_hosts=2)  # an empty label, then a 64-character one
    allowed = [sim.url, "*.amazonaws.com"]  # Amazon's S3 hosts, as by default
    env = {
        **sim.env(),
        "SPREPORTS_BROKER_URL": redis_url,
        "SPREPORTS_STORAGE__URL": settings.storage.url,
        "SPREPORTS_DATA_DIR": str(tmp_path / "data"),
        "SPREPORTS_DOCUMENTS__ALLOWED_HOSTS": json.dumps(allowed),
    }
    log = tmp_path / "worker.log"
    node = f"bad-url-{uuid.uuid4().hex[:6]}@%h"
    worker = ("worker", "-Q", "documents", "-P", "threads", "-c", "1", "--without-mingle", "--without-gossip", "-n", node)  # fmt: skip
    with spreports_process(*worker, env=env, cwd=tmp_path, log=log):
        for document_id in documents:
            with pytest.raises(DocumentRejected, match="is not a DNS name"):
                enqueue_document(document_id, settings=settings).get(timeout=120)
        wait_for(lambda: log.read_text(errors="replace").count(" ERROR ") >= 2, timeout=30)

    entries = FailureLedger(redis_client).entries()
    assert sorted(e.request.report_document_id for e in entries) == sorted(documents)
    for entry in entries:
        assert entry.kind == "DocumentRejected" and not entry.may_pass and "is not a DNS name" in entry.reason
        assert "Signature" not in entry.reason and "\n" not in entry.reason
    text = log.read_text(errors="replace")
    assert "LocationParseError" not in text and "Traceback" not in text, text
    assert len(sim.requests("getReportDocument")) == 2  # refused at once: no attempt repeated
    assert sim.requests("downloadDocument") == []
