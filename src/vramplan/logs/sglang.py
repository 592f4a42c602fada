"""SGLang startup logs. SGLang prints "GB" computed with 2**30, i.e. GiB; field names keep ``_gb``.

The KV pool line has three shapes: ``K size: X GB, V size: Y GB`` (MHA pools), ``KV size: X GB`` (MLA and
DeepSeek-V3.2 NSA pools, whose figure leaves out the indexer), and from ~0.5.2x a ``dtype: ...`` before
``#tokens``. Hybrid (Mamba / gated DeltaNet) models add ``Mamba Cache is allocated.`` with the state
slots (``max_mamba_cache_size``, printed from ~0.5.2x) and the conv / ssm state sizes
(sglang@0.5.3 and @0.5.23 ``srt/mem_cache/memory_pool.py``). With post-capture sizing (0.5.2x) the pool
is logged once more after CUDA-graph capture (``kv_pool_runtime.py:194-199``); that line wins.
"""

from __future__ import annotations

import re
from typing import Any

from vramplan.logs.common import (
    GAP,
    NUM,
    Figure,
    Partial,
    collect,
    command_flags,
    figure,
    joined_commands,
    key_values,
    merge_settings,
    messages_matching,
)
from vramplan.logs.limits import MAX_NUMBER_CHARS
from vramplan.logs.text import Lines

MARKERS = (
    "max_total_num_tokens",
    "KV Cache is allocated",
    "server_args=ServerArgs",
    "Load weight end",
    "Memory pool end",
    "sglang.launch_server",
    "is larger than the profiled value",
    "Mamba Cache is allocated",
    "Post-capture KV sizing",
)

FIGURES: list[Figure] = [
    figure(
        "Load weight begin", rf"Load weight begin\. avail mem={NUM} GB", "avail_mem_before_load_gb"
    ),
    figure(
        "Load weight end",
        rf"Load weight end\.{GAP}avail mem={NUM} GB(?:, mem usage={NUM} GB)?",
        "avail_mem_after_load_gb",
        "weights_gb",
    ),
    # 0.5.2x with post-capture sizing: the pool is sized after CUDA-graph capture (the earlier line then
    # says "VA upper bound", not "is allocated"); first in the list, so its figures win
    figure(
        "Post-capture KV sizing: KV cache allocated",
        rf"Post-capture KV sizing: KV cache allocated\. dtype: [\w.]{{1,40}}, #tokens: {NUM}, "
        rf"KV size: {NUM} GB, avail mem={NUM} GB",
        "kv_cache_tokens",
        "kv_size_gb",
        "avail_mem_after_post_capture_kv_gb",
    ),
    # (?<!\w ): the main pool only, not a labelled one ("SWA KV Cache", "MiniMax ... index KV Cache")
    figure(
        "KV Cache is allocated",
        rf"(?<!\w )KV Cache is allocated\.(?: dtype: [\w.]{{1,40}},)?(?: #tokens: {NUM},)? "
        rf"(?:K size: {NUM} GB, V size: {NUM} GB|KV size: {NUM} GB)",
        "kv_cache_tokens",
        "k_size_gb",
        "v_size_gb",
        "kv_size_gb",
    ),
    figure(
        "Mamba Cache is allocated",
        rf"Mamba Cache is allocated\.(?: max_mamba_cache_size: {NUM},)? conv_state size: {NUM}\s?GB, "
        rf"ssm_state size: {NUM}\s?GB(?:,? intermediate_ssm_state_cache size: {NUM}\s?GB)?",
        "max_mamba_cache_size",
        "mamba_conv_state_gb",
        "mamba_ssm_state_gb",
        "mamba_intermediate_ssm_state_gb",
    ),
    figure("max_total_num_tokens", rf"max_total_num_tokens={NUM}", "kv_cache_tokens"),
    figure(
        "Memory pool end", rf"Memory pool end\. avail mem={NUM} GB", "avail_mem_after_kv_pool_gb"
    ),
    figure(
        "Capture cuda graph begin",
        rf"Capture cuda graph begin\.{GAP}avail mem={NUM} GB",
        "avail_mem_before_cuda_graph_gb",
    ),
    figure(
        "Capture cuda graph end",
        rf"Capture cuda graph end\.{GAP}mem usage={NUM} GB\. avail mem={NUM} GB",
        "cuda_graph_gb",
        "avail_mem_after_cuda_graph_gb",
    ),
    figure("available_gpu_mem", rf"available_gpu_mem={NUM} GB", "available_gpu_mem_gb"),
    figure(
        "profiled value",
        rf"max_total_tokens={NUM} is larger than the profiled value {NUM}",
        "",
        "profiled_max_total_tokens",
    ),
]
_SETTING_FIGURES = [
    figure("max_total_num_tokens", rf"chunked_prefill_size={NUM}", "chunked_prefill_size"),
    figure("max_total_num_tokens", rf"max_prefill_tokens={NUM}", "max_prefill_tokens"),
    figure("max_total_num_tokens", rf"max_running_requests={NUM}", "max_running_requests"),
    figure("max_total_num_tokens", rf"context_len={NUM}", "context_length"),
    figure("profiled value", rf"max_total_tokens={NUM} is larger", "max_total_tokens"),
]
_ALIASES = {
    "model": "model_path",
    "tp": "tp_size",
    "dp": "dp_size",
    "pp": "pp_size",
    "ep": "ep_size",
    "context-length": "context_length",
}
_LAUNCH = re.compile(r"sglang\.launch_server\b|\bsglang serve\b")
_GRAPH_BS = re.compile(r"Capture cuda graph bs \[([\d,\s]*)\]")
# searched over the joined lines (Lines.matching): ^ needs MULTILINE
_ERROR = re.compile(
    r"CUDA out of memory|OutOfMemoryError|Not enough memory|\bERROR\b|^\w*Error: |profiled value -",
    re.MULTILINE,
)
_WARNING = re.compile(r"\bWARNING\b|is larger than the profiled value")


