"""`vramplan plan`: the cheapest (or fastest) deployment that serves a workload within latency targets."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from vramplan.cli_options import option
from vramplan.render import CSV_HELP, View, console, emit


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
    output_len: int | None = option(
        "output_len", help="plan: part of --context; default min(256, context/2)."
    ),
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help=CSV_HELP)] = False,
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
        output_len=output_len,
    )
    if json_out or csv_out:
        result = plan(model, context, users, **kw)  # type: ignore[arg-type]
        emit(
            plan_view(result, context, users, rate),
            result.to_dict(),
            json_out=json_out,
            csv_out=csv_out,
        )
        return
    with Progress(transient=True, console=console()) as bar:
        task = bar.add_task("sweeping layouts", total=1)

        def progress(done: int, total: int) -> None:
            bar.update(task, total=total, completed=done)

        result = plan(model, context, users, progress=progress, **kw)  # type: ignore[arg-type]
    emit(plan_view(result, context, users, rate), result.to_dict())


def plan_view(result: Any, context: int, users: int, rate: float | None) -> View:
    """Ranked plans in 9 columns that fit 80 characters (rank, GPUs and layout share one cell)."""
    from vramplan.render import MISSING, plural

    rows = []
    for i, p in enumerate(result.plans, 1):
        rows.append(
            (
                f"{i}. {p.replicas} x "
                + (p.gpu if p.gpus_per_replica == 1 else f"{p.gpus_per_replica}x {p.gpu}")
                + "\n"
                f"TP {p.tensor_parallel_size} PP {p.pipeline_parallel_size}",
                p.precision,
                f"{p.batch_per_replica:,}",
                f"{p.ttft_ms:,.0f} ms",
                f"{p.tpot_ms:,.1f} ms",
                f"{p.tokens_per_s:,.0f}",
                MISSING if p.cost_per_hour is None else f"${p.cost_per_hour:,.2f}",
                MISSING
                if p.cost_per_million_tokens is None
                else f"${p.cost_per_million_tokens:,.2f}",
            )
        )
    title = f"{result.model} · context {plural(context, 'token')} · {plural(users, 'user')}" + (
        f" · {rate:g} req/s" if rate else ""
    )
    notes: list[str] = []
    if result.plans:
        best = result.plans[0]
        notes.append(f"best: {'; '.join(best.strategy)}")
        notes.append(
            f"node: {best.node['host_ram_gib']} GiB RAM, {plural(best.node['cpu_cores'], 'core')}, "
            f"{best.node['nvme_gib']} GiB NVMe per node"
        )
        notes += [f"launch: {line}" for line in best.launch.values()]
    notes.append("assumptions:")
    notes += [f"  - {a}" for a in result.assumptions]
    notes.append(f"{plural(len(result.rejected), 'option')} rejected, e.g.:")
    notes += [f"  - {r['option']}: {r['reason']}" for r in result.rejected[:5]]
    columns = [
        "replicas x GPU",
        "weights",
        "batch",
        "TTFT",
        "TPOT",
        "tok/s",
        "$/h",
        "$/M tok",
    ]
    return View(title, columns, rows, notes)
