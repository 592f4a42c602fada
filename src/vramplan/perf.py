"""Latency and throughput of a model served on a GPU layout: a roofline per engine step, then batching.

One engine step processes ``prefill_tokens`` new prompt tokens and one token for each of ``decode_seqs``
running sequences, attending over ``context_tokens`` cached tokens. Its time is

    max(compute, memory) + tensor/pipeline communication + framework overhead

* compute: 2 x active linear params per token (Kaplan et al. 2020, "Scaling Laws", C_forward ~ 2N) at a
  GEMM efficiency that grows with the tokens in the step (small GEMMs cannot fill the tensor cores), plus
  attention 4 x layers x heads x head_dim FLOPs per (query, key) pair (QK^T and PV, 2 FLOPs per MAC each;
  Korthikanti et al. 2022 count 4·b·s²·h per layer) at a separate attention-kernel efficiency;
* memory: every weight the step touches (for MoE only the experts some token routes to) plus the KV
  cache of every attended token, over HBM bandwidth at a named efficiency;
* communication: Megatron TP does 2 all-reduces per layer (Shoeybi et al. 2019) of tokens x hidden
  activations, ring cost 2(n-1)/n x bytes / link bandwidth plus a per-call latency; PP adds one
  point-to-point send per stage boundary;
* overhead: scheduler, sampling, kernel launches, per engine (:data:`ENGINES`).

On top of the step, :func:`predict` models static batches, closed-loop clients (steady state and
one-shot bursts), open-loop Poisson arrivals (Little's law fixed point for the running batch, M/D/1
queueing for the wait) and offline maximum throughput (batch bounded by KV capacity and max_num_seqs).
Everything is plain float arithmetic that also broadcasts over numpy arrays, so the planner can sweep
thousands of layouts at once.

Every efficiency is a named field with the reason for its value; none is fitted to a single benchmark
case (see ``benchmarks/perf_accuracy.py`` and ``benchmarks/results/perf.md`` for the comparison).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from vramplan.errors import InputError
from vramplan.hardware import GPU, gpu_from
from vramplan.model.load import LoadedModel, spec_of
from vramplan.model.spec import ModelSpec

if TYPE_CHECKING:
    from vramplan.engines.base import KVPool

Mode = Literal["batch", "concurrency", "burst", "rate", "max-throughput"]


# ------------------------------------------------------------------------------------------ engines
@dataclass(frozen=True)
class EngineProfile:
    """Per-engine efficiencies and overheads; each default states why it has that value.

    step_overhead_s: CPU time per step that the GPU waits for (scheduling, input prep, sampling launch).
    per_layer_overhead_s: fixed time per transformer layer per step (about 10-14 kernels each with a few
        microseconds of launch/tail latency even under CUDA graphs); dominates small-per-GPU shards.
    per_seq_overhead_s: per running sequence per step (sampling, detokenisation, block-table updates).
    bandwidth_efficiency: fraction of HBM peak reached by 16-bit decode GEMVs and paged attention.
    quant_bandwidth_efficiency: the same for weight-only-quantized kernels (dequantization costs issue
        slots: Marlin/AWQ/GGUF kernels reach less of peak than plain GEMV).
    bandwidth_cap_bytes_per_s: absolute ceiling on achieved bandwidth of the engine's mat-vec kernels
        (None = no cap); llama.cpp's kernels saturate near 1 TB/s on HBM cards.
    mfu_max: GEMM efficiency (fraction of dense tensor peak) for large token counts.
    mfu_half_tokens: tokens per step at which GEMM efficiency reaches half of mfu_max (M-dimension
        under-utilisation of tensor-core tiles for small batches).
    attention_efficiency: FlashAttention-2/3 reach 50-70 % of peak in the forward pass (Dao 2023).
    kv_bandwidth_efficiency: fraction of HBM peak the decode attention kernel reaches reading the KV
        cache (paged gathers of 16-token blocks; the vLLM paper's Fig. 18a puts its kernel 20-26 % behind
        a contiguous one), lower than the weight GEMVs.
    max_num_seqs / max_num_batched_tokens / gpu_memory_utilization: the engine's batching defaults, only
        for engines without a startup model (trtllm); 0 means "the engine's own default for the version
        and GPU asked", which :func:`build_setup` takes from the engine's ``kv_pool``.
    chunked_prefill: prefill chunks are mixed into decode steps (else prefills run as separate steps).
    num_scheduler_steps: multi-step scheduling (vLLM 0.6 --num-scheduler-steps): a new request waits for
        the running window of steps to end before its prefill, half a window on average.
    frontend_s: time a served request spends outside the GPU steps before its first token reaches the
        client: HTTP parsing, tokenisation, handing the request to the engine loop, detokenising and
        streaming the first token. A client's TTFT and end-to-end latency include it; offline static
        batches (``batch`` mode: LLM.generate, llama-bench, session benchmarks) do not. 15 ms for the
        Python/Triton HTTP servers: the floor of client-measured TTFT with a short prompt on an idle
        server (the serving cases of perf_dev.json sit 11-22 ms above their prefill's GPU time on every
        engine and GPU); llama-server tokenises in-process in C++ (~2 ms).
    """

    name: str
    step_overhead_s: float
    per_layer_overhead_s: float
    per_seq_overhead_s: float
    bandwidth_efficiency: float
    quant_bandwidth_efficiency: float
    mfu_max: float
    mfu_half_tokens: float
    attention_efficiency: float
    max_num_seqs: int = 0
    max_num_batched_tokens: int = 0
    gpu_memory_utilization: float = 0.0
    chunked_prefill: bool = True
    kv_bandwidth_efficiency: float = 0.7
    num_scheduler_steps: int = 1
    bandwidth_cap_bytes_per_s: float | None = None
    geforce_fp16_accumulate: bool = False
    frontend_s: float = 15e-3
    launch: str = ""


#: Columns of :data:`_ENGINE_ROWS`, in order (the EngineProfile fields every engine sets).
_ENGINE_COLUMNS = (
    "step_overhead_s",
    "per_layer_overhead_s",
    "per_seq_overhead_s",
    "bandwidth_efficiency",
    "quant_bandwidth_efficiency",
    "mfu_max",
    "mfu_half_tokens",
    "attention_efficiency",
    "kv_bandwidth_efficiency",
    "chunked_prefill",
    "launch",
)
_EngineRow = tuple[float, float, float, float, float, float, float, float, float, bool, str]
# fmt: off
_ENGINE_ROWS: dict[str, _EngineRow] = {
    #            step s  layer s per seq  bw    qbw   mfu  half  attn  kv bw chunked launch
    # vLLM V1 (0.6-0.10): CUDA graphs for decode, Python scheduler ~2-4 ms/step at moderate batch.
    "vllm":     (2.5e-3, 20e-6, 15e-6,  0.85, 0.75, 0.62, 96, 0.5,  0.7,  True,  "vllm serve"),
    # vLLM before 0.6: Python block manager, sampler and detokenizer ran synchronously every step; the
    # v0.6.0 release notes measured the GPU idle ~60 % of the time at high batch. No chunked prefill.
    "vllm-0.5": (3.5e-3, 20e-6, 120e-6, 0.85, 0.7,  0.6,  96, 0.45, 0.6,  False,
                 "python -m vllm.entrypoints.openai.api_server"),
    # SGLang: overlapped scheduler hides most CPU time; same kernels family (FlashInfer). Prefill runs as
    # a batch of its own, decode waits (server_args.py: enable_mixed_chunk False by default, 0.3-0.5.23).
    "sglang":   (1.5e-3, 18e-6, 10e-6,  0.85, 0.75, 0.65, 96, 0.55, 0.75, False,
                 "python -m sglang.launch_server"),
    # SGLang before 0.4: no overlap scheduler (0.4.0's "zero-overhead batch scheduler" runs the CPU work of
    # step n+1 during step n); scheduling and output processing sit between GPU steps as in vLLM 0.6+.
    "sglang-0.3": (2.5e-3, 18e-6, 15e-6, 0.85, 0.75, 0.65, 96, 0.55, 0.75, False,
                   "python -m sglang.launch_server"),
    # TensorRT-LLM: C++ runtime, fused kernels, in-flight batching; best kernels of the five.
    "trtllm":   (1.0e-3, 12e-6, 5e-6,   0.88, 0.8,  0.72, 80, 0.6,  0.8,  True,  "trtllm-serve"),
    # TGI: Rust router + Python model server; flash-decoding kernels, more per-step overhead.
    "tgi":      (3.0e-3, 20e-6, 20e-6,  0.82, 0.72, 0.55, 128, 0.45, 0.7, False,
                 "text-generation-launcher"),
    # llama.cpp: hand-written mat-vec kernels; GGUF dequant in-kernel; prefill through cuBLAS / MMQ in
    # 512-token micro-batches, which reaches a third of peak.
    "llamacpp": (0.4e-3, 8e-6,  0.0,    0.88, 0.68, 0.35, 8,  0.3,  0.5,  False, "llama-server"),
}
# fmt: on
#: Settings only some engines have (the others keep EngineProfile's defaults).
_ENGINE_EXTRAS: dict[str, dict[str, Any]] = {
    # trtllm has no startup model here: its batching defaults are its own (trtllm-serve).
    "trtllm": {
        "max_num_seqs": 2048,
        "max_num_batched_tokens": 8192,
        "gpu_memory_utilization": 0.90,
    },
    # llama.cpp kernels saturate near 1 TB/s on HBM cards; consumer cards use fp16 accumulation.
    "llamacpp": {
        "bandwidth_cap_bytes_per_s": 1.0e12,
        "geforce_fp16_accumulate": True,
        "frontend_s": 2e-3,
    },
}


def _engine(name: str, row: _EngineRow) -> EngineProfile:
    settings: dict[str, Any] = {**dict(zip(_ENGINE_COLUMNS, row)), **_ENGINE_EXTRAS.get(name, {})}
    return EngineProfile(name, **settings)


ENGINES: dict[str, EngineProfile] = {name: _engine(name, row) for name, row in _ENGINE_ROWS.items()}

ENGINE_ALIASES = {
    "tensorrt-llm": "trtllm",
    "tensorrt_llm": "trtllm",
    "trt-llm": "trtllm",
    "llama.cpp": "llamacpp",
    "llama-cpp": "llamacpp",
    "text-generation-inference": "tgi",
    "vllm-legacy": "vllm-0.5",
}


#: Engines whose older releases ran differently enough to have their own row: engine -> (the first
#: version of its current row, the row before it). ``--engine-version`` picks the row.
OLDER_ROWS: dict[str, tuple[tuple[int, ...], str]] = {
    "vllm": ((0, 6), "vllm-0.5"),
    "sglang": ((0, 4), "sglang-0.3"),
}


def engine_profile(name: str, version: str | None = None) -> EngineProfile:
    """Engine by name or common alias, its older row when ``version`` predates the current one; unknown
    names raise with the list."""
    key = ENGINE_ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in ENGINES:
        raise InputError(f"unknown engine {name!r}: use one of {', '.join(ENGINES)}")
    if version is not None and key in OLDER_ROWS:
        from vramplan.engines.base import parse_version

        first, older = OLDER_ROWS[key]
        if parse_version(version) < first:
            key = older
    return ENGINES[key]


# ------------------------------------------------------------------------------------- interconnect
@dataclass(frozen=True)
class LinkAssumptions:
    """Collective-communication constants.

    link_efficiency 0.7: NCCL ring all-reduce reaches ~70 % of unidirectional link bandwidth at MB sizes.
    nvlink_latency_s 8 us: one small all-reduce over NVLink (vLLM custom all-reduce / NCCL LL protocol).
    fabric_latency_s 20 us: AMD Infinity Fabric with RCCL, measured small-message all-reduce.
    pcie_latency_s 35 us: all-reduce through host PCIe switches (no P2P fast path).
    network_bytes_per_s 50e9 / network_latency_s 25 us: 400 Gb/s InfiniBand/RoCE between nodes.
    gpus_per_node 8: TP stays inside a node; PP beyond crosses the network.
    """

    link_efficiency: float = 0.7
    nvlink_latency_s: float = 8e-6
    fabric_latency_s: float = 20e-6
    pcie_latency_s: float = 35e-6
    network_bytes_per_s: float = 50e9
    network_latency_s: float = 25e-6
    gpus_per_node: int = 8


LINKS = LinkAssumptions()


def link_for(gpu: GPU, links: LinkAssumptions = LINKS) -> tuple[float, float, str]:
    """(unidirectional bytes/s, per-call latency s, name) of the best GPU-to-GPU link of the card.

    Catalogue NVLink / Infinity Fabric / PCIe figures are bidirectional totals; one direction is half.
    """
    ic = gpu.interconnect
    if ic.nvlink_bytes_per_s:
        return ic.nvlink_bytes_per_s / 2, links.nvlink_latency_s, "NVLink"
    if ic.infinity_fabric_bytes_per_s:
        return ic.infinity_fabric_bytes_per_s / 2, links.fabric_latency_s, "Infinity Fabric"
    return (ic.pcie_bytes_per_s or 32e9) / 2, links.pcie_latency_s, f"PCIe gen{ic.pcie_gen or '?'}"


# ------------------------------------------------------------------------------------------- setup
@dataclass(frozen=True)
class PerfSetup:
    """The model on its layout as plain numbers: everything :func:`step_time` needs, per TP rank.

    Weights are per TP rank for the whole depth (a token passes every pipeline stage in turn), so a
    step's latency is the sum over stages; pipelining only multiplies throughput.
    """

    model: str
    gpu: str
    engine: EngineProfile
    tensor_parallel_size: int
    pipeline_parallel_size: int
    layers: int
    hidden_size: int
    attn_width: int  # heads x head_dim
    dense_weight_bytes: (
        float  # non-expert weights read per step (input embedding table excluded: lookups only)
    )
    expert_weight_bytes: float  # all routed-expert weights on this rank
    num_experts: int
    experts_per_token: int
    linear_params_per_token: float  # active params in matmuls per token per rank (lm_head included)
    lm_head_params: float  # per rank; computed only for sampled tokens
    kv_bytes_per_token: float  # per rank, all layers
    kv_capacity_tokens: float  # KV pool of one replica, tokens
    peak_flops: float
    bandwidth_bytes_per_s: float
    bandwidth_efficiency: float
    link_bytes_per_s: float
    link_latency_s: float
    link_name: str
    pp_link_bytes_per_s: float
    pp_link_latency_s: float
    activation_bytes: int = 2
    compute_dtype: str = "bf16"
    weights_label: str = ""
    assumptions: tuple[str, ...] = ()
    #: The engine's own KV pool behind ``kv_capacity_tokens`` (None: core budget or given directly).
    kv_pool: KVPool | None = None

    @property
    def gpus(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size


def _moe_touched_fraction(tokens: Any, experts: int, k: int) -> Any:
    """Expected share of experts a step's tokens route to: 1 - (1 - k/E)^T (uniform routing)."""
    e = np.asarray(experts, dtype=float)
    share = np.where(e > 0, np.asarray(k, dtype=float) / np.maximum(e, 1.0), 1.0)
    return np.where(e > 0, 1.0 - np.power(1.0 - share, np.maximum(tokens, 0.0)), 0.0)


