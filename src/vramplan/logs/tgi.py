"""Text Generation Inference launcher/shard logs. TGI reports token budgets, not bytes."""

from __future__ import annotations

import re
from typing import Any

from vramplan.logs.common import (
    NUM,
    Figure,
    Partial,
    collect,
    figure,
    literal,
    merge_settings,
    messages_matching,
    split_top_level,
)
from vramplan.logs.text import Lines

MARKERS = (
    "text_generation_launcher",
    "text_generation_router",
    "text-generation-launcher",
    "Setting max batch total tokens",
    "max_batch_prefill_tokens",
    "Warming up model",
)

_WARMUP = rf"(?:Setting max batch total tokens to|Inferred max batch total tokens:) {NUM}"
FIGURES: list[Figure] = [
    figure("max batch total tokens", _WARMUP, "kv_cache_tokens"),
    figure("max batch total tokens", _WARMUP, "max_batch_total_tokens_set_by_warmup"),
]
_SETTING_FIGURES = [
    figure(
        "max_batch_prefill_tokens",
        rf"Default `max_batch_prefill_tokens` to {NUM}",
        "max_batch_prefill_tokens",
    ),
    figure("max_input_tokens", rf"Default `max_input_tokens` to {NUM}", "max_input_tokens"),
    figure("max_total_tokens", rf"Default `max_total_tokens` to {NUM}", "max_total_tokens"),
]
_KEY = re.compile(r"[A-Za-z_]\w*")
_ERROR = re.compile(r"CUDA out of memory|OutOfMemory|\bERROR\b|Not enough memory")
_WARNING = re.compile(r"\bWARN(ING)?\b")


def parse(lines: Lines) -> Partial:
    """Read a TGI launcher log."""
    logged, per_worker = collect(lines, FIGURES)
    inferred, _ = collect(lines, _SETTING_FIGURES)
    settings = merge_settings(inferred, _args(lines))
    result = Partial("tgi", _version(lines), None, settings, logged, per_worker)
    result.errors = messages_matching(lines, _ERROR)
    result.warnings = messages_matching(lines, _WARNING)
    return result


def _args(lines: Lines) -> dict[str, Any]:
    """The launcher's ``Args { model_id: "...", num_shard: Some(2), ... }`` line.

    Split at top-level commas by the shared quote- and bracket-aware scanner (one pass); a pattern
    per field rescanned the line from every ``Some(`` and took 40 minutes on 2 MB of them.
    """
    for line in lines.containing("Args {"):
        out: dict[str, Any] = {}
        for part in split_top_level(line.text.split("Args {", 1)[1]):
            key, sep, raw = part.partition(":")
            key, raw = key.strip(), raw.strip()
            if not sep or not _KEY.fullmatch(key):
                continue
            if raw.startswith("Some(") and raw.endswith(")"):
                raw = raw[len("Some(") : -1]
            if raw == "None" or not raw:
                continue
            out[key] = raw == "true" if raw in ("true", "false") else literal(raw)
        return out
    return {}


def _version(lines: Lines) -> str | None:
    """``version: "2.4.0"`` in the launcher's env dump."""
    pattern = re.compile(r"(?:Version|version):?\s*\"?v?(\d+\.\d+\.\d+[\w.+\-]*)")
    for line in lines.containing("ersion"):
        m = pattern.search(line.text)
        if m:
            return m.group(1)
    return None
