"""``parse_log``: detect the serving engine of a startup log and read its memory figures and settings.

``vramplan explain`` compares these logged figures with the planner's prediction, so names and units
follow ``real_logs.json`` (unit in the field name, values as printed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vramplan.errors import FileFormatError
from vramplan.logs import llamacpp, sglang, tgi, vllm
from vramplan.logs.common import Partial
from vramplan.logs.text import Line, limit_size, logical_lines

MAX_FILE_BYTES = 1 << 30
_ENGINES = (("vllm", vllm), ("sglang", sglang), ("tgi", tgi), ("llama.cpp", llamacpp))
_NVSMI_GPU = re.compile(r"^\|\s+\d+\s+((?:NVIDIA|Tesla|Quadro|AMD)[^|]*?)\s+(?:On|Off)\s+\|")
_NVSMI_MEM = re.compile(r"\|\s+(\d+)MiB\s*/\s*(\d+)MiB\s+\|")


@dataclass(frozen=True)
class ParsedLog:
    """What a startup log says: engine, settings (the engine's own flag names) and logged figures."""

    engine: str
    engine_version: str | None
    vllm_generation: str | None
    settings: dict[str, Any]
    logged: dict[str, Any]
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    per_worker: dict[str, list[Any]] = field(default_factory=dict)


def parse_log(text: str) -> ParsedLog:
    """Parse a startup log of vLLM, SGLang, TGI or llama.cpp; raise FileFormatError if it is none of them."""
    if not isinstance(text, str):
        raise FileFormatError(
            "parse_log expects the log as text (str); decode bytes first or use parse_log_file"
        )
    text, size_note = limit_size(text)
    lines = logical_lines(text)
    engine = _detect(lines)
    result: Partial = dict(_ENGINES)[engine].parse(lines)
    _add_nvidia_smi(lines, result)
    if size_note:
        result.warnings.insert(0, size_note)
    return ParsedLog(
        engine=result.engine,
        engine_version=result.engine_version,
        vllm_generation=result.vllm_generation,
        settings=result.settings,
        logged=result.logged,
        errors=result.errors,
        warnings=result.warnings,
        per_worker=result.per_worker,
    )


def parse_log_file(path: str | Path) -> ParsedLog:
    """Read a log file (any encoding; undecodable bytes replaced) and parse it."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise FileFormatError(
                f"{p}: {size:,} bytes is too large for a startup log; cut it to the startup part"
            )
        data = p.read_bytes()
    except OSError as exc:
        raise FileFormatError(
            f"cannot read log file {p}: {exc.strerror or exc}; check the path"
        ) from exc
    try:
        return parse_log(data.decode("utf-8", errors="replace"))
    except FileFormatError as exc:
        raise FileFormatError(f"{p}: {exc}") from exc


def _detect(lines: list[Line]) -> str:
    """The engine whose startup markers appear most often (ties go to the earlier engine)."""
    joined = "\n".join(line.text for line in lines)
    counts = {
        name: sum(joined.count(marker) for marker in module.MARKERS) for name, module in _ENGINES
    }
    best = max(counts, key=lambda name: counts[name])
    if counts[best] == 0:
        looked_for = ", ".join(
            f"'{m}'"
            for m in (
                "Model loading took",
                "# GPU blocks",
                "GPU KV cache size",
                "max_total_num_tokens",
                "KV Cache is allocated",
                "Setting max batch total tokens",
                "llama_kv_cache",
                "llama_new_context_with_model",
            )
        )
        raise FileFormatError(
            "no vLLM, SGLang, TGI or llama.cpp startup lines found: looked for "
            f"{looked_for} ...; pass the engine's startup log (stdout/stderr from launch until the server is ready)"
        )
    return best


def _add_nvidia_smi(lines: list[Line], result: Partial) -> None:
    """GPU name and per-GPU used/total MiB from an nvidia-smi table pasted with the log."""
    for i, line in enumerate(lines):
        m = _NVSMI_GPU.match(line.text)
        if not m:
            continue
        result.settings.setdefault("gpu_name", m.group(1).strip())
        for nxt in lines[i + 1 : i + 3]:
            mem = _NVSMI_MEM.search(nxt.text)
            if mem:
                result.logged.setdefault("nvidia_smi_used_mib_per_gpu", int(mem.group(1)))
                result.logged.setdefault("nvidia_smi_total_mib", int(mem.group(2)))
                result.settings.setdefault("gpu_total_gib", round(int(mem.group(2)) / 1024, 2))
                break
        return


__all__ = ["ParsedLog", "parse_log", "parse_log_file"]
