"""Benchmark: document retrieval throughput and peak RSS, ours against command-line and in-memory baselines.

Generates a tab-separated Cp1252 report with non-ASCII text, gzips it, serves it on loopback from a
sendfile-based static server in a subprocess, and runs, interleaved for N rounds (medians reported):

- ``ours (as is)``: spreports' pipeline storing the decompressed bytes as they are (fsync + rename included)
- ``ours (UTF-8)``: the same, transcoding Cp1252 to UTF-8
- ``curl | igzip -dc > f`` and ``curl | igzip -dc | uconv -f cp1252 -t UTF-8 > f``
- ``in-memory``: ``requests.get(url).content`` + ``gzip.decompress`` + write (skipped for the big size)

Every approach runs in its own process; peak RSS is that process tree's ``ru_maxrss`` from ``wait4``
(for a shell pipeline: its largest member). Throughput is output bytes / seconds, the seconds measured
around the retrieval inside our process (a worker is long-lived, so interpreter start-up is not part of a
document's cost) and around the whole pipeline for the shell commands.

    .venv/bin/python benchmarks/retrieval.py                 # 256 MiB, 3 rounds
    .venv/bin/python benchmarks/retrieval.py --rounds 5 --big  # plus a 2 GiB RSS check of our pipeline
    .venv/bin/python benchmarks/retrieval.py --size-mib 2048 --rounds 1 --ours-only

``--processes`` adds whole processes against the simulator (getReportDocument, then the download from
its pre-signed URL, a Cp1252 document of each ``--process-sizes-mib``): a real worker
(``spreports worker -c 1``; seconds from queueing the task to its result; peak = the pool process's
VmHWM, reset before each document) and ``spreports reports download --local`` (seconds from start to
exit; peak = its VmHWM), each as is and transcoded to UTF-8, beside ``curl | igzip -dc`` and
``curl | igzip -dc | uconv`` of a pre-signed URL of the same document. ``--processes-only`` skips the
static-server table.

    .venv/bin/python benchmarks/retrieval.py --processes-only --process-sizes-mib 256 1024 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORDS = ["Café", "Größe", "naïve", "crème", "brûlée", "Señor", "Ærø", "façade", "Müller", "Zürich", "œuvre",
         "„Angebot“", "\u2013", "€", "™", "Spielwaren", "Kinder", "Garten", "Küche", "Schuhe", "bleu", "rouge",
         "grün", "Ñandú", "jalapeño", "smörgåsbord", "déjà", "vu", "cliché", "Straße"]  # fmt: skip


# --- data ------------------------------------------------------------------------------------------


def generate(path: Path, size: int, seed: int = 1) -> Path:
    """Write ``size`` bytes (about) of a Cp1252 TSV report, gzipped (level 6), to ``path``; return it."""
    rng = random.Random(seed)
    header = "sku\titem-name\tdescription\tprice\tquantity\topen-date\tasin\tfulfillment\tstatus\n"
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    written = 0
    with path.open("wb") as out:
        out.write(compressor.compress(header.encode("cp1252")))
        row = 0
        while written < size:
            lines = []
            for _ in range(4000):
                row += 1
                name = " ".join(rng.choices(WORDS, k=3))
                description = " ".join(rng.choices(WORDS, k=rng.randint(4, 12)))
                lines.append(
                    f"SKU-{row:09d}\t{name}\t{description}\t{rng.randint(99, 99999) / 100:.2f}\t"
                    f"{rng.randint(0, 900)}\t2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}\t"
                    f"B0{rng.randrange(16**8):08X}\t{rng.choice(('DEFAULT', 'AMAZON_EU'))}\t"
                    f"{rng.choice(('Active', 'Inactive'))}\n"
                )
            block = "".join(lines).encode("cp1252")[: size - written]
            written += len(block)
            out.write(compressor.compress(block))
        out.write(compressor.flush())
    return path


# --- static server (subprocess) ---------------------------------------------------------------------


def serve(directory: str, port_file: str) -> None:
    """A threaded static file server answering with sendfile (zero-copy): never the bottleneck."""
    root = Path(directory)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = root / self.path.split("?", 1)[0].lstrip("/")
            size = path.stat().st_size
            self.send_response(200)
            self.send_header("Content-Type", "text/plain;charset=Cp1252")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            self.wfile.flush()
            with path.open("rb") as source:
                self.connection.sendfile(source)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


# --- the approaches (each its own process) ----------------------------------------------------------


def run_ours(url: str, out_dir: str, transcode: str) -> None:
    """Our pipeline in this process; prints {"seconds", "bytes"} as JSON."""
    from pydantic import SecretStr

    from spreports.documents import DocumentRequest, RetrievalOptions, prepare_process, retrieve_document
    from spreports.storage import LocalStorage

    prepare_process()  # as a worker does when it starts

    class Located:
        report_document_id = "BENCH"
        url = SecretStr("")
        compression_algorithm = "GZIP"

    located = Located()
    located.url = SecretStr(url)
    origin = url.split("/", 3)
    options = RetrievalOptions(allowed_hosts=[f"{origin[0]}//{origin[2]}"], transcode=transcode == "utf8")
    request = DocumentRequest(seller_id="BENCH", report_document_id="BENCH", report_type="GET_BENCH")
    started = time.perf_counter()
    result = retrieve_document(request, locate=lambda: located, storage=LocalStorage(Path(out_dir)), options=options)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "bytes": result.manifest.bytes_out}))


def run_in_memory(url: str, out_dir: str) -> None:
    """The common approach: the whole body, then the whole document, in memory."""
    import gzip

    import requests

    started = time.perf_counter()
    data = gzip.decompress(requests.get(url, timeout=60).content)
    Path(out_dir, "in-memory.txt").write_bytes(data)
    print(json.dumps({"seconds": time.perf_counter() - started, "bytes": len(data)}))


def measure(command: list[str], *, shell_output: Path | None = None) -> dict[str, float]:
    """Run a command; return seconds, output bytes and peak RSS (MiB) of its process tree."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=ROOT)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{command[:4]} failed with {process.returncode}")
    rss_mib = usage.ru_maxrss / 1024
    if shell_output is not None:
        return {"seconds": seconds, "bytes": shell_output.stat().st_size, "rss_mib": rss_mib}
    reported = json.loads(output)
    return {"seconds": reported["seconds"], "bytes": reported["bytes"], "rss_mib": rss_mib}


