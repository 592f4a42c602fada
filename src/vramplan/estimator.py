"""estimate(): model + precision + workload + hardware -> Breakdown. The one place the parts meet.

Pure computation apart from resolving names (model catalogue, GPU catalogue), which the loaders do.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from functools import lru_cache
from math import ceil
from typing import TYPE_CHECKING, Any

from vramplan.cached_hash import cached_hash, state_without_hash
from vramplan.capabilities import compute_capability_number
from vramplan.engines.vllm_nontorch import fi_workspace_swap_bytes
from vramplan.errors import InputError
from vramplan.ggml import FILE_TYPE_BASE
from vramplan.hardware import GPU, gpu_from
from vramplan.memory.activations import ActivationAssumptions, activation_peak_bytes
from vramplan.memory.breakdown import Breakdown, Component
from vramplan.memory.kv_cache import (
    kv_bytes_per_token,
    kv_cache_bytes,
    kv_heads_per_rank,
    largest_context,
)
from vramplan.memory.overhead import OverheadAssumptions, overhead_bytes
from vramplan.memory.state_cache import state_bytes_per_sequence, state_dtypes, state_layers
from vramplan.memory.weights import gguf_recipe, pp_layer_split, weight_bytes
from vramplan.model.load import LoadedModel, load_model
from vramplan.model.params import count_params
from vramplan.model.positions import check_context, max_context
from vramplan.model.spec import ModelSpec
from vramplan.precision import Precision, kv_element_bytes, resolve_precision
from vramplan.rule_of_thumb import naive_kv_bytes_per_token, rule_of_thumb
from vramplan.scenario import Fix, Method, Parallelism, Workload
from vramplan.scenario_fields import check as check_field
from vramplan.scenario_fields import default as field_default
from vramplan.units import format_bytes
from vramplan.wording import plural

if TYPE_CHECKING:
    from vramplan.capabilities import Refusal

#: The table's defaults (``scenario_fields``), not second copies.
DEFAULT_CONTEXT: int = field_default("context")
DEFAULT_USERS: int = field_default("users")

TP_CHOICES = (1, 2, 4, 8)
PP_CHOICES = (1, 2, 3, 4, 6, 8, 16)


@dataclass(frozen=True)
class Resolved:
    """A model resolved with its precision and KV element size."""

    spec: ModelSpec
    precision: Precision
    kv_dtype: str
    kv_element: Fraction

    __hash__ = cached_hash
    __getstate__ = state_without_hash


@lru_cache(maxsize=1024)
def resolve(
    spec: ModelSpec, dtype: str | None, quantization: str | None, kv_cache_dtype: str | None
) -> Resolved:
    if quantization is not None and quantization.strip().upper() in FILE_TYPE_BASE:
        precision = gguf_recipe(spec, quantization.strip().upper())
    else:
        precision = resolve_precision(
            spec.torch_dtype, spec.quantization_config, dtype, quantization
        )
    return resolve_stored(spec, precision, kv_cache_dtype)


@lru_cache(maxsize=1024)
def resolve_stored(spec: ModelSpec, precision: Precision, kv_cache_dtype: str | None) -> Resolved:
    """A model with a known precision (a .gguf file's own types) and its KV element size."""
    kv_dtype, element = kv_element_bytes(kv_cache_dtype, precision.compute_dtype)
    return Resolved(spec, precision, kv_dtype, element)


def check_parallelism(spec: ModelSpec, tp: int, pp: int) -> None:
    """Reject layouts engines refuse: TP must divide the attention heads, PP at most one layer per stage."""
    if spec.num_heads % tp:
        raise InputError(
            f"tensor-parallel-size {tp} does not divide {spec.name}'s {spec.num_heads} attention heads: "
            f"use one of {', '.join(str(t) for t in range(1, 65) if spec.num_heads % t == 0 and t <= 16)}"
        )
    if spec.num_kv_heads > tp and spec.num_kv_heads % tp and spec.mla is None:
        raise InputError(
            f"tensor-parallel-size {tp} does not divide the {spec.num_kv_heads} KV heads of {spec.name}"
        )
    if pp > spec.num_layers:
        raise InputError(
            f"pipeline-parallel-size {pp} exceeds the {spec.num_layers} layers of {spec.name}"
        )


def breakdown_for(
    r: Resolved,
    workload: Workload,
    tp: int,
    pp: int,
    gpu: GPU | None,
    *,
    block_size: int | None = None,
    enforce_eager: bool = False,
    act: ActivationAssumptions = ActivationAssumptions(),
    ovh: OverheadAssumptions = OverheadAssumptions(),
    checkpoint_bytes: int | None = None,
    extras: dict[str, object] | None = None,
) -> Breakdown:
    """The detailed estimate for one fixed layout."""
    spec = r.spec
    check_parallelism(spec, tp, pp)
    stages = _stages(spec, pp)
    kv_stages = [
        kv_cache_bytes(
            spec,
            r.kv_element,
            workload.context,
            workload.users,
            tp,
            layers=n,
            block_size=block_size,
            first_layer=first,
        )
        for first, n in stages
    ]
    # Under PP the stages differ (embeddings first, lm_head last, interleaved sliding layers): each
    # per-GPU component is the largest any stage holds, so per-GPU x GPUs always covers the total and
    # the per-GPU sum never understates the busiest GPU.
    kv_per_gpu = max(kv_stages)
    kv_total = sum(kv_stages) * tp
    state_seq = _state_per_sequence(r, tp, stages)
    state_stages = [s * workload.users for s in state_seq]
    state_per_gpu = max(state_stages)
    tokens = workload.forward_tokens
    sampled = min(workload.users, tokens)
    dynamic = (
        kv_per_gpu + state_per_gpu + activation_peak_bytes(spec, tokens, sampled, tp, act)
        if ovh.fragmentation_fraction
        else 0
    )
    fixed = _fixed_parts(
        r,
        tp,
        pp,
        tokens,
        sampled,
        enforce_eager,
        act,
        ovh,
        checkpoint_bytes,
        dynamic,
        _nccl_adjust_bytes(r, tp, pp, tokens, enforce_eager, gpu),
    )
    kv = Component(
        "kv_cache",
        kv_per_gpu,
        kv_total,
        fixed.kv_formula,
        {
            "context": workload.context,
            "users": workload.users,
            "kv_dtype": r.kv_dtype,
            "kv_heads_per_gpu": kv_heads_per_rank(spec, tp),
            "block_size": block_size,
            "layers_per_gpu": max(n for _, n in stages),
        },
    )
    state = _state_component(r, workload.users, tp, stages, state_per_gpu, sum(state_stages) * tp)
    components = (fixed.weights, kv, state, fixed.activations, fixed.overhead)
    per_gpu_total = fixed.per_gpu_bytes + kv_per_gpu + state_per_gpu
    max_users = max_context = shortfall = None
    fixes: tuple[Fix, ...] = ()
    if gpu is not None:
        max_users, max_context = _capacity(
            r,
            workload,
            tp,
            pp,
            block_size,
            gpu.memory_bytes - fixed.per_gpu_bytes + fixed.weights.per_gpu_bytes,
        )
        if per_gpu_total > gpu.memory_bytes:
            shortfall = per_gpu_total - gpu.memory_bytes
            fixes = _fixes(r, workload, tp, max_users, max_context)
    return Breakdown(
        model=spec.name,
        method="detailed",
        params=count_params(spec).total,
        precision=r.precision.label,
        kv_cache_dtype=r.kv_dtype,
        context=workload.context,
        users=workload.users,
        tensor_parallel_size=tp,
        pipeline_parallel_size=pp,
        components=components,
        kv_bytes_per_token=kv_bytes_per_token(spec, r.kv_element, 1),
        state_bytes_per_sequence=_state_per_sequence(r, 1, ((0, spec.num_layers),))[0],
        gpu_name=gpu.name if gpu else None,
        gpu_memory_bytes=gpu.memory_bytes if gpu else None,
        assumptions=fixed.assumptions,
        fixes=fixes,
        max_users=max_users,
        max_context=max_context,
        extras=dict(extras) if extras else {},
        shortfall_bytes=shortfall,
    )


@lru_cache(maxsize=1024)
def _state_per_sequence(
    r: Resolved, tp: int, stages: tuple[tuple[int, int], ...]
) -> tuple[int, ...]:
    """Recurrent-state bytes one sequence holds on one rank of each stage (0 for pure attention models)."""
    if r.spec.state is None:
        return (0,) * len(stages)
    dt = state_dtypes(r.spec, r.precision.compute_dtype)
    return tuple(
        state_bytes_per_sequence(r.spec, dt.conv_bytes, dt.recurrent_bytes, tp, n, first)
        for first, n in stages
    )


@lru_cache(maxsize=1024)
def _state_component(
    r: Resolved, users: int, tp: int, stages: tuple[tuple[int, int], ...], per_gpu: int, total: int
) -> Component:
    spec = r.spec
    if spec.state is None:
        return Component(
            "state_cache", 0, 0, "no recurrent layers: the model keeps no per-sequence state"
        )
    dt = state_dtypes(spec, r.precision.compute_dtype)
    return Component(
        "state_cache",
        per_gpu,
        total,
        "recurrent layers x (conv channels x (kernel - 1) x conv bytes + recurrent state x state bytes) x users "
        "(independent of context; TP splits heads/channels)",
        {
            "users": users,
            "state_kind": spec.state.kind,
            "state_layers_per_gpu": max(state_layers(spec, n, first) for first, n in stages),
            "conv_dtype": dt.conv,
            "recurrent_dtype": dt.recurrent,
        },
    )


@dataclass(frozen=True)
class _Fixed:
    """The parts of a breakdown that do not depend on context or users (cached per layout)."""

    weights: Component
    activations: Component
    overhead: Component
    assumptions: tuple[str, ...]
    kv_formula: str

    @property
    def per_gpu_bytes(self) -> int:
        return (
            self.weights.per_gpu_bytes
            + self.activations.per_gpu_bytes
            + self.overhead.per_gpu_bytes
        )


def _nccl_adjust_bytes(
    r: Resolved, tp: int, pp: int, tokens: int, enforce_eager: bool, gpu: GPU | None
) -> int:
    """The NCCL overhead is vLLM 0.19's on H100, FlashInfer all-reduce workspace included: swap that part
    for the one this GPU builds (none off compute capability 9.0/10.x)."""
    if gpu is None or tp == 1:
        return 0
    cc = compute_capability_number(gpu)
    dtype_bytes = 4 if r.precision.compute_dtype == "float32" else 2
    return fi_workspace_swap_bytes(
        cc, gpu.vendor, tp, pp, 1, enforce_eager, False, r.spec.hidden_size, dtype_bytes, tokens
    )


@lru_cache(maxsize=4096)
def _fixed_parts(
    r: Resolved,
    tp: int,
    pp: int,
    tokens: int,
    sampled: int,
    enforce_eager: bool,
    act: ActivationAssumptions,
    ovh: OverheadAssumptions,
    checkpoint_bytes: int | None,
    dynamic_bytes: int,
    nccl_adjust_bytes: int = 0,
) -> _Fixed:
    spec = r.spec
    gpus = tp * pp
    w = weight_bytes(spec, r.precision, tp, pp)
    act_bytes = activation_peak_bytes(spec, tokens, sampled, tp, act)
    o = overhead_bytes(tp, pp, dynamic_bytes, enforce_eager, ovh, nccl_adjust_bytes)
    weights = Component(
        "weights",
        w.per_gpu,
        w.total(tp),
        "sum over tensors of stored bytes (quantized linears include scales/zeros), TP-sharded, PP-staged",
        {
            "precision": r.precision.label,
            "unsharded_bytes": w.unsharded,
            "by_component_per_gpu": w.by_component_per_gpu,
            **({"checkpoint_bytes": checkpoint_bytes} if checkpoint_bytes else {}),
        },
    )
    activations = Component(
        "activations",
        act_bytes,
        act_bytes * gpus,
        "max(per-layer temporaries for the tokens of one forward, fp32 logits x sampler copies for each sequence)",
        {
            "forward_tokens": tokens,
            "sequences": sampled,
            "sampler_logit_copies": act.sampler_logit_copies,
        },
    )
    overhead = Component(
        "overhead",
        o.total,
        o.total * gpus,
        "CUDA context + framework workspaces + NCCL (TP/PP>1) + CUDA graphs + fragmentation",
        {},
        parts=(
            Component("cuda_context", o.cuda_context, o.cuda_context * gpus, "measured constant"),
            Component("framework", o.framework, o.framework * gpus, "measured constant"),
            Component(
                "nccl",
                o.nccl,
                o.nccl * gpus,
                "measured constant when TP x PP > 1 (H100), FlashInfer all-reduce workspace per GPU",
            ),
            Component(
                "cuda_graphs",
                o.cuda_graphs,
                o.cuda_graphs * gpus,
                "measured constant; 0 with enforce-eager",
            ),
            Component(
                "fragmentation",
                o.fragmentation,
                o.fragmentation * gpus,
                "fraction of dynamic memory",
            ),
        ),
    )
    assumptions = list(r.precision.notes) + [
        f"weights: {r.precision.label}"
        + (f" ({r.precision.scheme.description})" if r.precision.scheme else ""),
        f"KV cache dtype {r.kv_dtype} ({plural(float(r.kv_element), 'byte/element')})",
        f"forward pass of {plural(tokens, 'token')} (chunked prefill budget) and sampling over {plural(sampled, 'sequence')}",
        f"CUDA context {format_bytes(ovh.cuda_context_bytes)}, framework {format_bytes(ovh.framework_bytes)}"
        + (f", NCCL {format_bytes(ovh.nccl_bytes)}" if gpus > 1 else "")
        + ("" if enforce_eager else f", CUDA graphs {format_bytes(ovh.cuda_graph_bytes)}")
        + " per GPU (measured on H100)",
    ]
    if spec.uses_sliding_window:
        assumptions.append(
            f"sliding-window layers keep the last {spec.sliding_window:,} - 1 tokens of KV per sequence"
        )
    assumptions.extend(
        spec.notes
    )  # what the model builder assumed (architecture resolution, generic count)
    if spec.extra_params:
        assumptions.append("vision tower weights included; image-encoder activations not modelled")
    if tp > spec.num_kv_heads and spec.mla is None:
        assumptions.append(
            f"TP {tp} > {spec.num_kv_heads} KV heads: each KV head is replicated {tp // spec.num_kv_heads}x"
        )
    if spec.mla is not None and tp > 1:
        assumptions.append(
            "MLA latent KV is replicated on every TP rank (vLLM, SGLang without DP attention)"
        )
    if pp > 1:
        assumptions.append(
            "per-GPU figures are each component's largest value over the pipeline stages"
        )
    if spec.state is not None:
        dt = state_dtypes(spec, r.precision.compute_dtype)
        assumptions.append(
            f"hybrid: {spec.attention_layers} of {spec.num_layers} layers keep per-token KV; "
            f"{spec.state.num_layers} {spec.state.kind} layers keep a fixed per-sequence state "
            f"({dt.note})"
        )
    kv_formula = (
        "layers x (kv_lora_rank + qk_rope_head_dim) x bytes x tokens (MLA latent, replicated on every TP rank)"
        if spec.mla
        else "layers x 2 x kv_heads_per_gpu x head_dim x bytes x tokens (sliding layers capped at the window)"
    )
    return _Fixed(weights, activations, overhead, tuple(assumptions), kv_formula)


def _capacity(
    r: Resolved,
    workload: Workload,
    tp: int,
    pp: int,
    block_size: int | None,
    free_for_weights_and_kv: int,
) -> tuple[int, int]:
    """Largest users at this context and largest context at these users that fit on every stage."""
    w = weight_bytes(r.spec, r.precision, tp, pp)
    max_users = max_context = None
    stages = _stages(r.spec, pp)
    state_seq = _state_per_sequence(r, tp, stages)
    for i, (first, n) in enumerate(stages):  # every stage must fit: take the tightest
        free = free_for_weights_and_kv - w.per_stage[i]
        # each sequence holds its KV (grows with context) and its recurrent state (fixed)
        one_seq = state_seq[i] + kv_cache_bytes(
            r.spec,
            r.kv_element,
            workload.context,
            1,
            tp,
            layers=n,
            block_size=block_size,
            first_layer=first,
        )
        users_here = max(0, free // one_seq) if free > 0 and one_seq else 0
        context_here = largest_context(
            r.spec,
            r.kv_element,
            workload.users,
            free - state_seq[i] * workload.users,
            tp,
            n,
            block_size,
            first_layer=first,
        )
        max_users = users_here if max_users is None else min(max_users, users_here)
        max_context = context_here if max_context is None else min(max_context, context_here)
    assert max_users is not None and max_context is not None
    return int(max_users), max_context


def _fixes(
    r: Resolved, workload: Workload, tp: int, max_users: int, max_context: int
) -> tuple[Fix, ...]:
    """What would make a configuration that does not fit, fit (data; the edges render flags or fields)."""
    fixes = []
    if max_context and max_context < workload.context:
        fixes.append(Fix("context", max_context, f"fits {plural(workload.users, 'user')}"))
    if max_users and max_users < workload.users:
        fixes.append(Fix("users", max_users, f"fits at context {workload.context:,}"))
    if r.kv_element > 1:
        fixes.append(Fix("kv_cache_dtype", "fp8", "halves the KV cache"))
    wider = next(
        (t for t in TP_CHOICES if t > tp and r.spec.num_heads % t == 0),
        None,
    )
    if wider is not None:
        fixes.append(Fix("tensor_parallel_size", wider, "splits weights and KV across more GPUs"))
    if r.precision.scheme is None and r.precision.layout is None:
        fixes.append(
            Fix(
                "quantization",
                "fp8",
                "about half the weight bytes; awq or gptq int4 about a quarter",
            )
        )
    return tuple(fixes)


@lru_cache(maxsize=1024)
def _stages(spec: ModelSpec, pp: int) -> tuple[tuple[int, int], ...]:
    """(first layer, layer count) of each pipeline stage."""
    out, first = [], 0
    for n in pp_layer_split(spec.num_layers, pp):
        out.append((first, n))
        first += n
    return tuple(out)


def smallest_layout(r: Resolved, workload: Workload, gpu: GPU, **kw: object) -> Breakdown:
    """The fewest GPUs that fit: TP within a node first (1, 2, 4, 8), then PP across nodes."""
    last: Breakdown | None = None
    for pp in PP_CHOICES:
        for tp in TP_CHOICES:
            if r.spec.num_heads % tp or pp > r.spec.num_layers:
                continue
            try:
                b = breakdown_for(r, workload, tp, pp, gpu, **kw)  # type: ignore[arg-type]
            except InputError:
                continue
            if b.fits:
                return b
            last = b
    assert last is not None
    return last


def estimate(
    model: str | ModelSpec | LoadedModel | None = None,
    *,
    params: int | None = None,
    bits: float | None = None,
    dtype: str | None = None,
    quantization: str | None = None,
    kv_cache_dtype: str | None = None,
    context: int | None = None,
    users: int = DEFAULT_USERS,
    batch_tokens: int | None = None,
    gpu: str | GPU | None = None,
    gpu_memory: str | int | None = None,
    tensor_parallel_size: int | None = None,
    pipeline_parallel_size: int | None = None,
    method: Method = "detailed",
    block_size: int | None = None,
    enforce_eager: bool = False,
    allow_long_context: bool = False,
) -> Breakdown:
    """Estimate serving memory. ``model`` is a catalogue name, a path, a Hub id, or a ModelSpec.

    ``context`` defaults to the table's (4,096 tokens) or the model's maximum if shorter; a longer one than the
    maximum is refused unless ``allow_long_context``; a format the GPU
    cannot run gives ``fits`` False with the reason in ``cannot_run`` (capabilities.py).
    """
    workload = Workload(
        context=DEFAULT_CONTEXT if context is None else context,
        users=users,
        batch_tokens=batch_tokens,
    )
    Parallelism(tensor_parallel_size, pipeline_parallel_size)
    check_field("block_size", block_size)
    hw = gpu_from(gpu, gpu_memory)
    if method not in ("detailed", "rule-of-thumb"):
        raise InputError(f"unknown method {method!r}: use detailed or rule-of-thumb")
    if model is None:
        if params is None:
            raise InputError(
                "give a model (name, path or Hub id) or --params N for the rule of thumb"
            )
        if method != "rule-of-thumb":
            raise InputError(
                "--params gives only a parameter count: use --method rule-of-thumb, or name a model for a detailed estimate"
            )
        return _rule_breakdown(
            f"{params:,} parameters", params, 16 if bits is None else bits, workload, hw
        )
    loaded = (
        model
        if isinstance(model, LoadedModel)
        else (
            LoadedModel(model, model.source or model.name)
            if isinstance(model, ModelSpec)
            else load_model(model)
        )
    )
    if loaded.stored_precision is not None and dtype is None and quantization is None:
        r = resolve_stored(loaded.spec, loaded.stored_precision, kv_cache_dtype)
    else:
        r = resolve(loaded.spec, dtype, quantization, kv_cache_dtype)
    check_applies(r)
    if method == "rule-of-thumb":
        q = bits if bits is not None else _weight_bits(r)
        return _rule_breakdown(loaded.spec.name, count_params(loaded.spec).total, q, workload, hw)
    if context is None:  # the default, shortened to what the model accepts
        workload = replace(workload, context=min(DEFAULT_CONTEXT, max_context(loaded.spec).tokens))
    long_context_note = check_context(loaded.spec, workload.context, allow_long_context)
    kw: dict[str, Any] = dict(
        block_size=block_size,
        enforce_eager=enforce_eager,
        checkpoint_bytes=loaded.checkpoint_bytes,
        extras=_comparison_extras(r),
    )
    if hw is not None and tensor_parallel_size is None and pipeline_parallel_size is None:
        b = smallest_layout(r, workload, hw, **kw)
    else:
        b = breakdown_for(
            r, workload, tensor_parallel_size or 1, pipeline_parallel_size or 1, hw, **kw
        )
    return _with_gpu_limits(b, r, hw, dtype, long_context_note)


def check_applies(r: Resolved) -> None:
    """Refuse a quantization that touches none of the model's tensors (MXFP4 on a dense model)."""
    scheme = r.precision.scheme
    if scheme is not None and scheme.roles <= {"expert"} and r.spec.moe is None:
        raise InputError(
            f"{scheme.name} applies to MoE expert weights only (vLLM quantizes nothing else with it), "
            f"and {r.spec.name} is a dense model: use fp8, awq or gptq instead"
        )


def _with_gpu_limits(
    b: Breakdown, r: Resolved, gpu: GPU | None, dtype: str | None, long_context_note: str | None
) -> Breakdown:
    """Add what the GPU cannot run (fits: false) and the assumptions the limits imply."""
    bf16_asked = dtype is not None and dtype.strip().lower() in ("bf16", "bfloat16")
    refused, notes = _gpu_limits(gpu, r.precision, bf16_asked)
    if long_context_note:
        notes += (long_context_note,)
    if not refused and not notes:
        return b
    return replace(
        b,
        cannot_run=tuple(x.reason for x in refused),
        assumptions=b.assumptions + notes,
    )


@lru_cache(maxsize=1024)
def _gpu_limits(
    gpu: GPU | None, precision: Precision, bf16_asked: bool
) -> tuple[tuple[Refusal, ...], tuple[str, ...]]:
    """What ``gpu`` cannot run of ``precision`` and the notes its fallbacks imply (capabilities.py)."""
    from vramplan.capabilities import fallback_notes, refusals

    refused = refusals(gpu, precision, "estimate", bf16_requested=bf16_asked)
    notes = fallback_notes(gpu, precision, "estimate")
    if (
        gpu is not None
        and not bf16_asked
        and precision.compute_dtype == "bfloat16"
        and refusals(gpu, precision, "estimate", bf16_requested=True)
    ):
        notes += (f"{gpu.name} has no bfloat16: engines run the model in float16 (same bytes)",)
    return refused, notes


@lru_cache(maxsize=1024)
def _comparison_extras(r: Resolved) -> dict[str, object]:
    """The write-ups' figures shown beside the detailed estimate (rule of thumb, naive KV per token)."""
    rt = rule_of_thumb(count_params(r.spec).total, _weight_bits(r))
    return {
        "rule_of_thumb_bytes": rt.total_bytes,
        "naive_kv_bytes_per_token": naive_kv_bytes_per_token(
            r.spec.num_layers, r.spec.hidden_size, int(ceil(r.kv_element))
        ),
    }


def _weight_bits(r: Resolved) -> float:
    """Q of the rule of thumb: the scheme's bits, a ggml layout's average, else the dtype's width."""
    if r.precision.layout is not None:
        return 8 * weight_bytes(r.spec, r.precision).unsharded / count_params(r.spec).total
    if r.precision.scheme is not None:
        return r.precision.scheme.bits
    return float(8 * _dtype_bytes(r.precision.compute_dtype))


def _dtype_bytes(dtype: str) -> Fraction:
    from vramplan.precision import DTYPE_BYTES

    return DTYPE_BYTES[dtype]


def _rule_breakdown(
    name: str, params: int, bits: float, workload: Workload, gpu: GPU | None
) -> Breakdown:
    rt = rule_of_thumb(params, bits)
    gpus = 1 if gpu is None else max(1, ceil(rt.total_bytes / gpu.memory_bytes))
    comps = (
        Component(
            "weights",
            ceil(rt.weights_bytes / gpus),
            rt.weights_bytes,
            "P x 4 bytes / (32 / Q)",
            {"P": params, "Q": bits},
        ),
        Component("kv_cache", 0, 0, "not part of the rule of thumb"),
        Component("state_cache", 0, 0, "not part of the rule of thumb"),
        Component("activations", 0, 0, "not part of the rule of thumb"),
        Component(
            "overhead",
            ceil(rt.overhead_bytes / gpus),
            rt.overhead_bytes,
            "0.2 x weights (the flat 20 %)",
            {"factor": 1.2},
        ),
    )
    return Breakdown(
        model=name,
        method="rule-of-thumb",
        params=params,
        precision=f"{bits:g}-bit",
        kv_cache_dtype="n/a",
        context=workload.context,
        users=workload.users,
        tensor_parallel_size=gpus,
        pipeline_parallel_size=1,
        components=comps,
        kv_bytes_per_token=0,
        gpu_name=gpu.name if gpu else None,
        gpu_memory_bytes=gpu.memory_bytes if gpu else None,
        assumptions=(
            "M = P x 4 bytes / (32 / Q) x 1.2: weights plus a flat 20 %, no context, users or KV cache",
            "GPU count = ceil(M / GPU memory)",
        ),
        extras={
            "rule_of_thumb_bytes": rt.total_bytes,
            "rule_of_thumb_gb": round(rt.total_bytes / 1e9, 2),
        },
    )
