"""The semantic cache's parts: what is compared, the guards, the vector index, and the real
local model (all-MiniLM-L6-v2, offline) at the default threshold on a labelled set of pairs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crossroads.cache.question import compatible, question
from crossroads.cache.semantic import VectorIndex
from crossroads.cache.similar import LocalEmbedder

PAIRS = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "semantic-pairs.json").read_text())


def test_the_last_user_message_is_compared_and_the_rest_is_scope() -> None:
    body: dict[str, Any] = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief"},
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi!"},
            {"role": "user", "content": [{"type": "text", "text": "What is the capital of France?"}]},
        ],
    }
    found = question(body)
    assert found is not None
    text, rest = found
    assert text == "What is the capital of France?"
    assert rest["messages"][:3] == body["messages"][:3]  # history and system prompt stay in the scope
    reworded = {
        **body,
        "messages": [*body["messages"][:3], {"role": "user", "content": "Capital of France?"}],
    }
    assert question(reworded) is not None and question(reworded)[1] == rest  # type: ignore[index]
    assert question({"model": "m", "prompt": "Say hi"}) == ("Say hi", {"model": "m", "prompt": "<compared>"})
    image = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": "x"}}]
    assert question({"messages": [{"role": "user", "content": image}]}) is None
    assert question({"messages": [{"role": "assistant", "content": "x"}]}) is None
    assert question({"messages": [{"role": "user", "content": "x" * 5000}]}) is None


def test_the_guards() -> None:
    assert compatible("What is the capital of France?", "What's the capital of France?")
    assert compatible("What is the capital of France?", "Tell me France's capital city")
    assert not compatible("Convert 10 miles to kilometers", "Convert 12 miles to kilometers")
    assert not compatible("Convert 10 miles to kilometers", "Convert 10 kilometers to miles")
    assert not compatible(
        "How do I convert Celsius to Fahrenheit?", "How do I convert from Fahrenheit to Celsius?"
    )
    assert compatible("Is 17 a prime number?", "Is 17 prime?")


def test_the_index_searches_one_scope_best_first_and_stays_bounded() -> None:
    index = VectorIndex(max_entries=100)
    east, north = np.array([1, 0, 0], dtype=np.float32), np.array([0, 1, 0], dtype=np.float32)
    index.add("s1", "k-east", east, "east")
    index.add("s1", "k-north", north, "north")
    index.add("s2", "k-other", east, "east elsewhere")
    near_east = np.array([0.9, 0.1, 0], dtype=np.float32)
    assert [k for _, k, _ in index.search("s1", near_east, 0.5)] == ["k-east"]
    assert [k for _, k, _ in index.search("s1", near_east, 0.0)] == ["k-east", "k-north"]
    assert index.search("s3", near_east, 0.0) == []
    index.remove("s1", "k-east")
    assert [k for _, k, _ in index.search("s1", near_east, 0.0)] == ["k-north"]
    for i in range(150):
        index.add("s4", f"k{i}", np.array([1, i, 0], dtype=np.float32), str(i))
    assert len(index) <= 100


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return LocalEmbedder(None)


async def test_the_default_threshold_on_labelled_pairs(embedder: LocalEmbedder) -> None:
    """Different questions never share an answer; most rewordings do (docs/caching.md)."""
    threshold = LocalEmbedder.default_threshold

    async def shares(a: str, b: str) -> bool:
        va, vb = await embedder.embed(a), await embedder.embed(b)
        return float(va @ vb) >= threshold and compatible(a, b)

    merged = [pair for pair in PAIRS["different"] if await shares(*pair)]
    assert merged == []
    caught = [pair for pair in PAIRS["same"] if await shares(*pair)]
    assert len(caught) >= 12, f"only {len(caught)} of {len(PAIRS['same'])} rewordings shared an answer"
    assert not await shares("What is the capital of France?", "What is the capital of Germany?")
    assert await shares("What is the capital of France?", "What's the capital of France?")


async def test_the_threshold_is_respected(embedder: LocalEmbedder) -> None:
    a, b = "What is the capital of France?", "Tell me France's capital city"  # ~0.91
    score = float((await embedder.embed(a)) @ (await embedder.embed(b)))
    index = VectorIndex(10)
    index.add("s", "k", await embedder.embed(a), a)
    assert index.search("s", await embedder.embed(b), score - 0.01)
    assert not index.search("s", await embedder.embed(b), score + 0.01)
