"""vLLM startup logs, V0 (0.3-0.8) and V1 (0.7-dev to 0.34): figures, settings, failures.

V0 before ~0.8 prints "GB" that is really GiB (``bytes / 2**30``), so those figures also go to the
``*_gib`` fields; the raw label is kept as ``weights_gb``. V0 names the device in its block line
(``# GPU blocks`` on CUDA builds, ``# rocm blocks`` on ROCm, ``# xpu blocks`` ...). From 0.28 the KV
size and the concurrency share one line (``GPU KV cache size: N tokens, Maximum concurrency for L
tokens per request: Xx``; 0.30+ names the device: ``XPU KV cache size``, ``GPU + host KV cache
size`` with HiSparse). Hybrid (Mamba / gated DeltaNet) models add the attention block-size raise, the
mamba page padding and, when the state pages run short, the "exceeds available Mamba cache blocks"
failure (vllm@0.34.0 ``platforms/interface.py:1119-1150``, ``config/compilation.py:1675``).
"""

from __future__ import annotations

import re
from typing import Any

from vramplan.logs.common import (
    NUM,
    Figure,
    Partial,
    collect,
    command_flags,
    dict_literal,
    figure,
    joined_commands,
    key_values,
    matching_brace,
    merge_settings,
    messages_matching,
    number,
)
from vramplan.logs.limits import MAX_COMMAND_CHARS, MAX_COMMANDS
from vramplan.logs.text import Lines

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
    "KV cache size:",
    "# rocm blocks",
    "Mamba cache blocks",
    "Setting attention block size",
    "Padding mamba page size",
)
#: Device names vLLM prints in its V0 block line (``current_platform.device_name``; older builds
#: print ``GPU``/``CUDA``/``TPU``). ``CPU`` is not among them: ``# CPU blocks`` is the swap space.
_BLOCK_DEVICES = r"(?:GPU|CUDA|cuda|rocm|ROCm|xpu|XPU|hpu|HPU|tpu|TPU|neuron)"
#: The device label of the V1 capacity line: ``GPU`` (CUDA and ROCm builds), ``XPU``, ``CPU`` ...
_KV_DEVICE = r"\b(?:GPU|XPU|CPU|TPU|HPU)"

