"""OpenTelemetry traces: the SDK's OTLP/HTTP exporter sends to a fake collector on loopback,
which decodes the protobuf. A request joins the caller's `traceparent`; each try at a provider
is a child span; failures carry the scrubbed message; no key reaches the collector."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from crossroads.settings import SettingsError
from tests.support.gateway import GatewayServer
from tests.support.upstream import FakeUpstream, Reply, fixture_bytes

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
KEY = "sk-trace-" + secrets.token_hex(16)


@pytest.fixture
def traced(fake: FakeUpstream) -> Iterator[GatewayServer]:
    server = GatewayServer(
        tracing={"otlp_endpoint": f"{fake.url}/v1/traces", "export_interval_ms": 50}
    ).start()
    yield server
    server.stop()


def spans(fake: FakeUpstream, count: int) -> list[dict[str, Any]]:
    def collected() -> list[dict[str, Any]]:
        out = []
        for seen in fake.requests:
            if seen.path != "/v1/traces":
                continue
            assert seen.headers["content-type"] == "application/x-protobuf"
            assert KEY not in seen.body.decode("latin-1")
            request = ExportTraceServiceRequest.FromString(seen.body)
            for resource in request.resource_spans:
                service = {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"]
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        attributes = {}
                        for a in span.attributes:
                            value = a.value
                            attributes[a.key] = value.string_value or value.int_value
                        out.append(
                            {
                                "name": span.name,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent": span.parent_span_id.hex(),
                                "kind": span.kind,
                                "status": span.status.code,
                                "message": span.status.message,
                                "attributes": attributes,
                                "service": service,
                            }
                        )
        return out

    assert fake.wait_for(lambda: len(collected()) >= count, timeout=10), collected()
    return collected()


def test_a_fallback_request_is_one_trace_with_a_span_per_try(
    traced: GatewayServer, fake: FakeUpstream
) -> None:
    fake.on("POST", "/v1/traces", Reply(body=b"", content_type="application/x-protobuf"))
    fake.on(
        "POST", "/bad/v1/chat/completions", Reply(status=503, body={"error": {"message": f"down, key {KEY}"}})
    )
    fake.on(
        "POST", "/good/v1/chat/completions", Reply(body=fixture_bytes("openai/chat-completion.text.json"))
    )
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [
            {"provider": "openai", "api_key": KEY, "custom_host": f"{fake.url}/bad/v1"},
            {"provider": "openai", "api_key": KEY, "custom_host": f"{fake.url}/good/v1"},
        ],
    }
    response = httpx.post(
        f"{traced.url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        headers={
            "x-portkey-config": json.dumps(config),
            "traceparent": f"00-{TRACE_ID}-{PARENT}-01",
            "x-portkey-metadata": json.dumps({"team": "search"}),
        },
    )
    assert response.status_code == 200
    found = spans(fake, 3)
    server = next(s for s in found if s["name"] == "POST /v1/chat/completions")
    tries = sorted(
        (s for s in found if s["name"] == "chat gpt-4o-mini"), key=lambda s: s["status"], reverse=True
    )
    assert server["trace_id"] == TRACE_ID and server["parent"] == PARENT and server["service"] == "crossroads"
    assert server["attributes"]["http.response.status_code"] == 200
    assert server["attributes"]["gen_ai.system"] == "openai"
    assert server["attributes"]["gen_ai.request.model"] == "gpt-4o-mini"
    assert server["attributes"]["crossroads.metadata.team"] == "search"
    assert server["attributes"]["crossroads.trace_id"] == response.headers["x-portkey-trace-id"]
    assert len(tries) == 2 and all(
        t["parent"] == server["span_id"] and t["trace_id"] == TRACE_ID for t in tries
    )
    failed, answered = tries
    assert (
        failed["status"] == 2 and failed["attributes"]["http.response.status_code"] == 503
    )  # STATUS_CODE_ERROR
    assert (
        "down, key" in failed["message"]
    )  # the provider's message, its key scrubbed (checked on every body)
    assert answered["status"] == 0 and answered["attributes"]["server.address"] == "127.0.0.1"


def test_tracing_without_the_packages_or_with_bad_settings_is_refused_at_start() -> None:
    with pytest.raises(SettingsError, match="sample_ratio"):
        GatewayServer(tracing={"otlp_endpoint": "http://127.0.0.1:1/v1/traces", "sample_ratio": 2})


def test_a_collector_that_is_down_changes_nothing_for_requests() -> None:
    server = GatewayServer(
        tracing={
            "otlp_endpoint": "http://127.0.0.1:9/v1/traces",
            "export_interval_ms": 50,
            "export_timeout_ms": 200,
        }
    ).start()
    try:
        for _ in range(3):
            response = server.client().post(
                "/v1/chat/completions",
                json={"model": "mock-1", "messages": [{"role": "user", "content": "hi"}]},
                headers={"x-portkey-provider": "mock"},
            )
            assert response.status_code == 200
    finally:
        server.stop()
