"""S3 storage through moto's server: multipart uploads part by part, abort, manifests, a refused bucket."""

from __future__ import annotations

import uuid

import boto3
import pytest

from spreports.errors import StorageError
from spreports.storage import S3Storage
from tests.storage import DAY, key, manifest


@pytest.fixture
def bucket(aws_endpoint: str) -> str:
    name = f"b-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def test_s3_multipart_upload_part_by_part_and_manifest(bucket: str) -> None:
    storage = S3Storage(bucket, "pre/fix")
    writer = storage.open_document(key(), "txt")
    writer.part_size = 5 * 2**20  # S3's minimum, to get several parts from a small test
    body = bytes(range(256)) * (12 * 2**20 // 256) + b"tail"
    for start in range(0, len(body), 2**20):
        writer.write(body[start : start + 2**20])
    assert writer._parts and len(writer._parts) == 2  # uploaded while writing, not at the end
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
    writer.part_size = 5 * 2**20
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
        dead.part_size = 5 * 2**20
        dead.write(b"x" * (5 * 2**20 + 1))  # one part uploaded, then the writer's process died
    assert len(client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])) == 2
    assert S3Storage(bucket, "pre").remove_stale_parts([DAY]) == 1
    [left] = client.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert left["Key"].startswith("someone-else/")
