"""`vramplan serve`: the HTTP API and the web page under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)


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
            "--workers", help="Server processes (each with its own cache and rate-limit buckets)."
        ),
    ] = 1,
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning, error.")
    ] = "info",
) -> None:
    """Serve the API (/api/..., /docs) and the web page (/) with uvicorn. Needs the web extra."""
    import os

    try:
        import uvicorn

        from vramplan.service.app import create_app
        from vramplan.service.settings import Settings
    except ImportError as exc:  # the web extra is missing
        from vramplan.extras import missing_extra

        raise missing_extra(exc, "the web service", "web") from None
    _configure_logging(log_level)
    if database_url is not None:
        os.environ["VRAMPLAN_DATABASE_URL"] = database_url  # reaches worker processes too
    if workers > 1:
        uvicorn.run(
            "vramplan.service.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=False,
        )
        return
    settings = Settings()
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level, access_log=False)


def _configure_logging(level: str) -> None:
    """Plain messages on stderr; the vramplan.access logger already writes JSON lines."""
    import logging

    logging.basicConfig(level=level.upper(), format="%(message)s")
