"""The access-token cache: one exchange per credential at a time, reused until shortly before
it expires, failures shared by the waiters and not cached. A real client against the fake."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from crossroads.errors import UpstreamError
from crossroads.pipeline.tokens import MARGIN_S, Tokens
from crossroads.providers.base import Target
from crossroads.secret import Secret
from crossroads.upstream.client import UpstreamClient
from crossroads.upstream.hosts import HostPolicy, HostRefused
from crossroads.upstream.response import UpstreamRequest
from tests.support.upstream import FakeUpstream, Reply


class Exchanger:
    name = "test-exchange"

    def __init__(self, url: str) -> None:
        self.url = url

    def token_key(self, target: Target) -> str | None:
        account = target.options.get("account")
        return account.fingerprint() if isinstance(account, Secret) else None

    def token_request(self, target: Target, now: float) -> UpstreamRequest:
        return UpstreamRequest("POST", self.url, {}, b"grant", guarded=True)

    def token_from(self, status: int, body: bytes) -> tuple[Secret, float]:
        answer = msgspec.json.decode(body)
        if status != 200:
            raise UpstreamError("refused", status=401)
        return Secret(answer["token"]), float(answer["expires_in"])

    def with_token(self, target: Target, token: Secret) -> Target:
        return msgspec.structs.replace(target, api_key=token)


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def target(account: str) -> Target:
    return Target(provider="x", options={"account": Secret(account)})


async def test_one_exchange_for_many_requests_renewed_before_expiry(fake: FakeUpstream) -> None:
    fake.on(
        "POST",
        "/token",
        Reply(body={"token": "t1", "expires_in": 3600}, delay=0.05),
        Reply(body={"token": "t2", "expires_in": 3600}),
    )
    client = UpstreamClient(HostPolicy(["127.0.0.1"]), pool_size=4, connect_timeout_s=2, idle_timeout_s=2)
    await client.start()
    clock = Clock()
    tokens = Tokens(client, HostPolicy(["127.0.0.1"]), clock)
    exchanger = Exchanger(f"{fake.url}/token")
    try:
        got = await asyncio.gather(*(tokens.target_for(exchanger, target("a")) for _ in range(10)))
        assert {t.api_key.reveal() for t in got if t.api_key} == {"t1"}
        assert len(fake.requests) == 1
        clock.now += 3600 - MARGIN_S - 1
        assert (await tokens.target_for(exchanger, target("a"))).api_key == Secret("t1")
        clock.now += 2  # inside the renewal margin
        assert (await tokens.target_for(exchanger, target("a"))).api_key == Secret("t2")
        assert len(fake.requests) == 2
        untouched = Target(provider="x")
        assert await tokens.target_for(exchanger, untouched) is untouched  # nothing to exchange
    finally:
        await client.close()


async def test_a_refusal_reaches_every_waiter_and_is_not_cached(fake: FakeUpstream) -> None:
    fake.on(
        "POST",
        "/token",
        Reply(status=400, body={"error": "invalid_grant"}, delay=0.05),
        Reply(body={"token": "ok", "expires_in": 60}),
    )
    client = UpstreamClient(HostPolicy(["127.0.0.1"]), pool_size=4, connect_timeout_s=2, idle_timeout_s=2)
    await client.start()
    tokens = Tokens(client, HostPolicy(["127.0.0.1"]), Clock())
    exchanger = Exchanger(f"{fake.url}/token")
    try:
        results = await asyncio.gather(
            *(tokens.target_for(exchanger, target("b")) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, UpstreamError) for r in results)
        assert len(fake.requests) == 1
        assert (await tokens.target_for(exchanger, target("b"))).api_key == Secret("ok")
    finally:
        await client.close()


async def test_a_token_endpoint_the_host_policy_refuses_is_never_called(fake: FakeUpstream) -> None:
    client = UpstreamClient(HostPolicy([]), pool_size=4, connect_timeout_s=2, idle_timeout_s=2)
    await client.start()
    tokens = Tokens(client, HostPolicy([]))
    try:
        with pytest.raises(HostRefused):
            await tokens.target_for(Exchanger(f"{fake.url}/token"), target("c"))
        assert fake.requests == []
    finally:
        await client.close()
