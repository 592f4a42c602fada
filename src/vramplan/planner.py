"""plan(): search GPU kind x TP x PP x precision x replicas for the cheapest (or fastest) deployment.

Memory comes from the core estimator (exact weights, KV per token, activations, overheads); speed from
:mod:`vramplan.perf`. The sweep builds one :class:`~vramplan.perf.PerfSetup` per option and evaluates
all options against a grid of running batch sizes in one numpy pass: for every option the largest batch
that meets the TTFT/TPOT targets and fits the KV cache sets the replica's capacity; replicas cover the
users and the request rate, plus spares for the availability target.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from vramplan.capabilities import refusals
from vramplan.errors import DoesNotFitError, InputError
from vramplan.estimator import resolve
from vramplan.hardware import GPU, gpu_from, resolve_gpu
from vramplan.model.load import LoadedModel, spec_of
from vramplan.model.spec import ModelSpec
from vramplan.perf import (
    LINKS,
    PIPELINE_EFFICIENCY,
    PerfSetup,
    build_setup,
    engine_profile,
    step_time,
)
from vramplan.scenario import Fix
from vramplan.scenario_fields import to_argv
from vramplan.units import GiB
from vramplan.wording import plural

#: The fix when no plan is fast enough: let the planner try faster GPUs.
_FASTER_GPUS = Fix("gpus", "H100,H200,B200", "faster GPUs")

DEFAULT_GPUS = (
    "L4",
    "A10G",
    "L40S",
    "A100-40GB",
    "A100-80GB",
    "H100-80GB",
    "H200",
    "B200",
    "MI300X",
    "RTX-4090",
)
TP_OPTIONS = (1, 2, 4, 8)
PP_OPTIONS = (1, 2, 4)
BATCH_GRID = np.array(
    [1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024], dtype=float
)


@dataclass(frozen=True)
class PlanAssumptions:
    """Named planning assumptions.

    output_len: tokens generated per request when only the context is given (chat-style answers);
        the prompt is the rest of the context.
    gpu_availability 0.99: share of time one GPU (with its host) is serving; cloud GPU fleets report
        roughly 1 % of GPU-hours lost to failures and maintenance. A replica is up when all its GPUs are.
    host_ram_factor 1.2: host RAM for staging weights while loading (safetensors mmap + pinned copy).
    swap_space_gib_per_gpu 4: vLLM's default --swap-space for preempted sequences.
    cpu_cores_per_gpu 8: tokenisation, scheduler, detokenisation and NCCL proxy threads per GPU.
    nvme_factor 2: checkpoint download plus converted/cached copy on local NVMe.
    """

    output_len: int = 256
    gpu_availability: float = 0.99
    host_ram_factor: float = 1.2
    swap_space_gib_per_gpu: float = 4.0
    cpu_cores_per_gpu: int = 8
    nvme_factor: float = 2.0


@dataclass(frozen=True)
class Plan:
    """One deployment: layout, memory, predicted speed, cost, node sizing and launch commands."""

    gpu: str
    gpus_per_replica: int
    tensor_parallel_size: int
    pipeline_parallel_size: int
    replicas: int
    precision: str
    quantization: str | None
    dtype: str | None
    kv_cache_dtype: str
    per_gpu: dict[str, Any]
    max_users: int
    max_context: int
    #: Requests running at once on one replica at the plan's load (from ``vramplan perf``).
    batch_per_replica: int
    #: The running-batch cap of the launch line (``--max-num-seqs``): the largest batch meeting the targets.
    max_num_seqs: int
    #: The KV pool of one replica in tokens: what `vramplan vllm` prints for the launch line on this GPU.
    kv_cache_tokens: int
    ttft_ms: float
    tpot_ms: float
    tokens_per_s: float
    requests_per_s: float
    cost_per_hour: float | None
    cost_per_million_tokens: float | None
    availability: float
    strategy: list[str]
    node: dict[str, Any]
    #: The engine's command line, keyed by the engine asked, with the model's real Hub id.
    launch: dict[str, str]
    #: Arguments to `vramplan perf` that reproduce ``ttft_ms`` and ``tpot_ms`` exactly.
    perf_argv: list[str] = field(default_factory=list)
    #: The plan's load on one replica (clients or requests/s) at which the latency was predicted.
    load: dict[str, Any] = field(default_factory=dict)

    @property
    def total_gpus(self) -> int:
        return self.gpus_per_replica * self.replicas

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["total_gpus"] = self.total_gpus
        for k in (
            "ttft_ms",
            "tpot_ms",
            "tokens_per_s",
            "requests_per_s",
            "cost_per_hour",
            "cost_per_million_tokens",
        ):
            if isinstance(d[k], float):
                d[k] = round(d[k], 4)
        return d


@dataclass(frozen=True)
class PlanResult:
    """Ranked plans (best first), rejected options with their reason, and the assumptions used."""

    model: str
    context: int
    users: int
    rate: float | None
    targets: dict[str, Any]
    plans: tuple[Plan, ...]
    rejected: tuple[dict[str, str], ...]
    assumptions: tuple[str, ...]
    options_evaluated: int
    criterion: str = "cost"
    messages: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "context": self.context,
            "users": self.users,
            "rate": self.rate,
            "targets": self.targets,
            "criterion": self.criterion,
            "options_evaluated": self.options_evaluated,
            "plans": [p.to_dict() for p in self.plans],
            "rejected": list(self.rejected),
            "messages": list(self.messages),
            "assumptions": list(self.assumptions),
        }


@dataclass(frozen=True)
class _Option:
    gpu: GPU
    label: str
    dtype: str | None
    quantization: str | None
    tp: int
    pp: int
    setup: PerfSetup


def _precisions(
    spec: ModelSpec, dtype: str | None, quantization: str | None
) -> list[tuple[str | None, str | None]]:
    """(dtype, quantization) options: the given one, else bf16, fp8, int4 AWQ and the config's own."""
    if dtype or quantization:
        return [(dtype, quantization)]
    opts: list[tuple[str | None, str | None]] = [
        (None, None),
        ("bfloat16", None),
        (None, "fp8"),
        (None, "awq"),
    ]
    if spec.quantization_config:
        opts = [(None, None), (None, "fp8"), (None, "awq")]
    return opts


