"""Every error is OpenAI-shaped, has the right status, and carries the request and trace ids."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.gateway import GatewayServer
from tests.support.upstream import FakeUpstream, Reply, fixture_bytes

BODY: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "x"}]}


def post(gateway: GatewayServer, headers: dict[str, str], **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("json", BODY)
    with gateway.client() as http:
        return http.post(kwargs.pop("path", "/v1/chat/completions"), headers=headers, **kwargs)


def assert_openai_error(
    resp: httpx.Response, status: int, *, contains: str = "", code: str | None = None
) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["x-portkey-request-id"]
    assert resp.headers["x-portkey-trace-id"]
    body = resp.json()
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert contains in error["message"], error["message"]
    if code is not None:
        assert error["code"] == code
    assert "html-message" not in body
    return error


def test_missing_provider(gateway: GatewayServer) -> None:
    error = assert_openai_error(
        post(gateway, {}), 400, contains="x-portkey-provider", code="missing_provider"
    )
    assert error["type"] == "invalid_request_error"


def test_unknown_provider_names_the_valid_ones(gateway: GatewayServer) -> None:
    error = assert_openai_error(post(gateway, {"x-portkey-provider": "nope"}), 400, contains="'nope'")
    for slug in ("openai", "groq", "mistral-ai", "mock", "vllm"):
        assert slug in error["message"]


def test_unknown_path_is_404_json(gateway: GatewayServer) -> None:
    with gateway.client() as http:
        assert_openai_error(http.get("/nothing-here"), 404, contains="/nothing-here")
        assert_openai_error(http.post("/v1"), 404)


def test_wrong_method_is_405_json(gateway: GatewayServer) -> None:
    with gateway.client() as http:
        resp = http.put("/v1/chat/completions", json=BODY, headers={"x-portkey-provider": "mock"})
        assert_openai_error(resp, 405, code="method_not_allowed")
        assert "POST" in resp.headers["allow"]
        assert_openai_error(http.patch("/v1/anything"), 405)
        assert_openai_error(http.post("/health"), 405)


def test_get_on_a_post_only_route_is_a_405_that_never_reaches_the_provider(
    gateway: GatewayServer, fake: FakeUpstream
) -> None:
    head = {"x-portkey-provider": "openai", "x-portkey-custom-host": f"{fake.url}/v1"}
    with gateway.client() as http:
        for path in ("/v1/embeddings", "/v1/completions", "/v1/images/generations", "/v1/messages"):
            resp = http.get(path, headers=head)
            assert_openai_error(resp, 405, code="method_not_allowed")
            assert resp.headers["allow"] == "POST"
    assert fake.requests == []


def test_the_root_links_only_to_what_is_served(gateway: GatewayServer) -> None:
    with gateway.client() as http:
        root = http.get("/").json()
        assert root["name"] == "crossroads"
        for name in ("health", "ready", "metrics"):
            assert http.get(root[name]).status_code == 200, name
        assert "docs" not in root


@pytest.mark.parametrize(
    ("body", "contains"),
    [(b"{not json", "not valid JSON"), (b"[1, 2]", "JSON object"), (b"", "empty"), (b"  \n", "empty")],
)
def test_bad_bodies(gateway: GatewayServer, body: bytes, contains: str) -> None:
    resp = post(
        gateway, {"x-portkey-provider": "mock", "content-type": "application/json"}, json=None, content=body
    )
    assert_openai_error(resp, 400, contains=contains)


def test_body_over_the_limit_is_413() -> None:
    server = GatewayServer(max_request_bytes=1000).start()
    try:
        big = {"model": "m", "messages": [{"role": "user", "content": "x" * 2000}]}
        assert_openai_error(
            post(server, {"x-portkey-provider": "mock"}, json=big), 413, code="request_too_large"
        )

        def chunks() -> Iterator[bytes]:  # no content-length: the limit is enforced while reading
            for _ in range(10):
                yield b"x" * 500

        resp = post(server, {"x-portkey-provider": "mock"}, json=None, content=chunks())
        assert_openai_error(resp, 413)
        assert post(server, {"x-portkey-provider": "mock"}).status_code == 200
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("header", "value", "contains"),
    [
        ("x-portkey-metadata", "{not json", "x-portkey-metadata is not valid JSON"),
        ("x-portkey-metadata", "[1]", "must be a JSON object"),
        ("x-portkey-metadata", '{"a": {"b": 1}}', "value of 'a' must be a string"),
        ("x-portkey-request-timeout", "soon", "positive number of milliseconds"),
        ("x-portkey-request-timeout", "-5", "positive number of milliseconds"),
        ("x-portkey-strict-open-ai-compliance", "maybe", "true or false"),
        ("x-portkey-forward-headers", "x-portkey-api-key", "cannot forward gateway headers"),
        ("x-portkey-forward-headers", "host", "cannot forward host"),
        ("x-portkey-trace-id", "t" * 300, "x-portkey-trace-id"),
    ],
)
def test_bad_header_values(gateway: GatewayServer, header: str, value: str, contains: str) -> None:
    resp = post(gateway, {"x-portkey-provider": "mock", header: value})
    error = assert_openai_error(resp, 400, contains=contains)
    assert error["param"] == header


def test_an_unknown_virtual_key_is_a_400_naming_it(gateway: GatewayServer) -> None:
    resp = post(gateway, {"x-portkey-virtual-key": "vk-1"})
    error = assert_openai_error(resp, 400, contains="'vk-1'")
    assert error["param"] == "x-portkey-virtual-key"
    assert error["code"] == "virtual_key_not_found"


def test_sdk_and_cache_headers_are_accepted(gateway: GatewayServer) -> None:
    headers = {
        "x-portkey-provider": "mock",
        "x-portkey-api-key": "",
        "x-portkey-cache": "simple",
        "x-portkey-cache-namespace": "ns",
        "x-portkey-cache-force-refresh": "true",
        "x-portkey-package-version": "portkey-2.3.4",
        "x-portkey-runtime": "CPython",
        "x-portkey-debug": "false",
        "x-portkey-metadata": "{'_user': 'u1'}",
    }
    resp = post(gateway, headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-portkey-cache-status"] == "REFRESH"
    assert post(gateway, {"x-portkey-provider": "mock"}).headers["x-portkey-cache-status"] == "DISABLED"


@pytest.mark.parametrize(
    "host",
    [
        "http://10.0.0.1/v1",
        "http://192.168.1.1",
        "http://169.254.169.254/latest",
        "http://metadata.google.internal",
        "http://2130706433",
        "http://0x7f.1",
        "http://0177.0.0.1",
        "http://[::ffff:10.0.0.1]",
        "ftp://example.com",
        "http://user:pass@example.com",
        "http://printer.local",
        "http://x.internal",
        "file:///etc/passwd",
        "http://[fd00::1]",
        "http://100.64.0.1",
    ],
)
def test_custom_host_ssrf_is_refused(gateway: GatewayServer, host: str) -> None:
    resp = post(gateway, {"x-portkey-provider": "openai", "x-portkey-custom-host": host})
    assert_openai_error(resp, 400, contains="Invalid custom host", code="invalid_custom_host")


def test_unreachable_upstream_is_502(gateway: GatewayServer) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    resp = post(
        gateway, {"x-portkey-provider": "openai", "x-portkey-custom-host": f"http://127.0.0.1:{port}/v1"}
    )
    error = assert_openai_error(resp, 502, contains="could not connect", code="upstream_unavailable")
    assert str(port) not in error["message"]


def sdk(gateway: GatewayServer, fake: FakeUpstream, provider: str = "openai") -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-secret-value-42",
        base_url=f"{gateway.url}/v1",
        max_retries=0,
        default_headers={"x-portkey-provider": provider, "x-portkey-custom-host": f"{fake.url}/v1"},
    )


def test_upstream_400_keeps_status_code_and_param(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on(
        "POST",
        "/v1/chat/completions",
        Reply(status=400, body=fixture_bytes("openai/error.unsupported-parameter.json")),
    )
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(gateway, fake).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}], max_tokens=5
        )
    err = caught.value
    assert err.code == "unsupported_parameter" and err.param == "max_tokens"
    assert err.message.startswith("Error code: 400")
    assert isinstance(err.body, dict) and err.body["message"].startswith(
        "openai error: Unsupported parameter"
    )
    assert err.response.json()["provider"] == "openai"


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (401, openai.AuthenticationError),
        (403, openai.PermissionDeniedError),
        (404, openai.NotFoundError),
        (422, openai.UnprocessableEntityError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_upstream_statuses_map_to_sdk_exceptions(
    gateway: GatewayServer, fake: FakeUpstream, status: int, exception: type[openai.APIStatusError]
) -> None:
    fake.on(
        "POST",
        "/v1/chat/completions",
        Reply(
            status=status,
            headers={"retry-after": "7"},
            body={"error": {"message": "nope", "type": "x", "param": None, "code": None}},
        ),
    )
    with pytest.raises(exception) as caught:
        sdk(gateway, fake).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == status
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.response.headers["x-portkey-request-id"]


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (
            b'{"object":"error","message":"flat shape","type":"invalid_request_error",'
            b'"param":null,"code":"1"}',
            "application/json",
            "flat shape",
        ),
        (b'{"error":"string shape"}', "application/json", "string shape"),
        (b'{"detail":"fastapi shape"}', "application/json", "fastapi shape"),
        (b'{"error":{"code":402,"message":"openrouter shape"}}', "application/json", "openrouter shape"),
        (b"<html><body>Bad Gateway</body></html>", "text/html", "HTTP 400"),
        (b"plain text failure", "text/plain", "plain text failure"),
        (b"", "application/json", "no error body"),
    ],
)
def test_error_shapes_are_normalised(
    gateway: GatewayServer, fake: FakeUpstream, body: bytes, content_type: str, message: str
) -> None:
    fake.on("POST", "/v1/chat/completions", Reply(status=400, body=body, content_type=content_type))
    resp = post(gateway, {"x-portkey-provider": "mistral-ai", "x-portkey-custom-host": f"{fake.url}/v1"})
    error = assert_openai_error(resp, 400, contains=message)
    assert error["message"].startswith("mistral-ai error: ")


def test_provider_key_echoed_in_an_error_is_redacted(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on(
        "POST",
        "/v1/chat/completions",
        Reply(
            status=401,
            body={
                "error": {
                    "message": "Incorrect API key provided: sk-secret-value-42.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            },
        ),
    )
    with pytest.raises(openai.AuthenticationError) as caught:
        sdk(gateway, fake).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert "sk-secret-value-42" not in caught.value.response.text
    assert "***" in caught.value.response.text


def test_unparseable_success_is_502(gateway: GatewayServer, fake: FakeUpstream) -> None:
    fake.on("POST", "/v1/chat/completions", Reply(body=b"{truncated", content_type="application/json"))
    resp = post(gateway, {"x-portkey-provider": "openai", "x-portkey-custom-host": f"{fake.url}/v1"})
    assert_openai_error(resp, 502, contains="not JSON")


def test_unsupported_endpoint_for_provider(gateway: GatewayServer) -> None:
    resp = post(
        gateway,
        {"x-portkey-provider": "perplexity-ai"},
        path="/v1/embeddings",
        json={"model": "m", "input": "x"},
    )
    assert_openai_error(resp, 400, contains="embeddings is not supported by perplexity-ai")


def test_self_hosted_provider_needs_a_custom_host(gateway: GatewayServer) -> None:
    assert_openai_error(post(gateway, {"x-portkey-provider": "vllm"}), 400, contains="x-portkey-custom-host")


def test_multipart_route_needs_multipart(gateway: GatewayServer) -> None:
    resp = post(gateway, {"x-portkey-provider": "mock"}, path="/v1/audio/transcriptions", json={"model": "m"})
    assert_openai_error(resp, 400, contains="multipart/form-data")


# The Portkey page's fallback example as its curl sends it: the config JSON over several lines.
MULTI_LINE_CONFIG = '{\n    "strategy": {"mode": "fallback"},\n    "targets": [{"provider": "mock"}]\n  }'


def test_a_header_value_on_several_lines_gets_a_json_400_saying_so(gateway: GatewayServer) -> None:
    body = b'{"model":"mock-1","messages":[{"role":"user","content":"Hi"}]}'
    request = (
        "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"x-portkey-config: {MULTI_LINE_CONFIG}\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"content-type: application/json" in head.lower()
    error = json.loads(payload)["error"]
    assert error["code"] == "invalid_http_request" and error["type"] == "invalid_request_error"
    assert "on one line" in error["message"]
    # On one line, the same config works.
    one_line = json.dumps(json.loads(MULTI_LINE_CONFIG))
    assert post(gateway, {"x-portkey-config": one_line}).status_code == 200


def test_a_config_whose_quotes_the_shell_removed_gets_a_hint(gateway: GatewayServer) -> None:
    # `-H "x-portkey-config: {"strategy": ...}"`: the inner double quotes end the shell string.
    resp = post(gateway, {"x-portkey-config": "{strategy: {mode: fallback}, targets: [{provider: mock}]}"})
    error = assert_openai_error(resp, 400, code="invalid_config")
    assert "shell removed them" in error["message"] and "single quotes" in error["message"]
    plain = post(gateway, {"x-portkey-config": '{"strategy": {"mode": "fallback"}, "targets": [}'})
    assert "shell" not in assert_openai_error(plain, 400, code="invalid_config")["message"]
