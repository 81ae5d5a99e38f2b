"""The retrieval service called directly, on fakes at its I/O seams (fakeredis with Lua, a storage in memory):
the claim, the in-flight list, the ledgers, and a FATAL's reason taken from the manifest in hand."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import fakeredis
import pytest
import redis

from spreports.documents.claim import DocumentClaim
from spreports.documents.inflight import InFlight
from spreports.documents.pipeline import TransferProgress
from spreports.documents.retrieval import ClaimHeld, DocumentRetrieval, Retrieved
from spreports.errors import ServiceUnavailable
from spreports.reports.failure_ledger import FailureLedger
from spreports.reports.fatal_ledger import FatalLedger
from spreports.settings import Settings
from spreports.storage import Manifest
from spreports.task_arguments import DocumentRequest
from tests.storage import manifest

REPORT_TYPE = "GET_MERCHANT_LISTINGS_ALL_DATA"
FATAL = DocumentRequest(seller_id="A1SELLER", report_document_id="DOC-1", report_id="R1", report_type=REPORT_TYPE,
                        processing_status="FATAL")  # fmt: skip
DONE = DocumentRequest(seller_id="A1SELLER", report_document_id="DOC-1", report_type=REPORT_TYPE)
STORED = manifest("/r/_errors/x.json").model_copy(update={"error_reason": "Too large"})


@dataclass
class Shelf:
    """The storage seam: ``answers`` are what its look-ups return in turn (then the last one, again)."""

    answers: list[Manifest | None]
    looked: int = 0

    def find(self, seller_id: str, report_document_id: str) -> Manifest | None:
        answer = self.answers[min(self.looked, len(self.answers) - 1)]
        self.looked += 1
        return answer


@dataclass
class Runtime:
    storage: Shelf
    redis: redis.Redis = field(default_factory=fakeredis.FakeRedis)
    settings: Settings = field(default_factory=lambda: Settings(_env_file=None))
    session: Any = None

    def client(self, seller_id: str) -> Any:
        return NoCalls()


class NoCalls:
    """A seller's SP-API client no test here calls (a request without a report id calls Amazon only to download)."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"no SP-API call expected: {name}")


@dataclass
class Counted:
    counts: list[tuple[str, str | None]] = field(default_factory=list)
    stored: list[float | None] = field(default_factory=list)

    def count(self, name: str, label: str | None = None, amount: int = 1) -> None:
        self.counts.append((name, label))

    def count_stored(self, seconds: float | None) -> None:
        self.stored.append(seconds)


class Progress:
    def __init__(self, request: DocumentRequest) -> None:
        self.finished: tuple[int | None, int | None] | None = None

    def __call__(self, progress: TransferProgress) -> None:
        pass

    def finish(self, bytes_in: int | None = None, bytes_out: int | None = None) -> None:
        self.finished = (bytes_in, bytes_out)


def service(runtime: Runtime) -> tuple[DocumentRetrieval, Counted]:
    counters = Counted()
    return DocumentRetrieval(runtime, counters), counters  # type: ignore[arg-type]


def test_a_stored_fatal_is_recorded_once_from_the_manifest_in_hand() -> None:
    runtime = Runtime(Shelf([STORED]))
    retrieval, counters = service(runtime)
    FailureLedger(runtime.redis).record(FATAL, ServiceUnavailable("S3 did not answer"))

    for _ in range(2):  # the first run to find it records it; a duplicate does not count it again
        retrieved = retrieval.run(FATAL, run_id="task-1", progress=Progress)
        assert retrieved == Retrieved(FATAL, STORED, already_stored=True)
        assert retrieved.summary()["error_reason"] == "Too large"
    assert runtime.storage.looked == 2  # one look per run: the reason is never read back
    assert FatalLedger(runtime.redis).stats(REPORT_TYPE).count == 1
    assert FailureLedger(runtime.redis).entries() == []  # stored: off the failure ledger
    assert counters.counts == [("documents", "already_stored")] * 2


def test_a_run_that_loses_the_race_lists_and_unlists_the_document_and_reads_the_storage_twice() -> None:
    runtime = Runtime(Shelf([None, STORED]))  # stored by another run between the two looks
    retrieval, _ = service(runtime)
    hooks: list[Progress] = []

    def progress(request: DocumentRequest) -> Progress:
        hooks.append(Progress(request))
        return hooks[-1]

    retrieved = retrieval.run(DONE, run_id="task-1", progress=progress)
    assert retrieved.already_stored and retrieved.manifest == STORED and runtime.storage.looked == 2
    assert hooks[0].finished == (STORED.bytes_in, STORED.bytes_out)
    assert InFlight(runtime.redis).orphans(0) == []  # taken off the list once stored
    assert DocumentClaim(runtime.redis, "A1SELLER", "DOC-1", owner="other", ttl=30).acquire()  # released


def test_a_document_claimed_by_another_run_is_a_wait_with_the_claims_remaining_time() -> None:
    runtime = Runtime(Shelf([None]))
    assert DocumentClaim(runtime.redis, "A1SELLER", "DOC-1", owner="other", ttl=30).acquire()
    retrieval, _ = service(runtime)
    with pytest.raises(ClaimHeld) as held:
        retrieval.run(DONE, run_id="task-1", progress=Progress)
    assert 0 < held.value.remaining <= 30
    assert InFlight(runtime.redis).orphans(0) == []  # not taken: not listed


def test_a_failure_for_good_goes_into_the_ledger_and_off_the_in_flight_list() -> None:
    runtime = Runtime(Shelf([None]))
    retrieval, counters = service(runtime)
    InFlight(runtime.redis).add(DONE)
    retrieval.fail(DONE, ServiceUnavailable("S3 did not answer"))
    [entry] = FailureLedger(runtime.redis).entries()
    assert entry.request == DONE and entry.may_pass
    assert InFlight(runtime.redis).orphans(0) == []
    assert counters.counts == [("documents", "failed")]
