"""Predicted vs logged startup figures for the SGLang, TGI and llama.cpp cases of real_logs.json.

Each case's inputs (model, GPU, flags, version) are transcribed from the case record; where the log
states free memory before loading (other processes, display), that measured input is passed on.
``accuracy_rows()`` is imported by ``benchmarks/accuracy.py``; run this file to print the table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vramplan.engines.llamacpp import predict_llamacpp
from vramplan.engines.sglang import CUDA_CONTEXT_GIB, predict_sglang
from vramplan.engines.tgi import predict_tgi

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests" / "data" / "real_logs.json"
GIB_4090 = 25414336512 / 2**30

#: case id -> (engine, predict kwargs, [(figure in prediction, logged key)]). Inputs from the case text.
INPUTS: dict[str, tuple[str, dict[str, Any], list[tuple[str, str]]]] = {
    "sglang-docs-llama31-8b-80gb": (
        "sglang",
        dict(argv=["--model-path", "Llama-3.1-8B"], gpu="A100-80GB", engine_version="0.4.1"),
        [
            ("kv_cache_tokens", "kv_cache_tokens"),
            ("k_size_gb", "k_size_gb"),
            ("avail_mem_after_load_gb", "avail_mem_after_load_gb"),
            ("max_running_requests", "max_running_requests"),
        ],
    ),
    # 24 GB consumer GPU under Docker Desktop: 22.39 GiB free before load (weights 15.02 + 7.37 after).
    "sglang-maxuhl-llama31-8b-24gb": (
        "sglang",
        dict(
            argv=["--model-path", "Llama-3.1-8B"],
            gpu="RTX-4090",
            engine_version="0.4.9",
            other_processes_gib=GIB_4090 - CUDA_CONTEXT_GIB - 22.39,
        ),
        [
            ("kv_cache_tokens", "kv_cache_tokens"),
            ("k_size_gb", "k_size_gb"),
            ("max_running_requests", "max_running_requests"),
        ],
    ),
    "sglang-21348": (
        "sglang",
        dict(
            argv=[
                "--model-path",
                "Qwen3-235B-A22B-FP8",
                "--tp",
                "4",
                "--mem-fraction-static",
                "0.93",
            ],
            gpu="H100",
            engine_version="0.4.9",
        ),
        [("kv_cache_tokens", "kv_cache_tokens"), ("k_size_gb", "k_size_gb")],
    ),
    "tgi-2744-llama31-70b-2xa100": (
        "tgi",
        dict(
            argv=[
                "--model-id",
                "Llama-3.1-70B",
                "--num-shard",
                "2",
                "--max-batch-prefill-tokens",
                "10049",
            ],
            gpu="A100-80GB",
            engine_version="2.4.0",
        ),
        [("kv_cache_tokens", "kv_cache_tokens")],
    ),
    "tgi-832-llama2-70b-4xa100": (
        "tgi",
        dict(
            argv=["--model-id", "Llama-2-70B", "--num-shard", "4", "--max-total-tokens", "4096"],
            gpu="A100-80GB",
            engine_version="1.0.0",
        ),
        [("kv_cache_tokens", "kv_cache_tokens")],
    ),
    "llamacpp-ik103-llama31-8b-q5ks-3090": (
        "llama.cpp",
        dict(
            argv=[
                "-m",
                "Llama-3.1-8B-Q5_K_S",
                "-c",
                "1024",
                "-b",
                "1024",
                "-ub",
                "512",
                "-ngl",
                "99",
                "-ctk",
                "iq4_nl",
                "-ctv",
                "f16",
            ],
            gpu="RTX-3090",
            engine_version="b3475",
        ),
        [
            ("model_buffer_cuda0_mib", "model_buffer_cuda0_mib"),
            ("model_buffer_cpu_mapped_mib", "model_buffer_cuda_host_mib"),
            ("kv_buffer_cuda0_mib", "kv_buffer_cuda0_mib"),
            ("k_mib", "k_mib"),
            ("v_mib", "v_mib"),
            ("compute_buffer_cuda0_mib", "compute_buffer_cuda0_mib"),
        ],
    ),
}
#: The design note's anchor (engine-memory.md 4.3), not in real_logs.json.
ANCHOR = (
    "llama.cpp",
    dict(
        argv=["-m", "Meta-Llama-3-8B-Q4_K_M", "-c", "4096", "-ngl", "99", "-fa"],
        gpu="RTX-4090",
        engine_version="b4500",
    ),
    {
        "model_buffer_cuda0_mib": 4095.05,
        "model_buffer_cpu_mapped_mib": 281.81,
        "kv_buffer_cuda0_mib": 512.0,
        "compute_buffer_cuda0_mib": 296.0,
    },
)
_PREDICT = {"sglang": predict_sglang, "tgi": predict_tgi, "llama.cpp": predict_llamacpp}


def _figure(pred: Any, name: str) -> Any:
    value = getattr(pred, name, None)
    return pred.extra.get(name) if value is None else value


def _run(engine: str, kw: dict[str, Any]) -> Any:
    kw = dict(kw)
    argv = kw.pop("argv")
    return _PREDICT[engine](argv, kw.pop("gpu"), **kw)


def accuracy_rows() -> list[dict[str, Any]]:
    """One row per (case, figure): logged, predicted, relative error; uncovered cases say why."""
    cases = {c["id"]: c for c in json.loads(CASES.read_text())}
    rows: list[dict[str, Any]] = []
    for case in cases.values():
        if case["engine"] not in _PREDICT:
            continue
        if case["id"] not in INPUTS:
            rows.append(
                {
                    "case": case["id"],
                    "engine": case["engine"],
                    "covered": False,
                    "reason": f"model {case['model']!r} not mapped to a catalogue config",
                }
            )
            continue
        engine, kw, figures = INPUTS[case["id"]]
        pred = _run(engine, kw)
        for ours, logged_key in figures:
            logged = case.get(logged_key)
            got = _figure(pred, ours)
            if logged is None or got is None:
                continue
            rows.append(
                {
                    "case": case["id"],
                    "engine": engine,
                    "covered": True,
                    "figure": logged_key,
                    "logged": logged,
                    "predicted": got,
                    "rel_error": (got - logged) / logged if logged else None,
                }
            )
    engine, kw, logged_figs = ANCHOR
    pred = _run(engine, kw)
    for key, logged in logged_figs.items():
        got = _figure(pred, key)
        rows.append(
            {
                "case": "engine-memory-4.3-anchor-llama3-8b-q4km",
                "engine": engine,
                "covered": True,
                "figure": key,
                "logged": logged,
                "predicted": got,
                "rel_error": (got - logged) / logged,
            }
        )
    return rows


if __name__ == "__main__":
    for row in accuracy_rows():
        if not row["covered"]:
            print(f"{row['case']:45s} not covered: {row['reason']}")
            continue
        print(
            f"{row['case']:45s} {row['figure']:28s} logged {row['logged']:>12} predicted "
            f"{row['predicted']:>12} {row['rel_error']:+.1%}"
        )
