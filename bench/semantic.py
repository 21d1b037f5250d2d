"""Semantic-cache lookup time: `python -m bench.semantic` (also run by `make bench`).

A vector index of 10,000 and 100,000 random 384-dimension vectors (the size of
all-MiniLM-L6-v2's) in one scope, the worst case: the median time of a search over 200
queries. And, when the local model is installed, the time to embed one question.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import numpy as np

from crossroads.cache.semantic import VectorIndex
from crossroads.cache.similar import LocalEmbedder, local_embedder_installed

DIMENSIONS = 384


def lookup_ms(size: int, queries: int = 200) -> float:
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((size, DIMENSIONS)).astype(np.float32)
    index = VectorIndex(max_entries=size)
    for i in range(size):
        index.add("scope", f"k{i}", vectors[i], "")
    times = []
    for i in range(queries):
        query = vectors[i % size] + rng.standard_normal(DIMENSIONS).astype(np.float32) * 0.1
        start = time.perf_counter()
        index.search("scope", query, 0.9)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


async def embed_ms(count: int = 50) -> float:
    embedder = LocalEmbedder(None)
    await embedder.embed("warm up")
    start = time.perf_counter()
    for i in range(count):
        await embedder.embed(f"What is the capital of country number {i}?")
    return (time.perf_counter() - start) / count * 1000


def report() -> str:
    lines = [
        f"semantic lookup, {n:,} vectors in one scope: {lookup_ms(n):.2f} ms (median)"
        for n in (10_000, 100_000)
    ]
    if local_embedder_installed():
        lines.append(
            f"local embedding (all-MiniLM-L6-v2, CPU): {asyncio.run(embed_ms()):.1f} ms per question"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
