"""The API contract: request, public and list schemas per resource, separate from the core dataclasses.

Request fields mirror the CLI options one for one (``--kv-cache-dtype`` is ``kv_cache_dtype``), and
the estimate response is exactly the object ``vramplan estimate --json`` prints. Response models allow
extra keys because the library may add fields (``rule_of_thumb_bytes`` ...) that the CLI prints too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vramplan.scenario_fields import FIELDS, MAX_CONTEXT, MAX_PARALLEL


def _f(name: str, *, required: bool = False, **extra: Any) -> Any:
    """A pydantic ``Field`` for table field ``name`` (default, bounds, length, description, example).

    Defaults and limits come only from :mod:`vramplan.scenario_fields`; ``extra`` may add examples.
    """
    spec = FIELDS[name]
    kw: dict[str, Any] = {
        k: v
        for k, v in (
            ("ge", spec.ge),
            ("gt", spec.gt),
            ("le", spec.le),
            ("lt", spec.lt),
            ("max_length", spec.max_length),
        )
        if v is not None
    }
    if spec.example is not None:
        kw.setdefault("examples", [spec.example])
    kw.update(extra)
    if required:
        return Field(description=spec.description, **kw)
    return Field(default=spec.default, description=spec.description, **kw)


# ---- errors ---------------------------------------------------------------------------------------


class FixOut(BaseModel):
    """One change that makes a deployment fit or start: set ``field`` to ``value`` (``why``: what it buys)."""

    field: str
    value: Any
    why: str


class ErrorDetail(BaseModel):
    type: str = Field(
        description="Error class, e.g. UnknownModelError, ValidationError, RateLimited."
    )
    message: str = Field(description="What was wrong and how to fix it.")
    fixes: list[FixOut] | None = Field(
        default=None, description="Changes that would make the configuration run (DoesNotFitError)."
    )
    reasons: list[str] | None = Field(
        default=None, description="Why each option tried was rejected (DoesNotFitError)."
    )
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Field-level problems (422 only)."
    )


class ErrorResponse(BaseModel):
    """Every error the API returns has this shape."""

    error: ErrorDetail

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"error": {"type": "UnknownModelError", "message": "unknown model 'llama-9'..."}}
            ]
        }
    )


# ---- estimate -------------------------------------------------------------------------------------

_ESTIMATE_EXAMPLE: dict[str, Any] = {
    "model": "llama-3.1-8b",
    "context": 8192,
    "users": 16,
    "gpu": "H100-80GB",
}


class ModelSource(BaseModel):
    """How a request names its model: a catalogue name or Hub id, or the content of a config.json.

    The server never reads a file a client names and never runs model code: a Hub id fetches only
    config.json, and ``trust_remote_code`` is never used.
    """

    model: str | None = Field(
        default=None,
        max_length=200,
        description="Catalogue name (see GET /api/models) or Hugging Face Hub id (org/name).",
        examples=["llama-3.1-8b"],
    )
    config: dict[str, Any] | None = Field(
        default=None, description="Content of an uploaded config.json (instead of model)."
    )
    name: str | None = Field(
        default=None, max_length=200, description="Display name for an uploaded config."
    )


class EstimateRequest(ModelSource):
    """Body of POST /api/estimate: the options of `vramplan estimate`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_ESTIMATE_EXAMPLE]})

    params: int | None = Field(
        default=None, ge=1, le=10**14, description="Bare parameter count for the rule of thumb."
    )
    bits: float | None = Field(
        default=None, gt=0, le=64, description="Bits per weight for the rule of thumb (Q)."
    )
    dtype: str | None = _f("dtype")
    quantization: str | None = _f("quantization")
    kv_cache_dtype: str | None = _f("kv_cache_dtype")
    context: int = _f("context")
    users: int = _f("users")
    batch_tokens: int | None = _f("batch_tokens")
    gpu: str | None = _f("gpu")
    gpu_memory: str | None = _f("gpu_memory")
    tensor_parallel_size: int | None = _f("tensor_parallel_size")
    pipeline_parallel_size: int | None = _f("pipeline_parallel_size")
    block_size: int | None = _f("block_size")
    method: Literal["detailed", "rule-of-thumb"] = Field(
        default="detailed", description="detailed or rule-of-thumb."
    )

    @model_validator(mode="after")
    def _one_model_source(self) -> EstimateRequest:
        if self.model is not None and self.config is not None:
            raise ValueError(
                "give either model (a name) or config (an uploaded config.json), not both"
            )
        return self