@dataclass(frozen=True)
class StepTime:
    """One step's time and its parts, seconds (floats or numpy arrays)."""

    total: Any
    compute: Any
    memory: Any
    communication: Any
    overhead: Any
    bytes_read: Any


def step_time(
    s: PerfSetup,
    prefill_tokens: Any,
    decode_seqs: Any,
    context_tokens: Any,
    prefill_seq_len: Any = None,
) -> StepTime:
    """Seconds for one engine step; broadcasts over numpy arrays.

    ``context_tokens``: cached tokens the decode sequences attend to (sum over sequences).
    ``prefill_seq_len``: length of the prompts being prefilled (for the s^2 attention term); default
    the prefill token count (one prompt).
    This is the function the simulator's step-time hook should call.
    """
    e = s.engine
    p = np.asarray(prefill_tokens, dtype=float)
    d = np.asarray(decode_seqs, dtype=float)
    ctx = np.asarray(context_tokens, dtype=float)
    sl = p if prefill_seq_len is None else np.asarray(prefill_seq_len, dtype=float)
    tokens = p + d
    # sampled tokens: decode seqs plus about one per prefilled prompt
    sampled = d + np.where(p > 0, np.maximum(p / np.maximum(sl, 1.0), 1.0), 0.0)
    # --- compute (FLOPs per rank)
    linear_flops = 2.0 * (
        (s.linear_params_per_token - s.lm_head_params) * tokens + s.lm_head_params * sampled
    )
    # attention pairs: decode attends its context, prefill a causal triangle (s/2 keys per query on average)
    pairs = ctx + p * sl / 2.0
    attn_flops = 4.0 * s.layers * s.attn_width * pairs
    mfu = e.mfu_max * tokens / (tokens + e.mfu_half_tokens)
    compute = linear_flops / (s.peak_flops * np.maximum(mfu, 1e-9)) + attn_flops / (
        s.peak_flops * e.attention_efficiency
    )
    # --- memory
    touched = _moe_touched_fraction(tokens, s.num_experts, s.experts_per_token)
    weight_read = s.dense_weight_bytes + s.expert_weight_bytes * touched
    kv_read = s.kv_bytes_per_token * (ctx + p)
    bytes_read = weight_read + kv_read
    kv_eff = np.minimum(e.kv_bandwidth_efficiency, s.bandwidth_efficiency)
    memory = weight_read / (s.bandwidth_bytes_per_s * s.bandwidth_efficiency) + kv_read / (
        s.bandwidth_bytes_per_s * kv_eff
    )
    # --- communication: 2 all-reduces per layer (Megatron), ring 2(n-1)/n x message
    tp = np.asarray(s.tensor_parallel_size, dtype=float)
    pp = np.asarray(s.pipeline_parallel_size, dtype=float)
    msg = tokens * s.hidden_size * s.activation_bytes
    per_call = s.link_latency_s + 2.0 * (tp - 1) / tp * msg / (
        np.asarray(s.link_bytes_per_s) * LINKS.link_efficiency
    )
    comm = np.where(tp > 1, 2.0 * s.layers * per_call, 0.0)
    comm = comm + np.where(
        pp > 1, (pp - 1) * (s.pp_link_latency_s + msg / np.asarray(s.pp_link_bytes_per_s)), 0.0
    )
    overhead = (
        e.step_overhead_s + e.per_layer_overhead_s * s.layers + e.per_seq_overhead_s * (d + (p > 0))
    )
    total = np.maximum(compute, memory) + comm + overhead
    return StepTime(total, compute, memory, comm, overhead, bytes_read)


