"""The built-in `mock` provider: a deterministic OpenAI-compatible upstream that runs in process.

It answers chat and legacy completions by echoing the last user message, embeddings with
vectors derived from a hash of the input, and the other endpoints with small valid
answers. Behaviour is steered from the request (see docs/mock.md):

    "model": "mock-1?status=503&latency_ms=200"          options in the model name, or
    "mock": {"chunks": 5, "chunk_delay_ms": 20, "fail_after": 2}   a `mock` body object.

The mock speaks the OpenAI wire format, so it goes through the same adapter code as real
providers: the responder produces bytes and SSE, `OpenAIFormat` parses them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import re
import struct
import time
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any, Final
from urllib.parse import parse_qsl

import msgspec

from crossroads.codecs.sse import DONE, frame
from crossroads.errors import UpstreamUnavailable
from crossroads.providers.base import Call, LocalResponder, Target
from crossroads.providers.openai import OpenAIFormat
from crossroads.providers.profile import EVERYTHING, Profile
from crossroads.upstream.response import LocalResponse, UpstreamRequest, UpstreamResponse

JSON = dict[str, Any]
_encode = msgspec.json.encode
_decode = msgspec.json.decode

PROFILE: Final = Profile(slug="mock", base_url="mock://local", endpoints=EVERYTHING, auth_header="")
MODELS: Final = (
    "mock-1",
    "mock-embedding-1",
    "mock-image-1",
    "mock-tts-1",
    "mock-whisper-1",
    "mock-moderation-1",
)
_TOKEN = re.compile(r"\w+|[^\w\s]")


class MockOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    status: int | None = None  # answer with this HTTP status and an OpenAI error body
    latency_ms: float = 0  # wait before the response headers
    chunks: int | None = None  # number of content chunks when streaming (default: one per word)
    chunk_delay_ms: float = 0  # wait between streamed chunks
    fail_after: int | None = None  # stream this many chunks, then drop the connection
    error_after: int | None = None  # stream this many chunks, then send an in-stream error event
    content: str | None = None  # reply with this text instead of the echo
    retry_after: float | None = None  # `retry-after` seconds on an error answer


class MockAdapter(OpenAIFormat):
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__(PROFILE)
        self._responder = MockResponder(clock)

    @property
    def responder(self) -> LocalResponder:
        return self._responder

    def build(self, call: Call, target: Target) -> UpstreamRequest:
        # The mock ignores custom hosts and keys: it never leaves the process.
        plain = Target(provider="mock", forward_headers=target.forward_headers, options=target.options)
        return super().build(call, plain)


class MockResponder:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    async def respond(self, request: UpstreamRequest) -> UpstreamResponse:
        path = request.url.removeprefix(PROFILE.base_url or "").split("?", 1)[0]
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            body: JSON = (
                await asyncio.to_thread(_parse_form, content_type, request.body)
                if len(request.body) > 1 << 20
                else _parse_form(content_type, request.body)
            )
        elif request.body:
            try:
                decoded = _decode(request.body)
            except msgspec.DecodeError:
                return _error(400, "the request body is not valid JSON", "invalid_request_error")
            if not isinstance(decoded, dict):
                return _error(400, "the request body must be a JSON object", "invalid_request_error")
            body = decoded
        else:
            body = {}
        try:
            options = _options(body)
        except (msgspec.ValidationError, ValueError) as exc:
            return _error(400, f"invalid mock options: {exc}", "invalid_request_error", param="mock")
        if options.latency_ms:
            await asyncio.sleep(options.latency_ms / 1000)
        if options.status is not None and options.status >= 400:
            headers = {"retry-after": _num(options.retry_after)} if options.retry_after is not None else {}
            return _error(
                options.status,
                f"injected failure: status {options.status} requested",
                _type_for(options.status),
                headers=headers,
            )
        handler = _ROUTES.get((request.method, path))
        if handler is None:
            return _error(404, f"Invalid URL ({request.method} /v1{path})", "invalid_request_error")
        return handler(self, body, options, request)

    # -- endpoints ---------------------------------------------------------------------------

    def chat(self, body: JSON, options: MockOptions, request: UpstreamRequest) -> UpstreamResponse:
        model = _model(body, "mock-1")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(
                400, "messages must be a non-empty array", "invalid_request_error", param="messages"
            )
        prompt_text = " ".join(_text(m.get("content")) for m in messages if isinstance(m, dict))
        prompt_tokens = count_tokens(prompt_text) + 3 * len(messages)
        tool_call = _forced_tool(body)
        reply = options.content if options.content is not None else _last_user_text(messages)
        created = int(self._clock())
        rid = "chatcmpl-mock-" + hashlib.sha256(request.body).hexdigest()[:24]
        completion_tokens = count_tokens(reply) if tool_call is None else 8
        usage = _usage(prompt_tokens, completion_tokens)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            chunks = _chat_chunks(
                rid=rid,
                created=created,
                model=model,
                reply=reply,
                tool_call=tool_call,
                options=options,
                usage=usage if include_usage else None,
            )
            return _stream(chunks, options)
        message: JSON = {"role": "assistant", "content": reply, "refusal": None, "annotations": []}
        finish = "stop"
        if tool_call is not None:
            message["content"] = None
            message["tool_calls"] = [tool_call]
            finish = "tool_calls"
        return _json(
            {
                "id": rid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                "usage": usage,
                "system_fingerprint": "fp_mock",
                "service_tier": "default",
            }
        )

    def completions(self, body: JSON, options: MockOptions, request: UpstreamRequest) -> UpstreamResponse:
        model = _model(body, "mock-1")
        prompt = body.get("prompt", "")
        text = (
            prompt
            if isinstance(prompt, str)
            else " ".join(str(p) for p in prompt)
            if isinstance(prompt, list)
            else ""
        )
        reply = options.content if options.content is not None else text
        created = int(self._clock())
        rid = "cmpl-mock-" + hashlib.sha256(request.body).hexdigest()[:24]
        usage = _usage(count_tokens(text), count_tokens(reply))
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

            def chunk(piece: str, finish: str | None) -> bytes:
                return _encode(
                    {
                        "id": rid,
                        "object": "text_completion",
                        "created": created,
                        "model": model,
                        "choices": [{"text": piece, "index": 0, "logprobs": None, "finish_reason": finish}],
                    }
                )

            pieces = [chunk(p, None) for p in _split(reply, options.chunks)] + [chunk("", "stop")]
            if include_usage:
                pieces.append(
                    _encode(
                        {
                            "id": rid,
                            "object": "text_completion",
                            "created": created,
                            "model": model,
                            "choices": [],
                            "usage": usage,
                        }
                    )
                )
            return _stream(pieces, options)
        return _json(
            {
                "id": rid,
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": [{"text": reply, "index": 0, "logprobs": None, "finish_reason": "stop"}],
                "usage": usage,
            }
        )

    def embeddings(self, body: JSON, options: MockOptions, request: UpstreamRequest) -> UpstreamResponse:
        raw = body.get("input")
        inputs: list[Any] = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
        if raw is None or raw in ("", []):
            return _error(
                400, "input must be a non-empty string or array", "invalid_request_error", param="input"
            )
        dimensions = body.get("dimensions") or 16
        if not isinstance(dimensions, int) or not 1 <= dimensions <= 4096:
            return _error(
                400,
                "dimensions must be an integer from 1 to 4096",
                "invalid_request_error",
                param="dimensions",
            )
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        tokens = 0
        for index, item in enumerate(inputs):
            text = item if isinstance(item, str) else _encode(item).decode()
            tokens += count_tokens(text)
            vector = embed(text, dimensions)
            value: Any = (
                base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode() if as_base64 else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": value})
        return _json(
            {
                "object": "list",
                "data": data,
                "model": _model(body, "mock-embedding-1"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    def models(self, body: JSON, options: MockOptions, request: UpstreamRequest) -> UpstreamResponse:
        return _json(
            {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": 1735689600, "owned_by": "crossroads"}
                    for m in MODELS
                ],
            }
        )

    def images(self, body: JSON, options: MockOptions, request: UpstreamRequest) -> UpstreamResponse:
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            return _error(400, "prompt is required", "invalid_request_error", param="prompt")
        n = body.get("n") or 1
        if not isinstance(n, int) or not 1 <= n <= 10:
            return _error(400, "n must be from 1 to 10", "invalid_request_error", param="n")
        png = base64.b64encode(_PNG).decode()
        item = (
            {"url": "data:image/png;base64," + png}
            if body.get("response_format") == "url"
            else {"b64_json": png}
        )
        return _json(
            {
                "created": int(self._clock()),
                "data": [{**item, "revised_prompt": prompt} for _ in range(n)],
            }
        )

    def speech(self, body: JSON, options: MockOptions, request: UpstreamRequest) -> UpstreamResponse:
        text = body.get("input")
        if not isinstance(text, str) or not text:
            return _error(400, "input is required", "invalid_request_error", param="input")
        audio = _wav(count_tokens(text))

        async def pieces() -> AsyncIterator[bytes]:
            for start in range(0, len(audio), 4096):
                if start and options.chunk_delay_ms:
                    await asyncio.sleep(options.chunk_delay_ms / 1000)
                yield audio[start : start + 4096]

        return LocalResponse(200, {"content-type": "audio/wav"}, pieces())

    def transcription(self, body: JSON, options: MockOptions, request: UpstreamRequest) -> UpstreamResponse:
        upload = body.get("file")
        if not isinstance(upload, tuple):
            return _error(400, "file is required", "invalid_request_error", param="file")
        name, data = upload
        text = (
            options.content
            if options.content is not None
            else f"mock transcription of {name} ({len(data)} bytes)"
        )
        fmt = body.get("response_format", "json")
        if fmt in ("text", "srt", "vtt"):
            return LocalResponse(200, {"content-type": "text/plain; charset=utf-8"}, text.encode())
        answer: JSON = {"text": text, "usage": {"type": "duration", "seconds": 1}}
        if fmt == "verbose_json":
            task = "translate" if request.url.endswith("translations") else "transcribe"
            answer = {
                "task": task,
                "language": "english",
                "duration": 1.0,
                "text": text,
                "segments": [],
                "usage": {"type": "duration", "seconds": 1},
            }
        return _json(answer)

    def moderations(self, body: JSON, options: MockOptions, request: UpstreamRequest) -> UpstreamResponse:
        raw = body.get("input")
        inputs = raw if isinstance(raw, list) else [raw]
        results = [
            {
                "flagged": False,
                "categories": dict.fromkeys(_MODERATION_CATEGORIES, False),
                "category_scores": dict.fromkeys(_MODERATION_CATEGORIES, 0.0),
                "category_applied_input_types": {c: ["text"] for c in _MODERATION_CATEGORIES},
            }
            for _ in inputs
        ]
        return _json({"id": "modr-mock", "model": _model(body, "mock-moderation-1"), "results": results})


_Handler = Callable[[MockResponder, JSON, MockOptions, UpstreamRequest], UpstreamResponse]
_ROUTES: Final[dict[tuple[str, str], _Handler]] = {
    ("POST", "/chat/completions"): MockResponder.chat,
    ("POST", "/completions"): MockResponder.completions,
    ("POST", "/embeddings"): MockResponder.embeddings,
    ("GET", "/models"): MockResponder.models,
    ("POST", "/images/generations"): MockResponder.images,
    ("POST", "/images/edits"): MockResponder.images,
    ("POST", "/audio/speech"): MockResponder.speech,
    ("POST", "/audio/transcriptions"): MockResponder.transcription,
    ("POST", "/audio/translations"): MockResponder.transcription,
    ("POST", "/moderations"): MockResponder.moderations,
}
_MODERATION_CATEGORIES: Final = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


# -- pure helpers (public ones are used by tests and docs) -----------------------------------


def count_tokens(text: str) -> int:
    """The mock's token count: words and punctuation marks. Deterministic, not a real tokenizer."""
    return len(_TOKEN.findall(text))


