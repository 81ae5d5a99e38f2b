"""Pydantic models of the SP-API bodies we send and receive (Reports 2021-06-30, Notifications v1, Tokens).

Python names are snake_case; the wire names are Amazon's camelCase (``alias_generator=to_camel``).
Response models ignore fields Amazon may add later; request models are dumped ``by_alias`` with
unset fields left out. Timestamps accept both ``Z`` and ``+00:00`` and are timezone-aware; those
Amazon sends are kept in UTC (:data:`AmazonTime`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, SecretStr
from pydantic.alias_generators import to_camel

from spreports.errors import InvalidRequest

ProcessingStatus = Literal["CANCELLED", "DONE", "FATAL", "IN_PROGRESS", "IN_QUEUE"]
#: The schedule periods createReportSchedule accepts, in the model's order.
Period = Literal[
    "PT5M", "PT15M", "PT30M", "PT1H", "PT2H", "PT4H", "PT8H", "PT12H", "P1D",
    "P2D", "P3D", "PT84H", "P7D", "P14D", "P15D", "P18D", "P30D", "P1M",
]  # fmt: skip
#: The same periods as a tuple, for membership tests and messages.
PERIODS: tuple[Period, ...] = get_args(Period)


def _in_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; one beyond the first or last instant Python can hold in UTC is that instant."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00+01:00 or 9999-12-31T23:00-05:00: valid ISO 8601, but its UTC date is year 0 or 10000.
        return (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)


#: A timestamp from Amazon, in UTC: any aware one is taken, and comparing it or converting it never overflows.
AmazonTime = Annotated[AwareDatetime, AfterValidator(_in_utc)]


class SpapiModel(BaseModel):
    """Base of every SP-API body: camelCase on the wire, snake_case in Python, frozen."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")

    def to_wire(self) -> dict[str, object]:
        """The JSON-ready body Amazon expects (camelCase, unset fields left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# --- Reports 2021-06-30 ---------------------------------------------------------------------------


class Report(SpapiModel):
    """A report (getReport, getReports)."""

    report_id: str
    report_type: str
    processing_status: ProcessingStatus
    created_time: AmazonTime
    marketplace_ids: list[str] | None = None
    report_schedule_id: str | None = None
    data_start_time: AmazonTime | None = None
    data_end_time: AmazonTime | None = None
    processing_start_time: AmazonTime | None = None
    processing_end_time: AmazonTime | None = None
    report_document_id: str | None = None


class ReportsPage(SpapiModel):
    """One page of getReports."""

    reports: list[Report]
    next_token: str | None = None


class CreateReportSpecification(SpapiModel):
    """The body of createReport."""

    report_type: str
    marketplace_ids: list[str] = Field(min_length=1, max_length=25)
    report_options: dict[str, str] | None = None
    data_start_time: AwareDatetime | None = None
    data_end_time: AwareDatetime | None = None


class CreateReportResponse(SpapiModel):
    """The answer of createReport."""

    report_id: str


class ReportSchedule(SpapiModel):
    """A report schedule (getReportSchedule, getReportSchedules)."""

    report_schedule_id: str
    report_type: str
    period: str
    marketplace_ids: list[str] | None = None
    report_options: dict[str, str] | None = None
    next_report_creation_time: AwareDatetime | None = None


class ReportScheduleList(SpapiModel):
    """The answer of getReportSchedules."""

    report_schedules: list[ReportSchedule]


class CreateReportScheduleSpecification(SpapiModel):
    """The body of createReportSchedule."""

    report_type: str
    marketplace_ids: list[str] = Field(min_length=1, max_length=25)
    period: Period
    report_options: dict[str, str] | None = None
    next_report_creation_time: AwareDatetime | None = None


class CreateReportScheduleResponse(SpapiModel):
    """The answer of createReportSchedule."""

    report_schedule_id: str


class ReportDocument(SpapiModel):
    """Where a report's document can be downloaded for the next 5 minutes.

    ``url`` is a pre-signed URL, a bearer secret: it is a ``SecretStr`` so that no repr, log line or
    exception shows it. Use ``doc.url.get_secret_value()`` right where the download starts.
    """

    report_document_id: str
    url: SecretStr
    #: ``GZIP`` is the model's only value today; any other is kept, not refused: the retrieval goes by the
    #: bytes (gzip's magic number) anyway, and a new value must not fail every document of a type.
    compression_algorithm: str | None = None


# --- Notifications v1 -----------------------------------------------------------------------------


class Subscription(SpapiModel):
    """A notification subscription."""

    subscription_id: str
    payload_version: str
    destination_id: str
    processing_directive: dict[str, object] | None = None


class SqsResource(SpapiModel):
    """An SQS queue, by ARN."""

    arn: str = Field(max_length=1000, pattern=r"^arn:aws:sqs:\S+:\S+:\S+")


class EventBridgeResource(SpapiModel):
    """An EventBridge destination (listed, never created by us)."""

    name: str | None = None
    region: str
    account_id: str


class DestinationResource(SpapiModel):
    """The resource a destination delivers to."""

    sqs: SqsResource | None = None
    event_bridge: EventBridgeResource | None = None


class Destination(SpapiModel):
    """A notification destination."""

    destination_id: str
    name: str
    resource: DestinationResource


class CreateSubscriptionRequest(SpapiModel):
    """The body of createSubscription."""

    payload_version: str
    destination_id: str


class CreateDestinationRequest(SpapiModel):
    """The body of createDestination (an SQS destination)."""

    name: str = Field(min_length=1, max_length=256)
    resource_specification: DestinationResource


class SubscriptionResponse(SpapiModel):
    """``{payload: Subscription}`` of getSubscription / createSubscription."""

    payload: Subscription | None = None


class DestinationResponse(SpapiModel):
    """``{payload: Destination}`` of createDestination."""

    payload: Destination | None = None


class DestinationsResponse(SpapiModel):
    """``{payload: [Destination]}`` of getDestinations."""

    payload: list[Destination] = Field(default_factory=list)


# --- Tokens 2021-03-01 ----------------------------------------------------------------------------


class RestrictedResource(SpapiModel):
    """One restricted operation, by method and concrete path."""

    method: Literal["GET", "PUT", "POST", "DELETE"]
    path: str


class CreateRestrictedDataTokenRequest(SpapiModel):
    """The body of createRestrictedDataToken."""

    restricted_resources: list[RestrictedResource] = Field(min_length=1, max_length=50)


class CreateRestrictedDataTokenResponse(SpapiModel):
    """The answer of createRestrictedDataToken; the token is a secret."""

    restricted_data_token: SecretStr
    # An integer in Amazon's model; read as any number (Infinity included), bounded where the token is cached.
    expires_in: float


def iso(value: datetime) -> str:
    """A timezone-aware datetime as Amazon's ISO 8601 (``...Z`` for UTC).

    A naive datetime is an error (:class:`~spreports.errors.InvalidRequest`), as it is in every request
    body (``AwareDatetime``): whether it meant UTC or the machine's local time cannot be told, and a
    wrong guess shifts a report's data window silently. Nothing goes out without an offset.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRequest("a naive datetime has no UTC offset; pass an aware one (e.g. datetime.now(UTC))")
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
