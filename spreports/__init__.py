"""spreports: Amazon SP-API reports, scheduled and retrieved into your own storage by a Celery fleet."""

from __future__ import annotations

__version__ = "0.1.0"
