"""The adapter turns vramplan's estimate into the simulator's KV pool; checked against the paper's setup."""

from __future__ import annotations

import pytest

from vramplan.errors import DoesNotFitError, InputError
from vramplan.simulate import HardwareSpec, opt13b_a100_40gb
from vramplan.simulate.adapter import hardware_from_estimate, kv_budget

GiB = 2**30
PAPER_KV_BYTES = 12 * GiB  # PagedAttention Table 1: OPT-13B on A100-40GB, 12 GB KV, 15.7K slots
KV_PER_TOKEN = 2 * 40 * 5120 * 2  # K and V x 40 layers x hidden 5120 x fp16 = 800 KiB


def test_opt13b_a100_capacity_arithmetic_and_paper_gap() -> None:
    """Our pool is smaller than the paper's 12 GiB, and the test pins why.

    0.9 x 39.39 GiB (CUDA-visible A100-40GB) = 35.45 GiB usable; minus fp16 weights 23.94 GiB,
    activations 0.21 GiB (sampler logits of 256 seqs) and overheads 1.64 GiB (CUDA context 0.51 measured on an H100,
    framework 0.25, CUDA graphs 0.88) leaves 9.66 GiB = 12,649 slots of 800 KiB: 80.5 % of the paper's
    15.7K. The paper's vLLM reserved neither the 10 % utilization margin nor a CUDA-graph pool
    (40 GB - 26 GB weights - ~2 GB activations); with --enforce-eager we get 10.54 GiB (88 %), with
    utilization 1.0 and eager 14.5 GiB. For an exact replay use kv_memory="12GiB".
    """
    b = kv_budget("opt-13b", "A100-40GB")
    assert b.kv_bytes_per_token == KV_PER_TOKEN
    assert (
        b.kv_capacity_bytes
        == b.usable_bytes - b.weights_bytes - b.activation_bytes - b.overhead_bytes
    )
    assert b.usable_bytes == int(0.9 * b.gpu_memory_bytes)
    assert b.kv_capacity_bytes / GiB == pytest.approx(9.67, abs=0.02)
    assert b.kv_slots == pytest.approx(12_668, abs=30)
    assert 0.78 <= b.kv_capacity_bytes / PAPER_KV_BYTES <= 0.85
    eager = kv_budget("opt-13b", "A100-40GB", enforce_eager=True)
    assert eager.kv_capacity_bytes / PAPER_KV_BYTES == pytest.approx(0.88, abs=0.02)
    assert eager.kv_capacity_bytes - b.kv_capacity_bytes == 900 * 2**20  # the CUDA-graph pool


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
