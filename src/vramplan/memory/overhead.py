"""Memory outside weights, KV and activations: CUDA context, framework, NCCL, CUDA graphs, fragmentation.

These cannot be derived from the model; they are measured properties of a driver, library and GPU.
Each is a named field with the measurement behind it, and every figure can be overridden.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vramplan.units import GiB, MiB

#: CUDA context (plus what each runtime holds before it measures free memory), bytes per GPU, by runtime.
#: One table; each engine model keeps its own calibrated value because the runtimes differ by design
#: (torch-only process vs NCCL-initialised servers, llama.cpp's cuBLAS handles without torch).
CUDA_CONTEXT_BYTES: Mapping[str, int] = {
    # torch 2.11 / CUDA 13.0 / driver 580.159 on an H100, measured (benchmarks/gpu/
    # measurements_context_h100.json); vLLM 0.19 logs agree (78.68 of 79.19 GiB free when idle).
    "torch": 552_402_944,
    # SGLang docs notebook: 80 GB GPUs log 78.81 GiB free of 79.15-79.18 GiB total -> 0.35 GiB.
    "sglang": round(0.35 * GiB),
    # TGI: context + torch/NCCL state per shard before the warm-up; vLLM-like value (calibrate per device).
    "tgi": GiB // 2,
    # transformers generate(): context + allocator state per process, typical 0.3-0.5 GiB.
    "hf": round(0.4 * GiB),
    # llama.cpp: context + cuBLAS handles per device, not logged; typical 300-500 MiB.
    "llamacpp": 400 * MiB,
}


@dataclass(frozen=True)
class OverheadAssumptions:
    """Overheads per GPU, with their sources."""

    #: CUDA context + kernel images loaded by PyTorch: 552,402,944 B measured on an H100 (driver 580.159,
    #: torch 2.11, CUDA 13.0; benchmarks/gpu/measurements_context_h100.json). vLLM 0.19 logs agree:
    #: 78.68 GiB free of 79.19 GiB on an idle H100 after the context exists.
    cuda_context_bytes: int = CUDA_CONTEXT_BYTES["torch"]
    #: Non-torch memory growth during the first forward at TP=1 (cuBLAS/attention workspaces): 0.24-0.26
    #: GiB in vLLM 0.19 profiling logs (dev set); plain PyTorch's first bf16 matmul + SDPA call adds
    #: 174 MB on an H100 (measurements_context_h100.json), vLLM's custom ops the rest.
    framework_bytes: int = 256 * MiB
    #: Extra non-torch memory with TP>1 (NCCL + custom all-reduce buffers): vLLM 0.19 logs 2.06-2.21 GiB
    #: non-torch at TP 2-4 vs 0.25 at TP 1.
    nccl_bytes: int = 1856 * MiB
    #: CUDA graph pool for decode batch sizes; vLLM 0.19 logs 0.64-1.84 GiB (median ~0.9 GiB).
    cuda_graph_bytes: int = 900 * MiB
    #: Allocator fragmentation as a share of the dynamic (KV + activation) memory when no paging is used.
    fragmentation_fraction: float = 0.0


@dataclass(frozen=True)
class OverheadBytes:
    cuda_context: int
    framework: int
    nccl: int
    cuda_graphs: int
    fragmentation: int

    @property
    def total(self) -> int:
        return (
            self.cuda_context + self.framework + self.nccl + self.cuda_graphs + self.fragmentation
        )


def overhead_bytes(
    tp: int,
    pp: int,
    dynamic_bytes: int,
    enforce_eager: bool = False,
    a: OverheadAssumptions = OverheadAssumptions(),
    nccl_adjust_bytes: int = 0,
) -> OverheadBytes:
    """Overheads on one GPU of a TP x PP group; ``nccl_adjust_bytes`` corrects the H100-measured NCCL
    figure for the GPU (engines/vllm_nontorch.py: the FlashInfer all-reduce workspace it holds)."""
    return OverheadBytes(
        cuda_context=a.cuda_context_bytes,
        framework=a.framework_bytes,
        nccl=max(0, a.nccl_bytes + nccl_adjust_bytes) if tp * pp > 1 else 0,
        cuda_graphs=0 if enforce_eager else a.cuda_graph_bytes,
        fragmentation=int(dynamic_bytes * a.fragmentation_fraction),
    )
