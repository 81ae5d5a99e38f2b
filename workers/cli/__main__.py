"""``python -m spreports.workers.cli``: the same as the ``spreports`` command."""

from spreports.workers.cli import run

run()
