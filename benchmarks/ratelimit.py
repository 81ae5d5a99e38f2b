"""How the fleet-wide token bucket behaves under contention.

N OS processes hammer ONE bucket (one seller, one operation) through a private redis-server for a
fixed time. Every "call" a process makes after the limiter lets it through is timestamped. Reported:

- granted calls vs the bound ``rate * span + burst`` (utilisation) and the worst sliding window
  (calls in [t_i, t_j] minus ``rate * (t_j - t_i) + burst``; <= 0 means the bound always held),
- fairness: calls per process (min / max, Jain's index; 1.0 = perfectly even),
- Redis round trips per granted call and the latency of one acquire (EVALSHA round trip),
- lateness: how long after its reserved instant a call actually started (sleep overshoot).

Two modes: ``reserve`` (the product's mode: a wait <= max_wait is reserved in the same round trip and
slept) and ``poll`` (max_wait = 0: a refused caller sleeps the advised wait and asks again).

    .venv/bin/python benchmarks/ratelimit.py --processes 8 --rate 50 --burst 10 --seconds 5

``--simulator``: the same question against Amazon's documented buckets, end to end. For each of
``--operations`` a simulator enforces its usage plan (createReport 0.0167/s burst 15, getReportDocument
0.0167/s burst 15, getReports 0.0222/s burst 10, getReport 2/s burst 15) on a clock sped up so that
the plan allows ``--real-rate`` calls per real second; N processes call the operation through the
product's ``SpapiClient`` (its fleet-wide limiter in Redis) as fast as it lets them, a refused caller
coming back when told, as a task does. Reported: the calls Amazon accepted against the plan's bound
``burst + rate x simulated span`` (goal >= 90 %) and the 429s it answered (goal 0).

    .venv/bin/python benchmarks/ratelimit.py --simulator --processes 1 4 --seconds 20
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from lab import RedisProcess

from spreports.spapi.operations import Operation
from spreports.spapi.ratelimit import RateLimiter


def _private_redis() -> RedisProcess:
    return RedisProcess(Path(tempfile.mkdtemp(prefix="bench-redis-"))).start()


def _worker(url: str, op: Operation, mode: str, max_wait: float, start: float, until: float) -> dict[str, list[float]]:
    limiter = RateLimiter(redis.Redis.from_url(url))
    key = limiter.key("na", "BENCH", op)
    calls: list[float] = []
    rtts: list[float] = []
    late: list[float] = []
    trips = 0
    time.sleep(max(0.0, start - time.time()))
    while time.time() < until:
        sent = time.perf_counter()
        grant = limiter.try_acquire(key, op, max_wait if mode == "reserve" else 0.0)
        rtts.append(time.perf_counter() - sent)
        trips += 1
        if grant.granted:
            due = time.time() + grant.wait
            if grant.wait > 0:
                time.sleep(grant.wait)
            now = time.time()
            late.append(now - due)
            calls.append(now)
        else:
            time.sleep(grant.wait)
    return {"calls": calls, "rtts": rtts, "late": late, "trips": [float(trips)]}


def _worst_window(times: list[float], rate: float, burst: int) -> float:
    worst = float("-inf")
    for i in range(len(times)):
        for j in range(i, len(times)):
            worst = max(worst, (j - i + 1) - (rate * (times[j] - times[i]) + burst))
    return worst


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run(
    url: str, processes: int, rate: float, burst: int, seconds: float, mode: str, max_wait: float
) -> dict[str, object]:
    redis.Redis.from_url(url).flushdb()
    op = Operation(f"bench-{mode}", "GET", "/bench", rate=rate, burst=burst)
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        pool.map(time.sleep, [0.0] * processes)  # processes up and imported before the clock starts
        start = time.time() + 0.5
        results = pool.starmap(_worker, [(url, op, mode, max_wait, start, start + seconds)] * processes)
    times = sorted(t for r in results for t in r["calls"])
    per_process = [len(r["calls"]) for r in results]
    trips = sum(r["trips"][0] for r in results)
    rtts = [x for r in results for x in r["rtts"]]
    late = [x for r in results for x in r["late"]]
    span = times[-1] - start if times else 0.0
    bound = rate * span + burst
    jain = sum(per_process) ** 2 / (len(per_process) * sum(n * n for n in per_process)) if any(per_process) else 0.0
    return {
        "mode": mode,
        "processes": processes,
        "rate": rate,
        "burst": burst,
        "seconds": seconds,
        "granted": len(times),
        "bound": round(bound, 1),
        "utilisation": round(len(times) / bound, 3) if bound else 0.0,
        "worst_window_excess": round(_worst_window(times, rate, burst), 2),
        "per_process_min_max": [min(per_process), max(per_process)],
        "jain_fairness": round(jain, 3),
        "round_trips_per_grant": round(trips / max(1, len(times)), 2),
        "acquire_ms_p50_p99": [round(_pct(rtts, 0.5) * 1000, 2), round(_pct(rtts, 0.99) * 1000, 2)],
        "lateness_ms_p50_p99": [round(_pct(late, 0.5) * 1000, 2), round(_pct(late, 0.99) * 1000, 2)],
    }


# --- against the simulator's documented buckets -----------------------------------------------------

SIM_OPERATIONS = {"createReport": (0.0167, 15), "getReportDocument": (0.0167, 15), "getReports": (0.0222, 10),
                  "getReport": (2.0, 15)}  # fmt: skip


def _caller(settings: dict[str, Any], seller: str, operation: str, ids: list[str], start: float, until: float) -> int:
    """Call ``operation`` through the product's client until ``until``; a quota wait sleeps as told."""
    from spreports.errors import QuotaWait
    from spreports.settings import Settings
    from spreports.spapi import SpapiClient

    client = SpapiClient.for_seller(Settings(**settings), seller, redis=redis.Redis.from_url(settings["broker_url"]))
    calls: dict[str, Callable[[int], object]] = {
        "createReport": lambda i: client.create_report("GET_MERCHANT_LISTINGS_ALL_DATA", ["ATVPDKIKX0DER"]),
        "getReportDocument": lambda i: client.get_report_document(ids[i % len(ids)]),
        "getReports": lambda i: client.get_reports_page(["GET_MERCHANT_LISTINGS_ALL_DATA"], page_size=10),
        "getReport": lambda i: client.get_report(ids[i % len(ids)]),
    }
    call, made = calls[operation], 0
    time.sleep(max(0.0, start - time.time()))
    while time.time() < until:
        try:
            call(made)
            made += 1
        except QuotaWait as wait:  # a task would come back after the wait, with nothing taken
            time.sleep(min(wait.retry_after or 0.1, max(0.0, until - time.time())))
    return made


