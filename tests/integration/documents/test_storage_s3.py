"""S3 storage through moto's server: multipart uploads a few parts at a time, abort, manifests, a refused bucket.

A slow or failing S3 is moto behind botocore's own ``before-send`` event: a handler there holds a part's
request (a slow endpoint) or answers it with an error, before anything reaches moto.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from spreports.errors import ServiceUnavailable, SpreportsError, StorageError
from spreports.storage import S3Storage
from tests.storage import DAY, key, manifest

PART = 5 * 2**20  # S3's minimum part size, to get several parts from a small test


@pytest.fixture
def bucket(aws_endpoint: str) -> str:
    name = f"b-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def test_s3_multipart_upload_while_writing_and_manifest(bucket: str) -> None:
    storage = S3Storage(bucket, "pre/fix")
    writer = storage.open_document(key(), "txt")
    writer.part_size = PART
    body = bytes(range(256)) * (12 * 2**20 // 256) + b"tail"
    for start in range(0, len(body), 2**20):
        writer.write(body[start : start + 2**20])
    assert writer.parts_sent == 2  # sent while writing, not at the end
    client = boto3.client("s3")
    assert "Contents" not in client.list_objects_v2(Bucket=bucket)  # invisible until completed
    location = writer.commit()
    assert location == f"s3://{bucket}/pre/fix/A1SELLER/GET_X/2026-11-28/DOC-1.txt"
    assert client.get_object(Bucket=bucket, Key=location.split("/", 3)[3])["Body"].read() == body
    assert storage.find("A1SELLER", "DOC-1") is None
    storage.write_manifest(key(), manifest(location))
    found = storage.find("A1SELLER", "DOC-1")
    assert found is not None and found.location == location
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert "pre/fix/_index/A1SELLER/DOC-1.manifest.json" in keys
    assert "pre/fix/A1SELLER/GET_X/2026-11-28/DOC-1.manifest.json" in keys


def test_s3_abort_leaves_no_object_and_no_upload(bucket: str) -> None:
    storage = S3Storage(bucket)
    writer = storage.open_document(key(), "txt")
    writer.part_size = PART
    writer.write(b"x" * (6 * 2**20))
    writer.abort()
    client = boto3.client("s3")
    assert "Contents" not in client.list_objects_v2(Bucket=bucket)
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_s3_small_document_and_refused_bucket(bucket: str) -> None:
    writer = S3Storage(bucket).open_document(key(), "txt")
    writer.write(b"small")
    assert writer.commit().endswith("/DOC-1.txt")
    S3Storage(bucket).check_writable()
    with pytest.raises(StorageError, match=r"S3 refused .*NoSuchBucket"):
        S3Storage("no-such-bucket-here").check_writable()


def test_s3_clean_up_aborts_the_unfinished_uploads_under_its_prefix(bucket: str) -> None:
    # moto reports every upload as initiated in 2010, so only the prefix (not the age) is told apart here;
    # the age rule is the local storage's too, tested there with real file times.
    client = boto3.client("s3")
    for prefix in ("pre", "someone-else"):
        dead = S3Storage(bucket, prefix).open_document(key("DEAD"), "txt")
        dead.part_size = PART
        dead.write(b"x" * (5 * 2**20 + 1))  # one part uploaded, then the writer's process died
    assert len(client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])) == 2
    assert S3Storage(bucket, "pre").remove_stale_parts([DAY]) == 1
    [left] = client.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert left["Key"].startswith("someone-else/")


class _SlowParts:
    """Holds every UploadPart request until released (a slow S3), counting how many are held at once."""

    def __init__(self, client: Any, *, delay_first: float = 0.0) -> None:
        self.held = 0
        self.most_held = 0
        self.release = threading.Event()
        self.delay_first = delay_first
        self._lock = threading.Lock()
        client.meta.events.register("before-send.s3.UploadPart", self)

    def __call__(self, request: Any, **_: Any) -> None:
        with self._lock:
            self.held += 1
            self.most_held = max(self.most_held, self.held)
        self.release.wait(30)
        if self.delay_first and "partNumber=1&" in request.url + "&":
            time.sleep(self.delay_first)  # part 1 finishes last: completion must still be in part order
        with self._lock:
            self.held -= 1


def _wait_for(condition: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _document(parts: int) -> Iterator[bytes]:
    """``parts`` parts and a tail, as the pipeline writes them: 1 MiB blocks of varied bytes."""
    for number in range(parts * 5):
        yield number.to_bytes(4, "big") * (2**20 // 4)
    yield b"tail"


def test_s3_parts_upload_four_at_a_time_with_at_most_five_buffers_and_complete_in_order(bucket: str) -> None:
    client = boto3.client("s3")
    slow = _SlowParts(client, delay_first=0.3)
    writer = S3Storage(bucket, client=client).open_document(key(), "txt")
    writer.part_size = PART
    blocks = list(_document(6))
    written = [0]

    def feed() -> None:
        for block in blocks:
            writer.write(block)
            written[0] += len(block)

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        # Sequential code would hold one part here, never four.
        assert _wait_for(lambda: slow.most_held == 4), f"{slow.most_held} part(s) uploading at once, not 4"
        # The memory bound: with four parts uploading, the writer takes the fifth part and no more.
        assert not _wait_for(lambda: not feeder.is_alive(), timeout=0.3)
        assert written[0] < 5 * PART
    finally:
        slow.release.set()
        feeder.join(10)
    assert slow.most_held == 4
    location = writer.commit()
    stored = boto3.client("s3").get_object(Bucket=bucket, Key=location.split("/", 3)[3])
    data = stored["Body"].read()
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(b"".join(blocks)).hexdigest()
    assert stored["ETag"].strip('"').endswith("-7")  # six whole parts and the tail, as one object


def _refuse_part(number: int, status: int, code: str) -> Any:
    """A before-send handler that answers part ``number`` with an S3 error instead of sending it."""

    class _Body:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield f"<Error><Code>{code}</Code><Message>no</Message></Error>".encode()

    def handler(request: Any, **_: Any) -> AWSResponse | None:
        if f"partNumber={number}&" in request.url + "&":
            return AWSResponse(request.url, status, {}, _Body())
        return None

    return handler


@pytest.mark.parametrize(
    ("status", "code", "error"), [(403, "AccessDenied", StorageError), (503, "SlowDown", ServiceUnavailable)]
)
def test_s3_a_failed_part_aborts_the_upload(bucket: str, status: int, code: str, error: type[SpreportsError]) -> None:
    client = boto3.client("s3", config=Config(retries={"total_max_attempts": 1}))
    client.meta.events.register("before-send.s3.UploadPart", _refuse_part(2, status, code))
    writer = S3Storage(bucket, client=client).open_document(key(), "txt")
    writer.part_size = PART
    with pytest.raises(error, match=rf"S3 .* DOC-1\.txt \({code}\); nothing was stored"):
        for block in _document(4):
            writer.write(block)
        writer.commit()
    writer.abort()  # what the pipeline does after any failure: a second abort is harmless
    assert "Contents" not in client.list_objects_v2(Bucket=bucket)
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
