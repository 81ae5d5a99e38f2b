"""The product's processes, over the tasks and the library (installed as ``spreports.workers``).

``app`` builds the Celery app, ``embedded_redis`` starts the product's own Redis when none is
configured, ``relay`` is the SQS relay, ``producers`` queue tasks from any program
(``spreports.enqueue_document``), and ``cli`` is the ``spreports`` command.
"""
