"""`vramplan estimate`, `vramplan models`, `vramplan gpus`."""

from __future__ import annotations

from typing import Annotated

import typer

from vramplan.cli_options import option
from vramplan.render import CHECK_HELP, CSV_HELP, View, emit, render_fix


def register(app: typer.Typer) -> None:
    app.command("estimate")(estimate_command)
    app.command("models")(models_command)
    app.command("gpus")(gpus_command)


def estimate_command(
    ctx: typer.Context,
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
    dtype: str | None = option("dtype"),
    quantization: str | None = option("quantization"),
    kv_cache_dtype: str | None = option("kv_cache_dtype"),
    context: int | None = option("context"),
    users: int = option("users"),
    batch_tokens: int | None = option("batch_tokens"),
    gpu: str | None = option("gpu"),
    gpu_memory: str | None = option("gpu_memory"),
    tensor_parallel_size: int | None = option("tensor_parallel_size"),
    pipeline_parallel_size: int | None = option("pipeline_parallel_size"),
    block_size: int | None = option("block_size"),
    method: Annotated[
        str, typer.Option("--method", help="detailed or rule-of-thumb.")
    ] = "detailed",
    unit: Annotated[str, typer.Option("--unit", help="Display unit: GiB (default) or GB.")] = "GiB",
    json_out: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a table.")
    ] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help=CSV_HELP)] = False,
    check: Annotated[bool, typer.Option("--check", help=CHECK_HELP)] = False,
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
    from vramplan.render import check_exit, check_needs_gpu
    from vramplan.units import display_unit, parse_count

    unit = display_unit(unit)
    check_needs_gpu(check, gpu, gpu_memory)

    if method not in ("detailed", "rule-of-thumb"):
        from vramplan.errors import InputError

        raise InputError(f"unknown --method {method!r}: use detailed or rule-of-thumb")
    n_params = parse_count(params, "--params") if params is not None else None
    if model is None and n_params is not None and method == "detailed":
        method = "rule-of-thumb"
    # by name: typer vendors its own click, and importing the real one costs ~40 ms per call
    source = ctx.get_parameter_source("context")
    if source is not None and source.name == "DEFAULT":
        context = None  # the table's default, shortened by the estimator to the model's maximum
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
    emit(breakdown_view(data, unit), data, json_out=json_out, csv_out=csv_out)
    check_exit(check, bool(data["fits"]))


