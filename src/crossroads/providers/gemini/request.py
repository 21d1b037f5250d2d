"""OpenAI requests -> Gemini `generateContent` / `batchEmbedContents` bodies (pure).

Mapping: provider-wire-formats.md §4.5. Gemini rejects fields it does not know, so only
what maps is sent, plus Gemini's own fields when a caller writes them (`safetySettings`,
`cachedContent`, `generationConfig`, `toolConfig`, `labels`). Tool and response schemas go
as JSON Schema (`parametersJsonSchema`, `responseJsonSchema`), so OpenAI schemas need no
rewriting. Images are sent inline (data: URLs) or by URI (`fileData`); the gateway never
fetches a caller's URL.

Gemini has no tool-call ids: a function response is matched by name, which OpenAI's tool
messages do not carry, so names are looked up from the assistant turn that made the call.
Gemini 3 returns a `thoughtSignature` with a call that must come back with it; it travels
inside the OpenAI tool-call id (`call_<hash>~ts~<signature>`), which clients echo untouched.
"""

from __future__ import annotations

import mimetypes
import re
from typing import Any, Final

import msgspec

from crossroads.errors import BadRequest
from crossroads.providers.turns import append_turn, arguments_object, texts

JSON = dict[str, Any]
SIGNATURE_MARK: Final = "~ts~"
MODEL_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Gemini's own request fields, passed through when a caller writes them.
NATIVE: Final = ("safetySettings", "cachedContent", "labels")
_TOOL_MODES: Final = {"auto": "AUTO", "none": "NONE", "required": "ANY", "any": "ANY"}
# OpenAI's reasoning_effort as thinking budgets (what Google's own OpenAI-compatible endpoint does).
_THINKING_BUDGET: Final = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}


def model_of(body: JSON, override: str | None = None) -> str:
    """The model id for the URL: `gemini-2.0-flash` (a `models/` prefix is dropped), checked."""
    model = override or body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model is required (e.g. gemini-2.5-flash)", param="model")
    model = model.removeprefix("models/")
    if not MODEL_NAME.fullmatch(model):
        raise BadRequest(f"model {model[:64]!r} is not a Gemini model name", param="model")
    return model


def chat_to_gemini(body: JSON, *, stream: bool) -> JSON:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty array", param="messages")
    n = body.get("n") or 1
    if stream and n != 1:
        raise BadRequest("n > 1 cannot be streamed from Gemini: send stream: false", param="n")
    system, contents = _contents(messages)
    if not contents:
        raise BadRequest("messages must hold at least one user or assistant message", param="messages")
    out: JSON = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    config = _generation_config(body)
    if config:
        out["generationConfig"] = config
    tools = _tools(body.get("tools"))
    if tools:
        out["tools"] = tools
    tool_config = _tool_config(body.get("tool_choice"))
    if isinstance(body.get("toolConfig"), dict):
        tool_config = body["toolConfig"]
    if tool_config is not None:
        out["toolConfig"] = tool_config
    for key in NATIVE:
        if key in body:
            out[key] = body[key]
    return out


def completion_to_gemini(body: JSON) -> JSON:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise BadRequest("prompt must be a string (Gemini takes one prompt per request)", param="prompt")
    out: JSON = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
    config = _generation_config(body)
    if config:
        out["generationConfig"] = config
    return out


def embeddings_to_gemini(body: JSON, model: str) -> JSON:
    raw = body.get("input")
    inputs = raw if isinstance(raw, list) else [raw]
    if not inputs or not all(isinstance(i, str) and i for i in inputs):
        raise BadRequest(
            "input must be a non-empty string or list of strings (Gemini does not take token arrays)",
            param="input",
        )
    request: JSON = {"model": f"models/{model}"}
    if isinstance(body.get("dimensions"), int):
        request["outputDimensionality"] = body["dimensions"]
    task = body.get("task_type") or body.get("taskType")
    if isinstance(task, str):
        request["taskType"] = task
    return {"requests": [{**request, "content": {"parts": [{"text": text}]}} for text in inputs]}


