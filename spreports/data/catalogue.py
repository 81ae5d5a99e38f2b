"""The catalogue: a DuckDB connection whose views are the stored documents as rows.

Views:

- ``"<REPORT_TYPE>"`` (the full name, quoted) for every dataset that has rows, and its short name:
  the declared one (``listings``), or for a type without a declared schema one derived from the type
  (``GET_FOO_BAR_DATA`` -> ``foo_bar_data``). The files' columns, then ``report_type``, ``seller_id`` and
  ``date`` (the partitions), unless a file column of that name shadows one.
- ``latest_<short name>`` for a dataset whose declared schema has a key: per seller, marketplaces and
  key, the row of the newest document (latest ``_data_end``, then highest ``_report_id``, then the last
  such row of that document), so overlapping and restated windows show each row once. A type without
  a key has no ``latest`` view: nothing says which rows of two documents are the same row.
- ``documents``: every stored document, from the manifests (:mod:`spreports.data.manifests`).

Local rows are read when queried (a document converted after :func:`connect` shows up); the files of
S3 rows and the manifests are listed once, at :func:`connect`. No DuckDB extension is ever downloaded
or loaded on demand: S3 is read through pyarrow (:mod:`spreports.data.arrow_s3`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from spreports.data.datasets import Dataset, find_datasets, quote_identifier, quote_literal
from spreports.data.extra import EXTRA_HINT, missing_extra
from spreports.errors import MissingExtra

if TYPE_CHECKING:
    import duckdb

    from spreports.settings import Settings
    from spreports.storage import Storage

log = logging.getLogger(__name__)

#: Every connection's settings: no extension is installed or loaded behind the user's back (offline deployments).
OFFLINE_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
DOCUMENTS_VIEW = "documents"
LATEST_PREFIX = "latest_"
#: The provenance columns ``latest`` orders and partitions by.
LATEST_NEEDS = ("_seller_id", "_marketplace_ids", "_report_id", "_data_end", "_row_number")


class TableNames(Protocol):
    """What the catalogue needs of a declared table: its short name and its key."""

    @property
    def short_name(self) -> str: ...

    @property
    def key(self) -> tuple[str, ...]: ...


Declared = Callable[[str], TableNames | None]


@dataclass(frozen=True)
class Catalogue:
    """An open catalogue: the connection, and what it found."""

    connection: duckdb.DuckDBPyConnection
    #: The datasets with rows, by full name.
    datasets: tuple[str, ...]
    #: Every view created, in creation order.
    views: tuple[str, ...]
    #: How many documents the manifests list.
    documents: int


def connect(settings: Settings | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection over the stored documents' rows (views per report type, ``latest_*``, ``documents``).

    ``settings`` default to the process's (``SPREPORTS_STORAGE__URL`` names the storage).
    """
    return open_catalogue(settings).connection


def open_catalogue(
    settings: Settings | None = None, *, storage: Storage | None = None, declared: Declared | None = None
) -> Catalogue:
    """The catalogue of ``storage`` (default: the settings' storage); ``declared`` names each dataset's
    declared table (default: the shipped schemas)."""
    missing = missing_extra()
    if missing:
        raise MissingExtra(f"{', '.join(missing)} not installed: {EXTRA_HINT}")
    import duckdb

    from spreports.data.manifests import documents_table, read_manifests

    if storage is None:
        from spreports.settings import load_settings
        from spreports.storage import open_storage

        storage = open_storage(settings or load_settings())
    if declared is None:
        from spreports.data.schemas import table_for

        declared = table_for
    connection = duckdb.connect(":memory:", config=OFFLINE_CONFIG)
    try:
        # Timestamps are stored in UTC: they show in UTC whatever the machine's zone.
        connection.execute("SET TimeZone = 'UTC'")
        # A dataset's footers are read at each query's start (its files' columns are united by name): once per
        # connection is enough (the cache notices a file rewritten since).
        connection.execute("SET parquet_metadata_cache = true")
        datasets = find_datasets(storage, connection)
        views = _create_views(connection, datasets, declared)
        documents = documents_table(read_manifests(storage))
        connection.register("_spreports_documents", documents)
        connection.execute(f"CREATE VIEW {DOCUMENTS_VIEW} AS SELECT * FROM _spreports_documents")
    except BaseException:
        connection.close()
        raise
    return Catalogue(connection, tuple(d.name for d in datasets), (*views, DOCUMENTS_VIEW), documents.num_rows)


def inferred_short_name(dataset: str) -> str:
    """The short name of a dataset without a declared schema: ``GET_FOO_BAR_DATA`` -> ``foo_bar_data``."""
    name = re.sub(r"[^a-z0-9]+", "_", dataset.lower().removeprefix("get_")).strip("_")
    return name if name and not name[0].isdigit() else f"t_{name}"


def _create_views(connection: duckdb.DuckDBPyConnection, datasets: list[Dataset], declared: Declared) -> list[str]:
    views: list[str] = []
    taken = {dataset.name.lower() for dataset in datasets} | {DOCUMENTS_VIEW}
    for dataset in datasets:
        connection.execute(f"CREATE VIEW {quote_identifier(dataset.name)} AS {_select(dataset)}")
        views.append(dataset.name)
    # Declared names first: a derived name never takes a declared one.
    for dataset in sorted(datasets, key=lambda dataset: declared(dataset.name) is None):
        table = declared(dataset.name)
        short = table.short_name if table is not None else inferred_short_name(dataset.name)
        names = [short]
        key = tuple(table.key) if table is not None else ()
        if key and _latest_possible(dataset, key):
            names.append(LATEST_PREFIX + short)
        if any(name in taken for name in names):
            # DuckDB's names are case-insensitive: two datasets may not share one.
            log.warning("dataset %s: view name %s is taken; only its full name is a view", dataset.name, short)
            continue
        taken.update(names)
        connection.execute(f"CREATE VIEW {quote_identifier(short)} AS SELECT * FROM {quote_identifier(dataset.name)}")
        views.append(short)
        if len(names) > 1:
            connection.execute(f"CREATE VIEW {quote_identifier(names[1])} AS {_latest(dataset.name, key)}")
            views.append(names[1])
    return views


def _select(dataset: Dataset) -> str:
    columns = [quote_identifier(column) for column in dataset.columns]
    if "report_type" not in dataset.columns:
        columns.append(f"{quote_literal(dataset.name)} AS report_type")
    columns.extend(quote_identifier(partition) for partition in dataset.partitions)
    return f"SELECT {', '.join(columns)} FROM {dataset.source}"


def _latest_possible(dataset: Dataset, key: tuple[str, ...]) -> bool:
    missing = [column for column in (*LATEST_NEEDS, *key) if column not in dataset.columns]
    if missing:
        log.warning("dataset %s has no column %s: it has no latest view", dataset.name, ", ".join(missing))
    return not missing


def _latest(dataset: str, key: tuple[str, ...]) -> str:
    partition = ", ".join(quote_identifier(column) for column in ("_seller_id", "_marketplace_ids", *key))
    return (
        f"SELECT * FROM {quote_identifier(dataset)} QUALIFY row_number() OVER ("
        f"PARTITION BY {partition} "
        "ORDER BY _data_end DESC NULLS LAST, _report_id DESC NULLS LAST, _row_number DESC) = 1"
    )
