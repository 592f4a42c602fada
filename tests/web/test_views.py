"""One browser test per view: fill the scenario, run the view, and check every figure shown against the
API's JSON for the same request (formatted by the CLI's rules, re-written in helpers.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.web.conftest import Server, shot
from tests.web.helpers import (
    cell,
    count,
    figure,
    gib,
    gib_of,
    goto,
    ms,
    per_second,
    submit,
    usd,
    wait_done,
)

LOG = (
    Path(__file__).parents[1]
    / "data"
    / "logs"
    / "llmdplanner-meta-llama-llama-3-1-8b--tp1pp1dp1--8192.log"
)


def gpu_named(server: Server, prefix: str) -> str:
    gpus = httpx.get(f"{server.url}/api/gpus").json()
    return next(g["name"] for g in gpus if g["name"].startswith(prefix))


def sent(page: Any, path: str, action: Any) -> dict[str, Any]:
    """Run ``action`` and return the JSON body the page posted to ``path``."""
    with page.expect_request(lambda r: r.url.endswith(path) and r.method == "POST") as req:
        action()
    body = req.value.post_data_json
    assert isinstance(body, dict)
    return body


def test_estimate_view(server: Server, page: Any) -> None:
    goto(page, server.url)
    h100 = gpu_named(server, "H100-80GB")
    page.fill("#model", "qwen2.5-7b")
    page.fill("#context", "32768")
    page.fill("#users", "8")
    page.select_option("#gpu", h100)
    body = sent(page, "/api/estimate", lambda: submit(page, "estimate"))
    assert body == {"model": "qwen2.5-7b", "context": 32768, "users": 8, "gpu": h100}
    api = server.post("/api/estimate", body)
    assert cell(page, "#total-per-gpu") == gib(api["per_gpu"]["total_bytes"])
    assert cell(page, "#total-all") == gib(api["total_bytes"])
    assert cell(page, "#max-users") == f"{api['max_users']:,}"
    assert cell(page, "#max-context") == f"{api['max_context']:,}"
    assert cell(page, "#verdict") == (
        f"fits {api['gpu']}" if api["fits"] else f"does not fit {api['gpu']}"
    )
    assert (
        cell(page, "#gpus")
        == f"{count(api['gpus'], 'GPU')} (TP {api['tensor_parallel_size']} x PP {api['pipeline_parallel_size']})"
    )
    for comp in api["components"]:
        num = page.locator(f"tr[data-component='{comp['name']}'] td.num")
        assert num.first.text_content() == gib(comp["per_gpu_bytes"])
        assert num.nth(1).text_content() == gib(comp["total_bytes"])
        assert num.first.get_attribute("title") == comp["formula"], "each number shows its formula"
    page.locator("tr[data-component='kv_cache'] details summary").click()
    kv = next(c for c in api["components"] if c["name"] == "kv_cache")
    assert kv["formula"] in cell(page, "tr[data-component='kv_cache'] td.why")
    page.wait_for_function(
        "window.Chart && Chart.getChart('chart-context') && Chart.getChart('chart-users')"
    )
    shot(page, "estimate")


def test_error_clears_stale_results(server: Server, page: Any) -> None:
    page.watch.http_errors_expected = True
    goto(page, server.url)
    assert page.is_visible("#total-per-gpu")
    page.fill("#model", "llama-9")
    page.click("#go")
    page.wait_for_selector("#view-estimate[data-state=error]")
    assert "unknown model 'llama-9'" in cell(page, "[data-testid=error]")
    assert page.locator("#total-per-gpu").count() == 0, "old results must not stay under an error"
    assert page.is_hidden("#estimate-out")
    page.fill("#model", "llama-3.1-8b")
    submit(page, "estimate")
    assert page.is_hidden("[data-testid=error]")


def test_engine_view_vllm(server: Server, page: Any) -> None:
    goto(page, server.url, "engine")
    h100 = page.input_value("#gpu")
    assert (
        page.input_value("#engine-command")
        == "vllm serve llama-3.1-8b --max-model-len 8192 --max-num-seqs 16"
    )
    page.select_option("#quantization", "fp8")
    assert page.input_value("#engine-command").endswith("--quantization fp8"), (
        "the command follows the scenario"
    )
    body = sent(page, "/api/vllm", lambda: submit(page, "engine"))
    assert body["gpu"] == h100
    api = server.post("/api/vllm", body)
    figures = {
        "weights_gib": gib_of(api["weights_gib"]),
        "available_kv_cache_gib": gib_of(api["available_kv_cache_gib"]),
        "activation_peak_gib": gib_of(api["activation_peak_gib"]),
        "cuda_graph_gib": gib_of(api["cuda_graph_gib"]),
        "kv_cache_tokens": count(api["kv_cache_tokens"], "token"),
        "gpu_blocks": count(api["gpu_blocks"], "block"),
        "max_concurrency": f"{api['max_concurrency']:,.2f}x",
    }
    for key, text in figures.items():
        assert cell(page, f"#engine-out td[data-key={key}]") == text, key
    assert cell(page, "[data-testid=engine-verdict]") == (
        "The engine starts." if api["starts"] else "The engine does not start."
    )
    assert "None" not in cell(page, "#engine-out") and "_gib" not in cell(page, "#engine-out")
    shot(page, "engine-vllm")


def test_engine_view_sglang(server: Server, page: Any) -> None:
    goto(page, server.url, "engine")
    page.select_option("#engine-kind", "sglang")
    assert page.input_value("#engine-command") == (
        "python -m sglang.launch_server --model-path llama-3.1-8b --context-length 8192 --max-running-requests 16"
    )
    body = sent(page, "/api/sglang", lambda: submit(page, "engine"))
    api = server.post("/api/sglang", body)
    assert cell(page, "#engine-out td[data-key=weights_gib]") == gib_of(api["weights_gib"])
    assert cell(page, "#engine-out td[data-key=available_kv_cache_gib]") == gib_of(
        api["available_kv_cache_gib"]
    )
    assert cell(page, "#engine-out td[data-key=kv_cache_tokens]") == count(
        api["kv_cache_tokens"], "token"
    )
    assert cell(page, "#engine-out .subject").startswith(
        f"SGLang {api['engine_version']} · llama-3.1-8b"
    )
    shot(page, "engine-sglang")


def test_explain_view(server: Server, page: Any) -> None:
    goto(page, server.url, "explain")
    log = LOG.read_text()
    page.fill("#explain-log", log)
    body = sent(page, "/api/explain", lambda: submit(page, "explain"))
    assert body["log"] == log
    api = server.post("/api/explain", body)
    assert api["terms"], "the log has terms to compare"
    for key, term in api["terms"].items():
        cells = page.locator(f"#explain-out tr[data-term='{key}'] td")
        if key.endswith("_gib"):
            assert cells.nth(1).text_content() == gib_of(term["logged"])
            assert cells.nth(2).text_content() == gib_of(term["predicted"])
        elif key.endswith("_tokens"):
            assert cells.nth(1).text_content() == count(term["logged"], "token")
        assert cells.nth(5).text_content() == term["likely_cause"]
    assert cell(page, "#explain-out .subject").startswith(f"vLLM {api['engine_version']} log")
    shot(page, "explain")


def test_perf_view(server: Server, page: Any) -> None:
    goto(page, server.url, "perf")
    h100 = page.input_value("#gpu")
    page.fill("#perf-input", "2048")
    page.select_option("#perf-mode", "concurrency")
    body = sent(page, "/api/perf", lambda: submit(page, "perf"))
    assert body == {
        "model": "llama-3.1-8b",
        "gpu": h100,
        "engine": "vllm",
        "input_len": 2048,
        "output_len": 256,
        "tensor_parallel_size": 1,
        "concurrency": 16,
    }
    api = server.post("/api/perf", body)
    assert figure(page, "perf", "TTFT") == ms(api["ttft_ms"])
    assert figure(page, "perf", "TPOT") == ms(api["tpot_ms"])
    assert figure(page, "perf", "end-to-end latency") == f"{api['latency_s']:,.2f} s"
    assert figure(page, "perf", "output throughput") == per_second(
        api["output_tokens_per_s"], "tokens"
    )
    assert figure(page, "perf", "requests") == per_second(api["requests_per_s"], "requests")
    assert (
        figure(page, "perf", "decode step") == f"{ms(api['decode_step_ms'])} ({api['bound']}-bound)"
    )
    shot(page, "perf")


def test_perf_view_with_a_dataset(server: Server, page: Any) -> None:
    goto(page, server.url, "perf")
    page.select_option("#perf-dataset", "sharegpt")
    page.select_option("#perf-mode", "request_rate")
    body = sent(page, "/api/perf", lambda: submit(page, "perf"))
    assert body["dataset"] == "sharegpt" and "input_len" not in body and "output_len" not in body
    api = server.post("/api/perf", body)
    out = api["dataset"]["output_tokens"]
    assert figure(page, "perf", "output tokens") == (
        f"mean {out['mean']:,.0f} · p50 {out['p50']:,.0f} · p99 {out['p99']:,.0f}"
    )
    assert figure(page, "perf", "latency p50 / p99") == (
        f"{api['latency_p50_s']:,.2f} s / {api['latency_p99_s']:,.2f} s"
    )


def test_plan_view_with_targets_and_gpu_kinds(server: Server, page: Any) -> None:
    goto(page, server.url, "plan")
    h100 = page.input_value("#gpu")
    a100 = gpu_named(server, "A100-80GB")
    assert page.is_checked(f"#plan-gpus input[value='{h100}']"), "the scenario's GPU starts ticked"
    page.check(f"#plan-gpus input[value='{a100}']")
    page.fill("#plan-ttft", "1500")
    page.fill("#plan-tpot", "40")
    body = sent(page, "/api/plan", lambda: submit(page, "plan"))
    assert body["ttft_ms"] == 1500 and body["tpot_ms"] == 40
    assert sorted(body["gpus"]) == sorted([h100, a100])
    assert body["context"] == 8192 and body["users"] == 16 and body["rate"] == 2
    api = server.post("/api/plan", body)
    assert api["plans"]
    rows = page.locator("#plan-out tr[data-rank]")
    assert rows.count() == len(api["plans"])
    for i, p in enumerate(api["plans"]):
        row = f"#plan-out tr[data-rank='{i + 1}']"
        assert p["gpu"] in (h100, a100) and p["ttft_ms"] <= 1500 and p["tpot_ms"] <= 40
        assert cell(page, f"{row} td[data-key=gpu]") == p["gpu"]
        assert cell(page, f"{row} td[data-key=ttft_ms]") == ms(p["ttft_ms"])
        assert cell(page, f"{row} td[data-key=tpot_ms]") == ms(p["tpot_ms"])
        assert cell(page, f"{row} td[data-key=cost_per_hour]") == usd(p["cost_per_hour"], "hour")
        assert cell(page, f"{row} td[data-key=tokens_per_s]") == per_second(
            p["tokens_per_s"], "tokens"
        )
        assert cell(page, f"{row} td[data-key=memory]") == (
            f"{gib(p['per_gpu']['total_bytes'])} of {gib(p['per_gpu']['gpu_memory_bytes'])}"
        )
    targets = cell(page, "[data-testid=plan-targets]")
    assert "TTFT at most 1,500.0 ms" in targets and "TPOT at most 40.0 ms" in targets
    shot(page, "plan")


def test_simulate_view_follows_the_scenario(server: Server, page: Any) -> None:
    goto(page, server.url, "simulate")
    h100 = page.input_value("#gpu")
    page.fill("#rate", "0.5")
    page.fill("#users", "8")
    page.fill("#context", "4096")
    page.select_option("#sim-workload", "alpaca")
    page.fill("#sim-duration", "30")
    body = sent(page, "/api/simulate", lambda: submit(page, "simulate"))
    assert body == {
        "model": "llama-3.1-8b",
        "gpu": h100,
        "workload": "alpaca",
        "rate": 0.5,
        "duration": 30,
        "allocator": "paged",
        "max_model_len": 4096,
        "max_num_seqs": 8,
        "tensor_parallel_size": 1,
    }
    api = server.post("/api/simulate", body)
    assert figure(page, "simulate", "requests completed") == count(
        api["requests_completed"], "request"
    )
    assert figure(page, "simulate", "output throughput") == per_second(
        api["throughput_tokens_per_s"], "tokens"
    )
    assert (
        figure(page, "simulate", "TTFT p50 / p99")
        == f"{ms(api['ttft_ms_p50'])} / {ms(api['ttft_ms_p99'])}"
    )
    assert figure(page, "simulate", "KV pool per GPU").startswith(
        gib(api["kv_budget"]["kv_capacity_bytes"])
    )
    line = cell(page, "[data-testid=sim-workload-line]")
    assert (
        "alpaca lengths at 0.50 requests/s" in line
        and "4,096 tokens" in line
        and "8 running requests" in line
    )
    page.wait_for_function("window.Chart && Chart.getChart('chart-sim')")
    shot(page, "simulate")
    # A new scenario makes the replay stale: it is cleared, not left beside the new numbers.
    page.fill("#rate", "1")
    page.locator("#rate").blur()
    page.wait_for_selector("#view-simulate[data-state=stale]")
    assert page.is_hidden("#simulate-out")
    assert "scenario changed" in cell(page, "#simulate-status")


def test_train_view(server: Server, page: Any) -> None:
    goto(page, server.url, "train")
    rtx = gpu_named(server, "RTX-4090")
    page.select_option("#gpu", rtx)
    page.select_option("#train-method", "qlora")
    page.fill("#train-seq", "2048")
    body = sent(page, "/api/train", lambda: submit(page, "train"))
    assert body["method"] == "qlora" and body["seq_len"] == 2048 and body["gpu"] == rtx
    api = server.post("/api/train", body)
    per = api["per_gpu"]
    for key in (
        "weights_bytes",
        "gradients_bytes",
        "optimizer_bytes",
        "activations_bytes",
        "overhead_bytes",
        "total_bytes",
    ):
        assert cell(page, f"#train-out td[data-key={key}]") == gib(per[key]), key
    assert cell(page, "[data-testid=train-total]") == gib(per["total_bytes"])
    assert cell(page, "[data-testid=train-verdict]") == (
        f"fits {api['gpu']}" if api["fits"] else f"does not fit {api['gpu']}"
    )
    shot(page, "train")


def test_saved_plans_list_open_delete(server: Server, page: Any) -> None:
    goto(page, server.url, "train")
    submit(page, "train")
    total = cell(page, "[data-testid=train-total]")
    page.fill("#train-plan-name", "train plan for the list test")
    page.click("#train-save")
    page.wait_for_selector("[data-testid=train-permalink-link]")
    plan_id = page.get_attribute("[data-testid=train-permalink-link]", "href").split("=")[1]

    page.click("nav#views a[data-view=plans]")
    wait_done(page, "plans")
    row = f"#plans-out tr[data-plan='{plan_id}']"
    assert "train plan for the list test" in cell(page, row) and "train" in cell(page, row)
    shot(page, "plans")

    page.click(f"{row} a")  # open: the stored plan, in its own view
    page.wait_for_selector("#view-train[data-state=ready]")
    assert page.is_visible("#view-train")
    assert cell(page, "[data-testid=train-total]") == total
    assert "train plan for the list test" in cell(page, "[data-testid=saved-note]")

    page.click("nav#views a[data-view=plans]")
    page.click("#plans-go")
    wait_done(page, "plans")
    page.click(f"{row} button[data-delete]")
    page.wait_for_selector(row, state="detached")
    assert httpx.get(f"{server.url}/api/plans/{plan_id}").status_code == 404


def test_plan_view_shows_fixes_as_changes(server: Server, page: Any) -> None:
    """A target nothing meets: the page lists the API's fixes (field, value, why) as plain text."""
    page.watch.http_errors_expected = True
    goto(page, server.url, "plan")
    page.fill("#plan-tpot", "1")
    body = sent(
        page, "/api/plan", lambda: page.click("#view-plan form.view-form button[type=submit]")
    )
    page.wait_for_selector("#view-plan[data-state=error]")
    err = httpx.post(f"{server.url}/api/plan", json=body).json()["error"]
    tpot = next(f for f in err["fixes"] if f["field"] == "tpot_ms")
    assert tpot["value"] > 1
    shown = cell(page, "#plan-error")
    assert "Changes that would make it fit:" in shown
    assert f"tpot ms: {tpot['value']:g} (the closest plan's TPOT)" in shown


def test_estimate_fixes_read_as_changes(server: Server, page: Any) -> None:
    """A deployment that does not fit: each fix of the API (field, value, why) is one line of text."""
    goto(page, server.url)
    page.fill("#model", "llama-3.1-405b")
    page.fill("#context", "131072")
    page.fill("#users", "32")
    page.select_option("#gpu", "L4")
    body = sent(page, "/api/estimate", lambda: submit(page, "estimate"))
    api = server.post("/api/estimate", body)
    assert body["gpu"] == "L4" and api["fits"] is False and api["fixes"]
    shown = [t.strip() for t in page.locator("#estimate-out ul.fixes li").all_text_contents()]
    assert shown == [
        f"{f['field'].replace('_', ' ')}: {f['value']} ({f['why']})" for f in api["fixes"]
    ]
