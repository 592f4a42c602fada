"""Text Generation Inference launcher/shard logs. TGI reports token budgets, not bytes."""

from __future__ import annotations

import re
from typing import Any

from vramplan.logs.common import (
    Figure,
    Partial,
    collect,
    figure,
    literal,
    merge_settings,
    messages_matching,
)
from vramplan.logs.text import Line

MARKERS = (
    "text_generation_launcher",
    "text_generation_router",
    "text-generation-launcher",
    "Setting max batch total tokens",
    "max_batch_prefill_tokens",
    "Warming up model",
)
_NUM = r"(-?[\d,]*\.?\d+)"

_WARMUP = rf"(?:Setting max batch total tokens to|Inferred max batch total tokens:) {_NUM}"
FIGURES: list[Figure] = [
    figure("max batch total tokens", _WARMUP, "kv_cache_tokens"),
    figure("max batch total tokens", _WARMUP, "max_batch_total_tokens_set_by_warmup"),
]
_SETTING_FIGURES = [
    figure(
        "max_batch_prefill_tokens",
        rf"Default `max_batch_prefill_tokens` to {_NUM}",
        "max_batch_prefill_tokens",
    ),
    figure("max_input_tokens", rf"Default `max_input_tokens` to {_NUM}", "max_input_tokens"),
    figure("max_total_tokens", rf"Default `max_total_tokens` to {_NUM}", "max_total_tokens"),
]
_ARG = re.compile(r"(\w+): (Some\((\"[^\"]*\"|[^)]*)\)|None|\"[^\"]*\"|true|false|-?[\d.]+|\w+)")
_ERROR = re.compile(r"CUDA out of memory|OutOfMemory|\bERROR\b|Not enough memory")
_WARNING = re.compile(r"\bWARN(ING)?\b")


def parse(lines: list[Line]) -> Partial:
    """Read a TGI launcher log."""
    logged, per_worker = collect(lines, FIGURES)
    inferred, _ = collect(lines, _SETTING_FIGURES)
    settings = merge_settings(inferred, _args(lines))
    result = Partial("tgi", _version(lines), None, settings, logged, per_worker)
    result.errors = messages_matching(lines, _ERROR)
    result.warnings = messages_matching(lines, _WARNING)
    return result


def _args(lines: list[Line]) -> dict[str, Any]:
    """The launcher's ``Args { model_id: "...", num_shard: Some(2), ... }`` line."""
    for line in lines:
        if "Args {" in line.text:
            body = line.text.split("Args {", 1)[1]
            out: dict[str, Any] = {}
            for m in _ARG.finditer(body):
                raw = m.group(3) if m.group(3) is not None else m.group(2)
                if raw == "None":
                    continue
                out[m.group(1)] = raw == "true" if raw in ("true", "false") else literal(raw)
            return out
    return {}


def _version(lines: list[Line]) -> str | None:
    """``version: "2.4.0"`` in the launcher's env dump."""
    pattern = re.compile(r"(?:Version|version):?\s*\"?v?(\d+\.\d+\.\d+[\w.+\-]*)")
    for line in lines:
        if "ersion" in line.text:
            m = pattern.search(line.text)
            if m:
                return m.group(1)
    return None
