"""The admin operations through the real HTTP admin API (and the portkey-ai SDK where it calls
them): every body refuses a field it does not know, at the top and inside; slugs can be chosen;
a missing master key is one answer everywhere; budget refusals say what is left."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from portkey_ai import Portkey
from portkey_ai.api_resources.exceptions import APIStatusError as ControlPlaneError

from crossroads.governance import inputs
from tests.support.gateway import GatewayServer
from tests.support.upstream import FakeUpstream, Reply, fixture_bytes

MASTER_KEY = secrets.token_hex(32)
ADMIN_KEY = "crossroads-test-admin-" + secrets.token_urlsafe(24)
ADMIN = {"x-portkey-api-key": ADMIN_KEY}
PROVIDER_KEY = "sk-provider-secret-" + "p" * 24
CHAT: dict[str, Any] = {"model": "mock-1", "messages": [{"role": "user", "content": "Hello!"}]}
OPENAI_CHAT: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture(scope="module")
def server() -> Iterator[GatewayServer]:
    gateway = GatewayServer(admin_key=ADMIN_KEY, master_key=MASTER_KEY).start()
    yield gateway
    gateway.stop()


@pytest.fixture
def http(server: GatewayServer) -> Iterator[httpx.Client]:
    with server.client(headers=ADMIN) as client:
        for kind, ident in (("virtual-keys", "slug"), ("configs", "slug"), ("api-keys", "id")):
            for item in client.get(f"/v1/{kind}").json()["data"]:
                client.delete(f"/v1/{kind}/{item[ident]}")
        yield client


def refused(resp: httpx.Response, status: int, *, param: str | None = None, code: str | None = None) -> str:
    """The OpenAI-shaped error's message (the status, param and code checked)."""
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    expected = {412: "budget_exceeded", 503: "api_error"}.get(status, "invalid_request_error")
    assert error["type"] == expected, error
    if param is not None:
        assert error["param"] == param, error
    if code is not None:
        assert error["code"] == code, error
    message: str = error["message"]
    return message


