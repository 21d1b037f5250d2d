"""The route table."""

from __future__ import annotations

import pytest

from crossroads.errors import MethodNotAllowed, NotFound
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
    ],
)
def test_refuses(method: str, path: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        match(method, path)
