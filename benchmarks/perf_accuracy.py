"""Predict every case of tests/data/perf_dev.json with vramplan.perf and compare with what was measured.

Run: python benchmarks/perf_accuracy.py [--out benchmarks/results/perf.md] [--quiet]

Cases that name a dataset (ShareGPT, MLPerf OpenOrca) are predicted on its length distribution, as
`vramplan perf --dataset` does.

Each case is predicted from its stated settings only (model, precision, GPU, TP/PP, lengths, load
pattern, engine settings); nothing in a case's measured figures feeds its prediction. Models not in the
bundled catalogue are mapped to a catalogue config only when the architecture is identical; otherwise
the case is reported as not covered.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from vramplan.errors import VramplanError  # noqa: E402
from vramplan.hardware import resolve_gpu  # noqa: E402
from vramplan.perf import LengthMix, build_setup, predict, step_time  # noqa: E402
from vramplan.simulate.workload import dataset_samples  # noqa: E402

DATA = ROOT / "tests" / "data" / "perf_dev.json"

#: base_model -> catalogue id with the identical architecture (same layers, widths, heads, vocab).
SAME_ARCHITECTURE = {
    "Qwen/Qwen2-7B-Instruct": "Qwen/Qwen2.5-7B",  # Qwen2 and Qwen2.5 7B share config (28 x 3584, 28/4 heads, 18944, vocab 152064)
    "meta-llama/Meta-Llama-3-8B-Instruct": "meta-llama/Meta-Llama-3-8B",
    "meta-llama/Llama-3.1-8B-Instruct": "meta-llama/Llama-3.1-8B",
    "meta-llama/Llama-3.1-70B-Instruct": "meta-llama/Llama-3.1-70B",
    "meta-llama/Llama-2-13b-chat-hf": "meta-llama/Llama-2-13b-hf",
    "Qwen/Qwen2.5-7B-Instruct": "Qwen/Qwen2.5-7B",
    "Qwen/Qwen2-72B": "Qwen/Qwen2-72B-Instruct",  # base and Instruct share config (80 x 8192, 64/8 heads, 29568, vocab 152064, qkv bias)
}
#: Architectures with no identical catalogue config.
NOT_COVERED: dict[str, str] = {}
#: Words in a case's ``dataset`` that name a `vramplan perf --dataset` preset (its sourced length law).
DATASET_NAMES = {"sharegpt": "sharegpt", "openorca": "openorca", "sonnet": "sonnet"}
ENGINE = {
    "vllm": "vllm",
    "sglang": "sglang",
    "tensorrt-llm": "trtllm",
    "llama.cpp": "llamacpp",
    "tgi": "tgi",
}


def gpu_of(case: dict[str, Any]) -> str:
    for name in (case["gpu"], case["gpu_family"]):
        try:
            return resolve_gpu(name).name
        except VramplanError:
            continue
    fam = case["gpu_family"]
    if fam == "A100":
        return (
            "A100-80GB-SXM"  # size not stated: the 80 GB SXM card (assumption, noted in the report)
        )
    raise VramplanError(f"no catalogue GPU for {case['gpu']!r}")


def precision_of(case: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(dtype, quantization, kv_cache_dtype) for vramplan from the stated fields."""
    dtype_s = str(case.get("dtype") or "").lower()
    quant_s = str(case.get("quantization") or "").lower()
    kv_s = str(case.get("kv_cache_dtype") or "").lower()
    dtype = "float16" if dtype_s.startswith(("fp16", "float16", "f16")) else None
    quant = None
    if "q4_k_m" in quant_s:
        quant = "Q4_K_M"
    elif "fp4" in quant_s or dtype_s.startswith("fp4"):
        quant = "fp4"
    elif "fp8" in quant_s or dtype_s.startswith("fp8"):
        quant = "fp8"
    kv = "fp8" if kv_s.startswith("fp8") else None
    return dtype, quant, kv


def dataset_of(case: dict[str, Any]) -> str | None:
    """The preset a case's dataset names (ShareGPT, MLPerf OpenOrca, ...), or None."""
    ds = str(case.get("dataset") or "").lower()
    return next((name for word, name in DATASET_NAMES.items() if word in ds), None)


