"""Per-token cache bytes of explicit per-layer layouts (``ModelSpec.kv_layout``): layers whose heads differ,
KV-sharing layers, DeepSeek sparse attention (DSA) indexer caches, fp8 MLA packing, compressed-KV layers.

Bytes per token per layer on one TP rank (hybrid-memory.md §1.5, SGLang ``pool_host/dsa.py``):
  head-split cache       max(1, H_kv // tp) x (d_k + d_v) x e
  MLA latent             (kv_lora_rank + qk_rope_head_dim) x e, replicated on every rank
  fp8 MLA (fp8_ds_mla)   656 B for DeepSeek-V3.2 / GLM-5 (512 fp8 NoPE + 4 fp32 scales + 64 bf16 RoPE) when the
                         cache dtype is 8-bit; 584 B for DeepSeek-V4 (448 fp8 + 64 bf16 RoPE + 8 B scales)
  DSA indexer keys       index_head_dim + index_head_dim / 128 x 4 (fp8 values + one fp32 scale per 128):
                         132 B for index_head_dim 128, whatever the KV dtype
"""

from __future__ import annotations

from fractions import Fraction

from vramplan.memory.kv_cache import KVLayerGroup
from vramplan.model.layout import CacheLayer

#: vLLM ``flashmla_sparse.py``: fp8_ds_mla packs 512 fp8 NoPE values, 4 fp32 scales (one per 128) and the
#: 64-wide RoPE part in bf16: 512 + 16 + 128 bytes.
FP8_DS_MLA_BYTES = 656
#: The fp8 scale granularity of DSA indexer keys (one fp32 scale per 128 values).
INDEXER_SCALE_BLOCK = 128


def fp8_mla_bytes(kv_lora_rank: int, rope_dim: int) -> int:
    """Packed fp8 MLA entry: fp8 NoPE latent + one fp32 scale per 128 + bf16 RoPE (656 B for 512/64)."""
    return kv_lora_rank + 4 * (-(-kv_lora_rank // INDEXER_SCALE_BLOCK)) + 2 * rope_dim


def indexer_key_bytes(index_head_dim: int) -> int:
    """DSA indexer key per token per layer: fp8 values + fp32 scale per 128 (132 B for 128)."""
    return index_head_dim + index_head_dim // INDEXER_SCALE_BLOCK * 4


def cache_bytes_per_token(cache: CacheLayer, element_bytes: Fraction, tp: int) -> Fraction:
    """Bytes one token adds to ``cache`` on one TP rank."""
    if cache.fixed_bytes:
        return Fraction(cache.fixed_bytes)
    if cache.fp8_bytes and element_bytes == 1:
        return Fraction(cache.fp8_bytes)
    if cache.kv_heads:
        return max(1, cache.kv_heads // tp) * (cache.key_dim + cache.value_dim) * element_bytes
    return (cache.key_dim + cache.value_dim) * element_bytes


def layout_groups(
    layers: tuple[tuple[CacheLayer, ...], ...], element_bytes: Fraction, tp: int
) -> tuple[KVLayerGroup, ...]:
    """Group the caches of ``layers`` (a pipeline stage's slice) by identical layout, in first-seen order."""
    counts: dict[CacheLayer, int] = {}
    for caches in layers:
        for cache in caches:
            counts[cache] = counts.get(cache, 0) + 1
    return tuple(
        KVLayerGroup(
            cache.kind,
            count,
            cache_bytes_per_token(cache, element_bytes, tp),
            cache.window,
            cache.compress_ratio,
        )
        for cache, count in counts.items()
    )