def run_simulator(operation: str, processes: int, seconds: float, real_rate: float) -> dict[str, object]:
    """One operation's plan, enforced by a simulator; N processes through the product's client."""
    from spreports.simulator import DocumentSpec, SimulatorConfig, start_simulator
    from spreports.simulator.clock import parse_iso
    from spreports.simulator.config import generated_credentials

    rate, burst = SIM_OPERATIONS[operation]
    speed = real_rate / rate
    client_id, client_secret = generated_credentials()
    server = _private_redis()
    url = server.url
    sim = start_simulator(SimulatorConfig(
        client_id=client_id, client_secret=client_secret, rate_limits=True, speed=speed,
        token_lifetime=3600 * speed, url_lifetime=300 * speed, document_bytes=1000,
    ))  # fmt: skip
    try:
        sim.set_rate_limits(False)  # the documents and reports the callers need, made outside the plans
        if operation == "getReport":
            ids = [sim.report_of_document(sim.add_document(DocumentSpec(size=1000)))["reportId"] for _ in range(50)]
        else:
            ids = [sim.add_document(DocumentSpec(size=1000)) for _ in range(50)]
        sim.set_rate_limits(True)
        env = sim.env()
        settings = {
            "broker_url": url, "seller_id": sim.seller_id, "spapi": {"endpoint": sim.url},
            "lwa": {"client_id": client_id, "client_secret": client_secret, "token_url": sim.token_url,
                    "refresh_token": env["SPREPORTS_LWA__REFRESH_TOKEN"]},
        }  # fmt: skip
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            pool.map(time.sleep, [0.0] * processes)
            start = time.time() + 1.0
            made = pool.starmap(
                _caller, [(settings, sim.seller_id, operation, ids, start, start + seconds)] * processes
            )
        records = [r for r in sim.requests(operation) if r.seller_id == sim.seller_id]
    finally:
        sim.stop()
        server.kill()
    accepted = [sim.clock.seconds_of(parse_iso(r.time)) for r in records if r.status < 400]
    throttled = sum(1 for r in records if r.status == 429)
    span = max(accepted) - min(accepted) if accepted else 0.0
    bound = burst + rate * span
    return {
        "operation": operation, "plan": f"{rate}/s burst {burst}", "speed": round(speed, 1),
        "processes": processes, "seconds": seconds, "accepted": len(accepted), "bound": round(bound, 1),
        "used": round(len(accepted) / bound, 3) if bound else 0.0, "http_429": throttled,
        "per_process_min_max": [min(made), max(made)],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--max-wait", type=float, default=5.0)
    parser.add_argument("--modes", nargs="+", default=["reserve", "poll"], choices=["reserve", "poll"])
    parser.add_argument("--redis-url", help="use this Redis instead of a private redis-server")
    parser.add_argument("--simulator", action="store_true", help="Amazon's documented buckets, in the simulator")
    parser.add_argument("--operations", nargs="+", default=list(SIM_OPERATIONS), choices=list(SIM_OPERATIONS))
    parser.add_argument("--real-rate", type=float, default=2.0, help="--simulator: calls per real second allowed")
    args = parser.parse_args()
    if args.simulator:
        for operation in args.operations:
            for processes in args.processes:
                result = run_simulator(operation, processes, args.seconds, args.real_rate)
                print(json.dumps(result), flush=True)
        return
    server = None if args.redis_url else _private_redis()
    url = args.redis_url or server.url
    try:
        for mode in args.modes:
            for processes in args.processes:
                result = run(url, processes, args.rate, args.burst, args.seconds, mode, args.max_wait)
                print(json.dumps(result), flush=True)
    finally:
        if server is not None:
            server.kill()


if __name__ == "__main__":
    main()
