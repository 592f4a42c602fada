"""`vramplan perf`: latency and throughput of one model on one GPU layout under one load pattern."""

from __future__ import annotations

from typing import Annotated

import typer

from vramplan.cli_options import option
from vramplan.render import CSV_HELP, View, emit


def register(app: typer.Typer) -> None:
    app.command("perf")(perf_command)


def perf_command(
    model: Annotated[str, typer.Argument(help="Catalogue name, config path or Hub id.")],
    gpu: str = option("gpu", required=True),
    input_len: int | None = option("input_len"),
    output_len: int | None = option("output_len"),
    dataset: str | None = option("dataset"),
    engine: str = option("engine"),
    engine_version: str | None = option("engine_version"),
    tensor_parallel_size: int | None = option("tensor_parallel_size"),
    pipeline_parallel_size: int | None = option("pipeline_parallel_size"),
    dtype: str | None = option("dtype"),
    quantization: str | None = option("quantization"),
    kv_cache_dtype: str | None = option("kv_cache_dtype"),
    max_model_len: int | None = option(
        "max_model_len", help="perf: input-len + output-len when not given."
    ),
    max_num_seqs: int | None = option("max_num_seqs"),
    max_num_batched_tokens: int | None = option("max_num_batched_tokens"),
    gpu_memory_utilization: float | None = option("gpu_memory_utilization"),
    enforce_eager: bool = option("enforce_eager"),
    batch_size: int | None = option("batch_size"),
    concurrency: int | None = option("concurrency"),
    request_rate: float | None = option("request_rate"),
    prefix_hit_rate: float | None = option("prefix_hit_rate"),
    max_throughput: Annotated[
        bool,
        typer.Option("--max-throughput", help="Batch bounded by KV capacity and max_num_seqs."),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help=CSV_HELP)] = False,
) -> None:
    """Predict TTFT, TPOT, ITL, latency and throughput (roofline + batching + queueing model)."""
    from vramplan.run import run

    d = run(
        "perf",
        {
            "model": model,
            "gpu": gpu,
            "input_len": input_len,
            "output_len": output_len,
            "dataset": dataset,
            "engine": engine,
            "engine_version": engine_version,
            "tensor_parallel_size": tensor_parallel_size,
            "pipeline_parallel_size": pipeline_parallel_size,
            "dtype": dtype,
            "quantization": quantization,
            "kv_cache_dtype": kv_cache_dtype,
            "max_model_len": max_model_len,
            "max_num_seqs": max_num_seqs,
            "max_num_batched_tokens": max_num_batched_tokens,
            "gpu_memory_utilization": gpu_memory_utilization,
            "enforce_eager": enforce_eager,
            "batch_size": batch_size,
            "concurrency": concurrency,
            "request_rate": request_rate,
            "max_throughput": max_throughput,
            "prefix_hit_rate": prefix_hit_rate,
        },
    )
    from vramplan.render import plural

    rows = [
        ("TTFT", f"{d['ttft_ms']:,.1f} ms"),
        ("TPOT", f"{d['tpot_ms']:,.2f} ms"),
        ("ITL", f"{d['itl_ms']:,.2f} ms"),
        ("end-to-end latency", f"{d['latency_s']:,.2f} s"),
        ("output throughput", f"{d['output_tokens_per_s']:,.0f} tokens/s"),
        ("total throughput", f"{d['total_tokens_per_s']:,.0f} tokens/s"),
        ("requests", f"{d['requests_per_s']:,.3f} requests/s"),
        ("running batch", plural(round(d["batch_size"], 2), "sequence")),
        ("KV cache", plural(d["kv_cache_tokens"], "token")),
        ("decode step", f"{d['decode_step_ms']:,.2f} ms ({d['bound']}-bound)"),
        ("physical max output", f"{d['physical_max_output_tokens_per_s']:,.0f} tokens/s"),
    ]
    ds = d.get("dataset")
    if ds:
        i, o = ds["input_tokens"], ds["output_tokens"]
        rows[4:4] = [
            ("latency p50 / p99", f"{d['latency_p50_s']:,.2f} s / {d['latency_p99_s']:,.2f} s"),
        ]
        rows += [
            ("input tokens", f"mean {i['mean']:,.0f} · p50 {i['p50']:,.0f} · p99 {i['p99']:,.0f}"),
            ("output tokens", f"mean {o['mean']:,.0f} · p50 {o['p50']:,.0f} · p99 {o['p99']:,.0f}"),
        ]
        lengths = f"dataset {ds['name']}"
    else:
        lengths = f"{plural(d['input_len'], 'token')} in / {plural(d['output_len'], 'token')} out"
    gpus = (tensor_parallel_size or 1) * (pipeline_parallel_size or 1)
    title = f"{model} on {gpus}x {gpu} · {d['engine']} · {d['mode']} · {lengths}"
    notes = [f"  - {a}" for a in d["assumptions"]]
    if ds:
        notes.append(f"  - lengths: {ds['source']}")
    view = View(title, ["figure", "value"], rows, notes)
    emit(view, d, json_out=json_out, csv_out=csv_out)
