"""llama.cpp (and forks: llamafile, ik_llama.cpp) logs. Buffer sizes are printed in MiB.

Field names follow real_logs.json: ``model_buffer_<device>_mib``, ``kv_buffer_<device>_mib``,
``output_buffer_<device>_mib`` and ``compute_buffer_<device>_mib`` with the device lower-cased
(``CUDA0`` -> ``cuda0``); for output/compute buffers ``CUDA_Host`` becomes ``host`` as in the set.

Recurrent state (Mamba, gated DeltaNet, RWKV, LFM2 short conv; the recurrent half of hybrids) is
printed by ``llama_memory_recurrent``: one ``<dev> RS buffer size = X MiB`` per backend buffer and
``size = T MiB (N cells, L layers, S seqs[ R rs_seq]), R (f32): X MiB, S (f32): Y MiB[, P (f32): Z MiB]``
(llama.cpp ``src/llama-memory-recurrent.cpp``; ``rs_seq`` and ``P`` are 2026 additions). Field names
follow real_logs_2026.json: ``rs_buffer_<device>_mib``, ``rs_total_mib``, ``rs_r_<type>_mib``,
``rs_s_<type>_mib``, ``rs_cells``, ``rs_seqs``.
"""

from __future__ import annotations

import re
from typing import Any

from vramplan.logs.common import GAP, Partial, literal, messages_matching, number
from vramplan.logs.text import Lines

MARKERS = (
    "llama_kv_cache",
    "llama_new_context_with_model",
    "llm_load_tensors",
    "llama_model_loader",
    "load_tensors:",
    "llama_context:",
    "ggml_cuda_init",
    "llama_memory_recurrent",
)
_CONTEXT = re.compile(r"^(?:llama_new_context_with_model|llama_context):\s+(\w+)\s*=\s*(\S+)")
_CONTEXT_KEYS = {
    "n_ctx",
    "n_batch",
    "n_ubatch",
    "flash_attn",
    "n_seq_max",
    "n_ctx_per_seq",
    "causal_attn",
    "type_k",
    "type_v",
    "n_threads",
    "kv_unified",
}
_MODEL_BUF = re.compile(
    r"(?:llm_load_tensors|load_tensors):\s+(\S+) (?:model )?buffer size =\s*([\d.]+) MiB"
)
# \b before llama_kv_cache: a run of the word restarts no scan (\w* would rescan the run from each copy)
_KV_BUF = re.compile(r"\bllama_kv_cache\w*:\s+(\S+) KV buffer size =\s*([\d.]+) MiB")
_OTHER_BUF = re.compile(
    r"^(?:llama_new_context_with_model|llama_context|graph_reserve):\s+(\S+)\s+(output|compute) buffer size =\s*([\d.]+) MiB"
)
_KV_SIZE = re.compile(
    rf"(?:KV self size|\bllama_kv_cache\w*: size)\s*=\s*([\d.]+) MiB{GAP}K \((\w+)\):\s*([\d.]+) MiB, "
    r"V \((\w+)\):\s*([\d.]+) MiB"
)
# counts read with int(): at most 18 digits (a longer run is no count, and int() of it is slow)
_CELLS = re.compile(r"\(\s*(\d{1,18}) cells,\s*(\d+) layers,\s*(\d+)/(\d{1,18}) seqs\)")
_RS_BUF = re.compile(r"\bllama_memory_recurrent:\s+(\S+) RS buffer size =\s*([\d.]+) MiB")
_RS_SIZE = re.compile(
    r"\bllama_memory_recurrent: size =\s*([\d.]+) MiB \(\s*(\d{1,18}) cells,\s*(\d{1,18}) layers,"
    r"\s*(\d{1,18}) seqs(?:\s+(\d{1,18}) rs_seq)?\), R \((\w+)\):\s*([\d.]+) MiB, "
    r"S \((\w+)\):\s*([\d.]+) MiB(?:, P \((\w+)\):\s*([\d.]+) MiB)?"
)
_OFFLOAD = re.compile(r"offloaded (\d{1,18})/(\d{1,18}) layers to GPU")
_DEVICE = re.compile(r"Device \d+: ([^,]{1,200}), compute capability")
_VERSION = re.compile(r"build(?: =|:) (\d+) \((\w+)\)")
_ERROR = re.compile(r"failed to allocate|out of memory|error:|failed to load", re.IGNORECASE)
_WARNING = re.compile(r"\bwarning\b|\bWARN\b", re.IGNORECASE)