def lengths(case: dict[str, Any]) -> tuple[int, int, str, LengthMix | None]:
    """(mean input, mean output, where they come from, the length mix when the case names a dataset).

    A dataset case runs on its preset's length law; where the run printed its token totals the law is
    rescaled to the run's own means (the sample it drew), keeping the preset's shape.
    """
    if case.get("input_len") and case.get("output_len"):
        return int(case["input_len"]), int(case["output_len"]), "stated", None
    m = case["measured"]
    n = m.get("successful_requests")
    totals = None
    if n and m.get("total_input_tokens") and m.get("total_output_tokens"):
        totals = (m["total_input_tokens"] / n, m["total_output_tokens"] / n)
    name = dataset_of(case)
    if name is not None:
        got = dataset_samples(name)
        p, o, how = got.prompt_len, got.output_len, f"{name} preset"
        if totals is not None:
            p = np.maximum(np.rint(p * totals[0] / p.mean()), 1)
            o = np.maximum(np.rint(o * totals[1] / o.mean()), 1)
            how += " at the run's mean lengths"
        mix = LengthMix.from_samples(p, o, {"name": name})
        return round(mix.input_tokens), round(mix.output_tokens), how, mix
    if totals is not None:
        return round(totals[0]), round(totals[1]), "request totals", None
    raise VramplanError("no lengths")


#: Engine settings a case's source states outside ``engine_settings`` (its startup logs / section titles).
CASE_SETTINGS: dict[str, dict[str, Any]] = {
    # dennislee22 Test 8: 2 x A100-80GB, "Available KV cache memory in each GPU: 6.77 GiB" with ~67.8 GiB of
    # weights per GPU only fits utilization ~0.95 (0.9 would leave ~2.5 GiB).
    "dl-vllm01011-qwen2-72b-2xa100-tp2-bs1-isl1024-osl1024": {"gpu_memory_utilization": 0.95},
    # KubeAI's catalogue entry for this model on L4 (case notes): --max-num-seqs 8 or 16, --enforce-eager,
    # utilization 0.95-0.99. We take the larger batch (16) and the lower utilization.
    "kubeai-vllm062-llama32-11b-vision-fp8-l4-sharegpt": {
        "max_num_seqs": 16,
        "gpu_memory_utilization": 0.95,
    },
}


def engine_overrides(case: dict[str, Any], engine: str) -> dict[str, Any]:
    es = case.get("engine_settings") or {}
    out: dict[str, Any] = dict(CASE_SETTINGS.get(case.get("id", ""), {}))
    if isinstance(es.get("max_num_seqs"), int):
        out["max_num_seqs"] = es["max_num_seqs"]
    if isinstance(es.get("max_num_batched_tokens"), int):
        out["max_num_batched_tokens"] = es["max_num_batched_tokens"]
    if es.get("enable_chunked_prefill") is False:
        out["chunked_prefill"] = False
    if isinstance(es.get("gpu_memory_utilization"), float):
        out["gpu_memory_utilization"] = es["gpu_memory_utilization"]
    if isinstance(es.get("num_scheduler_steps"), int):
        out["num_scheduler_steps"] = es["num_scheduler_steps"]
    if engine == "trtllm":
        out["gpu_memory_utilization"] = (
            0.95  # kv_cache_free_gpu_mem_fraction 0.95 in the perf-overview runs
        )
    return out


def version_of(case: dict[str, Any]) -> str | None:
    """The engine version the case ran (its KV pool and batch defaults follow that version's profile)."""
    m = re.match(r"\s*v?(\d+(?:\.\d+)*)", str(case.get("engine_version") or ""))
    return m.group(1) if m else None  # the version also picks perf's row (vllm-0.5, sglang-0.3)


def max_len_of(case: dict[str, Any], default: int) -> int:
    """--max-model-len as the case set it (the pool's per-request accounting depends on it)."""
    es = case.get("engine_settings") or {}
    value = es.get("max_model_len")
    return int(value) if isinstance(value, int) and value >= default else default


