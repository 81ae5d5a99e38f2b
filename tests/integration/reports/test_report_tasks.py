"""The control tasks through a real worker against the simulator: request, schedule sync, sweep."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from spreports import names, request_report
from spreports.settings import Settings
from spreports.simulator import DocumentSpec, Simulator
from spreports.storage import open_storage
from tests.processes import wait_for
from tests.sim import simulator_settings


@pytest.fixture
def settings(sim: Simulator, redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Settings:
    schedules = tmp_path / "schedules.toml"
    schedules.write_text(
        '[[schedules]]\nreport_type = "GET_MERCHANT_LISTINGS_ALL_DATA"\nmarketplace_ids = ["ATVPDKIKX0DER"]\n'
        'period = "P1D"\n\n[[schedules]]\nreport_type = "GET_XML_BROWSE_TREE_DATA"\n'
        'marketplace_ids = ["ATVPDKIKX0DER"]\nperiod = "PT12H"\n'
    )
    return simulator_settings(sim, redis_url, tmp_path, schedules_file=schedules)  # type: ignore[no-any-return]


def test_request_report_creates_a_report(celery_worker, settings: Settings, sim: Simulator) -> None:  # type: ignore[no-untyped-def]
    result = request_report("GET_MERCHANT_LISTINGS_ALL_DATA", marketplace_ids=["ATVPDKIKX0DER"], settings=settings)
    summary = result.parent.get(timeout=60)
    assert summary["seller_id"] == sim.seller_id
    report = sim.report(summary["report_id"])
    assert report["reportType"] == "GET_MERCHANT_LISTINGS_ALL_DATA"
    assert report["marketplaceIds"] == ["ATVPDKIKX0DER"]


def test_request_report_without_marketplaces_fails_clearly(celery_worker, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    result = request_report("GET_MERCHANT_LISTINGS_ALL_DATA", settings=settings)
    with pytest.raises(Exception, match="no marketplace_ids given and none configured"):
        result.get(timeout=60)


def test_schedule_sync_creates_once_then_keeps(celery_app, celery_worker, settings: Settings, sim: Simulator) -> None:  # type: ignore[no-untyped-def]
    first = celery_app.send_task(names.SYNC_REPORT_SCHEDULES).get(timeout=60)
    assert first == {sim.seller_id: {"created": 2, "kept": 0}}
    second = celery_app.send_task(names.SYNC_REPORT_SCHEDULES).get(timeout=60)
    assert second == {sim.seller_id: {"created": 0, "kept": 2}}
    assert len(sim.requests("createReportSchedule")) == 2


def test_sweep_retrieves_documents_whose_notification_never_came(  # type: ignore[no-untyped-def]
    celery_app, celery_worker, settings: Settings, sim: Simulator
) -> None:
    lost = sim.add_document(DocumentSpec(report_type="GET_XML_BROWSE_TREE_DATA", size=20_000), notify=False)
    enqueued = celery_app.send_task(names.SWEEP_FINISHED_REPORTS).get(timeout=60)
    assert enqueued == {sim.seller_id: 1, "recovered": 1}
    storage = open_storage(settings)
    manifest = wait_for(lambda: storage.find(sim.seller_id, lost), timeout=90)
    assert manifest.report_type == "GET_XML_BROWSE_TREE_DATA"
    # Once stored, the next sweep finds nothing to do.
    assert celery_app.send_task(names.SWEEP_FINISHED_REPORTS).get(timeout=60) == {sim.seller_id: 0, "recovered": 0}


def test_reports_request_command(celery_worker, settings: Settings, sim: Simulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import json
    import subprocess
    import sys

    from tests.processes import product_env

    env = product_env({**sim.env(), "SPREPORTS_BROKER_URL": str(settings.broker_url)})
    command = [
        sys.executable,
        "-m",
        "spreports.workers.cli",
        "reports",
        "request",
        "--type",
        "GET_MERCHANT_LISTINGS_ALL_DATA",
    ]
    done = subprocess.run([*command, "--marketplace", "ATVPDKIKX0DER"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    report_id = json.loads(done.stdout)["report_id"]
    assert sim.report(report_id)["reportType"] == "GET_MERCHANT_LISTINGS_ALL_DATA"
    refused = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 2
    assert refused.stderr.strip().endswith("no marketplace_ids given and none configured for seller " + sim.seller_id)
    assert "Traceback" not in refused.stderr


def test_sweep_queues_a_waiting_document_only_once(
    celery_app, settings: Settings, sim: Simulator, redis_client
) -> None:  # type: ignore[no-untyped-def]
    from spreports.tasks.sweep import sweep_finished_reports

    sim.add_document(DocumentSpec(report_type="GET_MERCHANT_LISTINGS_ALL_DATA", size=1000), notify=False)
    # No worker consumes the documents queue here: the document stays queued between the two sweeps.
    assert sweep_finished_reports.apply().get() == {sim.seller_id: 1, "recovered": 1}
    assert sweep_finished_reports.apply().get() == {sim.seller_id: 0, "recovered": 0}
    assert redis_client.llen(names.DOCUMENTS_QUEUE) == 1


def test_sweep_leaves_a_document_being_retrieved_alone(
    celery_app, settings: Settings, sim: Simulator, redis_client
) -> None:  # type: ignore[no-untyped-def]
    from spreports.documents.claim import DocumentClaim
    from spreports.tasks.sweep import sweep_finished_reports

    document_id = sim.add_document(DocumentSpec(report_type="GET_MERCHANT_LISTINGS_ALL_DATA", size=1000), notify=False)
    claim = DocumentClaim(redis_client, sim.seller_id, document_id, owner="a-running-retrieval", ttl=60)
    assert claim.acquire()  # a worker is downloading it (its notification came; it is not lost)
    assert sweep_finished_reports.apply().get() == {sim.seller_id: 0, "recovered": 0}
    assert redis_client.llen(names.DOCUMENTS_QUEUE) == 0
    claim.release()  # the run ended without storing it: now the sweep's to recover
    assert sweep_finished_reports.apply().get() == {sim.seller_id: 1, "recovered": 1}


def test_one_failing_seller_does_not_stop_the_others(
    celery_app, sim: Simulator, redis_url: str, redis_client, tmp_path: Path, settings: Settings
) -> None:  # type: ignore[no-untyped-def]
    from spreports.tasks.context import attach
    from spreports.tasks.schedules import sync_report_schedules

    sellers = tmp_path / "sellers.toml"
    sellers.write_text('[sellers.A0REVOKED]\nrefresh_token = "Atzr|revoked-grant"\n')
    with_bad_seller = settings.model_copy(update={"sellers_file": sellers})
    attach(celery_app, with_bad_seller)
    result = sync_report_schedules.apply().get()
    assert result[sim.seller_id] == {"created": 2, "kept": 0}
    assert str(result["A0REVOKED"]).startswith("failed: AuthenticationError")
    assert "revoked-grant" not in str(result)


def test_schedules_commands(settings: Settings, sim: Simulator, tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.processes import product_env

    env = product_env(
        {
            **sim.env(),
            "SPREPORTS_BROKER_URL": str(settings.broker_url),
            "SPREPORTS_SCHEDULES_FILE": str(settings.schedules_file),
        }
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "spreports.workers.cli", "schedules", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip

    assert run("sync").stdout.strip() == f"{sim.seller_id}: 2 created, 0 already in place"
    assert run("sync").stdout.strip() == f"{sim.seller_id}: 0 created, 2 already in place"
    listed = run("list").stdout.strip().splitlines()
    assert sorted(line.split("\t")[1:3] for line in listed) == [
        ["GET_MERCHANT_LISTINGS_ALL_DATA", "P1D"],
        ["GET_XML_BROWSE_TREE_DATA", "PT12H"],
    ]
    env.pop("SPREPORTS_SCHEDULES_FILE")
    missing = run("sync")
    assert missing.returncode == 2
    assert missing.stderr.strip() == "spreports: error: SPREPORTS_SCHEDULES_FILE is not set"
