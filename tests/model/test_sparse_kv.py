"""Per-token caches of the sparse-attention and per-layer families against the design doc's worked figures
(hybrid-memory.md §1.5) and the SGLang DeepSeek-V3.2 case in validation/real_logs_2026.json."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from vramplan.memory.kv_cache import (
    kv_bytes_per_token,
    kv_cache_bytes,
    kv_layer_groups,
    largest_context,
)
from vramplan.memory.kv_layout import FP8_DS_MLA_BYTES, fp8_mla_bytes, indexer_key_bytes
from vramplan.model.hf_config import spec_from_config

DATA = Path(__file__).resolve().parents[1] / "data"
CONFIGS = Path(__file__).resolve().parents[2] / "src" / "vramplan" / "model" / "catalog"
GIB = 1 << 30
FP8, BF16 = Fraction(1), Fraction(2)


def _spec(name: str):
    return spec_from_config(json.loads((CONFIGS / f"{name}.json").read_text()))


def test_layout_constants_match_the_engines() -> None:
    # vLLM flashmla_sparse.py: 512 fp8 NoPE + 4 fp32 scales + 64 bf16 RoPE = 656 B.
    assert fp8_mla_bytes(512, 64) == FP8_DS_MLA_BYTES == 656
    # DeepseekV32IndexerCache: index_head_dim + index_head_dim / 128 * 4 = 132 B.
    assert indexer_key_bytes(128) == 132


def test_deepseek_v32_fp8_token_costs_61_x_788_bytes() -> None:
    spec = _spec("deepseek-ai__DeepSeek-V3.2")
    # "a DeepSeek-V3.2 token costs 61 x (656 + 132) B per rank" (hybrid-memory.md §1.5), at any TP.
    for tp in (1, 8):
        assert kv_bytes_per_token(spec, FP8, tp) == 61 * (656 + 132)
    groups = {g.kind: g for g in kv_layer_groups(spec, FP8)}
    assert groups["mla"].layers == groups["indexer"].layers == 61


def test_deepseek_v32_bf16_keeps_the_indexer_in_fp8() -> None:
    spec = _spec("deepseek-ai__DeepSeek-V3.2")
    assert kv_bytes_per_token(spec, BF16) == 61 * ((512 + 64) * 2 + 132)


def test_sglang_deepseek_v32_case() -> None:
    """SGLang PR #11309: 1,462,784 tokens; logged KV 54.52 GB (GiB) without the indexer, 65.49 with it."""
    case = next(
        c
        for c in json.loads((DATA / "real_logs_2026.json").read_text())
        if c["id"] == "sglang-pr11309-dsv32exp-8xb200-main"
    )
    spec = _spec("deepseek-ai__DeepSeek-V3.2")  # V3.2-Exp has the same attention shapes
    tokens = case["kv_cache_tokens"]
    mla_only = sum(
        g.layers * g.bytes_per_token_per_layer
        for g in kv_layer_groups(spec, FP8, 8)
        if g.kind == "mla"
    )
    assert float(mla_only * tokens) / GIB == pytest.approx(case["kv_size_gb"], abs=0.01)
    with_indexer = kv_cache_bytes(spec, FP8, tokens, 1, tp=8)
    assert with_indexer / GIB == pytest.approx(65.49, abs=0.01)


def test_glm5_indexer_on_every_full_layer() -> None:
    spec = _spec("zai-org__GLM-5")
    assert kv_bytes_per_token(spec, FP8) == 78 * (656 + 132)


def test_glm5_shared_indexer_layers_keep_no_indexer_cache() -> None:
    raw = json.loads((CONFIGS / "zai-org__GLM-5.json").read_text())
    raw["indexer_types"] = ["full" if i % 4 == 0 else "shared" for i in range(78)]
    spec = spec_from_config(raw)
    assert kv_bytes_per_token(spec, FP8) == 78 * 656 + 20 * 132


