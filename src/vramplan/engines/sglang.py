"""SGLang startup memory: ``mem_fraction_static`` of free memory holds weights + KV pool.

Why a separate model from vLLM: SGLang budgets against the memory *free at startup* (``F0``, after the
CUDA context and other processes), sizes a token-granular pool (page size 1 by default), and leaves the
``(1 - m) * F0`` remainder for everything dynamic (req_to_token table, CUDA graphs, prefill activations),
which is where SGLang OOMs when the remainder is too small. Source: design/engine-memory.md section 2
(``model_runner.py`` ``profile_max_num_token``, ``server_args.py`` ``_handle_gpu_memory_settings``).

SGLang prints "GB" computed as bytes / 2**30; every figure here is GiB, and the ``*_gb`` extra keys use
the log's names with GiB values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from math import floor
from typing import TYPE_CHECKING, Any

from vramplan.capabilities import refusals
from vramplan.engines.base import (
    GIB,
    EnginePrediction,
    KVPool,
    VersionTable,
    settings_for_engine,
)
from vramplan.errors import InputError
from vramplan.hardware import GPU, gpu_from
from vramplan.memory.activations import ActivationAssumptions, forward_peak_bytes, logits_bytes
from vramplan.memory.kv_cache import kv_layer_groups
from vramplan.memory.overhead import CUDA_CONTEXT_BYTES
from vramplan.memory.weights import weight_bytes
from vramplan.model.load import LoadedModel
from vramplan.model.spec import ModelSpec
from vramplan.units import check_number_text

if TYPE_CHECKING:
    from vramplan.scenario import Scenario

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


@dataclass(frozen=True)
class SGLangProfile:
    """Defaults that changed between SGLang releases."""

    #: "tp_table": mem_fraction_static fixed by TP size; "reserved": current reserved-memory formula.
    mem_fraction_rule: str
    tp_table: tuple[tuple[int, float], ...] = ()
    #: max_running_requests cap in the default rule (older releases 5120, current 4096).
    max_running_cap: int = 4096
    #: Older releases sized the req_to_token pool max_num_reqs + 1 and logged that as max_running_requests.
    req_pool_extra: int = 0


_OLD_TP = ((16, 0.79), (8, 0.83), (4, 0.85), (2, 0.87), (1, 0.88))
_TP = ((16, 0.79), (8, 0.81), (4, 0.85), (2, 0.87), (1, 0.88))
#: Release boundaries are approximate ([verify]); the docs notebook (~0.4.1) logs 2049 running requests,
#: a ~0.4.9 log 2048; the reserved-memory rule appears in the 0.5 line.
VERSIONS: VersionTable[SGLangProfile] = VersionTable(
    "sglang",
    {
        "0.3.0": SGLangProfile(
            mem_fraction_rule="tp_table", tp_table=_OLD_TP, max_running_cap=5120, req_pool_extra=1
        ),
        "0.4.0": SGLangProfile(
            mem_fraction_rule="tp_table", tp_table=_TP, max_running_cap=4096, req_pool_extra=1
        ),
        "0.4.5": SGLangProfile(
            mem_fraction_rule="tp_table", tp_table=_TP, max_running_cap=4096, req_pool_extra=0
        ),
        "0.5.0": SGLangProfile(
            mem_fraction_rule="reserved", tp_table=_TP, max_running_cap=4096, req_pool_extra=0
        ),
    },
)

#: Tiers of ``_handle_gpu_memory_settings``: (upper bound GiB, chunked_prefill_size, graph bs tp<4, tp>=4).
RESERVED_TIERS: tuple[tuple[float, int, int, int], ...] = (
    (20, 2048, 8, 8),
    (35, 2048, 24, 80),
    (60, 4096, 32, 160),
    (90, 8192, 256, 512),
    (160, 8192, 256, 512),
    (float("inf"), 16384, 512, 512),
)
#: Older releases: small GPUs (< 25 GiB) got chunked prefill 2048 and graphs to bs 8, else 8192 / 160.
OLD_SMALL_GPU_GIB = 25


# ---------------------------------------------------------------------------------------- pure formulas
def default_mem_fraction_static(
    profile: SGLangProfile,
    gpu_mem_mib: float,
    tp: int,
    pp: int,
    chunked_prefill_size: int,
    cuda_graph_max_bs: int,
    dp_attention: int = 0,
) -> float:
    """Default ``mem_fraction_static`` (server_args.py, design note 2.2)."""
    if profile.mem_fraction_rule == "tp_table":
        for min_tp, value in profile.tp_table:
            if tp >= min_tp:
                return value
        return profile.tp_table[-1][1]
    # reserved (MB) = 512 + 1.5 max(chunk, 2048) + 2 graph_bs + 1024 tp pp / 8 [+ DP-attention terms]
    reserved = (
        512 + 1.5 * max(chunked_prefill_size, 2048) + 2 * cuda_graph_max_bs + 1024 * tp * pp / 8
    )
    if dp_attention > 1:
        reserved += 3 * cuda_graph_max_bs * dp_attention
        if cuda_graph_max_bs > 300:
            reserved += 1.5 * cuda_graph_max_bs * dp_attention
    if gpu_mem_mib > 60 * 1024:
        reserved = max(reserved, 10 * 1024)
    return round((gpu_mem_mib - reserved) / gpu_mem_mib, 3)


def default_chunk_and_graph_bs(
    profile: SGLangProfile, gpu_mem_gib: float, tp: int
) -> tuple[int, int]:
    """(chunked_prefill_size, cuda_graph_max_bs) defaults by GPU memory tier."""
    if profile.mem_fraction_rule == "tp_table":
        return (2048, 8) if gpu_mem_gib < OLD_SMALL_GPU_GIB else (8192, 160)
    for bound, chunk, bs_small, bs_large in RESERVED_TIERS:
        if gpu_mem_gib < bound:
            return chunk, bs_small if tp < 4 else bs_large
    raise AssertionError("unreachable: last tier is unbounded")


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


# ---------------------------------------------------------------------------------------- settings
#: Flag -> settings key. Both dashes and underscores are accepted (the log's ServerArgs uses underscores).
FLAGS: dict[str, str] = {
    "--model-path": "model_path",
    "--model": "model_path",
    "--tp-size": "tp_size",
    "--tp": "tp_size",
    "--dp-size": "dp_size",
    "--dp": "dp_size",
    "--pp-size": "pp_size",
    "--mem-fraction-static": "mem_fraction_static",
    "--context-length": "context_length",
    "--max-running-requests": "max_running_requests",
    "--max-total-tokens": "max_total_tokens",
    "--chunked-prefill-size": "chunked_prefill_size",
    "--kv-cache-dtype": "kv_cache_dtype",
    "--dtype": "dtype",
    "--quantization": "quantization",
    "--page-size": "page_size",
    "--cuda-graph-max-bs": "cuda_graph_max_bs",
}
BOOL_FLAGS = {
    "--disable-cuda-graph": "disable_cuda_graph",
    "--enable-dp-attention": "enable_dp_attention",
}
_INT_KEYS = {
    "tp_size",
    "dp_size",
    "pp_size",
    "context_length",
    "max_running_requests",
    "max_total_tokens",
    "chunked_prefill_size",
    "page_size",
    "cuda_graph_max_bs",
}


def parse_argv(
    argv: Sequence[str],
    flags: Mapping[str, str],
    bool_flags: Mapping[str, str],
    int_keys: set[str],
    float_keys: set[str] | frozenset[str] = frozenset(),
) -> tuple[dict[str, Any], list[str]]:
    """Engine command-line flags -> (settings, ignored flags), through the shared ``scan_argv``."""
    from functools import partial

    from vramplan.engines.base import Flag, scan_argv

    names: dict[str, list[str]] = {}
    for flag, key in flags.items():
        names.setdefault(key, []).append(flag)
    table = [
        Flag(tuple(fl), key, partial(_read, key, int_keys=int_keys, float_keys=float_keys))
        for key, fl in names.items()
    ] + [Flag((flag,), key) for flag, key in bool_flags.items()]
    scanned = scan_argv(argv, table, underscores=True)
    return scanned.settings, scanned.ignored


def _read(
    key: str, value: str, flag: str, *, int_keys: set[str], float_keys: set[str] | frozenset[str]
) -> Any:
    return _convert(key, value, flag, int_keys, float_keys)


def _convert(
    key: str, value: str, flag: str, int_keys: set[str], float_keys: set[str] | frozenset[str]
) -> Any:
    if key in int_keys or key in float_keys:
        check_number_text(str(value), flag)  # one-line refusal of a 5,000-digit value
    try:
        if key in int_keys:
            return int(float(value))
        if key in float_keys or key == "mem_fraction_static":
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(value)
            return number
    except (ValueError, OverflowError):  # OverflowError: int(float("inf")), e.g. --tp-size inf
        raise InputError(f"{flag} expects a number, got {value!r}") from None
    return value


# ---------------------------------------------------------------------------------------- model names
def resolve_model(ref: str) -> tuple[LoadedModel, str | None, list[str]]:
    """Load a model, mapping ``-FP8``/``-AWQ`` variants to the base config plus a quantization.

    Why: real deployments name quantized repos (``Qwen3-235B-A22B-FP8``) that the catalogue holds only in
    their base form; the layer shapes are identical, only the weight format differs (model.names).
    """
    from vramplan.model.names import resolve_served_name

    served = resolve_served_name(ref)
    return served.loaded, served.quantization, [served.note] if served.note else []


def pick_gpu(gpu: str | GPU | None, gpu_memory: str | int | None) -> GPU:
    """GPU from a name or a memory size; one is required."""
    return gpu_from(gpu, gpu_memory, required=True)


def gib(n: float) -> float:
    return n / GIB


# ---------------------------------------------------------------------------------------- prediction
def predict_sglang(
    argv_or_settings: Sequence[str] | Mapping[str, Any],
    gpu: str | GPU | None = None,
    *,
    gpu_memory: str | int | None = None,
    engine_version: str | None = None,
    other_processes_gib: float = 0.0,
    free_gib_at_start: float | None = None,
) -> EnginePrediction:
    """Predict what ``python -m sglang.launch_server ...`` allocates per GPU and whether it starts.

    ``free_gib_at_start`` is SGLang's own F0 when it is known (its log prints it as "avail mem" before
    loading): other processes, the CUDA context and NCCL are then already accounted for.
    """
    if isinstance(argv_or_settings, Mapping):
        settings: dict[str, Any] = dict(argv_or_settings)
        ignored: list[str] = []
    else:
        settings, ignored = parse_argv(argv_or_settings, FLAGS, BOOL_FLAGS, _INT_KEYS)
    hw = pick_gpu(gpu, gpu_memory)
    match = VERSIONS.nearest_version(engine_version)
    profile = match.value
    assumptions: list[str] = [n for n in (match.note,) if n]
    if ignored:
        assumptions.append(f"ignored flags (no memory model): {' '.join(ignored)}")
    model_ref = settings.get("model_path")
    if not model_ref:
        raise InputError(
            "no model: pass --model-path NAME (catalogue name, config.json folder or .gguf)"
        )
    loaded, mapped_quant, notes = resolve_model(str(model_ref))
    assumptions += notes
    spec = loaded.spec

    from vramplan.estimator import check_parallelism, resolve

    tp = int(settings.get("tp_size") or 1)
    pp = int(settings.get("pp_size") or 1)
    dp = int(settings.get("dp_size") or 1)
    dp_attention = bool(settings.get("enable_dp_attention"))
    attn_tp = tp // dp if dp_attention and dp > 1 else tp
    check_parallelism(spec, tp, pp)
    quant = settings.get("quantization") or mapped_quant
    dtype = settings.get("dtype")
    r = resolve(
        spec, None if dtype in (None, "auto") else dtype, quant, settings.get("kv_cache_dtype")
    )

    total_gib = hw.memory_bytes / GIB
    chunk_default, bs_default = default_chunk_and_graph_bs(profile, total_gib, tp)
    chunk = int(settings.get("chunked_prefill_size") or chunk_default)
    graph_bs = int(settings.get("cuda_graph_max_bs") or bs_default)
    mfs = settings.get("mem_fraction_static")
    if mfs is None:
        mfs = default_mem_fraction_static(
            profile, hw.memory_bytes / MIB, tp, pp, chunk, graph_bs, dp if dp_attention else 0
        )
        assumptions.append(
            f"mem_fraction_static {mfs} by the {match.version} default rule ({profile.mem_fraction_rule})"
        )
    mfs = float(mfs)
    if not 0 < mfs < 1:
        raise InputError(f"--mem-fraction-static {mfs} must be between 0 and 1 (e.g. 0.85)")
    page = int(settings.get("page_size") or DEFAULT_PAGE_SIZE)
    context_len = int(settings.get("context_length") or spec.max_position_embeddings)
    cap = settings.get("max_total_tokens")

    # F0 = total - CUDA context - NCCL - other processes (design note 2.1; "GB" are GiB)
    f0 = (
        free_gib_at_start
        if free_gib_at_start is not None
        else (
            total_gib
            - CUDA_CONTEXT_GIB
            - (NCCL_INIT_GIB if tp * pp > 1 else 0.0)
            - other_processes_gib
        )
    )
    w = weight_bytes(spec, r.precision, tp, pp).per_gpu
    w_gib = gib(w) + LOAD_EXTRA_GIB
    f1 = f0 - w_gib
    rest_gib = f1 - f0 * (1 - mfs)  # KV = m F0 - W
    cell = cell_size(spec, r.kv_element, attn_tp)
    if pp > 1:
        from vramplan.memory.weights import pp_layer_split

        stage = max(pp_layer_split(spec.num_layers, pp))
        cell = int(
            sum(
                g.layers * g.bytes_per_token_per_layer
                for g in kv_layer_groups(spec, r.kv_element, attn_tp, stage)
            )
        )
    tokens = max_total_tokens(rest_gib * GIB, cell, page, int(cap) if cap else None)
    refused = [
        x.engine_error
        for x in refusals(
            hw, r.precision, "sglang", bf16_requested=str(dtype) in ("bfloat16", "bf16")
        )
    ]
    errors: list[str] = list(refused)
    fixes: list[str] = []
    extra: dict[str, Any] = {
        "mem_fraction_static": mfs,
        "chunked_prefill_size": chunk,
        "cuda_graph_max_bs": graph_bs,
        "page_size": page,
        "context_length": context_len,
        "cell_size_bytes": cell,
        "avail_mem_before_load_gb": round(f0, 2),
        "avail_mem_after_load_gb": round(f1, 2),
        "profiled_max_total_tokens": floor(rest_gib * GIB / cell),
    }

    def finish(rest: float | None, **loaded: Any) -> EnginePrediction:
        """The prediction from this point; ``errors``, ``fixes`` and ``extra`` are read as they stand then."""
        return _result(
            match.version,
            w_gib,
            rest,
            tokens,
            errors,
            fixes,
            assumptions,
            settings,
            extra,
            r,
            spec,
            tp,
            pp,
            dp,
            mfs,
            chunk,
            graph_bs,
            page,
            context_len,
            cap,
            **loaded,
        )

    if f1 <= 0:
        errors.append(
            f"CUDA out of memory while loading weights: {gib(w):.2f} GiB per GPU > {f0:.2f} GiB free"
        )
        fixes += [f"more GPUs: --tp-size {tp * 2}", "quantized weights: --quantization fp8"]
        return finish(None)
    if tokens <= 0:
        errors.append(
            f"max_total_tokens profiled value {floor(rest_gib * GIB / cell)} <= 0: "
            "Not enough memory. Please try to increase --mem-fraction-static"
        )
        need = (w_gib + 0.5) / f0
        if need < 1:
            fixes.append(
                f"--mem-fraction-static {min(0.95, round(need + 0.03, 2))} (weights take {w_gib:.2f} of {f0:.2f} GiB)"
            )
        fixes.append(f"more GPUs: --tp-size {tp * 2}")
        return finish(rest_gib)
    return finish(
        rest_gib,
        f0=f0,
        f1=f1,
        profile=profile,
        disable_graph=bool(settings.get("disable_cuda_graph")),
        attn_tp=attn_tp,
    )


def _result(
    version: str,
    w_gib: float,
    rest_gib: float | None,
    tokens: int,
    errors: list[str],
    fixes: list[str],
    assumptions: list[str],
    settings: dict[str, Any],
    extra: dict[str, Any],
    r: Any,
    spec: ModelSpec,
    tp: int,
    pp: int,
    dp: int,
    mfs: float,
    chunk: int,
    graph_bs: int,
    page: int,
    context_len: int,
    cap: Any,
    *,
    f0: float | None = None,
    f1: float | None = None,
    profile: SGLangProfile | None = None,
    disable_graph: bool = False,
    attn_tp: int = 1,
) -> EnginePrediction:
    refused = bool(errors)  # errors on entry stop the start (capabilities); later ones are warnings
    resolved = {
        "model_path": settings.get("model_path"),
        "tp_size": tp,
        "pp_size": pp,
        "dp_size": dp,
        "mem_fraction_static": mfs,
        "chunked_prefill_size": chunk,
        "cuda_graph_max_bs": graph_bs,
        "page_size": page,
        "context_length": context_len,
        "max_total_tokens": cap,
        "kv_cache_dtype": r.kv_dtype,
        "dtype": r.precision.compute_dtype,
        "quantization": r.precision.label,
        "disable_cuda_graph": disable_graph,
    }
    if tokens <= 0 or f0 is None or f1 is None or profile is None:
        return EnginePrediction(
            "sglang",
            version,
            weights_gib=w_gib,
            available_kv_cache_gib=rest_gib,
            kv_cache_tokens=max(tokens, 0),
            starts=False,
            errors=tuple(errors),
            fixes=tuple(fixes),
            assumptions=tuple(assumptions),
            settings=resolved,
            extra=extra,
        )
    # Pool: size + page_size slots (a padding page); K and V separately for the log's "K size"/"V size".
    groups = kv_layer_groups(spec, r.kv_element, attn_tp)
    n_swa = sum(g.layers for g in groups if g.kind == "sliding")
    n_full = sum(g.layers for g in groups if g.kind != "sliding")
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
        kv_alloc = float(extra["cell_size_bytes"]) * (tokens + page)
    if spec.mla is None:
        extra["k_size_gb"] = extra["v_size_gb"] = round(kv_alloc / 2 / GIB, 2)
    else:
        extra["kv_size_gb"] = round(kv_alloc / GIB, 2)
    max_running = settings.get("max_running_requests")
    if max_running is None:
        max_running = (
            default_max_running_requests(full_tokens, context_len, profile.max_running_cap)
            + profile.req_pool_extra
        )
    max_running = int(max_running)
    req_to_token = max_running * (context_len + REQ_TO_TOKEN_EXTRA_SLOTS) * 4
    graph_gib = 0.0
    if not disable_graph:
        largest = min(graph_bs, max_running)
        graph_gib = CUDA_GRAPH_FIXED_GIB + gib(forward_peak_bytes(spec, largest, tp))
    act = max(
        forward_peak_bytes(spec, chunk, tp),
        logits_bytes(
            spec,
            min(chunk, max_running),
            ActivationAssumptions(sampler_logit_copies=SAMPLER_LOGIT_COPIES),
        ),
    )
    remainder = f1 - kv_alloc / GIB
    dynamic = gib(req_to_token) + graph_gib + gib(act) + ATTN_WORKSPACE_GIB
    extra.update(
        avail_mem_after_kv_pool_gb=round(remainder - gib(req_to_token), 2),
        max_running_requests=max_running,
        req_to_token_gib=round(gib(req_to_token), 4),
        dynamic_needs_gib=round(dynamic, 3),
        remainder_gib=round(remainder, 3),
        cuda_graph_bs=[] if disable_graph else capture_batch_sizes(graph_bs),
        oom_risk=dynamic > remainder,
    )
    if dynamic > remainder:
        errors.append(
            f"OOM risk at runtime: req_to_token {gib(req_to_token):.2f} + CUDA graphs {graph_gib:.2f} + "
            f"prefill activations {gib(act):.2f} + workspace {ATTN_WORKSPACE_GIB:.2f} GiB exceed the "
            f"{remainder:.2f} GiB left outside mem_fraction_static"
        )
        fixes.append(
            f"lower --mem-fraction-static to {max(0.5, round(mfs - (dynamic - remainder) / f0 - 0.01, 2))}"
        )
        fixes.append(
            "or lower --chunked-prefill-size / --max-running-requests / --cuda-graph-max-bs"
        )
    return EnginePrediction(
        "sglang",
        version,
        weights_gib=w_gib,
        non_torch_gib=None,
        activation_peak_gib=gib(act),
        cuda_graph_gib=None if disable_graph else graph_gib,
        available_kv_cache_gib=rest_gib,
        kv_cache_tokens=full_tokens,
        max_concurrency=full_tokens / context_len,
        gpu_blocks=full_tokens // page,
        starts=not refused,
        errors=tuple(errors),
        fixes=tuple(fixes),
        assumptions=tuple(assumptions),
        settings={**resolved, "max_running_requests": max_running},
        extra=extra,
    )


def predict_from_settings(
    settings: Mapping[str, Any],
    gpu: str | GPU | None = None,
    *,
    gpu_memory: str | int | None = None,
    engine_version: str | None = None,
) -> EnginePrediction:
    """Predict from the settings dict ``vramplan.logs.parse_log`` reads out of an SGLang log."""
    s = dict(settings)
    # vLLM-style names (dev-set records, other tools) -> SGLang's own
    for ours, theirs in (
        ("model_path", "model"),
        ("tp_size", "tensor_parallel_size"),
        ("pp_size", "pipeline_parallel_size"),
        ("context_length", "max_model_len"),
    ):
        if s.get(ours) is None and s.get(theirs) is not None:
            s[ours] = s[theirs]
    free = s.get("avail_mem_before_load_gb")  # SGLang prints GiB as "GB"
    kept, gpu, gpu_memory = settings_for_engine(
        s, set(FLAGS.values()) | set(BOOL_FLAGS.values()), gpu, gpu_memory
    )
    if gpu is None and gpu_memory is None and free:
        gpu_memory = f"{float(free) + CUDA_CONTEXT_GIB}GiB"  # only F0 matters when it was logged
    return predict_sglang(
        kept,
        gpu,
        gpu_memory=gpu_memory,
        engine_version=engine_version,
        free_gib_at_start=float(free) if free else None,
    )


__all__ = [
    "VERSIONS",
    "cell_size",
    "default_max_running_requests",
    "default_mem_fraction_static",
    "max_total_tokens",
    "predict_from_settings",
    "predict_sglang",
    "swa_split",
]


# ------------------------------------------------------------------------------------------ engine
#: Scenario field -> SGLang's setting name (the flags of `python -m sglang.launch_server`).
SCENARIO_KEYS: dict[str, str] = {
    "max_num_seqs": "max_running_requests",
    "max_num_batched_tokens": "chunked_prefill_size",
    "max_model_len": "context_length",
    "gpu_memory_utilization": "mem_fraction_static",
    "block_size": "page_size",
}


class SGLangEngine:
    """SGLang as an :class:`~vramplan.engines.base.Engine`."""

    name = "sglang"

    def settings(self, scenario: Scenario) -> dict[str, Any]:
        e, h, p = scenario.engine, scenario.hardware, scenario.precision
        s: dict[str, Any] = {
            "model_path": scenario.model
            if isinstance(scenario.model, str)
            else scenario.model.name,
            "tp_size": h.tp,
            "pp_size": h.pp,
            "dtype": p.dtype,
            "quantization": p.quantization,
            "kv_cache_dtype": p.kv_cache_dtype,
            "disable_cuda_graph": e.enforce_eager or None,
        }
        for name, key in SCENARIO_KEYS.items():
            s[key] = getattr(e, name)
        return {k: v for k, v in s.items() if v is not None}

    def predict(self, scenario: Scenario) -> EnginePrediction:
        return predict_sglang(
            self.settings(scenario),
            scenario.hardware.gpu,
            gpu_memory=scenario.hardware.gpu_memory,
            engine_version=scenario.engine.engine_version,
        )

    def kv_pool(self, scenario: Scenario) -> KVPool:
        from vramplan.engines.base import pool_from_prediction

        pred = self.predict(scenario)
        hw = pick_gpu(scenario.hardware.gpu, scenario.hardware.gpu_memory)
        keys = dict(SCENARIO_KEYS)
        keys["max_num_seqs"] = "max_running_requests"
        return replace(pool_from_prediction(pred, hw.memory_bytes, keys), gpu=hw.name)

    def launch(self, scenario: Scenario, model_id: str) -> list[str]:
        s = self.settings(scenario)
        s.pop("model_path", None)
        if s.get("quantization") == "fp4":
            s.pop("quantization")
        argv = ["python", "-m", "sglang.launch_server", "--model-path", model_id]
        for key, value in s.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                argv.append(flag)
            elif value is not False:
                argv += [flag, str(value)]
        return argv


ENGINE_MODEL = SGLangEngine()
