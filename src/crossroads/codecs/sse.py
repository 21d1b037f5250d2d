"""Server-sent events: an incremental decoder and the framing we write.

Accepts `\\n`, `\\r\\n` and `\\r` line ends, comment lines, multi-line data and events split
across network reads at any byte (see the SSE spec and provider-wire-formats §0.1).
"""

from __future__ import annotations

from typing import Final


class Event:
    """One SSE event. `comment` events carry no data (keep-alives, `: OPENROUTER PROCESSING`)."""

    __slots__ = ("comment", "data", "name")

    def __init__(self, data: bytes, name: bytes | None = None, comment: bool = False) -> None:
        self.data = data
        self.name = name
        self.comment = comment

    def __repr__(self) -> str:
        return f"Event(name={self.name!r}, data={self.data[:60]!r}, comment={self.comment})"


MAX_EVENT_BYTES: Final = 16 * 1024 * 1024


class SSEError(ValueError):
    """The upstream sent something that cannot be an SSE stream (e.g. an event over the size cap)."""


class SSEDecoder:
    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    @property
    def pending(self) -> bool:
        """True while part of an event is buffered."""
        return bool(self._buf)

    def feed(self, chunk: bytes) -> list[Event]:
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            tail = b""
            if buf.endswith(b"\r"):  # may be the first half of a \r\n split across reads
                buf, tail = buf[:-1], b"\r"
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + tail
        if b"\n\n" not in buf:
            if len(buf) > MAX_EVENT_BYTES:
                raise SSEError("an upstream event exceeded 16 MiB")
            self._buf = buf
            return []
        *blocks, self._buf = buf.split(b"\n\n")
        events = []
        for block in blocks:
            event = _parse_block(block)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[Event]:
        """Flush a last event that the upstream did not terminate with a blank line."""
        rest, self._buf = self._buf.rstrip(b"\r\n"), b""
        if not rest:
            return []
        event = _parse_block(rest)
        return [] if event is None else [event]


def _parse_block(block: bytes) -> Event | None:
    block = block.lstrip(b"\n")
    if not block:
        return None
    # Fast paths: a single `data: ...` line, and `event: x` + `data: ...` (Anthropic's form).
    if block.startswith(b"data: ") and b"\n" not in block:
        return Event(block[6:])
    if block.startswith(b"event: "):
        newline = block.find(b"\n")
        rest = block[newline + 1 :]
        if newline > 0 and rest.startswith(b"data: ") and b"\n" not in rest:
            return Event(rest[6:], block[7:newline])
    name: bytes | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            name = value
        # `id` and `retry` are not used by any provider we speak.
    if not data:
        if name is not None:
            return Event(b"", name)
        return Event(b"", comment=True)
    return Event(b"\n".join(data), name)


def frame(data: bytes, name: bytes | None = None) -> bytes:
    """Encode one event. Data containing newlines becomes several `data:` lines."""
    if b"\n" in data:
        data = data.replace(b"\n", b"\ndata: ")
    if name is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + name + b"\ndata: " + data + b"\n\n"


DONE: Final = b"data: [DONE]\n\n"