def approaches(url: str, out: Path, in_memory: bool) -> dict[str, Any]:
    """name -> a zero-argument function measuring one run."""
    me = [sys.executable, str(Path(__file__).resolve())]
    curl = f"curl -s --fail '{url}'"
    table: dict[str, Any] = {
        "ours (as is)": lambda: measure([*me, "run", url, str(out / "ours"), "raw"]),
        "ours (UTF-8)": lambda: measure([*me, "run", url, str(out / "ours"), "utf8"]),
        "curl | igzip -dc": lambda: measure(
            ["bash", "-c", f"set -o pipefail; {curl} | igzip -dc > {out}/igzip.txt"], shell_output=out / "igzip.txt"
        ),
        "curl | igzip -dc | uconv": lambda: measure(
            ["bash", "-c", f"set -o pipefail; {curl} | igzip -dc | uconv -f cp1252 -t UTF-8 > {out}/uconv.txt"],
            shell_output=out / "uconv.txt",
        ),
    }
    if in_memory:
        table["in-memory (requests + gzip)"] = lambda: measure([*me, "memory", url, str(out)])
    return table


def bench(
    size: int, rounds: int, work: Path, *, in_memory: bool, only_ours: bool = False
) -> dict[str, dict[str, float]]:
    """Generate, serve and measure; return medians per approach."""
    from lab import wait_for  # not at the top: the measured `run` and `memory` processes are this script

    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    source = data / f"report-{size}.tsv.gz"
    if not source.exists():
        print(f"generating {size / 2**20:.0f} MiB ...", file=sys.stderr)
        generate(source, size)
    port_file = work / "port"
    port_file.unlink(missing_ok=True)
    server = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "serve", str(data), str(port_file)])
    try:
        port = wait_for(lambda: port_file.exists() and port_file.read_text(), 60, "the static server's port", 0.05)
        url = f"http://127.0.0.1:{port}/{source.name}"
        out = work / "out"
        table = approaches(url, out, in_memory)
        if only_ours:
            table = {k: v for k, v in table.items() if k.startswith("ours")}
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in table}
        for round_number in range(rounds):
            for name, run in table.items():
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir(parents=True)
                # No run may pay for the previous one's dirty pages (the shell pipelines do not fsync).
                os.sync()
                runs[name].append(run())
                last = runs[name][-1]
                print(f"round {round_number + 1} {name:30s} {last['bytes'] / last['seconds'] / 1e6:8.0f} MB/s "
                      f"{last['rss_mib']:6.0f} MiB", file=sys.stderr)  # fmt: skip
        shutil.rmtree(out, ignore_errors=True)
    finally:
        server.kill()
        server.wait()
    return {
        name: {
            "mb_per_s": statistics.median(r["bytes"] / r["seconds"] / 1e6 for r in results),
            "rss_mib": statistics.median(r["rss_mib"] for r in results),
            "bytes": results[0]["bytes"],
        }
        for name, results in runs.items()
    }


