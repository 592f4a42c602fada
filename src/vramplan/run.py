"""run(kind, values): every command's JSON answer from one call, for the CLI and the service alike.

``values`` are the command's fields under their table names (:mod:`vramplan.scenario_fields`): the
CLI's options or the API's request body. Both edges call this, so `vramplan perf --json` and
POST /api/perf are the same dict by construction. The edges keep only what is theirs: the CLI its
rendering, the service its limits and its model resolver (``model=`` a ModelSpec it resolved, so
that a request string is never read as a path on the server; ``allow_files=False`` likewise).

The core does no I/O here; ``progress(done, total)`` lets a caller stop a long replay.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from vramplan.errors import InputError

if TYPE_CHECKING:
    from vramplan.model.spec import ModelSpec

KINDS = ("estimate", "vllm", "perf", "simulate", "plan", "train")
Progress = Callable[[int, int], None]


def run(
    kind: str,
    values: Mapping[str, Any],
    *,
    model: ModelSpec | str | None = None,
    progress: Progress | None = None,
    allow_files: bool = True,
) -> Any:
    """The JSON-ready answer of command ``kind`` for ``values`` (InputError for an unknown kind)."""
    v = dict(values)
    if model is not None:
        v["model"] = model
    if kind == "estimate":
        return _estimate(v)
    if kind == "vllm":
        return _vllm(v)
    if kind == "perf":
        return _perf(v, allow_files)
    if kind == "simulate":
        return _simulate(v, progress, allow_files)
    if kind == "plan":
        return _plan(v)
    if kind == "train":
        return _train(v)
    raise InputError(f"unknown kind {kind!r}: use one of {', '.join(KINDS)}")


def _estimate(v: dict[str, Any]) -> dict[str, Any]:
    from vramplan.estimator import estimate

    method = v.get("method", "detailed")
    if v.get("model") is None and v.get("params") is not None and method == "detailed":
        method = "rule-of-thumb"  # a bare parameter count means the rule of thumb
    keys = (
        "params",
        "bits",
        "dtype",
        "quantization",
        "kv_cache_dtype",
        "context",
        "users",
        "batch_tokens",
        "gpu",
        "gpu_memory",
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "block_size",
        "allow_long_context",
    )
    return estimate(v.get("model"), method=method, **{k: v[k] for k in keys if k in v}).to_dict()


def _vllm(v: dict[str, Any]) -> dict[str, Any]:
    """`vramplan vllm ARGS --json`: ``args`` (a list) or ``command`` (one shell line)."""
    import shlex

    from vramplan.engines.vllm import predict_vllm

    if v.get("command") is not None:
        try:
            args = shlex.split(str(v["command"]))
        except ValueError as exc:
            raise InputError(f"command is not a valid shell line ({exc})") from None
    else:
        args = list(v.get("args") or [])
    pred = predict_vllm(
        args,
        gpu=v.get("gpu"),
        gpu_memory=v.get("gpu_memory"),
        engine_version=v.get("engine_version"),
        usage_context="offline" if v.get("offline") else "api_server",
    )
    data = pred.to_dict()
    extra = data.pop("extra", {})
    data["ignored_flags"] = extra.get("ignored_flags", [])
    if extra.get("host_bytes"):  # KV offload tiers / connector host buffers, per GPU
        data["host_bytes"] = extra["host_bytes"]
    return data


#: `vramplan perf` fields passed straight to :func:`vramplan.perf.perf`.
PERF_KEYS = (
    "input_len",
    "output_len",
    "engine",
    "engine_version",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "dtype",
    "quantization",
    "kv_cache_dtype",
    "max_model_len",
    "max_num_seqs",
    "max_num_batched_tokens",
    "gpu_memory_utilization",
    "enforce_eager",
    "batch_size",
    "concurrency",
    "request_rate",
    "max_throughput",
    "prefix_hit_rate",
)


def _perf(v: dict[str, Any], allow_files: bool = True) -> dict[str, Any]:
    """``allow_files=False`` (the service): a --dataset is a name, never a path read on the server."""
    from vramplan.perf import perf
    from vramplan.scenario_fields import check

    if v.get("dtype") and v.get("quantization"):
        raise InputError("give --dtype or --quantization, not both")
    if not v.get("gpu"):
        raise InputError("perf needs a GPU: --gpu NAME (e.g. H100-80GB)")
    kw = {k: v[k] for k in PERF_KEYS if v.get(k) is not None}
    if v.get("dataset") is not None:
        from vramplan.simulate.workload import length_mix

        check("dataset", v["dataset"])
        check("output_len", v.get("output_len"))
        if v.get("input_len") is not None:
            raise InputError(
                "--dataset sets the prompt lengths: drop --input-len (--output-len may fix the outputs)"
            )
        kw["lengths"] = length_mix(
            v["dataset"], allow_files=allow_files, output_len=kw.pop("output_len", None)
        )
    elif v.get("input_len") is None or v.get("output_len") is None:
        raise InputError(
            "perf needs --input-len and --output-len (tokens per request), or --dataset sharegpt"
        )
    return perf(v["model"], v["gpu"], **kw).to_dict()


#: `vramplan simulate` fields passed straight to ``simulate.options.build_simulation``.
SIMULATE_KEYS = (
    "gpu",
    "workload",
    "rate",
    "duration",
    "seed",
    "block_size",
    "n",
    "beam_width",
    "system_prompt_len",
    "system_prompt_share",
    "preemption",
    "engine_mode",
    "engine",
    "engine_version",
    "step_time",
    "attention_backend",
    "max_new_tokens",
    "swap_space",
    "max_num_seqs",
    "max_num_batched_tokens",
    "max_model_len",
    "kv_memory",
    "gpu_memory_utilization",
    "enforce_eager",
    "tensor_parallel_size",
    "dtype",
    "quantization",
    "kv_cache_dtype",
)


def _simulate(v: dict[str, Any], progress: Progress | None, allow_files: bool) -> Any:
    """`vramplan simulate --json`: one allocator's result, or an object keyed by allocator for "all"."""
    from dataclasses import replace

    from vramplan.simulate import make_trace, run_simulation
    from vramplan.simulate.allocators import ALLOCATORS
    from vramplan.simulate.options import build_simulation, result_meta

    allocator = v.get("allocator", "paged")
    names = list(ALLOCATORS) if allocator == "all" else [allocator]
    kw = {k: v[k] for k in SIMULATE_KEYS if v.get(k) is not None}
    base, budget = build_simulation(
        model=v["model"], allocator=names[0], allow_files=allow_files, **kw
    )
    trace = make_trace(base.workload)
    results = {
        name: run_simulation(replace(base, allocator=name), progress, trace) for name in names
    }
    meta = result_meta(v.get("workload", "sharegpt"), base, budget)
    dicts = {name: {**res.to_dict(), **meta} for name, res in results.items()}
    return dicts[names[0]] if len(names) == 1 else dicts


