"""The API against a real uvicorn process: same numbers as the CLI and Python, errors mapped once."""

from __future__ import annotations

import json

import httpx
import pytest
from typer.testing import CliRunner

from vramplan.cli import app as cli_app
from vramplan.estimator import estimate

SCENARIO = {
    "model": "llama-3.1-8b",
    "context": 8192,
    "users": 16,
    "gpu": "H100-80GB",
    "kv_cache_dtype": "fp8",
}


def cli_json(*args: str) -> object:
    result = CliRunner().invoke(cli_app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_estimate_same_numbers_from_cli_python_and_api(server) -> None:
    api = httpx.post(f"{server.url}/api/estimate", json=SCENARIO).json()
    cli = cli_json(
        "estimate",
        "llama-3.1-8b",
        "--context",
        "8192",
        "--users",
        "16",
        "--gpu",
        "H100-80GB",
        "--kv-cache-dtype",
        "fp8",
        "--json",
    )
    py = json.loads(
        json.dumps(
            estimate(
                "llama-3.1-8b", context=8192, users=16, gpu="H100-80GB", kv_cache_dtype="fp8"
            ).to_dict()
        )
    )
    assert api == cli, "API and `vramplan estimate --json` differ"
    assert api == py, "API and estimate().to_dict() differ"
    # A cache hit returns the same object.
    assert httpx.post(f"{server.url}/api/estimate", json=SCENARIO).json() == api


def test_uploaded_config_equals_catalogue_model(server) -> None:
    from vramplan.model import catalog

    cfg = catalog.catalogue()["meta-llama/Llama-3.1-8B"]
    up = httpx.post(
        f"{server.url}/api/estimate",
        json={"config": cfg, "name": "meta-llama/Llama-3.1-8B", "context": 8192},
    ).json()
    named = httpx.post(
        f"{server.url}/api/estimate", json={"model": "llama-3.1-8b", "context": 8192}
    ).json()
    assert up["total_bytes"] == named["total_bytes"] and up["components"] == named["components"]


@pytest.mark.parametrize("command", ["models", "gpus"])
def test_catalogues_equal_cli(server, command: str) -> None:
    assert httpx.get(f"{server.url}/api/{command}").json() == cli_json(command, "--json")


def test_unknown_model_is_404_with_message(server) -> None:
    r = httpx.post(f"{server.url}/api/estimate", json={"model": "llama-9"})
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["type"] == "UnknownModelError"
    assert "unknown model 'llama-9'" in err["message"] and "GET /api/models" in err["message"]


def test_server_paths_are_never_read(server) -> None:
    for name in ("/etc/passwd", "./config.json", "~/.ssh/id_rsa", "../x.gguf"):
        r = httpx.post(f"{server.url}/api/estimate", json={"model": name})
        assert r.status_code == 404, name
        assert "root:" not in r.text
    r = httpx.post(f"{server.url}/api/vllm", json={"args": ["/etc/passwd"], "gpu": "H100-80GB"})
    assert r.status_code in (400, 404) and "reads no local files" in r.json()["error"]["message"]


def test_bad_body_is_422(server) -> None:
    r = httpx.post(f"{server.url}/api/estimate", json={"model": "llama-3.1-8b", "context": "long"})
    assert r.status_code == 422
    assert (
        r.json()["error"]["type"] == "ValidationError" and "context" in r.json()["error"]["message"]
    )
    r = httpx.post(
        f"{server.url}/api/estimate",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422


def test_invalid_input_is_400(server) -> None:
    r = httpx.post(
        f"{server.url}/api/estimate", json={"model": "llama-3.1-8b", "tensor_parallel_size": 3}
    )
    assert r.status_code == 400 and "does not divide" in r.json()["error"]["message"]


def test_too_large_is_413(server) -> None:
    big = {"model": "llama-3.1-8b", "config": {"pad": "x" * (2 << 20)}}
    r = httpx.post(f"{server.url}/api/estimate", json=big)
    assert r.status_code == 413
    assert "limit of 1,048,576 bytes" in r.json()["error"]["message"]


def test_plans_crud(server) -> None:
    created = httpx.post(
        f"{server.url}/api/plans", json={"name": "chat", "kind": "estimate", "scenario": SCENARIO}
    )
    assert created.status_code == 201
    plan = created.json()
    assert plan["url"] == f"/?plan={plan['id']}"
    assert plan["result"] == httpx.post(f"{server.url}/api/estimate", json=SCENARIO).json()
    assert httpx.get(f"{server.url}/api/plans/{plan['id']}").json()["result"] == plan["result"]
    assert plan["id"] in [p["id"] for p in httpx.get(f"{server.url}/api/plans").json()["items"]]
    assert httpx.delete(f"{server.url}/api/plans/{plan['id']}").status_code == 204
    missing = httpx.get(f"{server.url}/api/plans/{plan['id']}")
    assert missing.status_code == 404 and "no saved plan" in missing.json()["error"]["message"]


def test_metrics_count_routes_estimates_and_plans(server) -> None:
    httpx.post(f"{server.url}/api/estimate", json=SCENARIO)
    httpx.post(f"{server.url}/api/plans", json={"kind": "estimate", "scenario": SCENARIO})
    text = httpx.get(f"{server.url}/metrics").text
    assert 'vramplan_http_requests_total{method="POST",route="/api/estimate",status="200"}' in text
    assert "vramplan_http_request_duration_seconds_bucket" in text
    assert (
        "vramplan_estimates_computed_total" in text
        and 'vramplan_plans_saved_total{kind="estimate"}' in text
    )


def test_page_docs_and_health(server) -> None:
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200 and "chart.umd.min.js" in page.text
    assert httpx.get(f"{server.url}/static/vendor/chart.umd.min.js").status_code == 200
    assert httpx.get(f"{server.url}/docs").status_code == 200
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"
    spec = httpx.get(f"{server.url}/openapi.json").json()
    for path in (
        "/api/estimate",
        "/api/simulate",
        "/api/plans",
        "/api/plans/{plan_id}",
        "/api/models",
        "/api/gpus",
    ):
        assert path in spec["paths"], path
    assert spec["components"]["schemas"]["EstimateRequest"]["examples"]


def test_simulate_matches_cli_and_is_bounded(server) -> None:
    body = {"model": "opt-13b", "gpu": "A100-40GB", "rate": 1, "duration": 20}
    api = httpx.post(f"{server.url}/api/simulate", json=body, timeout=30).json()
    cli = cli_json(
        "simulate", "opt-13b", "--gpu", "A100-40GB", "--rate", "1", "--duration", "20", "--json"
    )
    for volatile in ("wall_s", "events_per_s"):
        api.pop(volatile), cli.pop(volatile)  # type: ignore[union-attr]
    assert api == cli
    r = httpx.post(f"{server.url}/api/simulate", json={**body, "duration": 5000})
    assert r.status_code == 400 and "limit of 600 simulated seconds" in r.json()["error"]["message"]
