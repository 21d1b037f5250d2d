"""OpenTelemetry traces: a server span per provider request and a client span per try at a
provider, exported over OTLP/HTTP by the SDK's batch processor (its own thread, off the
request path). Off unless `tracing.otlp_endpoint` is set; the packages are the optional
`otel` extra, imported only then.

A request carrying W3C `traceparent` joins the caller's trace. Attributes follow the OTel
HTTP and GenAI conventions (`http.response.status_code`, `gen_ai.system`,
`gen_ai.request.model`, `gen_ai.operation.name`, `server.address`), plus the gateway's own
(`crossroads.cache.status`, `crossroads.request_id`, `crossroads.trace_id`, and the request's
metadata as `crossroads.metadata.<key>`). No header, key or body is ever an attribute.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from crossroads.settings import TracingSettings

# The unified endpoints, as GenAI operation names.
OPERATIONS: Final = {
    "chat": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
    "messages": "chat",
    "images.generations": "image_generation",
}


class TracingUnavailable(RuntimeError):
    """`tracing.otlp_endpoint` is set but the OpenTelemetry packages are not installed."""


class Tracing:
    def __init__(self, settings: TracingSettings) -> None:
        try:
            from opentelemetry import context, trace  # noqa: PLC0415  (the optional extra)
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
                OTLPSpanExporter,
            )
            from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
            from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
            from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415
            from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased  # noqa: PLC0415
            from opentelemetry.trace.propagation.tracecontext import (  # noqa: PLC0415
                TraceContextTextMapPropagator,
            )
        except ImportError:
            raise TracingUnavailable(
                "tracing.otlp_endpoint is set but OpenTelemetry is not installed: "
                "pip install 'crossroads[otel]'"
            ) from None
        self._trace = trace
        self._context = context
        self._provider = TracerProvider(
            resource=Resource.create({"service.name": settings.service_name}),
            sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
        )
        exporter = OTLPSpanExporter(
            endpoint=settings.otlp_endpoint,
            headers=dict(settings.headers),
            timeout=settings.export_timeout_ms / 1000,  # also bounds the last export at shutdown
        )
        self._provider.add_span_processor(
            BatchSpanProcessor(exporter, schedule_delay_millis=settings.export_interval_ms)
        )
        self._tracer = self._provider.get_tracer("crossroads")
        self._propagator = TraceContextTextMapPropagator()
        self._server = trace.SpanKind.SERVER
        self._client = trace.SpanKind.CLIENT

    def start(self, method: str, path: str, headers: Mapping[str, str]) -> tuple[Span, object]:
        """The request's span, made current; returns it with the token to detach it by."""
        parent = self._propagator.extract(headers)
        span = self._tracer.start_span(
            f"{method} {path}",
            context=parent,
            kind=self._server,
            attributes={"http.request.method": method, "url.path": path},
        )
        token = self._context.attach(self._trace.set_span_in_context(span, parent))
        return span, token

    def end(self, span: Span, token: object, attributes: Mapping[str, Any], status: int) -> None:
        span.set_attributes({k: v for k, v in attributes.items() if v is not None})
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR))
        span.end()
        self._context.detach(token)  # type: ignore[arg-type]

    @contextmanager
    def attempt(self, provider: str, endpoint: str, model: Any, url: str) -> Iterator[Span]:
        """A try at a provider, child of the current request span, until its answer begins."""
        operation = OPERATIONS.get(endpoint, endpoint)
        name = f"{operation} {model}" if isinstance(model, str) and model else operation
        attributes: dict[str, Any] = {"gen_ai.system": provider, "gen_ai.operation.name": operation}
        if isinstance(model, str) and model:
            attributes["gen_ai.request.model"] = model[:256]
        host = urlsplit(url).hostname
        if host:
            attributes["server.address"] = host
        # Failures are recorded by `failed` with the scrubbed message, never the raw exception.
        with self._tracer.start_as_current_span(
            name,
            kind=self._client,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield span

    def failed(self, span: Span, status: int, message: str) -> None:
        span.set_attribute("http.response.status_code", status)
        span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, message[:300]))

    def shutdown(self) -> None:
        self._provider.shutdown()  # exports what is left


def request_attributes(
    *,
    endpoint: str,
    provider: str | None,
    model: Any,
    cache: str,
    request_id: str,
    trace_id: str,
    metadata: Mapping[str, str],
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "gen_ai.operation.name": OPERATIONS.get(endpoint, endpoint),
        "gen_ai.system": provider,
        "crossroads.cache.status": cache,
        "crossroads.request_id": request_id,
        "crossroads.trace_id": trace_id,
    }
    if isinstance(model, str) and model:
        out["gen_ai.request.model"] = model[:256]
    for key, value in list(metadata.items())[:32]:
        out[f"crossroads.metadata.{key[:64]}"] = str(value)[:256]
    return out
