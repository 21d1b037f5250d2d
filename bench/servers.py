"""The processes the benchmark starts: nginx (mock upstream), Crossroads, Portkey's gateway."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.scenarios import nginx_locations

PORTKEY_VERSION = "1.15.2"
# The published 1.15.2 fails every streamed request with `TypeError: immutable` on newer
# @hono/node-server releases (Portkey issues #1389/#1550); 1.13.5 is the last that works.
HONO_NODE_SERVER = "1.13.5"


@dataclass
class Server:
    pid: int
    port: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_http(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


@contextmanager
def running(
    args: list[str], port: int, ready_url: str, log: Path, env: dict[str, str] | None = None
) -> Iterator[Server]:
    with log.open("w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        try:
            wait_http(ready_url)
            yield Server(pid=proc.pid, port=port)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def nginx(work: Path) -> Iterator[Server]:
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
daemon off;
error_log {work}/nginx-error.log warn;
pid {work}/nginx.pid;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {work}/nginx-body;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  server {{
    listen 127.0.0.1:{port} reuseport;
    location = /ready {{ return 200 'ok'; }}
{nginx_locations(work)}
  }}
}}
""")
    with running(
        ["taskset", "-c", "1", "nginx", "-c", str(conf)],
        port,
        f"http://127.0.0.1:{port}/ready",
        work / "nginx.log",
    ) as server:
        yield server


@contextmanager
def crossroads(work: Path, name: str = "crossroads", extra: dict[str, str] | None = None) -> Iterator[Server]:
    port = free_port()
    exe = str(Path(sys.executable).parent / "crossroads")
    database = work / f"{name}.db"
    for stale in work.glob(f"{name}.db*"):
        stale.unlink()
    # The fallback scenario measures the worst case: every request pays for the failing
    # target. (With the breaker on, as by default, that target is skipped after 5 failures.)
    env = {
        "CROSSROADS_LOG_LEVEL": "error",
        "CROSSROADS_CIRCUIT_BREAKER__ENABLED": "false",
        "CROSSROADS_DATABASE_URL": f"sqlite:///{database}",
        **(extra or {}),
    }
    with running(
        ["taskset", "-c", "0", exe, "serve", "--port", str(port)],
        port,
        f"http://127.0.0.1:{port}/ready",
        work / f"{name}.log",
        env,
    ) as server:
        yield server


BENCH_ADMIN_KEY = "bench-admin-key-" + "0" * 32


def governed_key(server: Server) -> str:
    """A gateway key with a rate limit on requests and tokens and a cost budget, all far from reach,
    so every request pays for authentication, three reservations and their settlement."""
    body = {
        "name": "bench",
        "rate_limits": [
            {"type": "requests", "unit": "rpm", "value": 1_000_000_000},
            {"type": "tokens", "unit": "rpm", "value": 1_000_000_000_000},
        ],
        "usage_limits": {"credit_limit": 1_000_000_000, "type": "cost", "periodic_reset": "monthly"},
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/v1/api-keys/workspace/service",
        data=json.dumps(body).encode(),
        headers={"x-portkey-api-key": BENCH_ADMIN_KEY, "content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        key: str = json.loads(response.read())["key"]
        return key


def install_portkey(work: Path) -> Path:
    folder = work / "portkey"
    entry = folder / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
    if entry.exists():
        return entry
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text(
        json.dumps(
            {
                "name": "portkey-bench",
                "private": True,
                "dependencies": {"@portkey-ai/gateway": PORTKEY_VERSION},
                "overrides": {"@hono/node-server": HONO_NODE_SERVER},
            }
        )
    )
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder, check=True)
    return entry


@contextmanager
def portkey(work: Path) -> Iterator[Server]:
    entry = install_portkey(work)
    port = free_port()
    with running(
        ["taskset", "-c", "0", "node", str(entry), f"--port={port}", "--headless"],
        port,
        f"http://127.0.0.1:{port}/",
        work / "portkey.log",
    ) as server:
        yield server
