"""The pooled HTTP client every provider call goes through (aiohttp, keep-alive per origin).

Two pools: one for provider URLs the operator configured, one for caller-supplied custom
hosts whose DNS answers are checked against the SSRF policy before connecting. aiohttp's
exceptions are mapped to UpstreamUnavailable here and nowhere else.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import aiohttp.payload
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from crossroads.errors import UpstreamUnavailable
from crossroads.upstream.hosts import HostPolicy, HostRefused
from crossroads.upstream.response import UpstreamRequest


class GuardedResolver(AbstractResolver):
    """Resolves like the system resolver, then refuses private answers for untrusted names."""

    def __init__(self, policy: HostPolicy) -> None:
        self._policy = policy
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            self._policy.check_resolved(host, result["host"])
        return results

    async def close(self) -> None:
        await self._inner.close()


class HttpResponse:
    __slots__ = ("_resp",)

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp

    @property
    def status(self) -> int:
        return self._resp.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._resp.headers

    async def read(self, limit: int) -> bytes:
        resp = self._resp
        length = resp.content_length
        if length is not None and length > limit:
            resp.close()
            raise UpstreamUnavailable(f"the provider's response is larger than {limit} bytes")
        try:
            if length is not None:
                body = await resp.read()
            else:
                parts = []
                size = 0
                async for part in resp.content.iter_any():
                    size += len(part)
                    if size > limit:
                        resp.close()
                        raise UpstreamUnavailable(f"the provider's response is larger than {limit} bytes")
                    parts.append(part)
                body = b"".join(parts)
        except TimeoutError:
            resp.close()
            raise UpstreamUnavailable("the provider's response stalled (idle timeout)", status=504) from None
        except (aiohttp.ClientError, OSError) as exc:
            resp.close()
            raise UpstreamUnavailable(f"the provider's response broke off: {describe(exc)}") from None
        resp.release()
        return body

    async def chunks(self) -> AsyncIterator[bytes]:
        resp = self._resp
        try:
            async for part in resp.content.iter_any():
                yield part
        except TimeoutError:  # aiohttp's sock_read timeout: no byte for stream_idle_timeout_ms
            resp.close()
            raise UpstreamUnavailable("the provider's stream stalled (idle timeout)", status=504) from None
        except (aiohttp.ClientError, OSError) as exc:
            resp.close()
            raise UpstreamUnavailable(f"the provider's stream broke off: {describe(exc)}") from None

    def close(self) -> None:
        if not self._resp.closed:
            self._resp.close()


class UpstreamClient:
    def __init__(
        self,
        policy: HostPolicy,
        *,
        pool_size: int,
        connect_timeout_s: float,
        idle_timeout_s: float,
    ) -> None:
        self._policy = policy
        self._pool_size = pool_size
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout_s, sock_read=idle_timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._guarded: aiohttp.ClientSession | None = None

    def _new_session(self, resolver: AbstractResolver | None) -> aiohttp.ClientSession:
        kwargs: dict[str, Any] = {}
        if resolver is not None:
            kwargs["resolver"] = resolver
        connector = aiohttp.TCPConnector(
            limit=0,
            limit_per_host=self._pool_size,
            ttl_dns_cache=60,
            keepalive_timeout=30,
            **kwargs,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=True,
        )

    async def start(self) -> None:
        self._session = self._new_session(None)
        self._guarded = self._new_session(GuardedResolver(self._policy))

    async def close(self) -> None:
        for session in (self._session, self._guarded):
            if session is not None:
                await session.close()
        self._session = self._guarded = None

    async def send(self, request: UpstreamRequest) -> HttpResponse:
        session = self._guarded if request.guarded else self._session
        if session is None:
            raise RuntimeError("UpstreamClient.start() was not awaited")
        try:
            # encoded=True: the URL is sent exactly as built (yarl would otherwise decode
            # `%3A` in a Bedrock model id, and the SigV4 signature covers the encoded form).
            resp = await session.request(
                request.method,
                URL(request.url, encoded=True),
                headers=request.headers,
                data=aiohttp.payload.BytesPayload(request.body) if request.body else None,
                allow_redirects=False,
            )
        except HostRefused:
            raise
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, HostRefused):
                raise exc.os_error from None
            raise UpstreamUnavailable(f"could not connect: {describe(exc)}") from None
        except TimeoutError:
            raise UpstreamUnavailable(
                "the provider did not answer in time (connect or read timeout)", status=504
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamUnavailable(f"the request failed: {describe(exc)}") from None
        return HttpResponse(resp)


def describe(exc: BaseException) -> str:
    """A short, secret-free description of a transport failure (no URLs, no headers)."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "the host name could not be resolved"
    if isinstance(exc, aiohttp.ClientConnectorError):
        code = exc.os_error.errno if exc.os_error else None
        return os.strerror(code).lower() if code else "connect error"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "incomplete body"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"invalid response ({exc.status})"
    return type(exc).__name__
