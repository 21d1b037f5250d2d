"""Portkey request headers -> RequestOptions, as the portkey-ai SDK and curl users send them."""

from __future__ import annotations

import pytest

from crossroads.pipeline.headers import BadHeader, parse_forward_headers, parse_metadata, parse_options
from crossroads.secret import Secret


def test_sdk_headers() -> None:
    opts = parse_options(
        {
            "authorization": "Bearer sk-abc",
            "x-portkey-provider": "OpenAI",
            "x-portkey-api-key": "",
            "x-portkey-package-version": "portkey-2.3.4",
            "x-portkey-runtime": "CPython",
            "x-portkey-strict-open-ai-compliance": "false",
            "x-portkey-metadata": '{"_user": "u1", "n": 3, "ok": true}',
            "x-portkey-request-timeout": "5000",
            "x-portkey-openai-project": "proj",
            "x-portkey-aws-secret-access-key": "very-secret",
            "x-portkey-config": "pc-abc-123",
            "x-portkey-cache-force-refresh": "true",
        }
    )
    assert opts.provider == "openai"
    assert opts.api_key == Secret("sk-abc")
    assert opts.gateway_key is None
    assert opts.strict_open_ai_compliance is False
    assert opts.metadata == {"_user": "u1", "n": "3", "ok": "true"}
    assert opts.request_timeout_ms == 5000
    assert opts.options["openai_project"] == "proj"
    assert isinstance(opts.options["aws_secret_access_key"], Secret)
    assert "very-secret" not in repr(opts)
    assert opts.config == "pc-abc-123" and opts.cache_force_refresh is True
    assert "package_version" not in opts.options and "runtime" not in opts.options


def test_defaults() -> None:
    opts = parse_options({})
    assert opts.provider is None and opts.api_key is None
    assert opts.strict_open_ai_compliance is True
    assert opts.metadata == {} and opts.forward_headers == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("X_Custom_One,x-two", ("x-custom-one", "x-two")),
        (" a , b ,, a ", ("a", "b")),
        ('["X-A", "b"]', ("x-a", "b")),
        ("['X-T', 'Y_U']", ("x-t", "y-u")),  # the SDK's str(list)
        ("", ()),
    ],
)
def test_forward_headers_forms(value: str, expected: tuple[str, ...]) -> None:
    assert parse_forward_headers(value) == expected


@pytest.mark.parametrize("value", ["[1, 2]", "['a'", "x-portkey-config", "content-length", "bad header"])
def test_forward_headers_refused(value: str) -> None:
    with pytest.raises(BadHeader):
        parse_forward_headers(value)


def test_metadata_single_quotes_from_the_docs() -> None:
    assert parse_metadata("{'_user': 'u1'}") == {"_user": "u1"}


@pytest.mark.parametrize("value", ["{", "[]", '{"a": null}', '{"a": [1]}', "'x'"])
def test_metadata_refused(value: str) -> None:
    with pytest.raises(BadHeader, match="x-portkey-metadata"):
        parse_metadata(value)


def test_bearer_prefix_is_optional_and_case_insensitive() -> None:
    assert parse_options({"authorization": "bearer k1"}).api_key == Secret("k1")
    assert parse_options({"authorization": "k2"}).api_key == Secret("k2")
    assert parse_options({"authorization": "Bearer "}).api_key is None
