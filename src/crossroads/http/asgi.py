"""The ASGI application: the only code that knows the web server.

One generic handler serves every route: match the route, read the body (bounded), parse
the Portkey headers, build the Call, run the pipeline while watching for the client to go
away, and write the outcome. Every response, errors included, carries
`x-portkey-request-id` and `x-portkey-trace-id`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

import msgspec

from crossroads import __version__
from crossroads.codecs.sse import frame
from crossroads.errors import AuthError, BadRequest, GatewayError, NotFound, PayloadTooLarge
from crossroads.governance.admin import Admin
from crossroads.governance.directory import OPEN, Principal
from crossroads.http import admin as admin_routes
from crossroads.http import routes
from crossroads.ids import new_id
from crossroads.observability.metrics import CONTENT_TYPE, Metrics
from crossroads.observability.tracing import Tracing, request_attributes
from crossroads.pipeline.access import Access
from crossroads.pipeline.gateway import Gateway
from crossroads.pipeline.headers import TRACE_ID_MAX, RequestOptions, parse_options
from crossroads.pipeline.outcome import JsonOutcome, Meta, Outcome, RawOutcome, StreamOutcome
from crossroads.providers.anthropic.stream import anthropic_error_body
from crossroads.providers.base import COUNT_TOKENS, MESSAGES, PROXY, Call, StreamInterrupted

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("crossroads")
_decode = msgspec.json.decode
_encode = msgspec.json.encode

_JSON: Final = b"application/json"
_SSE_HEADERS: Final = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)
_CACHE_DISABLED: Final = (b"x-portkey-cache-status", b"DISABLED")
_ADMIN_MAX_BODY: Final = 1024 * 1024
_LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})
# GET /: what this is and where to go; every link is served by this gateway.
_ROOT: Final = _encode(
    {
        "name": "crossroads",
        "version": __version__,
        "api": "/v1",
        "health": "/health",
        "ready": "/ready",
        "metrics": "/metrics",
    }
)


class ClientGone(Exception):
    """The client disconnected while we were still reading its request."""


class Exchange:
    """One request/response pair: what has been sent, and whether the client left."""

    __slots__ = (
        "anthropic",
        "base_headers",
        "cache",
        "call",
        "disconnected",
        "finished",
        "first_byte",
        "inference",
        "interrupted",
        "provider",
        "send",
        "started",
        "status",
        "streamed",
    )

    def __init__(self, send: Send, base_headers: list[tuple[bytes, bytes]]) -> None:
        self.send = send
        self.base_headers = base_headers
        self.started = False
        # For the metrics: what was answered, by whom, and when the first byte went.
        self.status = 0
        self.first_byte = 0.0
        self.provider: str | None = None
        self.cache = "DISABLED"
        self.interrupted = False
        self.call: Call | None = None  # for the trace: the model and metadata
        self.streamed = False  # an event stream: the time to its first byte is measured
        self.finished = False
        self.disconnected = False
        self.anthropic = False  # errors in Anthropic's shape (the /v1/messages routes)
        self.inference = False  # a provider route: its responses carry x-portkey-cache-status

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.started = True
        self.status = status
        self.first_byte = time.perf_counter()
        await self.send({"type": "http.response.start", "status": status, "headers": headers})

    async def chunk(self, data: bytes) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": True})

    async def finish(self, data: bytes = b"") -> None:
        self.finished = True
        await self.send({"type": "http.response.body", "body": data, "more_body": False})

    async def json(
        self,
        status: int,
        body: bytes,
        extra: list[tuple[bytes, bytes]] | None = None,
        content_type: bytes = _JSON,
    ) -> None:
        headers = [
            *self.base_headers,
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
        ]
        if extra:
            headers += extra
        await self.start(status, headers)
        await self.finish(body)

    async def error(self, exc: GatewayError) -> None:
        self.provider = self.provider or getattr(exc, "provider", None)
        self.cache = exc.headers.get("x-portkey-cache-status", self.cache)
        extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
        if self.inference and "x-portkey-cache-status" not in exc.headers:
            extra.append(_CACHE_DISABLED)
        body = anthropic_error_body(exc) if self.anthropic else exc.render()
        await self.json(exc.http_status, body, extra)


class GatewayApp:
    def __init__(
        self,
        gateway: Gateway,
        *,
        max_request_bytes: int,
        on_startup: Callable[[], Awaitable[None]],
        on_shutdown: Callable[[], Awaitable[None]],
        admin: Admin | None = None,
        metrics: Metrics | None = None,
        metrics_public: bool = False,
        tracing: Tracing | None = None,
    ) -> None:
        self.gateway = gateway
        self.tracing = tracing
        self.admin = admin
        self.metrics = metrics
        self.metrics_public = metrics_public
        self.max_request_bytes = max_request_bytes
        self._on_startup = on_startup
        self._on_shutdown = on_shutdown
        self.ready = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._on_startup()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                self.ready = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.ready = False
                await self._on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- one request ----------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        began = time.perf_counter()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = new_id()
        trace_id = headers.get("x-portkey-trace-id", "").strip()
        bad_trace = len(trace_id) > TRACE_ID_MAX or not trace_id.isprintable()
        if not trace_id or bad_trace:
            trace_id = new_id()
        exchange = Exchange(
            send,
            [
                (b"x-portkey-request-id", request_id.encode()),
                (b"x-portkey-trace-id", trace_id.encode("latin-1")),
            ],
        )
        method: str = scope["method"]
        path: str = scope["path"]
        metrics = self.metrics
        endpoint = ""
        traced: tuple[Any, object] | None = None
        if metrics is not None:
            metrics.began()
        try:
            route = routes.match(method, path)
            if route.endpoint == routes.METRICS:
                await self._metrics(scope, headers, exchange)
                return
            if route.endpoint in routes.LOCAL_ENDPOINTS:
                await self._local(route.endpoint, method, exchange)
                return
            if route.endpoint == routes.ADMIN:
                await self._admin(route.path, method, scope, headers, receive, exchange)
                return
            exchange.inference = True
            endpoint = route.endpoint
            if self.tracing is not None:
                shown = path if route.endpoint != PROXY else "/v1/*"
                traced = self.tracing.start(method, shown, headers)
            exchange.anthropic = route.endpoint in (MESSAGES, COUNT_TOKENS)
            if bad_trace:
                raise BadRequest(
                    f"x-portkey-trace-id must be printable text of at most {TRACE_ID_MAX} characters",
                    param="x-portkey-trace-id",
                    code="invalid_header",
                )
            opts = parse_options(headers)
            access = self.gateway.access
            principal = await access.authenticate(opts) if access is not None else OPEN
            body = await _read_body(receive, self.max_request_bytes, headers.get("content-length"))
            call = exchange.call = _build_call(
                route,
                method=method,
                scope=scope,
                body=body,
                headers=headers,
                request_id=request_id,
                trace_id=trace_id,
                metadata=opts.metadata,
            )
            await self._run(call, opts, principal, exchange, receive)
        except ClientGone:
            return
        except GatewayError as exc:
            if not exchange.started:
                await exchange.error(exc)
        except Exception:
            log.exception("internal error (request %s)", request_id)
            if not exchange.started:
                await exchange.error(GatewayError(f"internal gateway error (request id {request_id})"))
        finally:
            if metrics is not None:
                metrics.ended()
                if endpoint:
                    _measure(metrics, endpoint, exchange, began)
            if traced is not None and self.tracing is not None:
                self.tracing.end(
                    *traced, _trace_attributes(endpoint, exchange, request_id, trace_id), _status(exchange)
                )

    async def _admin(
        self,
        path: str,
        method: str,
        scope: Scope,
        headers: dict[str, str],
        receive: Receive,
        exchange: Exchange,
    ) -> None:
        """The control plane: authenticate, check the operation's scope, run it, answer JSON."""
        access = self.gateway.access
        if self.admin is None or access is None:
            raise NotFound(f"Invalid URL ({method} {path}): the admin API is not enabled", code="unknown_url")
        principal = await access.authenticate(parse_options(headers))
        if principal is OPEN and (scope.get("client") or ("",))[0] not in _LOOPBACK:
            raise AuthError(
                "The admin API needs an API key when called from another machine "
                "(this gateway has no keys yet: create one from this machine, "
                "or with `crossroads keys create`)",
                code="missing_api_key",
            )
        body = await _read_body(receive, _ADMIN_MAX_BODY, headers.get("content-length"))
        query: bytes = scope.get("query_string", b"")
        if path == "/cache" or path.startswith("/cache/"):
            needed, operation = admin_routes.cache(self.gateway.clear_cache, method, path, query)
        else:
            needed, operation = admin_routes.resolve(self.admin, method, path, body)
        Access.require(principal, needed)
        result = admin_routes.paginate(await operation(), query)
        await exchange.json(200, _encode(result))

    async def _run(
        self, call: Call, opts: RequestOptions, principal: Principal, exchange: Exchange, receive: Receive
    ) -> None:
        task = asyncio.current_task()
        assert task is not None

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    if not exchange.finished:
                        exchange.disconnected = True
                        task.cancel()
                    return

        watcher = asyncio.get_running_loop().create_task(watch())
        outcome: Outcome | None = None
        try:
            outcome = await self.gateway.run(call, opts, principal)
            exchange.provider, exchange.cache = outcome.meta.provider, outcome.meta.cache_status
            await self._write(outcome, exchange)
        except asyncio.CancelledError:
            if exchange.disconnected:
                task.uncancel()
                log.info("client disconnected; upstream request cancelled (request %s)", call.request_id)
                return
            # The server is stopping and the drain window is over.
            task.uncancel()
            if not exchange.started:
                await exchange.error(
                    GatewayError("the gateway is shutting down", status=503, code="shutting_down")
                )
            elif not exchange.finished:
                await exchange.chunk(_error_event("the gateway is shutting down", "shutting_down"))
        finally:
            watcher.cancel()
            if outcome is not None and outcome.meta.pending:
                # Inline, not a task per request; a cancel arriving here keeps the estimate.
                await self.gateway.finish(outcome)

    async def _write(self, outcome: Outcome, exchange: Exchange) -> None:
        meta_headers = _meta_headers(outcome.meta)
        if isinstance(outcome, JsonOutcome):
            await exchange.json(
                outcome.status, outcome.body, meta_headers, outcome.content_type.encode("latin-1")
            )
            return
        if isinstance(outcome, StreamOutcome):
            await self._write_stream(outcome, exchange, meta_headers)
            return
        await self._write_raw(outcome, exchange, meta_headers)

    async def _write_stream(
        self, outcome: StreamOutcome, exchange: Exchange, meta_headers: list[tuple[bytes, bytes]]
    ) -> None:
        exchange.streamed = True
        try:
            await exchange.start(200, [*exchange.base_headers, *_SSE_HEADERS, *meta_headers])
            await exchange.chunk(outcome.first)
            try:
                async for piece in outcome.rest:
                    await exchange.chunk(piece)
            except StreamInterrupted as exc:
                # The answer is incomplete: say so, then end without the terminating chunk,
                # so that even a client ignoring the event sees a broken transfer.
                log.warning("stream interrupted: %s", exc.error.message)
                exchange.interrupted = True
                await exchange.chunk(outcome.error_event(exc.error))
                return
            await exchange.finish(outcome.tail())
        finally:
            outcome.close()

    async def _write_raw(
        self, outcome: RawOutcome, exchange: Exchange, meta_headers: list[tuple[bytes, bytes]]
    ) -> None:
        try:
            headers = [*exchange.base_headers, *meta_headers]
            headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in outcome.headers.items()]
            await exchange.start(outcome.status, headers)
            try:
                async for chunk in outcome.chunks:
                    if chunk:
                        await exchange.chunk(chunk)
            except GatewayError as exc:
                log.warning("response body interrupted: %s", exc.message)
                exchange.interrupted = True
                return  # no terminating chunk: the client sees an incomplete body
            await exchange.finish()
        finally:
            outcome.close()

    async def _metrics(self, scope: Scope, headers: dict[str, str], exchange: Exchange) -> None:
        """GET /metrics: Prometheus text. A key with `metrics.read` (or, while the gateway has no
        keys, a call from this machine), unless `metrics.public` is set."""
        metrics = self.metrics
        if metrics is None:
            raise NotFound("metrics are turned off (metrics.enabled: false)", code="unknown_url")
        if not self.metrics_public:
            access = self.gateway.access
            principal = await access.authenticate(parse_options(headers)) if access is not None else OPEN
            if principal is OPEN:
                if (scope.get("client") or ("",))[0] not in _LOOPBACK:
                    raise AuthError(
                        "/metrics needs an API key with the metrics.read scope when called from another "
                        "machine (or set metrics.public: true)",
                        code="missing_api_key",
                    )
            else:
                Access.require(principal, "metrics.read")
        await exchange.json(200, metrics.exposition(), content_type=CONTENT_TYPE.encode())

    async def _local(self, endpoint: str, method: str, exchange: Exchange) -> None:
        if endpoint == "health":
            status, body = 200, b'{"status":"ok"}'
        elif endpoint == "ready":
            status, body = (200, b'{"status":"ready"}') if self.ready else (503, b'{"status":"starting"}')
        else:
            status, body = 200, _ROOT
        if method == "HEAD":
            headers = [
                *exchange.base_headers,
                (b"content-type", _JSON),
                (b"content-length", str(len(body)).encode()),
            ]
            await exchange.start(status, headers)
            await exchange.finish()
            return
        await exchange.json(status, body)


