"""Property tests of the newer modules: planner, training memory, engine predictions, simulator.

* planner: no returned plan needs more memory per GPU than the GPU has, and plans come ranked by
  the criterion asked for;
* training: per-GPU memory never falls as micro-batch, sequence length or LoRA rank grow, and
  never rises with a higher ZeRO stage;
* engines (vLLM, SGLang): a larger memory share never gives fewer KV tokens; a deeper model or more
  weights never give more;
* simulator: the token-state share (and every other share) stays in [0, 1].

The hypothesis profile (``ci`` or ``nightly``, tests/conftest.py) sets the example count; each
example is kept cheap (small catalogue subsets, short replays) so the ``ci`` run stays well under
30 s.
"""

from __future__ import annotations

import itertools
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from vramplan.errors import DoesNotFitError, InputError, VramplanError
from vramplan.model.catalog import catalogue
from vramplan.model.hf_config import spec_from_config

from .strategies import llama_like, spec_of

# Small and mid-size catalogue models of different families (dense, GQA, MoE, MLA).
PLAN_MODELS = [
    m
    for m in (
        "meta-llama/Llama-3.1-8B",
        "Qwen/Qwen2.5-7B",
        "Qwen/Qwen3-30B-A3B",
        "mistralai/Mixtral-8x7B-v0.1",
        "meta-llama/Llama-3.1-70B",
        "google/gemma-2-9b",
        "facebook/opt-13b",
    )
    if m in catalogue()
]
PLAN_GPUS = [
    "L4",
    "A100-40GB-SXM",
    "A100-80GB-SXM",
    "H100-80GB-SXM",
    "H200-141GB",
    "RTX-4090",
    "MI300X",
]


def _spec(repo_id: str):
    return spec_from_config(catalogue()[repo_id], name=repo_id)


# ------------------------------------------------------------------------------------------ planner


@given(
    model=st.sampled_from(PLAN_MODELS),
    gpus=st.lists(st.sampled_from(PLAN_GPUS), min_size=1, max_size=3, unique=True),
    context=st.sampled_from([512, 2048, 8192, 32768]),
    users=st.integers(1, 512),
    criterion=st.sampled_from(["cost", "latency", "gpus", "throughput"]),
    output_len=st.sampled_from([64, 256]),
)
def test_planner_plans_fit_and_are_ranked(
    model: str, gpus: list[str], context: int, users: int, criterion: str, output_len: int
) -> None:
    from vramplan.hardware import resolve_gpu
    from vramplan.planner import plan

    try:
        result = plan(
            _spec(model),
            context=context,
            users=users,
            gpus=gpus,
            criterion=criterion,
            output_len=output_len,
            limit=5,
        )
    except DoesNotFitError:
        return
    assert result.plans
    for p in result.plans:
        mem = resolve_gpu(p.gpu).memory_bytes
        assert p.per_gpu["gpu_memory_bytes"] == mem
        total = p.per_gpu["total_bytes"]
        assert 0 < total <= mem, (
            f"{p.gpu} TP {p.tensor_parallel_size} PP {p.pipeline_parallel_size} "
            f"{p.precision} batch {p.batch_per_replica}: {total} > {mem} bytes per GPU"
        )
        assert p.per_gpu["kv_headroom_bytes"] >= 0
    out = max(output_len, 1)
    key = {
        "cost": lambda p: (p.cost_per_hour if p.cost_per_hour is not None else math.inf, p.tpot_ms),
        "latency": lambda p: (p.tpot_ms + p.ttft_ms / out, p.cost_per_hour or 0),
        "gpus": lambda p: (p.total_gpus, p.cost_per_hour or 0),
        "throughput": lambda p: (-(p.tokens_per_s / max(p.cost_per_hour or 1e-9, 1e-9)),),
    }[criterion]
    keys = [key(p) for p in result.plans]
    assert keys == sorted(keys), f"plans not ranked by {criterion}: {keys}"


# ----------------------------------------------------------------------------------------- training

TRAIN_MODELS = [
    m
    for m in (
        "meta-llama/Llama-3.1-8B",
        "Qwen/Qwen2.5-7B",
        "Qwen/Qwen3-30B-A3B",
        "facebook/opt-13b",
        "google/gemma-2-2b",
    )
    if m in catalogue()
]
train_specs = st.one_of(st.sampled_from(TRAIN_MODELS).map(_spec), llama_like().map(spec_of))
methods = st.sampled_from(["full", "lora", "qlora"])
recompute = st.sampled_from(["none", "full", "selective"])


