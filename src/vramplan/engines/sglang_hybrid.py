"""SGLang's per-token cell and per-request state pool for hybrid (Mamba / gated DeltaNet) and DSA models.

Cell: the bytes per token SGLang *sizes* its pool with can differ from what the pool *allocates*:
  - DeepSeek DSA (V3.2, GLM-5): before PR #11309 (0.5.4) the indexer keys (132 B/layer) were allocated but
    not counted (0.5.3 model_runner.py:1274-1297); until 0.5.15 the fp8 entry was counted as
    (kv_lora_rank + rope) x 1 B = 576 B while NSATokenToKVPool allocates 656 B (memory_pool.py:1054-1057);
    0.5.23 counts 656 (kv_cache_configurator.py:3412-3475).
  - hybrids: only full-attention layers have KV (``full_attention_layer_ids``).
Mamba pool (0.5.23 kv_cache_configurator.py:3229-3409; 0.5.4 model_runner.py:1431-1480):
  explicit --max-mamba-cache-size wins; radix cache off + --max-running-requests sets it; otherwise
  budget = rest x r / (1 + r) (r = --mamba-full-memory-ratio, 0.9) and slots = (budget - per_req) // per_req.
  The pool holds slots + 1 (one padding slot); KV gets rest - (slots + 1) x per_req.
  Running requests are capped at slots // 3 (three slots per request with the radix cache, :3056-3079).
State per request (configs/mamba_utils.py:47-126): conv state in bfloat16, SSM state in --mamba-ssm-dtype, else
the checkpoint's ``mamba_ssm_dtype``, else float32; shapes as vLLM's (``memory.state_cache``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from vramplan.errors import InputError
from vramplan.memory.kv_cache import KVLayerGroup
from vramplan.memory.state_cache import state_bytes_per_sequence
from vramplan.model.spec import ModelSpec
from vramplan.precision import DTYPE_BYTES, canonical_dtype

#: ``mamba_full_memory_ratio`` default (arg_groups/fields/schedule.py:220-226 of 0.5.23).
MAMBA_FULL_MEMORY_RATIO = 0.9
#: SGLang's conv-state dtype (``SGLANG_MAMBA_CONV_DTYPE`` unset) and SSM default (mamba_utils.py:68-72).
CONV_STATE_DTYPE = "bfloat16"
SSM_STATE_DEFAULT = "float32"
#: --max-mamba-cache-size default with the radix cache off and no --max-running-requests (0.5.4).
NO_RADIX_MAMBA_SLOTS = 512
_SSM_CHOICES = ("float32", "bfloat16", "float16")


def sglang_state_dtypes(spec: ModelSpec, mamba_ssm_dtype: str | None) -> tuple[str, str, str]:
    """(conv dtype, ssm dtype, where the ssm dtype came from) by SGLang's priority."""
    if mamba_ssm_dtype:
        if mamba_ssm_dtype not in _SSM_CHOICES:
            raise InputError(
                f"--mamba-ssm-dtype {mamba_ssm_dtype!r} is not one of {', '.join(_SSM_CHOICES)}"
            )
        return CONV_STATE_DTYPE, mamba_ssm_dtype, "--mamba-ssm-dtype"
    from_model = spec.state.ssm_dtype if spec.state is not None else None
    if from_model:
        return CONV_STATE_DTYPE, canonical_dtype(from_model), "the checkpoint's mamba_ssm_dtype"
    return CONV_STATE_DTYPE, SSM_STATE_DEFAULT, "SGLang's default"


def state_bytes_per_request(
    spec: ModelSpec, attn_tp: int, mamba_ssm_dtype: str | None, layers: int | None = None
) -> int:
    """``mamba_cache_per_req`` on one rank: conv + SSM state over the (stage's) recurrent layers."""
    if spec.state is None:
        return 0
    conv, ssm, _ = sglang_state_dtypes(spec, mamba_ssm_dtype)
    return state_bytes_per_sequence(spec, DTYPE_BYTES[conv], DTYPE_BYTES[ssm], attn_tp, layers)


@dataclass(frozen=True)
class MambaPool:
    """The state pool: slots (``max_mamba_cache_size``), bytes held, and the rest left for KV."""

    slots: int
    per_request_bytes: int
    pool_bytes: int
    kv_rest_bytes: int
    rule: str
    #: Per-draft-token intermediate SSM states kept for speculative verification (0 without).
    intermediate_bytes: int = 0


