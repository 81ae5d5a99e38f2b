"""Documents as data: typed Parquet twins of stored documents, their schemas and the SQL catalogue.

``spreports.data.connect()`` gives a DuckDB connection over every stored document's rows (see
:mod:`spreports.data.catalogue`). pyarrow and DuckDB come with the ``data`` extra; importing this
package does not need them.

Only the modules of this package import pyarrow (the ``data`` extra), and this package's import comes
first: Arrow reads ``ARROW_DEFAULT_MEMORY_POOL`` once, when it loads, so its pool is chosen here. jemalloc
hands freed memory back to the system; with Arrow's default (mimalloc) the memory the Parquet writer
thread frees stays with the process, and a 1 GiB document peaked ~40 MiB higher (benchmarks/README.md).
A deployment that sets the variable itself keeps its choice.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spreports.data.catalogue import connect

os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")

__all__ = ["connect"]


def __getattr__(name: str) -> Any:
    # Every worker imports this package (its task module asks whether the extra is installed): the
    # catalogue and the storage modules it reads load when `connect` is first used, not at start-up.
    if name == "connect":
        from spreports.data.catalogue import connect

        return connect
    raise AttributeError(f"module 'spreports.data' has no attribute {name!r}")
