"""TGI: warm-up KV budget vs a real log, block sizes, admission, errors, CLI."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from vramplan.engines.tgi import kv_budget_bytes, num_blocks, predict_tgi, request_blocks
from vramplan.errors import InputError
from vramplan.hardware import gpu_from

LLAMA2_7B_PARAMS = 6_738_415_616  # meta-llama/Llama-2-7b-hf, counted by transformers


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
    assert not p.starts
    fix = next(f for f in p.fixes if f.flag == "max_total_tokens")
    assert fix.value == p.kv_cache_tokens
    args = ["--model-id", "Llama-3.1-70B", "--num-shard", "2", "--max-total-tokens"]
    assert predict_tgi([*args, str(fix.value)], "A100-80GB").starts
    assert not predict_tgi([*args, str(fix.value + 1)], "A100-80GB").starts


def test_weights_do_not_fit() -> None:
    p = predict_tgi(["--model-id", "Llama-3.1-70B"], "A100-80GB")
    assert not p.starts and {(f.flag, f.value) for f in p.fixes} == {
        ("num_shard", 2),
        ("quantize", "fp8"),
    }
    for fix in p.fixes:  # each proposed change starts on its own
        flag = "--" + fix.flag.replace("_", "-")
        assert predict_tgi(
            ["--model-id", "Llama-3.1-70B", flag, str(fix.value)], "A100-80GB"
        ).starts


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


def test_old_tgi_warmup_is_98_percent_of_total_minus_torch_peak() -> None:
    """TGI 0.9-1.0: blocks = (0.98 x total - torch peak reserved) // block bytes; the peak holds the weights
    and the warm-up's prefill logits (P x vocab, gathered + log-softmax + one shard's matmul, fp16); the CUDA
    context is outside torch and not subtracted. Llama-2-7B, 4,096 warm-up tokens, paged blocks of 16."""
    total = gpu_from("A100-80GB").memory_bytes
    p = predict_tgi(["--model-id", "Llama-2-7B"], "A100-80GB", engine_version="0.9.4")
    logits = 4096 * 32000 * 2 * (2 + 1)
    block_bytes = 16 * 32 * 2 * 32 * 128 * 2  # 16 tokens x 32 layers x K+V x 32 heads x 128 x fp16
    kv = 0.98 * total - (2 * LLAMA2_7B_PARAMS + logits)
    assert p.kv_cache_tokens == int(kv // block_bytes) * 16
    assert p.kv_bytes_per_token == block_bytes // 16 and p.state_bytes_per_sequence == 0
    newer = predict_tgi(["--model-id", "Llama-2-7B"], "A100-80GB", engine_version="1.1.0")
    assert newer.kv_cache_tokens > p.kv_cache_tokens  # 1.1 measures free memory, no 2 % margin
    bigger = predict_tgi(
        ["--model-id", "Llama-2-7B", "--max-batch-prefill-tokens", "8192"],
        "A100-80GB",
        engine_version="1.0",
    )
    assert p.kv_cache_tokens - bigger.kv_cache_tokens == pytest.approx(
        logits // block_bytes * 16, abs=32
    )  # the old budget pays for the warm-up peak


def test_ngram_speculation_reserves_slots_not_weights() -> None:
    a = predict_tgi(["--model-id", "Llama-3.1-8B"], "H100", max_new_tokens=100)
    b = predict_tgi(["--model-id", "Llama-3.1-8B", "--speculate", "3"], "H100", max_new_tokens=100)
    assert a.weights_gib == b.weights_gib and a.kv_cache_tokens == b.kv_cache_tokens
    max_input = b.extra["max_input_tokens"]
    assert b.extra["blocks_per_request"] == max_input + 100 + 3 - 1  # flashinfer: 1-token blocks


def test_medusa_heads_are_weights(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = {"medusa_num_heads": 3, "medusa_num_layers": 1, "base_model_name_or_path": "Llama-3.1-8B"}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    base = predict_tgi(["--model-id", "Llama-3.1-8B", "--num-shard", "2"], "H100")
    p = predict_tgi(["--model-id", str(tmp_path), "--num-shard", "2"], "H100")
    h, v = 4096, 128256
    heads = 3 * ((h * h + h) + v * h) * 2 // 2  # bf16, column-sharded over 2 shards
    assert (p.weights_gib - base.weights_gib) * 2**30 == pytest.approx(heads, abs=1)
    assert p.extra["speculate"] == 3  # --speculate defaults to the head count
    over = predict_tgi(["--model-id", str(tmp_path), "--speculate", "4"], "H100")
    assert not over.starts and "only has `3` heads" in over.errors[0]


def test_lora_adapters_read_from_adapter_config(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "adapter_config.json").write_text(
        json.dumps({"r": 16, "target_modules": ["q_proj", "v_proj"]})
    )
    base = predict_tgi(["--model-id", "Llama-3.1-8B"], "H100")
    p = predict_tgi(
        ["--model-id", "Llama-3.1-8B", "--lora-adapters", f"mine={tmp_path},org/hub-adapter"],
        "H100",
    )
    # 32 layers x r 16 x (q: 4096 in + 4096 out, v: 4096 in + 1024 out) x bf16
    adapter = 32 * 16 * ((4096 + 4096) + (4096 + 1024)) * 2
    assert (p.weights_gib - base.weights_gib) * 2**30 == pytest.approx(adapter, abs=1)
    assert p.kv_cache_tokens < base.kv_cache_tokens
    assert any("not counted" in a and "org/hub-adapter" in a for a in p.assumptions)


def test_hybrid_models_are_refused_in_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from vramplan.model.catalog import catalogue

    path = tmp_path / "config.json"
    path.write_text(json.dumps(catalogue()["Qwen/Qwen3.5-27B"]))
    with pytest.raises(InputError, match="recurrent"):
        predict_tgi(["--model-id", str(path)], "H100")


def test_cli_renders_fixes_as_launcher_flags() -> None:
    from vramplan.cli import app

    r = CliRunner().invoke(app, ["tgi", "--model-id", "Llama-3.1-70B", "--gpu", "A100-80GB"])
    assert "fix: --num-shard 2 (" in r.output


@settings(max_examples=20, deadline=None)
@given(
    prefill=st.integers(min_value=256, max_value=32768),
    fraction=st.sampled_from([0.5, 0.8, 0.9, 1.0]),
    version=st.sampled_from(["0.9.4", "1.0.3", "1.1.0", "2.0.4", "2.4.0"]),
)
def test_warmup_budget_never_exceeds_its_formula(
    prefill: int, fraction: float, version: str
) -> None:
    """Whatever the version: the tokens fit the KV bytes, a larger warm-up never leaves more, and the old
    formula stays inside 0.98 x fraction x total minus the weights."""
    args = ["--model-id", "Llama-3.1-8B", "--cuda-memory-fraction", str(fraction)]
    p = predict_tgi(
        [*args, "--max-batch-prefill-tokens", str(prefill)], "A100-80GB", engine_version=version
    )
    bigger = predict_tgi(
        [*args, "--max-batch-prefill-tokens", str(prefill * 2)], "A100-80GB", engine_version=version
    )
    assert p.kv_cache_tokens * p.kv_bytes_per_token <= p.extra["kv_cache_bytes"]
    assert bigger.kv_cache_tokens <= p.kv_cache_tokens
    if version.startswith(("0.9", "1.0")):
        total = gpu_from("A100-80GB").memory_bytes
        assert p.extra["kv_cache_bytes"] <= 0.98 * fraction * total - p.weights_gib * 2**30


def test_kv_pool_carries_the_per_token_bytes() -> None:
    from vramplan.engines.tgi import ENGINE_MODEL
    from vramplan.scenario import Scenario

    pool = ENGINE_MODEL.kv_pool(Scenario.from_values("Llama-3.1-8B", gpu="H100"))
    assert pool.kv_bytes_per_token == 32 * 2 * 8 * 128 * 2 and pool.state_bytes_per_sequence == 0
    assert pool.kv_cache_tokens * pool.kv_bytes_per_token <= pool.kv_cache_bytes