def predict_case(case: dict[str, Any]) -> dict[str, Any]:
    """Predicted figures under the same keys as ``measured``."""
    base = case["base_model"]
    if base in NOT_COVERED:
        raise LookupError(NOT_COVERED[base])
    model = SAME_ARCHITECTURE.get(base, base)
    engine = ENGINE[case["engine"]]
    gpu = gpu_of(case)
    dtype, quant, kv = precision_of(case)
    if case["source_kind"] and "mlperf" in str(case["source_kind"]).lower() and quant is None:
        quant = "fp8"  # NVIDIA's MLPerf v4.1 Llama-2-70B submissions run FP8 (TensorRT-LLM)
    num_gpus = int(case.get("num_gpus") or 1)
    tp = case.get("tensor_parallel_size")
    pp = int(case.get("pipeline_parallel_size") or 1)
    i_len, o_len, _, mix = lengths(case)
    longest = mix.max_total_tokens if mix is not None else i_len + o_len
    overrides = engine_overrides(case, engine)
    es = case.get("engine_settings") or {}
    kv_tokens = (
        es.get("gpu_kv_cache_tokens") if isinstance(es.get("gpu_kv_cache_tokens"), int) else None
    )
    if tp is None:
        tp = _smallest_tp(model, gpu, engine, dtype, quant, kv, num_gpus, longest)
    tp = int(tp)
    replicas = max(num_gpus // (tp * pp), 1) if case.get("tensor_parallel_size") is None else 1
    if case["mode"] == "llama-bench":
        pp = 1  # one GPU in all llama-bench cases
    setup = build_setup(
        model,
        gpu,
        engine=engine,
        tensor_parallel_size=tp,
        pipeline_parallel_size=pp,
        dtype=dtype,
        quantization=quant,
        kv_cache_dtype=kv,
        max_model_len=max_len_of(case, longest),
        kv_capacity_tokens=kv_tokens,
        engine_overrides=overrides,
        engine_version=version_of(case),
        enforce_eager=bool(es.get("enforce_eager")),
    )
    m = case["measured"]
    out: dict[str, Any] = {}
    if case["mode"] == "llama-bench":
        for key, n in (("pp_tokens_per_s", i_len), ("pp1024_tokens_per_s", 1024)):
            if key in m:
                ub = 512
                t = sum(
                    float(step_time(setup, ub, 0, 0, k * ub + ub).total)
                    for k in range(math.ceil(n / ub))
                )
                out[key] = n / t
        for key, n in (("tg_tokens_per_s", o_len), ("tg1024_tokens_per_s", 1024)):
            if key in m:
                t = float(step_time(setup, 0, 1, n / 2).total)
                out[key] = 1 / t
        return out
    bs = case.get("batch_size")
    conc = case.get("concurrency")
    rr = case.get("request_rate")
    nreq = case.get("num_requests")
    kind = case["case_kind"]
    load: dict[str, Any]
    if "offline" in kind:
        load = {"max_throughput": True}
    elif bs is not None:
        load = {"batch_size": int(bs)}
    elif rr not in (None, "inf"):
        load = {"request_rate": float(rr)}
    elif conc is not None and (nreq is None or nreq == conc):
        load = {"concurrency": int(conc), "burst": True}
    elif conc is not None:
        load = {"concurrency": int(conc)}
    else:
        load = {"concurrency": int(nreq), "burst": True}
    r = predict(setup, i_len, o_len, lengths=mix, **load)
    out.update(
        ttft=r.ttft_ms,
        tpot=r.tpot_ms,
        itl=r.itl_ms,
        latency_s=r.latency_s,
        e2e_ms=r.latency_s * 1e3,
        # the median request of a length mix: its median output length
        e2e_p50_ms=(r.latency_p50_s if r.latency_p50_s is not None else r.latency_s) * 1e3,
        output_tokens_per_s=r.output_tokens_per_s * replicas,
        total_tokens_per_s=r.total_tokens_per_s * replicas,
        requests_per_s=r.requests_per_s * replicas,
        per_gpu=r.output_tokens_per_s / (tp * pp),
        prefill_ms=r.prefill_ms if bs is None else r.ttft_ms,
        batch=r.batch_size,
        tp=tp,
        replicas=replicas,
    )
    return out


def _smallest_tp(
    model: str,
    gpu: str,
    engine: str,
    dtype: str | None,
    quant: str | None,
    kv: str | None,
    num_gpus: int,
    max_len: int,
) -> int:
    for tp in (1, 2, 4, 8):
        if tp > num_gpus:
            break
        try:
            s = build_setup(
                model,
                gpu,
                engine=engine,
                tensor_parallel_size=tp,
                dtype=dtype,
                quantization=quant,
                kv_cache_dtype=kv,
                max_model_len=max_len,
            )
        except VramplanError:
            continue
        # leave room for a useful batch: at least 32 full-length sequences of KV
        if s.kv_capacity_tokens > 32 * max_len:
            return tp
    return min(num_gpus, 8)


#: measured key -> (metric label, predicted key); the first present in each group is compared.
METRIC_GROUPS: list[list[tuple[str, str]]] = [
    [("ttft_ms_mean", "ttft"), ("ttft_ms_median", "ttft"), ("ttft_ms", "prefill_ms")],
    [("tpot_ms_mean", "tpot"), ("tpot_ms_median", "tpot"), ("itl_ms_mean", "itl")],
    [("prefill_latency_ms_mean", "prefill_ms")],
    [("latency_s", "latency_s")],
    [("e2e_latency_ms_median", "e2e_p50_ms")],
    [
        ("output_tokens_per_s", "output_tokens_per_s"),
        ("total_tokens_per_s", "total_tokens_per_s"),
        ("throughput_tokens_per_s_as_labeled", "total_tokens_per_s"),
        ("output_tokens_per_s_per_gpu", "per_gpu"),
    ],
    [("pp_tokens_per_s", "pp_tokens_per_s")],
    [("pp1024_tokens_per_s", "pp1024_tokens_per_s")],
    [("tg_tokens_per_s", "tg_tokens_per_s")],
    [("tg1024_tokens_per_s", "tg1024_tokens_per_s")],
]


def compare(case: dict[str, Any], pred: dict[str, Any]) -> list[tuple[str, float, float]]:
    m = dict(case["measured"])
    for k, v in (case.get("derived") or {}).items():
        m.setdefault(k, v)
    rows = []
    for group in METRIC_GROUPS:
        for mkey, pkey in group:
            if mkey in m and isinstance(m[mkey], (int, float)) and pkey in pred:
                rows.append((mkey, float(m[mkey]), float(pred[pkey])))
                break
    return rows


def ratio_error(measured: float, predicted: float) -> float:
    return (
        max(predicted / measured, measured / predicted)
        if measured > 0 and predicted > 0
        else math.inf
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "perf.md"))
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    cases = json.loads(DATA.read_text())
    results: list[dict[str, Any]] = []
    uncovered: list[tuple[str, str]] = []
    for case in cases:
        try:
            pred = predict_case(case)
        except LookupError as exc:
            uncovered.append((case["id"], str(exc)))
            continue
        rows = compare(case, pred)
        results.append({"case": case, "pred": pred, "rows": rows})
    all_rows = [(r, row) for r in results for row in r["rows"]]
    rel = [abs(p - m) / m for _, (_, m, p) in all_rows]
    within = [ratio_error(m, p) <= 2 for _, (_, m, p) in all_rows]
    case_worst = [max((ratio_error(m, p) for _, m, p in r["rows"]), default=1.0) for r in results]
    lines = [
        "# Performance model vs published measurements (tests/data/perf_dev.json)",
        "",
        "Generated by `python benchmarks/perf_accuracy.py`. Error = |predicted - measured| / measured per figure;",
        "'within 2x' = max(pred/meas, meas/pred) <= 2. Each case is predicted from its settings only.",
        "",
        f"- cases predicted: {len(results)} of {len(cases)} ({len(uncovered)} not covered: architecture not in the catalogue)",
        f"- figures compared: {len(all_rows)}",
        f"- **median error {statistics.median(rel):.1%}**, mean {statistics.mean(rel):.1%}",
        f"- figures within 2x: {sum(within)}/{len(within)} ({sum(within) / len(within):.0%});"
        f" cases with every figure within 2x: {sum(w <= 2 for w in case_worst)}/{len(case_worst)}",
        "",
    ]
    for field in ("regime", "engine", "gpu_family"):
        groups: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for r, (_, m, p) in all_rows:
            groups[str(r["case"][field])].append((m, p))
        lines += [
            f"## By {field}",
            "",
            f"| {field} | figures | median error | within 2x |",
            "|---|---:|---:|---:|",
        ]
        for g, vals in sorted(groups.items()):
            errs = [abs(p - m) / m for m, p in vals]
            w2 = sum(ratio_error(m, p) <= 2 for m, p in vals)
            lines.append(
                f"| {g} | {len(vals)} | {statistics.median(errs):.1%} | {w2}/{len(vals)} |"
            )
        lines.append("")
    lines += [
        "## Per case",
        "",
        "| case | regime | engine | GPU | TP | figure | measured | predicted | error |",
        "|---|---|---|---|---:|---|---:|---:|---:|",
    ]
    for r in results:
        c = r["case"]
        for key, m, p in r["rows"]:
            flag = " **>2x**" if ratio_error(m, p) > 2 else ""
            lines.append(
                f"| {c['id']} | {c['regime']} | {c['engine']} | {c['gpu_family']} | {r['pred'].get('tp', c.get('tensor_parallel_size') or 1)} "
                f"| {key} | {m:,.4g} | {p:,.4g} | {(p - m) / m:+.0%}{flag} |"
            )
    lines += ["", "## Not covered", ""] + [f"- {cid}: {why}" for cid, why in uncovered]
    lines += ["", "## Notes on cases", "", NOTES]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    if not args.quiet:
        print("\n".join(lines[:12]))
        for r in results:
            for key, m, p in r["rows"]:
                print(
                    f"{r['case']['id'][:58]:58s} {key:28s} {m:10.4g} {p:10.4g} {(p - m) / m:+6.0%}"
                )
    return 0


