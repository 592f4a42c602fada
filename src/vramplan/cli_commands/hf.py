"""`vramplan hf MODEL ...`: peak memory of transformers generate()."""

from __future__ import annotations

from typing import Annotated

import typer

from vramplan.render import CHECK_HELP, CSV_HELP


def register(app: typer.Typer) -> None:
    app.command("hf")(hf_command)


def hf_command(
    model: Annotated[str, typer.Argument(help="Catalogue name, config.json folder or Hub id.")],
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Prompts per generate() call.")
    ] = 1,
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", help="Tokens generated per prompt.")
    ] = 128,
    prompt_len: Annotated[
        int, typer.Option("--prompt-len", help="Longest prompt (the batch is padded to it).")
    ] = 512,
    cache: Annotated[str, typer.Option("--cache", help="dynamic or static.")] = "dynamic",
    num_beams: Annotated[int, typer.Option("--num-beams", help="Beam search width.")] = 1,
    attn_implementation: Annotated[
        str, typer.Option("--attn-implementation", help="eager, sdpa or flash_attention_2.")
    ] = "sdpa",
    dtype: Annotated[
        str | None, typer.Option("--dtype", help="Weight dtype (default: the config's).")
    ] = None,
    gpu: Annotated[
        str | None, typer.Option("--gpu", help="GPU name (see `vramplan gpus`).")
    ] = None,
    gpu_memory: Annotated[
        str | None, typer.Option("--gpu-memory", help="GPU memory, e.g. 24GiB.")
    ] = None,
    engine_version: Annotated[
        str | None, typer.Option("--engine-version", help="transformers version to mimic.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help=CSV_HELP)] = False,
    check: Annotated[bool, typer.Option("--check", help=CHECK_HELP)] = False,
) -> None:
    """Peak GPU memory of model.generate(): weights + cache + prefill activations."""
    from vramplan.cli_commands.sglang import render_prediction
    from vramplan.engines.hf import predict_hf

    result = predict_hf(
        model,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        prompt_len=prompt_len,
        cache=cache,  # type: ignore[arg-type]  # predict_hf refuses other values in one line
        num_beams=num_beams,
        attn_implementation=attn_implementation,  # type: ignore[arg-type]
        dtype=dtype,
        gpu=gpu,
        gpu_memory=gpu_memory,
        engine_version=engine_version,
    )
    render_prediction(result.to_dict(), json_out, csv_out, check)
