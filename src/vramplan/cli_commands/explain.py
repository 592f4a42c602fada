"""`vramplan explain LOGFILE|- [--model ...] [engine flags ...]`: logged vs predicted startup figures.

Flags the command does not know are the engine's own launch flags (``--max-model-len 8192`` for vLLM,
``--mem-fraction-static 0.9`` for SGLang, ``-c 8192`` for llama.cpp); they fill in what the log
does not print.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from vramplan.render import CSV_HELP

MAX_LOG_BYTES = 64 * 1024 * 1024
PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def register(app: typer.Typer) -> None:
    app.command("explain", context_settings=PASS_THROUGH)(explain_command)


def explain_command(
    ctx: typer.Context,
    logfile: Annotated[str, typer.Argument(help="Engine startup log file, or - for stdin.")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Model when the log does not name it: catalogue name, config.json folder, Hub id or .gguf.",
        ),
    ] = None,
    gpu: Annotated[
        str | None,
        typer.Option("--gpu", help="GPU name when the log does not print the total memory."),
    ] = None,
    gpu_memory: Annotated[
        str | None, typer.Option("--gpu-memory", help="GPU memory instead of a name, e.g. 80GiB.")
    ] = None,
    engine_version: Annotated[
        str | None,
        typer.Option("--engine-version", help="Engine version when the log does not print it."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help=CSV_HELP)] = False,
) -> None:
    """Explain a vLLM / SGLang / TGI / llama.cpp startup log term by term.

    Any other flag is read as the engine's own launch flag (e.g. --max-model-len 8192,
    --mem-fraction-static 0.9, -c 8192) for settings the log does not print.
    """
    from vramplan.errors import FileFormatError
    from vramplan.explain import explain_log
    from vramplan.render import emit, explain_view

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
    result = explain_log(
        text,
        gpu=gpu,
        gpu_memory=gpu_memory,
        model=model,
        engine_version=engine_version,
        flags=list(ctx.args),
    )
    emit(explain_view(result), result, json_out=json_out, csv_out=csv_out)