def test_deepseek_v4_compressed_sliding_and_indexer_caches() -> None:
    spec = _spec("deepseek-ai__DeepSeek-V4-Flash")
    kinds = {(g.kind, g.compress_ratio): g.layers for g in kv_layer_groups(spec, FP8)}
    # compress_ratios[:43]: 2 sliding-only, 21 CSA (ratio 4, with indexer), 20 HCA (ratio 128); SWA in all.
    assert kinds == {
        ("sliding", 1): 43,
        ("compressed", 4): 21,
        ("indexer", 4): 21,
        ("compressed", 128): 20,
    }
    context = 30_000
    expected = 43 * 127 * 584 + 21 * (context // 4) * (584 + 132) + 20 * (context // 128) * 584
    assert kv_cache_bytes(spec, FP8, context, 1) == expected
    # bf16: one 512-wide K=V entry (1,024 B); the indexer stays fp8 + scales.
    expected_bf16 = (
        43 * 127 * 1024 + 21 * (context // 4) * (1024 + 132) + 20 * (context // 128) * 1024
    )
    assert kv_cache_bytes(spec, BF16, context, 1) == expected_bf16


def test_largest_context_inverts_compressed_layouts() -> None:
    spec = _spec("deepseek-ai__DeepSeek-V4-Flash")
    budget = kv_cache_bytes(spec, FP8, 100_000, 4)
    best = largest_context(spec, FP8, 4, budget, upper=1_000_000)
    assert kv_cache_bytes(spec, FP8, best, 4) <= budget < kv_cache_bytes(spec, FP8, best + 1, 4)


def test_mimo_sliding_layers_have_twice_the_kv_heads() -> None:
    raw = dict(
        model_type="mimo_v2_flash",
        vocab_size=128,
        hidden_size=64,
        num_hidden_layers=6,
        num_attention_heads=8,
        num_key_value_heads=2,
        head_dim=16,
        v_head_dim=8,
        sliding_window=32,
        n_routed_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=16,
        intermediate_size=32,
    )
    spec = spec_from_config(raw)
    groups = {g.kind: g for g in kv_layer_groups(spec, BF16)}
    assert groups["full"].layers == 2 and groups["sliding"].layers == 4
    assert groups["full"].bytes_per_token_per_layer == 2 * (16 + 8) * 2
    assert groups["sliding"].bytes_per_token_per_layer == 4 * (16 + 8) * 2
    assert groups["sliding"].window == 32
    # TP 4: full layers keep max(1, 2 // 4) = 1 head, sliding layers 4 // 4 = 1.
    tp4 = {g.kind: g for g in kv_layer_groups(spec, BF16, 4)}
    assert tp4["full"].bytes_per_token_per_layer == tp4["sliding"].bytes_per_token_per_layer == 48


@pytest.mark.parametrize(
    ("name", "sliding", "full", "window"),
    [
        ("LGAI-EXAONE__EXAONE-4.0-32B", 48, 16, 4096),
        ("allenai__Olmo-3.1-32B-Instruct", 48, 16, 4096),
    ],
)
def test_sliding_layers_from_layer_types(name: str, sliding: int, full: int, window: int) -> None:
    groups = {g.kind: g for g in kv_layer_groups(_spec(name), BF16)}
    assert groups["sliding"].layers == sliding and groups["full"].layers == full
    assert groups["sliding"].window == window


def test_gemma4_sliding_and_global_layers() -> None:
    spec = _spec("google__gemma-4-26B-A4B")
    groups = {g.kind: g for g in kv_layer_groups(spec, BF16)}
    assert groups["sliding"].layers == 25 and groups["sliding"].window == 1024
    assert groups["sliding"].bytes_per_token_per_layer == 8 * (256 + 256) * 2
    assert groups["full"].layers == 5
    assert groups["full"].bytes_per_token_per_layer == 2 * (512 + 512) * 2


def test_gemma4_kv_shared_layers_keep_no_cache() -> None:
    raw = json.loads((CONFIGS / "google__gemma-4-26B-A4B.json").read_text())
    raw["text_config"] = dict(raw["text_config"], num_kv_shared_layers=6)
    spec = spec_from_config(raw)
    # layers 24..29 reuse: 24-28 sliding, 29 full -> 20 sliding + 4 full keep caches
    groups = {g.kind: g.layers for g in kv_layer_groups(spec, BF16)}
    assert groups == {"sliding": 20, "full": 4}


def test_minimax_m27_case_kv_per_token_and_one_request() -> None:
    """eugr/spark-vllm-docker#396 (MiniMax-M2.7, TP2, bf16 KV): 62 x 4 KV heads x 128 x 2 x 2 B = 124 KiB per
    token per rank; one 196,608-token request needs 23.25 GiB."""
    case = next(
        c
        for c in json.loads((DATA / "real_logs_2026.json").read_text())
        if c["id"] == "vllm-eugr396-minimax-m27-awq-2xspark-u080-failed"
    )
    spec = _spec("MiniMaxAI__MiniMax-M2.7")
    assert kv_bytes_per_token(spec, BF16, case["tensor_parallel_size"]) == 124 * 1024
    need = kv_cache_bytes(spec, BF16, case["max_model_len"], 1, tp=2)
    assert need / GIB == pytest.approx(23.25, abs=0.005)
