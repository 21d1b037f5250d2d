"""OpenAI <-> Cohere v2 (`/v2/chat`, `/v2/embed`), pure. Mapping: provider-wire-formats.md §6, §8-§9.

Cohere's v2 messages are close to OpenAI's (roles system/user/assistant/tool, OpenAI-shaped
tools and tool calls), so requests mostly rename parameters. Answers carry content blocks, a
`tool_plan` (the model's plan before calling tools: `reasoning_content` when strict OpenAI
compliance is off, as are `thinking` blocks), and usage twice: `tokens` (what the model
processed) and `billed_units`; `usage` reports `tokens`, as the reference table says.
Streams are typed events (`message-start`, `content-delta`, `tool-call-start`/`-delta`,
`message-end`); a stream is complete only with `message-end`.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from crossroads.codecs.sse import Event
from crossroads.errors import BadRequest, UpstreamError
from crossroads.providers import chunks
from crossroads.providers.base import StreamInterrupted
from crossroads.providers.chunks import ChunkWriter
from crossroads.providers.stream import ChunkTranslator
from crossroads.providers.turns import texts

JSON = dict[str, Any]
FINISH: Final = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
}
FAILED: Final = frozenset({"ERROR", "TIMEOUT"})
_RENAMED: Final = {
    "temperature": "temperature",
    "top_p": "p",
    "top_k": "k",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "logprobs": "logprobs",
}
# Cohere's own chat fields, passed through when a caller writes them.
NATIVE: Final = ("documents", "citation_options", "safety_mode", "thinking", "strict_tools", "priority")


def chat_to_cohere(body: JSON) -> JSON:
    if (body.get("n") or 1) != 1:
        raise BadRequest("n > 1 is not supported by Cohere: send n separate requests", param="n")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty array", param="messages")
    out: JSON = {"model": body.get("model"), "messages": [_message(m, i) for i, m in enumerate(messages)]}
    for ours, theirs in _RENAMED.items():
        if body.get(ours) is not None:
            out[theirs] = body[ours]
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(max_tokens, int):
        out["max_tokens"] = max_tokens
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if tools:
        out["tools"] = tools
    if choice in ("required", "none"):
        out["tool_choice"] = choice.upper()
    elif isinstance(choice, dict):  # Cohere cannot name a tool: offer only that one, and require it
        name = (choice.get("function") or {}).get("name")
        out["tools"] = [t for t in tools or () if (t.get("function") or {}).get("name") == name]
        if not out["tools"]:
            raise BadRequest(f"tool_choice names {name!r}, which is not in tools", param="tool_choice")
        out["tool_choice"] = "REQUIRED"
    elif choice not in (None, "auto"):
        raise BadRequest("tool_choice must be auto, none, required or a named function", param="tool_choice")
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema"):
        cohere_format: JSON = {"type": "json_object"}
        schema = (response_format.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            cohere_format["json_schema"] = schema
        out["response_format"] = cohere_format
    if body.get("stream"):
        out["stream"] = True
    for key in NATIVE:
        if key in body:
            out[key] = body[key]
    return out


def _message(message: Any, index: int) -> JSON:
    if not isinstance(message, dict):
        raise BadRequest(f"messages[{index}] must be an object", param="messages")
    role = message.get("role")
    content = message.get("content")
    if role in ("system", "developer"):
        return {"role": "system", "content": "\n\n".join(texts(content, index))}
    if role == "user":
        return {"role": "user", "content": _user_content(content, index)}
    if role == "assistant":
        out: JSON = {"role": "assistant"}
        text = "".join(texts(content, index))
        if text:
            out["content"] = text
        if message.get("tool_calls"):
            out["tool_calls"] = message["tool_calls"]
        return out
    if role == "tool":
        return {
            "role": "tool",
            "tool_call_id": message.get("tool_call_id"),
            "content": "".join(texts(content, index)),
        }
    raise BadRequest(f"messages[{index}].role {role!r} is not supported by Cohere", param="messages")


def _user_content(content: Any, index: int) -> Any:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise BadRequest(f"messages[{index}].content must be a string or a list of parts", param="messages")
    parts = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            parts.append(
                {"type": "image_url", "image_url": {"url": (part.get("image_url") or {}).get("url", "")}}
            )
        else:
            where = f"messages[{index}].content[{i}]"
            raise BadRequest(f"{where}: content type {kind!r} is not supported by Cohere", param=where)
    return parts


def embeddings_to_cohere(body: JSON) -> JSON:
    raw = body.get("input")
    inputs = raw if isinstance(raw, list) else [raw]
    if not inputs or not all(isinstance(i, str) and i for i in inputs):
        raise BadRequest("input must be a non-empty string or list of strings", param="input")
    out: JSON = {
        "model": body.get("model"),
        "texts": inputs,
        "input_type": body.get("input_type") or "search_document",
        "embedding_types": ["float"],
    }
    if isinstance(body.get("dimensions"), int):
        out["output_dimension"] = body["dimensions"]
    return out


# -- answers ------------------------------------------------------------------------------------


def openai_usage(usage: Any) -> JSON:
    usage = usage if isinstance(usage, dict) else {}
    tokens = usage.get("tokens") or usage.get("billed_units") or {}
    cached = usage.get("cached_tokens")
    return chunks.usage(
        int(tokens.get("input_tokens") or 0),
        int(tokens.get("output_tokens") or 0),
        cached=int(cached) if isinstance(cached, int | float) else None,
    )


def answer_to_chat(answer: JSON, *, model: str, created: int, strict: bool) -> JSON:
    reason = answer.get("finish_reason")
    if reason in FAILED:
        raise UpstreamError(
            f"cohere error: the generation ended with {reason}", provider="cohere", status=502, code=reason
        )
    message = answer.get("message") or {}
    text, thinking = [], []
    for block in message.get("content") or ():
        if isinstance(block, dict):
            if block.get("type") == "text":
                text.append(block.get("text", ""))
            elif block.get("type") == "thinking":
                thinking.append(block.get("thinking", ""))
    calls = [
        chunks.tool_call(
            c.get("id", ""),
            (c.get("function") or {}).get("name", ""),
            (c.get("function") or {}).get("arguments") or "{}",
        )
        for c in message.get("tool_calls") or ()
        if isinstance(c, dict)
    ]
    plan = message.get("tool_plan")
    reasoning = "".join(thinking) + (plan if isinstance(plan, str) else "")
    return chunks.chat_completion(
        id=str(answer.get("id") or "cohere"),
        model=model,
        created=created,
        text="".join(text),
        tool_calls=calls,
        finish_reason=FINISH.get(str(reason), "stop"),
        usage=openai_usage(answer.get("usage")),
        extra_message={"reasoning_content": reasoning} if reasoning and not strict else None,
    )


def embeddings_to_openai(answer: JSON, *, model: str, as_base64: bool) -> JSON:
    embeddings = answer.get("embeddings")
    vectors = embeddings.get("float", []) if isinstance(embeddings, dict) else embeddings or []
    billed = ((answer.get("meta") or {}).get("billed_units") or {}).get("input_tokens")
    return chunks.embedding_list(model, vectors, as_base64=as_base64, tokens=int(billed or 0))


def error_from(data: Any, status: int) -> UpstreamError:
    message = data.get("message") if isinstance(data, dict) else None
    if not isinstance(message, str) or not message:
        message = str(data)[:300] if data else f"HTTP {status}"
    return UpstreamError(f"cohere error: {message}", provider="cohere", status=status)


# -- streams ------------------------------------------------------------------------------------


class Delta(msgspec.Struct):
    message: dict[str, Any] | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None


class CohereEvent(msgspec.Struct):
    type: str = ""
    id: str | None = None
    index: int | None = None
    delta: Delta | None = None


_decode_event = msgspec.json.Decoder(CohereEvent).decode


class CohereToOpenAI(ChunkTranslator):
    provider = "cohere"
    unfinished = "ended the stream before message-end"

    def __init__(self, *, model: str, created: int, include_usage: bool, strict: bool) -> None:
        super().__init__()
        self._model = model
        self._strict = strict
        self._out = ChunkWriter(created=created, include_usage=include_usage)
        self._ended = False

    def on_event(self, event: Event) -> list[bytes]:
        if event.comment or not event.data or self._ended or event.data == b"[DONE]":
            return []
        try:
            data = _decode_event(event.data)
        except msgspec.DecodeError:
            return []  # a malformed event is skipped, never fatal
        kind = data.type or (event.name.decode() if event.name else "")
        out = self._out
        message = (data.delta.message if data.delta is not None else None) or {}
        if kind == "message-start":
            out.start(data.id or "cohere", self._model)
            return [out.role()]
        if not out.started:
            out.start("cohere", self._model)
        parts: list[bytes] = []
        if kind == "content-delta":
            content = message.get("content") or {}
            if isinstance(content.get("text"), str):
                parts.append(out.text(content["text"]))
            elif isinstance(content.get("thinking"), str) and not self._strict:
                parts.append(out.reasoning(content["thinking"]))
        elif kind == "tool-plan-delta" and not self._strict and isinstance(message.get("tool_plan"), str):
            parts.append(out.reasoning(message["tool_plan"]))
        elif kind == "tool-call-start":
            call = message.get("tool_calls") or {}
            function = call.get("function") or {}
            ordinal = data.index or 0
            parts.append(out.tool_start(ordinal, str(call.get("id", "")), str(function.get("name", ""))))
            parts.append(out.tool_arguments(ordinal, str(function.get("arguments") or "")))
        elif kind == "tool-call-delta":
            function = (message.get("tool_calls") or {}).get("function") or {}
            parts.append(out.tool_arguments(data.index or 0, str(function.get("arguments") or "")))
        elif kind == "message-end":
            delta = data.delta or Delta()
            if delta.finish_reason in FAILED:
                raise StreamInterrupted(
                    UpstreamError(
                        f"cohere error: the generation ended with {delta.finish_reason}",
                        provider="cohere",
                        status=502,
                        code=delta.finish_reason,
                    )
                )
            self._ended = True
            parts.append(out.finish(FINISH.get(str(delta.finish_reason), "stop")))
            parts.append(out.usage(openai_usage(delta.usage)))
        return [p for p in parts if p]

    def complete(self) -> bool:
        return self._ended
