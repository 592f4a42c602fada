"""Workload traces: determinism, preset statistics, file samples, input errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vramplan.errors import InputError
from vramplan.simulate.workload import LengthDist, WorkloadConfig, make_trace, preset_workload


def test_same_seed_same_trace() -> None:
    cfg = preset_workload("sharegpt", rate=3, duration_s=100, seed=7)
    a, b = make_trace(cfg), make_trace(cfg)
    assert np.array_equal(a.arrival_s, b.arrival_s)
    assert np.array_equal(a.prompt_len, b.prompt_len)
    assert np.array_equal(a.output_len, b.output_len)
    c = make_trace(preset_workload("sharegpt", rate=3, duration_s=100, seed=8))
    assert not np.array_equal(a.output_len, c.output_len)


@pytest.mark.parametrize(
    ("name", "p_mean", "o_mean"), [("sharegpt", 161.31, 337.99), ("alpaca", 19.31, 58.45)]
)
def test_presets_match_paper_means(name: str, p_mean: float, o_mean: float) -> None:
    t = make_trace(preset_workload(name, rate=10, num_requests=40_000, duration_s=None, seed=1))
    assert abs(t.prompt_len.mean() / p_mean - 1) < 0.03
    assert abs(t.output_len.mean() / o_mean - 1) < 0.03
    assert (t.prompt_len + t.output_len).max() <= 2048
    assert t.prompt_len.min() >= 1 and t.output_len.min() >= 1


def test_poisson_and_gamma_rates() -> None:
    for arrival, cv in (("poisson", 1.0), ("gamma", 3.0)):
        t = make_trace(WorkloadConfig(rate=5, duration_s=2000, arrival=arrival, cv=cv, seed=2))
        assert abs(len(t) / 10_000 - 1) < 0.1
        gaps = np.diff(t.arrival_s)
        assert abs(gaps.std() / gaps.mean() - cv) < 0.25 * cv
        assert t.arrival_s.max() < 2000


def test_fixed_uniform_and_lognormal_p99() -> None:
    cfg = WorkloadConfig(
        num_requests=5000,
        duration_s=None,
        prompt=LengthDist("uniform", low=10, high=20),
        output=LengthDist("lognormal", p50=100, p99=800),
        max_len=4096,
    )
    t = make_trace(cfg)
    assert t.prompt_len.min() >= 10 and t.prompt_len.max() <= 20
    assert abs(np.median(t.output_len) / 100 - 1) < 0.1
    assert abs(np.percentile(t.output_len, 99) / 800 - 1) < 0.2


def test_system_prompt_share() -> None:
    cfg = WorkloadConfig(
        num_requests=4000,
        duration_s=None,
        system_prompt_len=100,
        system_prompt_share=0.25,
        num_system_prompts=3,
    )
    t = make_trace(cfg)
    has = t.prefix_id >= 0
    assert abs(has.mean() - 0.25) < 0.03
    assert set(np.unique(t.prefix_id[has])) <= {0, 1, 2}
    assert np.all(t.prompt_len[has] == 228) and np.all(t.prefix_len[has] == 100)


def test_samples_from_csv_and_jsonl(tmp_path) -> None:
    csv_path = tmp_path / "s.csv"
    csv_path.write_text("prompt_len,output_len\n10,20\n30,40\n")
    jl = tmp_path / "s.jsonl"
    jl.write_text(
        "\n".join(json.dumps({"prompt_len": p, "output_len": o}) for p, o in ((10, 20), (30, 40)))
    )
    for path in (csv_path, jl):
        t = make_trace(WorkloadConfig(num_requests=200, duration_s=None, samples_path=str(path)))
        assert set(zip(t.prompt_len.tolist(), t.output_len.tolist())) == {(10, 20), (30, 40)}
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="prompt_len"):
        make_trace(WorkloadConfig(num_requests=5, duration_s=None, samples_path=str(bad)))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": 0},
        {"arrival": "weibull"},
        {"n": 2, "beam_width": 2},
        {"num_requests": 5},
        {"prompt": LengthDist("lognormal", mean=10, p50=20)},
        {"prompt": LengthDist("zipf")},
    ],
)
def test_bad_inputs_raise_input_error(kwargs) -> None:
    with pytest.raises(InputError):
        make_trace(WorkloadConfig(**kwargs))


def test_unknown_preset() -> None:
    with pytest.raises(InputError, match="sharegpt"):
        preset_workload("wikitext")
