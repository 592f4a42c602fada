"""vLLM V0 profile run: the dummy sampler's rows, its copy count on the V0 fallback, the chunk default.

Sources (read from the PyPI wheels 0.4.0.post1, 0.4.3, 0.5.0, 0.5.3.post1, 0.5.5, 0.6.0, 0.6.3-0.6.6,
0.7.3, 0.8.5, 0.9.2, 0.10.0): ``vllm/worker/model_runner.py`` ``profile_run`` / ``_dummy_run``,
``vllm/model_executor/layers/sampler.py``, ``logits_processor.py``, ``sampling_metadata.py``,
``vllm/config.py`` ``SchedulerConfig``, ``vllm/engine/arg_utils.py``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vramplan.engines.vllm import (
    CUBLAS_WORKSPACE_OLDER,
    PROFILES,
    V0_SAMPLER_COPIES,
    predict_vllm,
    profile_peak_bytes,
)
from vramplan.memory.activations import ActivationAssumptions
from vramplan.model.load import spec_of

GIB = 1 << 30
LLAMA_1B = {"model": "meta-llama/Llama-3.2-1B-Instruct", "max_model_len": 8192}
LLAMA_8B = {"model": "meta-llama/Llama-3.1-8B-Instruct"}


def test_v0_fallback_of_010_samples_with_the_v0_sampler() -> None:
    """On a T4 (compute capability 7.5) vLLM 0.10.0 falls back to V0 (arg_utils.py:1345-1350,
    "Compute Capability < 8.0"), whose profile run is V0's ``_dummy_run`` (worker/model_runner.py:1231,
    ``SamplingParams(top_p=0.99, top_k=self.vocab_size - 1)`` over ``max_num_seqs`` = 256 dummy
    sequences, arg_utils.py:1522-1524) and whose Sampler is the 0.6.5 code (sampler.py: forward and
    ``_apply_top_k_top_p`` identical but for typing). So the sampler phase is::

        V0_SAMPLER_COPIES x 256 x vocab x 4 + tokens x hidden x 2 + cuBLAS workspace (cc < 9.0)

    and not the V1 0.10 row's 3.67 copies: a 128K-vocabulary model at 8,192 batched tokens.
    """
    spec = spec_of(LLAMA_1B["model"])
    pred = predict_vllm(LLAMA_1B, gpu="T4", engine_version="0.10.0", fixes=False)
    assert pred.settings["vllm_generation"] == "v0"
    assert PROFILES.nearest_version("0.10.0").value.sampler_copies < V0_SAMPLER_COPIES
    tokens = pred.settings["max_num_batched_tokens"]
    assert (tokens, pred.settings["max_num_seqs"]) == (8192, 256)
    expected = (
        int(256 * spec.vocab_size * 4 * V0_SAMPLER_COPIES)
        + tokens * spec.hidden_size * 2
        + CUBLAS_WORKSPACE_OLDER
    )
    assert pred.extra["activation_sampler_gib"] == pytest.approx(expected / GIB, rel=1e-9)
    # The same sampler, the same batch: the same activation as the V0 release line (0.7.3) on that GPU.
    v0 = predict_vllm(LLAMA_1B, gpu="T4", engine_version="0.7.3", fixes=False)
    assert pred.activation_peak_gib == pytest.approx(v0.activation_peak_gib, rel=1e-9)


def test_v1_on_the_same_release_keeps_its_own_sampler() -> None:
    """On an Ampere GPU 0.10.0 runs V1: its row's calibrated sampler count, not V0's."""
    spec = spec_of(LLAMA_1B["model"])
    pred = predict_vllm(LLAMA_1B, gpu="A10", engine_version="0.10.0", fixes=False)
    assert pred.settings["vllm_generation"] == "v1"
    seqs = pred.settings["max_num_seqs"]
    v1_copies = PROFILES.nearest_version("0.10.0").value.sampler_copies
    logits = int(
        min(seqs, pred.settings["max_num_batched_tokens"]) * spec.vocab_size * 4 * v1_copies
    )
    tokens = pred.settings["max_num_batched_tokens"]
    sampler_bytes = pred.extra["activation_sampler_gib"] * GIB
    assert sampler_bytes == pytest.approx(
        logits + tokens * spec.hidden_size * 2 + CUBLAS_WORKSPACE_OLDER, rel=1e-9
    )


@settings(max_examples=40, deadline=None)
@given(
    tokens=st.integers(min_value=2048, max_value=65536),
    seqs=st.integers(min_value=1, max_value=2048),
)
def test_v0_sampler_rows_are_sequences_not_batched_tokens(tokens: int, seqs: int) -> None:
    """V0's profile run makes ``max_num_seqs`` prompts of ``tokens // seqs`` tokens
    (worker/model_runner.py:1283-1285 in 0.6.5), each with one sampled position: the logits processor
    keeps only ``selected_token_indices`` (logits_processor.py ``_prune_hidden_states``), which hold
    the last prompt token of each sequence unless ``prompt_logprobs`` is set (sampling_metadata.py),
    and the dummy SamplingParams set none. So the vocabulary term scales with min(seqs, tokens) and
    grows by nothing with the token count; only the kept hidden states (tokens x hidden) do.
    """
    spec = spec_of(LLAMA_8B["model"])
    a = replace(ActivationAssumptions(), sampler_logit_copies=V0_SAMPLER_COPIES)
    one = profile_peak_bytes(spec, tokens, seqs, 1, a, 8.0)
    more = profile_peak_bytes(spec, tokens + 1024, seqs, 1, a, 8.0)
    hidden_step = 1024 * spec.hidden_size * 2
    if seqs <= tokens:
        assert more["sampler"] - one["sampler"] == hidden_step
    rows = min(seqs, tokens)
    vocab_term = one["sampler"] - tokens * spec.hidden_size * 2 - one["cublas"]
    assert vocab_term == int(rows * spec.vocab_size * 4 * V0_SAMPLER_COPIES)


@pytest.mark.parametrize(
    "version, chunk",
    [("0.6.4", 512), ("0.6.5", 2048), ("0.6.6", 2048)],
)
def test_v0_chunked_prefill_default_moves_to_2048_in_065(version: str, chunk: int) -> None:
    """``SchedulerConfig`` with chunked prefill and no ``max_num_batched_tokens``: 512 in 0.6.4
    (config.py:1114), 2048 from 0.6.5 (config.py:1344; 0.6.6 config.py:1438). Past 32K context V0
    turns chunked prefill on by itself (0.6.5 arg_utils.py:1064-1085), so the profile batch is that.
    """
    pred = predict_vllm(
        {**LLAMA_8B, "max_model_len": 65536}, gpu="A100-80GB", engine_version=version, fixes=False
    )
    assert pred.settings["max_num_batched_tokens"] == chunk
    assert any(f"{chunk:,} batched tokens per step" in a for a in pred.assumptions)


@pytest.mark.parametrize("version", ["0.8.5", "0.9.2", "0.10.0"])
def test_v0_fallback_turns_chunked_prefill_on_past_32k(version: str) -> None:
    """The V0 fallback's ``_set_default_args_v0`` (0.8.5 arg_utils.py:1505-1524, 0.10.0
    arg_utils.py:1468-1485) enables chunked prefill past 32K context on CUDA, and SchedulerConfig then
    takes 2048 batched tokens (0.8.5 config.py:68 ``_DEFAULT_MAX_NUM_BATCHED_TOKENS``; 0.9.2
    utils/__init__.py:81, 0.10.0 utils/__init__.py:84 ``DEFAULT_MAX_NUM_BATCHED_TOKENS``): the profile
    batch is 2048 tokens, not the whole 64K context.
    """
    pred = predict_vllm(
        {"model": LLAMA_1B["model"], "max_model_len": 65536},
        gpu="T4",
        engine_version=version,
        fixes=False,
    )
    assert pred.settings["vllm_generation"] == "v0"
    assert pred.settings["max_num_batched_tokens"] == 2048
    assert any("2,048 batched tokens per step" in a for a in pred.assumptions)
    # V1 on an Ampere GPU keeps its own batch defaults (no V0 chunk note).
    v1 = predict_vllm(
        {"model": LLAMA_1B["model"], "max_model_len": 65536},
        gpu="A10",
        engine_version=version,
        fixes=False,
    )
    assert v1.settings["vllm_generation"] == "v1"
    assert not any("chunked prefill by itself" in a for a in v1.assumptions)


def test_v0_fallback_sampler_reproduces_the_t4_log_on_every_fallback_release() -> None:
    """Real log vllm-hfcookbook-llama32-3b-t4 (tests/data/real_logs.json): vLLM 0.8.2's V0 fallback on
    a T4, Llama-3.2-3B (128,256-token vocabulary), 192 seqs, 2,048 batched tokens: "PyTorch activation
    peak memory takes 0.90GiB". The V0 Sampler and ``_dummy_run`` are the same code in 0.8.5, 0.9.2
    and 0.10.0 (see the module docstring), so each fallback release predicts that figure; with the
    0.10 V1 row's 3.67 copies 0.10.0 predicted 0.36 GiB before.
    """
    case = {
        "model": "meta-llama/Llama-3.2-3B",
        "dtype": "float16",
        "max_model_len": 2048,
        "max_num_seqs": 192,
        "max_num_batched_tokens": 2048,
    }
    for version in ("0.8.2", "0.9.2", "0.10.0", "0.10.1.1"):
        pred = predict_vllm(case, gpu="T4", engine_version=version, fixes=False)
        assert pred.settings["vllm_generation"] == "v0"
        assert pred.activation_peak_gib == pytest.approx(0.90, rel=0.01), version


@pytest.mark.parametrize(
    "version, prefix_caching, tokens",
    [
        ("0.5.0", False, 65536),  # no automatic chunked prefill yet: the whole context is the batch
        ("0.5.3", False, 512),  # 0.5.3.post1 arg_utils.py:747-761, config.py:796
        ("0.5.3", True, 65536),  # ... but not with prefix caching (arg_utils.py:760)
        ("0.6.0", True, 65536),  # still excluded in 0.6.0 (arg_utils.py:843-861)
        ("0.6.1", True, 512),  # 0.6.1.post2 arg_utils.py:879-899 drops that condition
        ("0.6.3", True, 512),
    ],
)
def test_v0_automatic_chunked_prefill_by_release(
    version: str, prefix_caching: bool, tokens: int
) -> None:
    """Which V0 releases switch chunked prefill on past 32K context, and when prefix caching stops it."""
    pred = predict_vllm(
        {**LLAMA_8B, "max_model_len": 65536, "enable_prefix_caching": prefix_caching},
        gpu="A100-80GB",
        engine_version=version,
        fixes=False,
    )
    assert pred.settings["max_num_batched_tokens"] == tokens


def test_v0_chunk_blockers_per_release() -> None:
    """Hybrid (seqlen-agnostic Mamba) models kept it off in 0.5.4-0.6.2 (0.5.4 arg_utils.py:757-764),
    no longer from 0.6.3 (0.6.3 arg_utils.py:936-952); MLA models are kept off by the 0.8-0.10
    fallback (0.8.5 arg_utils.py:1507-1509); multimodal ones from 0.6.3 on.
    """
    from vramplan.engines.vllm import v0_auto_chunked_prefill
    from vramplan.hardware import resolve_gpu

    a100 = resolve_gpu("A100-80GB")
    hybrid = spec_of("Qwen/Qwen3-Next-80B-A3B-Thinking")
    mla = spec_of("deepseek-ai/DeepSeek-V2-Lite")
    dense = spec_of(LLAMA_8B["model"])
    assert hybrid.state is not None and mla.mla is not None
    blockers = {v: p.v0_chunk_blockers for v, p in PROFILES.entries.items()}
    assert not v0_auto_chunked_prefill(hybrid, a100, 65536, {}, blockers["0.6"])
    assert v0_auto_chunked_prefill(hybrid, a100, 65536, {}, blockers["0.6.3"])
    assert v0_auto_chunked_prefill(mla, a100, 65536, {}, blockers["0.7"])
    assert not v0_auto_chunked_prefill(mla, a100, 65536, {}, blockers["0.8"])
    for version in ("0.5.3", "0.6", "0.6.3", "0.8"):
        assert v0_auto_chunked_prefill(dense, a100, 65536, {}, blockers[version])
        assert not v0_auto_chunked_prefill(dense, a100, 32768, {}, blockers[version])
