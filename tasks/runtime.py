"""What tasks build from the settings, once per worker process (clients are reused across tasks).

Everything is created lazily, so a prefork child builds its own connections after the fork.
"""

from __future__ import annotations

import functools

import redis
from celery import current_app

from spreports.redis_server import broker_url, connect
from spreports.settings import Settings
from spreports.spapi import SpapiClient
from workers.app import settings_of


def current_settings() -> Settings:
    """The settings of the app running the current task."""
    return settings_of(current_app)


@functools.cache
def _redis(url: str) -> redis.Redis:
    return connect(url)


def redis_client() -> redis.Redis:
    """The process's Redis connection pool (claims, limits, token caches)."""
    return _redis(broker_url(current_settings()))


_clients: dict[tuple[int, str], tuple[Settings, SpapiClient]] = {}


def client_for(seller_id: str) -> SpapiClient:
    """The process's SP-API client for one seller (settings are unhashable: keyed by identity, kept alive)."""
    settings = current_settings()
    cached = _clients.get((id(settings), seller_id))
    if cached is None or cached[0] is not settings:
        cached = _clients[(id(settings), seller_id)] = (
            settings,
            SpapiClient.for_seller(settings, seller_id, redis=redis_client()),
        )
    return cached[1]
