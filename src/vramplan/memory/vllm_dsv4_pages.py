"""vLLM's KV pool for DeepSeek-V4 (sliding window + compressed sparse attention), read in vLLM 0.22.

DeepSeek-V4 keeps several caches per layer in one pool (``models/deepseek_v4``, ``v1/core/kv_cache_utils.py``):

- every layer: a sliding-window cache (``DeepseekV4SWACache``: 64-token blocks, window ``sliding_window``);
- every compressed layer (ratio 4 "CSA", 128 "HCA"): the compressed KV (``MLAAttentionSpec`` with
  ``compress_ratio``: ``block_size / ratio`` entries per block) and a compressor state (``CompressorStateCache``:
  fp32 ``2 x coff x head_dim`` per token, blocks of 4 (ratio 4) or 8 (ratio 128) tokens, window ``coff x ratio``,
  ``coff`` = 2 for ratio 4 else 1);
- every ratio-4 layer: the DSA indexer keys (132 B per entry for index_head_dim 128) and the indexer's own
  compressor state.

KV entries are fp8_ds_mla (584 B: 448 fp8 NoPE + 128 B RoPE + 8 B scales); every page is rounded up to 576 B
(FlashMLA). The full-attention caches form one group whose pages, one of each size, make a "layer tuple";
sliding and state caches are grouped by (block size, window), padded up to the next tuple page size and split
into sub-groups of at most ``num_layer_tuples`` tuples (``_approximate_gcd``). Every group then reserves
``num_layer_tuples x pages x tuple_bytes`` (``_max_memory_usage_bytes_from_groups``): a request's need is

    need(L) = n_tuples x tuple_bytes x sum over groups of pages(L)
    pages(L) = cdiv(L, block) for the full group, cdiv(min(window - 1 + T, L), block) + 1 for a sliding one

with T = max_num_batched_tokens. The sliding and state groups make the need large and non-linear in L.
Pure arithmetic on a ModelSpec's ``kv_layout``; engines/vllm.py decides when to use it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from vramplan.memory.kv_layout import indexer_key_bytes
from vramplan.model.spec import ModelSpec

#: vLLM's fp8_ds_mla entry for DeepSeek-V4 (``MLAAttentionSpec.real_page_size_bytes``).
V4_ENTRY_BYTES = 584
#: FlashMLA page alignment (``alignment=576`` on every DeepSeek-V4 spec in 0.22).
PAGE_ALIGNMENT_BYTES = 576
#: ``DeepseekV4SWACache.block_size``: 64 tokens, so a sliding page equals a 256-token ratio-4 page.
SWA_BLOCK_TOKENS = 64
#: DeepSeek-V4's preferred block size (``DeepseekSparseSWABackend.get_preferred_block_size``).
DEFAULT_BLOCK_TOKENS = 256
#: ``CompressorStateCache`` block sizes per compression ratio.
COMPRESSOR_BLOCK_TOKENS = {4: 4, 128: 8}
FP32_BYTES = 4


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _aligned(n: int) -> int:
    return _cdiv(n, PAGE_ALIGNMENT_BYTES) * PAGE_ALIGNMENT_BYTES


@dataclass(frozen=True)
class PagedGroup:
    """One KV-cache group: its block size, window (None for full attention) and bytes of one page per layer."""

    block_tokens: int
    window: int | None
    page_bytes: tuple[int, ...]

    def pages(self, max_model_len: int, batched_tokens: int) -> int:
        """Pages one request holds in this group (``max_memory_usage_pages``)."""
        if self.window is None:
            return _cdiv(max_model_len, self.block_tokens)
        held = min(self.window - 1 + batched_tokens, max_model_len)
        return _cdiv(held, self.block_tokens) + 1

    @property
    def group_bytes(self) -> int:
        return sum(self.page_bytes)


@dataclass(frozen=True)
class Dsv4Plan:
    """The grouped pool of one rank: groups, the layer-tuple bytes and the number of tuples."""

    groups: tuple[PagedGroup, ...]
    tuple_bytes: int
    num_layer_tuples: int

    @property
    def block_bytes(self) -> int:
        """One block of the pool (``_get_kv_cache_config_deepseek_v4``): every tuple slot, every page size."""
        return self.tuple_bytes * self.num_layer_tuples

    def needed_bytes(self, max_model_len: int, batched_tokens: int) -> int:
        """What one request of ``max_model_len`` needs (vLLM's startup check)."""
        return self.block_bytes * sum(g.pages(max_model_len, batched_tokens) for g in self.groups)

    def estimated_max_model_len(self, available: int, batched_tokens: int, upper: int) -> int:
        """vLLM's ``_estimate_max_model_len_from_groups``: bisection, 0 if one token does not fit."""
        if self.needed_bytes(1, batched_tokens) > available:
            return 0
        lo, hi = 1, upper
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.needed_bytes(mid, batched_tokens) <= available:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def blocks_per_request(self, max_model_len: int, batched_tokens: int) -> int:
        """``get_max_concurrency_for_kv_cache_config``: the request's bytes over all groups, in blocks of
        the first (full-attention) group."""
        usage = sum(g.pages(max_model_len, batched_tokens) * g.group_bytes for g in self.groups)
        return _cdiv(usage, self.groups[0].group_bytes)


def _approximate_gcd(values: Sequence[int], lower_bound: int) -> int:
    """vLLM's chunk size minimising the upward padding of every value to a multiple (ties: larger)."""
    best_pad, best = -1, lower_bound
    for d in range(max(1, lower_bound), max(values) + 1):
        pad = sum(_cdiv(x, d) * d - x for x in values)
        if best_pad < 0 or pad <= best_pad:
            best_pad, best = pad, d
    return best


def _tuples(pages: Sequence[int]) -> int:
    return Counter(pages).most_common(1)[0][1]


def plan_dsv4_pages(
    spec: ModelSpec,
    block_tokens: int = DEFAULT_BLOCK_TOKENS,
    layers: int | None = None,
    first_layer: int = 0,
) -> Dsv4Plan:
    """Group DeepSeek-V4's caches as vLLM 0.22 does for one rank (all caches are replicated across TP),
    over ``layers`` layers from ``first_layer`` (a pipeline stage; default all)."""
    if not spec.kv_layout:
        raise ValueError(f"{spec.name} has no per-layer cache layout")
    full: list[int] = []
    sliding: dict[tuple[int, int], list[int]] = {}
    end = spec.num_layers if layers is None else first_layer + layers
    for caches in spec.kv_layout[first_layer:end]:
        for cache in caches:
            ratio = cache.compress_ratio
            if cache.kind == "sliding":
                page = _aligned(SWA_BLOCK_TOKENS * V4_ENTRY_BYTES)
                sliding.setdefault((SWA_BLOCK_TOKENS, cache.window or 0), []).append(page)
                continue
            if ratio not in COMPRESSOR_BLOCK_TOKENS:
                raise ValueError(f"compress ratio {ratio} is not one vLLM serves (4 or 128)")
            entry = indexer_key_bytes(cache.key_dim) if cache.kind == "indexer" else V4_ENTRY_BYTES
            full.append(_aligned(block_tokens // ratio * entry))
            coff = 2 if ratio == 4 else 1
            state_block = COMPRESSOR_BLOCK_TOKENS[ratio]
            state = _aligned(state_block * 2 * coff * cache.key_dim * FP32_BYTES)
            sliding.setdefault((state_block, coff * ratio), []).append(state)
    if not full:
        raise ValueError(f"{spec.name} has no compressed layers")
    sizes = sorted(set(full))
    padded = {
        key: [min(s for s in sizes if s >= p) for p in pages] for key, pages in sliding.items()
    }
    counts = [_tuples(full)] + [_tuples(p) for p in padded.values()]
    n_tuples = _approximate_gcd(counts, counts[0])
    groups = [PagedGroup(block_tokens, None, tuple(full))]
    for (block, window), pages in padded.items():
        by_size: dict[int, list[int]] = {}
        for p in pages:
            by_size.setdefault(p, []).append(p)
        per_size = len(next(iter(by_size.values())))
        splits = _cdiv(per_size, n_tuples)
        rows = list(zip(*by_size.values()))
        for i in range(splits):
            groups.append(
                PagedGroup(block, window, tuple(p for row in rows[i::splits] for p in row))
            )
    return Dsv4Plan(tuple(groups), sum(sizes), n_tuples)
