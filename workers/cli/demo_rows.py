"""The demo's last step: what it stored, as rows: one query over the listings, and the line to try next.

The worker converts each stored document on the ``data`` queue; the demo waits (a bounded time) for
its listings document's rows, then runs :data:`DEMO_QUERY` on the catalogue. Without the ``data``
extra it says in one line which extra turns rows on.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from spreports.settings import Settings
    from spreports.storage import Storage

LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
DEMO_QUERY = (
    "SELECT seller_id, seller_sku, item_name, price FROM listings WHERE price IS NOT NULL ORDER BY price DESC LIMIT 5"
)
#: How long the demo waits for its documents' rows once they are stored.
CONVERSION_WAIT_SECONDS = 60.0


def show_rows(settings: Settings, stored: Collection[tuple[str | None, str, str]], *, wait: float) -> None:
    """Wait up to ``wait`` seconds for the listings documents among ``stored`` (report type, seller, document
    id) to be converted, then show :data:`DEMO_QUERY`'s result and the command to try next."""
    from spreports.data.extra import EXTRA_HINT, missing_extra

    if missing_extra():
        click.echo(f"\nThe documents as rows: {EXTRA_HINT}")
        return
    from spreports.storage import open_storage

    listings = {(seller, document) for report_type, seller, document in stored if report_type == LISTINGS}
    if not listings:
        return
    if not wait_for_rows(open_storage(settings), listings, wait):
        click.echo(f"\nThe listings were not converted to rows within {wait:g} s (a worker of the data queue does it).")
        return
    _query(settings)


def wait_for_rows(storage: Storage, documents: set[tuple[str, str]], wait: float) -> bool:
    """Whether every (seller, document id) of ``documents`` has its rows (its manifest's ``data``) within ``wait`` s."""
    from spreports.data.manifests import read_manifests

    deadline = time.monotonic() + wait
    while True:
        converted = {
            (manifest.get("seller_id"), manifest.get("report_document_id"))
            for manifest in read_manifests(storage)
            if isinstance(manifest.get("data"), dict)
        }
        if documents <= converted:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def _query(settings: Settings) -> None:
    import duckdb

    from spreports.data import results
    from spreports.data.catalogue import open_catalogue
    from spreports.workers.cli.data import show_table

    catalogue = open_catalogue(settings)
    try:
        click.echo("\nThe five most expensive listings, from their rows:")
        show_table(*results.first_rows(catalogue.connection.sql(DEMO_QUERY), 5))
    except duckdb.Error as exc:
        # The documents are stored whatever the rows say: the demo ends well, saying what the query met.
        click.echo(f"The query failed: {str(exc).strip().splitlines()[0]}")
        return
    finally:
        catalogue.connection.close()
    click.echo(f'Try next: spreports data sql "{DEMO_QUERY}"')
