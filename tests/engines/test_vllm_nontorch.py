"""Non-torch memory at TP > 1 in vLLM 0.19+ (engines/vllm_nontorch.py), one test per mechanism.

Truths: the FlashInfer workspace lines of the H100 dev logs (tests/data/logs/llmdplanner-*, vLLM 0.19.0 at
DEBUG), flashinfer 0.6.6's ``trtllm_create_ipc_workspace_for_all_reduce_fusion`` (comm/trtllm_ar.py:574-598),
vLLM's ``enable_allreduce_rms_fusion`` (config/vllm.py:116-135 of 0.19.0, :123-143 of 0.22.0) and the 2026
PCIe logs (club-3090 #594, #294/#295, mitchross #1995: 2x RTX 3090).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vramplan.engines.vllm import predict_vllm
from vramplan.engines.vllm_args import parse_vllm_args
from vramplan.engines.vllm_nontorch import (
    CALIBRATION_CC,
    FI_ALIGN_BYTES,
    fi_fusion_enabled,
    fi_fusion_max_tokens,
    fi_fusion_workspace_bytes,
    fi_workspace_swap_bytes,
)
from vramplan.units import GiB, MiB

DATA = Path(__file__).resolve().parents[1] / "data"
MIB = MiB
GIB = GiB
_WORKSPACE = re.compile(
    r"TP0.*Initialized FlashInfer All Reduce workspace: backend=trtllm, world_size=(\d+), rank=0, "
    r"max_token_num=(\d+), hidden_dim=(\d+), dtype=torch.bfloat16"
)
_NON_TORCH = re.compile(r"TP0.*non-torch forward increase memory: ([\d.]+)GiB")


def _h100_tp_logs() -> list[Path]:
    return sorted(DATA.glob("logs/llmdplanner-*-tp[24]pp1dp1--8192.log"))


@pytest.mark.parametrize("log", _h100_tp_logs(), ids=lambda p: p.stem)
def test_workspace_tokens_match_the_logged_fusion_pass(log: Path) -> None:
    """max_token_num = min(max_size // (hidden x 2), max_num_batched_tokens) as vLLM 0.19 logged it."""
    match = _WORKSPACE.search(log.read_text())
    assert match, "the 0.19 DEBUG log names the workspace it built"
    tp, tokens, hidden = (int(g) for g in match.groups())
    assert fi_fusion_max_tokens(CALIBRATION_CC, tp, hidden, 2, 8192) == tokens


def test_workspace_bytes_follow_flashinfer_trtllm_ar() -> None:
    """Buffer tp*T*H*2, flags tp*256*4, 3 lamport buffers tp*T*H*2 (x2 for fp32), each up to 2 MiB."""
    # Qwen2.5-7B TP 2 on H100 (logged T 8192, hidden 3584): 112 + 2 + 336 MiB.
    assert fi_fusion_workspace_bytes(90, 2, 3584, 2, 8192) == (112 + 2 + 336) * MIB
    # Llama-3.3-70B TP 4 (T 128, hidden 8192): 8 MiB buffer, 2 MiB flags, 24 MiB lamport.
    assert fi_fusion_workspace_bytes(90, 4, 8192, 2, 8192) == (8 + 2 + 24) * MIB
    # fp32 model: T halves (4-byte elements) and the lamport buffers hold fp32.
    t32 = fi_fusion_max_tokens(90, 2, 4096, 4, 8192)
    assert t32 == 64 * MIB // (4096 * 4)
    lamport = -(-3 * 2 * t32 * 4096 * 4 // FI_ALIGN_BYTES) * FI_ALIGN_BYTES
    assert fi_fusion_workspace_bytes(90, 2, 4096, 4, 8192) == 2 * t32 * 4096 * 2 + 2 * MIB + lamport
    # No table entry (TP 3/6, consumer compute capabilities): no workspace.
    assert fi_fusion_workspace_bytes(90, 6, 4096, 2, 8192) == 0
    assert fi_fusion_workspace_bytes(86, 2, 4096, 2, 8192) == 0


@pytest.mark.parametrize(
    ("cc", "tp", "pp", "dp", "eager", "single", "built"),
    [
        (9.0, 2, 1, 1, False, True, True),  # H100
        (10.0, 4, 1, 1, False, False, True),  # B200 (capability family 100)
        (10.3, 2, 1, 1, False, False, True),  # B300
        (8.0, 2, 1, 1, False, False, False),  # A100: NVLink but not Hopper/Blackwell
        (8.6, 2, 1, 1, False, False, False),  # RTX 3090
        (8.9, 2, 1, 1, False, False, False),  # RTX 4090 / L40S
        (12.0, 2, 1, 1, False, False, False),  # RTX 5090
        (12.1, 2, 1, 1, False, False, False),  # GB10
        (9.0, 1, 1, 1, False, False, False),  # TP 1
        (9.0, 2, 1, 1, True, False, False),  # enforce_eager: compilation mode NONE, no passes
        (9.0, 2, 2, 1, False, True, False),  # 0.19: PP > 1 keeps it off (config/vllm.py:133-134)
        (9.0, 2, 1, 2, False, True, False),  # 0.19: DP > 1 too (:129-131)
        (9.0, 2, 2, 2, False, False, True),  # 0.22+: the PP/DP condition is gone
    ],
)
def test_fusion_is_built_where_vllm_enables_it(
    cc: float, tp: int, pp: int, dp: int, eager: bool, single: bool, built: bool
) -> None:
    assert fi_fusion_enabled(cc, tp, pp, dp, eager, single) is built


@given(
    tp=st.sampled_from([2, 4, 8]),
    hidden=st.integers(256, 16384),
    tokens=st.integers(1, 65536),
    dtype_bytes=st.sampled_from([2, 4]),
)
def test_h100_keeps_the_calibrated_figure_and_others_only_lose_the_workspace(
    tp: int, hidden: int, tokens: int, dtype_bytes: int
) -> None:
    args = (tp, 1, 1, False, False, hidden, dtype_bytes, tokens)
    calibrated = int(2.1 * GIB)

    def tp_non_torch_bytes(gib: float, cc: float | None, vendor: str, *rest: object) -> int:
        return int(gib * GIB) + fi_workspace_swap_bytes(cc, vendor, *rest)

    assert tp_non_torch_bytes(2.1, 9.0, "nvidia", *args) == calibrated
    ws = fi_fusion_workspace_bytes(90, tp, hidden, dtype_bytes, tokens)
    assert ws % FI_ALIGN_BYTES == 0
    assert tp_non_torch_bytes(2.1, 8.6, "nvidia", *args) == calibrated - ws
    # enforce_eager on H100: nothing is compiled, so no workspace either.
    eager = (tp, 1, 1, True, False, hidden, dtype_bytes, tokens)
    assert tp_non_torch_bytes(2.1, 9.0, "nvidia", *eager) == calibrated - ws
    # Not sized off NVIDIA (ROCm's aiter fusion) or without a compute capability: unchanged.
    assert tp_non_torch_bytes(2.1, None, "amd", *args) == calibrated


def test_h100_dev_runs_keep_their_logged_non_torch() -> None:
    """Qwen2.5-7B at TP 2 and 4 on H100 (0.19.0): still the calibrated 2.1 GiB; logged 2.06 and 2.13."""
    for log in _h100_tp_logs():
        if "qwen2-5-7b-instruct" not in log.stem:
            continue
        logged = float(_NON_TORCH.search(log.read_text()).group(1))  # type: ignore[union-attr]
        tp = int(re.search(r"-tp(\d)", log.stem).group(1))  # type: ignore[union-attr]
        pred = predict_vllm(
            {"model": "Qwen/Qwen2.5-7B-Instruct", "tensor_parallel_size": tp},
            gpu="H100",
            engine_version="0.19.0",
        )
        assert pred.non_torch_gib == pytest.approx(2.1, abs=1e-9)
        assert abs(pred.non_torch_gib - logged) <= 0.05


def _club3090_594() -> dict[str, object]:
    case = {c["id"]: c for c in json.loads((DATA / "real_logs_2026.json").read_text())}[
        "vllm-club3090-594-qwen36-27b-fp8-tp2"
    ]
    return case


def test_3090_pair_drops_the_workspace_it_never_builds() -> None:
    """club-3090 #594 (2x RTX 3090, ~0.24, logged settings): pool and tokens move to the log.

    Logged: Available KV cache memory 5.33 GiB, 300,220 tokens. With the H100 figure the pool was 4.17 GiB
    and 262,144 tokens; without the 514 MiB workspace (Qwen3.5-27B: T 6553, hidden 5120) it is 4.68 GiB
    and 293,782 tokens. The rest of the gap is NCCL's own, which vLLM's source does not size.
    """
    case = _club3090_594()
    settings = {
        "model": "Qwen/Qwen3.5-27B",
        "dtype": "bfloat16",
        "quantization": "fp8",
        "kv_cache_dtype": "fp8",
        "tensor_parallel_size": 2,
        "max_model_len": case["max_model_len"],
        "max_num_seqs": case["max_num_seqs"],
        "max_num_batched_tokens": case["max_num_batched_tokens"],
        "enable_prefix_caching": True,
    }
    on_3090 = predict_vllm(settings, gpu="RTX-3090", engine_version="0.24.0")
    ws = fi_fusion_workspace_bytes(90, 2, 5120, 2, 8192)
    assert ws == 514 * MIB
    assert on_3090.non_torch_gib == pytest.approx((int(2.1 * GIB) - ws) / GIB)
    logged_pool, logged_tokens = case["available_kv_cache_gib"], case["kv_cache_tokens"]
    assert (
        4.17 < on_3090.available_kv_cache_gib < logged_pool
    )  # closer, still under (NCCL not sized)
    assert abs(on_3090.kv_cache_tokens - logged_tokens) / logged_tokens < 0.03
    assert any("FlashInfer" in n for n in on_3090.assumptions)


@pytest.mark.parametrize(
    ("case_id", "version", "extra", "within"),
    [
        (
            "vllm-club3090-294-qwen36-27b-int4-2x3090",
            "0.22.0",
            {"dtype": "float16", "quantization": "auto_round", "kv_cache_dtype": "fp8_e5m2"},
            0.10,
        ),
        (
            "vllm-mitchross1995-qwen38-27b-fp8-2x3090",
            "0.26.0",
            {"quantization": "fp8", "kv_cache_dtype": "fp8_e4m3", "gpu_memory_utilization": 0.92},
            0.07,
        ),
    ],
)
def test_other_3090_pairs_come_closer_to_the_logged_tokens(
    case_id: str, version: str, extra: dict[str, object], within: float
) -> None:
    """#294 at 0.22.0, its log's kv_cache_utils.py:1733 (logged 622,408 tokens: -9.9 %, -14.4 % with the
    H100 figure) and #1995 (302,921: -6.2 %, -16.3 % before). Stand-in Qwen3.5-27B for both."""
    case = {c["id"]: c for c in json.loads((DATA / "real_logs_2026.json").read_text())}[case_id]
    settings = {
        "model": "Qwen/Qwen3.5-27B",
        "tensor_parallel_size": 2,
        "max_model_len": case["max_model_len"],
        "max_num_seqs": case["max_num_seqs"],
        "max_num_batched_tokens": case["max_num_batched_tokens"],
        "enable_prefix_caching": True,
        **extra,
    }
    if case_id.endswith("294-qwen36-27b-int4-2x3090"):
        settings["speculative_config"] = {"method": "mtp", "num_speculative_tokens": 3}
    pred = predict_vllm(settings, gpu="RTX-3090", engine_version=version)
    logged = case["kv_cache_tokens"]
    assert abs(pred.kv_cache_tokens - logged) / logged < within


def test_disable_custom_all_reduce_does_not_move_the_estimate() -> None:
    """The custom all-reduce buffers are allocated before the init snapshot (gpu_worker.py:263 < :282 in
    0.19.0), so vLLM never charges them: the flag is parsed and reported as not affecting memory."""
    argv = ["vllm", "serve", "Qwen/Qwen3.5-27B", "-tp", "2"]
    parsed = parse_vllm_args([*argv, "--disable-custom-all-reduce"])
    assert parsed.ignored == []
    assert parsed.settings["disable_custom_all_reduce"] is True
    off = predict_vllm(parsed.settings, gpu="RTX-3090", engine_version="0.24.0")
    on = predict_vllm(parse_vllm_args(argv).settings, gpu="RTX-3090", engine_version="0.24.0")
    assert (off.kv_cache_tokens, off.non_torch_gib) == (on.kv_cache_tokens, on.non_torch_gib)
    assert any("--disable-custom-all-reduce changes no memory" in a for a in off.assumptions)
    assert not any("custom-all-reduce" in a for a in on.assumptions)


def test_core_estimate_swaps_the_same_workspace_in_its_nccl_overhead() -> None:
    """One fact, one place: the core breakdown's NCCL part (memory/overhead.py, vLLM 0.19 on H100) loses
    the FlashInfer workspace on a GPU that does not build it, as the vLLM prediction does."""
    from vramplan.estimator import breakdown_for, resolve
    from vramplan.hardware import resolve_gpu
    from vramplan.memory.overhead import OverheadAssumptions
    from vramplan.model.catalog import catalogue
    from vramplan.model.hf_config import spec_from_config
    from vramplan.scenario import Workload

    repo = "Qwen/Qwen2.5-7B"
    r = resolve(spec_from_config(catalogue()[repo], name=repo), "bfloat16", None, None)
    work = Workload(context=8192, users=1)

    def nccl(gpu: str, tp: int) -> int:
        b = breakdown_for(r, work, tp, 1, resolve_gpu(gpu))
        overhead = next(c for c in b.components if c.name == "overhead")
        return next(p for p in overhead.parts if p.name == "nccl").per_gpu_bytes

    measured = OverheadAssumptions().nccl_bytes
    tokens = work.forward_tokens
    assert nccl("H100", 2) == measured
    assert nccl("RTX-3090", 2) == measured - fi_fusion_workspace_bytes(90, 2, 3584, 2, tokens)
    assert nccl("RTX-3090", 2) < measured
