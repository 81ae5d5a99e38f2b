"""The storage root as a pyarrow file system: a local directory or an S3 prefix, the same paths for both.

S3 is reached as the storage layer reaches it: boto3 resolves the endpoint (``AWS_ENDPOINT_URL_S3``), the
region and the credentials (the usual chain), and pyarrow's own S3 client is given them, so moto's server
in the tests and a real bucket take the same code, and no DuckDB extension is ever needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from spreports.settings import Settings

if TYPE_CHECKING:
    import pyarrow.fs as pafs

__all__ = ["DataRoot", "open_root"]


@dataclass(frozen=True)
class DataRoot:
    """A file system and the root path of the storage in it."""

    filesystem: pafs.FileSystem
    root: str
    is_s3: bool

    def path(self, parts: list[str]) -> str:
        """The file system path of a relative path under the root."""
        return "/".join([self.root, *parts]) if self.root else "/".join(parts)

    def document_path(self, location: str) -> str:
        """The file system path of a stored document's location (a path, or ``s3://bucket/key``)."""
        parts = urlsplit(location)
        if parts.scheme == "s3":
            return f"{parts.netloc}/{parts.path.lstrip('/')}"
        return str(Path(parts.path if parts.scheme == "file" else location).resolve())


def open_root(settings: Settings) -> DataRoot:
    """The storage ``SPREPORTS_STORAGE__URL`` names, as a pyarrow file system."""
    import pyarrow.fs as pafs

    url = settings.storage.url
    parts = urlsplit(url)
    if parts.scheme == "s3":
        root = "/".join(p for p in (parts.netloc, parts.path.strip("/")) if p)
        return DataRoot(_s3_filesystem(), root, is_s3=True)
    directory = Path(parts.path if parts.scheme == "file" else url).resolve()
    return DataRoot(pafs.LocalFileSystem(), str(directory), is_s3=False)


def _s3_filesystem() -> pafs.FileSystem:
    import boto3
    import pyarrow.fs as pafs

    session = boto3.session.Session()
    client = session.client("s3")
    options: dict[str, object] = {"region": client.meta.region_name or "us-east-1"}
    endpoint = urlsplit(client.meta.endpoint_url)
    if not endpoint.netloc.endswith(".amazonaws.com"):
        options.update(endpoint_override=endpoint.netloc, scheme=endpoint.scheme or "https")
    credentials = session.get_credentials()
    if credentials is not None:
        frozen = credentials.get_frozen_credentials()
        options.update(access_key=frozen.access_key, secret_key=frozen.secret_key, session_token=frozen.token)
    return pafs.S3FileSystem(**options)
