"""vLLM startup logs, V0 (0.3-0.8) and V1 (0.7-dev to 0.19): figures, settings, failures.

V0 before ~0.8 prints "GB" that is really GiB (``bytes / 2**30``), so those figures also go to the
``*_gib`` fields; the raw label is kept as ``weights_gb``.
"""

from __future__ import annotations

import re
from typing import Any

from vramplan.logs.common import (
    Figure,
    Partial,
    collect,
    command_flags,
    dict_literal,
    figure,
    joined_commands,
    key_values,
    merge_settings,
    messages_matching,
    number,
)
from vramplan.logs.text import Line

MARKERS = (
    "Model loading took",
    "Loading model weights took",
    "# GPU blocks",
    "# CUDA blocks",
    "# cuda blocks",
    "GPU KV cache size",
    "Available KV cache memory",
    "model weights take",
    "Memory profiling results",
    "non-default args",
    "LLM engine",
    "vLLM API server version",
    "vllm serve",
    "KV cache is needed",
    "stored in KV cache",
)
_NUM = r"(-?[\d,]*\.?\d+)"

FIGURES: list[Figure] = [
    figure("Model loading took", rf"Model loading took {_NUM}\s*GiB", "weights_gib"),
    figure("Model loading took", rf"Model loading took {_NUM}\s*GB\b", "weights_gb"),
    figure(
        "Loading model weights took", rf"Loading model weights took {_NUM}\s*GiB", "weights_gib"
    ),
    figure(
        "Loading model weights took", rf"Loading model weights took {_NUM}\s*GB\b", "weights_gb"
    ),
    figure(
        "Loading model weights took", rf"Loading model weights took {_NUM}\s*MB\b", "weights_mb"
    ),
    figure("model weights take", rf"model weights take\s+{_NUM}\s*GiB", "weights_gib"),
    figure("weights memory:", rf"weights memory: {_NUM}\s*GiB", "weights_gib"),
    figure(
        "Total non KV cache memory", rf"Total non KV cache memory: {_NUM}\s*GiB", "total_non_kv_gib"
    ),
    figure(
        "non-torch forward increase",
        rf"non-torch forward increase memory: {_NUM}\s*GiB",
        "non_torch_gib",
    ),
    figure("non_torch_memory", rf"non_torch_memory(?: takes|\s+)\s*{_NUM}\s*GiB", "non_torch_gib"),
    figure("Memory profiling results", rf"non_torch_memory={_NUM}\s*GiB", "non_torch_gib"),
    figure(
        "activation peak memory",
        rf"PyTorch activation peak memory(?: takes)?\s+{_NUM}\s*GiB",
        "activation_peak_gib",
    ),
    figure(
        "torch peak memory increase",
        rf"torch peak memory increase: {_NUM}\s*GiB",
        "activation_peak_gib",
    ),
    figure(
        "reserved for KV Cache", rf"reserved for KV Cache is {_NUM}\s*GiB", "available_kv_cache_gib"
    ),
    figure(
        "available_kv_cache_memory",
        rf"available_kv_cache_memory\s+{_NUM}\s*GiB",
        "available_kv_cache_gib",
    ),
    figure(
        "Available KV cache memory",
        rf"Available KV cache memory: {_NUM}\s*GiB",
        "available_kv_cache_gib",
    ),
    figure(
        "x gpu_memory_utilization",
        rf"total_gpu_memory \({_NUM}\s*GiB\) x gpu_memory_utilization \({_NUM}\) = {_NUM}\s*GiB",
        "total_gpu_memory_gib",
        "",
        "usable_gib",
    ),
    figure("total_gpu_memory", rf"total_gpu_memory(?:=|\s+){_NUM}\s*GiB", "total_gpu_memory_gib"),
    figure("instance can use", rf"instance can use\s+{_NUM}\s*GiB", "usable_gib"),
    figure(
        "initial_memory_usage", rf"initial_memory_usage={_NUM}\s*GiB", "initial_memory_usage_gib"
    ),
    figure("peak_torch_memory", rf"peak_torch_memory={_NUM}\s*GiB", "peak_torch_memory_gib"),
    figure(
        "memory_usage_post_profile",
        rf"memory_usage_post_profile={_NUM}\s*GiB",
        "memory_usage_post_profile_gib",
    ),
    figure("kv_cache_size=", rf"kv_cache_size={_NUM}\s*GiB", "kv_cache_size_gib"),
    figure(" blocks:", rf"(?:# )?(?:GPU|CUDA|cuda) blocks: {_NUM}", "gpu_blocks"),
    figure("# CPU blocks", rf"# CPU blocks: {_NUM}", "cpu_blocks"),
    figure("num_gpu_blocks is", rf"num_gpu_blocks is: {_NUM}", "gpu_blocks"),
    figure("GPU KV cache size", rf"GPU KV cache size: {_NUM} tokens", "kv_cache_tokens"),
    figure(
        "Maximum concurrency",
        rf"Maximum concurrency for {_NUM} tokens per request: {_NUM}x",
        "",
        "max_concurrency",
    ),
    figure(
        "Graph capturing finished",
        rf"Graph capturing finished in \d+ secs?, took {_NUM}\s*GiB",
        "cuda_graph_gib",
    ),
    figure("for CUDAGraph memory", rf"{_NUM}\s*GiB for CUDAGraph memory", "cuda_graph_gib"),
    figure(
        "CUDA graph pool memory",
        rf"CUDA graph pool memory: {_NUM}\s*GiB \(actual\)",
        "cuda_graph_gib",
    ),
    figure(
        "Estimated CUDA graph memory",
        rf"Estimated CUDA graph memory: {_NUM}\s*GiB total",
        "cuda_graph_estimated_gib",
    ),
    figure(
        "on startup",
        rf"Free memory on device \({_NUM}/{_NUM}\s*GiB\) on startup",
        "free_gpu_memory_at_startup_gib",
        "gpu_total_gib",
    ),
    figure(
        "total_memory=",
        rf"free_memory={_NUM}GiB, total_memory={_NUM}GiB",
        "free_gpu_memory_at_startup_gib",
        "gpu_total_gib",
    ),
    figure(
        "stored in KV cache",
        rf"max seq len \({_NUM}\) is larger than the maximum number of tokens that can be stored in KV cache \({_NUM}\)",
        "",
        "kv_capacity_tokens_reported",
    ),
    figure(
        "KV cache is needed",
        rf"max seq len \({_NUM}\), \({_NUM}\s*GiB KV cache is needed, which is larger than the available KV cache "
        rf"memory \({_NUM}\s*GiB\)",
        "",
        "kv_cache_needed_gib",
        "kv_cache_available_at_error_gib",
    ),
    figure(
        "estimated maximum model length",
        rf"estimated maximum model length is {_NUM}",
        "estimated_max_model_len",
    ),
]

