"""The contract between the pipeline and a provider: what a call is, where it goes, and the
Adapter / StreamTranslator protocols every provider implements.

Adapters are pure: `build` turns a call into an UpstreamRequest, `parse` and `error` turn
bytes into a Reply or an UpstreamError, a translator turns upstream events into OpenAI
chunks. The pipeline does the I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol, runtime_checkable

import msgspec

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
MESSAGES: Final = "messages"  # Anthropic's Messages API, whichever provider answers
COUNT_TOKENS: Final = "messages.count_tokens"
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
        MESSAGES,
        COUNT_TOKENS,
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

    def secrets(self) -> tuple[Secret, ...]:
        """Every credential this target carries (for scrubbing what a provider sends back)."""
        found = [value for value in self.options.values() if isinstance(value, Secret)]
        return (self.api_key, *found) if self.api_key is not None else tuple(found)


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
    created: int = 0  # when the gateway received it (Unix seconds): for answers built here

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
    """An upstream stream failed; carries the error and the output produced before it."""

    def __init__(self, error: UpstreamError, partial: bytes = b"") -> None:
        super().__init__(error.message)
        self.error = error
        self.partial = partial


class StreamTranslator(Protocol):
    """An upstream stream body in, the client's stream out (framed, ready to send).

    `feed` takes bytes exactly as they were read (events may be split anywhere) and returns
    what can be sent so far, possibly b"". It raises StreamInterrupted on an in-stream error,
    with `partial` holding the output that came before the error.
    """

    def feed(self, data: bytes) -> bytes: ...

    def close(self) -> bytes:
        """The upstream body ended: the rest of the output and the stream's terminator
        (`data: [DONE]`); raise StreamInterrupted if the stream was cut short."""
        ...

    def error_event(self, error: UpstreamError) -> bytes:
        """The event that tells the client the stream failed."""
        ...


class LocalResponder(Protocol):
    """An in-process upstream (the mock provider)."""

    async def respond(self, request: UpstreamRequest) -> UpstreamResponse: ...


class Adapter(Protocol):
    name: str
    endpoints: frozenset[str]

    def build(self, call: Call, target: Target) -> UpstreamRequest: ...

    def parse(
        self, call: Call, target: Target, status: int, headers: Mapping[str, str], body: bytes
    ) -> Reply:
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


@runtime_checkable
class TokenExchanger(Protocol):
    """An adapter whose credential must first be exchanged for a short-lived access token
    (a Google service account's signed JWT for an OAuth2 token). The adapter builds the
    exchange and reads its answer; the pipeline sends it and caches the token."""

    name: str

    def token_key(self, target: Target) -> str | None:
        """A fingerprint of the credential to exchange (the token cache's key), or None when
        the target already carries a usable token."""
        ...

    def token_request(self, target: Target, now: float) -> UpstreamRequest: ...

    def token_from(self, status: int, body: bytes) -> tuple[Secret, float]:
        """The access token and its lifetime in seconds; raise UpstreamError if refused."""
        ...

    def with_token(self, target: Target, token: Secret) -> Target: ...
