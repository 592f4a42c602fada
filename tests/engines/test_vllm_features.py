"""`vramplan vllm` with LoRA, speculative decoding and expert parallelism: each flag changes the per-GPU
figures by what ``memory/serving_features.py`` (vLLM 0.34's allocation code) says, and nothing else."""

from __future__ import annotations

import pytest

from vramplan.engines.vllm import predict_vllm
from vramplan.errors import InputError
from vramplan.estimator import resolve
from vramplan.memory.serving_features import (
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
