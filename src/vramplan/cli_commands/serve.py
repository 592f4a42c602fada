"""`vramplan serve`: the HTTP API and the web page under uvicorn."""

from __future__ import annotations

from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)


#: Connections served at once per process; uvicorn answers 503 beyond it.
MAX_CONNECTIONS = 1000


def serve_command(
    host: Annotated[
        str,
        typer.Option("--host", help="Address to bind; 0.0.0.0 exposes the server to the network."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Plans store URL (default: SQLite in your data directory; postgresql://... for PostgreSQL). Also DATABASE_URL.",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Server processes (each with its own cache and rate limit unless --redis-url).",
        ),
    ] = 1,
    auth: Annotated[
        str | None,
        typer.Option(
            "--auth",
            help="none (default), or tokens: /api/* needs 'Authorization: Bearer <token>' from "
            "VRAMPLAN_API_TOKENS='name:token,...'; plans belong to the token's name. Also VRAMPLAN_AUTH.",
        ),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(
            "--redis-url",
            help="redis://host:port/0 shared by every replica for the rate limit and the result "
            "cache. Also VRAMPLAN_REDIS_URL.",
        ),
    ] = None,
    allowed_hosts: Annotated[
        str | None,
        typer.Option(
            "--allowed-hosts",
            help="Comma-separated Host header values accepted (default: localhost names on a "
            "loopback address, any on others). Also VRAMPLAN_ALLOWED_HOSTS (JSON list).",
        ),
    ] = None,
    trusted_proxies: Annotated[
        str | None,
        typer.Option(
            "--trusted-proxies",
            help="Comma-separated proxy addresses whose X-Forwarded-For is believed (default none).",
        ),
    ] = None,
    allow_hub: Annotated[
        bool,
        typer.Option(
            "--allow-hub/--no-hub",
            help="Resolve unknown names as Hugging Face Hub ids (off by default; never with your "
            "HF_TOKEN for anonymous clients).",
        ),
    ] = False,
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning, error.")
    ] = "info",
) -> None:
    """Serve the API (/api/..., /docs) and the web page (/) with uvicorn. Needs the web extra."""
    import json
    import os

    try:
        import uvicorn

        from vramplan.service.app import create_app
        from vramplan.service.settings import LOOPBACK_HOSTS, Settings
    except ImportError as exc:  # the web extra is missing
        from vramplan.extras import missing_extra

        raise missing_extra(exc, "the web service", "web") from None
    from vramplan.errors import InputError

    _configure_logging(log_level)
    # Every option goes through the environment so worker processes (--workers) see it too.
    if database_url is not None:
        os.environ["VRAMPLAN_DATABASE_URL"] = database_url
    if redis_url is not None:
        os.environ["VRAMPLAN_REDIS_URL"] = redis_url
    if auth is not None:
        if auth not in ("none", "tokens"):
            raise InputError(f"--auth must be none or tokens, got {auth!r}")
        os.environ["VRAMPLAN_AUTH"] = auth
    if allow_hub:
        os.environ["VRAMPLAN_ALLOW_HUB"] = "true"
    if allowed_hosts is not None:
        hosts = [h.strip() for h in allowed_hosts.split(",") if h.strip()]
        os.environ["VRAMPLAN_ALLOWED_HOSTS"] = json.dumps(hosts)
    elif "VRAMPLAN_ALLOWED_HOSTS" not in os.environ and host not in LOOPBACK_HOSTS:
        os.environ["VRAMPLAN_ALLOWED_HOSTS"] = '["*"]'
    if trusted_proxies is not None:
        proxies = [p.strip() for p in trusted_proxies.split(",") if p.strip()]
        os.environ["VRAMPLAN_TRUSTED_PROXIES"] = json.dumps(proxies)
    # The Hub's own timeouts, short: a slow Hub must not hold a request (failures are then cached).
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "3")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "5")
    # Raised, not fail()ed: the entry point maps these to one line and exit code 1.
    settings = Settings()
    settings.token_owners()
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": False,
        "proxy_headers": False,  # the app applies X-Forwarded-* from --trusted-proxies only
        "server_header": False,
        "timeout_keep_alive": 5,
        "limit_concurrency": MAX_CONNECTIONS,
        "http": "vramplan.service.slow_clients:HeaderTimeoutH11Protocol",
    }
    if workers > 1:
        uvicorn.run("vramplan.service.app:create_app", factory=True, workers=workers, **options)
        return
    uvicorn.run(create_app(settings), **options)


def _configure_logging(level: str) -> None:
    """Plain messages on stderr; the vramplan.access logger already writes JSON lines."""
    import logging

    logging.basicConfig(level=level.upper(), format="%(message)s")
