"""Roofline time of one engine iteration, from plain numbers (no dependency on the rest of vramplan).

One iteration reads every weight once and the KV cache of every scheduled token's context, and does
2 x active-params FLOPs per processed token; it takes the slower of the two, plus a fixed overhead.
Attention FLOPs are left out: at the lengths simulated (<= a few thousand tokens) they are a few percent
of the matmul FLOPs and decode steps are memory-bound anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

from vramplan.errors import InputError


@dataclass(frozen=True)
class HardwareSpec:
    """What the simulator needs to know about the model on its GPU(s); all plain numbers.

    ``kv_capacity_bytes`` is the KV pool; ``kv_bytes_per_token`` the KV of one token over all layers.
    """

    weights_bytes: float
    active_params: float
    kv_bytes_per_token: float
    kv_capacity_bytes: float
    peak_flops: float
    bandwidth_bytes_per_s: float

    def validate(self) -> None:
        for name in ("weights_bytes", "active_params", "kv_bytes_per_token", "kv_capacity_bytes",
                     "peak_flops", "bandwidth_bytes_per_s"):
            if not getattr(self, name) > 0:
                raise InputError(f"hardware {name} must be > 0, got {getattr(self, name)}.")

    @property
    def kv_slots(self) -> int:
        """Token slots in the KV pool."""
        return int(self.kv_capacity_bytes // self.kv_bytes_per_token)


@dataclass(frozen=True)
class StepTimeModel:
    """Efficiencies and overheads of the roofline; each default states its assumption.

    compute_efficiency: 0.5 -- dense fp16 GEMMs of prefill reach about half of tensor-core peak in
        2023-era serving stacks (no FlashAttention-2/CUDA graphs).
    bandwidth_efficiency: 0.7 -- decode GEMVs reach ~80 % of HBM peak but paged attention kernels
        less (the paper's Fig. 18a: its kernel is 20-26 % slower than FasterTransformer's); 0.7 blends.
    step_overhead_s: 0.010 -- Python scheduling, sampling and tensor preparation per iteration in the
        vLLM of the paper (no CUDA graphs); modern engines are closer to 1-3 ms.
    pcie_bytes_per_s: 25e9 -- achievable PCIe 4.0 x16 host<->device copy rate for swap.
    """

    compute_efficiency: float = 0.5
    bandwidth_efficiency: float = 0.7
    step_overhead_s: float = 0.010
    pcie_bytes_per_s: float = 25e9

    def validate(self) -> None:
        for name in ("compute_efficiency", "bandwidth_efficiency"):
            v = getattr(self, name)
            if not 0 < v <= 1:
                raise InputError(f"{name} must be in (0, 1], got {v}.")
        if self.step_overhead_s < 0:
            raise InputError(f"step_overhead_s must be >= 0, got {self.step_overhead_s}.")
        if not self.pcie_bytes_per_s > 0:
            raise InputError(f"pcie_bytes_per_s must be > 0, got {self.pcie_bytes_per_s}.")


class StepTimer:
    """Pre-multiplied constants so the per-iteration call is a few float operations."""

    def __init__(self, hw: HardwareSpec, model: StepTimeModel) -> None:
        self.sec_per_token = 2.0 * hw.active_params / (hw.peak_flops * model.compute_efficiency)
        bw = hw.bandwidth_bytes_per_s * model.bandwidth_efficiency
        self.weights_s = hw.weights_bytes / bw
        self.sec_per_kv_token = hw.kv_bytes_per_token / bw
        self.overhead = model.step_overhead_s
        self.sec_per_swap_byte = 1.0 / model.pcie_bytes_per_s

    def step(self, tokens: int, kv_tokens_read: int) -> float:
        """Seconds for an iteration processing ``tokens`` tokens over ``kv_tokens_read`` cached ones."""
        compute = tokens * self.sec_per_token
        memory = self.weights_s + (kv_tokens_read + tokens) * self.sec_per_kv_token
        return (max(memory, compute)) + self.overhead

    def swap(self, nbytes: float) -> float:
        return nbytes * self.sec_per_swap_byte


def opt13b_a100_40gb() -> HardwareSpec:
    """The paper's setup: OPT-13B fp16 on one A100-40GB with a 12 GiB KV pool (800 KiB per token)."""
    return HardwareSpec(
        weights_bytes=25.7e9,
        active_params=12.85e9,
        kv_bytes_per_token=2 * 5120 * 40 * 2,
        kv_capacity_bytes=12 * 2**30,
        peak_flops=312e12,
        bandwidth_bytes_per_s=1555e9,
    )
