"""create_app(settings): routers, exception handlers, the edge middleware, the static page.

Everything the app needs is built here from ``settings`` (store, metrics, caches) and kept on
``app.state``; nothing is created at import time, so tests build as many apps as they like.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.staticfiles import StaticFiles

from vramplan.errors import StoreUnavailableError
from vramplan.service import app_errors
from vramplan.service.compute import LRU
from vramplan.service.metrics import Metrics
from vramplan.service.middleware import EdgeMiddleware
from vramplan.service.settings import Settings, get_settings
from vramplan.store.repository import Store, redact

logger = logging.getLogger("vramplan.service")

DESCRIPTION = """\
How much GPU memory, which GPUs, and what it costs to serve or fine-tune an LLM.

Every response is the JSON the matching CLI command prints with `--json`. Models are named by
catalogue name (GET /api/models), by Hugging Face Hub id (config.json only; no model code runs), or
sent as the content of a config.json. Errors are `{"error": {"type", "message"}}`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """A fresh app; ``settings`` defaults to the environment (``VRAMPLAN_*``, ``DATABASE_URL``)."""
    settings = settings or get_settings()
    store = Store(settings.database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            await run_in_threadpool(store.ensure_ready)  # Alembic upgrade head
        except StoreUnavailableError as exc:
            logger.warning("plans store not ready at start-up (will retry per request): %s", exc)
        yield
        store.dispose()

    app = FastAPI(
        title="vramplan", version=app_errors.version(), description=DESCRIPTION, lifespan=lifespan
    )
    app.state.settings = settings
    app.state.store = store
    app.state.metrics = Metrics()
    app.state.estimate_cache = LRU(settings.estimate_cache_size)
    app.dependency_overrides[get_settings] = lambda: settings
    app_errors.install(app)

    from vramplan.service.routes import estimate, health, page, plans, simulate

    for module in (estimate, simulate, plans, health, page):
        app.include_router(module.router)
    for name in OPTIONAL_ROUTES:
        optional: Any = _optional_route(name)
        if optional is not None:
            app.include_router(optional.router)

    static = resources.files("vramplan.service") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["content-type"],
        )
    app.add_middleware(EdgeMiddleware, settings=settings, metrics=app.state.metrics)
    logger.info("vramplan service configured: store %s", redact(store.url))
    return app


# Routes whose library function is written elsewhere; each is included when its module imports.
OPTIONAL_ROUTES = ("vllm", "explain", "plan", "train")


def _optional_route(name: str) -> object | None:
    import importlib

    try:
        return importlib.import_module(f"vramplan.service.routes.{name}")
    except ImportError as exc:
        logger.info("route /api/%s not available: %s", name, exc)
        return None