NOTES = """\
- Static-batch and llama-bench cases are the cleanest tests of the step model; serving cases depend on
  the load generator (burst vs closed loop vs Poisson) and are modelled accordingly.
- dennislee22 TP2 A100 cases (Qwen2.5-32B, Qwen2-72B): TP2 is inferred by the source and the two GPUs are
  separate pods, so the all-reduce path may be PCIe or network rather than NVLink; we assume the catalogue
  A100-80GB-SXM with NVLink, which under-predicts TPOT if the pods had no NVLink.
- Dataset cases (ShareGPT, MLPerf OpenOrca) run on the `vramplan perf --dataset` preset's length law, rescaled
  to the run's own mean lengths where it printed token totals: the batch holds length-biased contexts (long
  outputs stay longer), prefill attention uses E[in^2]/E[in], and a median end-to-end latency is compared with
  the latency of the median output length. sglang030 70B: that median latency shows the TPOT
  under-prediction that comparing a mean-length latency with a median used to hide.
- Served cases (closed loop, bursts, Poisson) add the HTTP front end to TTFT and latency (15 ms; 2 ms for
  llama-server); static batches and llama-bench do not. Before it, TTFTs of short prompts on fast GPUs sat
  11-22 ms under the measurements on every engine (trtllm014 8B qps16 -49 %, H200 qps32 -41 %).
- SGLang runs prefills as batches of their own (enable_mixed_chunk is off by default), so each waiting prompt
  at a moderate Poisson rate costs a whole step (sglang030 70B TTFT -31 % -> -9 %, TPOT -40 % -> -34 %);
  the TPOT still left is shared by every TP4 70B H100 case (vLLM 0.6 -18 %, TRT-LLM ITL -33 %).
- A case's engine version picks perf's row: vLLM before 0.6 (`vllm-0.5`: synchronous CPU work per step, no
  chunked prefill) and SGLang before 0.4 (`sglang-0.3`: no overlap scheduler, so its scheduling time sits
  between GPU steps; sglang030 8B offline +32 % -> +28 %, 70B TPOT -34 % -> -28 %).
- vllm060 ShareGPT cases use --num-scheduler-steps 10: ITL there is a burst gap, so TPOT is compared.
- MLPerf cases: the running batch, precision and TP are not stated; we assume FP8 and the smallest TP
  that leaves room for a batch, replicated over the 8 GPUs.
- dl-vllm01011 qwen2-72b TP2 bs1 (covered since the catalogue has Qwen2-72B-Instruct, same config; utilization
  0.95 as its 6.77 GiB KV per GPU implies): TPOT is the meaningful figure. Its TTFT (93 ms) is physically impossible
  for a cold 1,024-token prefill (2 x 72.7e9 x 1024 FLOP over 2 x 312 TFLOP/s = 239 ms at 100 % of peak): prefix
  caching was on with ~50 % hit rate from repeated runs, so a large error there is expected.
- TTFT of dl-vllm01011 qwen25-32b TP2 bs1 (61 ms), qwen2-7b burst30 (242 ms) and burst200 is below what the
  GPUs can compute at 100 % of peak (e.g. 2 x 32e9 x 1024 FLOP over 2 x 312 TFLOP/s = 105 ms > 61 ms): prefix
  caching was on with ~50 % hit rate from repeated runs, so these TTFTs are not cold prefills. `vramplan perf
  --prefix-hit-rate` models hits, but the hit rate of each run is not known (the 50 % is cumulative over
  repeated runs; burst10 of the same series is a cold prefill within 4 %), so these cases run without
  hits and stay the figures outside 2x.
- trtllm05 H100 FP8 TP4 128-token TTFT (26 ms) is 2.4x our prediction; it is an early (v0.5) vendor table and
  the same row's long-prompt A100 case matches within 1 %, so we leave it as an outlier.
- ft-vllm071 70B TP2 TTFT (342 ms) is 2.2x our 155 ms; its TPOT matches within 1 %, which points at client-side
  or tokenisation time in that harness rather than the prefill.
- A100 with size not stated is taken as A100-80GB-SXM.
- kubeai L4 Llama-3.2-11B-Vision: run with the settings its notes give (max-num-seqs 16, utilization 0.95); with the default 256 sequences the predicted throughput is 4.5x the measured one.
"""


if __name__ == "__main__":
    raise SystemExit(main())
