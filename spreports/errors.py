"""The one exception tree of spreports.

::

    SpreportsError
    ├── TransientError          worth retrying: the same call may succeed later
    │   ├── RateLimited         a token bucket (ours or Amazon's 429) says wait ``retry_after`` seconds
    │   │   └── QuotaWait       the fleet's quota is in use: come back in ``retry_after`` s (a wait, not a failure)
    │   ├── ServiceUnavailable  5xx, connection errors, timeouts, LWA server_error
    │   │   ├── OutcomeUnknown  a creating call (createReport, ...) got no clear answer: it may have happened
    │   │   └── RedisUnavailable Redis (the broker, claims, limits, token caches) cannot be reached or started
    │   ├── DocumentUrlExpired  the pre-signed URL expired before or during the download
    │   ├── StorageUnavailable  the storage cannot take the write now (read-only, full, over quota, I/O error)
    │   └── IncompleteDownload  the body ended early, a truncated gzip stream, a dropped connection
    └── PermanentError          retrying cannot help: fix the input or the configuration
        ├── SettingsError       a setting is missing or wrong (names the variable, never its value)
        ├── InvalidRequest      4xx other than 429 (bad ids, unknown report types, forbidden)
        │   ├── NotFound        404: the id is unknown to Amazon (for this seller / region)
        │   └── Conflict        409: the resource conflicts with its current state (e.g. subscription exists)
        ├── AuthenticationError LWA invalid_grant / invalid_client / unauthorized_client
        ├── InvalidNotification an SQS body that is not a usable REPORT_PROCESSING_FINISHED
        ├── DocumentRejected    a URL on a host not allowed, a decompression bomb, undecodable text
        ├── StorageError        the storage refused a write for good (no permission, a bad path)
        ├── UnexpectedResponse  a 2xx whose body does not match Amazon's model (a contract change)
        └── SchemaError         a declared schema file (spreports/data/schemas) is not valid: names the file and column

Messages never contain a secret, an access token or a pre-signed URL: they end up in logs and in
Flower. Foreign exceptions (requests, botocore, redis) are translated where the code talks to them.

Errors that come from an HTTP answer carry it: ``status`` (the HTTP status), ``request_id`` (Amazon's
``x-amzn-RequestId``, for support cases) and ``errors`` (the ``errors[]`` of the body as
:class:`ErrorDetail`). They stay at their defaults on errors raised before any answer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of an SP-API ``errors[]`` array."""

    code: str
    message: str
    details: str | None = None


class SpreportsError(Exception):
    """Something went wrong in spreports; the class docstring is the default message."""

    #: HTTP status of the answer this error was built from, if any.
    status: int | None = None
    #: Amazon's ``x-amzn-RequestId`` of that answer, if any.
    request_id: str | None = None
    #: The ``errors[]`` of that answer's body.
    errors: tuple[ErrorDetail, ...] = ()

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or self.__class__.__name__).strip())


class TransientError(SpreportsError):
    """A transient failure; the same operation may succeed when retried."""

    #: Seconds to wait before retrying, when the failure says so.
    retry_after: float | None = None


class RateLimited(TransientError):
    """The rate limit for this operation is reached; wait before calling again."""

    def __init__(self, message: str | None = None, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuotaWait(RateLimited):
    """The fleet's quota for this operation is in use; nothing was sent to Amazon.

    A wait, not a failure: callers that can come back later do so after ``retry_after`` seconds. When
    ``reserved_bucket`` is set, a token of that bucket is reserved for that moment: the caller then
    calls without taking another (:func:`spreports.spapi.ratelimit.prepaid`).
    """

    def __init__(self, message: str | None = None, *, retry_after: float, reserved_bucket: str | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.reserved_bucket = reserved_bucket


class ServiceUnavailable(TransientError):
    """The remote service failed or could not be reached."""


class OutcomeUnknown(ServiceUnavailable):
    """A call that creates something failed after it may have reached Amazon; repeating it may create it twice."""


class RedisUnavailable(ServiceUnavailable):
    """Redis cannot be reached or started."""


class RequestPending(TransientError):
    """Another run is requesting the identical report right now; its reportId follows shortly."""

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        #: Seconds after which to look again (None: the caller's own default).
        self.retry_after = retry_after


class DocumentUrlExpired(TransientError):
    """The pre-signed document URL has expired; fetch a fresh one with getReportDocument."""


class StorageUnavailable(TransientError):
    """The storage cannot take the write now (read-only, full, over quota, an I/O error); it may pass."""


class IncompleteDownload(TransientError):
    """The document stream ended early or was cut off."""


class PermanentError(SpreportsError):
    """A permanent failure; retrying the same operation cannot succeed."""


class SettingsError(PermanentError):
    """A setting is missing or wrong; the message names the variable and never shows its value."""


class InvalidRequest(PermanentError):
    """The request was refused as invalid."""


class NotFound(InvalidRequest):
    """The resource does not exist (HTTP 404)."""


class Conflict(InvalidRequest):
    """The request conflicts with the resource's current state (HTTP 409)."""


class AuthenticationError(PermanentError):
    """The credentials were refused."""


class InvalidNotification(PermanentError):
    """The message is not a usable REPORT_PROCESSING_FINISHED notification."""

    def __init__(self, message: str | None = None, *, kind: str = "wrong-shape") -> None:
        super().__init__(message)
        #: A short label for metrics and dead-letter attributes: ``not-json``, ``wrong-shape``,
        #: ``other-type`` or ``other-application``.
        self.kind = kind


class ReportCancelled(PermanentError):
    """Amazon cancelled the report (on request, or automatically because there is no data to return)."""


class ReportFatal(PermanentError):
    """Amazon aborted the report with a fatal error."""


class ReportNotFinished(PermanentError):
    """The report did not finish while it was followed."""


class DocumentRejected(PermanentError):
    """The document cannot be accepted."""


class StorageError(PermanentError):
    """The storage refused the write."""


class UnexpectedResponse(PermanentError):
    """The service answered with a body that does not match its published model."""


class SchemaError(PermanentError):
    """A declared report schema is not valid."""
