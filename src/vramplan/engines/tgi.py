"""Hugging Face TGI startup memory: the warm-up prefill decides the KV block count.

Why this shape: TGI runs one prefill of ``--max-batch-prefill-tokens`` tokens, then takes whatever is
free minus ``(1 - cuda_memory_fraction x TGI_WIGGLE_ROOM) x total`` as KV blocks (torch's caching
allocator keeps the prefill peak reserved, so it is held back implicitly). The token budget it logs
("Setting max batch total tokens to N") is ``num_blocks x block_size`` and any user
``--max-batch-total-tokens`` is ignored for flash models. Source: design/engine-memory.md 3.1
(``flash_causal_lm.py`` ``warmup``, ``globals.py``, ``backends/v3/src/block_allocator.rs``).
TGI logs GB = 10**9 B; its KV figure is a token count, so no unit conversion is involved.

Old TGI (0.9.x-1.0.x, the first releases that inferred the budget) sized it differently: ``num_blocks =
(0.98 x total - torch.cuda.max_memory_reserved()) // block_bytes + warm-up blocks`` ("0.98 to add some
wiggle room", ``flash_causal_lm.py`` ``warmup``). The torch peak keeps the warm-up prefill's activations and
the logits of every prefill token (the router's warm-up requests ask for prefill logprobs), while the CUDA
context and NCCL buffers, outside torch's allocator, are not subtracted at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import ceil, floor
from typing import TYPE_CHECKING, Any, Literal

from vramplan.capabilities import refusals
from vramplan.engines.base import GIB, EnginePrediction, KVPool, VersionTable, settings_for_engine
from vramplan.engines.sglang import gib, parse_argv, pick_gpu, resolve_model
from vramplan.engines.tgi_features import (
    lora_bytes,
    medusa_config,
    medusa_head_bytes,
    parse_lora_adapters,
)
from vramplan.errors import InputError
from vramplan.hardware import GPU
from vramplan.memory.activations import ActivationAssumptions, forward_peak_bytes
from vramplan.memory.kv_cache import kv_bytes_per_token
from vramplan.memory.overhead import CUDA_CONTEXT_BYTES
from vramplan.memory.weights import weight_bytes
from vramplan.model.spec import ModelSpec
from vramplan.precision import DTYPE_BYTES
from vramplan.scenario import Fix

#: ``TGI_WIGGLE_ROOM`` default: the fraction of the memory budget TGI lets the KV cache take.
TGI_WIGGLE_ROOM = 0.90
#: CUDA context + torch/NCCL state per shard before the warm-up (memory.overhead.CUDA_CONTEXT_BYTES).
CUDA_CONTEXT_GIB = CUDA_CONTEXT_BYTES["tgi"] / GIB
#: Extra NCCL buffers per shard when --num-shard > 1.
NCCL_GIB = 0.3
#: Block size per attention backend (``globals.py``).
BLOCK_SIZE = {"flashinfer": 1, "flashdecoding": 256, "paged": 16}
#: CUDA-graph batch sizes captured by default after KV allocation.
CUDA_GRAPH_BATCH_SIZES = (1, 2, 4, 8, 16, 32)
#: Default --max-batch-prefill-tokens when the compute-optimal value is not known.
DEFAULT_MAX_BATCH_PREFILL_TOKENS = 4096
#: Share of the warm-up prefill's activation peak still held when free memory is measured. The design
#: note expects torch's cache to keep it (1.0); tgi-2744 (Llama-3.1-70B, TP2, A100-80GB, prefill 10,049
#: tokens -> 30,816 tokens) only fits if it is released (0.0 gives +0.6 %, 1.0 gives -26 %).
WARMUP_PEAK_RETAINED = 0.0
#: Old TGI (0.9-1.0) let the KV cache fill this share of the device total, minus torch's peak.
OLD_WARMUP_TOTAL_SHARE = 0.98
#: Old TGI's warm-up logits: the gathered ``[P, vocab]`` logits and their log-softmax, plus one shard's
#: ``[vocab/tp, P]`` matmul output (``TensorParallelHead`` all-gather), in the model dtype.
WARMUP_LOGIT_COPIES = 2
#: Head dims the flashinfer backend supports; others fall back to flashdecoding/paged.
FLASHINFER_HEAD_DIMS = (64, 128, 256)

if TYPE_CHECKING:
    from vramplan.scenario import Scenario


@dataclass(frozen=True)
class TGIProfile:
    """Version-dependent behaviour."""

    #: Attention backend picked by default when the head dim allows it.
    default_backend: str
    #: Whether TGI_WIGGLE_ROOM applies (introduced with the 2.x warm-up rewrite [verify]).
    wiggle: bool
    #: How the warm-up turns memory into blocks: "peak_reserved" (0.9-1.0: 0.98 x total minus torch's
    #: peak reserved memory) or "free_memory" (1.1 on: the free memory measured after the warm-up).
    warmup: Literal["peak_reserved", "free_memory"] = "free_memory"


#: 0.9.0 ~ Jun 2023 (warm-up infers the budget); 1.1.0 ~ Sep 2023 (free memory from ``mem_get_info``, the
#: 1.0.x boundary [verify]); 2.0 (TGI_WIGGLE_ROOM); 2.3 (flashinfer default).
VERSIONS: VersionTable[TGIProfile] = VersionTable(
    "tgi",
    {
        "0.9.0": TGIProfile(default_backend="paged", wiggle=False, warmup="peak_reserved"),
        "1.1.0": TGIProfile(default_backend="paged", wiggle=False),
        "2.0.0": TGIProfile(default_backend="paged", wiggle=True),
        "2.3.0": TGIProfile(default_backend="flashinfer", wiggle=True),
    },
)

FLAGS = {
    "--model-id": "model_id",
    "--num-shard": "num_shard",
    "--max-total-tokens": "max_total_tokens",
    "--max-input-tokens": "max_input_tokens",
    "--max-input-length": "max_input_tokens",
    "--max-batch-prefill-tokens": "max_batch_prefill_tokens",
    "--max-batch-total-tokens": "max_batch_total_tokens",
    "--cuda-memory-fraction": "cuda_memory_fraction",
    "--quantize": "quantize",
    "--dtype": "dtype",
    "--kv-cache-dtype": "kv_cache_dtype",
    "--attention": "attention",
    "--speculate": "speculate",
    "--lora-adapters": "lora_adapters",
}
_INT = {
    "speculate",
    "num_shard",
    "max_total_tokens",
    "max_input_tokens",
    "max_batch_prefill_tokens",
    "max_batch_total_tokens",
}


def kv_budget_bytes(
    total: int, free_after_prefill: float, cuda_memory_fraction: float, wiggle: float
) -> float:
    """``max(0, free_now - (1 - cuda_memory_fraction x wiggle) x T)`` (flash_causal_lm.warmup)."""
    return max(0.0, free_after_prefill - (1 - cuda_memory_fraction * wiggle) * total)


def num_blocks(kv_bytes: float, block_bytes: int, warmup_blocks: int = 0) -> int:
    """``floor(free / block_bytes) + blocks of the warm-up batch`` (they were allocated before measuring)."""
    return floor(kv_bytes / block_bytes) + warmup_blocks


def request_blocks(
    input_tokens: int,
    max_new_tokens: int,
    block: int,
    window: int | None = None,
    speculate: int = 0,
) -> int:
    """Blocks one request reserves up front: ``ceil(min(input + new + speculate - 1, window) / B)``."""
    tokens = input_tokens + max_new_tokens + speculate - 1
    if window:
        tokens = min(tokens, window)
    return ceil(tokens / block)


def warmup_peak_bytes(spec: ModelSpec, prefill_tokens: int, tp: int) -> int:
    """Old TGI's warm-up activation peak on one shard: the per-layer temporaries, or the logits of every
    prefill token (the warm-up asks for prefill logprobs), whichever is larger."""
    e = ActivationAssumptions().activation_bytes
    v = spec.vocab_size
    logits = prefill_tokens * (WARMUP_LOGIT_COPIES * v + -(-v // tp)) * e
    return max(forward_peak_bytes(spec, prefill_tokens, tp), logits)


def predict_tgi(
    argv_or_settings: Sequence[str] | Mapping[str, Any],
    gpu: str | GPU | None = None,
    *,
    gpu_memory: str | int | None = None,
    engine_version: str | None = None,
    max_new_tokens: int | None = None,
    propose_fixes: bool = True,
) -> EnginePrediction:
    """Predict the KV token budget ``text-generation-launcher ...`` sets at warm-up, per shard."""
    if isinstance(argv_or_settings, Mapping):
        settings: dict[str, Any] = dict(argv_or_settings)
        ignored: list[str] = []
    else:
        settings, ignored = parse_argv(argv_or_settings, FLAGS, {}, _INT, {"cuda_memory_fraction"})
    hw = pick_gpu(gpu, gpu_memory)
    match = VERSIONS.nearest_version(engine_version)
    profile = match.value
    assumptions = [n for n in (match.note,) if n]
    if ignored:
        assumptions.append(f"ignored flags (no memory model): {' '.join(ignored)}")
    ref = settings.get("model_id")
    if not ref:
        raise InputError("no model: pass --model-id NAME (catalogue name or config.json folder)")
    medusa = medusa_config(str(ref))
    loaded, mapped_quant, notes = resolve_model(medusa.base_model if medusa else str(ref))
    assumptions += notes
    spec = loaded.spec
    if spec.state is not None:
        raise InputError(
            f"{spec.name} has recurrent (state-space / linear-attention) layers: TGI's flash engine serves "
            "attention models only and its non-flash Mamba path is not modelled; use vllm, sglang or llamacpp"
        )
    from vramplan.estimator import check_parallelism, resolve

    tp = int(settings.get("num_shard") or 1)
    check_parallelism(spec, tp, 1)
    quant = settings.get("quantize") or mapped_quant
    dtype = settings.get("dtype")
    kv_dtype = settings.get("kv_cache_dtype")
    r = resolve(spec, dtype, quant, None if kv_dtype in (None, "auto") else kv_dtype)
    fraction = float(settings.get("cuda_memory_fraction") or 1.0)
    if not 0 < fraction <= 1:
        raise InputError(f"--cuda-memory-fraction {fraction} must be in (0, 1]")
    backend = settings.get("attention") or (
        profile.default_backend
        if spec.head_dim in FLASHINFER_HEAD_DIMS or profile.default_backend == "paged"
        else "flashdecoding"
    )
    if backend not in BLOCK_SIZE:
        raise InputError(
            f"unknown attention backend {backend!r}: use one of {', '.join(BLOCK_SIZE)}"
        )
    block = BLOCK_SIZE[backend]
    prefill = int(settings.get("max_batch_prefill_tokens") or DEFAULT_MAX_BATCH_PREFILL_TOKENS)
    if settings.get("max_batch_total_tokens"):
        assumptions.append(
            "--max-batch-total-tokens is ignored for flash models (inferred from warm-up)"
        )
    errors: list[str] = [x.engine_error for x in refusals(hw, r.precision, "tgi")]
    element = int(DTYPE_BYTES[r.precision.compute_dtype])

    # speculation: n-gram (no weights) or the Medusa heads of a Medusa repo
    speculate = settings.get("speculate")
    extra_weights: dict[str, int] = {}
    if medusa is not None:
        extra_weights["medusa_heads"] = medusa_head_bytes(spec, medusa, element, tp)
        if speculate is None:
            speculate = medusa.num_heads
        elif speculate > medusa.num_heads:
            errors.append(
                f"Speculate is set to `{speculate}` but this medusa models only has "
                f"`{medusa.num_heads}` heads, please make them match"
            )
        assumptions.append(
            f"Medusa: {medusa.num_heads} heads x {medusa.num_layers} residual block(s) over "
            f"{medusa.base_model}, {gib(extra_weights['medusa_heads']):.2f} GiB per shard"
        )
    elif speculate:
        assumptions.append(
            f"--speculate {speculate} without Medusa heads is n-gram speculation: no weights; each "
            f"request reserves {speculate} more KV slots"
        )
    speculate = int(speculate or 0)
    if speculate < 0:
        raise InputError(f"--speculate {speculate} must be 0 or more")
    lora_text = settings.get("lora_adapters")
    if lora_text:
        adapters = parse_lora_adapters(str(lora_text))
        counted = [a for a in adapters if a.rank is not None]
        extra_weights["lora_adapters"] = sum(lora_bytes(spec, a, element) for a in counted)
        missing = [a.source for a in adapters if a.rank is None]
        assumptions.append(
            f"--lora-adapters: {len(counted)} adapter(s) read, {gib(extra_weights['lora_adapters']):.3f} "
            "GiB whole on each shard (how TGI splits them over shards is not modelled)"
            + (
                f"; not counted (no local adapter_config.json): {', '.join(missing)}"
                if missing
                else ""
            )
        )

    total = hw.memory_bytes
    base_w = weight_bytes(spec, r.precision, tp).per_gpu
    w = base_w + sum(extra_weights.values())
    non_torch = (CUDA_CONTEXT_GIB + (NCCL_GIB if tp > 1 else 0.0)) * GIB
    per_token = kv_bytes_per_token(spec, r.kv_element, tp)
    if profile.warmup == "peak_reserved":
        act = warmup_peak_bytes(spec, prefill, tp)
        # torch's peak (weights + warm-up activations; the warm-up blocks are added back) against 0.98 x total
        kv = max(0.0, OLD_WARMUP_TOTAL_SHARE * fraction * total - (w + act))
        headroom = (1 - OLD_WARMUP_TOTAL_SHARE * fraction) * total
        assumptions.append(
            f"TGI {match.version} warm-up: blocks = (0.98 x total - torch peak reserved) / block bytes; "
            f"the peak holds the {prefill}-token warm-up prefill with its prefill logits; the CUDA "
            f"context and NCCL ({gib(non_torch):.2f} GiB, outside torch) are not subtracted"
        )
        wiggle = OLD_WARMUP_TOTAL_SHARE
    else:
        act = forward_peak_bytes(spec, prefill, tp)  # prefill logits for the last tokens only
        wiggle = TGI_WIGGLE_ROOM if profile.wiggle else 1.0
        used = w + WARMUP_PEAK_RETAINED * act + non_torch
        kv = kv_budget_bytes(total, total - used, fraction, wiggle)
        headroom = (1 - fraction * wiggle) * total
        assumptions.append(
            f"keeps {1 - fraction * wiggle:.0%} of the GPU free "
            f"(cuda_memory_fraction {fraction} x wiggle {wiggle})"
        )
    free_now = total * fraction - (w + non_torch)
    blocks = num_blocks(kv, per_token * block)
    tokens = blocks * block
    model_max = spec.max_position_embeddings
    max_total = int(settings.get("max_total_tokens") or min(max(tokens, 1), model_max))
    max_input = int(settings.get("max_input_tokens") or max_total - 1)
    fixes: list[Fix] = []
    candidates: list[Fix] = []
    if free_now <= 0 or w > total * fraction:
        errors.append(
            f"CUDA out of memory loading {gib(w):.2f} GiB of weights per shard on {gib(total):.2f} GiB"
        )
        if spec.num_heads % (tp * 2) == 0:
            candidates.append(Fix("num_shard", tp * 2, "shard the weights over twice the GPUs"))
        if not quant:
            candidates.append(Fix("quantize", "fp8", "fp8 weights take half the memory"))
    elif tokens < max_total:
        errors.append(
            f"Not enough memory to handle {max_total} total tokens: the KV cache holds {tokens} "
            f"(max batch total tokens) after the warm-up prefill"
        )
        if tokens > 1:
            candidates.append(
                Fix(
                    "max_total_tokens",
                    tokens,
                    "the most tokens one request can hold in the KV cache",
                )
            )
        if profile.warmup == "peak_reserved" and prefill > max_input:
            candidates.append(
                Fix(
                    "max_batch_prefill_tokens",
                    max_input,
                    "a smaller warm-up peak leaves more for KV",
                )
            )
    elif prefill < max_input:
        assumptions.append(
            f"--max-batch-prefill-tokens {prefill} < --max-input-tokens {max_input}: TGI refuses "
            "this unless chunked prefill is supported"
        )
    if propose_fixes and candidates:
        for fix in candidates:
            changed = {**settings, fix.flag: fix.value}
            if fix.flag == "max_total_tokens":
                changed.pop("max_input_tokens", None)
            trial = predict_tgi(
                changed,
                hw,
                engine_version=engine_version,
                max_new_tokens=max_new_tokens,
                propose_fixes=False,
            )
            if trial.starts:
                fixes.append(fix)
    graph_tokens = max(CUDA_GRAPH_BATCH_SIZES) * (1 + speculate)
    graph_gib = gib(forward_peak_bytes(spec, graph_tokens, tp))
    extra: dict[str, Any] = {
        "attention_backend": backend,
        "block_size": block,
        "max_batch_total_tokens_set_by_warmup": tokens,
        "max_total_tokens": max_total,
        "max_input_tokens": max_input,
        "max_batch_prefill_tokens": prefill,
        "headroom_gib": round(gib(headroom), 3),
        "warmup_prefill_peak_gib": round(gib(act), 3),
        "cuda_graph_batch_sizes": list(CUDA_GRAPH_BATCH_SIZES),
        "kv_cache_bytes": int(kv),
    }
    for name, nbytes in extra_weights.items():
        extra[f"{name}_gib"] = round(gib(nbytes), 3)
    if speculate:
        extra["speculate"] = speculate
    if max_new_tokens is not None:
        per_req = request_blocks(
            max_input,
            max_new_tokens,
            block,
            spec.sliding_window if spec.uses_sliding_window else None,
            speculate,
        )
        extra["blocks_per_request"] = per_req
        extra["max_concurrent_requests"] = max(0, (blocks - 1)) // per_req  # block 0 reserved
    assumptions.append(f"attention backend {backend} (block size {block})")
    return EnginePrediction(
        "tgi",
        match.version,
        weights_gib=gib(w),
        non_torch_gib=gib(non_torch),
        activation_peak_gib=gib(act),
        cuda_graph_gib=graph_gib,
        available_kv_cache_gib=gib(kv),
        kv_cache_tokens=tokens,
        max_concurrency=tokens / max_total if max_total else None,
        gpu_blocks=blocks,
        kv_bytes_per_token=per_token,
        state_bytes_per_sequence=0,
        starts=not errors,
        errors=tuple(errors),
        fixes=tuple(fixes),
        assumptions=tuple(assumptions),
        settings={
            "model_id": ref,
            "num_shard": tp,
            "max_total_tokens": max_total,
            "max_input_tokens": max_input,
            "max_batch_prefill_tokens": prefill,
            "cuda_memory_fraction": fraction,
            "quantize": quant,
            "dtype": r.precision.compute_dtype,
            "kv_cache_dtype": r.kv_dtype,
            "attention": backend,
            "speculate": speculate or None,
            "lora_adapters": lora_text,
        },
        extra=extra,
    )


def predict_from_settings(
    settings: Mapping[str, Any],
    gpu: str | GPU | None = None,
    *,
    gpu_memory: str | int | None = None,
    engine_version: str | None = None,
) -> EnginePrediction:
    """Predict from the settings ``vramplan.logs.parse_log`` reads from a TGI launcher log (Args {...})."""
    s = dict(settings)
    for ours, theirs in (
        ("model_id", "model"),
        ("num_shard", "tensor_parallel_size"),
        ("max_total_tokens", "max_model_len"),
    ):
        if s.get(ours) is None and s.get(theirs) is not None:
            s[ours] = s[theirs]
    kept, gpu, gpu_memory = settings_for_engine(s, set(FLAGS.values()), gpu, gpu_memory)
    return predict_tgi(kept, gpu, gpu_memory=gpu_memory, engine_version=engine_version)


__all__ = [
    "BLOCK_SIZE",
    "TGI_WIGGLE_ROOM",
    "VERSIONS",
    "kv_budget_bytes",
    "num_blocks",
    "predict_from_settings",
    "predict_tgi",
    "request_blocks",
]


# ------------------------------------------------------------------------------------------ engine
#: Scenario field -> TGI's setting name (``text-generation-launcher`` flags).
SCENARIO_KEYS: dict[str, str] = {
    "max_num_batched_tokens": "max_batch_prefill_tokens",
    "max_model_len": "max_total_tokens",
    "gpu_memory_utilization": "cuda_memory_fraction",
}


#: The router's ``--max-concurrent-requests`` default: the most requests TGI runs at once.
ROUTER_MAX_CONCURRENT_REQUESTS = 128


class TGIEngine:
    """TGI as an :class:`~vramplan.engines.base.Engine` (its KV pool is the warm-up token budget)."""

    name = "tgi"

    def settings(self, scenario: Scenario) -> dict[str, Any]:
        e, h, p = scenario.engine, scenario.hardware, scenario.precision
        s: dict[str, Any] = {
            "model_id": scenario.model if isinstance(scenario.model, str) else scenario.model.name,
            "num_shard": h.tp,
            "dtype": p.dtype,
            "quantize": p.quantization,
            "kv_cache_dtype": p.kv_cache_dtype,
        }
        for name, key in SCENARIO_KEYS.items():
            s[key] = getattr(e, name)
        return {k: v for k, v in s.items() if v is not None}

    def predict(self, scenario: Scenario) -> EnginePrediction:
        return predict_tgi(
            self.settings(scenario),
            scenario.hardware.gpu,
            gpu_memory=scenario.hardware.gpu_memory,
            engine_version=scenario.engine.engine_version,
        )

    def kv_pool(self, scenario: Scenario) -> KVPool:
        from dataclasses import replace

        from vramplan.engines.base import pool_from_prediction

        pred = self.predict(scenario)
        hw = pick_gpu(scenario.hardware.gpu, scenario.hardware.gpu_memory)
        pool = pool_from_prediction(pred, hw.memory_bytes, SCENARIO_KEYS)
        return replace(pool, gpu=hw.name, max_num_seqs=ROUTER_MAX_CONCURRENT_REQUESTS)

    def launch(self, scenario: Scenario, model_id: str) -> list[str]:
        s = self.settings(scenario)
        s.pop("model_id", None)
        argv = ["text-generation-launcher", "--model-id", model_id]
        for key, value in s.items():
            argv += ["--" + key.replace("_", "-"), str(value)]
        return argv


ENGINE_MODEL = TGIEngine()
