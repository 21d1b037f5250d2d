"""Anthropic Messages <-> OpenAI chat, for /v1/messages clients served by providers that speak
OpenAI's format (pure). The reverse of anthropic/request.py and anthropic/response.py."""

from __future__ import annotations

from typing import Any, Final

import msgspec

from crossroads.errors import BadRequest

JSON = dict[str, Any]
_STOP: Final = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def messages_to_chat(body: JSON) -> JSON:
    """An OpenAI chat completions body for an Anthropic /v1/messages body."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: Field required (a non-empty list)", param="messages")
    out: JSON = {"model": body.get("model"), "messages": []}
    system = body.get("system")
    if isinstance(system, str) and system:
        out["messages"].append({"role": "system", "content": system})
    elif isinstance(system, list) and system:
        out["messages"].append(
            {
                "role": "system",
                "content": "\n\n".join(
                    b.get("text", "") for b in system if isinstance(b, dict) and b.get("type") == "text"
                ),
            }
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise BadRequest(f"messages.{index}: role must be user or assistant", param="messages")
        if message["role"] == "user":
            out["messages"] += _user(message.get("content"), index)
        else:
            out["messages"].append(_assistant(message.get("content"), index))
    if body.get("max_tokens") is not None:
        out["max_tokens"] = body["max_tokens"]
    if body.get("stop_sequences"):
        out["stop"] = body["stop_sequences"]
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    user = (body.get("metadata") or {}).get("user_id")
    if user:
        out["user"] = user
    tools = body.get("tools")
    if tools:
        out["tools"] = [_tool(tool, i) for i, tool in enumerate(tools)]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "tool":
            out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
        elif kind in ("auto", "none"):
            out["tool_choice"] = kind
        elif kind == "any":
            out["tool_choice"] = "required"
        if choice.get("disable_parallel_tool_use") and tools:
            out["parallel_tool_calls"] = False
    output_format = (body.get("output_config") or {}).get("format") or body.get("output_format")
    if isinstance(output_format, dict) and output_format.get("type") == "json_schema":
        out["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": output_format.get("schema") or {}},
        }
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _user(content: Any, index: int) -> list[JSON]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    if not isinstance(content, list):
        raise BadRequest(f"messages.{index}.content must be a string or a list of blocks", param="messages")
    results: list[JSON] = []
    parts: list[JSON] = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _source_url(block.get("source") or {})}})
        elif kind == "document":
            source = block.get("source") or {}
            if source.get("type") == "text":
                parts.append({"type": "text", "text": source.get("data", "")})
            else:
                parts.append({"type": "file", "file": {"file_data": _source_url(source)}})
        elif kind == "tool_result":
            results.append(
                {
                    "role": "tool",
                    "tool_call_id": block.get("tool_use_id"),
                    "content": _result_text(block.get("content")),
                }
            )
        else:
            raise BadRequest(
                f"messages.{index}.content: block type {kind!r} cannot be sent to this provider",
                param="messages",
            )
    out = results
    if parts:
        out = [*results, {"role": "user", "content": parts}]
    return out


def _assistant(content: Any, index: int) -> JSON:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    if content is not None and not isinstance(content, list):
        raise BadRequest(f"messages[{index}].content must be a string or a list of blocks", param="messages")
    texts: list[str] = []
    calls: list[JSON] = []
    for block in content or ():
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            text = block.get("text", "")
            if not isinstance(text, str):
                raise BadRequest(
                    f"messages[{index}].content: a text block's text must be a string", param="messages"
                )
            texts.append(text)
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": msgspec.json.encode(block.get("input") or {}).decode(),
                    },
                }
            )
        # thinking blocks belong to Anthropic models and are not replayed to others
    message: JSON = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool(tool: Any, index: int) -> JSON:
    if not isinstance(tool, dict) or tool.get("type") not in (None, "custom"):
        kind = tool.get("type") if isinstance(tool, dict) else None
        raise BadRequest(f"tools.{index}: the server tool {kind!r} only runs on Anthropic", param="tools")
    function: JSON = {"name": tool.get("name"), "parameters": tool.get("input_schema") or {"type": "object"}}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _source_url(source: JSON) -> str:
    if source.get("type") == "base64":
        return f"data:{source.get('media_type', 'application/octet-stream')};base64,{source.get('data', '')}"
    if source.get("type") == "url":
        return str(source.get("url", ""))
    raise BadRequest(
        f"content source type {source.get('type')!r} cannot be sent to this provider", param="messages"
    )


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def chat_to_message(chat: JSON) -> JSON:
    """An Anthropic Message for an OpenAI chat completion."""
    choice = (chat.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[JSON] = []
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": _arguments(function.get("arguments")),
            }
        )
    return {
        "id": chat.get("id", ""),
        "type": "message",
        "role": "assistant",
        "model": chat.get("model", ""),
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": anthropic_usage(chat.get("usage")),
    }


def stop_reason(finish: str | None) -> str:
    return _STOP.get(finish or "stop", "end_turn")


def anthropic_usage(data: Any) -> JSON:
    data = data if isinstance(data, dict) else {}
    cached = int(((data.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0)
    return {
        "input_tokens": max(0, int(data.get("prompt_tokens") or 0) - cached),
        "output_tokens": int(data.get("completion_tokens") or 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def _arguments(arguments: Any) -> Any:
    if isinstance(arguments, dict):
        return arguments
    try:
        value = msgspec.json.decode(arguments or "{}")
    except (msgspec.DecodeError, TypeError):
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"value": value}
