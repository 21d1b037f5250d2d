"""The guard around a provider's translators: whatever a caller sends or a provider answers,
a translator's slip is an error that names the side at fault, never a 500.

Translators check the fields they read and say which one is wrong; this catches what they
did not foresee (a `true` where a list was expected, deep in a message part): a request is
a 400, an answer a 502, a stream an interrupted stream. The slip is logged once per kind,
without the body.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

from crossroads.codecs.sse import SSEError
from crossroads.errors import BadRequest, UpstreamUnavailable
from crossroads.providers.base import Adapter, Call, Reply, StreamInterrupted, StreamTranslator, Target
from crossroads.upstream.response import UpstreamRequest

log = logging.getLogger("crossroads.translation")
SLIPS: Final = (TypeError, AttributeError, KeyError, IndexError, ValueError)
_logged: set[tuple[str, str, str]] = set()


class InvalidShape(BadRequest):
    default_code = "invalid_request_shape"


def build(adapter: Adapter, call: Call, target: Target) -> UpstreamRequest:
    try:
        return adapter.build(call, target)
    except SLIPS as exc:
        _note(adapter.name, "request", exc)
        raise InvalidShape(
            f"The request does not have the shape {adapter.name} needs: a field holds the wrong kind of "
            f"value ({type(exc).__name__}: {str(exc)[:200]})"
        ) from None


def parse(
    adapter: Adapter, call: Call, target: Target, status: int, headers: Mapping[str, str], body: bytes
) -> Reply:
    try:
        return adapter.parse(call, target, status, headers, body)
    except SLIPS as exc:
        _note(adapter.name, "answer", exc)
        raise UpstreamUnavailable(
            f"invalid response received from {adapter.name}: it does not have the expected shape",
            provider=adapter.name,
        ) from None


def feed(translator: StreamTranslator, data: bytes, provider: str) -> bytes:
    try:
        return translator.feed(data)
    except SSEError:
        raise  # a malformed stream, said as such by the relay
    except SLIPS as exc:
        raise _broken(provider, exc) from None


def close(translator: StreamTranslator, provider: str) -> bytes:
    try:
        return translator.close()
    except SSEError:
        raise
    except SLIPS as exc:
        raise _broken(provider, exc) from None


def _broken(provider: str, exc: Exception) -> StreamInterrupted:
    _note(provider, "stream", exc)
    return StreamInterrupted(
        UpstreamUnavailable(f"{provider} sent a stream event of an unexpected shape", provider=provider)
    )


def _note(provider: str, side: str, exc: Exception) -> None:
    key = (provider, side, type(exc).__name__)
    if key not in _logged and len(_logged) < 256:
        _logged.add(key)
        log.warning("%s translator slipped on a %s (%s: %s)", provider, side, type(exc).__name__, exc)
