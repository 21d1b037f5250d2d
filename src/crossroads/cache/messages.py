"""Anthropic Messages streams (/v1/messages) in and out of the cache.

Entries hold the Message a non-streamed request gets, so streamed and plain requests share
them. `assemble_message` rebuilds that Message from a complete stream as the client received
it (`message_start` ... `message_stop`; an `error` event or a missing `message_stop` means it is
not stored); `replay_message` turns a Message back into the event sequence the anthropic SDK
expects, `event:` lines included: text in deltas of 500 characters, a tool's input as one
`input_json_delta`, thinking with its signature.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from crossroads.codecs.sse import SSEDecoder, frame

JSON = dict[str, Any]
PIECE: Final = 500

_decode = msgspec.json.decode
_encode = msgspec.json.encode


def assemble_message(stream: bytes) -> JSON | None:
    decoder = SSEDecoder()
    message: JSON | None = None
    blocks: dict[int, JSON] = {}
    partial_json: dict[int, str] = {}
    stopped = False
    for event in [*decoder.feed(stream), *decoder.close()]:
        if event.comment or not event.data:
            continue
        try:
            data = _decode(event.data)
        except msgspec.DecodeError:
            return None
        if not isinstance(data, dict):
            return None
        kind = data.get("type")
        if kind == "error" or event.name == b"error":
            return None
        if kind == "message_start":
            message = dict(data.get("message") or {})
        elif kind == "content_block_start":
            blocks[int(data.get("index", 0))] = dict(data.get("content_block") or {})
        elif kind == "content_block_delta":
            index = int(data.get("index", 0))
            block = blocks.get(index)
            delta = data.get("delta") or {}
            if block is None:
                return None
            kind_of_delta = delta.get("type")
            if kind_of_delta == "text_delta":
                block["text"] = block.get("text", "") + delta.get("text", "")
            elif kind_of_delta == "input_json_delta":
                partial_json[index] = partial_json.get(index, "") + delta.get("partial_json", "")
            elif kind_of_delta == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
            elif kind_of_delta == "signature_delta":
                block["signature"] = block.get("signature", "") + delta.get("signature", "")
            elif kind_of_delta == "citations_delta":
                block.setdefault("citations", []).append(delta.get("citation"))
            else:
                return None  # a delta this cache does not know how to rebuild: do not store
        elif kind == "message_delta" and message is not None:
            delta = data.get("delta") or {}
            for field in ("stop_reason", "stop_sequence"):
                if field in delta:
                    message[field] = delta[field]
            if isinstance(data.get("usage"), dict):
                message["usage"] = {**(message.get("usage") or {}), **data["usage"]}
        elif kind == "message_stop":
            stopped = True
    if message is None or not stopped:
        return None
    for index, text in partial_json.items():
        try:
            blocks[index]["input"] = _decode(text) if text else {}
        except msgspec.DecodeError:
            return None
    message["content"] = [blocks[i] for i in sorted(blocks)]
    return message


def replay_message(message: JSON) -> bytes:
    out: list[bytes] = []

    def emit(kind: str, payload: JSON) -> None:
        out.append(frame(_encode({"type": kind, **payload}), kind.encode()))

    usage = message.get("usage") or {}
    start = {k: v for k, v in message.items() if k not in ("content", "stop_reason", "stop_sequence")}
    start.update(content=[], stop_reason=None, stop_sequence=None, usage={**usage, "output_tokens": 1})
    emit("message_start", {"message": start})
    for index, block in enumerate(message.get("content") or ()):
        kind = block.get("type")
        if kind == "text":
            emit("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
            for text in _pieces(block.get("text") or ""):
                emit("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": text}})
        elif kind == "tool_use":
            opening = {**block, "input": {}}
            emit("content_block_start", {"index": index, "content_block": opening})
            arguments = _encode(block.get("input") or {}).decode()
            emit(
                "content_block_delta",
                {"index": index, "delta": {"type": "input_json_delta", "partial_json": arguments}},
            )
        elif kind == "thinking":
            opening = {"type": "thinking", "thinking": "", "signature": ""}
            emit("content_block_start", {"index": index, "content_block": opening})
            for text in _pieces(block.get("thinking") or ""):
                emit(
                    "content_block_delta",
                    {"index": index, "delta": {"type": "thinking_delta", "thinking": text}},
                )
            if block.get("signature"):
                delta = {"type": "signature_delta", "signature": block["signature"]}
                emit("content_block_delta", {"index": index, "delta": delta})
        else:  # redacted thinking, server tool results, ...: whole, in the start event
            emit("content_block_start", {"index": index, "content_block": block})
        emit("content_block_stop", {"index": index})
    emit(
        "message_delta",
        {
            "delta": {
                "stop_reason": message.get("stop_reason"),
                "stop_sequence": message.get("stop_sequence"),
            },
            "usage": {"output_tokens": usage.get("output_tokens", 0)},
        },
    )
    emit("message_stop", {})
    return b"".join(out)


def _pieces(text: str) -> list[str]:
    return [text[i : i + PIECE] for i in range(0, len(text), PIECE)]
