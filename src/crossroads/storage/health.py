"""Where circuit-breaker health records live: in process, or in Redis (shared by replicas).

Both apply the same rules (routing.breaker.transition); the Redis one as a Lua script, so
concurrent updates from many processes are atomic. If Redis is unreachable, routing goes on
without health information (every target looks closed) and the failure is logged once.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from crossroads.routing.breaker import HealthRecord, is_open, transition
from crossroads.routing.plan import BreakerPolicy

log = logging.getLogger("crossroads.health")


class MemoryHealth:
    """Records in a bounded LRU map (targets seen recently)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._records: OrderedDict[str, HealthRecord] = OrderedDict()
        self._capacity = capacity

    async def open_among(self, keys: Sequence[str], now: float) -> set[str]:
        return {
            key for key in keys if (record := self._records.get(key)) is not None and is_open(record, now)
        }

    async def record(self, key: str, failed: bool, policy: BreakerPolicy, now: float) -> None:
        current = self._records.pop(key, None) or HealthRecord()
        self._records[key] = transition(current, failed, policy, now)
        if len(self._records) > self._capacity:
            self._records.popitem(last=False)


# The same rules as routing.breaker.transition, applied atomically. Times are milliseconds.
_RECORD = """
local k = KEYS[1]
local failed = ARGV[1] == '1'
local now = tonumber(ARGV[2])
local threshold = tonumber(ARGV[3])
local pct = tonumber(ARGV[4])
local minreq = tonumber(ARGV[5])
local window = tonumber(ARGV[6])
local cooldown = tonumber(ARGV[7])
local maxcool = tonumber(ARGV[8])
local ttl = tonumber(ARGV[9])
local h = redis.call('HMGET', k, 'consecutive', 'trips', 'open_until', 'window_start', 'window_requests',
                     'window_failures')
local consecutive = tonumber(h[1]) or 0
local trips = tonumber(h[2]) or 0
local open_until = tonumber(h[3]) or 0
local wstart = tonumber(h[4]) or 0
local wreq = tonumber(h[5]) or 0
local wfail = tonumber(h[6]) or 0
if now - wstart >= window then
  wstart = now
  wreq = 0
  wfail = 0
end
wreq = wreq + 1
if failed then
  wfail = wfail + 1
  consecutive = consecutive + 1
  if now >= open_until then
    local by_share = pct >= 0 and wreq >= minreq and wfail * 100 >= pct * wreq
    if open_until > 0 or consecutive >= threshold or by_share then
      trips = trips + 1
      open_until = now + math.min(cooldown * trips, maxcool)
    end
  end
else
  consecutive = 0
  if open_until > 0 and now >= open_until then
    trips = 0
    open_until = 0
  end
end
redis.call('HSET', k, 'consecutive', consecutive, 'trips', trips,
           'open_until', string.format('%d', open_until), 'window_start', string.format('%d', wstart),
           'window_requests', wreq, 'window_failures', wfail)
redis.call('PEXPIRE', k, ttl)
return open_until
"""


class RedisHealth:
    def __init__(self, client: aioredis.Redis, prefix: str = "crossroads:health:") -> None:
        self._redis = client
        self._prefix = prefix
        self._script: Any = client.register_script(_RECORD)
        self._down = False

    async def open_among(self, keys: Sequence[str], now: float) -> set[str]:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hget(self._prefix + key, "open_until")
                values = await pipe.execute()
        except (RedisError, OSError) as exc:
            self._unavailable(exc)
            return set()
        self._available()
        now_ms = now * 1000
        return {
            key
            for key, value in zip(keys, values, strict=True)
            if value is not None and float(value) > now_ms
        }

    async def record(self, key: str, failed: bool, policy: BreakerPolicy, now: float) -> None:
        ttl_ms = int(max(policy.window_s, policy.max_cooldown_s) * 2000)
        args = [
            "1" if failed else "0",
            int(now * 1000),
            policy.failure_threshold,
            -1 if policy.failure_percentage is None else policy.failure_percentage,
            policy.minimum_requests,
            int(policy.window_s * 1000),
            int(policy.cooldown_s * 1000),
            int(policy.max_cooldown_s * 1000),
            ttl_ms,
        ]
        try:
            await self._script(keys=[self._prefix + key], args=args)
        except (RedisError, OSError) as exc:
            self._unavailable(exc)
            return
        self._available()

    async def read(self, key: str) -> HealthRecord:
        """The record as stored (for tests and the admin view)."""
        raw = await self._redis.hgetall(self._prefix + key)
        if not raw:
            return HealthRecord()
        value = {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in raw.items()}
        return HealthRecord(
            consecutive=int(value.get("consecutive", 0)),
            trips=int(value.get("trips", 0)),
            open_until=value.get("open_until", 0) / 1000,
            window_start=value.get("window_start", 0) / 1000,
            window_requests=int(value.get("window_requests", 0)),
            window_failures=int(value.get("window_failures", 0)),
        )

    def _unavailable(self, exc: BaseException) -> None:
        if not self._down:
            log.warning(
                "Redis is unreachable; circuit breaking runs without shared health (%s)", type(exc).__name__
            )
            self._down = True

    def _available(self) -> None:
        if self._down:
            log.warning("Redis is reachable again; circuit breaking shares health again")
            self._down = False
