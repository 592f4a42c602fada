"""The breakdown's totals against an independent sum: each part recomputed by its own module.

(The old check compared ``Breakdown.per_gpu_bytes`` with the sum it is defined as; this one recomputes
weights, KV cache, activations and overheads from ``memory.*`` and the published constants.)
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vramplan.estimator import estimate
from vramplan.memory.activations import activation_peak_bytes
from vramplan.memory.kv_cache import kv_cache_bytes
from vramplan.memory.overhead import CUDA_CONTEXT_BYTES, OverheadAssumptions
from vramplan.memory.weights import weight_bytes
from vramplan.model.load import load_model
from vramplan.precision import resolve_precision
from vramplan.units import MiB

MODELS = ["llama-3.1-8b", "qwen3-30b-a3b", "gemma-2-9b", "deepseek-v2-lite", "phi-2"]


@settings(max_examples=40, deadline=None)
@given(
    model=st.sampled_from(MODELS),
    context=st.integers(1, 2048),  # phi-2 accepts 2,048 positions
    users=st.integers(1, 64),
    tp=st.sampled_from([1, 2]),
)
def test_per_gpu_total_is_the_sum_of_independently_computed_parts(
    model: str, context: int, users: int, tp: int
) -> None:
    spec = load_model(model).spec
    b = estimate(spec, context=context, users=users, tensor_parallel_size=tp)
    precision = resolve_precision(spec.torch_dtype, spec.quantization_config)
    element = Fraction(2)  # bf16 KV, the config dtype of every model above
    tokens = min(context * users, 8192)
    weights = weight_bytes(spec, precision, tp, 1).per_gpu
    kv = kv_cache_bytes(spec, element, context, users, tp)
    act = activation_peak_bytes(spec, tokens, min(users, tokens), tp)
    # measured constants of memory/overhead.py, spelled out: context + framework + NCCL + CUDA graphs
    overhead = CUDA_CONTEXT_BYTES["torch"] + 256 * MiB + (1856 * MiB if tp > 1 else 0) + 900 * MiB
    assert OverheadAssumptions().cuda_context_bytes == 552_402_944  # the H100 measurement
    expected = weights + kv + act + overhead
    assert b.per_gpu_bytes == expected
    d = b.to_dict()
    assert d["per_gpu"]["total_bytes"] == expected
    assert d["total_bytes"] == tp * expected  # TP 1-2 ranks hold identical shares here


@pytest.mark.parametrize("model", MODELS)
def test_json_parts_match_components(model: str) -> None:
    b = estimate(model, context=2048, users=4)
    d = b.to_dict()
    by_name = {c["name"]: c for c in d["components"]}
    for name in ("weights", "kv_cache", "activations", "overhead"):
        assert d[f"{name}_bytes"] == by_name[name]["total_bytes"]
        assert d["per_gpu"][f"{name}_bytes"] == by_name[name]["per_gpu_bytes"]
    overhead = by_name["overhead"]
    parts = {p["name"]: p["per_gpu_bytes"] for p in overhead["parts"]}
    assert parts["cuda_context"] == 552_402_944
    assert parts["nccl"] == 0  # one GPU
