"""The answer cache: look up, store and clear entries in a Store, surviving its outages.

An entry is a complete successful answer in the client's format (JSON), with when and from
whom it came. A store that cannot be reached makes the cache step aside: lookups miss, writes
are skipped, the failure is counted and logged once until the store answers again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import msgspec

from crossroads.storage.store import Store, StoreUnavailable

log = logging.getLogger("crossroads.cache")

MAX_ENTRY_BYTES: Final = 4 * 1024 * 1024


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    body: bytes  # the complete answer, as JSON
    content_type: str = "application/json"
    created: float = 0.0
    provider: str = ""


@dataclass
class Stats:
    hits: int = 0
    semantic_hits: int = 0
    misses: int = 0
    stores: int = 0
    unavailable: int = 0  # lookups and writes skipped because the store could not be reached


@dataclass(frozen=True, slots=True)
class Key:
    namespace: str  # a hash of the namespace: a safe prefix to clear by
    digest: str

    @property
    def text(self) -> str:
        return f"{self.namespace}:{self.digest}"


def namespace_prefix(namespace: str | None) -> str:
    return hashlib.sha256((namespace or "").encode()).hexdigest()[:16]


@dataclass
class Cache:
    store: Store
    clock: Callable[[], float] = time.time
    stats: Stats = field(default_factory=Stats)
    _down: bool = False

    async def get(self, key: Key, *, counted: bool = True) -> Entry | None:
        """The entry under `key`; `counted`: an exact lookup, counted as a hit or a miss."""
        try:
            raw = await self.store.get(key.text)
        except StoreUnavailable as exc:
            self._unavailable(exc)
            return None
        self._up()
        entry = None
        if raw is not None:
            with contextlib.suppress(msgspec.DecodeError):  # written by another version: a miss
                entry = msgspec.msgpack.decode(raw, type=Entry)
        if counted:
            if entry is None:
                self.stats.misses += 1
            else:
                self.stats.hits += 1
        return entry

    async def put(self, key: Key, entry: Entry, max_age_s: float) -> None:
        if len(entry.body) > MAX_ENTRY_BYTES:
            return
        try:
            await self.store.set(key.text, msgspec.msgpack.encode(entry), max_age_s)
        except StoreUnavailable as exc:
            self._unavailable(exc)
            return
        self._up()
        self.stats.stores += 1

    async def clear(self, namespace: str | None) -> int:
        return await self.store.clear(namespace_prefix(namespace) if namespace is not None else None)

    def _unavailable(self, exc: Exception) -> None:
        self.stats.unavailable += 1
        if not self._down:
            self._down = True
            log.warning("cache store unavailable, answering without the cache until it is back: %s", exc)

    def _up(self) -> None:
        if self._down:
            self._down = False
            log.warning("cache store reachable again")
