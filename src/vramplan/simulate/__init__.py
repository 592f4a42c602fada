"""Discrete-event simulator of a serving engine's KV-cache memory (PagedAttention paper replays).

Public API: ``run_simulation``, ``compare_allocators``, ``SimulationConfig``, ``SimulationResult``,
``WorkloadConfig``/``LengthDist``/``preset_workload``, ``SchedulerConfig``, ``HardwareSpec``,
``StepTimeModel``/``PerfStepTimer`` and ``ALLOCATORS`` (max, pow2, oracle, paged, radix, tgi).
Step times come from ``vramplan.perf`` when ``SimulationConfig.perf`` is set (see ``adapter.perf_setup_for``).
"""

from vramplan.simulate.allocators import ALLOCATORS, make_allocator
from vramplan.simulate.metrics import SimulationResult
from vramplan.simulate.plot import plot_timeseries
from vramplan.simulate.run import SimulationConfig, compare_allocators, run_simulation
from vramplan.simulate.scheduler import SchedulerConfig
from vramplan.simulate.steptime import (
    HardwareSpec,
    PerfStepTimer,
    StepTimeModel,
    opt13b_a100_40gb,
    opt13b_a100_40gb_perf,
)
from vramplan.simulate.workload import (
    LengthDist,
    Trace,
    WorkloadConfig,
    make_trace,
    preset_workload,
)

__all__ = [
    "ALLOCATORS",
    "HardwareSpec",
    "LengthDist",
    "PerfStepTimer",
    "SchedulerConfig",
    "SimulationConfig",
    "SimulationResult",
    "StepTimeModel",
    "Trace",
    "WorkloadConfig",
    "compare_allocators",
    "make_allocator",
    "make_trace",
    "opt13b_a100_40gb",
    "opt13b_a100_40gb_perf",
    "plot_timeseries",
    "preset_workload",
    "run_simulation",
]