def _status(exchange: Exchange) -> int:
    """What the client got (499: it left before any answer)."""
    return exchange.status or (499 if exchange.disconnected else 500)


def _trace_attributes(endpoint: str, exchange: Exchange, request_id: str, trace_id: str) -> dict[str, Any]:
    call = exchange.call
    return request_attributes(
        endpoint=endpoint,
        provider=exchange.provider,
        model=call.json.get("model") if call is not None and call.json is not None else None,
        cache=exchange.cache,
        request_id=request_id,
        trace_id=trace_id,
        metadata=call.metadata if call is not None else {},
    )


def _measure(metrics: Metrics, endpoint: str, exchange: Exchange, began: float) -> None:
    """One answered request into the metrics."""
    now = time.perf_counter()
    status = _status(exchange)
    first_byte = exchange.first_byte - began if exchange.streamed else None
    metrics.request(
        endpoint, exchange.provider, status, exchange.cache, now - began, first_byte, exchange.interrupted
    )


def _meta_headers(meta: Meta) -> list[tuple[bytes, bytes]]:
    out = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in meta.headers.items()]
    if meta.provider is not None:
        out.append((b"x-portkey-provider", meta.provider.encode()))
    out.append((b"x-portkey-retry-attempt-count", str(meta.retry_attempt_count).encode()))
    if meta.last_used_option_index is not None:
        out.append((b"x-portkey-last-used-option-index", meta.last_used_option_index.encode()))
    out.append((b"x-portkey-cache-status", meta.cache_status.encode()))
    return out


