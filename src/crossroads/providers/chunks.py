"""Building OpenAI answers from other providers' parts: chat completions, text completions,
their stream chunks, usage and finish reasons. Shared by every native translator.

Stream chunks are written from per-stream byte templates (the id, model and created time
do not change within a stream), so a text delta costs one string encode, not a dict build
and a full JSON encode.
"""

from __future__ import annotations

import base64
import struct
from typing import Any, Final

import msgspec

from crossroads.codecs.sse import frame

JSON = dict[str, Any]
_encode = msgspec.json.encode
FINISH_REASONS: Final = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})


def usage(
    prompt: int,
    completion: int,
    *,
    cached: int | None = None,
    reasoning: int | None = None,
    cache_creation: int | None = None,
) -> JSON:
    out: JSON = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached is not None or cache_creation is not None:
        details: JSON = {"cached_tokens": cached or 0}
        if cache_creation:
            details["cache_creation_tokens"] = cache_creation
        out["prompt_tokens_details"] = details
    if reasoning is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return out


def chat_completion(
    *,
    id: str,
    model: str,
    created: int,
    text: str | None,
    tool_calls: list[JSON],
    finish_reason: str,
    usage: JSON | None,
    extra_message: JSON | None = None,
) -> JSON:
    message: JSON = {
        "role": "assistant",
        "content": text if text or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    if extra_message:
        message.update(extra_message)
    out: JSON = {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        out["usage"] = usage
    return out


def text_completion(
    *, id: str, model: str, created: int, text: str, finish_reason: str, usage: JSON | None
) -> JSON:
    out: JSON = {
        "id": id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        out["usage"] = usage
    return out


def embedding_list(model: str, vectors: list[list[float]], *, as_base64: bool, tokens: int) -> JSON:
    """An OpenAI embeddings answer; base64 is float32 little-endian, as OpenAI sends it."""
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode() if as_base64 else v,
        }
        for i, v in enumerate(vectors)
    ]
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def tool_call(call_id: str, name: str, arguments: Any) -> JSON:
    text = arguments if isinstance(arguments, str) else _encode(arguments).decode()
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": text}}


class ChunkWriter:
    """OpenAI stream chunks for one stream, framed as `data:` events.

    `completion=True` writes legacy text_completion chunks instead (tool calls have no
    place there and are left out).
    """

    __slots__ = ("_completion", "_created", "_finished", "_head", "_id", "_model", "include_usage")

    def __init__(self, *, created: int, include_usage: bool, completion: bool = False) -> None:
        self._completion = completion
        self._created = created
        self.include_usage = include_usage
        self._id = ""
        self._model = ""
        self._head = b""
        self._finished = False

    def start(self, id: str, model: str) -> None:
        self._id, self._model = id, model
        kind = b"text_completion" if self._completion else b"chat.completion.chunk"
        self._head = (
            b'{"id":'
            + _encode(id)
            + b',"object":"'
            + kind
            + b'","created":'
            + str(self._created).encode()
            + b',"model":'
            + _encode(model)
            + b',"choices":['
        )

    @property
    def started(self) -> bool:
        return bool(self._head)

    def role(self) -> bytes:
        if self._completion:
            return b""
        return self._choice(b'{"role":"assistant","content":""}', b"null")

    def text(self, text: str) -> bytes:
        if self._completion:
            return frame(
                self._head
                + b'{"text":'
                + _encode(text)
                + b',"index":0,"logprobs":null,"finish_reason":null}]}'
            )
        return self._choice(b'{"content":' + _encode(text) + b"}", b"null")

    def reasoning(self, text: str) -> bytes:
        if self._completion:
            return b""
        return self._choice(b'{"reasoning_content":' + _encode(text) + b"}", b"null")

    def tool_start(self, index: int, call_id: str, name: str) -> bytes:
        if self._completion:
            return b""
        call = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        return self._choice(b'{"tool_calls":[' + _encode(call) + b"]}", b"null")

    def tool_arguments(self, index: int, fragment: str) -> bytes:
        if self._completion or not fragment:
            return b""
        return self._choice(
            b'{"tool_calls":[{"index":'
            + str(index).encode()
            + b',"function":{"arguments":'
            + _encode(fragment)
            + b"}}]}",
            b"null",
        )

    def finish(self, reason: str) -> bytes:
        self._finished = True
        if self._completion:
            return frame(
                self._head
                + b'{"text":"","index":0,"logprobs":null,"finish_reason":'
                + _encode(reason)
                + b"}]}"
            )
        return self._choice(b"{}", _encode(reason))

    def usage(self, data: JSON) -> bytes:
        if not self.include_usage:
            return b""
        return frame(self._head + b'],"usage":' + _encode(data) + b"}")

    @property
    def finished(self) -> bool:
        return self._finished

    def _choice(self, delta: bytes, finish: bytes) -> bytes:
        return frame(
            self._head
            + b'{"index":0,"delta":'
            + delta
            + b',"logprobs":null,"finish_reason":'
            + finish
            + b"}]}"
        )
