"""Serving-feature memory against vLLM 0.34.0's own tensor shapes, PEFT's published counts and checkpoints.

Each expectation is rebuilt here independently: LoRA slots as the meta-device tensors vLLM's
``create_lora_weights`` allocates, adapters as PEFT's printed trainable-parameter counts, MTP / EAGLE heads
from their checkpoint tensor lists.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from vramplan.errors import InputError
from vramplan.memory.serving_features import (
    all2all_buffer_bytes,
    deepep_low_latency_rdma_bytes,
    draft_model_memory,
    eagle_head_memory,
    expert_weight_bytes_per_gpu,
    experts_on_rank,
    gpu_weight_bytes_after_cpu_offload,
    kv_offload_host_bytes,
    lmcache_gpu_buffer_bytes,
    lmcache_host_bytes,
    lora_adapter_bytes,
    lora_cpu_cache_bytes,
    lora_gpu_bytes,
    mtp_memory,
    ngram_memory,
    p2p_nccl_host_pool_bytes,
    uva_offloaded_bytes,
)
from vramplan.model.hf_config import spec_from_config
from vramplan.model.spec import ModelSpec, MoESpec
from vramplan.precision import Precision

BF16 = Precision("bfloat16")
CATALOG = Path(__file__).resolve().parents[2] / "src" / "vramplan" / "model" / "catalog"

LLAMA_31_8B = ModelSpec(
    name="llama-3.1-8b",
    model_type="llama",
    vocab_size=128256,
    hidden_size=4096,
    num_layers=32,
    num_heads=32,
    num_kv_heads=8,
    head_dim=128,
    intermediate_size=14336,
    max_position_embeddings=131072,
)
LLAMA_32_1B = ModelSpec(
    name="llama-3.2-1b",
    model_type="llama",
    vocab_size=128256,
    hidden_size=2048,
    num_layers=16,
    num_heads=32,
    num_kv_heads=8,
    head_dim=64,
    intermediate_size=8192,
    max_position_embeddings=131072,
    tie_word_embeddings=True,
)


def _meta_bytes(*shapes: tuple[int, ...], dtype: torch.dtype = torch.bfloat16) -> int:
    return sum(torch.zeros(s, dtype=dtype, device="meta").nbytes for s in shapes)


def _vllm_llama_lora_slots(
    max_loras: int, rank: int, tp: int, fully_sharded: bool, vocab: int = 128256
) -> int:
    """The tensors vLLM 0.34 allocates for a Llama-3.1-8B, written from its create_lora_weights bodies."""
    h, inter, layers = 4096, 14336, 32
    q, kv = 32 // tp * 128, max(1, 8 // tp) * 128
    rank_a_col = rank // tp if fully_sharded else rank
    out_row = h // tp if fully_sharded else h
    per_layer = (
        # MergedQKVParallelLinearWithLoRA: lora_a per slice (L, 1, rA, h), lora_b per slice (L, 1, out, R)
        *[(max_loras, 1, rank_a_col, h)] * 3,
        (max_loras, 1, q, rank),
        (max_loras, 1, kv, rank),
        (max_loras, 1, kv, rank),
        # RowParallelLinearWithLoRA o_proj: input_size = in/tp
        (max_loras, 1, rank, 32 * 128 // tp),
        (max_loras, 1, out_row, rank),
        # MergedColumnParallelLinearWithLoRA gate_up
        *[(max_loras, 1, rank_a_col, h)] * 2,
        *[(max_loras, 1, inter // tp, rank)] * 2,
        # down_proj
        (max_loras, 1, rank, inter // tp),
        (max_loras, 1, out_row, rank),
    )
    embed = ((max_loras, vocab, rank), (max_loras, 1, h, rank))
    lm_head = ((max_loras, 1, rank, h), (max_loras, 1, vocab, rank))
    return layers * _meta_bytes(*per_layer) + _meta_bytes(*embed, *lm_head)


@pytest.mark.parametrize(
    ("max_loras", "rank", "tp", "sharded"),
    [(1, 16, 1, False), (8, 64, 1, False), (4, 32, 2, False), (8, 64, 4, True), (2, 8, 8, True)],
)
def test_lora_slots_match_vllm_allocations(
    max_loras: int, rank: int, tp: int, sharded: bool
) -> None:
    got = lora_gpu_bytes(LLAMA_31_8B, max_loras, rank, 2, tp=tp, fully_sharded_loras=sharded)
    assert got == _vllm_llama_lora_slots(max_loras, rank, tp, sharded)


def test_lora_slots_worked_example_8x64() -> None:
    # --max-loras 8 --max-lora-rank 64 on Llama-3.1-8B bf16: 2.75 GiB of zeros before any adapter loads.
    got = lora_gpu_bytes(LLAMA_31_8B, 8, 64, 2)
    per_layer = (
        64 * (3 * 4096 + 6144)
        + 64 * (4096 + 4096)
        + 64 * (2 * 4096 + 2 * 14336)
        + 64 * (14336 + 4096)
    )
    vocab_part = 2 * (128256 * 64 + 4096 * 64)
    assert got == 8 * 2 * (32 * per_layer + vocab_part) == 2_955_411_456


def test_lora_moe_slots_match_fused_moe_allocations() -> None:
    moe = ModelSpec(
        name="tiny-moe",
        model_type="qwen3_moe",
        vocab_size=1000,
        hidden_size=256,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        head_dim=64,
        intermediate_size=512,
        max_position_embeddings=4096,
        moe=MoESpec(num_experts=8, experts_per_token=2, expert_intermediate_size=128),
    )
    L, R, h, E, inter = 3, 16, 256, 8, 128
    per_layer = _meta_bytes(
        *[(L, 1, R, h)] * 3,
        (L, 1, 256, R),
        (L, 1, 128, R),
        (L, 1, 128, R),  # qkv
        (L, 1, R, 256),
        (L, 1, h, R),  # o_proj
        (L, 1, R, h),
        (L, 1, E, R),  # router gate (ReplicatedLinear)
        *[(L, E, R, h)] * 2,
        (L, E, R, inter),  # fused_moe.py w13_lora_a x2, w2_lora_a
        *[(L, E, inter, R)] * 2,
        (L, E, h, R),  # w13_lora_b x2, w2_lora_b
    )
    vocab = _meta_bytes((L, 1000, R), (L, 1, h, R), (L, 1, R, h), (L, 1, 1000, R))
    assert lora_gpu_bytes(moe, L, R, 2) == 2 * per_layer + vocab


def test_lora_refusals_are_one_line_input_errors() -> None:
    with pytest.raises(InputError, match="max-lora-rank"):
        lora_gpu_bytes(LLAMA_31_8B, 1, 24, 2)
    with pytest.raises(InputError, match="max-loras"):
        lora_gpu_bytes(LLAMA_31_8B, 0, 16, 2)
    with pytest.raises(InputError, match="not divisible"):
        lora_gpu_bytes(LLAMA_31_8B, 1, 16, 2, tp=3)
    with pytest.raises(InputError, match="max-cpu-loras"):
        lora_cpu_cache_bytes(10, max_loras=4, max_cpu_loras=2)


def test_lora_adapter_bytes_match_peft_published_counts() -> None:
    # PEFT print_trainable_parameters on Llama-3-8B (same shapes as 3.1): r=16 all-linear -> 41,943,040;
    # r=8 on q_proj, v_proj -> 3,407,872.
    assert lora_adapter_bytes(LLAMA_31_8B, 16, 2) == 41_943_040 * 2
    assert lora_adapter_bytes(LLAMA_31_8B, 8, 4, ("q_proj", "v_proj")) == 3_407_872 * 4


def test_lora_cpu_cache_defaults_to_max_loras_per_worker() -> None:
    adapter = lora_adapter_bytes(LLAMA_31_8B, 16, 2)
    assert lora_cpu_cache_bytes(adapter, max_loras=4) == 4 * 83_886_080
    assert lora_cpu_cache_bytes(adapter, max_loras=4, max_cpu_loras=16, tp=2) == 2 * 16 * 83_886_080


def test_ngram_adds_nothing() -> None:
    assert ngram_memory().weight_bytes == 0
    assert ngram_memory().kv_bytes_per_token == 0


def test_draft_model_is_its_weights_and_kv() -> None:
    # Llama-3.2-1B: 1,235,814,400 parameters (model card / safetensors metadata), bf16; KV 16 layers x 8 x 64 x 2.
    got = draft_model_memory(LLAMA_32_1B, BF16, Fraction(2))
    assert got.weight_bytes == 1_235_814_400 * 2
    assert got.kv_bytes_per_token == 16 * 8 * (64 + 64) * 2


def test_eagle3_head_matches_checkpoint_tensors() -> None:
    # yuhuili/EAGLE3-LLaMA3.1-Instruct-8B: one midlayer, draft_vocab_size 32000, target vocab 128256.
    head = LLAMA_31_8B.__class__(**{**LLAMA_31_8B.__dict__, "num_layers": 1, "name": "eagle3"})
    checkpoint = [
        (4096, 8192),  # midlayer.self_attn.q_proj (2h input)
        (1024, 8192),  # k_proj
        (1024, 8192),  # v_proj
        (4096, 4096),  # o_proj
        (14336, 4096),
        (14336, 4096),
        (4096, 14336),  # mlp
        (4096,),
        (4096,),
        (4096,),  # input_layernorm, hidden_norm, post_attention_layernorm
        (4096, 3 * 4096),  # fc
        (4096,),  # norm
        (32000, 4096),  # lm_head (draft vocab, 32000 = 500 x 64 so no padding)
    ]
    want = _meta_bytes(*checkpoint) + 32000 * 8  # d2t as int64
    got = eagle_head_memory(
        head,
        BF16,
        Fraction(2),
        eagle3=True,
        target_vocab_size=128256,
        draft_vocab_size=32000,
    )
    assert got.weight_bytes == want
    assert got.kv_bytes_per_token == 8 * 256 * 2


def test_eagle1_head_shares_lm_head_and_embed() -> None:
    # yuhuili/EAGLE-LLaMA3-Instruct-8B: one layer + fc(8192 -> 4096); lm_head and embed come from the target.
    head = LLAMA_31_8B.__class__(**{**LLAMA_31_8B.__dict__, "num_layers": 1, "name": "eagle"})
    layer = _meta_bytes(
        (4096, 4096),
        (1024, 4096),
        (1024, 4096),
        (4096, 4096),
        (14336, 4096),
        (14336, 4096),
        (4096, 14336),
        (4096,),
        (4096,),
    )
    got = eagle_head_memory(head, BF16, Fraction(2))
    assert got.weight_bytes == layer + _meta_bytes((4096, 8192))


def _deepseek_v3() -> ModelSpec:
    cfg = json.loads((CATALOG / "deepseek-ai__DeepSeek-V3.json").read_text())
    return spec_from_config(cfg.get("config", cfg), name="deepseek-v3")


def test_deepseek_mtp_layer_matches_checkpoint_layer_61() -> None:
    spec = _deepseek_v3()
    h = 7168
    layer_61 = [
        (1536, h),
        (1536,),
        (128 * 192, 1536),  # q_a_proj, q_a_layernorm, q_b_proj
        (576, h),
        (512,),
        (128 * 256, 512),
        (h, 128 * 128),  # kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj, o_proj
        (256, h),  # mlp.gate.weight
        *[(2048, h), (2048, h), (h, 2048)] * 257,  # 256 routed experts + 1 shared expert
        (h,),
        (h,),  # input / post_attention layernorm
        (h,),
        (h,),
        (h, 2 * h),
        (h,),  # enorm, hnorm, eh_proj, shared_head.norm
    ]
    want = _meta_bytes(*layer_61) + _meta_bytes(
        (256,), dtype=torch.float32
    )  # e_score_correction_bias
    got = mtp_memory(spec, BF16, Fraction(2), num_mtp_layers=1, method="deepseek_mtp")
    assert got.weight_bytes == want
    assert (
        got.kv_bytes_per_token == (512 + 64) * 2
    )  # one MLA latent per token, vLLM MLAAttentionSpec
    assert mtp_memory(spec, BF16, Fraction(2), 0).weight_bytes == 0


def test_expert_placement_follows_determine_expert_map() -> None:
    # expert_map_manager.py: 10 experts on 4 ranks -> 3, 3, 2, 2 (remainder on the first ranks).
    assert [experts_on_rank(10, 4, r) for r in range(4)] == [3, 3, 2, 2]
    assert experts_on_rank(256, 1, 0) == 256
    assert [experts_on_rank(256, 8, r, redundant_experts=32) for r in range(8)] == [36] * 8


@given(st.integers(1, 512), st.integers(1, 64), st.integers(0, 64))
def test_expert_placement_covers_every_expert_once(experts: int, ep: int, redundant: int) -> None:
    placed = [experts_on_rank(experts, ep, r, redundant) for r in range(ep)]
    assert sum(placed) == experts + redundant
    assert max(placed) - min(placed) <= 1


def test_expert_parallel_bytes_per_gpu() -> None:
    spec = _deepseek_v3()
    per_expert = 3 * 2048 * 7168 * 2  # gate, up, down in bf16, whole on its rank
    moe_layers = 61 - 3
    assert expert_weight_bytes_per_gpu(spec, BF16, tp=8) == moe_layers * 32 * per_expert
    assert expert_weight_bytes_per_gpu(spec, BF16, tp=4, dp=4) == moe_layers * 16 * per_expert
    # Without EP every expert is TP-split: the same total per GPU when the split is even.
    assert (
        expert_weight_bytes_per_gpu(spec, BF16, tp=8, enable_expert_parallel=False)
        == moe_layers * 256 * per_expert // 8
    )
    with pytest.raises(InputError, match="no experts"):
        expert_weight_bytes_per_gpu(LLAMA_31_8B, BF16, tp=2)


def test_cpu_offload_gb_is_gib_per_gpu() -> None:
    # config/offload.py: "one 24 GB GPU and set this to 10 ... load a 13B model with BF16 weight (26 GB)".
    assert gpu_weight_bytes_after_cpu_offload(26 * 1024**3, 10) == 16 * 1024**3
    assert gpu_weight_bytes_after_cpu_offload(5 * 1024**3, 10) == 0
    assert gpu_weight_bytes_after_cpu_offload(5 * 1024**3, 0.5) == 5 * 1024**3 - 512 * 1024**2
    with pytest.raises(InputError, match="cpu-offload-gb"):
        gpu_weight_bytes_after_cpu_offload(1, -1)


def test_uva_offload_moves_whole_parameters() -> None:
    gib = 1024**3
    # Budget 1 GiB: 0.75 GiB moves, still under budget, so the next 0.5 GiB moves whole; then it stops.
    params = [3 * gib // 4, gib // 2, gib // 2]
    assert uva_offloaded_bytes(params, 1) == 5 * gib // 4
    assert uva_offloaded_bytes(params, 0) == 0


def test_kv_offload_host_bytes() -> None:
    assert kv_offload_host_bytes(64) == 64 * 1024**3
    assert kv_offload_host_bytes(1.5) == 3 * 1024**3 // 2
    assert kv_offload_host_bytes(64, "lmcache", lmcache_local_cpu_gib=100) == 100 * 1024**3
    with pytest.raises(InputError, match="LMCache"):
        kv_offload_host_bytes(64, "lmcache")


def test_moe_shared_loras_store_w13_a_and_w2_b_once() -> None:
    moe = ModelSpec(
        name="tiny-moe",
        model_type="qwen3_moe",
        vocab_size=1000,
        hidden_size=256,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        head_dim=64,
        intermediate_size=512,
        max_position_embeddings=4096,
        moe=MoESpec(num_experts=8, experts_per_token=2, expert_intermediate_size=128),
    )
    L, R, h, E = 3, 16, 256, 8
    # fused_moe.py:164-173: the expert dim of w13_lora_a (2 slices) and w2_lora_b becomes 1.
    saved_per_layer = _meta_bytes(*[(L, E - 1, R, h)] * 2, (L, E - 1, h, R))
    full = lora_gpu_bytes(moe, L, R, 2)
    assert lora_gpu_bytes(moe, L, R, 2, moe_shared_loras=True) == full - 2 * saved_per_layer


def test_qwen3_next_mtp_has_one_fc_for_the_stack() -> None:
    spec = ModelSpec(
        name="tiny-next",
        model_type="qwen3_next",
        vocab_size=1000,
        hidden_size=256,
        num_layers=4,
        num_heads=4,
        num_kv_heads=2,
        head_dim=64,
        intermediate_size=512,
        max_position_embeddings=4096,
    )
    one = mtp_memory(spec, BF16, Fraction(2), 1, method="qwen3_next_mtp")
    two = mtp_memory(spec, BF16, Fraction(2), 2, method="mtp")
    layer = _meta_bytes(
        (256, 256),
        (128, 256),
        (128, 256),
        (256, 256),
        (512, 256),
        (512, 256),
        (256, 512),
        (256,),
        (256,),
    )
    # qwen3_next_mtp.py:87-121: fc ColumnParallelLinear(2h, h) + norm, pre_fc_norm_hidden, pre_fc_norm_embedding.
    assert one.weight_bytes == layer + _meta_bytes((256, 512), (256,), (256,), (256,))
    assert two.weight_bytes - one.weight_bytes == layer
    assert two.kv_bytes_per_token == 2 * 2 * (64 + 64) * 2  # layers x KV heads x (K + V) x bf16


def test_speculative_methods_map_to_memory_models() -> None:
    from vramplan.memory.serving_features import speculative_kind

    assert speculative_kind("ngram") == "ngram"
    assert speculative_kind("EAGLE3") == "eagle"
    assert speculative_kind("deepseek_mtp") == "mtp"
    assert speculative_kind("draft_model") == "draft_model"
    with pytest.raises(InputError, match="not modelled"):
        speculative_kind("medusa")


def test_draft_tp_is_one_or_the_targets() -> None:
    sharded = draft_model_memory(LLAMA_32_1B, BF16, Fraction(2), tp=2)
    assert sharded.kv_bytes_per_token == 16 * 4 * (64 + 64) * 2  # 8 KV heads split over 2 ranks
    whole = draft_model_memory(LLAMA_32_1B, BF16, Fraction(2), tp=2, draft_tp=1)
    assert whole.weight_bytes == 1_235_814_400 * 2
    with pytest.raises(InputError, match="draft_tensor_parallel_size"):
        draft_model_memory(LLAMA_32_1B, BF16, Fraction(2), tp=4, draft_tp=2)


# ------------------------------------------------------------------ all-to-all buffers, KV connectors
def test_deepep_low_latency_rdma_hint_follows_the_layout() -> None:
    # DeepSeek-V3 (hidden 7168 = 56 x 128, 256 experts), written out message by message.
    def hint(tokens: int) -> int:
        dispatch_msg = 16 + max(
            7168 * 2, 7168 + 56 * 4
        )  # int4 header + BF16 payload (FP8 + scales is smaller)
        combine_msg = 56 * 4 + 7168 * 2  # per-128-channel bf16x2 min/max + BF16 payload
        send = max(tokens * dispatch_msg, 256 * tokens * combine_msg)
        recv = 256 * tokens * max(dispatch_msg, combine_msg)
        signal = 1024  # 256 ints, already 128-aligned
        total = 2 * (send + recv + signal)
        return (total + 128) // 128 * 128

    assert deepep_low_latency_rdma_bytes(128, 7168, 16, 256) == hint(128) == 1_908_410_496
    assert deepep_low_latency_rdma_bytes(256, 7168, 64, 256) == hint(256)  # ranks do not enter
    with pytest.raises(InputError, match="tokens, hidden size"):
        deepep_low_latency_rdma_bytes(0, 7168, 16, 256)


def test_all2all_buffers_per_backend() -> None:
    kw = {"hidden_size": 7168, "num_experts": 256, "ep_size": 16, "max_tokens_per_dp_rank": 128}
    mib = 1 << 20
    # all2all.py:262-287 (VLLM_DEEPEP_BUFFER_SIZE_MB = 1024, envs.py:303) + DeepEP's 32 MiB workspace.
    assert all2all_buffer_bytes("deepep_high_throughput", **kw) == 1024 * mib + 32 * mib
    assert (
        all2all_buffer_bytes("deepep_high_throughput", internode=True, **kw)
        == 2048 * mib + 32 * mib
    )
    assert all2all_buffer_bytes("deepep_high_throughput", buffer_mb=512, **kw) == 544 * mib
    # all2all.py:330-364: NVLink buffer + the low-latency RDMA hint + workspace.
    assert all2all_buffer_bytes("deepep_low_latency", **kw) == (
        1056 * mib + deepep_low_latency_rdma_bytes(128, 7168, 16, 256)
    )
    for backend in (
        "allgather_reducescatter",
        "naive",
        "pplx",
    ):  # config/parallel.py:575-581 fallback
        assert all2all_buffer_bytes(backend, **kw) == 0
    with pytest.raises(InputError, match="not modelled"):
        all2all_buffer_bytes("mori", **kw)


def test_lmcache_buffers() -> None:
    # lmcache/v1/gpu_connector/gpu_connectors.py:191-202,427-429: [2, layers, chunk, kv_heads*head_dim].
    llama_8b_per_token = 2 * 32 * 8 * 128 * 2
    assert lmcache_gpu_buffer_bytes(llama_8b_per_token) == 2 * 32 * 256 * 1024 * 2 == 32 << 20
    assert lmcache_gpu_buffer_bytes(llama_8b_per_token, enable_pd=True) == 0
    assert lmcache_host_bytes() == 5 << 30  # max_local_cpu_size 5.0 -> int(5.0 * 1024**3)
    assert lmcache_host_bytes(0.5) == 1 << 29
    with pytest.raises(InputError, match="LMCACHE_MAX_LOCAL_CPU_SIZE"):
        lmcache_host_bytes(-1)


def test_p2p_nccl_pool_rounds_up_to_a_power_of_two() -> None:
    # tensor_memory_pool.py:73,84-85 (vLLM 0.11.0): max_block_size = 1 << (size - 1).bit_length().
    assert p2p_nccl_host_pool_bytes() == 32 << 30
    assert p2p_nccl_host_pool_bytes(1.5) == 2 << 30
    assert p2p_nccl_host_pool_bytes(1) == 1 << 30
    with pytest.raises(InputError, match="512-byte"):
        p2p_nccl_host_pool_bytes(1e-9)
