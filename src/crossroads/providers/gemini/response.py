"""Gemini answers and errors -> OpenAI shapes (pure). Mapping: provider-wire-formats.md §4.2, §8-§9.

Gemini reports `STOP` for a turn that calls tools, so any `functionCall` part makes the finish
reason `tool_calls`. Calls carry no id: one is derived from the response id and the call's
position (stable, so a replayed answer keeps its ids), with the call's `thoughtSignature`
appended after `~ts~` when there is one (request.py sends it back). Parts marked `thought`
are reasoning summaries: `reasoning_content` when strict OpenAI compliance is off, else dropped.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from crossroads.errors import UpstreamError
from crossroads.providers import chunks
from crossroads.providers.gemini.request import SIGNATURE_MARK

JSON = dict[str, Any]
FILTERED: Final = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)
_ERROR_TYPES: Final = {
    "INVALID_ARGUMENT": "invalid_request_error",
    "FAILED_PRECONDITION": "invalid_request_error",
    "OUT_OF_RANGE": "invalid_request_error",
    "UNAUTHENTICATED": "authentication_error",
    "PERMISSION_DENIED": "permission_error",
    "NOT_FOUND": "not_found_error",
    "RESOURCE_EXHAUSTED": "rate_limit_error",
}


def finish_reason(reason: str | None, *, called: bool) -> str:
    if reason in FILTERED:
        return "content_filter"
    if reason == "MAX_TOKENS":
        return "length"
    return "tool_calls" if called else "stop"


def openai_usage(meta: Mapping[str, Any] | None) -> JSON:
    meta = meta or {}
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    cached = meta.get("cachedContentTokenCount")
    return chunks.usage(
        int(meta.get("promptTokenCount") or 0),
        int(meta.get("candidatesTokenCount") or 0) + thoughts,
        cached=int(cached) if cached is not None else None,
        reasoning=thoughts if thoughts else None,
    )


def call_id(response_id: str, ordinal: int, signature: str | None) -> str:
    digest = hashlib.sha256(f"{response_id}:{ordinal}".encode()).hexdigest()[:24]
    return f"call_{digest}{SIGNATURE_MARK}{signature}" if signature else f"call_{digest}"


def answer_to_chat(answer: JSON, *, model: str, created: int, strict: bool) -> JSON:
    response_id = str(answer.get("responseId") or "")
    choices = []
    ordinal = 0
    candidates = answer.get("candidates") or []
    for position, candidate in enumerate(candidates):
        texts: list[str] = []
        thoughts: list[str] = []
        calls: list[JSON] = []
        for part in (candidate.get("content") or {}).get("parts") or ():
            if "functionCall" in part:
                function = part["functionCall"] or {}
                identifier = call_id(response_id, ordinal, part.get("thoughtSignature"))
                calls.append(
                    chunks.tool_call(identifier, function.get("name", ""), function.get("args") or {})
                )
                ordinal += 1
            elif isinstance(part.get("text"), str):
                (thoughts if part.get("thought") else texts).append(part["text"])
        message: JSON = {
            "role": "assistant",
            "content": "".join(texts) if texts or not calls else None,
            "refusal": None,
        }
        if calls:
            message["tool_calls"] = calls
        if thoughts and not strict:
            message["reasoning_content"] = "".join(thoughts)
        choices.append(
            {
                "index": candidate.get("index", position),
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(candidate.get("finishReason"), called=bool(calls)),
            }
        )
    if not choices:  # the prompt itself was blocked (promptFeedback.blockReason)
        choices.append(
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": None},
                "logprobs": None,
                "finish_reason": "content_filter",
            }
        )
    return {
        "id": "chatcmpl-" + (response_id or "gemini"),
        "object": "chat.completion",
        "created": created,
        "model": str(answer.get("modelVersion") or model),
        "choices": choices,
        "usage": openai_usage(answer.get("usageMetadata")),
    }


def answer_to_completion(answer: JSON, *, model: str, created: int) -> JSON:
    chat = answer_to_chat(answer, model=model, created=created, strict=True)
    choice = chat["choices"][0]
    return chunks.text_completion(
        id="cmpl-" + chat["id"].removeprefix("chatcmpl-"),
        model=chat["model"],
        created=created,
        text=choice["message"]["content"] or "",
        finish_reason=choice["finish_reason"],
        usage=chat["usage"],
    )


def embeddings_to_openai(answer: JSON, *, model: str, as_base64: bool) -> JSON:
    vectors = [e.get("values") or [] for e in answer.get("embeddings") or () if isinstance(e, dict)]
    tokens = int((answer.get("usageMetadata") or {}).get("promptTokenCount") or 0)
    return chunks.embedding_list(model, vectors, as_base64=as_base64, tokens=tokens)


def models_to_openai(answer: JSON) -> JSON:
    data = [
        {
            "id": str(m.get("name", "")).removeprefix("models/"),
            "object": "model",
            "created": 0,
            "owned_by": "google",
        }
        for m in answer.get("models") or ()
        if isinstance(m, dict) and m.get("name")
    ]
    return {"object": "list", "data": data}


def error_from(data: Any, status: int, provider: str) -> UpstreamError:
    """`{"error": {"code", "message", "status", "details"}}` -> an UpstreamError with the HTTP
    status; an invalid API key (Gemini says 400 INVALID_ARGUMENT) is a 401; RetryInfo's
    `retryDelay` becomes Retry-After."""
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):
        err = {"message": str(data)[:300] if data else f"HTTP {status}"}
    message = str(err.get("message") or f"HTTP {status}")
    code = err.get("status") if isinstance(err.get("status"), str) else None
    details = [d for d in err.get("details") or () if isinstance(d, dict)]
    reasons = {str(d.get("reason")) for d in details if d.get("reason")}
    if "API_KEY_INVALID" in reasons:
        status, code = 401, "API_KEY_INVALID"
    headers: dict[str, str] = {}
    for detail in details:
        delay = detail.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            with contextlib.suppress(ValueError):
                headers["retry-after"] = str(math.ceil(float(delay[:-1])))
    return UpstreamError(
        f"{provider} error: {message}",
        provider=provider,
        status=status,
        error_type=_ERROR_TYPES.get(code or "") if status != 401 else "authentication_error",
        code=code,
        headers=headers,
    )


def decode(body: bytes) -> Any:
    try:
        return msgspec.json.decode(body) if body.strip() else None
    except msgspec.DecodeError:
        return None
