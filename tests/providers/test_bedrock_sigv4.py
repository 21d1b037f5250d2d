"""SigV4 for Bedrock: the gateway's signature matches AWS's published algorithm and the test vector."""

from __future__ import annotations

import datetime
import json

import pytest

from crossroads.providers.base import Target
from crossroads.providers.bedrock import _sign
from crossroads.secret import Secret
from tests.support.aws import expected_authorization
from tests.support.upstream import fixture_json

VECTOR = fixture_json("bedrock/sigv4.converse.vector.json")


def test_the_independent_verifier_reproduces_the_vector() -> None:
    request = VECTOR["request"]
    headers = {
        "content-type": "application/json",
        "host": "bedrock-runtime.us-east-1.amazonaws.com",
        "x-amz-date": VECTOR["expected"]["x-amz-date"],
        "authorization": VECTOR["expected"]["authorization"],
    }
    got = expected_authorization(
        method="POST",
        path="/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
        query="",
        headers=headers,
        body=request["body"].encode(),
        access_key="AKIDEXAMPLE",
        secret_key=VECTOR["credentials"]["secretAccessKey"],
        region="us-east-1",
    )
    assert got == VECTOR["expected"]["authorization"]


def test_the_gateway_signs_like_the_vector(monkeypatch: pytest.MonkeyPatch) -> None:
    fixed = datetime.datetime(2025, 1, 2, 3, 4, 5)

    class FrozenDateTime(datetime.datetime):
        @classmethod
        def utcnow(cls) -> FrozenDateTime:
            return cls(2025, 1, 2, 3, 4, 5)

        @classmethod
        def now(cls, tz: datetime.tzinfo | None = None) -> FrozenDateTime:
            return cls(2025, 1, 2, 3, 4, 5, tzinfo=tz)

    import botocore.auth

    monkeypatch.setattr(botocore.auth.datetime, "datetime", FrozenDateTime)  # type: ignore[attr-defined]
    target = Target(
        provider="bedrock",
        options={
            "aws_access_key_id": Secret("AKIDEXAMPLE"),
            "aws_secret_access_key": Secret(VECTOR["credentials"]["secretAccessKey"]),
            "aws_region": "us-east-1",
        },
    )
    headers = _sign(VECTOR["request"]["url"], VECTOR["request"]["body"].encode(), target)
    assert headers["X-Amz-Date"] == fixed.strftime("%Y%m%dT%H%M%SZ")
    assert headers["Authorization"] == VECTOR["expected"]["authorization"]


def test_a_bad_region_never_reaches_a_hostname() -> None:
    from crossroads.errors import BadRequest
    from crossroads.providers.bedrock import _region

    for region in ("evil.com#", "us-east-1.attacker", "US-EAST-1", ""):
        target = Target(provider="bedrock", options={"aws_region": region})
        if region:
            with pytest.raises(BadRequest, match="not an AWS region"):
                _region(target)
    assert json.dumps(_region(Target(provider="bedrock"))) == '"us-east-1"'
