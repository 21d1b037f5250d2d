"""The route table: which paths exist, what body each takes, and which endpoint it is.

Every unified route also answers without the `/v1` prefix (the portkey-ai SDK with a
base URL lacking `/v1`), and so does the admin API (`/v1/api-keys`, `/v1/virtual-keys`,
`/v1/configs`). Portkey's other control-plane paths (feedback, logs, prompts, analytics, ...)
are refused with a 501 naming the feature: they are never proxied, since their bodies
(conversations, feedback) are meant for the gateway, not a provider. Any other `/v1/*` GET,
POST or DELETE is the proxy route.
"""

from __future__ import annotations

import functools
from typing import Final, Literal, NamedTuple

from crossroads.errors import MethodNotAllowed, NotFound, NotImplementedHere
from crossroads.providers.base import (
    CHAT,
    COMPLETIONS,
    COUNT_TOKENS,
    EMBEDDINGS,
    IMAGE_EDITS,
    IMAGES,
    MESSAGES,
    MODELS,
    MODERATIONS,
    PROXY,
    SPEECH,
    TRANSCRIPTIONS,
    TRANSLATIONS,
)

BodyKind = Literal["json", "multipart", "raw", "none"]


class Route(NamedTuple):
    endpoint: str  # a providers.base endpoint, or "health" / "ready" / "root"
    body: BodyKind
    path: str  # the upstream-relative path (after /v1)


_UNIFIED: Final[dict[str, tuple[str, str, BodyKind]]] = {
    "/chat/completions": ("POST", CHAT, "json"),
    "/completions": ("POST", COMPLETIONS, "json"),
    "/embeddings": ("POST", EMBEDDINGS, "json"),
    "/images/generations": ("POST", IMAGES, "json"),
    "/images/edits": ("POST", IMAGE_EDITS, "multipart"),
    "/audio/speech": ("POST", SPEECH, "json"),
    "/audio/transcriptions": ("POST", TRANSCRIPTIONS, "multipart"),
    "/audio/translations": ("POST", TRANSLATIONS, "multipart"),
    "/moderations": ("POST", MODERATIONS, "json"),
    "/models": ("GET", MODELS, "none"),
    "/messages": ("POST", MESSAGES, "json"),
    "/messages/count_tokens": ("POST", COUNT_TOKENS, "json"),
}
# Methods besides its own that a unified path also has at the provider, relayed as they are:
# GET /v1/chat/completions lists stored completions. Others are a 405, never forwarded.
_ALSO_PROXIED: Final[dict[str, frozenset[str]]] = {"/chat/completions": frozenset({"GET"})}
# Portkey's control plane beyond what this gateway serves: the path prefix and what it is.
CONTROL_PLANE: Final[dict[str, str]] = {
    "/feedback": "Feedback (Portkey's feedback API)",
    "/logs": "Request logs (Portkey's logs API)",
    "/analytics": "Analytics (Portkey's analytics API)",
    "/prompts": "Prompt templates (Portkey's prompts API)",
    "/prompt": "Prompt templates (Portkey's prompts API)",
    "/guardrails": "Saved guardrails (Portkey's guardrails API)",
    "/admin": "Users and workspaces (Portkey's admin API)",
    "/integrations": "Integrations (Portkey's integrations API)",
    "/providers": "Workspace providers (Portkey's providers API)",
    "/labels": "Prompt labels (Portkey's labels API)",
    "/collections": "Prompt collections (Portkey's collections API)",
    "/mcp-servers": "MCP servers (Portkey's MCP API)",
    "/mcp-integrations": "MCP integrations (Portkey's MCP API)",
    "/audit-logs": "Audit logs (Portkey's audit logs API)",
    "/policies": "Usage and rate-limit policies (Portkey's policies API)",
}
_LOCAL: Final[dict[str, str]] = {"/health": "health", "/ready": "ready", "/": "root", "/metrics": "metrics"}
METRICS: Final = "metrics"
ADMIN: Final = "admin"  # the control plane: api-keys, virtual-keys, configs
_ADMIN_PREFIXES: Final = ("/api-keys", "/virtual-keys", "/configs", "/cache")
_ADMIN_METHODS: Final = frozenset({"GET", "POST", "PUT", "DELETE"})
_PROXY_METHODS: Final = frozenset({"GET", "POST", "DELETE"})
LOCAL_ENDPOINTS: Final = frozenset(_LOCAL.values())


@functools.lru_cache(maxsize=1024)
def match(method: str, path: str) -> Route:
    """The route for a request, or NotFound / MethodNotAllowed (errors are not cached)."""
    local = _LOCAL.get(path)
    if local is not None:
        if method not in ("GET", "HEAD"):
            raise MethodNotAllowed(
                f"Method {method} is not allowed on {path}", headers={"allow": "GET, HEAD"}
            )
        return Route(local, "none", path)
    if path.startswith("/v1/"):
        sub, prefixed = path[3:], True
    else:
        sub, prefixed = path, False
    trimmed = sub.rstrip("/")
    if any(trimmed == p or trimmed.startswith(p + "/") for p in _ADMIN_PREFIXES):
        if method not in _ADMIN_METHODS:
            raise MethodNotAllowed(
                f"Method {method} is not allowed on {path}", headers={"allow": "DELETE, GET, POST, PUT"}
            )
        return Route(ADMIN, "raw", trimmed)
    feature = CONTROL_PLANE.get("/" + trimmed[1:].split("/", 1)[0])
    if feature is not None:
        raise NotImplementedHere(
            f"{feature} is not available on this gateway ({method} {path}); "
            "Portkey control-plane calls are answered by the gateway and never sent to a provider",
            code="not_implemented",
        )
    unified = _UNIFIED.get(sub.rstrip("/") or sub)
    if unified is not None:
        allowed, endpoint, body = unified
        if method == allowed:
            return Route(endpoint, body, sub.rstrip("/"))
        also = _ALSO_PROXIED.get(sub.rstrip("/"), frozenset()) if prefixed else frozenset()
        if method not in also:
            raise MethodNotAllowed(
                f"Method {method} is not allowed on {path} (use {allowed})",
                headers={"allow": ", ".join(sorted({allowed} | also))},
            )
        # e.g. GET /v1/chat/completions lists stored completions: the provider's own route.
        return Route(PROXY, "raw", sub)
    if prefixed and sub.strip("/"):
        if method not in _PROXY_METHODS:
            raise MethodNotAllowed(
                f"Method {method} is not allowed on {path}", headers={"allow": "DELETE, GET, POST"}
            )
        return Route(PROXY, "raw", sub)
    raise NotFound(f"Invalid URL ({method} {path})", code="unknown_url")
