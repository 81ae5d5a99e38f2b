"""``spreports data rebuild|schemas``: the typed twins of stored documents (needs the data extra).

``rebuild`` converts in the command itself, one document after another, rather than queueing tasks:
it needs no broker and no worker with the extra, a schema change is tried where it was made, and the
command ends when the dataset is whole again, having said what each type counted. A deployment that
wants the fleet to do it can queue ``spreports.convert_document`` per document instead.
"""

from __future__ import annotations

from collections import defaultdict

import click

from spreports.workers.cli.common import UserError, command_settings


def _require_data_extra(command: str) -> None:
    from spreports.data.extra import EXTRA_HINT, missing_extra

    missing = missing_extra()
    if missing:
        raise UserError(f"spreports data {command} needs {', '.join(missing)}: {EXTRA_HINT}")


@click.group(short_help="Stored documents as typed rows (Parquet) and SQL over them.")
def data() -> None:
    """Stored documents as typed rows: Parquet twins under <storage>/_data, their schemas, SQL over them."""


@data.command("rebuild")
@click.option("--type", "report_type", help="Only documents of this report type (default: every type).")
@click.option("--seller", "seller_id", help="Only documents of this seller (default: every seller).")
def rebuild(report_type: str | None, seller_id: str | None) -> None:
    """Convert stored documents to Parquet again from their raw bytes (after a schema change or an upgrade)."""
    _require_data_extra("rebuild")
    from spreports.data.rebuild import rebuild as rebuild_documents

    settings = command_settings()
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    failed = 0
    for done in rebuild_documents(settings, report_type=report_type, seller_id=seller_id):
        manifest = done.manifest
        if done.error is not None:
            failed += 1
            click.echo(f"{manifest.seller_id} {manifest.report_document_id}: not converted: {done.error}", err=True)
            continue
        count = totals[manifest.report_type or "?"]
        count[0] += 1
        if done.conversion is not None:
            count[1] += done.conversion.rows
            count[2] += done.conversion.rows_rejected
            count[3] += done.conversion.values_unparsed
        else:
            count[4] += 1
    for name, (documents, rows, rejected, unparsed, skipped) in sorted(totals.items()):
        note = f", {skipped} with nothing to convert" if skipped else ""
        click.echo(f"{name}: {documents} documents, {rows} rows, {rejected} rejected, {unparsed} values unparsed{note}")
    if not totals and not failed:
        click.echo("no stored document matches")
    if failed:
        raise UserError(f"{failed} document(s) could not be converted (each named above); their raw bytes are kept")


@data.command("schemas")
def schemas() -> None:
    """List the report types with a declared schema: the short name, the format and the columns."""
    from spreports.data.schemas import all_schemas

    declared = sorted(all_schemas(), key=lambda s: s.report_type)
    if not declared:
        click.echo("no declared schema: every report type's columns are inferred from its documents")
    for schema in declared:
        for table in schema.all_tables():
            key = f" key={','.join(table.key)}" if table.key else ""
            click.echo(f"{table.dataset}\t{table.short_name}\t{schema.format}\t{len(table.columns)} columns{key}")
