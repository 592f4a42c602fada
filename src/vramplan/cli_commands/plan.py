"""`vramplan plan`: the cheapest (or fastest) deployment that serves a workload within latency targets."""

from __future__ import annotations

from typing import Annotated

import typer

from vramplan.cli_options import option
from vramplan.render import console, table, to_json


def register(app: typer.Typer) -> None:
    app.command("plan")(plan_command)


def plan_command(
    model: Annotated[str, typer.Argument(help="Catalogue name, config path or Hub id.")],
    context: int = option("context", required=True),
    users: int = option("users", required=True),
    rate: Annotated[
        float | None, typer.Option("--rate", help="Requests per second to sustain.")
    ] = None,
    ttft_ms: Annotated[
        float | None, typer.Option("--ttft-ms", help="Time-to-first-token target.")
    ] = None,
    tpot_ms: Annotated[
        float | None, typer.Option("--tpot-ms", help="Time-per-output-token target.")
    ] = None,
    availability: Annotated[
        float | None, typer.Option("--availability", help="e.g. 0.999: adds spare replicas.")
    ] = None,
    gpus: Annotated[
        str | None, typer.Option("--gpus", help="Comma-separated GPU names to consider.")
    ] = None,
    dtype: str | None = option("dtype"),
    quantization: str | None = option("quantization"),
    kv_cache_dtype: str | None = option("kv_cache_dtype"),
    engine: str = option("engine"),
    engine_version: str | None = option("engine_version"),
    criterion: Annotated[
        str, typer.Option("--criterion", help="cost, latency, gpus or throughput.")
    ] = "cost",
    limit: Annotated[int, typer.Option("--limit", help="Plans to show.")] = 10,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Search GPU kind x TP x PP x precision x replicas; rank plans and say why the others were rejected."""
    from rich.progress import Progress

    from vramplan.planner import plan

    gpu_list = [g.strip() for g in gpus.split(",") if g.strip()] if gpus else None
    kw = dict(
        rate=rate,
        ttft_ms=ttft_ms,
        tpot_ms=tpot_ms,
        availability=availability,
        gpus=gpu_list,
        dtype=dtype,
        quantization=quantization,
        engine=engine,
        engine_version=engine_version,
        criterion=criterion,
        kv_cache_dtype=kv_cache_dtype,
        limit=limit,
    )
    if json_out:
        result = plan(model, context, users, **kw)  # type: ignore[arg-type]
        typer.echo(to_json(result.to_dict()))
        return
    with Progress(transient=True, console=console()) as bar:
        task = bar.add_task("sweeping layouts", total=1)

        def progress(done: int, total: int) -> None:
            bar.update(task, total=total, completed=done)

        result = plan(model, context, users, progress=progress, **kw)  # type: ignore[arg-type]
    out = console()
    rows = []
    for i, p in enumerate(result.plans, 1):
        rows.append(
            (
                i,
                f"{p.replicas} x {p.gpus_per_replica}x {p.gpu}",
                f"TP {p.tensor_parallel_size} PP {p.pipeline_parallel_size}",
                p.precision,
                p.batch_per_replica,
                f"{p.ttft_ms:,.0f}",
                f"{p.tpot_ms:,.1f}",
                f"{p.tokens_per_s:,.0f}",
                "-" if p.cost_per_hour is None else f"${p.cost_per_hour:,.2f}",
                "-" if p.cost_per_million_tokens is None else f"${p.cost_per_million_tokens:,.2f}",
            )
        )
    out.print(
        table(
            f"{result.model} · context {context:,} · {users} users"
            + (f" · {rate:g} req/s" if rate else ""),
            [
                "#",
                "GPUs",
                "layout",
                "precision",
                "batch",
                "TTFT ms",
                "TPOT ms",
                "tok/s",
                "$/h",
                "$/M tok",
            ],
            rows,
        )
    )
    if result.plans:
        best = result.plans[0]
        out.print(f"best: {'; '.join(best.strategy)}")
        out.print(
            f"node: {best.node['host_ram_gib']} GiB RAM, {best.node['cpu_cores']} cores, {best.node['nvme_gib']} GiB NVMe per node"
        )
        out.print(f"launch: {best.launch[engine]}")
    out.print(f"{len(result.rejected)} options rejected, e.g.:")
    for r in result.rejected[:5]:
        out.print(f"  - {r['option']}: {r['reason']}")
