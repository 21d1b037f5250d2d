"""The OpenAI wire format, spoken by OpenAI and every provider in `compatible.TABLE`.

Requests pass through byte for byte unless a provider quirk must rewrite them (then the body
is re-encoded once); unknown fields always survive. Responses pass through; streams are
relayed event by event, with in-stream errors and cut-off streams turned into errors.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from crossroads.codecs.sse import Event
from crossroads.errors import BadRequest, UnsupportedEndpoint, UpstreamError, UpstreamUnavailable
from crossroads.providers.base import (
    CHAT,
    PROXY,
    Call,
    LocalResponder,
    Reply,
    StreamInterrupted,
    Target,
)
from crossroads.providers.profile import Profile
from crossroads.providers.stream import SSETranslator
from crossroads.secret import Secret, redact
from crossroads.upstream.response import UpstreamRequest

JSON = dict[str, Any]

_decode = msgspec.json.decode
_encode = msgspec.json.encode
_FINISHED = re.compile(rb'"finish_reason"\s*:\s*"')

USER_AGENT: Final = "crossroads/0.1"
# Client headers never copied upstream by the proxy route: hop-by-hop, framing, and ours.
_PROXY_SKIP: Final = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "accept-encoding",
        "proxy-authorization",
        "proxy-connection",
        "authorization",
        "x-api-key",
        "api-key",
        "cookie",
    }
)
# Response headers from the provider that we do not relay.
HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "content-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-authenticate",
        "set-cookie",
        "server",
        "date",
        "alt-svc",
        "strict-transport-security",
    }
)


class OpenAIFormat:
    """Adapter for an OpenAI-compatible provider described by a Profile."""

    def __init__(self, profile: Profile, base_url: str | None = None) -> None:
        self.profile = profile
        self.name = profile.slug
        self.endpoints = profile.endpoints
        self.base_url = (base_url or profile.base_url or "").rstrip("/") or None

    @property
    def responder(self) -> LocalResponder | None:
        return None

    # -- request ---------------------------------------------------------------------------

    def build(self, call: Call, target: Target) -> UpstreamRequest:
        if call.endpoint not in self.endpoints:
            raise UnsupportedEndpoint(f"{call.endpoint} is not supported by {self.name}")
        url = self.url(call, target)
        headers = self._headers(call, target)
        body = call.body
        if call.json is not None and call.endpoint != PROXY:
            changed = self.rewrite(call.json)
            if changed is not None:
                body = _encode(changed)
        return UpstreamRequest(call.method, url, headers, body, guarded=target.custom_host is not None)

    def url(self, call: Call, target: Target) -> str:
        """Where the call goes: the base URL (or custom host) + the path after /v1 + the query."""
        base = (
            _with_prefix(target.custom_host, self.profile.custom_host_prefix)
            if target.custom_host
            else self.base_url
        )
        if base is None:
            raise BadRequest(
                f"provider {self.name} has no public URL: send the server's base URL in "
                "x-portkey-custom-host (e.g. http://localhost:8000/v1)",
                param="x-portkey-custom-host",
            )
        url = base + call.path
        return url + "?" + call.query if call.query else url

    def _headers(self, call: Call, target: Target) -> dict[str, str]:
        profile = self.profile
        if call.endpoint == PROXY:
            headers = {
                k: v
                for k, v in call.headers.items()
                if k not in _PROXY_SKIP and not k.startswith("x-portkey-")
            }
        else:
            headers = {"user-agent": USER_AGENT}
            if call.content_type:
                headers["content-type"] = call.content_type
            accept = call.headers.get("accept")
            if accept:
                headers["accept"] = accept
        key = target.api_key
        if key and profile.auth_header:
            headers[profile.auth_header] = profile.auth_prefix + key.reveal()
        for option, header in profile.option_headers.items():
            value = target.options.get(option)
            if value is not None:
                headers[header] = value.reveal() if isinstance(value, Secret) else value
        headers.update(call.forwarded(target.forward_headers))
        return headers

    def rewrite(self, body: JSON) -> JSON | None:
        """The body with this provider's quirks applied, or None when nothing changes."""
        profile = self.profile
        out: JSON | None = None
        for old, new in profile.rename_params.items():
            if old in body:
                out = dict(out or body)
                out[new] = out.pop(old)
        messages = body.get("messages")
        if isinstance(messages, list) and (profile.strip_message_fields or profile.tool_call_id_alnum9):
            fixed = _fix_messages(messages, profile)
            if fixed is not None:
                out = dict(out or body)
                out["messages"] = fixed
        return out

    # -- response --------------------------------------------------------------------------

    def parse(
        self, call: Call, target: Target, status: int, headers: Mapping[str, str], body: bytes
    ) -> Reply:
        content_type = headers.get("content-type", "application/json")
        if "json" in content_type:
            try:
                data = _decode(body)
            except msgspec.DecodeError:
                raise UpstreamUnavailable(
                    f"invalid response received from {self.name}: the body is not JSON", provider=self.name
                ) from None
            if isinstance(data, dict) and isinstance(data.get("error"), dict | str):
                # Some providers answer 200 with an error object.
                raise self.error_from(None, 502, headers, data)
        return Reply(status=status, body=body, content_type=content_type)

    def error(self, target: Target, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        try:
            data: Any = _decode(body) if body.strip() else None
        except msgspec.DecodeError:
            data = None
        if data is None:
            text = body.decode("utf-8", "replace").strip()
            if text.startswith("<"):  # an HTML error page from a proxy in front of the provider
                text = ""
            data = {"error": {"message": text[:300] or f"HTTP {status} with no error body"}}
        return self.error_from(target, status, headers, data)

    def error_from(
        self, target: Target | None, status: int, headers: Mapping[str, str], data: Any
    ) -> UpstreamError:
        message, etype, param, code = _error_fields(data)
        secrets = (target.api_key,) if target is not None else ()
        relay = {k: headers[k] for k in ("retry-after", "retry-after-ms") if k in headers}
        return UpstreamError(
            f"{self.name} error: {redact(message, *secrets)}",
            provider=self.name,
            status=status,
            error_type=etype,
            param=param,
            code=code,
            headers=relay,
        )

    def translator(self, call: Call, target: Target) -> PassthroughStream:
        return PassthroughStream(self, target, fix_tool_calls=self.profile.stream_tool_call_index)


class PassthroughStream(SSETranslator):
    """Relays OpenAI-format SSE untouched, watching for in-stream errors and the end.

    Fast path: a read made only of well-formed single-line `data:` events with nothing to
    look at (no error, comment, event name, CR, or quirk to fix) is forwarded as the same
    bytes after a handful of C-level scans, whatever the number of events in it. Anything
    else goes event by event through `on_event`.
    """

    def __init__(self, adapter: OpenAIFormat, target: Target, *, fix_tool_calls: bool) -> None:
        super().__init__()
        self._adapter = adapter
        self._target = target
        self._fix = fix_tool_calls
        self._done = False
        self._finished = False
        self._pending = b""  # an incomplete event held by the fast path
        # The last two reads the fast path forwarded: where a finish_reason would be.
        self._tails: tuple[bytes, bytes] = (b"", b"")
        self._calls: dict[int, int] = {}  # choice index -> tool calls seen (for _fix)

    def feed(self, data: bytes) -> bytes:
        buf = self._pending + data if self._pending else data
        self._pending = b""
        if self._done or self._decoder.pending:
            return super().feed(buf)
        end = buf.rfind(b"\n\n") + 2
        if end == 1:  # no complete event yet
            if b"\r" in buf:
                return super().feed(buf)
            self._pending = buf
            return b""
        events, rest = buf[:end], buf[end:]
        out = self._fast(events)
        if out is None:
            return super().feed(buf)
        self._pending = rest
        return out

    def _fast(self, events: bytes) -> bytes | None:
        """`events` forwarded as they are, or None when they need a closer look.

        Each check is one C-level scan; together they prove `events` is a run of single-line
        `data:` events with no error, comment, event name, CR or quirk in it. A `[DONE]`
        ending the read is stripped (close() sends ours). The Azure preamble can only be the
        first event, so only the first read is checked for it.
        """
        done = events.endswith(_DONE)
        body = events[: -len(_DONE)] if done else events
        if body:
            if (
                not body.startswith(b"data: ")
                or body.count(b"\n") != 2 * (body.count(b"\n\ndata: ") + 1)
                or b"\r" in body
                or b'"error"' in body
                or (self._fix and b'"tool_calls"' in body)
                or (not self._tails[1] and b'"object":""' in body)
            ):
                return None
            self._tails = (self._tails[1], body)
        if done:
            self._done = True
        return body

    def on_event(self, event: Event) -> list[bytes]:
        data = event.data
        if event.comment or self._done or not data:
            return []
        if data == b"[DONE]" or data.strip() == b"[DONE]":
            self._done = True
            return []
        if b"\n" in data:  # some providers separate events by single newlines (deepinfra, sambanova)
            return [out for line in data.split(b"\n") for out in self.on_event(Event(line, event.name))]
        if event.name == b"error" or b'"error"' in data:
            self._raise_if_error(event)
        if b'"object":""' in data and _is_filter_preamble(data):
            return []
        if not self._finished and _FINISHED.search(data):
            self._finished = True
        if self._fix and b'"tool_calls"' in data:
            data = _fix_tool_call_chunk(data, self._calls)
        return [data]

    def close(self) -> bytes:
        if self._pending:  # a last event without its blank line goes through the decoder
            self._decoder.feed(self._pending)
            self._pending = b""
        return super().close()

    def on_end(self) -> list[bytes]:
        # Only a stream that ends without [DONE] needs its finish_reason looked for; the
        # fast path leaves that search until here (the finish chunk is in the last reads).
        if self._done or self._finished or any(_FINISHED.search(tail) for tail in self._tails):
            return []
        raise StreamInterrupted(
            UpstreamUnavailable(
                f"{self._adapter.name} ended the stream before it finished", provider=self._adapter.name
            )
        )

    def _raise_if_error(self, event: Event) -> None:
        try:
            data = _decode(event.data)
        except msgspec.DecodeError:
            if event.name == b"error":
                data = {"error": {"message": event.data.decode("utf-8", "replace")[:300]}}
            else:
                return
        if not isinstance(data, dict):
            return
        if (data.get("error")) or event.name == b"error":
            status = _int_code(data)
            err = self._adapter.error_from(self._target, status, {}, data)
            raise StreamInterrupted(err)


_DONE: Final = b"data: [DONE]\n\n"


# -- helpers -------------------------------------------------------------------------------


def _with_prefix(host: str, prefix: str) -> str:
    return host if not prefix or host.endswith(prefix) else host + prefix


def _error_fields(data: Any) -> tuple[str, str | None, str | None, str | None]:
    """(message, type, param, code) from any error shape providers use."""
    err: Any = data
    if isinstance(data, dict):
        inner = data.get("error")
        if isinstance(inner, dict):
            err = inner
        elif isinstance(inner, str):
            err = {"message": inner, "type": data.get("type"), "code": data.get("code")}
        elif "detail" in data and "message" not in data:
            err = {
                "message": data["detail"]
                if isinstance(data["detail"], str)
                else _encode(data["detail"]).decode()
            }
    if not isinstance(err, dict):
        return (str(err)[:300], None, None, None)
    message = err.get("message") or err.get("msg") or "the provider returned an error"
    if not isinstance(message, str):
        message = _encode(message).decode()
    etype = err.get("type") if isinstance(err.get("type"), str) else None
    param = err.get("param") if isinstance(err.get("param"), str) else None
    code_raw = err.get("code")
    code = None if code_raw is None else str(code_raw)
    return message, etype, param, code


def _int_code(data: JSON) -> int:
    err = data.get("error")
    code = err.get("code") if isinstance(err, dict) else data.get("code")
    if isinstance(code, int) and 400 <= code <= 599:
        return code
    return 502


_ALNUM = string.ascii_letters + string.digits


def _alnum9(tool_call_id: str) -> str:
    if len(tool_call_id) == 9 and tool_call_id.isalnum():
        return tool_call_id
    digest = hashlib.sha256(tool_call_id.encode()).digest()
    return "".join(_ALNUM[b % len(_ALNUM)] for b in digest[:9])


def _fix_messages(messages: list[Any], profile: Profile) -> list[Any] | None:
    changed = False
    out = []
    for message in messages:
        if not isinstance(message, dict):
            out.append(message)
            continue
        new = message
        if message.get("role") == "assistant":
            for field in profile.strip_message_fields:
                if field in new:
                    new = {k: v for k, v in new.items() if k != field}
            if profile.tool_call_id_alnum9 and isinstance(new.get("tool_calls"), list):
                calls = [
                    {**c, "id": _alnum9(c["id"])}
                    if isinstance(c, dict) and isinstance(c.get("id"), str)
                    else c
                    for c in new["tool_calls"]
                ]
                if calls != new["tool_calls"]:
                    new = {**new, "tool_calls": calls}
        elif message.get("role") == "tool" and profile.tool_call_id_alnum9:
            tid = message.get("tool_call_id")
            if isinstance(tid, str) and _alnum9(tid) != tid:
                new = {**message, "tool_call_id": _alnum9(tid)}
        changed = changed or new is not message
        out.append(new)
    return out if changed else None


def _is_filter_preamble(data: bytes) -> bool:
    """Azure OpenAI's first chunk: no id, model or object, no choices, only prompt_filter_results.

    Strict clients reject it (`object` must be chat.completion.chunk) and it carries no answer.
    """
    try:
        chunk = _decode(data)
    except msgspec.DecodeError:
        return False
    return (
        isinstance(chunk, dict)
        and not chunk.get("object")
        and not chunk.get("choices")
        and not chunk.get("usage")
    )


def _fix_tool_call_chunk(data: bytes, seen: dict[int, int]) -> bytes:
    """Give each streamed tool call the `index` and `type` OpenAI clients need.

    Mistral sends every call whole, in one delta, without either; the index is the call's
    ordinal in the stream (per choice), as OpenAI's is.
    """
    try:
        chunk = _decode(data)
    except msgspec.DecodeError:
        return data
    changed = False
    for choice in chunk.get("choices") or ():
        calls = (choice.get("delta") or {}).get("tool_calls")
        if not isinstance(calls, list):
            continue
        number = choice.get("index", 0)
        for call in calls:
            if isinstance(call, dict):
                if "index" not in call:
                    call["index"] = seen.get(number, 0)
                    seen[number] = call["index"] + 1
                    changed = True
                if "type" not in call and "id" in call:
                    call["type"] = "function"
                    changed = True
    return _encode(chunk) if changed else data


__all__ = ["CHAT", "HOP_BY_HOP", "OpenAIFormat", "PassthroughStream"]
