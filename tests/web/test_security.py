"""Stored XSS: saved plans whose names, models and results carry markup are shown as text, never run.

The page is served here WITHOUT the server's CSP, so only the page's own code (text nodes, no innerHTML)
stands between the data and the DOM. The markup reaches the plans two ways: in fields the server
computes from (an uploaded config's display name becomes the result's model name; an unknown vLLM flag
is echoed in ``ignored_flags``), and in a ``result`` sent with the plan (stored by servers that keep a
client's result, ignored by those that recompute it).
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.web.conftest import Server, open_page
from tests.web.helpers import TIMEOUT_MS, goto, wait_done

PAYLOAD = '<img src=x onerror="window.__xss=(window.__xss||0)+1">'
SCRIPT = "<script>window.__xss=(window.__xss||0)+1</script>"


def poisoned(value: Any) -> Any:
    """Every string value replaced by the payloads; keys (the fields the page reads) and numbers kept."""
    if isinstance(value, dict):
        return {k: poisoned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [poisoned(v) for v in value]
    if isinstance(value, str):
        return f"{PAYLOAD}{SCRIPT}"
    return value


def save(server: Server, kind: str, route: str, scenario: dict[str, Any]) -> str | None:
    """Save a plan of ``kind`` (None when this server does not keep that kind)."""
    result = server.post(route, scenario)
    body = {
        "name": f"{PAYLOAD} {kind}",
        "kind": kind,
        "scenario": scenario,
        "result": poisoned(result),
    }
    r = httpx.post(f"{server.url}/api/plans", json=body, timeout=60)
    if r.status_code == 400 and "kind" in r.text:
        return None
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_stored_plans_never_run_script(server: Server, browser: Any) -> None:
    from vramplan.model import catalog

    config = catalog.catalogue()[catalog.find("llama-3.1-8b")]
    upload = {"config": config, "name": PAYLOAD}
    gpu = "H100-80GB"
    plans = [
        ("estimate", "/api/estimate", {**upload, "context": 8192, "users": 16, "gpu": gpu}),
        ("plan", "/api/plan", {**upload, "context": 8192, "users": 16, "limit": 2}),
        ("train", "/api/train", {**upload, "method": "qlora", "gpu": gpu}),
        ("vllm", "/api/vllm", {"args": ["llama-3.1-8b", "--bogus-flag", PAYLOAD], "gpu": gpu}),
        (
            "sglang",
            "/api/sglang",
            {"args": ["--model-path", "llama-3.1-8b", "--bogus", PAYLOAD], "gpu": gpu},
        ),
        ("perf", "/api/perf", {**upload, "gpu": gpu, "input_len": 64, "output_len": 8}),
    ]
    ids = [i for i in (save(server, *p) for p in plans) if i is not None]
    assert len(ids) >= 4
    context, page, watch = open_page(browser, server, csp=False)
    watch.http_errors_expected = True
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    try:
        goto(page, server.url, "plans")
        wait_done(page, "plans")
        listed = page.text_content("#plans-out") or ""
        assert listed.count(PAYLOAD) >= len(ids), "the names are shown, as text"
        for plan_id in ids:
            page.goto(f"{server.url}/?plan={plan_id}")
            page.wait_for_selector(
                "body[data-ready='1'], body[data-ready='error']", timeout=TIMEOUT_MS
            )
            page.wait_for_timeout(200)
            shown = (
                (page.text_content("main") or "")
                + page.input_value("#model")
                + page.input_value("#engine-command")
            )
            assert PAYLOAD in shown, plan_id
            assert page.evaluate("window.__xss") is None, f"plan {plan_id} ran script"
            assert page.locator("main img, main script").count() == 0, plan_id
    finally:
        context.close()
    assert not any(u.endswith("/x") for u in requested), "an <img src=x> was parsed from data"
    assert not watch.outside
