"""``parse_log``: detect the serving engine of a startup log and read its memory figures and settings.

``vramplan explain`` compares these logged figures with the planner's prediction, so names and units
follow ``real_logs.json`` (unit in the field name, values as printed).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vramplan.errors import FileFormatError
from vramplan.logs import llamacpp, sglang, tgi, vllm
from vramplan.logs.common import Partial
from vramplan.logs.limits import HEAD_CHARS, MAX_PARSE_CHARS, TAIL_CHARS
from vramplan.logs.text import Lines, limit_size, logical_lines

_ENGINES = (("vllm", vllm), ("sglang", sglang), ("tgi", tgi), ("llama.cpp", llamacpp))
# bounded name and gap: nvidia-smi rows are < 130 characters, and an unbounded lazy name followed by
# \s+ retried every split of a long run of blanks
_NVSMI_GPU = re.compile(
    r"^\|\s{1,8}\d{1,3}\s{1,8}((?:NVIDIA|Tesla|Quadro|AMD)[^|]{0,80}?)\s{1,40}(?:On|Off)\s+\|"
)
_NVSMI_MEM = re.compile(r"\|\s+(\d{1,18})MiB\s*/\s*(\d{1,18})MiB\s+\|")


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
    lines, lines_note = logical_lines(text)
    engine = _detect(lines)
    result: Partial = dict(_ENGINES)[engine].parse(lines)
    _add_nvidia_smi(lines, result)
    for note in (lines_note, size_note):
        if note:
            result.warnings.insert(0, note)
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
    """Read a log file (any encoding; undecodable bytes replaced) and parse it.

    Only a regular file is opened (a FIFO or device would block or never end), and of a huge file only
    the head and tail that ``parse_log`` keeps are read.
    """
    from vramplan.model.files import open_regular

    p = Path(path)
    try:
        with open_regular(p, "log file") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size <= MAX_PARSE_CHARS:
                data = fh.read(MAX_PARSE_CHARS)
            else:
                data = fh.read(HEAD_CHARS) + b"\n"
                fh.seek(size - TAIL_CHARS)
                data += fh.read(TAIL_CHARS)
    except FileFormatError as exc:
        raise FileFormatError(f"cannot read log file {exc}") from None
    except OSError as exc:
        raise FileFormatError(
            f"cannot read log file {p}: {exc.strerror or exc}; check the path"
        ) from exc
    try:
        parsed = parse_log(data.decode("utf-8", errors="replace"))
    except FileFormatError as exc:
        raise FileFormatError(f"{p}: {exc}") from exc
    if size > MAX_PARSE_CHARS:
        parsed.warnings.insert(
            0,
            f"log file is {size:,} bytes; only the first {HEAD_CHARS:,} and last {TAIL_CHARS:,} were "
            "read (startup figures are at the start, failures at the end)",
        )
    return parsed


def _detect(lines: Lines) -> str:
    """The engine whose startup markers appear most often (ties go to the earlier engine)."""
    joined = lines.joined
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


def _add_nvidia_smi(lines: Lines, result: Partial) -> None:
    """GPU name and per-GPU used/total MiB from an nvidia-smi table pasted with the log."""
    for i, line in enumerate(lines):
        m = _NVSMI_GPU.match(line.text) if line.text.startswith("|") else None
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