# --- whole processes against the simulator: a worker task, `spreports reports download --local` --------


class PeakWatch:
    """The largest VmHWM of any process of a process tree while it runs (sampled every 50 ms).

    ``ru_maxrss`` from ``wait4`` cannot serve here: a child forked from this process, which holds the
    simulator, starts from this process's own high-water mark; VmHWM begins afresh at ``exec``.
    """

    def __init__(self, pgid: int) -> None:
        import threading

        self.pgid, self.peak_kib = pgid, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        # Only the tree under the root is read (a few files a sweep): this thread shares the GIL with the
        # simulator serving the download.
        while not self._done.wait(0.05):
            pending = [self.pgid]
            while pending:
                pid = pending.pop()
                try:
                    pending += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
                    status = Path(f"/proc/{pid}/status").read_text()
                    hwm = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
                    self.peak_kib = max(self.peak_kib, int(hwm.split()[1]))
                except (OSError, StopIteration, ValueError):
                    pass  # the process ended meanwhile

    def stop(self) -> float:
        """Stop watching; the peak in MiB."""
        self._done.set()
        self._thread.join()
        return self.peak_kib / 1024


def measure_whole(command: list[str], env: dict[str, str], shell_output: Path | None = None) -> dict[str, float]:
    """Wall seconds of a whole process or pipeline (start-up included), its output bytes, its peak VmHWM."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=errors, cwd=ROOT, env=env, start_new_session=True
        )
        watch = PeakWatch(process.pid)
        assert process.stdout is not None
        output = process.stdout.read()
        process.wait()
        seconds = time.perf_counter() - started
        peak = watch.stop()
        if process.returncode != 0:
            errors.seek(0)
            raise SystemExit(f"{command[:4]} failed with {process.returncode}: {errors.read().decode()[-800:]}")
    if shell_output is not None:
        return {"seconds": seconds, "bytes": shell_output.stat().st_size, "rss_mib": peak}
    summary = json.loads(output.decode().split("\n", 1)[1])  # "stored at ...", then the summary
    return {"seconds": seconds, "bytes": summary["bytes_out"], "rss_mib": peak}


class TaskWorker:
    """A real ``spreports worker -c 1`` consuming one queue, with transcoding on or off; it stays up all run."""

    def __init__(self, queue: str, env: dict[str, str], work: Path) -> None:
        from lab import start_worker

        self.queue = queue
        self.process = start_worker(queue, queue, 1, env, work)

    def child(self) -> int:
        """The pool process that runs the tasks."""
        from lab import wait_for

        def first_child() -> int | None:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
            return int(children[0]) if children else None

        return wait_for(first_child, 60, f"worker {self.queue}'s pool process")

    def run(self, app: Any, seller: str, document_id: str) -> dict[str, float]:
        """One document as a task: seconds from queueing to the result, the pool process's peak RSS."""
        from spreports import names

        child = self.child()
        Path(f"/proc/{child}/clear_refs").write_text("5")  # reset VmHWM: this document's peak only
        started = time.perf_counter()
        result = app.send_task(
            names.RETRIEVE_REPORT_DOCUMENT, kwargs={"seller_id": seller, "report_document_id": document_id},
            queue=self.queue,
        ).get(timeout=3600)  # fmt: skip
        seconds = time.perf_counter() - started
        status = Path(f"/proc/{child}/status").read_text()
        hwm = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
        return {"seconds": seconds, "bytes": result["bytes_out"], "rss_mib": hwm / 1024}

    def stop(self) -> None:
        """SIGTERM the worker's process group (SIGKILL after a minute)."""
        from lab import stop

        stop(self.process, timeout=60)


