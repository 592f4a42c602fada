"""The adapter turns vramplan's estimate into the simulator's KV pool; checked against the paper's setup."""

from __future__ import annotations

import pytest

from vramplan.errors import DoesNotFitError, InputError
from vramplan.simulate import HardwareSpec, opt13b_a100_40gb
from vramplan.simulate.adapter import hardware_from_estimate, kv_budget

GiB = 2**30
PAPER_KV_BYTES = 12 * GiB  # PagedAttention Table 1: OPT-13B on A100-40GB, 12 GB KV, 15.7K slots
KV_PER_TOKEN = 2 * 40 * 5120 * 2  # K and V x 40 layers x hidden 5120 x fp16 = 800 KiB


def test_opt13b_a100_pool_is_vllms_own_and_paper_gap() -> None:
    """The replay's pool is the one `vramplan vllm` predicts for the same settings; the paper gap pinned.

    The paper's vLLM (0.1/0.2, V0): utilization 0.9 of 39.39 GiB (CUDA-visible A100-40GB), fp16 weights
    23.94 GiB, the profile run's activations, ~1 GiB non-torch memory, no CUDA graphs: 13,136 slots of
    800 KiB = 10.0 GiB, 84 % of the paper's 12 GiB (its vLLM kept no 10 % margin). Current vLLM (0.25:
    utilization 0.92, CUDA graphs inside the budget; 0.34: extensible KV cache at 1.0) leaves more; --enforce-eager more again. For an
    exact replay use kv_memory="12GiB".
    """
    from vramplan.engines.vllm import predict_vllm

    b = kv_budget("opt-13b", "A100-40GB", engine_version="0.2")
    pred = predict_vllm(
        ["facebook/opt-13b", "--max-model-len", "2048"], gpu="A100-40GB", engine_version="0.2"
    )
    assert b.kv_cache_tokens == b.kv_slots == pred.kv_cache_tokens == 13_136
    assert b.kv_bytes_per_token == KV_PER_TOKEN
    assert b.kv_capacity_bytes == b.kv_slots * KV_PER_TOKEN
    assert (
        b.usable_bytes
        == b.weights_bytes + b.activation_bytes + b.overhead_bytes + b.kv_capacity_bytes
    )
    assert b.usable_bytes == int(0.9 * b.gpu_memory_bytes)
    assert b.weights_bytes / GiB == pytest.approx(23.94, abs=0.01)
    assert 0.80 <= b.kv_capacity_bytes / PAPER_KV_BYTES <= 0.87
    latest = kv_budget("opt-13b", "A100-40GB")
    eager = kv_budget("opt-13b", "A100-40GB", enforce_eager=True)
    # vLLM 0.34 sizes an extensible KV cache from the memory free after graph capture (utilization 1.0)
    assert latest.gpu_memory_utilization == 1.0 and latest.engine_version == "0.34"
    graphs = predict_vllm(["facebook/opt-13b", "--max-model-len", "2048"], gpu="A100-40GB")
    assert latest.kv_cache_tokens == graphs.kv_cache_tokens
    assert eager.kv_slots > latest.kv_slots > b.kv_slots  # graphs in the budget since 0.21


def test_kv_memory_override_reproduces_paper_pool() -> None:
    hw = hardware_from_estimate("opt-13b", "A100-40GB", kv_memory="12GiB")
    ref = opt13b_a100_40gb()
    assert hw.kv_slots == ref.kv_slots == 15_728
    assert hw.kv_bytes_per_token == ref.kv_bytes_per_token
    assert hw.weights_bytes == pytest.approx(ref.weights_bytes, rel=0.01)
    assert hw.active_params == pytest.approx(ref.active_params, rel=0.01)
    assert hw.peak_flops == ref.peak_flops and hw.bandwidth_bytes_per_s == ref.bandwidth_bytes_per_s


def test_tensor_parallel_splits_per_gpu_and_scales_flops() -> None:
    one = kv_budget("opt-13b", "A100-40GB")
    two = kv_budget("opt-13b", "A100-40GB", tensor_parallel_size=2)
    assert isinstance(two.hardware, HardwareSpec)
    assert two.kv_bytes_per_token * 2 == one.kv_bytes_per_token
    assert two.weights_bytes < one.weights_bytes * 0.55
    assert two.hardware.peak_flops == 2 * one.hardware.peak_flops
    assert (
        two.hardware.bandwidth_bytes_per_s == one.hardware.bandwidth_bytes_per_s
    )  # per-rank bytes
    assert two.kv_slots > 2 * one.kv_slots  # more room per GPU and half the bytes per token


def test_model_that_does_not_fit_says_how_to_fix() -> None:
    with pytest.raises(DoesNotFitError, match="tensor-parallel-size"):
        kv_budget("opt-13b", "RTX-4090")


@pytest.mark.parametrize(
    "kw",
    [
        {"gpu_memory_utilization": 0.0},
        {"gpu_memory_utilization": 1.5},
        {"tensor_parallel_size": 0},
        {"kv_memory": "lots"},
    ],
)
def test_bad_inputs(kw: dict) -> None:
    with pytest.raises(InputError):
        kv_budget("opt-13b", "A100-40GB", **kw)