FIGURES: list[Figure] = [
    figure("Model loading took", rf"Model loading took {NUM}\s*GiB", "weights_gib"),
    figure("Model loading took", rf"Model loading took {NUM}\s*GB\b", "weights_gb"),
    figure("Loading model weights took", rf"Loading model weights took {NUM}\s*GiB", "weights_gib"),
    figure("Loading model weights took", rf"Loading model weights took {NUM}\s*GB\b", "weights_gb"),
    figure("Loading model weights took", rf"Loading model weights took {NUM}\s*MB\b", "weights_mb"),
    figure("model weights take", rf"model weights take\s+{NUM}\s*GiB", "weights_gib"),
    figure("weights memory:", rf"weights memory: {NUM}\s*GiB", "weights_gib"),
    figure(
        "Total non KV cache memory", rf"Total non KV cache memory: {NUM}\s*GiB", "total_non_kv_gib"
    ),
    figure(
        "non-torch forward increase",
        rf"non-torch forward increase memory: {NUM}\s*GiB",
        "non_torch_gib",
    ),
    figure("non_torch_memory", rf"non_torch_memory(?: takes)?\s+{NUM}\s*GiB", "non_torch_gib"),
    figure("Memory profiling results", rf"non_torch_memory={NUM}\s*GiB", "non_torch_gib"),
    figure(
        "activation peak memory",
        rf"PyTorch activation peak memory(?: takes)?\s+{NUM}\s*GiB",
        "activation_peak_gib",
    ),
    figure(
        "torch peak memory increase",
        rf"torch peak memory increase: {NUM}\s*GiB",
        "activation_peak_gib",
    ),
    figure(
        "reserved for KV Cache", rf"reserved for KV Cache is {NUM}\s*GiB", "available_kv_cache_gib"
    ),
    figure(
        "available_kv_cache_memory",
        rf"available_kv_cache_memory\s+{NUM}\s*GiB",
        "available_kv_cache_gib",
    ),
    figure(
        "Available KV cache memory",
        rf"Available KV cache memory: {NUM}\s*GiB",
        "available_kv_cache_gib",
    ),
    figure(
        "x gpu_memory_utilization",
        rf"total_gpu_memory \({NUM}\s*GiB\) x gpu_memory_utilization \({NUM}\) = {NUM}\s*GiB",
        "total_gpu_memory_gib",
        "",
        "usable_gib",
    ),
    figure("total_gpu_memory", rf"total_gpu_memory(?:=|\s+){NUM}\s*GiB", "total_gpu_memory_gib"),
    figure("instance can use", rf"instance can use\s+{NUM}\s*GiB", "usable_gib"),
    figure(
        "initial_memory_usage", rf"initial_memory_usage={NUM}\s*GiB", "initial_memory_usage_gib"
    ),
    figure("peak_torch_memory", rf"peak_torch_memory={NUM}\s*GiB", "peak_torch_memory_gib"),
    figure(
        "memory_usage_post_profile",
        rf"memory_usage_post_profile={NUM}\s*GiB",
        "memory_usage_post_profile_gib",
    ),
    figure("kv_cache_size=", rf"kv_cache_size={NUM}\s*GiB", "kv_cache_size_gib"),
    figure(" blocks:", rf"(?:# )?{_BLOCK_DEVICES} blocks: {NUM}", "gpu_blocks"),
    figure("# CPU blocks", rf"# CPU blocks: {NUM}", "cpu_blocks"),
    figure("num_gpu_blocks is", rf"num_gpu_blocks is: {NUM}", "gpu_blocks"),
    figure("KV cache size:", rf"{_KV_DEVICE} KV cache size: {NUM} tokens", "kv_cache_tokens"),
    figure(
        "+ host KV cache size:",
        rf"{_KV_DEVICE} \+ host KV cache size: {NUM} tokens",
        "kv_cache_tokens_with_host",
    ),
    figure(
        "Maximum concurrency",
        rf"Maximum concurrency for {NUM} tokens per request: {NUM}x",
        "",
        "max_concurrency",
    ),
    figure(
        "Graph capturing finished",
        rf"Graph capturing finished in \d+ secs?, took {NUM}\s*GiB",
        "cuda_graph_gib",
    ),
    figure("for CUDAGraph memory", rf"{NUM}\s*GiB for CUDAGraph memory", "cuda_graph_gib"),
    figure(
        "CUDA graph pool memory",
        rf"CUDA graph pool memory: {NUM}\s*GiB \(actual\)",
        "cuda_graph_gib",
    ),
    figure(
        "Estimated CUDA graph memory",
        rf"Estimated CUDA graph memory: {NUM}\s*GiB total",
        "cuda_graph_estimated_gib",
    ),
    figure(
        "on startup",
        rf"Free memory on device \({NUM}/{NUM}\s*GiB\) on startup",
        "free_gpu_memory_at_startup_gib",
        "gpu_total_gib",
    ),
    figure(
        "total_memory=",
        rf"free_memory={NUM}GiB, total_memory={NUM}GiB",
        "free_gpu_memory_at_startup_gib",
        "gpu_total_gib",
    ),
    figure(
        "stored in KV cache",
        rf"max seq len \({NUM}\) is larger than the maximum number of tokens that can be stored in KV cache \({NUM}\)",
        "",
        "kv_capacity_tokens_reported",
    ),
    figure(
        "KV cache is needed",
        rf"max seq len \({NUM}\), \({NUM}\s*GiB KV cache is needed, which is larger than the available KV cache "
        rf"memory \({NUM}\s*GiB\)",
        "",
        "kv_cache_needed_gib",
        "kv_cache_available_at_error_gib",
    ),
    figure(
        "estimated maximum model length",
        rf"estimated maximum model length is {NUM}",
        "estimated_max_model_len",
    ),
    figure(
        "Mamba cache blocks",
        rf"exceeds available Mamba cache blocks \({NUM}\)",
        "mamba_cache_blocks",
    ),
    figure(
        "Setting attention block size",
        rf"Setting attention block size to {NUM} tokens",
        "attention_block_size_tokens",
    ),
    figure(
        "Padding mamba page size",
        rf"Padding mamba page size by {NUM}%",
        "mamba_page_padding_pct",
    ),
]

