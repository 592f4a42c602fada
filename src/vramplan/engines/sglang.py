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
from dataclasses import replace
from math import floor
from typing import TYPE_CHECKING, Any

from vramplan.capabilities import refusals
from vramplan.engines.base import (
    GIB,
    EnginePrediction,
    KVPool,
    settings_for_engine,
)
from vramplan.engines.sglang_features import (
    SPEC_MAX_RUNNING_REQUESTS,
    dp_attention_weight_bytes,
    speculative,
)
from vramplan.engines.sglang_hybrid import (
    MAMBA_FULL_MEMORY_RATIO,
    MambaPool,
    attention_groups_for_cell,
    is_dsa,
    mamba_pool,
    sglang_state_dtypes,
    state_bytes_per_request,
)
from vramplan.engines.sglang_profiles import (
    VERSIONS,
    SGLangProfile,
    default_chunk_and_graph_bs,
    default_mem_fraction_static,
)
from vramplan.errors import InputError
from vramplan.hardware import GPU, gpu_from
from vramplan.memory.kv_cache import kv_layer_groups
from vramplan.memory.weights import weight_bytes
from vramplan.model.load import LoadedModel
from vramplan.model.spec import ModelSpec
from vramplan.scenario import Fix
from vramplan.units import check_number_text

if TYPE_CHECKING:
    from vramplan.scenario import Scenario

from vramplan.engines.sglang_pool import (  # the constants and formulas, re-exported here
    CUDA_CONTEXT_GIB,
    DEFAULT_PAGE_SIZE,
    DISAGGREGATION_MODES,
    DSA_PAGE_SIZE,
    LOAD_EXTRA_GIB,
    MIB,
    NCCL_INIT_GIB,
    _lora,
    _result,
    _Run,
    cell_size,
    default_max_running_requests,
    gib,
    max_total_tokens,
    swa_split,
)

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
    # hybrid models (arg_groups/fields/schedule.py:216-226, exec_.py:490-519)
    "--max-mamba-cache-size": "max_mamba_cache_size",
    "--mamba-full-memory-ratio": "mamba_full_memory_ratio",
    "--mamba-ssm-dtype": "mamba_ssm_dtype",
    # LoRA (arg_groups/fields/lora.py)
    "--max-loras-per-batch": "max_loras_per_batch",
    "--max-lora-rank": "max_lora_rank",
    "--lora-target-modules": "lora_target_modules",
    # speculative decoding
    "--speculative-algorithm": "speculative_algorithm",
    "--speculative-draft-model-path": "speculative_draft_model_path",
    "--speculative-num-steps": "speculative_num_steps",
    "--speculative-eagle-topk": "speculative_eagle_topk",
    "--speculative-num-draft-tokens": "speculative_num_draft_tokens",
    # HiCache and disaggregation
    "--hicache-ratio": "hicache_ratio",
    "--hicache-size": "hicache_size",
    "--disaggregation-mode": "disaggregation_mode",
}
BOOL_FLAGS = {
    "--disable-cuda-graph": "disable_cuda_graph",
    "--enable-dp-attention": "enable_dp_attention",
    "--enable-lora": "enable_lora",
    "--enable-hierarchical-cache": "enable_hierarchical_cache",
    "--disable-radix-cache": "disable_radix_cache",
}
#: Flags that take several words (argparse nargs="*"): joined into one comma-separated value.
MULTI_WORD_FLAGS = ("--lora-target-modules",)
_FLOAT_KEYS = frozenset({"mamba_full_memory_ratio", "hicache_ratio", "hicache_size"})
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
    "max_mamba_cache_size",
    "max_loras_per_batch",
    "max_lora_rank",
    "speculative_num_steps",
    "speculative_eagle_topk",
    "speculative_num_draft_tokens",
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
    if key in int_keys or key in float_keys or key in _FLOAT_KEYS:
        check_number_text(str(value), flag)  # one-line refusal of a 5,000-digit value
    try:
        if key in int_keys:
            return int(float(value))
        if key in float_keys or key in _FLOAT_KEYS or key == "mem_fraction_static":
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


