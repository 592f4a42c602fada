"""SGLang's pool once sized: the constants and pure formulas of its startup, and the prediction built from a
resolved run (pool allocation, running requests, remainder checks, HiCache host memory, disaggregation notes).

``sglang.py`` reads the flags and resolves the budget; this module turns that into the figures SGLang logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from math import floor
from typing import Any

from vramplan.engines.base import GIB, EnginePrediction
from vramplan.engines.sglang_features import (
    DEFAULT_MAX_LORAS_PER_BATCH,
    Speculative,
    hicache_host_bytes,
    lora_pool_bytes,
    lora_target_modules,
)
from vramplan.engines.sglang_hybrid import MambaPool
from vramplan.engines.sglang_profiles import SGLangProfile
from vramplan.errors import InputError
from vramplan.memory.activations import ActivationAssumptions, forward_peak_bytes, logits_bytes
from vramplan.memory.kv_cache import KVLayerGroup, kv_layer_groups
from vramplan.memory.overhead import CUDA_CONTEXT_BYTES
from vramplan.model.spec import ModelSpec
from vramplan.precision import DTYPE_BYTES
from vramplan.scenario import Fix

MIB = 1024**2

#: CUDA context + allocator state before weights load, per GPU (memory.overhead.CUDA_CONTEXT_BYTES).
CUDA_CONTEXT_GIB = CUDA_CONTEXT_BYTES["sglang"] / GIB
#: NCCL communicator buffers allocated at distributed init when TP/PP > 1 (calibrate per NCCL version).
NCCL_INIT_GIB = 0.3
#: Memory allocated during weight loading beyond the weights themselves (docs log: 15.09 GiB used for
#: 14.96 GiB of Llama-3.1-8B bf16 weights; README log 15.02 GiB).
LOAD_EXTRA_GIB = 0.1
#: Fixed part of the CUDA-graph pool (README log: 0.11 GiB for batch sizes 1-8 of Llama-3.1-8B).
CUDA_GRAPH_FIXED_GIB = 0.1
#: Attention-backend workspace (historically a 384 MiB FlashInfer float workspace per GPU).
ATTN_WORKSPACE_GIB = 384 / 1024
#: req_to_token entries are int32, one row per request of context_len + this many slots.
REQ_TO_TOKEN_EXTRA_SLOTS = 4
#: Hybrid sliding-window split: swa_tokens = ratio x full_tokens (``swa_full_tokens_ratio`` default).
SWA_FULL_TOKENS_RATIO = 0.8
#: Live fp32 copies of the decode logits (SGLang samples from one fp32 logits tensor per batch).
SAMPLER_LOGIT_COPIES = 1.0
#: Default page size (token-granular pool).
DEFAULT_PAGE_SIZE = 1
#: DeepSeek sparse attention runs on 64-token pages (FlashMLA; server_args.py DSA branch).
DSA_PAGE_SIZE = 64


def cell_size(spec: ModelSpec, element: Fraction, attn_tp: int) -> int:
    """Bytes per token of the KV pool on one rank (``get_cell_size_per_token``): GQA heads split by the
    attention TP size (max(1, H_kv // tp)), MLA latent replicated on every rank."""
    return int(
        sum(g.layers * g.bytes_per_token_per_layer for g in kv_layer_groups(spec, element, attn_tp))
    )


def max_total_tokens(kv_bytes: float, cell: int, page_size: int, cap: int | None) -> int:
    """``floor(rest / cell_size)``, clipped to --max-total-tokens, rounded down to whole pages."""
    tokens = floor(kv_bytes / cell)
    if cap is not None and tokens > cap:
        tokens = cap
    return tokens // page_size * page_size if tokens > 0 else tokens


def swa_split(
    total_tokens: int, n_full: int, n_swa: int, ratio: float, page_size: int
) -> tuple[int, int]:
    """Hybrid SWA: ``full x n_full + swa x n_swa = total x n_layers`` with ``swa = ratio x full``."""
    n_layers = n_full + n_swa
    full = int(total_tokens * n_layers / (n_full + ratio * n_swa))
    swa = int(full * ratio)
    return full // page_size * page_size, swa // page_size * page_size


def default_max_running_requests(tokens: int, context_len: int, cap: int) -> int:
    """``min(max(int(tokens / context_len * 512), 2048), cap)`` (model_runner.py)."""
    return min(max(int(tokens / context_len * 512), 2048), cap)


def capture_batch_sizes(max_bs: int) -> list[int]:
    """CUDA-graph batch sizes: [1,2,4,8,12] + 16..256 step 8 + 272..<512 step 16 + 512.. step 32."""
    sizes = (
        [1, 2, 4, 8, 12]
        + list(range(16, 257, 8))
        + list(range(272, 512, 16))
        + list(range(512, max_bs + 1, 32))
    )
    return [b for b in sizes if b <= max_bs] or [1]


def gib(n: float) -> float:
    return n / GIB


def _lora(settings: Mapping[str, Any], spec: ModelSpec, compute_dtype: str, tp: int) -> int:
    """Bytes of the LoRA pool on one rank (0 without --enable-lora)."""
    if not settings.get("enable_lora"):
        return 0
    rank = settings.get("max_lora_rank")
    if not rank:
        raise InputError(
            "--enable-lora needs --max-lora-rank N: SGLang infers it from the --lora-paths adapters, "
            "which vramplan does not read"
        )
    loras = int(settings.get("max_loras_per_batch") or DEFAULT_MAX_LORAS_PER_BATCH)
    modules = lora_target_modules(settings.get("lora_target_modules"))
    element = int(DTYPE_BYTES[compute_dtype])
    return lora_pool_bytes(spec, loras, int(rank), element, tp, modules)


@dataclass
class _Run:
    """Everything predict_sglang resolved, handed to ``_result`` in one piece."""

    version: str
    profile: SGLangProfile
    spec: ModelSpec
    r: Any
    settings: dict[str, Any]
    tp: int
    pp: int
    dp: int
    attn_tp: int
    mfs: float
    chunk: int
    graph_bs: int
    page: int
    context_len: int
    cap: Any
    role: str
    w_gib: float
    rest_gib: float
    f0: float
    f1: float
    tokens: int
    groups: tuple[KVLayerGroup, ...]
    cell_alloc: int
    draft_kv: int
    draft_in_budget: bool
    draft_weights: int
    spec_mem: Speculative | None
    pool: MambaPool | None
    state: int
    disable_graph: bool
    errors: list[str]
    fixes: list[Fix]
    assumptions: list[str]
    extra: dict[str, Any]


def _resolved(run: _Run) -> dict[str, Any]:
    s = run.settings
    return {
        "model_path": s.get("model_path"),
        "tp_size": run.tp,
        "pp_size": run.pp,
        "dp_size": run.dp,
        "enable_dp_attention": run.attn_tp != run.tp,
        "mem_fraction_static": run.mfs,
        "chunked_prefill_size": run.chunk,
        "cuda_graph_max_bs": run.graph_bs,
        "page_size": run.page,
        "context_length": run.context_len,
        "max_total_tokens": run.cap,
        "kv_cache_dtype": run.r.kv_dtype,
        "dtype": run.r.precision.compute_dtype,
        "quantization": run.r.precision.label,
        "disable_cuda_graph": run.disable_graph,
        "disaggregation_mode": None if run.role == "null" else run.role,
        "speculative_algorithm": run.spec_mem.algorithm if run.spec_mem else None,
        "enable_lora": bool(s.get("enable_lora")),
        "enable_hierarchical_cache": bool(s.get("enable_hierarchical_cache")),
    }


def _result(run: _Run, started: bool) -> EnginePrediction:
    errors, fixes, extra, assumptions = run.errors, run.fixes, run.extra, run.assumptions
    spec, page, tokens = run.spec, run.page, run.tokens
    refused = bool(errors) and started  # errors on entry stop the start (capabilities)
    resolved = _resolved(run)
    kv_per_token = run.cell_alloc + (run.draft_kv if run.spec_mem else 0)
    if not started:
        return EnginePrediction(
            "sglang",
            run.version,
            weights_gib=run.w_gib,
            available_kv_cache_gib=run.rest_gib if run.f1 > 0 else None,
            kv_cache_tokens=max(tokens, 0),
            kv_bytes_per_token=kv_per_token,
            state_bytes_per_sequence=run.state,
            starts=False,
            errors=tuple(errors),
            fixes=tuple(fixes),
            assumptions=tuple(assumptions),
            settings=resolved,
            extra=extra,
        )
    # Pool: size + page_size slots (a padding page); K and V separately for the log's "K size"/"V size".
    groups = run.groups
    n_swa = sum(g.layers for g in groups if g.kind == "sliding")
    n_full = sum(g.layers for g in groups if g.kind not in ("sliding", "indexer"))
    full_tokens = tokens
    if n_swa and n_full:
        full_tokens, swa_tokens = swa_split(tokens, n_full, n_swa, SWA_FULL_TOKENS_RATIO, page)
        extra.update(full_tokens=full_tokens, swa_tokens=swa_tokens)
        kv_alloc = sum(
            float(g.layers * g.bytes_per_token_per_layer)
            * ((swa_tokens if g.kind == "sliding" else full_tokens) + page)
            for g in groups
        )
        assumptions.append(
            f"hybrid SWA pool split with swa_full_tokens_ratio {SWA_FULL_TOKENS_RATIO}"
        )
    else:
        kv_alloc = float(run.cell_alloc) * (tokens + page)
    if spec.mla is None:
        extra["k_size_gb"] = extra["v_size_gb"] = round(kv_alloc / 2 / GIB, 2)
    else:
        indexer = float(
            sum(g.layers * g.bytes_per_token_per_layer for g in groups if g.kind == "indexer")
        ) * (tokens + page)
        extra["kv_size_gb"] = round((kv_alloc - indexer) / GIB, 2)
        if indexer:
            extra["indexer_size_gb"] = round(indexer / GIB, 2)
    draft_alloc = float(run.draft_kv) * (tokens + page)
    if run.spec_mem and run.draft_kv:
        extra["draft_kv_gib"] = round(draft_alloc / GIB, 3)
    outside = 0.0  # the draft worker's share taken from outside mem_fraction_static (before 0.5.15)
    if run.draft_in_budget:
        kv_alloc += draft_alloc
    elif run.spec_mem:
        outside = draft_alloc + run.draft_weights
    max_running = _max_running(run, full_tokens)
    if max_running <= 0:
        errors.append(
            "Hybrid (mamba/linear-attention) state cache is too small to serve any requests: "
            f"max_mamba_cache_size={run.pool.slots if run.pool else 0}"
        )
        fixes.append(
            Fix("mamba_full_memory_ratio", 1.5, "give the state pool a larger share of the rest")
        )
        return replace(_result(replace(run, tokens=0), started=False), extra=extra)
    req_to_token = max_running * (run.context_len + REQ_TO_TOKEN_EXTRA_SLOTS) * 4
    graph_gib = 0.0
    decode_graphs = not run.disable_graph and run.role != "prefill"
    if decode_graphs:
        largest = min(run.graph_bs, max_running)
        graph_gib = CUDA_GRAPH_FIXED_GIB + gib(forward_peak_bytes(spec, largest, run.tp))
    act_tokens = run.chunk
    if run.role == "decode":
        draft_tokens = run.spec_mem.draft_tokens if run.spec_mem else 1
        act_tokens = min(run.chunk, max_running * draft_tokens)
    act = max(
        forward_peak_bytes(spec, act_tokens, run.tp),
        logits_bytes(
            spec,
            min(act_tokens, max_running),
            ActivationAssumptions(sampler_logit_copies=SAMPLER_LOGIT_COPIES),
        ),
    )
    remainder = run.f1 - kv_alloc / GIB - (run.pool.pool_bytes / GIB if run.pool else 0.0)
    dynamic = gib(req_to_token) + graph_gib + gib(act) + ATTN_WORKSPACE_GIB + gib(outside)
    extra.update(
        avail_mem_after_kv_pool_gb=round(remainder - gib(req_to_token), 2),
        max_running_requests=max_running,
        req_to_token_gib=round(gib(req_to_token), 4),
        dynamic_needs_gib=round(dynamic, 3),
        remainder_gib=round(remainder, 3),
        cuda_graph_bs=capture_batch_sizes(run.graph_bs) if decode_graphs else [],
        oom_risk=dynamic > remainder,
    )
    if outside:
        assumptions.append(
            f"SGLang {run.version} loads the draft worker after sizing the pool: its weights and KV "
            f"({gib(outside):.2f} GiB) come out of the memory outside mem_fraction_static"
        )
    _hicache(run, tokens, extra, assumptions)
    if run.role != "null":
        assumptions.append(_ROLE_NOTES[run.role])
    if dynamic > remainder:
        errors.append(
            f"OOM risk at runtime: req_to_token {gib(req_to_token):.2f} + CUDA graphs {graph_gib:.2f} + "
            f"prefill activations {gib(act):.2f} + workspace {ATTN_WORKSPACE_GIB:.2f} GiB"
            + (f" + draft {gib(outside):.2f} GiB" if outside else "")
            + f" exceed the {remainder:.2f} GiB left outside mem_fraction_static"
        )
        lowered = max(0.5, round(run.mfs - (dynamic - remainder) / run.f0 - 0.01, 2))
        fixes.append(
            Fix("mem_fraction_static", lowered, "leave room for the memory SGLang allocates later")
        )
        if run.chunk > 2048:
            fixes.append(Fix("chunked_prefill_size", run.chunk // 2, "halve prefill activations"))
        if decode_graphs and run.graph_bs > 8:
            fixes.append(Fix("cuda_graph_max_bs", run.graph_bs // 2, "capture smaller CUDA graphs"))
    return EnginePrediction(
        "sglang",
        run.version,
        weights_gib=run.w_gib,
        non_torch_gib=None,
        activation_peak_gib=gib(act),
        cuda_graph_gib=graph_gib if decode_graphs else None,
        available_kv_cache_gib=run.rest_gib,
        kv_cache_tokens=full_tokens,
        max_concurrency=full_tokens / run.context_len,
        gpu_blocks=full_tokens // page,
        kv_bytes_per_token=kv_per_token,
        state_bytes_per_sequence=run.state,
        starts=not refused,
        errors=tuple(errors),
        fixes=tuple(fixes),
        assumptions=tuple(assumptions),
        settings={**resolved, "max_running_requests": max_running},
        extra=extra,
    )


def _max_running(run: _Run, full_tokens: int) -> int:
    """--max-running-requests, else the default rule; capped by the mamba slots (3 per request).

    0.5.23 ``resolve_max_num_reqs`` (kv_cache_configurator.py:3119-3132): per DP-attention worker
    ``min(given // attn_dp, tokens // 2)``, default ``min(estimate, tokens // 2)``.
    """
    given = run.settings.get("max_running_requests")
    profile = run.profile
    if given is not None:
        value = int(given)
        if profile.running_capped_by_half_pool:
            attn_dp = run.tp // run.attn_tp
            value = min(max(1, value // attn_dp), full_tokens // 2)
    else:
        value = (
            default_max_running_requests(full_tokens, run.context_len, profile.max_running_cap)
            + profile.req_pool_extra
        )
        if profile.running_capped_by_half_pool:
            value = min(value, full_tokens // 2)
    if run.pool is not None:
        value = min(value, run.pool.slots // profile.mamba_slots_per_request)
    return value


def _hicache(run: _Run, tokens: int, extra: dict[str, Any], assumptions: list[str]) -> None:
    """Host memory of --enable-hierarchical-cache (GPU unchanged)."""
    s = run.settings
    if not s.get("enable_hierarchical_cache"):
        return
    ratio = s.get("hicache_ratio")
    host_tokens, host_bytes = hicache_host_bytes(
        tokens,
        run.cell_alloc,
        run.page,
        ratio=float(ratio) if ratio is not None else run.profile.hicache_ratio,
        size_gb=float(s["hicache_size"]) if s.get("hicache_size") else None,
    )
    ranks = run.tp * run.pp * (1 if run.attn_tp != run.tp else run.dp)
    extra.update(
        hicache_host_tokens=host_tokens,
        hicache_host_per_gpu_gib=round(gib(host_bytes), 2),
        hicache_host_total_gib=round(gib(host_bytes * ranks), 2),
    )
    assumptions.append(
        f"HiCache: {host_tokens:,} tokens in pinned host memory per GPU ({gib(host_bytes):.2f} GiB; "
        f"{gib(host_bytes * ranks):.2f} GiB over {ranks} GPU(s)); GPU memory unchanged"
    )


#: What each disaggregation role changes (memory_hook.py:305-400 of 0.5.23; server_args.py:3623-3670 of 0.5.15).
_ROLE_NOTES = {
    "prefill": "disaggregated prefill: no decode CUDA graphs captured or reserved; prefill graphs and "
    "activations as usual; the KV pool is sized the same way",
    "decode": "disaggregated decode: activation reserve from running requests x draft tokens (min 2048) "
    "instead of the prefill chunk; no prefill CUDA graphs; the KV pool is sized the same way",
}
DISAGGREGATION_MODES = ("null", "prefill", "decode")
