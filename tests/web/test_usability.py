"""The page at 420 px wide, by keyboard alone, and offline (nothing requested outside the server)."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import Server, open_page, shot
from tests.web.helpers import TIMEOUT_MS, goto, submit, wait_done

VIEWS = ["estimate", "engine", "explain", "perf", "plan", "simulate", "train", "plans"]
LOG_LINES = "\n".join(
    [
        "INFO 04-22 00:03:01 [api_server.py:1] vLLM API server version 0.11.0",
        "INFO 04-22 00:03:01 [utils.py:1] non-default args: {'model': 'meta-llama/Llama-3.1-8B-Instruct', 'max_model_len': 8192}",
        "INFO 04-22 00:03:40 [gpu_model_runner.py:1] Model loading took 14.99 GiB and 20.1 seconds",
        "INFO 04-22 00:03:50 [gpu_worker.py:1] Available KV cache memory: 58.11 GiB",
        "INFO 04-22 00:03:50 [kv_cache_utils.py:1] GPU KV cache size: 476,016 tokens",
    ]
)

# Elements whose right edge passes the viewport, outside the boxes that scroll on purpose (wide tables).
OVERFLOW_JS = """
() => {
  const w = document.documentElement.clientWidth;
  const bad = [];
  for (const e of document.querySelectorAll('body *')) {
    if (e.closest('.scroll') || e.closest('[hidden]') || e.closest('datalist')) continue;
    const r = e.getBoundingClientRect();
    if (r.width && r.right > w + 1) bad.push(`${e.tagName}#${e.id}.${e.className} right=${Math.round(r.right)}`);
  }
  return {scroll: document.documentElement.scrollWidth, width: w, bad: bad.slice(0, 10)};
}
"""


def run_view(page: Any, view: str) -> None:
    if view == "explain":
        page.fill("#explain-log", LOG_LINES)
    if view == "plans":
        page.click("#plans-go")
        wait_done(page, "plans")
    else:
        submit(page, view)


def test_every_view_fits_420_px(server: Server, browser: Any) -> None:
    context, page, watch = open_page(browser, server, width=420, height=900)
    try:
        for view in VIEWS:
            goto(page, server.url, view)
            run_view(page, view)
            layout = page.evaluate(OVERFLOW_JS)
            assert layout["scroll"] <= layout["width"], (view, layout)
            assert not layout["bad"], (view, layout["bad"])
            if view in ("plan", "explain", "plans"):  # wide tables become one card per row
                wide = page.evaluate(
                    f"[...document.querySelectorAll('#{view}-out .scroll')].filter(e => e.scrollWidth > e.clientWidth + 1).length"
                )
                assert wide == 0, f"{view}: a table still needs sideways scrolling at 420 px"
            if view in ("estimate", "plan"):
                shot(page, f"narrow-{view}")
    finally:
        context.close()
    assert not watch.outside and not watch.errors, (watch.outside, watch.errors)


def focused(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => { const e = document.activeElement; const s = getComputedStyle(e);
        return {id: e.id, tag: e.tagName, text: (e.textContent || '').trim().slice(0, 40), view: e.dataset.view || null,
                outline: s.outlineStyle, width: parseFloat(s.outlineWidth)}; }"""
    )


def tab_to(page: Any, match: Any, limit: int = 60) -> list[dict[str, Any]]:
    """Press Tab until ``match(focused)``; every stop shows a visible focus ring."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        f = focused(page)
        seen.append(f)
        assert f["outline"] != "none" and f["width"] >= 2, f"focus is not visible on {f}"
        if match(f):
            return seen
    raise AssertionError(f"not reached by Tab: {[s['id'] or s['text'] for s in seen]}")


def test_keyboard_only(server: Server, page: Any) -> None:
    goto(page, server.url)
    order = tab_to(page, lambda f: f["view"] == "train")
    ids = [f["id"] for f in order]
    assert order[0]["text"] == "Skip to the views"
    assert ids.index("model") < ids.index("context") < ids.index("gpu"), "focus follows the layout"
    page.keyboard.press("Enter")
    page.wait_for_selector("#view-train:not([hidden])")
    assert focused(page)["id"] == "h-train", "opening a view moves focus to its heading"
    tab_to(page, lambda f: f["id"] == "train-seq", limit=5)
    page.keyboard.type("1024")
    page.keyboard.press("Enter")
    wait_done(page, "train")
    assert "1,024 tokens" in (page.text_content("#train-out .subject") or "")
    tab_to(page, lambda f: f["id"] == "train-save", limit=40)
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=train-permalink-link]", timeout=TIMEOUT_MS)
    # Enter in a scenario field runs the open view again.
    page.focus("#model")
    page.keyboard.press("Control+A")
    page.keyboard.type("qwen2.5-7b")
    page.keyboard.press("Enter")
    wait_done(page, "train")
    assert "Qwen" in (page.text_content("#train-out .subject") or "")


def test_offline_nothing_outside_the_server(server: Server, page: Any) -> None:
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    goto(page, server.url)
    for view in VIEWS:
        page.click(f"nav#views a[data-view={view}]")
        page.wait_for_selector(f"#view-{view}:not([hidden])")
        run_view(page, view)
    assert requested and all(u.startswith(server.url + "/") for u in requested), [
        u for u in requested if not u.startswith(server.url)
    ]
    assets = page.evaluate(
        "[...document.querySelectorAll('script[src], link[href]')].map(e => e.src || e.href)"
    )
    assert assets and all(a.startswith(server.url + "/") for a in assets), assets


def test_offline_guard_catches_outside_requests(server: Server, browser: Any) -> None:
    """The guard the other tests rely on does see a request outside the server (so their check can fail)."""
    context, page, watch = open_page(browser, server, csp=False)
    try:
        goto(page, server.url)
        page.evaluate("fetch('https://example.com/x').catch(() => null)")
        page.wait_for_timeout(300)
        assert watch.outside == ["https://example.com/x"]
    finally:
        context.close()


def test_token_prompt_for_a_server_with_auth(server: Server, page: Any) -> None:
    """A server started with `--auth tokens` answers 401 without the token: the page asks for it, keeps
    it in the tab, and sends it as a Bearer header on every API call from then on."""
    page.watch.http_errors_expected = True
    sent: list[str | None] = []

    def auth(route: Any) -> None:
        header = route.request.headers.get("authorization")
        sent.append(header)
        if header != "Bearer s3cret":
            route.fulfill(
                status=401,
                content_type="application/json",
                body='{"error": {"type": "Unauthorized", "message": "this server needs a token"}}',
            )
            return
        route.fallback()

    page.route("**/api/**", auth)
    page.goto(f"{server.url}/")
    page.wait_for_selector("#auth:not([hidden])", timeout=TIMEOUT_MS)
    assert "needs a token" in (page.text_content("[data-testid=error]") or "")
    page.fill("#api-token", "s3cret")
    page.keyboard.press("Enter")
    page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT_MS)
    assert page.is_hidden("#auth") and page.is_visible("#total-per-gpu")
    assert sent[-1] == "Bearer s3cret" and "s3cret" not in page.url
