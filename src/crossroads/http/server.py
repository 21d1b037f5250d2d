"""Running the ASGI app: uvicorn (uvloop + httptools), N worker processes, graceful drain."""

from __future__ import annotations

import atexit
import logging
import math
import os
import shutil
import tempfile
from typing import Any

import uvicorn

from crossroads.http.protocol import GatewayHttpProtocol
from crossroads.observability.metrics import MULTIPROCESS_ENV
from crossroads.settings import Settings


class _IntendedAbort(logging.Filter):
    """We end broken streams without the terminating chunk on purpose; uvicorn calls that an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "ASGI callable returned without completing response."


def logging_config(level: str) -> dict[str, Any]:
    upper = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"intended_abort": {"()": _IntendedAbort}},
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
                "filters": ["intended_abort"],
            },
        },
        "loggers": {
            "crossroads": {"handlers": ["stderr"], "level": upper, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": upper, "propagate": False},
            "uvicorn.error": {"level": upper},
            "uvicorn.access": {"handlers": ["stderr"], "level": upper, "propagate": False},
        },
    }


def serve(settings: Settings, env: dict[str, str]) -> None:
    """Start serving; `env` holds the CROSSROADS_* values the worker processes must see."""
    os.environ.update(env)
    if settings.workers > 1 and settings.metrics.enabled and not os.environ.get(MULTIPROCESS_ENV):
        # Each worker writes its metric values to files here; a scrape of any worker sums them.
        directory = tempfile.mkdtemp(prefix="crossroads-metrics-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        os.environ[MULTIPROCESS_ENV] = directory
    uvicorn.run(
        "crossroads.app:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers if settings.workers > 1 else None,
        loop="uvloop",
        http=GatewayHttpProtocol,
        lifespan="on",
        access_log=settings.access_log,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=math.ceil(settings.drain_timeout_s),
        log_config=logging_config(settings.log_level),
        log_level=settings.log_level,
    )
