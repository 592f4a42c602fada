"""Scenario: one deployment (model, precision, workload, hardware, engine settings), validated once.

Every command (estimate, vllm, perf, simulate, plan) and every API route describes the same thing: a
model served at a precision on some GPUs by an engine under some load. These frozen dataclasses are
that description. Their defaults and limits are not typed here but read from the one field table,
:mod:`vramplan.scenario_fields`, which also builds the CLI options and the API request schemas.

A :class:`Fix` is a proposed change as data (field, value, why); the CLI renders it as a flag, the
API as a JSON object, so the core never writes command-line strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

from vramplan.errors import InputError
from vramplan.scenario_fields import FIELDS, MAX_CONTEXT, MAX_USERS, default

if TYPE_CHECKING:
    from vramplan.model.spec import ModelSpec

Method = Literal["detailed", "rule-of-thumb"]
__all__ = [
    "MAX_CONTEXT",
    "MAX_USERS",
    "EngineSettings",
    "Fix",
    "Hardware",
    "Method",
    "Parallelism",
    "Precision",
    "Scenario",
    "Workload",
]


_TABLE_FIELDS: dict[type, tuple[str, ...]] = {}


def _check_all(obj: Any, *, objects: tuple[str, ...] = ()) -> None:
    """Check every field against the table; ``objects`` may also hold a resolved object (a GPU)."""
    names = _TABLE_FIELDS.get(type(obj))
    if names is None:
        names = _TABLE_FIELDS[type(obj)] = tuple(f.name for f in fields(obj) if f.name in FIELDS)
    for name in names:
        value = getattr(obj, name)
        spec = FIELDS[name]
        rng = spec.__dict__["_int_range"]
        if (rng is not None and type(value) is int and rng[0] <= value <= rng[1]) or (
            value is None and spec.default is None
        ):
            continue  # fast path: a whole number in range, or an unset optional field
        if not (name in objects and value is not None and not isinstance(value, str)):
            spec.check(value)


@dataclass(frozen=True)
class Workload:
    """What the server must hold at once."""

    #: Tokens per sequence (prompt + generated) that must fit in the KV cache.
    context: int = default("context")
    #: Sequences resident at the same time (concurrent users x parallel samples).
    users: int = default("users")
    #: Tokens one forward pass processes at most (chunked prefill budget); None = min(context x users, 8192).
    batch_tokens: int | None = default("batch_tokens")

    def __post_init__(self) -> None:
        _check_all(self)

    @property
    def forward_tokens(self) -> int:
        return self.batch_tokens or min(self.context * self.users, 8192)


@dataclass(frozen=True)
class Parallelism:
    """Tensor- and pipeline-parallel sizes; None means 'choose the fewest GPUs that fit'."""

    tensor_parallel_size: int | None = default("tensor_parallel_size")
    pipeline_parallel_size: int | None = default("pipeline_parallel_size")

    def __post_init__(self) -> None:
        _check_all(self)


@dataclass(frozen=True)
class Precision:
    """Weights and KV cache formats; None means 'what the checkpoint's config says'."""

    dtype: str | None = default("dtype")
    quantization: str | None = default("quantization")
    kv_cache_dtype: str | None = default("kv_cache_dtype")

    def __post_init__(self) -> None:
        _check_all(self)
        if self.dtype and self.quantization:
            raise InputError("give --dtype or --quantization, not both")


@dataclass(frozen=True)
class Hardware:
    """The GPU (a catalogue name or a memory size) and how many of them one model copy spans."""

    #: A catalogue name, or a resolved ``vramplan.hardware.GPU`` (the planner passes those).
    gpu: Any = default("gpu")  # noqa: RUF009 (the table default: None)
    gpu_memory: str | None = default("gpu_memory")
    tensor_parallel_size: int | None = default("tensor_parallel_size")
    pipeline_parallel_size: int | None = default("pipeline_parallel_size")

    def __post_init__(self) -> None:
        _check_all(self, objects=("gpu",))

    @property
    def tp(self) -> int:
        return self.tensor_parallel_size or 1

    @property
    def pp(self) -> int:
        return self.pipeline_parallel_size or 1


@dataclass(frozen=True)
class EngineSettings:
    """The serving engine and its settings; None means the engine's default for its version and GPU."""

    engine: str = default("engine")
    engine_version: str | None = default("engine_version")
    gpu_memory_utilization: float | None = default("gpu_memory_utilization")
    max_model_len: int | None = default("max_model_len")
    max_num_seqs: int | None = default("max_num_seqs")
    max_num_batched_tokens: int | None = default("max_num_batched_tokens")
    block_size: int | None = default("block_size")
    enforce_eager: bool = default("enforce_eager")
    #: "api_server" (`vllm serve`) or "offline" (the LLM class): vLLM's batch defaults differ.
    usage_context: str = "api_server"

    def __post_init__(self) -> None:
        _check_all(self)


@dataclass(frozen=True)
class Scenario:
    """One deployment: the model (a name or a resolved spec) and the four groups above."""

    model: str | ModelSpec
    precision: Precision = field(default_factory=Precision)
    workload: Workload = field(default_factory=Workload)
    hardware: Hardware = field(default_factory=Hardware)
    engine: EngineSettings = field(default_factory=EngineSettings)

    @classmethod
    def from_values(cls, model: str | ModelSpec, **values: Any) -> Scenario:
        """A scenario from flat field values (CLI options, a JSON body); unknown keys are an error."""
        groups: dict[type, dict[str, Any]] = {
            Precision: {},
            Workload: {},
            Hardware: {},
            EngineSettings: {},
        }
        for key, value in values.items():
            for group, bucket in groups.items():
                if key in {f.name for f in fields(group)}:
                    bucket[key] = value
            if not any(key in {f.name for f in fields(g)} for g in groups):
                raise InputError(f"unknown scenario field {key!r}")
        return cls(
            model,
            Precision(**groups[Precision]),
            Workload(**groups[Workload]),
            Hardware(**groups[Hardware]),
            EngineSettings(**groups[EngineSettings]),
        )

    def values(self) -> dict[str, Any]:
        """Flat field values (the inverse of :meth:`from_values`, without the model)."""
        out: dict[str, Any] = {}
        for group in (self.precision, self.workload, self.hardware, self.engine):
            out.update({f.name: getattr(group, f.name) for f in fields(group)})
        return out


@dataclass(frozen=True)
class Fix:
    """One change that makes a deployment work: set ``flag`` (a field or engine setting) to ``value``.

    ``flag`` is the setting's key (``max_model_len``); the CLI renders it as ``--max-model-len 8192``,
    the API as a JSON object; the core writes no command-line text. ``why`` says what it buys.
    """

    flag: str
    value: Any
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.flag, "value": self.value, "why": self.why}
