"""AWS event-stream (`application/vnd.amazon.eventstream`) decoding, incremental and CRC-checked.

Framing per provider-wire-formats.md §5.5; decoding by botocore's EventStreamBuffer, the
reference implementation (prelude and message CRC32s verified). A frame split across network
reads at any byte is reassembled.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botocore.eventstream import EventStreamBuffer, ParserError


class EventStreamError(ValueError):
    """The bytes are not a valid event stream (bad CRC, impossible lengths)."""


class Frame:
    __slots__ = ("headers", "payload")

    def __init__(self, headers: dict[str, str], payload: bytes) -> None:
        self.headers = headers
        self.payload = payload

    @property
    def message_type(self) -> str:
        return self.headers.get(":message-type", "event")

    @property
    def event_type(self) -> str:
        return self.headers.get(":event-type") or self.headers.get(":exception-type") or ""


class EventStreamDecoder:
    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = EventStreamBuffer()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer.add_data(data)
        try:
            messages: Iterable[Any] = self._buffer  # (the stubs mistype its iterator)
            return [Frame(message.headers, message.payload) for message in messages]
        except ParserError as exc:
            raise EventStreamError(f"invalid event-stream frame ({type(exc).__name__})") from None
