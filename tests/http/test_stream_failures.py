"""Streams that go wrong: errors inside a 200, upstreams that die, clients that leave."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.gateway import GatewayServer
from tests.support.upstream import FakeUpstream, Hang, Reply, Stream, fixture_bytes, sse

HEADERS = {"x-portkey-provider": "openai", "content-type": "application/json"}
CHUNK = {
    "id": "c1",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "delta": {"content": "Hel"}, "logprobs": None, "finish_reason": None}],
}
FINISH = {**CHUNK, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]}
STREAM_BODY = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]}


def open_stream(gateway: GatewayServer, fake: FakeUpstream) -> Iterator[httpx.Response]:
    with (
        gateway.client() as http,
        http.stream(
            "POST",
            "/v1/chat/completions",
            json=STREAM_BODY,
            headers={**HEADERS, "x-portkey-custom-host": f"{fake.url}/v1"},
        ) as resp,
    ):
        yield resp


def post_stream(gateway: GatewayServer, fake: FakeUpstream) -> tuple[int, bytes]:
    with contextlib.contextmanager(open_stream)(gateway, fake) as resp:
        body = b""
        try:
            for part in resp.iter_raw():
                body += part
        except httpx.RemoteProtocolError:
            body += b"<<incomplete>>"
        return resp.status_code, body


def events(body: bytes) -> list[str]:
    return [e.removeprefix("data: ") for e in body.decode().split("\n\n") if e.startswith("data: ")]


def test_upstream_dying_mid_stream_is_an_error_not_a_clean_end(
    gateway: GatewayServer, fake: FakeUpstream
) -> None:
    fake.on("POST", "/v1/chat/completions", Stream(chunks=sse([CHUNK, CHUNK], done=False), end="drop"))
    status, body = post_stream(gateway, fake)
    assert status == 200
    data = events(body)
    assert json.loads(data[0]) == CHUNK
    error = json.loads(data[-1])["error"]
    assert error["type"] == "api_error" and "broke off" in error["message"]
    assert "[DONE]" not in body.decode()
    assert body.endswith(b"<<incomplete>>"), "the transfer must end abnormally"


def test_upstream_closing_cleanly_without_finish_is_an_error(
    gateway: GatewayServer, fake: FakeUpstream
) -> None:
    fake.on("POST", "/v1/chat/completions", Stream(chunks=sse([CHUNK], done=False)))
    status, body = post_stream(gateway, fake)
    assert status == 200
    data = events(body)
    assert "ended the stream before it finished" in json.loads(data[-1])["error"]["message"]
    assert "[DONE]" not in body.decode() and body.endswith(b"<<incomplete>>")


def test_finished_stream_without_done_gets_done(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/chat/completions", Stream(chunks=sse([CHUNK, FINISH], done=False)))
    _, body = post_stream(gateway, fake)
    assert events(body)[-1] == "[DONE]"
    assert not body.endswith(b"<<incomplete>>")


def test_openrouter_error_inside_200_reaches_the_sdk(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on(
        "POST",
        "/v1/chat/completions",
        Stream(chunks=[fixture_bytes("openai-compatible/openrouter.stream.comments-and-error.sse.txt")]),
    )
    c = openai.OpenAI(
        api_key="k",
        base_url=f"{gateway.url}/v1",
        max_retries=0,
        default_headers={"x-portkey-provider": "openrouter", "x-portkey-custom-host": f"{fake.url}/v1"},
    )
    stream = c.chat.completions.create(
        model="minimax/minimax-m2:free", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIError, match="Token limit reached"):
        for _ in stream:
            pass


def test_error_event_before_any_content_is_an_http_error(gateway: GatewayServer, fake: FakeUpstream) -> None:
    error = {"error": {"message": "Overloaded", "type": "overloaded_error", "param": None, "code": 529}}
    fake.on("POST", "/v1/chat/completions", Stream(chunks=sse([error], done=False)))
    with gateway.client() as http:
        resp = http.post(
            "/v1/chat/completions",
            json=STREAM_BODY,
            headers={**HEADERS, "x-portkey-custom-host": f"{fake.url}/v1"},
        )
    assert resp.status_code == 529
    assert resp.json()["error"]["message"] == "openai error: Overloaded"
    assert resp.json()["provider"] == "openai"


def test_malformed_and_keepalive_chunks_do_not_crash(gateway: GatewayServer, fake: FakeUpstream) -> None:
    chunks = [
        b": keep-alive\n\n",
        b"event: ping\ndata: {}\n\n",
        b"data: {not json\n\n",
        *sse([CHUNK, FINISH]),
    ]
    fake.on("POST", "/v1/chat/completions", Stream(chunks=chunks))
    status, body = post_stream(gateway, fake)
    assert status == 200 and events(body)[-1] == "[DONE]"
    with gateway.client() as http:  # and the gateway still serves
        assert http.get("/health").status_code == 200


def test_chunks_are_forwarded_as_they_arrive(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/chat/completions", Stream(chunks=sse([CHUNK, CHUNK, FINISH]), gap=0.3))
    arrivals = []
    with contextlib.contextmanager(open_stream)(gateway, fake) as resp:
        start = time.monotonic()
        for _ in resp.iter_raw():
            arrivals.append(time.monotonic() - start)
    # The first chunk is not held back until the stream ends (which takes >= 0.9 s).
    assert arrivals[0] < arrivals[-1] - 0.4


def test_client_disconnect_mid_stream_cancels_the_upstream_request(
    gateway: GatewayServer, fake: FakeUpstream
) -> None:
    fake.on("POST", "/v1/chat/completions", Stream(chunks=sse([CHUNK] * 200), gap=0.05))
    with contextlib.contextmanager(open_stream)(gateway, fake) as resp:
        next(resp.iter_raw())
        # leaving the block closes the connection mid-answer
    assert fake.wait_for(lambda: bool(fake.requests) and fake.requests[-1].cancelled, timeout=5), (
        "the upstream request was not cancelled"
    )


@pytest.mark.parametrize("stream", [True, False])
def test_client_disconnect_before_headers_cancels_upstream(
    gateway: GatewayServer, fake: FakeUpstream, stream: bool
) -> None:
    fake.on("POST", "/v1/chat/completions", Hang())
    with pytest.raises(httpx.ReadTimeout), gateway.client(timeout=0.3) as http:
        http.post(
            "/v1/chat/completions",
            json={**STREAM_BODY, "stream": stream},
            headers={**HEADERS, "x-portkey-custom-host": f"{fake.url}/v1"},
        )
    assert fake.wait_for(lambda: bool(fake.requests) and fake.requests[-1].cancelled)


def test_request_timeout_is_408_timeout_error(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on(
        "POST", "/v1/chat/completions", Reply(body=fixture_bytes("openai/chat-completion.text.json"), delay=2)
    )
    with gateway.client() as http:
        resp = http.post(
            "/v1/chat/completions",
            json={**STREAM_BODY, "stream": False},
            headers={
                **HEADERS,
                "x-portkey-custom-host": f"{fake.url}/v1",
                "x-portkey-request-timeout": "200",
            },
        )
    assert resp.status_code == 408
    assert resp.json()["error"] == {
        "message": "Request exceeded the timeout sent in the request: 200ms",
        "type": "timeout_error",
        "param": None,
        "code": None,
    }
    assert fake.wait_for(lambda: fake.requests[-1].cancelled)


def test_request_timeout_bounds_the_first_chunk(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/chat/completions", Stream(chunks=[b": waiting\n\n", *sse([CHUNK, FINISH])], gap=1.0))
    with gateway.client() as http:
        resp = http.post(
            "/v1/chat/completions",
            json=STREAM_BODY,
            headers={
                **HEADERS,
                "x-portkey-custom-host": f"{fake.url}/v1",
                "x-portkey-request-timeout": "300",
            },
        )
    assert resp.status_code == 408
    assert resp.json()["error"]["type"] == "timeout_error"


def test_idle_timeout_between_chunks_ends_stream_with_error(fake: FakeUpstream) -> None:
    server = GatewayServer(stream_idle_timeout_ms=300).start()
    try:
        fake.on("POST", "/v1/chat/completions", Stream(chunks=sse([CHUNK, CHUNK, FINISH]), gap=1.5))
        status, body = post_stream(server, fake)
    finally:
        server.stop()
    assert status == 200
    error = json.loads(events(body)[-1])["error"]
    assert "stalled" in error["message"]
    assert body.endswith(b"<<incomplete>>")


ANTHROPIC_EVENTS = fixture_bytes("anthropic/messages.stream.text.sse.txt").split(b"\n\n")
ANTHROPIC_ERROR = (
    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
)
ANTHROPIC_PART = b"\n\n".join(ANTHROPIC_EVENTS[:4]) + b"\n\n"


@pytest.mark.parametrize(
    ("provider", "upstream", "route", "failure"),
    [
        ("openai", sse([CHUNK, CHUNK], done=False), "/v1/chat/completions", "drop"),
        ("anthropic", ANTHROPIC_PART + ANTHROPIC_ERROR, "/v1/chat/completions", "event"),
        ("anthropic", ANTHROPIC_PART, "/v1/chat/completions", "drop"),
        ("anthropic", ANTHROPIC_PART + ANTHROPIC_ERROR, "/v1/messages", "event"),
        ("openai", sse([CHUNK, CHUNK], done=False), "/v1/messages", "drop"),
    ],
)
def test_every_failed_stream_ends_the_same_way(
    gateway: GatewayServer, fake: FakeUpstream, provider: str, upstream: Any, route: str, failure: str
) -> None:
    """An in-stream error event and a dead upstream, from either provider, on either route: the
    partial answer, one error event in the route's shape, then an abnormal end (no terminator)."""
    path = "/v1/messages" if provider == "anthropic" else "/v1/chat/completions"
    chunks = upstream if isinstance(upstream, list) else [upstream]
    fake.on("POST", path, Stream(chunks=chunks, end="drop" if failure == "drop" else "close"))
    body = {"model": "m", "max_tokens": 10, "stream": True, "messages": [{"role": "user", "content": "x"}]}
    head = {"x-portkey-provider": provider, "x-portkey-custom-host": f"{fake.url}/v1"}
    head["authorization"] = "Bearer k"
    raw = b""
    with gateway.client() as http, http.stream("POST", route, json=body, headers=head) as resp:
        assert resp.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            for part in resp.iter_raw():
                raw += part
    frames = [f for f in raw.decode().split("\n\n") if f.strip()]
    data = [json.loads(line[6:]) for f in frames for line in f.splitlines() if line.startswith("data: {")]
    assert len(data) >= 2  # some of the answer, then the error
    last = data[-1]
    assert "error" in last and sum("error" in d for d in data) == 1
    if route == "/v1/messages":
        assert last["type"] == "error" and frames[-1].startswith("event: error")
    expected = "Overloaded" if failure == "event" else "broke off"
    assert expected in (last["error"]["message"])
    assert "[DONE]" not in raw.decode() and "message_stop" not in raw.decode()
