"""`vramplan tgi ...`: text-generation-launcher flags, plus --gpu/--gpu-memory/--engine-version/--json."""

from __future__ import annotations

import typer

from vramplan.cli_commands.sglang import PASS_THROUGH, engine_command


def register(app: typer.Typer) -> None:
    app.command("tgi", context_settings=PASS_THROUGH)(
        engine_command("vramplan.engines.tgi:predict_tgi", "TGI")
    )
