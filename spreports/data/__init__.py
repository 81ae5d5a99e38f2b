"""Documents as data: typed Parquet twins of stored documents, their schemas and the SQL catalogue."""
