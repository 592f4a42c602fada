"""/api/vllm, /api/explain, /api/train and /api/plan return exactly their CLI's --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vramplan.cli import app as cli_app

LOG = Path(__file__).parents[1] / "data" / "logs"


def cli_json(*args: str) -> object:
    result = CliRunner().invoke(cli_app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture
def client(make_client):  # type: ignore[no-untyped-def]
    c = make_client()
    if "/api/vllm" not in c.get("/openapi.json").json()["paths"]:
        pytest.skip("engines not available")
    return c


def test_vllm_equals_cli(client) -> None:
    args = ["meta-llama/Llama-3.1-8B-Instruct", "--max-model-len", "8192"]
    api = client.post("/api/vllm", json={"args": args, "gpu": "H100-80GB"}).json()
    assert api == cli_json("vllm", *args, "--gpu", "H100-80GB", "--json")
    same = client.post(
        "/api/vllm",
        json={
            "command": "vllm serve meta-llama/Llama-3.1-8B-Instruct --max-model-len 8192",
            "gpu": "H100-80GB",
        },
    ).json()
    assert same == api


def test_train_equals_cli(client) -> None:
    api = client.post(
        "/api/train", json={"model": "llama-3.1-8b", "method": "qlora", "gpu": "RTX-4090"}
    ).json()
    assert api == cli_json(
        "train", "llama-3.1-8b", "--method", "qlora", "--gpu", "RTX-4090", "--json"
    )


def test_plan_equals_cli(client) -> None:
    api = client.post(
        "/api/plan", json={"model": "llama-3.1-8b", "context": 8192, "users": 16}
    ).json()
    assert api == cli_json("plan", "llama-3.1-8b", "--context", "8192", "--users", "16", "--json")


def test_explain_equals_cli(client) -> None:
    logs = sorted(LOG.glob("*vllm*.log"))
    if not logs:
        pytest.skip("no vLLM logs in tests/data/logs")
    text = logs[0].read_text(errors="replace")
    api = client.post("/api/explain", json={"log": text}).json()
    assert api == cli_json("explain", str(logs[0]), "--json")


def test_explain_refuses_a_log_naming_a_server_path(client) -> None:
    log = (
        "INFO 01-01 00:00:00 api_server.py:1] vLLM API server version 0.11.0\n"
        "INFO 01-01 00:00:00 api_server.py:1] args: Namespace(model='/etc/passwd', tensor_parallel_size=1)\n"
    )
    r = client.post("/api/explain", json={"log": log})
    assert "root:" not in r.text
