"""The GPU catalogue: what each card really gives a serving engine (runtime memory, bandwidth, FLOP/s, links, price).

The data lives in ``data/gpus.json`` (one entry per GPU, every figure with its source) so that it can be
corrected without touching code; users add or override cards with their own JSON file of the same schema.
``memory_bytes`` is the total the CUDA/ROCm runtime reports (``torch.cuda.mem_get_info()[1]``), not the
marketing figure: that is the number a memory plan has to fit in.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, overload

from vramplan.cached_hash import cached_hash, state_without_hash
from vramplan.errors import InputError, UnknownGPUError
from vramplan.units import parse_size

__all__ = [
    "GPU",
    "Flops",
    "Interconnect",
    "custom_gpu",
    "gpu_from",
    "list_gpus",
    "load_catalogue",
    "normalize_gpu_name",
    "resolve_gpu",
]

MemorySource = Literal["measured", "log", "derived", "spec", "user"]


@dataclass(frozen=True)
class Flops:
    """Dense (no sparsity) peak tensor/vector rates in FLOP/s (OP/s for int8); None where unsupported or unknown."""

    fp32: int | None = None
    tf32: int | None = None
    bf16: int | None = None
    fp16: int | None = None
    fp8: int | None = None
    int8: int | None = None
    fp4: int | None = None

    def for_dtype(self, dtype: str) -> int | None:
        """The rate for a dtype name such as 'bf16' or 'float16'; None if the card has none."""
        key = {
            "float32": "fp32",
            "float16": "fp16",
            "half": "fp16",
            "bfloat16": "bf16",
            "float8": "fp8",
            "float4": "fp4",
            "nvfp4": "fp4",
            "mxfp4": "fp4",
        }.get(dtype.lower(), dtype.lower())
        return getattr(self, key, None) if key in _FLOPS_KEYS else None


_FLOPS_KEYS = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4")


@dataclass(frozen=True)
class Interconnect:
    """GPU-to-GPU and host links, bytes/s. nvlink is per GPU, bidirectional; null for PCIe-only or bridge-only cards."""

    nvlink_bytes_per_s: int | None = None
    infinity_fabric_bytes_per_s: int | None = None
    pcie_gen: int | None = None
    pcie_bytes_per_s: int | None = None


@dataclass(frozen=True)
class GPU:
    """One GPU model. ``memory_bytes`` is the runtime-visible total, the budget every memory plan must fit in."""

    name: str
    memory_bytes: int
    aliases: tuple[str, ...] = ()
    vendor: str | None = None
    marketing_memory_gb: float | None = None
    memory_source: MemorySource = "user"
    nvidia_smi_total_mib: int | None = None
    memory_bandwidth_bytes_per_s: int | None = None
    flops: Flops = field(default_factory=Flops)
    interconnect: Interconnect = field(default_factory=Interconnect)
    tdp_watts: float | None = None
    compute_capability: str | None = None
    price_per_hour_usd: float | None = None
    form_factor: str | None = None
    #: CPU and GPU share one memory (GB10, GH200's LPDDR side is not counted): the OS and CPU
    #: processes take their share out of ``memory_bytes``, so a plan must leave room for them.
    unified_memory: bool = False
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False, repr=False)
    notes: str = field(default="", compare=False, repr=False)

    __hash__ = cached_hash
    __getstate__ = state_without_hash

    @property
    def memory_gib(self) -> float:
        """Runtime total in GiB, as engines print it."""
        return self.memory_bytes / 2**30


def _parse_entries(data: Any, origin: str) -> list[GPU]:
    """Validate a catalogue document ({"gpus": [...]}, or a bare list) into GPUs, naming the bad field on error."""
    from pydantic import ValidationError

    from vramplan.gpu_schema import _GPUModel

    entries = data.get("gpus") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise InputError(
            f'{origin}: expected a JSON object with a "gpus" list (or a bare list of GPU entries)'
        )
    gpus = []
    for i, raw in enumerate(entries):
        label = f"entry #{i}" + (
            f" ({raw.get('name')!r})" if isinstance(raw, dict) and raw.get("name") else ""
        )
        try:
            gpus.append(_GPUModel.model_validate(raw).to_gpu())
        except ValidationError as exc:
            problems = "; ".join(
                f"field '{'.'.join(str(p) for p in err['loc']) or '(entry)'}': {err['msg']}"
                for err in exc.errors()
            )
            raise InputError(
                f"{origin}: GPU {label} is invalid: {problems}. Fix that field; the schema is the one of "
                f"vramplan/data/gpus.json (required: name, memory_bytes)."
            ) from None
    return gpus


@functools.cache
def _builtin() -> tuple[GPU, ...]:
    """The shipped catalogue, parsed once per process."""
    text = resources.files("vramplan").joinpath("data/gpus.json").read_text(encoding="utf-8")
    return tuple(_gpu_from_trusted(raw) for raw in json.loads(text)["gpus"])


def _gpu_from_trusted(raw: dict[str, Any]) -> GPU:
    """Build a GPU from the shipped file without pydantic (imported only for user files: faster start-up).

    tests/test_hardware.py validates the shipped file through the same schema user files go through.
    """

    def as_int(x: float | None) -> int | None:
        return None if x is None else round(x)

    flops = raw.get("flops") or {}
    link = raw.get("interconnect") or {}
    return GPU(
        name=raw["name"].strip(),
        memory_bytes=int(raw["memory_bytes"]),
        aliases=tuple(raw.get("aliases", ())),
        vendor=raw.get("vendor"),
        marketing_memory_gb=raw.get("marketing_memory_gb"),
        memory_source=raw.get("memory_source", "user"),
        nvidia_smi_total_mib=raw.get("nvidia_smi_total_mib"),
        memory_bandwidth_bytes_per_s=as_int(raw.get("memory_bandwidth_bytes_per_s")),
        flops=Flops(**{k: as_int(flops.get(k)) for k in _FLOPS_KEYS}),
        interconnect=Interconnect(
            nvlink_bytes_per_s=as_int(link.get("nvlink_bytes_per_s")),
            infinity_fabric_bytes_per_s=as_int(link.get("infinity_fabric_bytes_per_s")),
            pcie_gen=link.get("pcie_gen"),
            pcie_bytes_per_s=as_int(link.get("pcie_bytes_per_s")),
        ),
        tdp_watts=raw.get("tdp_watts"),
        compute_capability=raw.get("compute_capability"),
        price_per_hour_usd=raw.get("price_per_hour_usd"),
        form_factor=raw.get("form_factor"),
        unified_memory=bool(raw.get("unified_memory", False)),
        sources=MappingProxyType(dict(raw.get("sources", {}))),
        notes=raw.get("notes", ""),
    )


def load_catalogue(extra_path: str | Path | None = None) -> tuple[GPU, ...]:
    """Built-in GPUs plus those of a user JSON file; a user entry with a built-in's name replaces it."""
    builtin = _builtin()
    if extra_path is None:
        return builtin
    path = Path(extra_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"cannot read GPU file {str(path)!r}: {exc.strerror or exc}. Check the path."
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"GPU file {str(path)!r} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    extra = _parse_entries(data, f"GPU file {str(path)!r}")
    seen: set[str] = set()
    for gpu in extra:
        key = normalize_gpu_name(gpu.name)
        if key in seen:
            raise InputError(
                f"GPU file {str(path)!r} defines {gpu.name!r} twice; keep one entry per GPU"
            )
        seen.add(key)
    kept = tuple(g for g in builtin if normalize_gpu_name(g.name) not in seen)
    return kept + tuple(extra)


# ---------------------------------------------------------------- lookup

_STRIP = re.compile(r"[\s\-_]+")


@functools.lru_cache(maxsize=512)
def normalize_gpu_name(name: str) -> str:
    """Lower-case and drop spaces, dashes and underscores: 'H100_80GB' and 'h100 80gb' are the same key."""
    return _STRIP.sub("", name).lower()


def _build_index(catalogue: tuple[GPU, ...]) -> dict[str, GPU]:
    # Later entries win, so a user file's aliases override built-in ones.
    index: dict[str, GPU] = {}
    for gpu in catalogue:
        for label in (*gpu.aliases, gpu.name):
            index[normalize_gpu_name(label)] = gpu
    return index


@functools.cache
def _default_index() -> dict[str, GPU]:
    return _build_index(_builtin())


@functools.lru_cache(maxsize=16)
def _index_for(catalogue: tuple[GPU, ...]) -> dict[str, GPU]:
    return _build_index(catalogue)


def resolve_gpu(name: str, catalogue: tuple[GPU, ...] | list[GPU] | None = None) -> GPU:
    """Find a GPU by canonical name or any alias (nvidia-smi / torch names), ignoring case, spaces, dashes, underscores."""
    if catalogue is None:
        index = _default_index()
    else:
        index = _index_for(tuple(catalogue))
    key = normalize_gpu_name(str(name))
    gpu = index.get(key)
    if gpu is not None:
        return gpu
    keys = list(index)
    close: list[str] = []
    for match in difflib.get_close_matches(key, keys, n=12, cutoff=0.0):
        canonical = index[match].name
        if canonical not in close:
            close.append(canonical)
        if len(close) == 3:
            break
    shown = ", ".join(close)
    raise UnknownGPUError(
        f"unknown GPU {name!r}. Closest: {shown}. Run `vramplan gpus` for the full list, "
        f"or give the memory directly with --gpu-memory (e.g. --gpu-memory 24GiB)."
    )


def custom_gpu(memory: str | int, name: str = "custom") -> GPU:
    """A GPU known only by its runtime memory (``--gpu-memory 24GiB``); everything else unknown."""
    memory_bytes = parse_size(memory)
    return GPU(
        name=name,
        memory_bytes=memory_bytes,
        memory_source="user",
        notes="user-specified memory, taken as the runtime total (torch.cuda.mem_get_info()[1])",
    )


_NO_GPU = "no GPU given: pass --gpu NAME (e.g. H100-80GB, A100-40GB, L4; see `vramplan gpus`) or --gpu-memory SIZE (e.g. 24GiB)"


@overload
def gpu_from(
    gpu: str | GPU | None = ...,
    memory: str | int | None = ...,
    *,
    required: Literal[True],
    label: str | None = ...,
) -> GPU: ...
@overload
def gpu_from(
    gpu: str | GPU | None = ...,
    memory: str | int | None = ...,
    *,
    required: bool = ...,
    label: str | None = ...,
) -> GPU | None: ...
def gpu_from(
    gpu: str | GPU | None = None,
    memory: str | int | None = None,
    *,
    required: bool = False,
    label: str | None = None,
) -> GPU | None:
    """The one GPU lookup: a catalogue name or alias, a GPU, a memory size, or a name with a memory size.

    With both, the memory is the user's (it replaces the catalogue figure) and the catalogue entry keeps
    its other facts (compute capability, bandwidth); a name the catalogue lacks then only labels the
    size. ``label`` names a GPU known only by its memory. With neither: None, or an error if ``required``.
    """
    if memory is not None:
        memory_bytes = parse_size(memory)
        base = gpu if isinstance(gpu, GPU) else _find(gpu) if gpu else None
        if base is None:
            return custom_gpu(memory_bytes, name=str(gpu) if gpu else (label or "custom"))
        return replace(base, memory_bytes=memory_bytes, memory_source="user")
    if isinstance(gpu, GPU):
        return gpu
    if gpu:
        return resolve_gpu(gpu)
    if required:
        raise InputError(_NO_GPU)
    return None


def _find(name: str) -> GPU | None:
    return _default_index().get(normalize_gpu_name(str(name)))


def list_gpus(catalogue: tuple[GPU, ...] | None = None) -> tuple[GPU, ...]:
    """All catalogued GPUs in file order (for `vramplan gpus` and the web UI)."""
    return _builtin() if catalogue is None else tuple(catalogue)
