"""The cache key: one canonical description of what an answer depends on, hashed.

Included: the endpoint; the upstream (provider, custom host, its non-secret options such as
the region or deployment); the tenant (the gateway API key, the virtual key, and, when the
gateway runs open, a fingerprint of the provider credential), so two tenants never share an
entry; the namespace; and the body with every generation parameter, canonicalised so that
equal requests written differently (key order, whitespace, `1` vs `1.0`, a parameter set to
its default, a lone text part vs a string) share an entry. Excluded: fields that do not change
the answer (`stream`, `stream_options`, `user`, `metadata`, ...). Secrets appear only as
fingerprints, and the whole description is hashed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from crossroads.secret import Secret

VERSION: Final = 1
# Fields that never change the answer.
IGNORED: Final = frozenset(
    {
        "stream",
        "stream_options",
        "user",
        "metadata",
        "store",
        "safety_identifier",
        "prompt_cache_key",
        "service_tier",
    }
)
# OpenAI's defaults: a request that spells one out asks the same as one that leaves it out.
DEFAULTS: Final[Mapping[str, Any]] = {
    "n": 1,
    "temperature": 1,
    "top_p": 1,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "logprobs": False,
    "echo": False,
    "best_of": 1,
    "encoding_format": "float",
}

_encode = msgspec.json.Encoder(order="sorted").encode


def cache_key(
    *,
    endpoint: str,
    provider: str,
    custom_host: str | None,
    options: Mapping[str, object],
    tenant: str,
    namespace: str | None,
    body: Mapping[str, Any] | None,
    raw_body: bytes = b"",
) -> str:
    """The hex SHA-256 of the canonical description of a request."""
    upstream_options = {k: v for k, v in options.items() if not isinstance(v, Secret)}
    description = {
        "v": VERSION,
        "endpoint": endpoint,
        "provider": provider,
        "host": (custom_host or "").rstrip("/"),
        "options": upstream_options,
        "tenant": tenant,
        "namespace": namespace or "",
        "body": canonical_body(body) if body is not None else hashlib.sha256(raw_body).hexdigest(),
    }
    return hashlib.sha256(_encode(description)).hexdigest()


def tenant_of(*, principal: str, virtual_key: str | None, credentials: list[Secret]) -> str:
    """Who an entry belongs to: the gateway key, and the virtual key or else the provider
    credential the request brought itself (so that two callers bringing their own keys through
    one gateway key never share answers)."""
    parts = [f"key:{principal}"]
    if virtual_key is not None:
        parts.append(f"vk:{virtual_key}")
    else:
        parts += sorted(f"cred:{c.fingerprint()}" for c in credentials if c)
    return "|".join(parts)


def canonical_body(body: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, raw in body.items():
        if key in IGNORED or raw is None:
            continue
        value = _canonical(raw)
        if key in DEFAULTS and value == DEFAULTS[key] and type(value) is type(DEFAULTS[key]):
            continue
        out[key] = [_message(m) for m in value] if key == "messages" and isinstance(value, list) else value
    return out


def _message(message: Any) -> Any:
    """A message whose content is one text part means the same as that text as a string."""
    if not isinstance(message, dict):
        return message
    content = message.get("content")
    if (
        isinstance(content, list)
        and len(content) == 1
        and isinstance(content[0], dict)
        and content[0].get("type") == "text"
        and set(content[0]) == {"type", "text"}
    ):
        return {**message, "content": content[0]["text"]}
    return message


def _canonical(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value
