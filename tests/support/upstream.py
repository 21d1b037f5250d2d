"""A fake provider: a real aiohttp server on a loopback port, in its own thread.

Tests queue what it should answer (`Reply`, `Stream`, `Hang`) per method and path and read
back what it received (`Recorded`): method, path, query, headers and body, plus whether the
gateway went away before the answer was complete.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@dataclass
class Recorded:
    method: str
    path: str  # percent-decoded
    query: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    peer: tuple[str, int] | None = None  # the gateway's end of the connection (keep-alive reuse)
    raw_path: str = ""  # as sent, still percent-encoded
    cancelled: bool = False  # the client closed the connection before we finished answering

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0  # before the response headers


@dataclass
class Stream:
    """SSE (or any chunked body): `chunks` written one by one, `gap` seconds apart."""

    chunks: list[bytes]
    gap: float = 0.0
    delay: float = 0.0
    end: str = "clean"  # clean | drop (abort the connection after the chunks) | hang
    status: int = 200
    content_type: str = "text/event-stream"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Hang:
    """Accept the request and never answer (until the client goes away)."""


Behaviour = Reply | Stream | Hang
Responder = Behaviour | Callable[[Recorded], Behaviour]


def sse(payloads: Iterable[bytes | str | dict[str, Any]], *, done: bool = True) -> list[bytes]:
    out = []
    for payload in payloads:
        data = (
            payload
            if isinstance(payload, bytes)
            else (payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
        )
        out.append(b"data: " + data + b"\n\n")
    if done:
        out.append(b"data: [DONE]\n\n")
    return out


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> Any:
    return json.loads(fixture_bytes(name))


def jsonl_as_sse(name: str, *, done: bool = True) -> list[bytes]:
    lines = [line for line in fixture_bytes(name).splitlines() if line.strip()]
    return sse(lines, done=done)


class FakeUpstream:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._routes: dict[tuple[str, str], list[Responder]] = {}
        self._defaults: dict[tuple[str, str], Responder] = {}
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeUpstream:
        # A gateway hanging up on us is what several tests provoke on purpose.
        logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- programming ---------------------------------------------------------------------------

    def on(self, method: str, path: str, *responders: Responder) -> FakeUpstream:
        """Queue answers for the next requests to `method path`; the last one repeats."""
        with self._lock:
            self._routes[(method, path)] = list(responders[:-1])
            self._defaults[(method, path)] = responders[-1]
        return self

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._routes.clear()
            self._defaults.clear()

    def last(self) -> Recorded:
        assert self.requests, "the fake upstream received no request"
        return self.requests[-1]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()

    # -- serving ---------------------------------------------------------------------------------

    def _next(self, key: tuple[str, str]) -> Responder | None:
        with self._lock:
            queue = self._routes.get(key)
            if queue:
                return queue.pop(0)
            return self._defaults.get(key)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        record = Recorded(
            method=request.method,
            path=request.path,
            query=request.query_string,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            peer=request.transport.get_extra_info("peername")[:2] if request.transport else None,
            raw_path=request.raw_path.split("?", 1)[0],
        )
        self.requests.append(record)
        responder = self._next((request.method, request.path))
        if responder is None:
            return web.json_response(
                {
                    "error": {
                        "message": f"fake: no route for {request.method} {request.path}",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": None,
                    }
                },
                status=404,
            )
        behaviour = responder(record) if callable(responder) else responder
        try:
            return await self._play(request, behaviour, record)
        except (asyncio.CancelledError, ConnectionResetError):
            record.cancelled = True
            raise

    async def _play(self, request: web.Request, behaviour: Behaviour, record: Recorded) -> web.StreamResponse:
        if isinstance(behaviour, Hang):
            await self._sleep_watching(request, 3600, record)
        if isinstance(behaviour, Reply):
            if behaviour.delay:
                await self._sleep_watching(request, behaviour.delay, record)
            data = behaviour.body
            raw = json.dumps(data).encode() if isinstance(data, dict | list) else data
            return web.Response(
                status=behaviour.status,
                body=raw,
                headers={"content-type": behaviour.content_type, **behaviour.headers},
            )
        assert isinstance(behaviour, Stream)
        if behaviour.delay:
            await self._sleep_watching(request, behaviour.delay, record)
        resp = web.StreamResponse(
            status=behaviour.status, headers={"content-type": behaviour.content_type, **behaviour.headers}
        )
        await resp.prepare(request)
        for number, chunk in enumerate(behaviour.chunks):
            if number and behaviour.gap:
                await self._sleep_watching(request, behaviour.gap, record)
            await resp.write(chunk)
        if behaviour.end == "drop":
            assert request.transport is not None
            request.transport.abort()
            return resp
        if behaviour.end == "hang":
            await self._sleep_watching(request, 3600, record)
        await resp.write_eof()
        return resp

    async def _sleep_watching(self, request: web.Request, seconds: float, record: Recorded) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(min(0.02, max(0.0, deadline - time.monotonic())))
            if request.transport is None or request.transport.is_closing():
                record.cancelled = True
                raise ConnectionResetError
