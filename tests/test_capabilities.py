"""The GPU capability table: estimate, engines and planner refuse what a GPU generation cannot run."""

from __future__ import annotations

import pytest

from vramplan.capabilities import (
    REQUIREMENTS,
    compute_capability,
    features,
    refusals,
    vllm_version_error,
)
from vramplan.estimator import estimate
from vramplan.hardware import list_gpus, resolve_gpu
from vramplan.precision import resolve_precision


def test_every_nvidia_gpu_has_a_compute_capability() -> None:
    for gpu in list_gpus():
        if gpu.vendor == "nvidia":
            assert compute_capability(gpu) is not None, gpu.name


@pytest.mark.parametrize(
    ("gpu", "quantization", "dtype", "runs"),
    [
        ("T4", None, "bf16", False),  # bf16 needs 8.0
        ("T4", None, None, True),  # --dtype auto: engines fall back to float16
        ("A100-80GB", None, "bf16", True),
        ("T4", "fp8", None, False),  # fp8 needs 8.9, 8.0 via Marlin
        ("A100-80GB", "fp8", None, True),  # weight-only Marlin
        ("L4", "fp8", None, True),  # native (8.9)
        ("V100-32GB", "awq", None, False),  # AWQ needs 7.5
        ("T4", "awq", None, True),
        ("V100-32GB", "gptq", None, True),  # GPTQ 6.0
        ("T4", "w4a16", None, False),  # Marlin W4A16 needs 8.0
    ],
)
def test_estimate_says_what_the_gpu_cannot_run(
    gpu: str, quantization: str | None, dtype: str | None, runs: bool
) -> None:
    b = estimate("llama-3.2-1b", gpu=gpu, quantization=quantization, dtype=dtype)
    assert b.fits is runs, b.cannot_run
    assert bool(b.cannot_run) is not runs
    if not runs:
        assert b.to_dict()["cannot_run"] == list(b.cannot_run)
        assert "compute capability" in b.cannot_run[0]


def test_marlin_fallback_is_stated_on_ampere() -> None:
    b = estimate("llama-3.2-1b", gpu="A100-80GB", quantization="fp8")
    assert any("Marlin" in a for a in b.assumptions)
    native = estimate("llama-3.2-1b", gpu="H100", quantization="fp8")
    assert not any("Marlin" in a for a in native.assumptions)


def test_engine_error_texts_are_the_engines() -> None:
    t4 = resolve_gpu("T4")
    fp8 = resolve_precision("bfloat16", None, None, "fp8")
    (vllm,) = refusals(t4, fp8, "vllm")
    assert vllm.engine_error == (
        "The quantization method fp8 is not supported for the current GPU. "
        "Minimum capability: 80. Current capability: 75."
    )
    a100 = resolve_gpu("A100-80GB")
    (hf,) = refusals(a100, fp8, "hf")  # transformers has no Marlin path for FP8
    assert "compute capability >= 8.9" in hf.engine_error
    assert refusals(a100, fp8, "llamacpp") == ()


def test_features_cover_every_table_row() -> None:
    seen = set()
    for q in ("fp8", "w8a8", "awq", "gptq", "w4a16", "nf4", "mxfp4", "Q4_K_M"):
        seen |= set(features(resolve_precision("bfloat16", None, None, q)))
    seen |= set(features(resolve_precision("bfloat16", None, "bf16", None), bf16_requested=True))
    assert seen <= set(REQUIREMENTS)
    assert set(REQUIREMENTS) - seen <= {"nvfp4", "int8_w8a8"}  # no short quantization name yet


def test_vllm_v1_only_versions_refuse_volta() -> None:
    v100 = resolve_gpu("V100-32GB")
    assert vllm_version_error(v100, (0, 11, 0))
    assert vllm_version_error(v100, (0, 10, 2)) is None  # falls back to V0
    assert vllm_version_error(resolve_gpu("A100-80GB"), (0, 19)) is None
