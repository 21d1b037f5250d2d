"""The guard around translators: a slip is the caller's 400, the provider's 502, or an
interrupted stream, never an exception that would be a 500."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from crossroads.errors import UpstreamUnavailable
from crossroads.pipeline import translation
from crossroads.providers.base import Call, Reply, StreamInterrupted, Target
from crossroads.upstream.response import UpstreamRequest

CALL = Call(
    endpoint="chat",
    method="POST",
    path="/chat/completions",
    query="",
    body=b"{}",
    json={},
    content_type="application/json",
    stream=False,
    headers={},
    request_id="r",
    trace_id="t",
    metadata={},
)
TARGET = Target(provider="slippy")


class Slippy:
    name = "slippy"
    endpoints = frozenset({"chat"})
    responder = None

    def build(self, call: Call, target: Target) -> UpstreamRequest:
        return call.json["stop"][0]  # type: ignore[index,no-any-return]

    def parse(
        self, call: Call, target: Target, status: int, headers: Mapping[str, str], body: bytes
    ) -> Reply:
        raise KeyError("choices")

    def error(self, target: Target, status: int, headers: Mapping[str, str], body: bytes) -> Any:
        return None

    def translator(self, call: Call, target: Target) -> Any:
        return self

    def feed(self, data: bytes) -> bytes:
        return data.decode().upper().foo  # type: ignore[attr-defined,no-any-return]

    def close(self) -> bytes:
        raise IndexError("list index out of range")


def test_a_request_slip_is_a_400_that_says_so() -> None:
    with pytest.raises(translation.InvalidShape) as caught:
        translation.build(Slippy(), CALL, TARGET)
    assert caught.value.http_status == 400 and "the shape slippy needs" in caught.value.message
    assert caught.value.code == "invalid_request_shape"


def test_an_answer_slip_is_a_502() -> None:
    with pytest.raises(UpstreamUnavailable) as caught:
        translation.parse(Slippy(), CALL, TARGET, 200, {}, b"{}")
    assert caught.value.http_status == 502 and caught.value.provider == "slippy"


def test_a_stream_slip_interrupts_the_stream() -> None:
    translator: Any = Slippy()
    with pytest.raises(StreamInterrupted) as caught:
        translation.feed(translator, b"data: x\n\n", "slippy")
    assert "unexpected shape" in caught.value.error.message
    with pytest.raises(StreamInterrupted):
        translation.close(translator, "slippy")
