"""What tasks use, built once per worker process from the app's settings and passed down.

The Celery app carries one :class:`TaskContext` (:func:`attach`, called by the app factory). Its parts
are built on first use: the Redis client (claims, limits, token caches), the storage, the download
session and one SP-API client per seller. A prefork child builds its own context after the fork, so
a connection is never shared between processes.
"""

from __future__ import annotations

import os
from functools import cached_property

import redis
import requests
from celery import Celery, current_app

from spreports.connection import connect
from spreports.errors import SettingsError
from spreports.settings import Settings
from spreports.spapi import SpapiClient
from spreports.spapi.transport import ProcessSession
from spreports.storage import Storage, open_storage
from spreports.tasks.retrying import IN_SLOT_WAIT_SECONDS, QUOTA_RESERVE_HORIZON

_ATTRIBUTE = "spreports_context"


class TaskContext:
    """One process's settings and the connections built from them."""

    def __init__(self, settings: Settings) -> None:
        redis_url = settings.state_redis_url
        if not redis_url:
            raise SettingsError("SPREPORTS_REDIS_URL: tasks need a resolved Redis URL")
        self.settings = settings
        #: The Redis of the product's state (the broker itself when it is a Redis; never RabbitMQ).
        self.redis_url: str = redis_url
        self.pid = os.getpid()
        self._clients: dict[str, SpapiClient] = {}

    @cached_property
    def redis(self) -> redis.Redis:
        """The process's Redis connection pool."""
        return connect(self.redis_url)

    @cached_property
    def storage(self) -> Storage:
        """The process's storage (one boto3 client per process for S3)."""
        return open_storage(self.settings)

    @cached_property
    def session(self) -> requests.Session:
        """The process's session for document downloads (pooled connections to the document hosts)."""
        return ProcessSession()

    def client(self, seller_id: str) -> SpapiClient:
        """The process's SP-API client for one seller."""
        client = self._clients.get(seller_id)
        if client is None:
            client = self._clients[seller_id] = SpapiClient.for_seller(self.settings, seller_id, redis=self.redis)
            # A task can come back later: beyond a short sleep, it reserves its turn of the fleet's quota.
            # The sleep is kept short: a task sleeping for a token holds a worker slot, and many tasks of
            # one seller's backlog sleeping on its bucket would hold the whole fleet.
            client.transport.max_wait = IN_SLOT_WAIT_SECONDS
            client.transport.reserve_horizon = QUOTA_RESERVE_HORIZON
        return client


def attach(app: Celery, settings: Settings) -> None:
    """Give ``app`` the settings its tasks run with (their state Redis must be resolved)."""
    setattr(app, _ATTRIBUTE, TaskContext(settings))


def context(app: Celery | None = None) -> TaskContext:
    """The context of ``app`` (default: the app running the current task), rebuilt once after a fork."""
    app = app or current_app
    found = getattr(app, _ATTRIBUTE, None)
    if not isinstance(found, TaskContext):
        raise LookupError("this Celery app was not built by spreports.workers.app.create_app")
    if found.pid != os.getpid():
        found = TaskContext(found.settings)
        setattr(app, _ATTRIBUTE, found)
    return found