def breakdown_view(d: dict, unit: str) -> View:
    """The estimate as a component x (per GPU, all GPUs) table with its verdict and assumptions."""
    from vramplan.render import plural, size

    gpus = d["gpus"]
    title = (
        f"{d['model']} · {d['precision']} weights · KV {d['kv_cache_dtype']} · "
        f"{plural(d['users'], 'user')} x {plural(d['context'], 'token')} · {d['method']}"
    )
    rows: list[tuple[str, str, str]] = [
        (
            name.replace("_", " "),
            size(d["per_gpu"][f"{name}_bytes"], unit),
            size(d[f"{name}_bytes"], unit),
        )
        for name in ("weights", "kv_cache", "state_cache", "activations", "overhead")
        if name != "state_cache" or d.get("state_cache_bytes")  # recurrent state: hybrids only
    ]
    rows.append(("total", size(d["per_gpu"]["total_bytes"], unit), size(d["total_bytes"], unit)))
    notes = [
        f"parameters: {d['params']:,}   KV per token: {plural(d['kv_bytes_per_token'], 'byte')} "
        f"({d['kv_bytes_per_token'] / 1024:,.1f} KiB, all layers)"
        + (
            f"   state per sequence: {size(d['state_bytes_per_sequence'], 'MiB', 1)}"
            if d.get("state_bytes_per_sequence")
            else ""
        ),
        f"layout: {plural(gpus, 'GPU')} = TP {d['tensor_parallel_size']} x PP {d['pipeline_parallel_size']}",
    ]
    if d.get("gpu"):
        verdict = "fits" if d["fits"] else "does not fit"
        if d["max_context"] is None:  # rule of thumb: no KV cache, so no user or context limit
            limits = f"{plural(gpus, 'GPU')} by the rule of thumb (no KV cache, so no user or context limit)"
        else:
            max_users = "-" if d["max_users"] is None else plural(d["max_users"], "user")
            limits = (
                f"max at {plural(d['context'], 'token')}: {max_users}; "
                f"max context at {plural(d['users'], 'user')}: {plural(d['max_context'], 'token')}"
            )
        notes.append(
            f"GPU: {d['gpu']} ({size(d['gpu_memory_bytes'], unit)} usable as CUDA reports it): "
            f"{verdict}; {limits}"
        )
    notes += [f"  cannot run: {reason}" for reason in d.get("cannot_run", [])]
    if d.get("shortfall_bytes"):
        notes.append(
            f"  needs {size(d['shortfall_bytes'], unit)} more per GPU than the "
            f"{size(d['gpu_memory_bytes'], unit)} available"
        )
    notes += [f"  fix: {render_fix(fix)}" for fix in d.get("fixes", [])]
    if d.get("rule_of_thumb_bytes") and d["method"] == "detailed":
        notes.append(
            f"rule of thumb (P x 4 / (32/Q) x 1.2): {size(d['rule_of_thumb_bytes'], 'GB', 1)} "
            f"= {size(d['rule_of_thumb_bytes'], 'GiB', 1)}, with no KV cache in it"
        )
    elif d["method"] == "rule-of-thumb":
        notes.append(f"rule of thumb: {size(d['rule_of_thumb_bytes'], 'GB', 1)}")
    notes.append("assumptions:")
    notes += [f"  - {a}" for a in d["assumptions"]]
    total_header = "1 GPU" if gpus == 1 else f"all {gpus} GPUs"
    return View(title, ["component", "per GPU", total_header], rows, notes)


def models_command(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help=CSV_HELP)] = False,
) -> None:
    """List the bundled model catalogue with parameter counts and aliases."""
    from vramplan.catalogue_rows import model_rows
    from vramplan.render import number

    rows = model_rows()
    view = View(
        f"vramplan model catalogue ({len(rows)} models)",
        ["model", "aliases", "type", "params", "active", "layers", "KV heads", "max context"],
        [
            (
                r["id"],
                ", ".join(r["aliases"]) or "-",
                r["model_type"],
                f"{r['params'] / 1e9:,.2f} B",
                f"{r['active_params'] / 1e9:,.2f} B",
                number(r["layers"]),
                number(r["kv_heads"]),
                number(r["max_context"]),
            )
            for r in rows
        ],
        ["params and active are billions of parameters (active: per token, for MoE models)."],
    )
    emit(view, rows, json_out=json_out, csv_out=csv_out)


def gpus_command(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help=CSV_HELP)] = False,
) -> None:
    """List the GPU catalogue: memory as CUDA reports it, bandwidth, bf16 FLOP/s, reference price."""
    from vramplan.catalogue_rows import gpu_rows
    from vramplan.render import size

    rows = gpu_rows()
    view = View(
        "GPU catalogue",
        ["GPU", "memory (CUDA)", "bandwidth", "bf16 dense", "$/h (ref.)"],
        [
            (
                r["name"],
                size(r["memory_bytes"]),
                f"{r['memory_bandwidth_bytes_per_s'] / 1e12:.2f} TB/s"
                if r["memory_bandwidth_bytes_per_s"]
                else "-",
                f"{r['bf16_flops'] / 1e12:,.0f} TFLOP/s" if r["bf16_flops"] else "-",
                "-" if r["price_per_hour_usd"] is None else f"${r['price_per_hour_usd']:,.2f}",
            )
            for r in rows
        ],
    )
    emit(view, rows, json_out=json_out, csv_out=csv_out)
