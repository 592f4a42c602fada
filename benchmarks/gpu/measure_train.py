"""Measure real GPU memory of long prefills and of training steps (run on a CUDA machine).

    python benchmarks/gpu/measure_train.py --out benchmarks/gpu/measurements_train.json

1. Prefill peak of one 8,192-token sequence (logits_to_keep=1) for a few 7-9B catalogue models:
   the chunked-prefill budget engines profile with.
2. One training step of Llama-3.2-1B in bf16 with torch.optim.AdamW (states in the parameter dtype),
   micro-batch 4 x 1,024 tokens, with and without gradient checkpointing; and LoRA (peft, r=16 on
   q_proj/v_proj) on the same model. Records parameter, gradient and optimizer-state bytes and the
   allocated peak of the step.
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
from measure import CATALOG, hf_config  # same folder

PREFILL_MODELS = [
    "meta-llama__Llama-3.1-8B",
    "Qwen__Qwen2.5-7B",
    "Qwen__Qwen3-8B",
    "mistralai__Mistral-7B-v0.1",
    "google__gemma-2-9b",
]
TRAIN_MODEL = "meta-llama__Llama-3.2-1B-Instruct"


def build(name: str):
    cfg = hf_config(json.loads((CATALOG / f"{name}.json").read_text()))
    with torch.device("cuda"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.set_default_dtype(torch.bfloat16)
        try:
            model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
        finally:
            torch.set_default_dtype(torch.float32)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    return model, cfg


def free(*objs) -> None:
    del objs
    gc.collect()
    torch.cuda.empty_cache()


def prefill(name: str, tokens: int = 8192) -> dict:
    model, cfg = build(name)
    model.eval()
    ids = torch.randint(0, 1000, (1, tokens), device="cuda")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - before
    from measure import cache_bytes

    kv = cache_bytes(out.past_key_values)
    r = {
        "model": name.replace("__", "/", 1),
        "batch": 1,
        "prompt_tokens": tokens,
        "logits_to_keep": 1,
        "attn_implementation": model.config._attn_implementation,
        "kv_cache_bytes": kv,
        "prefill_peak_over_weights_bytes": peak,
    }
    del out, model
    free()
    return r


def state_bytes(model, opt) -> tuple[int, int, int]:
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    grads = sum(
        p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None
    )
    states = 0
    for st in opt.state.values():
        for v in st.values():
            if isinstance(v, torch.Tensor):
                states += v.numel() * v.element_size()
    return params, grads, states


def train_step(checkpointing: bool, lora: bool, batch: int = 4, seq: int = 1024) -> dict:
    model, cfg = build(TRAIN_MODEL)
    model.train()
    if checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if lora:
        import peft

        model = peft.get_peft_model(
            model,
            peft.LoraConfig(
                r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"], lora_dropout=0.0
            ),
        )
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4)
    ids = torch.randint(0, 1000, (batch, seq), device="cuda")
    # step 1 creates the optimizer state; measure the second step's peak with everything resident
    for step in range(2):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        out = model(input_ids=ids, labels=ids, use_cache=False)
        out.loss.backward()
        opt.step()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        if step == 0:
            opt.zero_grad(set_to_none=False)
    params, grads, states = state_bytes(model, opt)
    r = {
        "model": TRAIN_MODEL.replace("__", "/", 1),
        "method": "lora" if lora else "full",
        "dtype": "bfloat16",
        "optimizer": "torch.optim.AdamW (states in parameter dtype)",
        "micro_batch": batch,
        "seq_len": seq,
        "gradient_checkpointing": checkpointing,
        "attn_implementation": model.config._attn_implementation,
        "lora": {"r": 16, "target_modules": ["q_proj", "v_proj"]} if lora else None,
        "parameter_bytes": params,
        "gradient_bytes": grads,
        "optimizer_state_bytes": states,
        "allocated_before_step_bytes": before,
        "step_peak_allocated_bytes": peak,
    }
    del out, opt, model
    free()
    return r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    free_b, total = torch.cuda.mem_get_info()
    doc = {
        "device": torch.cuda.get_device_name(),
        "cuda_total_bytes": total,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "measured_on": time.strftime("%Y-%m-%d"),
        "prefill": [],
        "training": [],
        "failures": [],
    }
    jobs = [("prefill", lambda n=n: prefill(n)) for n in PREFILL_MODELS]
    jobs += [
        ("training", lambda c=c, l=l: train_step(c, l))
        for c, l in ((False, False), (True, False), (False, True))
    ]
    for kind, job in jobs:
        try:
            r = job()
            doc[kind].append(r)
            print(json.dumps(r), flush=True)
        except Exception as exc:
            doc["failures"].append(f"{kind}: {type(exc).__name__}: {exc}"[:400])
            print("FAIL", kind, exc, flush=True)
            free()
        Path(args.out).write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
