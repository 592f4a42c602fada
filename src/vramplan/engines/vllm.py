"""Predict what vLLM logs at startup: weights, non-torch, activation peak, CUDA graphs, KV cache, tokens.

The budget (design note engine-memory.md §1.2, ``Worker.determine_available_memory``)::

    requested    = util * T
    available_kv = requested - W - A - N - G_est      (G_est only from v0.21, when the CUDA-graph
                                                       estimate moved inside the budget, §1.4)

``W`` comes from the exact per-rank weight count of the core, ``A`` is the profile run's torch peak
(max of one forward over ``max_num_batched_tokens`` tokens and the dummy sampler's fp32 logits over
``min(max_num_seqs, max_num_batched_tokens)`` rows; see ``profile_peak_bytes`` for what stays alive
while the sampler runs), ``N`` is non-torch memory (NCCL/custom all-reduce
buffers under TP, cuBLAS workspaces), calibrated per version on the dev set and named as assumptions.

Blocks (§1.6, §1.7): V1 groups layers by attention type; ``num_blocks = floor(available /
(page * group_size))``; V0 uses one block spanning all layers. The engine takes the minimum over
pipeline stages. Log lines (§1.9) and the two startup errors (§1.2) follow each version's formula.
Attention + state hybrids use vLLM's unified pages (memory/vllm_hybrid_pages.py: raised block, padded
state pages, align mode, "GPU KV cache size" = int(concurrency x max_model_len)); DeepSeek-V4 its grouped
sliding / compressed / indexer / compressor-state pool (memory/vllm_dsv4_pages.py); layouts that all hold
every token (DeepSeek-V3.2's MLA latent + DSA indexer keys) share one block without padding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from math import ceil, floor
from typing import TYPE_CHECKING, Any

from vramplan.capabilities import compute_capability_number
from vramplan.engines.base import (
    GIB,
    EnginePrediction,
    KVPool,
    VersionTable,
    parse_version,
    pool_from_prediction,
)
from vramplan.engines.vllm_features import feature_memory, speculative_config
from vramplan.engines.vllm_nontorch import fi_workspace_swap_bytes
from vramplan.errors import InputError
from vramplan.hardware import GPU, gpu_from
from vramplan.memory.activations import (
    ActivationAssumptions,
    forward_peak_bytes,
    fused_moe_workspace_bytes,
    logits_bytes,
)
from vramplan.memory.kv_cache import KVLayerGroup, kv_layer_groups
from vramplan.memory.state_cache import state_dtypes, state_layers
from vramplan.memory.vllm_dsv4_pages import DEFAULT_BLOCK_TOKENS as DSV4_BLOCK_TOKENS
from vramplan.memory.vllm_dsv4_pages import Dsv4Plan, plan_dsv4_pages
from vramplan.memory.vllm_hybrid_pages import (
    DEFAULT_BLOCK_SIZE_TOKENS,
    HybridPagePlan,
    attention_bytes_per_token,
    hybrid_capacity,
    plan_hybrid_pages,
)
from vramplan.memory.weights import pp_layer_split, weight_bytes
from vramplan.model.spec import ModelSpec
from vramplan.scenario import Fix

if TYPE_CHECKING:
    from vramplan.scenario import Scenario

ENGINE = "vllm"


@dataclass(frozen=True)
class VllmProfile:
    """What one vLLM release line does at startup. Each field is a named, version-keyed assumption."""

    #: Engine generation that runs by default (V1 default from 0.8; V0 removed after 0.10).
    generation: str
    #: ``gpu_memory_utilization`` default (0.9 for most of history, 0.92 in recent CacheConfig).
    util_default: float
    #: Batch defaults: "v0" (max_num_batched_tokens = max(max_model_len, 2048), 256 seqs),
    #: "v1-early" (256 seqs; 8192 tokens offline / 2048 API server) or "v1-device" (the
    #: get_batch_defaults table keyed on device class and usage context, §1.3).
    batch_defaults: str
    #: Live fp32 copies of the dummy sampler's logits in the profile run, next to the forward's hidden
    #: states and the cuBLAS workspace (calibrated on the dev set: 9.55 in V0 0.6-0.8 and V1 0.11,
    #: 3.67 in V1 0.19; spread over the cases +-0.05).
    sampler_copies: float
    #: Non-torch memory at TP=1 and at TP>1 (GiB). TP>1 adds NCCL state (the custom all-reduce buffers
    #: predate the profile's snapshot and are not charged; engines/vllm_nontorch.py).
    non_torch_tp1_gib: float
    non_torch_tp_gib: float
    #: CUDA-graph estimate subtracted from the budget (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS on).
    graphs_in_budget: bool = False
    #: The TP>1 figure was calibrated on H100 and holds the FlashInfer all-reduce fusion workspace there;
    #: it is swapped for the one this GPU builds (engines/vllm_nontorch.py; 0.19+).
    non_torch_tp_fi_swap: bool = False
    #: 0.19 builds that workspace only with PP = DP = 1 (config/vllm.py:129-134); 0.22 drops the condition.
    fi_fusion_single_pp_dp: bool = False
    #: KV token log line: "blocks" (V0: blocks*B), "groups" ((num_blocks // groups) * B, mid-2025 V1),
    #: "requests" (floor(concurrency * max_model_len), 2026 V1).
    token_line: str = "groups"
    #: MXFP4 MoE: multiple the per-partition expert intermediate size is padded to (hidden to 256).
    #: 64 fits the 0.10/0.11 logs (gpt-oss-120b TP1: hidden-only padding), 128 the 0.19 logs.
    mxfp4_intermediate_multiple: int = 64
    #: The fused-MoE modular kernel's workspaces are persistent (class-level ``SharedResizableBuffer``s,
    #: later the V1 ``WorkspaceManager``), so they are still allocated while the dummy sampler runs.
    #: Seen in the 0.19 logs (Qwen1.5-MoE, Mixtral TP2, DeepSeek-V2-Lite); earlier lines unverified.
    moe_workspace_persists: bool = False
    #: Device memory from which ``get_batch_defaults`` uses its largest tier (16,384 batched tokens for
    #: the API server too, 1,024 seqs): 160 GiB from v0.28 (B200/B300-class), None before.
    largest_tier_gib: int | None = None
    #: v0.33+ keeps GB10 (DGX Spark, compute capability 12.1) on the small tier whatever its memory.
    gb10_small_tier: bool = False
    #: How the KV pool is sized: "estimate" (util x total minus the profiled non-KV memory) or
    #: "extensible" (v0.34: the pool is committed after warmup and CUDA-graph capture, from the memory
    #: then free, util defaulting to 1.0 on CUDA and ROCm; vllm/v1/worker/extensible_kv_cache.py
    #: ``measure_kv_cache_bytes``).
    kv_sizing: str = "estimate"
    #: V0 turns chunked prefill on by itself when max_model_len > 32K (CUDA, no sliding window, no
    #: LoRA/spec decode; ``EngineArgs.create_engine_config``, from 0.5.3), and SchedulerConfig then
    #: defaults max_num_batched_tokens to this chunk: 512 in 0.5.3-0.6.4 (config.py), 2048 from 0.6.5,
    #: also in the V0 fallback of 0.8-0.10.
    v0_chunk_tokens: int | None = None
    #: What else keeps that automatic chunked prefill off, per release (``v0_auto_chunked_prefill``):
    #: "prefix_caching" (0.5.3-0.6.0), "hybrid" (seqlen-agnostic Mamba layers, 0.5.4-0.6.2),
    #: "multimodal" (0.6.3+), "mla" (the 0.8-0.10 fallback's ``_set_default_args_v0``).
    v0_chunk_blockers: tuple[str, ...] = ()
    #: Hybrid (attention + Mamba/GDN/KDA/short-conv) state pages one running request holds per state group:
    #: "one" (0.11: one page whatever the settings) or "align" (0.22+: 1 + speculative pages, 2 + speculative
    #: with prefix caching, vLLM's mamba_cache_mode "align"; ``MambaSpec.max_memory_usage_bytes``).
    hybrid_state_blocks: str = "one"
    #: Prefix caching on by default for hybrid models (``ModelConfig.is_prefix_caching_supported``: off for
    #: "hybrid" up to 0.25, on from 0.26).
    hybrid_prefix_caching: bool = False
    #: Startup fails when max_num_seqs exceeds the pool's blocks for a model with Mamba layers and full
    #: CUDA graphs (``CompilationConfig`` "exceeds available Mamba cache blocks"; 0.22+, not in 0.11).
    mamba_seqs_check: bool = False
    #: 0.33+: in align mode Mamba2 layers, and gated-DeltaNet layers on FlashInfer's GDN prefill (Hopper),
    #: export prefill checkpoints: one more state page per request (``num_prefill_checkpoint_blocks``),
    #: GDN blocks a multiple of 64 tokens (``FLASHINFER_GDN_CHECKPOINT_ALIGNMENT``).
    mamba_checkpoint_pages: bool = False


#: vLLM 0.33+ ``FLASHINFER_GDN_CHECKPOINT_ALIGNMENT`` (v1/attention/backends/gdn_attn.py).
FLASHINFER_GDN_CHECKPOINT_TOKENS = 64

#: v0.34 extensible KV cache: margin kept free = max(floor, fraction x transient peak)
#: (vllm/v1/worker/extensible_kv_cache.py:64-65, ``KV_CACHE_MARGIN_FLOOR_BYTES`` is 3 GiB on ROCm).
EXTENSIBLE_MARGIN_FLOOR_BYTES = {"nvidia": 1 << 30, "amd": 3 << 30}
EXTENSIBLE_MARGIN_FRACTION = 0.75


#: Live fp32 copies of the dummy sampler's logits at the peak of V0's profile run (calibrated 9.55 on
#: the V0 dev logs, vllm-pr10511-tp1). The peak is inside ``_apply_top_k_top_p`` (the profile's
#: ``SamplingParams(top_p=0.99, top_k=vocab_size - 1)``, worker/model_runner.py:1231 in 0.6.5): the
#: model-dtype logits the runner holds, their fp32 copy (sampler.py:269), the sorted values and their
#: int64 indices (sampler.py:431), the masks, softmax and cumsum (sampler.py:437-443). Over
#: ``max_num_seqs`` rows, never over the batched tokens (one sampled token per dummy sequence). The V0
#: Sampler is the same code from 0.6.3 to 0.10.x (model_executor/layers/sampler.py of the 0.6.5 and
#: 0.10.0 wheels differ only in typing, docstrings and the ``apply_penalties`` import), so the V0
#: fallback of 0.8-0.10 runs it too, whatever the V1 row's own sampler count.
V0_SAMPLER_COPIES = 9.55


def _profiles() -> dict[str, VllmProfile]:
    """Known vLLM release lines, each written as its predecessor plus what that release changed.

    A profile applies from its version until the next one.
    """
    rows: dict[str, VllmProfile] = {}
    # Early V0 charged the whole device (CUDA context, cuBLAS) against util*T: ~1 GiB non-torch.
    rows["0.2"] = VllmProfile(
        generation="v0",
        util_default=0.9,
        batch_defaults="v0",
        sampler_copies=V0_SAMPLER_COPIES,
        non_torch_tp1_gib=1.0,
        non_torch_tp_gib=1.5,
    )
    # V0 with the snapshot accounting ("Memory profiling results" line, 0.6.4): 0.26-0.35 GiB non-torch;
    # chunked prefill switched on past 32K context with 512 batched tokens (0.6.3 config.py).
    # 0.5.3: chunked prefill switched on past 32K context (arg_utils.py:747-761 of the 0.5.3.post1
    # wheel: not with prefix caching) at 512 batched tokens (config.py:796); 0.5.4 also leaves models
    # with seqlen-agnostic (Mamba) layers alone (0.5.4 arg_utils.py:757-764).
    rows["0.5.3"] = replace(rows["0.2"], v0_chunk_tokens=512, v0_chunk_blockers=("prefix_caching",))
    rows["0.5.4"] = replace(rows["0.5.3"], v0_chunk_blockers=("prefix_caching", "hybrid"))
    rows["0.6"] = replace(rows["0.5.4"], non_torch_tp1_gib=0.3, non_torch_tp_gib=0.6)
    # 0.6.1: prefix caching no longer keeps it off (0.6.1.post2 arg_utils.py:879-899); 0.6.3: multimodal models
    # do, seqlen-agnostic ones no longer (0.6.3 arg_utils.py:936-952).
    rows["0.6.1"] = replace(rows["0.6"], v0_chunk_blockers=("hybrid",))
    rows["0.6.3"] = replace(rows["0.6.1"], v0_chunk_blockers=("multimodal",))
    # 0.6.5: SchedulerConfig's chunked-prefill default becomes 2048 batched tokens (config.py:1344 of the
    # 0.6.5 wheel; 512 at config.py:1114 of 0.6.4), kept in 0.6.6 (config.py:1438).
    rows["0.6.5"] = replace(rows["0.6.3"], v0_chunk_tokens=2048)
    # 0.7.x V0 logs show 0.05-0.08 GiB non-torch at TP=1; the long-context chunk stays 2048 (0.7.3).
    rows["0.7"] = replace(rows["0.6.5"], non_torch_tp1_gib=0.06, non_torch_tp_gib=0.5)
    # V1 default from 0.8 (V0 still used on compute capability < 8.0). That V0 fallback still turns
    # chunked prefill on past 32K context (_set_default_args_v0: 0.8.5 arg_utils.py:1505-1524, 0.10.0
    # arg_utils.py:1468-1485) with 2048 batched tokens (0.8.5 config.py:68; 0.9.2 and 0.10.0
    # utils/__init__.py:81 and :84 DEFAULT_MAX_NUM_BATCHED_TOKENS): v0_chunk_tokens stays 2048.
    # It leaves multimodal and MLA models alone (0.8.5 arg_utils.py:1507-1509).
    rows["0.8"] = replace(
        rows["0.7"],
        generation="v1",
        batch_defaults="v1-early",
        non_torch_tp_gib=0.55,
        v0_chunk_blockers=("multimodal", "mla"),
    )
    # get_batch_defaults keyed on device class (H100-class: 1024 seqs) from 0.10; the 0.10.1 A100 logs
    # fit the 0.19 sampler (activation + non-torch ~0.6 GiB at 256 seqs).
    rows["0.10"] = replace(
        rows["0.8"], batch_defaults="v1-device", sampler_copies=3.67, non_torch_tp1_gib=0.14
    )
    # 0.11 (llm-d H100 runs): 9.55 sampler copies at 1024 seqs (9.51-9.58 over four models), 0.13-0.14 GiB
    # non-torch, 0.55 at TP=2.
    # V0 is gone from 0.11 (no fallback: see predict_vllm).
    rows["0.11"] = replace(rows["0.10"], sampler_copies=9.55, v0_chunk_tokens=None)
    # 0.19 dev set: sampler peak 3.67 logits copies (3.64-3.71 over eight models); TP>1 non-torch
    # ~2.1 GiB (NCCL symmetric memory); persistent fused-MoE workspaces.
    rows["0.19"] = replace(
        rows["0.11"],
        sampler_copies=3.67,
        non_torch_tp1_gib=0.25,
        non_torch_tp_gib=2.1,
        mxfp4_intermediate_multiple=128,
        moe_workspace_persists=True,
        non_torch_tp_fi_swap=True,
        fi_fusion_single_pp_dp=True,
    )
    # v0.21: "CUDA graph memory profiling is enabled (default since v0.21.0)".
    rows["0.21"] = replace(rows["0.19"], graphs_in_budget=True)
    # 0.22: CacheConfig 0.92; "GPU KV cache size" = int(concurrency x max_model_len) (kv_cache_utils.py);
    # hybrid state pages in "align" mode with prefix caching, + speculative pages (MambaSpec). Checked in
    # the 0.22.0 and 0.24.0 wheels.
    rows["0.22"] = replace(
        rows["0.21"],
        util_default=0.92,
        token_line="requests",
        hybrid_state_blocks="align",
        mamba_seqs_check=True,
        fi_fusion_single_pp_dp=False,
    )
    # 0.25: the same fields (the line the 2025 dev set was read at, kept so answers name it).
    rows["0.25"] = replace(rows["0.22"])
    # 0.26: prefix caching on by default for hybrid models (config/model.py is_prefix_caching_supported);
    # 0.26-0.27 otherwise as 0.25 (CacheConfig 0.92, get_batch_defaults unchanged,
    # VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1); checked in the 0.26.0 and 0.27.0 wheels.
    rows["0.26"] = replace(rows["0.25"], hybrid_prefix_caching=True)
    # v0.28: get_batch_defaults gains a >= 160 GiB tier (arg_utils.py, "B200/B300 with >= 160GB");
    # KV size and concurrency print on one line (kv_cache_utils.update_kv_cache_capacity).
    rows["0.28"] = replace(rows["0.26"], largest_tier_gib=160)
    # v0.33: GB10 (cc 12.1) stays on the small batch tier (arg_utils.get_batch_defaults); Mamba2 and
    # FlashInfer-GDN layers hold a prefill-checkpoint page in align mode (mamba_mixer2.py, qwen_gdn_linear_attn.py).
    rows["0.33"] = replace(rows["0.28"], gb10_small_tier=True, mamba_checkpoint_pages=True)
    # v0.34: extensible KV cache on by default on CUDA/ROCm (config/cache.py enable_extensible_kv_cache,
    # resolved_gpu_memory_utilization: 1.0 when extensible, else 0.92).
    rows["0.34"] = replace(rows["0.33"], kv_sizing="extensible")
    return rows


#: Known vLLM release lines. A profile applies from its version until the next one.
PROFILES: VersionTable[VllmProfile] = VersionTable(ENGINE, _profiles())

#: Assumptions always attached (the rest are version- or input-specific).
_BASE_ASSUMPTIONS = (
    "non-torch memory is a per-version constant calibrated on the dev set (NCCL under TP; from 0.19 the "
    "FlashInfer all-reduce fusion workspace sized per GPU)",
    "CUDA-graph memory ~ (0.35 + 0.017 x layers per rank) GiB x capture sizes/51 (fit to vLLM 0.19 estimates)",
)


def _non_torch_bytes(
    prof: VllmProfile,
    gpu: GPU,
    cc: float | None,
    spec: ModelSpec,
    compute_dtype: str,
    settings: Mapping[str, Any],
    tp: int,
    pp: int,
    batched_tokens: int,
    eager: bool,
    notes: list[str],
) -> int:
    """Memory outside PyTorch charged by the profile: the release's calibrated figure, at TP>1 from 0.19
    with the FlashInfer all-reduce fusion workspace sized for this GPU (engines/vllm_nontorch.py)."""
    if tp == 1:
        return int(prof.non_torch_tp1_gib * GIB)
    if settings.get("disable_custom_all_reduce"):
        notes.append(
            "--disable-custom-all-reduce changes no memory vLLM accounts: the custom all-reduce buffers are "
            "allocated before the profile's snapshot (engines/vllm_nontorch.py)"
        )
    if not prof.non_torch_tp_fi_swap:
        return int(prof.non_torch_tp_gib * GIB)
    calibrated = int(prof.non_torch_tp_gib * GIB)
    dtype_bytes = 4 if compute_dtype == "float32" else 2
    out = calibrated + fi_workspace_swap_bytes(
        cc,
        gpu.vendor,
        tp,
        pp,
        int(settings.get("data_parallel_size") or 1),
        eager,
        prof.fi_fusion_single_pp_dp,
        spec.hidden_size,
        dtype_bytes,
        batched_tokens,
    )
    if out != calibrated:
        notes.append(
            f"non-torch at TP={tp}: {out / GIB:.2f} GiB, the {prof.non_torch_tp_gib:g} GiB calibrated on H100 with "
            f"its FlashInfer all-reduce fusion workspace swapped for this deployment's "
            f"(built only on compute capability 9.0/10.x, compiled, at a TP size in its table)"
        )
    return out


def extensible_kv_bytes(
    total_bytes: int,
    requested_bytes: int,
    non_kv_bytes: int,
    transient_peak_bytes: int,
    vendor: str | None,
) -> int:
    """KV bytes of v0.34's extensible cache (``measure_kv_cache_bytes`` in extensible_kv_cache.py).

    After warmup and graph capture everything resident but the KV prefix is the engine's (``non_kv``);
    the pool gets ``min(requested - non_kv, headroom - margin) - transient_peak``, where headroom is
    the device memory not held by the engine (no other processes here) and
    ``margin = max(floor, 0.75 x transient_peak)``. With the default utilization 1.0 the margin binds:
    e.g. 80 GiB total, 16 GiB non-KV, 2 GiB peak: min(64, 64 - 1.5) - 2 = 60.5 GiB.
    """
    floor = EXTENSIBLE_MARGIN_FLOOR_BYTES.get(vendor or "nvidia", 1 << 30)
    margin = max(floor, int(transient_peak_bytes * EXTENSIBLE_MARGIN_FRACTION))
    headroom = total_bytes - non_kv_bytes
    available = min(requested_bytes - non_kv_bytes, headroom - margin) - transient_peak_bytes
    return max(available, 0)


def v0_auto_chunked_prefill(
    spec: ModelSpec,
    gpu: GPU,
    max_len: int,
    settings: Mapping[str, Any],
    blockers: tuple[str, ...] = ("multimodal",),
) -> bool:
    """Whether vLLM V0 switches chunked prefill on unasked (arg_utils.py ``use_long_context``).

    Only for contexts above 32K on CUDA, and not for sliding-window models, LoRA or speculative
    decoding (V0 0.5.3-0.10 ``create_engine_config``; 0.6.5+ also excludes ROCm), nor for what the
    release's ``VllmProfile.v0_chunk_blockers`` names (prefix caching, hybrid, multimodal, MLA).
    """
    blocked = {
        "prefix_caching": bool(settings.get("enable_prefix_caching")),
        "hybrid": spec.state is not None,
        "multimodal": bool(spec.extra_params),
        "mla": spec.mla is not None,
    }
    return (
        max_len > 32768
        and gpu.vendor == "nvidia"
        and not spec.uses_sliding_window
        and not settings.get("enable_lora")
        and not settings.get("speculative_config")
        and not any(blocked[b] for b in blockers)
    )


def _gpu_cannot_run(
    gpu: GPU, precision: Any, dtype: Any, version: str, notes: list[str]
) -> list[str]:
    """vLLM's own errors for formats and versions this GPU cannot run (capabilities.py)."""
    from vramplan.capabilities import fallback_notes, refusals, vllm_version_error

    notes.extend(fallback_notes(gpu, precision, "vllm"))
    bf16 = str(dtype).lower() in ("bf16", "bfloat16")
    errors = [x.engine_error for x in refusals(gpu, precision, "vllm", bf16_requested=bf16)]
    v1 = vllm_version_error(gpu, parse_version(version))
    return errors + ([v1] if v1 else [])


