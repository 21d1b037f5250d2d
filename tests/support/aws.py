"""AWS wire pieces for the fake Bedrock: event-stream frames, and SigV4 verification written
from the specification (independently of botocore, which the gateway signs with)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import quote

from crossroads.codecs.eventstream import encode_frame


def frame(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    return encode_frame(headers, payload)


def event(kind: str, payload: dict[str, Any]) -> bytes:
    return frame(
        [(":event-type", kind), (":content-type", "application/json"), (":message-type", "event")],
        json.dumps(payload).encode(),
    )


def exception(kind: str, message: str) -> bytes:
    return frame(
        [(":exception-type", kind), (":content-type", "application/json"), (":message-type", "exception")],
        json.dumps({"message": message}).encode(),
    )


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def expected_authorization(
    *,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    access_key: str,
    secret_key: str,
    region: str,
    service: str = "bedrock",
) -> str:
    """The Authorization header SigV4 requires for this request (headers: lower-case names)."""
    amz_date = headers["x-amz-date"]
    signed = headers["authorization"].split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")
    canonical_uri = quote(path, safe="/~")  # the path as sent, URI-encoded once more (non-S3 rule)
    canonical_query = "&".join(sorted(query.split("&"))) if query else ""
    canonical_headers = "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in signed)
    canonical = "\n".join(
        [
            method,
            canonical_uri,
            canonical_query,
            canonical_headers,
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(("AWS4" + secret_key).encode(), amz_date[:8])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    credential = f"Credential={access_key}/{scope}"
    return f"AWS4-HMAC-SHA256 {credential}, SignedHeaders={';'.join(signed)}, Signature={signature}"
