"""Step times from vramplan.perf: the cached timer equals step_time, and a steady batch gives perf's TPOT."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from vramplan.perf import build_setup, perf, step_time
from vramplan.simulate import SchedulerConfig, SimulationConfig, Trace, run_simulation
from vramplan.simulate.adapter import kv_budget, perf_setup_for
from vramplan.simulate.steptime import PerfStepTimer, opt13b_a100_40gb_perf


@pytest.mark.parametrize(
    "model, gpu, engine, tp",
    [
        ("opt-13b", "A100-40GB", "vllm-0.5", 1),
        ("llama-3.1-8b", "H100-80GB", "vllm", 1),
        ("llama-3.1-8b", "H100-80GB", "sglang", 2),
    ],
)
def test_perf_timer_equals_step_time(model: str, gpu: str, engine: str, tp: int) -> None:
    """The timer's per-shape lines reproduce step_time exactly (compute and memory are affine in context)."""
    setup = build_setup(model, gpu, engine=engine, tensor_parallel_size=tp)
    timer = PerfStepTimer(setup)
    rng = np.random.default_rng(0)
    for _ in range(300):
        p = int(rng.choice([0, 0, 1, 17, 512, 2048]))
        d = int(rng.integers(0 if p else 1, 257))
        ctx = int(rng.integers(0, 400_000)) if d else 0
        sl = float(rng.integers(1, 4096)) if p else 0.0
        want = float(step_time(setup, p, d, ctx, sl if p else None).total)
        got = timer.step(p, d, ctx, p * sl)
        assert got == pytest.approx(want, rel=1e-9)
    assert len(timer.cache) < 300  # decode shapes repeat: the cache is what makes 10^5 steps cheap


@pytest.mark.parametrize("batch", [1, 8, 32, 96])
def test_steady_batch_tpot_matches_perf(batch: int) -> None:
    """B requests arrive together (512 in / 256 out), prefill in one step, decode in lock step: the
    simulated TPOT is vramplan perf's static-batch TPOT (same engine steps, context averaged)."""
    model, gpu, inp, out = "llama-3.1-8b", "H100-80GB", 512, 256
    budget = kv_budget(model, gpu, max_model_len=inp + out)
    setup = perf_setup_for(budget, "vllm", max_model_len=inp + out)
    zeros = np.zeros(batch, dtype=np.int64)
    trace = Trace(np.zeros(batch), np.full(batch, inp), np.full(batch, out), zeros - 1, zeros)
    cfg = SimulationConfig(
        hardware=budget.hardware,
        perf=setup,
        scheduler=SchedulerConfig(max_num_batched_tokens=batch * (inp + out), max_num_seqs=batch),
    )
    cfg = replace(cfg, workload=replace(cfg.workload, max_len=inp + out))
    r = run_simulation(cfg, trace=trace)
    ref = perf(model, gpu, input_len=inp, output_len=out, batch_size=batch, engine="vllm")
    assert r.step_time_model == "perf (vllm)" and r.preemptions == 0
    assert r.mean_batch_size == pytest.approx(batch, rel=0.05)
    assert r.tpot_ms_p50 == pytest.approx(ref.tpot_ms, rel=0.02)


def test_paper_setup_and_fallback_roofline() -> None:
    setup = opt13b_a100_40gb_perf()
    assert setup.engine.name == "vllm-0.5" and setup.kv_capacity_tokens == 15_728
    wl = replace(SimulationConfig().workload, duration_s=20.0)
    assert run_simulation(SimulationConfig(workload=wl)).step_time_model == "roofline"
    assert (
        run_simulation(SimulationConfig(workload=wl, perf=setup)).step_time_model
        == "perf (vllm-0.5)"
    )