def step_seconds(s: PerfSetup, prefill_tokens: int, decode_seqs: int, context_tokens: int) -> float:
    """Scalar convenience for the simulator: seconds of one step."""
    return float(step_time(s, prefill_tokens, decode_seqs, context_tokens).total)


def decode_bound_tokens_per_s(s: PerfSetup, batch: float, context: float) -> float:
    """The physical ceiling: batch x HBM bandwidth / bytes read per decode step (100 % bandwidth)."""
    st = step_time(s, 0, batch, batch * context)
    return float(batch * s.bandwidth_bytes_per_s / st.bytes_read)


# ----------------------------------------------------------------------------------------- building
def _geforce(gpu: GPU) -> bool:
    return (
        gpu.name.upper().startswith("RTX-")
        and "A6000" not in gpu.name.upper()
        and "ADA" not in gpu.name.upper()
    )


def build_setup(
    model: str | ModelSpec | LoadedModel,
    gpu: str | GPU,
    *,
    engine: str = "vllm",
    tensor_parallel_size: int = 1,
    pipeline_parallel_size: int = 1,
    dtype: str | None = None,
    quantization: str | None = None,
    kv_cache_dtype: str | None = None,
    gpu_memory_utilization: float | None = None,
    max_model_len: int | None = None,
    kv_capacity_tokens: float | None = None,
    engine_overrides: dict[str, Any] | None = None,
    engine_version: str | None = None,
    enforce_eager: bool = False,
) -> PerfSetup:
    """Resolve names and use the core's exact weight/KV bytes to build a :class:`PerfSetup`.

    The KV pool and the batching defaults (max_num_seqs, max_num_batched_tokens, utilization) are the
    engine's own for ``engine_version`` on this GPU, from the engine model's ``kv_pool`` (the figures
    `vramplan vllm` / `vramplan sglang` print); engines without a startup model (trtllm, tgi,
    llamacpp) use the core's memory budget and this module's profile. ``engine_overrides`` replaces
    engine settings (max_num_seqs, max_num_batched_tokens, chunked_prefill, gpu_memory_utilization)
    with what a deployment actually uses. ``max_model_len`` defaults to the model's maximum.
    ``quantization`` "fp4"/"nvfp4" stores 4-bit weights and computes on the card's fp4 tensor cores.
    """
    from vramplan.estimator import check_parallelism, resolve
    from vramplan.memory.kv_cache import kv_bytes_per_token
    from vramplan.memory.weights import weight_bytes
    from vramplan.model.params import count_params

    prof = engine_profile(engine, engine_version)
    overrides = dict(engine_overrides or {})
    fp4 = quantization is not None and quantization.strip().lower() in ("fp4", "nvfp4")
    if fp4:
        quantization = "w4a16"
    hw = gpu_from(gpu, required=True)
    spec = _spec(model)
    tp, pp = tensor_parallel_size, pipeline_parallel_size
    if tp < 1 or pp < 1:
        raise InputError(f"tensor/pipeline parallel sizes must be >= 1, got TP {tp}, PP {pp}")
    check_parallelism(spec, tp, pp)
    r = resolve(spec, dtype, quantization, kv_cache_dtype)
    pool = engine_kv_pool(
        spec,
        hw,
        engine,
        tp,
        pp,
        dtype,
        quantization,
        kv_cache_dtype,
        max_model_len,
        engine_version,
        overrides,
        enforce_eager,
    )
    if pool is not None:
        # The engine's own defaults for its version and this GPU, unless the caller set them.
        prof = replace(
            prof,
            max_num_seqs=pool.max_num_seqs,
            max_num_batched_tokens=pool.max_num_batched_tokens,
            gpu_memory_utilization=pool.gpu_memory_utilization,
        )
        if kv_capacity_tokens is None:
            kv_capacity_tokens = float(pool.kv_cache_tokens)
    if overrides:
        prof = replace(prof, **overrides)
    if hw.memory_bandwidth_bytes_per_s is None:
        raise InputError(
            f"GPU {hw.name} has no memory bandwidth in the catalogue: add memory_bandwidth_bytes_per_s to a user GPU file"
        )
    assumptions: list[str] = []
    w = weight_bytes(spec, r.precision, tp, 1)
    comp = w.by_component_per_gpu
    experts = float(comp.get("experts", 0))
    dense = float(sum(comp.values())) - experts
    if not spec.tie_word_embeddings:
        dense -= comp.get("embeddings", 0)  # the input table is gathered, not streamed
    pc = count_params(spec)
    lm_head = float(pc.by_component.get("lm_head", 0) or pc.embedding) / tp
    linear = float(pc.active_per_token - pc.embedding - pc.by_component.get("norms", 0)) / tp
    if not pc.by_component.get("lm_head"):
        linear += lm_head  # tied embeddings: the table doubles as lm_head
    kv_tok = float(kv_bytes_per_token(spec, r.kv_element, tp))
    # --- compute dtype: fp8 tensor cores when weights and activations are fp8 (W8A8) and the card has them
    scheme = r.precision.scheme
    flops = hw.flops
    compute_dtype = "bf16" if r.precision.compute_dtype == "bfloat16" else "fp16"
    peak = flops.for_dtype(compute_dtype) or flops.fp16 or flops.bf16 or flops.fp32
    if scheme is not None and scheme.bits == 8 and scheme.name.startswith(("fp8", "w8a8")):
        if flops.fp8:
            peak, compute_dtype = flops.fp8, "fp8"
        else:
            assumptions.append(
                f"{hw.name} has no fp8 tensor cores: fp8 weights are upcast (weight-only), bf16 compute"
            )
    if fp4:
        if flops.fp4:
            peak, compute_dtype = flops.fp4, "fp4"
        else:
            assumptions.append(
                f"{hw.name} has no fp4 tensor cores: fp4 weights run weight-only (bf16 compute)"
            )
    if peak is None:
        raise InputError(
            f"GPU {hw.name} has no FLOP/s figure for {compute_dtype}: add flops to a user GPU file"
        )
    if prof.geforce_fp16_accumulate and _geforce(hw) and compute_dtype != "fp8":
        peak *= 2
        assumptions.append(
            "GeForce card: fp16-accumulate tensor rate (2x the listed fp32-accumulate figure)"
        )
    # GGUF weights carry a per-tensor layout instead of a scheme; unquantized GGUF types read as 16-bit
    layout = r.precision.layout
    gguf_quantized = layout is not None and layout.default not in ("F32", "F16", "BF16")
    quantized_weight_only = (scheme is not None or gguf_quantized) and compute_dtype not in (
        "fp8",
        "fp4",
    )
    bw_eff = prof.quant_bandwidth_efficiency if quantized_weight_only else prof.bandwidth_efficiency
    bw = float(hw.memory_bandwidth_bytes_per_s)
    if prof.bandwidth_cap_bytes_per_s and bw * bw_eff > prof.bandwidth_cap_bytes_per_s:
        bw_eff = prof.bandwidth_cap_bytes_per_s / bw
        assumptions.append(
            f"{prof.name} mat-vec kernels saturate near {prof.bandwidth_cap_bytes_per_s / 1e12:.1f} TB/s"
        )
    link_bw, link_lat, link_name = link_for(hw)
    if pp > 1 and tp * pp > LINKS.gpus_per_node:
        pp_bw, pp_lat = LINKS.network_bytes_per_s, LINKS.network_latency_s
        assumptions.append(
            f"TP {tp} x PP {pp} spans nodes: stage-to-stage sends over a 400 Gb/s network"
        )
    else:
        pp_bw, pp_lat = link_bw, link_lat
    # --- KV capacity: GPU x utilization minus the core's non-KV bytes, per pipeline stage
    util = (
        gpu_memory_utilization
        if gpu_memory_utilization is not None
        else prof.gpu_memory_utilization
    )
    if kv_capacity_tokens is None:
        fixed, per_tok_stage = fixed_bytes_per_gpu(
            spec,
            dtype,
            quantization,
            kv_cache_dtype,
            tp,
            pp,
            max_model_len or spec.max_position_embeddings,
            prof.max_num_batched_tokens,
        )
        free = hw.memory_bytes * util - fixed
        kv_capacity_tokens = math.floor(max(free, 0.0) / per_tok_stage) if per_tok_stage else 0
    attn_width = spec.num_heads * (spec.head_dim + spec.v_head_dim) / 2 / tp
    return PerfSetup(
        model=spec.name,
        gpu=hw.name,
        engine=prof,
        tensor_parallel_size=tp,
        pipeline_parallel_size=pp,
        layers=spec.num_layers,
        hidden_size=spec.hidden_size,
        attn_width=attn_width,  # type: ignore[arg-type]  # a mean of q and v widths, may be fractional
        dense_weight_bytes=dense,
        expert_weight_bytes=experts,
        num_experts=spec.moe.num_experts if spec.moe else 0,
        experts_per_token=spec.moe.experts_per_token if spec.moe else 0,
        linear_params_per_token=linear,
        lm_head_params=lm_head,
        kv_bytes_per_token=kv_tok,
        kv_capacity_tokens=float(kv_capacity_tokens),
        peak_flops=float(peak),
        bandwidth_bytes_per_s=bw,
        bandwidth_efficiency=bw_eff,
        link_bytes_per_s=link_bw,
        link_latency_s=link_lat,
        link_name=link_name,
        pp_link_bytes_per_s=pp_bw,
        pp_link_latency_s=pp_lat,
        compute_dtype=compute_dtype,
        weights_label=r.precision.label,
        assumptions=tuple(assumptions),
        kv_pool=pool,
    )


