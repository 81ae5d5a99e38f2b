"""JSON and XML documents read as text columns: the records at a path, a value per declared source.

JSON: ``record_path`` names the keys from the top object down to the list of records; a source is a dot
path inside one record (``salesByAsin.orderedProductSales.amount``), nested objects being flattened into
columns that way. Amazon's JSON reports are loaded whole (they are summaries, megabytes at most); the
typed rows are still written in row groups. XML is streamed: ``record_path`` names the elements from the
root down to the record element, each record is read when it closes and then dropped, and a source is an
ElementTree ``find()`` path inside it, ending in ``/@attr`` for an attribute.

Values become the text the parsers read: JSON strings as they are, numbers and booleans as JSON writes
them, objects and lists as JSON text; a missing key, ``null``, a missing element or empty text is null.
``_row_number`` is the record's 1-based index in its list.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element, iterparse

import pyarrow as pa

from spreports.data.tsv import RawBatch
from spreports.errors import DocumentRejected

if TYPE_CHECKING:
    import pyarrow.fs as pafs

__all__ = ["RECORDS_PER_BATCH", "find_record_path", "json_batches", "json_sources", "xml_batches"]

RECORDS_PER_BATCH = 65_536
_SAMPLE = 1_000


def json_batches(
    filesystem: pafs.FileSystem, path: str, record_path: tuple[str, ...], sources: list[str]
) -> Iterator[RawBatch]:
    """The records of a JSON document, as text columns of ``sources``."""
    records = _json_records(filesystem, path, record_path)
    return _batches(([_json_value(record, source) for source in sources] for record in records), len(sources))


def json_sources(filesystem: pafs.FileSystem, path: str, record_path: tuple[str, ...]) -> list[str]:
    """The dot paths of the leaf values of the first records (a JSON document of a type with no schema)."""
    sources: dict[str, None] = {}
    for number, record in enumerate(_json_records(filesystem, path, record_path)):
        if number >= _SAMPLE:
            break
        if isinstance(record, dict):
            for source in _leaves(record, ""):
                sources.setdefault(source)
    return list(sources)


def find_record_path(filesystem: pafs.FileSystem, path: str) -> tuple[str, ...]:
    """Where the records of a JSON document of unknown shape are: the top list, or the first list of objects."""
    document = _load_json(filesystem, path)
    if isinstance(document, list):
        return ()
    if isinstance(document, dict):
        for key, value in document.items():
            if isinstance(value, list) and value and isinstance(value[0], dict):
                return (key,)
    raise DocumentRejected("the JSON document holds no list of records")


def xml_batches(
    filesystem: pafs.FileSystem, path: str, record_path: tuple[str, ...], sources: list[str]
) -> Iterator[RawBatch]:
    """The record elements of an XML document, as text columns of ``sources``, streamed."""
    return _batches(
        (
            [_xml_value(element, source) for source in sources]
            for element in _xml_records(filesystem, path, record_path)
        ),
        len(sources),
    )


def _batches(rows: Iterable[list[str | None]], width: int) -> Iterator[RawBatch]:
    batch: list[list[str | None]] = []
    first = 1
    for row in rows:
        batch.append(row)
        if len(batch) == RECORDS_PER_BATCH:
            yield _raw(batch, width, first)
            first += len(batch)
            batch = []
    if batch:
        yield _raw(batch, width, first)


def _raw(rows: list[list[str | None]], width: int, first: int) -> RawBatch:
    columns = [pa.array([row[i] for row in rows], pa.utf8()) for i in range(width)]
    return RawBatch(columns, pa.array(range(first, first + len(rows)), pa.int64()))


def _load_json(filesystem: pafs.FileSystem, path: str) -> Any:
    with filesystem.open_input_stream(path) as stream:
        data = stream.read()
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DocumentRejected(f"the document is not JSON ({type(exc).__name__} at {_where(exc)})") from None


def _where(exc: Exception) -> str:
    position = getattr(exc, "pos", None)
    if position is None:
        position = getattr(exc, "start", "?")
    return f"byte {position}"


def _json_records(filesystem: pafs.FileSystem, path: str, record_path: tuple[str, ...]) -> Iterator[Any]:
    node = _load_json(filesystem, path)
    for key in record_path:
        node = node.get(key) if isinstance(node, dict) else None
    if node is None:
        return iter(())
    if not isinstance(node, list):
        raise DocumentRejected(f"the JSON document's {'.'.join(record_path) or 'top'} is not a list of records")
    return iter(node)


def _leaves(value: dict[str, Any], prefix: str) -> Iterator[str]:
    for key, item in value.items():
        if isinstance(item, dict) and item:
            yield from _leaves(item, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def _json_value(record: Any, source: str) -> str | None:
    node = record
    for key in source.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    if node is None:
        return None
    if isinstance(node, str):
        return node
    return json.dumps(node, ensure_ascii=False)


def _xml_records(filesystem: pafs.FileSystem, path: str, record_path: tuple[str, ...]) -> Iterator[Element]:
    if not record_path:
        raise DocumentRejected("an XML document needs a record path")
    with filesystem.open_input_stream(path) as stream:
        stack: list[Element] = []
        try:
            for event, element in iterparse(stream, events=("start", "end")):
                if event == "start":
                    stack.append(element)
                    continue
                depth = len(stack)
                if depth == len(record_path) and [_local(e.tag) for e in stack] == list(record_path):
                    yield element
                if 1 < depth <= len(record_path):
                    # A record (or an element around records) is done with: dropped from its parent, so
                    # memory holds one record at a time whatever the document's size.
                    stack[-2].remove(element)
                stack.pop()
        except SyntaxError as exc:  # ElementTree's ParseError
            raise DocumentRejected(f"the document is not well-formed XML ({exc})") from None


def _local(tag: str) -> str:
    """An element's name without its namespace."""
    return tag.rsplit("}", 1)[-1]


def _xml_value(element: Element, source: str) -> str | None:
    path, _, attribute = source.partition("/@") if "/@" in source or source.startswith("@") else (source, "", "")
    if source.startswith("@"):
        path, attribute = ".", source[1:]
    node = element.find(path) if path not in ("", ".") else element
    if node is None:
        return None
    text = node.get(attribute) if attribute else node.text
    return text or None
