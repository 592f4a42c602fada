"""Stored XSS: saved plans whose names, models and results carry markup are shown as text, never run.

The page is served here WITHOUT the server's CSP, so only the page's own code (text nodes, no innerHTML)
stands between the data and the DOM.
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


def save(server: Server, kind: str, scenario: dict[str, Any], result: dict[str, Any]) -> str:
    body = {"name": f"{PAYLOAD} {kind}", "kind": kind, "scenario": scenario, "result": result}
    r = httpx.post(f"{server.url}/api/plans", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_stored_plans_never_run_script(server: Server, browser: Any) -> None:
    scenario = {"model": "llama-3.1-8b", "context": 8192, "users": 16, "gpu": "H100-80GB"}
    estimate = server.post("/api/estimate", scenario)
    plan_req = {"model": "llama-3.1-8b", "context": 8192, "users": 16, "limit": 2}
    plan = server.post("/api/plan", plan_req)
    vllm_req = {"command": "vllm serve llama-3.1-8b", "gpu": "H100-80GB"}
    vllm = server.post("/api/vllm", vllm_req)
    perf_req = {"model": "llama-3.1-8b", "gpu": "H100-80GB", "input_len": 64, "output_len": 8}
    perf = server.post("/api/perf", perf_req)
    train_req = {"model": "llama-3.1-8b", "method": "qlora", "gpu": "H100-80GB"}
    train = server.post("/api/train", train_req)
    ids = [
        save(server, "estimate", {**scenario, "model": PAYLOAD}, poisoned(estimate)),
        save(server, "plan", plan_req, poisoned(plan)),
        save(server, "vllm", {"command": PAYLOAD}, poisoned(vllm)),
        save(server, "perf", {**perf_req, "model": PAYLOAD}, poisoned(perf)),
        save(server, "train", train_req, poisoned(train)),
        save(
            server,
            "explain",
            {"log": PAYLOAD},
            {"engine": PAYLOAD, "terms": {PAYLOAD: {"likely_cause": PAYLOAD}}},
        ),
    ]
    context, page, watch = open_page(browser, server, csp=False)
    watch.http_errors_expected = (
        True  # the estimate view redraws its curves for the poisoned model name
    )
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
            assert PAYLOAD in (page.text_content("main") or ""), plan_id
            assert page.evaluate("window.__xss") is None, f"plan {plan_id} ran script"
            assert page.locator("main img, main script").count() == 0, plan_id
    finally:
        context.close()
    assert not any(u.endswith("/x") for u in requested), "an <img src=x> was parsed from data"
    assert not watch.outside