#: Settings an engine's KV pool depends on, which ``engine_overrides`` may carry.
_POOL_SETTINGS = ("gpu_memory_utilization", "max_num_seqs", "max_num_batched_tokens")


def engine_kv_pool(
    spec: ModelSpec,
    gpu: GPU,
    engine: str,
    tp: int,
    pp: int,
    dtype: str | None,
    quantization: str | None,
    kv_cache_dtype: str | None,
    max_model_len: int | None,
    engine_version: str | None,
    overrides: dict[str, Any] | None = None,
    enforce_eager: bool = False,
) -> KVPool | None:
    """The engine's own KV pool for this layout (None for engines without a startup model)."""
    from vramplan.engines.base import engine_model
    from vramplan.scenario import EngineSettings, Hardware, Precision, Scenario

    found = engine_model(engine)
    if found is None:
        return None
    model, implied_version = found
    o = overrides or {}
    scenario = Scenario(
        spec,
        Precision(dtype=dtype, quantization=quantization, kv_cache_dtype=kv_cache_dtype),
        hardware=Hardware(gpu=gpu, tensor_parallel_size=tp, pipeline_parallel_size=pp),
        engine=EngineSettings(
            engine=model.name,
            engine_version=engine_version or implied_version,
            max_model_len=max_model_len,
            enforce_eager=enforce_eager,
            **{k: o[k] for k in _POOL_SETTINGS if o.get(k) is not None},
        ),
    )
    return model.kv_pool(scenario)


