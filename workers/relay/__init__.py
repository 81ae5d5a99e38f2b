"""The SQS relay: REPORT_PROCESSING_FINISHED notifications in, retrieval tasks out.

:mod:`.receiver` relays batches, :mod:`.dead_letter` moves invalid messages aside, :mod:`.metrics`
counts and beats, :mod:`.process` runs it all as one process (``spreports relay``).
"""
