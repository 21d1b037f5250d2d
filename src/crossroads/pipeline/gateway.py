"""A request's life after the HTTP edge: pick the target, make the attempt, shape the outcome.

`attempt` is the one place that talks to a provider: it builds the upstream request with
the provider's adapter, sends it (over HTTP, or in process for the mock), and returns an
Outcome once the answer is known to be good: for a stream, once its first chunk has
arrived, so that until then every failure is still an error the caller can act on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, Final

import msgspec

from crossroads.codecs.sse import SSEError
from crossroads.config.source import ConfigSource
from crossroads.errors import (
    AllTargetsFailed,
    GatewayError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from crossroads.governance.directory import OPEN, Principal
from crossroads.governance.ledger import Reservation
from crossroads.governance.limits import estimate
from crossroads.observability.metrics import Metrics
from crossroads.observability.tracing import Tracing
from crossroads.pipeline import translation
from crossroads.pipeline.access import Access, check_model
from crossroads.pipeline.caching import CacheRequest, Caching
from crossroads.pipeline.headers import RequestOptions
from crossroads.pipeline.metering import StreamMeter, json_usage
from crossroads.pipeline.outcome import JsonOutcome, Meta, Outcome, RawOutcome, StreamOutcome
from crossroads.pipeline.plan import Planner, Route
from crossroads.pipeline.tokens import Tokens
from crossroads.providers.base import (
    CHAT,
    COMPLETIONS,
    COUNT_TOKENS,
    MESSAGES,
    Adapter,
    Call,
    StreamInterrupted,
    StreamTranslator,
    Target,
    TokenExchanger,
)
from crossroads.providers.openai import HOP_BY_HOP
from crossroads.providers.registry import Registry
from crossroads.routing.backoff import Backoff
from crossroads.routing.breaker import HealthStore
from crossroads.routing.engine import AttemptRecord, Router, RoutingFailed
from crossroads.routing.plan import Leaf
from crossroads.secret import redact
from crossroads.settings import Settings
from crossroads.upstream.client import UpstreamClient
from crossroads.upstream.response import UpstreamResponse

# Endpoints whose streams we decode and translate; other streams are relayed as raw bytes.
_SSE_ENDPOINTS = frozenset({CHAT, COMPLETIONS, MESSAGES})
_STREAM_TYPES = ("text/event-stream", "application/vnd.amazon.eventstream")
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
        MESSAGES,
        COUNT_TOKENS,
    }
)


class Gateway:
    def __init__(
        self,
        *,
        settings: Settings,
        registry: Registry,
        client: UpstreamClient,
        planner: Planner,
        configs: ConfigSource,
        health: HealthStore,
        access: Access | None = None,
        caching: Caching | None = None,
        tokens: Tokens | None = None,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.settings = settings
        self.access = access
        self.caching = caching
        self.tokens = tokens
        self.metrics = metrics
        self.tracing = tracing
        # Adapters whose credential is exchanged for an access token first, by name.
        self._exchangers: dict[str, TokenExchanger] = {
            slug: adapter for slug in registry if isinstance(adapter := registry.get(slug), TokenExchanger)
        }
        self.registry = registry
        self.client = client
        self.planner = planner
        self.configs = configs
        self.health = health
        self.backoff = Backoff(
            base_s=settings.retry_backoff_base_ms / 1000,
            cap_s=settings.retry_backoff_cap_ms / 1000,
            retry_after_cap_s=settings.retry_after_cap_ms / 1000,
        )
        self.rng = random.Random()  # noqa: S311  (load balancing and jitter, not secrets)
        self._max_response = settings.max_response_bytes

    async def run(self, call: Call, opts: RequestOptions, principal: Principal = OPEN) -> Outcome:
        access = self.access
        vks = {}
        if access is not None:
            call = access.admit(principal, call, opts)
        config = await self.configs.resolve(opts.config)
        if access is not None:
            vks = await access.virtual_keys(config, opts)
        node = (
            self.planner.from_config(config, opts, vks)
            if config is not None
            else self.planner.from_headers(opts, vks)
        )
        cache = self.caching.request(opts, principal.id) if self.caching is not None else None
        reservations: list[Reservation] = []
        if access is not None and principal.limits is not None:
            reservations.append(await access.reserve_for(principal.limits, call, "this API key"))
        router: Router[Route, Outcome] = Router(
            attempt=functools.partial(self._attempt, call, cache),
            deadline=time.monotonic() + self.settings.request_deadline_ms / 1000,
            clock=time.monotonic,
            wall=time.time,
            sleep=asyncio.sleep,
            rng=self.rng,
            health=self.health,
            backoff=self.backoff,
            context=_conditions_context(call) if config is not None else {},
        )
        debug = opts.debug or self.settings.routing_debug
        try:
            routed = await router.run(node)
        except BaseException as exc:
            self._count_attempts(router.attempts, cached=False)
            for reservation in reservations:
                await asyncio.shield(reservation.settle(None))
            if isinstance(exc, RoutingFailed):
                error = _failure(exc, router.attempts, debug)
                if cache is not None:
                    error.headers["x-portkey-cache-status"] = cache.status
                raise error from None
            raise
        outcome = routed.value
        meta = outcome.meta
        self._count_attempts(router.attempts, cached=meta.cached)
        meta.provider = routed.label
        meta.retry_attempt_count = routed.retries
        meta.last_used_option_index = routed.path
        if debug:
            meta.headers["x-crossroads-attempts"] = _attempts_header(routed.attempts)
        if reservations:
            meta.reservations += reservations
        if cache is not None and cache.status != "DISABLED":
            meta.cache_status = cache.status
        if meta.reservations and not meta.cached:
            meta.prompt_estimate = estimate(call.json, len(call.body))[0]
            if isinstance(outcome, StreamOutcome):
                _meter(outcome)
        return outcome

    def _count_attempts(self, attempts: list[AttemptRecord], *, cached: bool) -> None:
        """Tries at providers into the metrics (an answer from the cache was not one)."""
        metrics = self.metrics
        if metrics is None:
            return
        for record in attempts[:-1] if cached else attempts:
            metrics.attempt(record.label, record.status)

    async def clear_cache(self, namespace: str | None) -> int:
        """Drop the cached answers of one namespace (None: all of them); how many went."""
        if self.caching is None:
            return 0
        return await self.caching.clear(namespace)

    async def finish(self, outcome: Outcome) -> None:
        """Once the answer is delivered: settle the limits with what it used, store it in the cache."""
        meta = outcome.meta
        if meta.reservations:
            if meta.cached:
                tokens = (0, 0)  # a cache hit uses no provider tokens and costs nothing
            elif isinstance(outcome, JsonOutcome):
                tokens = json_usage(outcome.body) or (meta.prompt_estimate, 0)
            elif meta.meter is not None:
                tokens = meta.meter.tokens(meta.prompt_estimate)
            else:
                tokens = (meta.prompt_estimate, 0)
            for reservation in meta.reservations:
                await reservation.settle(tokens)
        if meta.cache_put is not None and self.caching is not None:
            await self.caching.store(outcome)

    async def _attempt(
        self, call: Call, cache: CacheRequest | None, leaf: Leaf[Route], remaining_s: float
    ) -> Outcome:
        """One try at one target, bounded by its request timeout and the request's deadline:
        from the cache when it holds the answer, else from the provider."""
        route = leaf.payload
        target = route.target
        adapter = self.registry.for_endpoint(target.provider, call.endpoint)
        timeout_ms = target.request_timeout_ms or self.settings.request_timeout_ms
        budget = min(timeout_ms / 1000, remaining_s)
        if route.override_params and call.json is not None:
            body = {**call.json, **route.override_params}
            call = msgspec.structs.replace(call, json=body, body=msgspec.json.encode(body))
        vk = route.virtual_key
        if vk is not None:
            check_model(vk, call.json.get("model") if call.json is not None else None)
        caching = self.caching
        spec = caching.spec(route.cache, cache, call) if caching is not None and cache is not None else None
        key = None
        semantic = None
        if spec is not None:
            assert caching is not None and cache is not None
            key = caching.key(call, target, vk, cache)
            if cache.force_refresh:
                cache.status = "REFRESH"
            else:
                hit = await caching.lookup(key, call, adapter.name, "HIT")
                if hit is not None:
                    cache.status = "HIT"
                    return hit
                cache.status = "MISS"
            if spec.mode == "semantic":
                search = not cache.force_refresh
                hit, semantic = await caching.similar_answer(
                    call, target, vk, cache, adapter.name, search=search
                )
                if hit is not None:
                    cache.status = "SEMANTIC HIT"
                    return hit
                if search and semantic is not None:  # compared, and nothing was close enough
                    cache.status = "SEMANTIC MISS"
        reservation = None
        if vk is not None and self.access is not None and vk.limits is not None:
            reservation = await self.access.reserve_for(vk.limits, call, f"virtual key {vk.slug!r}")
        try:
            outcome = await self._timed(adapter, call, target, budget, timeout_ms)
        except BaseException:
            if reservation is not None:
                await asyncio.shield(reservation.settle(None))
            raise
        if reservation is not None:
            outcome.meta.reservations.append(reservation)
        if key is not None:
            assert caching is not None and spec is not None and cache is not None
            caching.prepare(outcome, key, spec, adapter.name, cache.status, semantic, endpoint=call.endpoint)
        return outcome

    async def _timed(
        self, adapter: Adapter, call: Call, target: Target, budget: float, timeout_ms: int
    ) -> Outcome:
        try:
            async with asyncio.timeout(budget):
                return await self.attempt(adapter, call, target)
        except TimeoutError:
            if budget < timeout_ms / 1000:
                deadline = self.settings.request_deadline_ms
                message = f"The request's deadline ({deadline}ms) passed waiting for {adapter.name}"
            else:
                message = f"Request exceeded the timeout sent in the request: {timeout_ms}ms"
            raise UpstreamTimeout(message, provider=adapter.name) from None

    async def attempt(self, adapter: Adapter, call: Call, target: Target) -> Outcome:
        tracing = self.tracing
        if tracing is None:
            span_context: AbstractContextManager[Any] = _NO_SPAN
        else:
            model = call.json.get("model") if call.json is not None else None
            span_context = tracing.attempt(adapter.name, call.endpoint, model, target.custom_host or "")
        with span_context as span:
            try:
                return await self._send(adapter, call, target)
            except GatewayError as exc:
                if isinstance(exc, UpstreamError) and exc.provider is None:
                    exc.provider = adapter.name  # e.g. unreachable: still this provider's failure
                # Providers echo keys in their errors, whole or in part: none of it goes further.
                exc.message = redact(exc.message, *target.secrets())
                if tracing is not None:
                    tracing.failed(span, exc.http_status, exc.message)
                raise

    async def _send(self, adapter: Adapter, call: Call, target: Target) -> Outcome:
        exchanger = self._exchangers.get(adapter.name)
        if exchanger is not None and self.tokens is not None:
            target = await self.tokens.target_for(exchanger, target)
        request = translation.build(adapter, call, target)
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
            meta = Meta(provider=adapter.name, headers=relayed(resp.headers))
            content_type = resp.headers.get("content-type", "")
            if content_type.startswith(_STREAM_TYPES) and call.endpoint in _SSE_ENDPOINTS:
                outcome: Outcome = await self._stream(adapter, call, target, resp, meta)
            elif call.endpoint in _BUFFERED and "json" in content_type:
                body = await resp.read(self._max_response)
                reply = translation.parse(adapter, call, target, status, resp.headers, body)
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
        relay = Relay(resp, translator, adapter.name, target)
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


_NO_SPAN: Final = contextlib.nullcontext()  # attempts when tracing is off


class Relay:
    """Moves a stream from the provider to the client, through the translator.

    `pieces()` yields the output of each upstream read that produced any. The output of the
    translator's `close()` (the stream's terminator) is kept in `tail`, so the edge can send
    it with the response's final write. A failure raises StreamInterrupted after yielding
    the output that preceded it, so a stream's first piece is never lost to an error that
    followed it in the same read.
    """

    __slots__ = ("_provider", "_resp", "_target", "_translator", "tail")

    def __init__(
        self,
        resp: UpstreamResponse,
        translator: StreamTranslator,
        provider: str,
        target: Target | None = None,
    ) -> None:
        self._resp = resp
        self._translator = translator
        self._provider = provider
        self._target = target  # its credentials are scrubbed from an in-stream error
        self.tail = b""

    def take_tail(self) -> bytes:
        tail, self.tail = self.tail, b""
        return tail

    async def pieces(self) -> AsyncIterator[bytes]:
        translator = self._translator
        try:
            provider = self._provider
            async for chunk in self._resp.chunks():
                out = translation.feed(translator, chunk, provider)
                if out:
                    yield out
            self.tail = translation.close(translator, provider)
        except StreamInterrupted as exc:
            if self._target is not None:
                exc.error.message = redact(exc.error.message, *self._target.secrets())
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


def _meter(outcome: StreamOutcome) -> None:
    """Count what the stream delivers, for settling limits."""
    meter = outcome.meta.meter = StreamMeter()
    meter.observe(outcome.first)
    rest, tail = outcome.rest, outcome.tail

    async def observed() -> AsyncIterator[bytes]:
        async for piece in rest:
            meter.observe(piece)
            yield piece

    def observed_tail() -> bytes:
        last = tail()
        meter.observe(last)
        return last

    outcome.rest = observed()
    outcome.tail = observed_tail


def _conditions_context(call: Call) -> dict[str, Any]:
    """What conditional routing queries look at: metadata.*, params.* (the JSON body), url.pathname."""
    return {"metadata": call.metadata, "params": call.json or {}, "url": {"pathname": "/v1" + call.path}}


def _failure(failed: RoutingFailed, attempts: list[AttemptRecord], debug: bool) -> GatewayError:
    """The client's error when no target answered: the last failure's status and type, a
    message that sums up every attempt (no secrets: provider messages are redacted), and
    the routing headers."""
    error = failed.error
    if len(attempts) > 1:
        summary = "; ".join(
            f"{a.path} ({a.label}{', retry ' + str(a.retry) if a.retry else ''}): {a.status} {a.reason}"
            for a in attempts
        )
        error = AllTargetsFailed(
            f"All {len(attempts)} attempts failed: {summary}",
            provider=getattr(error, "provider", None),
            status=error.http_status,
            error_type=error.error_type,
            param=error.param,
            code=error.code,
            headers=dict(error.headers),
        )
    error.headers["x-portkey-retry-attempt-count"] = str(failed.retries)
    error.headers["x-portkey-last-used-option-index"] = failed.path
    if failed.label != "router":
        error.headers["x-portkey-provider"] = failed.label
    if debug:
        error.headers["x-crossroads-attempts"] = _attempts_header(attempts)
    return error


def _attempts_header(attempts: list[AttemptRecord]) -> str:
    return ", ".join(f"{a.path}={a.status}{'#' + str(a.retry) if a.retry else ''}" for a in attempts)


def relayed(headers: Mapping[str, str]) -> dict[str, str]:
    """Provider response headers worth passing to the client (rate limits, request ids)."""
    return {
        k: v
        for k, v in headers.items()
        if (lk := k.lower()) not in HOP_BY_HOP and lk != "content-type" and not lk.startswith("x-portkey-")
    }
