"""Hugging Face TGI startup memory: the warm-up prefill decides the KV block count.

Why this shape: TGI runs one prefill of ``--max-batch-prefill-tokens`` tokens, then takes whatever is
free minus ``(1 - cuda_memory_fraction x TGI_WIGGLE_ROOM) x total`` as KV blocks (torch's caching
allocator keeps the prefill peak reserved, so it is held back implicitly). The token budget it logs
("Setting max batch total tokens to N") is ``num_blocks x block_size`` and any user
``--max-batch-total-tokens`` is ignored for flash models. Source: design/engine-memory.md 3.1
(``flash_causal_lm.py`` ``warmup``, ``globals.py``, ``backends/v3/src/block_allocator.rs``).
TGI logs GB = 10**9 B; its KV figure is a token count, so no unit conversion is involved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import ceil, floor
from typing import TYPE_CHECKING, Any

from vramplan.capabilities import refusals
from vramplan.engines.base import GIB, EnginePrediction, KVPool, VersionTable, settings_for_engine
from vramplan.engines.sglang import gib, parse_argv, pick_gpu, resolve_model
from vramplan.errors import InputError
from vramplan.hardware import GPU
from vramplan.memory.activations import forward_peak_bytes
from vramplan.memory.kv_cache import kv_bytes_per_token
from vramplan.memory.overhead import CUDA_CONTEXT_BYTES
from vramplan.memory.weights import weight_bytes

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


VERSIONS: VersionTable[TGIProfile] = VersionTable(
    "tgi",
    {
        "1.0.0": TGIProfile(default_backend="paged", wiggle=False),
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
}
_INT = {
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


def predict_tgi(
    argv_or_settings: Sequence[str] | Mapping[str, Any],
    gpu: str | GPU | None = None,
    *,
    gpu_memory: str | int | None = None,
    engine_version: str | None = None,
    max_new_tokens: int | None = None,
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
    loaded, mapped_quant, notes = resolve_model(str(ref))
    assumptions += notes
    spec = loaded.spec
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

    total = hw.memory_bytes
    w = weight_bytes(spec, r.precision, tp).per_gpu
    act = forward_peak_bytes(
        spec, prefill, tp
    )  # prefill logits are computed for the last tokens only
    used = w + WARMUP_PEAK_RETAINED * act + (CUDA_CONTEXT_GIB + (NCCL_GIB if tp > 1 else 0.0)) * GIB
    free_now = total * fraction - used if fraction < 1 else total - used
    wiggle = TGI_WIGGLE_ROOM if profile.wiggle else 1.0
    kv = kv_budget_bytes(total, total - used, fraction, wiggle)
    per_token = kv_bytes_per_token(spec, r.kv_element, tp)
    blocks = num_blocks(kv, per_token * block)
    tokens = blocks * block
    model_max = spec.max_position_embeddings
    max_total = int(settings.get("max_total_tokens") or min(max(tokens, 1), model_max))
    max_input = int(settings.get("max_input_tokens") or max_total - 1)
    errors: list[str] = [x.engine_error for x in refusals(hw, r.precision, "tgi")]
    fixes: list[str] = []
    if free_now <= 0 or w > total * fraction:
        errors.append(
            f"CUDA out of memory loading {gib(w):.2f} GiB of weights per shard on {gib(total):.2f} GiB"
        )
        fixes.append(
            f"more shards: --num-shard {tp * 2}"
            if spec.num_heads % (tp * 2) == 0
            else "a larger GPU"
        )
        fixes.append("quantized weights: --quantize fp8 / awq / gptq")
    elif tokens < max_total:
        errors.append(
            f"Not enough memory to handle {max_total} total tokens: the KV cache holds {tokens} "
            f"(max batch total tokens) after the warm-up prefill"
        )
        fixes.append(
            f"--max-total-tokens {tokens} or lower --max-batch-prefill-tokens (now {prefill})"
        )
    elif prefill < max_input:
        assumptions.append(
            f"--max-batch-prefill-tokens {prefill} < --max-input-tokens {max_input}: TGI refuses "
            "this unless chunked prefill is supported"
        )
    graph_tokens = max(CUDA_GRAPH_BATCH_SIZES)
    graph_gib = gib(forward_peak_bytes(spec, graph_tokens, tp))
    headroom = (1 - fraction * wiggle) * total
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
    }
    if max_new_tokens is not None:
        per_req = request_blocks(
            max_input,
            max_new_tokens,
            block,
            spec.sliding_window if spec.uses_sliding_window else None,
        )
        extra["blocks_per_request"] = per_req
        extra["max_concurrent_requests"] = max(0, (blocks - 1)) // per_req  # block 0 reserved
    assumptions.append(
        f"attention backend {backend} (block size {block}); keeps "
        f"{1 - fraction * wiggle:.0%} of the GPU free (cuda_memory_fraction {fraction} x wiggle {wiggle})"
    )
    return EnginePrediction(
        "tgi",
        match.version,
        weights_gib=gib(w),
        activation_peak_gib=gib(act),
        cuda_graph_gib=graph_gib,
        available_kv_cache_gib=gib(kv),
        kv_cache_tokens=tokens,
        max_concurrency=tokens / max_total if max_total else None,
        gpu_blocks=blocks,
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
