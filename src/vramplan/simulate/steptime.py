"""Time of one engine iteration: the planner's performance model, or a plain roofline.

``PerfStepTimer`` (used whenever the replay is built for a real model and GPU: the adapter, the CLI,
the paper replay) takes each iteration's duration from ``vramplan.perf.step_time`` -- the calibrated
model behind ``vramplan perf`` -- so simulated TTFT/TPOT/throughput agree with it. ``step_time`` costs
~90 us a call, too much for ~10^5 iterations, so the timer uses its structure: for fixed prefill tokens,
decode sequences and prompt lengths, compute and memory time are each affine in the attended context
(attention FLOPs and KV bytes grow linearly with it) and communication/overhead do not depend on it.
Two ``step_time`` evaluations per (prefill, decode, prompt-length) key give the exact line; a test
checks the timer against ``step_time`` on random steps.

``StepTimer`` is the simulator's own roofline (no dependency on the rest of vramplan), kept for
hand-built ``HardwareSpec`` runs without a model: one iteration reads every weight once and the KV
cache of its context, does 2 x active-params FLOPs per processed token, takes the slower of the two,
plus a fixed overhead; attention FLOPs are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from vramplan.errors import InputError

if TYPE_CHECKING:
    from vramplan.perf import PerfSetup


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
        for name in (
            "weights_bytes",
            "active_params",
            "kv_bytes_per_token",
            "kv_capacity_bytes",
            "peak_flops",
            "bandwidth_bytes_per_s",
        ):
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

    name = "roofline"

    def step(
        self, prefill_tokens: int, decode_seqs: int, context_tokens: int, prefill_sq: float = 0.0
    ) -> float:
        """Seconds for an iteration: ``prefill_tokens`` prompt tokens, one token for each of ``decode_seqs``
        sequences attending ``context_tokens`` cached tokens in all (``prefill_sq``: see PerfStepTimer)."""
        tokens = prefill_tokens + decode_seqs
        compute = tokens * self.sec_per_token
        memory = self.weights_s + (context_tokens + 2 * tokens) * self.sec_per_kv_token
        return (max(memory, compute)) + self.overhead

    def swap(self, nbytes: float) -> float:
        return nbytes * self.sec_per_swap_byte


class PerfStepTimer:
    """Iteration time from ``vramplan.perf.step_time`` (see the module note), cached per step shape."""

    _PROBE = 1e6  # context tokens of the second evaluation (slope = difference / probe)

    def __init__(self, setup: PerfSetup, model: StepTimeModel | None = None) -> None:
        self.setup = setup
        self.name = f"perf ({setup.engine.name})"
        self.sec_per_swap_byte = 1.0 / (model or StepTimeModel()).pcie_bytes_per_s
        self.cache: dict[tuple[int, int, float], tuple[float, float, float, float, float]] = {}

    def _line(
        self, prefill: int, decode: int, seq_len: float
    ) -> tuple[float, float, float, float, float]:
        from vramplan.perf import step_time

        st = step_time(
            self.setup, prefill, decode, np.array([0.0, self._PROBE]), seq_len if prefill else None
        )
        c0, c1 = (float(x) for x in np.broadcast_to(st.compute, (2,)))
        m0, m1 = (float(x) for x in np.broadcast_to(st.memory, (2,)))
        rest = float(np.broadcast_to(st.total, (2,))[0]) - max(c0, m0)
        if len(self.cache) > 200_000:
            self.cache.clear()
        line = (c0, (c1 - c0) / self._PROBE, m0, (m1 - m0) / self._PROBE, rest)
        self.cache[(prefill, decode, seq_len)] = line
        return line

    def step(
        self, prefill_tokens: int, decode_seqs: int, context_tokens: int, prefill_sq: float = 0.0
    ) -> float:
        """Seconds of ``step_time(setup, prefill_tokens, decode_seqs, context_tokens, L)``.

        ``prefill_sq`` = sum over prompt pieces of c x (2 x o + c) for c tokens computed after o cached
        ones, so that ``prefill_tokens x L / 2`` (step_time's causal attention pairs) is exact with
        ``L = prefill_sq / prefill_tokens``; one whole prompt gives L = its length.
        """
        seq_len = prefill_sq / prefill_tokens if prefill_tokens else 0.0
        line = self.cache.get((prefill_tokens, decode_seqs, seq_len))
        if line is None:
            line = self._line(prefill_tokens, decode_seqs, seq_len)
        c0, cs, m0, ms, rest = line
        return max(c0 + cs * context_tokens, m0 + ms * context_tokens) + rest

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


def opt13b_a100_40gb_perf() -> PerfSetup:
    """``vramplan.perf``'s setup for the paper replay: OPT-13B fp16 on one A100-40GB, engine ``vllm-0.5``
    (the pre-0.6 vLLM profile: synchronous Python scheduler, no CUDA-graph-era overheads hidden), and the
    paper's 15,728-slot pool."""
    from vramplan.perf import build_setup

    hw = opt13b_a100_40gb()
    return build_setup(
        "opt-13b",
        "A100-40GB",
        engine="vllm-0.5",
        max_model_len=2048,
        kv_capacity_tokens=float(hw.kv_slots),
    )