def _train(spec, **kw: Any) -> int | None:
    from vramplan.training import estimate_training

    try:
        return estimate_training(spec, search=False, **kw).total_bytes
    except InputError:
        return None  # a combination the estimator refuses (e.g. QLoRA on fp32): nothing to compare


@given(
    spec=train_specs,
    method=methods,
    recompute=recompute,
    mb=st.integers(1, 16),
    extra_mb=st.integers(1, 16),
    seq=st.integers(16, 8192),
    extra_seq=st.integers(1, 8192),
    zero=st.sampled_from([0, 1, 2, 3]),
    gpus=st.sampled_from([1, 2, 8]),
)
def test_training_memory_grows_with_batch_and_sequence(
    spec,
    method: str,
    recompute: str,
    mb: int,
    extra_mb: int,
    seq: int,
    extra_seq: int,
    zero: int,
    gpus: int,
) -> None:
    base = {"method": method, "recompute": recompute, "zero": zero if gpus > 1 else 0, "gpus": gpus}
    small = _train(spec, micro_batch=mb, seq_len=seq, **base)
    assume(small is not None)
    more_mb = _train(spec, micro_batch=mb + extra_mb, seq_len=seq, **base)
    more_seq = _train(spec, micro_batch=mb, seq_len=seq + extra_seq, **base)
    if more_mb is not None:
        assert more_mb >= small, (method, recompute, mb, mb + extra_mb, seq)
    if more_seq is not None:
        assert more_seq >= small, (method, recompute, mb, seq, seq + extra_seq)


@given(
    spec=train_specs,
    method=st.sampled_from(["lora", "qlora"]),
    rank=st.integers(1, 256),
    extra=st.integers(1, 256),
    seq=st.sampled_from([256, 2048]),
)
def test_training_memory_grows_with_lora_rank(
    spec, method: str, rank: int, extra: int, seq: int
) -> None:
    low = _train(spec, method=method, lora_rank=rank, seq_len=seq)
    high = _train(spec, method=method, lora_rank=rank + extra, seq_len=seq)
    assume(low is not None and high is not None)
    assert high >= low, (method, rank, rank + extra)


@given(
    catalogued=st.booleans(),
    model=st.sampled_from(TRAIN_MODELS),
    toy=llama_like(),
    method=methods,
    gpus=st.sampled_from([2, 4, 8, 64]),
    mb=st.integers(1, 8),
    seq=st.sampled_from([512, 4096]),
    offload=st.sampled_from(["none", "optimizer"]),
)
def test_training_memory_never_rises_with_zero_stage(
    catalogued: bool, model: str, toy: dict, method: str, gpus: int, mb: int, seq: int, offload: str
) -> None:
    """Higher ZeRO stages shard more, so no part of the per-GPU memory grows, with one exception.

    ZeRO-3 / FSDP full_shard holds, besides its 1/N shard, the one layer it has all-gathered for the
    current forward/backward (``zero3_gathered_layer``). For a real model that buffer is far smaller
    than what sharding saves; for a toy model whose largest layer is most of its weights it can be
    larger, and the estimate then rightly shows ZeRO-3 above ZeRO-2 (by that buffer, at most).
    """
    from vramplan.training import estimate_training

    spec = _spec(model) if catalogued else spec_of(toy)
    runs = []
    for zero in (0, 1, 2, 3):
        if offload != "none" and zero == 0:
            continue  # offloading needs ZeRO
        try:
            b = estimate_training(
                spec,
                search=False,
                method=method,
                gpus=gpus,
                zero=zero,
                micro_batch=mb,
                seq_len=seq,
                offload=offload,
            )
        except InputError:
            continue
        runs.append((zero, b.to_dict()["per_gpu"]))
    parts = ("gradients_bytes", "optimizer_bytes", "activations_bytes", "overhead_bytes")
    for (z1, a), (z2, b) in itertools.pairwise(runs):
        for part in parts:
            assert b[part] <= a[part], (
                f"{method} on {gpus} GPUs: {part} ZeRO {z2} {b[part]} > ZeRO {z1} {a[part]}"
            )
        gathered = b["detail"]["zero3_gathered_layer"] if z2 == 3 else 0
        assert b["weights_bytes"] - gathered <= a["weights_bytes"], (
            z1,
            z2,
            a["weights_bytes"],
            b["weights_bytes"],
        )
        assert b["total_bytes"] - gathered <= a["total_bytes"], (
            z1,
            z2,
            a["total_bytes"],
            b["total_bytes"],
        )
        if catalogued:  # real models: the gathered layer is far below the sharding saving
            assert b["total_bytes"] <= a["total_bytes"], (
                f"{model} {method} on {gpus} GPUs: ZeRO {z2} > ZeRO {z1}"
            )


