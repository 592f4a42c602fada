"""`vramplan perf`: latency and throughput of one model on one GPU layout under one load pattern."""

from __future__ import annotations

from typing import Annotated

import typer

from vramplan.render import CSV_HELP, View, emit


def register(app: typer.Typer) -> None:
    app.command("perf")(perf_command)


def perf_command(
    model: Annotated[str, typer.Argument(help="Catalogue name, config path or Hub id.")],
    gpu: Annotated[str, typer.Option("--gpu", help="GPU name (H100-80GB, A100-80GB, L40S, ...).")],
    input_len: Annotated[int, typer.Option("--input-len", help="Prompt tokens per request.")],
    output_len: Annotated[int, typer.Option("--output-len", help="Generated tokens per request.")],
    engine: Annotated[
        str, typer.Option("--engine", help="vllm, sglang, trtllm, llamacpp or tgi.")
    ] = "vllm",
    tensor_parallel_size: Annotated[int, typer.Option("--tensor-parallel-size", "-tp")] = 1,
    pipeline_parallel_size: Annotated[int, typer.Option("--pipeline-parallel-size", "-pp")] = 1,
    dtype: Annotated[str | None, typer.Option("--dtype")] = None,
    quantization: Annotated[str | None, typer.Option("--quantization", "-q")] = None,
    kv_cache_dtype: Annotated[str | None, typer.Option("--kv-cache-dtype")] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Static batch of B requests.")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", help="Closed loop of C clients.")
    ] = None,
    request_rate: Annotated[
        float | None,
        typer.Option("--request-rate", help="Open loop, Poisson arrivals at R req/s."),
    ] = None,
    max_throughput: Annotated[
        bool,
        typer.Option("--max-throughput", help="Batch bounded by KV capacity and max_num_seqs."),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help=CSV_HELP)] = False,
) -> None:
    """Predict TTFT, TPOT, ITL, latency and throughput (roofline + batching + queueing model)."""
    from vramplan.errors import InputError
    from vramplan.perf import perf

    if dtype and quantization:
        raise InputError("give --dtype or --quantization, not both")
    r = perf(
        model,
        gpu,
        input_len=input_len,
        output_len=output_len,
        engine=engine,
        tensor_parallel_size=tensor_parallel_size,
        pipeline_parallel_size=pipeline_parallel_size,
        dtype=dtype,
        quantization=quantization,
        kv_cache_dtype=kv_cache_dtype,
        batch_size=batch_size,
        concurrency=concurrency,
        request_rate=request_rate,
        max_throughput=max_throughput,
    )
    from vramplan.render import plural

    rows = [
        ("TTFT", f"{r.ttft_ms:,.1f} ms"),
        ("TPOT", f"{r.tpot_ms:,.2f} ms"),
        ("ITL", f"{r.itl_ms:,.2f} ms"),
        ("end-to-end latency", f"{r.latency_s:,.2f} s"),
        ("output throughput", f"{r.output_tokens_per_s:,.0f} tokens/s"),
        ("total throughput", f"{r.total_tokens_per_s:,.0f} tokens/s"),
        ("requests", f"{r.requests_per_s:,.3f} requests/s"),
        ("running batch", plural(round(r.batch_size, 2), "sequence")),
        ("decode step", f"{r.decode_step_ms:,.2f} ms ({r.bound}-bound)"),
        ("physical max output", f"{r.physical_max_output_tokens_per_s:,.0f} tokens/s"),
    ]
    gpus = tensor_parallel_size * pipeline_parallel_size
    title = (
        f"{model} on {gpus}x {gpu} · {r.engine} · {r.mode} · "
        f"{plural(input_len, 'token')} in / {plural(output_len, 'token')} out"
    )
    view = View(title, ["figure", "value"], rows, [f"  - {a}" for a in r.assumptions])
    emit(view, r.to_dict(), json_out=json_out, csv_out=csv_out)
