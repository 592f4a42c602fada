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
    for q in ("fp8", "w8a8", "awq", "gptq", "w4a16", "nf4", "mxfp4", "IQ4_XS"):
        seen |= set(features(resolve_precision("bfloat16", None, None, q)))
    seen |= set(features(resolve_precision("bfloat16", None, "bf16", None), bf16_requested=True))
    assert seen <= set(REQUIREMENTS)
    assert set(REQUIREMENTS) - seen <= {"nvfp4", "int8_w8a8"}  # no short quantization name yet


def test_vllm_v1_only_versions_refuse_volta() -> None:
    v100 = resolve_gpu("V100-32GB")
    assert vllm_version_error(v100, (0, 11, 0))
    assert vllm_version_error(v100, (0, 10, 2)) is None  # falls back to V0
    assert vllm_version_error(resolve_gpu("A100-80GB"), (0, 19)) is None


def test_engines_do_not_start_with_their_own_error() -> None:
    from vramplan.engines.sglang import predict_sglang
    from vramplan.engines.tgi import predict_tgi
    from vramplan.engines.vllm import predict_vllm

    text = (
        "The quantization method fp8 is not supported for the current GPU. Minimum capability: 80."
    )
    v = predict_vllm(
        ["meta-llama/Llama-3.1-8B-Instruct", "--quantization", "fp8"],
        gpu="T4",
        engine_version="0.10.1",
    )
    assert not v.starts and any(e.startswith(text) for e in v.errors), v.errors
    s = predict_sglang(["--model-path", "llama-3.1-8b", "--quantization", "fp8"], gpu="T4")
    assert not s.starts and any(e.startswith(text) for e in s.errors), s.errors
    t = predict_tgi(["--model-id", "llama-3.1-8b", "--quantize", "fp8"], gpu="T4")
    assert not t.starts and any(e.startswith(text) for e in t.errors), t.errors
    ok = predict_vllm(
        ["meta-llama/Llama-3.1-8B-Instruct", "--quantization", "fp8", "--max-model-len", "8192"],
        gpu="A100-80GB",
    )
    assert ok.starts and any("Marlin" in a for a in ok.assumptions)


def test_vllm_v1_only_release_does_not_start_on_volta() -> None:
    from vramplan.engines.vllm import predict_vllm

    argv = ["meta-llama/Llama-3.2-1B-Instruct", "--max-model-len", "4096", "--dtype", "half"]
    new = predict_vllm(argv, gpu="V100-32GB", engine_version="0.11.0")
    assert not new.starts and any("V1 Engine" in e for e in new.errors)
    old = predict_vllm(argv, gpu="V100-32GB", engine_version="0.10.1")
    assert old.starts, old.errors


def test_planner_never_proposes_what_the_gpu_cannot_run() -> None:
    from vramplan.planner import plan

    result = plan(
        "llama-3.1-8b", context=8192, users=8, gpus=["T4", "V100-32GB", "L4", "A100-80GB"], limit=50
    )
    for p in result.plans:
        gpu = resolve_gpu(p.gpu)
        precision = resolve_precision(
            "bfloat16", None, None, None if p.precision in ("bfloat16", "float16") else p.precision
        )
        assert not refusals(gpu, precision, "vllm"), (p.gpu, p.precision)
    rejected = [r for r in result.rejected if "compute capability" in r["reason"]]
    assert any("T4" in r["option"] and "fp8" in r["option"] for r in rejected), result.rejected


def test_gguf_layouts_are_gguf() -> None:
    from vramplan.memory.weights import gguf_recipe
    from vramplan.model.load import load_model

    assert features(gguf_recipe(load_model("llama-3.2-1b").spec, "Q4_K_M")) == ("gguf",)
