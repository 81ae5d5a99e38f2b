"""Benchmark: the command line's fixed costs, each beside its baseline, in one interleaved run.

1. ``spreports --help`` (the console script) against ``python -c pass`` (the interpreter's own start-up):
   absolute seconds and the ratio. Goal: ``spreports --help`` under 0.25 s.
2. ``spreports reports download --document D --local`` of a tiny document (1 KiB, gzip) against
   ``curl -s -o f`` of a pre-signed URL of the same kind: what a one-off retrieval from the shell costs
   before any byte of a real document matters (interpreter, imports, settings, Redis, the LWA token,
   getReportDocument, the download, fsync and the manifest). With a 1 KiB document the whole run is the
   time to the first byte received plus a few milliseconds, so the whole run is what is timed.
   ``python -c "import ..."`` of the modules the command loads shows how much of that is imports.

The SP-API is the simulator (``spreports.simulator.start_simulator``) in this process, with fresh
credentials (so no token cache of an earlier run applies); Redis is ``--redis-url`` or, by default,
the product's embedded Redis in a temporary data directory (stopped at the end). Every variant runs in
its own process, the variants interleaved round by round (the order rotating); medians are reported.
One warm-up round is not counted (it starts the embedded Redis and caches the LWA token in Redis, as
any earlier command on a machine would have).

    .venv/bin/python benchmarks/cli_startup.py --rounds 21
    .venv/bin/python benchmarks/cli_startup.py --rounds 21 --redis-url redis://127.0.0.1:6379/11
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab import presigned_url, product_env

from spreports.simulator import DocumentSpec, SellerAccount, SimulatorConfig, start_simulator
from spreports.simulator.config import generated_credentials

GOAL_HELP_SECONDS = 0.25
SPEED = 60.0
#: What ``reports download --local`` imports on its way (the rest of its time is I/O).
DOWNLOAD_IMPORTS = (
    "spreports.workers.cli.reports, spreports.workers.cli.common, spreports.settings, spreports.redaction, "
    "spreports.connection, spreports.workers.embedded_redis, spreports.spapi, spreports.documents, spreports.storage"
)


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """Wall seconds of one run of ``argv`` (output discarded); a failure ends the benchmark."""
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} failed ({result.returncode}): {result.stderr.decode()[-1000:]}")
    return seconds


def bench(rounds: int, redis_url: str | None, work: Path) -> dict[str, list[float]]:
    """Run every variant ``rounds`` times, interleaved; return the seconds of each run per variant."""
    python = sys.executable
    spreports = str(Path(python).parent / "spreports")
    if not Path(spreports).exists():
        raise SystemExit(f"{spreports} not found: run with the project's venv (.venv/bin/python)")
    client_id, client_secret = generated_credentials()
    # A seller of its own per run: no token cache or rate-limit state of an earlier run applies.
    seller = SellerAccount(f"A1BENCH{secrets.token_hex(4).upper()}", f"Atzr|{secrets.token_urlsafe(32)}")
    sim = start_simulator(
        SimulatorConfig(
            client_id=client_id,
            client_secret=client_secret,
            sellers=(seller,),
            rate_limits=False,
            # Amazon's getReportDocument quota (burst 15, then one a minute), which our fleet-wide limiter
            # keeps, would stop the rounds after 15 downloads: at 60x the simulator announces one a second
            # (x-amzn-RateLimit-Limit). Token and URL lifetimes stay an hour and five minutes of real time.
            speed=SPEED,
            token_lifetime=3600.0 * SPEED,
            url_lifetime=300.0 * SPEED,
        )
    )
    data_dir = work / "data"
    env = product_env(
        {
            **sim.env(),
            "SPREPORTS_DATA_DIR": str(data_dir),
            "SPREPORTS_STORAGE__URL": str(work / "reports"),
            "SPREPORTS_LOG_LEVEL": "WARNING",
        }
    )
    if redis_url:
        env["SPREPORTS_BROKER_URL"] = redis_url
    out = work / "curl"
    out.mkdir(parents=True, exist_ok=True)
    spec = DocumentSpec(size=1024, gzip=True)

    def presigned() -> str:
        # getReportDocument outside the timing: curl is given the URL, as ours would be by its own call.
        return presigned_url(sim, sim.add_document(spec))

    variants: dict[str, Callable[[], float]] = {
        "python -c pass": lambda: timed([python, "-c", "pass"], env, work),
        "spreports --help": lambda: timed([spreports, "--help"], env, work),
        "python -c 'import <what download loads>'": lambda: timed(
            [python, "-c", f"import click, {DOWNLOAD_IMPORTS}"], env, work
        ),
        "curl -s -o f <pre-signed URL>": lambda: (
            lambda url: timed(["curl", "-s", "--fail", "-o", str(out / "document.gz"), url], env, work)
        )(presigned()),
        "spreports reports download --local (1 KiB)": lambda: timed(
            [spreports, "reports", "download", "--document", sim.add_document(spec), "--local"], env, work
        ),
    }
    runs: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for run in variants.values():  # warm-up: embedded Redis, LWA token, page cache
            run()
        names = list(variants)
        for round_number in range(rounds):
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                runs[name].append(variants[name]())
            print(
                f"round {round_number + 1}: " + ", ".join(f"{n.split(' (')[0]} {runs[n][-1]:.3f}" for n in names),
                file=sys.stderr,
            )
    finally:
        sim.stop()
        if not redis_url:
            from spreports.workers.embedded_redis import EmbeddedRedis

            EmbeddedRedis(data_dir).stop()
    return runs


def report(runs: dict[str, list[float]], rounds: int) -> dict[str, Any]:
    """Print the table and the goal; return the figures."""
    medians = {name: statistics.median(values) for name, values in runs.items()}
    python, helped = medians["python -c pass"], medians["spreports --help"]
    curl = medians["curl -s -o f <pre-signed URL>"]
    ours = medians["spreports reports download --local (1 KiB)"]
    imports = medians["python -c 'import <what download loads>'"]
    print(f"\nmedians of {rounds} interleaved rounds (wall seconds, process start to exit)")
    print("| command | median s | min s |\n|---|---:|---:|")
    for name, values in runs.items():
        print(f"| `{name}` | {medians[name]:.3f} | {min(values):.3f} |")
    print(
        f"\nspreports --help: {helped:.3f} s = {helped / python:.2f}x python -c pass ({python:.3f} s); "
        f"goal < {GOAL_HELP_SECONDS} s  {'MET' if helped < GOAL_HELP_SECONDS else 'NOT MET'}"
    )
    print(
        f"reports download --local (1 KiB): {ours:.3f} s = {ours / curl:.1f}x curl ({curl:.3f} s); "
        f"of it interpreter {python:.3f} s, imports {imports - python:.3f} s, the rest (settings, Redis, LWA, "
        f"getReportDocument, download, fsync, manifest, exit) {ours - imports:.3f} s"
    )
    return {
        "rounds": rounds,
        "medians": medians,
        "help_over_python": helped / python,
        "download_over_curl": ours / curl,
        "goal_help_seconds": GOAL_HELP_SECONDS,
    }


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--redis-url", help="use this Redis instead of the embedded one (e.g. redis://host:6379/11)")
    parser.add_argument("--workdir", type=Path, default=None, help="where data and output go (default: a temp dir)")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        raise SystemExit("curl not found")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="spreports-bench-cli-"))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {load}; Redis: {args.redis_url or 'embedded'}"
    )
    figures = report(bench(args.rounds, args.redis_url, work), args.rounds)
    print(json.dumps(figures))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