_SETTING_FIGURES = [
    figure(
        "Maximum concurrency",
        rf"Maximum concurrency for {_NUM} tokens per request",
        "max_model_len",
    ),
    figure(
        "x gpu_memory_utilization",
        rf"x gpu_memory_utilization \({_NUM}\)",
        "gpu_memory_utilization",
    ),
    figure(
        "gpu_memory_utilization",
        rf"gpu_memory_utilization(?:=|\s+){_NUM}\s*$",
        "gpu_memory_utilization",
    ),
]
_CONFIG_RENAMES = {"max_seq_len": "max_model_len"}
_VERSION_PATTERNS = [
    re.compile(r"LLM engine \(v(\d[\w.+\-]*)\)"),
    re.compile(r"vLLM API server version (\d[\w.+\-]*)"),
    re.compile(r"\bversion (\d+\.\d+[\w.+\-]*)\s*$"),
]
_V1_MARKERS = (
    "GPU KV cache size",
    "Available KV cache memory",
    "gpu_model_runner",
    "kv_cache_utils",
    "EngineCore",
    "VLLM_USE_V1=1",
    "v1/",
)
_V0_MARKERS = (
    "# CPU blocks",
    "# CUDA blocks",
    "# cuda blocks",
    "reserved for KV Cache",
    "Initializing an LLM engine",
    "llm_engine.py",
    "executor_base.py",
    "Memory profiling results",
)
_SERVE = re.compile(r"\bvllm serve\b|-m vllm\.entrypoints\.openai\.api_server\b")
_ERROR = re.compile(
    r"No available memory for the cache blocks|larger than the maximum number of tokens that can be stored"
    r"|KV cache is needed, which is larger|CUDA out of memory|OutOfMemoryError|\bERROR\b.*Error: |^\w*Error: "
)
_WARNING = re.compile(r"\bWARNING\b|\bWARN\b")


