"""Google Vertex AI (`vertex-ai`): Gemini models with the Gemini translation, Claude models
with Anthropic's, at Vertex's URLs, with an OAuth access token.

URLs: `<base>/projects/<project>/locations/<region>/publishers/<publisher>/models/<model>:<method>`,
`<base>` = `https://<region>-aiplatform.googleapis.com/v1` (`https://aiplatform.googleapis.com/v1`
for the `global` region); a custom host replaces it (`/v1` added when it has no version).
Gemini models (`publishers/google`): `generateContent`, `streamGenerateContent?alt=sse`, and
`predict` for embeddings. Claude models (`publishers/anthropic`, any model whose name starts
with `claude`): `rawPredict` / `streamRawPredict` with Anthropic's body, `model` left out and
`anthropic_version: vertex-2023-10-16` in it; /v1/messages goes there as it is.

Auth: an access token as `Authorization: Bearer` (from `gcloud auth print-access-token`), or
a service account key (`vertex_service_account_json`): the adapter signs the OAuth2 JWT grant
(PyJWT, RS256) and the pipeline exchanges it at the key's `token_uri` and caches the token.
A token URI other than Google's comes from the caller's key, so it is held to the custom-host policy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode

import jwt
import msgspec

from crossroads.errors import BadRequest, UnsupportedEndpoint, UpstreamError, UpstreamUnavailable
from crossroads.providers.anthropic.request import chat_to_messages, completion_to_messages
from crossroads.providers.anthropic.response import error_from as anthropic_error
from crossroads.providers.anthropic.response import message_to_chat, message_to_completion
from crossroads.providers.anthropic.stream import AnthropicRelay, AnthropicToOpenAI
from crossroads.providers.base import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    MESSAGES,
    PROXY,
    Call,
    LocalResponder,
    Reply,
    StreamTranslator,
    Target,
)
from crossroads.providers.chunks import embedding_list
from crossroads.providers.gemini import GeminiAdapter
from crossroads.providers.messages import MessagesBridge
from crossroads.secret import Secret, redact
from crossroads.upstream.response import UpstreamRequest

JSON = dict[str, Any]
DEFAULT_REGION: Final = "us-central1"
ANTHROPIC_VERSION: Final = "vertex-2023-10-16"
TOKEN_URI: Final = "https://oauth2.googleapis.com/token"  # noqa: S105  (a URL, not a password)
SCOPE: Final = "https://www.googleapis.com/auth/cloud-platform"
_REGION = re.compile(r"[a-z]+(-[a-z0-9]+)*")
_PROJECT = re.compile(r"[a-z][a-z0-9.:-]{3,62}")
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")


class VertexAdapter(GeminiAdapter):
    endpoints = frozenset({CHAT, COMPLETIONS, EMBEDDINGS, MESSAGES, PROXY})

    def __init__(self, base_url: str | None = None) -> None:
        super().__init__("vertex-ai", base_url or "")
        self._fixed_base = base_url.rstrip("/") if base_url else None
        self._bridge = MessagesBridge(self)  # /v1/messages for Gemini models, through chat

    @property
    def responder(self) -> LocalResponder | None:
        return None

    # -- request -----------------------------------------------------------------------------

    def build(self, call: Call, target: Target) -> UpstreamRequest:
        if call.endpoint not in self.endpoints:
            raise UnsupportedEndpoint(f"{call.endpoint} is not supported by vertex-ai")
        project, region = _project(target), _region(target)
        base = self.base(target, region)
        headers = self.headers(call, target)
        if call.endpoint == PROXY:
            url = base + call.path + ("?" + call.query if call.query else "")
            return UpstreamRequest(
                call.method, url, headers, call.body, guarded=target.custom_host is not None
            )
        assert call.json is not None
        model = _model(call.json)
        if call.endpoint == MESSAGES and not _is_claude(model):
            return self._bridge.build(call, target)
        where = f"{base}/projects/{project}/locations/{region}/publishers"
        if _is_claude(model):
            if call.endpoint == EMBEDDINGS:
                raise BadRequest(f"{model} does not make embeddings", param="model")
            if call.endpoint == MESSAGES:
                body = {k: v for k, v in call.json.items() if k not in ("model", "anthropic_beta")}
            else:
                convert = chat_to_messages if call.endpoint == CHAT else completion_to_messages
                body = {k: v for k, v in convert(call.json, model).items() if k != "model"}
            body.setdefault("anthropic_version", ANTHROPIC_VERSION)
            method = "streamRawPredict" if call.stream else "rawPredict"
            url = f"{where}/anthropic/models/{model}:{method}"
            return UpstreamRequest(
                "POST", url, headers, msgspec.json.encode(body), guarded=target.custom_host is not None
            )
        if call.endpoint == EMBEDDINGS:
            body = _embeddings_request(call.json)
            url = f"{where}/google/models/{model}:predict"
        else:
            body = self.translate(call)
            method = "streamGenerateContent?alt=sse" if call.stream else "generateContent"
            url = f"{where}/google/models/{model}:{method}"
        return UpstreamRequest(
            "POST", url, headers, msgspec.json.encode(body), guarded=target.custom_host is not None
        )

    def base(self, target: Target, region: str = DEFAULT_REGION) -> str:
        if target.custom_host:
            host = target.custom_host.rstrip("/")
            return host if host.rsplit("/", 1)[-1] in ("v1", "v1beta1") else host + "/v1"
        if self._fixed_base:
            return self._fixed_base
        if region == "global":
            return "https://aiplatform.googleapis.com/v1"
        return f"https://{region}-aiplatform.googleapis.com/v1"

    def headers(self, call: Call, target: Target) -> dict[str, str]:
        if target.api_key is None:
            raise BadRequest(
                "vertex-ai needs credentials: an access token as Authorization: Bearer <token>, or a service "
                "account key in x-portkey-vertex-service-account-json / vertex_service_account_json",
                param="authorization",
            )
        headers = {"content-type": "application/json", "authorization": "Bearer " + target.api_key.reveal()}
        headers.update(call.forwarded(target.forward_headers))
        return headers

    # -- the service account's token ------------------------------------------------------------

    def token_key(self, target: Target) -> str | None:
        account = target.options.get("vertex_service_account_json")
        return account.fingerprint() if isinstance(account, Secret) and account else None

    def token_request(self, target: Target, now: float) -> UpstreamRequest:
        key = _service_account(target)
        token_uri = key.get("token_uri") or TOKEN_URI
        if not isinstance(token_uri, str):
            raise BadRequest(
                "vertex_service_account_json: token_uri must be a URL", param="vertex_service_account_json"
            )
        issued = int(now)
        claims = {
            "iss": key["client_email"],
            "scope": SCOPE,
            "aud": token_uri,
            "iat": issued,
            "exp": issued + 3600,
        }
        try:
            assertion = jwt.encode(
                claims, key["private_key"], algorithm="RS256", headers={"kid": key.get("private_key_id", "")}
            )
        except (ValueError, TypeError, jwt.PyJWTError):
            raise BadRequest(
                "vertex_service_account_json: private_key is not a valid RSA private key (PEM)",
                param="vertex_service_account_json",
            ) from None
        body = urlencode(
            {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
        )
        headers = {"content-type": "application/x-www-form-urlencoded"}
        # Any other token URI is the caller's choice: the pipeline holds it to the custom-host policy.
        return UpstreamRequest("POST", token_uri, headers, body.encode(), guarded=token_uri != TOKEN_URI)

    def token_from(self, status: int, body: bytes) -> tuple[Secret, float]:
        try:
            answer: Any = msgspec.json.decode(body)
        except msgspec.DecodeError:
            answer = {}
        if status >= 300 or not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
            detail = (
                answer.get("error_description") or answer.get("error") if isinstance(answer, dict) else None
            )
            raise UpstreamError(
                f"vertex-ai: the service account key was refused by the token endpoint ({status}"
                + (f": {str(detail)[:200]}" if detail else "")
                + ")",
                provider=self.name,
                status=401 if status in (400, 401, 403) else 502,
                error_type="authentication_error" if status in (400, 401, 403) else None,
            )
        lifetime = answer.get("expires_in")
        return Secret(answer["access_token"]), float(lifetime) if isinstance(
            lifetime, int | float
        ) else 3600.0

    def with_token(self, target: Target, token: Secret) -> Target:
        return msgspec.structs.replace(target, api_key=token)

    # -- response ------------------------------------------------------------------------------

    def parse(
        self, call: Call, target: Target, status: int, headers: Mapping[str, str], body: bytes
    ) -> Reply:
        if call.endpoint == PROXY or call.json is None:
            return Reply(
                status=status, body=body, content_type=headers.get("content-type", "application/json")
            )
        model = _model(call.json)
        if not _is_claude(model):
            if call.endpoint == MESSAGES:
                return self._bridge.parse(call, target, status, headers, body)
            if call.endpoint != EMBEDDINGS:
                return super().parse(call, target, status, headers, body)
            return Reply(status=status, body=msgspec.json.encode(_embeddings_answer(body, model, call.json)))
        if call.endpoint == MESSAGES:
            return Reply(status=status, body=body)
        try:
            message = msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise UpstreamUnavailable(
                "invalid response received from vertex-ai: the body is not JSON", provider=self.name
            ) from None
        if not isinstance(message, dict) or message.get("type") == "error":
            raise anthropic_error(message, 502, headers, self.name)
        if call.endpoint == CHAT:
            out = message_to_chat(message, created=call.created, strict=target.strict_open_ai_compliance)
        else:
            out = message_to_completion(message, created=call.created)
        return Reply(status=status, body=msgspec.json.encode(out))

    def error(self, target: Target, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        try:
            data: Any = msgspec.json.decode(body) if body.strip() else None
        except msgspec.DecodeError:
            data = None
        if isinstance(data, dict) and data.get("type") == "error":  # Claude's error shape
            error = anthropic_error(data, status, headers, self.name)
            error.message = redact(error.message, target.api_key)
            return error
        return super().error(target, status, headers, body)

    def translator(self, call: Call, target: Target) -> StreamTranslator:
        request = call.json or {}
        if not _is_claude(str(request.get("model") or "")):
            if call.endpoint == MESSAGES:
                return self._bridge.translator(call, target)
            return super().translator(call, target)
        if call.endpoint == MESSAGES:
            return AnthropicRelay(self.name)
        return AnthropicToOpenAI(
            created=call.created,
            include_usage=bool((request.get("stream_options") or {}).get("include_usage")),
            strict=target.strict_open_ai_compliance,
            completion=call.endpoint == COMPLETIONS,
        )


# -- helpers ------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if isinstance(value, Secret):
        return value.reveal()
    return value if isinstance(value, str) and value else None


def _service_account(target: Target) -> JSON:
    raw = _text(target.options.get("vertex_service_account_json")) or ""
    try:
        key = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        key = None
    if not isinstance(key, dict) or not all(
        isinstance(key.get(f), str) for f in ("client_email", "private_key")
    ):
        raise BadRequest(
            "vertex_service_account_json must be a service account key "
            "(JSON with client_email and private_key)",
            param="vertex_service_account_json",
        )
    return key


def _project(target: Target) -> str:
    project = _text(target.options.get("vertex_project_id"))
    if project is None and target.options.get("vertex_service_account_json"):
        project = _service_account(target).get("project_id")
    if not isinstance(project, str) or not project:
        raise BadRequest(
            "vertex-ai needs the project: x-portkey-vertex-project-id (or vertex_project_id in the config)",
            param="x-portkey-vertex-project-id",
        )
    if not _PROJECT.fullmatch(project):
        raise BadRequest(
            f"vertex project id {project[:64]!r} is not valid", param="x-portkey-vertex-project-id"
        )
    return project


def _region(target: Target) -> str:
    region = _text(target.options.get("vertex_region")) or DEFAULT_REGION
    if not _REGION.fullmatch(region) or len(region) > 40:
        raise BadRequest(
            f"vertex region {region[:40]!r} is not a region name", param="x-portkey-vertex-region"
        )
    return region


def _model(body: JSON) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest(
            "model is required (e.g. gemini-2.5-flash or claude-sonnet-4@20250514)", param="model"
        )
    model = model.removeprefix("models/").removeprefix("google/").removeprefix("anthropic/")
    if not _MODEL.fullmatch(model):
        raise BadRequest(f"model {model[:64]!r} is not a Vertex AI model name", param="model")
    return model


def _is_claude(model: str) -> bool:
    return model.removeprefix("anthropic/").startswith("claude")


def _embeddings_request(body: JSON) -> JSON:
    raw = body.get("input")
    inputs = raw if isinstance(raw, list) else [raw]
    if not inputs or not all(isinstance(i, str) and i for i in inputs):
        raise BadRequest("input must be a non-empty string or list of strings", param="input")
    task = body.get("task_type")
    instances = [
        {"content": text, **({"task_type": task} if isinstance(task, str) else {})} for text in inputs
    ]
    out: JSON = {"instances": instances}
    if isinstance(body.get("dimensions"), int):
        out["parameters"] = {"outputDimensionality": body["dimensions"]}
    return out


def _embeddings_answer(body: bytes, model: str, request: JSON) -> JSON:
    try:
        answer = msgspec.json.decode(body)
    except msgspec.DecodeError:
        answer = None
    if not isinstance(answer, dict):
        raise UpstreamUnavailable("invalid response received from vertex-ai: not JSON", provider="vertex-ai")
    vectors, tokens = [], 0
    for prediction in answer.get("predictions") or ():
        embeddings = (prediction or {}).get("embeddings") or {}
        vectors.append(embeddings.get("values") or [])
        tokens += int((embeddings.get("statistics") or {}).get("token_count") or 0)
    return embedding_list(model, vectors, as_base64=request.get("encoding_format") == "base64", tokens=tokens)
