"""The Redis connection shared by the Redis-backed stores (health now; limits and cache later)."""

from __future__ import annotations

import redis.asyncio as aioredis

Redis = aioredis.Redis


def connect(url: str) -> Redis:
    """A pooled client; short timeouts, because a slow Redis must not stall requests."""
    client: Redis = aioredis.from_url(
        url, socket_timeout=1, socket_connect_timeout=1, health_check_interval=30
    )
    return client
