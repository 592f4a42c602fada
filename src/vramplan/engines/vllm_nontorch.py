"""vLLM memory outside PyTorch's allocator that the startup profile charges at TP > 1 (0.19+).

vLLM charges "non-torch" memory as the growth of (device used - torch reserved) from the worker's init
snapshot to the end of the profile run (``memory_profiling``: ``non_torch_increase`` from
``before_create``, vllm/utils/mem_utils.py:264-268 of 0.19.0; 0.22.0 :266-268; 0.26.0 :304-306). The
snapshot is taken *after* the distributed init (v1/worker/gpu_worker.py:263 then :282 in 0.19.0; :280
then :299 in 0.22.0; :369 then :388 in 0.26.0), so what ``CudaCommunicator.__init__`` allocates there is
never charged: the custom all-reduce IPC buffers (custom_all_reduce.py:176-189, 2 x 8 MiB + metadata),
the torch symmetric-memory buffer (symm_mem.py:91), the PyNccl communicator. ``--disable-custom-all-reduce``
therefore does not move the figure.

What is charged at TP > 1 and sized by the source is the FlashInfer all-reduce + RMSNorm fusion
workspace: ``AllReduceFusionPass`` builds it while the model is compiled (inside the profile) with
``cudaMalloc`` (flashinfer 0.6.6 comm/cuda_ipc.py:204), and only where ``enable_allreduce_rms_fusion``
holds: TP > 1, CUDA, compute capability 9.0 or 10.x (config/vllm.py:116-135 of 0.19.0, which also wants
PP = DP = 1; 0.22.0 :123-143 and 0.34.0 :208-231 drop that), optimization level O2 (the default), not
``enforce_eager`` (compilation mode NONE, 0.19.0 config/vllm.py:847-853). RTX 30/40/50, L40S, A100 and
GB10 never build it.

The rest of the TP > 1 figure (the NCCL communicator torch creates lazily on the TP device group at the
first ``torch.distributed`` collective in the profile, e.g. the logits gather,
base_device_communicator.py:275 with ``init_process_group`` given no ``device_id``,
parallel_state.py:1422; NCCL's lazily connected channels and NVLS) is NCCL's, not sized in vLLM's
source: it stays as calibrated on H100 and is an upper bound on PCIe cards (fewer channels, no NVLS).
"""

from __future__ import annotations

from vramplan.units import MiB

#: ``FI_ALLREDUCE_FUSION_MAX_SIZE_MB`` (compilation/passes/fusion/allreduce_rms_fusion.py:104-127 of
#: 0.34.0; 0.19.0 :54-70 has the same 90/100 rows, 103 with 2 MiB at TP 8, no 107): largest all-reduce
#: input (MiB) the fusion takes, by compute capability x 10 and TP size. No entry: no workspace. The
#: TP 16 rows (multi-node, FlashInfer's "mnnvl" backend, another workspace) are left out: not sized here.
FI_FUSION_MAX_SIZE_MIB: dict[int, dict[int, float]] = {
    90: {2: 64, 4: 2, 8: 0.5},
    100: {2: 64, 4: 32, 8: 1},
    103: {2: 64, 4: 64, 8: 4},
    107: {2: 64, 4: 64, 8: 2},
}

#: flashinfer comm/trtllm_ar.py (0.6.6): ``BarrierFlagCount`` (:503), ``MAX_COMM_SIZE`` (:505) and the
#: 2 MiB alignment of each of the three IPC buffers (:598).
FI_BARRIER_FLAGS = 256
FI_MAX_COMM_BYTES = 2147483647 & ~((1 << 21) - 1)
FI_ALIGN_BYTES = 1 << 21

#: Compute capability (x 10) of the GPUs the 0.19+ TP > 1 non-torch figure was calibrated on (H100).
CALIBRATION_CC = 90


def _round_up(n: int, to: int) -> int:
    return -(-n // to) * to


def fi_fusion_max_tokens(
    cc10: int, tp: int, hidden: int, dtype_bytes: int, batched_tokens: int
) -> int:
    """``AllReduceFusionPass.max_token_num``: max_size // (hidden x dtype bytes), at most the batched tokens.

    (allreduce_rms_fusion.py:759-764 of 0.19.0, :1023-1028 of 0.34.0); 0 when the table has no entry.
    """
    max_mib = FI_FUSION_MAX_SIZE_MIB.get(cc10, {}).get(tp)
    if max_mib is None:
        return 0
    return min(int(max_mib * MiB) // (hidden * dtype_bytes), batched_tokens)


def fi_fusion_workspace_bytes(
    cc10: int, tp: int, hidden: int, dtype_bytes: int, batched_tokens: int
) -> int:
    """Device bytes of the trtllm fusion workspace on one rank (0 where the fusion has no entry).

    ``trtllm_create_ipc_workspace_for_all_reduce_fusion`` (flashinfer 0.6.6 trtllm_ar.py:574-598): a
    buffer of tp x T x hidden x 2, the barrier flags tp x 256 x 4 and 3 lamport buffers of
    tp x T x hidden x (2, or 4 for fp32 models), each rounded up to 2 MiB. E.g. Qwen2.5-7B at TP 2 on
    H100 (T = 8192, hidden 3584, as logged): 112 + 2 + 336 MiB = 450 MiB.
    """
    tokens = fi_fusion_max_tokens(cc10, tp, hidden, dtype_bytes, batched_tokens)
    if tokens <= 0:
        return 0
    buffer = tp * tokens * hidden * 2
    flags = tp * FI_BARRIER_FLAGS * 4
    lamport = min(tp * tokens * hidden * (4 if dtype_bytes == 4 else 2), FI_MAX_COMM_BYTES) * 3
    return sum(_round_up(size, FI_ALIGN_BYTES) for size in (buffer, flags, lamport))


def fi_fusion_enabled(
    cc: float | None,
    tp: int,
    pp: int,
    dp: int,
    eager: bool,
    needs_single_pp_dp: bool,
) -> bool:
    """``enable_allreduce_rms_fusion`` (0.19.0 config/vllm.py:116-135) with compilation on (not eager)."""
    if cc is None or tp <= 1 or eager:
        return False
    if needs_single_pp_dp and (pp > 1 or dp > 1):
        return False
    return cc == 9.0 or 10.0 <= cc < 11.0


def fi_workspace_swap_bytes(
    cc: float | None,
    vendor: str | None,
    tp: int,
    pp: int,
    dp: int,
    eager: bool,
    needs_single_pp_dp: bool,
    hidden: int,
    dtype_bytes: int,
    batched_tokens: int,
) -> int:
    """What this GPU's FlashInfer workspace differs by from the one the H100 calibration carried.

    The calibrated TP > 1 figure (flat ~2.1 GiB over the 0.19 H100 TP 2/4 logs) holds the workspace the
    cc 9.0 table gives the deployment; this returns (workspace built here) - (that one): minus the whole
    reference off Hopper and datacenter Blackwell, the cc 10.x table's difference there, 0 on H100.
    Non-NVIDIA or unknown GPUs: 0 (not sized).
    """
    if vendor not in (None, "nvidia") or cc is None:
        return 0
    reference = fi_fusion_workspace_bytes(CALIBRATION_CC, tp, hidden, dtype_bytes, batched_tokens)
    actual = 0
    if fi_fusion_enabled(cc, tp, pp, dp, eager, needs_single_pp_dp):
        actual = fi_fusion_workspace_bytes(round(cc * 10), tp, hidden, dtype_bytes, batched_tokens)
    return actual - reference
