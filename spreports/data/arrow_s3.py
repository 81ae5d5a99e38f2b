"""pyarrow's S3 file system for the storage's bucket, set up as the storage's own boto3 client is.

DuckDB reads S3 only through its httpfs extension, which it downloads at run time; deployments are often
offline. pyarrow's S3 support is part of its wheel, so the rows on S3 are read through it instead. The
endpoint, region and credentials are the ones boto3 resolved for the storage (``AWS_ENDPOINT_URL_S3``,
the usual credential chain), so the rows are read from wherever the documents are written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from pyarrow.fs import S3FileSystem

    from spreports.storage import S3Storage

# Bounded waits: a query over an unreachable endpoint fails in seconds instead of hanging.
CONNECT_TIMEOUT_SECONDS = 10.0
REQUEST_TIMEOUT_SECONDS = 60.0
MAX_ATTEMPTS = 3


def arrow_filesystem(storage: S3Storage) -> S3FileSystem:
    """An S3 file system reaching ``storage``'s bucket with the storage client's endpoint, region and credentials.

    The credentials are those boto3 holds now: temporary ones (a role's) are not refreshed by pyarrow,
    so a long-lived program reconnects when they expire.
    """
    from pyarrow.fs import AwsStandardS3RetryStrategy, S3FileSystem

    meta = storage.client.meta
    endpoint = urlsplit(meta.endpoint_url or "")
    options: dict[str, object] = {}
    # AWS's own endpoints are found from the region; any other (MinIO, moto, a gateway) is named.
    if endpoint.hostname and not endpoint.hostname.endswith(".amazonaws.com"):
        options["endpoint_override"] = endpoint.netloc
        options["scheme"] = endpoint.scheme or "https"
    credentials = _client_credentials(storage)
    if credentials is not None:
        frozen = credentials.get_frozen_credentials()
        options.update(access_key=frozen.access_key, secret_key=frozen.secret_key, session_token=frozen.token)
    else:
        options["anonymous"] = True
    return S3FileSystem(
        region=meta.region_name,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        request_timeout=REQUEST_TIMEOUT_SECONDS,
        retry_strategy=AwsStandardS3RetryStrategy(max_attempts=MAX_ATTEMPTS),
        **options,
    )


def _client_credentials(storage: S3Storage) -> Any:
    """The credentials the storage's client signs with (botocore keeps them on its signer), else the chain's."""
    signer = getattr(storage.client, "_request_signer", None)
    credentials = getattr(signer, "_credentials", None)
    if credentials is None:
        import boto3

        credentials = boto3.session.Session().get_credentials()
    return credentials
