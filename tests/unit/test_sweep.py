"""The sweep yields each finished, unstored document once, asking for at most 10 types a call."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from spreports.reports.sweep import reports_to_retrieve


@dataclass
class FakeReport:
    report_id: str
    report_type: str
    processing_status: str
    report_document_id: str | None


class FakeLister:
    def __init__(self, reports: list[FakeReport]) -> None:
        self.reports = reports
        self.calls: list[tuple[list[str], list[str], datetime]] = []
        self.page_sizes: list[int] = []

    def get_reports(
        self,
        *,
        report_types: Sequence[str],
        processing_statuses: Sequence[str],
        created_since: datetime,
        page_size: int,
    ) -> Iterator[FakeReport]:
        self.calls.append((list(report_types), list(processing_statuses), created_since))
        self.page_sizes.append(page_size)
        return iter([r for r in self.reports if r.report_type in report_types])


def test_sweep_skips_stored_missing_and_repeated_documents() -> None:
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    lister = FakeLister(
        [
            FakeReport("1", "T0", "DONE", "doc-1"),
            FakeReport("2", "T0", "DONE", "doc-stored"),
            FakeReport("3", "T1", "FATAL", "doc-3"),
            FakeReport("4", "T1", "DONE", None),
            FakeReport("5", "T11", "DONE", "doc-1"),
        ]
    )
    types = [f"T{n}" for n in range(12)]
    found = list(reports_to_retrieve(lister, types, lambda r: r.report_document_id == "doc-stored", now=now))
    assert [r.report_id for r in found] == ["1", "3"]
    assert [len(types) for types, _, _ in lister.calls] == [10, 2]
    assert all(statuses == ["DONE", "FATAL"] for _, statuses, _ in lister.calls)
    assert all(since == now - timedelta(hours=24) for _, _, since in lister.calls)
    # Amazon's largest page, not its default of 10: each further page costs a getReports token.
    assert lister.page_sizes == [100, 100]
