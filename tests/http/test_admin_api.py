"""The admin API (Portkey's control plane) over raw HTTP, and the authentication edges around it.

The contract (../shared/reference/portkey-sdk.md §4 and §8): every response, errors included,
is `application/json` with a JSON object body and the request and trace ids; lists are
`{object: "list", total, data}`; deletes are `200 {}`; ids and slugs are strings, timestamps ISO
strings; secrets go in once and only ever come back masked. Then who may call it: open mode
(no key yet: anyone on this machine), gateway keys and their scopes, the bootstrap admin key.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from crossroads.app import create_app
from crossroads.governance.keys import SCOPES
from crossroads.settings import SettingsError, parse_settings
from tests.http.test_errors import assert_openai_error
from tests.support.gateway import GatewayServer
from tests.support.upstream import FakeUpstream, Reply, fixture_bytes

MASTER_KEY = secrets.token_hex(32)
ADMIN_KEY = "crossroads-bootstrap-admin-" + secrets.token_urlsafe(24)
ADMIN = {"x-portkey-api-key": ADMIN_KEY}
MOCK = {"x-portkey-provider": "mock"}
CHAT: dict[str, Any] = {"model": "mock-1", "messages": [{"role": "user", "content": "Hello!"}]}
CONFIG: dict[str, Any] = {"provider": "mock", "retry": {"attempts": 1}}
BAD_CONFIG: dict[str, Any] = {"strategy": {"mode": "fallback"}, "targets": [{"retri": 1}]}
PROVIDER_KEY = "sk-provider-secret-" + "q" * 24


# -- helpers ---------------------------------------------------------------------------------------


def assert_envelope(resp: httpx.Response) -> Any:
    """What every admin response carries, success or error; its JSON body."""
    assert resp.headers["content-type"] == "application/json", resp.headers
    assert resp.headers["x-portkey-request-id"]
    assert resp.headers["x-portkey-trace-id"]
    body = resp.json()
    assert isinstance(body, dict), body
    return body


def ok(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = assert_envelope(resp)
    assert "error" not in body
    return body


def error(
    resp: httpx.Response,
    status: int,
    *,
    contains: str = "",
    code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    assert_envelope(resp)
    found = assert_openai_error(resp, status, contains=contains, code=code)
    if param is not None:
        assert found["param"] == param, found
    return found


def assert_list(body: dict[str, Any]) -> list[dict[str, Any]]:
    assert body["object"] == "list"
    assert type(body["total"]) is int
    data = body["data"]
    assert isinstance(data, list) and body["total"] == len(data)
    assert all(isinstance(item, dict) for item in data)
    return data


def assert_iso(value: Any) -> None:
    assert isinstance(value, str), value
    dt.datetime.fromisoformat(value)


def assert_strings(view: dict[str, Any], *fields: str) -> None:
    for field in fields:
        assert isinstance(view[field], str) and view[field], (field, view)


def chat(http: httpx.Client, **headers: str) -> httpx.Response:
    return http.post("/v1/chat/completions", headers={**MOCK, **headers}, json=CHAT)


def new_key(http: httpx.Client, scopes: list[str] | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "test key", **fields}
    if scopes is not None:
        body["scopes"] = scopes
    return ok(http.post("/v1/api-keys/workspace/service", json=body))


def new_config(http: httpx.Client, **fields: Any) -> dict[str, Any]:
    return ok(http.post("/v1/configs", json={"name": "support", "config": CONFIG, **fields}))


def new_virtual_key(http: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {"name": "main openai", "provider": "openai", "key": PROVIDER_KEY, **fields}
    return ok(http.post("/v1/virtual-keys", json=body))


@pytest.fixture(scope="module")
def server() -> Iterator[GatewayServer]:
    """A locked gateway (bootstrap admin key set) with a vault: the contract tests share it."""
    gateway = GatewayServer(master_key=MASTER_KEY, admin_key=ADMIN_KEY).start()
    yield gateway
    gateway.stop()


@pytest.fixture
def http(server: GatewayServer) -> Iterator[httpx.Client]:
    with server.client(headers=ADMIN) as client:
        yield client


@pytest.fixture
def fresh() -> Iterator[GatewayServer]:
    """A gateway of its own, in open mode: no key, no admin key."""
    gateway = GatewayServer(master_key=MASTER_KEY).start()
    yield gateway
    gateway.stop()


# -- configs -----------------------------------------------------------------------------------------


def test_config_lifecycle(http: httpx.Client) -> None:
    created = new_config(http)
    assert created["object"] == "config"
    assert_strings(created, "id", "slug", "version_id")
    slug, config_id = created["slug"], created["id"]
    assert slug.startswith("pc-")

    by_slug = ok(http.get(f"/v1/configs/{slug}"))
    by_id = ok(http.get(f"/v1/configs/{config_id}"))
    assert by_slug == by_id
    assert by_slug["id"] == config_id and by_slug["slug"] == slug and by_slug["name"] == "support"
    assert by_slug["config"] == CONFIG
    assert by_slug["version_id"] == created["version_id"]
    assert by_slug["status"] == "active" and by_slug["object"] == "config"
    assert type(by_slug["is_default"]) is int
    assert_iso(by_slug["created_at"])
    assert_iso(by_slug["last_updated_at"])

    listed = assert_list(ok(http.get("/v1/configs")))
    mine = [c for c in listed if c["slug"] == slug]
    assert len(mine) == 1
    assert_strings(mine[0], "id", "slug", "name")

    # The SDK's update sends the slug in the body too.
    changed = {"provider": "mock", "retry": {"attempts": 3}}
    updated = ok(http.put(f"/v1/configs/{slug}", json={"slug": slug, "config": changed, "name": "renamed"}))
    assert updated["id"] == config_id and updated["slug"] == slug
    assert_strings(updated, "version_id")
    assert updated["version_id"] != created["version_id"]
    after = ok(http.get(f"/v1/configs/{slug}"))
    assert after["config"] == changed and after["name"] == "renamed"
    assert after["version"] == by_slug["version"] + 1
    assert after["version_id"] == updated["version_id"]

    versions = assert_list(ok(http.get(f"/v1/configs/{slug}/versions")))
    assert [v["version"] for v in versions] == [1, 2]
    assert [v["version_id"] for v in versions] == [created["version_id"], updated["version_id"]]
    assert [v["config"] for v in versions] == [CONFIG, changed]
    assert ok(http.get(f"/v1/configs/{config_id}/versions"))["total"] == 2

    # A change of name only is no new version.
    ok(http.put(f"/v1/configs/{config_id}", json={"name": "again"}))
    assert ok(http.get(f"/v1/configs/{slug}"))["version"] == 2

    assert ok(http.delete(f"/v1/configs/{slug}")) == {}
    error(http.get(f"/v1/configs/{slug}"), 404, contains=slug, code="config_not_found")
    assert slug not in {c["slug"] for c in assert_list(ok(http.get("/v1/configs")))}


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [
        ("is_default", 1, 1),
        ("is_default", 0, 0),
        ("isDefault", True, 1),
        ("isDefault", 1, 1),
        ("isDefault", False, 0),
    ],
)
def test_config_create_takes_both_spellings_of_is_default(
    http: httpx.Client, field: str, value: Any, stored: int
) -> None:
    slug = new_config(http, **{field: value})["slug"]
    view = ok(http.get(f"/v1/configs/{slug}"))
    assert view["is_default"] == stored and type(view["is_default"]) is int
    listed = [c for c in assert_list(ok(http.get("/v1/configs"))) if c["slug"] == slug]
    assert listed[0]["is_default"] == stored and type(listed[0]["is_default"]) is int


def test_config_update_takes_is_default_too(http: httpx.Client) -> None:
    slug = new_config(http)["slug"]
    ok(http.put(f"/v1/configs/{slug}", json={"slug": slug, "isDefault": True}))
    assert ok(http.get(f"/v1/configs/{slug}"))["is_default"] == 1
    error(http.put(f"/v1/configs/{slug}", json={"is_default": 7}), 400, param="is_default")


def test_config_may_come_as_a_json_string(http: httpx.Client) -> None:
    slug = ok(http.post("/v1/configs", json={"name": "str", "config": '{"provider": "mock"}'}))["slug"]
    assert ok(http.get(f"/v1/configs/{slug}"))["config"] == {"provider": "mock"}


def test_a_saved_config_serves_inference_by_slug_and_id(http: httpx.Client) -> None:
    created = new_config(http)
    for ref in (created["slug"], created["id"]):
        resp = http.post("/v1/chat/completions", headers={"x-portkey-config": ref}, json=CHAT)
        assert resp.status_code == 200, resp.text
        assert resp.headers["x-portkey-provider"] == "mock"


def test_a_config_that_fails_validation_is_a_400_naming_the_path(http: httpx.Client) -> None:
    found = error(
        http.post("/v1/configs", json={"name": "bad", "config": BAD_CONFIG}),
        400,
        contains="unknown key `retri` at `targets[0]`",
        code="invalid_config",
    )
    assert found["type"] == "invalid_request_error"
    error(http.post("/v1/configs", json={"name": "bad", "config": "{nope"}), 400, param="config")
    error(http.post("/v1/configs", json={"name": "bad", "config": [1]}), 400, param="config")

    slug = new_config(http)["slug"]
    error(
        http.put(f"/v1/configs/{slug}", json={"config": BAD_CONFIG}),
        400,
        contains="`targets[0]`",
        code="invalid_config",
    )
    view = ok(http.get(f"/v1/configs/{slug}"))
    assert view["version"] == 1 and view["config"] == CONFIG


# -- virtual keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "extras", "secret_values", "shown"),
    [
        (
            "openai",
            {"resourceName": "my-resource", "deploymentName": "gpt4o-prod", "apiVersion": "2024-10-21"},
            [],
            {"resourceName": "my-resource", "deploymentName": "gpt4o-prod", "apiVersion": "2024-10-21"},
        ),
        (
            "bedrock",
            {
                "awsAccessKeyId": "AKIAEXAMPLEACCESSKEY0001",
                "awsSecretAccessKey": "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY",
                "awsRegion": "eu-west-1",
            },
            ["AKIAEXAMPLEACCESSKEY0001", "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"],
            {"awsRegion": "eu-west-1"},
        ),
    ],
)
def test_virtual_key_takes_camel_case_extras_and_never_shows_secrets(
    http: httpx.Client,
    provider: str,
    extras: dict[str, str],
    secret_values: list[str],
    shown: dict[str, str],
) -> None:
    secret_values = [PROVIDER_KEY, *secret_values]
    resp = http.post(
        "/v1/virtual-keys",
        json={"name": "Prod Key", "provider": provider, "key": PROVIDER_KEY, "note": "n", **extras},
    )
    created = ok(resp)
    assert created["object"] == "virtual-key"
    assert_strings(created, "id", "slug")
    slug = created["slug"]
    assert slug.startswith("prod-key-")

    view_resp = http.get(f"/v1/virtual-keys/{slug}")
    by_id_resp = http.get(f"/v1/virtual-keys/{created['id']}")
    list_resp = http.get("/v1/virtual-keys")
    view = ok(view_resp)
    assert ok(by_id_resp) == view
    listed = [v for v in assert_list(ok(list_resp)) if v["slug"] == slug]
    assert listed == [view]

    assert view["id"] == created["id"] and view["name"] == "Prod Key" and view["note"] == "n"
    assert view["ai_provider_name"] == provider and view["object"] == "virtual-key"
    assert view["status"] == "active"
    assert_iso(view["created_at"])
    for field, value in shown.items():
        assert view["model_config"][field] == value
    masked = view["masked_api_key"]
    assert masked and masked != PROVIDER_KEY and "*" in masked
    for field in extras:
        assert field in view["model_config"]
    for text in (resp.text, view_resp.text, by_id_resp.text, list_resp.text):
        for secret in secret_values:
            assert secret not in text

    new_secret = "sk-rotated-provider-secret-" + "z" * 20
    update = http.put(f"/v1/virtual-keys/{slug}", json={"key": new_secret, "name": "Prod Key 2"})
    updated = ok(update)
    assert updated["slug"] == slug and updated["id"] == created["id"]
    after = http.get(f"/v1/virtual-keys/{slug}")
    assert ok(after)["name"] == "Prod Key 2"
    assert ok(after)["masked_api_key"] not in ("", masked)
    for text in (update.text, after.text):
        assert new_secret not in text and PROVIDER_KEY not in text

    assert ok(http.delete(f"/v1/virtual-keys/{slug}")) == {}
    error(http.get(f"/v1/virtual-keys/{slug}"), 404, contains=slug, code="virtual_key_not_found")


@pytest.mark.parametrize("spelling", ["customHost", "custom_host"])
def test_virtual_key_takes_both_spellings_of_custom_host(http: httpx.Client, spelling: str) -> None:
    slug = new_virtual_key(http, **{spelling: "http://127.0.0.1:9/v1"})["slug"]
    view = ok(http.get(f"/v1/virtual-keys/{slug}"))
    assert view["custom_host"] == "http://127.0.0.1:9/v1"
    assert spelling not in view.get("model_config", {})
    error(
        http.post(
            "/v1/virtual-keys", json={"name": "x", "provider": "openai", spelling: "http://10.9.8.7/v1"}
        ),
        400,
        param=spelling,
    )


def test_virtual_key_credentials_win_over_a_placeholder_bearer(
    http: httpx.Client, fake: FakeUpstream
) -> None:
    fake.on("POST", "/v1/chat/completions", Reply(body=fixture_bytes("openai/chat-completion.text.json")))
    slug = new_virtual_key(http, custom_host=f"{fake.url}/v1")["slug"]
    resp = http.post(
        "/v1/chat/completions",
        headers={"x-portkey-virtual-key": slug, "authorization": "Bearer placeholder"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
    )
    assert resp.status_code == 200, resp.text
    assert fake.last().headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert PROVIDER_KEY not in resp.text and PROVIDER_KEY not in str(resp.headers)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "v", "provider": "nope"}, "provider"),
        ({"provider": "openai"}, "name"),
        ({"name": "v"}, "provider"),
        ({"name": "v", "provider": "openai", "key": 5}, "key"),
        (
            {
                "name": "v",
                "provider": "openai",
                "rate_limits": [{"type": "requests", "unit": "rpw", "value": 1}],
            },
            "rate_limits",
        ),
        ({"name": "v", "provider": "openai", "usage_limits": {"credit_limit": -1}}, "usage_limits"),
        ({"name": "v", "provider": "openai", "expires_at": "next tuesday"}, "expires_at"),
        ({"name": "v", "provider": "openai", "allowed_models": "gpt-4o"}, "allowed_models"),
    ],
)
def test_bad_virtual_key_fields_are_400_naming_the_field(
    http: httpx.Client, body: dict[str, Any], param: str
) -> None:
    error(http.post("/v1/virtual-keys", json=body), 400, contains=param, param=param)


def test_a_virtual_key_provider_cannot_change(http: httpx.Client) -> None:
    slug = new_virtual_key(http)["slug"]
    error(http.put(f"/v1/virtual-keys/{slug}", json={"provider": "groq"}), 400, param="provider")


def test_virtual_keys_need_a_master_key() -> None:
    gateway = GatewayServer(admin_key=ADMIN_KEY).start()
    try:
        with gateway.client(headers=ADMIN) as http:
            resp = http.post(
                "/v1/virtual-keys", json={"name": "v", "provider": "openai", "key": PROVIDER_KEY}
            )
            found = error(resp, 503, contains="CROSSROADS_MASTER_KEY", code="vault_not_configured")
            assert PROVIDER_KEY not in resp.text and PROVIDER_KEY not in found["message"]
            assert assert_list(ok(http.get("/v1/virtual-keys"))) == []
            # The rest of the admin API works without a vault.
            new_config(http)
    finally:
        gateway.stop()


# -- API keys ----------------------------------------------------------------------------------------


def test_api_key_lifecycle(http: httpx.Client) -> None:
    # The SDK echoes type and the hyphenated sub-type in the body.
    resp = http.post(
        "/v1/api-keys/workspace/service",
        json={
            "name": "svc",
            "description": "d",
            "type": "workspace",
            "sub-type": "service",
            "scopes": ["completions.write", "configs.read"],
            "rate_limits": [{"type": "requests", "unit": "rpm", "value": 100}],
            "usage_limits": {"credit_limit": 10, "type": "cost", "periodic_reset": "monthly"},
            "defaults": {"metadata": {"team": "a"}},
            "expires_at": "2099-01-31T00:00:00Z",
        },
    )
    created = ok(resp)
    assert set(created) == {"id", "key", "object"} and created["object"] == "api-key"
    assert_strings(created, "id", "key")
    key, key_id = created["key"], created["id"]
    assert key.startswith("xr-") and len(key) >= 40

    got = http.get(f"/v1/api-keys/{key_id}")
    listed_resp = http.get("/v1/api-keys", params={"current_page": 0, "page_size": 50})
    view = ok(got)
    listed = [k for k in assert_list(ok(listed_resp)) if k["id"] == key_id]
    assert listed == [view]
    for text in (got.text, listed_resp.text):
        assert key not in text
    assert view["key"] != key and "*" in view["key"] and view["key"].startswith("xr-")
    assert view["name"] == "svc" and view["description"] == "d" and view["type"] == "workspace-service"
    assert view["scopes"] == ["completions.write", "configs.read"]
    assert view["rate_limits"] == [{"type": "requests", "unit": "rpm", "value": 100}]
    assert view["usage_limits"]["credit_limit"] == 10 and view["usage_limits"]["type"] == "cost"
    assert view["defaults"] == {"metadata": {"team": "a"}}
    assert view["status"] == "active" and view["object"] == "api-key"
    assert view["expires_at"].startswith("2099-01-31T00:00:00")
    for field in ("created_at", "last_updated_at", "expires_at"):
        assert_iso(view[field])
    assert chat(http, **{"x-portkey-api-key": key}).status_code == 200

    # The SDK's update sends the id in the body.
    assert (
        ok(http.put(f"/v1/api-keys/{key_id}", json={"id": key_id, "name": "svc2", "description": ""})) == {}
    )
    after = ok(http.get(f"/v1/api-keys/{key_id}"))
    assert after["name"] == "svc2" and "description" not in after

    assert ok(http.delete(f"/v1/api-keys/{key_id}")) == {}
    error(http.get(f"/v1/api-keys/{key_id}"), 404, contains=key_id, code="api_key_not_found")
    error(chat(http, **{"x-portkey-api-key": key}), 401, code="invalid_api_key")


def test_api_key_changes_apply_at_once(http: httpx.Client) -> None:
    created = new_key(http, ["completions.write"])
    key = {"x-portkey-api-key": created["key"]}
    assert chat(http, **key).status_code == 200
    ok(http.put(f"/v1/api-keys/{created['id']}", json={"scopes": ["virtual_keys.list"]}))
    error(chat(http, **key), 403, contains="completions.write", code="insufficient_scope")
    ok(http.put(f"/v1/api-keys/{created['id']}", json={"scopes": ["completions.write"]}))
    assert chat(http, **key).status_code == 200


def test_an_expired_key_is_refused_and_shown_expired(http: httpx.Client) -> None:
    created = new_key(http, expires_at="2020-01-01T00:00:00Z")
    error(chat(http, **{"x-portkey-api-key": created["key"]}), 401, contains="expired")
    assert ok(http.get(f"/v1/api-keys/{created['id']}"))["status"] == "expired"


@pytest.mark.parametrize("path", ["/v1/api-keys/NOT_GIVEN/NOT_GIVEN", "/v1/api-keys/workspace/NOT_GIVEN"])
def test_api_key_type_not_given_is_a_4xx(http: httpx.Client, path: str) -> None:
    resp = http.post(path, json={"name": "x", "scopes": ["completions.write"]})
    assert 400 <= resp.status_code < 500
    error(resp, resp.status_code, contains="NOT_GIVEN")


def test_rotation_keeps_the_old_key_during_the_transition(http: httpx.Client) -> None:
    created = new_key(http, ["completions.write"])
    first = created["key"]
    rotated = ok(
        http.post(f"/v1/api-keys/{created['id']}/rotate", json={"key_transition_period_ms": 3_600_000})
    )
    assert rotated["id"] == created["id"] and rotated["object"] == "api-key"
    second = rotated["key"]
    assert second.startswith("xr-") and second != first
    assert_iso(rotated["key_transition_expires_at"])
    until = dt.datetime.fromisoformat(rotated["key_transition_expires_at"])
    assert until > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
    assert chat(http, **{"x-portkey-api-key": first}).status_code == 200
    assert chat(http, **{"x-portkey-api-key": second}).status_code == 200
    shown = http.get(f"/v1/api-keys/{created['id']}")
    assert ok(shown)["key"].endswith(second[-4:])
    assert second not in shown.text and first not in shown.text

    third = ok(http.post(f"/v1/api-keys/{created['id']}/rotate", json={"key_transition_period_ms": 0}))["key"]
    error(chat(http, **{"x-portkey-api-key": second}), 401, code="invalid_api_key")
    assert chat(http, **{"x-portkey-api-key": third}).status_code == 200
    # No body means no transition.
    fourth = ok(http.post(f"/v1/api-keys/{created['id']}/rotate"))["key"]
    error(chat(http, **{"x-portkey-api-key": third}), 401, code="invalid_api_key")
    assert chat(http, **{"x-portkey-api-key": fourth}).status_code == 200

    for bad in (-1, "soon", 1.5, True, 31 * 86_400_000):
        resp = http.post(f"/v1/api-keys/{created['id']}/rotate", json={"key_transition_period_ms": bad})
        error(resp, 400, param="key_transition_period_ms")
    error(http.post("/v1/api-keys/no-such-id/rotate", json={}), 404, code="api_key_not_found")


def test_a_rotation_without_transition_ends_earlier_transitions(http: httpx.Client) -> None:
    created = new_key(http, ["completions.write"])
    first = created["key"]
    ok(http.post(f"/v1/api-keys/{created['id']}/rotate", json={"key_transition_period_ms": 3_600_000}))
    assert chat(http, **{"x-portkey-api-key": first}).status_code == 200
    ok(http.post(f"/v1/api-keys/{created['id']}/rotate", json={"key_transition_period_ms": 0}))
    error(chat(http, **{"x-portkey-api-key": first}), 401, code="invalid_api_key")


# -- validation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/v1/api-keys/workspace/service", {"name": "k", "scopez": ["completions.write"]}, "scopez"),
        ("PUT", "/v1/api-keys/{key}", {"nmae": "k"}, "nmae"),
        ("POST", "/v1/api-keys/{key}/rotate", {"transition_ms": 5}, "transition_ms"),
        ("POST", "/v1/configs", {"name": "c", "config": CONFIG, "is_defualt": 1}, "is_defualt"),
        ("PUT", "/v1/configs/{config}", {"konfig": CONFIG}, "konfig"),
    ],
)
def test_unknown_fields_are_400_naming_the_field(
    http: httpx.Client, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    path = path.format(key=new_key(http)["id"], config=new_config(http)["slug"])
    found = error(http.request(method, path, json=body), 400, contains=repr(field), param=field)
    assert "valid fields" in found["message"]


@pytest.mark.parametrize(
    ("body", "param", "contains"),
    [
        ({"rate_limits": [{"type": "requests", "unit": "rpw", "value": 10}]}, "rate_limits", "rpm"),
        ({"rate_limits": [{"type": "requests", "unit": "rpm", "value": 0}]}, "rate_limits", "rate_limits"),
        ({"rate_limits": {"type": "requests"}}, "rate_limits", "rate_limits"),
        ({"usage_limits": {"credit_limit": 0}}, "usage_limits", "credit_limit"),
        ({"usage_limits": {"credit_limit": 5, "type": "dollars"}}, "usage_limits", "usage_limits"),
        ({"usage_limits": {"credit_limit": 5, "periodic_reset": "daily"}}, "usage_limits", "usage_limits"),
        ({"scopes": "completions.write"}, "scopes", "scopes"),
        ({"scopes": ["completions.write", "admin.everything"]}, "scopes", "admin.everything"),
        ({"expires_at": "tomorrow"}, "expires_at", "ISO-8601"),
        ({"expires_at": True}, "expires_at", "expires_at"),
        ({"defaults": {"config_id": "pc-missing-000000"}}, "defaults.config_id", "pc-missing-000000"),
        ({"defaults": {"metadata": "x"}}, "defaults", "defaults"),
        ({"allowed_models": [""]}, "allowed_models", "allowed_models"),
        ({"name": ""}, "name", "name is required"),
    ],
)
def test_bad_api_key_fields_are_400_naming_the_field(
    http: httpx.Client, body: dict[str, Any], param: str, contains: str
) -> None:
    error(
        http.post("/v1/api-keys/workspace/service", json={"name": "k", **body}),
        400,
        contains=contains,
        param=param,
    )
    key_id = new_key(http)["id"]
    error(http.put(f"/v1/api-keys/{key_id}", json=body), 400, contains=contains, param=param)


def test_unknown_scopes_are_refused_and_the_valid_ones_named(http: httpx.Client) -> None:
    found = error(
        http.post("/v1/api-keys/workspace/service", json={"name": "k", "scopes": ["completions.read"]}),
        400,
        contains="completions.read",
        param="scopes",
    )
    for scope in SCOPES:
        assert scope in found["message"]


@pytest.mark.parametrize(
    ("content", "contains"),
    [(b"{not json", "not valid JSON"), (b"[1, 2]", "JSON object"), (b"", "empty")],
)
def test_bad_admin_bodies(http: httpx.Client, content: bytes, contains: str) -> None:
    headers = {"content-type": "application/json"}
    error(http.post("/v1/configs", content=content, headers=headers), 400, contains=contains)
    error(
        http.post("/v1/api-keys/workspace/service", content=content, headers=headers), 400, contains=contains
    )


def test_an_admin_body_over_1_mib_is_413(http: httpx.Client) -> None:
    body = {"name": "big", "config": {"provider": "mock", "x": "y" * (1024 * 1024)}}
    error(http.post("/v1/configs", json=body), 413, code="request_too_large")


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("GET", "/v1/configs/pc-nothing-000000", "config_not_found"),
        ("PUT", "/v1/configs/pc-nothing-000000", "config_not_found"),
        ("DELETE", "/v1/configs/pc-nothing-000000", "config_not_found"),
        ("GET", "/v1/configs/pc-nothing-000000/versions", "config_not_found"),
        ("GET", "/v1/virtual-keys/nothing-000000", "virtual_key_not_found"),
        ("PUT", "/v1/virtual-keys/nothing-000000", "virtual_key_not_found"),
        ("DELETE", "/v1/virtual-keys/nothing-000000", "virtual_key_not_found"),
        ("GET", "/v1/api-keys/00000000-0000-0000-0000-000000000000", "api_key_not_found"),
        ("PUT", "/v1/api-keys/00000000-0000-0000-0000-000000000000", "api_key_not_found"),
        ("DELETE", "/v1/api-keys/00000000-0000-0000-0000-000000000000", "api_key_not_found"),
        ("POST", "/v1/api-keys/00000000-0000-0000-0000-000000000000/rotate", "api_key_not_found"),
        ("GET", "/v1/configs/a/b/c", "unknown_url"),
        ("GET", "/v1/virtual-keys/a/versions", "unknown_url"),
    ],
)
def test_unknown_slugs_and_ids_are_404(http: httpx.Client, method: str, path: str, code: str) -> None:
    body = {"name": "x"} if method == "PUT" else None
    error(http.request(method, path, json=body), 404, code=code)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/v1/configs/{config}", {"DELETE", "GET", "PUT"}),
        ("DELETE", "/v1/configs", {"GET", "POST"}),
        ("PUT", "/v1/virtual-keys", {"GET", "POST"}),
        ("POST", "/v1/virtual-keys/{vk}", {"DELETE", "GET", "PUT"}),
        ("POST", "/v1/configs/{config}/versions", {"GET"}),
        ("DELETE", "/v1/api-keys", {"GET"}),
        ("POST", "/v1/api-keys/{key}", {"DELETE", "GET", "PUT"}),
        ("GET", "/v1/api-keys/workspace/service", {"POST"}),
        ("GET", "/v1/api-keys/{key}/rotate", {"POST"}),
        ("PATCH", "/v1/configs", {"DELETE", "GET", "POST", "PUT"}),
        ("PATCH", "/v1/api-keys/{key}", {"DELETE", "GET", "POST", "PUT"}),
    ],
)
def test_wrong_method_is_405_with_allow(http: httpx.Client, method: str, path: str, allow: set[str]) -> None:
    path = path.format(
        config=new_config(http)["slug"], vk=new_virtual_key(http)["slug"], key=new_key(http)["id"]
    )
    resp = http.request(method, path, json={})
    error(resp, 405, code="method_not_allowed")
    assert {m.strip() for m in resp.headers["allow"].split(",")} == allow


def test_the_unprefixed_aliases_work(http: httpx.Client) -> None:
    config = ok(http.post("/configs", json={"name": "alias", "config": CONFIG}))
    assert ok(http.get(f"/configs/{config['slug']}"))["id"] == config["id"]
    assert config["slug"] in {c["slug"] for c in assert_list(ok(http.get("/configs")))}
    assert ok(http.get(f"/configs/{config['slug']}/versions"))["total"] == 1
    assert ok(http.get("/configs/"))["object"] == "list"

    vk = ok(http.post("/virtual-keys", json={"name": "alias", "provider": "openai", "key": PROVIDER_KEY}))
    assert ok(http.get(f"/virtual-keys/{vk['slug']}"))["id"] == vk["id"]
    assert vk["slug"] in {v["slug"] for v in assert_list(ok(http.get("/virtual-keys")))}

    key = ok(http.post("/api-keys/workspace/user", json={"name": "alias"}))
    assert ok(http.get(f"/api-keys/{key['id']}"))["type"] == "workspace-user"
    assert ok(http.delete(f"/api-keys/{key['id']}")) == {}
    assert ok(http.delete(f"/virtual-keys/{vk['slug']}")) == {}
    assert ok(http.delete(f"/configs/{config['id']}")) == {}


def test_the_trace_id_is_echoed_on_admin_answers(http: httpx.Client) -> None:
    trace = {"x-portkey-trace-id": "trace-admin-123"}
    good = http.get("/v1/configs", headers=trace)
    bad = http.get("/v1/configs/pc-nothing-000000", headers=trace)
    for resp in (good, bad):
        assert resp.headers["x-portkey-trace-id"] == "trace-admin-123"
    assert good.headers["x-portkey-request-id"] != bad.headers["x-portkey-request-id"]


@pytest.mark.parametrize(
    ("create", "body", "listing"),
    [
        ("/v1/api-keys/workspace/service", {"expires_at": "9999-12-31T23:59:59-05:00"}, "/v1/api-keys"),
        ("/v1/api-keys/workspace/service", {"expires_at": 10**15}, "/v1/api-keys"),
        ("/v1/api-keys/workspace/service", {"expires_at": -(10**12)}, "/v1/api-keys"),
        ("/v1/api-keys/workspace/service", {"expires_at": 1e308}, "/v1/api-keys"),
        ("/v1/virtual-keys", {"expires_at": 10**15, "provider": "openai"}, "/v1/virtual-keys"),
    ],
)
def test_an_out_of_range_expiry_is_refused(create: str, body: dict[str, Any], listing: str) -> None:
    # Once stored, such a date broke retrieve and the whole listing with a 500: a gateway of its own.
    gateway = GatewayServer(admin_key=ADMIN_KEY, master_key=MASTER_KEY).start()
    try:
        with gateway.client(headers=ADMIN) as http:
            error(
                http.post(create, json={"name": "k", **body}), 400, contains="expires_at", param="expires_at"
            )
            assert assert_list(ok(http.get(listing))) == []
            ident = ok(http.post(create, json={"name": "k", **body, "expires_at": "2999-12-31T00:00:00Z"}))[
                "id"
            ]
            assert ok(http.get(f"{listing}/{ident}"))["expires_at"].startswith("2999-12-31T00:00:00")
            assert len(assert_list(ok(http.get(listing)))) == 1
            update = f"{listing}/{ident}"
            error(http.put(update, json={"expires_at": body["expires_at"]}), 400, param="expires_at")
            assert len(assert_list(ok(http.get(listing)))) == 1
    finally:
        gateway.stop()


# -- open mode ------------------------------------------------------------------------------------------


def test_open_mode_until_the_first_key(fresh: GatewayServer) -> None:
    with fresh.client() as http:
        assert chat(http).status_code == 200
        assert assert_list(ok(http.get("/v1/api-keys"))) == []
        created = new_key(http, ["completions.write", "api_keys.list"])

        error(chat(http), 401, contains="x-portkey-api-key", code="missing_api_key")
        error(http.get("/v1/api-keys"), 401, code="missing_api_key")
        error(http.post("/v1/configs", json={"name": "c", "config": CONFIG}), 401)
        error(chat(http, **{"x-portkey-api-key": "xr-" + "n" * 43}), 401, code="invalid_api_key")

        key = {"x-portkey-api-key": created["key"]}
        assert chat(http, **key).status_code == 200
        assert ok(http.get("/v1/api-keys", headers=key))["total"] == 1


def test_the_open_mode_warning_gives_advice_that_works(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="crossroads")
    gateway = GatewayServer(master_key=MASTER_KEY).start()
    try:
        warning = next(r.getMessage() for r in caplog.records if "OPEN MODE" in r.getMessage())
        path = re.search(r"POST (/v1/\S+)", warning)
        body = re.search(r"(\{.*\})", warning)
        assert path is not None and body is not None, warning
        with gateway.client() as http:
            error(http.post("/v1/api-keys", json=json.loads(body[1])), 405, contains=path[1])
            created = ok(http.post(path[1], json=json.loads(body[1])))
            key = {"x-portkey-api-key": created["key"]}
            error(chat(http), 401, code="missing_api_key")  # open mode is over
            assert ok(http.get("/v1/api-keys", headers=key))["total"] == 1  # an admin key
            assert chat(http, **key).status_code == 200
    finally:
        gateway.stop()


def test_deleting_the_last_key_does_not_reopen_the_gateway(fresh: GatewayServer) -> None:
    with fresh.client() as http:
        created = new_key(http, ["completions.write", "api_keys.delete"])
        error(chat(http), 401, code="missing_api_key")
        ok(http.delete(f"/v1/api-keys/{created['id']}", headers={"x-portkey-api-key": created["key"]}))
        error(chat(http), 401, code="missing_api_key")


def test_require_api_key_locks_even_without_keys() -> None:
    gateway = GatewayServer(require_api_key=True).start()
    try:
        with gateway.client() as http:
            error(chat(http), 401, code="missing_api_key")
            error(chat(http, **{"x-portkey-api-key": ""}), 401, code="missing_api_key")
            error(
                chat(http, authorization=f"Bearer {PROVIDER_KEY}"),
                401,
                contains="x-portkey-api-key",
                code="missing_api_key",
            )
            error(http.get("/v1/api-keys"), 401, code="missing_api_key")
    finally:
        gateway.stop()


async def test_open_admin_api_answers_only_loopback_clients() -> None:
    app = create_app(parse_settings({"database_url": "sqlite:///:memory:"}))
    await app._on_startup()
    try:
        far = httpx.ASGITransport(app=app, client=("10.1.2.3", 5555))
        async with httpx.AsyncClient(transport=far, base_url="http://gateway") as http:
            resp = await http.get("/v1/api-keys")
            error(resp, 401, contains="another machine", code="missing_api_key")
            resp = await http.post("/v1/api-keys/workspace/service", json={"name": "k"})
            error(resp, 401, code="missing_api_key")
            resp = await http.post("/v1/configs", json={"name": "c", "config": CONFIG})
            error(resp, 401, code="missing_api_key")
            # A key that is not ours (a Portkey cloud key) makes no difference.
            resp = await http.get("/v1/configs", headers={"x-portkey-api-key": "pk-cloud-key"})
            error(resp, 401, code="missing_api_key")
            # Inference itself is open to everyone in open mode.
            resp = await http.post("/v1/chat/completions", headers=MOCK, json=CHAT)
            assert resp.status_code == 200, resp.text

        near = httpx.ASGITransport(app=app, client=("127.0.0.1", 5555))
        async with httpx.AsyncClient(transport=near, base_url="http://gateway") as http:
            assert assert_list(ok(await http.get("/v1/api-keys"))) == []
            created = ok(
                await http.post(
                    "/v1/api-keys/workspace/service", json={"name": "k", "scopes": ["api_keys.list"]}
                )
            )

        async with httpx.AsyncClient(transport=far, base_url="http://gateway") as http:
            # Once a key exists, the key is what counts, wherever the caller is.
            listed = ok(await http.get("/v1/api-keys", headers={"x-portkey-api-key": created["key"]}))
            assert listed["total"] == 1
            error(await http.post("/v1/chat/completions", headers=MOCK, json=CHAT), 401)
    finally:
        await app._on_shutdown()


def test_an_empty_portkey_api_key_header_is_tolerated_in_open_mode(fresh: GatewayServer) -> None:
    with fresh.client() as http:
        assert chat(http, **{"x-portkey-api-key": ""}).status_code == 200
        assert ok(http.get("/v1/configs", headers={"x-portkey-api-key": ""}))["total"] == 0
        created = new_key(http, ["completions.write"])
        # Once keys are needed, an empty header falls back to the bearer token.
        headers = {"x-portkey-api-key": "", "authorization": f"Bearer {created['key']}"}
        assert chat(http, **headers).status_code == 200
        error(chat(http, **{"x-portkey-api-key": ""}), 401, code="missing_api_key")


def test_open_mode_passes_a_provider_bearer_token_upstream(fresh: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/chat/completions", Reply(body=fixture_bytes("openai/chat-completion.text.json")))
    headers = {
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": f"{fake.url}/v1",
        "authorization": "Bearer sk-openai-user-key-1234567890",
    }
    with fresh.client() as http:
        resp = http.post("/v1/chat/completions", headers=headers, json={**CHAT, "model": "gpt-4o-mini"})
    assert resp.status_code == 200, resp.text
    assert fake.last().headers["authorization"] == "Bearer sk-openai-user-key-1234567890"


def test_a_bearer_gateway_key_authenticates_and_is_not_forwarded(
    fresh: GatewayServer, fake: FakeUpstream
) -> None:
    fake.on("POST", "/v1/chat/completions", Reply(body=fixture_bytes("openai/chat-completion.text.json")))
    body = {**CHAT, "model": "gpt-4o-mini"}
    upstream = {"x-portkey-provider": "openai", "x-portkey-custom-host": f"{fake.url}/v1"}
    with fresh.client() as http:
        key = new_key(http, ["completions.write"])["key"]
        resp = http.post(
            "/v1/chat/completions", headers={**upstream, "authorization": f"Bearer {key}"}, json=body
        )
        assert resp.status_code == 200, resp.text
        seen = fake.last()
        assert "authorization" not in seen.headers
        assert key not in str(seen.headers) and key.encode() not in seen.body

        # The createHeaders pattern: the gateway key in its header, the provider key as the bearer.
        headers = {
            **upstream,
            "x-portkey-api-key": key,
            "authorization": "Bearer sk-openai-user-key-1234567890",
        }
        assert http.post("/v1/chat/completions", headers=headers, json=body).status_code == 200
        assert fake.last().headers["authorization"] == "Bearer sk-openai-user-key-1234567890"
        assert key not in str(fake.last().headers)

        # With keys required, a provider key alone is no gateway key.
        headers = {**upstream, "authorization": "Bearer sk-openai-user-key-1234567890"}
        error(http.post("/v1/chat/completions", headers=headers, json=body), 401, code="missing_api_key")
    assert len(fake.requests) == 2


# -- scopes ---------------------------------------------------------------------------------------------


def admin_routes(http: httpx.Client) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every admin operation once, against objects that exist."""
    config = new_config(http)["slug"]
    vk = new_virtual_key(http)["slug"]
    key = new_key(http)["id"]
    return [
        ("GET", "/v1/api-keys", None),
        ("POST", "/v1/api-keys/workspace/service", {"name": "k"}),
        ("POST", "/v1/api-keys/organisation/user", {"name": "k"}),
        ("GET", f"/v1/api-keys/{key}", None),
        ("PUT", f"/v1/api-keys/{key}", {"name": "k2"}),
        ("POST", f"/v1/api-keys/{key}/rotate", {"key_transition_period_ms": 0}),
        ("DELETE", f"/v1/api-keys/{key}", None),
        ("GET", "/v1/virtual-keys", None),
        ("POST", "/v1/virtual-keys", {"name": "v", "provider": "openai", "key": PROVIDER_KEY}),
        ("GET", f"/v1/virtual-keys/{vk}", None),
        ("PUT", f"/v1/virtual-keys/{vk}", {"note": "x"}),
        ("DELETE", f"/v1/virtual-keys/{vk}", None),
        ("GET", "/v1/configs", None),
        ("POST", "/v1/configs", {"name": "c", "config": CONFIG}),
        ("GET", f"/v1/configs/{config}", None),
        ("PUT", f"/v1/configs/{config}", {"name": "c2"}),
        ("GET", f"/v1/configs/{config}/versions", None),
        ("DELETE", f"/v1/configs/{config}", None),
        ("GET", "/configs", None),
    ]


