"""Benchmark: a burst of one seller's documents at Amazon's real getReportDocument rate, beside the quota's bound.

getReportDocument allows a burst of 15, then one call a minute per seller. ``--documents`` documents of
one seller are queued at once to ``--workers`` real worker processes (``spreports worker``); the
simulator enforces Amazon's usage plans on its clock, ``--speed`` times faster than real time. The
baseline is the quota itself: the fastest any client can go is the burst at once, then one a minute,
so the run's simulated duration is compared with ``(documents - 15)`` minutes as a ratio (1.00x: every
token used the moment it exists). Goals: every document stored, none failed, not one 429.

    .venv/bin/python benchmarks/burst.py --documents 200 --speed 60
    .venv/bin/python benchmarks/burst.py --documents 200 --speed 60 --redis-url redis://127.0.0.1:6379/12

Redis is ``--redis-url`` (emptied first) or a private redis-server on a free port.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import redis
from lab import RedisProcess, machine, product_env, start_python, stop, worker_args

from spreports import enqueue_document
from spreports.settings import Settings
from spreports.simulator import DocumentSpec, SimulatorConfig, start_simulator
from spreports.simulator.config import generated_credentials
from spreports.storage import open_storage

BURST = 15
MINUTE = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (each -c 4)")
    parser.add_argument("--redis-url", help="a Redis to use (its database is emptied)")
    options = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="spreports-burst-"))
    server = None
    if options.redis_url:
        url = options.redis_url
        redis.Redis.from_url(url).flushdb()
    else:
        server = RedisProcess(folder / "redis").start()
        url = server.url
    client_id, client_secret = generated_credentials()
    sim = start_simulator(
        SimulatorConfig(rate_limits=True, speed=options.speed, seed=5, client_id=client_id, client_secret=client_secret)
    )
    env = product_env(
        {
            **sim.env(),
            "SPREPORTS_BROKER_URL": url,
            "SPREPORTS_STORAGE__URL": str(folder / "reports"),
            "SPREPORTS_DATA_DIR": str(folder / "data"),
        }
    )
    settings = Settings(
        broker_url=url,
        storage={"url": str(folder / "reports")},
        lwa={"client_id": client_id, "client_secret": sim.client_secret, "token_url": sim.token_url},
        spapi={"endpoint": sim.url},
        seller_id=sim.seller_id,
    )
    workers = [
        start_python(worker_args(f"burst{index}", "documents", 4), env, folder, folder / f"worker{index}.log")
        for index in range(options.workers)
    ]
    try:
        document_ids = [sim.add_document(DocumentSpec(size=4000), notify=False) for _ in range(options.documents)]
        started, simulated_start = time.monotonic(), sim.core.clock.seconds()
        results = [enqueue_document(document_id, settings=settings) for document_id in document_ids]
        failed = 0
        for result in results:
            try:
                result.get(timeout=options.documents * MINUTE / options.speed + 300, propagate=True)
            except Exception as exc:  # a failed document is counted and named, not fatal to the run
                failed += 1
                print(f"failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        wall = time.monotonic() - started
        simulated = sim.core.clock.seconds() - simulated_start
    finally:
        for worker in workers:
            stop(worker)
        sim.stop()
        if server is not None:
            server.kill()
    storage = open_storage(settings)
    stored = sum(storage.find(sim.seller_id, document_id) is not None for document_id in document_ids)
    calls = sim.requests("getReportDocument", sim.seller_id)
    throttled = sum(call.status == 429 for call in calls)
    bound = max(0, options.documents - BURST) * MINUTE
    print(
        json.dumps(
            {
                "machine": machine(),
                "documents": options.documents,
                "stored": stored,
                "failed": failed,
                "getReportDocument_calls": len(calls),
                "429s": throttled,
                "wall_seconds": round(wall, 1),
                "simulated_minutes": round(simulated / MINUTE, 1),
                "quota_bound_minutes": round(bound / MINUTE, 1),
                "ratio_to_bound": round(simulated / bound, 2) if bound else None,
            },
            indent=2,
        )
    )
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
