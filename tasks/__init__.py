"""Thin Celery tasks over the ``spreports`` library; each has a stable ``spreports.<verb>`` name."""
