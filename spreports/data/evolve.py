"""The dataset schema of a report type: stable across its documents, grown, never broken.

Every document of a report type is written with the dataset schema as it stands when it is converted
(``_data/_schemas/<T>.json``: a list of ``{name, type, amazon_name}``). A column a document brings that the
dataset lacks is appended; a column whose type differs from the dataset's widens to ``string`` (the
document's values are then kept as their text); a column the document lacks is null in its file. Earlier
files keep the schema they were written with, so readers combine files by name (``union_by_name``).

Two documents of one type converted at the same moment may each add a column and one addition be lost
from the JSON file: the columns are still in their Parquet files (readers go by name), and the next
conversion that meets the column adds it again.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from spreports.data.schemas import ColumnType

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["DatasetColumn", "arrow_schema", "from_json", "merge", "normalise_name", "to_json", "unique_names"]

AMAZON_NAME = b"amazon_name"


@dataclass(frozen=True)
class DatasetColumn:
    """One column of a dataset: its normalised name, its type and Amazon's own name for it."""

    name: str
    type: ColumnType
    amazon_name: str


def merge(existing: list[DatasetColumn], incoming: list[DatasetColumn]) -> list[DatasetColumn]:
    """The dataset schema once a document's columns are in: new ones appended, conflicting ones ``string``."""
    merged = {column.name: column for column in existing}
    for column in incoming:
        known = merged.get(column.name)
        if known is None:
            merged[column.name] = column
        elif known.type != column.type and known.type != "string":
            merged[column.name] = DatasetColumn(known.name, "string", known.amazon_name)
    return list(merged.values())


def normalise_name(amazon_name: str) -> str:
    """Amazon's header or field path as a snake_case column name (``item-price`` -> ``item_price``)."""
    text = unicodedata.normalize("NFKD", amazon_name).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)  # camelCase fields of the JSON reports
    name = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if not name:
        name = "column"
    return f"c_{name}" if name[0].isdigit() else name


def unique_names(names: list[str]) -> list[str]:
    """``names`` with repeats suffixed (``sku``, ``sku_2``): a document may repeat a header."""
    seen: dict[str, int] = {}
    unique: list[str] = []
    for name in names:
        count = seen.get(name, 0) + 1
        seen[name] = count
        unique.append(name if count == 1 else f"{name}_{count}")
    return unique


def to_json(columns: list[DatasetColumn]) -> bytes:
    """The dataset schema file's content."""
    body = [{"name": c.name, "type": c.type, "amazon_name": c.amazon_name} for c in columns]
    return (json.dumps(body, indent=2) + "\n").encode("utf-8")


def from_json(data: bytes) -> list[DatasetColumn]:
    """The columns of a dataset schema file."""
    return [DatasetColumn(item["name"], item["type"], item["amazon_name"]) for item in json.loads(data)]


def arrow_schema(columns: list[DatasetColumn]) -> pa.Schema:
    """The Arrow fields of the data columns, Amazon's name in each field's metadata."""
    import pyarrow as pa

    from spreports.data.parse import ARROW_TYPES

    return pa.schema(
        [pa.field(c.name, ARROW_TYPES[c.type], metadata={AMAZON_NAME: c.amazon_name.encode("utf-8")}) for c in columns]
    )
