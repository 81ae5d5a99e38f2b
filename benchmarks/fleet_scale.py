"""Benchmark: a thousand sellers, each with Amazon's own buckets, on one fleet over a simulated day.

The simulator knows ``--sellers`` selling partners and enforces Amazon's documented usage plans per
(seller, operation) on its clock (getReportDocument: burst 15, then one a minute; getReport: 2/s,
burst 15), a whole day passing in ``--day-seconds`` of real time. Over that day:

- every seller has ``--reports-per-seller`` reports finish at evenly spaced moments (its own phase),
  as scheduled reports do;
- ``--hot-sellers`` sellers also get ``--hot-documents`` documents at once at ``--hot-hour``: more than
  their getReportDocument bucket allows, so for them the quota binds, and the figure is how much of
  it the fleet used while they had work waiting (goal >= 90 %) without a single 429.

Each document is queued the way the relay queues it (``spreports.enqueue_document`` with the report
id and type, so a worker calls getReport and getReportDocument, then downloads), to ``--workers`` real
worker processes (``spreports worker -Q documents -c --concurrency``) on a private redis-server. At
the end it prints (and with ``--json`` writes): documents per minute, 429s, quota used, fairness
between sellers (documents and latency per seller, Jain's index), Redis commands (INFO commandstats
before and after) and memory per seller, and the CPU each process used, which names the next
bottleneck.

    .venv/bin/python benchmarks/fleet_scale.py                     # 1000 sellers, a day in 240 s
    .venv/bin/python benchmarks/fleet_scale.py --sellers 100 --day-seconds 60 --hot-documents 100

The helpers here (private Redis, worker processes, CPU of a process group, Redis counters, stored
manifests) are shared with ``fleet_scaling.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
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
)

from spreports import enqueue_document
from spreports.settings import Settings
from spreports.simulator import DocumentSpec, SellerAccount, Simulator, SimulatorConfig, start_simulator
from spreports.simulator.clock import parse_iso
from spreports.simulator.config import generated_credentials
from spreports.storage.layout import INDEX_DIR

DAY = 86400.0
HOUR = 3600.0
#: Amazon's getReportDocument usage plan (per seller): the bucket every figure of quota is measured against.
DOCUMENT_RATE, DOCUMENT_BURST = 0.0167, 15


@dataclass(frozen=True)
class RedisSample:
    """What a Redis had done and held at one moment."""

    calls: Counter[str]
    usec: int
    cpu: float
    used_memory: int

    @classmethod
    def take(cls, client: redis.Redis) -> RedisSample:
        """INFO commandstats, cpu and memory now."""
        stats = client.info("commandstats")
        calls: Counter[str] = Counter({k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()})
        usec = sum(int(v["usec"]) for v in stats.values())
        cpu = client.info("cpu")
        memory = client.info("memory")
        return cls(calls, usec, float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]), int(memory["used_memory"]))


def manifests(root: Path) -> dict[str, float]:
    """reportDocumentId -> when its done-marker (the index copy of its manifest, written last) was written."""
    found: dict[str, float] = {}
    for folder, _, names in os.walk(root / INDEX_DIR):
        for name in names:
            if name.endswith(".manifest.json") and not name.startswith("."):
                found[name.removesuffix(".manifest.json")] = os.stat(os.path.join(folder, name)).st_mtime
    return found


def jain(values: list[float]) -> float:
    """Jain's fairness index: 1.0 when every value is equal, 1/n when one has everything."""
    squares = sum(v * v for v in values)
    return sum(values) ** 2 / (len(values) * squares) if squares else 1.0


# --- the day -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arrival:
    """One document that becomes ready at ``offset`` simulated seconds into the day."""

    offset: float
    seller_id: str
    hot: bool


def arrivals(args: argparse.Namespace, sellers: tuple[SellerAccount, ...], rng: random.Random) -> list[Arrival]:
    """Every seller's evenly spaced reports (own phase), plus the hot sellers' backlog at once."""
    out: list[Arrival] = []
    every = DAY / args.reports_per_seller
    for seller in sellers:
        phase = rng.uniform(0, every)
        out.extend(Arrival(phase + k * every, seller.seller_id, False) for k in range(args.reports_per_seller))
    for seller in sellers[: args.hot_sellers]:
        out.extend(Arrival(args.hot_hour * HOUR, seller.seller_id, True) for _ in range(args.hot_documents))
    return sorted(out, key=lambda a: a.offset)


