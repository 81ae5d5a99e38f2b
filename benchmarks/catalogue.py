"""The catalogue (``spreports.data.connect``, ``spreports data sql``) against DuckDB reading the same files itself.

A local storage gets ``--documents`` Parquet files of ``--rows`` listings rows each (the dataset layout,
provenance columns included; every other document restates its predecessor's window) and
``--manifests`` manifests in the index. Each round, interleaved:

- ``connect``: :func:`~spreports.data.catalogue.open_catalogue` (lists datasets, reads footers, builds the
  views, reads every manifest);
- ``group by``: ``SELECT _seller_id, count(*), sum(price) ... GROUP BY 1`` through the ``listings`` view vs
  DuckDB's ``read_parquet(glob, union_by_name = true)`` on a fresh connection;
- ``latest``: ``SELECT count(*) FROM latest_listings`` (one row per seller, marketplaces and SKU);
- ``csv``: ``spreports data sql "SELECT * FROM listings" --format csv > /dev/null`` vs DuckDB's own
  ``COPY (SELECT * FROM read_parquet(...)) TO '/dev/stdout' (FORMAT csv)``, each a process of its own:
  wall time and peak RSS; and ``spreports data sql "SELECT 1"``, the command's fixed cost.

Usage: ``.venv/bin/python benchmarks/catalogue.py --documents 40 --rows 50000 --manifests 5000 --rounds 5``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab import machine  # noqa: E402

from spreports.data.catalogue import open_catalogue  # noqa: E402
from spreports.storage import LocalStorage  # noqa: E402

TYPE = "GET_MERCHANT_LISTINGS_ALL_DATA"
SELLERS = 10


def make_dataset(root: Path, documents: int, rows: int, manifests: int) -> Path:
    """Write the files and manifests; return the dataset folder."""
    folder = root / "_data" / f"report_type={TYPE}"
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for number in range(documents):
        seller = f"A{number % SELLERS:02d}SELLER"
        window = number // 2  # two documents per window: the second restates the first
        end = start + timedelta(days=window)
        table = pa.table(
            {
                "seller_sku": pa.array([f"SKU{n % (rows // 2)}" for n in range(rows)]),
                "item_name": pa.array([f"An item of listing {n}, document {number}" for n in range(rows)]),
                "price": pa.array([Decimal(n % 10_000) / 100 for n in range(rows)], pa.decimal128(38, 6)),
                "quantity": pa.array([n % 97 for n in range(rows)], pa.int64()),
                "_seller_id": pa.array([seller] * rows),
                "_marketplace_ids": pa.array([["ATVPDKIKX0DER"]] * rows, pa.list_(pa.string())),
                "_report_id": pa.array([f"{5000 + number}"] * rows),
                "_report_document_id": pa.array([f"DOC{number}"] * rows),
                "_data_start": pa.array([end - timedelta(days=1)] * rows, pa.timestamp("us", tz="UTC")),
                "_data_end": pa.array([end] * rows, pa.timestamp("us", tz="UTC")),
                "_row_number": pa.array(range(2, rows + 2), pa.int64()),
            }
        )
        target = folder / f"seller_id={seller}" / f"date={end.date().isoformat()}" / f"DOC{number}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, target, row_group_size=65_536)
    for number in range(manifests):
        seller = f"A{number % SELLERS:02d}SELLER"
        index = root / "_index" / seller
        index.mkdir(parents=True, exist_ok=True)
        manifest = {"seller_id": seller, "report_document_id": f"DOC{number}", "report_type": TYPE,
                    "sha256": "0" * 64, "bytes_in": 1, "bytes_out": 2, "stored_at": start.isoformat(),
                    "report": {"marketplaceIds": ["ATVPDKIKX0DER"], "dataEndTime": start.isoformat()},
                    "data": {"rows": rows, "rows_rejected": 0, "values_unparsed": 0, "schema": "declared"}}  # fmt: skip
        (index / f"DOC{number}.manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def in_process(root: Path, files: str, *, swap: bool) -> dict[str, float]:
    """One round of the in-process figures: connect, then the two group-bys (in either order), then latest."""
    group = "SELECT _seller_id, count(*), sum(price) FROM {} GROUP BY 1"
    figures = {}
    started = time.perf_counter()
    catalogue = open_catalogue(storage=LocalStorage(root))
    figures["connect"] = time.perf_counter() - started
    view = ("group by, view", lambda: catalogue.connection.sql(group.format("listings")).fetchall())
    raw = (
        "group by, duckdb",
        lambda: duckdb.connect().sql(group.format(f"read_parquet({files}, union_by_name = true)")).fetchall(),
    )
    for name, action in (raw, view) if swap else (view, raw):
        figures[name] = timed(action)
    figures["latest"] = timed(lambda: catalogue.connection.sql("SELECT count(*) FROM latest_listings").fetchall())
    catalogue.connection.close()
    return figures


def run_process(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one process, its stdout to /dev/null.

    The peak comes from /usr/bin/time, a small parent: a child forked from this process would count this
    process's own memory (the dataset just written) as its peak.
    """
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        done = subprocess.run(["/usr/bin/time", "-f", "%M", *args], stdout=sink, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{args[:3]} failed: {done.stderr.decode()[-300:]}")
    return elapsed, int(done.stderr.decode().split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=40)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--manifests", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="spreports-catalogue-") as temp:
        root = Path(temp)
        folder = make_dataset(root, options.documents, options.rows, options.manifests)
        files = f"'{folder}/*/*/*.parquet'"
        env = {**os.environ, "SPREPORTS_STORAGE__URL": str(root), "SPREPORTS_DATA_DIR": str(root / "state")}
        product_csv = [sys.executable, "-m", "spreports.workers.cli", "data", "sql", "SELECT * FROM listings",
                       "--format", "csv"]  # fmt: skip
        # The command's fixed cost: start, settings, the catalogue (footers, manifests), one row.
        product_one = [*product_csv[:5], "SELECT 1", "--format", "csv"]
        copy = f"COPY (SELECT * FROM read_parquet({files}, union_by_name = true)) TO '/dev/stdout' (FORMAT csv)"
        duckdb_csv = [sys.executable, "-c", f"import duckdb; duckdb.connect().execute({copy!r})"]
        figures: dict[str, list[float]] = {}
        for round_number in range(options.rounds):
            for name, seconds in in_process(root, files, swap=bool(round_number % 2)).items():
                figures.setdefault(name, []).append(seconds)
            pair = [("csv, product", product_csv), ("csv, duckdb", duckdb_csv), ("select 1, product", product_one)]
            for name, args in pair if round_number % 2 == 0 else reversed(pair):
                seconds, rss = run_process(args, env)
                figures.setdefault(name, []).append(seconds)
                figures.setdefault(f"{name} RSS MiB", []).append(rss)
        total = options.documents * options.rows
        print(f"# {machine(load=True)}")
        print(f"{options.documents} files x {options.rows} rows = {total:,} rows, {options.manifests} manifests, "
              f"{options.rounds} rounds (medians)")  # fmt: skip
        for name, values in figures.items():
            print(f"  {name:<24} {statistics.median(values):8.3f}")
        view = statistics.median(figures["group by, view"])
        raw = statistics.median(figures["group by, duckdb"])
        csv = statistics.median(figures["csv, product"])
        own = statistics.median(figures["csv, duckdb"])
        print(f"  group by: view {raw / view:.2f}x DuckDB's own; csv: {own / csv:.2f}x DuckDB's COPY")


if __name__ == "__main__":
    main()
