"""TGI: warm-up KV budget vs a real log, block sizes, admission, errors, CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vramplan.engines.tgi import kv_budget_bytes, num_blocks, predict_tgi, request_blocks
from vramplan.errors import InputError


def test_issue_2744_token_budget() -> None:
    """Llama-3.1-70B, 2 x A100-80GB, prefill 10,049 -> 'Setting max batch total tokens to 30816'."""
    p = predict_tgi(
        ["--model-id", "Llama-3.1-70B", "--num-shard", "2", "--max-batch-prefill-tokens", "10049"],
        "A100-80GB",
        engine_version="2.4.0",
    )
    assert p.kv_cache_tokens == pytest.approx(30_816, rel=0.15)
    assert p.extra["block_size"] == 1


def test_pure_helpers() -> None:
    assert kv_budget_bytes(100, 50, 1.0, 0.9) == pytest.approx(40)
    assert kv_budget_bytes(100, 5, 1.0, 0.9) == 0
    assert num_blocks(1000, 100, 3) == 13
    assert request_blocks(100, 29, 16) == 8
    assert request_blocks(5000, 5000, 16, window=4096) == 256


def test_backend_block_sizes() -> None:
    for backend, block in (("paged", 16), ("flashdecoding", 256), ("flashinfer", 1)):
        p = predict_tgi(["--model-id", "Llama-3.1-8B", "--attention", backend], "A100-80GB")
        assert p.extra["block_size"] == block and p.kv_cache_tokens % block == 0


def test_user_total_tokens_too_large_fails() -> None:
    p = predict_tgi(
        ["--model-id", "Llama-3.1-70B", "--num-shard", "2", "--max-total-tokens", "100000"],
        "A100-80GB",
    )
    assert not p.starts and p.fixes


def test_weights_do_not_fit() -> None:
    p = predict_tgi(["--model-id", "Llama-3.1-70B"], "A100-80GB")
    assert not p.starts and any("num-shard" in f for f in p.fixes)


def test_cuda_memory_fraction_lowers_budget() -> None:
    a = predict_tgi(["--model-id", "Llama-3.1-8B"], "H100")
    b = predict_tgi(["--model-id", "Llama-3.1-8B", "--cuda-memory-fraction", "0.5"], "H100")
    assert b.kv_cache_tokens < a.kv_cache_tokens / 2
    with pytest.raises(InputError):
        predict_tgi(["--model-id", "Llama-3.1-8B", "--cuda-memory-fraction", "2"], "H100")


def test_cli() -> None:
    from vramplan.cli import app

    r = CliRunner().invoke(
        app, ["tgi", "--model-id", "Llama-3.1-8B", "--num-shard", "1", "--gpu", "H100", "--json"]
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["engine"] == "tgi"
