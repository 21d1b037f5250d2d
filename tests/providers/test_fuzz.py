"""No input makes a translator crash: for every native provider, any JSON request body either
builds or is a GatewayError (a 400 naming the problem), any JSON answer parses or is an
UpstreamError, and any bytes fed to a stream translator give chunks or StreamInterrupted.
(A TypeError or AttributeError here would be a 500 for the client.) Through the pipeline's guard
(`pipeline/translation.py`), as requests go."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossroads.errors import GatewayError
from crossroads.pipeline import translation
from crossroads.providers.base import CHAT, COMPLETIONS, EMBEDDINGS, MESSAGES, Call, StreamInterrupted, Target
from crossroads.providers.registry import build_registry
from crossroads.secret import Secret

REGISTRY = build_registry()
PROVIDERS = ["anthropic", "bedrock", "google", "vertex-ai", "cohere", "azure-openai"]
OPTIONS: dict[str, dict[str, str | Secret]] = {
    "bedrock": {
        "aws_access_key_id": Secret("AKID"),
        "aws_secret_access_key": Secret("s"),
        "aws_region": "us-east-1",
    },
    "vertex-ai": {"vertex_project_id": "proj-1"},
    "azure-openai": {"resource_name": "res1"},
}
PATHS = {
    CHAT: "/chat/completions",
    COMPLETIONS: "/completions",
    EMBEDDINGS: "/embeddings",
    MESSAGES: "/messages",
}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**6), st.floats(allow_nan=False), st.text(max_size=12)
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
KEYS = [
    "model",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "image_url",
    "url",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "tool_call_id",
    "tools",
    "tool_choice",
    "response_format",
    "json_schema",
    "schema",
    "stop",
    "max_tokens",
    "temperature",
    "n",
    "stream",
    "input",
    "prompt",
    "system",
    "input_audio",
    "file",
    "file_data",
    "thinking",
    "id",
    "parameters",
    "stream_options",
    "include_usage",
]
# Bodies shaped like requests (known keys, nested), with anything as values.
shaped = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=6)
    ),
    max_leaves=30,
)
parts = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["text", "image_url", "input_audio", "file", "tool_use", "tool_result", "image"]
        )
    },
    optional={
        "text": st.one_of(st.text(max_size=8), values),
        "image_url": st.one_of(
            st.fixed_dictionaries(
                {"url": st.sampled_from(["data:image/png;base64,iVBO", "https://x/y.png", "data:,", ""])}
            ),
            values,
        ),
        "input_audio": values,
        "file": st.one_of(
            st.fixed_dictionaries({"file_data": st.sampled_from(["data:application/pdf;base64,JVBE", "x"])}),
            values,
        ),
        "id": values,
        "input": values,
        "content": values,
    },
)
calls = st.fixed_dictionaries(
    {"id": st.one_of(st.sampled_from(["c1", "c2", "c1~ts~sig"]), values), "type": st.just("function")},
    optional={
        "function": st.one_of(
            st.fixed_dictionaries(
                {"name": st.one_of(st.sampled_from(["f", "g"]), values)},
                optional={"arguments": st.one_of(st.sampled_from(['{"a": 1}', "{bad", "[1]", ""]), values)},
            ),
            values,
        )
    },
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "developer", "user", "assistant", "tool"])},
        optional={
            "content": st.one_of(st.text(max_size=10), st.lists(parts, max_size=3), values),
            "tool_calls": st.one_of(st.lists(calls, max_size=2), values),
            "tool_call_id": st.one_of(st.sampled_from(["c1", "c2", "c1~ts~sig", "zz"]), values),
        },
    ),
    min_size=1,
    max_size=5,
)
tools = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {
                "type": st.just("function"),
                "function": st.fixed_dictionaries(
                    {"name": st.sampled_from(["f", "g"])}, optional={"parameters": values}
                ),
            }
        ),
        values,
    ),
    max_size=2,
)
requests = st.fixed_dictionaries(
    {"model": st.sampled_from(["m-1", "claude-3@x", "models/gemini-x", "x/../y"]), "messages": messages},
    optional={
        "tools": st.one_of(tools, values),
        "tool_choice": st.one_of(st.sampled_from(["auto", "none", "required"]), values),
        "response_format": values,
        "max_tokens": values,
        "stop": values,
        "n": st.one_of(st.integers(0, 3), values),
        "stream": st.booleans(),
        "stream_options": values,
        "temperature": values,
        "thinking": values,
        "system": values,
        "input": values,
        "prompt": values,
        "top_p": values,
    },
)
bodies = st.one_of(requests, st.dictionaries(st.sampled_from(KEYS), st.one_of(shaped, values), max_size=8))


def call_for(endpoint: str, body: dict[str, Any]) -> Call:
    return Call(
        endpoint=endpoint,
        method="POST",
        path=PATHS[endpoint],
        query="",
        body=msgspec.json.encode(body),
        json=body,
        content_type="application/json",
        stream=body.get("stream") is True,
        headers={},
        request_id="r",
        trace_id="t",
        metadata={},
    )


def target(provider: str) -> Target:
    return Target(provider=provider, api_key=Secret("k-123456789"), options=OPTIONS.get(provider, {}))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    provider=st.sampled_from(PROVIDERS),
    endpoint=st.sampled_from([CHAT, COMPLETIONS, EMBEDDINGS, MESSAGES]),
    body=bodies,
)
def test_any_request_builds_or_is_a_clear_error(provider: str, endpoint: str, body: dict[str, Any]) -> None:
    adapter = REGISTRY.for_endpoint(provider, endpoint)
    with contextlib.suppress(GatewayError):
        translation.build(adapter, call_for(endpoint, body), target(provider))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    provider=st.sampled_from(PROVIDERS), endpoint=st.sampled_from([CHAT, EMBEDDINGS, MESSAGES]), answer=values
)
def test_any_answer_parses_or_is_an_upstream_error(provider: str, endpoint: str, answer: Any) -> None:
    adapter = REGISTRY.for_endpoint(provider, endpoint)
    request: dict[str, Any] = {
        "model": "claude-x" if provider == "vertex-ai" and endpoint == MESSAGES else "m-1",
        "messages": [],
        "input": "x",
    }
    with contextlib.suppress(GatewayError):
        translation.parse(
            adapter, call_for(endpoint, request), target(provider), 200, {}, json.dumps(answer).encode()
        )
    try:
        adapter.error(target(provider), 400, {}, json.dumps(answer).encode())
    except Exception as exc:  # error() returns the error; raising anything is a bug
        raise AssertionError(f"error() raised {exc!r}") from exc


events = st.lists(values, max_size=6).map(
    lambda items: b"".join(b"data: " + json.dumps(item).encode() + b"\n\n" for item in items)
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    provider=st.sampled_from(["anthropic", "google", "vertex-ai", "cohere", "azure-openai"]),
    raw=st.one_of(events, st.binary(max_size=200)),
)
def test_any_stream_translates_or_is_interrupted(provider: str, raw: bytes) -> None:
    adapter = REGISTRY.for_endpoint(provider, CHAT)
    translator = adapter.translator(
        call_for(CHAT, {"model": "m-1", "stream": True, "messages": []}), target(provider)
    )
    try:
        translation.feed(translator, raw, provider)
        translation.close(translator, provider)
    except StreamInterrupted:
        pass
