"""Turn a simulation's raw integrals into the reported, time-averaged metrics.

Memory shares are averages over engine iterations weighted by their duration (idle gaps with nothing
to run are excluded), as fractions of the whole KV pool. ``token_state_share + reserved_share +
internal_fragmentation_share + external_fragmentation_share + free_share == 1``:

* token states: slots holding real tokens (a shared slot counted once);
* reserved: slots held for tokens a live request will still write;
* internal fragmentation: held slots that the request will never fill (known from its output length);
* external fragmentation: buddy rounding inside chunks, the pool tail no block fits (and TGI's reserved
  block 0), and free or reclaimable-cached slots at iterations where the next request was waiting for
  memory (free but not usable by it);
* free: free or reclaimable-cached slots at iterations where nobody waited for memory.

``prefill_tokens`` counts prompt (and recomputed) tokens actually computed; ``prefix_hit_tokens`` those
found in the prefix cache instead (system prompts, V1 siblings' prompts, re-hits after recompute).

``step_time_model`` names what timed the iterations: ``perf (<engine>)`` for ``vramplan.perf``'s
calibrated model (replays built for a real model and GPU), ``roofline`` for the simulator's own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from vramplan.simulate.scheduler import RawRun


def _pct(values: list[float], q: float, scale: float) -> float:
    return float(np.percentile(np.asarray(values), q) * scale) if values else float("nan")


@dataclass(frozen=True)
class SimulationResult:
    """Metrics of one replay; ``timeseries`` holds sampled memory use (token slots) and batch size."""

    allocator: str
    token_state_share: float
    reserved_share: float
    internal_fragmentation_share: float
    external_fragmentation_share: float
    free_share: float
    mean_batch_size: float
    throughput_tokens_per_s: float
    requests_completed: int
    requests_rejected: int
    preemptions: int
    swapped_bytes: float
    ttft_ms_p50: float
    ttft_ms_p99: float
    tpot_ms_p50: float
    latency_s_p50: float
    latency_s_p99: float
    events_per_s: float
    sharing_saving: float
    simulated_s: float
    wall_s: float
    iterations: int
    capacity_slots: int
    timeseries: dict[str, list[float]] = field(default_factory=dict)
    step_time_model: str = "roofline"
    engine_mode: str = "v0"
    prefill_tokens: int = 0
    prefix_hit_tokens: int = 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def summarize(
    raw: RawRun,
    allocator: str,
    wall_s: float,
    step_time_model: str = "roofline",
    engine_mode: str = "v0",
) -> SimulationResult:
    """Divide the integrals by busy time and pool size; percentiles over completed requests."""
    busy = raw.busy_s or 1.0
    denom = busy * raw.capacity
    events = raw.iterations + raw.arrivals + raw.completed + raw.preemptions
    return SimulationResult(
        allocator=allocator,
        token_state_share=raw.token / denom,
        reserved_share=raw.reserved / denom,
        internal_fragmentation_share=raw.internal / denom,
        external_fragmentation_share=raw.external / denom,
        free_share=raw.free / denom,
        mean_batch_size=raw.batch / busy,
        throughput_tokens_per_s=raw.generated_tokens / raw.end_s if raw.end_s > 0 else 0.0,
        requests_completed=raw.completed,
        requests_rejected=raw.rejected,
        preemptions=raw.preemptions,
        swapped_bytes=raw.swapped_bytes,
        ttft_ms_p50=_pct(raw.ttft, 50, 1e3),
        ttft_ms_p99=_pct(raw.ttft, 99, 1e3),
        tpot_ms_p50=_pct(raw.tpot, 50, 1e3),
        latency_s_p50=_pct(raw.latency, 50, 1.0),
        latency_s_p99=_pct(raw.latency, 99, 1.0),
        events_per_s=events / wall_s if wall_s > 0 else float("inf"),
        sharing_saving=raw.shared / raw.logical if raw.logical > 0 else 0.0,
        simulated_s=raw.end_s,
        wall_s=wall_s,
        iterations=raw.iterations,
        capacity_slots=raw.capacity,
        timeseries={k: list(v) for k, v in raw.series.items()},
        step_time_model=step_time_model,
        engine_mode=engine_mode,
        prefill_tokens=raw.prefill_tokens,
        prefix_hit_tokens=raw.prefix_hit_tokens,
    )