def created(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def vk_body(**extra: Any) -> dict[str, Any]:
    return {"name": "openai prod", "provider": "openai", "key": PROVIDER_KEY, **extra}


# -- unknown fields --------------------------------------------------------------------------


def test_a_misspelled_custom_host_is_refused_not_sent_to_the_public_endpoint(
    http: httpx.Client, fake: FakeUpstream
) -> None:
    """`customhost` used to become a provider option: the key was stored, and requests went to
    api.openai.com with the stored provider key."""
    message = refused(
        http.post("/v1/virtual-keys", json=vk_body(customhost=f"{fake.url}/v1")),
        400,
        param="customhost",
        code="unknown_field",
    )
    assert "'customhost'" in message and "did you mean 'customHost'" in message
    assert "custom_host" in message and "awsRegion" in message  # the valid fields, and the provider's
    assert PROVIDER_KEY not in message
    assert http.get("/v1/virtual-keys").json()["data"] == []

    slug = created(http.post("/v1/virtual-keys", json=vk_body(custom_host=f"{fake.url}/v1")))["slug"]
    message = refused(http.put(f"/v1/virtual-keys/{slug}", json={"customhost": "http://127.0.0.1:9/v1"}), 400)
    assert "customhost" in message
    assert http.get(f"/v1/virtual-keys/{slug}").json()["custom_host"] == f"{fake.url}/v1"


BAD_BODIES = [
    # API keys, create: the top level and every nested object.
    ("POST", "/v1/api-keys/workspace/service", {"name": "k", "scopez": []}, "scopez", "scopes"),
    ("POST", "/v1/api-keys/workspace/service", {"name": "k", "expiresAt": 1}, "expiresAt", "expires_at"),
    (
        "POST",
        "/v1/api-keys/workspace/service",
        {"name": "k", "rate_limits": [{"type": "requests", "unit": "rpm", "valu": 5}]},
        "rate_limits",
        "value",
    ),
    (
        "POST",
        "/v1/api-keys/workspace/service",
        {"name": "k", "usage_limits": {"credit_limt": 5}},
        "usage_limits",
        "credit_limit",
    ),
    (
        "POST",
        "/v1/api-keys/workspace/service",
        {"name": "k", "defaults": {"config": "pc-x"}},
        "defaults",
        "config_id",
    ),
    ("POST", "/v1/api-keys/workspace/service", {"name": "k", "id": "mine"}, "id", "name"),
    ("POST", "/v1/api-keys/workspace/service", {"name": "k", "reset_usage": True}, "reset_usage", "name"),
    # Virtual keys: the top level, a provider field, model_config, deploymentConfig, limits.
    ("POST", "/v1/virtual-keys", vk_body(awsRegoin="eu-west-1"), "awsRegoin", "awsRegion"),
    ("POST", "/v1/virtual-keys", vk_body(notes="n"), "notes", "note"),
    ("POST", "/v1/virtual-keys", vk_body(model_config={"awsRegoin": "x"}), "model_config", "awsRegion"),
    (
        "POST",
        "/v1/virtual-keys",
        vk_body(provider="azure-openai", deploymentConfig=[{"deploymentName": "d", "isdefault": True}]),
        "deploymentConfig",
        "is_default",
    ),
    (
        "POST",
        "/v1/virtual-keys",
        vk_body(usage_limits={"credit_limit": 5, "periodic_rest": "monthly"}),
        "usage_limits",
        "periodic_reset",
    ),
    ("POST", "/v1/virtual-keys", vk_body(reset_usage=True), "reset_usage", "note"),
    # Configs.
    (
        "POST",
        "/v1/configs",
        {"name": "c", "config": {"provider": "mock"}, "is_defualt": 1},
        "is_defualt",
        "is_default",
    ),
    (
        "POST",
        "/v1/configs",
        {"name": "c", "config": {"provider": "mock"}, "description": "d"},
        "description",
        "name",
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "param", "listed"), BAD_BODIES)
def test_every_create_body_refuses_unknown_fields_naming_them_and_the_valid_ones(
    http: httpx.Client, method: str, path: str, body: dict[str, Any], param: str, listed: str
) -> None:
    message = refused(http.request(method, path, json=body), 400, param=param)
    assert listed in message, message
    for kind in ("virtual-keys", "configs", "api-keys"):
        assert http.get(f"/v1/{kind}").json()["data"] == []


def test_every_update_and_rotation_body_refuses_unknown_fields(http: httpx.Client) -> None:
    key_id = created(http.post("/v1/api-keys/workspace/service", json={"name": "k"}))["id"]
    slug = created(http.post("/v1/virtual-keys", json=vk_body()))["slug"]
    config = created(http.post("/v1/configs", json={"name": "c", "config": {"provider": "mock"}}))["slug"]
    cases = [
        (f"/v1/api-keys/{key_id}", "PUT", {"nmae": "x"}, "nmae", "name"),
        (
            f"/v1/api-keys/{key_id}",
            "PUT",
            {"rate_limits": [{"type": "requests", "unit": "rpm"}]},
            "rate_limits",
            "value",
        ),
        (
            f"/v1/api-keys/{key_id}/rotate",
            "POST",
            {"transition_ms": 5},
            "transition_ms",
            "key_transition_period_ms",
        ),
        (f"/v1/virtual-keys/{slug}", "PUT", {"allowed_model": ["x"]}, "allowed_model", "allowed_models"),
        (f"/v1/virtual-keys/{slug}", "PUT", {"model_config": {"regon": "x"}}, "model_config", "awsRegion"),
        (f"/v1/configs/{config}", "PUT", {"stauts": "archived"}, "stauts", "status"),
    ]
    for path, method, body, param, listed in cases:
        message = refused(http.request(method, path, json=body), 400, param=param)
        assert listed in message, (path, message)
    assert http.get(f"/v1/api-keys/{key_id}").json()["name"] == "k"
    assert http.get(f"/v1/configs/{config}").json()["status"] == "active"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/api-keys/workspace/service", {"name": "k", "alert_emails": ["a@b.c"]}, "alert_emails"),
        (
            "/v1/api-keys/workspace/service",
            {"name": "k", "rotation_policy": {"rotation_period": "weekly"}},
            "rotation_policy",
        ),
        ("/v1/virtual-keys", vk_body(secret_mappings=[{"target_field": "key"}]), "secret_mappings"),
    ],
)
def test_portkey_fields_this_gateway_does_not_implement_are_refused_with_the_reason(
    http: httpx.Client, path: str, body: dict[str, Any], field: str
) -> None:
    message = refused(http.post(path, json=body), 400, param=field, code="unsupported_field")
    assert "not" in message and field in message


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (
            "/v1/virtual-keys",
            vk_body(custom_host="http://127.0.0.1:9/v1", customHost="http://127.0.0.1:9/v1"),
            "customHost",
        ),
        ("/v1/virtual-keys", vk_body(awsRegion="eu-west-1", aws_region="eu-west-1"), "aws_region"),
        (
            "/v1/configs",
            {"name": "c", "config": {"provider": "mock"}, "is_default": 1, "isDefault": 0},
            "isDefault",
        ),
    ],
)
def test_one_field_in_two_spellings_is_refused(
    http: httpx.Client, path: str, body: dict[str, Any], param: str
) -> None:
    refused(http.post(path, json=body), 400, param=param, code="duplicate_field")


