"""A provider that speaks OpenAI's wire format, described as data: one row of `compatible.TABLE`."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from crossroads.providers.base import (
    ALL_ENDPOINTS,
    CHAT,
    COMPLETIONS,
    COUNT_TOKENS,
    EMBEDDINGS,
    MESSAGES,
    MODELS,
    PROXY,
)

CHAT_ONLY = frozenset({CHAT, MODELS, PROXY})
TEXT = frozenset({CHAT, COMPLETIONS, EMBEDDINGS, MODELS, PROXY})
# Everything OpenAI-format providers serve themselves (/v1/messages reaches them through the bridge).
EVERYTHING = ALL_ENDPOINTS - {MESSAGES, COUNT_TOKENS}


class Profile(msgspec.Struct, frozen=True, kw_only=True):
    slug: str
    # None: no public endpoint (self-hosted servers); the caller sends x-portkey-custom-host.
    base_url: str | None
    # Appended after a caller's custom host before the endpoint path (Portkey's layout).
    custom_host_prefix: str = ""
    endpoints: frozenset[str] = TEXT
    auth_header: str = "authorization"
    auth_prefix: str = "Bearer "
    # Target option -> upstream header (e.g. openai_organization -> OpenAI-Organization).
    option_headers: Mapping[str, str] = msgspec.field(default_factory=dict)
    # Request quirks.
    rename_params: Mapping[str, str] = msgspec.field(default_factory=dict)
    strip_message_fields: tuple[str, ...] = ()  # dropped from assistant messages we send back
    tool_call_id_alnum9: bool = False  # the provider rejects ids that are not 9 alphanumerics
    # Stream quirks.
    stream_tool_call_index: bool = False  # tool-call deltas arrive without index/type
    docs: str = ""
