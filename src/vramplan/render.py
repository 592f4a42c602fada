"""The only code that turns results into text: JSON for machines, rich tables for people."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from vramplan.units import GiB


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
    return Console(soft_wrap=True)


def gib_cell(n_bytes: int | float | None) -> str:
    return "-" if n_bytes is None else f"{n_bytes / GiB:,.2f} GiB"


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        t.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        t.add_row(*("-" if v is None else str(v) for v in row))
    return t


def print_rows_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(columns)
    w.writerows(rows)
    return buf.getvalue()
