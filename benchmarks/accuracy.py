"""Predicted vs logged startup figures for every dev-set case whose model resolves.

Run: ``python benchmarks/accuracy.py`` -> writes ``benchmarks/results/accuracy.md``.

Each case of ``tests/data/real_logs.json`` is predicted from its own settings (model, dtype,
quantization, TP/PP, utilization, max_model_len, batch limits, version, GPU total as logged) with
the engine's predictor. Cases whose model is not in the catalogue (and is not a quantized variant of
a catalogue model) are listed as not covered rather than guessed.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from vramplan.errors import VramplanError  # noqa: E402

FIELDS = (
    "weights_gib",
    "activation_peak_gib",
    "non_torch_gib",
    "available_kv_cache_gib",
    "gpu_blocks",
    "kv_cache_tokens",
    "max_concurrency",
)
#: Model names in the dev set that are local paths or lack an org; mapped to the published repo id.
ALIASES = {
    "Llama-2-70B": "meta-llama/Llama-2-70b-hf",
    "Llama-2-7B": "meta-llama/Llama-2-7b-hf",
}


#: Cases whose gap we attribute to the case itself, not to a missing model term.
CASE_NOTES = (
    "vllm-pr2031-llama2-70b-4xa100 (+46 % blocks): a PR branch that changed how NCCL memory at TP=4 is counted "
    "(the note says the pool shrank by a third); released 0.2.x behaved like our prediction (31,615 blocks before the fix).",
    "vllm-21348 (+65 % KV): version not shown (mid-2025), LMCache connector, default utilization assumed; we predict "
    "with the 0.10 profile. Its activation peak is unknown; with 0.11's sampler (~9.7 copies) the gap is +23 %.",
    "vllm-pr17122 (+22 % tokens): a 0.8.5 dev build with torch.compile on an L40S; only weights and tokens are shown, so "
    "utilization and batch limits are unknown.",
    "vllm-pr10511-tp1: non-torch 1.79 GiB at TP=1 on the PR that introduced the breakdown line; released 0.6.x logs show 0.26-0.35.",
    "gpt-oss: vLLM's MXFP4 MoE kernels pad the expert tensors (hidden to 256, intermediate per partition to 64 or 128 by "
    "version); modelled in engines/vllm.py, weights now within 0.8 %.",
    "llmd-gptoss120b: a transcribed summary whose figures do not add up at the stated utilization 0.9 "
    "(64.38 + 7.38 + 0.13 + 3.33 = 75.22 GiB = 0.95 x 79.18 GiB); we predict with 0.9 and say it does not start. "
    "We believe the utilization in the source is 0.95.",
    "gemma-3 weights (were -6.6 / -2.6 / -0.7 %): vLLM's rotary cos/sin caches, not the vision tower. The global rope "
    "uses linear scaling x8, so its cache spans 131,072 x 8 positions x head_dim in bf16 (512 MiB at head_dim 256), plus "
    "an unscaled local-rope cache; modelled in engines/vllm.py (rotary_cache_bytes), now within 0.2 %.",
    "gemma-3 activation -3.8 to -5.2 %: the multimodal profile keeps the dummy images' pixel values and encoder outputs "
    "alive through the sampler (~0.15-0.2 GiB, the same for all three sizes); not modelled yet.",
    "llmdplanner-...-dtf32 activation -11.7 %: fp32 compute; the sampler copy count is calibrated on bf16 runs.",
    "llmdplanner-codellama activation -6.1 %: the only dense case where the forward pass dominates; the remaining "
    "~50 MiB is below one hidden-size buffer and is not fitted.",
    "llama-4-scout TP4: weights match once vLLM's TP split of the vision encoder and its 2.5 GiB rotary cache "
    "(10,485,760 positions x 128 in bf16) are counted; its KV space is ~1 GiB short of the log (non-weight terms).",
    "llmd-mistral-small-3.2-24b activation +130 %: labelled 0.11.0 like the other llmd-* runs, but its peak fits the "
    "~3.7 sampler copies of 0.10/0.19 (2.12 GiB) while the other llmd-* runs ('latest' image) fit ~9.5 copies; "
    "we believe the runs used different vLLM versions and keep one profile per version.",
    "qwen2.5-7b-instruct TP4 weights +0.8 %: the case resolves to the base Qwen2.5-7B config (max_position 131,072), "
    "whose rotary cache is 32 MiB; the Instruct config has 32,768 (8 MiB).",
)


def _num(text: Any) -> float | None:
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return float(text)
    m = re.search(r"[-+]?\d+(?:\.\d+)?", str(text))
    return float(m.group(0)) if m else None


def _word(text: Any) -> str | None:
    if text is None:
        return None
    w = str(text).split(" ")[0].strip()
    return w or None


def case_settings(case: dict[str, Any]) -> dict[str, Any]:
    """vLLM-style settings from a dev-set case (values as logged; annotations in parentheses dropped)."""
    model = str(case["model"]).split(" (")[0]
    model = ALIASES.get(model, model)
    m = re.search(r"\(local copy of ([^)]+)\)", str(case["model"]))
    if m:
        model = m.group(1)
    s: dict[str, Any] = {"model": model}
    dtype = _word(case.get("dtype"))
    if dtype and dtype not in ("auto",):
        s["dtype"] = dtype
    q = _word(case.get("quantization"))
    if q:
        s["quantization"] = q
    kv = _word(case.get("kv_cache_dtype"))
    if kv:
        s["kv_cache_dtype"] = kv
    for key in (
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "gpu_memory_utilization",
        "max_model_len",
        "block_size",
        "max_num_seqs",
        "max_num_batched_tokens",
        "enforce_eager",
    ):
        if case.get(key) is not None:
            s[key] = case[key]
    total = case.get("total_gpu_memory_gib") or _gpu_total(case.get("gpu"))
    if total:
        s["gpu_total_gib"] = total
    free = re.search(r"(\d+\.\d+) GB free before load", str(case.get("gpu") or ""))
    if free:  # SGLang's own F0, printed by its log ("GB" meaning GiB)
        s["avail_mem_before_load_gb"] = float(free.group(1))
    version = str(case.get("engine_version") or "")
    vm = re.search(r"(\d+\.\d+(?:\.\d+)?)", version)
    if vm:
        s["engine_version"] = vm.group(1)
    elif "V0" in version:
        s["engine_version"] = "0.7"
    elif "V1" in version:
        s["engine_version"] = "0.10"
    if "V0" in version:
        s["vllm_generation"] = "v0"
    return s


def _gpu_total(gpu: Any) -> float | None:
    text = str(gpu or "")
    m = (
        re.search(r"/(\d+\.\d+) GiB", text)
        or re.search(r"(\d+\.\d+) GiB total", text)
        or re.search(r"total_gpu_memory (\d+\.\d+)", text)
    )
    if m:
        return float(m.group(1))
    m = re.search(r"nvidia-smi (\d+) ?MiB", text) or re.search(r"\((\d+) MiB each", text)
    if m:
        return (int(m.group(1)) - 500) / 1024  # nvidia-smi total minus the ~0.5 GiB CUDA reserves
    return None


def _gpu_name(case: dict[str, Any]) -> str | None:
    text = str(case.get("gpu") or "")
    for key in (
        "H100",
        "H200",
        "A100 80",
        "A100-80",
        "A100 40",
        "A100-40",
        "L40S",
        "L40",
        "L4",
        "A10G",
        "A10",
        "T4",
        "V100",
        "RTX 3090",
        "RTX 4090",
        "RTX 4080",
        "RTX 4060",
        "MI300X",
        "MI250",
    ):
        if key in text:
            return {
                "A100 80": "A100-80GB-SXM",
                "A100-80": "A100-80GB-SXM",
                "A100 40": "A100-40GB-SXM",
                "A100-40": "A100-40GB-SXM",
                "RTX 3090": "RTX-3090",
                "RTX 4090": "RTX-4090",
                "RTX 4080": "RTX-4080",
                "H100": "H100-80GB-SXM",
            }.get(key, key)
    if "80GB" in text or "80 GB" in text:
        return "H100-80GB-SXM"
    return None


def predict_case(case: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """(prediction dict, reason when not covered)."""
    engine = case["engine"]
    settings = case_settings(case)
    gpu = _gpu_name(case)
    total = settings.get("gpu_total_gib")
    if engine != "vllm":
        try:
            import importlib

            mod = importlib.import_module(f"vramplan.engines.{engine.replace('.', '')}")
        except ImportError:
            return None, f"no {engine} predictor yet"
        fn = getattr(mod, "predict_from_settings", None)
        if fn is None:
            return None, f"no {engine} predictor yet"
        try:
            merged = {**case, **settings}
            gpu_memory = None if gpu or not total else f"{total}GiB"
            return fn(
                merged, gpu, gpu_memory=gpu_memory, engine_version=settings.get("engine_version")
            ).to_dict(), None
        except VramplanError as exc:
            return None, f"not covered: {exc}"[:160]
        except Exception as exc:
            return None, f"{engine} predictor failed: {type(exc).__name__}: {exc}"[:160]
    from vramplan.engines.vllm import predict_vllm

    if gpu is None and total is None:
        return None, "GPU not stated"
    try:
        pred = predict_vllm(
            settings, gpu=gpu, engine_version=settings.get("engine_version"), fixes=False
        )
    except VramplanError as exc:
        return None, f"not covered: {str(exc).split(':')[0][:120]}"
    return pred.to_dict(), None


def _logged(case: dict[str, Any], field: str) -> float | None:
    v = case.get(field)
    if v is None and field == "weights_gib":
        v = case.get("weights_gb")
    if v is None and field == "available_kv_cache_gib":
        v = case.get("kv_cache_size_gib")
    if (
        v is None
        and field == "kv_cache_tokens"
        and case.get("engine") == "vllm"
        and case.get("gpu_blocks")
        and case.get("block_size")
        and "V0" in str(case.get("engine_version"))
    ):
        v = None  # V0 logs blocks, not tokens; compare blocks instead
    return _num(v)


def _err(pred: float | None, logged: float | None) -> float | None:
    if pred is None or logged is None or logged == 0:
        return None
    return (pred - logged) / abs(logged)


def run(
    path: Path = ROOT / "tests" / "data" / "real_logs.json",
) -> tuple[list[dict[str, Any]], str]:
    import accuracy_2026

    cases = json.loads(path.read_text())
    rows: list[dict[str, Any]] = []
    for case in cases:
        pred, reason = predict_case(case)
        row: dict[str, Any] = {
            "id": case["id"],
            "engine": case["engine"],
            "version": case.get("engine_version"),
            "model": case["model"],
            "reason": reason,
            "errors": {},
            "logged": {},
            "predicted": {},
        }
        if pred is not None:
            for f in FIELDS:
                lg, pr = _logged(case, f), pred.get(f)
                row["logged"][f], row["predicted"][f] = lg, pr
                row["errors"][f] = _err(pr, lg)
            row["starts"] = pred.get("starts")
            row["outcome"] = case.get("outcome")
        rows.append(row)
    return rows, render(rows, accuracy_2026.render(accuracy_2026.rows()))


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.{digits}f}"
    return f"{int(v):,}"


def _pct(e: float | None) -> str:
    return "–" if e is None else f"{e * 100:+.1f}%"


def summary(rows: list[dict[str, Any]]) -> list[tuple[str, str, int, int, str, str, str]]:
    out = []
    for engine in sorted({r["engine"] for r in rows}):
        er = [r for r in rows if r["engine"] == engine]
        covered = [r for r in er if r["reason"] is None]
        for f in FIELDS:
            errs = [abs(r["errors"][f]) for r in covered if r["errors"].get(f) is not None]
            if not errs:
                continue
            within10 = sum(e <= 0.10 for e in errs) / len(errs)
            out.append(
                (
                    engine,
                    f,
                    len(errs),
                    len(er),
                    f"{statistics.median(errs) * 100:.1f}%",
                    f"{max(errs) * 100:.1f}%",
                    f"{within10 * 100:.0f}%",
                )
            )
    return out


def render(rows: list[dict[str, Any]], section_2026: list[str] | None = None) -> str:
    lines = [
        "# Accuracy on the development set (tests/data/real_logs.json)",
        "",
        "Generated by `python benchmarks/accuracy.py`. Errors are (predicted − logged) / logged, per GPU.",
        "",
        "## Summary",
        "",
        "| engine | field | cases with a logged value and a prediction | cases of the engine | median abs error | worst | within 10 % |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summary(rows):
        lines.append("| " + " | ".join(str(x) for x in s) + " |")
    covered = sum(r["reason"] is None for r in rows)
    lines += [
        "",
        f"Coverage: {covered} of {len(rows)} cases predicted.",
        "",
        "## Per case",
        "",
        "| case | version | weights (pred / log) | activation | available KV GiB | blocks | KV tokens | concurrency | starts / outcome |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["reason"] is not None:
            continue

        def cell(f: str) -> str:
            return (
                f"{_fmt(r['predicted'].get(f))} / {_fmt(r['logged'].get(f))} ({_pct(r['errors'].get(f))})"
                if r["logged"].get(f) is not None
                else f"{_fmt(r['predicted'].get(f))} / –"
            )

        lines.append(
            f"| {r['id']} | {r['version']} | {cell('weights_gib')} | {cell('activation_peak_gib')} | "
            f"{cell('available_kv_cache_gib')} | {cell('gpu_blocks')} | {cell('kv_cache_tokens')} | "
            f"{cell('max_concurrency')} | {r.get('starts')} / {r.get('outcome') or 'ok'} |"
        )
    lines += ["", "## Cases we believe are off (not fitted)", ""] + [f"- {n}" for n in CASE_NOTES]
    lines += ["", "## Not covered", "", "| case | engine | model | reason |", "|---|---|---|---|"]
    for r in rows:
        if r["reason"] is not None:
            lines.append(f"| {r['id']} | {r['engine']} | {r['model'][:60]} | {r['reason']} |")
    if section_2026:
        lines += ["", *section_2026]
    return "\n".join(lines) + "\n"


def main() -> None:
    rows, text = run()
    out = ROOT / "benchmarks" / "results" / "accuracy.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    for s in summary(rows):
        print(" | ".join(str(x) for x in s))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
