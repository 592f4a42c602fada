"""The one table of deployment fields: each with its type, default, limits, unit and help, declared once.

The library's :mod:`vramplan.scenario` dataclasses take their defaults and limits from here, the CLI
commands build their typer options from here (:func:`vramplan.cli_options.option`), and the API's
pydantic request models build their fields from here (``service/schemas.py``), so `--help`, the
OpenAPI schema and the library cannot disagree (``tests/test_scenario_fields.py`` compares them).

A default of ``None`` on an engine setting means "the engine's own default for its version and GPU"
(see :mod:`vramplan.engines.base`), never a second number typed somewhere else. The module imports
nothing heavy: every CLI call reads it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: Longest context we accept: beyond any released model (16M tokens).
MAX_CONTEXT = 1 << 24
#: Most concurrent sequences we accept.
MAX_USERS = 1 << 20
#: Largest tensor- or pipeline-parallel size (GPUs in one model copy).
MAX_PARALLEL = 1024
#: Largest KV block / page size in tokens (vLLM's CacheConfig allows up to 256; TGI flashdecoding 256).
MAX_BLOCK_SIZE = 1024
#: Longest name (model, GPU) a request may carry.
MAX_NAME = 200
#: Longest short string (dtype, quantization, a size such as "24GiB").
MAX_SHORT = 64


@dataclass(frozen=True)
class FieldSpec:
    """One field of a deployment: what it is, its default, its limits, and how each edge names it.

    ``name`` is the Python, JSON and settings key; ``flag`` the CLI option. ``ge``/``gt``/``le``/``lt``
    are inclusive/exclusive bounds. ``optional`` means ``None`` is allowed (and is the default when
    ``default`` is None).
    """

    name: str
    type: type
    default: Any
    help: str
    unit: str = ""
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    optional: bool = False
    short: str | None = None
    max_length: int | None = None
    example: Any = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def flags(self) -> tuple[str, ...]:
        return (self.flag, self.short) if self.short else (self.flag,)

    @property
    def description(self) -> str:
        """Help text with the unit and the range, as both the CLI and the API schema show it."""
        extra = []
        if self.unit:
            extra.append(self.unit)
        rng = self.range_text()
        if rng:
            extra.append(rng)
        return self.help + (f" ({'; '.join(extra)})" if extra else "")

    def range_text(self) -> str:
        lo = (
            f">= {_num(self.ge)}"
            if self.ge is not None
            else (f"> {_num(self.gt)}" if self.gt is not None else "")
        )
        hi = (
            f"<= {_num(self.le)}"
            if self.le is not None
            else (f"< {_num(self.lt)}" if self.lt is not None else "")
        )
        return ", ".join(p for p in (lo, hi) if p)

    def __post_init__(self) -> None:
        # Inclusive integer bounds for the fast path of check() (the estimate runs it per call).
        lo = self.ge if self.ge is not None else (self.gt + 1 if self.gt is not None else -math.inf)
        hi = self.le if self.le is not None else (self.lt - 1 if self.lt is not None else math.inf)
        object.__setattr__(self, "_int_range", (lo, hi) if self.type is int else None)

    def check(self, value: Any) -> None:
        """Raise InputError (one line naming the flag and the fix) when ``value`` breaks this field."""
        rng = self.__dict__["_int_range"]
        if rng is not None and type(value) is int and rng[0] <= value <= rng[1]:
            return  # the common case, without the slow path's imports and messages
        if value is None and (self.optional or self.default is None):
            return
        from vramplan.errors import InputError

        if value is None:
            if self.optional or self.default is None:
                return
            raise InputError(f"{self.flag} needs a value (e.g. {self.flag} {self.example_text})")
        if self.type is bool:
            if not isinstance(value, bool):
                raise InputError(f"{self.flag} is on or off, got {value!r}")
            return
        if self.type is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise InputError(
                    f"{self.flag} must be a whole number, got {value!r} (e.g. {self.flag} {self.example_text})"
                )
        elif self.type is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"{self.flag} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise InputError(f"{self.flag} must be a finite number, got {value!r}")
        elif self.type is str:
            if not isinstance(value, str):
                raise InputError(f"{self.flag} must be text, got {value!r}")
            if self.max_length is not None and len(value) > self.max_length:
                raise InputError(
                    f"{self.flag} is {len(value)} characters long; the limit is {self.max_length}"
                )
            return
        low = (self.ge is not None and value < self.ge) or (
            self.gt is not None and value <= self.gt
        )
        high = (self.le is not None and value > self.le) or (
            self.lt is not None and value >= self.lt
        )
        unit = f" {self.unit}" if self.unit else ""
        if low and (self.ge == 1 or self.gt == 0):
            raise InputError(
                f"{self.flag} must be positive, got {value!r} (e.g. {self.flag} {self.example_text})"
            )
        if high and (self.le or self.lt or 0) >= 1000:
            raise InputError(
                f"{self.flag} {value:,} is absurdly large (limit {_num(self.le or self.lt or 0)}{unit})"
            )
        if low or high:
            raise InputError(
                f"{self.flag} {value!r} is out of range ({self.range_text()}{unit}): "
                f"e.g. {self.flag} {self.example_text}"
            )

    @property
    def example_text(self) -> str:
        return str(self.example if self.example is not None else self.default)


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def _fields(*specs: FieldSpec) -> dict[str, FieldSpec]:
    return {s.name: s for s in specs}


#: Every field a deployment has, by name. Engine settings default to None: the engine's own default.
FIELDS: dict[str, FieldSpec] = _fields(
    # ---- model and precision
    FieldSpec(
        "model",
        str,
        None,
        "Catalogue name (e.g. llama-3.1-8b), config.json path, or Hugging Face Hub id.",
        max_length=MAX_NAME,
        example="llama-3.1-8b",
    ),
    FieldSpec(
        "dtype",
        str,
        None,
        "Weight dtype: auto, fp32, fp16, bf16, fp8, int8, int4.",
        max_length=MAX_SHORT,
        example="bf16",
    ),
    FieldSpec(
        "quantization",
        str,
        None,
        "fp8, w8a8, w4a16, awq, gptq, nf4, bnb-8bit, mxfp4, or a GGUF type (Q4_K_M).",
        short="-q",
        max_length=MAX_SHORT,
        example="fp8",
    ),
    FieldSpec(
        "kv_cache_dtype",
        str,
        None,
        "KV cache dtype: auto, fp16, bf16, fp8, fp8_e5m2.",
        max_length=MAX_SHORT,
        example="fp8",
    ),
    # ---- workload
    FieldSpec(
        "context",
        int,
        4096,
        "Tokens per sequence (prompt + output) held in the KV cache.",
        unit="tokens",
        ge=1,
        le=MAX_CONTEXT,
        example=8192,
    ),
    FieldSpec(
        "users", int, 1, "Concurrent sequences.", unit="sequences", ge=1, le=MAX_USERS, example=16
    ),
    FieldSpec(
        "batch_tokens",
        int,
        None,
        "Tokens per forward pass (chunked-prefill budget); default min(context x users, 8192).",
        unit="tokens",
        ge=1,
        le=MAX_CONTEXT,
        example=8192,
    ),
    FieldSpec(
        "input_len",
        int,
        None,
        "Prompt tokens per request.",
        unit="tokens",
        ge=1,
        le=MAX_CONTEXT,
        example=1024,
    ),
    FieldSpec(
        "output_len",
        int,
        None,
        "Generated tokens per request.",
        unit="tokens",
        ge=1,
        le=MAX_CONTEXT,
        example=256,
    ),
    FieldSpec(
        "dataset",
        str,
        None,
        "Request lengths from a benchmark dataset instead of --input-len/--output-len: sharegpt, "
        "openorca, sonnet, or (CLI only) a .csv/.jsonl/.json lengths file; --output-len then fixes "
        "every output.",
        max_length=MAX_NAME,
        example="sharegpt",
    ),
    FieldSpec(
        "batch_size",
        int,
        None,
        "Static batch of B requests.",
        unit="requests",
        ge=1,
        le=MAX_USERS,
        example=8,
    ),
    FieldSpec(
        "concurrency",
        int,
        None,
        "Closed loop of C clients.",
        unit="clients",
        ge=1,
        le=MAX_USERS,
        example=16,
    ),
    FieldSpec(
        "request_rate",
        float,
        None,
        "Open loop, Poisson arrivals at R requests/s.",
        unit="requests/s",
        gt=0,
        le=1e6,
        example=2.0,
    ),
    FieldSpec(
        "prefix_hit_rate",
        float,
        None,
        "Share of each prompt found in the engine's prefix cache (a shared system prompt, repeated "
        "prompts): only the rest is prefilled. Default 0.",
        unit="fraction",
        ge=0,
        lt=1,
        example=0.5,
    ),
    # ---- hardware
    FieldSpec(
        "gpu",
        str,
        None,
        "GPU name as nvidia-smi prints it or a short form (H100-80GB, A100-40GB, RTX-4090).",
        max_length=MAX_SHORT,
        example="H100-80GB",
    ),
    FieldSpec(
        "gpu_memory",
        str,
        None,
        "GPU memory instead of a name, with its unit, e.g. 24GiB.",
        max_length=MAX_SHORT,
        example="24GiB",
    ),
    FieldSpec(
        "tensor_parallel_size",
        int,
        None,
        "Tensor-parallel size (GPUs per model copy); default 1 (estimate: the fewest GPUs that fit).",
        unit="GPUs",
        ge=1,
        le=MAX_PARALLEL,
        short="-tp",
        example=2,
    ),
    FieldSpec(
        "pipeline_parallel_size",
        int,
        None,
        "Pipeline-parallel size (stages); default 1.",
        unit="GPUs",
        ge=1,
        le=MAX_PARALLEL,
        short="-pp",
        example=2,
    ),
    # ---- engine settings (None: the engine's default for its version and GPU)
    FieldSpec(
        "engine",
        str,
        "vllm",
        "Serving engine: vllm, sglang, trtllm, tgi or llamacpp (vllm-0.5 and sglang-0.3 name the "
        "rows --engine-version picks for releases before 0.6 and 0.4).",
        max_length=MAX_SHORT,
        example="sglang",
    ),
    FieldSpec(
        "engine_version",
        str,
        None,
        "Engine version whose defaults and accounting apply, e.g. 0.11.0 (default: the latest known).",
        max_length=MAX_SHORT,
        example="0.11.0",
    ),
    FieldSpec(
        "gpu_memory_utilization",
        float,
        None,
        "Share of GPU memory the engine may use; default: the engine's own (vLLM 1.0 with 0.34's extensible KV cache, 0.92 from 0.25, 0.9 before).",
        unit="fraction",
        gt=0,
        le=1,
        example=0.9,
    ),
    FieldSpec(
        "max_model_len",
        int,
        None,
        "Prompt + output limit per request; default: the command's own (model maximum for vllm).",
        unit="tokens",
        ge=2,
        le=MAX_CONTEXT,
        example=8192,
    ),
    FieldSpec(
        "max_num_seqs",
        int,
        None,
        "Most sequences in one batch; default: the engine's own for its version and GPU.",
        unit="sequences",
        ge=1,
        le=MAX_USERS,
        example=256,
    ),
    FieldSpec(
        "max_num_batched_tokens",
        int,
        None,
        "Most tokens in one forward pass; default: the engine's own for its version and GPU.",
        unit="tokens",
        ge=1,
        le=MAX_CONTEXT,
        example=8192,
    ),
    FieldSpec(
        "block_size",
        int,
        None,
        "Paged KV block size; default: the engine's own (vLLM 16, 64 for MLA).",
        unit="tokens",
        ge=1,
        le=MAX_BLOCK_SIZE,
        example=16,
    ),
    FieldSpec(
        "enforce_eager",
        bool,
        False,
        "No CUDA graphs (and no CUDA-graph memory).",
        example=True,
    ),
)


def field(name: str) -> FieldSpec:
    """The field called ``name`` (KeyError names the missing one: a programming error, not input)."""
    return FIELDS[name]


def default(name: str) -> Any:
    return FIELDS[name].default


def check(name: str, value: Any) -> None:
    """Validate one value against its field (InputError on failure)."""
    FIELDS[name].check(value)


def to_argv(values: dict[str, Any], order: tuple[str, ...] | None = None) -> list[str]:
    """CLI arguments for ``values`` (fields at their default are left out; True booleans become bare flags)."""
    out: list[str] = []
    for name in order or tuple(values):
        if name not in values:
            continue
        value = values[name]
        spec = FIELDS[name]
        if value is None or (value == spec.default and spec.type is not bool):
            continue
        if spec.type is bool:
            if value:
                out.append(spec.flag)
            continue
        out += [spec.flag, _arg(value)]
    return out


def _arg(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)
