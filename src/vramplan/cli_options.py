"""Typer options built from the field table (:mod:`vramplan.scenario_fields`), so `--help` shows the
library's own defaults, units and limits. Values are validated by the core (one clear line on error)."""

from __future__ import annotations

from typing import Any

import typer

from vramplan.scenario_fields import FIELDS


def option(name: str, *, required: bool = False, help: str | None = None) -> Any:
    """``typer.Option`` for field ``name``: its flags, default, and help with unit and range.

    ``required`` makes a field with no default mandatory for one command (``perf --input-len``);
    ``help`` may add command-specific wording in front of the field's own description.
    """
    spec = FIELDS[name]
    text = spec.description if help is None else f"{help} {spec.description}"
    return typer.Option(
        ... if required else spec.default,
        *spec.flags,
        help=text,
        show_default=spec.default is not None and spec.type is not bool,
    )
