"""Converting stored documents again from their raw bytes (after a schema change, or an upgrade).

The manifests' index (``_index/<seller>/<id>.manifest.json``) lists every stored document; each chosen
one is converted again in turn, its Parquet file replaced whole. The dataset schema of each report type
rebuilt starts again from the declared schema (or from nothing, for an inferred type), so a schema change
takes effect; files of documents not rebuilt keep the schema they were written with (readers go by name).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from pydantic import ValidationError

from spreports.data.convert import Conversion, convert_document
from spreports.data.filesystem import DataRoot, open_root
from spreports.data.layout import schema_parts
from spreports.data.schemas import schema_for
from spreports.errors import SpreportsError
from spreports.settings import Settings
from spreports.storage import INDEX_DIR, Manifest, Storage, open_storage, safe_part

__all__ = ["Rebuilt", "rebuild", "stored_manifests"]


@dataclass(frozen=True)
class Rebuilt:
    """One document converted again: its conversion, or why it could not be (one line)."""

    manifest: Manifest
    conversion: Conversion | None = None
    error: str | None = None


def stored_manifests(root: DataRoot, *, seller_id: str | None = None) -> Iterator[Manifest]:
    """Every stored document's manifest (of one seller when given), from the manifests' index."""
    import pyarrow.fs as pafs

    parts = [INDEX_DIR] if seller_id is None else [INDEX_DIR, safe_part(seller_id, what="seller id")]
    selector = pafs.FileSelector(root.path(parts), recursive=True, allow_not_found=True)
    for info in sorted(root.filesystem.get_file_info(selector), key=lambda i: i.path):
        if info.type != pafs.FileType.File or not info.base_name.endswith(".manifest.json"):
            continue
        with root.filesystem.open_input_stream(info.path) as stream:
            body = stream.read()
        with contextlib.suppress(ValidationError):  # not a manifest of ours: not a document to convert
            yield Manifest.model_validate_json(body)


def rebuild(
    settings: Settings, *, report_type: str | None = None, seller_id: str | None = None, storage: Storage | None = None
) -> Iterator[Rebuilt]:
    """Convert again every stored document of ``report_type`` and ``seller_id`` (each: all when None)."""
    root = open_root(settings)
    storage = storage or open_storage(settings)
    reset: set[str] = set()
    for manifest in stored_manifests(root, seller_id=seller_id):
        if manifest.processing_status != "DONE" or not manifest.report_type:
            continue
        if report_type is not None and manifest.report_type != report_type:
            continue
        if manifest.report_type not in reset:
            reset.add(manifest.report_type)
            _forget_dataset_schemas(root, manifest.report_type)
        try:
            yield Rebuilt(manifest, convert_document(storage, manifest, settings=settings, root=root))
        except (SpreportsError, OSError) as exc:
            yield Rebuilt(manifest, error=str(exc) if isinstance(exc, SpreportsError) else type(exc).__name__)


def _forget_dataset_schemas(root: DataRoot, report_type: str) -> None:
    """Drop the dataset schemas of a report type's tables: the rebuild writes them anew."""
    schema = schema_for(report_type)
    datasets = [table.dataset for table in schema.all_tables()] if schema is not None else [report_type]
    for dataset in datasets:
        root.remove(root.path(schema_parts(dataset)))