@dataclass
class Queued:
    """A document queued by the benchmark: whose, when (wall clock and simulated), hot or not."""

    seller_id: str
    hot: bool
    wall: float
    simulated: float


def feed(sim: Simulator, plan: list[Arrival], settings: Settings, day_start: float, spec: DocumentSpec,
         queued: dict[str, Queued]) -> None:  # fmt: skip
    """Make each document ready at its moment of the simulated day and queue it, as the relay would."""
    for arrival in plan:
        delay = sim.clock.real_seconds(day_start + arrival.offset - sim.clock.seconds())
        if delay > 0:
            time.sleep(delay)
        document_id = sim.add_document(spec, seller_id=arrival.seller_id)
        report = sim.report_of_document(document_id)
        queued[document_id] = Queued(arrival.seller_id, arrival.hot, time.time(), sim.clock.seconds())
        enqueue_document(
            document_id, seller_id=arrival.seller_id, report_id=report["reportId"],
            report_type=report["reportType"], settings=settings,
        )  # fmt: skip


def run_day(args: argparse.Namespace, sim: Simulator, work: Path, env: dict[str, str], url: str) -> dict[str, Any]:
    """Start the fleet, play the day, drain, and measure."""
    client = redis.Redis.from_url(url)
    workers = [start_worker(f"scale{i}", "documents", args.concurrency, env, work) for i in range(args.workers)]
    settings = producer_settings(env)
    try:
        _warm_up(sim, settings, work)
        plan = arrivals(args, tuple(sim.config.sellers[1:]), random.Random(7))
        before, cpu_before = RedisSample.take(client), _cpu(workers, args.redis_pid)
        queued: dict[str, Queued] = {}
        thread_cpu = time.thread_time()
        started, day_start = time.monotonic(), sim.clock.seconds()
        clock = (time.time(), day_start)
        feed(sim, plan, settings, day_start, DocumentSpec(size=args.document_bytes), queued)
        feed_cpu = time.thread_time() - thread_cpu
        while sim.clock.seconds() < day_start + DAY:
            time.sleep(0.2)
        day_real = time.monotonic() - started
        stored = _drain(work / "reports", set(queued), args.drain_seconds)
        elapsed = time.monotonic() - started
        after, cpu_after = RedisSample.take(client), _cpu(workers, args.redis_pid)
    finally:
        for worker in workers:
            stop(worker)
    cpu = {k: cpu_after[k] - cpu_before[k] for k in cpu_before}
    cpu["simulator"] = cpu.pop("benchmark process") - feed_cpu
    cpu["feeder (enqueue_document)"] = feed_cpu
    return figures(args, sim, queued, stored, before, after, cpu, day_real, elapsed, day_start, clock, client)


def _warm_up(sim: Simulator, settings: Settings, work: Path) -> None:
    """One document of the warm-up seller, so the workers' pool processes are up before the clock counts."""
    seller = sim.config.sellers[0].seller_id
    ids = {sim.add_document(DocumentSpec(size=1000), seller_id=seller) for _ in range(4)}
    for document_id in ids:
        enqueue_document(document_id, seller_id=seller, settings=settings)
    if len(_drain(work / "reports", ids, 120)) < len(ids):
        raise SystemExit(f"the warm-up documents were not stored within 120 s; see {work}/*.log")


def _cpu(workers: list[subprocess.Popen[bytes]], redis_pid: int) -> dict[str, float]:
    return {
        "workers": sum(group_cpu(w.pid) for w in workers),
        "redis-server": process_cpu(redis_pid),
        "benchmark process": process_cpu(os.getpid()),
    }


def _drain(root: Path, wanted: set[str], seconds: float) -> dict[str, float]:
    deadline = time.monotonic() + seconds
    while True:
        stored = manifests(root)
        if wanted <= set(stored) or time.monotonic() > deadline:
            return stored
        time.sleep(1.0)


