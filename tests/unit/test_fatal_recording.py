"""A FATAL document stored while Redis failed: the run that finds it stored later writes its counter and
cooldown (once), so they are always written, however the storing run ended."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
import redis

from spreports.documents.retrieval import Retrieved, record_fatal
from spreports.errors import RedisUnavailable
from spreports.reports.cooldowns import cooldown_until
from spreports.reports.fatal_ledger import FatalLedger
from spreports.task_arguments import DocumentRequest
from tests.storage import manifest

REPORT_TYPE = "GET_MERCHANT_LISTINGS_ALL_DATA"
REQUEST = DocumentRequest(seller_id="A1SELLER", report_document_id="DOC-1", report_id="R1",
                          report_type=REPORT_TYPE, processing_status="FATAL")  # fmt: skip


class TransactionsFail(fakeredis.FakeRedis):
    """Redis failing as the ledger writes (reads and the cooldown's writes pass)."""

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        raise redis.ConnectionError("connection reset")


def test_a_later_run_writes_the_counter_and_cooldown_the_storing_run_could_not() -> None:
    server = fakeredis.FakeServer()
    stored = manifest("/r/_errors/x.json").model_copy(update={"error_reason": "Too large"})
    with pytest.raises(RedisUnavailable):
        record_fatal(TransactionsFail(server=server), Retrieved(REQUEST, stored))
    healthy = fakeredis.FakeRedis(server=server)
    ledger = FatalLedger(healthy)
    assert ledger.stats(REPORT_TYPE).count == 0 and not ledger.recorded("A1SELLER", "R1")

    found = Retrieved(REQUEST, stored, already_stored=True)
    for _ in range(2):  # the retry, then another duplicate: counted once
        record_fatal(healthy, found)
        assert found.summary()["error_reason"] == "Too large"
    assert ledger.stats(REPORT_TYPE).count == 1 and ledger.reason_of("A1SELLER", "R1") == "Too large"
    assert cooldown_until(healthy, "A1SELLER", REPORT_TYPE) is not None
