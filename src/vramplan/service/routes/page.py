"""GET /: the single-page web UI (static HTML; vendored Chart.js; works offline)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def index() -> HTMLResponse:
    """The page; ``/?plan=<id>`` opens a saved plan (the page fetches it from /api/plans/<id>)."""
    html = (resources.files("vramplan.service") / "static" / "index.html").read_text(
        encoding="utf-8"
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})
