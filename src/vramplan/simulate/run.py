"""Public entry points: one replay (``run_simulation``) and the same trace through several allocators."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from vramplan.errors import InputError
from vramplan.simulate.allocators import ALLOCATORS, TGIAllocator, make_allocator
from vramplan.simulate.metrics import SimulationResult, summarize
from vramplan.simulate.scheduler import ProgressFn, SchedulerConfig, Simulator
from vramplan.simulate.steptime import (
    HardwareSpec,
    PerfStepTimer,
    StepTimeModel,
    StepTimer,
    opt13b_a100_40gb,
)
from vramplan.simulate.workload import Trace, WorkloadConfig, make_trace

if TYPE_CHECKING:
    from vramplan.perf import PerfSetup


@dataclass(frozen=True)
class SimulationConfig:
    """Everything one replay needs; defaults are the paper's OPT-13B / A100-40GB / paged B=16 setup.

    ``perf``: the planner's performance setup (``vramplan.perf.build_setup``, or
    ``adapter.perf_setup_for`` / ``steptime.opt13b_a100_40gb_perf``); when given, every iteration is
    timed by ``vramplan.perf.step_time`` and ``step_time`` only supplies the swap (PCIe) rate. Without
    it the simulator's own roofline (``step_time``) is used, e.g. for hand-made ``HardwareSpec``s.
    ``attention_backend`` / ``max_new_tokens``: the ``tgi`` allocator's block size source and reservation.
    """

    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    hardware: HardwareSpec = field(default_factory=opt13b_a100_40gb)
    allocator: str = "paged"
    block_size: int = 16
    prefix_caching: bool = True
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    step_time: StepTimeModel = field(default_factory=StepTimeModel)
    perf: PerfSetup | None = None
    attention_backend: str = "flashinfer"
    max_new_tokens: int | None = None

    def validate(self) -> None:
        if self.allocator.lower() not in ALLOCATORS:
            raise InputError(
                f"unknown allocator {self.allocator!r}; choose one of {', '.join(ALLOCATORS)}."
            )
        if self.attention_backend.lower() not in TGIAllocator.BACKEND_BLOCK:
            raise InputError(
                f"unknown attention backend {self.attention_backend!r}; use "
                f"{', '.join(TGIAllocator.BACKEND_BLOCK)} (TGI's block size 1, 16, 256)."
            )
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}.")
        self.workload.validate()
        self.hardware.validate()
        self.scheduler.validate()
        self.step_time.validate()


def run_simulation(
    config: SimulationConfig, progress: ProgressFn | None = None, trace: Trace | None = None
) -> SimulationResult:
    """Replay the workload through the configured allocator and scheduler.

    ``progress(done_requests, total_requests)`` is called now and then (for a progress bar).
    ``trace`` lets callers reuse one trace across runs (it must come from ``config.workload``).
    """
    config.validate()
    tr = trace if trace is not None else make_trace(config.workload)
    hw = config.hardware
    alloc = make_allocator(
        config.allocator,
        hw.kv_slots,
        config.workload.max_len,
        config.block_size,
        config.prefix_caching,
        config.attention_backend,
        config.max_new_tokens,
    )
    timer: StepTimer | PerfStepTimer = (
        PerfStepTimer(config.perf, config.step_time)
        if config.perf is not None
        else StepTimer(hw, config.step_time)
    )
    sim = Simulator(
        tr, alloc, timer, config.scheduler, hw.kv_bytes_per_token, config.workload.max_len, progress
    )
    start = time.perf_counter()
    raw = sim.run()
    return summarize(
        raw, alloc.name, time.perf_counter() - start, timer.name, config.scheduler.engine_mode
    )


def compare_allocators(
    config: SimulationConfig,
    allocators: Sequence[str] = ALLOCATORS,
    progress: ProgressFn | None = None,
) -> dict[str, SimulationResult]:
    """The same trace through each allocator, keyed by allocator name."""
    config.validate()
    tr = make_trace(config.workload)
    return {
        name: run_simulation(replace(config, allocator=name), progress, tr) for name in allocators
    }
