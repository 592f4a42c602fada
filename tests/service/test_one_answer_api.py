"""The API gives the same integer KV pool as the CLI for one deployment: /api/vllm, /api/perf and
/api/simulate agree with each other and with `vramplan vllm/perf --json`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vramplan.cli import app as cli_app


@pytest.fixture
def client(make_client):  # type: ignore[no-untyped-def]
    c = make_client()
    if "/api/perf" not in c.get("/openapi.json").json()["paths"]:
        pytest.skip("perf route not available")
    return c


def cli_json(*args: str) -> object:
    result = CliRunner().invoke(cli_app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_vllm_perf_simulate_agree_through_the_api(client) -> None:  # type: ignore[no-untyped-def]
    gpu, settings = "A100-40GB", {"max_model_len": 32768, "max_num_seqs": 128}
    vllm = client.post(
        "/api/vllm",
        json={
            "args": [
                "meta-llama/Llama-3.1-8B",
                "--max-model-len",
                "32768",
                "--max-num-seqs",
                "128",
            ],
            "gpu": gpu,
        },
    ).json()
    body = {"model": "llama-3.1-8b", "gpu": gpu, "input_len": 1000, "output_len": 100}
    perf = client.post("/api/perf", json={**body, **settings, "concurrency": 4}).json()
    sim = client.post(
        "/api/simulate",
        json={"model": "llama-3.1-8b", "gpu": gpu, "rate": 1, "duration": 5, **settings},
    ).json()
    tokens = vllm["kv_cache_tokens"]
    assert isinstance(tokens, int) and tokens > 0
    assert perf["kv_cache_tokens"] == sim["kv_cache_tokens"] == tokens
    assert perf == cli_json(
        "perf", "llama-3.1-8b", "--gpu", gpu, "--input-len", "1000", "--output-len", "100",
        "--max-model-len", "32768", "--max-num-seqs", "128", "--concurrency", "4", "--json",
    )  # fmt: skip


def test_a_plan_reproduces_through_the_api(client) -> None:  # type: ignore[no-untyped-def]
    plan = client.post(
        "/api/plan",
        json={"model": "llama-3.1-8b", "context": 4096, "users": 8, "gpus": ["L40S"], "limit": 1},
    ).json()["plans"][0]
    argv = plan["perf_argv"]
    body: dict[str, object] = {"model": argv[0]}
    flags = argv[1:]
    for flag, value in zip(flags[::2], flags[1::2]):
        key = flag.lstrip("-").replace("-", "_")
        body[key] = (
            value
            if key in ("gpu", "quantization", "dtype", "kv_cache_dtype")
            else float(value)
            if "." in value
            else int(value)
        )
    perf = client.post("/api/perf", json=body).json()
    assert perf["ttft_ms"] == plan["ttft_ms"] and perf["tpot_ms"] == plan["tpot_ms"]
    assert perf["kv_cache_tokens"] == plan["kv_cache_tokens"]
