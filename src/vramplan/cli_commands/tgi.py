"""`vramplan tgi ...`: text-generation-launcher flags, plus --gpu/--gpu-memory/--engine-version/--json."""

from __future__ import annotations

import typer

from vramplan.cli_commands.sglang import PASS_THROUGH, engine_command


def register(app: typer.Typer) -> None:
    from vramplan.engines.tgi import predict_tgi

    app.command("tgi", context_settings=PASS_THROUGH)(engine_command(predict_tgi, "TGI"))
