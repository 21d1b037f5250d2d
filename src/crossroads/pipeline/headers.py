"""Reading the `x-portkey-*` request headers (and `Authorization`) into RequestOptions.

Names are case-insensitive (the server lower-cases them). Values are validated here, so a
bad one is a 400 that names the header and says why. The portkey-ai SDK's bookkeeping
headers are ignored; provider-specific ones (`x-portkey-openai-project`,
`x-portkey-aws-region`, ...) become target options; none of them is ever sent upstream.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Final

import msgspec

from crossroads.errors import BadRequest
from crossroads.secret import SECRET_OPTIONS, Secret

PREFIX: Final = "x-portkey-"

# Headers read by the pipeline itself (name without the prefix).
_CORE: Final = frozenset(
    {
        "provider",
        "custom-host",
        "forward-headers",
        "request-timeout",
        "metadata",
        "strict-open-ai-compliance",
        "config",
        "virtual-key",
        "api-key",
        "cache",
        "cache-namespace",
        "cache-force-refresh",
        "debug",
    }
)
# Sent by the portkey-ai SDK or reserved by Portkey; accepted and ignored.
_IGNORED: Final = frozenset(
    {
        "package-version",
        "runtime",
        "runtime-version",
        "audio-file-duration",
        "mode",
        "retry-count",
        "span-id",
        "parent-span-id",
        "span-name",
        "default-input-guardrails",
        "default-output-guardrails",
        "trace-id",  # read (and generated) by the HTTP edge, which echoes it on every response
    }
)
TRACE_ID_MAX: Final = 256
METADATA_MAX_KEYS: Final = 64


class BadHeader(BadRequest):
    default_code = "invalid_header"


class RequestOptions(msgspec.Struct, kw_only=True):
    provider: str | None = None
    api_key: Secret | None = None
    custom_host: str | None = None  # raw: the pipeline validates it against the host policy
    forward_headers: tuple[str, ...] = ()
    request_timeout_ms: int | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    strict_open_ai_compliance: bool = True
    config: str | None = None
    virtual_key: str | None = None
    gateway_key: Secret | None = None
    cache: str | None = None
    cache_namespace: str | None = None
    cache_force_refresh: bool = False
    debug: bool = False  # x-portkey-debug: true adds the routing attempts header
    options: dict[str, str | Secret] = msgspec.field(default_factory=dict)


def parse_options(headers: Mapping[str, str]) -> RequestOptions:
    opts = RequestOptions()
    auth = headers.get("authorization")
    if auth:
        token = auth[7:] if auth[:7].lower() == "bearer " else auth
        token = token.strip()
        if token:
            opts.api_key = Secret(token)
    x_api_key = headers.get("x-api-key")
    if x_api_key:
        opts.options["x_api_key"] = Secret(x_api_key)
    for name, value in headers.items():
        if not name.startswith(PREFIX):
            continue
        key = name[len(PREFIX) :]
        if key in _CORE:
            _apply_core(opts, key, value)
        elif key not in _IGNORED:
            option = key.replace("-", "_")
            opts.options[option] = Secret(value) if option in SECRET_OPTIONS else value
    return opts


def _apply_core(opts: RequestOptions, key: str, value: str) -> None:
    value = value.strip()
    if key == "provider":
        opts.provider = value.lower() or None
    elif key == "custom-host":
        opts.custom_host = value or None
    elif key == "forward-headers":
        opts.forward_headers = parse_forward_headers(value)
    elif key == "request-timeout":
        opts.request_timeout_ms = parse_timeout(value, "x-portkey-request-timeout")
    elif key == "metadata":
        opts.metadata = parse_metadata(value)
    elif key == "strict-open-ai-compliance":
        opts.strict_open_ai_compliance = parse_bool(value, "x-portkey-strict-open-ai-compliance")
    elif key == "config":
        opts.config = value or None
    elif key == "virtual-key":
        opts.virtual_key = value or None
    elif key == "api-key":
        opts.gateway_key = Secret(value) if value else None
    elif key == "cache":
        opts.cache = value or None
    elif key == "cache-namespace":
        opts.cache_namespace = value or None
    elif key == "debug":
        opts.debug = parse_bool(value, "x-portkey-debug") if value else False
    elif key == "cache-force-refresh":
        # Portkey treats the header's presence as the switch; we read the value, so `false` means false.
        opts.cache_force_refresh = parse_bool(value, "x-portkey-cache-force-refresh") if value else True


def parse_bool(value: str, header: str) -> bool:
    lowered = value.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise BadHeader(f"{header} must be true or false, got {value[:40]!r}", param=header)


def parse_timeout(value: str, header: str) -> int | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        number = -1
    if not 0 < number <= 86_400_000:  # also false for NaN
        raise BadHeader(
            f"{header} must be a positive number of milliseconds (at most 86400000), got {value[:40]!r}",
            param=header,
        )
    return int(number)


def normalize_header_name(name: str) -> str:
    return name.strip().strip("'\"").strip().lower().replace("_", "-")


def parse_forward_headers(value: str) -> tuple[str, ...]:
    """A comma list, a JSON array, or the Python-list text the portkey-ai SDK sends for lists."""
    header = "x-portkey-forward-headers"
    if not value:
        return ()
    items: list[str]
    if value.startswith("["):
        try:
            parsed = msgspec.json.decode(value)
        except msgspec.DecodeError:
            try:
                parsed = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                raise BadHeader(f"{header} is not a valid list of header names", param=header) from None
        if not isinstance(parsed, list | tuple) or not all(isinstance(v, str) for v in parsed):
            raise BadHeader(f"{header} must list header names as strings", param=header)
        items = list(parsed)
    else:
        items = value.split(",")
    names = tuple(dict.fromkeys(n for n in (normalize_header_name(i) for i in items) if n))
    for name in names:
        if name.startswith(PREFIX):
            raise BadHeader(f"{header} cannot forward gateway headers ({name})", param=header)
        if name in _NOT_FORWARDABLE:
            raise BadHeader(f"{header} cannot forward {name}: the gateway sets it", param=header)
        if not all(c.isalnum() or c == "-" for c in name):
            raise BadHeader(f"{header}: {name!r} is not a header name", param=header)
    return names


_NOT_FORWARDABLE: Final = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "te", "upgrade", "keep-alive", "trailer"}
)


def parse_metadata(value: str) -> dict[str, str]:
    header = "x-portkey-metadata"
    if not value:
        return {}
    try:
        data = msgspec.json.decode(value)
    except msgspec.DecodeError as exc:
        data = None
        if value.startswith("{'"):  # the docs' single-quoted example
            try:
                data = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                data = None
        if data is None:
            raise BadHeader(f"{header} is not valid JSON: {exc}", param=header) from None
    if not isinstance(data, dict):
        raise BadHeader(f"{header} must be a JSON object of strings, got {type(data).__name__}", param=header)
    if len(data) > METADATA_MAX_KEYS:
        raise BadHeader(f"{header} has more than {METADATA_MAX_KEYS} keys", param=header)
    out = {}
    for key, item in data.items():
        if isinstance(item, str):
            out[key] = item
        elif isinstance(item, bool):
            out[key] = "true" if item else "false"
        elif isinstance(item, int | float):
            out[key] = str(item)
        else:
            raise BadHeader(
                f"{header}: the value of {key!r} must be a string, not {type(item).__name__}", param=header
            )
    return out