def test_an_id_or_slug_echoed_in_an_update_body_must_be_the_records(http: httpx.Client) -> None:
    key_id = created(http.post("/v1/api-keys/workspace/service", json={"name": "k"}))["id"]
    refused(http.put(f"/v1/api-keys/{key_id}", json={"id": "another"}), 400, param="id")
    refused(http.put(f"/v1/api-keys/{key_id}", json={"type": "organisation"}), 400, param="type")
    refused(
        http.post("/v1/api-keys/workspace/service", json={"name": "k", "sub-type": "user"}),
        400,
        param="sub-type",
    )
    config = created(http.post("/v1/configs", json={"name": "c", "config": {"provider": "mock"}}))
    refused(http.put(f"/v1/configs/{config['slug']}", json={"slug": "pc-other"}), 400, param="slug")
    by_id = http.put(f"/v1/configs/{config['id']}", json={"slug": config["slug"], "name": "renamed"})
    assert by_id.status_code == 200, by_id.text


def test_updates_apply_every_field_they_accept(http: httpx.Client) -> None:
    """Fields that were accepted and dropped: an API key's workspace_id and user_id on update, a
    config's status on create and workspace_id on update."""
    key_id = created(http.post("/v1/api-keys/workspace/service", json={"name": "k"}))["id"]
    assert created(http.put(f"/v1/api-keys/{key_id}", json={"workspace_id": "ws-1", "user_id": "u-1"})) == {}
    view = http.get(f"/v1/api-keys/{key_id}").json()
    assert view["workspace_id"] == "ws-1" and view["user_id"] == "u-1"
    body = {"name": "c", "config": {"provider": "mock"}, "status": "archived"}
    slug = created(http.post("/v1/configs", json=body))["slug"]
    assert http.get(f"/v1/configs/{slug}").json()["status"] == "archived"
    created(http.put(f"/v1/configs/{slug}", json={"workspace_id": "ws-2"}))
    assert http.get(f"/v1/configs/{slug}").json()["workspace_id"] == "ws-2"
    refused(http.put(f"/v1/api-keys/{key_id}", json={"reset_usage": "yes"}), 400, param="reset_usage")


def test_the_portkey_sdk_calls_are_accepted_as_the_sdk_sends_them(
    server: GatewayServer, http: httpx.Client
) -> None:
    client = Portkey(base_url=f"{server.url}/v1", api_key=ADMIN_KEY)
    vk = client.virtual_keys.create(
        name="azure prod",
        provider="azure-openai",
        key=PROVIDER_KEY,
        note="n",
        apiVersion="2024-10-21",
        resourceName="my-resource",
        deploymentName="gpt4o",
        workspace_id="ws-1",
        usage_limits={"credit_limit": 10, "periodic_reset": "monthly", "alert_threshold": 8},
        rate_limits=[{"type": "requests", "unit": "rpm", "value": 60}],
        azureAuthMode="api_key",
    )
    client.virtual_keys.update(
        slug=str(vk.slug), name="azure prod 2", note="m", usage_limits={"credit_limit": 20}, rate_limits=[]
    )
    assert client.virtual_keys.retrieve(slug=vk.slug).name == "azure prod 2"
    view = http.get(f"/v1/virtual-keys/{vk.slug}").json()  # (pydantic's model_config hides the SDK's)
    assert view["model_config"]["resourceName"] == "my-resource" and view["note"] == "m"
    config = client.configs.create(
        name="support", config={"virtual_key": vk.slug}, is_default=0, workspace_id="ws-1"
    )
    client.configs.update(
        slug=str(config.slug), name="support 2", config={"virtual_key": vk.slug}, status="active"
    )
    assert client.configs.retrieve(slug=config.slug).name == "support 2"
    key = client.api_keys.create(
        type="workspace",
        sub_type="service",
        name="app",
        description="d",
        workspace_id="ws-1",
        user_id="u-1",
        scopes=["completions.write"],
        rate_limits=[{"type": "requests", "unit": "rpm", "value": 60}],
        usage_limits={"credit_limit": 5, "type": "cost"},
        defaults={"metadata": {"team": "a"}, "config_id": config.slug},
        expires_at="2030-01-01T00:00:00Z",
    )
    client.api_keys.update(id=str(key.id), name="app 2", scopes=["completions.write", "configs.read"])
    assert client.api_keys.retrieve(id=key.id).name == "app 2"
    with pytest.raises(ControlPlaneError) as typo:
        client.virtual_keys.create(name="x", provider="openai", key=PROVIDER_KEY, customhost="http://x")
    assert typo.value.status_code == 400
    assert "customhost" in typo.value.response.json()["error"]["message"]


