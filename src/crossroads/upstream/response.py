"""What the gateway sends to a provider and what comes back, independent of the HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import msgspec


class UpstreamRequest(msgspec.Struct, frozen=True):
    method: str
    url: str
    headers: dict[str, str]
    body: bytes = b""
    # True when the URL came from the caller (custom host): such requests go through the
    # connection pool whose resolver refuses private addresses.
    guarded: bool = False


class UpstreamResponse(Protocol):
    """A response whose body has not been read yet."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def read(self, limit: int) -> bytes:
        """The whole body; raises UpstreamUnavailable past `limit` bytes or on a broken body."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; raises UpstreamUnavailable if it breaks off."""
        ...

    def close(self) -> None:
        """Release the connection; closing before the body is read aborts the upstream request."""
        ...


class LocalResponse:
    """A response generated in process (the mock provider)."""

    def __init__(self, status: int, headers: Mapping[str, str], body: AsyncIterator[bytes] | bytes) -> None:
        self.status = status
        self.headers = headers
        self._body = body

    async def read(self, limit: int) -> bytes:
        if isinstance(self._body, bytes):
            return self._body
        return b"".join([chunk async for chunk in self._body])

    async def chunks(self) -> AsyncIterator[bytes]:
        if isinstance(self._body, bytes):
            yield self._body
            return
        async for chunk in self._body:
            yield chunk

    def close(self) -> None:
        if not isinstance(self._body, bytes):
            aclose = getattr(self._body, "aclose", None)
            if aclose is not None:
                self._body = b""
