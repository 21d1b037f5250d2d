"""`crossroads keys | virtual-keys | configs`: the admin API's operations from the command line,
straight on the catalog the gateway uses (same settings, same validation, same JSON out).

They work when no API key exists yet and when the HTTP admin API is locked, which makes them
the way to create the first admin key and to recover access. Each says on stderr which
database it opened (stdout stays the JSON answer).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from crossroads.errors import GatewayError
from crossroads.governance.admin import Admin
from crossroads.governance.keys import SCOPES
from crossroads.storage.catalog import CatalogUnavailable

JSON = dict[str, Any]
RESOURCES = ("keys", "virtual-keys", "configs", "cache")


def add_commands(commands: Any) -> None:
    """Register the three resource commands on the CLI's subparsers."""
    actions = _resource(commands, "keys", "gateway API keys")
    create = actions["create"]
    create.add_argument("--name", help="the key's name")
    create.add_argument(
        "--scopes",
        help="comma-separated scopes (default completions.write; `all` for every scope, e.g. an admin key)",
    )
    create.add_argument("--type", default="workspace", choices=("workspace", "organisation"))
    create.add_argument("--sub-type", default="service", choices=("service", "user"))
    actions["rotate"].add_argument(
        "--transition-ms", type=int, default=0, help="how long the old key keeps working"
    )

    actions = _resource(commands, "virtual-keys", "virtual keys (stored provider credentials)")
    create = actions["create"]
    create.add_argument("--name", help="the virtual key's name")
    create.add_argument("--provider", help="the provider slug, e.g. openai")
    create.add_argument(
        "--key-env",
        metavar="VAR",
        help="read the provider's API key from this environment variable (keeps it out of shell history)",
    )

    actions = _resource(commands, "configs", "saved configs")
    create = actions["create"]
    create.add_argument("--name", help="the config's name")
    create.add_argument("--config", help="the config: inline JSON or @file.json")

    cache = commands.add_parser("cache", help="manage the answer cache")
    cache.add_argument("--settings", metavar="FILE", help="settings file (default: $CROSSROADS_CONFIG)")
    cache_actions = cache.add_subparsers(dest="action", required=True)
    clear = cache_actions.add_parser(
        "clear",
        help="delete cached answers: in Redis when redis_url is set, else in the running gateway",
    )
    clear.add_argument("--namespace", help="only this x-portkey-cache-namespace (default: everything)")
    clear.add_argument("--url", help="the running gateway (default: http://<host>:<port> from the settings)")
    clear.add_argument("--api-key", help="a key with the cache.clear scope (default: the admin_key setting)")


def _resource(commands: Any, name: str, what: str) -> dict[str, argparse.ArgumentParser]:
    parser = commands.add_parser(name, help=f"manage {what}")
    parser.add_argument("--settings", metavar="FILE", help="settings file (default: $CROSSROADS_CONFIG)")
    sub = parser.add_subparsers(dest="action", required=True)
    actions = {"list": sub.add_parser("list", help="list them")}
    for action in ("get", "delete"):
        actions[action] = sub.add_parser(action, help=f"{action} one")
        actions[action].add_argument("id", help="id or slug")
    actions["update"] = sub.add_parser("update", help="change fields (Portkey's update body)")
    actions["update"].add_argument("id", help="id or slug")
    actions["update"].add_argument("--json", required=True, metavar="BODY", help="inline JSON or @file.json")
    actions["create"] = sub.add_parser("create", help="create one")
    actions["create"].add_argument(
        "--json", metavar="BODY", help="Portkey's create body: inline JSON or @file.json"
    )
    if name == "keys":
        actions["rotate"] = sub.add_parser("rotate", help="issue a new secret for a key")
        actions["rotate"].add_argument("id", help="the key's id")
    if name == "virtual-keys":
        actions["reencrypt"] = sub.add_parser(
            "reencrypt", help="re-seal every virtual key with the current master key (after rotating it)"
        )
    if name == "configs":
        actions["versions"] = sub.add_parser("versions", help="list a config's versions")
        actions["versions"].add_argument("id", help="slug or id")
    return actions


