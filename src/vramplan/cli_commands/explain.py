"""`vramplan explain LOGFILE|-`: logged vs predicted startup figures with the likely cause of each gap."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

MAX_LOG_BYTES = 64 * 1024 * 1024


def register(app: typer.Typer) -> None:
    app.command("explain")(explain_command)


def explain_command(
    logfile: Annotated[str, typer.Argument(help="Engine startup log file, or - for stdin.")],
    gpu: Annotated[
        str | None,
        typer.Option("--gpu", help="GPU name when the log does not print the total memory."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Explain a vLLM / SGLang / TGI / llama.cpp startup log term by term."""
    from vramplan.errors import FileFormatError
    from vramplan.explain import explain_log, render_text
    from vramplan.render import to_json

    if logfile == "-":
        text = sys.stdin.read(MAX_LOG_BYTES)
    else:
        path = Path(logfile)
        if not path.is_file():
            raise FileFormatError(
                f"{logfile} is not a file: pass a startup log path or - for stdin"
            )
        if path.stat().st_size > MAX_LOG_BYTES:
            raise FileFormatError(
                f"{logfile} is larger than 64 MiB: pass only the startup part of the log"
            )
        text = path.read_bytes().decode("utf-8", errors="replace")
    result = explain_log(text, gpu=gpu)
    typer.echo(to_json(result) if json_out else render_text(result))
