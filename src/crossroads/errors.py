"""Every error the gateway can answer with, and the one place its OpenAI-shaped body is built.

    GatewayError                      500 api_error
    ├── BadRequest                    400 invalid_request_error
    │   ├── ConfigError               400 invalid_request_error (code invalid_config)
    │   ├── PayloadTooLarge           413 invalid_request_error (code request_too_large)
    │   └── UnsupportedEndpoint       400 invalid_request_error (code unsupported_endpoint)
    ├── AuthError                     401 authentication_error
    ├── Forbidden                     403 permission_error
    ├── NotFound                      404 invalid_request_error (code not_found)
    ├── Conflict                      409 invalid_request_error (code conflict)
    ├── MethodNotAllowed              405 invalid_request_error (code method_not_allowed)
    ├── NotImplementedHere            501 invalid_request_error (code not_implemented)
    ├── RateLimited                   429 rate_limit_error
    ├── BudgetExceeded                412 budget_exceeded
    └── UpstreamError                 the provider's status, normalised, provider named
        ├── UpstreamTimeout           408 timeout_error (Portkey's contract)
        ├── UpstreamUnavailable       502 api_error (unreachable, reset, unparseable)
        └── AllTargetsFailed          status of the last failure

Messages are written for the caller; they never carry a secret. Provider text is
passed through `redact` by the adapter that produced it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

JSON = dict[str, Any]

_encode = msgspec.json.encode


class GatewayError(Exception):
    status: ClassVar[int] = 500
    type: ClassVar[str] = "api_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.http_status = status if status is not None else self.status
        self.headers = headers or {}

    @property
    def error_type(self) -> str:
        return self.type

    def body(self) -> JSON:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def render(self) -> bytes:
        return _encode(self.body())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.http_status}, {self.message!r})"


class BadRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class ConfigError(BadRequest):
    default_code = "invalid_config"


class PayloadTooLarge(BadRequest):
    status = 413
    default_code = "request_too_large"


class UnsupportedEndpoint(BadRequest):
    default_code = "unsupported_endpoint"


class AuthError(GatewayError):
    status = 401
    type = "authentication_error"
    default_code = "invalid_api_key"


class Forbidden(GatewayError):
    status = 403
    type = "permission_error"
    default_code = "forbidden"


class NotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    default_code = "not_found"


class Conflict(GatewayError):
    status = 409
    type = "invalid_request_error"
    default_code = "conflict"


class MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    default_code = "method_not_allowed"


class NotImplementedHere(GatewayError):
    """A Portkey control-plane feature this gateway does not serve (yet): refused, never proxied."""

    status = 501
    type = "invalid_request_error"
    default_code = "not_implemented"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class BudgetExceeded(GatewayError):
    status = 412
    type = "budget_exceeded"
    default_code = "budget_exceeded"


# Statuses a failure may be retried on by default (Portkey's RETRY_STATUS_CODES).
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


class UpstreamError(GatewayError):
    """A failure answered by (or on the way to) a provider.

    `retryable` tells the routing engine whether another try may succeed;
    `retry_after_s` carries a server-directed wait when the provider gave one.
    """

    status = 502
    type = "api_error"

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status: int | None = None,
        error_type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        retryable: bool | None = None,
        retry_after_s: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, param=param, code=code, status=status, headers=headers)
        self.provider = provider
        self._error_type = error_type
        self.retryable = self.http_status in RETRYABLE_STATUSES if retryable is None else retryable
        self.retry_after_s = retry_after_s

    @property
    def error_type(self) -> str:
        return self._error_type or type_for_status(self.http_status)

    def body(self) -> JSON:
        body = super().body()
        if self.provider is not None:
            body["provider"] = self.provider
        return body


class UpstreamTimeout(UpstreamError):
    status = 408
    type = "timeout_error"
    default_code = None

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        super().__init__(message, provider=provider, status=408, error_type="timeout_error", retryable=True)


class UpstreamUnavailable(UpstreamError):
    status = 502
    default_code = "upstream_unavailable"

    def __init__(self, message: str, *, provider: str | None = None, status: int = 502) -> None:
        super().__init__(message, provider=provider, status=status, retryable=True)


class AllTargetsFailed(UpstreamError):
    default_code = "all_targets_failed"


def type_for_status(status: int) -> str:
    """The OpenAI error `type` a status implies when the provider gave none."""
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 404 or (400 <= status < 500 and status not in (408, 429)):
        return "invalid_request_error"
    if status == 408:
        return "timeout_error"
    if status == 429:
        return "rate_limit_error"
    return "api_error"
