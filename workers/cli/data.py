"""``spreports data rebuild|schemas|sql``: the typed twins of stored documents (needs the data extra).

``sql`` runs one query on the catalogue (:mod:`spreports.data.catalogue`): a table on a terminal, CSV
otherwise, or ``--format csv|json|parquet`` (to ``--output FILE`` or stdout; Parquet needs a file). A bad
query is DuckDB's message in one line; no rows yet is one line saying why.

``rebuild`` converts in the command itself, one document after another, rather than queueing tasks:
it needs no broker and no worker with the extra, a schema change is tried where it was made, and the
command ends when the dataset is whole again, having said what each type counted. A deployment that
wants the fleet to do it can queue ``spreports.convert_document`` per document instead.
"""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from spreports.workers.cli.common import UserError, command_settings

if TYPE_CHECKING:
    from spreports.data.catalogue import Catalogue

FORMATS = ("table", "csv", "json", "parquet")
#: Rows a terminal table shows; the rest is for --format csv or --output.
TABLE_ROWS = 200
_SUFFIX_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json", ".parquet": "parquet"}


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


@data.command("sql")
@click.argument("query")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    help="Output format [default: table on a terminal, else csv; with --output, from its suffix].",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write the result to this file.")
def sql(query: str, output_format: str | None, output: Path | None) -> None:
    """Run one SQL query (DuckDB) over the documents' rows.

    Views: one per report type under its full name ("GET_MERCHANT_LISTINGS_ALL_DATA", quoted) and its
    short name (listings), latest_<short name> (one row per key: the newest document's), and documents
    (every stored document). QUERY "-" reads the query from stdin.
    Example: spreports data sql "SELECT count(*) FROM listings"
    """
    settings = command_settings()
    _require_data_extra("sql")
    chosen = _format(output_format, output)
    if query == "-":
        query = sys.stdin.read()
    from spreports.data.catalogue import open_catalogue

    catalogue = open_catalogue(settings)
    try:
        _run(catalogue, query, chosen, output)
    finally:
        catalogue.connection.close()


def _format(chosen: str | None, output: Path | None) -> str:
    if chosen is None:
        if output is not None:
            chosen = _SUFFIX_FORMATS.get(output.suffix.lower(), "csv")
        else:
            chosen = "table" if sys.stdout.isatty() else "csv"
    if chosen == "parquet" and output is None:
        raise UserError("--format parquet needs --output FILE")
    if chosen == "table" and output is not None:
        raise UserError("--output is for csv, json and parquet; a table is for the terminal")
    return chosen


def _run(catalogue: Catalogue, query: str, chosen: str, output: Path | None) -> None:
    import duckdb

    from spreports.data import results

    try:
        if chosen != "table":
            # A result without ORDER BY has no order to keep (SQL promises none); unbound, DuckDB streams it
            # instead of holding rows back to keep the files' order: an export's memory stays flat
            # (benchmarks/README.md, "SQL over the rows").
            catalogue.connection.execute("SET preserve_insertion_order = false")
        relation = catalogue.connection.sql(query)
        if relation is None:  # a statement without a result (SET, CREATE VIEW ...)
            return
        if chosen == "table":
            show_table(*results.first_rows(relation, TABLE_ROWS))
        elif output is None:
            write = results.write_csv if chosen == "csv" else results.write_json_lines
            _to_stdout(lambda sink: write(relation, sink))
        else:
            if chosen == "parquet":
                results.write_parquet(relation, output)
            elif chosen == "csv":
                results.write_csv(relation, output)
            else:
                with _open(output) as sink:
                    results.write_json_lines(relation, sink)
            click.echo(f"wrote {output}", err=True)
    except duckdb.Error as exc:
        raise UserError(_describe(exc, catalogue)) from None


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("wb")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def _to_stdout(write: Any) -> None:
    sink = sys.stdout.buffer
    try:
        write(sink)
        sink.flush()
    except BrokenPipeError:
        # The reader went away (``| head``): not an error. Python would report the failing flush at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _describe(exc: Exception, catalogue: Catalogue) -> str:
    """DuckDB's message in one line (its text up to the query excerpt), with a hint when there are no rows."""
    import duckdb

    lines = []
    for line in str(exc).strip().splitlines():
        if not line.strip() or line.startswith("LINE "):
            break
        lines.append(line.strip())
    message = " ".join(lines) or type(exc).__name__
    if isinstance(exc, duckdb.CatalogException) and not catalogue.datasets:
        if catalogue.documents:
            message += (
                f" (no rows yet: none of the {catalogue.documents} stored documents is converted;"
                " documents are converted as they are stored, and `spreports data rebuild` converts those stored before)"
            )
        else:
            message += " (no rows yet: no document is stored in SPREPORTS_STORAGE__URL)"
    return message


def show_table(columns: list[str], rows: list[tuple[Any, ...]], more: bool) -> None:
    """Print the rows as a table (rich) on stdout, and how many there are (or that more exist) on stderr."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(*columns, show_lines=False, header_style="bold")
    for row in rows:
        # Text, not markup: a value like "[bold]" is shown as it is.
        table.add_row(*(Text("NULL", style="dim") if value is None else Text(str(value)) for value in row))
    console = Console()
    console.print(table)
    sys.stdout.flush()  # the table before the count, when both streams go to one place
    shown = f"{len(rows)} row{'s' if len(rows) != 1 else ''}"
    if more:
        shown = f"the first {len(rows)} rows; --format csv or --output FILE gives them all"
    click.echo(shown, err=True)