def _device(name: str, host_alias: bool) -> str:
    name = name.lower()
    return "host" if host_alias and name in ("cuda_host", "cpu") else name


def parse(lines: Lines) -> Partial:
    """Read a llama.cpp startup log."""
    settings: dict[str, Any] = {}
    logged: dict[str, Any] = {}
    version = None
    for line in lines:
        text = line.text.strip()
        version = version or _match_version(text)
        _read_line(text, settings, logged)
    result = Partial("llama.cpp", version, None, settings, logged)
    result.errors = messages_matching(lines, _ERROR)
    result.warnings = messages_matching(lines, _WARNING)
    return result


def _match_version(text: str) -> str | None:
    m = _VERSION.search(text)
    return f"b{m.group(1)} ({m.group(2)})" if m else None


def _read_line(text: str, settings: dict[str, Any], logged: dict[str, Any]) -> None:
    """First value wins for every field (later lines repeat for other contexts)."""
    if (m := _CONTEXT.match(text)) and m.group(1) in _CONTEXT_KEYS:
        settings.setdefault(m.group(1), literal(m.group(2)))
    if m := _MODEL_BUF.search(text):
        logged.setdefault(f"model_buffer_{_device(m.group(1), False)}_mib", number(m.group(2)))
    if m := _KV_BUF.search(text):
        logged.setdefault(f"kv_buffer_{_device(m.group(1), False)}_mib", number(m.group(2)))
    if m := _OTHER_BUF.search(text):
        logged.setdefault(
            f"{m.group(2)}_buffer_{_device(m.group(1), True)}_mib", number(m.group(3))
        )
    if m := _KV_SIZE.search(text):
        logged.setdefault("kv_self_mib", number(m.group(1)))
        logged.setdefault("k_mib", number(m.group(3)))
        logged.setdefault("v_mib", number(m.group(5)))
        settings.setdefault("type_k", m.group(2))
        settings.setdefault("type_v", m.group(4))
    if m := _CELLS.search(text):
        logged.setdefault("kv_cells", int(m.group(1)))
        settings.setdefault("n_seq_max", int(m.group(4)))
    if "llama_memory_recurrent" in text:
        _read_recurrent(text, settings, logged)
    if m := _OFFLOAD.search(text):
        settings.setdefault("n_gpu_layers", int(m.group(1)))
        logged.setdefault("offloaded_layers", int(m.group(1)))
        logged.setdefault("total_layers", int(m.group(2)))
    if m := _DEVICE.search(text):
        settings.setdefault("gpu_name", m.group(1).strip())


def _read_recurrent(text: str, settings: dict[str, Any], logged: dict[str, Any]) -> None:
    """The recurrent-state lines: per-buffer sizes and the summary (cells = state slots = sequences)."""
    if m := _RS_BUF.search(text):
        device = re.sub(r"\W", "", m.group(1).lower())  # ``Meta()`` -> ``meta``
        logged.setdefault(f"rs_buffer_{device}_mib", number(m.group(2)))
    if m := _RS_SIZE.search(text):
        logged.setdefault("rs_total_mib", number(m.group(1)))
        logged.setdefault("rs_cells", int(m.group(2)))
        logged.setdefault("rs_layers", int(m.group(3)))
        logged.setdefault("rs_seqs", int(m.group(4)))
        settings.setdefault("n_seq_max", int(m.group(4)))
        if m.group(5) is not None:
            settings.setdefault("n_rs_seq", int(m.group(5)))
        for part, type_group in (("r", 6), ("s", 8), ("p", 10)):
            if m.group(type_group) is not None:
                name = f"rs_{part}_{m.group(type_group).lower()}_mib"
                logged.setdefault(name, number(m.group(type_group + 1)))