def bench_processes(size: int, rounds: int, work: Path) -> dict[str, dict[str, float]]:
    """The simulator serves a Cp1252 document of ``size``; the shell pipelines fetch the same document."""
    import secrets

    from lab import RedisProcess, presigned_url, product_env

    from spreports.settings import Settings
    from spreports.simulator import DocumentSpec, SellerAccount, SimulatorConfig, start_simulator
    from spreports.simulator.config import generated_credentials
    from spreports.workers.producers import app_for

    speed = 60.0  # our limiter keeps getReportDocument's burst 15 then one a minute: at 60x, one a second
    client_id, client_secret = generated_credentials()
    seller = SellerAccount(f"A1RETR{secrets.token_hex(4).upper()}", f"Atzr|{secrets.token_urlsafe(32)}")
    sim = start_simulator(SimulatorConfig(
        client_id=client_id, client_secret=client_secret, sellers=(seller,), rate_limits=False, speed=speed,
        token_lifetime=3600 * speed, url_lifetime=300 * speed,
    ))  # fmt: skip
    server = RedisProcess(work / "redis").start()
    url = server.url
    env = product_env(sim.env())
    env |= {"SPREPORTS_BROKER_URL": url, "SPREPORTS_DATA_DIR": str(work / "state"), "SPREPORTS_LOG_LEVEL": "WARNING",
            "SPREPORTS_STORAGE__URL": str(work / "out" / "stored")}  # fmt: skip
    as_is, utf8 = env | {"SPREPORTS_DOCUMENTS__TRANSCODE": "false"}, env | {"SPREPORTS_DOCUMENTS__TRANSCODE": "true"}
    workers = {"raw": TaskWorker("retrieval-raw", as_is, work), "utf8": TaskWorker("retrieval-utf8", utf8, work)}
    app = app_for(Settings(broker_url=url))
    spec = DocumentSpec(size=size, charset="Cp1252", gzip=True)
    spreports = str(Path(sys.executable).parent / "spreports")

    def presigned() -> str:  # getReportDocument outside the timing, as curl is handed a URL
        return presigned_url(sim, sim.add_document(spec))

    out = work / "out"
    curl = "curl -s --fail"
    table: dict[str, Any] = {
        "`reports download --local` (as is)": lambda: measure_whole(
            [spreports, "reports", "download", "--document", sim.add_document(spec), "--local"], as_is),
        "`reports download --local` (UTF-8)": lambda: measure_whole(
            [spreports, "reports", "download", "--document", sim.add_document(spec), "--local"], utf8),
        "worker task (as is)": lambda: workers["raw"].run(app, seller.seller_id, sim.add_document(spec)),
        "worker task (UTF-8)": lambda: workers["utf8"].run(app, seller.seller_id, sim.add_document(spec)),
        "curl | igzip -dc": lambda: measure_whole(
            ["bash", "-c", f"set -o pipefail; {curl} '{presigned()}' | igzip -dc > {out}/igzip.txt"], env,
            shell_output=out / "igzip.txt"),
        "curl | igzip -dc | uconv": lambda: measure_whole(
            ["bash", "-c", f"set -o pipefail; {curl} '{presigned()}' | igzip -dc | uconv -f cp1252 -t UTF-8 "
             f"> {out}/uconv.txt"], env, shell_output=out / "uconv.txt"),
    }  # fmt: skip
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in table}
    try:
        for round_number in range(rounds + 1):  # round 0 warms up (Redis, LWA token, imports), not counted
            for name, run in table.items():
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir(parents=True)
                os.sync()
                result = run()
                if round_number:
                    runs[name].append(result)
                print(f"round {round_number} {name:36s} {result['bytes'] / result['seconds'] / 1e6:8.0f} MB/s "
                      f"{result['rss_mib']:6.0f} MiB", file=sys.stderr)  # fmt: skip
    finally:
        for worker in workers.values():
            worker.stop()
        sim.stop()
        server.kill()
        shutil.rmtree(out, ignore_errors=True)
    return {
        name: {
            "mb_per_s": statistics.median(r["bytes"] / r["seconds"] / 1e6 for r in results),
            "rss_mib": statistics.median(r["rss_mib"] for r in results),
            "bytes": results[0]["bytes"],
        }
        for name, results in runs.items()
    }


