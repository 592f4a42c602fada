"""KV-cache bytes: one spec per attention kind, summed over layers.

Per token per layer (vLLM ``kv_cache_interface.py``, transformers ``cache_utils.py``):
  full / sliding attention  K and V: H_kv_rank x (d_k + d_v) x e
  MLA (DeepSeek)            one latent: (kv_lora_rank + qk_rope_head_dim) x e, no factor 2, replicated per TP rank
  recurrent / MLP-only      none: layers marked "no_attention" keep per-sequence state instead (state_cache.py)
Sliding layers hold at most ``window - 1`` past tokens per sequence. With paging, each sequence's tokens are
rounded up to whole blocks per layer group (a sliding window that starts mid-block costs one more block).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from math import ceil
from typing import Literal

from vramplan.model.spec import ModelSpec

KVKind = Literal["full", "sliding", "mla", "indexer", "compressed"]


@dataclass(frozen=True)
class KVLayerGroup:
    """Layers that share one KV layout: kind, layer count, bytes per token per layer on one rank."""

    kind: KVKind
    layers: int
    bytes_per_token_per_layer: Fraction
    window: int | None = None
    #: Compressed caches keep one entry per ``compress_ratio`` tokens (DeepSeek-V4).
    compress_ratio: int = 1

    def tokens_held(self, context: int) -> int:
        """Tokens one sequence of ``context`` tokens keeps in these layers.

        A window of W tokens attends to the current token plus the W - 1 before it, so W - 1 past tokens
        stay resident (transformers' DynamicSlidingWindowLayer; vLLM's SlidingWindowSpec uses W - 1 too).
        """
        if self.kind == "sliding" and self.window:
            return min(context, self.window - 1)
        if self.compress_ratio > 1:
            return context // self.compress_ratio
        return context


def kv_heads_per_rank(spec: ModelSpec, tp: int) -> int:
    """vLLM get_num_kv_heads: max(1, H_kv // tp); TP beyond H_kv replicates heads."""
    return max(1, spec.num_kv_heads // tp)


def kv_layer_groups(
    spec: ModelSpec,
    element_bytes: Fraction,
    tp: int = 1,
    layers: int | None = None,
    first_layer: int = 0,
) -> tuple[KVLayerGroup, ...]:
    """KV layout per attention kind for ``layers`` layers from ``first_layer`` (default all), one TP rank."""
    # Fractions hash slowly; cache on the integer pair instead.
    return _kv_layer_groups(
        spec, element_bytes.numerator, element_bytes.denominator, tp, layers, first_layer
    )


@lru_cache(maxsize=1024)
def _kv_layer_groups(
    spec: ModelSpec, numerator: int, denominator: int, tp: int, layers: int | None, first_layer: int
) -> tuple[KVLayerGroup, ...]:
    """KV layout per attention kind for layers ``first_layer .. first_layer + layers`` (default all), one TP rank.

    A pipeline stage passes its own slice, so an interleaved model (Gemma 2: sliding, full, sliding ...)
    counts exactly the sliding and full layers that stage holds.
    """
    element_bytes = Fraction(numerator, denominator)
    n = spec.num_layers - first_layer if layers is None else layers
    kinds = spec.layer_types[first_layer : first_layer + n]
    # Recurrent / MLP-only blocks of hybrids ("no_attention") keep no per-token KV (see state_cache.py).
    n_attention = sum(1 for t in kinds if t != "no_attention")
    if spec.kv_layout:
        from vramplan.memory.kv_layout import layout_groups

        return layout_groups(spec.kv_layout[first_layer : first_layer + n], element_bytes, tp)
    if spec.mla is not None:
        latent = spec.mla.kv_lora_rank + spec.mla.qk_rope_head_dim
        return (KVLayerGroup("mla", n_attention, latent * element_bytes),) if n_attention else ()
    per_layer = kv_heads_per_rank(spec, tp) * (spec.head_dim + spec.v_head_dim) * element_bytes
    n_sliding = sum(1 for t in kinds if t == "sliding_attention")
    groups = []
    if n_attention - n_sliding:
        groups.append(KVLayerGroup("full", n_attention - n_sliding, per_layer))
    if n_sliding:
        groups.append(KVLayerGroup("sliding", n_sliding, per_layer, spec.sliding_window))
    return tuple(groups)


def kv_bytes_per_token(spec: ModelSpec, element_bytes: Fraction, tp: int = 1) -> int:
    return _kv_bytes_per_token(spec, element_bytes.numerator, element_bytes.denominator, tp)


@lru_cache(maxsize=1024)
def _kv_bytes_per_token(spec: ModelSpec, numerator: int, denominator: int, tp: int) -> int:
    """Bytes of KV one token adds across all layers (ignoring windows), on one TP rank."""
    groups = _kv_layer_groups(spec, numerator, denominator, tp, None, 0)
    total = sum(g.layers * g.bytes_per_token_per_layer / g.compress_ratio for g in groups)
    return ceil(total)


@lru_cache(maxsize=1024)
def _linear_rate(
    spec: ModelSpec, numerator: int, denominator: int, tp: int, layers: int | None, first_layer: int
) -> tuple[int, int] | None:
    """Bytes per token per sequence as an exact (numerator, denominator) pair when KV grows linearly with
    context (no window, no compression); ``(0, 1)`` for a slice without attention; None otherwise."""
    groups = _kv_layer_groups(spec, numerator, denominator, tp, layers, first_layer)
    if any(g.kind == "sliding" or g.compress_ratio != 1 for g in groups):
        return None
    total = sum((g.layers * g.bytes_per_token_per_layer for g in groups), Fraction(0))
    return total.numerator, total.denominator


def kv_cache_bytes(
    spec: ModelSpec,
    element_bytes: Fraction,
    context: int,
    sequences: int,
    tp: int = 1,
    layers: int | None = None,
    block_size: int | None = None,
    first_layer: int = 0,
) -> int:
    """Bytes to hold ``sequences`` sequences of ``context`` tokens on one rank (``layers`` of them).

    Paging (``block_size``) rounds each sequence up to whole blocks: 4 tokens with B=16 still take one
    16-token block. A sliding window of W tokens can straddle ceil((W-1)/B)+1 blocks.
    """
    rate = _linear_rate(
        spec, element_bytes.numerator, element_bytes.denominator, tp, layers, first_layer
    )
    if rate is not None:  # every layer holds the whole context: one multiplication
        held = -(-context // block_size) * block_size if block_size else context
        return -(-(rate[0] * held * sequences) // rate[1])
    numerator, denominator = 0, 1
    for group in kv_layer_groups(spec, element_bytes, tp, layers, first_layer):
        held = group.tokens_held(context)
        if block_size:
            blocks = -(-held // block_size) + (
                1 if group.kind == "sliding" and held < context else 0
            )
            held = blocks * block_size
        # exact rational arithmetic on plain ints (Fractions are slow on the planner's hot path)
        per = group.bytes_per_token_per_layer
        term_num, term_den = group.layers * held * per.numerator, per.denominator
        numerator, denominator = (
            numerator * term_den + term_num * denominator,
            denominator * term_den,
        )
    return -(-(numerator * sequences) // denominator)


def largest_context(
    spec: ModelSpec,
    element_bytes: Fraction,
    users: int,
    budget: int,
    tp: int = 1,
    layers: int | None = None,
    block_size: int | None = None,
    upper: int | None = None,
    first_layer: int = 0,
) -> int:
    """The longest context whose KV for ``users`` sequences fits in ``budget`` bytes (0 if none)."""
    upper = upper or spec.max_position_embeddings
    rate = _linear_rate(
        spec, element_bytes.numerator, element_bytes.denominator, tp, layers, first_layer
    )
    if budget > 0 and rate == (0, 1):
        return upper  # no attention layer in this slice: context costs no KV at all
    if budget > 0 and rate is not None:
        # linear in context: solve directly, in integers (whole blocks when paged)
        step = block_size or 1
        numerator, denominator = rate
        return min(upper, (budget * denominator) // (numerator * users * step) * step)
    if (
        budget <= 0
        or kv_cache_bytes(spec, element_bytes, 1, users, tp, layers, block_size, first_layer)
        > budget
    ):
        return 0
    if (
        kv_cache_bytes(spec, element_bytes, upper, users, tp, layers, block_size, first_layer)
        <= budget
    ):
        return upper
    lo, hi = 1, upper  # kv_cache_bytes is non-decreasing in context: bisect
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if (
            kv_cache_bytes(spec, element_bytes, mid, users, tp, layers, block_size, first_layer)
            <= budget
        ):
            lo = mid
        else:
            hi = mid - 1
    return lo
