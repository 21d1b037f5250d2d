"""The semantic cache's vectors, shared by replicas through a Redis stream.

Redis here has no vector search, so every replica keeps its own index in memory and the
stream is how they stay in step: a replica that stores an answer appends (scope, key, text,
vector); every replica reads what it has not seen yet before it searches (at most every
`interval_s`), and reads the whole stream when it starts. The stream is capped near the
index size; entries whose answer expired are dropped by the replica that finds them gone.
"""

from __future__ import annotations

from typing import Final

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from crossroads.storage.store import StoreUnavailable

STREAM: Final = "crossroads:cache:vectors"
_BATCH: Final = 1000


class VectorRecord(msgspec.Struct, frozen=True, array_like=True):
    scope: str
    key: str
    text: str
    vector: bytes  # float32, little-endian


class RedisVectorLog:
    def __init__(self, client: aioredis.Redis, max_len: int, stream: str = STREAM) -> None:
        self._redis = client
        self._max_len = max_len
        self._stream = stream

    async def append(self, record: VectorRecord) -> None:
        try:
            await self._redis.xadd(
                self._stream, {"r": msgspec.msgpack.encode(record)}, maxlen=self._max_len, approximate=True
            )
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from None

    async def since(self, cursor: str) -> tuple[list[VectorRecord], str]:
        """Records after `cursor` ("0" for all), and the new cursor."""
        out: list[VectorRecord] = []
        try:
            while True:
                start = "-" if cursor == "0" else f"({cursor}"
                batch = await self._redis.xrange(self._stream, min=start, max="+", count=_BATCH) or []
                for entry_id, fields in batch:
                    cursor = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                    raw = (fields or {}).get(b"r")
                    if isinstance(raw, bytes):
                        try:
                            out.append(msgspec.msgpack.decode(raw, type=VectorRecord))
                        except msgspec.DecodeError:
                            continue
                if len(batch) < _BATCH:
                    return out, cursor
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from None

    async def clear(self) -> None:
        try:
            await self._redis.delete(self._stream)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from None
