"""create_app(settings): routers, exception handlers, the edge middleware, the static page.

Everything the app needs is built here from ``settings`` (store, metrics, caches, the worker pool,
Redis) and kept on ``app.state``; nothing is created at import time, so tests build as many apps as
they like.

Middleware, outermost first: proxy headers (only from ``trusted_proxies``), TrustedHost (DNS
rebinding), then the edge (auth, rate limit, body limits, security headers, metrics, access log).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from vramplan.errors import StoreUnavailableError
from vramplan.service import app_errors
from vramplan.service.metrics import Metrics
from vramplan.service.middleware import EdgeMiddleware
from vramplan.service.settings import Settings, get_settings
from vramplan.service.shared import make_shared
from vramplan.service.worker import WorkerPool
from vramplan.store.repository import Store, redact

logger = logging.getLogger("vramplan.service")

DESCRIPTION = """\
How much GPU memory, which GPUs, and what it costs to serve or fine-tune an LLM.

Every response is the JSON the matching CLI command prints with `--json`. Models are named by
catalogue name (GET /api/models), by Hugging Face Hub id when the operator enabled the Hub
(config.json only; no model code runs), or sent as the content of a config.json. Errors are
`{"error": {"type", "message"}}`. A server started with `--auth tokens` needs
`Authorization: Bearer <token>` on /api/*.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """A fresh app; ``settings`` defaults to the environment (``VRAMPLAN_*``, ``DATABASE_URL``)."""
    settings = settings or get_settings()
    token_owners = settings.token_owners()  # InputError at start-up when malformed
    store = Store(settings.database_url)
    pool = WorkerPool(
        settings.compute_workers,
        settings.compute_timeout_s,
        settings.compute_memory_bytes,
        settings.compute_queue_wait_s,
    )
    result_cache, limiter, redis = make_shared(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            await run_in_threadpool(store.ensure_ready)  # Alembic upgrade head
        except StoreUnavailableError as exc:
            logger.warning("plans store not ready at start-up (will retry per request): %s", exc)
        await pool.start()
        yield
        pool.close()
        if redis is not None:
            await redis.close()
        store.dispose()

    app = FastAPI(
        title="vramplan",
        version=app_errors.version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served below from local files (FastAPI's default loads a CDN)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.metrics = Metrics()
    app.state.pool = pool
    app.state.result_cache = result_cache
    app.state.redis = redis
    app.dependency_overrides[get_settings] = lambda: settings
    app_errors.install(app)

    from vramplan.service.routes import estimate, health, page, plans, simulate

    for module in (estimate, simulate, plans, health, page):
        app.include_router(module.router)
    for name in OPTIONAL_ROUTES:
        optional: Any = _optional_route(name)
        if optional is not None:
            app.include_router(optional.router)
    _add_docs(app)

    static = resources.files("vramplan.service") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["content-type", "authorization"],
        )
    app.add_middleware(
        EdgeMiddleware,
        settings=settings,
        metrics=app.state.metrics,
        limiter=limiter,
        token_owners=token_owners,
    )
    if "*" not in settings.allowed_hosts:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    if settings.trusted_proxies:
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    logger.info(
        "vramplan service configured: store %s, auth %s, %s, hosts %s",
        redact(store.url),
        settings.auth,
        "shared limit and cache in Redis" if redis is not None else "in-process limit and cache",
        ",".join(settings.allowed_hosts),
    )
    return app


def _add_docs(app: FastAPI) -> None:
    """/docs: Swagger UI 5 vendored in ``docs_ui/vendor`` and a start script file (no inline script,
    so the page's Content-Security-Policy holds there too; nothing is loaded from a CDN)."""
    ui = resources.files("vramplan.service") / "docs_ui"

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse((ui / "index.html").read_text(encoding="utf-8"))

    @app.get("/docs/init.js", include_in_schema=False)
    def docs_init() -> FileResponse:
        return FileResponse(str(ui / "init.js"), media_type="text/javascript")

    app.mount("/docs/vendor", StaticFiles(directory=str(ui / "vendor")), name="docs-vendor")


# Routes whose library function is written elsewhere; each is included when its module imports.
OPTIONAL_ROUTES = ("vllm", "explain", "plan", "train", "perf", "sglang")


def _optional_route(name: str) -> Any:
    import importlib

    try:
        return importlib.import_module(f"vramplan.service.routes.{name}")
    except ImportError as exc:
        logger.info("route /api/%s not available: %s", name, exc)
        return None
