"""The base of stream translators that work event by event on an SSE upstream."""

from __future__ import annotations

from crossroads.codecs.sse import DONE, Event, SSEDecoder, frame
from crossroads.errors import UpstreamError, UpstreamUnavailable
from crossroads.providers.base import StreamInterrupted


class SSETranslator:
    """Decodes upstream SSE, hands each event to `on_event`, frames the payloads it returns
    as OpenAI `data:` events and ends with `data: [DONE]`. Subclasses implement `on_event`
    and `on_end` (both may raise StreamInterrupted)."""

    terminator = DONE

    def __init__(self) -> None:
        self._decoder = SSEDecoder()

    def on_event(self, event: Event) -> list[bytes]:
        raise NotImplementedError

    def on_end(self) -> list[bytes]:
        raise NotImplementedError

    def feed(self, data: bytes) -> bytes:
        return self._frame_events(self._decoder.feed(data))

    def close(self) -> bytes:
        out = self._frame_events(self._decoder.close())
        try:
            tail = self.on_end()
        except StreamInterrupted as exc:
            exc.partial = out + exc.partial
            raise
        return out + b"".join([frame(p) for p in tail]) + self.terminator

    def error_event(self, error: UpstreamError) -> bytes:
        return frame(error.render())

    def _frame_events(self, events: list[Event]) -> bytes:
        out: list[bytes] = []
        for event in events:
            try:
                payloads = self.on_event(event)
            except StreamInterrupted as exc:
                exc.partial = b"".join(out)
                raise
            for payload in payloads:
                out.append(frame(payload))
        return b"".join(out)


class ChunkTranslator(SSETranslator):
    """For translators whose `on_event` returns chunks already framed (by a ChunkWriter):
    they are joined, not framed again. `complete` says whether the upstream ended properly;
    `ending` is what goes out after the last event (the usage chunk, say)."""

    provider = ""
    unfinished = "ended the stream before it finished"

    def complete(self) -> bool:
        raise NotImplementedError

    def ending(self) -> bytes:
        return b""

    def feed(self, data: bytes) -> bytes:
        return self._collect(self._decoder.feed(data))

    def close(self) -> bytes:
        out = self._collect(self._decoder.close())
        if not self.complete():
            raise StreamInterrupted(
                UpstreamUnavailable(f"{self.provider} {self.unfinished}", provider=self.provider),
                out,
            )
        return out + self.ending() + self.terminator

    def on_end(self) -> list[bytes]:
        return []

    def _collect(self, events: list[Event]) -> bytes:
        parts: list[bytes] = []
        for event in events:
            try:
                parts += self.on_event(event)
            except StreamInterrupted as exc:
                exc.partial = b"".join(parts)
                raise
        return b"".join(parts)
