"""The `crossroads` command: `serve`, `check-config` and the admin commands, over the same settings."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

from crossroads import __version__
from crossroads.settings import SettingsError, load_settings
from crossroads.storage.catalog import CatalogUnavailable, open_catalog


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crossroads", description="An OpenAI-compatible AI gateway.")
    parser.add_argument("--version", action="version", version=f"crossroads {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", metavar="FILE", help="YAML settings file (default: $CROSSROADS_CONFIG)")
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8787)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")

    check = commands.add_parser(
        "check-config", help="validate a Portkey config and print the routing tree as the gateway reads it"
    )
    check.add_argument(
        "config", help="a JSON or YAML file, inline JSON, or the id of a config in the settings"
    )
    check.add_argument(
        "--settings", metavar="FILE", help="settings file holding saved configs (default: $CROSSROADS_CONFIG)"
    )
    check.add_argument(
        "--json", action="store_true", help="print the canonical JSON (secrets masked) instead"
    )

    from crossroads.manage import RESOURCES, add_commands  # noqa: PLC0415
    from crossroads.manage import run as manage  # noqa: PLC0415

    add_commands(commands)
    args = parser.parse_args(argv)
    if args.command in RESOURCES:
        return manage(args)
    if args.command == "serve":
        return _serve(args)
    if args.command == "check-config":
        return _check_config(args)
    return 2  # pragma: no cover - argparse enforces the command


def _check_config(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    import yaml  # noqa: PLC0415

    from crossroads.config.parse import parse_config  # noqa: PLC0415
    from crossroads.config.render import to_dict, tree  # noqa: PLC0415
    from crossroads.errors import ConfigError  # noqa: PLC0415

    text: str = args.config
    source: Any
    try:
        if text.lstrip().startswith("{"):
            source = text
        elif os.path.isfile(text):
            with open(text) as handle:
                source = yaml.safe_load(handle)
        else:
            settings = load_settings(args.settings)
            if text not in settings.configs:
                known = ", ".join(sorted(settings.configs)) or "none"
                print(
                    f"crossroads: {text!r} is not a file, JSON, or a saved config (saved: {known})",
                    file=sys.stderr,
                )
                return 2
            source = settings.configs[text]
        node = parse_config(source, origin=text if len(text) < 80 else "config")
    except (ConfigError, SettingsError, yaml.YAMLError, OSError) as exc:
        message = exc.message if isinstance(exc, ConfigError) else str(exc)
        print(f"crossroads: {message}", file=sys.stderr)
        return 2
    print(json.dumps(to_dict(node), indent=2) if args.json else tree(node))
    return 0


def _open_database(url: str) -> None:
    catalog = open_catalog(url)

    async def probe() -> None:
        await catalog.start()
        await catalog.close()

    asyncio.run(probe())


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
        _open_database(settings.database_url)  # and migrates it once, before the workers
    except SettingsError as exc:
        print(f"crossroads: {exc}", file=sys.stderr)
        return 2
    except CatalogUnavailable as exc:
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
    if settings.workers > 1 and not settings.redis_url:
        print(
            "crossroads: warning: without redis_url each worker counts rate limits and budgets "
            "(and circuit-breaker health) on its own",
            file=sys.stderr,
        )
    run(settings, env)
    return 0
