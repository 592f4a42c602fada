"""KV bytes and the longest context, against a per-layer sum written out independently here.

``kv_cache_bytes`` and ``largest_context`` take an integer shortcut (one cached bytes-per-token rate)
when every layer holds the whole context; these tests recompute the same figures layer by layer from
the config's own fields, so the shortcut and the general path cannot drift from the definition.
"""

from __future__ import annotations

import pickle
from dataclasses import replace
from fractions import Fraction
from math import ceil

from hypothesis import given
from hypothesis import strategies as st

from vramplan.memory.kv_cache import kv_cache_bytes, largest_context
from vramplan.model.load import load_model

from .strategies import spec_of, valid_configs

ELEMENTS = st.sampled_from([Fraction(2), Fraction(1), Fraction(4), Fraction(1, 2)])


def _per_layer_sum(spec, element, context, sequences, tp, block):  # type: ignore[no-untyped-def]
    """Sum over layers of what each layer keeps, from the spec's raw fields."""
    total = Fraction(0)
    for kind in spec.layer_types:
        if kind == "no_attention":
            continue
        held = context
        if kind == "sliding_attention" and spec.sliding_window:
            held = min(context, spec.sliding_window - 1)
        if block:
            blocks = ceil(held / block) + (
                1 if kind == "sliding_attention" and held < context else 0
            )
            held = blocks * block
        if spec.mla is not None:
            per = (spec.mla.kv_lora_rank + spec.mla.qk_rope_head_dim) * element
        else:
            heads = max(1, spec.num_kv_heads // tp)
            per = heads * (spec.head_dim + spec.v_head_dim) * element
        total += held * per
    return ceil(total * sequences)


@given(
    cfg=valid_configs,
    element=ELEMENTS,
    context=st.integers(1, 1 << 18),
    sequences=st.integers(1, 512),
    tp=st.sampled_from([1, 2, 4, 8]),
    block=st.sampled_from([None, 1, 16, 256]),
)
def test_kv_bytes_equal_the_per_layer_sum(cfg, element, context, sequences, tp, block) -> None:  # type: ignore[no-untyped-def]
    spec = spec_of(cfg)
    if (
        spec.kv_layout
    ):  # explicit per-layer layouts have their own tests (tests/model/test_sparse_kv.py)
        return
    assert kv_cache_bytes(
        spec, element, context, sequences, tp, block_size=block
    ) == _per_layer_sum(spec, element, context, sequences, tp, block)


@given(
    cfg=valid_configs,
    element=ELEMENTS,
    users=st.integers(1, 64),
    budget=st.integers(1, 1 << 40),
    block=st.sampled_from([None, 16]),
)
def test_largest_context_is_the_last_that_fits(cfg, element, users, budget, block) -> None:  # type: ignore[no-untyped-def]
    spec = spec_of(cfg)
    best = largest_context(spec, element, users, budget, block_size=block)
    step = block or 1
    if 0 < best < spec.max_position_embeddings:
        assert kv_cache_bytes(spec, element, best, users, block_size=block) <= budget
        if not spec.uses_sliding_window:  # windows flatten the curve: past the window nothing grows
            assert kv_cache_bytes(spec, element, best + step, users, block_size=block) > budget


def test_cached_hashes_never_travel_between_processes() -> None:
    """String hashes differ per interpreter: a pickled spec must rehash where it lands."""
    spec = load_model("meta-llama/Llama-3.1-8B").spec
    hash(spec)
    copy = pickle.loads(pickle.dumps(spec))
    assert "_cached_hash" not in copy.__dict__
    assert copy == spec and hash(copy) == hash(spec)
    assert hash(replace(spec, num_layers=spec.num_layers + 1)) != hash(spec)