def test_every_provider_field_a_config_target_takes_a_virtual_key_takes() -> None:
    assert inputs.option("awsS3Bucket") == "aws_s3_bucket"
    assert inputs.option("deploymentName") == inputs.option("deployment_name") == "azure_deployment_id"
    assert inputs.option("customhost") is None


# -- slugs -----------------------------------------------------------------------------------


def test_copied_portkey_examples_work_once_created_with_their_slugs(
    server: GatewayServer, http: httpx.Client
) -> None:
    vk = created(
        http.post(
            "/v1/virtual-keys",
            json={"name": "mock", "provider": "mock", "key": PROVIDER_KEY, "slug": "openai-virtual-key"},
        )
    )
    assert vk["slug"] == "openai-virtual-key"
    config = created(
        http.post(
            "/v1/configs",
            json={"name": "c", "slug": "pc-config-abc123", "config": {"virtual_key": "openai-virtual-key"}},
        )
    )
    assert config["slug"] == "pc-config-abc123"
    with server.client() as client:
        for headers in (
            {"x-portkey-virtual-key": "openai-virtual-key"},
            {"x-portkey-config": "pc-config-abc123"},
        ):
            resp = client.post("/v1/chat/completions", headers={**ADMIN, **headers}, json=CHAT)
            assert resp.status_code == 200, resp.text
            assert resp.json()["choices"][0]["message"]["content"] == "Hello!"
            assert resp.headers["x-portkey-provider"] == "mock"
    assert http.get("/v1/virtual-keys/openai-virtual-key").json()["id"] == vk["id"]
    assert http.get("/v1/configs/pc-config-abc123").json()["id"] == config["id"]


def test_a_taken_slug_is_a_409_naming_it(http: httpx.Client) -> None:
    created(http.post("/v1/virtual-keys", json=vk_body(slug="prod")))
    message = refused(
        http.post("/v1/virtual-keys", json=vk_body(slug="prod")), 409, param="slug", code="slug_taken"
    )
    assert "'prod'" in message
    body = {"name": "c", "config": {"provider": "mock"}, "slug": "pc-one"}
    created(http.post("/v1/configs", json=body))
    assert "'pc-one'" in refused(http.post("/v1/configs", json=body), 409, code="slug_taken")
    assert len(http.get("/v1/virtual-keys").json()["data"]) == 1
    assert len(http.get("/v1/configs").json()["data"]) == 1


@pytest.mark.parametrize(
    ("slug", "hint"),
    [
        ("OpenAI-Key", "'openai-key'"),
        ("openai key", "'openai-key'"),
        ("-leading", "starting with a letter or a digit"),
        ("x" * 65, "1 to 64"),
        ("a/b", "lowercase letters"),
        ("", "1 to 64"),
        (7, "1 to 64"),
        ("3f2a1b00-0000-4000-8000-000000000000", "looks like an id"),
    ],
)
def test_a_chosen_slug_follows_the_rules(http: httpx.Client, slug: Any, hint: str) -> None:
    for path, body in (
        ("/v1/virtual-keys", vk_body(slug=slug)),
        ("/v1/configs", {"name": "c", "config": {"provider": "mock"}, "slug": slug}),
    ):
        assert hint in refused(http.post(path, json=body), 400, param="slug", code="invalid_slug")


def test_a_derived_slug_keeps_the_whole_name(http: httpx.Client) -> None:
    vk = created(http.post("/v1/virtual-keys", json=vk_body(name="OpenAI production EU-west")))["slug"]
    assert vk.startswith("openai-production-eu-west-") and len(vk) == len("openai-production-eu-west-") + 6
    config = created(
        http.post("/v1/configs", json={"name": "support fallback", "config": {"provider": "mock"}})
    )
    assert config["slug"].startswith("pc-support-fallback-")
    long_name = "a very long virtual key name " * 5
    assert len(created(http.post("/v1/virtual-keys", json=vk_body(name=long_name)))["slug"]) <= 64


