"""`crossroads keys | virtual-keys | configs`: the admin operations from the command line, run as
real processes on a real SQLite catalog, and what they create used by a running gateway."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from crossroads.governance.keys import SCOPES
from tests.support.gateway import CROSSROADS, GatewayProcess
from tests.support.upstream import FakeUpstream, Reply, fixture_bytes

MASTER_KEY = secrets.token_hex(32)
CHAT: dict[str, Any] = {"model": "mock-1", "messages": [{"role": "user", "content": "Hello!"}]}
GOOD_CONFIG = '{"provider": "mock", "retry": {"attempts": 1}}'


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CROSSROADS_")}
    return {
        **clean,
        "CROSSROADS_DATABASE_URL": f"sqlite:///{tmp_path}/c.db",
        "CROSSROADS_MASTER_KEY": MASTER_KEY,
    }


def crossroads(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CROSSROADS), *args], capture_output=True, text=True, timeout=60, check=False, env=env
    )


def succeeds(env: dict[str, str], *args: str) -> dict[str, Any]:
    """The command's JSON output (it must exit 0)."""
    result = crossroads(env, *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    assert isinstance(out, dict)
    return out


def fails(env: dict[str, str], *args: str) -> str:
    """The command's message (it must exit non-zero, print nothing on stdout and no traceback)."""
    result = crossroads(env, *args)
    assert result.returncode != 0, result.stdout
    assert result.stdout == ""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip()
    return result.stderr


def listed(out: dict[str, Any]) -> list[dict[str, Any]]:
    assert out["object"] == "list"
    data: list[dict[str, Any]] = out["data"]
    assert out["total"] == len(data)
    return data


def test_keys_lifecycle(env: dict[str, str]) -> None:
    created = succeeds(env, "keys", "create", "--name", "svc")
    assert set(created) == {"id", "key", "object"} and created["object"] == "api-key"
    key, key_id = created["key"], created["id"]
    assert key.startswith("xr-")

    listing = crossroads(env, "keys", "list")
    assert listing.returncode == 0 and key not in listing.stdout
    assert [k["id"] for k in listed(json.loads(listing.stdout))] == [key_id]
    got = succeeds(env, "keys", "get", key_id)
    assert got["name"] == "svc" and got["type"] == "workspace-service"
    assert got["scopes"] == ["completions.write"]  # the default: inference only
    assert got["key"] != key and got["key"].endswith(key[-4:])

    body = json.dumps(
        {
            "name": "svc2",
            "scopes": ["completions.write", "configs.read"],
            "rate_limits": [{"type": "requests", "unit": "rpm", "value": 5}],
        }
    )
    assert succeeds(env, "keys", "update", key_id, "--json", body) == {}
    got = succeeds(env, "keys", "get", key_id)
    assert got["name"] == "svc2" and got["scopes"] == ["completions.write", "configs.read"]
    assert got["rate_limits"] == [{"type": "requests", "unit": "rpm", "value": 5}]

    rotated = succeeds(env, "keys", "rotate", key_id)
    assert rotated["id"] == key_id and rotated["key"].startswith("xr-") and rotated["key"] != key
    assert succeeds(env, "keys", "get", key_id)["key"].endswith(rotated["key"][-4:])

    assert succeeds(env, "keys", "delete", key_id) == {}
    assert "No API key has the id" in fails(env, "keys", "get", key_id)
    assert listed(succeeds(env, "keys", "list")) == []


def test_keys_create_with_every_scope_type_and_body(env: dict[str, str], tmp_path: Path) -> None:
    admin = succeeds(env, "keys", "create", "--name", "admin", "--scopes", "all")
    assert sorted(succeeds(env, "keys", "get", admin["id"])["scopes"]) == sorted(SCOPES)

    some = succeeds(
        env, "keys", "create", "--name", "two", "--scopes", "completions.write, virtual_keys.list"
    )
    assert succeeds(env, "keys", "get", some["id"])["scopes"] == ["completions.write", "virtual_keys.list"]

    path = tmp_path / "key.json"
    path.write_text(
        json.dumps({"name": "from-file", "description": "d", "defaults": {"metadata": {"t": "a"}}})
    )
    user = succeeds(
        env, "keys", "create", "--json", f"@{path}", "--type", "organisation", "--sub-type", "user"
    )
    got = succeeds(env, "keys", "get", user["id"])
    assert got["name"] == "from-file" and got["type"] == "organisation-user"
    assert got["defaults"] == {"metadata": {"t": "a"}}
    assert len(listed(succeeds(env, "keys", "list"))) == 3


def test_virtual_keys_lifecycle_never_shows_the_secret(env: dict[str, str]) -> None:
    secret = "sk-cli-provider-secret-" + secrets.token_hex(12)
    env = {**env, "MY_PROVIDER_KEY": secret}
    runs = [
        crossroads(
            env,
            "virtual-keys",
            "create",
            "--name",
            "Main",
            "--provider",
            "openai",
            "--key-env",
            "MY_PROVIDER_KEY",
        )
    ]
    assert runs[0].returncode == 0, runs[0].stderr
    created = json.loads(runs[0].stdout)
    assert created["object"] == "virtual-key"
    slug = created["slug"]
    assert slug.startswith("main-")

    runs += [crossroads(env, "virtual-keys", "list"), crossroads(env, "virtual-keys", "get", slug)]
    assert [v["slug"] for v in listed(json.loads(runs[1].stdout))] == [slug]
    got = json.loads(runs[2].stdout)
    assert got["id"] == created["id"] and got["ai_provider_name"] == "openai"
    assert got["masked_api_key"] and got["masked_api_key"] != secret
    assert succeeds(env, "virtual-keys", "get", created["id"]) == got

    runs.append(
        crossroads(
            env, "virtual-keys", "update", slug, "--json", '{"note": "rotated", "awsRegion": "eu-west-1"}'
        )
    )
    assert json.loads(runs[-1].stdout)["slug"] == slug
    got = succeeds(env, "virtual-keys", "get", slug)
    assert got["note"] == "rotated" and got["model_config"] == {"awsRegion": "eu-west-1"}
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert secret not in run.stdout and secret not in run.stderr

    assert succeeds(env, "virtual-keys", "delete", slug) == {}
    assert slug in fails(env, "virtual-keys", "get", slug)
    assert listed(succeeds(env, "virtual-keys", "list")) == []


def test_configs_lifecycle(env: dict[str, str], tmp_path: Path) -> None:
    created = succeeds(env, "configs", "create", "--name", "support", "--config", GOOD_CONFIG)
    assert created["object"] == "config" and created["slug"].startswith("pc-")
    slug = created["slug"]
    got = succeeds(env, "configs", "get", slug)
    assert got["config"] == json.loads(GOOD_CONFIG) and got["version"] == 1
    assert succeeds(env, "configs", "get", created["id"]) == got

    path = tmp_path / "config.json"
    path.write_text('{"provider": "mock"}')
    other = succeeds(env, "configs", "create", "--name", "file", "--config", f"@{path}")
    assert succeeds(env, "configs", "get", other["slug"])["config"] == {"provider": "mock"}
    assert {c["slug"] for c in listed(succeeds(env, "configs", "list"))} == {slug, other["slug"]}

    updated = succeeds(
        env, "configs", "update", slug, "--json", '{"config": {"provider": "mock"}, "is_default": 1}'
    )
    assert updated["version_id"] != created["version_id"]
    got = succeeds(env, "configs", "get", slug)
    assert got["version"] == 2 and got["is_default"] == 1 and got["config"] == {"provider": "mock"}
    versions = listed(succeeds(env, "configs", "versions", slug))
    assert [v["version"] for v in versions] == [1, 2]

    assert succeeds(env, "configs", "delete", slug) == {}
    assert slug in fails(env, "configs", "get", slug)


def test_a_bad_config_is_refused_with_its_path(env: dict[str, str]) -> None:
    bad = '{"strategy": {"mode": "fallback"}, "targets": [{"provider": "mock"}, {"retri": 1}]}'
    message = fails(env, "configs", "create", "--name", "bad", "--config", bad)
    assert "unknown key `retri` at `targets[1]`" in message
    slug = succeeds(env, "configs", "create", "--name", "good", "--config", GOOD_CONFIG)["slug"]
    message = fails(env, "configs", "update", slug, "--json", json.dumps({"config": json.loads(bad)}))
    assert "`targets[1]`" in message
    assert succeeds(env, "configs", "get", slug)["version"] == 1
    assert len(listed(succeeds(env, "configs", "list"))) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["keys", "get", "nope"], "No API key has the id 'nope'"),
        (["keys", "rotate", "nope"], "No API key has the id 'nope'"),
        (["keys", "delete", "nope"], "No API key has the id 'nope'"),
        (["keys", "create"], "name is required"),
        (["keys", "create", "--name", "k", "--scopes", "completions.write,bogus.scope"], "bogus.scope"),
        (["keys", "create", "--name", "k", "--json", '{"scopez": []}'], "scopez"),
        (["keys", "create", "--name", "k", "--json", '{"expires_at": "later"}'], "expires_at"),
        (["keys", "update", "x"], "--json"),
        (["keys", "update", "x", "--json", "[1]"], "JSON object"),
        (["keys", "create", "--json", "@/nonexistent/body.json"], "cannot read"),
        (["keys", "frobnicate"], "invalid choice"),
        (["configs", "create", "--name", "c"], "config must be a JSON object"),
        (["configs", "get", "pc-nothing-000000"], "pc-nothing-000000"),
        (["configs", "versions", "pc-nothing-000000"], "pc-nothing-000000"),
        (["virtual-keys", "create", "--name", "v", "--provider", "nope"], "not a provider"),
        (["virtual-keys", "create", "--provider", "openai"], "name is required"),
        (
            [
                "virtual-keys",
                "create",
                "--name",
                "v",
                "--provider",
                "openai",
                "--key-env",
                "CR_TEST_UNSET_VAR",
            ],
            "CR_TEST_UNSET_VAR is not set",
        ),
        (["virtual-keys", "update", "nothing-000000", "--json", "{}"], "nothing-000000"),
        # Unknown fields in a --json body, at the top or inside, for every resource.
        (
            [
                "virtual-keys",
                "create",
                "--name",
                "v",
                "--provider",
                "openai",
                "--json",
                '{"customhost": "x"}',
            ],
            "did you mean 'customHost'",
        ),
        (
            [
                "virtual-keys",
                "create",
                "--name",
                "v",
                "--provider",
                "openai",
                "--json",
                '{"model_config": {"x": 1}}',
            ],
            "'model_config.x'",
        ),
        (["keys", "create", "--name", "k", "--json", '{"usage_limits": {"credit_limt": 1}}'], "credit_limt"),
        (
            ["keys", "create", "--name", "k", "--json", '{"rate_limits": [{"unit": "rpm", "valu": 1}]}'],
            "valu",
        ),
        (["keys", "create", "--name", "k", "--json", '{"rotation_policy": {}}'], "rotate"),
        (
            ["configs", "create", "--name", "c", "--config", GOOD_CONFIG, "--json", '{"is_defualt": 1}'],
            "is_defualt",
        ),
        (["configs", "create", "--name", "c", "--config", '{"provider": "mock", "retri": 1}'], "retri"),
        # A flag and the --json body saying different things.
        (["keys", "create", "--name", "a", "--json", '{"name": "b"}'], "--name and the --json body's 'name'"),
        (
            [
                "virtual-keys",
                "create",
                "--name",
                "v",
                "--provider",
                "openai",
                "--json",
                '{"provider": "groq"}',
            ],
            "--provider",
        ),
    ],
)
def test_errors_exit_non_zero_with_a_message(env: dict[str, str], args: list[str], message: str) -> None:
    assert message in fails(env, *args)
    assert listed(succeeds(env, "keys", "list")) == []