def parse(lines: Lines) -> Partial:
    """Read an SGLang startup log."""
    logged, per_worker = collect(lines, FIGURES)
    if "weights_gb" in logged:
        logged["weights_gib"] = logged["weights_gb"]
    result = Partial("sglang", _version(lines), None, _settings(lines), logged, per_worker)
    result.errors = messages_matching(lines, _ERROR)
    result.warnings = messages_matching(lines, _WARNING)
    return result


def _settings(lines: Lines) -> dict[str, Any]:
    """ServerArgs repr, launch command, then the figures' final values for settings left automatic."""
    inferred, _ = collect(lines, _SETTING_FIGURES)
    server_args: dict[str, Any] = {}
    for line in lines.containing("ServerArgs("):
        server_args = key_values(line.text.split("ServerArgs(", 1)[1])
        break
    command: dict[str, Any] = {}
    for cmd in joined_commands(lines, _LAUNCH):
        command.update(command_flags(cmd, _ALIASES))
    for line in lines.containing("Capture cuda graph bs"):
        m = _GRAPH_BS.search(line.text)
        if m:
            sizes = [x.strip() for x in m.group(1).split(",")]
            inferred["cuda_graph_bs"] = [int(x) for x in sizes if x and len(x) <= MAX_NUMBER_CHARS]
            break
    return merge_settings(inferred, server_args, command)


def _version(lines: Lines) -> str | None:
    """SGLang prints its version only in some builds (``sglang version``/``sglang==``)."""
    pattern = re.compile(r"sglang(?: version|==|-)\s*v?(\d+\.\d+[\w.+\-]*)", re.IGNORECASE)
    for line in lines:
        m = pattern.search(line.text)
        if m:
            return m.group(1)
    return None
