"""`vramplan sglang ...`: SGLang's own launch flags, plus --gpu/--gpu-memory/--engine-version/--json."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from vramplan.render import CHECK_HELP, CSV_HELP

PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def render_prediction(
    data: dict[str, Any], json_out: bool, csv_out: bool = False, check: bool = False
) -> None:
    """JSON (same keys as `vramplan vllm --json`), CSV, or a table of the engine's startup figures."""
    from vramplan.render import check_exit, emit, engine_view

    emit(engine_view(data), data, json_out=json_out, csv_out=csv_out)
    check_exit(check, bool(data.get("starts")))


def engine_command(predict_path: str, name: str) -> Callable[..., None]:
    """A command that forwards unknown args (the engine's flags) to ``module:function``.

    The engine module is imported when the command runs, so `vramplan --help` stays fast.
    """

    def command(
        ctx: typer.Context,
        gpu: Annotated[
            str | None, typer.Option("--gpu", help="GPU name (see `vramplan gpus`).")
        ] = None,
        gpu_memory: Annotated[
            str | None, typer.Option("--gpu-memory", help="GPU memory, e.g. 80GiB.")
        ] = None,
        engine_version: Annotated[
            str | None, typer.Option("--engine-version", help="Engine version to mimic.")
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        csv_out: Annotated[bool, typer.Option("--csv", help=CSV_HELP)] = False,
        check: Annotated[bool, typer.Option("--check", help=CHECK_HELP)] = False,
    ) -> None:
        from importlib import import_module

        module, _, function = predict_path.partition(":")
        predict: Callable[..., Any] = getattr(import_module(module), function)
        result = predict(list(ctx.args), gpu, gpu_memory=gpu_memory, engine_version=engine_version)
        render_prediction(result.to_dict(), json_out, csv_out, check)

    command.__doc__ = f"Predict {name}'s startup memory from its own launch flags (unknown flags are listed as ignored)."
    return command


def register(app: typer.Typer) -> None:
    app.command("sglang", context_settings=PASS_THROUGH)(
        engine_command("vramplan.engines.sglang:predict_sglang", "SGLang")
    )