# ---------------------------------------------------------------------------------------- prediction
def _join_multi_word(argv: Sequence[str]) -> list[str]:
    """``--lora-target-modules q_proj v_proj`` -> ``--lora-target-modules q_proj,v_proj`` (nargs="*")."""
    out: list[str] = []
    i = 0
    args = list(argv)
    while i < len(args):
        out.append(args[i])
        if args[i] in MULTI_WORD_FLAGS:
            words = []
            while i + 1 < len(args) and not args[i + 1].startswith("-"):
                words.append(args[i + 1])
                i += 1
            if words:
                out.append(",".join(words))
        i += 1
    return out


def _dsa_defaults(
    spec: ModelSpec,
    settings: dict[str, Any],
    profile: SGLangProfile,
    hw: GPU,
    assumptions: list[str],
) -> None:
    """What SGLang sets by itself for DeepSeek sparse attention (server_args.py, DSA/NSA branch)."""
    if not is_dsa(spec):
        return
    if settings.get("page_size") is None:
        settings["page_size"] = DSA_PAGE_SIZE
    if profile.dsa_forces_dp_attention:
        settings["enable_dp_attention"] = True
        settings["dp_size"] = int(settings.get("tp_size") or 1)
    if profile.dsa_mem_fraction is not None:
        settings["mem_fraction_static"] = profile.dsa_mem_fraction
    if settings.get("kv_cache_dtype") in (None, "auto"):
        major = int(str(hw.compute_capability or "9.0").split(".")[0])
        settings["kv_cache_dtype"] = "fp8_e4m3" if major >= 10 else "bfloat16"
    forced = " and mem_fraction_static 0.8" if profile.dsa_mem_fraction is not None else ""
    dp = ", DP attention (dp = tp)" if profile.dsa_forces_dp_attention else ""
    assumptions.append(
        f"DeepSeek sparse attention: page size {settings['page_size']}{dp}{forced}, KV cache "
        f"{settings['kv_cache_dtype']} (SGLang's DSA defaults on compute capability {hw.compute_capability})"
    )


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
        settings, ignored = parse_argv(
            _join_multi_word(argv_or_settings), FLAGS, BOOL_FLAGS, _INT_KEYS
        )
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
    _dsa_defaults(spec, settings, profile, hw, assumptions)

    from vramplan.estimator import check_parallelism, resolve

    tp = int(settings.get("tp_size") or 1)
    pp = int(settings.get("pp_size") or 1)
    dp = int(settings.get("dp_size") or 1)
    dp_attention = bool(settings.get("enable_dp_attention")) and dp > 1
    if dp_attention and tp % dp:
        raise InputError(f"--dp-size {dp} must divide --tp-size {tp} with --enable-dp-attention")
    attn_tp = tp // dp if dp_attention else tp
    check_parallelism(spec, tp, pp)
    quant = settings.get("quantization") or mapped_quant
    dtype = settings.get("dtype")
    r = resolve(
        spec, None if dtype in (None, "auto") else dtype, quant, settings.get("kv_cache_dtype")
    )
    role = str(settings.get("disaggregation_mode") or "null").lower()
    if role not in DISAGGREGATION_MODES:
        raise InputError(f"--disaggregation-mode {role!r}: use {', '.join(DISAGGREGATION_MODES)}")
    spec_mem = speculative(settings, spec, r.precision, r.kv_element, attn_tp, tp)
    if spec_mem is not None:
        assumptions.append(spec_mem.note)
        if settings.get("max_running_requests") is None:
            settings["max_running_requests"] = SPEC_MAX_RUNNING_REQUESTS
            assumptions.append(
                f"speculative decoding resets max_running_requests to {SPEC_MAX_RUNNING_REQUESTS}; "
                f"{spec_mem.draft_tokens} draft tokens per step"
            )

    total_gib = hw.memory_bytes / GIB
    chunk_default, bs_default = default_chunk_and_graph_bs(profile, total_gib, tp)
    chunk = int(settings.get("chunked_prefill_size") or chunk_default)
    graph_bs = int(settings.get("cuda_graph_max_bs") or bs_default)
    user_running = settings.get("max_running_requests")
    if (
        profile.graph_bs_capped_by_running
        and settings.get("cuda_graph_max_bs") is None
        and user_running is not None
    ):
        graph_bs = min(graph_bs, int(user_running))
    disable_graph = bool(settings.get("disable_cuda_graph"))
    mfs = settings.get("mem_fraction_static")
    if mfs is None:
        mfs = default_mem_fraction_static(
            profile,
            hw.memory_bytes / MIB,
            tp,
            pp,
            chunk,
            graph_bs,
            dp if dp_attention else 0,
            speculative=spec_mem.algorithm if spec_mem else None,
            mla=spec.mla is not None,
            disaggregation_mode=role,
            max_running_requests=int(user_running) if user_running else None,
            draft_tokens=spec_mem.draft_tokens if spec_mem else None,
            decode_graphs=not disable_graph,
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
    extra: dict[str, Any] = {}
    w = weight_bytes(spec, r.precision, tp, pp).per_gpu
    if dp_attention:
        w_dp = dp_attention_weight_bytes(spec, r.precision, tp, attn_tp)
        w += w_dp
        extra["dp_attention_extra_weights_gib"] = round(gib(w_dp), 3)
        assumptions.append(
            f"DP attention: attention at TP {attn_tp} and a replicated embedding add "
            f"{gib(w_dp):.2f} GiB of weights per GPU"
        )
    lora = _lora(settings, spec, r.precision.compute_dtype, tp)
    if lora:
        extra["lora_pool_gib"] = round(gib(lora), 3)
        targets = (
            settings.get("lora_target_modules")
            or "all linear modules (SGLang infers them from --lora-paths)"
        )
        assumptions.append(
            f"LoRA pool: {gib(lora):.2f} GiB per GPU preallocated before the KV cache is sized; targets {targets}"
        )
    draft_in_budget = spec_mem is not None and profile.draft_kv_in_cell
    draft_w = spec_mem.weight_bytes if spec_mem else 0
    if spec_mem:
        extra["draft_weights_gib"] = round(gib(draft_w), 3)
    w_gib = gib(w) + LOAD_EXTRA_GIB  # what SGLang logs at "Load weight end"
    f1 = f0 - w_gib
    # LoRA buffers and (0.5.15+) the draft model are resident before the pool is sized
    static_gib = gib(lora + (draft_w if draft_in_budget else 0))
    rest_gib = f1 - static_gib - f0 * (1 - mfs)  # KV = m F0 - W - LoRA - draft

    # per-token cell: sized vs allocated (sglang_hybrid), draft KV inside it from 0.5.15
    if pp > 1:
        from vramplan.memory.weights import pp_layer_split

        stage = max(pp_layer_split(spec.num_layers, pp))
        groups = kv_layer_groups(spec, r.kv_element, attn_tp, stage)
    else:
        groups = kv_layer_groups(spec, r.kv_element, attn_tp)
    cell, cell_alloc = attention_groups_for_cell(
        groups,
        spec,
        r.kv_element,
        indexer_in_cell=profile.dsa_indexer_in_cell,
        packed_in_cell=profile.dsa_packed_in_cell,
    )
    draft_kv = spec_mem.kv_bytes_per_token if spec_mem else 0
    if draft_in_budget and draft_kv:
        attn_layers = sum(g.layers for g in groups if g.kind != "indexer")
        cell = int(cell * (1 + spec_mem.draft_layers / max(attn_layers, 1)))  # type: ignore[union-attr]
    if cell != cell_alloc + (draft_kv if draft_in_budget else 0):
        assumptions.append(
            f"SGLang {match.version} sizes the pool at {cell:,} B per token; it allocates "
            f"{cell_alloc + (draft_kv if draft_in_budget else 0):,} B"
        )

    rest_bytes = int(rest_gib * GIB)
    state = state_bytes_per_request(
        spec, attn_tp, settings.get("mamba_ssm_dtype"), stage if pp > 1 else None
    )
    pool: MambaPool | None = None
    if state:
        ratio = settings.get("mamba_full_memory_ratio")
        pool = mamba_pool(
            rest_bytes,
            state,
            ratio=MAMBA_FULL_MEMORY_RATIO if ratio is None else float(ratio),
            max_mamba_cache_size=settings.get("max_mamba_cache_size"),
            # before 0.5.4 hybrids ran without the radix cache: --max-running-requests or 512 slots
            # (model_runner.py:357-366 of 0.5.3)
            disable_radix_cache=bool(settings.get("disable_radix_cache"))
            or profile.mamba_slots_per_request == 1,
            max_running_requests=int(user_running) if user_running else None,
            attn_dp=dp if dp_attention else 1,
            draft_tokens=spec_mem.draft_tokens if spec_mem and spec_mem.draft_layers else 0,
            slots_per_request=profile.mamba_slots_per_request,
            pad_slot=profile.mamba_pad_slot,
            spec_rule=profile.mamba_spec_rule,
        )
        rest_bytes = pool.kv_rest_bytes
        conv, ssm, why = sglang_state_dtypes(spec, settings.get("mamba_ssm_dtype"))
        extra.update(
            rest_before_state_pool_bytes=int(rest_gib * GIB),
            max_mamba_cache_size=pool.slots,
            mamba_state_per_request_bytes=state,
            mamba_pool_gib=round(gib(pool.pool_bytes), 3),
        )
        assumptions.append(
            f"mamba pool: {pool.slots} slots of {state / MIB:.1f} MiB (conv {conv}, ssm {ssm} from {why}); "
            f"{pool.rule}"
        )
        if pool.intermediate_bytes:
            extra["mamba_intermediate_gib"] = round(gib(pool.intermediate_bytes), 3)
            assumptions.append(
                f"speculative decoding on a hybrid: {gib(pool.intermediate_bytes):.2f} GiB of per-draft-token "
                "intermediate states inside the mamba pool"
            )
        if profile.mamba_slots_per_request > 1:
            assumptions.append(
                f"running requests capped at max_mamba_cache_size // {profile.mamba_slots_per_request} "
                "(state slots per request with the radix cache)"
            )
    tokens = max_total_tokens(rest_bytes, cell, page, int(cap) if cap else None)
    refused = [
        x.engine_error
        for x in refusals(
            hw, r.precision, "sglang", bf16_requested=str(dtype) in ("bfloat16", "bf16")
        )
    ]
    errors: list[str] = list(refused)
    fixes: list[Fix] = []
    extra.update(
        mem_fraction_static=mfs,
        chunked_prefill_size=chunk,
        cuda_graph_max_bs=graph_bs,
        page_size=page,
        context_length=context_len,
        cell_size_bytes=cell,
        avail_mem_before_load_gb=round(f0, 2),
        avail_mem_after_load_gb=round(f1, 2),
        profiled_max_total_tokens=floor(rest_bytes / cell) if cell else 0,
    )
    run = _Run(
        version=match.version,
        profile=profile,
        spec=spec,
        r=r,
        settings=settings,
        tp=tp,
        pp=pp,
        dp=dp,
        attn_tp=attn_tp,
        mfs=mfs,
        chunk=chunk,
        graph_bs=graph_bs,
        page=page,
        context_len=context_len,
        cap=cap,
        role=role,
        w_gib=w_gib,
        rest_gib=rest_bytes / GIB if pool else rest_gib,  # memory for the KV pool
        f0=f0,
        f1=f1 - static_gib,
        tokens=tokens,
        groups=groups,
        cell_alloc=cell_alloc,
        draft_kv=draft_kv,
        draft_in_budget=draft_in_budget,
        draft_weights=draft_w,
        spec_mem=spec_mem,
        pool=pool,
        state=state,
        disable_graph=disable_graph,
        errors=errors,
        fixes=fixes,
        assumptions=assumptions,
        extra=extra,
    )
    if f1 <= 0:
        errors.append(
            f"CUDA out of memory while loading weights: {gib(w):.2f} GiB per GPU > {f0:.2f} GiB free"
        )
        fixes.append(Fix("tp_size", tp * 2, "shard the weights over twice the GPUs"))
        if not r.precision.label or r.precision.label in ("bf16", "fp16", "none"):
            fixes.append(Fix("quantization", "fp8", "fp8 weights take half the bytes"))
        return _result(run, started=False)
    if tokens <= 0:
        errors.append(
            f"max_total_tokens profiled value {extra['profiled_max_total_tokens']} <= 0: "
            "Not enough memory. Please try to increase --mem-fraction-static"
        )
        need = (w_gib + static_gib + 0.5) / f0
        if need < 1:
            fixes.append(
                Fix(
                    "mem_fraction_static",
                    min(0.95, round(need + 0.03, 2)),
                    f"weights take {w_gib:.2f} of {f0:.2f} GiB",
                )
            )
        fixes.append(Fix("tp_size", tp * 2, "shard the weights over twice the GPUs"))
        return _result(run, started=False)
    return _result(run, started=True)


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
