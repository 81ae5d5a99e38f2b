"""The ``data`` extra (pyarrow and DuckDB): whether it is installed, and the one line saying how to get it.

A core install runs every process without it; only what turns documents into rows or queries them
needs it, and says so in one line instead of an ImportError's traceback.
"""

from __future__ import annotations

import importlib.util

from spreports.errors import MissingExtra

#: The modules the extra brings, by import name.
DATA_MODULES = ("pyarrow", "duckdb")


def require_data_extra(purpose: str) -> None:
    """Raise :class:`MissingExtra` (``install spreports[data] to <purpose> ...``) unless the extra is installed."""
    missing = [name for name in DATA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtra(
            f"install spreports[data] to {purpose} ({', '.join(missing)} not installed): pip install 'spreports[data]'"
        )
