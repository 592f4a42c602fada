"""Measure real GPU memory of catalogue models built from their configs with random weights.

Run on a machine with a CUDA GPU, torch and transformers (no vramplan install needed):

    python benchmarks/gpu/measure.py --out benchmarks/gpu/measurements.json [--models a,b,...]

For each model: bytes allocated by building it in bf16 (parameters + buffers), the real KV-cache
tensor bytes after a prefill of BATCH x PROMPT tokens, and torch's allocated-bytes peak during that
prefill and during one decode step (logits_to_keep=1, as generate() does; the attention implementation transformers picks by default).
Results carry the settings and library versions so they can be compared with vramplan's arithmetic.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
import warnings
from pathlib import Path

import torch
import transformers

CATALOG = Path(__file__).resolve().parents[2] / "src" / "vramplan" / "model" / "catalog"
DEFAULT_MODELS = [
    "Qwen__Qwen2.5-0.5B",
    "Qwen__Qwen3-0.6B",
    "meta-llama__Llama-3.2-1B-Instruct",
    "TinyLlama__TinyLlama-1.1B-Chat-v1.0",
    "openai-community__gpt2",
    "facebook__opt-1.3b",
    "google__gemma-2-2b",
    "HuggingFaceTB__SmolLM2-1.7B-Instruct",
    "microsoft__Phi-3-mini-4k-instruct",
    "meta-llama__Llama-3.1-8B",
    "mistralai__Mistral-7B-v0.1",
    "Qwen__Qwen2.5-7B",
    "Qwen__Qwen3-8B",
    "google__gemma-2-9b",
    "tiiuae__falcon-7b",
    "deepseek-ai__DeepSeek-V2-Lite",
    "openai__gpt-oss-20b",
    "Qwen__Qwen3-30B-A3B",
]
BATCH, PROMPT = 4, 512


def hf_config(raw: dict):
    raw = dict(raw)
    if raw.get("model_type") in ("RefinedWeb", "RefinedWebModel"):
        new_arch = raw["model_type"] == "RefinedWeb"
        raw = {
            "model_type": "falcon",
            "vocab_size": raw["vocab_size"],
            "hidden_size": raw["hidden_size"],
            "num_hidden_layers": raw["n_layer"],
            "num_attention_heads": raw["n_head"],
            "num_kv_heads": raw.get("n_head_kv", raw["n_head"]),
            "new_decoder_architecture": new_arch,
            "multi_query": raw.get("multi_query", True),
            "parallel_attn": raw.get("parallel_attn", True),
            "bias": raw.get("bias", False),
            "alibi": raw.get("alibi", False),
        }
    raw.pop("quantization_config", None)
    raw.pop("auto_map", None)
    return transformers.AutoConfig.for_model(raw.pop("model_type"), **raw)


def cache_bytes(cache) -> int:
    total = 0
    layers = getattr(cache, "layers", None)
    if layers is not None:
        for layer in layers:
            for name in ("keys", "values"):
                t = getattr(layer, name, None)
                if isinstance(t, torch.Tensor):
                    total += t.numel() * t.element_size()
        return total
    for kv in cache:
        for t in kv:
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()
    return total


def measure(name: str) -> dict:
    raw = json.loads((CATALOG / f"{name}.json").read_text())
    cfg = hf_config(raw)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    with torch.device("cuda"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.set_default_dtype(torch.bfloat16)
        try:
            model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
        finally:
            torch.set_default_dtype(torch.float32)
    model.eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.is_floating_point():
                p.normal_(0.0, 0.02)
    torch.cuda.synchronize()
    weights = torch.cuda.memory_allocated() - base
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    buffer_bytes = sum(b.numel() * b.element_size() for b in model.buffers())
    vocab = cfg.get_text_config().vocab_size if hasattr(cfg, "get_text_config") else cfg.vocab_size
    ids = torch.randint(0, min(vocab, 1000), (BATCH, PROMPT), device="cuda")
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
    torch.cuda.synchronize()
    prefill_peak = torch.cuda.max_memory_allocated() - before
    kv = cache_bytes(out.past_key_values)
    after_prefill = torch.cuda.memory_allocated() - before
    torch.cuda.reset_peak_memory_stats()
    before_decode = torch.cuda.memory_allocated()
    with torch.no_grad():
        out2 = model(
            input_ids=ids[:, :1],
            past_key_values=out.past_key_values,
            use_cache=True,
            logits_to_keep=1,
        )
    torch.cuda.synchronize()
    decode_peak = torch.cuda.max_memory_allocated() - before_decode
    kv_after_decode = cache_bytes(out2.past_key_values)
    result = {
        "model": name.replace("__", "/", 1),
        "dtype": "bfloat16",
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "batch": BATCH,
        "prompt_tokens": PROMPT,
        "logits_to_keep": 1,
        "weights_allocated_bytes": weights,
        "parameter_bytes": param_bytes,
        "buffer_bytes": buffer_bytes,
        "kv_cache_bytes_after_prefill": kv,
        "kv_cache_bytes_after_one_decode": kv_after_decode,
        "allocated_growth_after_prefill_bytes": after_prefill,
        "prefill_peak_over_weights_bytes": prefill_peak,
        "decode_peak_over_state_bytes": decode_peak,
    }
    del out, out2, model
    gc.collect()
    torch.cuda.empty_cache()
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS))
    ap.add_argument("--budget-s", type=float, default=400)
    args = ap.parse_args()
    free, total = torch.cuda.mem_get_info()
    doc = {
        "device": torch.cuda.get_device_name(),
        "cuda_total_bytes": total,
        "cuda_free_bytes_at_start": free,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "measured_on": time.strftime("%Y-%m-%d"),
        "results": [],
        "failures": [],
    }
    start = time.time()
    for name in args.models.split(","):
        if time.time() - start > args.budget_s:
            doc["failures"].append({"model": name, "error": "skipped: time budget"})
            continue
        t0 = time.time()
        try:
            r = measure(name)
            r["seconds"] = round(time.time() - t0, 1)
            doc["results"].append(r)
            print(json.dumps(r), flush=True)
        except Exception as exc:  # record and go on: one model must not lose the others
            doc["failures"].append({"model": name, "error": f"{type(exc).__name__}: {exc}"[:500]})
            print("FAIL", name, exc, flush=True)
            gc.collect()
            torch.cuda.empty_cache()
        Path(args.out).write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
