"""Memory stays flat: a 48 MiB document converts in its own process under the 200 MiB the 1 GiB one must.

The conversion holds one block of text, its typed copy and one row group at a time, so its peak does not
grow with the document (benchmarks/data.py measures the 1 GiB one); this smaller run keeps the bound
checked in a few seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LIMIT_MIB = 200
CHILD = """
import json, sys
from spreports.data.convert import Plan, Provenance, convert_file
import pyarrow.fs as pafs
from spreports.data.filesystem import DataRoot
from spreports.data.schemas import DeclaredColumn
columns = (
    DeclaredColumn(name="sku", source="sku", type="string"),
    DeclaredColumn(name="title", source="title", type="string"),
    DeclaredColumn(name="price", source="price", type="decimal"),
    DeclaredColumn(name="quantity", source="quantity", type="integer"),
    DeclaredColumn(name="updated", source="updated", type="timestamp"),
    DeclaredColumn(name="active", source="active", type="boolean"),
)
root = DataRoot(pafs.LocalFileSystem(), sys.argv[2], is_s3=False)
done = convert_file(root, sys.argv[1], Plan("GET_T", "tsv", (), columns), Provenance("A1SELLER", "D"), ["out.parquet"])
# VmHWM, this process's own high-water mark: ru_maxrss would carry the forking parent's (pytest's) over exec.
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"rows": done.rows, "peak_mib": peak / 1024}))
"""


def test_a_document_converts_in_flat_memory(tmp_path: Path) -> None:
    source = tmp_path / "doc.txt"
    line = "SKU-{n}\tKaffeebecher Edelstahl 350 ml, ein Artikel für jeden Tag\t{p}.99\t{q}\t2026-11-28T10:15:00+01:00\ttrue\n"
    with source.open("w", encoding="utf-8") as out:
        out.write("sku\ttitle\tprice\tquantity\tupdated\tactive\n")
        rows = 0
        while out.tell() < 48 * 2**20:
            out.write("".join(line.format(n=rows + i, p=i % 500, q=i % 7) for i in range(10_000)))
            rows += 10_000
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(source), str(tmp_path)], check=True, capture_output=True, text=True
    )
    result = json.loads(done.stdout)
    assert result["rows"] == rows
    assert result["peak_mib"] < LIMIT_MIB, result
