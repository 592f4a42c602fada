"""`perf --dataset`: a length distribution drives the batch, the prefill mix and the latency percentiles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vramplan.errors import InputError
from vramplan.perf import LengthMix, build_setup, max_batch, perf, predict
from vramplan.run import run
from vramplan.simulate.workload import dataset_samples, length_mix

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def s8() -> object:
    return build_setup("meta-llama/Llama-3.1-8B", "H100-80GB", max_model_len=4096)


@pytest.fixture(scope="module")
def tight() -> object:
    """A KV-bound layout: 8B on one L4, where the pool holds a few dozen ShareGPT sequences."""
    return build_setup("meta-llama/Llama-3.1-8B", "L4", max_model_len=2048)


def _mix(prompt: np.ndarray, output: np.ndarray) -> LengthMix:
    return LengthMix.from_samples(prompt, output, {"name": "test"})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 4096), st.integers(1, 4096)), min_size=1, max_size=50))
def test_moments_of_any_mix(rows: list[tuple[int, int]]) -> None:
    p = np.array([r[0] for r in rows], dtype=float)
    o = np.array([r[1] for r in rows], dtype=float)
    m = _mix(p, o)
    assert m.input_tokens == pytest.approx(p.mean())
    assert m.output_tokens == pytest.approx(o.mean())
    # Cauchy-Schwarz: the attention-weighted prompt length is at least the mean prompt
    assert m.prefill_seq_tokens >= p.mean() * (1 - 1e-12)
    # a running sequence holds between its shortest and its longest request
    assert p.min() + o.min() / 2 - 1e-9 <= m.resident_tokens <= (p + o).max()
    assert m.max_total_tokens == int((p + o).max())
    assert m.output_p50_tokens <= m.output_p99_tokens


def test_equal_lengths_give_the_fixed_length_prediction(s8) -> None:
    mix = _mix(np.full(10, 700), np.full(10, 300))
    for kw in (
        {"max_throughput": True},
        {"concurrency": 32},
        {"request_rate": 3.0},
        {"batch_size": 8},
        {"concurrency": 32, "burst": True},
    ):
        a = predict(s8, 700, 300, **kw)
        b = predict(s8, 0, 0, lengths=mix, **kw)
        for key in ("ttft_ms", "tpot_ms", "output_tokens_per_s", "latency_s", "batch_size"):
            assert getattr(a, key) == getattr(b, key), (kw, key)
        assert b.dataset == {"name": "test"} and a.dataset is None
        assert b.latency_p50_s == pytest.approx(b.latency_s)


def test_spread_outputs_hold_more_kv_than_their_mean(tight) -> None:
    """Long outputs stay longer in the batch: at the same mean, spread lengths fit fewer sequences."""
    share = dataset_samples("sharegpt")
    mix = _mix(share.prompt_len, share.output_len)
    fixed = LengthMix.fixed(round(mix.input_tokens), round(mix.output_tokens))
    assert mix.resident_tokens > fixed.resident_tokens * 1.15
    assert max_batch(tight, mix) < max_batch(tight, fixed)
    spread = predict(tight, 0, 0, lengths=mix, max_throughput=True)
    same = predict(tight, fixed.input_tokens, fixed.output_tokens, max_throughput=True)  # type: ignore[arg-type]
    assert spread.batch_size < same.batch_size
    assert spread.output_tokens_per_s < same.output_tokens_per_s


@pytest.mark.parametrize(
    "kw", [{"max_throughput": True}, {"request_rate": 1.0}, {"concurrency": 24}]
)
def test_longer_outputs_move_every_figure_the_right_way(tight, kw) -> None:
    share = dataset_samples("sharegpt")
    short = _mix(share.prompt_len, share.output_len)
    long = _mix(share.prompt_len, share.output_len * 2)
    a = predict(tight, 0, 0, lengths=short, **kw)
    b = predict(tight, 0, 0, lengths=long, **kw)
    assert a.stable and b.stable
    assert b.latency_s > a.latency_s
    assert b.latency_p50_s > a.latency_p50_s and b.latency_p99_s > b.latency_p50_s  # type: ignore[operator]
    if "request_rate" in kw:
        # a fixed offered rate keeps its request rate; requests stay longer, so more are running
        assert b.requests_per_s == a.requests_per_s and b.batch_size > a.batch_size
    else:
        assert b.requests_per_s < a.requests_per_s
    if "max_throughput" in kw:
        assert b.batch_size < a.batch_size  # the KV pool holds fewer, longer sequences
    else:
        # the same running batch attends over longer contexts: each decode step reads more KV
        assert b.batch_size >= a.batch_size and b.decode_step_ms > a.decode_step_ms


def test_perf_api_reports_the_dataset() -> None:
    r = perf(
        "llama-3.1-8b", "H100-80GB", lengths=length_mix("sharegpt"), request_rate=4.0
    ).to_dict()
    ds = r["dataset"]
    assert ds["name"] == "sharegpt" and ds["requests"] > 1000
    assert ds["input_tokens"]["p50"] < ds["input_tokens"]["mean"] < ds["input_tokens"]["p99"]
    assert r["input_len"] == round(ds["input_tokens"]["mean"])
    assert r["latency_p50_s"] < r["latency_s"] < r["latency_p99_s"]
    assert any("dataset sharegpt" in a for a in r["assumptions"])
    with pytest.raises(InputError, match="--dataset"):
        perf("llama-3.1-8b", "H100-80GB", request_rate=4.0)


def test_run_layer_dataset_rules(tmp_path: Path) -> None:
    base = {"model": "llama-3.1-8b", "gpu": "H100-80GB", "max_throughput": True}
    sonnet = run("perf", {**base, "dataset": "sonnet"})
    assert (sonnet["input_len"], sonnet["output_len"]) == (550, 150)
    fixed = run("perf", {**base, "dataset": "sonnet", "output_len": 300})
    assert fixed["output_len"] == 300 and fixed["dataset"]["output_len_fixed"] == 300
    with pytest.raises(InputError, match="drop --input-len"):
        run("perf", {**base, "dataset": "sharegpt", "input_len": 100})
    f = tmp_path / "lengths.jsonl"
    f.write_text("\n".join(json.dumps({"prompt_len": p, "output_len": 100}) for p in (50, 950)))
    got = run("perf", {**base, "dataset": str(f)})
    assert got["dataset"]["name"] == "lengths.jsonl" and got["input_len"] == 500
    # the service never reads a path it is sent
    with pytest.raises(InputError, match="unknown --dataset"):
        run("perf", {**base, "dataset": str(f)}, allow_files=False)


def test_cli_dataset_text_and_json(capsys) -> None:
    from vramplan.cli import main

    def call(*extra: str) -> str:
        try:
            main(["perf", "llama-3.1-8b", "--gpu", "H100-80GB", "--request-rate", "2", *extra])
        except SystemExit as e:
            assert e.code in (0, None)
        return capsys.readouterr().out

    text = call("--dataset", "openorca")
    assert "dataset openorca" in text and "p99" in text and "MLPerf" in text
    d = json.loads(call("--dataset", "openorca", "--json"))
    assert d["dataset"]["output_tokens"]["mean"] == pytest.approx(290, rel=0.02)
    assert d["latency_p99_s"] > d["latency_p50_s"]


# ------------------------------------------------------------------------- published dataset cases
def _accuracy_module():  # type: ignore[no-untyped-def]
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "perf_accuracy", ROOT / "benchmarks" / "perf_accuracy.py"
    )
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    assert spec is not None and spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def test_perf_dev_dataset_cases_run_on_their_dataset() -> None:
    """Every published case that names ShareGPT or OpenOrca is predicted on that dataset's lengths."""
    mod = _accuracy_module()
    cases = json.loads((ROOT / "tests" / "data" / "perf_dev.json").read_text())
    named = [c for c in cases if mod.dataset_of(c)]
    assert {mod.dataset_of(c) for c in named} == {"sharegpt", "openorca"} and len(named) == 8
    for c in named:
        _, _, how, mix = mod.lengths(c)
        assert mix is not None and not mix.synchronised and how.startswith(mod.dataset_of(c))
        for key, measured, predicted in mod.compare(c, mod.predict_case(c)):
            assert mod.ratio_error(measured, predicted) <= 2, (c["id"], key)
    # The run's printed totals set the means: KubeAI's 1,000 ShareGPT requests.
    kubeai = next(c for c in named if c["id"].startswith("kubeai"))
    _, _, how, mix = mod.lengths(kubeai)
    assert "run's mean" in how
    assert mix.input_tokens == pytest.approx(230.969, rel=0.005)
    assert mix.output_tokens == pytest.approx(194.523, rel=0.005)


def test_median_latency_of_sharegpt_runs_uses_the_median_output() -> None:
    """vLLM 0.6.0 ShareGPT runs (SGLang team's table): the median E2E is the median request's."""
    mod = _accuracy_module()
    cases = json.loads((ROOT / "tests" / "data" / "perf_dev.json").read_text())
    for cid in (
        "vllm060-llama31-8b-a100-sharegpt-rps8",
        "vllm060-llama31-70b-4xh100-sharegpt-rps4",
    ):
        case = next(c for c in cases if c["id"] == cid)
        rows = {k: (m, p) for k, m, p in mod.compare(case, mod.predict_case(case))}
        measured, predicted = rows["e2e_latency_ms_median"]
        assert abs(predicted - measured) / measured < 0.10, cid
