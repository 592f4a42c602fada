"""Bridge from vramplan's memory estimate to the simulator's plain-number ``HardwareSpec``.

The simulator deliberately knows nothing about models or GPUs (``steptime.py``); this module is the one
place that turns "model X on GPU Y at TP N" into its numbers, so that the KV pool a replay runs with is
the pool vramplan's own estimate predicts, not a hand-typed constant.

Convention (one TP rank, because every rank holds and reads only its shard and they run in lock step):

* ``weights_bytes``: the core estimate's per-GPU weights (TP-sharded);
* ``kv_bytes_per_token``: one token's KV over all layers on one rank (KV heads split by TP);
* ``kv_capacity_bytes``: ``gpu_memory_utilization x GPU memory - weights - activations - overheads``
  per GPU, i.e. what vLLM's memory profiler leaves to the KV cache (its ``--gpu-memory-utilization``
  budget covers everything, the KV pool is the remainder);
* ``bandwidth_bytes_per_s``: one GPU's HBM bandwidth, because the bytes above are one GPU's bytes;
* ``active_params`` / ``peak_flops``: the whole model's active parameters against the group's FLOP/s
  (GPU peak x TP), which is the same per-rank time as params/TP on one GPU.

Step times: ``perf_setup_for`` builds ``vramplan.perf``'s setup for the same model, GPU, precision
and TP, with the KV pool of the budget, so a replay times its iterations with the calibrated model
behind ``vramplan perf`` (TP all-reduces included). The ``HardwareSpec`` FLOP/s and bandwidth above
only feed the simulator's fallback roofline.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from vramplan.errors import DoesNotFitError, InputError
from vramplan.model.spec import ModelSpec
from vramplan.scenario import Fix
from vramplan.simulate.steptime import HardwareSpec
from vramplan.units import format_bytes, parse_size

if TYPE_CHECKING:
    from vramplan.perf import PerfSetup


#: Longest request `vramplan simulate` admits when --max-model-len is not given: the preset
#: workloads' longest prompt + output (ShareGPT and Alpaca samples are cut at 2,048 tokens).
SIMULATE_MAX_MODEL_LEN = 2048


@dataclass(frozen=True)
class KVBudget:
    """The per-GPU memory split behind a ``HardwareSpec`` (for display and for checking the arithmetic).

    ``kv_capacity_bytes`` is the pool the engine allocates (``kv_cache_tokens`` x bytes per token) and
    ``usable_bytes = weights + activations + overheads + kv_capacity_bytes`` (overheads: non-torch
    memory, CUDA graphs when the engine budgets them, and the remainder below one KV block), unless
    ``kv_memory_override`` is True (the pool was given directly, e.g. ``--kv-memory 12GiB``).
    """

    model: str
    gpu: str
    tensor_parallel_size: int
    gpu_memory_bytes: int
    gpu_memory_utilization: float
    usable_bytes: int
    weights_bytes: int
    activation_bytes: int
    overhead_bytes: int
    kv_capacity_bytes: int
    kv_bytes_per_token: int
    kv_memory_override: bool
    hardware: HardwareSpec
    #: What the caller passed (catalogue name, path, Hub id, or the ModelSpec itself), to build it again.
    model_ref: str | ModelSpec = ""
    #: The engine whose accounting sized the pool, its version and the batch limits it applies.
    engine: str = "vllm"
    engine_version: str | None = None
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 2048
    max_model_len: int = SIMULATE_MAX_MODEL_LEN
    block_size: int = 16

    @property
    def kv_slots(self) -> int:
        """Token slots in the pool of one GPU (the same on every rank)."""
        return self.hardware.kv_slots

    @property
    def kv_cache_tokens(self) -> int:
        """The pool in tokens: what `vramplan vllm` logs as "GPU KV cache size" for the same settings."""
        return self.kv_slots

    def to_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "gpu": self.gpu,
            "engine": self.engine,
            "engine_version": self.engine_version,
            "tensor_parallel_size": self.tensor_parallel_size,
            "gpu_memory_bytes": self.gpu_memory_bytes,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "usable_bytes": self.usable_bytes,
            "weights_bytes": self.weights_bytes,
            "activation_bytes": self.activation_bytes,
            "overhead_bytes": self.overhead_bytes,
            "kv_capacity_bytes": self.kv_capacity_bytes,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "kv_slots": self.kv_slots,
            "kv_cache_tokens": self.kv_cache_tokens,
            "kv_memory_override": self.kv_memory_override,
            "max_num_seqs": self.max_num_seqs,
            "max_num_batched_tokens": self.max_num_batched_tokens,
            "max_model_len": self.max_model_len,
            "block_size": self.block_size,
        }


def kv_budget(
    model: str | ModelSpec,
    gpu: str,
    dtype: str | None = None,
    quantization: str | None = None,
    kv_cache_dtype: str | None = None,
    tensor_parallel_size: int | None = None,
    gpu_memory_utilization: float | None = None,
    max_model_len: int | None = None,
    max_num_seqs: int | None = None,
    max_num_batched_tokens: int | None = None,
    kv_memory: str | int | None = None,
    enforce_eager: bool = False,
    engine: str = "vllm",
    engine_version: str | None = None,
) -> KVBudget:
    """Per-GPU memory split and the simulator's hardware numbers for ``model`` on ``gpu`` at TP.

    For vLLM and SGLang the pool is the engine's own (``engines.base.Engine.kv_pool``: the figures
    `vramplan vllm` prints for the same settings, with the engine's version defaults for whatever is
    None). Other engines use the core estimate: activations for the engine's largest forward
    (``max_num_batched_tokens`` tokens, sampler over ``max_num_seqs`` sequences) and the overheads.
    ``kv_memory`` (bytes or "12GiB") replaces the derived pool, for replays of a published setup.
    ``enforce_eager`` drops the CUDA-graph memory (the 2023 vLLM of the PagedAttention paper had none).

    ``model`` is a name (catalogue name, path or Hub id, resolved by ``load_model``) or a ModelSpec
    already resolved by the caller (the service passes one, so no request string is read as a path).
    """
    from vramplan.estimator import estimate, resolve
    from vramplan.hardware import gpu_from
    from vramplan.memory.kv_cache import kv_bytes_per_token
    from vramplan.model.load import LoadedModel, load_model
    from vramplan.model.params import count_params
    from vramplan.perf import engine_kv_pool, engine_profile
    from vramplan.scenario_fields import check

    check("gpu_memory_utilization", gpu_memory_utilization)
    check("tensor_parallel_size", tensor_parallel_size)
    check("max_num_seqs", max_num_seqs)
    check("max_num_batched_tokens", max_num_batched_tokens)
    check("max_model_len", max_model_len)
    tp = tensor_parallel_size or 1
    max_len = max_model_len or SIMULATE_MAX_MODEL_LEN
    hw_gpu = gpu_from(gpu, required=True)
    loaded: LoadedModel | ModelSpec
    if isinstance(model, ModelSpec):
        loaded = spec = model
    elif isinstance(model, str):
        loaded = load_model(model)
        spec = loaded.spec
    else:
        raise InputError(f"model must be a name or a ModelSpec, got {type(model).__name__}")
    r = resolve(spec, dtype, quantization, kv_cache_dtype)
    kv_tok = kv_bytes_per_token(spec, r.kv_element, tp)
    mem = hw_gpu.memory_bytes
    overrides = {
        k: v
        for k, v in (
            ("gpu_memory_utilization", gpu_memory_utilization),
            ("max_num_seqs", max_num_seqs),
            ("max_num_batched_tokens", max_num_batched_tokens),
        )
        if v is not None
    }
    pool = engine_kv_pool(
        spec,
        hw_gpu,
        engine,
        tp,
        1,
        dtype,
        quantization,
        kv_cache_dtype,
        max_len,
        engine_version,
        overrides,
        enforce_eager,
    )
    if pool is not None:
        util = pool.gpu_memory_utilization
        seqs, tokens, block = pool.max_num_seqs, pool.max_num_batched_tokens, pool.block_size
        version: str | None = pool.engine_version
        usable = int(util * mem)
        weights, act = pool.weights_bytes, pool.activation_bytes
        derived = pool.kv_cache_tokens * kv_tok
        ovh = usable - weights - act - derived
    else:
        prof = engine_profile(engine, engine_version)
        util = gpu_memory_utilization or prof.gpu_memory_utilization
        seqs = max_num_seqs or prof.max_num_seqs
        tokens = max_num_batched_tokens or prof.max_num_batched_tokens
        block, version = 16, engine_version
        b = estimate(
            loaded,
            dtype=dtype,
            quantization=quantization,
            kv_cache_dtype=kv_cache_dtype,
            context=max_len,
            users=seqs,
            batch_tokens=tokens,
            gpu=hw_gpu,
            tensor_parallel_size=tp,
            pipeline_parallel_size=1,
            enforce_eager=enforce_eager,
        )
        weights = b.component("weights").per_gpu_bytes
        act = b.component("activations").per_gpu_bytes
        ovh = b.component("overhead").per_gpu_bytes
        usable = int(Fraction(util).limit_denominator(10**6) * mem)
        derived = usable - weights - act - ovh
    if kv_memory is not None:
        capacity = parse_size(kv_memory)
        if capacity <= 0:
            raise InputError(f"--kv-memory must be > 0, got {kv_memory!r} (e.g. 12GiB).")
        override = True
    else:
        capacity = derived
        override = False
        if capacity < kv_tok * 16:
            raise DoesNotFitError(
                f"{spec.name} on {hw_gpu.name} x TP {tp} leaves {format_bytes(max(capacity, 0))} for the KV "
                f"cache ({format_bytes(usable)} usable - weights {format_bytes(weights)} - activations "
                f"{format_bytes(act)} - overheads {format_bytes(max(ovh, 0))}): raise --tensor-parallel-size, "
                "quantize the weights (--dtype/--quantization), or set the pool with --kv-memory.",
                fixes=[
                    Fix("tensor_parallel_size", tp * 2, "splits weights across more GPUs"),
                    Fix("quantization", "fp8", "about half the weight bytes"),
                ],
            )
    bandwidth = hw_gpu.memory_bandwidth_bytes_per_s
    if not bandwidth:
        raise InputError(
            f"the GPU catalogue has no memory bandwidth for {hw_gpu.name}; the step-time model needs it."
        )
    flops = hw_gpu.flops.for_dtype(r.precision.compute_dtype) or hw_gpu.flops.for_dtype("bfloat16")
    if not flops:
        raise InputError(
            f"the GPU catalogue has no {r.precision.compute_dtype}/bf16 FLOP/s for {hw_gpu.name}; "
            "the step-time model needs it."
        )
    hardware = HardwareSpec(
        weights_bytes=float(weights),
        active_params=float(count_params(spec).active_per_token),
        kv_bytes_per_token=float(kv_tok),
        kv_capacity_bytes=float(capacity),
        peak_flops=float(flops) * tp,
        bandwidth_bytes_per_s=float(bandwidth),
    )
    return KVBudget(
        model=spec.name,
        gpu=hw_gpu.name,
        tensor_parallel_size=tp,
        gpu_memory_bytes=mem,
        gpu_memory_utilization=util,
        usable_bytes=usable,
        weights_bytes=weights,
        activation_bytes=act,
        overhead_bytes=ovh,
        kv_capacity_bytes=capacity,
        kv_bytes_per_token=kv_tok,
        kv_memory_override=override,
        hardware=hardware,
        model_ref=model,
        engine=engine,
        engine_version=version,
        max_num_seqs=seqs,
        max_num_batched_tokens=tokens,
        max_model_len=max_len,
        block_size=block,
    )


def hardware_from_estimate(model: str | ModelSpec, gpu: str, **kw: Any) -> HardwareSpec:
    """The simulator's ``HardwareSpec`` for ``model`` on ``gpu`` (``kw`` as :func:`kv_budget`)."""
    return kv_budget(model, gpu, **kw).hardware


def perf_setup_for(
    budget: KVBudget,
    engine: str | None = None,
    dtype: str | None = None,
    quantization: str | None = None,
    kv_cache_dtype: str | None = None,
    max_model_len: int | None = None,
) -> PerfSetup:
    """``vramplan.perf``'s setup for the budget's model, GPU and TP (same precision arguments), with the
    budget's KV pool and batch limits, so that a replay and ``vramplan perf`` time the same engine steps."""
    from vramplan.perf import build_setup

    return build_setup(
        budget.model_ref or budget.model,
        budget.gpu,
        engine=engine or budget.engine,
        tensor_parallel_size=budget.tensor_parallel_size,
        dtype=dtype,
        quantization=quantization,
        kv_cache_dtype=kv_cache_dtype,
        max_model_len=max_model_len or budget.max_model_len,
        kv_capacity_tokens=float(budget.kv_slots),
        engine_overrides={
            "max_num_seqs": budget.max_num_seqs,
            "max_num_batched_tokens": budget.max_num_batched_tokens,
            "gpu_memory_utilization": budget.gpu_memory_utilization,
        },
    )