def report_processes(size: int, medians: dict[str, dict[str, float]], rounds: int) -> None:
    """Print the whole-process table and its ratios."""
    print(f"\n{size / 2**20:.0f} MiB Cp1252 document from the simulator, medians of {rounds} interleaved rounds")
    print("| approach | MB/s out | peak RSS |\n|---|---:|---:|")
    for name, row in medians.items():
        print(f"| {name} | {row['mb_per_s']:.0f} | {row['rss_mib']:.0f} MiB |")
    igzip, uconv = medians["curl | igzip -dc"]["mb_per_s"], medians["curl | igzip -dc | uconv"]["mb_per_s"]
    for name, row in medians.items():
        if not name.startswith("curl"):
            base, label = (uconv, "curl|igzip|uconv") if "UTF-8" in name else (igzip, "curl|igzip")
            print(f"{name}: {row['mb_per_s'] / base:.2f}x {label}")


def report(size: int, medians: dict[str, dict[str, float]], rounds: int) -> None:
    """Print the table and the goals."""
    print(f"\n{size / 2**20:.0f} MiB Cp1252 TSV, medians of {rounds} interleaved rounds")
    print("| approach | MB/s out | peak RSS |\n|---|---:|---:|")
    for name, row in medians.items():
        print(f"| {name} | {row['mb_per_s']:.0f} | {row['rss_mib']:.0f} MiB |")
    if "curl | igzip -dc" in medians and "ours (as is)" in medians:
        raw = medians["ours (as is)"]["mb_per_s"] / medians["curl | igzip -dc"]["mb_per_s"]
        utf8 = medians["ours (UTF-8)"]["mb_per_s"] / medians["curl | igzip -dc | uconv"]["mb_per_s"]
        print(f"\nstored as is: {raw:.2f}x curl|igzip (goal >= 0.7)  {'MET' if raw >= 0.7 else 'NOT MET'}")
        print(f"UTF-8:        {utf8:.2f}x curl|igzip|uconv (goal >= 1.0)  {'MET' if utf8 >= 1.0 else 'NOT MET'}")
    peak = max(medians[name]["rss_mib"] for name in medians if name.startswith("ours"))
    print(f"our peak RSS: {peak:.0f} MiB (goal < 100)  {'MET' if peak < 100 else 'NOT MET'}")


def main() -> None:
    """Command line."""
    if len(sys.argv) > 1 and sys.argv[1] in ("serve", "run", "memory"):
        command, *rest = sys.argv[1:]
        {"serve": serve, "run": run_ours, "memory": run_in_memory}[command](*rest)  # type: ignore[operator]
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=256, help="uncompressed document size (default 256)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--big", action="store_true", help="also check our RSS on a 2 GiB document")
    parser.add_argument("--ours-only", action="store_true", help="measure only our pipeline (RSS checks)")
    parser.add_argument(
        "--processes",
        action="store_true",
        help="also: a worker task and `spreports reports download --local` against the simulator",
    )
    parser.add_argument("--processes-only", action="store_true", help="only the --processes tables")
    parser.add_argument(
        "--process-sizes-mib", type=int, nargs="+", default=[256, 1024], help="document sizes of the --processes tables"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="where data and output go (default: a temp dir)")
    args = parser.parse_args()
    for tool in ("curl", "igzip", "uconv"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found (igzip: apt-get install -y isal; uconv: icu-devtools)")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="spreports-bench-"))
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    size = args.size_mib * 2**20
    if not args.processes_only:
        medians = bench(size, args.rounds, work, in_memory=not args.ours_only, only_ours=args.ours_only)
        report(size, medians, args.rounds)
    if args.processes or args.processes_only:
        for mib in args.process_sizes_mib:
            report_processes(mib * 2**20, bench_processes(mib * 2**20, args.rounds, work), args.rounds)
    if args.big:
        big = 2 * 2**30
        report(big, bench(big, 1, work, in_memory=False, only_ours=True), 1)
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