@lru_cache(maxsize=8192)
def fixed_bytes_per_gpu(
    spec: ModelSpec,
    dtype: str | None,
    quantization: str | None,
    kv_cache_dtype: str | None,
    tp: int,
    pp: int,
    max_model_len: int,
    batch_tokens: int,
) -> tuple[int, float]:
    """(non-KV bytes on the busiest GPU from the core's breakdown, KV bytes per token on one stage's GPU)."""
    from vramplan.estimator import breakdown_for, resolve
    from vramplan.memory.kv_cache import kv_bytes_per_token
    from vramplan.memory.weights import pp_layer_split
    from vramplan.scenario import Workload

    r = resolve(spec, dtype, quantization, kv_cache_dtype)
    b = breakdown_for(
        r, Workload(context=max_model_len, users=1, batch_tokens=batch_tokens), tp, pp, None
    )
    fixed = b.per_gpu_bytes - b.component("kv_cache").per_gpu_bytes
    stage_layers = max(pp_layer_split(spec.num_layers, pp))
    return fixed, float(kv_bytes_per_token(spec, r.kv_element, tp)) * stage_layers / spec.num_layers


def _spec(model: str | ModelSpec | LoadedModel) -> ModelSpec:
    return spec_of(model)


# ------------------------------------------------------------------------------------------ results
@dataclass(frozen=True)
class PerfResult:
    """Predicted serving figures for one workload; times in ms/s as named, rates per second."""

    mode: str
    engine: str
    batch_size: float
    ttft_ms: float
    tpot_ms: float
    itl_ms: float
    latency_s: float
    output_tokens_per_s: float
    total_tokens_per_s: float
    requests_per_s: float
    input_len: int
    output_len: int
    decode_step_ms: float
    prefill_ms: float
    bound: str
    physical_max_output_tokens_per_s: float
    #: The KV pool of one replica in tokens, as the engine logs it (`vramplan vllm` prints the same).
    kv_cache_tokens: int
    utilization: float | None = None
    stable: bool = True
    assumptions: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    #: With a dataset: its name, source and mean/p50/p99 input and output lengths (None: fixed lengths).
    dataset: dict[str, Any] | None = None
    #: With a dataset: end-to-end latency of the median and the 99th-percentile output length.
    latency_p50_s: float | None = None
    latency_p99_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["assumptions"] = list(self.assumptions)
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}


def _f(x: Any) -> float:
    return float(np.asarray(x))


def _prefill_time(
    s: PerfSetup,
    prompt_tokens: float,
    seq_len: float,
    decode_seqs: float = 0.0,
    context: float = 0.0,
) -> tuple[float, float]:
    """(seconds, chunks) to prefill ``prompt_tokens`` in the engine's chunk budget beside a decode batch."""
    e = s.engine
    budget = max(e.max_num_batched_tokens - (decode_seqs if e.chunked_prefill else 0), 1)
    if not e.chunked_prefill:
        budget = max(budget, seq_len)  # a whole prompt is one step when chunking is off
    chunks = max(math.ceil(prompt_tokens / budget), 1)
    chunk = prompt_tokens / chunks
    dec = decode_seqs if e.chunked_prefill else 0.0
    t = _f(
        step_time(
            s,
            chunk,
            dec,
            context if dec else 0.0,
            min(seq_len, max(chunk, 1.0)) if seq_len > chunk else seq_len,
        ).total
    )
    return t * chunks, chunks