def _error_event(message: str, code: str) -> bytes:
    return frame(GatewayError(message, status=503, code=code).render())


async def _read_body(receive: Receive, limit: int, content_length: str | None) -> bytes:
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes")
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        if len(body) > limit:
            raise PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes")
        return body
    parts = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        part = message.get("body", b"")
        size += len(part)
        if size > limit:
            raise PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes")
        parts.append(part)
        if not message.get("more_body"):
            return b"".join(parts)


def _build_call(
    route: routes.Route,
    *,
    method: str,
    scope: Scope,
    body: bytes,
    headers: dict[str, str],
    request_id: str,
    trace_id: str,
    metadata: dict[str, str],
) -> Call:
    data = None
    stream = False
    content_type = headers.get("content-type", "")
    if route.body == "json":
        if not body.strip():
            raise BadRequest("The request body is empty: send a JSON object", code="invalid_body")
        try:
            data = _decode(body)
        except msgspec.DecodeError as exc:
            raise BadRequest(f"The request body is not valid JSON: {exc}", code="invalid_json") from None
        if not isinstance(data, dict):
            raise BadRequest("The request body must be a JSON object", code="invalid_body")
        if data.get("model") == "portkey-default":  # the portkey-ai SDK's "no model given"
            del data["model"]
            body = _encode(data)
        stream = data.get("stream") is True
        content_type = "application/json"
    elif route.body == "multipart":
        if not content_type.startswith("multipart/form-data"):
            raise BadRequest(
                f"{route.path} takes a multipart/form-data body, got {content_type or 'no content-type'}",
                code="invalid_content_type",
            )
    elif route.body == "none":
        body = b""
        content_type = ""
    query: bytes = scope.get("query_string", b"")
    path = route.path
    if route.endpoint == PROXY and scope.get("raw_path"):
        raw = scope["raw_path"].decode("latin-1")
        path = raw[3:] if raw.startswith("/v1/") else raw
    return Call(
        endpoint=route.endpoint,
        method=method,
        path=path,
        query=query.decode("latin-1"),
        body=body,
        json=data,
        content_type=content_type,
        stream=stream,
        headers=headers,
        request_id=request_id,
        trace_id=trace_id,
        metadata=metadata,
        created=int(time.time()),
    )
