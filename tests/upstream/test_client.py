"""The pooled upstream client against a real loopback server: keep-alive, DNS checks, failures."""

from __future__ import annotations

import asyncio
import socket

import pytest

from crossroads.errors import UpstreamUnavailable
from crossroads.upstream.client import UpstreamClient
from crossroads.upstream.hosts import HostPolicy, HostRefused
from crossroads.upstream.response import UpstreamRequest
from tests.support.gateway import GatewayServer
from tests.support.upstream import FakeUpstream, Reply


async def fetch(client: UpstreamClient, url: str, guarded: bool = False) -> tuple[int, bytes]:
    resp = await client.send(UpstreamRequest("GET", url, {}, b"", guarded=guarded))
    return resp.status, await resp.read(1 << 20)


def make_client(trusted: list[str]) -> UpstreamClient:
    return UpstreamClient(HostPolicy(trusted), pool_size=8, connect_timeout_s=2, idle_timeout_s=2)


async def test_connections_are_kept_alive_and_reused(fake: FakeUpstream) -> None:
    fake.on("GET", "/x", Reply(body={"ok": True}))
    client = make_client([])
    await client.start()
    try:
        for _ in range(5):
            assert await fetch(client, f"{fake.url}/x") == (200, b'{"ok": true}')
    finally:
        await client.close()
    assert len({r.peer for r in fake.requests}) == 1


def machine_name_resolving_to_loopback() -> str:
    name = socket.gethostname()
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(name, 80, proto=socket.IPPROTO_TCP)}
    except OSError:
        pytest.skip("the machine's own name does not resolve")
    if not all(a.startswith("127.") for a in addresses):
        pytest.skip("the machine's own name does not resolve to loopback")
    return name


async def test_guarded_pool_refuses_names_resolving_to_private_addresses(fake: FakeUpstream) -> None:
    name = machine_name_resolving_to_loopback()
    fake.on("GET", "/x", Reply(body={"ok": True}))
    client = make_client(["localhost"])  # the name is trusted, its address is not
    await client.start()
    try:
        with pytest.raises(HostRefused, match="resolves to a private"):
            await fetch(client, f"http://{name}:{fake.port}/x", guarded=True)
        assert await fetch(client, f"http://localhost:{fake.port}/x", guarded=True) == (200, b'{"ok": true}')
        # The operator's own provider URLs are not subject to the caller policy.
        assert (await fetch(client, f"http://{name}:{fake.port}/x"))[0] == 200
    finally:
        await client.close()


def test_dns_rebinding_through_the_gateway(fake: FakeUpstream) -> None:
    name = machine_name_resolving_to_loopback()
    fake.on("POST", "/v1/chat/completions", Reply(body={"ok": True}))
    server = GatewayServer(trusted_custom_hosts=["localhost"]).start()
    try:
        with server.client() as http:
            resp = http.post(
                "/v1/chat/completions",
                json={"model": "m", "messages": []},
                headers={
                    "x-portkey-provider": "openai",
                    "x-portkey-custom-host": f"http://{name}:{fake.port}/v1",
                },
            )
        assert resp.status_code == 400
        assert "resolves to a private" in resp.json()["error"]["message"]
        assert not fake.requests
    finally:
        server.stop()


async def test_refused_connection_is_upstream_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client([])
    await client.start()
    try:
        with pytest.raises(UpstreamUnavailable, match="connection refused"):
            await fetch(client, f"http://127.0.0.1:{port}/x")
    finally:
        await client.close()


async def test_response_over_the_cap_is_refused(fake: FakeUpstream) -> None:
    fake.on("GET", "/big", Reply(body=b"x" * 5000, content_type="text/plain"))
    client = make_client([])
    await client.start()
    try:
        resp = await client.send(UpstreamRequest("GET", f"{fake.url}/big", {}))
        with pytest.raises(UpstreamUnavailable, match="larger than 1000 bytes"):
            await resp.read(1000)
    finally:
        await client.close()
        await asyncio.sleep(0)
