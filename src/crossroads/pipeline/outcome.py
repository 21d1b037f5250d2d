"""What the pipeline hands back to the HTTP edge: a complete reply, an SSE stream, or raw bytes.

Each carries `Meta`, the facts that become `x-portkey-*` response headers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping

import msgspec


class Meta(msgspec.Struct, kw_only=True):
    provider: str | None = None
    retry_attempt_count: int = 0
    last_used_option_index: str | None = None
    cache_status: str = "DISABLED"
    headers: dict[str, str] = msgspec.field(default_factory=dict)  # relayed from the provider


class JsonOutcome(msgspec.Struct, kw_only=True):
    status: int
    body: bytes
    content_type: str
    meta: Meta


class StreamOutcome(msgspec.Struct, kw_only=True):
    """SSE payloads (without framing): `first` already arrived; `rest` yields batches.

    `rest` raises StreamInterrupted if the stream breaks after it started.
    """

    first: list[bytes]
    rest: AsyncIterator[list[bytes]]
    meta: Meta
    close: Callable[[], None]


class RawOutcome(msgspec.Struct, kw_only=True):
    status: int
    headers: Mapping[str, str]
    chunks: AsyncIterator[bytes]
    meta: Meta
    close: Callable[[], None]


Outcome = JsonOutcome | StreamOutcome | RawOutcome
