"""Vertex AI URLs from the adapter alone (the public hosts are only built, never called)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from crossroads.errors import BadRequest
from crossroads.providers.base import Call, Target
from crossroads.providers.registry import build_registry
from crossroads.secret import Secret

BODY: dict[str, Any] = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}


def call(body: dict[str, Any], stream: bool = False) -> Call:
    return Call(
        endpoint="chat",
        method="POST",
        path="/chat/completions",
        query="",
        body=msgspec.json.encode(body),
        json=body,
        content_type="application/json",
        stream=stream,
        headers={},
        request_id="r",
        trace_id="t",
        metadata={},
    )


def target(**options: str) -> Target:
    return Target(
        provider="vertex-ai", api_key=Secret("ya29.token"), options={"vertex_project_id": "p-123", **options}
    )


def test_regional_and_global_hosts() -> None:
    vertex = build_registry().get("vertex-ai")
    request = vertex.build(call(BODY), target(vertex_region="europe-west4"))
    assert request.url == (
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/p-123/locations/europe-west4"
        "/publishers/google/models/gemini-2.5-flash:generateContent"
    )
    assert request.headers["authorization"] == "Bearer ya29.token" and not request.guarded
    request = vertex.build(call(BODY, stream=True), target(vertex_region="global"))
    assert request.url == (
        "https://aiplatform.googleapis.com/v1/projects/p-123/locations/global"
        "/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    request = vertex.build(call({**BODY, "model": "claude-sonnet-4@20250514"}), target())
    assert request.url.endswith(
        "/locations/us-central1/publishers/anthropic/models/claude-sonnet-4@20250514:rawPredict"
    )


def test_a_settings_base_url_replaces_the_host() -> None:
    vertex = build_registry({"vertex-ai": "https://vertex-proxy.example.com/v1/"}).get("vertex-ai")
    request = vertex.build(call(BODY), target())
    assert request.url.startswith("https://vertex-proxy.example.com/v1/projects/p-123/locations/us-central1/")


def test_no_credential_is_a_400() -> None:
    vertex = build_registry().get("vertex-ai")
    with pytest.raises(BadRequest, match="needs credentials"):
        vertex.build(call(BODY), Target(provider="vertex-ai", options={"vertex_project_id": "p-123"}))
