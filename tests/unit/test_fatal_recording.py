"""A FATAL document stored while Redis failed: the run that finds it stored later writes its counter and
cooldown (once), so they are always written, however the storing run ended."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import fakeredis
import pytest
import redis

from spreports.errors import RedisUnavailable
from spreports.reports.cooldowns import cooldown_until
from spreports.reports.fatal_ledger import FatalLedger
from spreports.storage import Manifest
from spreports.task_arguments import DocumentRequest
from spreports.tasks.documents import _record_fatal
from tests.storage import manifest

REPORT_TYPE = "GET_MERCHANT_LISTINGS_ALL_DATA"
REQUEST = DocumentRequest(seller_id="A1SELLER", report_document_id="DOC-1", report_id="R1",
                          report_type=REPORT_TYPE, processing_status="FATAL")  # fmt: skip


class OneManifest:
    """The storage seam: the error document is stored."""

    def __init__(self, stored: Manifest) -> None:
        self.stored = stored

    def find(self, seller_id: str, report_document_id: str) -> Manifest | None:
        return self.stored


class TransactionsFail(fakeredis.FakeRedis):
    """Redis failing as the ledger writes (reads and the cooldown's writes pass)."""

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        raise redis.ConnectionError("connection reset")


@dataclass
class Context:
    storage: OneManifest
    redis: redis.Redis


def test_a_later_run_writes_the_counter_and_cooldown_the_storing_run_could_not() -> None:
    server = fakeredis.FakeServer()
    stored = OneManifest(manifest("/r/_errors/x.json").model_copy(update={"error_reason": "Too large"}))
    with pytest.raises(RedisUnavailable):
        _record_fatal(Context(stored, TransactionsFail(server=server)), REQUEST, {"already_stored": False})  # type: ignore[arg-type]
    healthy = fakeredis.FakeRedis(server=server)
    ledger = FatalLedger(healthy)
    assert ledger.stats(REPORT_TYPE).count == 0 and not ledger.recorded("A1SELLER", "R1")

    for _ in range(2):  # the retry, then another duplicate: counted once
        summary = _record_fatal(Context(stored, healthy), REQUEST, {"already_stored": True})  # type: ignore[arg-type]
        assert summary["error_reason"] == "Too large"
    assert ledger.stats(REPORT_TYPE).count == 1 and ledger.reason_of("A1SELLER", "R1") == "Too large"
    assert cooldown_until(healthy, "A1SELLER", REPORT_TYPE) is not None
