"""A small round-robin HTTP load balancer for tests: what nginx does in deploy/docker-compose.yml.

Each request goes to the next backend in turn (a connection refused moves on to the next one,
as nginx's `proxy_next_upstream error`); the answer is relayed chunk by chunk, with an
`x-upstream` header naming the backend's index, and `served` records every choice.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Final

import aiohttp
from aiohttp import web

UPSTREAM_HEADER: Final = "x-upstream"
_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


class RoundRobin:
    def __init__(self, backends: Sequence[str]) -> None:
        self.backends = list(backends)
        self.served: list[int] = []  # the backend index of every request, in arrival order
        self._next = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    def start(self) -> RoundRobin:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(
            auto_decompress=False,
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._relay)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _relay(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        first = self._next
        self._next = (self._next + 1) % len(self.backends)
        for offset in range(len(self.backends)):
            index = (first + offset) % len(self.backends)
            try:
                upstream = await self._session.request(
                    request.method,
                    self.backends[index] + request.path_qs,
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                )
            except aiohttp.ClientConnectorError:
                continue  # not reached: nothing was sent, the next backend may take it
            self.served.append(index)
            async with upstream:
                response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
                for name, value in upstream.headers.items():
                    if name.lower() not in _HOP_BY_HOP:
                        response.headers.add(name, value)
                response.headers[UPSTREAM_HEADER] = str(index)
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
        return web.json_response(
            {"error": {"message": "no backend reachable", "type": "bad_gateway"}}, status=502
        )