@dataclass(frozen=True)
class LengthMix:
    """The request lengths a prediction runs on, as the few moments the batching model needs.

    input_tokens / output_tokens: mean prompt and output lengths.
    prefill_seq_tokens: E[in^2] / E[in], the prompt length that gives a mix of prompts its summed
        causal-attention pairs (sum of in^2 / 2); equals the prompt length when all are equal.
    resident_tokens: mean KV tokens of a running sequence, E[out (in + out / 2)] / E[out]: a request
        stays for its output's steps, so long outputs are over-represented in the running batch; with
        fixed lengths it is in + out / 2.
    output_p50_tokens / output_p99_tokens: output-length percentiles (end-to-end latency percentiles).
    max_total_tokens: the longest request (prompt + output), the default max_model_len.
    synchronised: every request has the same lengths, so closed-loop clients finish and re-send
        together (waves); a length mix spreads them out.
    dataset: name, source and mean/p50/p99 of the lengths, for the output (None for fixed lengths).
    """

    input_tokens: float
    output_tokens: float
    prefill_seq_tokens: float
    resident_tokens: float
    output_p50_tokens: float
    output_p99_tokens: float
    max_total_tokens: int
    synchronised: bool = True
    dataset: dict[str, Any] | None = None
    prefix_hit_rate: float = 0.0

    @property
    def prefill_tokens(self) -> float:
        """Mean prompt tokens a request prefills: those not found in the prefix cache."""
        return self.input_tokens * (1.0 - self.prefix_hit_rate)

    @property
    def prefill_attention_tokens(self) -> float:
        """The ``prefill_seq_len`` that gives the prefilled tokens their attention pairs.

        A prompt of L tokens with a cached prefix of hL prefills (1-h)L tokens that each attend to the
        prefix and, causally, to half the rest: (1-h)L x L(1+h)/2 pairs, i.e. a length of L(1+h) in
        :func:`step_time`'s ``p x s / 2``; over a mix, E[L^2]/E[L] x (1+h).
        """
        return self.prefill_seq_tokens * (1.0 + self.prefix_hit_rate)

    @classmethod
    def fixed(cls, input_len: int, output_len: int) -> LengthMix:
        return cls(
            input_len,
            output_len,
            input_len,
            input_len + output_len / 2.0,
            output_len,
            output_len,
            input_len + output_len,
        )

    @classmethod
    def from_samples(
        cls, prompt_len: Any, output_len: Any, dataset: dict[str, Any] | None = None
    ) -> LengthMix:
        """Moments of per-request (prompt, output) lengths; equal rows give :meth:`fixed`'s figures."""
        i = np.asarray(prompt_len, dtype=float)
        o = np.asarray(output_len, dtype=float)
        if i.size == 0 or i.shape != o.shape or i.min() < 1 or o.min() < 1:
            raise InputError(
                "request lengths need one prompt and one output length >= 1 per request"
            )
        if i.min() == i.max() and o.min() == o.max():
            return replace(cls.fixed(int(i[0]), int(o[0])), dataset=dataset)
        return cls(
            float(i.mean()),
            float(o.mean()),
            float((i * i).mean() / i.mean()),
            float((o * (i + o / 2.0)).mean() / o.mean()),
            float(np.percentile(o, 50)),
            float(np.percentile(o, 99)),
            int((i + o).max()),
            synchronised=False,
            dataset=dataset,
        )


