"""Property tests of the estimator: monotonicity, conservation, parallelism and determinism.

Random but valid configs of every supported family (llama, qwen, gemma, mixtral, deepseek style)
are built by ``strategies.py``; the hypothesis profile (``ci`` or ``nightly``) sets the example count.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from vramplan import estimator
from vramplan.memory.breakdown import TOP_LEVEL
from vramplan.model.catalog import catalogue
from vramplan.model.hf_config import spec_from_config
from vramplan.model.params import count_params

from .strategies import spec_of, tp_choices, valid_configs


def estimate(*args: object, **kw: object) -> estimator.Breakdown:
    """The properties are about the arithmetic at any context, so the model's position limit is lifted
    (tests/test_refusals.py covers the refusal)."""
    return estimator.estimate(*args, allow_long_context=True, **kw)  # type: ignore[arg-type]


contexts = st.integers(min_value=1, max_value=1 << 20)
users = st.integers(min_value=1, max_value=4096)
CATALOGUE = sorted(catalogue())
catalogue_specs = st.sampled_from(CATALOGUE).map(
    lambda rid: spec_from_config(catalogue()[rid], name=rid)
)
specs = st.one_of(valid_configs.map(spec_of), catalogue_specs)


def _check_conservation(b, sliding_pp: bool = False) -> None:
    """``sliding_pp``: PP over a sliding-window model, where per-GPU KV is known wrong (see below)."""
    comps = {c.name: c for c in b.components}
    assert tuple(comps) == TOP_LEVEL
    # the totals against an independent sum of recomputed parts: tests/memory/test_breakdown.py
    for c in b.components:
        assert c.per_gpu_bytes >= 0 and c.total_bytes >= 0, c
        # the busiest GPU times the GPU count covers everything
        if not (sliding_pp and c.name == "kv_cache"):
            assert c.per_gpu_bytes * b.gpus >= c.total_bytes, (
                c.name,
                c.per_gpu_bytes,
                b.gpus,
                c.total_bytes,
            )
        assert c.per_gpu_bytes <= c.total_bytes, c.name
        if c.parts:
            assert sum(p.per_gpu_bytes for p in c.parts) == c.per_gpu_bytes
            assert sum(p.total_bytes for p in c.parts) == c.total_bytes


@given(cfg=valid_configs, context=contexts, n_users=users)
def test_random_valid_configs_never_crash_and_give_positive_bytes(cfg, context, n_users) -> None:
    spec = spec_of(cfg)
    counts = count_params(spec)
    assert counts.total > 0
    b = estimate(spec, context=context, users=n_users)
    for name in TOP_LEVEL:
        if name != "state_cache" or spec.state is not None:  # only hybrids keep recurrent state
            assert b.component(name).per_gpu_bytes > 0, name
    assert b.params == counts.total
    _check_conservation(b)


@given(spec=specs, context=contexts, n_users=users, data=st.data())
def test_conservation_under_any_layout(spec, context, n_users, data) -> None:
    tp = data.draw(st.sampled_from(tp_choices(spec)), label="tp")
    pp = data.draw(st.integers(1, min(8, spec.num_layers)), label="pp")
    b = estimate(
        spec, context=context, users=n_users, tensor_parallel_size=tp, pipeline_parallel_size=pp
    )
    assert (b.tensor_parallel_size, b.pipeline_parallel_size) == (tp, pp)
    _check_conservation(b, sliding_pp=pp > 1 and spec.uses_sliding_window)
    w = b.component("weights")
    by = w.inputs["by_component_per_gpu"]
    if pp == 1:
        assert sum(by.values()) == w.per_gpu_bytes, by
    else:
        assert sum(by.values()) <= w.per_gpu_bytes


@given(spec=specs, c=st.tuples(contexts, contexts), u=st.tuples(users, users))
def test_more_context_or_users_never_needs_less(spec, c, u) -> None:
    c1, c2 = sorted(c)
    u1, u2 = sorted(u)
    small = estimate(spec, context=c1, users=u1)
    big_c = estimate(spec, context=c2, users=u1)
    big_u = estimate(spec, context=c1, users=u2)
    for big in (big_c, big_u):
        for name in TOP_LEVEL:
            assert big.component(name).per_gpu_bytes >= small.component(name).per_gpu_bytes, name
        assert big.per_gpu_bytes >= small.per_gpu_bytes
        assert big.total_bytes >= small.total_bytes


DTYPE_ORDER = ["int4", "int8", "bf16", "fp32"]
QUANT = [
    "fp8",
    "w8a8",
    "w4a16",
    "awq",
    "gptq",
    "nf4",
    "bnb-8bit",
    "Q4_K_M",
    "Q8_0",
    "Q6_K",
    "Q2_K",
    "mxfp4",
]


@given(spec=specs)
def test_more_bits_never_need_less(spec) -> None:
    spec = replace(spec, quantization_config=None)
    weights = [estimate(spec, dtype=d).component("weights").per_gpu_bytes for d in DTYPE_ORDER]
    assert weights == sorted(weights), dict(zip(DTYPE_ORDER, weights))


@given(spec=specs, scheme=st.sampled_from(QUANT))
def test_quantizing_never_grows_weights(spec, scheme) -> None:
    from vramplan.model.params import inventory

    spec = replace(spec, quantization_config=None)  # compare against the unquantized checkpoint
    assume(scheme != "mxfp4" or spec.moe is not None)  # MXFP4 applies to MoE experts only (refused)
    # Real layouts carry per-tensor constants (bitsandbytes NF4 keeps a 1 KiB fp32 code table per weight),
    # which outweigh a toy matrix of a few hundred elements: the invariant is about real-sized linears.
    linears = [g for g in inventory(spec) if g.role in ("linear", "expert") and len(g.shape) == 2]
    assume(all(g.numel >= 4096 for g in linears))
    full = estimate(spec, dtype="bf16").component("weights")
    quant = estimate(spec, dtype="bf16", quantization=scheme).component("weights")
    assert quant.per_gpu_bytes <= full.per_gpu_bytes
    assert quant.total_bytes <= full.total_bytes


@given(spec=specs, context=contexts, n_users=users)
def test_fp8_kv_never_more_than_bf16_kv(spec, context, n_users) -> None:
    bf16 = estimate(spec, context=context, users=n_users, kv_cache_dtype="bf16").component(
        "kv_cache"
    )
    fp8 = estimate(spec, context=context, users=n_users, kv_cache_dtype="fp8").component("kv_cache")
    assert fp8.per_gpu_bytes <= bf16.per_gpu_bytes
    assert fp8.total_bytes <= bf16.total_bytes
    # Explicit layouts keep fp8 scales and an fp8 indexer (DeepSeek-V3.2: 788 vs 1,284 B per layer).
    if not spec.kv_layout:
        assert 2 * fp8.per_gpu_bytes <= bf16.per_gpu_bytes + 1


@given(cfg=valid_configs, extra=st.integers(1, 32), context=contexts)
def test_more_layers_never_need_less(cfg, extra, context) -> None:
    assume("layer_types" not in cfg)
    deeper = dict(cfg, num_hidden_layers=cfg["num_hidden_layers"] + extra)
    a, b = estimate(spec_of(cfg), context=context), estimate(spec_of(deeper), context=context)
    assert count_params(spec_of(deeper)).total > count_params(spec_of(cfg)).total
    for name in ("weights", "kv_cache"):
        assert b.component(name).per_gpu_bytes >= a.component(name).per_gpu_bytes, name
    assert b.per_gpu_bytes >= a.per_gpu_bytes


@given(spec=specs, data=st.data())
def test_parallelism_never_adds_weight_bytes_per_gpu(spec, data) -> None:
    tp = data.draw(st.sampled_from(tp_choices(spec)), label="tp")
    pp = data.draw(st.integers(1, min(8, spec.num_layers)), label="pp")
    one = estimate(spec, tensor_parallel_size=1, pipeline_parallel_size=1)
    split = estimate(spec, tensor_parallel_size=tp, pipeline_parallel_size=pp)
    assert split.component("weights").per_gpu_bytes <= one.component("weights").per_gpu_bytes
    assert split.params == one.params == count_params(spec).total
    # splitting never loses bytes: all GPUs together hold at least the unsharded weights
    assert (
        split.component("weights").total_bytes >= one.component("weights").total_bytes * 99 // 100
    )


@given(
    spec=specs,
    context=contexts,
    n_users=users,
    gpu=st.sampled_from([None, "H100", "A100-40GB", "RTX-4090"]),
)
def test_estimates_are_deterministic(spec, context, n_users, gpu) -> None:
    a = estimate(spec, context=context, users=n_users, gpu=gpu).to_dict()
    b = estimate(replace(spec), context=context, users=n_users, gpu=gpu).to_dict()
    assert a == b


@given(params=st.integers(1, 10**15), bits=st.tuples(st.floats(1, 64), st.floats(1, 64)))
def test_rule_of_thumb_monotone_in_bits(params, bits) -> None:
    lo, hi = sorted(bits)
    a = estimate(params=params, bits=lo, method="rule-of-thumb")
    b = estimate(params=params, bits=hi, method="rule-of-thumb")
    assert a.total_bytes <= b.total_bytes
    _check_conservation(a)


@pytest.mark.parametrize("repo_id", CATALOGUE)
def test_every_catalogue_model_conserves(repo_id: str) -> None:
    spec = spec_from_config(catalogue()[repo_id], name=repo_id)
    b = estimate(spec, context=8192, users=4, gpu="H100")
    _check_conservation(b)
    if b.fits is False:
        assert b.fixes


def _gemma2(layers: int):
    return spec_from_config(
        {
            "model_type": "gemma2",
            "hidden_size": 2304,
            "num_attention_heads": 8,
            "num_key_value_heads": 4,
            "head_dim": 256,
            "num_hidden_layers": layers,
            "vocab_size": 256_000,
            "intermediate_size": 9216,
            "sliding_window": 4096,
        },
        name=f"gemma2-{layers}L",
    )


@pytest.mark.parametrize("layers,pp", [(3, 3), (6, 2), (8, 3)])
def test_pp_kv_per_gpu_is_the_busiest_stage(layers: int, pp: int) -> None:
    from vramplan.estimator import resolve
    from vramplan.memory.kv_cache import kv_cache_bytes
    from vramplan.memory.weights import pp_layer_split, weight_bytes
    from vramplan.precision import kv_element_bytes

    spec = _gemma2(layers)
    context = 32_768
    b = estimate(spec, context=context, pipeline_parallel_size=pp)
    _, element = kv_element_bytes(None, "bfloat16")
    stage_weights = weight_bytes(spec, resolve(spec, None, None, None).precision, 1, pp).per_stage
    # exact per-stage KV from each stage's own layer types; per-GPU figures are the per-stage maxima
    start, busiest, worst_kv = 0, 0, 0
    for i, n in enumerate(pp_layer_split(spec.num_layers, pp)):
        stage = replace(spec, num_layers=n, layer_types=spec.layer_types[start : start + n])
        kv = kv_cache_bytes(stage, element, context, 1)
        busiest, worst_kv = max(busiest, stage_weights[i] + kv), max(worst_kv, kv)
        start += n
    assert b.component("kv_cache").per_gpu_bytes == worst_kv
    assert b.component("weights").per_gpu_bytes + b.component("kv_cache").per_gpu_bytes >= busiest
