"""vLLM's hybrid page unification against the shared 2026 startup logs and the design note's observations."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from vramplan.memory.state_cache import state_dtypes
from vramplan.memory.vllm_hybrid_pages import (
    group_size,
    hybrid_capacity,
    plan_hybrid_pages,
    state_page_bytes,
)
from vramplan.model.catalog import catalogue
from vramplan.model.hf_config import spec_from_config

CASES = {
    c["id"]: c
    for c in json.loads((Path(__file__).parent / "data" / "vllm_hybrid_cases.json").read_text())[
        "cases"
    ]
}
GiB = 1 << 30
FP8 = Fraction(1)


def _spec(repo: str):  # type: ignore[no-untyped-def]
    return spec_from_config(catalogue()[repo])


def _plan(repo: str, kv: Fraction, tp: int, **kw):  # type: ignore[no-untyped-def]
    spec = _spec(repo)
    dt = state_dtypes(
        spec, "bfloat16"
    )  # conv bf16, recurrent from text_config.mamba_ssm_dtype (float32)
    return plan_hybrid_pages(spec, kv, dt.conv_bytes, dt.recurrent_bytes, tp, **kw)


def _logged_pool(gib: float) -> tuple[int, int]:
    """The range of bytes a pool printed as ``gib`` (two decimals) can have."""
    return int((gib - 0.005) * GiB), int((gib + 0.005) * GiB)


@pytest.mark.parametrize(
    ("case_id", "repo"),
    [
        # Qwen3.6-35B-A3B has the Qwen3.5-35B-A3B text architecture (30 DeltaNet + 10 attention layers)
        ("vllm-club3090-652-qwen36-35b-a3b-nvfp4-5090", "Qwen/Qwen3.5-35B-A3B"),
        # Qwen3.8-27B: the Qwen3.5-27B layout (48 + 16 layers); 4.99 GiB per rank is quoted in the PR
        ("vllm-mitchross1995-qwen38-27b-fp8-2x3090", "Qwen/Qwen3.5-27B"),
    ],
)
def test_reproduces_logged_concurrency_and_tokens(case_id: str, repo: str) -> None:
    case = CASES[case_id]
    plan = _plan(
        repo, FP8, case["tensor_parallel_size"], prefix_caching=case["enable_prefix_caching"]
    )
    if case["block_size"]:
        assert plan.block_size == case["block_size"]  # 1568: the raised attention block
    pool = case.get("available_kv_cache_gib") or 4.99
    low, high = _logged_pool(pool)
    for available in (low, high):  # the rounding of the printed pool does not change the answer
        cap = hybrid_capacity(plan, available, case["max_model_len"])
        assert round(float(cap.concurrency), 2) == case["max_concurrency"]
        assert cap.kv_cache_tokens == case["kv_cache_tokens"]


def test_qwen36_35b_block_and_groups() -> None:
    plan = _plan("Qwen/Qwen3.5-35B-A3B", FP8, 1, prefix_caching=True)
    # attention: 2 KV heads x (256 + 256) x 1 B; state: 8192 x 3 bf16 + 32 x 128 x 128 fp32
    assert plan.attn_bytes_per_token == 1024
    assert plan.state_page_bytes == 8192 * 3 * 2 + 32 * 128 * 128 * 4
    assert plan.block_size == 2096 and plan.padding_fraction == 0
    assert (plan.group_size, plan.attention_groups, plan.state_groups) == (10, 1, 3)
    assert plan.blocks_per_request(131_072) == 63 + 3 * 2


def test_genesis_tp8_block_544_and_padding() -> None:
    """hybrid-memory.md 1.2: a TP8 run logged block 544 and 2.64% padding: Qwen3.5-397B, bf16 KV, MTP 3."""
    plan = _plan("Qwen/Qwen3.5-397B-A17B", Fraction(2), 8, num_speculative_tokens=3)
    assert plan.block_size == 544
    assert round(float(plan.padding_fraction) * 100, 2) == 2.64
    assert plan.state_blocks_per_request == 1 + 3


def test_group_size_rule() -> None:
    assert group_size([48, 16]) == 16  # Qwen3.5: 4 groups of 16
    assert (
        group_size([10, 12]) == 12
    )  # close counts: the larger, padding layers instead of more groups
    assert group_size([23, 6]) == 6


def test_block_size_not_lowered_and_speculation_widens_conv() -> None:
    spec = _spec("Qwen/Qwen3.5-27B")
    base = state_page_bytes(spec, 2, 4, 2)
    assert state_page_bytes(spec, 2, 4, 2, num_speculative_tokens=2) == base + 5120 * 2 * 2
    big = _plan("Qwen/Qwen3.5-27B", FP8, 2, block_size=4096)
    assert big.block_size == 4096 and big.page_bytes > big.state_page_bytes


def test_refuses_models_that_are_not_attention_state_hybrids() -> None:
    with pytest.raises(ValueError, match="not a hybrid"):
        plan_hybrid_pages(_spec("Qwen/Qwen3-8B"), Fraction(2), 2, 2)
