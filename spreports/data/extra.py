"""Whether the ``data`` extra (pyarrow, DuckDB) is installed: a core install runs every process without it.

Only the modules of :mod:`spreports.data` that do the work import pyarrow or DuckDB; everything that
only decides whether to call them asks here first, which imports neither.
"""

from __future__ import annotations

import importlib.util

__all__ = ["EXTRA_HINT", "missing_extra"]

#: The one line a command or a worker says when the extra is missing.
EXTRA_HINT = "install spreports[data] (pip install 'spreports[data]') to turn stored documents into rows"


def missing_extra(*modules: str) -> list[str]:
    """Which of the data extra's modules (pyarrow and duckdb by default) cannot be imported here."""
    return [name for name in modules or ("pyarrow", "duckdb") if importlib.util.find_spec(name) is None]
