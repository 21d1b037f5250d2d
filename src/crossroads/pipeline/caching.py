"""The cache step of an attempt: which requests are cached, under which key, how a hit is
answered (a stream replayed for a streaming request), and what is stored afterwards.

Turned on by the config's `cache` (any level, inherited down the tree), else the
`x-portkey-cache` header, else the `cache.mode` setting. The lookup happens per target, after
`override_params` and before the target's limits, so a hit costs no provider call and no
provider budget. Only complete, successful answers are stored, after they were delivered.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import msgspec

from crossroads.cache.key import cache_key, tenant_of
from crossroads.cache.messages import assemble_message, replay_message
from crossroads.cache.question import question
from crossroads.cache.service import Cache, Entry, Key, namespace_prefix
from crossroads.cache.streams import DONE, assemble, replay
from crossroads.config.schema import CacheSpec
from crossroads.errors import BadRequest, GatewayError
from crossroads.governance.directory import VirtualKeyAccess
from crossroads.pipeline.headers import RequestOptions
from crossroads.pipeline.outcome import CachePut, JsonOutcome, Meta, Outcome, SemanticPut, StreamOutcome
from crossroads.providers.base import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    IMAGES,
    MESSAGES,
    MODERATIONS,
    Call,
    Target,
)
from crossroads.secret import Secret
from crossroads.settings import CacheSettings
from crossroads.storage.store import StoreUnavailable

log = logging.getLogger("crossroads.cache")

if TYPE_CHECKING:  # numpy and the embedders load only when a request first asks for semantic caching
    from crossroads.cache.semantic import Vector
    from crossroads.cache.similar import SimilarAnswers

    Embed = Callable[[str, Target], Awaitable[Vector]]
    Semantic = tuple[SimilarAnswers, Embed, float]  # the index, the embedder, the threshold
CACHEABLE: Final = frozenset({CHAT, COMPLETIONS, EMBEDDINGS, MODERATIONS, IMAGES, MESSAGES})
REPLAYABLE: Final = frozenset({CHAT, COMPLETIONS, MESSAGES})  # streams we can store and replay
MODES: Final = frozenset({"simple", "semantic"})


@dataclass(slots=True)
class CacheRequest:
    """One request's cache settings, and what happened (the x-portkey-cache-status)."""

    default: CacheSpec | None
    namespace: str | None
    force_refresh: bool
    principal: str
    status: str = "DISABLED"


