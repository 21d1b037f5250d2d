"""What the pipeline hands back to the HTTP edge: a complete reply, an SSE stream, or raw bytes.

Each carries `Meta`, the facts that become `x-portkey-*` response headers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import msgspec

from crossroads.cache.service import Key
from crossroads.errors import UpstreamError
from crossroads.governance.ledger import Reservation
from crossroads.pipeline.metering import StreamMeter


class Meta(msgspec.Struct, kw_only=True):
    provider: str | None = None
    retry_attempt_count: int = 0
    last_used_option_index: str | None = None
    cache_status: str = "DISABLED"
    headers: dict[str, str] = msgspec.field(default_factory=dict)  # relayed from the provider
    # Limits to settle once the answer is delivered, with what it used (see Gateway.settle).
    reservations: list[Reservation] = msgspec.field(default_factory=list)
    prompt_estimate: int = 0
    meter: StreamMeter | None = None
    # A cache entry to write once the answer is delivered complete (see Gateway.finish).
    cache_put: CachePut | None = None

    @property
    def cached(self) -> bool:
        return self.cache_status in ("HIT", "SEMANTIC HIT")

    @property
    def pending(self) -> bool:
        """Work left once the answer is delivered."""
        return bool(self.reservations) or self.cache_put is not None


class CachePut(msgspec.Struct, kw_only=True):
    key: Key
    max_age_s: float
    provider: str
    stream: list[bytes] | None = None  # a stream's pieces, as sent
    complete: bool = False  # the stream ended normally
    semantic: SemanticPut | None = None  # the question to remember for the semantic cache
    anthropic: bool = False  # the stream is Anthropic's events (/v1/messages), not OpenAI chunks


class SemanticPut(msgspec.Struct, kw_only=True):
    scope: str
    vector: Any  # numpy float32 vector
    text: str


class JsonOutcome(msgspec.Struct, kw_only=True):
    status: int
    body: bytes
    content_type: str
    meta: Meta


class StreamOutcome(msgspec.Struct, kw_only=True):
    """A stream, framed for the client: `first` already arrived, `rest` yields what follows,
    then `tail()` gives the last bytes, sent with the response's final write.

    `rest` raises StreamInterrupted if the stream breaks after it started; `error_event`
    renders that failure in the stream's own format.
    """

    first: bytes
    rest: AsyncIterator[bytes]
    meta: Meta
    close: Callable[[], None]
    tail: Callable[[], bytes]  # after `rest` ends: the stream's last bytes (its terminator)
    error_event: Callable[[UpstreamError], bytes]


class RawOutcome(msgspec.Struct, kw_only=True):
    status: int
    headers: Mapping[str, str]
    chunks: AsyncIterator[bytes]
    meta: Meta
    close: Callable[[], None]


Outcome = JsonOutcome | StreamOutcome | RawOutcome
