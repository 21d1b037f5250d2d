"""Streams in and out of the cache, in the gateway's own (OpenAI) format.

`assemble` turns a complete chat or text-completion stream, as the client received it, into
the JSON answer the same request without `stream` would have got; entries are stored in that
form, so a streamed answer serves later plain requests and the other way round. `replay`
turns a stored answer back into a stream of the same chunk shape (the text in one delta per
500 characters, each tool call whole, the finish reason, usage when the request asks for it,
and `[DONE]`).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from crossroads.codecs.sse import frame

JSON = dict[str, Any]
PIECE: Final = 500  # characters of text per replayed delta (as Portkey replays)
DONE: Final = b"data: [DONE]\n\n"

_decode = msgspec.json.decode
_encode = msgspec.json.encode


def assemble(stream: bytes) -> JSON | None:
    """The answer a complete stream carried, or None if it is not one we can store."""
    head: JSON = {}
    choices: dict[int, JSON] = {}
    usage = None
    done = False
    for line in stream.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            done = True
            continue
        try:
            chunk = _decode(data)
        except msgspec.DecodeError:
            return None
        if not isinstance(chunk, dict) or "error" in chunk:
            return None
        for field in ("id", "created", "model", "system_fingerprint", "object"):
            if field in chunk and field not in head:
                head[field] = chunk[field]
        if chunk.get("usage"):
            usage = chunk["usage"]
        for part in chunk.get("choices") or ():
            _merge(choices.setdefault(int(part.get("index", 0)), {}), part)
    if not done or not choices or any(c.get("finish_reason") is None for c in choices.values()):
        return None
    completion = head.get("object") == "text_completion"
    out: JSON = {
        "id": head.get("id", ""),
        "object": "text_completion" if completion else "chat.completion",
        "created": head.get("created", 0),
        "model": head.get("model", ""),
        "choices": [_choice(index, choices[index], completion) for index in sorted(choices)],
    }
    if head.get("system_fingerprint"):
        out["system_fingerprint"] = head["system_fingerprint"]
    if usage is not None:
        out["usage"] = usage
    return out


def _merge(state: JSON, part: JSON) -> None:
    if part.get("finish_reason") is not None:
        state["finish_reason"] = part["finish_reason"]
    if "text" in part:  # text_completion
        state["text"] = state.get("text", "") + (part.get("text") or "")
        return
    delta = part.get("delta") or {}
    if delta.get("role"):
        state["role"] = delta["role"]
    for field in ("content", "reasoning_content", "refusal"):
        if delta.get(field):
            state[field] = state.get(field, "") + delta[field]
    for call in delta.get("tool_calls") or ():
        calls: dict[int, JSON] = state.setdefault("tool_calls", {})
        slot = calls.setdefault(
            int(call.get("index", len(calls))), {"function": {"name": "", "arguments": ""}}
        )
        if call.get("id"):
            slot["id"] = call["id"]
        if call.get("type"):
            slot["type"] = call["type"]
        function = call.get("function") or {}
        slot["function"]["name"] += function.get("name") or ""
        slot["function"]["arguments"] += function.get("arguments") or ""


def _choice(index: int, state: JSON, completion: bool) -> JSON:
    if completion:
        return {
            "text": state.get("text", ""),
            "index": index,
            "logprobs": None,
            "finish_reason": state["finish_reason"],
        }
    message: JSON = {"role": state.get("role", "assistant"), "content": state.get("content")}
    if state.get("reasoning_content"):
        message["reasoning_content"] = state["reasoning_content"]
    if state.get("refusal"):
        message["refusal"] = state["refusal"]
    if state.get("tool_calls"):
        message["tool_calls"] = [
            {"id": c.get("id", ""), "type": c.get("type", "function"), "function": c["function"]}
            for _, c in sorted(state["tool_calls"].items())
        ]
    return {"index": index, "message": message, "logprobs": None, "finish_reason": state["finish_reason"]}


def replay(answer: JSON, *, include_usage: bool) -> bytes:
    """A stored chat or text completion as the stream that would have carried it."""
    completion = answer.get("object") == "text_completion"
    head = {
        "id": answer.get("id", ""),
        "object": "text_completion" if completion else "chat.completion.chunk",
        "created": answer.get("created", 0),
        "model": answer.get("model", ""),
    }
    if answer.get("system_fingerprint"):
        head["system_fingerprint"] = answer["system_fingerprint"]
    out: list[bytes] = []

    def emit(choices: list[JSON], **extra: Any) -> None:
        out.append(frame(_encode({**head, "choices": choices, **extra})))

    for choice in answer.get("choices") or ():
        index = choice.get("index", 0)
        if completion:
            for text in _pieces(choice.get("text") or ""):
                emit([{"text": text, "index": index, "logprobs": None, "finish_reason": None}])
            emit(
                [{"text": "", "index": index, "logprobs": None, "finish_reason": choice.get("finish_reason")}]
            )
            continue
        message = choice.get("message") or {}
        emit([_delta(index, {"role": message.get("role", "assistant"), "content": ""})])
        for field in ("reasoning_content", "content", "refusal"):
            for text in _pieces(message.get(field) or ""):
                emit([_delta(index, {field: text})])
        for position, call in enumerate(message.get("tool_calls") or ()):
            emit([_delta(index, {"tool_calls": [{"index": position, **call}]})])
        emit([{"index": index, "delta": {}, "logprobs": None, "finish_reason": choice.get("finish_reason")}])
    if include_usage and answer.get("usage"):
        emit([], usage=answer["usage"])
    out.append(DONE)
    return b"".join(out)


def _delta(index: int, delta: JSON) -> JSON:
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": None}


def _pieces(text: str) -> list[str]:
    return [text[i : i + PIECE] for i in range(0, len(text), PIECE)]
