"""`vramplan sglang ...`: SGLang's own launch flags, plus --gpu/--gpu-memory/--engine-version/--json."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def render_prediction(data: dict[str, Any], json_out: bool) -> None:
    """JSON (same keys as `vramplan vllm --json`) or a short table of the engine's startup figures."""
    from vramplan.render import console, table, to_json

    if json_out:
        typer.echo(to_json(data))
        return
    rows = [
        (k, "-" if v is None else (f"{v:,.3f}" if isinstance(v, float) else str(v)))
        for k, v in data.items()
        if k not in ("settings", "extra", "assumptions", "errors", "fixes")
    ]
    rows += [
        (k, f"{v:,.2f}" if isinstance(v, float) else str(v))
        for k, v in data.get("extra", {}).items()
        if not isinstance(v, (list, dict))
    ]
    out = console()
    out.print(
        table(f"{data['engine']} {data['engine_version']} (per GPU)", ["figure", "value"], rows)
    )
    for title in ("errors", "fixes", "assumptions"):
        for line in data.get(title, []):
            out.print(f"{title[:-1]}: {line}")


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
    ) -> None:
        from importlib import import_module

        module, _, function = predict_path.partition(":")
        predict: Callable[..., Any] = getattr(import_module(module), function)
        result = predict(list(ctx.args), gpu, gpu_memory=gpu_memory, engine_version=engine_version)
        render_prediction(result.to_dict(), json_out)

    command.__doc__ = f"Predict {name}'s startup memory from its own launch flags (unknown flags are listed as ignored)."
    return command


def register(app: typer.Typer) -> None:
    app.command("sglang", context_settings=PASS_THROUGH)(
        engine_command("vramplan.engines.sglang:predict_sglang", "SGLang")
    )
