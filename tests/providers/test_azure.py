"""Azure OpenAI URLs and auth, from the adapter alone (no network: the public URL is only built)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from crossroads.errors import BadRequest
from crossroads.providers.base import Call, Target
from crossroads.providers.registry import build_registry
from crossroads.secret import Secret

AZURE = build_registry().get("azure-openai")


def call(endpoint: str = "chat", path: str = "/chat/completions", body: Any = None, query: str = "") -> Call:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]} if body is None else body
    return Call(
        endpoint=endpoint,
        method="POST" if endpoint != "models" else "GET",
        path=path,
        query=query,
        body=msgspec.json.encode(body),
        json=body,
        content_type="application/json",
        stream=False,
        headers={},
        request_id="r",
        trace_id="t",
        metadata={},
    )


def target(key: str | None = "azure-key-1", **options: str) -> Target:
    opts: dict[str, str | Secret] = {k: Secret(v) if k == "azure_ad_token" else v for k, v in options.items()}
    return Target(provider="azure-openai", api_key=Secret(key) if key else None, options=opts)


def test_dated_api_per_deployment_with_the_resource_key() -> None:
    request = AZURE.build(
        call(),
        target(
            azure_resource_name="contoso", azure_deployment_id="gpt4o-prod", azure_api_version="2024-10-21"
        ),
    )
    assert (
        request.url
        == "https://contoso.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
    )
    assert request.headers["api-key"] == "azure-key-1" and "authorization" not in request.headers
    assert not request.guarded  # Azure's own host, not a caller-chosen one


def test_portkey_config_names_the_default_version_and_the_model_as_deployment() -> None:
    request = AZURE.build(call(), target(resource_name="contoso"))
    assert (
        request.url
        == "https://contoso.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
    )
    request = AZURE.build(
        call("embeddings", "/embeddings", {"model": "emb", "input": "x"}),
        target(resource_name="contoso", deployment_id="small", api_version="2025-04-01-preview"),
    )
    assert request.url.endswith("/openai/deployments/small/embeddings?api-version=2025-04-01-preview")


def test_models_and_proxy_are_not_per_deployment() -> None:
    request = AZURE.build(call("models", "/models", {}), target(resource_name="contoso"))
    assert request.url == "https://contoso.openai.azure.com/openai/models?api-version=2024-10-21"
    request = AZURE.build(
        call("proxy", "/files", {}, query="purpose=batch"),
        target(resource_name="contoso", api_version="2024-10-21"),
    )
    assert request.url == "https://contoso.openai.azure.com/openai/files?purpose=batch&api-version=2024-10-21"


def test_v1_api_has_no_deployment_in_the_path() -> None:
    request = AZURE.build(call(), target(resource_name="contoso", api_version="v1"))
    assert request.url == "https://contoso.openai.azure.com/openai/v1/chat/completions"
    request = AZURE.build(call(), target(resource_name="contoso", api_version="preview"))
    assert request.url == "https://contoso.openai.azure.com/openai/v1/chat/completions?api-version=preview"


def test_entra_id_token_replaces_the_key() -> None:
    request = AZURE.build(call(), target(key=None, resource_name="contoso", azure_ad_token="eyJ.token"))
    assert request.headers["authorization"] == "Bearer eyJ.token" and "api-key" not in request.headers


@pytest.mark.parametrize(
    ("options", "param", "words"),
    [
        ({"resource_name": "evil.example.com/x"}, "x-portkey-azure-resource-name", "not valid"),
        ({"resource_name": "a" * 70}, "x-portkey-azure-resource-name", "not valid"),
        ({}, "x-portkey-azure-resource-name", "needs the resource name"),
        (
            {"resource_name": "contoso", "deployment_id": "../../admin"},
            "x-portkey-azure-deployment-id",
            "not a valid",
        ),
        (
            {"resource_name": "contoso", "api_version": "2024-10-21&x=1"},
            "x-portkey-azure-api-version",
            "not an Azure",
        ),
        (
            {"resource_name": "contoso", "azure_auth_mode": "managed"},
            "x-portkey-azure-auth-mode",
            "not supported",
        ),
    ],
)
def test_bad_settings_are_400s_naming_the_header(options: dict[str, str], param: str, words: str) -> None:
    with pytest.raises(BadRequest) as caught:
        AZURE.build(call(), target(**options))
    assert caught.value.param == param and words in caught.value.message


def test_no_credential_is_a_400() -> None:
    with pytest.raises(BadRequest, match="needs a credential"):
        AZURE.build(call(), target(key=None, resource_name="contoso"))


def test_no_deployment_for_a_multipart_upload_is_a_400() -> None:
    upload = Call(
        endpoint="audio.transcriptions",
        method="POST",
        path="/audio/transcriptions",
        query="",
        body=b"--x--",
        json=None,
        content_type="multipart/form-data; boundary=x",
        stream=False,
        headers={},
        request_id="r",
        trace_id="t",
        metadata={},
    )
    with pytest.raises(BadRequest, match="needs the deployment"):
        AZURE.build(upload, target(resource_name="contoso"))
    request = AZURE.build(upload, target(resource_name="contoso", deployment_id="whisper"))
    assert "/deployments/whisper/audio/transcriptions?api-version=" in request.url
