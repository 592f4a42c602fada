"""Breakdown: named parts that add up, per GPU and in total, each with the formula behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vramplan.units import GiB

if TYPE_CHECKING:
    from vramplan.scenario import Fix


@dataclass(frozen=True)
class Component:
    """One named part of the memory: bytes on the busiest GPU, bytes on all GPUs, and why."""

    name: str
    per_gpu_bytes: int
    total_bytes: int
    formula: str
    inputs: dict[str, Any] = field(default_factory=dict)
    parts: tuple[Component, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "per_gpu_bytes": self.per_gpu_bytes,
            "total_bytes": self.total_bytes,
            "per_gpu_gib": round(self.per_gpu_bytes / GiB, 4),
            "formula": self.formula,
            "inputs": dict(
                self.inputs
            ),  # a copy: cached components must not be changed through the output
        }
        if self.parts:
            out["parts"] = [p.to_dict() for p in self.parts]
        return out


#: ``state_cache`` is the per-sequence recurrent state of hybrid / state-space models (0 for pure attention).
TOP_LEVEL = ("weights", "kv_cache", "state_cache", "activations", "overhead")


@dataclass(frozen=True)
class Breakdown:
    """The estimate: the top-level components (TOP_LEVEL) that sum to the total, plus the scenario behind them."""

    model: str
    method: str
    params: int
    precision: str
    kv_cache_dtype: str
    context: int
    users: int
    tensor_parallel_size: int
    pipeline_parallel_size: int
    components: tuple[Component, ...]
    kv_bytes_per_token: int
    gpu_name: str | None = None
    gpu_memory_bytes: int | None = None
    assumptions: tuple[str, ...] = ()
    #: Changes that make it fit (``Fix`` data; each edge renders them as its own flags or fields).
    fixes: tuple[Fix, ...] = ()
    max_users: int | None = None
    max_context: int | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    #: Recurrent state one running sequence holds over all layers at TP 1 (0 without recurrent layers).
    state_bytes_per_sequence: int = 0
    #: Why the GPU cannot run this at all, whatever the memory (capabilities.py); non-empty -> fits False.
    cannot_run: tuple[str, ...] = ()
    #: Bytes per GPU beyond the GPU's memory (None when no GPU was given or it fits).
    shortfall_bytes: int | None = None

    @property
    def gpus(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size

    def component(self, name: str) -> Component:
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def per_gpu_bytes(self) -> int:
        return sum(c.per_gpu_bytes for c in self.components)

    @property
    def total_bytes(self) -> int:
        return sum(c.total_bytes for c in self.components)

    @property
    def fits(self) -> bool | None:
        if self.gpu_memory_bytes is None:
            return None
        return not self.cannot_run and self.per_gpu_bytes <= self.gpu_memory_bytes

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of `vramplan estimate --json`."""
        by = {c.name: c for c in self.components}
        out: dict[str, Any] = {
            "model": self.model,
            "method": self.method,
            "params": self.params,
            "precision": self.precision,
            "kv_cache_dtype": self.kv_cache_dtype,
            "context": self.context,
            "users": self.users,
            **{f"{name}_bytes": by[name].total_bytes for name in TOP_LEVEL},
            "total_bytes": self.total_bytes,
            "per_gpu": {
                **{f"{name}_bytes": by[name].per_gpu_bytes for name in TOP_LEVEL},
                "total_bytes": self.per_gpu_bytes,
            },
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "state_bytes_per_sequence": self.state_bytes_per_sequence,
            "gpus": self.gpus,
            "tensor_parallel_size": self.tensor_parallel_size,
            "pipeline_parallel_size": self.pipeline_parallel_size,
            "gpu": self.gpu_name,
            "gpu_memory_bytes": self.gpu_memory_bytes,
            "fits": self.fits,
            "cannot_run": list(self.cannot_run),
            "max_users": self.max_users,
            "max_context": self.max_context,
            "shortfall_bytes": self.shortfall_bytes,
            "fixes": [f.to_dict() for f in self.fixes],
            "assumptions": list(self.assumptions),
            "components": [c.to_dict() for c in self.components],
        }
        out.update(self.extras)
        return out
