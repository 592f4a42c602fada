"""Explicit layouts a family builder can hand to a ModelSpec: its weight tensors and its per-layer caches.

The uniform decoder layout in ``params.py`` (every layer alike) covers the 2023-2025 families. Families whose
layers differ (sliding and global layers with different head sizes, DSA indexers, compressed-KV layers,
KV-sharing layers, per-layer embeddings) describe every tensor and every cache explicitly with these types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: What a tensor is for; decides whether a quantization scheme touches it.
Role = Literal[
    "embedding",
    "position_embedding",
    "lm_head",
    "linear",
    "expert",
    "router",
    "norm",
    "bias",
    "extra",
    "buffer",
]
#: How tensor parallelism divides it (Megatron/vLLM conventions).
Split = Literal["column", "row", "kv_column", "vocab", "replicated"]
#: Where it lives under pipeline parallelism.
Stage = Literal["first", "layer", "last"]


@dataclass(frozen=True)
class TensorGroup:
    """``count`` identical tensors of ``shape`` (e.g. one q_proj per layer)."""

    name: str
    shape: tuple[int, ...]
    count: int
    role: Role
    split: Split
    stage: Stage
    component: str
    #: KV heads the tensor holds when ``split == "kv_column"`` and they differ from the model's
    #: ``num_key_value_heads`` (Gemma 4 global layers); 0 = the model's.
    kv_heads: int = 0

    @property
    def numel(self) -> int:
        n = 1
        for dim in self.shape:
            n *= dim
        return n

    @property
    def total_numel(self) -> int:
        return self.numel * self.count


CacheKind = Literal["full", "sliding", "mla", "indexer", "compressed"]


@dataclass(frozen=True)
class CacheLayer:
    """One per-token cache a layer keeps (a layer may keep several: MLA latent + DSA indexer keys).

    Bytes per token on one TP rank = ``max(1, kv_heads // tp) * (key_dim + value_dim) * element bytes`` for
    head-split caches (``kv_heads`` > 0), or ``key_dim * element bytes`` for one replicated entry (MLA
    latent). ``fp8_bytes`` replaces that with a fixed packed layout when the cache dtype is 8-bit (vLLM's
    ``fp8_ds_mla``: 656 B for DeepSeek-V3.2), and ``fixed_bytes`` is a cache whose dtype the engine fixes
    whatever the KV dtype (the DSA indexer: fp8 keys + one fp32 scale per 128 = 132 B).
    """

    kind: CacheKind
    key_dim: int
    value_dim: int = 0
    kv_heads: int = 0
    window: int | None = None
    #: Compressed caches keep one entry per ``compress_ratio`` tokens (DeepSeek-V4 CSA/HCA layers).
    compress_ratio: int = 1
    fp8_bytes: int = 0
    fixed_bytes: int = 0
