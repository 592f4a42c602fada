"""Invariants of the explicit layouts (hypothesis): NVFP4 storage per block, and per-layer caches that add up
over pipeline-stage slices."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from vramplan.memory.kv_cache import kv_cache_bytes
from vramplan.model.hf_config import spec_from_config
from vramplan.precision import nvfp4_bytes

CATALOG = Path(__file__).resolve().parents[2] / "src" / "vramplan" / "model" / "catalog"
SPECS = {
    name: spec_from_config(json.loads((CATALOG / f"{name}.json").read_text()))
    for name in ("deepseek-ai__DeepSeek-V4-Flash", "zai-org__GLM-5", "google__gemma-4-26B-A4B")
}


@given(st.integers(1, 4096), st.integers(1, 512))
def test_nvfp4_is_four_and_a_half_bits_per_weight(n: int, blocks: int) -> None:
    k = 16 * blocks
    assert nvfp4_bytes()(n, k) * 16 == n * k * 9 + 16 * 8


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(sorted(SPECS)),
    st.integers(1, 300_000),
    st.integers(1, 8),
    st.sampled_from([Fraction(1), Fraction(2)]),
    st.data(),
)
def test_stage_slices_add_up_to_the_whole_model(name, context, users, element, data) -> None:
    spec = SPECS[name]
    cut = data.draw(st.integers(1, spec.num_layers - 1))
    whole = kv_cache_bytes(spec, element, context, users)
    first = kv_cache_bytes(spec, element, context, users, layers=cut)
    rest = kv_cache_bytes(
        spec, element, context, users, layers=spec.num_layers - cut, first_layer=cut
    )
    assert abs(first + rest - whole) <= 1  # each slice rounds its bytes up once
    assert (
        kv_cache_bytes(spec, element, context + 1, users) >= whole
    )  # never shrinks as context grows
