"""``python -m spreports.workers.relay [--check]``: the same as ``spreports relay``."""

import sys

from spreports.workers.cli import run

run(["relay", *sys.argv[1:]])
