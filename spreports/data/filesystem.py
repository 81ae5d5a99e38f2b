"""The storage root as a pyarrow file system: a local directory or an S3 prefix, the same paths for both.

S3 is reached as the storage layer reaches it: boto3 resolves the endpoint (``AWS_ENDPOINT_URL_S3``), the
region and the credentials (the usual chain), and pyarrow's own S3 client is given them, so moto's server
in the tests and a real bucket take the same code, and no DuckDB extension is ever needed.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
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
    #: boto3's S3 client, for deleting objects: pyarrow's delete leaves an empty "directory" marker object.
    s3_client: Any = field(default=None, repr=False)

    def path(self, parts: list[str]) -> str:
        """The file system path of a relative path under the root."""
        return "/".join([self.root, *parts]) if self.root else "/".join(parts)

    def document_path(self, location: str) -> str:
        """The file system path of a stored document's location (a path, or ``s3://bucket/key``)."""
        parts = urlsplit(location)
        if parts.scheme == "s3":
            return f"{parts.netloc}/{parts.path.lstrip('/')}"
        return str(Path(parts.path if parts.scheme == "file" else location).resolve())

    def publish(self, temporary: str, final: str) -> None:
        """Make a file written under a temporary name visible under its final one, whole.

        Locally an atomic rename; on S3 a server-side copy (the object appears whole) and the temporary
        object deleted.
        """
        if not self.is_s3:
            self.filesystem.move(temporary, final)
            return
        self.filesystem.copy_file(temporary, final)
        self.remove(temporary)

    def remove(self, path: str) -> None:
        """Delete a file if it is there (a failed write's temporary file, a dataset schema to write anew)."""
        import pyarrow as pa

        if self.is_s3 and self.s3_client is not None:
            bucket, _, key = path.partition("/")
            with contextlib.suppress(Exception):  # best effort: a stale temporary object is hidden anyway
                self.s3_client.delete_object(Bucket=bucket, Key=key)
            return
        with contextlib.suppress(FileNotFoundError, pa.ArrowException):
            self.filesystem.delete_file(path)


def open_root(settings: Settings) -> DataRoot:
    """The storage ``SPREPORTS_STORAGE__URL`` names, as a pyarrow file system."""
    import pyarrow.fs as pafs

    url = settings.storage.url
    parts = urlsplit(url)
    if parts.scheme == "s3":
        root = "/".join(p for p in (parts.netloc, parts.path.strip("/")) if p)
        import boto3

        return DataRoot(_s3_filesystem(), root, is_s3=True, s3_client=boto3.client("s3"))
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
