"""A simulated day of many sellers with the real fleet: beat, relay and a worker against the simulator.

Every seller has two scheduled report types (listings every 4 hours, FBA inventory every 8 hours); the
simulator runs a day in about a minute with Amazon's usage plans enforced on its clock, and Amazon's
troubles at steady rates: reports that end FATAL (with an ``errorDetails`` document) or CANCELLED,
reports stuck IN_QUEUE, notifications delivered twice and ten times. The fleet is the product's own
processes (``spreports beat``, ``spreports relay``, ``spreports worker``) on an embedded Redis and a
moto SQS queue. At the end it prints (and with ``--json`` writes) what was stored against what Amazon
finished, the 429s, and the quota used per operation.

    .venv/bin/python benchmarks/fleet_day.py --sellers 50 --day-seconds 60

There is no baseline to run beside it: the figures are absolute (stored exactly once, zero 429s).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
from lab import aws_environment, fleet_env, machine, moto_server, spreports, start_python, stop

from spreports.simulator import Outcomes, SellerAccount, Simulator, SimulatorConfig, start_simulator
from spreports.workers.embedded_redis import EmbeddedRedis

DAY = 86400.0
HOUR = 3600.0
SCHEDULES = {"GET_MERCHANT_LISTINGS_ALL_DATA": "PT4H", "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA": "PT8H"}
#: Amazon's troubles, per simulated hour across the fleet (each one "the next report / notification").
STUCK_PER_HOUR = 0.25
REPEATED_PER_HOUR = 0.5
DUPLICATED_PER_HOUR = 1.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sellers", type=int, default=50)
    parser.add_argument("--day-seconds", type=float, default=60.0, help="real seconds one simulated day takes")
    parser.add_argument("--concurrency", type=int, default=4, help="the worker's pool size")
    parser.add_argument("--fatal", type=float, default=0.02, help="share of reports ending FATAL")
    parser.add_argument("--cancelled", type=float, default=0.03, help="share of reports ending CANCELLED")
    parser.add_argument("--drain-seconds", type=float, default=180.0, help="how long to wait for the backlog")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    return parser.parse_args()


def files(root: Path) -> tuple[Counter[str], Counter[str], int]:
    """Stored manifests per reportDocumentId (documents, error documents) and the count of data files."""
    documents: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    data_files = 0
    for path in root.rglob("*"):
        parts = path.relative_to(root).parts
        if not path.is_file() or "_index" in parts or path.name.startswith("."):
            continue
        if not path.name.endswith(".manifest.json"):
            data_files += 1
            continue
        document_id = json.loads(path.read_text(encoding="utf-8"))["report_document_id"]
        (errors if "_errors" in parts else documents)[document_id] += 1
    return documents, errors, data_files


def finished(sim: Simulator) -> tuple[set[str], set[str], int, int]:
    """Documents of DONE reports, error documents of FATAL ones, and how many reports are stuck / running."""
    with sim.world.lock:
        reports = list(sim.world.reports.values())
    done = {r.document_id for r in reports if r.status == "DONE" and r.document_id}
    fatal = {r.document_id for r in reports if r.status == "FATAL" and r.document_id}
    stuck = sum(1 for r in reports if r.queued or r.stuck)
    running = sum(1 for r in reports if r.status in ("IN_QUEUE", "IN_PROGRESS") and not (r.queued or r.stuck))
    return done, fatal, stuck, running


def quota_used(sim: Simulator, seconds: float, sellers: int) -> dict[str, dict[str, float]]:
    """Per seller-authorised operation: calls made, and their share of what the usage plan allowed."""
    plans = {"getReportDocument": (0.0167, 15), "getReport": (2.0, 15), "getReports": (0.0222, 10)}
    out: dict[str, dict[str, float]] = {}
    for operation, (rate, burst) in plans.items():
        calls = len(sim.requests(operation))
        allowed = sellers * (burst + rate * seconds * sim.clock.speed)
        out[operation] = {"calls": calls, "allowed": round(allowed), "used": round(calls / allowed, 4)}
    return out


def environment(sim: Simulator, work: Path, broker: str, queue_url: str, endpoint: str) -> dict[str, str]:
    schedules = work / "schedules.toml"
    schedules.write_text(
        "".join(
            f'[[schedules]]\nreport_type = "{t}"\nmarketplace_ids = ["ATVPDKIKX0DER"]\nperiod = "{p}"\n\n'
            for t, p in SCHEDULES.items()
        ),
        encoding="utf-8",
    )
    return fleet_env(sim, work, broker) | {
        "AWS_ENDPOINT_URL_SQS": endpoint,
        "SPREPORTS_SCHEDULES_FILE": str(schedules),
        "SPREPORTS_SQS__QUEUE_URL": queue_url,
        "SPREPORTS_SQS__WAIT_TIME_SECONDS": "1",
        "SPREPORTS_SQS__RECEIVERS": "2",
    }


def simulate(args: argparse.Namespace, sim: Simulator, work: Path, env: dict[str, str]) -> dict[str, Any]:
    processes = [
        start_python(
            spreports("worker", "-Q", "control,documents", "-c", str(args.concurrency), "-n", "day@%h"),
            env,
            work,
            work / "worker.log",
        ),
        start_python(spreports("relay"), env, work, work / "relay.log"),
        start_python(spreports("beat", "-s", str(work / "beat-schedule")), env, work, work / "beat.log"),
    ]
    try:
        wanted = args.sellers * len(SCHEDULES)
        deadline = time.monotonic() + 300
        while len(sim.world.schedules) < wanted:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {len(sim.world.schedules)} of {wanted} schedules after 300 s")
            time.sleep(0.2)
        started, day_start = time.monotonic(), sim.clock.seconds()
        hours = 0
        while sim.clock.seconds() < day_start + DAY:
            hour = int((sim.clock.seconds() - day_start) // HOUR)
            while hours <= hour:  # Amazon's troubles at a steady rate on the simulated clock
                arm(sim, hours)
                hours += 1
            time.sleep(0.05)
        sim.world.tick()
        with sim.world.lock:
            sim.world.schedules.clear()  # the day is over
        day_real = time.monotonic() - started
        drain_start = time.monotonic()
        root = work / "reports"
        while time.monotonic() - drain_start < args.drain_seconds:
            done, fatal, _, running = finished(sim)
            documents, errors, _ = files(root)
            if not running and done <= set(documents) and fatal <= set(errors):
                break
            time.sleep(0.5)
        drained = time.monotonic() - drain_start
        return figures(sim, root, args, day_real, drained)
    finally:
        for process in processes:
            stop(process)


def arm(sim: Simulator, hour: int) -> None:
    """Make the next reports / notifications go wrong at the configured hourly rates."""
    faults = sim.faults
    changes: dict[str, int] = {}
    for name, per_hour in (("queued_reports", STUCK_PER_HOUR), ("repeated_notifications", REPEATED_PER_HOUR),
                           ("duplicate_notifications", DUPLICATED_PER_HOUR)):  # fmt: skip
        due = int((hour + 1) * per_hour) - int(hour * per_hour)
        if due:
            changes[name] = getattr(faults, name) + due
    if changes:
        sim.set_faults(**changes)


def figures(sim: Simulator, root: Path, args: argparse.Namespace, day_real: float, drained: float) -> dict[str, Any]:
    done, fatal, stuck, running = finished(sim)
    documents, errors, data_files = files(root)
    statuses = Counter(r.status for r in list(sim.world.reports.values()))
    throttled = Counter(r.operation for r in sim.requests() if r.status == 429)
    return {
        "sellers": args.sellers,
        "speed": round(sim.clock.speed, 1),
        "day_real_seconds": round(day_real, 1),
        "drain_seconds": round(drained, 1),
        "reports": dict(statuses),
        "stuck_in_queue": stuck,
        "still_running": running,
        "notifications_sent": len(sim.notifications()),
        "done_documents": len(done),
        "done_stored_once": sum(1 for d in done if documents[d] == 1),
        "done_missing": sorted(d for d in done if documents[d] == 0)[:10],
        "stored_more_than_once": sorted(d for d, n in {**documents, **errors}.items() if n > 1)[:10],
        "stored_not_done": {d: _status_of(sim, d) for d in sorted(set(documents) - done)[:10]},
        "data_files": data_files,
        "manifests": sum(documents.values()) + sum(errors.values()),
        "fatal_error_documents": len(fatal),
        "fatal_stored_once": sum(1 for d in fatal if errors[d] == 1),
        "http_429": dict(throttled),
        "quota": quota_used(sim, day_real + drained, args.sellers),
    }


def day_config(sellers: tuple[SellerAccount, ...], speed: float, outcomes: Outcomes) -> SimulatorConfig:
    """The simulator of the day: usage plans on, real-time token and URL lifetimes, small documents."""
    return SimulatorConfig(
        sellers=sellers, speed=speed, rate_limits=True, outcomes=outcomes, token_lifetime=3600 * speed,
        url_lifetime=300 * speed, document_bytes=16 * 1024, seed=11,
    )  # fmt: skip


def _status_of(sim: Simulator, document_id: str) -> str:
    with sim.world.lock:
        found = [r.status for r in sim.world.reports.values() if r.document_id == document_id]
    return ",".join(found) or "no report"


def main() -> None:
    args = parse_args()
    speed = DAY / args.day_seconds
    sellers = tuple(
        SellerAccount(f"A{i:03d}DAYSELLER", f"Atzr|day-{i}-{uuid.uuid4().hex}") for i in range(args.sellers)
    )
    outcomes = Outcomes(
        done=1.0 - args.fatal - args.cancelled, fatal=args.fatal, cancelled=args.cancelled,
        queue_seconds=120.0, processing_seconds=600.0,
    )  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="spreports-day-"))
    # The simulator's notifier sends to moto as well: AWS_ENDPOINT_URL_SQS is set in this process too.
    with moto_server() as endpoint, aws_environment(endpoint):
        embedded = EmbeddedRedis(work / "redis")
        sim = start_simulator(day_config(sellers, speed, outcomes))
        try:
            broker = embedded.ensure_running()
            sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
            queue_url = sqs.create_queue(QueueName=f"day-{uuid.uuid4().hex[:8]}")["QueueUrl"]
            arn = f"arn:aws:sqs:us-east-1:123456789012:{queue_url.rsplit('/', 1)[1]}"
            for seller in sellers:
                sim.subscribe_queue(arn, seller.seller_id)
            result = simulate(args, sim, work, environment(sim, work, broker, queue_url, endpoint))
        finally:
            sim.stop()
            embedded.stop()
    result["machine"] = machine()
    result["work_dir"] = str(work)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
