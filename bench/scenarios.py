"""What the benchmark sends, and what the mock upstream answers (realistic sizes, fixed bytes)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossroads.codecs.eventstream import encode_frame

CHAT_REQUEST = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Write two sentences about lighthouses."},
    ],
    "temperature": 0.2,
}
_TEXT = (
    "Lighthouses guide ships past dangerous coasts with powerful beams of light. "
    "Many still stand today as beloved landmarks and museums."
)
_WORDS = _TEXT.split(" ")

CHAT_RESPONSE = json.dumps(
    {
        "id": "chatcmpl-bench0000000000000000000000",
        "object": "chat.completion",
        "created": 1782955817,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": " ".join(_WORDS),
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 27,
            "completion_tokens": 24,
            "total_tokens": 51,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_bench",
    },
    separators=(",", ":"),
)


def _chunk(delta: dict[str, object], finish: str | None) -> str:
    return json.dumps(
        {
            "id": "chatcmpl-bench0000000000000000000000",
            "object": "chat.completion.chunk",
            "created": 1782955817,
            "model": "gpt-4o-mini-2024-07-18",
            "system_fingerprint": "fp_bench",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        },
        separators=(",", ":"),
    )


# 22 events: role, 20 words, finish; then [DONE]. Sent by nginx in one write.
SSE_RESPONSE = "".join(
    f"data: {payload}\n\n"
    for payload in [
        _chunk({"role": "assistant", "content": ""}, None),
        *(_chunk({"content": word + " "}, None) for word in _WORDS[:20]),
        _chunk({}, "stop"),
        "[DONE]",
    ]
)


ERROR_RESPONSE = json.dumps(
    {"error": {"message": "The server is overloaded", "type": "server_error", "param": None, "code": None}}
)


def _anthropic_event(data: Any) -> str:
    return f"event: {data['type']}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


# The same 20 words as SSE_RESPONSE, as Anthropic streams them (translation cost, issue #4).
ANTHROPIC_SSE = "".join(
    _anthropic_event(event)
    for event in [
        {
            "type": "message_start",
            "message": {
                "id": "msg_bench",
                "type": "message",
                "role": "assistant",
                "model": "claude-bench",
                "content": [],
                "stop_reason": None,
                "usage": {"input_tokens": 27, "output_tokens": 1},
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        *(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w + " "}}
            for w in _WORDS[:20]
        ),
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 24},
        },
        {"type": "message_stop"},
    ]
)
# ... and as Bedrock's ConverseStream sends them (binary event stream).
BEDROCK_STREAM = b"".join(
    encode_frame(
        [(":event-type", kind), (":content-type", "application/json"), (":message-type", "event")],
        json.dumps(payload, separators=(",", ":")).encode(),
    )
    for kind, payload in [
        ("messageStart", {"role": "assistant", "p": "abcdefgh"}),
        *(
            ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": w + " "}, "p": "abcd"})
            for w in _WORDS[:20]
        ),
        ("contentBlockStop", {"contentBlockIndex": 0, "p": "ab"}),
        ("messageStop", {"stopReason": "end_turn", "p": "abc"}),
        (
            "metadata",
            {
                "usage": {"inputTokens": 27, "outputTokens": 24, "totalTokens": 51},
                "metrics": {"latencyMs": 5},
            },
        ),
    ]
)

# ... and as Gemini streams them (streamGenerateContent?alt=sse: whole responses, no end marker).
GEMINI_SSE = "".join(
    "data: " + json.dumps(payload, separators=(",", ":")) + "\r\n\r\n"
    for payload in [
        {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": w + " "}]},
                    **({"finishReason": "STOP"} if i == 19 else {}),
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 27,
                "candidatesTokenCount": i + 1,
                "totalTokenCount": 28 + i,
            },
            "modelVersion": "gemini-bench",
            "responseId": "bench0000000000",
        }
        for i, w in enumerate(_WORDS[:20])
    ]
)


@dataclass(frozen=True)
class Scenario:
    name: str
    upstream_prefix: str  # nginx location prefix
    stream: bool
    failing_first: bool = False  # gateways get a fallback config whose first target answers 503
    provider: str = "openai"  # openai, anthropic, bedrock or google: which wire format the upstream speaks
    cached: bool = (
        False  # gateways are asked to cache (x-portkey-cache: simple): every request after the first hits
    )

    @property
    def body(self) -> str:
        return json.dumps({**CHAT_REQUEST, "stream": True} if self.stream else CHAT_REQUEST)

    def route(self, target: str, upstream_port: int, gateway_port: int) -> tuple[str, dict[str, str]]:
        base = f"http://127.0.0.1:{upstream_port}{self.upstream_prefix}/v1"
        url = f"http://127.0.0.1:{gateway_port}/v1/chat/completions"
        if self.provider == "anthropic":
            if target == "direct":
                return f"{base}/messages", {"x-api-key": "sk-bench"}
            return url, {
                "x-portkey-provider": "anthropic",
                "x-portkey-custom-host": base,
                "authorization": "Bearer sk-bench",
            }
        if self.provider == "bedrock":
            root = f"http://127.0.0.1:{upstream_port}{self.upstream_prefix}"
            if target == "direct":
                return f"{root}/model/{CHAT_REQUEST['model']}/converse-stream", {}
            return url, {
                "x-portkey-provider": "bedrock",
                "x-portkey-custom-host": root,
                "x-portkey-aws-access-key-id": "AKIDBENCH",
                "x-portkey-aws-secret-access-key": "bench",
                "x-portkey-aws-region": "us-east-1",
            }
        if self.provider == "google":
            root = f"http://127.0.0.1:{upstream_port}{self.upstream_prefix}"
            if target == "direct":
                return f"{root}/v1beta/models/{CHAT_REQUEST['model']}:streamGenerateContent?alt=sse", {
                    "x-goog-api-key": "bench"
                }
            return url, {
                "x-portkey-provider": "google",
                "x-portkey-custom-host": root,
                "authorization": "Bearer bench",
            }
        if target == "direct":
            return f"{base}/chat/completions", {"authorization": "Bearer sk-bench"}
        if self.failing_first:
            broken = f"http://127.0.0.1:{upstream_port}/err/v1"
            config = {
                "strategy": {"mode": "fallback"},
                "targets": [
                    {"provider": "openai", "api_key": "sk-bench", "custom_host": broken},
                    {"provider": "openai", "api_key": "sk-bench", "custom_host": base},
                ],
            }
            return url, {"x-portkey-config": json.dumps(config, separators=(",", ":"))}
        headers = {
            "x-portkey-provider": "openai",
            "x-portkey-custom-host": base,
            "authorization": "Bearer sk-bench",
        }
        if self.cached:
            headers["x-portkey-cache"] = "simple"
        return url, headers

    def lua(self, headers: dict[str, str]) -> str:
        lines = [
            'wrk.method = "POST"',
            f"wrk.body = [[{self.body}]]",
            'wrk.headers["content-type"] = "application/json"',
        ]
        lines += [f'wrk.headers["{k}"] = [[{v}]]' for k, v in headers.items()]
        lines.append("""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"duration_us":%d,"errors":%d,"status_errors":%d,'
    .. '"p50":%d,"p90":%d,"p99":%d,"mean":%.1f}\\n', summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean))
