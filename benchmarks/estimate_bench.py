"""Speed of one estimate, in process and as a whole CLI call, next to peers measured in the same run.

    python benchmarks/estimate_bench.py [--peer-python /path/to/python-with-llm-analysis]

Peers: accelerate's `estimate-memory` (reads the model config through the Hub cache; run offline
against a local cache built here) and llm-analysis (`infer`, its own bundled configs), which pins old
transformers, so it lives in its own virtual environment. Writes benchmarks/results/estimate_speed.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "meta-llama/Llama-3.1-8B"


def timed_runs(cmd: list[str], runs: int, env: dict[str, str] | None = None) -> tuple[float, int]:
    """Median wall seconds of a whole command; returns (median, exit code of the last run)."""
    times, rc = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, capture_output=True, env=env, check=False).returncode
        times.append(time.perf_counter() - t0)
    return statistics.median(times), rc


#: One dense, one hybrid (gated DeltaNet + attention) and one sparse-attention (MLA + DSA indexer) model.
FAMILIES = (MODEL, "Qwen/Qwen3.5-27B", "deepseek-ai/DeepSeek-V3.2")


def _clear_estimate_caches() -> None:
    """Every per-model cache an estimate fills (the catalogue's parsed specs stay: that is the file read)."""
    from vramplan import capabilities, estimator
    from vramplan.memory import kv_cache, weights
    from vramplan.model import params

    for fn in (
        params.inventory,
        params.count_params,
        weights.weight_bytes,
        estimator._fixed_parts,
        estimator._stages,
        estimator._gpu_limits,
        estimator._state_per_sequence,
        estimator._comparison_extras,
        estimator.resolve,
        estimator.resolve_stored,
        kv_cache._kv_layer_groups,
        kv_cache._linear_rate,
        kv_cache._kv_bytes_per_token,
        capabilities.refusals,
        capabilities.fallback_notes,
    ):
        fn.cache_clear()


def in_process_vramplan(n: int, model: str = MODEL) -> tuple[float, float]:
    """(warm, cold) seconds per estimate; best of 5 repeats, since the machine's other load only adds time."""
    import timeit

    from vramplan.estimator import estimate

    def once() -> None:
        estimate(model, context=8192, users=16, gpu="H100", tensor_parallel_size=1)

    once()
    warm = min(timeit.repeat(once, number=n, repeat=5)) / n
    t0 = time.perf_counter()
    for _ in range(n // 10):
        _clear_estimate_caches()
        once()
    cold = (time.perf_counter() - t0) / (n // 10)
    return warm, cold


def hub_cache_with_config(tmp: Path) -> Path:
    """A real huggingface_hub cache layout holding only config.json, so peers run offline."""
    from vramplan.model import catalog

    snap = tmp / "hub" / f"models--{MODEL.replace('/', '--')}" / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps(catalog.catalogue()[MODEL]))
    refs = snap.parents[1] / "refs"
    refs.mkdir()
    (refs / "main").write_text("0" * 40)
    return tmp / "hub"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer-python", default=os.environ.get("LLM_ANALYSIS_PYTHON"))
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    rows: list[tuple[str, str, str]] = []
    warm = 0.0
    for model in FAMILIES:
        w, cold = in_process_vramplan(2000, model)
        warm = warm or w  # the dense model's figure is the one the peers are compared with
        rows.append(
            (
                f"vramplan estimate() {model}",
                f"{w * 1e6:,.1f} µs (warm), {cold * 1e6:,.1f} µs (cold caches)",
                "in process",
            )
        )
    cli = [
        sys.executable,
        "-m",
        "vramplan",
        "estimate",
        MODEL,
        "--context",
        "8192",
        "--users",
        "16",
        "--gpu",
        "H100",
        "--json",
    ]
    t, rc = timed_runs(cli, args.runs)
    rows.append(("vramplan estimate (CLI)", f"{t:.3f} s", f"whole process, exit {rc}"))
    vram_cli = t

    with tempfile.TemporaryDirectory() as tmpdir:
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "HF_HUB_CACHE": str(hub_cache_with_config(Path(tmpdir))),
        }
        accelerate = shutil.which(
            "accelerate", path=str(Path(sys.executable).parent)
        ) or shutil.which("accelerate")
        if accelerate:
            t, rc = timed_runs(
                [accelerate, "estimate-memory", MODEL, "--library_name", "transformers"],
                args.runs,
                env,
            )
            rows.append(
                (
                    "accelerate estimate-memory (CLI)",
                    f"{t:.3f} s",
                    f"whole process, exit {rc}; ratio to vramplan CLI {t / vram_cli:.1f}x",
                )
            )
            # estimate-memory itself insists on asking the Hub API (gated/offline checks), so time the
            # same method in process: build the model on the meta device, then sum tensor sizes.
            code = (
                "import json, time, sys\nfrom accelerate import init_empty_weights\n"
                "from accelerate.utils import calculate_maximum_sizes\nimport transformers\n"
                "cfg=json.load(open(sys.argv[1])); mt=cfg.pop('model_type')\n"
                "c=transformers.AutoConfig.for_model(mt, **cfg)\n"
                "def once():\n    with init_empty_weights(): m=transformers.AutoModelForCausalLM.from_config(c)\n    return calculate_maximum_sizes(m)\n"
                "once()\nt=time.perf_counter()\nfor _ in range(5): once()\nprint((time.perf_counter()-t)/5)"
            )
            cfg_path = Path(tmpdir) / "config.json"
            from vramplan.model import catalog

            cfg_path.write_text(json.dumps(catalog.catalogue()[MODEL]))
            out = subprocess.run(
                [sys.executable, "-c", code, str(cfg_path)],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            if out.returncode == 0:
                per = float(out.stdout.strip().splitlines()[-1])
                rows.append(
                    (
                        "accelerate method (meta model + calculate_maximum_sizes)",
                        f"{per * 1e6:,.0f} µs",
                        f"in process, weights only; ratio {per / warm:,.0f}x",
                    )
                )
            else:
                rows.append(
                    (
                        "accelerate method",
                        "failed",
                        (out.stderr.strip().splitlines() or [""])[-1][:120],
                    )
                )
        else:
            rows.append(("accelerate estimate-memory", "not installed", "pip install accelerate"))
    if args.peer_python:
        code = (
            "import time\nfrom llm_analysis.analysis import infer\n"
            "kw=dict(model_name='NousResearch_Llama-2-7b-hf', gpu_name='a100-sxm-80gb', dtype_name='w16a16e16', batch_size_per_gpu=16, seq_len=4096, num_tokens_to_generate=128, log_level='ERROR')\n"
            "infer(**kw)\nt=time.perf_counter()\nfor _ in range(50): infer(**kw)\nprint((time.perf_counter()-t)/50)"
        )
        out = subprocess.run(
            [args.peer_python, "-c", code], capture_output=True, text=True, check=False
        )
        if out.returncode == 0:
            per = float(out.stdout.strip().splitlines()[-1])
            rows.append(
                (
                    "llm-analysis infer()",
                    f"{per * 1e6:,.0f} µs",
                    f"in process (Llama-2-7B, its own config); ratio {per / warm:,.0f}x",
                )
            )
        else:
            rows.append(
                (
                    "llm-analysis infer()",
                    "failed",
                    (out.stderr.strip().splitlines() or [""])[-1][:120],
                )
            )
        t, rc = timed_runs(
            [
                args.peer_python,
                "-m",
                "llm_analysis.analysis",
                "infer",
                "--model_name",
                "NousResearch_Llama-2-7b-hf",
                "--gpu_name",
                "a100-sxm-80gb",
                "--log_level",
                "ERROR",
            ],
            args.runs,
        )
        rows.append(
            (
                "llm-analysis infer (CLI)",
                f"{t:.3f} s",
                f"whole process, exit {rc}; ratio to vramplan CLI {t / vram_cli:.1f}x",
            )
        )
    lines = [
        "# Estimate speed",
        "",
        f"`python benchmarks/estimate_bench.py` on this machine ({os.cpu_count()} cores), {MODEL}, 16 users x 8,192 tokens, H100.",
        "",
        "| tool | time | notes |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
    ]
    out_path = ROOT / "benchmarks" / "results" / "estimate_speed.md"
    out_path.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
