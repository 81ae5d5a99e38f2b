"""The reports domain: requesting reports, following them, and the safety nets around them.

- :mod:`~spreports.reports.obtain`: a report obtained: an identical one reused, or createReport; the registry of
  requests in flight;
- :mod:`~spreports.reports.backfill`, :mod:`~spreports.reports.backfill_runs`: a date range in windows, one run
  driving it at a time;
- :mod:`~spreports.reports.restatements`: a restated window's document and the one it supersedes;
- :mod:`~spreports.reports.sweep`, :mod:`~spreports.reports.stuck`: the safety nets: finished reports whose
  notification never came, reports stuck in Amazon's queue;
- :mod:`~spreports.reports.cooldowns`, :mod:`~spreports.reports.fatal_ledger`: FATAL reports, their reasons and
  the pause before the same report is asked for again;
- :mod:`~spreports.reports.failure_ledger`: the documents that failed for good.
"""
