"""End to end in a real browser: the numbers on the page equal the API's (skips without chromium/playwright).

CI: apt-get install -y chromium && pip install playwright (no `playwright install`: Debian's chromium).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
if CHROMIUM is None:
    pytest.skip("chromium is not installed (apt-get install -y chromium)", allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


@pytest.fixture(scope="module")
def page(server):  # type: ignore[no-untyped-def]
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1500})
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.on(
            "request",
            lambda r: (
                errors.append(f"offline page fetched {r.url}")
                if not r.url.startswith((server.url, "data:"))
                else None
            ),
        )
        yield pg
        browser.close()
        assert not errors, errors


def test_page_numbers_equal_api(server, page, tmp_path) -> None:
    page.goto(f"{server.url}/")
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    page.fill("#model", "qwen2.5-7b")
    page.fill("#context", "32768")
    page.fill("#users", "8")
    gpu = page.eval_on_selector("#gpu", "el => el.value")
    page.evaluate("document.body.dataset.ready = ''")
    page.click("#go")
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    api = httpx.post(
        f"{server.url}/api/estimate",
        json={"model": "qwen2.5-7b", "context": 32768, "users": 8, "gpu": gpu},
    ).json()
    assert page.text_content("#total-per-gpu") == gib(api["per_gpu"]["total_bytes"])
    assert page.get_attribute("#total-per-gpu", "data-bytes") == str(api["per_gpu"]["total_bytes"])
    assert page.text_content("#total-all") == gib(api["total_bytes"])
    assert page.text_content("#max-users") == f"{api['max_users']:,}"
    assert page.text_content("#max-context") == f"{api['max_context']:,}"
    for comp in api["components"]:
        row = page.locator(f"tr[data-component='{comp['name']}'] td.num").first
        assert row.get_attribute("data-bytes") == str(comp["per_gpu_bytes"])
        assert row.text_content() == gib(comp["per_gpu_bytes"])
        assert row.get_attribute("title") == comp["formula"], "each number shows its formula"
    page.locator("tr[data-component='kv_cache'] details summary").click()
    assert (
        api["components"][1]["formula"]
        in page.locator("tr[data-component='kv_cache'] td.why").text_content()
    )
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)

    page.click("#save")
    page.wait_for_selector("[data-testid=permalink-link]")
    link = page.get_attribute("[data-testid=permalink-link]", "href")
    assert link.startswith("/?plan=")
    page.goto(f"{server.url}{link}")
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    assert page.text_content("#total-per-gpu") == gib(api["per_gpu"]["total_bytes"])
    assert page.input_value("#model") == "qwen2.5-7b" and page.input_value("#context") == "32768"


def test_unknown_model_shows_api_message(server, page) -> None:
    page.goto(f"{server.url}/")
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    page.fill("#model", "llama-9")
    page.click("#go")
    page.wait_for_selector("[data-testid=error]:not([hidden])")
    assert "unknown model 'llama-9'" in page.text_content("[data-testid=error]")
