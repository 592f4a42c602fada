"""`vramplan estimate`, `vramplan models`, `vramplan gpus`."""

from __future__ import annotations

from typing import Annotated

import typer

from vramplan.render import console, gib_cell, table, to_json


def register(app: typer.Typer) -> None:
    app.command("estimate")(estimate_command)
    app.command("models")(models_command)
    app.command("gpus")(gpus_command)


def estimate_command(
    model: Annotated[
        str | None,
        typer.Argument(
            help="Catalogue name (e.g. llama-3.1-8b), config.json/folder/.safetensors/.gguf path, or Hub id."
        ),
    ] = None,
    params: Annotated[
        str | None,
        typer.Option("--params", help="Bare parameter count (e.g. 70e9) for the rule of thumb."),
    ] = None,
    bits: Annotated[
        float | None, typer.Option("--bits", help="Bits per weight for the rule of thumb (Q).")
    ] = None,
    dtype: Annotated[
        str | None,
        typer.Option("--dtype", help="Weight dtype: auto, fp32, fp16, bf16, fp8, int8, int4."),
    ] = None,
    quantization: Annotated[
        str | None,
        typer.Option(
            "--quantization",
            "-q",
            help="fp8, w8a8, w4a16, awq, gptq, nf4, bnb-8bit, mxfp4, or a GGUF type (Q4_K_M).",
        ),
    ] = None,
    kv_cache_dtype: Annotated[
        str | None, typer.Option("--kv-cache-dtype", help="auto, fp16, bf16, fp8, fp8_e5m2.")
    ] = None,
    context: Annotated[
        int | None,
        typer.Option(
            "--context",
            help="Tokens per sequence (prompt + output) held in the KV cache; default 4096, or the model's maximum if shorter.",
        ),
    ] = None,
    users: Annotated[int, typer.Option("--users", help="Concurrent sequences.")] = 1,
    batch_tokens: Annotated[
        int | None,
        typer.Option(
            "--batch-tokens",
            help="Tokens per forward pass (chunked-prefill budget); default min(context x users, 8192).",
        ),
    ] = None,
    gpu: Annotated[
        str | None,
        typer.Option(
            "--gpu",
            help="GPU name as nvidia-smi prints it or a short form (H100-80GB, A100-40GB, RTX-4090).",
        ),
    ] = None,
    gpu_memory: Annotated[
        str | None,
        typer.Option("--gpu-memory", help="GPU memory instead of a name, e.g. 24GiB."),
    ] = None,
    tensor_parallel_size: Annotated[
        int | None,
        typer.Option(
            "--tensor-parallel-size", "-tp", help="TP size; default: fewest GPUs that fit."
        ),
    ] = None,
    pipeline_parallel_size: Annotated[
        int | None, typer.Option("--pipeline-parallel-size", "-pp", help="PP size.")
    ] = None,
    block_size: Annotated[
        int | None,
        typer.Option(
            "--block-size", help="Paged KV block size in tokens (rounds each sequence up)."
        ),
    ] = None,
    method: Annotated[
        str, typer.Option("--method", help="detailed or rule-of-thumb.")
    ] = "detailed",
    unit: Annotated[str, typer.Option("--unit", help="Display unit: GiB (default) or GB.")] = "GiB",
    json_out: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a table.")
    ] = False,
    plot: Annotated[
        str | None,
        typer.Option("--plot", help="Also write the breakdown chart to this .png or .svg file."),
    ] = None,
    allow_long_context: Annotated[
        bool,
        typer.Option(
            "--allow-long-context",
            help="Size a context beyond the model's maximum (like VLLM_ALLOW_LONG_MAX_MODEL_LEN=1).",
        ),
    ] = False,
) -> None:
    """Estimate GPU memory for serving MODEL: weights, KV cache, activations, overheads, GPU count."""
    from vramplan.estimator import estimate
    from vramplan.units import display_unit, parse_count

    unit = display_unit(unit)

    if method not in ("detailed", "rule-of-thumb"):
        from vramplan.errors import InputError

        raise InputError(f"unknown --method {method!r}: use detailed or rule-of-thumb")
    n_params = parse_count(params, "--params") if params is not None else None
    if model is None and n_params is not None and method == "detailed":
        method = "rule-of-thumb"
    result = estimate(
        model,
        params=n_params,
        bits=bits,
        dtype=dtype,
        quantization=quantization,
        kv_cache_dtype=kv_cache_dtype,
        context=context,
        users=users,
        batch_tokens=batch_tokens,
        gpu=gpu,
        gpu_memory=gpu_memory,
        tensor_parallel_size=tensor_parallel_size,
        pipeline_parallel_size=pipeline_parallel_size,
        method=method,  # type: ignore[arg-type]
        block_size=block_size,
        allow_long_context=allow_long_context,
    )
    data = result.to_dict()
    if plot:
        from vramplan.plot import plot_breakdown

        plot_breakdown(data, plot)
    if json_out:
        typer.echo(to_json(data))
        return
    _print_breakdown(data, unit)