def figures(args: argparse.Namespace, sim: Simulator, queued: dict[str, Queued], stored: dict[str, float],
            before: RedisSample, after: RedisSample, cpu: dict[str, float], day_real: float, elapsed: float,
            day_start: float, clock: tuple[float, float], client: redis.Redis) -> dict[str, Any]:  # fmt: skip
    """Everything the run measured, JSON-ready."""
    done = {d: q for d, q in queued.items() if d in stored}
    calls = sim.requests("getReportDocument")
    throttled = Counter(r.operation for r in sim.requests() if r.status == 429)
    per_seller: Counter[str] = Counter(q.seller_id for q in done.values() if not q.hot)
    cold = [s.seller_id for s in sim.config.sellers[1:]]
    latency = defaultdict(list)
    for document_id, q in done.items():
        latency[q.seller_id].append(stored[document_id] - q.wall)
    cold_latency = [statistics.median(latency[s]) for s in cold if latency[s] and s not in _hot(args, sim)]
    ops = sum((after.calls - before.calls).values())
    documents = len(done)
    return {
        "machine": machine(load=True),
        "sellers": args.sellers,
        "workers": f"{args.workers} x -c {args.concurrency}",
        "speed": round(sim.clock.speed, 1),
        "day_real_seconds": round(day_real, 1),
        "drain_real_seconds": round(elapsed - day_real, 1),
        "documents_queued": len(queued),
        "documents_stored": documents,
        "documents_missing": len(queued) - documents,
        "documents_per_real_minute": round(documents / elapsed * 60, 1),
        "documents_per_simulated_minute": round(documents / (elapsed * sim.clock.speed) * 60, 2),
        "http_429": dict(throttled),
        "http_429_who_when": [
            f"{r.operation} {r.seller_id} hot={r.seller_id in _hot(args, sim)} "
            f"at simulated hour {(sim.clock.seconds_of(parse_iso(r.time)) - day_start) / HOUR:.2f}"
            for r in sim.requests()
            if r.status == 429
        ][:10],
        "getReportDocument_calls": len(calls),
        "quota_hot_sellers": _hot_quota(args, sim, calls, queued, stored, clock),
        "quota_whole_fleet": round(len(calls) / (args.sellers * (DOCUMENT_BURST + DOCUMENT_RATE * DAY)), 4),
        "fairness": {
            "documents_per_cold_seller_min_median_max": _spread(
                [per_seller[s] for s in cold if s not in _hot(args, sim)]
            ),
            "documents_per_cold_seller_jain": round(jain([per_seller[s] for s in cold if s not in _hot(args, sim)]), 4),
            "latency_s_per_cold_seller_min_median_max": _spread(cold_latency, 2),
            "latency_s_per_cold_seller_jain": round(jain(cold_latency), 4),
            "latency_s_cold_p50_p99_max": _percentiles(
                [x for s in cold if s not in _hot(args, sim) for x in latency[s]]
            ),
            "latency_s_cold_during_hot_backlog_p50_p99_max": _during_hot(args, done, stored, day_start, sim),
        },
        "redis": {
            "commands": ops,
            "commands_per_document": round(ops / max(1, documents), 1),
            "commands_per_second": round(ops / elapsed, 1),
            "top_commands": dict((after.calls - before.calls).most_common(8)),
            "cpu_seconds": round(after.cpu - before.cpu, 1),
            "usec_per_command": round((after.usec - before.usec) / max(1, ops), 2),
            "used_memory_delta_mib": round((after.used_memory - before.used_memory) / 2**20, 2),
            "used_memory_per_seller_kib": round((after.used_memory - before.used_memory) / args.sellers / 1024, 2),
            "keys_by_kind": _keys_by_kind(client),
        },
        "cpu_seconds": {k: round(v, 1) for k, v in cpu.items()},
        "cpu_ms_per_document": {k: round(v / max(1, documents) * 1000, 2) for k, v in cpu.items()},
        "cpu_share_of_one_core": {k: round(v / elapsed, 3) for k, v in cpu.items()},
    }


def _hot(args: argparse.Namespace, sim: Simulator) -> set[str]:
    return {s.seller_id for s in sim.config.sellers[1 : 1 + args.hot_sellers]}


