"""The Redis connection shared by the Redis-backed stores (health, rate-limit and budget counters)."""

from __future__ import annotations

import redis.asyncio as aioredis

Redis = aioredis.Redis

MAX_CONNECTIONS = 256


def connect(url: str) -> Redis:
    """A pooled client; short timeouts, because a slow Redis must not stall requests.

    The pool blocks (up to a second) for a free connection when all are busy, rather than
    failing: more requests in flight than connections must queue, not error.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=1,
        socket_timeout=1,
        socket_connect_timeout=1,
        health_check_interval=30,
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes both