# -- messages --------------------------------------------------------------------------------


def _contents(messages: list[Any]) -> tuple[list[str], list[JSON]]:
    system: list[str] = []
    contents: list[JSON] = []
    names: dict[str, str] = {}  # tool call id -> function name
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest(f"messages[{index}] must be an object", param="messages")
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system += [t for t in texts(content, index) if t]
        elif role == "user":
            append_turn(contents, "user", _user_parts(content, index), key="parts")
        elif role == "assistant":
            parts: list[JSON] = [{"text": t} for t in texts(content, index) if t]
            tool_calls = message.get("tool_calls") or []
            if not isinstance(tool_calls, list):
                raise BadRequest(f"messages[{index}].tool_calls must be an array", param="messages")
            for call in tool_calls:
                function = call.get("function") if isinstance(call, dict) else None
                if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                    raise BadRequest(
                        f"messages[{index}].tool_calls: each needs a function name", param="messages"
                    )
                call_id = call.get("id")
                if isinstance(call_id, str):
                    names[call_id] = function["name"]
                part: JSON = {
                    "functionCall": {
                        "name": function["name"],
                        "args": arguments_object(function.get("arguments"), index),
                    }
                }
                signature = signature_of(call_id)
                if signature:
                    part["thoughtSignature"] = signature
                parts.append(part)
            append_turn(contents, "model", parts, key="parts")
        elif role == "tool":
            call_id = message.get("tool_call_id")
            name = names.get(call_id) if isinstance(call_id, str) else None
            if name is None:
                raise BadRequest(
                    f"messages[{index}].tool_call_id {str(call_id)[:64]!r} matches no earlier "
                    "assistant tool call (Gemini needs the function's name)",
                    param=f"messages[{index}].tool_call_id",
                )
            response = {"functionResponse": {"name": name, "response": _tool_result(content)}}
            append_turn(contents, "user", [response], key="parts", is_result=_is_response)
        else:
            raise BadRequest(f"messages[{index}].role {role!r} is not supported by Gemini", param="messages")
    return system, contents


def _is_response(part: JSON) -> bool:
    return "functionResponse" in part


def signature_of(call_id: Any) -> str | None:
    if isinstance(call_id, str) and SIGNATURE_MARK in call_id:
        return call_id.split(SIGNATURE_MARK, 1)[1] or None
    return None


def _user_parts(content: Any, index: int) -> list[JSON]:
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list):
        raise BadRequest(f"messages[{index}].content must be a string or a list of parts", param="messages")
    parts: list[JSON] = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        where = f"messages[{index}].content[{i}]"
        if kind == "text":
            parts.append({"text": part.get("text", "")})
        elif kind == "image_url":
            url = (part.get("image_url") or {}).get("url")
            parts.append(_media(url, where, "image/jpeg"))
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            fmt = audio.get("format") or "wav"
            parts.append({"inlineData": {"mimeType": f"audio/{fmt}", "data": audio.get("data", "")}})
        elif kind == "file":
            file = part.get("file") or {}
            if file.get("file_data"):
                parts.append(_media(file["file_data"], where, "application/pdf"))
            elif file.get("file_id"):
                parts.append(_media(file["file_id"], where, "application/pdf"))
            else:
                raise BadRequest(f"{where}: a file part needs file_data or file_id", param=where)
        else:
            raise BadRequest(f"{where}: content type {kind!r} is not supported by Gemini", param=where)
    return parts


def _media(url: Any, where: str, default_type: str) -> JSON:
    if not isinstance(url, str) or not url:
        raise BadRequest(f"{where}: the url is missing", param=where)
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        if not header.endswith(";base64") or not data:
            raise BadRequest(f"{where}: the data: URL must be base64", param=where)
        return {"inlineData": {"mimeType": header[5:].removesuffix(";base64").lower(), "data": data}}
    guessed = mimetypes.guess_type(url.split("?", 1)[0])[0]
    return {"fileData": {"mimeType": guessed or default_type, "fileUri": url}}