class ComponentOut(BaseModel):
    """One named part of the memory and the formula behind it (the page shows it as the 'why')."""

    model_config = ConfigDict(extra="allow")

    name: str
    per_gpu_bytes: int
    total_bytes: int
    per_gpu_gib: float
    formula: str
    inputs: dict[str, Any]
    parts: list[ComponentOut] | None = None


class PerGPU(BaseModel):
    weights_bytes: int
    kv_cache_bytes: int
    activations_bytes: int
    overhead_bytes: int
    total_bytes: int


class EstimateResponse(BaseModel):
    """Exactly the JSON of `vramplan estimate --json`."""

    model_config = ConfigDict(extra="allow")

    model: str
    method: str
    params: int
    precision: str
    kv_cache_dtype: str
    context: int
    users: int
    weights_bytes: int
    kv_cache_bytes: int
    activations_bytes: int
    overhead_bytes: int
    total_bytes: int
    per_gpu: PerGPU
    kv_bytes_per_token: int
    gpus: int
    tensor_parallel_size: int
    pipeline_parallel_size: int
    gpu: str | None
    gpu_memory_bytes: int | None
    fits: bool | None
    max_users: int | None
    max_context: int | None
    shortfall_bytes: int | None = None
    fixes: list[FixOut]
    assumptions: list[str]
    components: list[ComponentOut]


# ---- catalogues -----------------------------------------------------------------------------------


class ModelRow(BaseModel):
    """One row of `vramplan models --json`."""

    id: str
    model_type: str
    params: int
    active_params: int
    layers: int
    kv_heads: int
    max_context: int
    aliases: list[str]


class GPURow(BaseModel):
    """One row of `vramplan gpus --json`."""

    name: str
    aliases: list[str]
    memory_bytes: int
    memory_gib: float
    memory_bandwidth_bytes_per_s: int | float | None
    bf16_flops: int | float | None
    price_per_hour_usd: float | None


# ---- simulate -------------------------------------------------------------------------------------


class SimulateRequest(BaseModel):
    """Body of POST /api/simulate: the options of `vramplan simulate` (a preset workload, never a file).

    The server bounds simulated time, request count and wall time (see its settings).
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model": "opt-13b",
                    "gpu": "A100-40GB",
                    "workload": "sharegpt",
                    "rate": 1.0,
                    "duration": 60,
                    "allocator": "paged",
                }
            ]
        },
    )

    model: str = _f("model", required=True, examples=["opt-13b"])
    gpu: str = _f("gpu", required=True, examples=["A100-40GB"])
    workload: Literal["sharegpt", "alpaca"] = Field(
        default="sharegpt", description="Length preset."
    )
    rate: float = Field(
        default=2.0, gt=0, le=10_000, description="Mean request arrival rate (requests/s, Poisson)."
    )
    allocator: Literal["max", "pow2", "oracle", "paged", "radix", "all"] = Field(
        default="paged", description="KV allocator, or all (an object keyed by allocator)."
    )
    block_size: int | None = _f("block_size")
    duration: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="Simulated seconds of arrivals; the queue then drains.",
    )
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="Random seed of the trace.")
    n: int = Field(default=1, ge=1, le=64, description="Parallel samples per request.")
    beam_width: int = Field(default=1, ge=1, le=64, description="Beams per request (beam search).")
    system_prompt_len: int = Field(
        default=0, ge=0, le=1 << 20, description="Tokens of a shared system prompt."
    )
    system_prompt_share: float = Field(
        default=0.0, ge=0, le=1, description="Share of requests carrying the system prompt."
    )
    preemption: Literal["recompute", "swap", "auto"] = "auto"
    swap_space: str = Field(
        default="4GiB", max_length=32, description="CPU swap space per GPU (0 disables swapping)."
    )
    max_num_seqs: int | None = _f("max_num_seqs")
    max_num_batched_tokens: int | None = _f("max_num_batched_tokens")
    max_model_len: int | None = _f("max_model_len")  # None: simulate.adapter.SIMULATE_MAX_MODEL_LEN
    kv_memory: str | None = Field(
        default=None,
        max_length=32,
        description="KV pool per GPU instead of the estimate's, e.g. 12GiB.",
    )
    gpu_memory_utilization: float | None = _f("gpu_memory_utilization")
    enforce_eager: bool = _f("enforce_eager")
    tensor_parallel_size: int | None = _f("tensor_parallel_size")
    dtype: str | None = _f("dtype")
    quantization: str | None = _f("quantization")
    kv_cache_dtype: str | None = _f("kv_cache_dtype")
    engine_version: str | None = _f("engine_version")


class PerfRequest(ModelSource):
    """Body of POST /api/perf: the options of `vramplan perf` (latency and throughput at one load)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model": "llama-3.1-8b",
                    "gpu": "H100-80GB",
                    "input_len": 1024,
                    "output_len": 256,
                    "concurrency": 16,
                }
            ]
        },
    )

    gpu: str = _f("gpu", required=True)
    input_len: int | None = _f("input_len")
    output_len: int | None = _f("output_len")
    dataset: str | None = _f("dataset")
    engine: str = _f("engine")
    engine_version: str | None = _f("engine_version")
    tensor_parallel_size: int | None = _f("tensor_parallel_size")
    pipeline_parallel_size: int | None = _f("pipeline_parallel_size")
    dtype: str | None = _f("dtype")
    quantization: str | None = _f("quantization")
    kv_cache_dtype: str | None = _f("kv_cache_dtype")
    max_model_len: int | None = _f("max_model_len")
    max_num_seqs: int | None = _f("max_num_seqs")
    max_num_batched_tokens: int | None = _f("max_num_batched_tokens")
    gpu_memory_utilization: float | None = _f("gpu_memory_utilization")
    enforce_eager: bool = _f("enforce_eager")
    batch_size: int | None = _f("batch_size")
    concurrency: int | None = _f("concurrency")
    request_rate: float | None = _f("request_rate")
    max_throughput: bool = Field(
        default=False, description="Batch bounded by KV capacity and max_num_seqs."
    )
    prefix_hit_rate: float | None = _f("prefix_hit_rate")


