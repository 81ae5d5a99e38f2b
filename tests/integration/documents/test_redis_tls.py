"""A Redis reached over TLS (``rediss://``) with a password, end to end: a real worker stores a document.

The server speaks TLS only, so nothing of the product can have used a plain connection on the side.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from spreports import enqueue_document
from spreports.settings import Settings
from spreports.simulator import DocumentSpec, Simulator
from spreports.storage import open_storage
from tests.integration.documents.helpers import check_stored, expected_utf8
from tests.processes import product_env, spreports_process
from tests.servers import redis_server

PASSWORD = "tls-redis-passw0rd"


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, written to ``folder``: (certificate, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certificate_file, key_file = folder / "redis.crt", folder / "redis.key"
    certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certificate_file, key_file


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[str]:
    """A private Redis speaking TLS only and demanding a password; yields its ``rediss://`` URL."""
    with redis_server(tls=self_signed_certificate(tmp_path)) as server:
        redis.Redis.from_url(server.url).config_set("requirepass", PASSWORD)
        yield server.url.replace("rediss://", f"rediss://:{PASSWORD}@", 1)


def test_a_worker_on_a_tls_redis_stores_documents(
    sim: Simulator, settings: Settings, tls_redis: str, tmp_path: Path, sqs_queue_url: str
) -> None:
    port = int(tls_redis.split("@127.0.0.1:")[1].split("/")[0])
    with pytest.raises(redis.ConnectionError):  # no plain-text way in
        redis.Redis(port=port, socket_timeout=2).ping()
    settings = settings.model_copy(update={"broker_url": tls_redis})
    env = {
        **sim.env(),
        "SPREPORTS_LWA__CLIENT_ID": settings.lwa.client_id or "",
        "SPREPORTS_BROKER_URL": tls_redis,
        "SPREPORTS_STORAGE__URL": settings.storage.url,
        "SPREPORTS_DOCUMENTS__ALLOWED_HOSTS": f'["{sim.url}"]',
        "SPREPORTS_DATA_DIR": str(tmp_path / "data"),
        "SPREPORTS_SQS__QUEUE_URL": sqs_queue_url,  # check needs a queue that answers
    }
    document_id = sim.add_document(DocumentSpec(gzip=True, charset="Cp1252"), notify=False)
    log = tmp_path / "worker.log"
    with spreports_process("worker", "-Q", "documents", "-c", "1", env=env, cwd=tmp_path, log=log):
        summary = enqueue_document(document_id, settings=settings).get(timeout=120)
    manifest = open_storage(settings).find(sim.seller_id, document_id)
    assert manifest is not None and summary["location"] == manifest.location
    check_stored(manifest, expected_utf8(sim, document_id, "Cp1252"))
    # The product's own state (claims, tokens, limits) went over the same TLS connection.
    assert redis.Redis.from_url(tls_redis).keys("spreports:token:*")

    checked = subprocess.run(
        [sys.executable, "-m", "spreports.workers.cli", "check"],
        env=product_env(env), cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for output in (log.read_text(), checked.stdout + checked.stderr, str(summary)):
        assert PASSWORD not in output
