"""`vramplan train`: per-GPU memory of fine-tuning or training a model, and the cheapest fixes."""

from __future__ import annotations

from typing import Annotated

import typer

from vramplan.render import CHECK_HELP, CSV_HELP, View, emit


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)


def train_command(
    model: Annotated[
        str | None, typer.Argument(help="Catalogue name, config.json/folder path, or Hub id.")
    ] = None,
    params: Annotated[
        str | None,
        typer.Option("--params", help="Bare parameter count (e.g. 7.5e9): model states only."),
    ] = None,
    method: Annotated[str, typer.Option("--method", help="full, lora or qlora.")] = "full",
    micro_batch: Annotated[
        int, typer.Option("--micro-batch", help="Sequences per micro-batch on each GPU.")
    ] = 1,
    seq_len: Annotated[int, typer.Option("--seq-len", help="Tokens per sequence.")] = 2048,
    gpus: Annotated[
        int, typer.Option("--gpus", help="GPUs in total (data x tensor x pipeline parallel).")
    ] = 1,
    gpu: Annotated[
        str | None, typer.Option("--gpu", help="GPU name (H100-80GB, A100-40GB, RTX-4090).")
    ] = None,
    gpu_memory: Annotated[
        str | None, typer.Option("--gpu-memory", help="GPU memory instead of a name, e.g. 48GB.")
    ] = None,
    zero: Annotated[
        int, typer.Option("--zero", help="ZeRO stage 0-3 over the data-parallel GPUs.")
    ] = 0,
    fsdp: Annotated[
        str | None,
        typer.Option(
            "--fsdp",
            help="FSDP strategy instead of --zero: full_shard (=3), shard_grad_op (=2), no_shard.",
        ),
    ] = None,
    tensor_parallel: Annotated[
        int, typer.Option("--tensor-parallel-size", "-tp", help="Tensor-parallel size.")
    ] = 1,
    pipeline_parallel: Annotated[
        int, typer.Option("--pipeline-parallel-size", "-pp", help="Pipeline-parallel size.")
    ] = 1,
    sequence_parallel: Annotated[
        bool,
        typer.Option(
            "--sequence-parallel/--no-sequence-parallel",
            help="Megatron sequence parallelism (with TP).",
        ),
    ] = False,
    offload: Annotated[
        str, typer.Option("--offload", help="Optimizer states to: none, cpu, nvme.")
    ] = "none",
    offload_params: Annotated[
        bool, typer.Option("--offload-params", help="Also offload parameters (ZeRO-3 only).")
    ] = False,
    recompute: Annotated[
        str, typer.Option("--recompute", help="none, selective or full activation recomputation.")
    ] = "none",
    optimizer: Annotated[
        str,
        typer.Option(
            "--optimizer", help="adamw, adamw-bf16, adamw-8bit, sgd, sgd-momentum, adafactor."
        ),
    ] = "adamw",
    precision: Annotated[
        str,
        typer.Option(
            "--precision", help="mixed (bf16 + fp32 master), mixed-fp32-grads, fp32, bf16."
        ),
    ] = "mixed",
    lora_rank: Annotated[int, typer.Option("--lora-rank", help="LoRA rank r.")] = 16,
    lora_targets: Annotated[
        str,
        typer.Option(
            "--lora-targets", help="q,k,v,o (default), any of gate,up,down, or all-linear."
        ),
    ] = "q,k,v,o",
    adapter_dtype: Annotated[
        str,
        typer.Option(
            "--adapter-dtype", help="LoRA adapter dtype: float32 (peft's default) or bfloat16."
        ),
    ] = "float32",
    flash_attention: Annotated[
        bool,
        typer.Option(
            "--flash-attention/--no-flash-attention", help="Fused attention keeps no s x s scores."
        ),
    ] = True,
    unit: Annotated[str, typer.Option("--unit", help="Display unit: GiB (default) or GB.")] = "GiB",
    json_out: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a table.")
    ] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help=CSV_HELP)] = False,
    check: Annotated[bool, typer.Option("--check", help=CHECK_HELP)] = False,
) -> None:
    """Estimate per-GPU memory to train or fine-tune MODEL (full, LoRA, QLoRA) and what would make it fit."""
    from vramplan.render import check_exit, check_needs_gpu
    from vramplan.training import estimate_training
    from vramplan.units import display_unit, parse_count

    unit = display_unit(unit)
    check_needs_gpu(check, gpu, gpu_memory)

    n_params = parse_count(params, "--params") if params is not None else None
    result = estimate_training(
        model,
        params=n_params,
        gpu=gpu,
        gpu_memory=gpu_memory,
        method=method,
        micro_batch=micro_batch,
        seq_len=seq_len,
        gpus=gpus,
        zero=zero,
        fsdp=fsdp,
        tensor_parallel=tensor_parallel,
        pipeline_parallel=pipeline_parallel,
        sequence_parallel=sequence_parallel,
        offload=offload,
        offload_params=offload_params,
        recompute=recompute,
        optimizer=optimizer,
        precision=precision,
        lora_rank=lora_rank,
        lora_targets=lora_targets,
        adapter_dtype=adapter_dtype,
        flash_attention=flash_attention,
    )
    data = result.to_dict()
    emit(_view(data, unit), data, json_out=json_out, csv_out=csv_out)
    check_exit(check, bool(data["fits"]))


def _view(d: dict, unit: str) -> View:
    from vramplan.render import plural, size

    p = d["per_gpu"]
    title = (
        f"{d['model']} · {d['method']} · {d['optimizer']} ({d['precision']}) · micro-batch "
        f"{plural(d['micro_batch'], 'sequence')} x {plural(d['seq_len'], 'token')} · "
        f"ZeRO {d['zero_stage']} · recompute {d['recompute']}"
    )
    rows = [
        (k, size(p[f"{k}_bytes"], unit))
        for k in ("weights", "gradients", "optimizer", "activations", "overhead", "total")
    ]
    notes = [
        f"parameters: {d['params']:,}   trainable: {d['trainable_params']:,}   layout: "
        f"{plural(d['gpus'], 'GPU')} = DP {d['data_parallel']} x TP {d['tensor_parallel']} x "
        f"PP {d['pipeline_parallel']}"
    ]
    if p["offloaded_to_cpu_bytes"]:
        notes.append(f"offloaded to host: {size(p['offloaded_to_cpu_bytes'], unit)}")
    if p["pageable_bytes"]:
        notes.append(f"pageable optimizer states: {size(p['pageable_bytes'], unit)}")
    if d["gpu"]:
        verdict = "fits" if d["fits"] else "does not fit"
        max_mb = "-" if d["max_micro_batch"] is None else plural(d["max_micro_batch"], "sequence")
        max_len = "-" if d["max_seq_len"] is None else plural(d["max_seq_len"], "token")
        notes.append(
            f"GPU: {d['gpu']} ({size(d['gpu_memory_bytes'], unit)}): {verdict}; max micro-batch at "
            f"{plural(d['seq_len'], 'token')}: {max_mb}; max sequence length at micro-batch "
            f"{d['micro_batch']}: {max_len}"
        )
    notes += [
        f"  fix: {fix['flag']}  ({fix['change']}; {size(fix['total_bytes'], unit)} per GPU; "
        f"cost: {fix['cost']})"
        for fix in d["fixes"]
    ]
    notes.append("assumptions:")
    notes += [f"  - {a}" for a in d["assumptions"]]
    return View(title, ["component", "per GPU"], rows, notes)