def _spec(model: str | ModelSpec | LoadedModel) -> ModelSpec:
    return spec_of(model)


def _stack(setups: Sequence[PerfSetup]) -> PerfSetup:
    """One PerfSetup whose numeric fields are column vectors over the options (shape (n, 1))."""
    base = setups[0]
    numeric: dict[str, Any] = {}
    for f in fields(PerfSetup):
        v = getattr(base, f.name)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            numeric[f.name] = np.array([getattr(s, f.name) for s in setups], dtype=float)[:, None]
    return replace(base, **numeric)  # numpy columns stand in for scalars


def plan(
    model: str | ModelSpec | LoadedModel,
    context: int,
    users: int,
    rate: float | None = None,
    ttft_ms: float | None = None,
    tpot_ms: float | None = None,
    availability: float | None = None,
    gpus: Sequence[str] | None = None,
    dtype: str | None = None,
    quantization: str | None = None,
    engine: str = "vllm",
    criterion: str = "cost",
    kv_cache_dtype: str | None = None,
    output_len: int | None = None,
    assumptions: PlanAssumptions = PlanAssumptions(),
    progress: Callable[[int, int], None] | None = None,
    limit: int = 10,
    engine_version: str | None = None,
) -> PlanResult:
    """Search layouts and return ranked plans; raise DoesNotFitError when targets or memory rule all out.

    Memory per option is the engine's own KV pool (``engines.base.Engine.kv_pool``, as `vramplan vllm`
    prints it); the batch search is vectorised over the perf model, and each surviving plan's latency
    is then ``vramplan perf`` at the plan's own load (its ``perf_argv`` reproduces it).
    """
    _check_inputs(context, users, rate, ttft_ms, tpot_ms, availability, criterion)
    spec = _spec(model)
    model_ref = model if isinstance(model, str) else (spec.source or spec.name)
    prof = engine_profile(engine, engine_version)
    hw = [gpu_from(g, required=True) for g in (gpus or DEFAULT_GPUS)]
    out_len = output_len or min(assumptions.output_len, max(context // 2, 1))
    in_len = max(context - out_len, 1)
    rejected: list[dict[str, str]] = []
    options: list[_Option] = []
    combos = [
        (p, tp, pp)
        for p in _precisions(spec, dtype, quantization)
        for tp in TP_OPTIONS
        for pp in PP_OPTIONS
    ]
    seen_labels: set[tuple[str, int, int, str]] = set()
    for i, ((dt, q), tp, pp) in enumerate(combos):
        if progress:
            progress(i, len(combos))
        for g in hw:
            name = f"{tp * pp}x {g.name} (TP {tp}, PP {pp})"
            try:
                s = build_setup(
                    spec,
                    g,
                    engine=engine,
                    tensor_parallel_size=tp,
                    pipeline_parallel_size=pp,
                    dtype=dt,
                    quantization=q,
                    kv_cache_dtype=kv_cache_dtype,
                    max_model_len=context,
                    engine_version=engine_version,
                )
            except InputError as exc:
                if g is hw[0]:
                    rejected.append(
                        {"option": f"TP {tp} x PP {pp} {q or dt or 'config'}", "reason": str(exc)}
                    )
                break
            key = (s.weights_label, tp, pp, g.name)
            if key in seen_labels:
                continue
            seen_labels.add(key)
            label = f"{name} {s.weights_label}"
            cannot = refusals(
                g,
                resolve(spec, dt, q, kv_cache_dtype).precision,
                engine,
                bf16_requested=dt == "bfloat16",
            )
            if cannot:
                rejected.append({"option": label, "reason": cannot[0].reason})
                continue
            if pp > 1 and tp < 8 and tp * pp <= LINKS.gpus_per_node:
                rejected.append(
                    {
                        "option": label,
                        "reason": f"PP {pp} inside one node: TP {tp * pp} is faster for the same GPUs",
                    }
                )
                continue
            if s.kv_capacity_tokens < context and s.kv_pool is not None:
                pool = s.kv_pool
                fixed = pool.weights_bytes + pool.activation_bytes + pool.non_torch_bytes
                usable = pool.gpu_memory_bytes * pool.gpu_memory_utilization
                reason = (
                    f"weights + activations + non-torch {fixed / GiB:.1f} GiB > {usable / GiB:.1f} GiB "
                    f"usable per GPU ({pool.engine} {pool.engine_version})"
                    if fixed > usable
                    else f"{pool.engine} {pool.engine_version} leaves {pool.kv_cache_tokens:,} KV tokens per "
                    f"GPU next to {fixed / GiB:.1f} GiB, less than one {context:,}-token request"
                )
                rejected.append({"option": label, "reason": reason})
                continue
            if s.kv_capacity_tokens < context:
                from vramplan.perf import fixed_bytes_per_gpu

                fixed, _ = fixed_bytes_per_gpu(
                    spec, dt, q, kv_cache_dtype, tp, pp, context, prof.max_num_batched_tokens
                )
                usable = g.memory_bytes * prof.gpu_memory_utilization
                reason = (
                    f"weights + overheads {fixed / GiB:.1f} GiB > {usable / GiB:.1f} GiB usable per GPU"
                    if fixed > usable
                    else f"KV for one {context:,}-token sequence does not fit next to {fixed / GiB:.1f} GiB of weights"
                )
                rejected.append({"option": label, "reason": reason})
                continue
            options.append(_Option(g, s.weights_label, dt, q, tp, pp, s))
    if progress:
        progress(len(combos), len(combos))
    if not options:
        raise DoesNotFitError(
            f"no layout of {spec.name} fits {context:,} tokens on {', '.join(g.name for g in hw)} "
            f"with TP up to 8 and PP up to 4",
            fixes=[
                Fix("gpus", "H200,B200,MI300X", "larger GPUs"),
                Fix("quantization", "awq", "4-bit weights: about a quarter of the 16-bit bytes"),
            ],
            reasons=[f"{r['option']}: {r['reason']}" for r in rejected[:5]],
        )
    evaluated = _evaluate(options, in_len, out_len, context, ttft_ms, tpot_ms)
    plans, closest, closest_why = [], None, ""
    for opt, ev in zip(options, evaluated):
        if ev["batch"] < 1:
            rejected.append(
                {
                    "option": f"{opt.tp * opt.pp}x {opt.gpu.name} (TP {opt.tp}, PP {opt.pp}) {opt.label}",
                    "reason": ev["why"],
                }
            )
            if closest is None or ev["score"] < closest[1]["score"]:
                closest, closest_why = (opt, ev), ev["why"]
            continue
        plans.append((opt, ev))
    if not plans:
        targets = " and ".join(
            t
            for t in (
                f"TTFT <= {ttft_ms:g} ms" if ttft_ms else "",
                f"TPOT <= {tpot_ms:g} ms" if tpot_ms else "",
            )
            if t
        )
        assert closest is not None
        o, e = closest
        raise DoesNotFitError(
            f"no plan meets {targets}; the closest is {o.tp * o.pp}x {o.gpu.name} (TP {o.tp}) {o.label} "
            f"at TTFT {e['ttft1'] * 1e3:.0f} ms, TPOT {e['tpot1'] * 1e3:.1f} ms ({closest_why})",
            fixes=[
                *(
                    [Fix("ttft_ms", math.ceil(e["ttft1"] * 1e3), "the closest plan's TTFT")]
                    if ttft_ms and e["ttft1"] * 1e3 > ttft_ms
                    else []
                ),
                *(
                    [Fix("tpot_ms", math.ceil(e["tpot1"] * 1e4) / 10, "the closest plan's TPOT")]
                    if tpot_ms and e["tpot1"] * 1e3 > tpot_ms
                    else []
                ),
                _FASTER_GPUS,
                Fix("quantization", "fp8", "fewer weight bytes to read per token"),
            ],
        )
    built: list[Plan] = []
    for o, e in plans:
        done = _finish(
            model_ref,
            spec,
            o,
            e,
            users,
            rate,
            in_len,
            out_len,
            context,
            availability,
            engine,
            engine_version,
            kv_cache_dtype,
            assumptions,
            ttft_ms,
            tpot_ms,
        )
        if isinstance(done, str):
            rejected.append({"option": f"{o.tp * o.pp}x {o.gpu.name} {o.label}", "reason": done})
        else:
            built.append(done)
    if not built:
        raise DoesNotFitError(
            f"no plan meets the targets at its own load for {spec.name}",
            fixes=[_FASTER_GPUS],
            reasons=[r["reason"] for r in rejected[-3:]],
        )
    rank: Callable[[Plan], tuple[float, ...]] = {
        "cost": lambda p: (p.cost_per_hour if p.cost_per_hour is not None else math.inf, p.tpot_ms),
        "latency": lambda p: (p.tpot_ms + p.ttft_ms / max(out_len, 1), p.cost_per_hour or 0),
        "gpus": lambda p: (p.total_gpus, p.cost_per_hour or 0),
        "throughput": lambda p: (-(p.tokens_per_s / max(p.cost_per_hour or 1e-9, 1e-9)),),
    }[criterion]
    built.sort(key=rank)
    top = [_with_memory(spec, p, context) for p in built[:limit]]
    notes = [
        f"prompt {in_len:,} + output {out_len:,} tokens per request (context {context:,})",
        f"engine {prof.name}: KV pool and batch defaults from the engine's own model for its version "
        "(as `vramplan vllm` prints them); latency from `vramplan perf` at each plan's load (perf_argv)",
        f"per-GPU availability {assumptions.gpu_availability} (a replica is up when all its GPUs are)",
        "cost_per_million_tokens counts output tokens at the planned load (rate, or full capacity when no rate)",
        f"batch sizes searched: {', '.join(str(int(b)) for b in BATCH_GRID)}",
    ]
    return PlanResult(
        model=spec.name,
        context=context,
        users=users,
        rate=rate,
        targets={"ttft_ms": ttft_ms, "tpot_ms": tpot_ms, "availability": availability},
        plans=tuple(top),
        rejected=tuple(rejected),
        assumptions=tuple(notes),
        options_evaluated=len(options),
        criterion=criterion,
    )


def _evaluate(
    options: list[_Option],
    in_len: int,
    out_len: int,
    context: int,
    ttft_ms: float | None,
    tpot_ms: float | None,
) -> list[dict[str, Any]]:
    """Vectorised: every option x every batch size in one numpy pass (a screen; the final figures
    of each plan come from ``vramplan perf`` at its load)."""
    s = _stack([o.setup for o in options])
    e = s.engine
    B = BATCH_GRID[None, :]
    avg_ctx = in_len + out_len / 2.0
    t_dec = np.asarray(step_time(s, 0, B, B * avg_ctx).total)
    chunk = np.minimum(np.maximum(e.max_num_batched_tokens - B, 64), B * in_len)
    t_mix = np.asarray(step_time(s, chunk, B, B * avg_ctx, np.minimum(in_len, chunk)).total)
    extra = (t_mix - t_dec) * in_len / chunk
    steps = max(out_len - 1, 1)
    cycle = steps * t_dec + B * extra
    tpot = cycle / steps
    # a client's TTFT: the prompt's chunks, half a running step, and the HTTP front end
    ttft = t_mix * np.ceil(in_len / chunk) + 0.5 * t_dec + e.frontend_s
    pp = np.asarray(s.pipeline_parallel_size)
    gain = np.where(pp > 1, pp * PIPELINE_EFFICIENCY, 1.0)
    rps = B / (cycle / gain)
    kv_users = np.floor(
        np.asarray(s.kv_capacity_tokens) / context
    )  # every sequence may reach the full context
    fits = kv_users >= B
    meets = fits.copy()
    if tpot_ms:
        meets &= tpot * 1e3 <= tpot_ms
    if ttft_ms:
        meets &= ttft * 1e3 <= ttft_ms
    out = []
    for i in range(len(options)):
        idx = np.nonzero(meets[i])[0]
        if len(idx):
            j = idx[-1]
            out.append(
                {
                    "batch": float(BATCH_GRID[j]),
                    "tpot": float(tpot[i, j]),
                    "ttft": float(ttft[i, j]),
                    "rps": float(rps[i, j]),
                    "kv_users": float(kv_users[i, 0]),
                    "why": "",
                }
            )
        else:
            why = []
            if tpot_ms and tpot[i, 0] * 1e3 > tpot_ms:
                why.append(f"TPOT {tpot[i, 0] * 1e3:.1f} ms > {tpot_ms:g} ms even at batch 1")
            if ttft_ms and ttft[i, 0] * 1e3 > ttft_ms:
                why.append(f"TTFT {ttft[i, 0] * 1e3:.0f} ms > {ttft_ms:g} ms even at batch 1")
            score = max(
                tpot[i, 0] * 1e3 / (tpot_ms or math.inf), ttft[i, 0] * 1e3 / (ttft_ms or math.inf)
            )
            out.append(
                {
                    "batch": 0.0,
                    "why": "; ".join(why) or "no batch fits the KV cache",
                    "score": score,
                    "tpot1": float(tpot[i, 0]),
                    "ttft1": float(ttft[i, 0]),
                }
            )
    return out


def _replicas_for_availability(
    base: int, per_replica_up: float, target: float | None
) -> tuple[int, float]:
    """Smallest n >= base with P(at least base of n replicas up) >= target (binomial)."""

    def p_ok(n: int) -> float:
        return sum(
            math.comb(n, k) * per_replica_up**k * (1 - per_replica_up) ** (n - k)
            for k in range(base, n + 1)
        )

    n = base
    if target is None:
        return n, p_ok(n)
    while p_ok(n) < target and n < base + 16:
        n += 1
    return n, p_ok(n)


def _finish(
    model_ref: str,
    spec: ModelSpec,
    o: _Option,
    ev: dict[str, Any],
    users: int,
    rate: float | None,
    in_len: int,
    out_len: int,
    context: int,
    availability: float | None,
    engine: str,
    engine_version: str | None,
    kv_cache_dtype: str | None,
    a: PlanAssumptions,
    ttft_target: float | None,
    tpot_target: float | None,
) -> Plan | str:
    """The plan of one option: replicas for the load, then its latency from ``vramplan perf`` at that load.

    When perf's figures at the load miss a target, replicas are added (less load each) until they
    meet it; a plan that cannot is returned as the reason (a string) instead.
    """
    from vramplan.perf import perf

    batch = int(ev["batch"])
    need = math.ceil(users / batch)
    if rate:
        need = max(need, math.ceil(rate / ev["rps"]))
    model_id = _hub_id(model_ref, spec)
    values = _plan_values(o, engine, engine_version, kv_cache_dtype, context, batch)
    result = None
    load: dict[str, Any] = {}
    for extra in range(0, 17):
        n = need + extra
        load = {"request_rate": rate / n} if rate else {"concurrency": math.ceil(users / n)}
        try:
            result = perf(
                spec,
                o.gpu.name,
                input_len=in_len,
                output_len=out_len,
                **values,
                **load,
            )
        except InputError as exc:
            return str(exc)
        ok = (not ttft_target or result.ttft_ms <= ttft_target) and (
            not tpot_target or result.tpot_ms <= tpot_target
        )
        if ok and result.stable:
            need = n
            break
    else:
        assert result is not None
        return (
            f"at its own load `vramplan perf` gives TTFT {result.ttft_ms:,.0f} ms, "
            f"TPOT {result.tpot_ms:,.1f} ms, missing the targets even with {need + 16} replicas"
        )
    gpus_per = o.tp * o.pp
    up = a.gpu_availability**gpus_per
    replicas, avail = _replicas_for_availability(need, up, availability)
    price = o.gpu.price_per_hour_usd
    cost = price * gpus_per * replicas if price is not None else None
    served_rps = rate if rate else result.requests_per_s * need
    tokens_s = served_rps * out_len
    cpm = cost / (tokens_s * 3600) * 1e6 if cost is not None and tokens_s > 0 else None
    strategy = _strategy(spec, o, replicas, need)
    node = _node(o, spec, a)
    launch, kv_tokens = _launch(spec, o, values, model_id)
    perf_argv = [
        model_id,
        "--gpu",
        o.gpu.name,
        *to_argv({"input_len": in_len, "output_len": out_len, **values, **load}),
    ]
    return Plan(
        gpu=o.gpu.name,
        gpus_per_replica=gpus_per,
        tensor_parallel_size=o.tp,
        pipeline_parallel_size=o.pp,
        replicas=replicas,
        precision=o.label,
        quantization=o.quantization,
        dtype=o.dtype,
        kv_cache_dtype=kv_cache_dtype or "auto",
        per_gpu={},
        max_users=kv_tokens // context,
        max_context=0,
        batch_per_replica=max(1, round(result.batch_size)),
        max_num_seqs=batch,
        kv_cache_tokens=kv_tokens,
        ttft_ms=result.ttft_ms,
        tpot_ms=result.tpot_ms,
        tokens_per_s=tokens_s,
        requests_per_s=served_rps,
        cost_per_hour=cost,
        cost_per_million_tokens=cpm,
        availability=avail,
        strategy=strategy,
        node=node,
        launch=launch,
        perf_argv=perf_argv,
        load=load,
    )


def _plan_values(
    o: _Option,
    engine: str,
    engine_version: str | None,
    kv_cache_dtype: str | None,
    context: int,
    batch: int,
) -> dict[str, Any]:
    """The plan's deployment as field values (shared by its launch line and its perf_argv)."""
    values: dict[str, Any] = {
        "engine": engine,
        "engine_version": engine_version,
        "tensor_parallel_size": o.tp,
        "pipeline_parallel_size": o.pp,
        "dtype": o.dtype,
        "quantization": o.quantization,
        "kv_cache_dtype": kv_cache_dtype if kv_cache_dtype != "auto" else None,
        "max_model_len": context,
        "max_num_seqs": batch,
    }
    return {k: v for k, v in values.items() if v is not None}


def _hub_id(model_ref: str, spec: ModelSpec) -> str:
    """The id an engine can load: the catalogue's Hub id for a vramplan alias, else what was given."""
    from vramplan.model import catalog

    found = catalog.find(model_ref) if isinstance(model_ref, str) else None
    return found or spec.name or model_ref


def _with_memory(spec: ModelSpec, p: Plan, context: int) -> Plan:
    """Attach the core's per-GPU breakdown and the max context at the batch."""
    from vramplan.estimator import breakdown_for, resolve
    from vramplan.scenario import Workload

    r = resolve(
        spec,
        p.dtype,
        p.quantization if p.quantization != "fp4" else "w4a16",
        None if p.kv_cache_dtype == "auto" else p.kv_cache_dtype,
    )
    g = resolve_gpu(p.gpu)
    b = breakdown_for(
        r,
        Workload(context=context, users=p.batch_per_replica),
        p.tensor_parallel_size,
        p.pipeline_parallel_size,
        g,
    )
    per = b.to_dict()["per_gpu"]
    per["gpu_memory_bytes"] = g.memory_bytes
    per["kv_headroom_bytes"] = g.memory_bytes - b.per_gpu_bytes
    # max_users stays the engine pool's (kv_cache_tokens // context), the figure `vramplan vllm` implies.
    return replace(p, per_gpu=per, max_context=int(b.max_context or 0))


def _strategy(spec: ModelSpec, o: _Option, replicas: int, need: int) -> list[str]:
    out = []
    link = o.setup.link_name
    if o.tp > 1:
        out.append(f"tensor parallel {o.tp} within a node over {link} (2 all-reduces per layer)")
    if o.pp > 1:
        cross = o.tp * o.pp > LINKS.gpus_per_node
        out.append(
            f"pipeline parallel {o.pp}"
            + (
                f" across {math.ceil(o.tp * o.pp / LINKS.gpus_per_node)} nodes "
                "(stage sends over 400 Gb/s network, multi-node TP x PP)"
                if cross
                else ""
            )
        )
    if spec.moe is not None and o.tp > 1:
        out.append(
            f"expert parallel for the {spec.moe.num_experts} experts (--enable-expert-parallel)"
        )
    out.append(
        f"{plural(replicas, 'replica')} behind a load balancer"
        + (f" ({replicas - need} spare for availability)" if replicas > need else "")
    )
    return out


def _node(o: _Option, spec: ModelSpec, a: PlanAssumptions) -> dict[str, Any]:
    from vramplan.estimator import resolve
    from vramplan.memory.weights import weight_bytes

    r = resolve(spec, o.dtype, o.quantization if o.quantization != "fp4" else "w4a16", None)
    w = weight_bytes(spec, r.precision, 1, 1).unsharded
    gpus_node = min(o.tp * o.pp, LINKS.gpus_per_node)
    nodes = math.ceil(o.tp * o.pp / LINKS.gpus_per_node)
    ram = w / nodes * a.host_ram_factor + a.swap_space_gib_per_gpu * GiB * gpus_node
    return {
        "nodes_per_replica": nodes,
        "gpus_per_node": gpus_node,
        "host_ram_gib": math.ceil(ram / GiB / 16) * 16,
        "cpu_cores": a.cpu_cores_per_gpu * gpus_node,
        "nvme_gib": math.ceil(w * a.nvme_factor / GiB / 100) * 100,
        "why": f"RAM: weights {w / GiB:.0f} GiB x {a.host_ram_factor} staging + {a.swap_space_gib_per_gpu:g} GiB swap per GPU; "
        f"{a.cpu_cores_per_gpu} cores per GPU; NVMe {a.nvme_factor:g}x checkpoint",
    }


def _launch(
    spec: ModelSpec, o: _Option, values: dict[str, Any], model_id: str
) -> tuple[dict[str, str], int]:
    """({engine: command line}, KV tokens per replica) from the engine's own model.

    The KV figure is the engine's ``kv_pool`` for exactly this line on this GPU (what `vramplan vllm`
    prints for it). Engines without a startup model get their launcher and the perf budget.
    """
    import shlex

    from vramplan.engines.base import engine_model
    from vramplan.scenario import Scenario

    engine = str(values["engine"])
    found = engine_model(engine)
    if found is None:
        launcher = engine_profile(engine).launch or engine
        return {engine: f"{launcher} {model_id}"}, int(o.setup.kv_capacity_tokens)
    model, implied = found
    fields_ = {k: v for k, v in values.items() if k != "engine"}
    fields_["engine_version"] = fields_.get("engine_version") or implied
    scenario = Scenario.from_values(spec, gpu=o.gpu, engine=model.name, **fields_)
    argv = model.launch(scenario, model_id)
    if (
        fields_.get("quantization") == "fp4"
    ):  # 4-bit weights as perf models them (an NVFP4 checkpoint)
        scenario = Scenario.from_values(
            spec, gpu=o.gpu, engine=model.name, **{**fields_, "quantization": "w4a16"}
        )
    pool = model.kv_pool(scenario)
    if spec.moe is not None and o.tp > 1 and model.name == "vllm":
        argv.append("--enable-expert-parallel")
    return {engine: shlex.join(argv)}, pool.kv_cache_tokens


def _check_inputs(
    context: int,
    users: int,
    rate: float | None,
    ttft: float | None,
    tpot: float | None,
    availability: float | None,
    criterion: str,
) -> None:
    if not isinstance(context, int) or context < 1:
        raise InputError(
            f"context must be a positive number of tokens, got {context!r} (e.g. --context 8192)"
        )
    if not isinstance(users, int) or users < 1:
        raise InputError(
            f"users must be at least 1 concurrent user, got {users!r} (e.g. --users 16)"
        )
    if rate is not None and not rate > 0:
        raise InputError(f"rate must be > 0 requests/s, got {rate!r}")
    for n, v in (("ttft-ms", ttft), ("tpot-ms", tpot)):
        if v is not None and not v > 0:
            raise InputError(f"--{n} must be > 0 ms, got {v!r}")
    if availability is not None and not 0 < availability < 1:
        raise InputError(
            f"availability must be a fraction between 0 and 1 (e.g. 0.999), got {availability!r}"
        )
    if criterion not in ("cost", "latency", "gpus", "throughput"):
        raise InputError(f"unknown criterion {criterion!r}: use cost, latency, gpus or throughput")


__all__ = ["DEFAULT_GPUS", "Plan", "PlanAssumptions", "PlanResult", "plan"]
_ = field  # re-exported dataclass helper kept for subclasses