def test_an_inference_key_gets_403_on_every_admin_route(http: httpx.Client) -> None:
    key = new_key(http, ["completions.write"])["key"]
    routes = admin_routes(http)
    before = ok(http.get("/v1/api-keys"))["total"], ok(http.get("/v1/configs"))["total"]
    for method, path, body in routes:
        for headers in (
            {"x-portkey-api-key": key},
            {"x-portkey-api-key": "", "authorization": f"Bearer {key}"},
        ):
            resp = http.request(method, path, json=body, headers=headers)
            error(resp, 403, contains="scope", code="insufficient_scope")
    # Nothing was changed by the refused calls.
    assert (ok(http.get("/v1/api-keys"))["total"], ok(http.get("/v1/configs"))["total"]) == before
    for _, path, _ in routes:
        if path.startswith("/v1/") and path.count("/") == 3 and "api-keys/" not in path:
            assert http.get(path).status_code == 200, path
    assert chat(http, **{"x-portkey-api-key": key}).status_code == 200


def test_an_admin_only_key_may_do_only_its_operations(http: httpx.Client) -> None:
    key = {"x-portkey-api-key": new_key(http, ["virtual_keys.list"])["key"]}
    routes = admin_routes(http)
    error(chat(http, **key), 403, contains="completions.write", code="insufficient_scope")
    assert ok(http.get("/v1/virtual-keys", headers=key))["total"] >= 1
    assert ok(http.get("/virtual-keys", headers=key))["object"] == "list"
    for method, path, body in routes:
        if (method, path) == ("GET", "/v1/virtual-keys"):
            continue
        resp = http.request(method, path, json=body, headers=key)
        error(resp, 403, code="insufficient_scope")


