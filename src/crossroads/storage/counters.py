"""Counters for rate limits and budgets: atomic check-and-reserve over several counters at once.

`reserve` adds every amount only if none of them would pass its limit (all or nothing) and
says which one refused otherwise; `adjust` settles or refunds. In process (one event loop, so
each call is atomic) or in Redis with one Lua script per call (atomic across replicas).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec
import redis.asyncio as aioredis


class Slot(msgspec.Struct, frozen=True):
    """One counter a request reserves on: its key, the amount, the limit and how long it lives."""

    key: str
    amount: int
    limit: int
    ttl_s: int  # 0: forever
    kind: str = ""  # what it counts, for messages: requests, tokens, cost, budget-tokens
    resets_at: float | None = None  # Unix time the counter starts again (None: never)
    label: str = ""  # the rule, for messages: "50 requests per minute"


class Counter(Protocol):
    async def reserve(self, slots: Sequence[Slot]) -> int | None:
        """Reserve every slot's amount, or none: the index of the slot that refused."""
        ...

    async def adjust(self, changes: Sequence[tuple[Slot, int]]) -> None:
        """Add each delta (negative to refund) to its slot's counter."""
        ...

    async def values(self, keys: Sequence[str]) -> list[int]: ...


class MemoryCounter:
    def __init__(self, clock: Any = time.time) -> None:
        self._values: dict[str, tuple[int, float]] = {}  # key -> (value, expires at; 0 = never)
        self._clock = clock
        self._calls = 0

    def _get(self, key: str, now: float) -> int:
        entry = self._values.get(key)
        if entry is None:
            return 0
        if entry[1] and now >= entry[1]:
            del self._values[key]
            return 0
        return entry[0]

    async def reserve(self, slots: Sequence[Slot]) -> int | None:
        now = self._clock()
        current = [self._get(slot.key, now) for slot in slots]
        for index, slot in enumerate(slots):
            if current[index] + slot.amount > slot.limit:
                return index
        values = self._values
        for index, slot in enumerate(slots):
            if current[index]:
                values[slot.key] = (current[index] + slot.amount, values[slot.key][1])
            else:
                values[slot.key] = (slot.amount, now + slot.ttl_s if slot.ttl_s else 0.0)
        self._calls += 1
        if self._calls % 1024 == 0 and len(values) > 100_000:
            self._sweep(now)  # at most every 1024 reservations: expired windows go
        return None

    async def adjust(self, changes: Sequence[tuple[Slot, int]]) -> None:
        now = self._clock()
        for slot, delta in changes:
            if delta:
                self._add(slot, delta, now)

    async def values(self, keys: Sequence[str]) -> list[int]:
        now = self._clock()
        return [self._get(key, now) for key in keys]

    def _add(self, slot: Slot, delta: int, now: float) -> None:
        entry = self._values.get(slot.key)
        if entry is None or (entry[1] and now >= entry[1]):
            self._values[slot.key] = (max(0, delta), now + slot.ttl_s if slot.ttl_s else 0.0)
        else:
            self._values[slot.key] = (max(0, entry[0] + delta), entry[1])

    def _sweep(self, now: float) -> None:
        for key in [k for k, (_, expires) in self._values.items() if expires and now >= expires]:
            del self._values[key]


_RESERVE = """
for i = 1, #KEYS do
  local current = tonumber(redis.call('GET', KEYS[i]) or '0')
  if current + tonumber(ARGV[3 * i - 2]) > tonumber(ARGV[3 * i - 1]) then
    return i
  end
end
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[3 * i - 2])
  local ttl = tonumber(ARGV[3 * i])
  if ttl > 0 and redis.call('TTL', KEYS[i]) < 0 then
    redis.call('EXPIRE', KEYS[i], ttl)
  end
end
return 0
"""
_ADJUST = """
for i = 1, #KEYS do
  local value = redis.call('INCRBY', KEYS[i], ARGV[2 * i - 1])
  if value < 0 then redis.call('SET', KEYS[i], 0, 'KEEPTTL') end
  local ttl = tonumber(ARGV[2 * i])
  if ttl > 0 and redis.call('TTL', KEYS[i]) < 0 then
    redis.call('EXPIRE', KEYS[i], ttl)
  end
end
return 0
"""


class RedisCounter:
    def __init__(self, client: aioredis.Redis, prefix: str = "crossroads:") -> None:
        self._redis = client
        self._prefix = prefix
        self._reserve: Any = client.register_script(_RESERVE)
        self._adjust: Any = client.register_script(_ADJUST)

    async def reserve(self, slots: Sequence[Slot]) -> int | None:
        if not slots:
            return None
        args: list[int] = []
        for slot in slots:
            args += [slot.amount, slot.limit, slot.ttl_s]
        refused = int(await self._reserve(keys=[self._prefix + s.key for s in slots], args=args))
        return refused - 1 if refused else None

    async def adjust(self, changes: Sequence[tuple[Slot, int]]) -> None:
        changes = [(slot, delta) for slot, delta in changes if delta]
        if not changes:
            return
        args: list[int] = []
        for slot, delta in changes:
            args += [delta, slot.ttl_s]
        await self._adjust(keys=[self._prefix + s.key for s, _ in changes], args=args)

    async def values(self, keys: Sequence[str]) -> list[int]:
        if not keys:
            return []
        raw = await self._redis.mget([self._prefix + key for key in keys])
        return [int(v) if v is not None else 0 for v in raw]
