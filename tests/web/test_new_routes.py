"""The API routes the page added (/api/perf, /api/sglang) return what the library returns for the CLI."""

from __future__ import annotations

import pytest

pytest.importorskip(
    "fastapi", reason="the web tests need the web extra: pip install 'vramplan[web]'"
)

from fastapi.testclient import TestClient

from vramplan.service.app import create_app
from vramplan.service.settings import Settings


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    db = tmp_path_factory.mktemp("db") / "plans.db"
    settings = Settings(
        database_url=f"sqlite:///{db}",
        allow_hub=False,
        rate_limit_per_s=0,
        allowed_hosts=["testserver"],
    )
    with TestClient(create_app(settings)) as c:
        yield c


def test_perf_equals_library(client: TestClient) -> None:
    from vramplan.perf import perf

    body = {
        "model": "llama-3.1-8b",
        "gpu": "H100-80GB",
        "input_len": 1024,
        "output_len": 256,
        "concurrency": 16,
        "tensor_parallel_size": 2,
    }
    got = client.post("/api/perf", json=body)
    assert got.status_code == 200, got.text
    want = perf(
        "llama-3.1-8b",
        "H100-80GB",
        input_len=1024,
        output_len=256,
        concurrency=16,
        tensor_parallel_size=2,
    ).to_dict()
    assert got.json() == want


def test_perf_refuses_two_load_patterns(client: TestClient) -> None:
    body = {"model": "llama-3.1-8b", "gpu": "H100-80GB", "input_len": 8, "output_len": 8}
    r = client.post("/api/perf", json={**body, "batch_size": 2, "request_rate": 1.0})
    assert r.status_code == 400
    assert "give exactly one of" in r.json()["error"]["message"]


def test_perf_dataset_by_name_and_never_a_server_path(client: TestClient, tmp_path) -> None:  # type: ignore[no-untyped-def]
    body = {"model": "llama-3.1-8b", "gpu": "H100-80GB", "request_rate": 2.0}
    r = client.post("/api/perf", json={**body, "dataset": "openorca"})
    assert r.status_code == 200, r.text
    assert r.json()["dataset"]["name"] == "openorca"
    lengths = tmp_path / "lengths.csv"
    lengths.write_text("prompt_len,output_len\n10,20\n")
    r = client.post("/api/perf", json={**body, "dataset": str(lengths)})
    assert r.status_code == 400
    assert "unknown --dataset" in r.json()["error"]["message"]
    r = client.post("/api/perf", json=body)
    assert r.status_code == 400 and "--dataset" in r.json()["error"]["message"]


def test_perf_unknown_model_is_404_with_suggestion(client: TestClient) -> None:
    body = {"model": "llama-9", "gpu": "H100-80GB", "input_len": 8, "output_len": 8}
    r = client.post("/api/perf", json=body)
    assert r.status_code == 404
    assert "unknown model 'llama-9'" in r.json()["error"]["message"]


def test_sglang_command_equals_library(client: TestClient) -> None:
    from vramplan.engines.sglang import predict_sglang

    line = "python -m sglang.launch_server --model-path llama-3.1-8b --context-length 8192 --tp 2"
    got = client.post("/api/sglang", json={"command": line, "gpu": "H100-80GB"})
    assert got.status_code == 200, got.text
    want = predict_sglang(
        ["--model-path", "llama-3.1-8b", "--context-length", "8192", "--tp", "2"], "H100-80GB"
    ).to_dict()
    assert got.json() == want
    assert got.json()["settings"]["tp_size"] == 2


@pytest.mark.parametrize("path", ["/etc/passwd", "./model", "weights.gguf"])
def test_sglang_refuses_server_paths(client: TestClient, path: str) -> None:
    r = client.post("/api/sglang", json={"args": ["--model-path", path], "gpu": "H100-80GB"})
    assert r.status_code == 400
    assert "looks like a file path" in r.json()["error"]["message"]