end""")
        return "\n".join(lines) + "\n"


SCENARIOS = (
    Scenario(name="chat", upstream_prefix="/json", stream=False),
    Scenario(name="chat-stream", upstream_prefix="/sse", stream=True),
    Scenario(name="fallback", upstream_prefix="/json", stream=False, failing_first=True),
    Scenario(name="chat-cached", upstream_prefix="/json", stream=False, cached=True),
    Scenario(name="anthropic-stream", upstream_prefix="/anthropic", stream=True, provider="anthropic"),
    Scenario(name="bedrock-stream", upstream_prefix="/bedrock", stream=True, provider="bedrock"),
    Scenario(name="gemini-stream", upstream_prefix="/gemini", stream=True, provider="google"),
)


def nginx_locations(work: Path) -> str:
    """nginx `location` blocks answering every scenario's upstream path from fixed files.

    nginx's static handler refuses POST with 405; `error_page 405 =200 $uri` turns that into
    the file itself, which is the cheapest way to make nginx answer a POST with fixed bytes.
    """
    (work / "chat.json").write_text(CHAT_RESPONSE)
    (work / "anthropic.sse").write_text(ANTHROPIC_SSE)
    (work / "bedrock.bin").write_bytes(BEDROCK_STREAM)
    (work / "error.json").write_text(ERROR_RESPONSE)
    (work / "chat.sse").write_text(SSE_RESPONSE)
    (work / "gemini.sse").write_text(GEMINI_SSE)
    return (
        f"location = /json/v1/chat/completions {{ default_type application/json; alias {work}/chat.json;"
        " error_page 405 =200 $uri; }\n"
        f"location = /sse/v1/chat/completions {{ default_type text/event-stream; alias {work}/chat.sse;"
        " error_page 405 =200 $uri; }\n"
        f"location = /err/v1/chat/completions {{ default_type application/json; alias {work}/error.json;"
        " error_page 405 =503 $uri; }\n"
        f"location = /anthropic/v1/messages {{ default_type text/event-stream; alias {work}/anthropic.sse;"
        " error_page 405 =200 $uri; }\n"
        f"location = /gemini/v1beta/models/{CHAT_REQUEST['model']}:streamGenerateContent {{"
        f" default_type text/event-stream; alias {work}/gemini.sse; error_page 405 =200 $uri; }}\n"
        f"location = /bedrock/model/{CHAT_REQUEST['model']}/converse-stream {{"
        f" default_type application/vnd.amazon.eventstream; alias {work}/bedrock.bin;"
        " error_page 405 =200 $uri; }\n"
    )