def embed(text: str, dimensions: int) -> list[float]:
    """A unit vector derived from sha256 of the text: equal texts give equal vectors."""
    raw = b""
    counter = 0
    while len(raw) < dimensions * 4:
        raw += hashlib.sha256(counter.to_bytes(4, "big") + text.encode()).digest()
        counter += 1
    ints = struct.unpack(f">{dimensions}I", raw[: dimensions * 4])
    values = [(i / 0xFFFFFFFF) * 2 - 1 for i in ints]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    # Round-trip through float32 so float and base64 answers carry the same numbers.
    return list(struct.unpack(f"<{dimensions}f", struct.pack(f"<{dimensions}f", *(v / norm for v in values))))


def _options(body: JSON) -> MockOptions:
    merged: JSON = {}
    model = body.get("model")
    if isinstance(model, str) and "?" in model:
        for key, value in parse_qsl(model.split("?", 1)[1], keep_blank_values=True, strict_parsing=True):
            merged[key] = value if key == "content" else _scalar(value)
    extra = body.get("mock")
    if extra is not None:
        if not isinstance(extra, dict):
            raise ValueError("`mock` must be an object")
        merged.update(extra)
    if not merged:
        return _DEFAULT_OPTIONS
    return msgspec.convert(merged, MockOptions, strict=False)


