"""Documents as data: typed Parquet twins of stored documents, their schemas and the SQL catalogue.

``spreports.data.connect()`` gives a DuckDB connection over every stored document's rows (see
:mod:`spreports.data.catalogue`). pyarrow and DuckDB come with the ``data`` extra; importing this
package does not need them.
"""

from spreports.data.catalogue import connect

__all__ = ["connect"]