def test_a_slug_nobody_has_names_the_key_whose_name_matches(
    server: GatewayServer, http: httpx.Client
) -> None:
    slug = created(http.post("/v1/virtual-keys", json=vk_body(name="openai-key")))["slug"]
    hint = f"a virtual key named 'openai-key' has the slug {slug!r}"
    with server.client() as client:
        resp = client.post(
            "/v1/chat/completions", headers={**ADMIN, "x-portkey-virtual-key": "openai-key"}, json=OPENAI_CHAT
        )
    message = refused(resp, 400, param="x-portkey-virtual-key", code="virtual_key_not_found")
    assert message.startswith("No virtual key has the slug 'openai-key'") and hint in message
    assert hint in refused(http.get("/v1/virtual-keys/openai-key"), 404, code="virtual_key_not_found")
    assert "named" not in refused(http.get("/v1/virtual-keys/anthropic-key"), 404)
    config = created(http.post("/v1/configs", json={"name": "support", "config": {"provider": "mock"}}))[
        "slug"
    ]
    message = refused(http.get("/v1/configs/support"), 404, code="config_not_found")
    assert f"a saved config named 'support' has the slug {config!r}" in message


# -- the master key --------------------------------------------------------------------------


def test_a_missing_master_key_is_one_503_on_the_admin_api_and_on_requests(
    tmp_path: Path, fake: FakeUpstream
) -> None:
    fake.on("POST", "/v1/chat/completions", Reply(body=fixture_bytes("openai/chat-completion.text.json")))
    database = f"sqlite:///{tmp_path}/catalog.db"
    with_key = GatewayServer(database_url=database, admin_key=ADMIN_KEY, master_key=MASTER_KEY).start()
    try:
        with with_key.client(headers=ADMIN) as http:
            slug = created(http.post("/v1/virtual-keys", json=vk_body(custom_host=f"{fake.url}/v1")))["slug"]
            resp = http.post(
                "/v1/chat/completions", headers={"x-portkey-virtual-key": slug}, json=OPENAI_CHAT
            )
            assert resp.status_code == 200, resp.text
    finally:
        with_key.stop()
    fake.reset()
    without = GatewayServer(database_url=database, admin_key=ADMIN_KEY).start()
    try:
        with without.client(headers=ADMIN) as http:
            answers = [
                http.post("/v1/virtual-keys", json=vk_body()),
                http.put(f"/v1/virtual-keys/{slug}", json={"note": "n"}),
                http.post("/v1/chat/completions", headers={"x-portkey-virtual-key": slug}, json=OPENAI_CHAT),
                http.post(
                    "/v1/chat/completions", headers={"x-portkey-provider": f"@{slug}"}, json=OPENAI_CHAT
                ),
            ]
            for resp in answers:
                message = refused(resp, 503, code="vault_not_configured")
                assert "master_key" in message and "CROSSROADS_MASTER_KEY" in message, message
                assert PROVIDER_KEY not in resp.text
            # What needs no master key still works.
            assert http.get(f"/v1/virtual-keys/{slug}").status_code == 200
    finally:
        without.stop()
    assert fake.requests == []


# -- budgets ---------------------------------------------------------------------------------


def test_a_budget_refusal_says_what_is_left_and_what_the_request_needs(
    server: GatewayServer, http: httpx.Client
) -> None:
    body = {"name": "budgeted", "usage_limits": {"credit_limit": 2000, "type": "tokens"}}
    key = created(http.post("/v1/api-keys/workspace/service", json=body))
    headers = {
        "x-portkey-api-key": key["key"],
        "x-portkey-provider": "mock",
        "content-type": "application/json",
    }

    def chat(max_tokens: int) -> httpx.Response:
        content = json.dumps({**CHAT, "max_tokens": max_tokens}).encode()
        with server.client() as client:
            return client.post("/v1/chat/completions", headers=headers, content=content)

    assert chat(10).status_code == 200
    used = http.get(f"/v1/api-keys/{key['id']}").json()["usage"]["current"]
    assert 0 < used < 100
    left = 2000 - used
    prompt = len(json.dumps({**CHAT, "max_tokens": 1000}).encode()) // 4
    needs = left + 5  # more than is left, less than the whole budget
    message = refused(chat(needs - prompt), 412)
    assert f"has {left} tokens left" in message, message
    assert f"needs an estimated {needs} tokens" in message, message
    assert "2000 tokens" in message and "exhausted" not in message
