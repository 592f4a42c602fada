"""vLLM 0.26-0.34 profiles: what changed in each release line, checked against the formulas in its source.

Sources (read from the PyPI wheels): ``vllm/engine/arg_utils.py`` ``get_batch_defaults`` (tiers),
``vllm/config/cache.py`` (``gpu_memory_utilization``, ``enable_extensible_kv_cache``),
``vllm/v1/worker/extensible_kv_cache.py`` ``measure_kv_cache_bytes`` (v0.34 KV sizing).
"""

from __future__ import annotations

import pytest

from vramplan.engines.vllm import PROFILES, extensible_kv_bytes, predict_vllm

GIB = 1 << 30
LLAMA = {"model": "meta-llama/Llama-3.1-8B-Instruct", "max_model_len": 8192}


@pytest.mark.parametrize(
    "asked, used",
    [
        ("0.25.0", "0.25"),
        ("0.26.0", "0.26"),
        ("0.27.1", "0.26"),
        ("0.28.0", "0.28"),
        ("0.32.0", "0.28"),
        ("0.33.0", "0.33"),
        ("0.34.0", "0.34"),
    ],
)
def test_versions_resolve_to_their_release_line(asked: str, used: str) -> None:
    match = PROFILES.nearest_version(asked)
    assert (match.version, match.substituted) == (used, False)
    assert predict_vllm(LLAMA, gpu="H100", engine_version=asked).engine_version == used


def test_a_version_past_the_newest_is_named_as_substituted() -> None:
    pred = predict_vllm(LLAMA, gpu="H100", engine_version="0.40.0")
    assert pred.engine_version == "0.34"
    assert any("0.40.0" in a and "0.34" in a for a in pred.assumptions)


@pytest.mark.parametrize(
    "version, gpu, seqs, tokens",
    [
        ("0.27.0", "B200", 1024, 8192),  # H100 tier: the >= 160 GiB tier does not exist yet
        ("0.28.0", "B200", 1024, 16384),  # >= 160 GiB tier: 16,384 for the API server too
        ("0.28.0", "H200", 1024, 8192),  # 140 GiB: still the H100 tier
        ("0.28.0", "A100-80GB", 256, 2048),  # A100 kept small by name
        ("0.32.0", "GB10", 1024, 8192),  # 119.7 GiB, not an A100: large tier before 0.33
        ("0.33.0", "GB10", 256, 2048),  # v0.33 keeps cc 12.1 on the small tier
    ],
)
def test_batch_default_tiers(version: str, gpu: str, seqs: int, tokens: int) -> None:
    s = predict_vllm(LLAMA, gpu=gpu, engine_version=version, fixes=False).settings
    assert (s["max_num_seqs"], s["max_num_batched_tokens"]) == (seqs, tokens)