def test_updates_refuse_unknown_fields_and_change_nothing(env: dict[str, str]) -> None:
    key = succeeds(env, "keys", "create", "--name", "k")["id"]
    slug = succeeds(env, "virtual-keys", "create", "--name", "v", "--provider", "openai")["slug"]
    config = succeeds(env, "configs", "create", "--name", "c", "--config", GOOD_CONFIG)["slug"]
    assert "'nmae'" in fails(env, "keys", "update", key, "--json", '{"nmae": "x"}')
    assert "'notes'" in fails(env, "virtual-keys", "update", slug, "--json", '{"notes": "x"}')
    assert "'stauts'" in fails(env, "configs", "update", config, "--json", '{"stauts": "archived"}')
    assert succeeds(env, "keys", "get", key)["name"] == "k"
    assert "note" not in succeeds(env, "virtual-keys", "get", slug)
    assert succeeds(env, "configs", "get", config)["status"] == "active"


def test_slugs_can_be_chosen_from_the_command_line(env: dict[str, str]) -> None:
    vk = succeeds(
        env,
        "virtual-keys",
        "create",
        "--name",
        "v",
        "--provider",
        "mock",
        "--json",
        '{"slug": "openai-virtual-key"}',
    )
    assert vk["slug"] == "openai-virtual-key"
    body = '{"slug": "pc-config-abc123"}'
    assert succeeds(env, "configs", "create", "--name", "c", "--config", GOOD_CONFIG, "--json", body)[
        "slug"
    ] == ("pc-config-abc123")
    assert "'pc-config-abc123' already exists" in fails(
        env, "configs", "create", "--name", "c", "--config", GOOD_CONFIG, "--json", body
    )