class PerfResponse(BaseModel):
    """`vramplan perf --json`: TTFT, TPOT, throughput and the KV pool in tokens."""

    model_config = ConfigDict(extra="allow")

    mode: str
    engine: str
    ttft_ms: float
    tpot_ms: float
    kv_cache_tokens: int
    assumptions: list[str]


class SimulateResponse(BaseModel):
    """`vramplan simulate --json`: memory shares, batch size, throughput, latencies and a timeseries."""

    model_config = ConfigDict(extra="allow")

    allocator: str
    token_state_share: float | None
    reserved_share: float | None
    internal_fragmentation_share: float | None
    external_fragmentation_share: float | None
    free_share: float | None
    mean_batch_size: float | None
    throughput_tokens_per_s: float | None
    requests_completed: int
    requests_rejected: int
    preemptions: int
    simulated_s: float | None
    wall_s: float | None
    iterations: int
    capacity_slots: int
    timeseries: dict[str, list[float | None]]
    kv_budget: dict[str, Any]
    workload: dict[str, Any]


# ---- plans ----------------------------------------------------------------------------------------

PlanKind = Literal["estimate", "vllm", "sglang", "plan", "perf", "simulate", "train", "explain"]


class PlanCreate(BaseModel):
    """Body of POST /api/plans: a scenario (a request body of the route named by kind) and, optionally,
    the result the client got. Without a result the server computes it (estimate and simulate)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "8B chat on one H100", "kind": "estimate", "scenario": _ESTIMATE_EXAMPLE}
            ]
        },
    )

    name: str = Field(default="", max_length=200)
    kind: PlanKind = "estimate"
    scenario: dict[str, Any]
    result: dict[str, Any] | None = None


class PlanPublic(BaseModel):
    """A saved plan; ``url`` is the permalink that opens it in the web page."""

    id: str = Field(examples=["k3v9q2m8xa"])
    name: str
    kind: str
    scenario: dict[str, Any]
    result: dict[str, Any]
    created_at: datetime
    url: str = Field(examples=["/?plan=k3v9q2m8xa"])


class PlanSummary(BaseModel):
    id: str
    name: str
    kind: str
    created_at: datetime
    url: str


class PlanList(BaseModel):
    items: list[PlanSummary]
    total: int
    limit: int
    offset: int


# ---- health ---------------------------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    database: Literal["ok", "unavailable"]
    database_message: str | None = None


# ---- vllm, explain, train -------------------------------------------------------------------------


class VllmRequest(BaseModel):
    """Body of POST /api/vllm: a `vllm serve` command line plus our own options (`vramplan vllm`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "args": ["meta-llama/Llama-3.1-8B-Instruct", "--max-model-len", "8192"],
                    "gpu": "H100-80GB",
                }
            ]
        },
    )

    args: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="`vllm serve` arguments: MODEL first, then vLLM flags (no file paths).",
    )
    command: str | None = Field(
        default=None,
        max_length=8000,
        description="The same as one shell line ('vllm serve MODEL --flag v'), instead of args.",
    )
    gpu: str | None = _f("gpu")
    gpu_memory: str | None = _f("gpu_memory")
    engine_version: str | None = _f("engine_version")
    offline: bool = Field(
        default=False, description="The LLM class instead of `vllm serve` (other batch defaults)."
    )