def _plan(v: dict[str, Any]) -> dict[str, Any]:
    from vramplan.planner import plan

    keys = (
        "rate",
        "ttft_ms",
        "tpot_ms",
        "availability",
        "gpus",
        "dtype",
        "quantization",
        "engine",
        "engine_version",
        "criterion",
        "kv_cache_dtype",
        "limit",
    )
    if v.get("model") is None:
        raise InputError("give a model (catalogue name or Hub id) or an uploaded config.json")
    return plan(
        v["model"], v["context"], v["users"], **{k: v[k] for k in keys if v.get(k) is not None}
    ).to_dict()


def _train(v: dict[str, Any]) -> dict[str, Any]:
    from vramplan.training import estimate_training

    renamed = {
        "tensor_parallel_size": "tensor_parallel",
        "pipeline_parallel_size": "pipeline_parallel",
    }
    keys = (
        "params",
        "gpu",
        "gpu_memory",
        "method",
        "micro_batch",
        "seq_len",
        "gpus",
        "zero",
        "fsdp",
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "sequence_parallel",
        "offload",
        "offload_params",
        "recompute",
        "optimizer",
        "precision",
        "lora_rank",
        "lora_targets",
        "flash_attention",
    )
    kw = {renamed.get(k, k): v[k] for k in keys if k in v}
    return estimate_training(v.get("model"), **kw).to_dict()
