"""`vramplan simulate`: replay a request workload through a KV-cache allocator on a model's real pool.

The pool comes from the core estimate (``simulate.adapter.kv_budget``), so the simulation answers
"what batch, throughput and fragmentation would this model see on this GPU", not a textbook setup.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vramplan.errors import InputError
from vramplan.render import console, table, to_json

if TYPE_CHECKING:
    from vramplan.simulate import SimulationConfig, SimulationResult
    from vramplan.simulate.adapter import KVBudget


#: (JSON key, table label, format) for the metrics table, in reading order.
ROWS: tuple[tuple[str, str, str], ...] = (
    ("token_state_share", "token states", "pct"),
    ("reserved_share", "reserved", "pct"),
    ("internal_fragmentation_share", "internal frag.", "pct"),
    ("external_fragmentation_share", "external frag.", "pct"),
    ("free_share", "free", "pct"),
    ("mean_batch_size", "mean batch", "f2"),
    ("throughput_tokens_per_s", "output tok/s", "f1"),
    ("requests_completed", "completed", "int"),
    ("requests_rejected", "rejected", "int"),
    ("preemptions", "preemptions", "int"),
    ("swapped_bytes", "swapped", "gib"),
    ("ttft_ms_p50", "TTFT p50 (ms)", "f1"),
    ("ttft_ms_p99", "TTFT p99 (ms)", "f1"),
    ("tpot_ms_p50", "TPOT p50 (ms)", "f1"),
    ("latency_s_p50", "latency p50 (s)", "f2"),
    ("latency_s_p99", "latency p99 (s)", "f2"),
    ("sharing_saving", "sharing saving", "pct"),
    ("simulated_s", "simulated time (s)", "f1"),
    ("events_per_s", "sim events/s", "int"),
)


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_command)


def simulate_command(
    model: Annotated[
        str,
        typer.Argument(help="Catalogue name (e.g. opt-13b), config.json/folder path, or Hub id."),
    ],
    gpu: Annotated[str, typer.Option("--gpu", help="GPU name (A100-40GB, H100-80GB, ...).")],
    workload: Annotated[
        str,
        typer.Option(
            "--workload", help="sharegpt, alpaca, or a .csv/.jsonl file with prompt_len,output_len."
        ),
    ] = "sharegpt",
    rate: Annotated[
        float, typer.Option("--rate", help="Mean request arrival rate (requests/s, Poisson).")
    ] = 2.0,
    allocator: Annotated[
        str,
        typer.Option(
            "--allocator", help="max, pow2, oracle, paged, radix, tgi, or all (comparison table)."
        ),
    ] = "paged",
    block_size: Annotated[
        int, typer.Option("--block-size", help="KV block size in tokens (paged, radix).")
    ] = 16,
    duration: Annotated[
        float,
        typer.Option(
            "--duration",
            help="Simulated seconds of arrivals (at most 86400); the queue then drains.",
        ),
    ] = 3600.0,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed of the trace; same seed, same numbers.")
    ] = 0,
    n: Annotated[int, typer.Option("--n", help="Parallel samples per request.")] = 1,
    beam_width: Annotated[
        int, typer.Option("--beam-width", help="Beams per request (beam search).")
    ] = 1,
    system_prompt_len: Annotated[
        int, typer.Option("--system-prompt-len", help="Tokens of a shared system prompt.")
    ] = 0,
    system_prompt_share: Annotated[
        float,
        typer.Option(
            "--system-prompt-share", help="Share of requests (0-1) carrying the system prompt."
        ),
    ] = 0.0,
    preemption: Annotated[
        str,
        typer.Option(
            "--preemption",
            help="recompute, swap, or auto (vLLM V0: recompute single sequences, swap groups).",
        ),
    ] = "auto",
    engine_mode: Annotated[
        str,
        typer.Option(
            "--engine-mode",
            help="vLLM scheduler: v0 (fork + copy-on-write for --n, swap groups) or v1 (n child requests sharing full prompt blocks by prefix cache, recompute only, chunked prefill).",
        ),
    ] = "v0",
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="Performance profile timing each step (as `vramplan perf --engine`): vllm, vllm-0.5, sglang, trtllm, tgi.",
        ),
    ] = "vllm",
    step_time: Annotated[
        str,
        typer.Option(
            "--step-time",
            help="perf (vramplan perf's calibrated model) or roofline (the simulator's simple one).",
        ),
    ] = "perf",
    attention_backend: Annotated[
        str,
        typer.Option(
            "--attention-backend",
            help="TGI block size: flashinfer (1), paged (16, no prefix caching), flashdecoding (256).",
        ),
    ] = "flashinfer",
    max_new_tokens: Annotated[
        int | None,
        typer.Option(
            "--max-new-tokens",
            help="tgi: tokens reserved for the output (default: each request's own output length).",
        ),
    ] = None,
    swap_space: Annotated[
        str,
        typer.Option(
            "--swap-space", help="CPU swap space per GPU, e.g. 4GiB (0 disables swapping)."
        ),
    ] = "4GiB",
    max_num_seqs: Annotated[
        int, typer.Option("--max-num-seqs", help="Most sequences in one batch.")
    ] = 256,
    max_num_batched_tokens: Annotated[
        int, typer.Option("--max-num-batched-tokens", help="Most tokens in one forward pass.")
    ] = 2048,
    max_model_len: Annotated[
        int, typer.Option("--max-model-len", help="Prompt + output limit per request (tokens).")
    ] = 2048,
    kv_memory: Annotated[
        str | None,
        typer.Option(
            "--kv-memory",
            help="KV pool per GPU instead of the estimate's, e.g. 12GiB (paper replay).",
        ),
    ] = None,
    gpu_memory_utilization: Annotated[
        float,
        typer.Option(
            "--gpu-memory-utilization",
            help="Share of GPU memory the engine may use (vLLM default 0.9).",
        ),
    ] = 0.9,
    enforce_eager: Annotated[
        bool,
        typer.Option(
            "--enforce-eager",
            help="No CUDA-graph memory in the overheads (as the 2023 vLLM of the paper).",
        ),
    ] = False,
    tensor_parallel_size: Annotated[
        int, typer.Option("--tensor-parallel-size", "-tp", help="Tensor-parallel size (GPUs).")
    ] = 1,
    dtype: Annotated[
        str | None, typer.Option("--dtype", help="Weight dtype: auto, fp16, bf16, fp8, ...")
    ] = None,
    quantization: Annotated[
        str | None, typer.Option("--quantization", "-q", help="fp8, awq, gptq, ... (weights).")
    ] = None,
    kv_cache_dtype: Annotated[
        str | None, typer.Option("--kv-cache-dtype", help="auto, fp16, bf16, fp8.")
    ] = None,
    json_out: Annotated[
        bool,
        typer.Option(
            "--json", help="Print JSON (an object keyed by allocator with --allocator all)."
        ),
    ] = False,
    plot: Annotated[
        str | None,
        typer.Option(
            "--plot",
            help="Write a chart of KV use over time: out.png or out.svg (one per allocator with all).",
        ),
    ] = None,
) -> None:
    """Simulate serving MODEL on GPU: KV-cache fragmentation, batch size, throughput, latency."""
    from dataclasses import replace

    from vramplan.simulate import make_trace, plot_timeseries, run_simulation
    from vramplan.simulate.allocators import ALLOCATORS
    from vramplan.simulate.options import (
        build_simulation,
        workload_dict,
    )  # imported here: numpy stays off --help

    names = _allocators(allocator, ALLOCATORS)
    if plot is not None and Path(plot).suffix.lower() not in (".png", ".svg"):
        raise InputError(f"--plot {plot!r} must end in .png or .svg.")
    base, budget = build_simulation(
        model=model,
        gpu=gpu,
        workload=workload,
        rate=rate,
        duration=duration,
        seed=seed,
        allocator=names[0],
        block_size=block_size,
        n=n,
        beam_width=beam_width,
        system_prompt_len=system_prompt_len,
        system_prompt_share=system_prompt_share,
        preemption=preemption,
        engine_mode=engine_mode,
        engine=engine,
        step_time=step_time,
        attention_backend=attention_backend,
        max_new_tokens=max_new_tokens,
        swap_space=swap_space,
        max_num_seqs=max_num_seqs,
        max_num_batched_tokens=max_num_batched_tokens,
        max_model_len=max_model_len,
        kv_memory=kv_memory,
        gpu_memory_utilization=gpu_memory_utilization,
        enforce_eager=enforce_eager,
        tensor_parallel_size=tensor_parallel_size,
        dtype=dtype,
        quantization=quantization,
        kv_cache_dtype=kv_cache_dtype,
    )
    wl = base.workload
    trace = make_trace(wl)
    results: dict[str, SimulationResult] = {}
    with _progress(enabled=not json_out) as advance:
        for name in names:
            cfg = replace(base, allocator=name)
            results[name] = run_simulation(cfg, advance(name, len(trace)), trace)
    if plot is not None:
        for name, res in results.items():
            path = (
                Path(plot)
                if len(results) == 1
                else Path(plot).with_name(f"{Path(plot).stem}-{name}{Path(plot).suffix}")
            )
            plot_timeseries(res, path)
    meta = {"kv_budget": budget.to_dict(), "workload": workload_dict(workload, base)}
    if json_out:
        dicts = {name: {**res.to_dict(), **meta} for name, res in results.items()}
        typer.echo(to_json(dicts[names[0]] if len(names) == 1 else dicts))
        return
    _print(results, budget, base, workload)


def _allocators(allocator: str, known: tuple[str, ...] | dict[str, Any]) -> list[str]:
    key = allocator.strip().lower()
    if key == "all":
        return list(known)
    if key not in known:
        raise InputError(
            f"unknown --allocator {allocator!r}; choose one of {', '.join(known)} or all."
        )
    return [key]


class _progress:
    """A rich progress bar on stderr, one task per allocator; a no-op when disabled or not a terminal.

    Why not always: with --json stdout must stay machine-readable, and in pipes/CI a redrawn bar is noise.
    """

    def __init__(self, enabled: bool) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.enabled = enabled and self.console.is_terminal
        self.bar: Any = None

    def __enter__(self) -> Any:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self.bar.start()

        def advance(name: str, total: int) -> Any:
            if self.bar is None:
                return None
            task = self.bar.add_task(f"simulating {name}", total=total)
            return lambda done, tot: self.bar.update(task, completed=done, total=tot)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _cell(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if kind == "pct":
        return f"{100 * value:.1f} %"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "gib":
        return f"{value / 2**30:,.2f} GiB"
    if kind == "f1":
        return f"{value:,.1f}"
    return f"{value:,.2f}"


def _print(
    results: dict[str, SimulationResult], budget: KVBudget, cfg: SimulationConfig, workload: str
) -> None:
    from vramplan.units import format_bytes

    out = console()
    w = cfg.workload
    title = (
        f"{budget.model} on {budget.gpu} x TP {budget.tensor_parallel_size} · {workload} at {w.rate:g} req/s "
        f"for {w.duration_s:g} s · block {cfg.block_size} · seed {w.seed}"
    )
    dicts = {name: r.to_dict() for name, r in results.items()}
    if len(dicts) == 1:
        ((name, d),) = dicts.items()
        rows: list[tuple[str, ...]] = [(label, _cell(d[key], kind)) for key, label, kind in ROWS]
        out.print(table(f"{title} · {name}", ["metric", "value"], rows))
    else:
        rows = [
            (label, *(_cell(d[key], kind) for d in dicts.values())) for key, label, kind in ROWS
        ]
        t = table(title, ["metric", *dicts], rows)
        t.columns[0].no_wrap = True
        out.print(t)
    src = (
        "given by --kv-memory"
        if budget.kv_memory_override
        else f"{budget.gpu_memory_utilization:g} x {format_bytes(budget.gpu_memory_bytes)} - weights "
        f"{format_bytes(budget.weights_bytes)} - activations {format_bytes(budget.activation_bytes)} - "
        f"overheads {format_bytes(budget.overhead_bytes)}"
    )
    out.print(
        f"KV pool per GPU: {format_bytes(budget.kv_capacity_bytes)} ({src}) = {budget.kv_slots:,} token slots "
        f"at {budget.kv_bytes_per_token / 1024:,.1f} KiB/token"
    )
    out.print(
        f"step times: {next(iter(results.values())).step_time_model}; engine mode {cfg.scheduler.engine_mode}"
    )
    out.print(
        "shares are time averages of the KV pool over busy iterations; "
        "throughput counts generated tokens over the whole run."
    )
