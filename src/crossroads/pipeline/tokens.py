"""Short-lived provider access tokens (Vertex AI service accounts): exchanged once, cached
until shortly before they expire, one exchange at a time per credential.

The adapter builds the exchange and reads its answer (providers stay pure); this module
sends it through the upstream client and keeps the token in process, keyed by a
fingerprint of the credential, never the credential itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final

from crossroads.providers.base import Target, TokenExchanger
from crossroads.secret import Secret
from crossroads.upstream.client import UpstreamClient
from crossroads.upstream.hosts import HostPolicy

# A token is renewed this long before it expires, so none expires in flight.
MARGIN_S: Final = 300.0
MAX_ENTRIES: Final = 1024
MAX_ANSWER_BYTES: Final = 64 * 1024


class Tokens:
    def __init__(
        self, client: UpstreamClient, hosts: HostPolicy, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._hosts = hosts
        self._clock = clock
        self._cache: dict[str, tuple[Secret, float]] = {}  # key -> (token, renew at)
        self._inflight: dict[str, asyncio.Future[Secret]] = {}

    async def target_for(self, exchanger: TokenExchanger, target: Target) -> Target:
        key = exchanger.token_key(target)
        if key is None:
            return target
        cached = self._cache.get(key)
        if cached is not None and cached[1] > self._clock():
            return exchanger.with_token(target, cached[0])
        pending = self._inflight.get(key)
        if pending is not None:
            return exchanger.with_token(target, await asyncio.shield(pending))
        future: asyncio.Future[Secret] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            token, lifetime = await self._exchange(exchanger, target)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it, nobody else needs to
            raise
        finally:
            del self._inflight[key]
        future.set_result(token)
        self._remember(key, token, lifetime)
        return exchanger.with_token(target, token)

    async def _exchange(self, exchanger: TokenExchanger, target: Target) -> tuple[Secret, float]:
        request = exchanger.token_request(target, time.time())
        if request.guarded:  # a token endpoint named by the caller's key: same rules as a custom host
            self._hosts.check_url(request.url)
        response = await self._client.send(request)
        try:
            return exchanger.token_from(response.status, await response.read(MAX_ANSWER_BYTES))
        finally:
            response.close()

    def _remember(self, key: str, token: Secret, lifetime: float) -> None:
        now = self._clock()
        if len(self._cache) >= MAX_ENTRIES:
            for stale in [k for k, (_, renew) in self._cache.items() if renew <= now] or list(self._cache)[
                :1
            ]:
                del self._cache[stale]
        self._cache[key] = (token, now + max(0.0, lifetime - MARGIN_S))
