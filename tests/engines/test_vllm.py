"""vLLM startup predictions against dev-set logs, the command-line parser, and the fix suggestions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vramplan.engines.base import VersionTable
from vramplan.engines.vllm import predict_vllm
from vramplan.engines.vllm_args import parse_vllm_args
from vramplan.errors import InputError
from vramplan.scenario import Fix

DATA = Path(__file__).resolve().parents[1] / "data"
CASES = {c["id"]: c for c in json.loads((DATA / "real_logs.json").read_text())}

H100_019 = {"gpu_total_gib": 79.19, "gpu_memory_utilization": 0.95, "max_model_len": 8192}


def _rel(pred: float, logged: float) -> float:
    return abs(pred - logged) / abs(logged)


@pytest.mark.parametrize(
    "case_id, settings",
    [
        (
            "llmdplanner-meta-llama-llama-3-1-8b--tp1pp1dp1--8192",
            {"model": "meta-llama/Llama-3.1-8B-Instruct"},
        ),
        (
            "llmdplanner-qwen-qwen2-5-7b-instruct-tp2pp1dp1--8192",
            {"model": "Qwen/Qwen2.5-7B-Instruct", "tensor_parallel_size": 2},
        ),
        (
            "llmdplanner-meta-llama-llama-3-1-8b--tp1pp4dp1--8192",
            {"model": "meta-llama/Llama-3.1-8B-Instruct", "pipeline_parallel_size": 4},
        ),
        ("llmdplanner-google-gemma-3-27b-it-tp1pp1dp1--8192", {"model": "google/gemma-3-27b-it"}),
        (
            "llmdplanner-deepseek-ai-deepseek-v2--tp1pp1dp1--8192",
            {"model": "deepseek-ai/DeepSeek-V2-Lite-Chat"},
        ),
        (
            "llmdplanner-fp8dyn-llama-3-3-70b-tp4pp1dp1--8192",
            {
                "model": "RedHatAI/Llama-3.3-70B-Instruct-fp8-dynamic",
                "quantization": "compressed-tensors",
                "tensor_parallel_size": 4,
            },
        ),
        (
            "llmdplanner-qwen-qwen2--tp1pp1dp1--8192-dtbf16-kvfp8",
            {"model": "Qwen/Qwen2.5-7B-Instruct", "kv_cache_dtype": "fp8"},
        ),
    ],
)
def test_v019_dev_cases(case_id: str, settings: dict) -> None:
    case = CASES[case_id]
    p = predict_vllm(
        {**H100_019, **settings}, gpu="H100-80GB", engine_version="0.19.0", fixes=False
    )
    assert p.starts
    assert _rel(p.weights_gib, case["weights_gib"]) < 0.01
    assert _rel(p.kv_cache_tokens, case["kv_cache_tokens"]) < 0.05
    assert _rel(p.max_concurrency, case["max_concurrency"]) < 0.05


def test_v0_t4_fallback_blocks() -> None:
    case = CASES["vllm-hfcookbook-llama32-3b-t4"]
    p = predict_vllm(
        {
            "model": "unsloth/Llama-3.2-3B-Instruct",
            "dtype": "float16",
            "max_model_len": 2048,
            "gpu_memory_utilization": case["gpu_memory_utilization"],
            "max_num_seqs": 192,
            "max_num_batched_tokens": 2048,
            "gpu_total_gib": 14.74,
        },
        gpu="T4",
        engine_version="0.8.2",
        fixes=False,
    )
    assert p.settings["vllm_generation"] == "v0"
    assert _rel(p.gpu_blocks, case["gpu_blocks"]) < 0.05
    assert _rel(p.activation_peak_gib, case["activation_peak_gib"]) < 0.10


def test_v064_maxlen_error_reproduced() -> None:
    p = predict_vllm(
        {
            "model": "meta-llama/Llama-3.1-8B-Instruct",
            "max_model_len": 29000,
            "gpu_total_gib": 23.58,
        },
        gpu="RTX-3090",
        engine_version="0.6.4",
    )
    assert not p.starts and "larger than the maximum number of tokens" in p.errors[0]
    assert _rel(p.gpu_blocks, 1478) < 0.10


def test_no_memory_error_v011() -> None:
    p = predict_vllm(
        {
            "model": "RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic",
            "quantization": "compressed-tensors",
            "max_model_len": 16000,
            "block_size": 128,
            "gpu_memory_utilization": 0.9,
            "gpu_total_gib": 79.18,
        },
        gpu="H100-80GB",
        engine_version="0.11.0",
    )
    assert not p.starts and "No available memory for the cache blocks" in p.errors[0]
    assert p.available_kv_cache_gib == pytest.approx(-1.44, abs=0.3)
    assert any(f.flag == "tensor_parallel_size" and f.value == 2 for f in p.fixes)


def _apply(settings: dict, fix: Fix) -> dict:
    """A fix is data: set its field to its value."""
    assert isinstance(fix, Fix) and fix.why
    return {**settings, fix.flag: fix.value}


@pytest.mark.parametrize(
    "settings, gpu",
    [
        ({"model": "meta-llama/Llama-3.1-8B-Instruct", "max_model_len": 131072}, "L4"),
        (
            {"model": "Qwen/Qwen2.5-14B", "max_model_len": 32768, "gpu_memory_utilization": 0.8},
            "RTX-4090",
        ),
        ({"model": "meta-llama/Llama-3.1-70B"}, "H100-80GB"),
    ],
)
def test_fixes_make_it_start(settings: dict, gpu: str) -> None:
    p = predict_vllm(settings, gpu=gpu, engine_version="0.19")
    assert not p.starts and p.fixes
    for fix in p.fixes:
        again = predict_vllm(_apply(settings, fix), gpu=gpu, engine_version="0.19", fixes=False)
        assert again.starts, fix


def test_largest_len_in_error_starts() -> None:
    p = predict_vllm(
        {"model": "meta-llama/Llama-3.1-8B-Instruct", "max_model_len": 131072},
        gpu="L4",
        engine_version="0.19",
    )
    fit = int(p.errors[0].split("estimated maximum model length is ")[1].split(".")[0])
    assert predict_vllm(
        {"model": "meta-llama/Llama-3.1-8B-Instruct", "max_model_len": fit},
        gpu="L4",
        engine_version="0.19",
        fixes=False,
    ).starts
    assert not predict_vllm(
        {"model": "meta-llama/Llama-3.1-8B-Instruct", "max_model_len": fit + 16},
        gpu="L4",
        engine_version="0.19",
        fixes=False,
    ).starts


def test_defaults_by_version_and_device() -> None:
    h100 = predict_vllm(
        ["meta-llama/Llama-3.1-8B-Instruct", "--max-model-len", "8k"],
        gpu="H100-80GB",
        engine_version="0.19",
    )
    a100 = predict_vllm(
        ["meta-llama/Llama-3.1-8B-Instruct", "--max-model-len", "8k"],
        gpu="A100-80GB",
        engine_version="0.19",
    )
    off = predict_vllm(
        ["meta-llama/Llama-3.1-8B-Instruct", "--max-model-len", "8k"],
        gpu="H100-80GB",
        engine_version="0.19",
        usage_context="offline",
    )
    assert (h100.settings["max_num_seqs"], h100.settings["max_num_batched_tokens"]) == (1024, 8192)
    assert (a100.settings["max_num_seqs"], a100.settings["max_num_batched_tokens"]) == (256, 2048)
    assert off.settings["max_num_batched_tokens"] == 16384
    assert h100.settings["gpu_memory_utilization"] == 0.9
    new = predict_vllm(
        ["meta-llama/Llama-3.1-8B-Instruct"], gpu="H100-80GB", engine_version="0.25.0"
    )
    assert (
        new.settings["gpu_memory_utilization"] == 0.92 and new.settings["max_model_len"] == 131072
    )
    eager = predict_vllm(
        ["meta-llama/Llama-3.1-8B-Instruct", "--enforce-eager"],
        gpu="H100-80GB",
        engine_version="0.25",
    )
    assert eager.cuda_graph_gib == 0 and eager.available_kv_cache_gib > new.available_kv_cache_gib


def test_kv_override_and_offload() -> None:
    p = predict_vllm(
        [
            "meta-llama/Llama-3.1-8B-Instruct",
            "--kv-cache-memory-bytes",
            "8GiB",
            "--max-model-len",
            "8192",
        ],
        gpu="H100-80GB",
        engine_version="0.19",
    )
    assert p.available_kv_cache_gib == pytest.approx(8.0)
    assert p.gpu_blocks == 8 * 1024 // 2
    o = predict_vllm(
        ["meta-llama/Llama-3.1-8B-Instruct", "--cpu-offload-gb=4", "--max-model-len=8192"],
        gpu="H100-80GB",
        engine_version="0.19",
    )
    assert o.weights_gib == pytest.approx(14.96 - 4, abs=0.05)


def test_parser_forms_and_ignored_flags() -> None:
    a = parse_vllm_args(
        [
            "vllm",
            "serve",
            "Qwen/Qwen3-8B",
            "--tensor-parallel-size=2",
            "-pp",
            "2",
            "--max-model-len",
            "32K",
            "--trust-remote-code",
            "--port",
            "8000",
            "--gpu-memory-utilization=0.85",
            "--enforce-eager",
            "--served-model-name",
            "q",
            "--kv-cache-memory-bytes",
            "1000000",
        ]
    )
    s = a.settings
    assert (
        s["model"] == "Qwen/Qwen3-8B"
        and s["tensor_parallel_size"] == 2
        and s["pipeline_parallel_size"] == 2
    )
    assert (
        s["max_model_len"] == 32768
        and s["gpu_memory_utilization"] == 0.85
        and s["enforce_eager"] is True
    )
    assert s["served_model_name"] == "q" and s["kv_cache_memory_bytes"] == 1000000
    assert a.ignored == ["--trust-remote-code", "--port 8000"]
    assert parse_vllm_args(["--model", "x", "-q", "awq", "--max-num-seqs", "64"]).settings == {
        "model": "x",
        "quantization": "awq",
        "max_num_seqs": 64,
    }


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--max-model-len", "lots"], "not a token count"),
        (["m", "--tensor-parallel-size"], "needs a value"),
        (["m", "--max-num-seqs", "0"], "positive"),
        (["a", "b"], "one model"),
    ],
)
def test_parser_errors(argv: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_vllm_args(argv)


@pytest.mark.parametrize(
    "argv, gpu, message",
    [
        (["Qwen/Qwen2.5-7B-Instruct", "-tp", "3"], "H100-80GB", "does not divide"),
        (
            ["Qwen/Qwen2.5-7B-Instruct", "--gpu-memory-utilization", "0"],
            "H100-80GB",
            r"outside \(0, 1\]",
        ),
        (
            ["meta-llama/Llama-3.1-8B-Instruct", "--max-model-len", "1m"],
            "H100-80GB",
            "max_position_embeddings",
        ),
        (["Qwen/Qwen2.5-7B-Instruct"], "NoSuchGPU", "unknown GPU"),
    ],
)
def test_bad_input(argv: list[str], gpu: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        predict_vllm(argv, gpu=gpu)


def test_version_table() -> None:
    t = VersionTable("x", {"0.2": 1, "0.6": 2, "0.19": 3})
    assert t.nearest_version("0.6.3").value == 2 and not t.nearest_version("0.6.3").substituted
    assert t.nearest_version("0.30").substituted and t.nearest_version("0.30").note
    assert t.nearest_version("0.1").version == "0.2" and t.nearest_version("0.1").substituted
    assert t.nearest_version(None).version == "0.19"
