"""Azure OpenAI (`azure-openai`): OpenAI's wire format at Azure's URLs, with Azure's auth.

Bodies, answers, streams and errors are OpenAI's, so everything but the URL and the auth
header is `OpenAIFormat`'s. Two URL styles, picked by the API version:

- dated (`api_version` such as `2024-10-21`, the default): deployment endpoints go to
  `<base>/deployments/<deployment>/<path>?api-version=<v>`, the rest to `<base>/<path>?api-version=<v>`;
- `v1` (Azure's version-less API): `<base>/v1/<path>`, the deployment named in the body's `model`.

`<base>` is `https://<resource>.openai.azure.com/openai`, or the custom host (which, as in
Portkey, replaces exactly that). The resource name becomes part of a host name and the
deployment part of a path, so both are checked before use.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Final
from urllib.parse import quote

import msgspec

from crossroads.errors import BadRequest
from crossroads.providers.base import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    IMAGE_EDITS,
    IMAGES,
    MODELS,
    PROXY,
    SPEECH,
    TRANSCRIPTIONS,
    TRANSLATIONS,
    Call,
    Target,
)
from crossroads.providers.openai import OpenAIFormat
from crossroads.providers.profile import Profile
from crossroads.secret import Secret
from crossroads.upstream.response import UpstreamRequest

DEFAULT_API_VERSION: Final = "2024-10-21"  # the latest GA version of the dated API
# Endpoints served per deployment (the openai SDK's `_deployments_endpoints`).
_PER_DEPLOYMENT: Final = frozenset(
    {CHAT, COMPLETIONS, EMBEDDINGS, IMAGES, IMAGE_EDITS, SPEECH, TRANSCRIPTIONS, TRANSLATIONS}
)
_RESOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}")
_DEPLOYMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_API_VERSION = re.compile(r"v1|preview|latest|\d{4}-\d{2}-\d{2}(-preview)?")

PROFILE: Final = Profile(
    slug="azure-openai",
    base_url=None,
    endpoints=frozenset(
        {
            CHAT,
            COMPLETIONS,
            EMBEDDINGS,
            IMAGES,
            IMAGE_EDITS,
            SPEECH,
            TRANSCRIPTIONS,
            TRANSLATIONS,
            MODELS,
            PROXY,
        }
    ),
    auth_header="api-key",
    auth_prefix="",
    option_headers={"openai_beta": "OpenAI-Beta"},
    docs="https://learn.microsoft.com/azure/ai-foundry/openai/reference",
)


class AzureOpenAI(OpenAIFormat):
    def __init__(self, base_url: str | None = None) -> None:
        super().__init__(PROFILE, base_url)

    def build(self, call: Call, target: Target) -> UpstreamRequest:
        request = super().build(call, target)  # endpoint check, URL, body as for OpenAI
        token = _option(target, "azure_ad_token")
        mode = _option(target, "azure_auth_mode")
        if token:  # Microsoft Entra ID: a bearer token instead of the resource key
            request.headers.pop("api-key", None)
            request.headers["authorization"] = "Bearer " + token.removeprefix("Bearer ").strip()
        elif mode and mode.lower() not in ("apikey", "api_key", "api-key"):
            raise BadRequest(
                f"azure_auth_mode {mode[:20]!r} is not supported here: fetch the Entra ID token "
                "yourself and send it in x-portkey-azure-ad-token",
                param="x-portkey-azure-auth-mode",
            )
        elif target.api_key is None:
            raise BadRequest(
                "azure-openai needs a credential: the resource's key as Authorization (sent to Azure "
                "as api-key), or an Entra ID token in x-portkey-azure-ad-token / azure_ad_token",
                param="authorization",
            )
        return request

    def url(self, call: Call, target: Target) -> str:
        base = (target.custom_host or self.base_url or _resource_url(target)).rstrip("/")
        chosen = _from_deployment_config(call, target)
        if chosen is not None:  # a virtual key's deployments: the one the model names, else the default
            options = {**target.options, "azure_deployment_id": chosen["deployment"]}
            if chosen.get("api_version"):
                options["azure_api_version"] = chosen["api_version"]
            target = msgspec.structs.replace(target, options=options)
        version = _option(target, "azure_api_version", "api_version") or DEFAULT_API_VERSION
        if not _API_VERSION.fullmatch(version):
            raise BadRequest(
                f"api_version {version[:40]!r} is not an Azure OpenAI API version "
                f"(e.g. {DEFAULT_API_VERSION}, 2025-04-01-preview, or v1)",
                param="x-portkey-azure-api-version",
            )
        query = call.query
        if version in ("v1", "preview", "latest"):
            url = f"{base}/v1{call.path}"
            if version != "v1" and "api-version=" not in query:
                query = f"{query}&api-version={version}" if query else f"api-version={version}"
        elif call.endpoint in _PER_DEPLOYMENT:
            url = f"{base}/deployments/{quote(_deployment(call, target), safe='')}{call.path}"
            query = f"{query}&api-version={version}" if query else f"api-version={version}"
        else:
            url = base + call.path
            if "api-version=" not in query:
                query = f"{query}&api-version={version}" if query else f"api-version={version}"
        return f"{url}?{query}" if query else url


@functools.lru_cache(maxsize=256)
def _deployments(text: str) -> tuple[dict[str, Any], ...]:
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return ()
    return tuple(item for item in value if isinstance(item, dict)) if isinstance(value, list) else ()


def _from_deployment_config(call: Call, target: Target) -> dict[str, Any] | None:
    """With Portkey's `deploymentConfig` (stored with a virtual key): the deployment whose alias
    (or name) is the request's model, else the default one, else the first. An explicit
    deployment id wins over it."""
    text = target.options.get("azure_deployment_config")
    if not isinstance(text, str) or _option(target, "azure_deployment_id", "deployment_id"):
        return None
    deployments = _deployments(text)
    if not deployments:
        return None
    model = (call.json or {}).get("model")
    for item in deployments:
        if model is not None and model in (item.get("alias"), item.get("deployment")):
            return item
    return next((item for item in deployments if item.get("default")), deployments[0])


def _option(target: Target, *names: str) -> str | None:
    for name in names:
        value = target.options.get(name)
        if isinstance(value, Secret):
            value = value.reveal()
        if value:
            return value
    return None


def _resource_url(target: Target) -> str:
    resource = _option(target, "azure_resource_name", "resource_name")
    if resource is None:
        raise BadRequest(
            "azure-openai needs the resource name: x-portkey-azure-resource-name (or resource_name "
            "in the config), or its endpoint as x-portkey-custom-host (https://<resource>.openai.azure.com/openai)",
            param="x-portkey-azure-resource-name",
        )
    if not _RESOURCE.fullmatch(resource):
        raise BadRequest(
            f"azure resource name {resource[:64]!r} is not valid: letters, digits and hyphens only",
            param="x-portkey-azure-resource-name",
        )
    return f"https://{resource}.openai.azure.com/openai"


def _deployment(call: Call, target: Target) -> str:
    """The deployment: the configured one, else the body's `model` (as the AzureOpenAI SDK does)."""
    deployment = _option(target, "azure_deployment_id", "deployment_id")
    if deployment is None and call.json is not None:
        model = call.json.get("model")
        deployment = model if isinstance(model, str) and model else None
    if deployment is None:
        raise BadRequest(
            "azure-openai needs the deployment: x-portkey-azure-deployment-id (or deployment_id in "
            "the config), or the deployment name as the request's model",
            param="x-portkey-azure-deployment-id",
        )
    if not _DEPLOYMENT.fullmatch(deployment):
        raise BadRequest(
            f"azure deployment {deployment[:64]!r} is not a valid deployment name",
            param="x-portkey-azure-deployment-id",
        )
    return deployment
