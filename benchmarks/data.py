# ruff: noqa: RUF001 - the look-alike non-ASCII characters in product names are the point of them
"""Benchmark: a tab-separated document to Parquet, ours against DuckDB's own COPY and a DictReader loop.

Generates a UTF-8 tab-separated listings document (29 columns as Amazon's all-listings report has them:
text with non-ASCII names, decimal prices, integer quantities, ISO timestamps and dates, booleans, empty
cells, quoted fields) of each ``--sizes-mib``, then runs on the same file, interleaved for ``--rounds``:

- ``ours``: ``spreports.data.convert.convert_file`` with a declared schema of those columns (typed Parquet,
  provenance columns, row numbers, rejected lines counted), as the ``data`` queue's task runs it;
- ``duckdb``: ``COPY (SELECT * FROM read_csv(<file>, delim='\t', header=true)) TO 'x.parquet'`` (DuckDB's
  own sniffer picks the types; both threads of the machine);
- ``dictreader``: ``csv.DictReader`` to JSON lines, the way row-producing connectors hand rows on.

Every run is its own process; its seconds are measured around the conversion inside it (a worker is
long-lived: interpreter start-up is no part of a document's cost), its peak RSS is its own ``VmHWM``.

    .venv/bin/python benchmarks/data.py                              # 256 MiB and 1 GiB, 1 round
    .venv/bin/python benchmarks/data.py --sizes-mib 256 --rounds 3
    .venv/bin/python benchmarks/data.py --sizes-mib 1024 --only ours  # the memory bound alone
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab import machine

from spreports.simulator.formats import LISTINGS_HEADER

CONTENDERS = ("ours", "duckdb", "dictreader")
HEADER = LISTINGS_HEADER
#: The declared type of each column that is not text.
TYPES = {
    "price": "decimal", "quantity": "integer", "open-date": "timestamp", "item-is-marketplace": "boolean",
    "zshop-shipping-fee": "decimal", "item-condition": "integer", "will-ship-internationally": "boolean",
    "zshop-boldface": "boolean", "pending-quantity": "integer",
}  # fmt: skip
NAMES = (
    "Kaffeebecher Edelstahl – 350 ml", "Crème brûlée Set (4 Förmchen)", "Café-Tasse »Größe L«",
    "Lámpara LED de escritorio – señal", "Naïve Art Poster 50×70 cm", "Garden Hose 15 m, green",
    "Stainless Steel Water Bottle 750 ml", '"Premium" HDMI Kabel 2 m', "ステンレス製マグカップ 350ml",
)  # fmt: skip


def _row(rng: random.Random, number: int) -> str:
    name = rng.choice(NAMES)
    quoted = '"' + name.replace('"', '""') + '"' if name.startswith('"') or "\t" in name else name
    values = {
        "item-name": quoted,
        "item-description": rng.choice(("", "Ein Artikel für jeden Tag, robust und leicht.", "A useful thing.")),
        "listing-id": f"{rng.randrange(10**9, 10**10)}",
        "seller-sku": f"SKU-{number:09d}",
        "price": f"{rng.randrange(1, 100000) / 100:.2f}",
        "quantity": str(rng.randrange(0, 500)),
        "open-date": f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:15:00+00:00",
        "image-url": f"https://images.example.com/I/{rng.randrange(10**8)}.jpg",
        "item-is-marketplace": rng.choice(("true", "false")),
        "product-id-type": str(rng.randrange(1, 5)),
        "zshop-shipping-fee": rng.choice(("", "4.99", "0.00")),
        "item-note": rng.choice(("", "Neu, originalverpackt")),
        "item-condition": str(rng.randrange(1, 12)),
        "asin1": f"B0{rng.randrange(10**7, 10**8)}",
        "will-ship-internationally": rng.choice(("true", "false", "")),
        "zshop-boldface": "false",
        "product-id": f"{rng.randrange(10**12, 10**13)}",
        "pending-quantity": str(rng.randrange(0, 5)),
        "fulfillment-channel": rng.choice(("DEFAULT", "AMAZON_EU")),
        "merchant-shipping-group": "Migrated Template",
        "status": rng.choice(("Active", "Inactive")),
    }
    return "\t".join(values.get(column, "") for column in HEADER)


def generate(path: Path, size: int, seed: int = 7) -> int:
    """Write a document of about ``size`` bytes (a pool of distinct rows, repeated with fresh SKUs); its rows."""
    rng = random.Random(seed)
    pool = [_row(rng, n) for n in range(5000)]
    rows = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write("\t".join(HEADER) + "\n")
        written = 0
        while written < size:
            lines = []
            for line in rng.choices(pool, k=10_000):
                rows += 1
                lines.append(line.replace("SKU-", f"SKU-{rows}-", 1))
            chunk = "\n".join(lines) + "\n"
            out.write(chunk)
            written += len(chunk.encode("utf-8"))
    return rows


def run_ours(source: Path, output: Path) -> int:
    # spreports.data first: it picks Arrow's memory pool, which Arrow reads once when it loads.
    from spreports.data.convert import Plan, Provenance, convert_file  # noqa: I001
    from spreports.data.filesystem import DataRoot
    from spreports.data.schemas import DeclaredColumn

    import pyarrow.fs as pafs

    columns = tuple(
        DeclaredColumn(name=h.replace("-", "_"), source=h, type=TYPES.get(h, "string"))  # type: ignore[arg-type]
        for h in HEADER
    )
    plan = Plan("GET_MERCHANT_LISTINGS_ALL_DATA", "tsv", (), columns)
    provenance = Provenance("A1SELLER", "DOC-1", "R1", ("A1PA6795UKMFR9",))
    root = DataRoot(pafs.LocalFileSystem(), str(output.parent), is_s3=False)
    conversion = convert_file(root, str(source), plan, provenance, [output.name])
    return conversion.rows


def run_duckdb(source: Path, output: Path) -> int:
    import duckdb

    connection = duckdb.connect()
    connection.execute(
        f"COPY (SELECT * FROM read_csv('{source}', delim='\t', header=true)) TO '{output}' (FORMAT parquet)"
    )
    rows = connection.execute(f"SELECT count(*) FROM read_parquet('{output}')").fetchone()
    return int(rows[0]) if rows else 0


def run_dictreader(source: Path, output: Path) -> int:
    import csv

    rows = 0
    with source.open(encoding="utf-8", newline="") as lines, output.open("w", encoding="utf-8") as out:
        for row in csv.DictReader(lines, delimiter="\t"):
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            rows += 1
    return rows


def child(contender: str, source: Path, output: Path) -> None:
    """One contender in this process: prints its seconds, rows and peak RSS as JSON."""
    run = {"ours": run_ours, "duckdb": run_duckdb, "dictreader": run_dictreader}[contender]
    started = time.perf_counter()
    rows = run(source, output)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    # VmHWM is this process's own peak; ru_maxrss can carry the forking parent's over exec.
    with open("/proc/self/status") as status:
        peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "rows": rows, "peak_rss_mib": peak_kib / 1024}))


def measure(contender: str, source: Path, workdir: Path) -> dict[str, float]:
    output = workdir / ("out.jsonl" if contender == "dictreader" else "out.parquet")
    output.unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, __file__, "--child", contender, "--input", str(source), "--output", str(output)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    result["output_mib"] = output.stat().st_size / 2**20
    output.unlink()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mib", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", choices=CONTENDERS, nargs="+", default=list(CONTENDERS))
    parser.add_argument("--child", choices=CONTENDERS)
    parser.add_argument("--input", type=Path)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.input, args.output)
        return
    print(f"# {machine(load=True)}")
    with tempfile.TemporaryDirectory(prefix="spreports-data-bench-") as work:
        workdir = Path(work)
        for size in args.sizes_mib:
            source = workdir / f"listings-{size}.txt"
            rows = generate(source, size * 2**20)
            print(f"\n## {size} MiB, {rows} rows ({source.stat().st_size / 2**20:.0f} MiB)")
            results: dict[str, list[dict[str, float]]] = {c: [] for c in args.only}
            for _ in range(args.rounds):
                for contender in args.only:  # interleaved: each round runs every contender once
                    results[contender].append(measure(contender, source, workdir))
                    print(f"  {contender}: {json.dumps(results[contender][-1])}", flush=True)
            medians = {c: statistics.median(r["seconds"] for r in runs) for c, runs in results.items()}
            print(
                f"\n| {size} MiB | seconds (median of {args.rounds}) | MiB/s | peak RSS MiB | output MiB | ours vs it |"
            )
            print("| --- | --- | --- | --- | --- | --- |")
            for contender, runs in results.items():
                seconds = medians[contender]
                ratio = f"{seconds / medians['ours']:.2f}x" if "ours" in medians and contender != "ours" else ""
                peak = max(r["peak_rss_mib"] for r in runs)
                output = runs[-1]["output_mib"]
                print(f"| {contender} | {seconds:.2f} | {size / seconds:.0f} | {peak:.0f} | {output:.0f} | {ratio} |")
            source.unlink()


if __name__ == "__main__":
    main()