# ------------------------------------------------------------------------------------------ engines


def _kv_tokens(pred) -> int:
    return max(pred.kv_cache_tokens or 0, 0) if pred.starts else 0


def _vllm(spec, gpu: str, util: float, max_len: int) -> int | None:
    from vramplan.engines.vllm import predict_vllm

    try:
        pred = predict_vllm(
            {"model": spec.name, "gpu_memory_utilization": util, "max_model_len": max_len},
            gpu=gpu,
            spec=spec,
            fixes=False,
        )
    except VramplanError:
        return None
    return _kv_tokens(pred)


def _config_dir(cfg: dict[str, Any]) -> str:
    folder = Path(tempfile.mkdtemp(prefix="vramplan-prop-"))
    (folder / "config.json").write_text(json.dumps(cfg))
    return str(folder)


def _sglang(model_path: str, gpu: str, frac: float, ctx: int) -> int | None:
    from vramplan.engines.sglang import predict_sglang

    try:
        pred = predict_sglang(
            {"model_path": model_path, "mem_fraction_static": frac, "context_length": ctx}, gpu
        )
    except VramplanError:
        return None
    return _kv_tokens(pred)


ENGINE_GPUS = ["L4", "A100-40GB-SXM", "H100-80GB-SXM", "H200-141GB"]
utils = st.floats(0.3, 0.98).map(lambda x: round(x, 3))
deltas = st.floats(0.005, 0.3).map(lambda x: round(x, 3))


def _llama(layers: int, intermediate: int) -> dict[str, Any]:
    return {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 2048,
        "intermediate_size": intermediate,
        "num_attention_heads": 16,
        "num_key_value_heads": 4,
        "num_hidden_layers": layers,
        "vocab_size": 32000,
        "max_position_embeddings": 32768,
        "torch_dtype": "bfloat16",
    }


@given(
    model=st.sampled_from(TRAIN_MODELS),
    gpu=st.sampled_from(ENGINE_GPUS),
    util=utils,
    delta=deltas,
    max_len=st.sampled_from([2048, 8192]),
)
def test_vllm_kv_tokens_grow_with_memory_utilization(
    model: str, gpu: str, util: float, delta: float, max_len: int
) -> None:
    spec = _spec(model)
    low = _vllm(spec, gpu, util, max_len)
    high = _vllm(spec, gpu, min(util + delta, 0.99), max_len)
    assume(low is not None and high is not None)
    assert high >= low, (model, gpu, util, util + delta)


@given(
    layers=st.integers(2, 48),
    extra_layers=st.integers(1, 24),
    inter=st.integers(1, 8).map(lambda k: 2048 * k),
    extra_inter=st.integers(1, 8).map(lambda k: 1024 * k),
    gpu=st.sampled_from(ENGINE_GPUS),
    util=utils,
)
def test_vllm_kv_tokens_fall_with_depth_and_weights(
    layers: int, extra_layers: int, inter: int, extra_inter: int, gpu: str, util: float
) -> None:
    base = _vllm(spec_of(_llama(layers, inter)), gpu, util, 4096)
    deeper = _vllm(spec_of(_llama(layers + extra_layers, inter)), gpu, util, 4096)
    wider = _vllm(spec_of(_llama(layers, inter + extra_inter)), gpu, util, 4096)
    assume(base is not None)
    if deeper is not None:
        assert deeper <= base, ("layers", layers, layers + extra_layers)
    if wider is not None:
        assert wider <= base, ("intermediate", inter, inter + extra_inter)


@given(
    model=st.sampled_from(TRAIN_MODELS),
    gpu=st.sampled_from(ENGINE_GPUS),
    frac=utils,
    delta=deltas,
    ctx=st.sampled_from([2048, 8192]),
)
def test_sglang_kv_tokens_grow_with_mem_fraction_static(
    model: str, gpu: str, frac: float, delta: float, ctx: int
) -> None:
    low = _sglang(model, gpu, frac, ctx)
    high = _sglang(model, gpu, min(frac + delta, 0.99), ctx)
    assume(low is not None and high is not None)
    assert high >= low, (model, gpu, frac, frac + delta)


