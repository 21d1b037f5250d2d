"""The route table."""

from __future__ import annotations

import pytest

from crossroads.errors import MethodNotAllowed, NotFound, NotImplementedHere
from crossroads.http.routes import match


@pytest.mark.parametrize(
    ("method", "path", "endpoint", "upstream"),
    [
        ("POST", "/v1/chat/completions", "chat", "/chat/completions"),
        ("POST", "/chat/completions", "chat", "/chat/completions"),
        ("POST", "/v1/chat/completions/", "chat", "/chat/completions"),
        ("POST", "/v1/audio/transcriptions", "audio.transcriptions", "/audio/transcriptions"),
        ("GET", "/v1/models", "models", "/models"),
        ("GET", "/v1/chat/completions", "proxy", "/chat/completions"),
        ("GET", "/v1/models/gpt-4o", "proxy", "/models/gpt-4o"),
        ("POST", "/v1/rerank", "proxy", "/rerank"),
        ("DELETE", "/v1/files/f1", "proxy", "/files/f1"),
        ("GET", "/health", "health", "/health"),
        ("HEAD", "/ready", "ready", "/ready"),
    ],
)
def test_matches(method: str, path: str, endpoint: str, upstream: str) -> None:
    route = match(method, path)
    assert (route.endpoint, route.path) == (endpoint, upstream)


@pytest.mark.parametrize(
    ("method", "path", "error"),
    [
        ("GET", "/nope", NotFound),
        ("POST", "/v1", NotFound),
        ("POST", "/v1/", NotFound),
        ("GET", "/chat/completions", MethodNotAllowed),
        ("PUT", "/v1/chat/completions", MethodNotAllowed),
        ("PATCH", "/v1/files/f1", MethodNotAllowed),
        ("POST", "/health", MethodNotAllowed),
        # POST-only routes are never forwarded on another method.
        ("GET", "/v1/embeddings", MethodNotAllowed),
        ("GET", "/v1/messages", MethodNotAllowed),
        ("DELETE", "/v1/completions", MethodNotAllowed),
        ("POST", "/v1/models", MethodNotAllowed),
        # Portkey's control plane: refused, never proxied, with or without /v1.
        ("POST", "/v1/feedback", NotImplementedHere),
        ("PUT", "/v1/feedback/fb-1", NotImplementedHere),
        ("POST", "/v1/logs", NotImplementedHere),
        ("POST", "/v1/logs/exports", NotImplementedHere),
        ("GET", "/v1/logs/exports/ex-1/download", NotImplementedHere),
        ("POST", "/v1/prompts/pp-1/completions", NotImplementedHere),
        ("POST", "/prompts/pp-1/render", NotImplementedHere),
        ("GET", "/v1/analytics/graphs/requests", NotImplementedHere),
        ("GET", "/v1/admin/users", NotImplementedHere),
        ("POST", "/v1/guardrails", NotImplementedHere),
    ],
)
def test_refuses(method: str, path: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        match(method, path)


def test_a_refusal_names_the_feature_and_allowed_methods() -> None:
    with pytest.raises(NotImplementedHere) as refused:
        match("POST", "/v1/logs/exports")
    assert refused.value.http_status == 501
    assert "Request logs" in refused.value.message and "never sent to a provider" in refused.value.message
    with pytest.raises(MethodNotAllowed) as wrong:
        match("GET", "/v1/embeddings")
    assert wrong.value.headers == {"allow": "POST"}
    with pytest.raises(MethodNotAllowed) as chat:
        match("DELETE", "/v1/chat/completions")
    assert chat.value.headers == {"allow": "GET, POST"}