class Caching:
    def __init__(
        self,
        cache: Cache,
        settings: CacheSettings,
        semantic: Callable[[], Semantic] | None = None,
    ) -> None:
        self.cache = cache
        self._settings = settings
        self._default = CacheSpec(mode=settings.mode) if settings.mode else None
        self._semantic_factory = semantic
        self._semantic: Semantic | None = None
        self._embed_failing = False

    @property
    def semantic(self) -> Semantic | None:
        """The semantic cache's parts, made on first use."""
        if self._semantic is None and self._semantic_factory is not None:
            self._semantic = self._semantic_factory()
        return self._semantic

    def request(self, opts: RequestOptions, principal: str) -> CacheRequest:
        default = self._default
        if opts.cache is not None:
            mode = opts.cache.strip().lower()
            if mode not in MODES:
                raise BadRequest(
                    f"x-portkey-cache must be simple or semantic, got {opts.cache[:40]!r}",
                    param="x-portkey-cache",
                    code="invalid_header",
                )
            default = CacheSpec(mode=mode)  # type: ignore[arg-type]  # checked above
        return CacheRequest(
            default=default,
            namespace=opts.cache_namespace,
            force_refresh=opts.cache_force_refresh,
            principal=principal,
        )

    def spec(self, route_cache: CacheSpec | None, request: CacheRequest, call: Call) -> CacheSpec | None:
        spec = route_cache or request.default
        if spec is None or call.endpoint not in CACHEABLE:
            return None
        if call.stream and call.endpoint not in REPLAYABLE:
            return None
        return spec

    def key(self, call: Call, target: Target, vk: VirtualKeyAccess | None, request: CacheRequest) -> Key:
        return Key(namespace_prefix(request.namespace), self._digest(call, target, vk, request, call.json))

    def _digest(
        self,
        call: Call,
        target: Target,
        vk: VirtualKeyAccess | None,
        request: CacheRequest,
        body: dict[str, object] | None,
    ) -> str:
        credentials = [target.api_key] if target.api_key else []
        credentials += [v for v in target.options.values() if isinstance(v, Secret)]
        tenant = tenant_of(
            principal=request.principal, virtual_key=vk.id if vk else None, credentials=credentials
        )
        return cache_key(
            endpoint=call.endpoint,
            provider=target.provider,
            custom_host=target.custom_host,
            options=target.options,
            tenant=tenant,
            namespace=request.namespace,
            body=body,
            raw_body=call.body,
        )

    async def similar_answer(
        self,
        call: Call,
        target: Target,
        vk: VirtualKeyAccess | None,
        request: CacheRequest,
        provider: str,
        *,
        search: bool,
    ) -> tuple[Outcome | None, SemanticPut | None]:
        """A stored answer to a similar question (SEMANTIC HIT), or what to remember with this
        request's answer; (None, None) when the request has no question to compare or the
        embedder is unavailable (then only the exact cache applies)."""
        parts = self.semantic if call.json is not None and call.endpoint in REPLAYABLE else None
        if parts is None or call.json is None:
            return None, None
        similar, embed, threshold = parts
        found = question(call.json)
        if found is None:
            return None, None
        text, rest = found
        scope = self._digest(call, target, vk, request, rest)
        try:
            vector = await embed(text, target)
        except Exception as exc:  # the embedder is down or missing: the exact cache still works
            if not self._embed_failing:
                self._embed_failing = True
                log.warning("semantic cache: embedding failed, using the exact cache only: %s", exc)
            return None, None
        self._embed_failing = False
        namespace = namespace_prefix(request.namespace)
        if search:
            hit = await similar.find(self.cache, scope, namespace, vector, text, threshold)
            if hit is not None:
                self.cache.stats.semantic_hits += 1
                return answer_from(hit.entry, call, provider, "SEMANTIC HIT"), None
        return None, SemanticPut(scope=scope, vector=vector, text=text)

    def max_age_s(self, spec: CacheSpec) -> float:
        if spec.max_age is None:
            return float(self._settings.max_age_s)
        return spec.max_age / 1000 if self._settings.max_age_in_ms else float(spec.max_age)

    async def lookup(self, key: Key, call: Call, provider: str, status: str) -> Outcome | None:
        entry = await self.cache.get(key)
        if entry is None:
            return None
        return answer_from(entry, call, provider, status)

    def prepare(
        self,
        outcome: Outcome,
        key: Key,
        spec: CacheSpec,
        provider: str,
        status: str,
        semantic: SemanticPut | None = None,
        *,
        endpoint: str = CHAT,
    ) -> None:
        """Mark a fresh answer to be stored once delivered (only a 200; a stream only if complete)."""
        meta = outcome.meta
        meta.cache_status = status
        max_age = self.max_age_s(spec)
        if isinstance(outcome, JsonOutcome):
            if outcome.status == 200:
                meta.cache_put = CachePut(key=key, max_age_s=max_age, provider=provider, semantic=semantic)
        elif isinstance(outcome, StreamOutcome):
            put = CachePut(
                key=key,
                max_age_s=max_age,
                provider=provider,
                stream=[outcome.first],
                semantic=semantic,
                anthropic=endpoint == MESSAGES,
            )
            meta.cache_put = put
            _collect(outcome, put)

    async def clear(self, namespace: str | None) -> int:
        try:
            removed = await self.cache.clear(namespace)
            if namespace is None and self._semantic is not None:
                await self._semantic[0].clear()
        except StoreUnavailable as exc:
            raise GatewayError(
                f"the cache store cannot be reached: {exc}", status=503, code="cache_unavailable"
            ) from None
        return removed

    async def store(self, outcome: Outcome) -> None:
        put = outcome.meta.cache_put
        if put is None:
            return
        if put.stream is None:
            assert isinstance(outcome, JsonOutcome)
            body, content_type = outcome.body, outcome.content_type
        else:
            rebuild = assemble_message if put.anthropic else assemble
            answer = rebuild(b"".join(put.stream)) if put.complete else None
            if answer is None:
                return  # cut off, or not a stream we can replay: never stored
            body, content_type = msgspec.json.encode(answer), "application/json"
        entry = Entry(body=body, content_type=content_type, created=self.cache.clock(), provider=put.provider)
        await self.cache.put(put.key, entry, put.max_age_s)
        if put.semantic is not None and self._semantic is not None:
            semantic = put.semantic
            await self._semantic[0].remember(semantic.scope, put.key, semantic.vector, semantic.text)


def answer_from(entry: Entry, call: Call, provider: str, status: str) -> Outcome:
    """A cached answer in the form the request wants: JSON, or a replayed stream."""
    meta = Meta(provider=provider, cache_status=status)
    if call.stream:
        try:
            answer = msgspec.json.decode(entry.body)
        except msgspec.DecodeError:
            answer = None
        if isinstance(answer, dict):
            if call.endpoint == MESSAGES:  # Anthropic's events, which end without a terminator
                body, tail = replay_message(answer), b""
            else:
                include_usage = bool(((call.json or {}).get("stream_options") or {}).get("include_usage"))
                body, tail = replay(answer, include_usage=include_usage)[: -len(DONE)], DONE
            return StreamOutcome(
                first=body,
                rest=_nothing(),
                meta=meta,
                close=_noop,
                tail=lambda: tail,
                error_event=lambda error: b"",
            )
    return JsonOutcome(status=200, body=entry.body, content_type=entry.content_type, meta=meta)


def _collect(outcome: StreamOutcome, put: CachePut) -> None:
    pieces = put.stream
    assert pieces is not None
    rest, tail = outcome.rest, outcome.tail

    async def collected() -> AsyncIterator[bytes]:
        async for piece in rest:
            pieces.append(piece)
            yield piece

    def collected_tail() -> bytes:
        last = tail()
        pieces.append(last)
        put.complete = True  # the edge asks for the tail only after the stream ended normally
        return last

    outcome.rest = collected()
    outcome.tail = collected_tail


_NOTHING: Final[tuple[bytes, ...]] = ()


async def _nothing() -> AsyncIterator[bytes]:
    for piece in _NOTHING:  # an async generator that yields nothing
        yield piece


def _noop() -> None:
    return None
