"""A Google service account for tests: an RSA key made at import, its key JSON, and a fake
OAuth2 token endpoint that verifies the signed JWT grant with the public half."""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.upstream import FakeUpstream, Recorded, Reply

TOKEN = "ya29.vertex-access-token"
PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = PRIVATE.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()


def service_account(fake: FakeUpstream) -> dict[str, str]:
    return {
        "type": "service_account",
        "client_id": secrets.token_hex(8),  # each key a new credential: no token cached from another test
        "project_id": "sa-project",
        "private_key_id": "kid-1",
        "private_key": PEM,
        "client_email": "gateway@sa-project.iam.gserviceaccount.com",
        "token_uri": f"{fake.url}/token",
    }


def token_endpoint(fake: FakeUpstream) -> Any:
    def answer(seen: Recorded) -> Reply:
        form = parse_qs(seen.body.decode())
        assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
        claims = jwt.decode(
            form["assertion"][0], PRIVATE.public_key(), algorithms=["RS256"], audience=f"{fake.url}/token"
        )
        assert claims["iss"] == "gateway@sa-project.iam.gserviceaccount.com"
        assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
        assert claims["exp"] - claims["iat"] == 3600 and abs(claims["iat"] - time.time()) < 60
        assert jwt.get_unverified_header(form["assertion"][0])["kid"] == "kid-1"
        return Reply(body={"access_token": TOKEN, "expires_in": 3599, "token_type": "Bearer"})

    return answer
