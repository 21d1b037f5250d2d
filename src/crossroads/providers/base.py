"""The contract between the pipeline and a provider: what a call is, where it goes, and the
Adapter / StreamTranslator protocols every provider implements.

Adapters are pure: `build` turns a call into an UpstreamRequest, `parse` and `error` turn
bytes into a Reply or an UpstreamError, a translator turns upstream events into OpenAI
chunks. The pipeline does the I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

import msgspec

from crossroads.codecs.sse import Event
from crossroads.errors import UpstreamError
from crossroads.secret import Secret
from crossroads.upstream.response import UpstreamRequest, UpstreamResponse

JSON = dict[str, Any]

# Unified endpoints (Portkey's `fn` names in brackets).
CHAT: Final = "chat"  # chatComplete
COMPLETIONS: Final = "completions"  # complete
EMBEDDINGS: Final = "embeddings"  # embed
IMAGES: Final = "images.generations"  # imageGenerate
IMAGE_EDITS: Final = "images.edits"  # imageEdit
SPEECH: Final = "audio.speech"  # createSpeech
TRANSCRIPTIONS: Final = "audio.transcriptions"  # createTranscription
TRANSLATIONS: Final = "audio.translations"  # createTranslation
MODERATIONS: Final = "moderations"
MODELS: Final = "models"
PROXY: Final = "proxy"  # anything else under /v1, forwarded as is

ALL_ENDPOINTS: Final = frozenset(
    {
        CHAT,
        COMPLETIONS,
        EMBEDDINGS,
        IMAGES,
        IMAGE_EDITS,
        SPEECH,
        TRANSCRIPTIONS,
        TRANSLATIONS,
        MODERATIONS,
        MODELS,
        PROXY,
    }
)


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """One provider to try, with everything needed to reach it."""

    provider: str
    api_key: Secret | None = None
    custom_host: str | None = None  # already SSRF-checked
    forward_headers: tuple[str, ...] = ()
    request_timeout_ms: int | None = None
    strict_open_ai_compliance: bool = True
    # Provider-specific options (openai_organization, aws_region, ...); secret ones are Secrets.
    options: Mapping[str, str | Secret] = msgspec.field(default_factory=dict)


class Call(msgspec.Struct, kw_only=True):
    """The client's request as the pipeline sees it: parsed once, shared by every attempt."""

    endpoint: str
    method: str
    path: str  # the part after /v1, e.g. "/chat/completions"
    query: str
    body: bytes
    json: JSON | None  # the body as a JSON object, for JSON endpoints
    content_type: str
    stream: bool
    headers: Mapping[str, str]  # the client's headers, lower-case names
    request_id: str
    trace_id: str
    metadata: Mapping[str, str]

    def forwarded(self, names: tuple[str, ...]) -> dict[str, str]:
        """The client headers named in a forward-headers list (names normalised: lower, `_`->`-`)."""
        out = {}
        for name in names:
            value = self.headers.get(name)
            if value is None and "-" in name:  # a client header spelled with underscores
                value = next((v for k, v in self.headers.items() if k.replace("_", "-") == name), None)
            if value is not None:
                out[name] = value
        return out


class Reply(msgspec.Struct, kw_only=True):
    """A complete, successful, non-streaming answer."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = msgspec.field(default_factory=dict)


class StreamInterrupted(Exception):
    """An upstream stream failed after it started; carries the error to show the client."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(error.message)
        self.error = error


class StreamTranslator(Protocol):
    """Upstream events in, OpenAI SSE `data` payloads out (bytes, already encoded)."""

    def feed(self, event: Event) -> list[bytes]:
        """Raise StreamInterrupted on an in-stream error event."""
        ...

    def close(self) -> list[bytes]:
        """The stream ended: flush what is pending; raise StreamInterrupted if it was cut short."""
        ...


class LocalResponder(Protocol):
    """An in-process upstream (the mock provider)."""

    async def respond(self, request: UpstreamRequest) -> UpstreamResponse: ...


class Adapter(Protocol):
    name: str
    endpoints: frozenset[str]

    def build(self, call: Call, target: Target) -> UpstreamRequest: ...

    def parse(self, call: Call, status: int, headers: Mapping[str, str], body: bytes) -> Reply:
        """A 2xx JSON body; raise UpstreamError if it is not a valid answer."""
        ...

    def error(self, target: Target, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        """A non-2xx answer, normalised."""
        ...

    def translator(self, call: Call, target: Target) -> StreamTranslator: ...

    @property
    def responder(self) -> LocalResponder | None:
        """Set for providers answered in process instead of over HTTP."""
        ...
