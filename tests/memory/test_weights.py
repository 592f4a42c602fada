"""Weight bytes against checkpoint totals published with the files (model-configs/SOURCES.md)."""

from __future__ import annotations

import pytest

from vramplan.estimator import estimate

# (catalogue id, index total_size, bytes in the checkpoint that transformers does not load as weights, why)
CASES = [
    (
        "meta-llama/Llama-2-7b-hf",
        13_476_839_424,
        8_192,
        "fp32 rotary inv_freq buffers saved in the .bin",
    ),
    ("meta-llama/Llama-2-70b-chat-hf", 137_953_316_864, 20_480, "fp32 rotary inv_freq buffers"),
    ("mistralai/Mistral-7B-Instruct-v0.3", 14_496_047_104, 0, ""),
    ("mistralai/Mixtral-8x7B-v0.1", 93_405_585_408, 0, ""),
    ("microsoft/phi-4", 29_319_014_400, 0, ""),
    ("meta-llama/Llama-3.2-3B", 6_425_499_648, 0, "Instruct checkpoint, same shapes"),
    ("microsoft/Phi-3-mini-4k-instruct", 7_642_159_104, 0, "128k variant, same shapes"),
    ("openai/gpt-oss-20b", 13_761_264_768, 0, "MXFP4 experts + bf16 rest"),
    ("bigscience/bloom", 352_494_542_848, 0, ""),
    # Old Falcon .bin checkpoints store the tied lm_head a second time: V x h x 2 bytes extra.
    (
        "tiiuae/falcon-7b",
        14_434_379_520,
        65_024 * 4_544 * 2,
        "tied lm_head saved twice in the .bin",
    ),
    (
        "tiiuae/falcon-40b",
        83_671_941_120,
        65_024 * 8_192 * 2,
        "tied lm_head saved twice in the .bin",
    ),
    ("tiiuae/falcon-180B-chat", 359_045_130_240, 65_024 * 14_848 * 2, "tied lm_head saved twice"),
]


@pytest.mark.parametrize("model,total,extra,why", CASES, ids=[c[0] for c in CASES])
def test_unsharded_weight_bytes_match_checkpoint(
    model: str, total: int, extra: int, why: str
) -> None:
    b = estimate(model)
    ours = b.component("weights").inputs["unsharded_bytes"]
    assert ours == total - extra, (
        f"{model}: checkpoint {total - extra:,} B, we say {ours:,} B ({why})"
    )


def test_tp_never_raises_per_gpu_weights() -> None:
    last = None
    for tp in (1, 2, 4, 8):
        w = estimate("llama-3.1-70b", tensor_parallel_size=tp).component("weights").per_gpu_bytes
        assert last is None or w < last
        last = w


def test_kv_heads_replicate_beyond_tp() -> None:
    # Llama-3.1-8B has 8 KV heads: at TP 16 each rank still holds one head (2x replication).
    b8 = estimate("llama-3.1-8b", tensor_parallel_size=8, context=1024)
    b16 = estimate("llama-3.1-8b", tensor_parallel_size=16, context=1024)
    one_head = 32 * 2 * 1 * 128 * 2 * 1024  # layers x (K,V) x 1 head x head_dim x bf16 x tokens
    assert b8.component("kv_cache").per_gpu_bytes == one_head
    assert b16.component("kv_cache").per_gpu_bytes == one_head
    assert b16.component("kv_cache").total_bytes == 2 * b8.component("kv_cache").total_bytes


def test_mla_latent_not_split_by_tp() -> None:
    one = (
        estimate("deepseek-v3", context=1000, tensor_parallel_size=1)
        .component("kv_cache")
        .per_gpu_bytes
    )
    eight = (
        estimate("deepseek-v3", context=1000, tensor_parallel_size=8)
        .component("kv_cache")
        .per_gpu_bytes
    )
    assert one == eight == 61 * 576 * 2 * 1000  # 70,272 B per token, engine-memory.md section 0


def test_quantized_schemes_exact_layouts() -> None:
    from vramplan.precision import awq_bytes, gptq_bytes, mxfp4_bytes

    n, k = 4096, 4096
    # AWQ 4-bit g128: qweight K x N/8 int32 + qzeros K/128 x N/8 int32 + scales K/128 x N fp16
    assert awq_bytes(4, 128)(n, k) == k * n // 2 + (k // 128) * (n // 8) * 4 + (k // 128) * n * 2
    # GPTQ adds g_idx (int32 per input feature)
    assert gptq_bytes(4, 128)(n, k) == awq_bytes(4, 128)(n, k) + 4 * k
    assert mxfp4_bytes()(n, k) * 8 / (n * k) == 4.25


def test_gguf_k_quants_fall_back_on_rows_not_divisible_by_256() -> None:
    """llama.cpp stores a 2,880-wide row (gpt-oss) of a Q4_K file as Q5_0, and a 64-wide Q6_K row as Q8_0."""
    from vramplan.ggml import type_for_row as ggml_type_for_row
    from vramplan.precision import ggml_bytes

    assert ggml_type_for_row("Q4_K", 2880) == "Q5_0"
    assert ggml_type_for_row("Q4_K", 4096) == "Q4_K"
    assert ggml_type_for_row("Q6_K", 64) == "Q8_0"
    assert ggml_type_for_row("Q2_K", 48) == "F16"  # not even a multiple of 32
    assert ggml_bytes("Q4_K")(10, 2880) == 10 * (2880 // 32) * 22
    assert ggml_bytes("Q6_K")(64, 64) == 64 * 2 * 34
