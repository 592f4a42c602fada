"""`vramplan vllm [vllm serve arguments ...] --gpu NAME`: what vLLM will log at startup, and whether it starts."""

from __future__ import annotations

from typing import Any

import typer

_CONTEXT = {
    "allow_extra_args": True,
    "ignore_unknown_options": True,
    "help_option_names": ["--help"],
}


def register(app: typer.Typer) -> None:
    app.command("vllm", context_settings=_CONTEXT)(vllm_command)


def vllm_command(ctx: typer.Context) -> None:
    """Predict vLLM's startup log for a `vllm serve` command line.

    Usage: vramplan vllm [vllm serve] MODEL [vLLM flags ...] --gpu NAME [--gpu-memory SIZE]
    [--engine-version V] [--offline] [--json | --csv] [--check]

    --check: exit 0 when vLLM would start, 3 when it would not.
    """
    from vramplan.engines.base import take_flags
    from vramplan.errors import InputError
    from vramplan.render import check_exit, csv_text, engine_view, to_json
    from vramplan.run import run

    ours, args = take_flags(
        ctx.args,
        ("--gpu", "--gpu-memory", "--engine-version"),
        ("--json", "--offline", "--csv", "--check"),
    )
    data = run(
        "vllm",
        {
            "args": args,
            "gpu": ours.get("--gpu"),
            "gpu_memory": ours.get("--gpu-memory"),
            "engine_version": ours.get("--engine-version"),
            "offline": bool(ours.get("--offline")),
        },
    )
    json_out, csv_out, check = (bool(ours.get(f)) for f in ("--json", "--csv", "--check"))
    if json_out and csv_out:
        raise InputError("give --json or --csv, not both")
    if json_out:
        typer.echo(to_json(data))
    elif csv_out:
        view = engine_view(data)
        typer.echo(csv_text(view.columns, view.rows), nl=False)
    else:
        from vramplan.render import console, print_lines

        print_lines(
            console(), render(data).splitlines()
        )  # wrapped at the terminal width, never cut
    check_exit(bool(check), bool(data["starts"]))


def render(d: dict[str, Any]) -> str:
    from vramplan.render import gib, ratio, render_fix

    s = d["settings"]
    lines = [
        f"vLLM {d['engine_version']} ({s['vllm_generation'].upper()}) · {s['model']} · {s['gpu']} "
        f"({gib(s['gpu_total_gib'])}) · TP {s['tensor_parallel_size']} x PP {s['pipeline_parallel_size']}",
        f"  util {ratio(s['gpu_memory_utilization'], 4)} · max_model_len {s['max_model_len']:,} · "
        f"max_num_seqs {s['max_num_seqs']}",
        f"  max_num_batched_tokens {s['max_num_batched_tokens']:,} · block {s['block_size']} · "
        f"weights {s['quantization'] or s['dtype']} · KV {s['kv_cache_dtype']}",
        "per GPU, as vLLM logs it:",
    ]
    for key, label in (
        ("weights_gib", "Model loading took"),
        ("non_torch_gib", "non-torch memory"),
        ("activation_peak_gib", "activation peak"),
        ("cuda_graph_gib", "CUDA graphs"),
        ("available_kv_cache_gib", "Available KV cache memory"),
    ):
        lines.append(f"  {label:<28}{d[key]:>10.2f} GiB")
    lines.append(
        f"  {'GPU KV cache size':<28}{d['kv_cache_tokens']:>10,} tokens ({d['gpu_blocks']:,} blocks)"
    )
    lines.append(
        f"  {'Maximum concurrency':<28}{d['max_concurrency']:>10.2f}x for {s['max_model_len']:,} tokens per request"
    )
    for purpose, n in (d.get("host_bytes") or {}).items():
        lines.append(f"  {'host: ' + purpose.replace('_', ' '):<28}{n / 2**30:>10.2f} GiB")
    lines.append("starts: yes" if d["starts"] else "starts: NO")
    for e in d["errors"]:
        lines.append(f"  error: {e}")
    for f in d["fixes"]:
        lines.append(f"  fix: {render_fix(f)}")
    if d.get("ignored_flags"):
        lines.append("ignored flags (not modelled): " + " ".join(d["ignored_flags"]))
    for a in d["assumptions"]:
        lines.append(f"assumption: {a}")
    return "\n".join(lines)
