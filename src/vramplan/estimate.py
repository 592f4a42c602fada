"""estimate(): model + precision + workload + hardware -> Breakdown. The one place the parts meet.

Pure computation apart from resolving names (model catalogue, GPU catalogue), which the loaders do.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from fractions import Fraction
from math import ceil

from vramplan.errors import InputError
from vramplan.hardware import GPU, custom_gpu, resolve_gpu
from vramplan.memory.activations import ActivationAssumptions, activation_peak_bytes
from vramplan.memory.breakdown import Breakdown, Component
from vramplan.memory.kv_cache import kv_bytes_per_token, kv_cache_bytes, kv_heads_per_rank, largest_context
from vramplan.memory.overhead import OverheadAssumptions, overhead_bytes
from vramplan.memory.weights import pp_layer_split, weight_bytes
from vramplan.model.load import LoadedModel, load_model
from vramplan.model.params import count_params
from vramplan.model.spec import ModelSpec
from vramplan.precision import Precision, kv_element_bytes, resolve_precision
from vramplan.rule_of_thumb import naive_kv_bytes_per_token, rule_of_thumb
from vramplan.scenario import Method, Parallelism, Workload
from vramplan.units import GiB, format_bytes

TP_CHOICES = (1, 2, 4, 8)
PP_CHOICES = (1, 2, 3, 4, 6, 8, 16)


@dataclass(frozen=True)
class Resolved:
    """A model resolved with its precision and KV element size."""

    spec: ModelSpec
    precision: Precision
    kv_dtype: str
    kv_element: Fraction


@lru_cache(maxsize=1024)
def resolve(spec: ModelSpec, dtype: str | None, quantization: str | None, kv_cache_dtype: str | None) -> Resolved:
    precision = resolve_precision(spec.torch_dtype, spec.quantization_config, dtype, quantization)
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
        raise InputError(f"tensor-parallel-size {tp} does not divide the {spec.num_kv_heads} KV heads of {spec.name}")
    if pp > spec.num_layers:
        raise InputError(f"pipeline-parallel-size {pp} exceeds the {spec.num_layers} layers of {spec.name}")


def breakdown_for(r: Resolved, workload: Workload, tp: int, pp: int, gpu: GPU | None, *,
                  block_size: int | None = None, enforce_eager: bool = False,
                  act: ActivationAssumptions = ActivationAssumptions(),
                  ovh: OverheadAssumptions = OverheadAssumptions(),
                  checkpoint_bytes: int | None = None) -> Breakdown:
    """The detailed estimate for one fixed layout."""
    spec = r.spec
    check_parallelism(spec, tp, pp)
    w = weight_bytes(spec, r.precision, tp, pp)
    stages = _stages(spec, pp)
    kv_stages = [kv_cache_bytes(spec, r.kv_element, workload.context, workload.users, tp, layers=n,
                                block_size=block_size, first_layer=first) for first, n in stages]
    # Under PP the stages differ (embeddings first, lm_head last, interleaved sliding layers): each
    # per-GPU component is the largest any stage holds, so per-GPU x GPUs always covers the total and
    # the per-GPU sum never understates the busiest GPU.
    weights_per_gpu, kv_per_gpu = max(w.per_stage), max(kv_stages)
    stage_layers = max(n for _, n in stages)
    kv_total = kv_cache_bytes(spec, r.kv_element, workload.context, workload.users, tp, block_size=block_size) * tp
    tokens = workload.forward_tokens
    act_bytes = activation_peak_bytes(spec, tokens, workload.users, tp, act)
    ovh_bytes = overhead_bytes(tp, pp, kv_per_gpu + act_bytes, enforce_eager, ovh)
    gpus = tp * pp
    heads_rank = kv_heads_per_rank(spec, tp)
    kv_formula = (
        "layers x (kv_lora_rank + qk_rope_head_dim) x bytes x tokens (MLA latent, replicated on every TP rank)"
        if spec.mla else "layers x 2 x kv_heads_per_gpu x head_dim x bytes x tokens (sliding layers capped at the window)"
    )
    components = (
        Component("weights", weights_per_gpu, w.total(tp),
                  "sum over tensors of stored bytes (quantized linears include scales/zeros), TP-sharded, PP-staged",
                  {"precision": r.precision.label, "unsharded_bytes": w.unsharded, "by_component_per_gpu": w.by_component_per_gpu,
                   **({"checkpoint_bytes": checkpoint_bytes} if checkpoint_bytes else {})}),
        Component("kv_cache", kv_per_gpu, kv_total, kv_formula,
                  {"context": workload.context, "users": workload.users, "kv_dtype": r.kv_dtype,
                   "kv_heads_per_gpu": heads_rank, "block_size": block_size, "layers_per_gpu": stage_layers}),
        Component("activations", act_bytes, act_bytes * gpus,
                  "max(per-layer temporaries for the tokens of one forward, fp32 logits x sampler copies for each sequence)",
                  {"forward_tokens": tokens, "sequences": workload.users, "sampler_logit_copies": act.sampler_logit_copies}),
        Component("overhead", ovh_bytes.total, ovh_bytes.total * gpus,
                  "CUDA context + framework workspaces + NCCL (TP/PP>1) + CUDA graphs + fragmentation",
                  {}, parts=(
                      Component("cuda_context", ovh_bytes.cuda_context, ovh_bytes.cuda_context * gpus, "measured constant"),
                      Component("framework", ovh_bytes.framework, ovh_bytes.framework * gpus, "measured constant"),
                      Component("nccl", ovh_bytes.nccl, ovh_bytes.nccl * gpus, "measured constant when TP x PP > 1"),
                      Component("cuda_graphs", ovh_bytes.cuda_graphs, ovh_bytes.cuda_graphs * gpus, "measured constant; 0 with enforce-eager"),
                      Component("fragmentation", ovh_bytes.fragmentation, ovh_bytes.fragmentation * gpus, "fraction of dynamic memory"),
                  )),
    )
    assumptions = list(r.precision.notes) + [
        f"weights: {r.precision.label}" + (f" ({r.precision.scheme.description})" if r.precision.scheme else ""),
        f"KV cache dtype {r.kv_dtype} ({float(r.kv_element):g} bytes/element)",
        f"forward pass of {tokens:,} tokens (chunked prefill budget) and sampling over {min(workload.users, tokens):,} sequences",
        f"CUDA context {format_bytes(ovh.cuda_context_bytes)}, framework {format_bytes(ovh.framework_bytes)}"
        + (f", NCCL {format_bytes(ovh.nccl_bytes)}" if gpus > 1 else "")
        + ("" if enforce_eager else f", CUDA graphs {format_bytes(ovh.cuda_graph_bytes)}") + " per GPU (measured on vLLM 0.19, H100)",
    ]
    if spec.uses_sliding_window:
        assumptions.append(f"sliding-window layers keep at most {spec.sliding_window:,} tokens of KV per sequence")
    if spec.extra_params:
        assumptions.append("vision tower weights included; image-encoder activations not modelled")
    if tp > spec.num_kv_heads and spec.mla is None:
        assumptions.append(f"TP {tp} > {spec.num_kv_heads} KV heads: each KV head is replicated {tp // spec.num_kv_heads}x")
    if spec.mla is not None and tp > 1:
        assumptions.append("MLA latent KV is replicated on every TP rank (vLLM, SGLang without DP attention)")
    b = Breakdown(
        model=spec.name, method="detailed", params=count_params(spec).total, precision=r.precision.label,
        kv_cache_dtype=r.kv_dtype, context=workload.context, users=workload.users,
        tensor_parallel_size=tp, pipeline_parallel_size=pp, components=components,
        kv_bytes_per_token=kv_bytes_per_token(spec, r.kv_element, 1),
        gpu_name=gpu.name if gpu else None, gpu_memory_bytes=gpu.memory_bytes if gpu else None,
        assumptions=tuple(assumptions),
    )
    if gpu is not None:
        b = _with_capacity(b, r, workload, tp, pp, block_size)
    return b


def _with_capacity(b: Breakdown, r: Resolved, workload: Workload, tp: int, pp: int, block_size: int | None) -> Breakdown:
    """How many users / how much context fit next to the fixed parts, and fixes when it does not fit."""
    assert b.gpu_memory_bytes is not None
    others = b.per_gpu_bytes - b.component("kv_cache").per_gpu_bytes - b.component("weights").per_gpu_bytes
    w = weight_bytes(r.spec, r.precision, tp, pp)
    max_users, max_context = None, None
    for i, (first, n) in enumerate(_stages(r.spec, pp)):  # every stage must fit: take the tightest
        free = b.gpu_memory_bytes - others - w.per_stage[i]
        one_seq = kv_cache_bytes(r.spec, r.kv_element, workload.context, 1, tp, layers=n, block_size=block_size, first_layer=first)
        users_here = max(0, free // one_seq) if free > 0 else 0
        context_here = largest_context(r.spec, r.kv_element, workload.users, free, tp, n, block_size, first_layer=first)
        max_users = users_here if max_users is None else min(max_users, users_here)
        max_context = context_here if max_context is None else min(max_context, context_here)
    assert max_users is not None and max_context is not None
    fixes: list[str] = []
    if not b.fits:
        over = b.per_gpu_bytes - b.gpu_memory_bytes
        fixes.append(f"needs {format_bytes(over)} more per GPU than the {format_bytes(b.gpu_memory_bytes)} available")
        if max_context and max_context < workload.context:
            fixes.append(f"shorter context: --context {max_context} fits {workload.users} users")
        if max_users and max_users < workload.users:
            fixes.append(f"fewer concurrent users: --users {max_users} fits at context {workload.context}")
        if r.kv_element > 1:
            fixes.append("fp8 KV cache (--kv-cache-dtype fp8) halves the KV cache")
        fixes.append("more GPUs: a larger --tensor-parallel-size splits weights and KV across GPUs")
        if r.precision.scheme is None:
            fixes.append("quantized weights: --quantization fp8 (about half) or awq/gptq int4 (about a quarter)")
    return replace(b, max_users=int(max_users), max_context=max_context, fixes=tuple(fixes))


def _stages(spec: ModelSpec, pp: int) -> list[tuple[int, int]]:
    """(first layer, layer count) of each pipeline stage."""
    out, first = [], 0
    for n in pp_layer_split(spec.num_layers, pp):
        out.append((first, n))
        first += n
    return out


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


def estimate(model: str | ModelSpec | LoadedModel | None = None, *, params: int | None = None, bits: float | None = None,
             dtype: str | None = None, quantization: str | None = None, kv_cache_dtype: str | None = None,
             context: int = 4096, users: int = 1, batch_tokens: int | None = None,
             gpu: str | GPU | None = None, gpu_memory: str | int | None = None,
             tensor_parallel_size: int | None = None, pipeline_parallel_size: int | None = None,
             method: Method = "detailed", block_size: int | None = None, enforce_eager: bool = False) -> Breakdown:
    """Estimate serving memory. ``model`` is a catalogue name, a path, a Hub id, or a ModelSpec."""
    workload = Workload(context=context, users=users, batch_tokens=batch_tokens)
    Parallelism(tensor_parallel_size, pipeline_parallel_size)
    if block_size is not None and (isinstance(block_size, bool) or not isinstance(block_size, int) or not 0 < block_size <= 65536):
        raise InputError(f"block size must be a positive number of tokens up to 65536, got {block_size!r} (e.g. --block-size 16)")
    hw = _gpu(gpu, gpu_memory)
    if method not in ("detailed", "rule-of-thumb"):
        raise InputError(f"unknown method {method!r}: use detailed or rule-of-thumb")
    if model is None:
        if params is None:
            raise InputError("give a model (name, path or Hub id) or --params N for the rule of thumb")
        if method != "rule-of-thumb":
            raise InputError("--params gives only a parameter count: use --method rule-of-thumb, or name a model for a detailed estimate")
        return _rule_breakdown(f"{params:,} parameters", params, 16 if bits is None else bits, workload, hw)
    loaded = model if isinstance(model, LoadedModel) else (
        LoadedModel(model, model.source or model.name) if isinstance(model, ModelSpec) else load_model(model))
    r = resolve(loaded.spec, dtype, quantization, kv_cache_dtype)
    if method == "rule-of-thumb":
        q = bits if bits is not None else (r.precision.scheme.bits if r.precision.scheme else float(8 * _dtype_bytes(r.precision.compute_dtype)))
        return _rule_breakdown(loaded.spec.name, count_params(loaded.spec).total, q, workload, hw)
    kw = dict(block_size=block_size, enforce_eager=enforce_eager, checkpoint_bytes=loaded.checkpoint_bytes)
    if hw is not None and tensor_parallel_size is None and pipeline_parallel_size is None:
        b = smallest_layout(r, workload, hw, **kw)
    else:
        b = breakdown_for(r, workload, tensor_parallel_size or 1, pipeline_parallel_size or 1, hw, **kw)  # type: ignore[arg-type]
    rt = rule_of_thumb(b.params, r.precision.scheme.bits if r.precision.scheme else 8 * float(_dtype_bytes(r.precision.compute_dtype)))
    return replace(b, extras={**b.extras, "rule_of_thumb_bytes": rt.total_bytes,
                              "naive_kv_bytes_per_token": naive_kv_bytes_per_token(loaded.spec.num_layers, loaded.spec.hidden_size,
                                                                                   int(ceil(r.kv_element)))})


def _dtype_bytes(dtype: str) -> Fraction:
    from vramplan.precision import DTYPE_BYTES

    return DTYPE_BYTES[dtype]


def _gpu(gpu: str | GPU | None, gpu_memory: str | int | None) -> GPU | None:
    if gpu is not None and gpu_memory is not None:
        base = gpu if isinstance(gpu, GPU) else resolve_gpu(gpu)
        return replace(custom_gpu(gpu_memory, name=base.name), name=base.name)
    if gpu_memory is not None:
        return custom_gpu(gpu_memory)
    if gpu is None or isinstance(gpu, GPU):
        return gpu
    return resolve_gpu(gpu)


def _rule_breakdown(name: str, params: int, bits: float, workload: Workload, gpu: GPU | None) -> Breakdown:
    rt = rule_of_thumb(params, bits)
    gpus = 1 if gpu is None else max(1, ceil(rt.total_bytes / gpu.memory_bytes))
    comps = (
        Component("weights", ceil(rt.weights_bytes / gpus), rt.weights_bytes, "P x 4 bytes / (32 / Q)", {"P": params, "Q": bits}),
        Component("kv_cache", 0, 0, "not part of the rule of thumb"),
        Component("activations", 0, 0, "not part of the rule of thumb"),
        Component("overhead", ceil(rt.overhead_bytes / gpus), rt.overhead_bytes, "0.2 x weights (the flat 20 %)", {"factor": 1.2}),
    )
    return Breakdown(
        model=name, method="rule-of-thumb", params=params, precision=f"{bits:g}-bit", kv_cache_dtype="n/a",
        context=workload.context, users=workload.users, tensor_parallel_size=gpus, pipeline_parallel_size=1,
        components=comps, kv_bytes_per_token=0, gpu_name=gpu.name if gpu else None,
        gpu_memory_bytes=gpu.memory_bytes if gpu else None,
        assumptions=("M = P x 4 bytes / (32 / Q) x 1.2: weights plus a flat 20 %, no context, users or KV cache",
                     "GPU count = ceil(M / GPU memory)"),
        extras={"rule_of_thumb_bytes": rt.total_bytes, "rule_of_thumb_gb": round(rt.total_bytes / 1e9, 2)},
    )