def _hot_quota(args: argparse.Namespace, sim: Simulator, calls: list[Any], queued: dict[str, Queued],
               stored: dict[str, float], clock: tuple[float, float]) -> list[dict[str, Any]]:  # fmt: skip
    """Per hot seller: getReportDocument calls from its backlog's arrival to its last document stored,
    against what its bucket allowed over that window (burst + rate x window)."""
    out = []
    wall0, sim0 = clock
    for seller in sorted(_hot(args, sim)):
        hot = [d for d, q in queued.items() if q.seller_id == seller and q.hot]
        if not hot or any(d not in stored for d in hot):
            out.append({"seller": seller, "backlog_stored": sum(d in stored for d in hot), "backlog": len(hot)})
            continue
        arrived = min(queued[d].simulated for d in hot)
        ended = sim0 + (max(stored[d] for d in hot) - wall0) * sim.clock.speed
        during = [
            r
            for r in calls
            if r.seller_id == seller and arrived - 1 <= sim.clock.seconds_of(parse_iso(r.time)) <= ended
        ]
        window = ended - arrived
        allowed = DOCUMENT_BURST + DOCUMENT_RATE * window
        out.append({
            "seller": seller, "backlog": len(hot), "calls_during_backlog": len(during), "allowed": round(allowed, 1),
            "quota_used": round(len(during) / allowed, 3), "backlog_simulated_minutes": round(window / 60, 1),
            "bound_minutes": round((len(during) - DOCUMENT_BURST) / DOCUMENT_RATE / 60, 1),
        })  # fmt: skip
    return out


def _during_hot(args: argparse.Namespace, done: dict[str, Queued], stored: dict[str, float], day_start: float,
                sim: Simulator) -> list[float]:  # fmt: skip
    start = day_start + args.hot_hour * HOUR
    end = start + max(0, args.hot_documents - DOCUMENT_BURST) / DOCUMENT_RATE
    return _percentiles([stored[d] - q.wall for d, q in done.items() if not q.hot and start <= q.simulated <= end])


def _keys_by_kind(client: redis.Redis) -> dict[str, dict[str, float]]:
    """Keys per kind (prefix), with their memory estimated from ``MEMORY USAGE`` of up to 50 of each."""
    kinds: dict[str, list[bytes]] = defaultdict(list)
    for key in client.scan_iter(count=1000):
        name = key.decode(errors="replace")
        kind = ":".join(name.split(":")[:2]) if name.startswith("spreports") else name.split("-")[0].split(":")[0]
        kinds[kind].append(key)
    out = {}
    for kind, keys in sorted(kinds.items(), key=lambda item: -len(item[1]))[:12]:
        sample = [client.memory_usage(k) or 0 for k in keys[:50]]
        each = statistics.mean(sample) if sample else 0.0
        out[kind] = {"keys": len(keys), "bytes_each": round(each), "mib": round(each * len(keys) / 2**20, 2)}
    return out


def _spread(values: list[float], digits: int = 0) -> list[float]:
    if not values:
        return []
    return [round(min(values), digits), round(statistics.median(values), digits), round(max(values), digits)]


def _percentiles(values: list[float]) -> list[float]:
    if not values:
        return []
    ordered = sorted(values)
    return [round(ordered[len(ordered) // 2], 2), round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
            round(ordered[-1], 2)]  # fmt: skip


def parse_args() -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sellers", type=int, default=1000)
    parser.add_argument("--day-seconds", type=float, default=240.0, help="real seconds one simulated day takes")
    parser.add_argument("--reports-per-seller", type=int, default=5, help="each seller's reports over the day")
    parser.add_argument("--hot-sellers", type=int, default=2, help="sellers whose work exceeds their bucket")
    parser.add_argument("--hot-documents", type=int, default=150, help="documents each hot seller gets at once")
    parser.add_argument("--hot-hour", type=float, default=2.0, help="simulated hour the hot backlog arrives")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=4, help="each worker's pool size")
    parser.add_argument("--document-bytes", type=int, default=4000, help="uncompressed size of each document")
    parser.add_argument("--drain-seconds", type=float, default=120.0, help="how long to wait after the day")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    return parser.parse_args()


def main() -> None:
    """Run the day and print its figures."""
    args = parse_args()
    speed = DAY / args.day_seconds
    client_id, client_secret = generated_credentials()
    # One extra seller warms the workers up; the day's sellers are the rest.
    sellers = sellers_of(args.sellers + 1, "SCALE")
    work = Path(tempfile.mkdtemp(prefix="spreports-scale-"))
    server = RedisProcess(work / "redis").start()
    url, args.redis_pid = server.url, server.pid
    sim = start_simulator(
        SimulatorConfig(
            client_id=client_id, client_secret=client_secret, sellers=sellers, speed=speed, rate_limits=True,
            token_lifetime=3600 * speed, url_lifetime=300 * speed, seed=13,
        )
    )  # fmt: skip
    try:
        result = run_day(args, sim, work, fleet_env(sim, work, url), url)
    finally:
        sim.stop()
        server.kill()
    result["work_dir"] = str(work)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    threading.current_thread().name = "feeder"
    main()