def test_extensible_kv_bytes_matches_vllm_measure_kv_cache_bytes() -> None:
    """The worked numbers of vLLM's formula with no other process on the device."""

    def vllm_measure(init_free: int, free: int, committed: int, requested: int, peak: int) -> int:
        # extensible_kv_cache.py measure_kv_cache_bytes, margin floor 1 GiB, fraction 0.75
        non_kv_used = init_free - free - committed
        headroom = free + committed
        margin = max(1 << 30, int(peak * 0.75))
        return max(min(requested - non_kv_used, headroom - margin) - peak, 0)

    total = 80 * GIB
    for non_kv, peak, util in [
        (16 * GIB, 2 * GIB, 1.0),
        (16 * GIB, GIB // 2, 1.0),
        (60 * GIB, 4 * GIB, 0.9),
        (16 * GIB, 2 * GIB, 0.5),
        (79 * GIB, GIB, 1.0),
    ]:
        requested = -(-int(total * util * 1000) // 1000)
        free = total - non_kv  # after warmup with the committed prefix released
        want = vllm_measure(total, free, 0, requested, peak)
        assert extensible_kv_bytes(total, requested, non_kv, peak, "nvidia") == want
    # ROCm keeps a 3 GiB floor
    assert (
        extensible_kv_bytes(total, total, 16 * GIB, GIB, "amd") == total - 16 * GIB - 3 * GIB - GIB
    )


def test_034_default_sizes_from_free_memory_at_utilization_one() -> None:
    """0.34 = 0.33 run at utilization 1.0, less the margin max(1 GiB, 0.75 x activation peak)."""
    new = predict_vllm(LLAMA, gpu="H100", engine_version="0.34.0", fixes=False)
    old = predict_vllm(
        {**LLAMA, "gpu_memory_utilization": 1.0}, gpu="H100", engine_version="0.33.0", fixes=False
    )
    assert new.settings["gpu_memory_utilization"] == 1.0
    peak = new.activation_peak_gib * GIB
    margin = max(GIB, int(peak * 0.75))
    assert new.available_kv_cache_gib == pytest.approx(
        old.available_kv_cache_gib - margin / GIB, abs=1e-9
    )
    assert any("extensible KV cache" in a for a in new.assumptions)
    assert (
        new.kv_cache_tokens
        > predict_vllm(LLAMA, gpu="H100", engine_version="0.33.0").kv_cache_tokens
    )


def test_034_explicit_utilization_caps_the_pool() -> None:
    capped = predict_vllm(
        {**LLAMA, "gpu_memory_utilization": 0.5}, gpu="H100", engine_version="0.34.0", fixes=False
    )
    old = predict_vllm(
        {**LLAMA, "gpu_memory_utilization": 0.5}, gpu="H100", engine_version="0.33.0", fixes=False
    )
    # At 0.5 the budget binds, not the margin: the same pool as estimate-based sizing.
    assert capped.available_kv_cache_gib == pytest.approx(old.available_kv_cache_gib, abs=1e-9)


def test_034_kv_cache_memory_bytes_turns_extensible_sizing_off() -> None:
    pred = predict_vllm(
        {**LLAMA, "kv_cache_memory_bytes": 10 * GIB}, gpu="H100", engine_version="0.34.0"
    )
    assert pred.available_kv_cache_gib == pytest.approx(10.0)
    assert pred.settings["gpu_memory_utilization"] == 0.92
    assert not any("extensible KV cache" in a for a in pred.assumptions)


@pytest.mark.parametrize("version, chunk", [("0.6.3", 512), ("0.7.3", 2048)])
def test_v0_turns_chunked_prefill_on_past_32k(version: str, chunk: int) -> None:
    long = predict_vllm(
        {**LLAMA, "max_model_len": 65536}, gpu="A100-80GB", engine_version=version, fixes=False
    )
    assert long.settings["max_num_batched_tokens"] == chunk
    assert any("chunked prefill by itself" in a for a in long.assumptions)
    # Without it the profile run would take the whole 64K context as one batch: a far larger peak.
    off = predict_vllm(
        {**LLAMA, "max_model_len": 65536, "enable_chunked_prefill": False},
        gpu="A100-80GB",
        engine_version=version,
        fixes=False,
    )
    assert off.settings["max_num_batched_tokens"] == 65536
    assert long.activation_peak_gib < off.activation_peak_gib
    assert long.kv_cache_tokens > off.kv_cache_tokens


def test_v0_keeps_whole_context_batches_at_32k_and_for_sliding_windows() -> None:
    at_limit = predict_vllm(
        {**LLAMA, "max_model_len": 32768}, gpu="A100-80GB", engine_version="0.6.3"
    )
    assert at_limit.settings["max_num_batched_tokens"] == 32768
    import dataclasses

    from vramplan.model.load import spec_of

    llama = spec_of("meta-llama/Llama-3.1-8B-Instruct")
    sliding = dataclasses.replace(
        llama, layer_types=("sliding_attention",) * llama.num_layers, sliding_window=4096
    )
    for spec in (sliding, spec_of("google/gemma-3-27b-it")):  # sliding window; multimodal
        pred = predict_vllm(
            {**LLAMA, "max_model_len": 65536}, gpu="A100-80GB", engine_version="0.6.3", spec=spec
        )
        assert pred.settings["max_num_batched_tokens"] == 65536, spec.name


def test_chunked_prefill_flags_parse() -> None:
    from vramplan.engines.vllm_args import parse_vllm_args

    assert (
        parse_vllm_args(["m", "--no-enable-chunked-prefill"]).settings["enable_chunked_prefill"]
        is False
    )
    assert (
        parse_vllm_args(["m", "--enable-chunked-prefill"]).settings["enable_chunked_prefill"]
        is True
    )
