"""The product's processes, over the tasks and the library (installed as ``spreports.workers``).

``app`` builds the Celery app, ``embedded_redis`` starts the product's own Redis when none is
configured, ``relay`` is the SQS relay, ``producers`` queue tasks from any program
(``spreports.enqueue_document``), and ``cli`` is the ``spreports`` command.
"""

# Python started in the checkout has the checkout on sys.path: this package is `spreports.workers` (pyproject.toml
# maps it into the package), never a second module named `workers`.
if __name__ != "spreports.workers":
    raise ImportError("workers is the package spreports.workers: import it by that name")
