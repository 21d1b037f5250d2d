"""OpenAI chat requests -> Bedrock Converse requests (pure). Mapping: provider-wire-formats.md §5.7.

Converse takes images and documents inline only, so http(s) image URLs are refused rather
than fetched (fetching caller-chosen URLs from the gateway would be an SSRF hole). Bedrock
requires a `toolConfig` whenever the conversation holds tool calls, so one is built from the
history when the request has no `tools`. Converse's own fields (`additionalModelRequestFields`,
`guardrailConfig`, `performanceConfig`, ...) pass through; `top_k` and Anthropic's `thinking`
go into additionalModelRequestFields.
"""

from __future__ import annotations

import base64
from typing import Any, Final

import msgspec

from crossroads.errors import BadRequest
from crossroads.providers.turns import append_turn, arguments_object, texts

JSON = dict[str, Any]
DEFAULT_MAX_TOKENS: Final = 4096
IMAGE_FORMATS: Final = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
DOCUMENT_FORMATS: Final = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "text/plain": "txt",
    "text/html": "html",
    "text/markdown": "md",
}
PASSTHROUGH: Final = (
    "additionalModelRequestFields",
    "additionalModelResponseFieldPaths",
    "guardrailConfig",
    "performanceConfig",
    "promptVariables",
    "requestMetadata",
    "outputConfig",
)


def chat_to_converse(body: JSON) -> JSON:
    if (body.get("n") or 1) != 1:
        raise BadRequest("n > 1 is not supported by Bedrock: send n separate requests", param="n")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty array", param="messages")
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        raise BadRequest(
            "response_format json_schema is not supported by Bedrock Converse: use a tool",
            param="response_format",
        )
    system, turns, used_tools = _messages(messages)
    out: JSON = {"messages": turns}
    if system:
        out["system"] = system
    inference: JSON = {}
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(max_tokens, int):
        inference["maxTokens"] = max_tokens
    if isinstance(body.get("temperature"), int | float):
        inference["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        inference["topP"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        inference["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if inference:
        out["inferenceConfig"] = inference
    tool_config = _tool_config(body, used_tools)
    if tool_config is not None:
        out["toolConfig"] = tool_config
    extra: JSON = dict(body.get("additionalModelRequestFields") or {})
    for key in ("top_k", "thinking"):
        if body.get(key) is not None:
            extra[key] = body[key]
    for key in PASSTHROUGH:
        if key in body:
            out[key] = body[key]
    if extra:
        out["additionalModelRequestFields"] = extra
    return out


def _messages(messages: list[Any]) -> tuple[list[JSON], list[JSON], set[str]]:
    system: list[JSON] = []
    turns: list[JSON] = []
    used: set[str] = set()
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest(f"messages[{index}] must be an object", param="messages")
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system += [{"text": t} for t in texts(content, index) if t]
        elif role == "user":
            append_turn(turns, "user", _user(content, index))
        elif role == "assistant":
            blocks: list[JSON] = [{"text": t} for t in texts(content, index) if t]
            tool_calls = message.get("tool_calls") or []
            if not isinstance(tool_calls, list) or not all(
                isinstance(c, dict) and isinstance(c.get("function") or {}, dict) for c in tool_calls
            ):
                raise BadRequest(
                    f"messages[{index}].tool_calls must be an array of objects with a function",
                    param="messages",
                )
            for call in tool_calls:
                function = call.get("function") or {}
                used.add(function.get("name", ""))
                blocks.append(
                    {
                        "toolUse": {
                            "toolUseId": call.get("id"),
                            "name": function.get("name"),
                            "input": arguments_object(function.get("arguments"), index),
                        }
                    }
                )
            append_turn(turns, "assistant", blocks)
        elif role == "tool":
            result = {
                "toolResult": {
                    "toolUseId": message.get("tool_call_id"),
                    "content": _result(content),
                    "status": "success",
                }
            }
            append_turn(turns, "user", [result], is_result=_is_result)
        else:
            raise BadRequest(f"messages[{index}].role {role!r} is not supported by Bedrock", param="messages")
    return system, turns, used


def _is_result(block: JSON) -> bool:
    return "toolResult" in block


def _user(content: Any, index: int) -> list[JSON]:
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list):
        raise BadRequest(f"messages[{index}].content must be a string or a list of parts", param="messages")
    blocks: list[JSON] = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        where = f"messages[{index}].content[{i}]"
        if kind == "text":
            blocks.append({"text": part.get("text", "")})
        elif kind == "image_url":
            url = (part.get("image_url") or {}).get("url", "")
            media, data = _inline(url, where, "image")
            if media not in IMAGE_FORMATS:
                raise BadRequest(
                    f"{where}: Bedrock takes png, jpeg, gif or webp images, not {media}", param=where
                )
            blocks.append({"image": {"format": IMAGE_FORMATS[media], "source": {"bytes": data}}})
        elif kind == "file":
            media, data = _inline((part.get("file") or {}).get("file_data", ""), where, "file")
            if media not in DOCUMENT_FORMATS:
                raise BadRequest(f"{where}: Bedrock does not take {media} documents", param=where)
            name = (part.get("file") or {}).get("filename") or f"document-{index}-{i}"
            blocks.append(
                {
                    "document": {
                        "format": DOCUMENT_FORMATS[media],
                        "name": _doc_name(name),
                        "source": {"bytes": data},
                    }
                }
            )
        else:
            raise BadRequest(f"{where}: content type {kind!r} is not supported by Bedrock", param=where)
    return blocks


