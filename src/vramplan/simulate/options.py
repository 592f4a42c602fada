"""Checks and conversions of the `vramplan simulate` options, shared by the CLI and POST /api/simulate.

Inputs are rejected here, at the edge, with the flag's name, before anything expensive runs; the
service applies its own tighter limits (duration, request count, wall time) on top.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vramplan.errors import InputError

if TYPE_CHECKING:
    from vramplan.model.spec import ModelSpec
    from vramplan.simulate.adapter import KVBudget
    from vramplan.simulate.run import SimulationConfig
    from vramplan.simulate.workload import WorkloadConfig

#: Longest simulated trace we accept: a day covers any capacity question, and keeps a run in minutes.
MAX_DURATION_S = 24 * 3600.0
#: Most requests one replay may hold (rate x duration); beyond it the trace alone costs gigabytes.
MAX_REQUESTS = 2_000_000
#: Most KV blocks one replay may hold. The paged allocators keep a Python list per block (~40 bytes a
#: block), so 4 Mi blocks stay near 200 MB; a real pool is far smaller (an H200 holds ~1 Mi tokens of
#: Llama-3.1-8B KV, 64 Ki blocks of 16). ``--kv-memory 1EiB --block-size 1`` built 23.8 GB before.
MAX_BLOCKS = 1 << 22
#: Most sequences the scheduler may run at once (vLLM's --max-num-seqs; its default is 256).
MAX_NUM_SEQS = 1 << 16
#: Workload presets (length distributions) by name.
PRESETS = ("sharegpt", "alpaca")
PREEMPTION_MODES = ("recompute", "swap", "auto")


def check_options(
    *,
    rate: float,
    duration: float,
    block_size: int,
    max_model_len: int,
    max_num_seqs: int,
    max_num_batched_tokens: int,
    n: int,
    beam_width: int,
    system_prompt_len: int,
    system_prompt_share: float,
    preemption: str,
) -> None:
    """Raise InputError naming the flag for any option out of range (nothing else is checked here)."""
    if not (math.isfinite(rate) and rate > 0):
        raise InputError(
            f"--rate must be a positive number of requests per second, got {rate} (e.g. --rate 2)."
        )
    if not (math.isfinite(duration) and 0 < duration <= MAX_DURATION_S):
        raise InputError(
            f"--duration must be in (0, {MAX_DURATION_S:.0f}] simulated seconds (24 h), got {duration}."
        )
    if rate * duration > MAX_REQUESTS:
        raise InputError(
            f"--rate {rate:g} x --duration {duration:g} is {rate * duration:,.0f} requests; "
            f"the limit is {MAX_REQUESTS:,}: shorten --duration or lower --rate."
        )
    if not 1 <= block_size <= 1024:
        raise InputError(f"--block-size must be 1..1024 tokens, got {block_size} (vLLM uses 16).")
    if not 2 <= max_model_len <= 1 << 20:
        raise InputError(f"--max-model-len must be 2..1048576 tokens, got {max_model_len}.")
    if max_num_seqs < 1 or max_num_batched_tokens < 1:
        raise InputError("--max-num-seqs and --max-num-batched-tokens must be >= 1.")
    if max_num_seqs > MAX_NUM_SEQS or max_num_batched_tokens > 1 << 24:
        raise InputError(
            f"--max-num-seqs must be at most {MAX_NUM_SEQS:,} and --max-num-batched-tokens at most "
            f"{1 << 24:,}, got {max_num_seqs:,} and {max_num_batched_tokens:,}."
        )
    if n < 1 or beam_width < 1:
        raise InputError(f"--n and --beam-width must be >= 1, got {n} and {beam_width}.")
    if n > 1 and beam_width > 1:
        raise InputError(
            "use either --n (parallel sampling) or --beam-width (beam search), not both."
        )
    if not 0 <= system_prompt_len < max_model_len:
        raise InputError(
            f"--system-prompt-len must be in [0, --max-model-len), got {system_prompt_len}."
        )
    if not 0.0 <= system_prompt_share <= 1.0:
        raise InputError(f"--system-prompt-share must be in [0, 1], got {system_prompt_share}.")
    if preemption not in PREEMPTION_MODES:
        raise InputError(f"unknown --preemption {preemption!r}; use recompute, swap or auto.")


def check_pool(kv_slots: int, block_size: int) -> None:
    """Refuse a KV pool whose block table would not fit in memory, before any allocator is built."""
    blocks = kv_slots // block_size
    if blocks > MAX_BLOCKS:
        raise InputError(
            f"the KV pool holds {kv_slots:,} token slots = {blocks:,} blocks of {block_size} tokens; "
            f"the simulator tracks at most {MAX_BLOCKS:,} blocks: lower --kv-memory (or the GPU's "
            "memory) or raise --block-size."
        )


def swap_space_bytes(text: str) -> int:
    """``--swap-space``: a size such as 4GiB; 0 (in any unit) disables swapping."""
    from vramplan.units import parse_size

    return 0 if text.strip() in ("0", "0GiB", "0GB", "0B") else parse_size(text)


def workload_from(ref: str, *, allow_files: bool = True, **kw: Any) -> WorkloadConfig:
    """A preset name, or (when ``allow_files``) a .csv/.jsonl file of prompt_len,output_len samples.

    ``kw`` are WorkloadConfig fields (rate, duration_s, seed, n, ...). The service passes
    ``allow_files=False``: a request must never make it read a file on the server.
    """
    from dataclasses import replace

    from vramplan.simulate.workload import LENGTH_FILE_SUFFIXES, WorkloadConfig, preset_workload

    key = ref.strip().lower()
    if key in PRESETS:
        return preset_workload(key, **kw)
    path = Path(ref)
    if allow_files and path.suffix.lower() in LENGTH_FILE_SUFFIXES:
        if not path.is_file():
            raise InputError(
                f"--workload file {ref!r} does not exist; give a .csv/.jsonl with prompt_len,output_len."
            )
        return replace(WorkloadConfig(), samples_path=str(path), **kw)
    files = ", or a .csv/.jsonl file with prompt_len and output_len" if allow_files else ""
    raise InputError(f"unknown --workload {ref!r}; use {' or '.join(PRESETS)}{files}.")


def workload_dict(ref: str, cfg: SimulationConfig) -> dict[str, Any]:
    """The options a replay ran with, as the ``workload`` object of `simulate --json`."""
    w = cfg.workload
    return {
        "workload": ref,
        "rate": w.rate,
        "duration_s": w.duration_s,
        "seed": w.seed,
        "n": w.n,
        "beam_width": w.beam_width,
        "max_model_len": w.max_len,
        "system_prompt_len": w.system_prompt_len,
        "system_prompt_share": w.system_prompt_share,
        "block_size": cfg.block_size,
        "preemption": cfg.scheduler.preemption,
        "max_num_seqs": cfg.scheduler.max_num_seqs,
        "max_num_batched_tokens": cfg.scheduler.max_num_batched_tokens,
    }


def result_meta(ref: str, cfg: SimulationConfig, budget: KVBudget) -> dict[str, Any]:
    """What `simulate --json` adds to each allocator's result: the pool in tokens (the integer
    `vramplan vllm` and `vramplan perf` print for the same deployment), its memory split, the options."""
    return {
        "kv_cache_tokens": budget.kv_cache_tokens,
        "kv_budget": budget.to_dict(),
        "workload": workload_dict(ref, cfg),
    }


STEP_TIMES = ("perf", "roofline")
ENGINE_MODES = ("v0", "v1")


def build_simulation(
    *,
    model: str | ModelSpec,
    gpu: str,
    workload: str = "sharegpt",
    rate: float = 2.0,
    duration: float = 3600.0,
    seed: int = 0,
    allocator: str = "paged",
    block_size: int | None = None,
    n: int = 1,
    beam_width: int = 1,
    system_prompt_len: int = 0,
    system_prompt_share: float = 0.0,
    preemption: str = "auto",
    engine_mode: str = "v0",
    engine: str = "vllm",
    step_time: str = "perf",
    attention_backend: str = "flashinfer",
    max_new_tokens: int | None = None,
    swap_space: str = "4GiB",
    max_num_seqs: int | None = None,
    max_num_batched_tokens: int | None = None,
    max_model_len: int | None = None,
    kv_memory: str | None = None,
    gpu_memory_utilization: float | None = None,
    enforce_eager: bool = False,
    tensor_parallel_size: int | None = None,
    dtype: str | None = None,
    quantization: str | None = None,
    kv_cache_dtype: str | None = None,
    allow_files: bool = True,
    engine_version: str | None = None,
) -> tuple[SimulationConfig, KVBudget]:
    """The validated replay configuration of `vramplan simulate` / POST /api/simulate, and its KV budget.

    Engine settings left None (batch limits, utilization, block size) take the engine's defaults for
    its version and this GPU, through the same KV pool as `vramplan vllm`; ``max_model_len`` defaults to
    ``SIMULATE_MAX_MODEL_LEN``. Checks run cheapest first (options, then names, then the estimate), so a
    bad flag fails in microseconds. ``model`` may be a ModelSpec the caller resolved (the service does,
    so no request string is ever read as a path); ``allow_files=False`` refuses sample-file workloads.
    """
    from vramplan.perf import engine_profile
    from vramplan.scenario_fields import check
    from vramplan.simulate.adapter import SIMULATE_MAX_MODEL_LEN, kv_budget, perf_setup_for
    from vramplan.simulate.run import SimulationConfig
    from vramplan.simulate.scheduler import SchedulerConfig

    for name, value in (
        ("block_size", block_size),
        ("max_num_seqs", max_num_seqs),
        ("max_num_batched_tokens", max_num_batched_tokens),
        ("gpu_memory_utilization", gpu_memory_utilization),
        ("tensor_parallel_size", tensor_parallel_size),
    ):
        check(name, value)
    max_model_len = max_model_len or SIMULATE_MAX_MODEL_LEN
    check_options(
        rate=rate,
        duration=duration,
        block_size=block_size or 16,
        max_model_len=max_model_len,
        max_num_seqs=max_num_seqs or 1,
        max_num_batched_tokens=max_num_batched_tokens or 1,
        n=n,
        beam_width=beam_width,
        system_prompt_len=system_prompt_len,
        system_prompt_share=system_prompt_share,
        preemption=preemption,
    )
    if step_time not in STEP_TIMES:
        raise InputError(f"unknown --step-time {step_time!r}; use perf or roofline.")
    if engine_mode not in ENGINE_MODES:
        raise InputError(f"unknown --engine-mode {engine_mode!r}; use v0 or v1.")
    engine_profile(engine)  # unknown --engine: one-line error before the estimate runs
    swap_bytes = swap_space_bytes(swap_space)
    wl = workload_from(
        workload,
        allow_files=allow_files,
        rate=rate,
        duration_s=duration,
        seed=seed,
        n=n,
        beam_width=beam_width,
        system_prompt_len=system_prompt_len,
        system_prompt_share=system_prompt_share,
        max_len=max_model_len,
    )
    budget = kv_budget(
        model,
        gpu,
        dtype=dtype,
        quantization=quantization,
        kv_cache_dtype=kv_cache_dtype,
        tensor_parallel_size=tensor_parallel_size,
        gpu_memory_utilization=gpu_memory_utilization,
        max_model_len=max_model_len,
        max_num_seqs=max_num_seqs,
        max_num_batched_tokens=max_num_batched_tokens,
        kv_memory=kv_memory,
        enforce_eager=enforce_eager,
        engine=engine,
        engine_version=engine_version,
    )
    check_pool(budget.kv_slots, block_size or budget.block_size)
    perf = (
        perf_setup_for(
            budget,
            engine,
            dtype=dtype,
            quantization=quantization,
            kv_cache_dtype=kv_cache_dtype,
            max_model_len=max_model_len,
        )
        if step_time == "perf"
        else None
    )
    sched = SchedulerConfig(
        max_num_batched_tokens=budget.max_num_batched_tokens,
        max_num_seqs=budget.max_num_seqs,
        preemption=preemption,
        swap_space_bytes=swap_bytes,
        seed=seed,
        engine_mode=engine_mode,
    )
    config = SimulationConfig(
        workload=wl,
        hardware=budget.hardware,
        allocator=allocator,
        block_size=block_size or budget.block_size,
        scheduler=sched,
        perf=perf,
        attention_backend=attention_backend,
        max_new_tokens=max_new_tokens,
    )
    config.validate()
    return config, budget
