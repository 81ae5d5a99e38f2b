"""A simulated week with the real fleet: beat, a worker and the relay against the simulator's accelerated clock.

Three report types are scheduled (daily, every three days, weekly) and one ``[[requests]]`` entry asks for
another every two days. The simulator runs a week in about twenty real seconds, with Amazon's usage plans
enforced (scaled to its clock). Amazon's schedules fire in the simulator and their notifications reach the
relay through SQS; the request entry's reports are requested by the check beat runs, and followed to their
documents. Afterwards every report the simulator finished DONE is stored exactly once, and no call was
throttled.

Beat checks the request entries on the real clock (every 30 s), so on the simulator's clock the test runs
the same check (``spreports.tasks.schedules.check``) as beat would run it at each simulated moment; the
period claims in Redis are shared, so beat and the test never request a period twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import boto3
import pytest

from spreports.settings import Settings
from spreports.simulator import Outcomes, Simulator, start_simulator
from spreports.tasks.context import TaskContext
from tests.e2e.test_relay_pipeline import files_of, indexed, stored
from tests.processes import spreports_process, wait_for
from tests.servers import RedisServer
from tests.sim import quick_config, simulator_settings

WEEK = timedelta(days=7).total_seconds()
#: Simulated seconds per real second: a week in about 20 s.
SPEED = WEEK / 20
US = '["ATVPDKIKX0DER"]'
SCHEDULED = {
    "GET_MERCHANT_LISTINGS_ALL_DATA": "P1D",
    "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA": "P3D",
    "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL": "P7D",
}
REQUESTED = "GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE"


def _schedules_file(path: Path) -> Path:
    text = "".join(
        f'[[schedules]]\nreport_type = "{t}"\nmarketplace_ids = {US}\nperiod = "{p}"\n\n' for t, p in SCHEDULED.items()
    )
    text += (
        f'[[requests]]\nreport_type = "{REQUESTED}"\nmarketplace_ids = {US}\nevery = "P2D"\nwindow = "last 2 days"\n'
    )
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def sim() -> Iterator[Simulator]:
    # Tokens and pre-signed URLs keep their real-time lifetimes (an hour, five minutes): at this speed
    # Amazon's simulated ones would expire between a getReportDocument and its download.
    config = quick_config(
        speed=SPEED,
        rate_limits=True,
        token_lifetime=3600 * SPEED,
        url_lifetime=300 * SPEED,
        outcomes=Outcomes(queue_seconds=60, processing_seconds=300),
    )
    simulator = start_simulator(config)
    yield simulator
    simulator.stop()


def _done_documents(sim: Simulator) -> dict[str, str]:
    """reportDocumentId -> reportType of every report the simulator finished DONE."""
    with sim.world.lock:
        return {
            r.document_id: r.report_type for r in sim.world.reports.values() if r.status == "DONE" and r.document_id
        }


@pytest.mark.timeout(300)
def test_a_simulated_week_stores_every_finished_report_exactly_once(
    sim: Simulator, redis_server: RedisServer, aws_endpoint: str, tmp_path: Path
) -> None:
    sqs = boto3.client("sqs", endpoint_url=aws_endpoint, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName=f"week-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    sim.subscribe_queue(f"arn:aws:sqs:us-east-1:123456789012:{queue_url.rsplit('/', 1)[1]}")
    root = tmp_path / "reports"
    env = {
        **sim.env(),
        "AWS_ENDPOINT_URL_SQS": aws_endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "SPREPORTS_BROKER_URL": redis_server.url,
        "SPREPORTS_DATA_DIR": str(tmp_path / "data"),
        "SPREPORTS_STORAGE__URL": str(root),
        "SPREPORTS_SCHEDULES_FILE": str(_schedules_file(tmp_path / "schedules.toml")),
        "SPREPORTS_SQS__QUEUE_URL": queue_url,
        "SPREPORTS_SQS__WAIT_TIME_SECONDS": "1",
        # The follower of a requested report polls every half second at first (Amazon: 15 s).
        "SPREPORTS_REQUESTS__FOLLOW_FIRST_SECONDS": "0.5",
        "SPREPORTS_REQUESTS__FOLLOW_MAX_SECONDS": "2",
    }
    started = time.monotonic()
    with (
        spreports_process("worker", "-Q", "control,documents", "-c", "2", "-n", "week@%h", env=env, cwd=tmp_path),
        spreports_process("relay", env=env, cwd=tmp_path),
        spreports_process("beat", "-s", str(tmp_path / "beat-schedule"), env=env, cwd=tmp_path),
    ):
        # The week begins when beat's first sync has put the schedules in place.
        wait_for(lambda: len(sim.world.schedules) == len(SCHEDULED), timeout=60, interval=0.05)
        week_start = sim.clock.seconds()
        settings: Settings = simulator_settings(
            sim, redis_server.url, tmp_path, storage_url=str(root), schedules_file=tmp_path / "schedules.toml"
        )
        ctx = TaskContext(settings)
        from spreports.tasks.schedules import check
        from spreports.workers.app import create_app

        app = create_app(settings)
        week_end = sim.clock.now() + timedelta(seconds=WEEK)
        try:
            while sim.clock.seconds() < week_start + WEEK:
                # Beat's check, at each simulated moment; never past the week's end, however late a busy
                # machine runs this loop (one real second here is eight simulated hours).
                check(ctx, app, min(sim.clock.now(), week_end))
                time.sleep(0.1)
        finally:
            app.close()
        sim.world.tick()  # what fell due by the week's end fires now, then nothing more does
        with sim.world.lock:
            sim.world.schedules.clear()
        week_real = time.monotonic() - started

        def all_stored() -> dict[str, str] | None:
            done = _done_documents(sim)
            with sim.world.lock:
                running = [r for r in sim.world.reports.values() if r.status in ("IN_QUEUE", "IN_PROGRESS")]
            return done if not running and set(done) <= indexed(root) else None

        done = wait_for(all_stored, timeout=120, interval=0.2)

    kinds = sorted(done.values())
    # Daily for a week, every 3 days, weekly.
    assert kinds.count("GET_MERCHANT_LISTINGS_ALL_DATA") == 7
    assert kinds.count("GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA") == 2
    assert kinds.count("GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL") == 1
    # The request entry: each two-day period once. A week touches 4 or 5 of them (3 when a busy machine's
    # last check comes early), and beat adds the period of the real clock's date, which may be another.
    with sim.world.lock:
        windows = [(r.data_start, r.data_end) for r in sim.world.reports.values() if r.report_type == REQUESTED]
    assert len(set(windows)) == len(windows), windows
    assert 3 <= kinds.count(REQUESTED) <= 6
    files = stored(root)
    for document_id in done:
        assert len(files_of(files, document_id)) == 1, document_id
    assert len(files) == len(done), files
    manifests = [p for p in root.rglob("*.manifest.json") if "_index" not in p.relative_to(root).parts]
    assert sorted(p.name.removesuffix(".manifest.json") for p in manifests) == sorted(done)
    throttled = [r for r in sim.requests() if r.status == 429]
    assert throttled == [], throttled
    assert len([r for r in sim.requests("createReport") if r.status == 202]) == kinds.count(REQUESTED)
    took = time.monotonic() - started
    print(f"simulated week: {len(done)} documents, week in {week_real:.1f} s, everything stored after {took:.1f} s")
