"""The `crossroads` command: `serve`, `check-config` and the admin commands, over the same settings."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

from crossroads import __version__
from crossroads.settings import Settings, SettingsError, load_settings, prepare_database
from crossroads.storage.catalog import CatalogUnavailable, open_catalog, shown


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
        "config",
        help="a JSON or YAML file, inline JSON, the id of a config in the settings, or the slug or id "
        "of a config saved with the admin API or `crossroads configs create`",
    )
    check.add_argument(
        "--settings",
        metavar="FILE",
        help="settings file holding saved configs and the database_url (default: $CROSSROADS_CONFIG)",
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
            where = args.settings or os.environ.get("CROSSROADS_CONFIG") or "no settings file"
            if text in settings.configs:
                print(f"crossroads: {text!r} is a config of the settings ({where})", file=sys.stderr)
                source = settings.configs[text]
            else:
                source, looked = _stored_config(settings, text)
                if source is None:
                    known = ", ".join(sorted(settings.configs)) or "none"
                    print(
                        f"crossroads: {text!r} is not a file, inline JSON, a config of the settings "
                        f"({where}: {known}) or {looked}",
                        file=sys.stderr,
                    )
                    return 2
                print(f"crossroads: {text!r} is {looked}", file=sys.stderr)
        node = parse_config(source, origin=text if len(text) < 80 else "config")
    except CatalogUnavailable as exc:
        print(f"crossroads: {exc}", file=sys.stderr)
        return 2
    except (ConfigError, SettingsError, yaml.YAMLError, OSError) as exc:
        message = exc.message if isinstance(exc, ConfigError) else str(exc)
        print(f"crossroads: {message}", file=sys.stderr)
        return 2
    print(json.dumps(to_dict(node), indent=2) if args.json else tree(node))
    return 0


def _stored_config(settings: Settings, ref: str) -> tuple[dict[str, Any] | None, str]:
    """(the saved config with this slug or id, or None; where it was looked for, for the message)."""
    from crossroads.governance import records as rec  # noqa: PLC0415

    url = settings.database_url
    if not url.startswith(("postgresql://", "postgres://")):
        path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
        if path in ("", ":memory:") or not os.path.isfile(path):
            return None, f"a saved config in the database (there is none at {path or url})"
    catalog = open_catalog(url)

    async def look() -> tuple[str | None, list[str]]:
        await catalog.start()
        try:
            data = await catalog.find(rec.CONFIG, ref) or await catalog.get(rec.CONFIG, ref)
            names = (
                [] if data else [rec.decode(d, rec.SavedConfig).slug for d in await catalog.all(rec.CONFIG)]
            )
            return data, names
        finally:
            await catalog.close()

    data, names = asyncio.run(look())
    if data is None:
        saved = ", ".join(sorted(names)[:20]) or "none"
        return None, f"a saved config in the database {shown(url)} (saved: {saved})"
    config = rec.decode(data, rec.SavedConfig)
    status = "" if config.status == "active" else f", {config.status}: requests cannot use it"
    return config.config, (
        f"the saved config {config.slug!r} (version {config.version}{status}) in the database {shown(url)}"
    )


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
        prepare_database(settings, {**os.environ, **env})
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
        f"crossroads {__version__} on {url} ({workers}), database {shown(settings.database_url)}; try:\n"
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