def _v0_large_device(gpu: GPU) -> bool:
    return gpu.memory_bytes >= 70 * GIB and "A100" not in gpu.name.upper()


@dataclass(frozen=True)
class _Stage:
    weights: int
    layers: int
    groups: tuple[KVLayerGroup, ...]


def gpu_for(
    gpu: str | GPU | None = None,
    gpu_memory: str | int | None = None,
    total_gib: float | None = None,
) -> GPU:
    """A GPU from a catalogue name, an explicit size, or the total a log printed."""
    if gpu_memory is None and total_gib and not isinstance(gpu, GPU):
        gpu_memory = int(total_gib * GIB)
    label = f"{total_gib:.2f} GiB GPU" if total_gib else None
    return gpu_from(gpu, gpu_memory, required=True, label=label)


def predict_vllm(
    argv_or_settings: Sequence[str] | Mapping[str, Any],
    *,
    gpu: str | GPU | None = None,
    gpu_memory: str | int | None = None,
    engine_version: str | None = None,
    usage_context: str = "api_server",
    spec: ModelSpec | None = None,
    fixes: bool = True,
) -> EnginePrediction:
    """Predict vLLM's startup figures from a `vllm serve` argv or a settings dict (vLLM flag names).

    ``usage_context`` is "api_server" (`vllm serve`) or "offline" (the `LLM` class); it changes the
    batch defaults. ``spec`` overrides model resolution (the explain command resolves it itself).
    """
    ignored: list[str] = []
    if isinstance(argv_or_settings, Mapping):
        settings = dict(argv_or_settings)
    else:
        from vramplan.engines.vllm_args import parse_vllm_args

        parsed = parse_vllm_args(list(argv_or_settings))
        settings, ignored = parsed.settings, parsed.ignored
    assumptions: list[str] = []
    hint_quant: str | None = None
    if spec is None:
        if not settings.get("model"):
            raise InputError(
                "no model given: pass it as the first argument or with --model (e.g. meta-llama/Llama-3.1-8B-Instruct)"
            )
        spec, hint_quant, note = resolve_model_name(str(settings["model"]))
        if note:
            assumptions.append(note)
    device = gpu_for(gpu, gpu_memory, settings.get("gpu_total_gib"))
    pred = _predict(spec, settings, device, engine_version, usage_context, hint_quant, assumptions)
    if fixes and not pred.starts:
        pred = replace(
            pred,
            fixes=tuple(
                suggest_fixes(
                    spec, settings, device, engine_version, usage_context, hint_quant, pred
                )
            ),
        )
    if ignored:
        pred = replace(pred, extra={**pred.extra, "ignored_flags": ignored})
    return pred


