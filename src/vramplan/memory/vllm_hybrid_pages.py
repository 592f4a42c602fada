"""vLLM's hybrid KV-cache manager: one block pool, one page size, state slots as pages (vLLM 0.24+, read in 0.34).

For a model with attention and recurrent (Mamba / gated DeltaNet / KDA / short-conv) layers vLLM
(``platforms/interface.py`` ``update_block_size_for_backend``; ``v1/core/kv_cache_planning.py``;
``v1/core/kv_cache_utils.py``; see shared/design/hybrid-memory.md section 1):

1. raises the attention block size until one attention page (one layer, ``block_size`` tokens) holds one
   layer's state for one request: ``block = align x cdiv(state_page, align x attn_page_per_token)``, where
   ``align`` = max(the backend's smallest kernel block, the user's block size), at least 128 for MLA hybrids;
2. pads the state page up to exactly that attention page ("Padding mamba page size by X%");
3. groups layers of each kind into groups of ``group_size`` layers (the smallest layer count of any kind, or
   the largest when that is under 1.25 x the smallest); one block = one page in each of ``group_size`` layer
   tensors, so ``num_blocks = available // (page x group_size)``;
4. charges each request ``cdiv(max_model_len, block)`` blocks per attention group and, per state group, 1 + spec
   blocks (prefix caching off) or 2 + spec + prefill-checkpoint blocks (prefix caching on: "align" mode);
5. prints ``concurrency = num_blocks / blocks per request`` and "KV cache size" = ``int(concurrency x
   max_model_len)`` tokens: a derived figure, not pool / bytes per token.

Pure arithmetic on a ModelSpec; the engine module (engines/vllm.py) decides when to use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import lcm

from vramplan.memory.kv_cache import kv_heads_per_rank
from vramplan.memory.state_cache import state_shapes
from vramplan.model.spec import ModelSpec

#: Smallest kernel block of vLLM's default CUDA attention backends (FlashAttention / FlashInfer), in tokens.
DEFAULT_KERNEL_BLOCK_TOKENS = 16
#: vLLM's default ``--block-size``.
DEFAULT_BLOCK_SIZE_TOKENS = 16
#: Kernel alignment for MLA hybrids (FlashMLA pages hold 64/128 tokens); ``interface.py`` 1078-1105.
MLA_KERNEL_BLOCK_TOKENS = 128
#: ``max_num_layers < min_num_layers x 1.25`` picks the larger group size (``kv_cache_planning.py``).
GROUP_SIZE_SLACK = Fraction(5, 4)


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class HybridPagePlan:
    """How vLLM pages one rank of a hybrid model."""

    #: Attention bytes per token per layer on one rank (the page of a 1-token block).
    attn_bytes_per_token: int
    #: One layer's state for one request on one rank, before padding (conv + recurrent).
    state_page_bytes: int
    #: Tokens per attention block after the raise (the user's block size if it was already large enough).
    block_size: int
    #: Bytes of every page in the pool (= block_size x attn_bytes_per_token; the state page padded to it).
    page_bytes: int
    #: Layers per KV-cache group: one block takes one page in each of this many layer tensors.
    group_size: int
    attention_groups: int
    state_groups: int
    #: State pages one running request holds per state group (1 or 2, + speculative + checkpoint blocks).
    state_blocks_per_request: int

    @property
    def block_bytes(self) -> int:
        return self.page_bytes * self.group_size

    @property
    def padding_fraction(self) -> Fraction:
        """What vLLM logs as "Padding mamba page size by X%": padded / unpadded - 1."""
        return Fraction(self.page_bytes - self.state_page_bytes, self.state_page_bytes)

    #: Layers of each kind on this rank (attention includes MTP / draft layers that share the pool).
    attention_layers: int = 0
    state_layers: int = 0

    @property
    def state_bytes_per_request(self) -> int:
        """What one running request holds in state pages on this rank (padded pages, all state layers)."""
        return self.state_layers * self.state_blocks_per_request * self.page_bytes

    def blocks_per_request(self, max_model_len: int) -> int:
        """Blocks one request of ``max_model_len`` tokens needs over all groups."""
        return (
            self.attention_groups * _cdiv(max_model_len, self.block_size)
            + self.state_groups * self.state_blocks_per_request
        )

    def needed_bytes(self, max_model_len: int) -> int:
        """vLLM's ``max_memory_usage_bytes`` over every layer (``check_enough_kv_cache_memory``): the
        per-layer sum, without the phantom layers of incomplete groups."""
        return (
            self.attention_layers * _cdiv(max_model_len, self.block_size) * self.page_bytes
            + self.state_bytes_per_request
        )

    def estimated_max_model_len(self, available_bytes: int, upper: int) -> int:
        """vLLM's ``estimate_max_model_len``: the largest length whose need fits, by bisection (0 if none)."""
        if self.needed_bytes(1) > available_bytes:
            return 0
        lo, hi = 1, upper
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.needed_bytes(mid) <= available_bytes:
                lo = mid
            else:
                hi = mid - 1
        return lo


@dataclass(frozen=True)
class HybridCapacity:
    """What vLLM prints after sizing the pool: blocks, concurrency and the derived token figure."""

    num_blocks: int
    blocks_per_request: int
    #: ``num_blocks / blocks_per_request`` as vLLM computes it (a float), and its token figure.
    concurrency: float
    kv_cache_tokens: int