def run(args: argparse.Namespace) -> int:
    from crossroads.settings import SettingsError, load_settings, prepare_database  # noqa: PLC0415
    from crossroads.storage.catalog import shown  # noqa: PLC0415

    try:
        settings = load_settings(args.settings)
        body = _body(getattr(args, "json", None))
        if args.command == "cache" and not settings.redis_url:
            result = _clear_in_gateway(settings, args)
        else:
            if args.command != "cache":
                prepare_database(settings)
                print(f"crossroads: database {shown(settings.database_url)}", file=sys.stderr)
            result = asyncio.run(_execute(settings, args, body))
    except SettingsError as exc:
        print(f"crossroads: {exc}", file=sys.stderr)
        return 2
    except GatewayError as exc:
        print(f"crossroads: {exc.message}", file=sys.stderr)
        return 1
    except (_UsageError, CatalogUnavailable) as exc:
        print(f"crossroads: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


class _UsageError(Exception):
    pass


def _body(text: str | None, option: str = "--json") -> JSON:
    if text is None:
        return {}
    if text.startswith("@"):
        try:
            with open(text[1:]) as handle:
                text = handle.read()
        except OSError as exc:
            raise _UsageError(f"cannot read {text[1:]}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _UsageError(f"{option} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _UsageError(f"{option} must be a JSON object")
    return data


async def _execute(settings: Any, args: argparse.Namespace, body: JSON) -> JSON:
    if args.command == "cache":
        return await _clear_in_redis(settings, args)
    from crossroads.app import admin_for  # noqa: PLC0415

    admin, close = await admin_for(settings)
    try:
        return await _dispatch(admin, args, body)
    finally:
        await close()


async def _clear_in_redis(settings: Any, args: argparse.Namespace) -> JSON:
    """Redis is shared: clear it directly (an in-process cache lives in the gateway: ask it)."""
    if settings.redis_url:
        from crossroads.cache.service import Cache  # noqa: PLC0415
        from crossroads.storage.redis import connect  # noqa: PLC0415
        from crossroads.storage.store import RedisStore, StoreUnavailable  # noqa: PLC0415

        client = connect(settings.redis_url)
        try:
            removed = await Cache(RedisStore(client)).clear(args.namespace)
        except StoreUnavailable as exc:
            raise _UsageError(f"cannot reach Redis at redis_url: {exc}") from None
        finally:
            await client.aclose()
        return {"object": "cache", "namespace": args.namespace, "deleted": removed}
    return _clear_in_gateway(settings, args)


def _clear_in_gateway(settings: Any, args: argparse.Namespace) -> JSON:
    """The in-process cache of the running gateway, through its admin API (DELETE /v1/cache)."""
    base = args.url or f"http://{settings.host}:{settings.port}"
    query = "?" + urllib.parse.urlencode({"namespace": args.namespace}) if args.namespace else ""
    if not base.startswith(("http://", "https://")):
        raise _UsageError(f"--url must be an http(s) URL, got {base!r}")
    url = f"{base.rstrip('/')}/v1/cache{query}"
    request = urllib.request.Request(url, method="DELETE")  # noqa: S310  (http or https, checked above)
    key = args.api_key or settings.admin_key
    if key:
        request.add_header("x-portkey-api-key", key)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310  (an http URL we built)
            answer: JSON = json.loads(response.read())
            return answer
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        raise _UsageError(f"the gateway at {base} refused: {exc.code} {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise _UsageError(f"cannot reach the gateway at {base}: {exc}") from None


async def _dispatch(admin: Admin, args: argparse.Namespace, body: JSON) -> JSON:
    resource, action = args.command, args.action
    ident: str = getattr(args, "id", None) or ""
    if resource == "keys":
        if action == "create":
            if args.name:
                _flag(body, "name", args.name, "--name")
            if args.scopes:
                scopes = (
                    sorted(SCOPES) if args.scopes == "all" else [s.strip() for s in args.scopes.split(",")]
                )
                _flag(body, "scopes", scopes, "--scopes")
            result: JSON = await admin.create_api_key(args.type, args.sub_type, body)
            return result
        if action == "rotate":
            rotated: JSON = await admin.rotate_api_key(
                ident, {"key_transition_period_ms": args.transition_ms}
            )
            return rotated
        return await _crud(admin, "api_key", action, ident, body)
    if resource == "virtual-keys":
        if action == "reencrypt":
            return await admin.reencrypt_virtual_keys()
        if action == "create":
            if args.name:
                _flag(body, "name", args.name, "--name")
            if args.provider:
                _flag(body, "provider", args.provider, "--provider")
            if args.key_env:
                value = os.environ.get(args.key_env)
                if not value:
                    raise _UsageError(f"the environment variable {args.key_env} is not set")
                if "key" in body:
                    raise _UsageError("give the provider's key once: --key-env or the --json body's key")
                body["key"] = value
        return await _crud(admin, "virtual_key", action, ident, body)
    if action == "create":
        if args.name:
            _flag(body, "name", args.name, "--name")
        if args.config:
            _flag(body, "config", _body(args.config, "--config"), "--config")
    if action == "versions":
        versions: JSON = await admin.config_versions(ident)
        return versions
    return await _crud(admin, "config", action, ident, body)


def _flag(body: JSON, field: str, value: Any, flag: str) -> None:
    """A flag's value into the body; a --json body that says otherwise is an error, not overridden."""
    if field in body and body[field] != value:
        raise _UsageError(f"{flag} and the --json body's {field!r} disagree: give it once")
    body[field] = value


async def _crud(admin: Admin, kind: str, action: str, ident: str, body: JSON) -> JSON:
    if action in ("get", "update", "delete") and not ident:
        raise _UsageError(f"{action} needs an id or slug")
    key = ident or ""
    if kind == "api_key":
        if action == "list":
            return await admin.list_api_keys()
        if action == "get":
            return await admin.get_api_key(key)
        if action == "update":
            return await admin.update_api_key(key, body)
        return await admin.delete_api_key(key)
    if kind == "virtual_key":
        if action == "create":
            return await admin.create_virtual_key(body)
        if action == "list":
            return await admin.list_virtual_keys()
        if action == "get":
            return await admin.get_virtual_key(key)
        if action == "update":
            return await admin.update_virtual_key(key, body)
        return await admin.delete_virtual_key(key)
    if action == "create":
        return await admin.create_config(body)
    if action == "list":
        return await admin.list_configs()
    if action == "get":
        return await admin.get_config(key)
    if action == "update":
        return await admin.update_config(key, body)
    return await admin.delete_config(key)
