"""The client is a plain library: importing it (in a fresh interpreter) loads no Celery."""

from __future__ import annotations

import subprocess
import sys


def test_spapi_imports_no_celery() -> None:
    code = "import sys, spreports.spapi; sys.exit(1 if any(m.split('.')[0] in ('celery', 'kombu') for m in sys.modules) else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=120).returncode == 0
