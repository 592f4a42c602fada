"""Serving-side terms of the perf model: the HTTP front end, prefix-cache hits, unmixed prefill steps."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vramplan.errors import InputError
from vramplan.perf import ENGINES, LengthMix, _mixed_cycle, build_setup, predict, step_time


@pytest.fixture(scope="module")
def s8() -> object:
    return build_setup("meta-llama/Llama-3.1-8B", "H100-80GB", max_model_len=4096)


def test_front_end_is_in_served_ttft_and_latency_only(s8) -> None:
    """One closed-loop client sees the offline batch-of-one figures plus the front end, nothing else."""
    offline = predict(s8, 1000, 200, batch_size=1)
    served = predict(s8, 1000, 200, concurrency=1)
    front_ms = s8.engine.frontend_s * 1e3
    assert served.ttft_ms - offline.ttft_ms == pytest.approx(front_ms, abs=1e-6)
    assert (served.latency_s - offline.latency_s) * 1e3 == pytest.approx(front_ms, abs=1e-6)
    assert served.tpot_ms == pytest.approx(offline.tpot_ms)
    assert any("front end" in a for a in served.assumptions)
    assert not any("front end" in a for a in offline.assumptions)


def test_front_end_differs_by_engine() -> None:
    """llama-server tokenises in-process (C++); the Python/Triton servers pay more per request."""
    assert ENGINES["llamacpp"].frontend_s < ENGINES["vllm"].frontend_s
    s = build_setup("meta-llama/Llama-3.1-8B", "H100-80GB", max_model_len=4096)
    a = predict(replace(s, engine=replace(s.engine, frontend_s=0.0)), 500, 50, request_rate=1.0)
    b = predict(s, 500, 50, request_rate=1.0)
    assert b.ttft_ms - a.ttft_ms == pytest.approx(s.engine.frontend_s * 1e3, rel=1e-9)


def test_prefix_hits_attention_pairs_match_the_token_sum() -> None:
    """Prefilled tokens x attention length / 2 is the causal pairs of the uncached part of a prompt.

    A prompt of L tokens whose first hL are cached: token t (0-based, t >= hL) attends t + 1 keys; the sum
    over t is (L^2 - (hL)^2)/2 + (L - hL)/2, whose leading term the mix's moments must give.
    """
    for length, hit in ((1000, 0.0), (1000, 0.5), (4096, 0.9), (64, 0.25)):
        mix = replace(LengthMix.fixed(length, 10), prefix_hit_rate=hit)
        cached = hit * length
        exact = sum(t + 1 for t in range(int(cached), length))
        modelled = mix.prefill_tokens * mix.prefill_attention_tokens / 2
        assert modelled == pytest.approx((length**2 - cached**2) / 2, rel=1e-12)
        # the rest is the linear term and the whole-token rounding of the cached prefix
        assert abs(exact - modelled) <= (length - cached) / 2 + length
        assert mix.prefill_tokens == pytest.approx(length - cached)


@settings(max_examples=30, deadline=None)
@given(
    h1=st.floats(0.0, 0.95),
    dh=st.floats(0.0, 0.04),
    mode=st.sampled_from(["batch", "rate", "conc"]),
)
def test_more_prefix_hits_never_slow_the_first_token(h1: float, dh: float, mode: str) -> None:
    s = build_setup("meta-llama/Llama-3.1-8B", "H100-80GB", max_model_len=4096)
    load = {
        "batch": dict(batch_size=4),
        "rate": dict(request_rate=2.0),
        "conc": dict(concurrency=8),
    }
    a = predict(s, 2000, 100, prefix_hit_rate=h1, **load[mode])
    b = predict(s, 2000, 100, prefix_hit_rate=h1 + dh, **load[mode])
    assert b.ttft_ms <= a.ttft_ms * (1 + 1e-9)
    assert b.prefill_ms <= a.prefill_ms * (1 + 1e-9)
    # cached blocks are shared, not absent: the KV a sequence holds and the batch bound do not change
    assert b.details["max_batch"] == a.details["max_batch"]


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5])
def test_prefix_hit_rate_out_of_range_is_refused(s8, bad: float) -> None:
    with pytest.raises(InputError, match="prefix-cache hit rate"):
        predict(s8, 100, 10, batch_size=1, prefix_hit_rate=bad)


def test_cli_and_api_take_the_prefix_hit_rate(capsys) -> None:
    from vramplan.cli import main
    from vramplan.run import run

    args = ["perf", "llama-3.1-8b", "--gpu", "H100-80GB", "--input-len", "2000"]
    args += ["--output-len", "100", "--concurrency", "4", "--json"]
    answers = []
    for extra in ([], ["--prefix-hit-rate", "0.75"]):
        try:
            main(args + extra)
        except SystemExit as e:
            assert e.code in (0, None)
        answers.append(json.loads(capsys.readouterr().out))
    cold, warm = answers
    assert warm["ttft_ms"] < cold["ttft_ms"]
    body = dict(model="llama-3.1-8b", gpu="H100-80GB", input_len=2000, output_len=100)
    same = run("perf", {**body, "concurrency": 4, "prefix_hit_rate": 0.75})
    assert same["ttft_ms"] == warm["ttft_ms"]
    with pytest.raises(InputError, match="--prefix-hit-rate 1.0 is out of range"):
        run("perf", {**body, "concurrency": 4, "prefix_hit_rate": 1.0})


def test_unmixed_prefill_pays_a_whole_step_per_waiting_prompt() -> None:
    """SGLang runs prefill as its own batch (enable_mixed_chunk is off by default): at a low arrival
    rate each prompt gets a step of its own that reads every weight again."""
    assert ENGINES["sglang"].chunked_prefill is False
    s = build_setup("meta-llama/Llama-3.1-8B", "H100-80GB", engine="sglang", max_model_len=4096)
    mix = LengthMix.fixed(300, 200)
    _, _, alone = _mixed_cycle(s, 16, mix, arrivals_per_step=0.2)
    assert alone == pytest.approx(float(step_time(s, 300, 0, 0, 300).total))
    _, _, saturated = _mixed_cycle(s, 16, mix)
    assert saturated < alone  # waiting prompts share one weight read when the engine is saturated
    _, _, two = _mixed_cycle(s, 16, mix, arrivals_per_step=2.0)
    assert two == pytest.approx(float(step_time(s, 600, 0, 0, 300).total) / 2)


@pytest.mark.parametrize(
    ("engine", "version", "row"),
    [
        ("vllm", None, "vllm"),
        ("vllm", "0.5.4", "vllm-0.5"),
        ("vllm", "0.6.0", "vllm"),
        ("sglang", "0.3.0", "sglang-0.3"),
        ("sglang", "0.4.0", "sglang"),
        ("sglang", "0.5.23", "sglang"),
        ("trtllm", "0.14.0", "trtllm"),
    ],
)
def test_engine_version_picks_the_perf_row(engine: str, version: str | None, row: str) -> None:
    """`--engine-version` changes the step model where the engine changed: vLLM before 0.6 ran its CPU
    work synchronously, SGLang before 0.4 had no overlap scheduler."""
    from vramplan.perf import engine_profile

    assert engine_profile(engine, version).name == row


def test_old_sglang_steps_pay_their_cpu_time() -> None:
    new = build_setup("meta-llama/Llama-3.1-8B", "A100-80GB", engine="sglang", max_model_len=4096)
    old = build_setup(
        "meta-llama/Llama-3.1-8B",
        "A100-80GB",
        engine="sglang",
        engine_version="0.3.0",
        max_model_len=4096,
    )
    assert old.engine.name == "sglang-0.3" and old.kv_capacity_tokens > 0
    gap = float(step_time(old, 0, 32, 32 * 500).total) - float(
        step_time(new, 0, 32, 32 * 500).total
    )
    expected = (old.engine.step_overhead_s - new.engine.step_overhead_s) + 32 * (
        old.engine.per_seq_overhead_s - new.engine.per_seq_overhead_s
    )
    assert gap == pytest.approx(expected)
