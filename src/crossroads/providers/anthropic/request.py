"""OpenAI chat (and legacy completions) requests -> Anthropic Messages requests (pure).

Mapping: ../shared/reference/provider-wire-formats.md §3.5. System and developer messages
become the top-level `system` (kept as blocks when any carries `cache_control`); tool
results are merged into one user turn, results first; consecutive same-role turns are
merged; `max_tokens` defaults to DEFAULT_MAX_TOKENS; `temperature` above 1 is clamped to 1
(Anthropic's range is 0..1). Fields Anthropic has no use for are dropped (listed in
DROPPED); `n > 1`, audio input and the like are refused with a 400 naming the field; any
other field (top_k, thinking, cache_control, container, mcp_servers, ...) passes through
untouched, so new Anthropic parameters work without a gateway release.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from crossroads.errors import BadRequest
from crossroads.providers.turns import append_turn

JSON = dict[str, Any]
DEFAULT_MAX_TOKENS: Final = 4096
DEFAULT_COMPLETION_MAX_TOKENS: Final = 16  # OpenAI's default for /v1/completions
# OpenAI fields that mean nothing to Anthropic; dropped rather than refused (they are hints).
DROPPED: Final = frozenset(
    {
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "store",
        "metadata",
        "prediction",
        "service_tier",
        "verbosity",
        "prompt_cache_key",
        "prompt_cache_retention",
        "web_search_options",
        "reasoning_effort",
        "stream_options",
        "safety_identifier",
        "parallel_tool_calls",
        "modalities",
        "model",
    }
)
# Handled by the translation below.
_MAPPED: Final = frozenset(
    {
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "temperature",
        "top_p",
        "user",
        "tools",
        "tool_choice",
        "response_format",
        "functions",
        "function_call",
        "n",
        "audio",
        "stream",
        "prompt",
        "anthropic_beta",
        "anthropic_version",
        "suffix",
        "echo",
        "best_of",
    }
)


def chat_to_messages(body: JSON, model: str | None) -> JSON:
    """An Anthropic /v1/messages body for an OpenAI chat completions body."""
    if (body.get("n") or 1) != 1:
        raise BadRequest("n > 1 is not supported by Anthropic: send n separate requests", param="n")
    if body.get("audio") is not None or "audio" in (body.get("modalities") or ()):
        raise BadRequest("audio output is not supported by Anthropic", param="audio")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty array", param="messages")
    system, turns = _convert_messages(messages)
    out: JSON = {"model": model or body.get("model"), "messages": turns}
    if system:
        out["system"] = system
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    out["max_tokens"] = max_tokens if isinstance(max_tokens, int) else DEFAULT_MAX_TOKENS
    _sampling(body, out)
    tools = _tools(body)
    if tools is not None:
        out["tools"] = tools
    choice = _tool_choice(body)
    if choice is not None:
        out["tool_choice"] = choice
    output_format = _output_format(body.get("response_format"))
    if output_format is not None:
        out["output_config"] = {"format": output_format}
    if body.get("stream"):
        out["stream"] = True
    for key, value in body.items():  # provider extras pass through
        if key not in _MAPPED and key not in DROPPED and key not in out:
            out[key] = value
    return out


def completion_to_messages(body: JSON, model: str | None) -> JSON:
    """A /v1/messages body for a legacy /v1/completions body (the prompt is the user turn)."""
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise BadRequest("Anthropic takes one text prompt per request", param="prompt")
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise BadRequest("prompt must be a non-empty string", param="prompt")
    chat = {k: v for k, v in body.items() if k not in ("prompt", "suffix", "echo", "best_of")}
    chat["messages"] = [{"role": "user", "content": prompt}]
    chat.setdefault("max_tokens", DEFAULT_COMPLETION_MAX_TOKENS)
    return chat_to_messages(chat, model)


# -- messages ---------------------------------------------------------------------------------


def _convert_messages(messages: list[Any]) -> tuple[str | list[JSON], list[JSON]]:
    system_blocks: list[JSON] = []
    turns: list[JSON] = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest(f"messages[{index}] must be an object", param=f"messages[{index}]")
        role = message.get("role")
        if role in ("system", "developer"):
            system_blocks += _text_blocks(message.get("content"), f"messages[{index}].content")
        elif role == "user":
            append_turn(turns, "user", _user_blocks(message.get("content"), index))
        elif role == "assistant":
            append_turn(turns, "assistant", _assistant_blocks(message, index))
        elif role in ("tool", "function"):
            append_turn(turns, "user", [_tool_result(message, index)], is_result=_is_result)
        else:
            raise BadRequest(
                f"messages[{index}].role {role!r} is not one of system, developer, user, assistant, tool",
                param=f"messages[{index}].role",
            )
    if any("cache_control" in block for block in system_blocks):
        system: str | list[JSON] = system_blocks
    else:
        system = "\n\n".join(block["text"] for block in system_blocks)
    return system, turns


def _is_result(block: JSON) -> bool:
    return block.get("type") == "tool_result"


def _text_blocks(content: Any, where: str) -> list[JSON]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        blocks = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise BadRequest(f"{where}[{i}] must be a text part", param=where)
            if not isinstance(part.get("text", ""), str):
                raise BadRequest(f"{where}: a text part's text must be a string", param=where)
            block: JSON = {"type": "text", "text": part.get("text", "")}
            if "cache_control" in part:
                block["cache_control"] = part["cache_control"]
            blocks.append(block)
        return blocks
    if content is None:
        return []
    raise BadRequest(f"{where} must be a string or a list of parts", param=where)


def _user_blocks(content: Any, index: int) -> list[JSON]:
    where = f"messages[{index}].content"
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise BadRequest(f"{where} must be a string or a list of parts", param=where)
    blocks: list[JSON] = []
    for i, part in enumerate(content):
        if not isinstance(part, dict):
            raise BadRequest(f"{where}[{i}] must be an object", param=where)
        kind = part.get("type")
        block: JSON
        if kind == "text":
            block = {"type": "text", "text": part.get("text", "")}
        elif kind == "image_url":
            block = _image(part.get("image_url"), f"{where}[{i}].image_url")
        elif kind == "file":
            block = _document(part.get("file"), f"{where}[{i}].file")
        elif kind in ("image", "document", "tool_result", "search_result"):
            block = dict(part)  # already an Anthropic block: kept intact
        else:
            raise BadRequest(
                f"{where}[{i}]: content type {kind!r} is not supported by Anthropic", param=where
            )
        if "cache_control" in part and kind in ("text", "image_url", "file"):
            block["cache_control"] = part["cache_control"]
        blocks.append(block)
    return blocks


def _image(image: Any, where: str) -> JSON:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise BadRequest(f"{where}.url is required", param=where)
    if url.startswith("data:"):
        media_type, data = _data_url(url, where)
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise BadRequest(f"{where}.url must be an http(s) URL or a data: URL", param=where)


def _document(file: Any, where: str) -> JSON:
    data = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data, str) or not data.startswith("data:"):
        raise BadRequest(f"{where}: Anthropic takes files as file_data data: URLs (PDF or text)", param=where)
    media_type, payload = _data_url(data, where)
    return {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": payload}}


def _data_url(url: str, where: str) -> tuple[str, str]:
    header, _, data = url.partition(",")
    if not header.endswith(";base64") or not data:
        raise BadRequest(f"{where}: a data: URL must be base64-encoded", param=where)
    return header[5:].removesuffix(";base64"), data


def _assistant_blocks(message: JSON, index: int) -> list[JSON]:
    content = message.get("content")
    blocks: list[JSON] = []
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                if part.get("text"):
                    blocks.append({"type": "text", "text": part["text"]})
            elif isinstance(part, dict) and part.get("type") in ("thinking", "redacted_thinking", "tool_use"):
                blocks.append(dict(part))  # replayed unchanged (thinking needs its signature)
    tool_calls = message.get("tool_calls") or []
    if not isinstance(tool_calls, list):
        raise BadRequest(
            f"messages[{index}].tool_calls must be an array", param=f"messages[{index}].tool_calls"
        )
    for i, call in enumerate(tool_calls):
        if not isinstance(call, dict) or not isinstance(call.get("function") or {}, dict):
            raise BadRequest(
                f"messages[{index}].tool_calls[{i}] must be an object with a function",
                param=f"messages[{index}].tool_calls",
            )
        function = call.get("function") or {}
        arguments = function.get("arguments") or "{}"
        try:
            parsed = msgspec.json.decode(arguments) if isinstance(arguments, str) else arguments
        except msgspec.DecodeError:
            raise BadRequest(
                f"messages[{index}].tool_calls[{i}].function.arguments is not valid JSON",
                param=f"messages[{index}].tool_calls",
            ) from None
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": parsed if isinstance(parsed, dict) else {"value": parsed},
            }
        )
    if message.get("function_call"):
        function = message["function_call"]
        blocks.append(
            {
                "type": "tool_use",
                "id": f"call_{index}",
                "name": function.get("name"),
                "input": msgspec.json.decode(function.get("arguments") or "{}"),
            }
        )
    return blocks


def _tool_result(message: JSON, index: int) -> JSON:
    tool_use_id = message.get("tool_call_id") or (
        f"call_{index - 1}" if message.get("role") == "function" else None
    )
    if not tool_use_id:
        raise BadRequest(
            f"messages[{index}].tool_call_id is required", param=f"messages[{index}].tool_call_id"
        )
    content = message.get("content")
    result: JSON = {"type": "tool_result", "tool_use_id": tool_use_id}
    if isinstance(content, list):
        result["content"] = [
            {"type": "text", "text": p.get("text", "")} if p.get("type") == "text" else p
            for p in content
            if isinstance(p, dict)
        ]
    else:
        result["content"] = "" if content is None else str(content)
    return result


# -- parameters -------------------------------------------------------------------------------


def _sampling(body: JSON, out: JSON) -> None:
    stop = body.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        out["stop_sequences"] = stop
    temperature = body.get("temperature")
    if isinstance(temperature, int | float):
        out["temperature"] = min(float(temperature), 1.0)
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    user = body.get("user") or body.get("safety_identifier")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}


def _tools(body: JSON) -> list[JSON] | None:
    tools = body.get("tools")
    if tools is None and body.get("functions"):
        tools = [{"type": "function", "function": f} for f in body["functions"]]
    if not tools:
        return None
    if not isinstance(tools, list):
        raise BadRequest("tools must be an array", param="tools")
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise BadRequest(f"tools[{i}] must be an object", param="tools")
        if tool.get("type") != "function":
            out.append(tool)  # an Anthropic server tool (web_search, ...), kept as sent
            continue
        function = tool.get("function") or {}
        schema = function.get("parameters") or {"type": "object", "properties": {}}
        converted: JSON = {"name": function.get("name"), "input_schema": schema}
        if function.get("description"):
            converted["description"] = function["description"]
        if function.get("strict") is not None:
            converted["strict"] = function["strict"]
        if "cache_control" in tool:
            converted["cache_control"] = tool["cache_control"]
        out.append(converted)
    return out


def _tool_choice(body: JSON) -> JSON | None:
    choice = body.get("tool_choice", body.get("function_call"))
    parallel = body.get("parallel_tool_calls")
    out: JSON | None
    if choice is None:
        out = None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "none":
        out = {"type": "none"}
    elif choice in ("required", "any"):
        out = {"type": "any"}
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        if not name:
            raise BadRequest("tool_choice names no function", param="tool_choice")
        out = {"type": "tool", "name": name}
    else:
        raise BadRequest(f"tool_choice {choice!r} is not supported", param="tool_choice")
    if parallel is False and body.get("tools"):
        out = {**(out or {"type": "auto"}), "disable_parallel_tool_use": True}
    return out


def _output_format(response_format: Any) -> JSON | None:
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
        return {"type": "json_schema", "schema": schema}
    if kind == "json_object":
        return {"type": "json_schema", "schema": {"type": "object"}}
    return None