def parse(lines: list[Line]) -> Partial:
    """Read a vLLM startup log."""
    logged, per_worker = collect(lines, FIGURES)
    settings = _settings(lines)
    result = Partial("vllm", _version(lines), _generation(lines), settings, logged, per_worker)
    _derive(result)
    result.errors = messages_matching(lines, _ERROR)
    if logged.get("gpu_blocks") == 0:
        result.errors.append("gpu_blocks is 0: no memory was left for the KV cache blocks")
    result.warnings = messages_matching(lines, _WARNING)
    return result


def _derive(result: Partial) -> None:
    """Unit conversions: V0 "GB"/"MB" labels are GiB/MiB; V0 blocks become tokens with the block size."""
    logged = result.logged
    if "weights_gb" in logged:
        logged["weights_gib"] = logged["weights_gb"]
    elif "weights_gib" not in logged and "weights_mb" in logged:
        logged["weights_gib"] = round(logged["weights_mb"] / 1024, 6)
    gpu_total = logged.pop("gpu_total_gib", None)
    if gpu_total is not None:
        result.settings.setdefault("gpu_total_gib", gpu_total)
    elif "total_gpu_memory_gib" in logged:
        result.settings.setdefault("gpu_total_gib", logged["total_gpu_memory_gib"])
    block_size = result.settings.get("block_size") or 16
    if "gpu_blocks" in logged and "kv_cache_tokens" not in logged:
        logged["kv_cache_tokens"] = int(logged["gpu_blocks"]) * int(block_size)


def _settings(lines: list[Line]) -> dict[str, Any]:
    """Settings from, lowest priority first: figure lines, Namespace, launch command, non-default args, config."""
    inferred, _ = collect(lines, _SETTING_FIGURES)
    namespace: dict[str, Any] = {}
    nondefault: dict[str, Any] = {}
    config: dict[str, Any] = {}
    for line in lines:
        text = line.text
        if not namespace and "Namespace(" in text:
            namespace = key_values(text.split("Namespace(", 1)[1])
        elif not nondefault and "non-default args:" in text:
            nondefault = dict_literal(text.split("non-default args:", 1)[1])
        elif not config and "LLM engine" in text and "with config:" in text:
            config = key_values(text.split("with config:", 1)[1])
    config = {_CONFIG_RENAMES.get(k, k): v for k, v in config.items()}
    command: dict[str, Any] = {}
    for cmd in joined_commands(lines, _SERVE):
        command.update(_serve_flags(cmd))
    merged = merge_settings(inferred, namespace, command, nondefault, config)
    model_tag = merged.pop("model_tag", None)
    if "model" not in merged and model_tag is not None:
        merged["model"] = model_tag
    return merged


def _serve_flags(command: str) -> dict[str, Any]:
    """``vllm serve MODEL --flag value`` into settings (the positional argument is the model)."""
    flags = command_flags(command, {"tp": "tensor_parallel_size", "pp": "pipeline_parallel_size"})
    after = _SERVE.split(command, 1)[-1].split()
    if after and not after[0].startswith("-"):
        flags.setdefault("model", after[0])
    return flags


def _version(lines: list[Line]) -> str | None:
    """The version as printed (config line, API server banner, or ``vllm --version`` output)."""
    for pattern in _VERSION_PATTERNS:
        for line in lines:
            m = pattern.search(line.text)
            if m:
                return m.group(1)
    for i, line in enumerate(lines):
        if "vllm --version" in line.text:
            for nxt in lines[i + 1 : i + 4]:
                if re.fullmatch(r"\s*\d+\.\d+[\w.+\-]*\s*", nxt.text):
                    return nxt.text.strip()
    return None


def _generation(lines: list[Line]) -> str | None:
    """V0 or V1, from the config line when printed, else from V1-only or V0-only line formats."""
    v1 = v0 = False
    for line in lines:
        text = line.text
        m = re.search(r"Initializing a (V[01]) LLM engine", text)
        if m:
            return m.group(1).lower()
        v1 = v1 or any(marker in text for marker in _V1_MARKERS)
        v0 = v0 or any(marker in text for marker in _V0_MARKERS)
    if v1:
        return "v1"
    return "v0" if v0 else None


def normalise(settings: dict[str, Any]) -> dict[str, Any]:
    """Numbers printed as text become numbers (``'0.95'`` -> 0.95)."""
    return {
        k: number(v) if isinstance(v, str) and re.fullmatch(r"-?\d+(\.\d+)?", v) else v
        for k, v in settings.items()
    }
