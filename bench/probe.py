"""Time to first streamed byte, measured with a raw keep-alive socket (same client for every target)."""

from __future__ import annotations

import socket
import statistics
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from bench.scenarios import Scenario


def ttfb_ms(url: str, scenario: Scenario, headers: dict[str, str], *, count: int) -> dict[str, float]:
    """p50/p99 milliseconds from sending a request to receiving its first `data:` bytes."""
    parts = urlsplit(url)
    body = scenario.body.encode()
    head = [
        f"POST {parts.path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    samples = []
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for number in range(count + 20):
            start = time.perf_counter()
            sock.sendall(request)
            data = b""
            first = None
            while True:
                data += sock.recv(65536)
                if first is None and b"data:" in data:
                    first = time.perf_counter() - start
                if data.endswith(b"\r\n0\r\n\r\n") or (
                    b"[DONE]" in data and b"content-length" in data.lower()
                ):
                    break
            if number >= 20 and first is not None:  # the first 20 warm up
                samples.append(first * 1000)
    samples.sort()
    return {
        "p50": statistics.median(samples),
        "p99": samples[int(len(samples) * 0.99) - 1],
        "count": len(samples),
    }