def _mixed_cycle(
    s: PerfSetup, batch: float, mix: LengthMix, arrivals_per_step: float | None = None
) -> tuple[float, float, float]:
    """Steady continuous batching of ``batch`` sequences: (cycle s, decode step s, extra s per prefill).

    In one cycle every running sequence emits its output tokens and is replaced once, so the cycle is
    mean-output decode steps plus ``batch`` prompts' worth of prefill work mixed in (its marginal cost).
    An engine that runs prefills as steps of their own (no mixing) prefills together the prompts
    waiting when a step ends: as many as fit the token budget when saturated, or the
    ``arrivals_per_step`` of an open loop (at least one), each such step reading every weight again.
    """
    i, sl = mix.prefill_tokens, mix.prefill_attention_tokens
    t_dec = _f(step_time(s, 0, batch, batch * mix.resident_tokens).total)
    e = s.engine
    if e.chunked_prefill:
        chunk = float(min(max(e.max_num_batched_tokens - batch, 64), max(batch * i, 1)))
        t_mix = _f(
            step_time(
                s, chunk, batch, batch * mix.resident_tokens, min(sl, chunk) if sl > chunk else sl
            ).total
        )
        extra_per_prompt = (t_mix - t_dec) * i / chunk
    else:
        # separate prefill steps of the waiting prompts, as many as fit the token budget
        per: float = max(1, min(int(e.max_num_batched_tokens // max(i, 1)), int(batch)))
        if arrivals_per_step is not None:
            per = min(max(arrivals_per_step, 1.0), per)
        extra_per_prompt = _f(step_time(s, per * i, 0, 0, sl).total) / per
    steps = max(mix.output_tokens - 1, 0)
    cycle = steps * t_dec + batch * extra_per_prompt
    return cycle, t_dec, extra_per_prompt


def max_batch(s: PerfSetup, mix: LengthMix, max_num_seqs: int | None = None) -> float:
    """Running sequences the engine sustains: KV pool / mean tokens per sequence, capped at max_num_seqs.

    Engines admit by free blocks and a running sequence holds on average its prompt plus what it has
    generated (preemption reclaims blocks at the peak), so the pool divides by the mix's resident
    tokens (input + output / 2 for fixed lengths).
    """
    cap = max_num_seqs or s.engine.max_num_seqs
    per_seq = mix.resident_tokens
    by_kv = s.kv_capacity_tokens / per_seq if per_seq else cap
    return float(max(min(cap, math.floor(by_kv)), 0))


def predict(
    setup: PerfSetup,
    input_len: int,
    output_len: int,
    *,
    batch_size: int | None = None,
    concurrency: int | None = None,
    burst: bool = False,
    request_rate: float | None = None,
    max_throughput: bool = False,
    max_num_seqs: int | None = None,
    lengths: LengthMix | None = None,
    prefix_hit_rate: float = 0.0,
) -> PerfResult:
    """Predict TTFT, TPOT, ITL, latency and throughput for one load pattern.

    Exactly one of ``batch_size`` (static batch), ``concurrency`` (closed loop of C clients, or a one-shot
    burst of C requests with ``burst``), ``request_rate`` (open loop, Poisson) or ``max_throughput``.
    ``lengths``: a dataset's length mix (:meth:`LengthMix.from_samples`); without it every request has
    ``input_len`` prompt and ``output_len`` output tokens. Figures are per mean request.
    ``prefix_hit_rate``: share of each prompt already in the prefix cache; only the rest is prefilled
    (the KV a running sequence holds is unchanged: its blocks are shared, not absent).
    """
    s = setup
    chosen = sum(
        x is not None and x is not False for x in (batch_size, concurrency, request_rate)
    ) + bool(max_throughput)
    if chosen != 1:
        raise InputError(
            "give exactly one of --batch-size, --concurrency, --request-rate or --max-throughput"
        )
    if lengths is None:
        if input_len < 1 or output_len < 1:
            raise InputError(
                f"input and output lengths must be >= 1 token, got {input_len} and {output_len}"
            )
        lengths = LengthMix.fixed(input_len, output_len)
    if not 0.0 <= prefix_hit_rate < 1.0:
        raise InputError(
            f"prefix-cache hit rate must be in [0, 1), got {prefix_hit_rate:g}: a share of each prompt"
        )
    mix = replace(lengths, prefix_hit_rate=prefix_hit_rate) if prefix_hit_rate else lengths
    i, o, resident = mix.input_tokens, mix.output_tokens, mix.resident_tokens
    # the prefill work of one prompt: its tokens not found in the prefix cache
    i_new, sl = mix.prefill_tokens, mix.prefill_attention_tokens
    for name, v in (("batch size", batch_size), ("concurrency", concurrency)):
        if v is not None and v < 1:
            raise InputError(f"{name} must be >= 1, got {v}")
    if request_rate is not None and not request_rate > 0:
        raise InputError(f"request rate must be > 0 req/s, got {request_rate}")
    if s.kv_capacity_tokens < i + 1:
        raise InputError(
            f"the KV cache of {s.model} on {s.gpus}x {s.gpu} holds {s.kv_capacity_tokens:,.0f} tokens, "
            f"less than one {i + o:,.0f}-token request: use more GPUs, fp8 KV or shorter inputs"
        )
    assumptions = list(s.assumptions) + _standard_assumptions(s)
    if mix.dataset is not None:
        assumptions.append(_dataset_assumption(mix))
    if mix.prefix_hit_rate:
        assumptions.append(
            f"prefix cache: {mix.prefix_hit_rate:.0%} of each prompt is cached, "
            f"{i_new:,.0f} of {i:,.0f} tokens prefilled"
        )
    b_max = max(max_batch(s, mix, max_num_seqs), 1.0)
    pp = s.pipeline_parallel_size
    # Pipeline parallelism keeps pp micro-batches in flight; the engine splits the running batch between them.
    pp_gain = pp * PIPELINE_EFFICIENCY if pp > 1 else 1.0
    utilization: float | None = None
    stable = True
    details: dict[str, Any] = {"max_batch": b_max}
    steps = max(o - 1, 0)
    if batch_size is not None:
        mode = "batch"
        b = float(batch_size)
        if b > s.engine.max_num_seqs and s.engine.name != "trtllm":
            assumptions.append(
                f"static batch {batch_size} above the engine default max_num_seqs {s.engine.max_num_seqs}"
            )
        prefill, _ = _prefill_time(s, b * i_new, sl)
        ttft = prefill
        t_dec = _f(step_time(s, 0, b, b * resident).total)
        latency = ttft + steps * t_dec
        tpot = t_dec
        rps = b / latency
        batch = b
    elif max_throughput or (concurrency is not None):
        if max_throughput:
            mode = "max-throughput"
            c = b_max
        else:
            mode = "burst" if burst else "concurrency"
            c = float(concurrency)  # type: ignore[arg-type]
        batch = min(c, b_max)
        cycle, t_dec, extra = _mixed_cycle(s, batch, mix)
        steady_rps = batch / (cycle / pp_gain)
        steady_tpot = cycle / max(steps, 1) if o > 1 else t_dec
        one_prefill, _ = _prefill_time(s, i_new, sl, batch - 1, (batch - 1) * resident)
        # One wave: `batch` requests arrive together; the k-th prompt's first token waits for the k-1 prompts
        # before it; every request then decodes while the later prompts are still being prefilled.
        alone, _ = _prefill_time(s, batch * i_new, sl)
        wave = alone + steps * t_dec
        first_ttft = alone * (batch + 1) / (2 * batch)
        wave_tpot = (wave - first_ttft) / max(steps, 1) if o > 1 else t_dec
        if mode == "max-throughput":
            ttft, tpot, rps = one_prefill + 0.5 * t_dec, steady_tpot, steady_rps
        elif c <= b_max and (mode == "burst" or mix.synchronised):
            # a burst, or closed-loop clients with identical lengths: they finish together and re-send
            # together, so they stay synchronised in waves (observed in fixed-length closed-loop runs)
            ttft, tpot = first_ttft, wave_tpot
            rps = c / (wave / pp_gain)
        elif mode == "burst":
            rest = c - batch
            later_ttft = (
                one_prefill + rest / 2 / steady_rps
            )  # wait for a slot at the completion rate
            ttft = (batch * first_ttft + rest * later_ttft) / c
            tpot = (batch * wave_tpot + rest * steady_tpot) / c
            rps = c / (wave / pp_gain + rest / steady_rps)
        else:
            # clients that desynchronise (more than the engine runs, or lengths that differ): each new
            # request's prompt joins a running batch; waiting ones queue (Little's law)
            ttft = one_prefill + 0.5 * t_dec + max(c - b_max, 0.0) / steady_rps
            tpot, rps = steady_tpot, steady_rps
        latency = ttft + steps * tpot
    else:
        mode = "rate"
        r = float(request_rate)  # type: ignore[arg-type]
        cap_cycle, _, _ = _mixed_cycle(s, b_max, mix)
        r_max = b_max / (cap_cycle / pp_gain)
        utilization = r / r_max
        batch = 1.0
        tpot = t_dec = _f(step_time(s, 0, 1, i).total)
        for _ in range(60):  # fixed point: batch = rate x residence time (Little)
            cycle, t_dec, extra = _mixed_cycle(s, batch, mix, arrivals_per_step=r * t_dec)
            busy = r * extra  # share of time spent on prefill work
            if busy >= 1:
                break
            tpot = t_dec / (1 - busy)
            new = min(max(r * (o * tpot) / pp_gain, 1.0), b_max)
            if abs(new - batch) < 1e-3:
                batch = new
                break
            batch = 0.5 * batch + 0.5 * new
        one_prefill, _ = _prefill_time(s, i_new, sl, batch, batch * resident)
        if utilization < 1:
            wait = utilization / (2 * (1 - utilization)) * one_prefill  # M/D/1 queue on admission
            stable = True
            rps = r
        else:
            wait = math.inf
            stable = False
            rps = r_max
            batch = b_max
            assumptions.append(
                f"offered {r:g} req/s exceeds capacity {r_max:.3g} req/s: the queue grows without bound"
            )
        # multi-step scheduling: a new request waits for the running window of steps to end
        ttft = one_prefill + 0.5 * t_dec * max(s.engine.num_scheduler_steps, 1) + wait
        latency = ttft + steps * tpot
        details["max_requests_per_s"] = r_max
    if mode != "batch" and s.engine.frontend_s:
        # a served request's first token also waits for the HTTP front end (offline batches do not)
        ttft += s.engine.frontend_s
        latency += s.engine.frontend_s
        assumptions.append(
            f"TTFT and latency include {s.engine.frontend_s * 1e3:g} ms in the serving front end "
            "(HTTP, tokenisation, streaming the first token)"
        )
    out_tps = rps * o
    total_tps = rps * (i + o)
    dec = step_time(s, 0, batch, batch * resident)
    bound = "compute" if _f(dec.compute) > _f(dec.memory) else "memory"
    phys = decode_bound_tokens_per_s(s, max(batch, 1.0), resident) * (pp if pp > 1 else 1)
    prefill_ms = _prefill_time(s, i_new, sl)[0] * 1e3
    itl = tpot
    return PerfResult(
        mode=mode,
        engine=s.engine.name,
        batch_size=round(batch, 2),
        ttft_ms=ttft * 1e3,
        tpot_ms=tpot * 1e3,
        itl_ms=itl * 1e3,
        latency_s=latency,
        output_tokens_per_s=out_tps,
        total_tokens_per_s=total_tps,
        requests_per_s=rps,
        input_len=round(i),
        output_len=round(o),
        decode_step_ms=_f(dec.total) * 1e3,
        prefill_ms=prefill_ms,
        bound=bound,
        physical_max_output_tokens_per_s=phys,
        kv_cache_tokens=int(s.kv_capacity_tokens),
        utilization=utilization,
        stable=stable,
        assumptions=tuple(assumptions),
        details=details,
        dataset=mix.dataset,
        latency_p50_s=None
        if mix.dataset is None
        else ttft + max(mix.output_p50_tokens - 1, 0) * tpot,
        latency_p99_s=None
        if mix.dataset is None
        else ttft + max(mix.output_p99_tokens - 1, 0) * tpot,
    )


def _dataset_assumption(mix: LengthMix) -> str:
    d = mix.dataset or {}
    return (
        f"dataset {d.get('name')}: mean {mix.input_tokens:.0f} in / {mix.output_tokens:.0f} out; "
        f"a running sequence holds {mix.resident_tokens:.0f} KV tokens on average (long outputs stay "
        "longer); figures are per mean request"
    )


#: Share of ideal PP throughput kept after bubbles and uneven stages (GPipe bubble (p-1)/(m+p-1) with
#: the engine keeping about 2p micro-batches in flight gives ~0.8 for p = 2..4).
PIPELINE_EFFICIENCY = 0.8


def _standard_assumptions(s: PerfSetup) -> list[str]:
    e = s.engine
    out = [
        f"engine {e.name}: {e.step_overhead_s * 1e3:g} ms per step + {e.per_layer_overhead_s * 1e6:g} us per layer "
        f"+ {e.per_seq_overhead_s * 1e6:g} us per sequence of framework overhead",
        f"HBM {s.bandwidth_bytes_per_s / 1e12:.2f} TB/s at {s.bandwidth_efficiency:.0%} efficiency for weight and KV reads",
        f"{s.compute_dtype} tensor peak {s.peak_flops / 1e12:.0f} TFLOP/s, GEMM efficiency {e.mfu_max:.0%} x T/(T+{e.mfu_half_tokens:g}) "
        f"for T tokens per step; attention at {e.attention_efficiency:.0%}",
        f"KV pool {s.kv_capacity_tokens:,.0f} tokens at gpu_memory_utilization {e.gpu_memory_utilization:g}; "
        f"max_num_seqs {e.max_num_seqs}, {e.max_num_batched_tokens} batched tokens per step",
    ]
    if s.tensor_parallel_size > 1:
        out.append(
            f"TP {s.tensor_parallel_size}: 2 all-reduces per layer over {s.link_name} "
            f"({s.link_bytes_per_s / 1e9:.0f} GB/s one way at {LINKS.link_efficiency:.0%}, {s.link_latency_s * 1e6:g} us per call)"
        )
    if s.pipeline_parallel_size > 1:
        out.append(
            f"PP {s.pipeline_parallel_size}: throughput x {s.pipeline_parallel_size} x {PIPELINE_EFFICIENCY} (bubbles); latency sums the stages"
        )
    if s.num_experts:
        out.append(
            f"MoE: a step reads the experts its tokens route to, E x (1 - (1 - k/E)^T) of {s.num_experts} (uniform routing)"
        )
    return out


def perf(
    model: str | ModelSpec | LoadedModel,
    gpu: str | GPU,
    *,
    input_len: int | None = None,
    output_len: int | None = None,
    engine: str = "vllm",
    tensor_parallel_size: int | None = None,
    pipeline_parallel_size: int | None = None,
    dtype: str | None = None,
    quantization: str | None = None,
    kv_cache_dtype: str | None = None,
    batch_size: int | None = None,
    concurrency: int | None = None,
    request_rate: float | None = None,
    max_throughput: bool = False,
    burst: bool = False,
    max_num_seqs: int | None = None,
    gpu_memory_utilization: float | None = None,
    max_num_batched_tokens: int | None = None,
    max_model_len: int | None = None,
    engine_version: str | None = None,
    enforce_eager: bool = False,
    lengths: LengthMix | None = None,
    prefix_hit_rate: float | None = None,
) -> PerfResult:
    """One call from names to a :class:`PerfResult` (the API behind ``vramplan perf``).

    Give ``input_len`` and ``output_len``, or ``lengths``: a dataset's mix
    (``vramplan.simulate.workload.length_mix("sharegpt")``). Engine settings left None take the
    engine's defaults for ``engine_version`` on this GPU; ``max_model_len`` defaults to the longest
    request (``input_len + output_len``, or the dataset's longest pair).
    """
    from vramplan.scenario_fields import check

    for name, value in (
        ("input_len", input_len),
        ("output_len", output_len),
        ("tensor_parallel_size", tensor_parallel_size),
        ("pipeline_parallel_size", pipeline_parallel_size),
        ("batch_size", batch_size),
        ("concurrency", concurrency),
        ("request_rate", request_rate),
        ("max_num_seqs", max_num_seqs),
        ("gpu_memory_utilization", gpu_memory_utilization),
        ("max_num_batched_tokens", max_num_batched_tokens),
        ("max_model_len", max_model_len),
        ("prefix_hit_rate", prefix_hit_rate),
    ):
        check(name, value)
    if lengths is None and (input_len is None or output_len is None):
        raise InputError("perf needs --input-len and --output-len, or --dataset")
    if batch_size is None and concurrency is None and request_rate is None and not max_throughput:
        batch_size = 1
    overrides = {
        k: v
        for k, v in (
            ("max_num_seqs", max_num_seqs),
            ("gpu_memory_utilization", gpu_memory_utilization),
            ("max_num_batched_tokens", max_num_batched_tokens),
        )
        if v is not None
    }
    s = build_setup(
        model,
        gpu,
        engine=engine,
        tensor_parallel_size=tensor_parallel_size or 1,
        pipeline_parallel_size=pipeline_parallel_size or 1,
        dtype=dtype,
        quantization=quantization,
        kv_cache_dtype=kv_cache_dtype,
        max_model_len=max_model_len
        or (lengths.max_total_tokens if lengths else (input_len or 0) + (output_len or 0)),
        engine_overrides=overrides,
        engine_version=engine_version,
        enforce_eager=enforce_eager,
    )
    return predict(
        s,
        input_len or 0,
        output_len or 0,
        lengths=lengths,
        batch_size=batch_size,
        concurrency=concurrency,
        burst=burst,
        request_rate=request_rate,
        max_throughput=max_throughput,
        prefix_hit_rate=prefix_hit_rate or 0.0,
    )
