"""Governance end to end: the portkey-ai SDK drives the admin API against SQLite and the real
PostgreSQL, then inference runs on a gateway key alone; secrets never leak; refusals are
401/403; limits hold exactly under concurrency, on one gateway and on two sharing Redis."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import secrets
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI
from portkey_ai import Portkey

from crossroads.governance import records as rec
from crossroads.storage.catalog import open_catalog
from tests.support import aws
from tests.support.databases import database, postgres_schema
from tests.support.gateway import CROSSROADS, GatewayProcess, GatewayServer
from tests.support.google import TOKEN, service_account, token_endpoint
from tests.support.upstream import FakeUpstream, Reply, fixture_bytes

MASTER = base64.b64encode(os.urandom(32)).decode()
ADMIN_KEY = "admin-" + secrets.token_urlsafe(32)
PROVIDER_SECRET = "sk-live-" + secrets.token_urlsafe(24)
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
MOCK_CHAT = {"model": "mock-1", "messages": [{"role": "user", "content": "one two three"}]}


@pytest.fixture(params=["sqlite", "postgres"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def gov(catalog_url: str) -> Iterator[GatewayServer]:
    server = GatewayServer(database_url=catalog_url, master_key=MASTER, admin_key=ADMIN_KEY).start()
    yield server
    server.stop()


def admin(gateway: GatewayServer) -> httpx.Client:
    return gateway.client(headers={"x-portkey-api-key": ADMIN_KEY})


def sdk(gateway: GatewayServer, key: str = ADMIN_KEY, **kwargs: Any) -> Any:
    return Portkey(base_url=f"{gateway.url}/v1", api_key=key, **kwargs)


def new_key(gateway: GatewayServer, **body: Any) -> tuple[str, str]:
    """(id, secret) of a new API key."""
    body.setdefault("name", "app")
    body.setdefault("scopes", ["completions.write"])
    resp = admin(gateway).post("/v1/api-keys/workspace/service", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()["id"], resp.json()["key"]


def new_virtual_key(gateway: GatewayServer, fake: FakeUpstream | None = None, **body: Any) -> str:
    body.setdefault("name", "openai prod")
    body.setdefault("provider", "openai")
    body.setdefault("key", PROVIDER_SECRET)
    if fake is not None:
        body.setdefault("custom_host", f"{fake.url}/v1")
    resp = admin(gateway).post("/v1/virtual-keys", json=body)
    assert resp.status_code == 200, resp.text
    slug: str = resp.json()["slug"]
    return slug


def answer(fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/chat/completions", Reply(body=fixture_bytes("openai/chat-completion.text.json")))


# -- the SDK, end to end --------------------------------------------------------------------


def test_portkey_sdk_drives_the_admin_api_then_inference_runs_on_a_key_and_a_config_slug(
    gov: GatewayServer, fake: FakeUpstream
) -> None:
    answer(fake)
    client = sdk(gov)
    vk = client.virtual_keys.create(
        name="OpenAI prod", provider="openai", key=PROVIDER_SECRET, customHost=f"{fake.url}/v1", note="main"
    )
    assert isinstance(vk.id, str) and vk.slug.startswith("openai-prod-")
    config = client.configs.create(
        name="support", config={"retry": {"attempts": 1}, "virtual_key": vk.slug}, is_default=0
    )
    assert config.slug.startswith("pc-") and config.version_id
    key = client.api_keys.create(
        type="workspace", sub_type="service", name="support app", scopes=["completions.write"]
    )
    assert key.key.startswith("xr-")

    app = sdk(gov, key=key.key, config=config.slug)
    completion = app.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
    )
    assert completion.choices[0].message.content
    seen = fake.last()
    assert seen.headers["authorization"] == f"Bearer {PROVIDER_SECRET}"  # the vault's key, not OPENAI_API_KEY
    assert key.key not in json.dumps(seen.headers)

    listed = client.virtual_keys.list()
    assert listed.total == 1 and listed.data[0]["slug"] == vk.slug
    assert PROVIDER_SECRET not in json.dumps(listed.data)
    got = client.virtual_keys.retrieve(slug=vk.slug)
    assert got.masked_api_key != PROVIDER_SECRET and got.note == "main"
    client.virtual_keys.update(slug=vk.slug, note="renamed")
    assert client.virtual_keys.retrieve(slug=vk.slug).note == "renamed"

    fetched = client.configs.retrieve(slug=config.slug)
    assert fetched.config == {"retry": {"attempts": 1}, "virtual_key": vk.slug}
    assert fetched.is_default == 0 and fetched.status == "active"
    updated = client.configs.update(slug=config.slug, config={"virtual_key": vk.slug})
    assert updated.version_id != config.version_id
    assert client.configs.list().total == 1

    keys = client.api_keys.list()
    assert keys.total == 1 and keys.data[0]["key"] != key.key
    assert client.api_keys.retrieve(id=key.id).scopes == ["completions.write"]
    client.api_keys.update(id=key.id, name="renamed")
    assert client.api_keys.retrieve(id=key.id).name == "renamed"

    client.api_keys.delete(id=key.id)
    with pytest.raises(Exception) as revoked:
        app.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}])
    assert getattr(revoked.value, "status_code", None) == 401
    client.configs.delete(slug=config.slug)
    client.virtual_keys.delete(slug=vk.slug)
    assert client.virtual_keys.list().total == 0


def test_openai_sdk_with_the_gateway_key_as_bearer_and_a_slug_in_the_model(
    gov: GatewayServer, fake: FakeUpstream
) -> None:
    answer(fake)
    slug = new_virtual_key(gov, fake)
    _, key = new_key(gov)
    client = OpenAI(api_key=key, base_url=f"{gov.url}/v1", max_retries=0)
    completion = client.chat.completions.create(
        model=f"@{slug}/gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
    )
    assert completion.choices[0].message.content
    seen = fake.last()
    assert seen.json()["model"] == "gpt-4o-mini"
    assert seen.headers["authorization"] == f"Bearer {PROVIDER_SECRET}"


def test_a_virtual_key_wins_over_a_placeholder_authorization(gov: GatewayServer, fake: FakeUpstream) -> None:
    answer(fake)
    slug = new_virtual_key(gov, fake)
    _, key = new_key(gov)
    for headers in (
        {"x-portkey-virtual-key": slug},
        {"x-portkey-provider": f"@{slug}"},
        {"x-portkey-config": json.dumps({"virtual_key": slug})},
        {
            "x-portkey-config": json.dumps(
                {"strategy": {"mode": "fallback"}, "targets": [{"provider": f"@{slug}"}]}
            )
        },
    ):
        resp = gov.client().post(
            "/v1/chat/completions",
            json=CHAT,
            headers={"x-portkey-api-key": key, "authorization": "Bearer OPENAI_API_KEY", **headers},
        )
        assert resp.status_code == 200, (headers, resp.text)
        assert fake.last().headers["authorization"] == f"Bearer {PROVIDER_SECRET}"


def test_a_virtual_key_is_never_sent_to_another_host(gov: GatewayServer, fake: FakeUpstream) -> None:
    answer(fake)
    plain = new_virtual_key(gov)  # no custom host: only OpenAI's own endpoint
    hosted = new_virtual_key(gov, fake, name="proxied")
    _, key = new_key(gov)
    attempts = [
        {"x-portkey-virtual-key": plain, "x-portkey-custom-host": f"{fake.url}/v1"},
        {"x-portkey-config": json.dumps({"virtual_key": plain, "custom_host": f"{fake.url}/v1"})},
        {"x-portkey-virtual-key": hosted, "x-portkey-custom-host": "http://localhost:1/v1"},
    ]
    for headers in attempts:
        resp = gov.client().post(
            "/v1/chat/completions", json=CHAT, headers={"x-portkey-api-key": key, **headers}
        )
        assert resp.status_code == 403, resp.text
        error = resp.json()["error"]
        assert error["code"] == "custom_host_not_allowed" and "may only be sent to" in error["message"]
    assert fake.requests == []
    same = {"x-portkey-virtual-key": hosted, "x-portkey-custom-host": f"{fake.url}/v1"}
    resp = gov.client().post("/v1/chat/completions", json=CHAT, headers={"x-portkey-api-key": key, **same})
    assert resp.status_code == 200, resp.text


# -- secrets --------------------------------------------------------------------------------


def test_no_secret_reaches_a_response_a_log_or_an_error(
    gov: GatewayServer, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    aws_secret = "aws-" + secrets.token_urlsafe(30)
    texts: list[str] = []

    def keep(resp: httpx.Response) -> httpx.Response:
        texts.append(resp.text + json.dumps(dict(resp.headers)))
        return resp

    client = admin(gov)
    slug = keep(
        client.post(
            "/v1/virtual-keys",
            json={
                "name": "leaky",
                "provider": "openai",
                "key": PROVIDER_SECRET,
                "customHost": f"{fake.url}/v1",
            },
        )
    ).json()["slug"]
    keep(
        client.post(
            "/v1/virtual-keys",
            json={
                "name": "aws",
                "provider": "bedrock",
                "awsSecretAccessKey": aws_secret,
                "awsAccessKeyId": "AKIDEXAMPLE",
                "awsRegion": "us-east-1",
            },
        )
    )
    created = keep(client.post("/v1/api-keys/workspace/service", json={"name": "k"})).json()
    key = created["key"]
    keep(client.get("/v1/virtual-keys"))
    keep(client.get(f"/v1/virtual-keys/{slug}"))
    keep(client.get("/v1/api-keys"))
    keep(client.get(f"/v1/api-keys/{created['id']}"))
    # OpenAI echoes part of a wrong key in its 401; the provider here echoes all of it.
    fake.on(
        "POST",
        "/v1/chat/completions",
        Reply(
            status=401,
            body={
                "error": {
                    "message": f"Incorrect API key provided: {PROVIDER_SECRET}.",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
        ),
    )
    keep(
        gov.client().post(
            "/v1/chat/completions",
            json=CHAT,
            headers={"x-portkey-api-key": key, "x-portkey-virtual-key": slug},
        )
    )
    keep(gov.client().post("/v1/chat/completions", json=CHAT, headers={"x-portkey-api-key": key + "x"}))
    assert fake.requests, "the provider was called"
    everything = "\n".join(texts) + caplog.text
    for secret in (PROVIDER_SECRET, aws_secret, MASTER, ADMIN_KEY):
        assert secret not in everything
    assert key not in "\n".join(texts[3:]) + caplog.text  # shown once, at creation, and nowhere else


def test_a_ciphertext_moved_to_another_row_does_not_open(
    gov: GatewayServer, catalog_url: str, fake: FakeUpstream
) -> None:
    answer(fake)
    first = new_virtual_key(gov, fake, name="first", key="sk-first-" + "a" * 20)
    second = new_virtual_key(gov, fake, name="second", key="sk-second-" + "b" * 20)

    async def swap() -> None:
        catalog = open_catalog(catalog_url)
        await catalog.start()
        try:
            one = rec.decode((await catalog.find(rec.VIRTUAL_KEY, first)) or "", rec.VirtualKey)
            two = rec.decode((await catalog.find(rec.VIRTUAL_KEY, second)) or "", rec.VirtualKey)
            moved = rec.VirtualKey(
                **{**{f: getattr(two, f) for f in two.__struct_fields__}, "sealed": one.sealed}
            )
            await catalog.update(rec.VIRTUAL_KEY, two.id, two.slug, rec.encode(moved))
        finally:
            await catalog.close()

    asyncio.run(swap())
    time.sleep(0)  # the gateway's cache never held `second`: it reads the moved row
    resp = gov.client().post(
        "/v1/chat/completions",
        json=CHAT,
        headers={"x-portkey-api-key": ADMIN_KEY, "x-portkey-virtual-key": second},
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == "virtual_key_unreadable"
    assert fake.requests == []
    ok = gov.client().post(
        "/v1/chat/completions",
        json=CHAT,
        headers={"x-portkey-api-key": ADMIN_KEY, "x-portkey-virtual-key": first},
    )
    assert ok.status_code == 200, ok.text
    assert fake.last().headers["authorization"] == "Bearer sk-first-" + "a" * 20


def test_a_ciphertext_presented_as_a_bearer_token_is_refused(gov: GatewayServer, catalog_url: str) -> None:
    slug = new_virtual_key(gov)

    async def sealed() -> str:
        catalog = open_catalog(catalog_url)
        await catalog.start()
        try:
            return rec.decode((await catalog.find(rec.VIRTUAL_KEY, slug)) or "", rec.VirtualKey).sealed
        finally:
            await catalog.close()

    token = asyncio.run(sealed())
    for headers in ({"authorization": f"Bearer {token}"}, {"x-portkey-api-key": token}):
        resp = gov.client().post(
            "/v1/chat/completions", json=MOCK_CHAT, headers={"x-portkey-provider": "mock", **headers}
        )
        assert resp.status_code == 401, resp.text


def test_wrong_revoked_expired_and_out_of_scope_keys(gov: GatewayServer) -> None:
    key_id, revoked = new_key(gov)
    admin(gov).delete(f"/v1/api-keys/{key_id}")
    _, expired = new_key(gov, expires_at="2020-01-01T00:00:00Z")
    _, logs_only = new_key(gov, scopes=["logs.view"])
    _, valid = new_key(gov)
    cases = {
        "none": ({}, 401, "missing_api_key"),
        "wrong": ({"x-portkey-api-key": "xr-" + secrets.token_urlsafe(32)}, 401, "invalid_api_key"),
        "revoked": ({"x-portkey-api-key": revoked}, 401, "invalid_api_key"),
        "expired": ({"x-portkey-api-key": expired}, 401, "expired_api_key"),
        "scope": ({"x-portkey-api-key": logs_only}, 403, "insufficient_scope"),
        # A provider key sent the plain-OpenAI way: told to send a gateway key beside it.
        "bearer": ({"authorization": "Bearer sk-not-ours"}, 401, "missing_api_key"),
        "bearer-ours": ({"authorization": f"Bearer xr-{secrets.token_urlsafe(32)}"}, 401, "invalid_api_key"),
    }
    client = gov.client()
    for name, (headers, status, code) in cases.items():
        resp = client.post(
            "/v1/chat/completions", json=MOCK_CHAT, headers={"x-portkey-provider": "mock", **headers}
        )
        assert resp.status_code == status, (name, resp.text)
        assert resp.json()["error"]["code"] == code, name
        assert resp.headers["content-type"] == "application/json"
        assert resp.headers["x-portkey-request-id"]
    provider_key = client.post(
        "/v1/chat/completions",
        json=MOCK_CHAT,
        headers={"x-portkey-provider": "mock", "authorization": "Bearer sk-proj-abc"},
    ).json()["error"]["message"]
    assert "x-portkey-api-key" in provider_key and "provider's key" in provider_key
    assert "Invalid API key" not in provider_key and "sk-proj-abc" not in provider_key
    resp = client.get("/v1/virtual-keys", headers={"x-portkey-api-key": valid})
    assert resp.status_code == 403 and "virtual_keys.list" in resp.json()["error"]["message"]
    ok = client.post(
        "/v1/chat/completions",
        json=MOCK_CHAT,
        headers={"x-portkey-provider": "mock", "x-portkey-api-key": valid},
    )
    assert ok.status_code == 200, ok.text


def test_refusals_take_the_same_time_whichever_way_the_key_is_wrong(gov: GatewayServer) -> None:
    """A key that exists (expired, out of scope) and one that does not are refused alike: the
    medians of interleaved refusals, measured in one run, are within 1.5x of each other."""
    key_id, revoked = new_key(gov)
    admin(gov).delete(f"/v1/api-keys/{key_id}")
    _, expired = new_key(gov, expires_at="2020-01-01T00:00:00Z")
    _, logs_only = new_key(gov, scopes=["logs.view"])
    kinds = {
        "wrong": "xr-" + secrets.token_urlsafe(32),
        "revoked": revoked,
        "expired": expired,
        "scope": logs_only,
    }
    timings: dict[str, list[float]] = {k: [] for k in kinds}
    with gov.client() as client:
        for _ in range(80):
            for kind, key in kinds.items():
                start = time.perf_counter()
                resp = client.post(
                    "/v1/chat/completions",
                    json=MOCK_CHAT,
                    headers={"x-portkey-provider": "mock", "x-portkey-api-key": key},
                )
                timings[kind].append(time.perf_counter() - start)
                assert resp.status_code in (401, 403)
    medians = {k: statistics.median(v) for k, v in timings.items()}
    assert max(medians.values()) / min(medians.values()) < 1.5, medians


def test_model_allow_lists_on_keys_and_virtual_keys(gov: GatewayServer, fake: FakeUpstream) -> None:
    answer(fake)
    _, key = new_key(gov, allowed_models=["gpt-4o-mini", "gpt-4o"])
    slug = new_virtual_key(gov, fake, allowed_models=["gpt-4o-mini"])
    client = gov.client()
    headers = {"x-portkey-api-key": key, "x-portkey-virtual-key": slug}
    refused = client.post("/v1/chat/completions", json={**CHAT, "model": "o3"}, headers=headers)
    assert refused.status_code == 403 and "'o3'" in refused.json()["error"]["message"]
    by_vk = client.post("/v1/chat/completions", json={**CHAT, "model": "gpt-4o"}, headers=headers)
    assert by_vk.status_code == 403 and slug in by_vk.json()["error"]["message"]
    assert fake.requests == []
    assert client.post("/v1/chat/completions", json=CHAT, headers=headers).status_code == 200


def test_key_defaults_metadata_and_config(gov: GatewayServer) -> None:
    # The default config routes on the key's metadata: the answer shows which branch ran.
    config = {
        "strategy": {
            "mode": "conditional",
            "conditions": [{"query": {"metadata.team": {"$eq": "red"}}, "then": "red"}],
            "default": "other",
        },
        "targets": [
            {"name": "red", "provider": "mock", "override_params": {"model": "mock-1?content=red-team"}},
            {
                "name": "other",
                "provider": "mock",
                "override_params": {"model": "mock-1?content=someone-else"},
            },
        ],
    }
    slug = admin(gov).post("/v1/configs", json={"name": "teams", "config": config}).json()["slug"]
    _, locked = new_key(
        gov, defaults={"metadata": {"team": "red"}, "config_id": slug, "allow_config_override": False}
    )
    client = gov.client()
    resp = client.post(
        "/v1/chat/completions",
        json=MOCK_CHAT,
        headers={"x-portkey-api-key": locked, "x-portkey-metadata": '{"team": "blue"}'},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"] == "red-team"  # the key's metadata wins
    override = client.post(
        "/v1/chat/completions",
        json=MOCK_CHAT,
        headers={"x-portkey-api-key": locked, "x-portkey-config": '{"provider": "mock"}'},
    )
    assert override.status_code == 403 and override.json()["error"]["code"] == "config_override_not_allowed"
    _, free = new_key(gov, defaults={"config_id": slug})
    own = client.post(
        "/v1/chat/completions",
        json=MOCK_CHAT,
        headers={"x-portkey-api-key": free, "x-portkey-config": '{"provider": "mock"}'},
    )
    assert own.status_code == 200 and own.json()["choices"][0]["message"]["content"] == "one two three"


# -- limits ---------------------------------------------------------------------------------


async def _burst(url: str, key: str, count: int, body: dict[str, Any] | None = None) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        return await asyncio.gather(
            *(
                client.post(
                    "/v1/chat/completions",
                    json=body or MOCK_CHAT,
                    headers={"x-portkey-api-key": key, "x-portkey-provider": "mock"},
                )
                for _ in range(count)
            )
        )


def test_200_concurrent_requests_against_a_limit_of_50_let_exactly_50_through(tmp_path: Path) -> None:
    server = GatewayServer(
        master_key=MASTER, admin_key=ADMIN_KEY, database_url=f"sqlite:///{tmp_path / 'c.db'}"
    ).start()
    try:
        _, key = new_key(server, rate_limits=[{"type": "requests", "unit": "rpd", "value": 50}])
        responses = asyncio.run(_burst(server.url, key, 200))
    finally:
        server.stop()
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 50, statuses
    assert statuses.count(429) == 150
    refused = next(r for r in responses if r.status_code == 429)
    assert int(refused.headers["retry-after"]) > 0
    assert refused.json()["error"]["type"] == "rate_limit_error"


def test_two_gateway_processes_sharing_redis_let_exactly_50_through() -> None:
    with postgres_schema() as url:
        env = {
            "CROSSROADS_DATABASE_URL": url,
            "CROSSROADS_REDIS_URL": "redis://127.0.0.1:6379/0",
            "CROSSROADS_ADMIN_KEY": ADMIN_KEY,
            "CROSSROADS_MASTER_KEY": MASTER,
        }
        one, two = GatewayProcess(env=env).start(), GatewayProcess(env=env).start()
        try:
            created = httpx.post(
                f"{one.url}/v1/api-keys/workspace/service",
                headers={"x-portkey-api-key": ADMIN_KEY},
                json={"name": "shared", "rate_limits": [{"type": "requests", "unit": "rpd", "value": 50}]},
            )
            key = created.json()["key"]

            async def both() -> list[httpx.Response]:
                first, second = await asyncio.gather(_burst(one.url, key, 100), _burst(two.url, key, 100))
                return first + second

            responses = asyncio.run(both())
        finally:
            one.stop()
            two.stop()
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 50, statuses
    assert statuses.count(429) == 150


def test_a_token_budget_with_concurrent_streams_is_not_overshot(gov: GatewayServer) -> None:
    """With max_tokens set, the reservation covers the most a request can use, so the budget
    is never exceeded, however many streams run at once (docs/governance.md: the bound is 0)."""
    budget = 200  # 40 requests use ~9 tokens each, but reserve ~60 (prompt estimate + max_tokens)
    key_id, key = new_key(gov, usage_limits={"credit_limit": budget, "type": "tokens"})
    body = {**MOCK_CHAT, "stream": True, "max_tokens": 20, "stream_options": {"include_usage": True}}
    responses = asyncio.run(_burst(gov.url, key, 40, body))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) >= 2 and statuses.count(412) >= 1, statuses
    used = 0
    for resp in responses:
        if resp.status_code == 200:
            events = [line[6:] for line in resp.text.splitlines() if line.startswith("data: {")]
            usage = json.loads(events[-1])["usage"]
            used += usage["prompt_tokens"] + usage["completion_tokens"]
    view = admin(gov).get(f"/v1/api-keys/{key_id}").json()
    assert view["usage"]["current"] == used  # settled to the real usage, refused ones refunded
    assert used <= budget
    # Spend the rest: the key becomes exhausted, and says so.
    while admin(gov).get(f"/v1/api-keys/{key_id}").json()["status"] != "exhausted":
        resp = gov.client().post(
            "/v1/chat/completions",
            json={**MOCK_CHAT, "max_tokens": 1},
            headers={"x-portkey-api-key": key, "x-portkey-provider": "mock"},
        )
        if resp.status_code == 412:
            break
    assert admin(gov).get(f"/v1/api-keys/{key_id}").json()["usage"]["current"] <= budget


def test_a_virtual_key_limit_makes_the_config_fall_back(gov: GatewayServer, fake: FakeUpstream) -> None:
    answer(fake)
    tight = new_virtual_key(gov, fake, name="tight", usage_limits={"credit_limit": 1, "type": "tokens"})
    spare = new_virtual_key(gov, fake, name="spare", key="sk-spare-" + "c" * 20)
    config = {"strategy": {"mode": "fallback"}, "targets": [{"virtual_key": tight}, {"virtual_key": spare}]}
    resp = gov.client().post(
        "/v1/chat/completions",
        json=CHAT,
        headers={"x-portkey-api-key": ADMIN_KEY, "x-portkey-config": json.dumps(config)},
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert [r.headers["authorization"] for r in fake.requests] == ["Bearer sk-spare-" + "c" * 20]


def test_master_key_rotation_with_the_previous_key_then_reencrypt(tmp_path: Path, fake: FakeUpstream) -> None:
    answer(fake)
    url = f"sqlite:///{tmp_path / 'rotate.db'}"
    new_master = base64.b64encode(os.urandom(32)).decode()
    headers = {"x-portkey-api-key": ADMIN_KEY}

    def call(server: GatewayServer, slug: str) -> httpx.Response:
        return server.client().post(
            "/v1/chat/completions", json=CHAT, headers={**headers, "x-portkey-virtual-key": slug}
        )

    old = GatewayServer(database_url=url, master_key=MASTER, admin_key=ADMIN_KEY).start()
    try:
        slug = new_virtual_key(old, fake)
    finally:
        old.stop()
    only_new = GatewayServer(database_url=url, master_key=new_master, admin_key=ADMIN_KEY).start()
    try:
        refused = call(only_new, slug)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "virtual_key_unreadable"
        assert fake.requests == []
    finally:
        only_new.stop()
    both = GatewayServer(
        database_url=url, master_key=new_master, master_key_previous=MASTER, admin_key=ADMIN_KEY
    ).start()
    try:
        assert call(both, slug).status_code == 200
        env = {
            **os.environ,
            "CROSSROADS_DATABASE_URL": url,
            "CROSSROADS_MASTER_KEY": new_master,
            "CROSSROADS_MASTER_KEY_PREVIOUS": MASTER,
        }
        out = subprocess.run(
            [str(CROSSROADS), "virtual-keys", "reencrypt"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert [d["status"] for d in json.loads(out)["data"]] == ["reencrypted"]
    finally:
        both.stop()
    rotated = GatewayServer(database_url=url, master_key=new_master, admin_key=ADMIN_KEY).start()
    try:
        assert call(rotated, slug).status_code == 200
        assert fake.last().headers["authorization"] == f"Bearer {PROVIDER_SECRET}"
    finally:
        rotated.stop()


def test_a_bedrock_virtual_key_signs_with_its_stored_aws_credentials(
    gov: GatewayServer, fake: FakeUpstream
) -> None:
    model = "us.amazon.nova-micro-v1:0"
    fake.on("POST", f"/model/{model}/converse", Reply(body=fixture_bytes("bedrock/converse.tool-use.json")))
    secret_key = "aws-secret-" + secrets.token_urlsafe(20)
    slug = new_virtual_key(
        gov,
        name="bedrock",
        provider="bedrock",
        key=None,
        customHost=fake.url,
        awsAccessKeyId="AKIDVAULT",
        awsSecretAccessKey=secret_key,
        awsRegion="eu-west-1",
    )
    resp = gov.client().post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "Capital of France?"}]},
        headers={
            "x-portkey-api-key": ADMIN_KEY,
            "x-portkey-virtual-key": slug,
            # a caller's own AWS headers are ignored: the vault's credentials win
            "x-portkey-aws-secret-access-key": "caller-secret",
            "x-portkey-aws-region": "us-west-2",
        },
    )
    assert resp.status_code == 200, resp.text
    seen = fake.last()
    expected = aws.expected_authorization(
        method=seen.method,
        path=seen.raw_path,
        query=seen.query,
        headers=seen.headers,
        body=seen.body,
        access_key="AKIDVAULT",
        secret_key=secret_key,
        region="eu-west-1",
    )
    assert seen.headers["authorization"] == expected
    view = admin(gov).get(f"/v1/virtual-keys/{slug}").json()
    assert view["model_config"]["awsRegion"] == "eu-west-1"
    assert secret_key not in json.dumps(view) and "AKIDVAULT" not in json.dumps(view)


def test_a_change_on_one_replica_reaches_the_other_within_the_cache_ttl() -> None:
    ttl_ms = 400
    with postgres_schema() as url:
        env = {
            "CROSSROADS_DATABASE_URL": url,
            "CROSSROADS_ADMIN_KEY": ADMIN_KEY,
            "CROSSROADS_MASTER_KEY": MASTER,
            "CROSSROADS_CATALOG_CACHE_TTL_MS": str(ttl_ms),
        }
        one, two = GatewayProcess(env=env).start(), GatewayProcess(env=env).start()
        try:
            created = httpx.post(
                f"{one.url}/v1/api-keys/workspace/service",
                json={"name": "r"},
                headers={"x-portkey-api-key": ADMIN_KEY},
            ).json()

            def status(server: GatewayProcess) -> int:
                return httpx.post(
                    f"{server.url}/v1/chat/completions",
                    json=MOCK_CHAT,
                    headers={"x-portkey-api-key": created["key"], "x-portkey-provider": "mock"},
                ).status_code

            assert status(two) == 200  # created on one, used at once on two (it had nothing cached)
            httpx.delete(f"{one.url}/v1/api-keys/{created['id']}", headers={"x-portkey-api-key": ADMIN_KEY})
            assert status(one) == 401  # the replica that made the change: at once
            time.sleep(ttl_ms / 1000 + 0.2)
            assert status(two) == 401  # the other: within the TTL
        finally:
            one.stop()
            two.stop()


def test_lists_are_paginated_as_the_sdk_asks(gov: GatewayServer) -> None:
    ids = [new_key(gov, name=f"k{i}")[0] for i in range(5)]
    client = admin(gov)
    page = client.get("/v1/api-keys", params={"current_page": 1, "page_size": 2}).json()
    assert page["total"] == 5 and [k["id"] for k in page["data"]] == ids[2:4]
    assert len(client.get("/v1/api-keys", params={"current_page": 0}).json()["data"]) == 5
    listed = sdk(gov).api_keys.list(page_size=3, current_page=1)
    assert listed.total == 5 and [k["id"] for k in listed.data] == ids[3:]
    bad = client.get("/v1/api-keys", params={"page_size": "0"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "page_size"


def test_a_vertex_virtual_key_exchanges_its_stored_service_account(
    gov: GatewayServer, fake: FakeUpstream
) -> None:
    fake.on("POST", "/token", token_endpoint(fake))
    path = "/v1/projects/sa-project/locations/europe-west1/publishers/google/models/"
    path += "gemini-2.0-flash:generateContent"
    fake.on("POST", path, Reply(body=fixture_bytes("gemini/generateContent.function-call.json")))
    slug = new_virtual_key(
        gov,
        name="vertex",
        provider="vertex-ai",
        key=None,
        customHost=fake.url,
        vertexRegion="europe-west1",
        vertexServiceAccountJson=service_account(fake),  # an object, as Portkey's API takes it
    )
    shown = admin(gov).get(f"/v1/virtual-keys/{slug}").text
    assert "PRIVATE KEY" not in shown
    resp = gov.client().post(
        "/v1/chat/completions",
        json={"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "Where am I?"}]},
        headers={"x-portkey-api-key": ADMIN_KEY, "x-portkey-virtual-key": slug},
    )
    assert resp.status_code == 200, resp.text
    assert fake.last().headers["authorization"] == f"Bearer {TOKEN}"


def test_an_azure_virtual_key_routes_by_deployment_alias(gov: GatewayServer, fake: FakeUpstream) -> None:
    answer = Reply(body=fixture_bytes("openai/chat-completion.text.json"))
    fake.on("POST", "/openai/deployments/mini-prod/chat/completions", answer)
    fake.on("POST", "/openai/deployments/gpt4o-prod/chat/completions", answer)
    deployments: list[dict[str, Any]] = [
        {"deploymentName": "gpt4o-prod", "alias": "smart", "apiVersion": "2024-10-21", "is_default": True},
        {"deploymentName": "mini-prod", "alias": "fast", "apiVersion": "2025-04-01-preview"},
    ]
    slug = new_virtual_key(
        gov,
        name="azure",
        provider="azure-openai",
        customHost=f"{fake.url}/openai",
        deploymentConfig=deployments,
    )
    head = {"x-portkey-api-key": ADMIN_KEY, "x-portkey-virtual-key": slug}
    for model, path, version in (
        ("fast", "/openai/deployments/mini-prod/chat/completions", "2025-04-01-preview"),
        ("something-else", "/openai/deployments/gpt4o-prod/chat/completions", "2024-10-21"),
    ):
        resp = gov.client().post("/v1/chat/completions", json={**CHAT, "model": model}, headers=head)
        assert resp.status_code == 200, resp.text
        seen = fake.last()
        assert (seen.path, seen.query) == (path, f"api-version={version}")
        assert seen.headers["api-key"] == PROVIDER_SECRET
    two_defaults = [{**d, "is_default": True} for d in deployments]
    resp = admin(gov).post(
        "/v1/virtual-keys",
        json={"name": "bad", "provider": "azure-openai", "key": "k", "deploymentConfig": two_defaults},
    )
    assert resp.status_code == 400 and "at most one deployment" in resp.json()["error"]["message"]
    resp = admin(gov).post(
        "/v1/virtual-keys",
        json={
            "name": "bad",
            "provider": "azure-openai",
            "key": "k",
            "deploymentConfig": [{"deploymentName": "../x"}],
        },
    )
    assert resp.status_code == 400 and "deploymentName" in resp.json()["error"]["message"]
