"""The admin API's routes (Portkey's control plane): path and method to an Admin operation,
and the scope each one needs (Portkey's scope names)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from crossroads.errors import BadRequest, MethodNotAllowed, NotFound
from crossroads.governance.admin import Admin
from crossroads.governance.keys import KEY_TYPES

JSON = dict[str, Any]
Operation = Callable[[], Awaitable[JSON]]


def resolve(admin: Admin, method: str, sub: str, body: bytes) -> tuple[str, Operation]:
    """(the scope needed, the operation) for an admin request; NotFound / MethodNotAllowed otherwise."""
    parts = [p for p in sub.strip("/").split("/") if p]
    resource, rest = parts[0], parts[1:]
    if resource == "api-keys":
        return _api_keys(admin, method, rest, body)
    if resource == "virtual-keys":
        return _crud(
            "virtual_keys",
            method,
            rest,
            body,
            create=admin.create_virtual_key,
            listing=admin.list_virtual_keys,
            read=admin.get_virtual_key,
            update=admin.update_virtual_key,
            delete=admin.delete_virtual_key,
        )
    if len(rest) == 2 and rest[1] == "versions":
        _allow(method, "GET", sub)
        slug = rest[0]
        return "configs.read", lambda: admin.config_versions(slug)
    return _crud(
        "configs",
        method,
        rest,
        body,
        create=admin.create_config,
        listing=admin.list_configs,
        read=admin.get_config,
        update=admin.update_config,
        delete=admin.delete_config,
    )


def cache(
    clear: Callable[[str | None], Awaitable[int]], method: str, path: str, query: bytes
) -> tuple[str, Operation]:
    """`DELETE /v1/cache` clears every cached answer; `?namespace=NS` (or `/v1/cache/NS`) one namespace."""
    _allow(method, "DELETE", "/v1/cache")
    params = urllib.parse.parse_qs(query.decode("latin-1"))
    namespace = params["namespace"][-1] if "namespace" in params else None
    rest = path.removeprefix("/cache").strip("/")
    if rest:
        namespace = urllib.parse.unquote(rest)

    async def run() -> JSON:
        removed = await clear(namespace)
        return {"object": "cache", "namespace": namespace, "deleted": removed}

    return "cache.clear", run


def _api_keys(admin: Admin, method: str, rest: list[str], body: bytes) -> tuple[str, Operation]:
    if not rest:
        if method == "POST":
            raise MethodNotAllowed(
                "Method POST is not allowed on /v1/api-keys: create a key with "
                "POST /v1/api-keys/{type}/{sub_type}, e.g. /v1/api-keys/organisation/service",
                headers={"allow": "GET"},
            )
        _allow(method, "GET", "/v1/api-keys")
        return "api_keys.list", admin.list_api_keys
    if len(rest) == 2 and rest[1] == "rotate" and rest[0] not in KEY_TYPES:
        _allow(method, "POST", "/v1/api-keys/{id}/rotate")
        key_id = rest[0]
        return "api_keys.update", lambda: admin.rotate_api_key(key_id, _object(body, optional=True))
    if len(rest) == 2:
        _allow(method, "POST", "/v1/api-keys/{type}/{sub_type}")
        key_type, sub_type = rest
        return "api_keys.create", lambda: admin.create_api_key(key_type, sub_type, _object(body))
    if len(rest) == 1:
        key_id = rest[0]
        if method == "GET":
            return "api_keys.read", lambda: admin.get_api_key(key_id)
        if method == "PUT":
            return "api_keys.update", lambda: admin.update_api_key(key_id, _object(body))
        if method == "DELETE":
            return "api_keys.delete", lambda: admin.delete_api_key(key_id)
        raise _not_allowed(method, "/v1/api-keys/{id}", "DELETE, GET, PUT")
    raise NotFound(f"Invalid URL ({method} /v1/api-keys/{'/'.join(rest)})", code="unknown_url")


def _crud(
    scope: str,
    method: str,
    rest: list[str],
    body: bytes,
    *,
    create: Callable[[JSON], Awaitable[JSON]],
    listing: Callable[[], Awaitable[JSON]],
    read: Callable[[str], Awaitable[JSON]],
    update: Callable[[str, JSON], Awaitable[JSON]],
    delete: Callable[[str], Awaitable[JSON]],
) -> tuple[str, Operation]:
    path = "/v1/" + scope.replace("_", "-")
    if not rest:
        if method == "POST":
            return f"{scope}.create", lambda: create(_object(body))
        if method == "GET":
            return f"{scope}.list", listing
        raise _not_allowed(method, path, "GET, POST")
    if len(rest) == 1:
        slug = rest[0]
        if method == "GET":
            return f"{scope}.read", lambda: read(slug)
        if method == "PUT":
            return f"{scope}.update", lambda: update(slug, _object(body))
        if method == "DELETE":
            return f"{scope}.delete", lambda: delete(slug)
        raise _not_allowed(method, path + "/{slug}", "DELETE, GET, PUT")
    raise NotFound(f"Invalid URL ({method} {path}/{'/'.join(rest)})", code="unknown_url")


def paginate(result: JSON, query: bytes) -> JSON:
    """A list answer cut to `page_size` items from page `current_page` (0-based), as the
    portkey-ai SDK asks (`?current_page=0&page_size=50`); `total` stays the whole count."""
    if result.get("object") != "list" or not query:
        return result
    params = urllib.parse.parse_qs(query.decode("latin-1"))
    if "page_size" not in params:
        return result
    size = _page_number(params, "page_size", 1)
    page = _page_number(params, "current_page", 0) if "current_page" in params else 0
    data = result["data"][page * size : (page + 1) * size]
    return {**result, "data": data}


def _page_number(params: dict[str, list[str]], name: str, least: int) -> int:
    value = params[name][-1]
    if not value.isdigit() or int(value) < least or int(value) > 1_000_000:
        raise BadRequest(f"{name} must be a whole number of at least {least}", param=name)
    return int(value)


def _allow(method: str, allowed: str, path: str) -> None:
    if method != allowed:
        raise _not_allowed(method, path, allowed)


def _not_allowed(method: str, path: str, allowed: str) -> MethodNotAllowed:
    return MethodNotAllowed(f"Method {method} is not allowed on {path}", headers={"allow": allowed})


def _object(body: bytes, *, optional: bool = False) -> JSON:
    if not body.strip():
        if optional:
            return {}
        raise BadRequest("The request body is empty: send a JSON object", code="invalid_body")
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object", code="invalid_body")
    return data
