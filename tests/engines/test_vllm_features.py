"""`vramplan vllm` with LoRA, speculative decoding and expert parallelism: each flag changes the per-GPU
figures by what ``memory/serving_features.py`` (vLLM 0.34's allocation code) says, and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vramplan.engines.vllm import predict_vllm
from vramplan.errors import InputError
from vramplan.estimator import resolve
from vramplan.memory.serving_features import (
    deepep_low_latency_rdma_bytes,
    expert_weight_bytes_per_gpu,
    lora_gpu_bytes,
    mtp_memory,
)
from vramplan.memory.weights import weight_bytes
from vramplan.model.load import spec_of

GIB = 1 << 30
LLAMA = ["meta-llama/Llama-3.1-8B-Instruct", "--max-model-len", "8192"]


def _delta_bytes(a: float, b: float) -> int:
    return round((b - a) * GIB)


def test_lora_slots_add_their_bytes_to_the_weights() -> None:
    base = predict_vllm(LLAMA, gpu="H100", fixes=False)
    lora = predict_vllm(
        [*LLAMA, "--enable-lora", "--max-loras", "8", "--max-lora-rank", "64"],
        gpu="H100",
        fixes=False,
    )
    spec = spec_of("meta-llama/Llama-3.1-8B-Instruct")
    want = lora_gpu_bytes(spec, 8, 64, 2)
    assert want == 2_955_411_456  # the worked example of serving_features
    assert _delta_bytes(base.weights_gib, lora.weights_gib) == want
    assert lora.kv_cache_tokens < base.kv_cache_tokens
    assert any("LoRA slots" in a for a in lora.assumptions)
    assert "ignored_flags" not in lora.extra or not lora.extra["ignored_flags"]


def test_ngram_speculation_costs_nothing() -> None:
    base = predict_vllm(LLAMA, gpu="H100", fixes=False)
    ngram = predict_vllm(
        [*LLAMA, "--speculative-config", '{"method": "ngram", "num_speculative_tokens": 3}'],
        gpu="H100",
        fixes=False,
    )
    assert (ngram.weights_gib, ngram.kv_cache_tokens) == (base.weights_gib, base.kv_cache_tokens)


def test_draft_model_adds_its_weights_and_kv() -> None:
    base = predict_vllm(LLAMA, gpu="H100", fixes=False)
    draft = predict_vllm(
        [*LLAMA, "--speculative-config", '{"model": "llama-3.2-1b", "num_speculative_tokens": 4}'],
        gpu="H100",
        fixes=False,
    )
    d = spec_of("llama-3.2-1b")
    r = resolve(d, None, None, None)
    assert (
        _delta_bytes(base.weights_gib, draft.weights_gib) == weight_bytes(d, r.precision, 1).per_gpu
    )
    assert draft.kv_cache_tokens < base.kv_cache_tokens


def test_mtp_layers_of_the_checkpoint_add_weights_and_kv() -> None:
    args = ["deepseek-ai/DeepSeek-V3", "--tensor-parallel-size", "8", "--max-model-len", "8192"]
    base = predict_vllm(args, gpu="H200", fixes=False)
    mtp = predict_vllm(
        [*args, "--speculative-config", '{"method": "mtp", "num_speculative_tokens": 1}'],
        gpu="H200",
        fixes=False,
    )
    spec = spec_of("deepseek-ai/DeepSeek-V3")
    assert spec.mtp_layers == 1  # num_nextn_predict_layers of the published config
    r = resolve(spec, None, None, None)
    want = mtp_memory(spec, r.precision, r.kv_element, 1, 8)
    assert _delta_bytes(base.weights_gib, mtp.weights_gib) == pytest.approx(
        want.weight_bytes, abs=8
    )
    assert mtp.kv_cache_tokens < base.kv_cache_tokens


def test_expert_parallel_places_whole_experts() -> None:
    settings = {"model": "Qwen/Qwen3-30B-A3B", "max_model_len": 8192, "data_parallel_size": 3}
    base = predict_vllm(settings, gpu="H100", fixes=False)
    ep = predict_vllm({**settings, "enable_expert_parallel": True}, gpu="H100", fixes=False)
    spec = spec_of("Qwen/Qwen3-30B-A3B")
    r = resolve(spec, None, None, None)
    split = expert_weight_bytes_per_gpu(spec, r.precision, 1, 3, enable_expert_parallel=False)
    placed = expert_weight_bytes_per_gpu(spec, r.precision, 1, 3, enable_expert_parallel=True)
    assert placed < split  # 43 of 128 experts per GPU
    assert _delta_bytes(base.weights_gib, ep.weights_gib) == placed - split


@pytest.mark.parametrize(
    "config, message",
    [
        ("{not json", "not JSON"),
        ('{"method": "mtp"}', "MTP layers"),
        ('{"method": "draft_model", "model": "/etc/passwd"}', "not in the catalogue"),
        ('{"method": "medusa-ish"}', "not modelled"),
    ],
)
def test_bad_speculative_configs_are_refused_in_one_line(config: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        predict_vllm([*LLAMA, "--speculative-config", config], gpu="H100")


# ----------------------------------------------------------------------------------------- EAGLE heads
#: yuhuili/EAGLE3-LLaMA3.1-Instruct-8B's config.json (one midlayer, draft vocabulary 32,000).
EAGLE3_LLAMA31_8B = {
    "architectures": ["LlamaForCausalLMEagle3"],
    "hidden_act": "silu",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "max_position_embeddings": 2048,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "num_hidden_layers": 1,
    "rms_norm_eps": 1e-05,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "vocab_size": 128256,
    "draft_vocab_size": 32000,
}


def _head_dir(tmp_path: Path, config: dict[str, object]) -> str:
    (tmp_path / "config.json").write_text(json.dumps(config))
    return str(tmp_path)


def test_eagle3_head_from_a_local_config_adds_its_tensors_and_one_kv_layer(tmp_path: Path) -> None:
    head = _head_dir(tmp_path, EAGLE3_LLAMA31_8B)
    base = predict_vllm(LLAMA, gpu="H100", fixes=False)
    eagle = predict_vllm(
        [*LLAMA, "--speculative-config", json.dumps({"method": "eagle3", "model": head})],
        gpu="H100",
        fixes=False,
    )
    # The checkpoint's tensors (llama_eagle3.py:67-345), counted by hand in bf16: midlayer q/k/v read 2h,
    # o, gate/up/down, three norms; fc(3h -> h); final norm; lm_head over the 32,000 draft tokens; d2t int64.
    h, i = 4096, 14336
    params = (4096 + 1024 + 1024) * 2 * h + h * h + 3 * h * i + 3 * h + 3 * h * h + h + 32000 * h
    assert _delta_bytes(base.weights_gib, eagle.weights_gib) == params * 2 + 32000 * 8
    # one more full-attention layer of KV per token (8 KV heads x 128 x K and V x 2 B) in the pool.
    per_token = 33 * 8 * 128 * 2 * 2
    kv_bytes = eagle.extra["kv_cache_bytes"]
    assert abs(eagle.kv_cache_tokens - kv_bytes // per_token) <= 16 * 2  # within a block per group
    assert any("eagle3 head" in a and "32,000 draft tokens" in a for a in eagle.assumptions)


def test_eagle1_head_shares_the_targets_lm_head(tmp_path: Path) -> None:
    config = {k: v for k, v in EAGLE3_LLAMA31_8B.items() if k != "draft_vocab_size"}
    head = _head_dir(tmp_path, {**config, "architectures": ["LlamaForCausalLMEagle"]})
    base = predict_vllm(LLAMA, gpu="H100", fixes=False)
    eagle = predict_vllm(
        [*LLAMA, "--speculative-config", json.dumps({"method": "eagle", "model": head})],
        gpu="H100",
        fixes=False,
    )
    h, i = 4096, 14336
    layer = (4096 + 1024 + 1024) * h + h * h + 3 * h * i + 2 * h
    assert (
        _delta_bytes(base.weights_gib, eagle.weights_gib) == (layer + h * 2 * h) * 2
    )  # + fc(2h -> h)


@pytest.mark.parametrize(
    "model, message",
    [
        ("", "needs the head's config"),
        ("yuhuili/EAGLE3-LLaMA3.1-Instruct-8B", "not in the catalogue"),
    ],
)
def test_unknown_eagle_heads_are_refused(model: str, message: str) -> None:
    config = json.dumps({"method": "eagle3", "model": model})
    with pytest.raises(InputError, match=message):
        predict_vllm([*LLAMA, "--speculative-config", config], gpu="H100")


# ------------------------------------------------------------------------- all-to-all, DP, KV transfer
QWEN_MOE = ["Qwen/Qwen3-30B-A3B", "--max-model-len", "8192", "-dp", "4", "--enable-expert-parallel"]


def test_deepep_high_throughput_buffers_are_non_torch_memory_before_kv() -> None:
    base = predict_vllm(QWEN_MOE, gpu="H100", fixes=False)
    ht = predict_vllm(
        [*QWEN_MOE, "--all2all-backend", "deepep_high_throughput"], gpu="H100", fixes=False
    )
    # all2all.py:262-287: 1024 MiB NVLink buffer (VLLM_DEEPEP_BUFFER_SIZE_MB), no RDMA within a node,
    # + DeepEP's 32 MiB workspace (deep_ep.cpp:58-60).
    assert _delta_bytes(base.non_torch_gib, ht.non_torch_gib) == (1024 + 32) << 20
    assert ht.available_kv_cache_gib < base.available_kv_cache_gib
    assert ht.weights_gib == base.weights_gib


def test_deepep_low_latency_sizes_its_rdma_buffer_for_256_tokens_by_default() -> None:
    base = predict_vllm(QWEN_MOE, gpu="H100", fixes=False)
    ll = predict_vllm(
        [*QWEN_MOE, "--all2all-backend", "deepep_low_latency"], gpu="H100", fixes=False
    )
    # arg_utils.py:3200-3206: batched DP MoE defaults max_num_batched_tokens to 256 (scheduler.py:41).
    assert ll.settings["max_num_batched_tokens"] == 256
    assert ll.settings["max_num_seqs"] == 256  # arg_utils.py:3269-3271: min(default seqs, tokens)
    want = (1024 + 32 << 20) + deepep_low_latency_rdma_bytes(256, 2048, 4, 128)
    assert _delta_bytes(base.non_torch_gib, ll.non_torch_gib) == want
    set_tokens = predict_vllm(
        [*QWEN_MOE, "--all2all-backend", "deepep_low_latency", "--max-num-batched-tokens", "512"],
        gpu="H100",
        fixes=False,
    )
    assert _delta_bytes(base.non_torch_gib, set_tokens.non_torch_gib) == (
        1056 << 20
    ) + deepep_low_latency_rdma_bytes(512, 2048, 4, 128)


def test_before_0_25_low_latency_buffers_use_the_moe_dp_chunk() -> None:
    # 0.11.0: FusedMoEConfig.max_num_tokens = VLLM_MOE_DP_CHUNK_SIZE (256) whatever the batch size, and the
    # batch default is not changed; pplx still exists there and is refused as not modelled.
    args = [*QWEN_MOE, "--max-num-batched-tokens", "4096"]
    base = predict_vllm(args, gpu="H100", engine_version="0.11.0", fixes=False)
    ll = predict_vllm(
        [*args, "--all2all-backend", "deepep_low_latency"],
        gpu="H100",
        engine_version="0.11.0",
        fixes=False,
    )
    assert _delta_bytes(base.non_torch_gib, ll.non_torch_gib) == (
        1056 << 20
    ) + deepep_low_latency_rdma_bytes(256, 2048, 4, 128)
    with pytest.raises(InputError, match="pplx"):
        predict_vllm([*args, "--all2all-backend", "pplx"], gpu="H100", engine_version="0.11.0")


def test_removed_and_default_backends_hold_no_buffer() -> None:
    base = predict_vllm(QWEN_MOE, gpu="H100", fixes=False)
    for backend in ("naive", "pplx", "allgather_reducescatter"):
        p = predict_vllm([*QWEN_MOE, "--all2all-backend", backend], gpu="H100", fixes=False)
        assert (p.non_torch_gib, p.kv_cache_tokens) == (base.non_torch_gib, base.kv_cache_tokens)


def test_data_parallel_ranks_each_hold_the_dense_model_and_their_own_pool() -> None:
    # Each DP rank is its own engine core (v1/engine/core.py DPEngineCoreProc): per-GPU figures of a dense
    # model do not depend on the DP size; without EP every MoE rank keeps every expert (TP-split).
    one = predict_vllm(LLAMA, gpu="H100", fixes=False)
    four = predict_vllm([*LLAMA, "-dp", "4"], gpu="H100", fixes=False)
    assert (four.weights_gib, four.kv_cache_tokens) == (one.weights_gib, one.kv_cache_tokens)
    assert any("data parallel 4" in a for a in four.assumptions)
    moe = predict_vllm(QWEN_MOE[:5], gpu="H100", fixes=False)
    moe_one = predict_vllm(QWEN_MOE[:3], gpu="H100", fixes=False)
    assert moe.weights_gib == moe_one.weights_gib


def test_native_kv_offloading_is_host_memory_only() -> None:
    args = [*LLAMA, "-tp", "2"]
    base = predict_vllm(args, gpu="H100", fixes=False)
    off = predict_vllm([*args, "--kv-offloading-size", "64"], gpu="H100", fixes=False)
    # config/vllm.py:1088-1096: cpu_bytes_to_use = 64 * 2**30, the total over TP ranks (config/cache.py:407).
    assert off.extra["host_bytes"] == {"kv_offload": 32 << 30}
    assert (off.weights_gib, off.non_torch_gib, off.kv_cache_tokens) == (
        base.weights_gib,
        base.non_torch_gib,
        base.kv_cache_tokens,
    )


def test_lmcache_connector_host_tier_and_gpu_staging() -> None:
    base = predict_vllm(LLAMA, gpu="H100", fixes=False)
    cfg = {"kv_connector": "LMCacheConnectorV1", "kv_role": "kv_both"}
    lm = predict_vllm([*LLAMA, "--kv-transfer-config", json.dumps(cfg)], gpu="H100", fixes=False)
    assert lm.extra["host_bytes"] == {"lmcache_local_cpu": 5 << 30}  # LMCache's default 5.0 GB
    # 256-token staging buffer [2, 32 layers, 256, 8 x 128] bf16 on the GPU, before KV sizing.
    assert _delta_bytes(base.non_torch_gib, lm.non_torch_gib) == 2 * 32 * 256 * 1024 * 2
    sized: dict[str, object] = dict(cfg)
    sized["kv_connector_extra_config"] = {
        "lmcache.max_local_cpu_size": 20,
        "lmcache.enable_pd": True,
    }
    lm20 = predict_vllm(
        [*LLAMA, "--kv-transfer-config", json.dumps(sized)], gpu="H100", fixes=False
    )
    assert lm20.extra["host_bytes"] == {"lmcache_local_cpu": 20 << 30}
    assert lm20.non_torch_gib == base.non_torch_gib  # PD mode: no staging buffer
    env = {**sized, "kv_connector_extra_config": {"LMCACHE_MAX_LOCAL_CPU_SIZE": "2.5"}}
    lm_env = predict_vllm(
        [*LLAMA, "--kv-transfer-config", json.dumps(env)], gpu="H100", fixes=False
    )
    assert lm_env.extra["host_bytes"] == {"lmcache_local_cpu": 5 << 29}


@pytest.mark.parametrize("role", ["kv_producer", "kv_consumer"])
def test_nixl_disaggregated_roles(role: str) -> None:
    base = predict_vllm(LLAMA, gpu="H100", fixes=False)
    cfg = {"kv_connector": "NixlConnector", "kv_role": role}
    on_gpu = predict_vllm(
        [*LLAMA, "--kv-transfer-config", json.dumps(cfg)], gpu="H100", fixes=False
    )
    assert on_gpu.kv_cache_tokens == base.kv_cache_tokens
    assert "host_bytes" not in on_gpu.extra
    cpu = {**cfg, "kv_buffer_device": "cpu"}
    staged = predict_vllm(
        [*LLAMA, "--kv-transfer-config", json.dumps(cpu)], gpu="H100", fixes=False
    )
    # nixl/base_worker.py:1357-1399: one host tensor per layer, shaped like that layer's KV cache.
    assert staged.extra["host_bytes"] == {"nixl_host_buffer": staged.extra["kv_cache_bytes"]}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--kv-transfer-config", "{oops"], "not JSON"),
        (["--kv-transfer-config", '{"kv_connector": "P2pNcclConnector"}'], "0.10-0.24 only"),
        (["--kv-transfer-config", '{"kv_connector": "Mystery"}'], "not modelled"),
        (["--kv-transfer-config", '{"kv_connector": "NixlConnector", "kv_role": "x"}'], "kv_role"),
        (["--kv-offloading-size", "8", "--kv-offloading-backend", "disk"], "native or lmcache"),
        (["--kv-offloading-size", "-1"], ">= 0 GiB"),
        (["--kv-offloading-size", "nan"], "finite"),
        (
            [
                "--kv-transfer-config",
                '{"kv_connector": "LMCacheConnectorV1", '
                '"kv_connector_extra_config": {"lmcache.max_local_cpu_size": "inf"}}',
            ],
            "finite",
        ),
        (
            [
                "--kv-transfer-config",
                '{"kv_connector": "OffloadingConnector", '
                '"kv_connector_extra_config": {"cpu_bytes_to_use": "lots"}}',
            ],
            "number of bytes",
        ),
    ],
)
def test_bad_kv_transfer_settings_are_refused_in_one_line(args: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        predict_vllm([*LLAMA, *args], gpu="H100")


def test_p2p_nccl_pool_is_pinned_host_memory_in_each_role() -> None:
    args, old = LLAMA, "0.11.0"
    base = predict_vllm(args, gpu="H100", engine_version=old, fixes=False)
    for role in ("kv_producer", "kv_consumer"):
        cfg = {"kv_connector": "P2pNcclConnector", "kv_role": role}
        p = predict_vllm(
            [*args, "--kv-transfer-config", json.dumps(cfg)],
            gpu="H100",
            engine_version=old,
            fixes=False,
        )
        # p2p_nccl_engine.py:27,120-124 (0.11.0): 32 GB pinned pool, already a power of two.
        assert p.extra["host_bytes"] == {"p2p_nccl_pool": 32 << 30}
        assert p.kv_cache_tokens == base.kv_cache_tokens  # kv_buffer_size is not reserved before KV
    cfg = {
        "kv_connector": "P2pNcclConnector",
        "kv_role": "kv_consumer",
        "kv_connector_extra_config": {"mem_pool_size_gb": 20},
    }
    p = predict_vllm(
        [*args, "--kv-transfer-config", json.dumps(cfg)],
        gpu="H100",
        engine_version=old,
        fixes=False,
    )
    assert p.extra["host_bytes"] == {"p2p_nccl_pool": 32 << 30}  # 20 GiB rounds up to 2**35
