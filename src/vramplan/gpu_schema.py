"""Schema of GPU catalogue entries (pydantic), used for users' own GPU files.

Kept apart from hardware.py so that start-up does not import pydantic for the shipped catalogue.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from vramplan.errors import InputError
from vramplan.hardware import (
    _FLOPS_KEYS,
    GPU,
    Flops,
    Interconnect,
    MemorySource,
    normalize_gpu_name,
)
from vramplan.units import parse_size


class _FlopsModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fp32: float | None = None
    tf32: float | None = None
    bf16: float | None = None
    fp16: float | None = None
    fp8: float | None = None
    int8: float | None = None
    fp4: float | None = None

    @field_validator("*")
    @classmethod
    def _positive(cls, v: float | None) -> float | None:
        if v is not None and v <= 0:
            raise ValueError("must be a positive FLOP/s figure or null")
        return v


class _InterconnectModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nvlink_bytes_per_s: float | None = None
    infinity_fabric_bytes_per_s: float | None = None
    pcie_gen: int | None = None
    pcie_bytes_per_s: float | None = None


class _GPUModel(BaseModel):
    """Schema of one catalogue entry; extra='forbid' so a misspelt field is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")
    name: str
    memory_bytes: int
    aliases: list[str] = []
    vendor: str | None = None
    marketing_memory_gb: float | None = None
    memory_source: MemorySource = "user"
    nvidia_smi_total_mib: int | None = None
    memory_bandwidth_bytes_per_s: float | None = None
    flops: _FlopsModel = _FlopsModel()
    interconnect: _InterconnectModel = _InterconnectModel()
    tdp_watts: float | None = None
    compute_capability: str | None = None
    price_per_hour_usd: float | None = None
    form_factor: str | None = None
    unified_memory: bool = False
    sources: dict[str, str] = {}
    notes: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not normalize_gpu_name(v):
            raise ValueError("must contain letters or digits")
        return v.strip()

    @field_validator("memory_bytes", mode="before")
    @classmethod
    def _memory(cls, v: Any) -> Any:
        # Users may write "79.19GiB" instead of a byte count.
        if isinstance(v, str):
            try:
                return parse_size(v)
            except InputError as exc:
                raise ValueError(str(exc)) from None
        return v

    @field_validator("memory_bytes")
    @classmethod
    def _memory_positive(cls, v: int) -> int:
        if v <= 0:
            raise ValueError('must be a positive byte count (e.g. 85017493504 or "79.18GiB")')
        return v

    @field_validator(
        "memory_bandwidth_bytes_per_s", "tdp_watts", "price_per_hour_usd", "marketing_memory_gb"
    )
    @classmethod
    def _positive(cls, v: float | None) -> float | None:
        if v is not None and v <= 0:
            raise ValueError("must be positive or null")
        return v

    def to_gpu(self) -> GPU:
        def as_int(x: float | None) -> int | None:
            return None if x is None else round(x)

        return GPU(
            name=self.name,
            memory_bytes=self.memory_bytes,
            aliases=tuple(self.aliases),
            vendor=self.vendor,
            marketing_memory_gb=self.marketing_memory_gb,
            memory_source=self.memory_source,
            nvidia_smi_total_mib=self.nvidia_smi_total_mib,
            memory_bandwidth_bytes_per_s=as_int(self.memory_bandwidth_bytes_per_s),
            flops=Flops(**{k: as_int(getattr(self.flops, k)) for k in _FLOPS_KEYS}),
            interconnect=Interconnect(
                nvlink_bytes_per_s=as_int(self.interconnect.nvlink_bytes_per_s),
                infinity_fabric_bytes_per_s=as_int(self.interconnect.infinity_fabric_bytes_per_s),
                pcie_gen=self.interconnect.pcie_gen,
                pcie_bytes_per_s=as_int(self.interconnect.pcie_bytes_per_s),
            ),
            tdp_watts=self.tdp_watts,
            compute_capability=self.compute_capability,
            price_per_hour_usd=self.price_per_hour_usd,
            unified_memory=self.unified_memory,
            form_factor=self.form_factor,
            sources=MappingProxyType(dict(self.sources)),
            notes=self.notes,
        )