@given(
    layers=st.integers(2, 48),
    extra_layers=st.integers(1, 24),
    inter=st.integers(1, 8).map(lambda k: 2048 * k),
    extra_inter=st.integers(1, 8).map(lambda k: 1024 * k),
    gpu=st.sampled_from(ENGINE_GPUS),
    frac=utils,
)
def test_sglang_kv_tokens_fall_with_depth_and_weights(
    layers: int, extra_layers: int, inter: int, extra_inter: int, gpu: str, frac: float
) -> None:
    base = _sglang(_config_dir(_llama(layers, inter)), gpu, frac, 4096)
    deeper = _sglang(_config_dir(_llama(layers + extra_layers, inter)), gpu, frac, 4096)
    wider = _sglang(_config_dir(_llama(layers, inter + extra_inter)), gpu, frac, 4096)
    assume(base is not None)
    if deeper is not None:
        assert deeper <= base, ("layers", layers, layers + extra_layers)
    if wider is not None:
        assert wider <= base, ("intermediate", inter, inter + extra_inter)


# ---------------------------------------------------------------------------------------- simulator


@given(
    allocator=st.sampled_from(["max", "pow2", "oracle", "paged", "radix"]),
    block_size=st.sampled_from([1, 8, 16, 32, 128]),
    rate=st.floats(0.5, 40.0),
    seed=st.integers(0, 2**16),
    kv_gib=st.floats(0.05, 16.0),
    n=st.sampled_from([1, 2, 4]),
    system_prompt=st.sampled_from([(0, 0.0), (256, 0.5), (512, 1.0)]),
    preemption=st.sampled_from(["recompute", "swap", "auto"]),
)
def test_simulator_shares_stay_in_unit_interval(
    allocator: str,
    block_size: int,
    rate: float,
    seed: int,
    kv_gib: float,
    n: int,
    system_prompt: tuple[int, float],
    preemption: str,
) -> None:
    from vramplan.simulate import SchedulerConfig, SimulationConfig, preset_workload, run_simulation
    from vramplan.simulate.steptime import opt13b_a100_40gb

    hw = opt13b_a100_40gb()
    hw = type(hw)(**{**hw.__dict__, "kv_capacity_bytes": kv_gib * 2**30})
    wl = preset_workload(
        "sharegpt",
        rate=rate,
        duration_s=8.0,
        seed=seed,
        n=n,
        max_len=2048,
        system_prompt_len=system_prompt[0],
        system_prompt_share=system_prompt[1],
    )
    cfg = SimulationConfig(
        workload=wl,
        hardware=hw,
        allocator=allocator,
        block_size=block_size,
        scheduler=SchedulerConfig(preemption=preemption, seed=seed),
    )
    try:
        result = run_simulation(cfg).to_dict()
    except (DoesNotFitError, InputError):
        return  # e.g. a pool smaller than one max-length request: refused up front
    token = result["token_state_share"]
    assert math.isfinite(token) and 0.0 <= token <= 1.0, token
    shares = [result[k] for k in SHARES]
    if result["iterations"]:
        assert math.isclose(sum(shares), 1.0, abs_tol=1e-6), dict(zip(SHARES, shares))
    for key, value in zip(SHARES, shares):
        assert math.isfinite(value) and 0.0 <= value <= 1.0 + 1e-9, (key, value)


SHARES = (
    "token_state_share",
    "reserved_share",
    "internal_fragmentation_share",
    "external_fragmentation_share",
    "free_share",
)


def test_reserved_share_after_group_swap() -> None:
    """Found by test_simulator_shares_stay_in_unit_interval: paged, block 1, n=2, swap preemption.

    Was -7.6e-06: a group preempted (swapped) half-way through growing its sequences came back with
    unequal capacities and its later sequences wrote past theirs; groups now grow all-or-nothing."""
    from vramplan.simulate import SchedulerConfig, SimulationConfig, preset_workload, run_simulation
    from vramplan.simulate.steptime import opt13b_a100_40gb

    hw = opt13b_a100_40gb()
    hw = type(hw)(**{**hw.__dict__, "kv_capacity_bytes": 1.0 * 2**30})
    wl = preset_workload("sharegpt", rate=1.0, duration_s=8.0, seed=0, n=2, max_len=2048)
    cfg = SimulationConfig(
        workload=wl,
        hardware=hw,
        allocator="paged",
        block_size=1,
        scheduler=SchedulerConfig(preemption="swap", seed=0),
    )
    result = run_simulation(cfg).to_dict()
    assert result["preemptions"] > 0
    assert result["reserved_share"] >= 0.0, result["reserved_share"]


def test_module_models_exist() -> None:
    """The sampled catalogue subsets are not silently empty (a rename would hollow the tests out)."""
    assert len(PLAN_MODELS) >= 4 and len(TRAIN_MODELS) >= 3, (PLAN_MODELS, TRAIN_MODELS)
    pytest.importorskip("numpy")
