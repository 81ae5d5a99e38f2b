"""The declared schemas: one TOML file per report type in ``spreports/data/schemas/``, loaded and checked here.

A schema names the rows a report type's documents hold: the document's format (``tsv``, ``json`` or
``xml``), where its records are (``record_path``), the key of a row for the ``latest`` views and, per
column, the normalised name, Amazon's own name (``source``), the type and, where Amazon does not write
ISO 8601, the strptime ``format`` (or a list of them, tried in order, for a column that marketplaces
write differently). A JSON document with two record lists (Sales and Traffic by date and by ASIN) adds
``[[tables]]``: further tables from the same document, each under a dataset name of its own.

The files are data, read with :mod:`tomllib` and held to the models below; a file that breaks a rule is
one :class:`~spreports.errors.SchemaError` naming the file and, where it is about one, the column. This
module imports nothing heavy (the simulator reads the same files through it).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from spreports.errors import SchemaError

__all__ = [
    "SCHEMA_DIR",
    "ColumnType",
    "DeclaredColumn",
    "DeclaredSchema",
    "DeclaredTable",
    "all_schemas",
    "all_tables",
    "load_schema",
    "load_schemas",
    "schema_for",
    "table_for",
]

SCHEMA_DIR = Path(__file__).with_name("schemas")

ColumnType = Literal["string", "integer", "decimal", "boolean", "date", "timestamp", "float"]
DocumentFormat = Literal["tsv", "json", "xml"]

_SNAKE = r"^[a-z][a-z0-9_]*$"
_DATASET = r"^[A-Z][A-Z0-9_]*$"
# strptime directives a declared format may use: enough for every way Amazon writes a date, and no more,
# so that a directive no date needs (``%Q``, ``%x``) is caught when the file is read, not at conversion.
_DIRECTIVES = set("dmyYHIMSpfzZbBaAj%")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DeclaredColumn(_Model):
    """One column: its normalised ``name``, Amazon's ``source`` name or path, its ``type`` and ``format``."""

    name: str = Field(pattern=_SNAKE, max_length=63)
    source: str = Field(min_length=1)
    type: ColumnType
    format: tuple[str, ...] | None = None

    @field_validator("format", mode="before")
    @classmethod
    def _one_or_more(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _format_fits_the_type(self) -> DeclaredColumn:
        if self.format is None:
            return self
        if self.type not in ("date", "timestamp"):
            raise ValueError(f"a format is for dates and timestamps, not for a {self.type}")
        for pattern in self.format:
            unknown = set(re.findall(r"%(.)", pattern)) - _DIRECTIVES
            if not pattern or unknown:
                raise ValueError(f"format {pattern!r} is no strptime pattern Amazon's dates need")
        return self


class DeclaredTable(_Model):
    """The rows of one dataset: where its records are in the document, its key and its columns."""

    dataset: str = Field(pattern=_DATASET)
    short_name: str = Field(pattern=_SNAKE, max_length=63)
    record_path: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    columns: tuple[DeclaredColumn, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _names_are_unique_and_keys_known(self) -> DeclaredTable:
        _check_columns(self.columns, self.key)
        return self

    def column(self, name: str) -> DeclaredColumn:
        """The column of that normalised name (KeyError when there is none)."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


class _ExtraTable(DeclaredTable):
    record_path: tuple[str, ...] = Field(min_length=1)


class DeclaredSchema(_Model):
    """A report type's declared schema: its main table (the report type's own dataset) and any extra tables."""

    report_type: str = Field(pattern=_DATASET)
    short_name: str = Field(pattern=_SNAKE, max_length=63)
    format: DocumentFormat
    record_path: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    columns: tuple[DeclaredColumn, ...] = Field(min_length=1)
    tables: tuple[_ExtraTable, ...] = ()

    @model_validator(mode="after")
    def _fits_its_format(self) -> DeclaredSchema:
        if self.format == "tsv" and (self.record_path or self.tables):
            raise ValueError("a tsv document has no record_path and no extra tables")
        if self.format != "tsv" and not self.record_path:
            raise ValueError(f"a {self.format} document needs a record_path")
        if self.format == "xml" and self.tables:
            raise ValueError("extra tables are for json documents")
        _check_columns(self.columns, self.key)
        _unique((table.dataset for table in self.all_tables()), "dataset")
        _unique((table.short_name for table in self.all_tables()), "short name")
        return self

    @property
    def main(self) -> DeclaredTable:
        """The main table: the report type's own dataset."""
        return DeclaredTable(
            dataset=self.report_type,
            short_name=self.short_name,
            record_path=self.record_path,
            key=self.key,
            columns=self.columns,
        )

    def all_tables(self) -> tuple[DeclaredTable, ...]:
        """The main table first, then the extra ones."""
        return (self.main, *self.tables)


def _check_columns(columns: tuple[DeclaredColumn, ...], key: tuple[str, ...]) -> None:
    _unique((column.name for column in columns), "column name")
    _unique((column.source for column in columns), "column source")
    names = {column.name for column in columns}
    for name in key:
        if name not in names:
            raise ValueError(f"key column {name!r} is not one of the columns")


def _unique(values: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value!r} appears twice")
        seen.add(value)


def load_schema(path: Path) -> DeclaredSchema:
    """One schema file, checked: a SchemaError names the file (and the column) when it breaks a rule."""
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SchemaError(f"schema {path.name}: {exc}") from None
    try:
        schema = DeclaredSchema.model_validate(raw)
    except ValidationError as exc:
        raise SchemaError(f"schema {path.name}: {_describe(exc, raw)}") from None
    if path.suffix == ".toml" and path.stem != schema.report_type:
        raise SchemaError(f"schema {path.name}: report_type {schema.report_type!r} is not the file's name")
    return schema


def _describe(exc: ValidationError, raw: dict[str, Any]) -> str:
    """The first problem in words, naming a column by its name (or its source) rather than its index."""
    error = exc.errors()[0]
    where: list[str] = []
    node: Any = raw
    for part in error["loc"]:
        node = _child(node, part)
        if isinstance(part, int) and where and where[-1] in ("columns", "tables"):
            where[-1] = f"{where[-1].removesuffix('s')} {_label(node, part)}"
        else:
            where.append(str(part))
    message = error["msg"].removeprefix("Value error, ")
    return f"{' '.join(where)}: {message}" if where else message


def _label(node: Any, index: int) -> str:
    if isinstance(node, dict):
        for field in ("name", "dataset", "source"):
            if isinstance(node.get(field), str):
                return repr(node[field]) if field != "source" else f"with source {node[field]!r}"
    return f"#{index + 1}"


def _child(node: Any, part: str | int) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def load_schemas(folder: Path) -> dict[str, DeclaredSchema]:
    """Every ``*.toml`` schema of a folder by report type; dataset and short names unique across them."""
    schemas = {path.stem: load_schema(path) for path in sorted(folder.glob("*.toml"))}
    owners: dict[str, str] = {}
    for schema in schemas.values():
        for table in schema.all_tables():
            for name in (table.dataset, table.short_name):
                if name in owners and owners[name] != schema.report_type:
                    raise SchemaError(
                        f"schema {schema.report_type}.toml: name {name!r} is already taken by {owners[name]}.toml"
                    )
                owners[name] = schema.report_type
    return schemas


@cache
def _declared() -> dict[str, DeclaredSchema]:
    return load_schemas(SCHEMA_DIR)


def all_schemas() -> tuple[DeclaredSchema, ...]:
    """Every declared schema shipped with the package, by report type."""
    return tuple(_declared().values())


def schema_for(report_type: str) -> DeclaredSchema | None:
    """The declared schema of a report type; None when the type has none (its columns are inferred)."""
    return _declared().get(report_type)


def all_tables() -> tuple[DeclaredTable, ...]:
    """Every declared table (each schema's main table and its extra ones)."""
    return tuple(table for schema in all_schemas() for table in schema.all_tables())


def table_for(dataset: str) -> DeclaredTable | None:
    """The declared table of a dataset name: a report type's main table or an extra table's ``dataset``."""
    return next((table for table in all_tables() if table.dataset == dataset), None)
