"""`vramplan simulate`: JSON contract, agreement with the library, plots, one-line errors."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from vramplan.cli import main
from vramplan.simulate import SchedulerConfig, SimulationConfig, preset_workload, run_simulation
from vramplan.simulate.adapter import hardware_from_estimate, kv_budget, perf_setup_for

KEYS = (
    "token_state_share",
    "reserved_share",
    "internal_fragmentation_share",
    "external_fragmentation_share",
    "free_share",
    "mean_batch_size",
    "throughput_tokens_per_s",
    "requests_completed",
    "requests_rejected",
    "preemptions",
    "swapped_bytes",
    "ttft_ms_p50",
    "ttft_ms_p99",
    "tpot_ms_p50",
    "latency_s_p50",
    "latency_s_p99",
    "events_per_s",
    "sharing_saving",
    "timeseries",
)
BASE = [
    "simulate",
    "opt-13b",
    "--gpu",
    "A100-40GB",
    "--duration",
    "30",
    "--rate",
    "2",
    "--seed",
    "5",
]
TIMING = ("wall_s", "events_per_s")  # wall-clock dependent, the rest is deterministic


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _same(a: object, b: object) -> bool:
    """Equality where JSON's null stands for NaN."""
    if isinstance(b, float) and math.isnan(b):
        return a is None
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_json_matches_run_simulation(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run([*BASE, "--json"], capsys)
    assert code == 0
    got = json.loads(out)
    assert set(KEYS) <= set(got)
    assert got["kv_budget"]["kv_slots"] == got["capacity_slots"]
    budget = kv_budget("opt-13b", "A100-40GB")
    cfg = SimulationConfig(
        workload=preset_workload("sharegpt", rate=2.0, duration_s=30.0, seed=5),
        hardware=hardware_from_estimate("opt-13b", "A100-40GB"),
        allocator="paged",
        scheduler=replace(SchedulerConfig(), seed=5),
        perf=perf_setup_for(budget, "vllm"),
    )
    ref = json.loads(json.dumps(run_simulation(cfg).to_dict(), default=str).replace("NaN", "null"))
    for k in ref:
        if k not in TIMING:
            assert _same(got[k], ref[k]), k


def test_all_allocators_keyed_and_same_seed_identical(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*BASE, "--allocator", "all", "--kv-memory", "12GiB", "--json"]
    runs = []
    for _ in range(2):
        code, out, _ = _run(argv, capsys)
        assert code == 0
        runs.append(json.loads(out))
    assert list(runs[0]) == ["max", "pow2", "oracle", "paged", "radix", "tgi"]
    for name, d in runs[0].items():
        assert set(KEYS) <= set(d) and d["allocator"] == name and d["capacity_slots"] == 15_728
        for k in TIMING:
            d.pop(k), runs[1][name].pop(k)
    assert runs[0] == runs[1]


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run([*BASE, "--allocator", "all"], capsys)
    assert code == 0 and not err
    for word in ("max", "pow2", "oracle", "paged", "radix", "token states", "token slots"):
        assert word in out


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plot_writes_file(tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / f"kv{suffix}"
    code, _, _ = _run([*BASE, "--plot", str(path)], capsys)
    assert code == 0
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in data


def test_samples_file_workload(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "lens.jsonl"
    f.write_text(
        "\n".join(
            json.dumps({"prompt_len": p, "output_len": o})
            for p, o in [(20, 50), (300, 100), (64, 64)]
        )
    )
    code, out, _ = _run([*BASE, "--workload", str(f), "--json"], capsys)
    assert code == 0 and json.loads(out)["requests_completed"] > 0


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--rate", "-1"], "--rate"),
        (["--rate", "0"], "--rate"),
        (["--duration", "100000"], "--duration"),
        (["--workload", "nope.csv"], "does not exist"),
        (["--workload", "lmsys"], "unknown --workload"),
        (["--allocator", "buddy"], "unknown --allocator"),
        (["--block-size", "0"], "--block-size"),
        (["--n", "2", "--beam-width", "2"], "not both"),
        (["--preemption", "never"], "--preemption"),
        (["--engine-mode", "v2"], "--engine-mode"),
        (["--engine-mode", "v1", "--preemption", "swap"], "recompute only"),
        (["--engine", "nope"], "unknown engine"),
        (["--step-time", "exact"], "--step-time"),
        (["--allocator", "tgi", "--attention-backend", "xformers"], "attention backend"),
        (["--allocator", "tgi", "--max-new-tokens", "0"], "max_new_tokens"),
        (["--plot", "out.pdf"], ".png or .svg"),
        (["--kv-memory", "-3GiB"], "memory size"),
        (["--gpu-memory-utilization", "1.2"], "gpu-memory-utilization"),
    ],
)
def test_bad_inputs_exit_1_with_one_line(
    extra: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run([*BASE, *extra], capsys)
    assert code == 1, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], err


def test_step_time_and_engine_options(capsys: pytest.CaptureFixture[str]) -> None:
    """--step-time roofline is the simulator's own model; --engine picks vramplan perf's profile."""
    got = {}
    for extra in (
        ["--step-time", "roofline"],
        ["--engine", "vllm-0.5"],
        ["--engine-mode", "v1", "--n", "2"],
        ["--allocator", "tgi", "--attention-backend", "paged"],
    ):
        code, out, err = _run([*BASE, *extra, "--json"], capsys)
        assert code == 0, err
        got[extra[1]] = json.loads(out)
    assert got["roofline"]["step_time_model"] == "roofline"
    assert got["vllm-0.5"]["step_time_model"] == "perf (vllm-0.5)"
    assert got["v1"]["engine_mode"] == "v1" and got["v1"]["requests_completed"] > 0
    assert got["tgi"]["allocator"] == "tgi" and got["tgi"]["preemptions"] == 0