def _fmt(n: int | None, unit: str) -> str:
    from vramplan.units import format_bytes

    return "-" if n is None else format_bytes(n, "GB" if unit.upper() == "GB" else "GiB")


def _print_breakdown(d: dict, unit: str) -> None:
    out = console()
    gpus = d["gpus"]
    title = (
        f"{d['model']} · {d['precision']} weights · KV {d['kv_cache_dtype']} · "
        f"{d['users']} x {d['context']:,} tokens · {d['method']}"
    )
    rows = [
        (
            name.replace("_", " "),
            _fmt(d["per_gpu"][f"{name}_bytes"], unit),
            _fmt(d[f"{name}_bytes"], unit),
        )
        for name in ("weights", "kv_cache", "activations", "overhead")
    ]
    rows.append(("total", _fmt(d["per_gpu"]["total_bytes"], unit), _fmt(d["total_bytes"], unit)))
    out.print(table(title, ["component", "per GPU", f"all {gpus} GPU(s)"], rows))
    out.print(
        f"parameters: {d['params']:,}   KV per token: {d['kv_bytes_per_token']:,} B "
        f"({d['kv_bytes_per_token'] / 1024:,.1f} KiB, all layers)"
    )
    out.print(
        f"layout: {gpus} GPU(s) = TP {d['tensor_parallel_size']} x PP {d['pipeline_parallel_size']}"
    )
    if d.get("gpu"):
        verdict = "[green]fits[/green]" if d["fits"] else "[red]does not fit[/red]"
        out.print(
            f"GPU: {d['gpu']} ({_fmt(d['gpu_memory_bytes'], unit)} usable as CUDA reports it): {verdict}; "
            + (
                f"max users at this context: {d['max_users']}, max context at {d['users']} users: {d['max_context']:,}"
                if d["max_context"] is not None
                else f"{d['gpus']} GPU(s) by the rule of thumb (no KV cache, so no user or context limit)"
            )
        )
    for fix in d.get("fixes", []):
        out.print(f"  fix: {fix}")
    if d.get("rule_of_thumb_bytes") and d["method"] == "detailed":
        out.print(
            f"rule of thumb (P x 4 / (32/Q) x 1.2): {d['rule_of_thumb_bytes'] / 1e9:,.1f} GB "
            f"= {d['rule_of_thumb_bytes'] / 2**30:,.1f} GiB, with no KV cache in it"
        )
    elif d["method"] == "rule-of-thumb":
        out.print(f"rule of thumb: {d['rule_of_thumb_bytes'] / 1e9:,.1f} GB")
    out.print("assumptions:")
    for a in d["assumptions"]:
        out.print(f"  - {a}")


def models_command(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the bundled model catalogue with parameter counts and aliases."""
    from vramplan.catalogue_rows import model_rows

    rows = model_rows()
    if json_out:
        typer.echo(to_json(rows))
        return
    console().print(
        table(
            "vramplan model catalogue",
            ["model", "type", "params", "active", "layers", "KV heads", "max context"],
            [
                (
                    r["id"],
                    r["model_type"],
                    f"{r['params'] / 1e9:,.2f} B",
                    f"{r['active_params'] / 1e9:,.2f} B",
                    r["layers"],
                    r["kv_heads"],
                    f"{r['max_context']:,}",
                )
                for r in rows
            ],
        )
    )


def gpus_command(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the GPU catalogue: memory as CUDA reports it, bandwidth, bf16 FLOP/s, reference price."""
    from vramplan.catalogue_rows import gpu_rows

    rows = gpu_rows()
    if json_out:
        typer.echo(to_json(rows))
        return
    console().print(
        table(
            "GPU catalogue",
            ["GPU", "memory (CUDA)", "bandwidth", "bf16 dense", "$/h (ref.)"],
            [
                (
                    r["name"],
                    gib_cell(r["memory_bytes"]),
                    f"{r['memory_bandwidth_bytes_per_s'] / 1e12:.2f} TB/s"
                    if r["memory_bandwidth_bytes_per_s"]
                    else None,
                    f"{r['bf16_flops'] / 1e12:,.0f} TFLOP/s" if r["bf16_flops"] else None,
                    r["price_per_hour_usd"],
                )
                for r in rows
            ],
        )
    )
