"""The `crossroads` command: `serve` (and later tools) over the same settings."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from crossroads import __version__
from crossroads.settings import SettingsError, load_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crossroads", description="An OpenAI-compatible AI gateway.")
    parser.add_argument("--version", action="version", version=f"crossroads {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", metavar="FILE", help="YAML settings file (default: $CROSSROADS_CONFIG)")
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8787)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")

    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return 2  # pragma: no cover - argparse enforces the command


def _serve(args: argparse.Namespace) -> int:
    env: dict[str, str] = {}
    if args.config:
        env["CROSSROADS_CONFIG"] = os.path.abspath(args.config)
    for name in ("host", "port", "workers"):
        value = getattr(args, name)
        if value is not None:
            env[f"CROSSROADS_{name.upper()}"] = str(value)
    try:
        settings = load_settings(env={**os.environ, **env})
        from crossroads.app import create_app  # noqa: PLC0415  (heavy imports only when serving)

        create_app(settings)  # validates the parts before any worker starts
    except SettingsError as exc:
        print(f"crossroads: {exc}", file=sys.stderr)
        return 2
    from crossroads.http.server import serve as run  # noqa: PLC0415

    url = f"http://{settings.host}:{settings.port}"
    workers = f"{settings.workers} worker{'s' if settings.workers > 1 else ''}"
    example = '{"model":"mock-1","messages":[{"role":"user","content":"Hello!"}]}'
    print(
        f"crossroads {__version__} on {url} ({workers}); try:\n"
        f"  curl {url}/v1/chat/completions -H 'content-type: application/json' "
        f"-H 'x-portkey-provider: mock' -d '{example}'",
        file=sys.stderr,
    )
    run(settings, env)
    return 0
