"""Browser fixtures: one real `vramplan serve` on a free port, Debian's Chromium through Playwright, and a
page that refuses every request outside the server and serves the page under a strict CSP.

CI: apt-get install -y chromium && pip install playwright (no `playwright install`: Debian's chromium).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "fastapi", reason="the web tests need the web extra: pip install 'vramplan[web]'"
)
import httpx

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# What the hardened server sends: no inline script or style, nothing from another origin.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
SCREENSHOTS = os.environ.get("VRAMPLAN_SCREENSHOTS")  # e.g. docs/screenshots: save one PNG per view


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]

    def post(self, path: str, body: dict[str, Any]) -> Any:
        r = httpx.post(f"{self.url}{path}", json=body, timeout=60)
        assert r.status_code < 300, r.text
        return r.json()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("web-server")
    port = _free_port()
    env = {
        **os.environ,
        "VRAMPLAN_DATABASE_URL": f"sqlite:///{folder / 'plans.db'}",
        "VRAMPLAN_ALLOW_HUB": "false",
        "HF_HUB_OFFLINE": "1",
        "VRAMPLAN_RATE_LIMIT_PER_S": "0",
    }
    env.pop("DATABASE_URL", None)
    log = folder / "server.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vramplan",
                "serve",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code in (200, 503):
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError(f"server did not answer /healthz:\n{log.read_text()}")
    yield Server(url, proc)
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module (Playwright's sync API allows one running instance per thread, and
    other modules start their own)."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@dataclass
class Watch:
    """What a page did that it must not: requests outside the server, script errors, CSP refusals."""

    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    http_errors_expected: bool = False  # a test of error states sees the browser log the API's 4xx

    def console(self, message: Any) -> None:
        if message.type != "error":
            return
        if self.http_errors_expected and "responded with a status of 4" in message.text:
            return
        self.errors.append(f"console error: {message.text}")


def open_page(
    browser: Any, server: Server, width: int = 1280, height: int = 1400, csp: bool = True
) -> tuple[Any, Any, Watch]:
    """A page whose requests outside the server are refused and recorded; ``csp`` adds the strict policy
    (off for the stored-XSS test, which must show that the page's own code never runs data as HTML)."""
    # csp=False also bypasses the policy the server itself now sends, so the page's own code is tested bare.
    context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=not csp)
    watch = Watch()

    def guard(route: Any) -> None:
        url = route.request.url
        if not url.startswith(server.url + "/"):
            watch.outside.append(url)
            route.abort()
            return
        if not csp:
            route.continue_()
            return
        response = route.fetch()
        headers = {**response.headers, "content-security-policy": CSP}
        route.fulfill(response=response, headers=headers)

    context.route("**/*", guard)
    page = context.new_page()
    page.on("pageerror", lambda e: watch.errors.append(f"page error: {e}"))
    page.on("console", watch.console)
    return context, page, watch


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    """A 1280 px page; at the end nothing was fetched outside the server and nothing failed."""
    context, pg, watch = open_page(browser, server)
    pg.watch = watch
    yield pg
    context.close()
    assert not watch.outside, f"requests outside the server: {watch.outside}"
    assert not watch.errors, watch.errors


def shot(page: Any, name: str) -> None:
    """Save a screenshot of the open view when VRAMPLAN_SCREENSHOTS names a folder."""
    if not SCREENSHOTS:
        return
    folder = Path(SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, type="png")
    try:  # a palette PNG is a third of the size and reads the same
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=64)
    small.save(path, optimize=True)
