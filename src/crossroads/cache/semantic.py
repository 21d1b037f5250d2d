"""The semantic cache's vector index: normalised vectors by scope, and the nearest stored
questions to a new one (what a scope and a question are: cache/question.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]


@dataclass
class _Scope:
    vectors: Vector
    keys: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    added: list[float] = field(default_factory=list)
    where: dict[str, int] = field(default_factory=dict)  # key -> row


class VectorIndex:
    """Normalised vectors by scope, searched by brute force (a matrix-vector product per
    lookup: ~4 ms at 100,000 vectors of 384 dimensions in one scope, docs/benchmarks.md).
    Bounded: past `max_entries` the oldest tenth goes."""

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._scopes: dict[str, _Scope] = {}
        self._max = max_entries
        self._count = 0
        self._clock = clock

    def __len__(self) -> int:
        return self._count

    def add(self, scope: str, key: str, vector: Vector, text: str) -> None:
        vector = _normalised(vector)
        found = self._scopes.get(scope)
        if found is None:
            found = self._scopes[scope] = _Scope(np.empty((8, vector.shape[0]), dtype=np.float32))
        elif key in found.where:
            return
        n = len(found.keys)
        if n == found.vectors.shape[0]:
            grown = np.empty((n * 2, found.vectors.shape[1]), dtype=np.float32)
            grown[:n] = found.vectors
            found.vectors = grown
        found.vectors[n] = vector
        found.where[key] = n
        found.keys.append(key)
        found.texts.append(text)
        found.added.append(self._clock())
        self._count += 1
        if self._count > self._max:
            self._shrink()

    def rows(self, scope: str) -> int:
        found = self._scopes.get(scope)
        return len(found.keys) if found is not None else 0

    def search(self, scope: str, vector: Vector, threshold: float) -> list[tuple[float, str, str]]:
        """(score, key, text) of the entries at or above the threshold, best first."""
        found = self._scopes.get(scope)
        if found is None or not found.keys:
            return []
        n = len(found.keys)
        scores = found.vectors[:n] @ _normalised(vector)
        best = np.flatnonzero(scores >= threshold)
        order = best[np.argsort(-scores[best])][:8]
        return [(float(scores[i]), found.keys[i], found.texts[i]) for i in order]

    def remove(self, scope: str, key: str) -> None:
        found = self._scopes.get(scope)
        if found is None or key not in found.where:
            return
        i = found.where.pop(key)
        last = len(found.keys) - 1
        if i != last:  # the last row takes the removed one's place
            found.vectors[i] = found.vectors[last]
            found.keys[i], found.texts[i], found.added[i] = (
                found.keys[last],
                found.texts[last],
                found.added[last],
            )
            found.where[found.keys[i]] = i
        found.keys.pop()
        found.texts.pop()
        found.added.pop()
        self._count -= 1

    def clear(self) -> None:
        self._scopes.clear()
        self._count = 0

    def _shrink(self) -> None:
        everything = sorted(
            (added, scope, key)
            for scope, s in self._scopes.items()
            for key, added in zip(s.keys, s.added, strict=True)
        )
        for _, scope, key in everything[: max(1, self._max // 10)]:
            self.remove(scope, key)


def _normalised(vector: Vector) -> Vector:
    vector = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector
