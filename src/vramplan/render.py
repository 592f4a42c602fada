"""The only code that turns results into text: JSON and CSV for machines, rich tables for people.

Rules every command follows through this module:

- memory is shown in GiB (2^30 bytes) unless the user asks for GB, always with its unit, 2 decimals;
- a count is shown with its noun in the right number ("1 user", "16 users");
- a table wraps long cells at spaces and never breaks a word; when even that cannot fit the
  terminal it turns into a vertical "key: value" list (names are never shortened to "Qwen/Qwe...");
- ``--json`` prints the result dict, ``--csv`` the rows of the main table (the same cells as on screen);
- ``--check`` makes the exit status say whether it fits / starts (0) or not (``CHECK_FAILED_EXIT``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vramplan.units import GB, GiB, KiB, MiB
from vramplan.wording import plural

if TYPE_CHECKING:  # rich is imported where text is drawn: --json and --csv never load it (~0.1 s)
    from rich.console import Console, RenderableType
    from rich.table import Table

#: Exit status of a command run with ``--check`` whose scenario does not fit / does not start.
CHECK_FAILED_EXIT = 3
#: Help text of ``--check``, shared by every command that has it.
CHECK_HELP = (
    f"Exit 0 when it fits / starts, {CHECK_FAILED_EXIT} when it does not (for scripts and CI)."
)
#: Help text of ``--csv``.
CSV_HELP = "Print the table as CSV (header row first) instead of a table."
#: Display units a user may ask for.
UNITS = {"GIB": ("GiB", GiB), "GB": ("GB", GB)}
#: Missing value in a table cell (never the word None).
MISSING = "-"


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def to_json(data: Any) -> str:
    """Stable, strict JSON (NaN/inf become null)."""
    return json.dumps(_clean(data), indent=2, sort_keys=False, default=str)


def console() -> Console:
    """A console as wide as the terminal (rich reads COLUMNS), never wider than 200 columns."""
    from rich.console import Console

    probe = Console()
    return Console(width=min(probe.width, 200), soft_wrap=False)


# ---------------------------------------------------------------- numbers, units, words


def size(n_bytes: int | float | None, unit: str = "GiB", digits: int = 2) -> str:
    """Bytes as '15.26 GiB' (or GB); '-' when unknown."""
    if n_bytes is None or (isinstance(n_bytes, float) and not math.isfinite(n_bytes)):
        return MISSING
    name, divisor = UNITS[unit.upper()] if unit.upper() in UNITS else (unit, _divisor(unit))
    value = n_bytes / divisor
    if 0 < abs(value) < 0.5 * 10**-digits:  # say it is small rather than print 0.00
        return f"< {10**-digits:.{digits}f} {name}"
    return f"{value:,.{digits}f} {name}"


def _divisor(unit: str) -> int:
    return {"B": 1, "KiB": KiB, "MiB": MiB, "GiB": GiB, "GB": GB}[unit]


def gib(value_gib: float | None, unit: str = "GiB") -> str:
    """A figure already in GiB (engines log GiB) as text in the display unit."""
    return MISSING if value_gib is None else size(value_gib * GiB, unit)


def number(value: Any, digits: int = 2) -> str:
    """A cell value: ints with separators, floats rounded, bools as yes/no, None as '-'."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return MISSING
        return f"{value:,.{digits}f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(number(v, digits) for v in value) or MISSING
    return str(value)


def share(value: float | None, digits: int = 1) -> str:
    """0.8938 -> '89.4 %'."""
    return MISSING if value is None else f"{100 * value:.{digits}f} %"


def ratio(value: float | None, digits: int = 2) -> str:
    """A fraction such as gpu_memory_utilization, rounded (0.8938626 -> '0.89')."""
    return MISSING if value is None else f"{value:.{digits}f}".rstrip("0").rstrip(".")


# ---------------------------------------------------------------- tables


@dataclass
class View:
    """One table plus the lines printed under it; what ``emit`` prints as table, CSV or nothing."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    notes: list[str] = field(default_factory=list)
    #: extra tables printed after the main one (not part of --csv)
    more: list[View] = field(default_factory=list)


_NUMERIC = re.compile(r"^(?:< |\$|[+-])?\d")


def _cells(rows: Iterable[Sequence[Any]]) -> list[list[str]]:
    return [[number(v) if not isinstance(v, str) else v for v in row] for row in rows]


def _numeric_columns(columns: Sequence[str], cells: list[list[str]]) -> list[bool]:
    """Figure columns: right-aligned and never wrapped ('12.34 GiB' stays on one line)."""
    flags = []
    for i in range(len(columns)):
        shown = [r[i] for r in cells if i < len(r) and r[i] != MISSING]
        flags.append(i > 0 and bool(shown) and all(_NUMERIC.match(c) for c in shown))
    return flags


def _sizes(
    columns: Sequence[str], cells: list[list[str]], numeric: list[bool]
) -> tuple[list[int], list[int]]:
    """(natural, minimum) content width per column: the longest line, and the longest word
    (the whole cell for figure columns, which do not wrap). Headers count like cells."""
    natural, minimum = [], []
    for i, col in enumerate(columns):
        texts = [col] + [r[i] for r in cells if i < len(r)]
        lines = [line for t in texts for line in t.split("\n")]
        natural.append(max(len(line) for line in lines))
        # figure columns do not wrap (header included); word columns wrap at spaces
        words = lines if numeric[i] else [w for line in lines for w in line.split()]
        minimum.append(max((len(w) for w in words), default=1))
    return natural, minimum


def _overhead(n_columns: int) -> int:
    """Characters a heavy-box table with padding (0, 1) adds: 2 padding + 1 border per column, +1."""
    return 3 * n_columns + 1


def fits_width(columns: Sequence[str], rows: Sequence[Sequence[Any]], width: int) -> bool:
    """Whether a table can show every cell without breaking a word (a name) at this width."""
    cells = _cells(rows)
    _, minimum = _sizes(columns, cells, _numeric_columns(columns, cells))
    return sum(minimum) + _overhead(len(columns)) <= width


def _column_widths(natural: list[int], minimum: list[int], width: int) -> list[int] | None:
    """Content widths that fit ``width`` with no column below its longest word, or None when the
    natural widths already fit. Space above the minima goes to the columns that want it, in
    proportion to how much more they want (rich's own squeeze can cut a column's words)."""
    room = width - _overhead(len(natural))
    if sum(natural) <= room:
        return None
    widths = list(minimum)
    slack = room - sum(minimum)
    want = [n - m for n, m in zip(natural, minimum, strict=True)]
    total = sum(want)
    if slack <= 0 or total <= 0:
        return widths
    for i, w in enumerate(want):
        widths[i] += slack * w // total
    spare = room - sum(widths)
    for i in sorted(
        range(len(widths)), key=lambda k: want[k] - (widths[k] - minimum[k]), reverse=True
    ):
        if spare <= 0:
            break
        if widths[i] < natural[i]:
            widths[i] += 1
            spare -= 1
    return widths


def table(
    title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], width: int | None = None
) -> Table:
    """A rich table: figures right-aligned and unwrapped, words wrapped at spaces, never cut.

    With ``width`` the column widths are set so that no word is broken (see ``fits_width``).
    """
    from rich.table import Table

    cells = _cells(rows)
    numeric = _numeric_columns(columns, cells)
    widths = None
    if width is not None:
        natural, minimum = _sizes(columns, cells, numeric)
        widths = _column_widths(natural, minimum, width)
    t = Table(title=title or None, title_justify="left", expand=False)
    for i, col in enumerate(columns):
        t.add_column(
            col,
            justify="right" if numeric[i] else "left",
            overflow="fold",
            no_wrap=numeric[i],
            width=None if widths is None else widths[i],
        )
    for row in cells:
        t.add_row(*row)
    return t


def vertical(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], width: int = 80
) -> RenderableType:
    """The narrow layout: one block per row, its first cell as heading, then 'column: value' items
    packed into lines of the width (joined by ' · '), so nothing is cut and little space is lost."""
    from rich.console import Group
    from rich.text import Text

    parts: list[RenderableType] = [Text(title, style="bold")] if title else []
    for row in rows:
        cells = [number(v) if not isinstance(v, str) else v for v in row]
        parts.append(Text(cells[0].replace("\n", " "), style="bold"))
        line = ""
        for col, cell in zip(columns[1:], cells[1:], strict=False):
            item = f"{col}: {cell.replace(chr(10), ' ')}"
            if line and len(line) + 3 + len(item) <= width - 2:
                line += " · " + item
                continue
            if line:
                parts.append(Text("  " + line))
            line = item
        if line:
            parts.append(Text("  " + line))
    return Group(*parts)


def layout(view: View, width: int) -> RenderableType:
    """A table when every word fits the width, else the vertical list; the title is its own line."""
    from rich.console import Group
    from rich.text import Text

    if fits_width(view.columns, view.rows, width):
        body = table("", view.columns, view.rows, width)
        return Group(Text(view.title), body) if view.title else body
    return vertical(view.title, view.columns, view.rows, width)


def wrap(line: str, width: int) -> str:
    """Wrap at spaces with a hanging indent under the line's own indent ('  - long ...' continues at 4)."""
    import textwrap

    if len(line) <= width:
        return line
    indent = len(line) - len(line.lstrip(" "))
    return textwrap.fill(
        line,
        width=width,
        subsequent_indent=" " * (indent + 2),
        break_long_words=False,
        break_on_hyphens=False,
    )


def print_lines(out: Console, lines: Iterable[str]) -> None:
    """Notes, fixes and assumptions under a table, wrapped to the console with hanging indents."""
    from rich.text import Text

    for line in lines:
        for part in line.split("\n"):
            out.print(Text(wrap(part, out.width)), soft_wrap=True)


def csv_text(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """RFC 4180 CSV of a table: header row, then the cells as shown on screen."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow([number(v) if not isinstance(v, str) else v for v in row])
    return buf.getvalue()


def emit(view: View, data: Any, *, json_out: bool = False, csv_out: bool = False) -> None:
    """Print ``data`` as JSON, ``view`` as CSV, or ``view`` as a table with its notes."""
    import typer

    if json_out and csv_out:
        from vramplan.errors import InputError

        raise InputError("give --json or --csv, not both")
    if json_out:
        typer.echo(to_json(data))
        return
    if csv_out:
        typer.echo(csv_text(view.columns, view.rows), nl=False)
        return
    out = console()
    for v in (view, *view.more):
        out.print(layout(v, out.width))
        print_lines(out, v.notes)


def check_needs_gpu(check: bool, gpu: str | None, gpu_memory: str | None) -> None:
    """Refuse ``--check`` without a GPU before computing anything (there would be no verdict)."""
    if check and gpu is None and gpu_memory is None:
        from vramplan.errors import InputError

        raise InputError(
            "--check needs a GPU to say whether it fits: add --gpu NAME or --gpu-memory SIZE"
        )


def check_exit(check: bool, ok: bool | None) -> None:
    """With ``--check``: return when ``ok``, else exit with ``CHECK_FAILED_EXIT``."""
    if not check:
        return
    import typer

    if not ok:
        raise typer.Exit(CHECK_FAILED_EXIT)


# ---------------------------------------------------------------- engine predictions

#: Engine names as users know them.
ENGINE_NAMES = {
    "vllm": "vLLM",
    "sglang": "SGLang",
    "tgi": "TGI",
    "llama.cpp": "llama.cpp",
    "llamacpp": "llama.cpp",
    "transformers": "transformers",
    "hf": "transformers",
}

#: Figures every engine prediction has: key -> (label, kind). Kinds: gib, tokens, blocks, x, count.
ENGINE_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("weights_gib", "weights", "gib"),
    ("non_torch_gib", "non-torch memory", "gib"),
    ("activation_peak_gib", "activation peak", "gib"),
    ("cuda_graph_gib", "CUDA graphs", "gib"),
    ("available_kv_cache_gib", "KV cache memory", "gib"),
    ("kv_cache_tokens", "KV cache size", "tokens"),
    ("gpu_blocks", "KV cache blocks", "blocks"),
    ("max_concurrency", "max concurrency", "x"),
)

#: Engine-specific extra figures worth a row: key -> (label, kind). Keys not listed get a label
#: made from the key and a unit from its suffix (_gib, _gb, _mib, _bytes, _tokens).
EXTRA_LABELS: dict[str, tuple[str, str]] = {
    # SGLang (its log says "GB" for GiB)
    "avail_mem_before_load_gb": ("free memory before loading", "gib"),
    "avail_mem_after_load_gb": ("free memory after loading", "gib"),
    "avail_mem_after_kv_pool_gb": ("free memory after the KV pool", "gib"),
    "k_size_gb": ("K cache", "gib"),
    "v_size_gb": ("V cache", "gib"),
    "kv_size_gb": ("KV cache", "gib"),
    "cell_size_bytes": ("KV bytes per token", "bytes_per_token"),
    "profiled_max_total_tokens": ("max total tokens", "tokens"),
    "max_running_requests": ("max running requests", "count"),
    "req_to_token_gib": ("request-to-token map", "gib"),
    "dynamic_needs_gib": ("dynamic memory needed", "gib"),
    "remainder_gib": ("memory left for activations", "gib"),
    "mem_fraction_static": ("mem fraction static", "ratio"),
    "oom_risk": ("OOM risk under load", "bool"),
    # TGI
    "max_batch_total_tokens_set_by_warmup": ("max batch total tokens (warm-up)", "tokens"),
    "max_total_tokens": ("max total tokens per request", "tokens"),
    "max_input_tokens": ("max input tokens", "tokens"),
    "max_batch_prefill_tokens": ("max batch prefill tokens", "tokens"),
    "headroom_gib": ("free headroom", "gib"),
    "warmup_prefill_peak_gib": ("warm-up prefill peak", "gib"),
    "blocks_per_request": ("KV blocks per request", "count"),
    "max_concurrent_requests": ("max concurrent requests", "count"),
    "attention_backend": ("attention backend", "text"),
    "block_size": ("KV block size", "tokens"),
    # transformers
    "cache": ("cache", "text"),
    "cache_positions": ("cache positions", "tokens"),
    "cache_bytes": ("KV cache memory", "bytes"),
    "cache_transient_bytes": ("cache growth transient", "bytes"),
    "peak_gib": ("peak", "gib"),
    "gpu_memory_gib": ("GPU memory", "gib"),
    "mla_cache_layout": ("MLA cache layout", "text"),
    # llama.cpp
    "kv_self_mib": ("KV self", "mib"),
    "k_mib": ("K cache", "mib"),
    "v_mib": ("V cache", "mib"),
    "kv_cells": ("KV cells", "count"),
    "swa_cells": ("sliding-window KV cells", "count"),
    "n_ctx": ("context (n_ctx)", "tokens"),
    "offloaded_layers": ("layers on the GPU", "count"),
    "total_layers": ("layers", "count"),
    "weights_exact": ("weights read from the .gguf", "bool"),
    "rs_total_mib": ("RS size (all devices)", "mib"),
    "rs_r_f32_mib": ("R (f32) conv state", "mib"),
    "rs_s_f32_mib": ("S (f32) recurrent state", "mib"),
    "rs_cells": ("RS cells (one per sequence)", "count"),
    "rs_layers": ("recurrent layers", "count"),
    # shared
    "context_length": ("context length", "tokens"),
    "chunked_prefill_size": ("chunked prefill size", "tokens"),
    "cuda_graph_max_bs": ("largest CUDA-graph batch", "count"),
    "page_size": ("page size", "tokens"),
}


#: Words of a snake_case key written as people write them.
_WORDS = {
    "kv": "KV",
    "cpu": "CPU",
    "cuda": "CUDA",
    "gpu": "GPU",
    "mla": "MLA",
    "swa": "SWA",
    "rs": "RS",
}


def _label(stem: str) -> str:
    """'compute_buffer_cuda0' -> 'compute buffer CUDA0'."""
    out = []
    for word in stem.split("_"):
        head = word.rstrip("0123456789")
        out.append(_WORDS.get(head, head) + word[len(head) :])
    return " ".join(out)


def _extra_kind(key: str) -> tuple[str, str]:
    if key in EXTRA_LABELS:
        return EXTRA_LABELS[key]
    for suffix, kind in (
        ("_gib", "gib"),
        ("_gb", "gib"),
        ("_mib", "mib"),
        ("_bytes", "bytes"),
        ("_tokens", "tokens"),
    ):
        if key.endswith(suffix):
            return _label(key.removesuffix(suffix)), kind
    return _label(key), "text"


def figure(value: Any, kind: str, unit: str = "GiB") -> str:
    """A figure with its unit: gib/mib/bytes as memory, tokens, blocks, 'x' concurrency, ratios."""
    if value is None or isinstance(value, (list, dict)):
        return MISSING
    if kind == "gib":
        return gib(float(value), unit)
    if kind == "mib":
        return size(float(value) * MiB, unit)
    if kind == "bytes":
        return size(value, unit)
    if kind == "bytes_per_token":
        return f"{value / KiB:,.1f} KiB/token"
    if kind == "tokens":
        return plural(int(value), "token")
    if kind == "blocks":
        return plural(int(value), "block")
    if kind == "x":
        return f"{float(value):,.2f}x"
    if kind == "ratio":
        return ratio(float(value))
    if kind == "count":
        return number(int(value))
    return number(value)


def engine_view(d: Mapping[str, Any], unit: str = "GiB") -> View:
    """The startup figures of any engine prediction (``EnginePrediction.to_dict()``) as one view."""
    engine = ENGINE_NAMES.get(str(d.get("engine")), str(d.get("engine")))
    s = d.get("settings") or {}
    model = s.get("model") or s.get("model_path") or s.get("model_id") or s.get("model_file")
    head = [f"{engine} {d.get('engine_version') or ''}".strip()]
    if model:
        head.append(str(model))
    if s.get("gpu"):
        head.append(str(s["gpu"]))
    rows: list[tuple[str, str]] = []
    for key, label, kind in ENGINE_FIGURES:
        if d.get(key) is not None:
            rows.append((label, figure(d[key], kind, unit)))
    shown = {r[0] for r in rows}
    for key, value in (d.get("extra") or {}).items():
        if value is None or isinstance(value, (list, dict)):
            continue
        label, kind = _extra_kind(key)
        if label in shown:
            continue
        shown.add(label)
        rows.append((label, figure(value, kind, unit)))
    notes = ["starts: yes" if d.get("starts") else "starts: NO"]
    notes += [f"  error: {e}" for e in d.get("errors", [])]
    notes += [f"  fix: {render_fix(f)}" for f in d.get("fixes", [])]
    flags = settings_flags(s)
    if flags:
        notes.append(f"settings: {flags}")
    ignored = (d.get("extra") or {}).get("ignored_flags") or d.get("ignored_flags")
    if ignored:
        notes.append("ignored flags (not modelled): " + " ".join(ignored))
    notes += [f"assumption: {a}" for a in d.get("assumptions", [])]
    return View(" · ".join(head) + " · per GPU", ["figure", "value"], rows, notes)


def settings_flags(settings: Mapping[str, Any]) -> str:
    """Resolved settings as the engine's own flags ('--tp-size 1 --page-size 1'), skipping unset ones."""
    parts = []
    for key, value in settings.items():
        if value is None or value is False or isinstance(value, (list, dict)):
            continue
        flag = "--" + str(key).replace("_", "-")
        if value is True:
            parts.append(flag)
        elif isinstance(value, float):
            parts.append(f"{flag} {value:g}")
        else:
            parts.append(f"{flag} {value}")
    return " ".join(parts)


# ---------------------------------------------------------------- explain

#: Figure names as each engine's log prints them; others fall back to the generic labels.
EXPLAIN_LABELS: dict[str, dict[str, str]] = {
    "vllm": {
        "weights_gib": "model loading",
        "available_kv_cache_gib": "available KV cache memory",
        "kv_cache_tokens": "GPU KV cache size",
        "gpu_blocks": "GPU blocks",
        "max_concurrency": "maximum concurrency",
    },
    "sglang": {
        "weights_gib": "weight load",
        "available_kv_cache_gib": "KV cache pool",
        "kv_cache_tokens": "max_total_num_tokens",
        "gpu_blocks": "KV pages",
        "k_size_gb": "K size",
        "v_size_gb": "V size",
        "activation_peak_gib": "outside the static pool",
    },
    "tgi": {
        "kv_cache_tokens": "max batch total tokens",
        "activation_peak_gib": "warm-up prefill peak",
        "available_kv_cache_gib": "KV cache memory",
    },
    "llama.cpp": {
        "weights_gib": "model buffer",
        "activation_peak_gib": "compute buffer",
        "available_kv_cache_gib": "KV buffer",
        "kv_cache_tokens": "KV cells",
    },
}
_FIGURE_KIND = {key: (label, kind) for key, label, kind in ENGINE_FIGURES}


def _explain_label(engine: str, key: str) -> tuple[str, str]:
    label, kind = _FIGURE_KIND.get(key) or _extra_kind(key)
    return EXPLAIN_LABELS.get(engine, {}).get(key, label), kind


def explain_view(result: Mapping[str, Any]) -> View:
    """`vramplan explain`: logged vs predicted per figure, then the likely cause of each, then notes."""
    engine = str(result.get("engine"))
    name = ENGINE_NAMES.get(engine, engine)
    s = result.get("settings") or {}
    model = s.get("model") or s.get("model_path") or s.get("model_id") or s.get("served_model_name")
    head = [f"{name} {result.get('engine_version') or '(version not in the log)'}"]
    if model:
        head.append(str(model))
    head.append("logged vs predicted, per GPU")
    rows: list[tuple[str, str, str, str]] = []
    causes: dict[str, list[str]] = {}  # cause -> the figures it explains, in table order
    for key, t in (result.get("terms") or {}).items():
        label, kind = _explain_label(engine, key)
        rel = t.get("relative_difference")
        rows.append(
            (
                label,
                figure(t.get("logged"), kind),
                figure(t.get("predicted"), kind),
                MISSING if rel is None else f"{rel * 100:+.1f} %",
            )
        )
        if t.get("likely_cause"):
            causes.setdefault(t["likely_cause"], []).append(label)
    why = [f"  {', '.join(labels)}: {cause}" for cause, labels in causes.items()]
    notes = (["why:", *why] if why else []) + [f"note: {n}" for n in result.get("notes", [])]
    if not rows:
        notes.insert(0, "no figure the prediction can be compared with was found in the log")
    return View(" · ".join(head), ["figure", "logged", "predicted", "diff"], rows, notes)


def view_text(view: View) -> str:
    """A view rendered to plain text at the terminal's width (for callers that want a string)."""
    from rich.console import Console

    out = Console(file=io.StringIO(), width=console().width, soft_wrap=False)
    out.print(layout(view, out.width))
    print_lines(out, view.notes)
    return out.file.getvalue()  # type: ignore[attr-defined]


def render_fix(fix: Mapping[str, Any]) -> str:
    """A fix from the JSON (field, value, why) as the command-line change it stands for."""
    flag = "--" + str(fix["field"]).replace("_", "-")
    value = "" if fix["value"] is True else f" {fix['value']}"
    return f"{flag}{value} ({fix['why']})"