def attention_bytes_per_token(spec: ModelSpec, kv_element: Fraction, tp: int) -> int:
    """One attention layer's KV per token on one rank: K and V per KV head, or MLA's latent + rope."""
    if spec.mla is not None:
        per = (spec.mla.kv_lora_rank + spec.mla.qk_rope_head_dim) * kv_element
    else:
        per = kv_heads_per_rank(spec, tp) * (spec.head_dim + spec.v_head_dim) * kv_element
    return _cdiv(per.numerator, per.denominator)


def state_page_bytes(
    spec: ModelSpec,
    conv_bytes: Fraction | int,
    recurrent_bytes: Fraction | int,
    tp: int = 1,
    num_speculative_tokens: int = 0,
) -> int:
    """One layer's state for one request on one rank, as vLLM's MambaSpec sizes it: the conv state keeps
    ``kernel - 1 + num_speculative_tokens`` columns (``mamba_utils.py``)."""
    if spec.state is None:
        raise ValueError(f"{spec.name} has no recurrent layers")
    shapes = state_shapes(spec.state, tp)
    channels, columns = shapes.conv_shape
    total = channels * (columns + num_speculative_tokens) * Fraction(
        conv_bytes
    ) + shapes.recurrent_elements * Fraction(recurrent_bytes)
    return _cdiv(total.numerator, total.denominator)


def group_size(layer_counts: list[int]) -> int:
    """Layers per KV-cache group: the smallest count per kind, or the largest when close (< 1.25x)."""
    smallest, largest = min(layer_counts), max(layer_counts)
    return largest if largest < smallest * GROUP_SIZE_SLACK else smallest


def plan_hybrid_pages(
    spec: ModelSpec,
    kv_element: Fraction,
    conv_bytes: Fraction | int,
    recurrent_bytes: Fraction | int,
    tp: int = 1,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE_TOKENS,
    kernel_block: int | None = None,
    prefix_caching: bool = False,
    num_speculative_tokens: int = 0,
    checkpoint_blocks: int = 0,
    extra_attention_layers: int = 0,
    layer_counts: tuple[int, int] | None = None,
    checkpoint_alignment: int = 1,
) -> HybridPagePlan:
    """vLLM's page unification for ``spec`` on one of ``tp`` ranks (pp = 1).

    ``kernel_block``: the backend's smallest kernel block (default 16, 128 for MLA hybrids).
    ``prefix_caching``: vLLM's "align" mode for mamba prefix caching (on by default in vLLM 0.24+ where
    supported): two state pages per request instead of one, and the alignment also covers the checkpoint size.
    ``extra_attention_layers``: MTP / draft attention layers with the same page that join the attention groups.
    ``layer_counts``: (attention, state) layers of this pipeline stage when not the whole model.
    ``checkpoint_alignment``: in align mode the block is also a multiple of the state layers' prefill
    checkpoint alignment (0.33+: 64 tokens for FlashInfer's GDN prefill, ``interface.py`` 1102-1106).
    """
    if spec.state is None or not spec.attention_layers:
        raise ValueError(f"{spec.name} is not a hybrid of attention and recurrent layers")
    attention = {i for i, t in enumerate(spec.layer_types) if t != "no_attention"}
    if attention & set(spec.state.layers):
        # Falcon-H1 keeps both in every layer: vLLM then pages each layer's attention and state separately
        # (two specs per layer); the group arithmetic below assumes one kind per layer.
        raise ValueError(f"{spec.name} has layers with both attention and state; not modelled")
    kernel = kernel_block or (
        MLA_KERNEL_BLOCK_TOKENS if spec.mla is not None else DEFAULT_KERNEL_BLOCK_TOKENS
    )
    align = max(kernel, block_size)
    if prefix_caching:
        align = lcm(align, checkpoint_alignment)
    attn = attention_bytes_per_token(spec, kv_element, tp)
    state = state_page_bytes(spec, conv_bytes, recurrent_bytes, tp, num_speculative_tokens)
    raised = align * _cdiv(state, align * attn)
    tokens = max(block_size, raised)
    attn_layers, state_layers = layer_counts or (spec.attention_layers, spec.state.num_layers)
    attn_layers += extra_attention_layers
    size = group_size([attn_layers, state_layers])
    return HybridPagePlan(
        attn_bytes_per_token=attn,
        state_page_bytes=state,
        block_size=tokens,
        page_bytes=tokens * attn,
        group_size=size,
        attention_groups=_cdiv(attn_layers, size),
        state_groups=_cdiv(state_layers, size),
        state_blocks_per_request=(2 if prefix_caching else 1)
        + num_speculative_tokens
        + (checkpoint_blocks if prefix_caching else 0),
        attention_layers=attn_layers,
        state_layers=state_layers,
    )


def hybrid_capacity(
    plan: HybridPagePlan, available_bytes: int, max_model_len: int
) -> HybridCapacity:
    """Blocks the pool holds, requests of ``max_model_len`` that fit, and vLLM's "KV cache size" in tokens."""
    blocks = max(0, available_bytes) // plan.block_bytes
    per_request = plan.blocks_per_request(max_model_len)
    concurrency = blocks / per_request  # float division, then int(): as kv_cache_utils does
    return HybridCapacity(blocks, per_request, concurrency, int(concurrency * max_model_len))