def _tool_result(content: Any) -> JSON:
    """Gemini wants an object: a JSON object result as it is, anything else as {"content": text}."""
    if isinstance(content, list):
        text = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    else:
        text = "" if content is None else str(content)
    if text[:1] == "{":
        try:
            value = msgspec.json.decode(text)
        except msgspec.DecodeError:
            value = None
        if isinstance(value, dict):
            return value
    return {"content": text}


# -- parameters ------------------------------------------------------------------------------


def _generation_config(body: JSON) -> JSON:
    config: JSON = {}
    for ours, theirs in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(max_tokens, int):
        config["maxOutputTokens"] = max_tokens
    n = body.get("n")
    if isinstance(n, int) and n != 1:
        config["candidateCount"] = n
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("logprobs"):
        config["responseLogprobs"] = True
        if isinstance(body.get("top_logprobs"), int):
            config["logprobs"] = body["top_logprobs"]
    response_format = body.get("response_format")
    if isinstance(response_format, dict):
        kind = response_format.get("type")
        if kind in ("json_object", "json_schema"):
            config["responseMimeType"] = "application/json"
        if kind == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema")
            if isinstance(schema, dict):
                config["responseJsonSchema"] = schema
    thinking = _thinking(body)
    if thinking is not None:
        config["thinkingConfig"] = thinking
    native = body.get("generationConfig")
    if isinstance(native, dict):
        config.update(native)  # the caller's own Gemini settings win
    return config


def _thinking(body: JSON) -> JSON | None:
    thinking = body.get("thinking")
    if isinstance(thinking, dict):  # Anthropic's shape, as Portkey accepts it
        if thinking.get("type") == "disabled":
            return {"thinkingBudget": 0}
        budget = thinking.get("budget_tokens")
        out: JSON = {"includeThoughts": True}
        if isinstance(budget, int):
            out["thinkingBudget"] = budget
        return out
    effort = body.get("reasoning_effort")
    if isinstance(effort, str) and effort in _THINKING_BUDGET:
        return {"thinkingBudget": _THINKING_BUDGET[effort]}
    return None


def _tools(tools: Any) -> list[JSON]:
    if not tools:
        return []
    if not isinstance(tools, list):
        raise BadRequest("tools must be an array", param="tools")
    declarations: list[JSON] = []
    native: list[JSON] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise BadRequest(f"tools[{i}] must be an object", param="tools")
        function = tool.get("function")
        if tool.get("type") == "function" and isinstance(function, dict):
            if not isinstance(function.get("name"), str):
                raise BadRequest(f"tools[{i}].function.name is required", param="tools")
            declaration: JSON = {"name": function["name"]}
            if function.get("description"):
                declaration["description"] = function["description"]
            if isinstance(function.get("parameters"), dict) and function["parameters"].get("properties"):
                declaration["parametersJsonSchema"] = function["parameters"]
            declarations.append(declaration)
        elif "type" not in tool:  # a Gemini tool (googleSearch, codeExecution, ...) as it is
            native.append(tool)
        else:
            raise BadRequest(
                f"tools[{i}]: type {tool.get('type')!r} is not supported by Gemini", param="tools"
            )
    return ([{"functionDeclarations": declarations}] if declarations else []) + native


def _tool_config(choice: Any) -> JSON | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _TOOL_MODES:
        return {"functionCallingConfig": {"mode": _TOOL_MODES[choice]}}
    if isinstance(choice, dict) and isinstance((choice.get("function") or {}).get("name"), str):
        name = choice["function"]["name"]
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    raise BadRequest("tool_choice must be auto, none, required or a named function", param="tool_choice")
