"""What comes after one look at a followed report (:func:`spreports.reports.on_demand.follow_step`), on fakeredis."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import fakeredis
import pytest
import redis

from spreports.errors import ReportCancelled, ReportFatal
from spreports.reports.cooldowns import cooldown_until
from spreports.reports.fatal_ledger import FatalLedger
from spreports.reports.on_demand import AwaitReason, Ready, Replaced, Running, follow_step
from spreports.reports.stuck import Replacements
from spreports.settings import Settings
from spreports.spapi.models import Report
from spreports.task_arguments import DocumentRequest, ReportFollow

LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
ARGS = ReportFollow(seller_id="A1SELLER", report_id="R1")


@dataclass
class Runtime:
    redis: redis.Redis = field(default_factory=fakeredis.FakeRedis)
    settings: Settings = field(default_factory=lambda: Settings(_env_file=None))
    storage: Any = None
    session: Any = None

    def client(self, seller_id: str) -> Any:
        raise AssertionError("the step reads the look it is given, it calls no SP-API")


def report(status: str, document_id: str | None = None, report_id: str = "R1") -> Report:
    return Report(report_id=report_id, report_type=LISTINGS, processing_status=status,  # type: ignore[arg-type]
                  created_time=datetime(2026, 12, 1, tzinfo=UTC), report_document_id=document_id)  # fmt: skip


def test_a_done_report_is_its_documents_retrieval_and_a_running_one_a_later_look() -> None:
    runtime, queued = Runtime(), list[DocumentRequest]()
    step = follow_step(runtime, ARGS, report("DONE", "DOC-1"), enqueue=queued.append, reason_polls=3)  # type: ignore[arg-type]
    assert step == Ready(DocumentRequest(seller_id="A1SELLER", report_document_id="DOC-1", report_id="R1",
                                         report_type=LISTINGS))  # fmt: skip
    assert follow_step(runtime, ARGS, report("IN_PROGRESS"), enqueue=queued.append, reason_polls=3) == Running(  # type: ignore[arg-type]
        "IN_PROGRESS"
    )
    assert queued == []


def test_a_cancelled_report_is_followed_to_its_replacement_or_fails() -> None:
    runtime = Runtime()
    with pytest.raises(ReportCancelled):
        follow_step(runtime, ARGS, report("CANCELLED"), enqueue=list().append, reason_polls=3)  # type: ignore[arg-type]
    Replacements(runtime.redis).record("A1SELLER", "R1", "R2")
    step = follow_step(runtime, ARGS, report("CANCELLED"), enqueue=list().append, reason_polls=3)  # type: ignore[arg-type]
    assert step == Replaced(ReportFollow(seller_id="A1SELLER", report_id="R2"))


def test_a_fatal_report_queues_its_error_document_once_and_awaits_its_reason_a_few_looks() -> None:
    runtime, queued = Runtime(), list[DocumentRequest]()
    fatal = report("FATAL", "ERR-1")
    for _ in range(3):
        assert follow_step(runtime, ARGS, fatal, enqueue=queued.append, reason_polls=3) == AwaitReason()  # type: ignore[arg-type]
    assert [(q.report_document_id, q.processing_status) for q in queued] == [("ERR-1", "FATAL")]
    assert cooldown_until(runtime.redis, "A1SELLER", LISTINGS) is not None
    with pytest.raises(ReportFatal) as without_reason:  # the looks are spent: the error, without its reason
        follow_step(runtime, ARGS, fatal, enqueue=queued.append, reason_polls=3)  # type: ignore[arg-type]
    assert "Too large" not in str(without_reason.value)

    FatalLedger(runtime.redis).record("A1SELLER", "R1", LISTINGS, "Too large")  # the retrieval read the reason
    with pytest.raises(ReportFatal, match=r": Too large$"):
        follow_step(runtime, ARGS, fatal, enqueue=queued.append, reason_polls=3)  # type: ignore[arg-type]
    assert len(queued) == 1