def _predict(
    spec: ModelSpec,
    settings: Mapping[str, Any],
    gpu: GPU,
    engine_version: str | None,
    usage_context: str,
    hint_quant: str | None,
    assumptions: list[str],
) -> EnginePrediction:
    from vramplan.estimator import check_parallelism, resolve

    version = engine_version or settings.get("engine_version")
    match = PROFILES.nearest_version(version)
    prof = match.value
    notes = list(assumptions) + list(_BASE_ASSUMPTIONS)
    if match.note:
        notes.append(match.note)
    generation = settings.get("vllm_generation") or prof.generation
    cc = compute_capability_number(gpu)
    if (
        generation == "v1"
        and prof.generation == "v1"
        and cc is not None
        and cc < 8.0
        and parse_version(match.version) < (0, 11)
    ):
        generation = "v0"
        notes.append(
            f"{gpu.name} (compute capability {cc}) is not supported by V1 here: vLLM falls back to V0"
        )

    tp = int(settings.get("tensor_parallel_size") or 1)
    pp = int(settings.get("pipeline_parallel_size") or 1)
    check_parallelism(spec, tp, pp)
    util = settings.get("gpu_memory_utilization")
    extensible = (
        prof.kv_sizing == "extensible"
        and not settings.get("kv_cache_memory_bytes")
        and gpu.vendor in EXTENSIBLE_MARGIN_FLOOR_BYTES
    )
    if util is None:
        util = 1.0 if extensible else prof.util_default
    util = float(util)
    if not 0 < util <= 1:
        raise InputError(
            f"--gpu-memory-utilization {util} is outside (0, 1]: give a fraction such as 0.9"
        )
    max_len = settings.get("max_model_len") or spec.max_position_embeddings
    max_len = int(max_len)
    if max_len > spec.max_position_embeddings:
        raise InputError(
            f"--max-model-len {max_len} is above {spec.name}'s max_position_embeddings "
            f"({spec.max_position_embeddings}) and the model has no rope scaling: lower it to "
            f"{spec.max_position_embeddings} or less"
        )
    quant = settings.get("quantization")
    if hint_quant and (
        quant is None
        or str(quant).lower().replace("-", "_")
        in ("compressed_tensors", "gptq_marlin", "awq_marlin", "fp8")
    ):
        quant = hint_quant
    dtype = settings.get("dtype")
    r = resolve(
        spec, dtype if dtype not in (None, "auto") else None, quant, settings.get("kv_cache_dtype")
    )
    notes.extend(r.precision.notes)

    # Batch defaults (§1.3).
    seqs = settings.get("max_num_seqs")
    tokens = settings.get("max_num_batched_tokens")
    offline = usage_context == "offline"
    if generation == "v0" or prof.batch_defaults == "v0":
        seqs = seqs or 256
        chunked = settings.get("enable_chunked_prefill")
        if (
            chunked is None
            and prof.v0_chunk_tokens
            and v0_auto_chunked_prefill(spec, gpu, max_len, settings, prof.v0_chunk_blockers)
        ):
            chunked = True
            notes.append(
                f"V0 enables chunked prefill by itself for max_model_len {max_len:,} > 32,768: "
                f"{prof.v0_chunk_tokens:,} batched tokens per step (the profile run's size)"
            )
        tokens = tokens or ((prof.v0_chunk_tokens or 512) if chunked else max(max_len, 2048))
    elif prof.batch_defaults == "v1-early":
        seqs = seqs or 256
        tokens = tokens or (8192 if offline else 2048)
    else:
        gb10 = prof.gb10_small_tier and compute_capability_number(gpu) == 12.1
        largest = (
            prof.largest_tier_gib is not None and gpu.memory_bytes >= prof.largest_tier_gib * GIB
        )
        big = _v0_large_device(gpu) and not gb10
        seqs = seqs or (1024 if big or largest else 256)
        if largest:
            tokens = tokens or 16384
        else:
            tokens = tokens or (
                (16384 if offline else 8192) if big else (8192 if offline else 2048)
            )
    seqs, tokens = int(seqs), int(tokens)

    mla = spec.mla is not None
    block = int(settings.get("block_size") or (64 if mla and generation == "v1" else 16))

    # Weights per stage (the core pads vocab to 64 and replicates KV heads / MLA down-projections).
    wb = weight_bytes(spec, r.precision, tp, pp)
    offload = int(float(settings.get("cpu_offload_gb") or 0) * GIB)
    splits = pp_layer_split(spec.num_layers, pp)
    pad = mxfp4_moe_padding_bytes(spec, r.precision, tp, prof.mxfp4_intermediate_multiple)
    rope = rotary_cache_bytes(spec, 4 if r.precision.compute_dtype == "float32" else 2)
    firsts = [sum(splits[:i]) for i in range(len(splits))]
    # LoRA slots, expert placement, speculative layers, all-to-all and connector buffers
    # (engines/vllm_features.py); the draft/MTP layers run after the last layer, so PP puts them on
    # the last stage.
    features = feature_memory(
        spec, r.precision, r.kv_element, settings, tp, parse_version(match.version)
    )
    notes.extend(features.notes)
    if features.batched_tokens_default and not settings.get("max_num_batched_tokens"):
        # batched DP MoE (DeepEP low-latency) default; arg_utils.py:3269-3271 then caps default seqs.
        tokens = features.batched_tokens_default
        seqs = seqs if settings.get("max_num_seqs") else min(seqs, tokens)
    last = len(splits) - 1
    stages = [
        _Stage(
            max(0, w + pad * n // spec.num_layers + rope - offload)
            + features.weight_bytes * n // spec.num_layers,
            n,
            kv_layer_groups(spec, r.kv_element, tp, n if pp > 1 else None, first if pp > 1 else 0)
            + (features.kv_groups if i == last else ()),
        )
        for i, (w, n, first) in enumerate(zip(wb.per_stage, splits, firsts))
    ]

    # Activation peak of the profile run.
    a = replace(
        ActivationAssumptions(),
        # A V0 fallback (compute capability < 8.0 before 0.11) samples with V0's Sampler.
        sampler_logit_copies=V0_SAMPLER_COPIES if generation == "v0" else prof.sampler_copies,
        activation_bytes=4 if r.precision.compute_dtype == "float32" else 2,
    )
    peak = profile_peak_bytes(
        spec,
        tokens,
        seqs,
        tp,
        a,
        cc,
        prof.moe_workspace_persists,
        mxfp4=bool(r.precision.scheme and r.precision.scheme.name.startswith("mxfp4")),
    )
    forward, sampler, act = peak["forward"], peak["sampler"], peak["peak"]
    eager = bool(settings.get("enforce_eager"))
    non_torch = _non_torch_bytes(
        prof, gpu, cc, spec, r.precision.compute_dtype, settings, tp, pp, tokens, eager, notes
    )
    non_torch += features.reserved_bytes  # all-to-all / connector buffers outside PyTorch
    sizes = _capture_sizes(seqs, tokens) if not eager else 0
    graph_stage = [
        0 if eager else int((0.35 + 0.017 * s.layers) * sizes / 51 * GIB) for s in stages
    ]
    total = gpu.memory_bytes
    requested = ceil(util * total)  # request_memory: math.ceil(total * utilization)
    override = settings.get("kv_cache_memory_bytes")

    hybrid = spec.state is not None and spec.attention_layers > 0
    prefix_caching = settings.get("enable_prefix_caching")
    if prefix_caching is None:
        prefix_caching = generation == "v1" and (prof.hybrid_prefix_caching or not hybrid)
    plans = (
        _hybrid_plans(
            spec,
            settings,
            prof,
            r.kv_element,
            r.precision.compute_dtype,
            tp,
            stages,
            features.kv_groups,
            bool(prefix_caching),
            cc,
            notes,
        )
        if hybrid and generation == "v1"
        else None
    )
    dsv4 = (
        _dsv4_plans(spec, settings, r.kv_dtype, splits, notes)
        if spec.model_type == "deepseek_v4" and generation == "v1"
        else None
    )
    per_stage: list[dict[str, Any]] = []
    for i, (s, g) in enumerate(zip(stages, graph_stage)):
        if override:
            avail = int(override)
        elif extensible:
            avail = extensible_kv_bytes(
                total, requested, s.weights + non_torch + g, act, gpu.vendor
            )
        else:
            avail = requested - s.weights - act - non_torch - (g if prof.graphs_in_budget else 0)
        if plans:
            per_stage.append(_hybrid_blocks(plans[i], s, avail, max_len))
        elif dsv4:
            per_stage.append(_dsv4_blocks(dsv4[i], s, avail, max_len, tokens))
        else:
            per_stage.append(_blocks(s, avail, block, max_len, tokens, generation))
    worst_i = min(range(len(per_stage)), key=lambda i: per_stage[i]["num_blocks"])
    worst = per_stage[worst_i]
    num_blocks = min(p["num_blocks"] for p in per_stage)
    if extensible:
        notes.append(
            "extensible KV cache (default from v0.34 on CUDA/ROCm): sized after warmup and CUDA-graph "
            f"capture from the memory then free, gpu_memory_utilization {util:g}, keeping the activation "
            "peak and a margin of max(1 GiB, 0.75 x peak) free"
        )
    elif prof.graphs_in_budget and not eager:
        notes.append("CUDA-graph estimate subtracted from the KV budget (default since v0.21.0)")
    if override:
        notes.append(
            "--kv-cache-memory-bytes sets the KV pool directly; gpu_memory_utilization is ignored"
        )

    errors: list[str] = _gpu_cannot_run(gpu, r.precision, dtype, version or match.version, notes)
    plan: HybridPagePlan | None = worst.get("plan")
    v4: Dsv4Plan | None = worst.get("dsv4")
    if plan is not None:
        block = plan.block_size
    elif v4 is not None:
        block = v4.groups[0].block_tokens
    per_request = worst["blocks_per_request"]
    concurrency = num_blocks / per_request if per_request else 0.0
    if generation == "v0" or prof.token_line == "blocks":
        kv_tokens = num_blocks * block
        concurrency = kv_tokens / max_len
    elif prof.token_line == "requests":
        kv_tokens = floor(concurrency * max_len)
    else:
        kv_tokens = (num_blocks // worst["num_groups"]) * block
    avail_gib = worst["available"] / GIB
    if worst["available"] <= 0 or num_blocks <= 0:
        errors.append(
            "No available memory for the cache blocks. Try increasing `gpu_memory_utilization` "
            "when initializing the engine."
        )
    elif generation == "v0":
        if max_len > kv_tokens:
            errors.append(
                f"The model's max seq len ({max_len}) is larger than the maximum number of tokens "
                f"that can be stored in KV cache ({kv_tokens}). Try increasing "
                "`gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine."
            )
    elif v4 is not None:
        errors.extend(_dsv4_errors(v4, worst["available"], max_len, tokens))
    elif plan is not None:
        errors.extend(
            _hybrid_errors(plan, prof, worst["available"], max_len, seqs, num_blocks, eager)
        )
    elif num_blocks < per_request:
        fit = largest_fitting_len(
            worst["stage"], worst["available"], block, tokens, generation, max_len
        )
        need = per_request * worst["block_bytes"] / GIB
        errors.append(
            f"To serve at least one request with the models's max seq len ({max_len}), ({need:.2f} GiB KV cache "
            f"is needed, which is larger than the available KV cache memory ({avail_gib:.2f} GiB). Based on the "
            f"available memory, the estimated maximum model length is {fit}. Try increasing "
            "`gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine."
        )
    resolved = {
        "model": spec.name,
        "tensor_parallel_size": tp,
        "pipeline_parallel_size": pp,
        "dtype": r.precision.compute_dtype,
        "quantization": r.precision.scheme.name if r.precision.scheme else None,
        "kv_cache_dtype": r.kv_dtype,
        "max_model_len": max_len,
        "gpu_memory_utilization": util,
        "block_size": block,
        "max_num_seqs": seqs,
        "max_num_batched_tokens": tokens,
        "enforce_eager": eager,
        "enable_prefix_caching": bool(prefix_caching),
        "kv_cache_memory_bytes": override,
        "cpu_offload_gb": settings.get("cpu_offload_gb") or 0,
        "vllm_generation": generation,
        "usage_context": usage_context,
        "gpu": gpu.name,
        "gpu_total_gib": round(total / GIB, 2),
    }
    if settings.get("served_model_name"):
        resolved["served_model_name"] = settings["served_model_name"]
    host_bytes = dict(features.host_bytes)
    if features.host_mirrors_kv:
        host_bytes[features.host_mirrors_kv] = int(max(0, worst["available"]))
    return EnginePrediction(
        engine=ENGINE,
        engine_version=match.version,
        weights_gib=stages[worst_i].weights / GIB,
        non_torch_gib=non_torch / GIB,
        activation_peak_gib=act / GIB,
        cuda_graph_gib=graph_stage[worst_i] / GIB,
        available_kv_cache_gib=avail_gib,
        kv_cache_tokens=max(0, kv_tokens),
        max_concurrency=max(0.0, concurrency),
        gpu_blocks=max(0, num_blocks),
        kv_bytes_per_token=_kv_bytes_per_token(worst["stage"], plan),
        state_bytes_per_sequence=plan.state_bytes_per_request if plan else 0,
        starts=not errors,
        errors=tuple(errors),
        assumptions=tuple(dict.fromkeys(notes)),
        settings=resolved,
        extra={
            "activation_forward_gib": forward / GIB,
            "activation_sampler_gib": sampler / GIB,
            "activation_moe_workspace_gib": peak["moe_workspace"] / GIB,
            "requested_gib": requested / GIB,
            "blocks_per_request": per_request,
            "kv_groups": worst["num_groups"],
            "kv_cache_bytes": int(max(0, worst["available"])),
            "block_bytes": worst["block_bytes"],
            **(_hybrid_extra(plan) if plan else {}),
            "gpu_memory_bytes": total,
            **({"host_bytes": host_bytes} if host_bytes else {}),
        },
    )


#: PyTorch's default cuBLAS workspace (CUBLAS_WORKSPACE_CONFIG unset, ``getChosenWorkspaceSize`` in
#: aten/src/ATen/cuda/CublasHandlePool.cpp): ":4096:8" = 32 MiB on compute capability >= 9.0,
#: ":4096:2:16:8" = 8 MiB + 128 KiB before. It comes from the caching allocator on the first matmul,
#: i.e. inside the profile run, so it is part of vLLM's "torch peak memory increase".
CUBLAS_WORKSPACE_HOPPER = 32 * 2**20
CUBLAS_WORKSPACE_OLDER = 8 * 2**20 + 128 * 2**10


def profile_peak_bytes(
    spec: ModelSpec,
    tokens: int,
    seqs: int,
    tp: int,
    a: ActivationAssumptions,
    compute_capability: float | None = None,
    moe_workspace_persists: bool = False,
    mxfp4: bool = False,
) -> dict[str, int]:
    """Torch allocated-bytes peak of vLLM's profile run (one forward over ``tokens``, then the dummy sampler).

    ``GPUModelRunner.profile_run`` keeps ``hidden_states`` of the dummy forward (``tokens x hidden``)
    referenced until after ``_dummy_sampler_run`` (``del hidden_states, output`` comes last); V0's
    ``execute_model`` likewise samples while the forward's hidden states are alive. The cuBLAS
    workspace allocated on the first matmul stays for both phases. With persistent fused-MoE
    workspaces (``moe_workspace_persists``), the two MoE workspaces are also alive during sampling::

        forward phase = forward_peak + cublas
        sampler phase = copies * rows * V * 4 + tokens * hidden * e + cublas + moe_workspaces
        peak          = max(forward phase, sampler phase)

    MXFP4 experts run through triton_kernels' ``matmul_ogs`` (no modular-kernel workspaces): no MoE term.
    """
    cublas = (
        CUBLAS_WORKSPACE_OLDER
        if compute_capability is not None and compute_capability < 9.0
        else CUBLAS_WORKSPACE_HOPPER
    )
    forward = forward_peak_bytes(spec, tokens, tp, a) + cublas
    moe_ws = (
        fused_moe_workspace_bytes(spec, tokens, tp, a)
        if moe_workspace_persists and not mxfp4
        else 0
    )
    sampler = (
        logits_bytes(spec, min(seqs, tokens), a)
        + tokens * spec.hidden_size * a.activation_bytes
        + cublas
        + moe_ws
    )
    return {
        "forward": forward,
        "sampler": sampler,
        "moe_workspace": moe_ws,
        "cublas": cublas,
        "peak": max(forward, sampler),
    }


_NO_ROPE = ("bloom", "mpt", "gpt2", "opt")


def rotary_cache_bytes(spec: ModelSpec, element_bytes: int = 2) -> int:
    """Bytes of the rotary cos/sin caches vLLM registers as buffers (counted in "Model loading took").

    ``get_rope`` (vllm/model_executor/layers/rotary_embedding) builds one ``RotaryEmbedding`` per distinct
    rope configuration (instances are cached and shared by all layers) whose ``cos_sin_cache`` is
    ``[max_len, rotary_dim]`` in the model dtype (``cache.to(dtype)``), with
    ``max_len = max_position_embeddings`` by default, ``max_position_embeddings * factor`` for linear
    and dynamic-NTK scaling, ``original_max_position_embeddings * factor`` for YaRN / DeepSeek-YaRN.
    ``rotary_dim`` is ``head_dim * partial_rotary_factor`` (``qk_rope_head_dim`` for MLA). Gemma 3 has
    a second, unscaled rope for its sliding layers (``rope_local_base_freq``). Examples: Gemma-3-4B/12B
    (head_dim 256, linear factor 8 over 131,072 positions): 512 MiB + 64 MiB; Llama-3.1 (llama3 type,
    131,072 x 128): 32 MiB. The core's parameter count does not include these buffers (transformers
    computes cos/sin on the fly). Scaling facts come from the catalogue's config.json; models outside
    the catalogue get the unscaled cache.
    """
    if spec.learned_position_embeddings or spec.model_type in _NO_ROPE:
        return 0
    from vramplan.model import catalog

    raw = catalog.catalogue().get(spec.name) or {}
    text = raw.get("text_config") or raw
    scaling = text.get("rope_scaling") or text.get("rope_parameters") or {}
    kind = str(scaling.get("rope_type") or scaling.get("type") or "default")
    factor = float(scaling.get("factor") or 1.0)
    max_pos = spec.max_position_embeddings
    if spec.mla is not None:
        rot = spec.mla.qk_rope_head_dim
    else:
        rot = int(spec.head_dim * float(text.get("partial_rotary_factor") or 1.0))
    if kind in ("linear", "dynamic"):
        length = int(max_pos * factor)
    elif kind in ("yarn", "deepseek_yarn"):
        length = int(int(scaling.get("original_max_position_embeddings") or max_pos) * factor)
    else:
        length = max_pos
    total = length * rot * element_bytes
    if spec.model_type.startswith("gemma3") and spec.uses_sliding_window:
        total += max_pos * rot * element_bytes
    return total


def mxfp4_moe_padding_bytes(spec: ModelSpec, precision: Any, tp: int, multiple: int = 128) -> int:
    """Extra bytes vLLM's MXFP4 MoE kernels allocate by padding expert tensors (all layers, one rank).

    vLLM ``quantization/mxfp4.py`` rounds the per-partition intermediate size up to a multiple of
    ``multiple`` (64 or 128 by version and kernel) and the hidden size up to 256 before creating the
    packed expert weights. gpt-oss at 128: hidden 2880 -> 3072, intermediate 2880 -> 2944 at TP 1,
    1440 -> 1536 at TP 2.
    Checked against 'Model loading took' in the dev set (gpt-oss-20b TP 1/2, gpt-oss-120b TP 1/4).
    """
    scheme = precision.scheme
    if spec.moe is None or scheme is None or not scheme.name.startswith("mxfp4"):
        return 0
    m = spec.moe
    n_moe = sum(1 for i in range(spec.num_layers) if spec.moe_layer(i))

    def expert_bytes(hidden: int, inter: int) -> int:
        return scheme.linear_bytes(2 * inter, hidden) + scheme.linear_bytes(hidden, inter)

    inter = -(-m.expert_intermediate_size // tp)
    padded = expert_bytes(-(-spec.hidden_size // 256) * 256, -(-inter // multiple) * multiple)
    return n_moe * m.num_experts * (padded - expert_bytes(spec.hidden_size, inter))


def _capture_sizes(seqs: int, tokens: int) -> int:
    """Number of CUDA-graph capture sizes: [1, 2, 4], 8..248 step 8, 256.. step 16 up to
    min(2 * max_num_seqs, 512) clipped to max_num_batched_tokens (§1.4)."""
    top = min(2 * seqs, 512, tokens)
    sizes = (
        [s for s in (1, 2, 4) if s <= top]
        + [s for s in range(8, 256, 8) if s <= top]
        + [s for s in range(256, top + 1, 16)]
    )
    return len(sizes)


def _groups(stage: _Stage, generation: str) -> tuple[int, list[tuple[KVLayerGroup, int]]]:
    """V1 KV cache groups: group size = smallest per-type layer count; each type split into
    ceil(layers / group_size) groups (phantom padding layers, §1.7). V0: one group of all layers,
    sliding layers provisioned for the whole context unless every layer slides."""
    groups = stage.groups
    if generation == "v0":
        if len(groups) > 1:
            merged = KVLayerGroup(
                "full", sum(g.layers for g in groups), groups[0].bytes_per_token_per_layer
            )
            return merged.layers, [(merged, 1)]
        return groups[0].layers, [(groups[0], 1)]
    size = min(g.layers for g in groups)
    return size, [(g, ceil(g.layers / size)) for g in groups]


def _request_blocks(g: KVLayerGroup, max_len: int, block: int, tokens: int) -> int:
    """Worst-case blocks one request needs in one group (``max_memory_usage_bytes``, §1.7)."""
    if g.kind == "sliding" and g.window:
        return ceil(min(g.window - 1 + tokens, max_len) / block) + 1
    return ceil(max_len / block)


def _uniform_type(groups: Sequence[KVLayerGroup]) -> bool:
    """Several layer layouts that all hold every token (no window, no compression)."""
    return len(groups) > 1 and all(
        g.kind in ("full", "mla", "indexer") and g.window is None and g.compress_ratio == 1
        for g in groups
    )


def _blocks(
    stage: _Stage, available: int, block: int, max_len: int, tokens: int, generation: str
) -> dict[str, Any]:
    if generation != "v0" and _uniform_type(stage.groups):
        # UniformTypeKVCacheSpecs: every layer needs the same token slots (full attention, MLA, DSA indexer)
        # but pages differ (DeepSeek-V3.2: 656 B latent + 132 B indexer keys): one group, one block = one
        # page of every layer, no padding to the largest page (kv_cache_utils.get_kv_cache_groups).
        block_bytes = sum(g.layers * int(g.bytes_per_token_per_layer * block) for g in stage.groups)
        return {
            "num_blocks": max(0, available // block_bytes) if available > 0 else 0,
            "available": available,
            "block_bytes": block_bytes,
            "num_groups": 1,
            "blocks_per_request": ceil(max_len / block),
            "stage": stage,
        }
    size, groups = _groups(stage, generation)
    page = {id(g): int(g.bytes_per_token_per_layer * block) for g, _ in groups}
    page_bytes = max(page.values())
    block_bytes = page_bytes * size
    num_blocks = max(0, available // block_bytes) if available > 0 else 0
    if generation == "v0":
        per_request = ceil(max_len / block)
    else:
        per_request = sum(n * _request_blocks(g, max_len, block, tokens) for g, n in groups)
    return {
        "num_blocks": int(num_blocks),
        "available": available,
        "block_bytes": block_bytes,
        "num_groups": sum(n for _, n in groups),
        "blocks_per_request": per_request,
        "stage": stage,
    }


def _hybrid_plans(
    spec: ModelSpec,
    settings: Mapping[str, Any],
    prof: VllmProfile,
    kv_element: Fraction,
    compute_dtype: str,
    tp: int,
    stages: Sequence[_Stage],
    draft_groups: Sequence[KVLayerGroup],
    prefix_caching: bool,
    cc: float | None,
    notes: list[str],
) -> list[HybridPagePlan] | None:
    """vLLM's unified pages for each pipeline stage of an attention + state hybrid (None for other models).

    The state dtypes follow ``--mamba-cache-dtype`` / ``--mamba-ssm-cache-dtype`` and the checkpoint's own
    (``state_dtypes``); MTP / draft attention layers with the same page join the attention groups; in
    "align" mode (prefix caching, 0.22+) each request holds two state pages plus one per speculative token.
    """
    if spec.state is None or not spec.attention_layers:
        return None
    dt = state_dtypes(
        spec,
        compute_dtype,
        settings.get("mamba_cache_dtype"),
        settings.get("mamba_ssm_cache_dtype"),
    )
    spec_cfg = speculative_config(settings)
    spec_tokens = 0
    if spec_cfg is not None and prof.hybrid_state_blocks == "align":
        spec_tokens = int(spec_cfg.get("num_speculative_tokens") or spec.mtp_layers or 1)
    align = prefix_caching and prof.hybrid_state_blocks == "align"
    checkpoint_blocks, checkpoint_alignment = _checkpoint_pages(spec, prof, cc, align, notes)
    attn_1 = attention_bytes_per_token(spec, kv_element, tp)
    extra = sum(g.layers for g in draft_groups if g.bytes_per_token_per_layer == attn_1)
    plans: list[HybridPagePlan] = []
    first = 0
    try:
        for i, stage in enumerate(stages):
            n_state = state_layers(spec, stage.layers, first)
            kinds = spec.layer_types[first : first + stage.layers]
            n_attention = sum(
                1 for t in kinds if t != "no_attention"
            )  # MLP-only layers hold neither
            plans.append(
                plan_hybrid_pages(
                    spec,
                    kv_element,
                    dt.conv_bytes,
                    dt.recurrent_bytes,
                    tp,
                    block_size=int(settings.get("block_size") or DEFAULT_BLOCK_SIZE_TOKENS),
                    prefix_caching=align,
                    num_speculative_tokens=spec_tokens,
                    checkpoint_blocks=checkpoint_blocks,
                    extra_attention_layers=extra if i == len(stages) - 1 else 0,
                    layer_counts=(n_attention, n_state),
                    checkpoint_alignment=checkpoint_alignment,
                )
            )
            first += stage.layers
    except ValueError as exc:  # e.g. Falcon-H1: attention and state in the same layer
        notes.append(f"hybrid paging not modelled ({exc}); KV counted as for attention-only models")
        return None
    plan = plans[-1]
    notes.append(f"state cache: {dt.note}")
    if plan.block_size > int(settings.get("block_size") or DEFAULT_BLOCK_SIZE_TOKENS):
        notes.append(
            f"Setting attention block size to {plan.block_size} tokens to ensure that attention page "
            "size is >= mamba page size (vLLM's own line)"
        )
    if plan.page_bytes != plan.state_page_bytes:
        notes.append(
            f"Padding mamba page size by {float(plan.padding_fraction) * 100:.2f}% to ensure that mamba "
            "page size and attention page size are exactly equal (vLLM's own line)"
        )
    mode = "align (prefix caching)" if align else "none"
    notes.append(
        f"hybrid KV cache: {plan.attention_groups} attention + {plan.state_groups} state group(s) of "
        f"{plan.group_size} layers sharing one pool; mamba cache mode {mode}: "
        f"{plan.state_blocks_per_request} state page(s) per request per state group"
        + (f" ({spec_tokens} for speculative tokens)" if spec_tokens else "")
        + "; GPU KV cache size = int(concurrency x max_model_len), not pool / bytes per token"
    )
    return plans


def _checkpoint_pages(
    spec: ModelSpec, prof: VllmProfile, cc: float | None, align: bool, notes: list[str]
) -> tuple[int, int]:
    """(prefill-checkpoint pages per request, block alignment) of vLLM 0.33+ in align mode."""
    if not (align and prof.mamba_checkpoint_pages and spec.state is not None):
        return 0, 1
    if spec.state.kind == "mamba2":
        return 1, 1
    if spec.state.kind == "gated_deltanet":
        if cc == 9.0:
            return 1, FLASHINFER_GDN_CHECKPOINT_TOKENS
        if cc is not None and cc >= 10.0:
            notes.append(
                "FlashInfer's GDN prefill (one more state page per request) needs CUDA 13 on Blackwell: "
                "counted as not in use"
            )
    return 0, 1


def _hybrid_blocks(
    plan: HybridPagePlan, stage: _Stage, available: int, max_len: int
) -> dict[str, Any]:
    """``_blocks`` for a hybrid stage: one pool of pages shared by attention and state groups."""
    cap = hybrid_capacity(plan, available, max_len)
    return {
        "num_blocks": cap.num_blocks if available > 0 else 0,
        "available": available,
        "block_bytes": plan.block_bytes,
        "num_groups": plan.attention_groups + plan.state_groups,
        "blocks_per_request": cap.blocks_per_request,
        "stage": stage,
        "plan": plan,
    }


def _hybrid_errors(
    plan: HybridPagePlan,
    prof: VllmProfile,
    available: int,
    max_len: int,
    seqs: int,
    num_blocks: int,
    eager: bool,
) -> list[str]:
    """vLLM's two startup failures for hybrids: one request does not fit (``check_enough_kv_cache_memory``,
    summed per layer), or more sequences than pool blocks under full CUDA graphs (``CompilationConfig``)."""
    need = plan.needed_bytes(max_len)
    if need > available:
        return [
            _too_long_error(
                max_len, need, available, plan.estimated_max_model_len(available, max_len)
            )
        ]
    if prof.mamba_seqs_check and not eager and seqs > num_blocks:
        return [
            f"max_num_seqs ({seqs}) exceeds available Mamba cache blocks ({num_blocks}). Each decode "
            "sequence requires one Mamba cache block, so CUDA graph capture cannot proceed. Please lower "
            f"max_num_seqs to at most {num_blocks} or increase gpu_memory_utilization."
        ]
    return []


def _kv_bytes_per_token(stage: _Stage, plan: HybridPagePlan | None) -> int:
    """KV bytes one token adds on one rank over all its layers (indexer, compressed and draft layers
    included; a compressed cache adds 1/ratio of an entry per token)."""
    if plan is not None:
        return plan.attn_bytes_per_token * plan.attention_layers
    total = sum(
        (g.layers * g.bytes_per_token_per_layer / g.compress_ratio for g in stage.groups),
        Fraction(0),
    )
    return ceil(total)


def _hybrid_extra(plan: HybridPagePlan) -> dict[str, Any]:
    return {
        "hybrid_block_size": plan.block_size,
        "hybrid_page_bytes": plan.page_bytes,
        "hybrid_group_size": plan.group_size,
        "state_page_bytes_unpadded": plan.state_page_bytes,
        "state_pages_per_request": plan.state_blocks_per_request,
        "mamba_padding_percent": round(float(plan.padding_fraction) * 100, 2),
    }


def _dsv4_plans(
    spec: ModelSpec,
    settings: Mapping[str, Any],
    kv_dtype: str,
    splits: Sequence[int],
    notes: list[str],
) -> list[Dsv4Plan]:
    """DeepSeek-V4's grouped pool per pipeline stage (memory/vllm_dsv4_pages.py)."""
    block = int(settings.get("block_size") or DSV4_BLOCK_TOKENS)
    firsts = [sum(splits[:i]) for i in range(len(splits))]
    plans = [plan_dsv4_pages(spec, block, n, first) for n, first in zip(splits, firsts)]
    if "8" not in kv_dtype:
        notes.append(
            f"DeepSeek-V4 KV counted in vLLM's fp8_ds_mla layout (584 B per entry), not {kv_dtype}: the "
            "sliding-window cache only takes it"
        )
    notes.append(
        "DeepSeek-V4 pool as vLLM 0.22 groups it: sliding-window, compressed, indexer and compressor-state "
        f"caches in {len(plans[-1].groups)} groups of {plans[-1].num_layer_tuples} layer tuples "
        f"({plans[-1].tuple_bytes:,} B each); the sliding groups charge window + max_num_batched_tokens"
    )
    return plans


def _dsv4_blocks(
    plan: Dsv4Plan, stage: _Stage, available: int, max_len: int, batched: int
) -> dict[str, Any]:
    """``_blocks`` for DeepSeek-V4: ``available // (tuple bytes x tuples)`` blocks."""
    return {
        "num_blocks": max(0, available) // plan.block_bytes,
        "available": available,
        "block_bytes": plan.block_bytes,
        "num_groups": len(plan.groups),
        "blocks_per_request": plan.blocks_per_request(max_len, batched),
        "stage": stage,
        "dsv4": plan,
    }


def _dsv4_errors(plan: Dsv4Plan, available: int, max_len: int, batched: int) -> list[str]:
    need = plan.needed_bytes(max_len, batched)
    if need <= available:
        return []
    fit = plan.estimated_max_model_len(available, batched, max_len)
    return [_too_long_error(max_len, need, available, fit)]


def _too_long_error(max_len: int, need: int, available: int, fit: int) -> str:
    """vLLM's ``_check_enough_kv_cache_memory`` text (2026 wording)."""
    estimate = (
        f"Based on the available memory, the estimated maximum model length is {fit}. "
        if fit > 0
        else ""
    )
    return (
        f"To serve at least one request with the model's max seq len ({max_len}), ({need / GIB:.2f} GiB KV "
        f"cache is needed, which is larger than the available KV cache memory ({available / GIB:.2f} GiB). "
        f"{estimate}Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when "
        "initializing the engine."
    )


def largest_fitting_len(
    stage: _Stage, available: int, block: int, tokens: int, generation: str, upper: int
) -> int:
    """Largest max_model_len whose worst-case request fits the pool, by bisection (as vLLM does)."""
    lo, hi = 0, upper
    while lo < hi:
        mid = (lo + hi + 1) // 2
        b = _blocks(stage, available, block, mid, tokens, generation)
        if b["num_blocks"] >= b["blocks_per_request"]:
            lo = mid
        else:
            hi = mid - 1
    return lo


# ------------------------------------------------------------------------------------------ fixes


def suggest_fixes(
    spec: ModelSpec,
    settings: Mapping[str, Any],
    gpu: GPU,
    engine_version: str | None,
    usage_context: str,
    hint_quant: str | None,
    failed: EnginePrediction,
) -> list[Fix]:
    """The smallest single changes that make vLLM start; each one re-checked by a new prediction."""
    out: list[Fix] = []

    def starts(**changes: Any) -> bool:
        s = {**settings, **changes}
        try:
            return _predict(
                spec,
                s,
                gpu,
                engine_version,
                usage_context,
                hint_quant if "quantization" not in changes else None,
                [],
            ).starts
        except InputError:
            return False

    max_len = failed.settings["max_model_len"]
    if failed.available_kv_cache_gib and failed.available_kv_cache_gib > 0:
        lo, hi = 0, max_len
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if starts(max_model_len=mid):
                lo = mid
            else:
                hi = mid - 1
        if lo >= 1:
            out.append(
                Fix("max_model_len", lo, "the longest context whose request fits the KV cache")
            )
    blocks, seqs = failed.gpu_blocks or 0, failed.settings["max_num_seqs"]
    if 0 < blocks < seqs and starts(max_num_seqs=blocks):
        out.append(
            Fix(
                "max_num_seqs",
                blocks,
                "each running sequence of a hybrid model needs its own block",
            )
        )
    util = failed.settings["gpu_memory_utilization"]
    for step in range(int(round(util * 100)) + 1, 100):
        if starts(gpu_memory_utilization=step / 100):
            out.append(
                Fix(
                    "gpu_memory_utilization", step / 100, "the smallest share of memory that starts"
                )
            )
            break
    if failed.settings["kv_cache_dtype"] not in (
        "fp8",
        "fp8_e4m3",
        "fp8_e5m2",
        "float8_e4m3",
        "float8_e5m2",
    ) and starts(kv_cache_dtype="fp8"):
        out.append(Fix("kv_cache_dtype", "fp8", "an fp8 KV cache halves its bytes per token"))
    tp = failed.settings["tensor_parallel_size"]
    for new_tp in (tp * 2, tp * 4):
        if spec.num_heads % new_tp == 0 and starts(tensor_parallel_size=new_tp):
            out.append(Fix("tensor_parallel_size", new_tp, "shard over more GPUs"))
            break
    if not spec.quantization_config and not settings.get("quantization") and not hint_quant:
        for q, label in (
            ("fp8", "serve an FP8 checkpoint (or quantize on load)"),
            ("awq", "serve a 4-bit AWQ/GPTQ checkpoint"),
        ):
            if starts(quantization=q):
                out.append(Fix("quantization", q, label))
                break
    return out


# ------------------------------------------------------------------------------------------ models


def resolve_model_name(name: str) -> tuple[ModelSpec, str | None, str | None]:
    """A served model name's catalogue spec and implied quantization (model.names, shared by all engines)."""
    from vramplan.model.names import resolve_served_name

    served = resolve_served_name(name)
    return served.loaded.spec, served.quantization, served.note


# ------------------------------------------------------------------------------------------ engine


class VllmEngine:
    """vLLM as an :class:`~vramplan.engines.base.Engine`: scenario in, startup figures and KV pool out."""

    name = ENGINE

    def settings(self, scenario: Scenario) -> dict[str, Any]:
        """The scenario under vLLM's flag names; unset fields are left to vLLM's version defaults."""
        e, h, p = scenario.engine, scenario.hardware, scenario.precision
        s: dict[str, Any] = {
            "model": scenario.model if isinstance(scenario.model, str) else scenario.model.name,
            "tensor_parallel_size": h.tp,
            "pipeline_parallel_size": h.pp,
            "dtype": p.dtype,
            "quantization": p.quantization,
            "kv_cache_dtype": p.kv_cache_dtype,
            "max_model_len": e.max_model_len,
            "gpu_memory_utilization": e.gpu_memory_utilization,
            "max_num_seqs": e.max_num_seqs,
            "max_num_batched_tokens": e.max_num_batched_tokens,
            "block_size": e.block_size,
            "enforce_eager": e.enforce_eager or None,
        }
        return {k: v for k, v in s.items() if v is not None}

    def predict(self, scenario: Scenario, fixes: bool = True) -> EnginePrediction:
        spec = scenario.model if isinstance(scenario.model, ModelSpec) else None
        return predict_vllm(
            self.settings(scenario),
            gpu=scenario.hardware.gpu,
            gpu_memory=scenario.hardware.gpu_memory,
            engine_version=scenario.engine.engine_version,
            usage_context=scenario.engine.usage_context,
            spec=spec,
            fixes=fixes,
        )

    def kv_pool(self, scenario: Scenario) -> KVPool:
        pred = self.predict(scenario, fixes=False)
        return pool_from_prediction(pred, pred.extra["gpu_memory_bytes"])

    def launch(self, scenario: Scenario, model_id: str) -> list[str]:
        """``vllm serve MODEL --flag value ...`` for the scenario (vLLM's flags are the field flags)."""
        from vramplan.scenario_fields import to_argv

        s = self.settings(scenario)
        s.pop("model", None)
        if s.get("quantization") == "fp4":
            s.pop("quantization")  # an NVFP4 checkpoint carries its own quantization config
        return ["vllm", "serve", model_id, *to_argv(s)]


ENGINE_MODEL = VllmEngine()
