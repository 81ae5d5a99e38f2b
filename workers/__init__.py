"""The product's processes: the Celery app (``workers.app``) and the SQS relay (``workers.relay``)."""
