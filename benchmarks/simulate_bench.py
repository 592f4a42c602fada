"""Benchmark: one simulated hour of ShareGPT-like traffic, OPT-13B on an A100-40GB, 2 req/s.

Step times from ``vramplan.perf`` (engine vllm-0.5, as the CLI does with ``--engine vllm-0.5``).
Reports wall time and events per second for each allocator (target: paged under 10 s on 2 cores).
Run: python benchmarks/simulate_bench.py [allocator ...]
"""

from __future__ import annotations

import sys
import time

from vramplan.simulate import (
    SimulationConfig,
    opt13b_a100_40gb_perf,
    preset_workload,
    run_simulation,
)
from vramplan.simulate.workload import make_trace


def main(names: list[str]) -> None:
    cfg = SimulationConfig(
        workload=preset_workload("sharegpt", rate=2.0, duration_s=3600.0, seed=0),
        perf=opt13b_a100_40gb_perf(),
    )
    t0 = time.perf_counter()
    trace = make_trace(cfg.workload)
    print(f"trace: {len(trace)} requests built in {time.perf_counter() - t0:.2f} s")
    for name in names:
        t0 = time.perf_counter()
        r = run_simulation(
            SimulationConfig(workload=cfg.workload, allocator=name, perf=cfg.perf), trace=trace
        )
        wall = time.perf_counter() - t0
        print(
            f"{name:7s} wall {wall:6.2f} s  events/s {r.events_per_s:>10,.0f}  iterations "
            f"{r.iterations:>8,}  simulated {r.simulated_s:,.0f} s  completed {r.requests_completed}  "
            f"[{r.step_time_model}]"
        )


if __name__ == "__main__":
    main(sys.argv[1:] or ["paged", "max", "pow2", "oracle", "radix", "tgi"])