_DEFAULT_OPTIONS: Final = MockOptions()


def _scalar(value: str) -> Any:
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        return value


def _model(body: JSON, default: str) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return default
    return model.split("?", 1)[0]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text(message.get("content"))
    return ""


def _forced_tool(body: JSON) -> JSON | None:
    """A tool call when the request forces one (tool_choice required or named)."""
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not isinstance(tools, list) or not tools or choice in (None, "auto", "none"):
        return None
    name = None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
    if name is None:
        first = tools[0] if isinstance(tools[0], dict) else {}
        name = (first.get("function") or {}).get("name", "tool")
    call_id = "call_" + hashlib.sha256(_encode(body.get("messages"))).hexdigest()[:24]
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


def _usage(prompt: int, completion: int) -> JSON:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _split(text: str, chunks: int | None) -> list[str]:
    if chunks is None:
        parts = re.findall(r"\S+\s*|\s+", text)
        return parts or [""]
    chunks = max(1, chunks)
    size = math.ceil(len(text) / chunks) if text else 0
    return [text[i * size : (i + 1) * size] for i in range(chunks)]


def _chat_chunks(
    *,
    rid: str,
    created: int,
    model: str,
    reply: str,
    tool_call: JSON | None,
    options: MockOptions,
    usage: JSON | None,
) -> list[bytes]:
    def chunk(delta: JSON, finish: str | None) -> bytes:
        return _encode(
            {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_mock",
                "service_tier": "default",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
        )

    if tool_call is not None:
        out = [
            chunk(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "index": 0,
                            **tool_call,
                            "function": {"name": tool_call["function"]["name"], "arguments": ""},
                        }
                    ],
                    "refusal": None,
                },
                None,
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}, None),
            chunk({}, "tool_calls"),
        ]
    else:
        out = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
        out += [chunk({"content": piece}, None) for piece in _split(reply, options.chunks)]
        out.append(chunk({}, "stop"))
    if usage is not None:
        out.append(
            _encode(
                {
                    "id": rid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "fp_mock",
                    "service_tier": "default",
                    "choices": [],
                    "usage": usage,
                }
            )
        )
    return out


