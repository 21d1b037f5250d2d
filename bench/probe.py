"""Time to first streamed byte, measured with a raw keep-alive socket (same client for every target)."""

from __future__ import annotations

import socket
import statistics
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from bench.scenarios import Scenario

FIRST = (b"data:", b"event:", b":event-type")  # the first bytes of an event, whatever the format


def ttfb_ms(url: str, scenario: Scenario, headers: dict[str, str], *, count: int) -> dict[str, float]:
    """p50/p99 milliseconds from sending a request to receiving its first event bytes."""
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
            first = _read_response(sock, start)
            if number >= 20:  # the first 20 warm up
                samples.append(first * 1000)
    samples.sort()
    return {
        "p50": statistics.median(samples),
        "p99": samples[int(len(samples) * 0.99) - 1],
        "count": len(samples),
    }


def _read_response(sock: socket.socket, start: float) -> float:
    """Read one whole response (content-length or chunked); return when its first event arrived."""
    data = b""
    first: float | None = None
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    lowered = head.lower()
    length = None
    for line in lowered.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    while True:
        if first is None and any(marker in body for marker in FIRST):
            first = time.perf_counter() - start
        if length is not None and len(body) >= length:
            break
        if length is None and body.endswith(b"\r\n0\r\n\r\n"):
            break
        body += sock.recv(65536)
    return first if first is not None else time.perf_counter() - start
