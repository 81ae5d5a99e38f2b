"""Benchmark: fleet throughput on small documents with 1, 2 and 4 worker processes, each beside 1 in one run.

Four real workers (``spreports worker -c --concurrency``) start once and stay up; worker ``i`` consumes
the queues of the variants it belongs to (``scaling1`` only worker 0, ``scaling2`` workers 0-1,
``scaling4`` all four), so a variant of N workers is the same processes every round and no round pays
for start-up. Each round runs every variant (the order rotating) on ``--documents`` fresh small
documents spread over ``--sellers`` sellers, queued as the relay queues them (report id and type: a
worker calls getReport and getReportDocument, then downloads, gunzips, fsyncs, writes the manifest).
Time: from the first document queued to the last one stored. The simulator enforces Amazon's usage
plans at ``--speed``; with enough sellers their buckets never bind (``--sellers 2`` shows a fleet
bound by the quota instead). Reported: documents per second per variant (medians), and each
variant's ratio to the 1-worker variant of the same round (median of the per-round ratios).

    .venv/bin/python benchmarks/fleet_scaling.py --rounds 5 --documents 150
    .venv/bin/python benchmarks/fleet_scaling.py --rounds 3 --documents 120 --sellers 2   # the quota binds
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lab import (
    RedisProcess,
    fleet_env,
    group_cpu,
    machine,
    process_cpu,
    producer_settings,
    sellers_of,
    start_worker,
    stop,
    stored_at,
)

from spreports import names
from spreports.settings import Settings
from spreports.simulator import DocumentSpec, Simulator, SimulatorConfig, start_simulator
from spreports.simulator.config import generated_credentials
from spreports.task_arguments import DocumentRequest
from spreports.workers.producers import app_for

VARIANTS = (1, 2, 4)
GOAL_AT_TWO = 1.8


def queues_of(worker: int) -> str:
    """The variant queues worker ``worker`` (0-3) consumes."""
    return ",".join(f"scaling{n}" for n in VARIANTS if worker < n)


def one_batch(sim: Simulator, settings: Settings, root: Path, workers: int, count: int, size: int,
              first: int) -> float:  # fmt: skip
    """Queue ``count`` new documents to the ``workers``-worker variant; seconds until all are stored."""
    sellers = sim.config.sellers
    batch = []
    for index in range(first, first + count):
        seller = sellers[index % len(sellers)].seller_id
        document_id = sim.add_document(DocumentSpec(size=size, seed=index), seller_id=seller)
        report = sim.report_of_document(document_id)
        batch.append((seller, document_id, report["reportId"], report["reportType"]))
    app = app_for(settings)
    started = time.monotonic()
    for seller, document_id, report_id, report_type in batch:
        request = DocumentRequest.parse(
            seller_id=seller, report_document_id=document_id, report_id=report_id, report_type=report_type
        )
        app.send_task(names.RETRIEVE_REPORT_DOCUMENT, kwargs=request.task_kwargs(), queue=f"scaling{workers}")
    pending = [(seller, document_id) for seller, document_id, _, _ in batch]
    deadline = started + 600
    while pending:
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(pending)} documents of the {workers}-worker variant not stored within 600 s")
        pending = [p for p in pending if stored_at(root, *p) is None]
        time.sleep(0.05)
    return time.monotonic() - started


def _cpu(workers: list[Any], redis_pid: int) -> dict[str, float]:
    # This process is the simulator (Amazon's side) and the producer; the workers and Redis are the fleet.
    return {
        "workers": sum(group_cpu(w.pid) for w in workers),
        "redis": process_cpu(redis_pid),
        "simulator and producer": process_cpu(os.getpid()),
    }


def bench(args: argparse.Namespace, sim: Simulator, work: Path, env: dict[str, str]) -> dict[str, Any]:
    """Start the four workers, warm them up, run the rounds; return the figures."""
    workers = [start_worker(f"scaling{i}", queues_of(i), args.concurrency, env, work) for i in range(max(VARIANTS))]
    settings, root = producer_settings(env), Path(env["SPREPORTS_STORAGE__URL"])
    rates: dict[int, list[float]] = {n: [] for n in VARIANTS}
    ratios: dict[int, list[float]] = {n: [] for n in VARIANTS}
    worker_ms: dict[int, list[float]] = {n: [] for n in VARIANTS}
    cores: dict[int, list[float]] = {n: [] for n in VARIANTS}
    first = 0
    try:
        for n in VARIANTS:  # warm-up, not counted: every pool process imports, connects and caches tokens
            one_batch(sim, settings, root, n, 4 * n * args.concurrency, args.document_bytes, first)
            first += 4 * n * args.concurrency
        cpu_before = [group_cpu(w.pid) for w in workers]
        for round_number in range(args.rounds):
            order = VARIANTS[round_number % 3 :] + VARIANTS[: round_number % 3]
            seconds = {}
            for n in order:
                cpu_start = _cpu(workers, args.redis_pid)
                seconds[n] = one_batch(sim, settings, root, n, args.documents, args.document_bytes, first)
                used = {k: v - cpu_start[k] for k, v in _cpu(workers, args.redis_pid).items()}
                first += args.documents
                rates[n].append(args.documents / seconds[n])
                worker_ms[n].append(used["workers"] / args.documents * 1000)
                cores[n].append(sum(used.values()) / seconds[n])
            for n in VARIANTS:
                ratios[n].append(seconds[1] / seconds[n])
            print(f"round {round_number + 1}: " + ", ".join(f"{n} worker(s) {rates[n][-1]:.1f} doc/s "
                  f"({ratios[n][-1]:.2f}x)" for n in VARIANTS), file=sys.stderr)  # fmt: skip
        cpu = [group_cpu(w.pid) - before for w, before in zip(workers, cpu_before, strict=True)]
    finally:
        for worker in workers:
            stop(worker)
    throttled = sum(1 for r in sim.requests() if r.status == 429)
    return {
        "machine": machine(load=True),
        "sellers": len(sim.config.sellers),
        "speed": sim.clock.speed,
        "concurrency_per_worker": args.concurrency,
        "documents_per_variant_per_round": args.documents,
        "rounds": args.rounds,
        "documents_per_second_median": {n: round(statistics.median(rates[n]), 1) for n in VARIANTS},
        "ratio_to_one_worker_median": {n: round(statistics.median(ratios[n]), 2) for n in VARIANTS},
        "ratio_to_one_worker_min_max": {n: [round(min(ratios[n]), 2), round(max(ratios[n]), 2)] for n in VARIANTS},
        "worker_cpu_seconds": [round(c, 1) for c in cpu],
        "worker_cpu_ms_per_document_median": {n: round(statistics.median(worker_ms[n]), 1) for n in VARIANTS},
        "cores_used_by_fleet_simulator_redis_median": {n: round(statistics.median(cores[n]), 2) for n in VARIANTS},
        "http_429": throttled,
        "quota_bound_documents_per_second": round(len(sim.config.sellers) * 0.0167 * sim.clock.speed, 1),
    }


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--documents", type=int, default=150, help="documents per variant per round")
    parser.add_argument("--sellers", type=int, default=200, help="their buckets share the work")
    parser.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second")
    parser.add_argument("--concurrency", type=int, default=1, help="pool processes per worker")
    parser.add_argument("--document-bytes", type=int, default=4000, help="uncompressed size of each document")
    args = parser.parse_args()
    client_id, client_secret = generated_credentials()
    work = Path(tempfile.mkdtemp(prefix="spreports-scaling-"))
    server = RedisProcess(work / "redis").start()
    url, args.redis_pid = server.url, server.pid
    sim = start_simulator(
        SimulatorConfig(
            client_id=client_id, client_secret=client_secret, sellers=sellers_of(args.sellers, "SCAL"),
            speed=args.speed, rate_limits=True, token_lifetime=3600 * args.speed, url_lifetime=300 * args.speed,
            seed=17,
        )
    )  # fmt: skip
    try:
        result = bench(args, sim, work, fleet_env(sim, work, url))
    finally:
        sim.stop()
        server.kill()
    result["work_dir"] = str(work)
    print(json.dumps(result, indent=2))
    two = result["ratio_to_one_worker_median"][2]
    print(f"2 workers: {two:.2f}x 1 worker (goal >= {GOAL_AT_TWO} until the quota binds)", file=sys.stderr)


if __name__ == "__main__":
    main()
