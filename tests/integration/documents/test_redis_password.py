"""A guarded Redis, end to end: with a password, and over TLS only (``rediss://``) with a password, a real
worker process stores a document, and the password shows nowhere."""

from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis.backoff import NoBackoff
from redis.retry import Retry

from spreports import enqueue_document
from spreports.settings import Settings
from spreports.simulator import DocumentSpec, Simulator
from spreports.storage import open_storage
from tests.integration.documents.helpers import check_stored, expected_utf8
from tests.processes import product_env, spreports_process
from tests.servers import redis_server

PASSWORD = "s3cret-redis-passw0rd"


@contextmanager
def guarded(tls_folder: Path | None = None) -> Iterator[str]:
    """A private Redis demanding a password (TLS only with ``tls_folder``); yields its URL, password in it."""
    with redis_server(tls=self_signed_certificate(tls_folder) if tls_folder else None) as server:
        redis.Redis.from_url(server.url).config_set("requirepass", PASSWORD)
        scheme = server.url.partition("://")[0]
        yield server.url.replace(f"{scheme}://", f"{scheme}://:{PASSWORD}@", 1)


@pytest.fixture
def guarded_redis() -> Iterator[str]:
    """A private Redis that demands a password; yields its URL with the password in it."""
    with guarded() as url:
        yield url


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


@pytest.mark.parametrize("tls", [False, True], ids=["password", "tls-and-password"])
def test_a_worker_on_a_guarded_redis_stores_documents_and_never_shows_the_password(
    sim: Simulator, settings: Settings, tmp_path: Path, sqs_queue_url: str, tls: bool
) -> None:
    with guarded(tmp_path if tls else None) as url:
        _stores_and_never_shows_the_password(sim, settings, url, tmp_path, sqs_queue_url)


def _stores_and_never_shows_the_password(
    sim: Simulator, settings: Settings, guarded_redis: str, tmp_path: Path, sqs_queue_url: str
) -> None:
    if guarded_redis.startswith("rediss://"):
        port = int(guarded_redis.split("@127.0.0.1:")[1].split("/")[0])
        with pytest.raises(redis.ConnectionError):  # no plain-text way in (asked once: no retries with backoff)
            redis.Redis(port=port, socket_timeout=2, retry=Retry(NoBackoff(), 0)).ping()
    settings = settings.model_copy(update={"broker_url": guarded_redis})
    env = {
        **sim.env(),
        "SPREPORTS_LWA__CLIENT_ID": settings.lwa.client_id or "",
        "SPREPORTS_BROKER_URL": guarded_redis,
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
    # The product's own state (claims, tokens, limits) went over the same guarded connection.
    assert redis.Redis.from_url(guarded_redis).keys("spreports:token:*")

    checked = subprocess.run(
        [sys.executable, "-m", "spreports.workers.cli", "check"],
        env=product_env(env), cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "spreports.workers.cli", "config"],
        env=product_env(env), cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert f"SPREPORTS_BROKER_URL={guarded_redis.partition(':')[0]}://:**********@127.0.0.1:" in shown.stdout
    for output in (log.read_text(), checked.stdout + checked.stderr, shown.stdout + shown.stderr, str(summary)):
        assert PASSWORD not in output


def test_a_wrong_password_is_one_clear_line(guarded_redis: str, tmp_path: Path) -> None:
    wrong = guarded_redis.replace(PASSWORD, "not-the-password")
    result = subprocess.run(
        [sys.executable, "-m", "spreports.workers.cli", "check"],
        env=product_env({"SPREPORTS_BROKER_URL": wrong, "SPREPORTS_STORAGE__URL": str(tmp_path / "r")}),
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    # check's warnings show beside its failures; the Redis that refused the password has none to give.
    [line] = [line for line in result.stderr.strip().splitlines() if not line.startswith("spreports: warning: ")]
    assert line.startswith("spreports: error: Redis at redis://127.0.0.1:") and "does not answer" in line
    assert "not-the-password" not in result.stderr