def _stream(payloads: list[bytes], options: MockOptions) -> UpstreamResponse:
    async def events() -> AsyncIterator[bytes]:
        for number, payload in enumerate(payloads):
            if options.fail_after is not None and number >= options.fail_after:
                raise UpstreamUnavailable(
                    "the provider's stream broke off: connection reset (mock fail_after)"
                )
            if options.error_after is not None and number >= options.error_after:
                yield frame(
                    _encode(
                        {
                            "error": {
                                "message": "injected failure: in-stream error requested",
                                "type": "server_error",
                                "param": None,
                                "code": "mock_stream_error",
                            }
                        }
                    )
                )
                return
            if number and options.chunk_delay_ms:
                await asyncio.sleep(options.chunk_delay_ms / 1000)
            yield frame(payload)
        yield DONE

    return LocalResponse(200, {"content-type": "text/event-stream; charset=utf-8"}, events())


def _json(data: JSON) -> UpstreamResponse:
    return LocalResponse(200, {"content-type": "application/json"}, _encode(data))


def _error(
    status: int, message: str, etype: str, *, param: str | None = None, headers: dict[str, str] | None = None
) -> UpstreamResponse:
    body = _encode({"error": {"message": message, "type": etype, "param": param, "code": None}})
    return LocalResponse(status, {"content-type": "application/json", **(headers or {})}, body)


def _type_for(status: int) -> str:
    return {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}.get(
        status, "server_error" if status >= 500 else "invalid_request_error"
    )


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _parse_form(content_type: str, body: bytes) -> JSON:
    """Multipart fields as strings, files as (filename, bytes)."""
    from python_multipart import MultipartParser  # noqa: PLC0415
    from python_multipart.multipart import parse_options_header  # noqa: PLC0415  (rarely used)

    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        return {}
    fields: JSON = {}
    current: dict[str, Any] = {}

    def on_part_begin() -> None:
        current.clear()
        current["data"] = bytearray()
        current["headers"] = {}
        current["header_name"] = b""

    def on_header_field(data: bytes, start: int, end: int) -> None:
        current["header_name"] = current["header_name"] + data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        current["headers"][current["header_name"].lower()] = data[start:end]
        current["header_name"] = b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        current["data"] += data[start:end]

    def on_part_end() -> None:
        _, disp = parse_options_header(current["headers"].get(b"content-disposition", b""))
        name = disp.get(b"name", b"").decode()
        if b"filename" in disp:
            fields[name] = (disp[b"filename"].decode(), bytes(current["data"]))
        else:
            fields[name] = current["data"].decode("utf-8", "replace")

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    parser.write(body)
    parser.finalize()
    return fields


def _wav(words: int) -> bytes:
    """A valid 8 kHz 16-bit mono WAV of silence, a tenth of a second per word."""
    samples = 800 * max(1, words)
    data = b"\x00\x00" * samples
    header = (
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
        + b"data"
        + struct.pack("<I", len(data))
    )
    return header + data


def _png_1x1() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    idat = zlib.compress(b"\x00\x00\x00\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


_PNG: Final = _png_1x1()