_SETTING_FIGURES = [
    figure(
        "Maximum concurrency",
        rf"Maximum concurrency for {NUM} tokens per request",
        "max_model_len",
    ),
    figure(
        "x gpu_memory_utilization",
        rf"x gpu_memory_utilization \({NUM}\)",
        "gpu_memory_utilization",
    ),
    figure(
        "gpu_memory_utilization",
        rf"gpu_memory_utilization(?:=|\s+){NUM}\s*$",
        "gpu_memory_utilization",
    ),
    figure(
        "Mamba cache blocks",
        rf"max_num_seqs \({NUM}\) exceeds available Mamba cache blocks",
        "max_num_seqs",
    ),
    figure("KV cache is needed", rf"max seq len \({NUM}\), \(", "max_model_len"),
]
_CONFIG_RENAMES = {"max_seq_len": "max_model_len"}
#: (keyword, pattern): the pattern runs only on lines holding the keyword.
_VERSION_PATTERNS = [
    ("LLM engine (v", re.compile(r"LLM engine \(v(\d[\w.+\-]*)\)")),
    ("vLLM API server version", re.compile(r"vLLM API server version (\d[\w.+\-]*)")),
    ("version ", re.compile(r"\bversion (\d+\.\d+[\w.+\-]*)\s*$")),
]
_V1_MARKERS = (
    " KV cache size: ",
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
_LLM_CALL = re.compile(r"\bLLM\(")
_SERVE = re.compile(r"\bvllm serve\b|-m vllm\.entrypoints\.openai\.api_server\b")
_FAILURE = re.compile(
    r"No available memory for the cache blocks|larger than the maximum number of tokens that can be stored"
    r"|KV cache is needed, which is larger|exceeds available Mamba cache blocks|CUDA out of memory"
    r"|OutOfMemoryError|^\w*Error: "
)
_ERROR_WORD = re.compile(r"\bERROR\b")
#: Lines worth testing with ``_is_error`` (searched over the joined lines: ^ needs MULTILINE).
_ERROR_CANDIDATE = re.compile(rf"{_FAILURE.pattern}|\bERROR\b", re.MULTILINE)


def _is_error(text: str) -> bool:
    """A failure line, or an ``ERROR`` line carrying an exception (``ERROR ... SomeError: ...``).

    Same answer as the pattern ``ERROR.*Error:`` in one pass: that pattern rescanned the rest of the
    line from every ``ERROR`` (quadratic on a line of them); the first ``ERROR`` decides alone.
    """
    if _FAILURE.search(text):
        return True
    m = _ERROR_WORD.search(text)
    return m is not None and text.find("Error: ", m.end()) >= 0


_WARNING = re.compile(r"\bWARNING\b|\bWARN\b")


def parse(lines: Lines) -> Partial:
    """Read a vLLM startup log."""
    logged, per_worker = collect(lines, FIGURES)
    settings = _settings(lines)
    result = Partial("vllm", _version(lines), _generation(lines), settings, logged, per_worker)
    _derive(result)
    result.errors = messages_matching(lines, _ERROR_CANDIDATE, _is_error)
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
    # the figures a failing start quotes are the ones a running one prints
    if "available_kv_cache_gib" not in logged and "kv_cache_available_at_error_gib" in logged:
        logged["available_kv_cache_gib"] = logged["kv_cache_available_at_error_gib"]
    if "kv_capacity_tokens_reported" not in logged and "estimated_max_model_len" in logged:
        logged["kv_capacity_tokens_reported"] = logged["estimated_max_model_len"]
    block_size = result.settings.get("block_size") or 16
    if "gpu_blocks" in logged and "kv_cache_tokens" not in logged:
        logged["kv_cache_tokens"] = int(logged["gpu_blocks"]) * int(block_size)


def _settings(lines: Lines) -> dict[str, Any]:
    """Settings from, lowest priority first: figure lines, Namespace, launch command, non-default args, config."""
    inferred, _ = collect(lines, _SETTING_FIGURES)
    namespace: dict[str, Any] = {}
    nondefault: dict[str, Any] = {}
    config: dict[str, Any] = {}
    for line in lines.containing("Namespace("):
        namespace = key_values(line.text.split("Namespace(", 1)[1])
        if namespace:
            break
    for line in lines.containing("non-default args:"):
        if "Namespace(" not in line.text:
            nondefault = dict_literal(line.text.split("non-default args:", 1)[1])
            if nondefault:
                break
    for line in lines.containing("with config:"):
        text = line.text
        if "LLM engine" in text and "Namespace(" not in text and "non-default args:" not in text:
            config = key_values(text.split("with config:", 1)[1])
            if config:
                break
    config = {_CONFIG_RENAMES.get(k, k): v for k, v in config.items()}
    command: dict[str, Any] = {}
    for cmd in joined_commands(lines, _SERVE):
        command.update(_serve_flags(cmd))
    merged = merge_settings(inferred, namespace, _llm_call(lines), command, nondefault, config)
    model_tag = merged.pop("model_tag", None)
    if "model" not in merged and model_tag is not None:
        merged["model"] = model_tag
    return merged


#: Typographic quotes a pasted snippet may carry (``model=”X”``), read as plain ones.
_SMART_QUOTES = str.maketrans({"\u201c": "'", "\u201d": "'", "\u2018": "'", "\u2019": "'"})
#: Lines of one pasted ``LLM(...)`` call read (real ones are under 30).
_MAX_CALL_LINES = 200


def _llm_call(lines: Lines) -> dict[str, Any]:
    """Keyword arguments of a pasted offline ``LLM(model=..., tensor_parallel_size=2, ...)`` call.

    The call may span lines; at most ``_MAX_CALL_LINES`` lines and ``MAX_COMMAND_CHARS`` characters
    of each of at most ``MAX_COMMANDS`` calls are joined and split once (linear in the log).
    """
    out: dict[str, Any] = {}
    for count, i in enumerate(lines.indices_matching(_LLM_CALL)):
        if count >= MAX_COMMANDS:
            break
        text = lines[i].text
        pieces = [text[text.find("LLM(") + 3 :]]
        size = len(pieces[0])
        for line in lines[i + 1 : i + _MAX_CALL_LINES]:
            if size >= MAX_COMMAND_CHARS:
                break
            pieces.append(line.text.strip())
            size += len(pieces[-1]) + 1
        call = " ".join(pieces)[:MAX_COMMAND_CHARS].translate(_SMART_QUOTES)
        end = matching_brace(call)
        args = key_values(call[1:end] if end > 0 else call[1:])
        if args:
            out.update(args)
            out["usage_context"] = "offline"  # the LLM class has its own batch defaults
    return out


def _serve_flags(command: str) -> dict[str, Any]:
    """``vllm serve MODEL --flag value`` into settings (the positional argument is the model)."""
    flags = command_flags(command, {"tp": "tensor_parallel_size", "pp": "pipeline_parallel_size"})
    after = _SERVE.split(command, 1)[-1].split()
    if after and not after[0].startswith("-"):
        flags.setdefault("model", after[0])
    return flags


def _version(lines: Lines) -> str | None:
    """The version as printed (config line, API server banner, or ``vllm --version`` output)."""
    for keyword, pattern in _VERSION_PATTERNS:
        for line in lines.containing(keyword):
            m = pattern.search(line.text)
            if m:
                return m.group(1)
    for i in lines.indices_containing("vllm --version"):
        for nxt in lines[i + 1 : i + 4]:
            if re.fullmatch(r"\s*\d+\.\d+[\w.+\-]*\s*", nxt.text):
                return nxt.text.strip()
    return None


def _generation(lines: Lines) -> str | None:
    """V0 or V1, from the config line when printed, else from V1-only or V0-only line formats."""
    text = lines.joined
    m = re.search(r"Initializing a (V[01]) LLM engine", text)
    if m:
        return m.group(1).lower()
    if any(marker in text for marker in _V1_MARKERS):
        return "v1"
    return "v0" if any(marker in text for marker in _V0_MARKERS) else None


def normalise(settings: dict[str, Any]) -> dict[str, Any]:
    """Numbers printed as text become numbers (``'0.95'`` -> 0.95)."""
    return {
        k: number(v) if isinstance(v, str) and re.fullmatch(r"-?\d+(\.\d+)?", v) else v
        for k, v in settings.items()
    }
