"""The arguments of the product's tasks: one model per task, used by every producer and by the task.

The relay, the sweep, ``spreports.enqueue_document`` / ``spreports.request_report`` and the command
line all build these models and send :meth:`task_kwargs`; the tasks declare the same fields as
explicit keyword parameters (so Flower and editors show them, and a misspelt one is refused) and
validate them through the same model. Arguments are ids and plain values only: never a URL, a
token or a document's content.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from spreports.errors import InvalidRequest
from spreports.ids import AmazonId

ProcessingStatus = Literal["DONE", "FATAL", "CANCELLED"]


class _TaskArguments(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def parse(cls, **kwargs: Any) -> Self:
        """The model of a task's keyword arguments; a bad one is an :class:`InvalidRequest` naming it."""
        try:
            return cls.model_validate(kwargs)
        except ValidationError as exc:
            error = exc.errors(include_input=False, include_url=False)[0]
            where = ".".join(map(str, error["loc"]))
            raise InvalidRequest(f"bad task arguments: {where}: {error['msg']}") from None

    def task_kwargs(self) -> dict[str, Any]:
        """The task's keyword arguments (JSON values, snake_case names as the task declares them)."""
        return self.model_dump(mode="json")


class DocumentRequest(_TaskArguments):
    """Arguments of ``spreports.retrieve_report_document``: which document of which seller to store."""

    seller_id: AmazonId
    report_document_id: AmazonId
    report_id: AmazonId | None = None
    report_type: AmazonId | None = None
    processing_status: ProcessingStatus = "DONE"
    notification_id: AmazonId | None = None

    @property
    def task_id(self) -> str | None:
        """For a notification, a task id derived from its id: a redelivered duplicate shows up under it in Flower."""
        return None if self.notification_id is None else f"notification-{self.notification_id}"


class ConvertRequest(_TaskArguments):
    """Arguments of ``spreports.convert_document``: which stored document to convert to Parquet rows."""

    seller_id: AmazonId
    report_document_id: AmazonId


class ReportRequest(_TaskArguments):
    """Arguments of ``spreports.request_report``: a createReport for one seller."""

    report_type: AmazonId
    seller_id: AmazonId | None = None
    marketplace_ids: list[AmazonId] = Field(default_factory=list, max_length=25)
    data_start_time: datetime | None = None
    data_end_time: datetime | None = None
    report_options: dict[str, str] | None = None
    #: The stuck report this request stands in for (the stuck pass sets it; nobody else needs to).
    replaces: AmazonId | None = None
    #: Pull the window again as a new report (a DONE one is never reused); its document supersedes the earlier.
    restated: bool = False

    def task_kwargs(self) -> dict[str, Any]:
        """The task's keyword arguments; ``replaces`` and ``restated`` only when set, so that a usual request's
        stay as they were (and workers of before them take the rest)."""
        kwargs = super().task_kwargs()
        if kwargs["replaces"] is None:
            del kwargs["replaces"]
        if not self.restated:
            del kwargs["restated"]
        return kwargs


class ReportFollow(_TaskArguments):
    """Arguments of ``spreports.follow_report``: a requested report to follow to its stored document."""

    seller_id: AmazonId
    report_id: AmazonId
    report_type: AmazonId | None = None


class BackfillRequest(_TaskArguments):
    """Arguments of ``spreports.backfill_reports``: one report type over a date range, window by window."""

    report_type: AmazonId
    data_start_time: datetime
    data_end_time: datetime
    seller_id: AmazonId | None = None
    marketplace_ids: list[AmazonId] = Field(default_factory=list, max_length=25)
    report_options: dict[str, str] | None = None
    parallel: int = Field(default=1, ge=1, le=15)