def mamba_pool(
    rest_bytes: int,
    per_request_bytes: int,
    *,
    ratio: float = MAMBA_FULL_MEMORY_RATIO,
    max_mamba_cache_size: int | None = None,
    disable_radix_cache: bool = False,
    max_running_requests: int | None = None,
    attn_dp: int = 1,
    draft_tokens: int = 0,
    slots_per_request: int = 3,
    pad_slot: bool = True,
    spec_rule: str = "joint",
) -> MambaPool:
    """``_handle_max_mamba_cache`` per DP shard.

    ``pad_slot``: 0.5.23 allocates slots + 1 and solves for it; 0.5.4-0.5.15 do not. With speculative decoding
    (``draft_tokens`` D > 0) 0.5.15+ solve jointly for the slots K and the intermediate states of the running
    requests: K = (budget - pad x per_req x (1 + D)) // (per_req x (1 + D / slots_per_request)), intermediate
    = per_req x (min(running, K // slots_per_request) + pad) x D (0.5.23 kv_cache_configurator.py:3346-3385,
    0.5.15 model_runner_kv_cache_mixin.py:140-220); 0.5.4 gives every slot D more states
    (``spec_rule="per_slot"``, model_runner.py:1431-1480).
    """
    pad = 1 if pad_slot else 0
    d = draft_tokens
    running = max(1, (max_running_requests or 1) // attn_dp)
    inter_reqs: int | None = None
    per_slot = per_request_bytes * (1 + d) if d and spec_rule == "per_slot" else per_request_bytes
    if max_mamba_cache_size is not None:
        slots, rule = max_mamba_cache_size // attn_dp, "--max-mamba-cache-size"
        inter_reqs = min(running, slots // slots_per_request)
    elif disable_radix_cache:
        slots = (
            max(1, max_running_requests // attn_dp)
            if max_running_requests
            else NO_RADIX_MAMBA_SLOTS
        )
        rule = "radix cache off: one slot per running request"
        inter_reqs = slots
    else:
        if not ratio > 0:
            raise InputError(f"--mamba-full-memory-ratio {ratio} must be > 0 (default 0.9)")
        budget = int(rest_bytes * ratio / (1 + ratio))
        rule = f"mamba_full_memory_ratio {ratio}: {ratio / (1 + ratio):.1%} of the rest"
        if d and spec_rule == "joint":
            slots = int(
                (budget - pad * per_request_bytes * (1 + d))
                // (per_request_bytes * (1 + d / slots_per_request))
            )
            inter_reqs = min(running, slots // slots_per_request)
        else:
            slots = (budget - pad * per_slot) // per_slot
    intermediate = 0
    if d and spec_rule == "joint" and inter_reqs is not None:
        intermediate = per_request_bytes * (inter_reqs + pad) * d
    pool = (slots + pad) * per_slot + intermediate
    return MambaPool(slots, per_request_bytes, pool, rest_bytes - pool, rule, intermediate)


def attention_groups_for_cell(
    groups: tuple[KVLayerGroup, ...],
    spec: ModelSpec,
    element: Fraction,
    *,
    indexer_in_cell: bool,
    packed_in_cell: bool,
) -> tuple[int, int]:
    """(bytes per token SGLang sizes the pool with, bytes per token the pool allocates) on one rank."""
    allocated = sum(g.layers * g.bytes_per_token_per_layer for g in groups)
    if spec.mla is None or not any(g.kind == "indexer" for g in groups):
        return _ceil(allocated), _ceil(allocated)
    sized = Fraction(0)
    for g in groups:
        if g.kind == "indexer":
            sized += g.layers * g.bytes_per_token_per_layer if indexer_in_cell else 0
        elif g.kind == "mla" and not packed_in_cell:
            sized += g.layers * (spec.mla.kv_lora_rank + spec.mla.qk_rope_head_dim) * element
        else:
            sized += g.layers * g.bytes_per_token_per_layer
    return _ceil(sized), _ceil(allocated)


def is_dsa(spec: ModelSpec) -> bool:
    """DeepSeek sparse attention (an indexer cache next to MLA): V3.2, GLM-5."""
    return spec.mla is not None and any(
        c.kind == "indexer" for layer in (spec.kv_layout or ()) for c in layer
    )


def _ceil(x: Fraction | int) -> int:
    x = Fraction(x)
    return -(-x.numerator // x.denominator)
