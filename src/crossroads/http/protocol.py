"""The HTTP/1.1 protocol the server speaks: uvicorn's httptools protocol, with one change.

A request the parser cannot read gets uvicorn's plain-text `Invalid HTTP request received.`;
here it gets an OpenAI-shaped JSON 400 that says what usually causes it: a header value
written on several lines, as in copied examples that spread an `x-portkey-config` JSON over
many lines of a shell command.
"""

from __future__ import annotations

from typing import Final

import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

INVALID_REQUEST: Final = msgspec.json.encode(
    {
        "error": {
            "message": (
                "The request is not valid HTTP and could not be read. The usual cause is a header "
                "value written on several lines (for example an x-portkey-config JSON pasted with "
                "line breaks): every header value must be on one line; `jq -c . config.json` "
                "prints a JSON file as one line"
            ),
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_http_request",
        }
    }
)


class GatewayHttpProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        content = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(INVALID_REQUEST)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                INVALID_REQUEST,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
