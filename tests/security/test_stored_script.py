"""Issue 13 item 4 in Chromium: a plan whose stored content carries markup never runs script when its
permalink is opened (results are computed by the server, and the Content-Security-Policy forbids
inline script and handlers whatever the page does with the text)."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from vramplan.model import catalog

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
if CHROMIUM is None:
    pytest.skip("chromium is not installed (apt-get install -y chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

PAYLOADS = [
    '<img src=x onerror="window.__pwned=1">',
    "<script>window.__pwned=2</script>",
    '<svg onload="window.__pwned=3"></svg>',
    '"><iframe srcdoc="<script>parent.__pwned=4</script>"></iframe>',
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_permalink_runs_no_stored_script(server, payload: str) -> None:
    cfg = catalog.catalogue()["meta-llama/Llama-3.1-8B"]
    body = {
        "name": payload,
        "kind": "estimate",
        "scenario": {"config": cfg, "name": payload, "context": 4096, "gpu": "H100-80GB"},
        "result": {"model": payload, "components": [{"name": payload, "per_gpu_bytes": 1}]},
    }
    made = httpx.post(f"{server.url}/api/plans", json=body, timeout=30)
    assert made.status_code == 201, made.text
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page()
        page.goto(f"{server.url}{made.json()['url']}")
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(500)
        pwned = page.evaluate("() => window.__pwned")
        browser.close()
    assert pwned is None, f"stored payload ran in the browser ({pwned})"


@pytest.mark.parametrize("path", ["/", "/docs"])
def test_csp_blocks_markup_even_if_the_page_inserted_it(server, path: str) -> None:
    """Defence in depth: were a page bug to put stored text into innerHTML, no handler would run."""
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page()
        page.goto(f"{server.url}{path}")
        page.wait_for_load_state("networkidle")
        page.evaluate(
            """() => { const d = document.createElement('div');
                       d.innerHTML = '<img src=x onerror="window.__pwned=1">';
                       document.body.appendChild(d); }"""
        )
        page.wait_for_timeout(500)
        pwned = page.evaluate("() => window.__pwned")
        browser.close()
    assert pwned is None, "an inline event handler ran: the Content-Security-Policy is missing"


def test_docs_render_under_the_policy_from_local_files(server) -> None:
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page()
        outside: list[str] = []
        page.on(
            "request",
            lambda r: (
                outside.append(r.url) if not r.url.startswith((server.url, "data:")) else None
            ),
        )
        page.goto(f"{server.url}/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
        title = page.inner_text(".swagger-ui .info .title")
        browser.close()
    assert "vramplan" in title
    assert outside == [], f"/docs fetched from outside: {outside}"
