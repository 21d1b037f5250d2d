"""A request's life after the HTTP edge: pick the target, make the attempt, shape the outcome.

`attempt` is the one place that talks to a provider: it builds the upstream request with
the provider's adapter, sends it (over HTTP, or in process for the mock), and returns an
Outcome once the answer is known to be good: for a stream, once its first chunk has
arrived, so that until then every failure is still an error the caller can act on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

from crossroads.codecs.sse import SSEError
from crossroads.errors import BadRequest, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from crossroads.pipeline.headers import RequestOptions
from crossroads.pipeline.outcome import JsonOutcome, Meta, Outcome, RawOutcome, StreamOutcome
from crossroads.providers.base import (
    CHAT,
    COMPLETIONS,
    Adapter,
    Call,
    StreamInterrupted,
    StreamTranslator,
    Target,
)
from crossroads.providers.openai import HOP_BY_HOP
from crossroads.providers.registry import Registry
from crossroads.settings import Settings
from crossroads.upstream.client import UpstreamClient
from crossroads.upstream.hosts import HostPolicy
from crossroads.upstream.response import UpstreamResponse

# Endpoints whose SSE we decode and translate; other streams are relayed as raw bytes.
_SSE_ENDPOINTS = frozenset({CHAT, COMPLETIONS})
# JSON endpoints whose answers we read whole (and could translate); others stream through.
_BUFFERED = frozenset(
    {
        CHAT,
        COMPLETIONS,
        "embeddings",
        "images.generations",
        "images.edits",
        "moderations",
        "models",
        "audio.transcriptions",
        "audio.translations",
    }
)


class Gateway:
    def __init__(
        self, settings: Settings, registry: Registry, client: UpstreamClient, hosts: HostPolicy
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.client = client
        self.hosts = hosts
        self._max_response = settings.max_response_bytes

    async def run(self, call: Call, opts: RequestOptions) -> Outcome:
        target = self.target_from_headers(opts)
        adapter = self.registry.get(target.provider)
        timeout_ms = target.request_timeout_ms or self.settings.request_timeout_ms
        try:
            async with asyncio.timeout(timeout_ms / 1000):
                return await self.attempt(adapter, call, target)
        except TimeoutError:
            raise UpstreamTimeout(
                f"Request exceeded the timeout sent in the request: {timeout_ms}ms", provider=adapter.name
            ) from None

    def target_from_headers(self, opts: RequestOptions) -> Target:
        if not opts.provider:
            raise BadRequest(
                "Either x-portkey-config or x-portkey-provider header is required "
                "(e.g. x-portkey-provider: openai, or mock to try the gateway offline)",
                param="x-portkey-provider",
                code="missing_provider",
            )
        self.registry.get(opts.provider)  # 400 naming the valid providers
        custom_host = self.hosts.check_url(opts.custom_host) if opts.custom_host else None
        return Target(
            provider=opts.provider,
            api_key=opts.api_key,
            custom_host=custom_host,
            forward_headers=opts.forward_headers,
            request_timeout_ms=opts.request_timeout_ms,
            strict_open_ai_compliance=opts.strict_open_ai_compliance,
            options=opts.options,
        )

    async def attempt(self, adapter: Adapter, call: Call, target: Target) -> Outcome:
        request = adapter.build(call, target)
        responder = adapter.responder
        resp = await (responder.respond(request) if responder is not None else self.client.send(request))
        keep_open = False
        try:
            status = resp.status
            if status >= 300:
                body = await resp.read(self._max_response)
                if status < 400:
                    raise UpstreamUnavailable(
                        f"{adapter.name} answered with an unexpected redirect ({status})",
                        provider=adapter.name,
                    )
                raise adapter.error(target, status, resp.headers, body)
            # Header-only requests are Portkey's implicit single-target config: index "config".
            meta = Meta(provider=adapter.name, last_used_option_index="config", headers=relayed(resp.headers))
            content_type = resp.headers.get("content-type", "")
            if content_type.startswith("text/event-stream") and call.endpoint in _SSE_ENDPOINTS:
                outcome: Outcome = await self._stream(adapter, call, target, resp, meta)
            elif call.endpoint in _BUFFERED and "json" in content_type:
                body = await resp.read(self._max_response)
                reply = adapter.parse(call, status, resp.headers, body)
                outcome = JsonOutcome(
                    status=reply.status, body=reply.body, content_type=reply.content_type, meta=meta
                )
            else:
                outcome = RawOutcome(
                    status=status,
                    headers={"content-type": content_type or "application/octet-stream"},
                    chunks=resp.chunks(),
                    meta=meta,
                    close=resp.close,
                )
            keep_open = not isinstance(outcome, JsonOutcome)
            return outcome
        finally:
            if not keep_open:
                resp.close()

    async def _stream(
        self, adapter: Adapter, call: Call, target: Target, resp: UpstreamResponse, meta: Meta
    ) -> StreamOutcome:
        translator = adapter.translator(call, target)
        relay = Relay(resp, translator, adapter.name)
        pieces = relay.pieces()
        try:
            first = await anext(pieces)
        except StreamInterrupted as exc:
            raise exc.error from None
        except StopAsyncIteration:
            if not relay.tail:
                raise UpstreamUnavailable(
                    f"{adapter.name} sent an empty stream", provider=adapter.name
                ) from None
            # Everything came out of the translator's close(): that is the whole stream.
            first, relay.tail = relay.tail, b""
        return StreamOutcome(
            first=first,
            rest=pieces,
            meta=meta,
            close=resp.close,
            tail=relay.take_tail,
            error_event=translator.error_event,
        )


class Relay:
    """Moves a stream from the provider to the client, through the translator.

    `pieces()` yields the output of each upstream read that produced any. The output of the
    translator's `close()` (the stream's terminator) is kept in `tail`, so the edge can send
    it with the response's final write. A failure raises StreamInterrupted after yielding
    the output that preceded it, so a stream's first piece is never lost to an error that
    followed it in the same read.
    """

    __slots__ = ("_provider", "_resp", "_translator", "tail")

    def __init__(self, resp: UpstreamResponse, translator: StreamTranslator, provider: str) -> None:
        self._resp = resp
        self._translator = translator
        self._provider = provider
        self.tail = b""

    def take_tail(self) -> bytes:
        tail, self.tail = self.tail, b""
        return tail

    async def pieces(self) -> AsyncIterator[bytes]:
        translator = self._translator
        try:
            async for chunk in self._resp.chunks():
                out = translator.feed(chunk)
                if out:
                    yield out
            self.tail = translator.close()
        except StreamInterrupted as exc:
            if exc.partial:
                partial, exc.partial = exc.partial, b""
                yield partial
            raise
        except UpstreamError as exc:
            raise StreamInterrupted(exc) from None
        except SSEError as exc:
            provider = self._provider
            raise StreamInterrupted(
                UpstreamUnavailable(f"{provider} sent a malformed stream: {exc}", provider=provider)
            ) from None
        finally:
            self._resp.close()


def relayed(headers: Mapping[str, str]) -> dict[str, str]:
    """Provider response headers worth passing to the client (rate limits, request ids)."""
    return {
        k: v
        for k, v in headers.items()
        if (lk := k.lower()) not in HOP_BY_HOP and lk != "content-type" and not lk.startswith("x-portkey-")
    }
