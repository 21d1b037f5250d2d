"""Byte stores with a TTL, for cached answers: bounded in-process LRU, or Redis (shared).

Keys are `<namespace>:<hash>`; `clear(namespace)` drops one namespace, `clear(None)` all. A
Redis failure raises StoreUnavailable, so the caller can go on without the cache.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError


class StoreUnavailable(Exception):
    """The backend cannot be reached; the cache is bypassed until it can."""


class Store(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def clear(self, namespace: str | None) -> int:
        """Delete a namespace's entries (all of them with None); how many went."""
        ...


class MemoryStore:
    """LRU bounded by entries and bytes; expired entries go when met or when space is needed."""

    def __init__(self, max_entries: int, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0
        self._clock = clock

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() >= entry[1]:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry[0]

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        if len(value) > self._max_bytes:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (value, self._clock() + ttl_s)
        self._bytes += len(value)
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)

    async def clear(self, namespace: str | None) -> int:
        keys = (
            list(self._entries)
            if namespace is None
            else [k for k in self._entries if k.startswith(namespace + ":")]
        )
        for key in keys:
            self._drop(key)
        return len(keys)

    def _drop(self, key: str) -> None:
        value, _ = self._entries.pop(key)
        self._bytes -= len(value)

    @property
    def size(self) -> tuple[int, int]:
        """(entries, bytes) held."""
        return len(self._entries), self._bytes


class RedisStore:
    def __init__(self, client: aioredis.Redis, prefix: str = "crossroads:cache:") -> None:
        self._redis = client
        self._prefix = prefix

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._redis.get(self._prefix + key)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from None
        return value.encode() if isinstance(value, str) else value

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        try:
            await self._redis.set(self._prefix + key, value, px=max(1, int(ttl_s * 1000)))
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from None

    async def clear(self, namespace: str | None) -> int:
        pattern = self._prefix + ("*" if namespace is None else namespace + ":*")
        count = 0
        try:
            async for key in self._redis.scan_iter(match=pattern, count=500):
                count += await self._redis.unlink(key)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from None
        return count