def test_every_command_says_which_database_it_opened(env: dict[str, str]) -> None:
    result = crossroads(env, "keys", "list")
    assert result.returncode == 0, result.stderr
    assert f"database {env['CROSSROADS_DATABASE_URL']}" in result.stderr
    assert json.loads(result.stdout)["total"] == 0  # stdout is the JSON alone


def test_the_default_database_is_the_same_wherever_the_cli_runs(env: dict[str, str], tmp_path: Path) -> None:
    env = {k: v for k, v in env.items() if k != "CROSSROADS_DATABASE_URL"}
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    made = subprocess.run(
        [str(CROSSROADS), "keys", "create", "--name", "k"],
        cwd=one,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    database = tmp_path / "data" / "crossroads" / "crossroads.db"
    assert f"database sqlite:///{database}" in made.stderr
    assert database.is_file() and (database.parent.stat().st_mode & 0o777) == 0o700
    assert list(one.iterdir()) == []  # nothing in the working directory
    seen = subprocess.run(
        [str(CROSSROADS), "keys", "list"], cwd=two, env=env, capture_output=True, text=True, check=False
    )
    assert [k["name"] for k in listed(json.loads(seen.stdout))] == ["k"]

    # Without XDG_DATA_HOME: ~/.local/share/crossroads.
    home = {k: v for k, v in env.items() if k != "XDG_DATA_HOME"} | {"HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [str(CROSSROADS), "keys", "list"], cwd=two, env=home, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "home" / ".local" / "share" / "crossroads" / "crossroads.db").is_file()

    # A home where nothing can be created: a message naming the settings to use instead.
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    message = fails({**home, "HOME": str(blocked)}, "keys", "list")
    assert "CROSSROADS_DATABASE_URL" in message and "XDG_DATA_HOME" in message


def test_settings_errors_exit_2(env: dict[str, str]) -> None:
    result = crossroads({**env, "CROSSROADS_WORKERZ": "2"}, "keys", "list")
    assert result.returncode == 2 and "CROSSROADS_WORKERZ" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    result = crossroads({**env, "CROSSROADS_MASTER_KEY": "short"}, "virtual-keys", "list")
    assert result.returncode == 2 and "master_key" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_virtual_keys_need_a_master_key(env: dict[str, str]) -> None:
    env = {k: v for k, v in env.items() if k != "CROSSROADS_MASTER_KEY"}
    env["MY_PROVIDER_KEY"] = "sk-no-vault-" + "x" * 20
    message = fails(
        env, "virtual-keys", "create", "--name", "v", "--provider", "openai", "--key-env", "MY_PROVIDER_KEY"
    )
    assert "CROSSROADS_MASTER_KEY" in message and env["MY_PROVIDER_KEY"] not in message
    assert listed(succeeds(env, "virtual-keys", "list")) == []


def test_an_unusable_database_is_a_message_not_a_traceback(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "CROSSROADS_DATABASE_URL": f"sqlite:///{tmp_path}/no/such/dir/c.db"}
    assert "database" in fails(env, "keys", "list").lower()


def test_invalid_json_in_config_names_the_config_option(env: dict[str, str]) -> None:
    message = fails(env, "configs", "create", "--name", "c", "--config", "{not json")
    assert "--config" in message


def test_cli_objects_serve_a_running_gateway(env: dict[str, str], fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/chat/completions", Reply(body=fixture_bytes("openai/chat-completion.text.json")))
    inference = succeeds(env, "keys", "create", "--name", "app")["key"]
    admin = succeeds(env, "keys", "create", "--name", "ops", "--scopes", "all")["key"]
    config = succeeds(env, "configs", "create", "--name", "mock", "--config", GOOD_CONFIG)["slug"]
    secret = "sk-cli-vault-secret-" + secrets.token_hex(12)
    vk = succeeds(
        {**env, "MY_PROVIDER_KEY": secret},
        "virtual-keys",
        "create",
        "--name",
        "fake",
        "--provider",
        "openai",
        "--key-env",
        "MY_PROVIDER_KEY",
        "--json",
        json.dumps({"custom_host": f"{fake.url}/v1"}),
    )["slug"]

    gateway = GatewayProcess(
        env={
            "CROSSROADS_DATABASE_URL": env["CROSSROADS_DATABASE_URL"],
            "CROSSROADS_MASTER_KEY": MASTER_KEY,
            "CROSSROADS_REQUIRE_API_KEY": "true",
        }
    ).start()
    try:
        with httpx.Client(base_url=gateway.url, timeout=10) as http:
            mock = {"x-portkey-provider": "mock"}
            no_key = http.post("/v1/chat/completions", headers=mock, json=CHAT)
            assert no_key.status_code == 401 and no_key.json()["error"]["code"] == "missing_api_key"
            resp = http.post(
                "/v1/chat/completions", headers={**mock, "x-portkey-api-key": inference}, json=CHAT
            )
            assert resp.status_code == 200, resp.text
            resp = http.post(
                "/v1/chat/completions", headers={**mock, "authorization": f"Bearer {inference}"}, json=CHAT
            )
            assert resp.status_code == 200, resp.text
            # Only the key and the saved config's slug.
            headers = {"x-portkey-api-key": inference, "x-portkey-config": config}
            resp = http.post("/v1/chat/completions", headers=headers, json=CHAT)
            assert resp.status_code == 200, resp.text
            assert resp.headers["x-portkey-provider"] == "mock"
            # The virtual key's credentials, sealed by the CLI, opened by the gateway.
            headers = {"x-portkey-api-key": inference, "x-portkey-virtual-key": vk}
            resp = http.post("/v1/chat/completions", headers=headers, json={**CHAT, "model": "gpt-4o-mini"})
            assert resp.status_code == 200, resp.text
            assert fake.last().headers["authorization"] == f"Bearer {secret}"

            # A key made while the gateway runs works at once.
            late = succeeds(env, "keys", "create", "--name", "late")["key"]
            resp = http.post("/v1/chat/completions", headers={**mock, "x-portkey-api-key": late}, json=CHAT)
            assert resp.status_code == 200, resp.text

            resp = http.get("/v1/api-keys", headers={"x-portkey-api-key": admin})
            assert resp.status_code == 200, resp.text
            assert {k["name"] for k in listed(resp.json())} == {"app", "ops", "late"}
            assert inference not in resp.text and admin not in resp.text
            refused = http.get("/v1/api-keys", headers={"x-portkey-api-key": inference})
            assert refused.status_code == 403
        assert secret not in gateway.output()
    finally:
        gateway.stop()