def _inline(url: str, where: str, what: str) -> tuple[str, str]:
    if not url.startswith("data:"):
        raise BadRequest(
            f"{where}: Bedrock takes {what}s inline only: send a data: URL (the gateway does not fetch URLs)",
            param=where,
        )
    header, _, data = url.partition(",")
    if not header.endswith(";base64") or not data:
        raise BadRequest(f"{where}: the data: URL must be base64", param=where)
    try:
        base64.b64decode(data, validate=True)
    except ValueError:
        raise BadRequest(f"{where}: the data: URL is not valid base64", param=where) from None
    return header[5:].removesuffix(";base64").lower(), data


def _doc_name(name: str) -> str:
    # Bedrock allows letters, digits, spaces, hyphens, parentheses and brackets in names.
    cleaned = "".join(c if c.isalnum() or c in " -()[]" else "-" for c in name.rsplit(".", 1)[0])
    return cleaned[:200] or "document"


def _result(content: Any) -> list[JSON]:
    if isinstance(content, list):
        texts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return [{"text": "".join(texts)}]
    text = "" if content is None else str(content)
    try:
        value = msgspec.json.decode(text) if text[:1] in "{[" else None
    except msgspec.DecodeError:
        value = None
    return [{"json": value}] if isinstance(value, dict) else [{"text": text}]


def _tool_config(body: JSON, used: set[str]) -> JSON | None:
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    specs = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict):
            raise BadRequest(f"tools[{i}] must be a function tool", param="tools")
        spec: JSON = {
            "name": function.get("name"),
            "inputSchema": {"json": function.get("parameters") or {"type": "object", "properties": {}}},
        }
        if function.get("description"):
            spec["description"] = function["description"]
        specs.append({"toolSpec": spec})
    if not specs and used:
        # Bedrock rejects tool blocks in the history without a toolConfig: describe them.
        specs = [
            {"toolSpec": {"name": name, "inputSchema": {"json": {"type": "object"}}}} for name in sorted(used)
        ]
    if not specs or (choice == "none" and not used):
        return None
    config: JSON = {"tools": specs}
    if choice in ("required", "any"):
        config["toolChoice"] = {"any": {}}
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif isinstance(choice, dict):
        config["toolChoice"] = {"tool": {"name": (choice.get("function") or {}).get("name")}}
    return config
