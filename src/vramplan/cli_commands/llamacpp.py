"""`vramplan llamacpp ...`: llama-server flags (-m, -c, -ngl, -fa, -ctk ...), plus --gpu/--json."""

from __future__ import annotations

import typer

from vramplan.cli_commands.sglang import PASS_THROUGH, engine_command


def register(app: typer.Typer) -> None:
    app.command("llamacpp", context_settings=PASS_THROUGH)(
        engine_command("vramplan.engines.llamacpp:predict_llamacpp", "llama.cpp")
    )
