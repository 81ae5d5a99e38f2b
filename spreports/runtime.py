"""What the library's services run on in one process: its settings and the connections built from them.

A service (:class:`spreports.documents.retrieval.DocumentRetrieval`, :class:`spreports.reports.sweep.Sweep`) takes a
:class:`Runtime` instead of building its own connections: the worker gives it its per-process context
(``spreports.tasks.context.TaskContext``), a test gives it fakes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import redis
    import requests

    from spreports.settings import Settings
    from spreports.spapi import SpapiClient
    from spreports.storage import Storage


class Runtime(Protocol):
    """One process's settings, Redis, storage, download session and SP-API clients."""

    @property
    def settings(self) -> Settings:
        """The process's settings."""

    @property
    def redis(self) -> redis.Redis:
        """The Redis of the product's state."""

    @property
    def storage(self) -> Storage:
        """Where documents are stored."""

    @property
    def session(self) -> requests.Session:
        """The session documents are downloaded with."""

    def client(self, seller_id: str) -> SpapiClient:
        """The SP-API client of one seller."""