class VllmResponse(BaseModel):
    """`vramplan vllm ... --json`: the startup figures vLLM will log and whether it starts."""

    model_config = ConfigDict(extra="allow")

    engine_version: str
    starts: bool
    settings: dict[str, Any]
    errors: list[str]
    fixes: list[FixOut]
    assumptions: list[str]
    ignored_flags: list[str]


class ExplainRequest(BaseModel):
    """Body of POST /api/explain: an engine startup log's text (the size limit is the log-upload limit)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"log": "INFO ... vLLM API server version 0.11.0 ..."}]},
    )

    log: str = Field(description="vLLM, SGLang, TGI or llama.cpp startup log text.")
    gpu: str | None = Field(
        default=None,
        max_length=64,
        description="GPU name when the log does not print total memory.",
    )


class TrainRequest(ModelSource):
    """Body of POST /api/train: the options of `vramplan train`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"model": "llama-3.1-8b", "method": "qlora", "gpu": "RTX-4090", "seq_len": 2048}
            ]
        },
    )

    params: int | None = Field(default=None, ge=1, le=10**14)
    method: Literal["full", "lora", "qlora"] = "full"
    micro_batch: int = Field(default=1, ge=1, le=65_536)
    seq_len: int = Field(default=2048, ge=1, le=MAX_CONTEXT)
    gpus: int = Field(default=1, ge=1, le=1 << 16)
    gpu: str | None = _f("gpu")
    gpu_memory: str | None = _f("gpu_memory")
    zero: int = Field(default=0, ge=0, le=3)
    fsdp: Literal["full_shard", "shard_grad_op", "no_shard"] | None = None
    tensor_parallel_size: int = Field(default=1, ge=1, le=MAX_PARALLEL)
    pipeline_parallel_size: int = Field(default=1, ge=1, le=MAX_PARALLEL)
    sequence_parallel: bool = False
    offload: Literal["none", "cpu", "nvme"] = "none"
    offload_params: bool = False
    recompute: Literal["none", "selective", "full"] = "none"
    optimizer: str = Field(
        default="adamw",
        max_length=32,
        description="adamw, adamw-bf16, adamw-8bit, sgd, sgd-momentum, adafactor.",
    )
    precision: str = Field(
        default="mixed", max_length=32, description="mixed, mixed-fp32-grads, fp32, bf16."
    )
    lora_rank: int = Field(default=16, ge=1, le=65_536)
    lora_targets: str = Field(default="q,k,v,o", max_length=200)
    flash_attention: bool = True


class PlanRequest(ModelSource):
    """Body of POST /api/plan: the options of `vramplan plan` (search GPUs x TP x PP x precision x replicas)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model": "llama-3.1-70b",
                    "context": 8192,
                    "users": 64,
                    "rate": 2.0,
                    "ttft_ms": 2000,
                    "tpot_ms": 50,
                }
            ]
        },
    )

    context: int = _f("context", required=True)
    users: int = _f("users", required=True)
    rate: float | None = Field(
        default=None, gt=0, le=1e6, description="Requests per second to sustain."
    )
    ttft_ms: float | None = Field(
        default=None, gt=0, le=1e7, description="Time-to-first-token target."
    )
    tpot_ms: float | None = Field(
        default=None, gt=0, le=1e7, description="Time-per-output-token target."
    )
    availability: float | None = Field(
        default=None, gt=0, lt=1, description="e.g. 0.999: adds spare replicas."
    )
    gpus: list[str] | None = Field(
        default=None, max_length=64, description="GPU names to consider (default: the catalogue's)."
    )
    dtype: str | None = _f("dtype")
    quantization: str | None = _f("quantization")
    kv_cache_dtype: str | None = _f("kv_cache_dtype")
    engine: str = _f("engine")
    engine_version: str | None = _f("engine_version")
    criterion: Literal["cost", "latency", "gpus", "throughput"] = "cost"
    limit: int = Field(default=10, ge=1, le=100, description="Plans to return.")