def test_scopes_map_to_operations(http: httpx.Client) -> None:
    config = new_config(http)["slug"]
    headers = {"x-portkey-api-key": new_key(http, ["configs.read", "configs.update"])["key"]}
    assert ok(http.get(f"/v1/configs/{config}", headers=headers))["slug"] == config
    assert ok(http.get(f"/v1/configs/{config}/versions", headers=headers))["total"] == 1
    ok(http.put(f"/v1/configs/{config}", json={"name": "n"}, headers=headers))
    error(http.get("/v1/configs", headers=headers), 403, contains="configs.list")
    error(http.delete(f"/v1/configs/{config}", headers=headers), 403, contains="configs.delete")
    error(http.post("/v1/configs", json={"name": "c", "config": CONFIG}, headers=headers), 403)


def test_the_bootstrap_admin_key_can_do_everything(http: httpx.Client) -> None:
    for method, path, body in admin_routes(http):
        ok(http.request(method, path, json=body))
    assert chat(http).status_code == 200
    assert ok(
        http.get("/v1/api-keys", headers={"authorization": f"Bearer {ADMIN_KEY}", "x-portkey-api-key": ""})
    )
    for wrong in (ADMIN_KEY[:-1] + ("x" if ADMIN_KEY[-1] != "x" else "y"), ADMIN_KEY + "0"):
        error(http.get("/v1/api-keys", headers={"x-portkey-api-key": wrong}), 401, code="invalid_api_key")
        error(chat(http, **{"x-portkey-api-key": wrong}), 401, code="invalid_api_key")
    error(http.get("/v1/api-keys", headers={"x-portkey-api-key": ""}), 401, code="missing_api_key")


@pytest.mark.parametrize("length", [1, 16, 31])
def test_a_short_admin_key_stops_the_app(length: int) -> None:
    settings = parse_settings({"admin_key": "k" * length, "database_url": "sqlite:///:memory:"})
    with pytest.raises(SettingsError, match="admin_key must be at least 32 characters"):
        create_app(settings)


def test_a_32_character_admin_key_is_enough() -> None:
    create_app(parse_settings({"admin_key": "k" * 32, "database_url": "sqlite:///:memory:"}))
