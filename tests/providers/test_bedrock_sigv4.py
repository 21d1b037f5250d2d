"""SigV4 for Bedrock: the gateway's own signer gives AWS's test vector and, on random requests,
exactly what botocore's signer gives."""

from __future__ import annotations

import datetime
import json
from urllib.parse import quote

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from crossroads.providers.base import Target
from crossroads.providers.bedrock import _sign, sigv4
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


def test_the_gateway_signs_like_the_vector() -> None:
    target = Target(
        provider="bedrock",
        options={
            "aws_access_key_id": Secret("AKIDEXAMPLE"),
            "aws_secret_access_key": Secret(VECTOR["credentials"]["secretAccessKey"]),
            "aws_region": "us-east-1",
        },
    )
    now = datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC).timestamp()
    headers = _sign(VECTOR["request"]["url"], VECTOR["request"]["body"].encode(), target, now)
    assert headers["X-Amz-Date"] == "20250102T030405Z"
    assert headers["Authorization"] == VECTOR["expected"]["authorization"]


def botocore_headers(url: str, body: bytes, now: float, region: str, token: str | None) -> dict[str, str]:
    """What botocore's own signer (the reference implementation) sends, at the same instant."""
    frozen = datetime.datetime.fromtimestamp(now, tz=datetime.UTC).replace(tzinfo=None)

    class Frozen(datetime.datetime):
        @classmethod
        def utcnow(cls) -> Frozen:
            return cls(*frozen.timetuple()[:6])

        @classmethod
        def now(cls, tz: datetime.tzinfo | None = None) -> Frozen:
            return cls(*frozen.timetuple()[:6], tzinfo=tz)

    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    original = botocore.auth.datetime.datetime  # type: ignore[attr-defined]
    botocore.auth.datetime.datetime = Frozen  # type: ignore[attr-defined]
    try:
        SigV4Auth(Credentials("AKIDPROP", "secret/with+chars", token), "bedrock", region).add_auth(request)
    finally:
        botocore.auth.datetime.datetime = original  # type: ignore[attr-defined]
    return {k: v for k, v in request.headers.items() if k.lower() != "content-type"}


MODEL_IDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-:/_@", min_size=1, max_size=60).filter(
    lambda m: m.strip(".") != ""
)


@settings(max_examples=200, deadline=None)
@given(
    model=MODEL_IDS,
    action=st.sampled_from(["converse", "converse-stream", "invoke", "invoke-with-response-stream"]),
    body=st.binary(max_size=300),
    now=st.floats(min_value=1.5e9, max_value=2.5e9),
    region=st.sampled_from(["us-east-1", "eu-west-3", "ap-southeast-2"]),
    token=st.one_of(st.none(), st.text(alphabet="ABCDEFGHIJKLMNOPabc123+/=", min_size=10, max_size=40)),
    host=st.sampled_from(
        [
            "https://bedrock-runtime.us-east-1.amazonaws.com",
            "http://127.0.0.1:8080/x",
            "https://proxy.example.com:443",
        ]
    ),
)
def test_the_signature_is_botocores(
    model: str, action: str, body: bytes, now: float, region: str, token: str | None, host: str
) -> None:
    url = f"{host}/model/{quote(model, safe='')}/{action}"
    ours = sigv4.sign(
        url,
        body,
        access_key="AKIDPROP",
        secret_key="secret/with+chars",
        session_token=token,
        region=region,
        service="bedrock",
        now=int(now),
    )
    assert ours == botocore_headers(url, body, int(now), region, token)


def test_a_bad_region_never_reaches_a_hostname() -> None:
    from crossroads.errors import BadRequest
    from crossroads.providers.bedrock import _region

    for region in ("evil.com#", "us-east-1.attacker", "US-EAST-1", ""):
        target = Target(provider="bedrock", options={"aws_region": region})
        if region:
            with pytest.raises(BadRequest, match="not an AWS region"):
                _region(target)
    assert json.dumps(_region(Target(provider="bedrock"))) == '"us-east-1"'
