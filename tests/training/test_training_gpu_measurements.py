"""Training memory against torch's counters on a real GPU (benchmarks/gpu/measure_train.py, H200).

Llama-3.2-1B in bf16, torch.optim.AdamW (states in the parameter dtype), micro-batch 4 x 1,024 tokens;
full fine-tuning with and without gradient checkpointing, and peft LoRA r=16 on q_proj/v_proj.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vramplan.training import estimate_training

DATA = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "gpu_measurements_train_h200.json").read_text()
)


def _ours(r: dict) -> dict:
    return estimate_training(
        r["model"],
        method=r["method"],
        micro_batch=r["micro_batch"],
        seq_len=r["seq_len"],
        optimizer="adamw-bf16",
        precision="bf16",
        recompute="full" if r["gradient_checkpointing"] else "none",
        lora_rank=16,
        lora_targets="q,v",
        gpu_memory="139GiB",
    ).to_dict()["per_gpu"]


@pytest.mark.parametrize(
    "r", DATA["training"], ids=lambda r: f"{r['method']}-ckpt{r['gradient_checkpointing']}"
)
def test_model_states_equal_real_tensors(r: dict) -> None:
    ours = _ours(r)
    assert ours["gradients_bytes"] == r["gradient_bytes"]
    assert ours["optimizer_bytes"] == r["optimizer_state_bytes"]
    if r["method"] == "full":
        assert ours["weights_bytes"] == r["parameter_bytes"]
    else:  # frozen bf16 base + fp32 adapters
        assert ours["weights_bytes"] == pytest.approx(r["parameter_bytes"], rel=1e-3)


@pytest.mark.parametrize(
    "r", DATA["training"], ids=lambda r: f"{r['method']}-ckpt{r['gradient_checkpointing']}"
)
def test_step_peak_within_15_percent(r: dict) -> None:
    ours = _ours(r)["total_bytes"]
    measured = r["step_peak_allocated_bytes"]
    assert abs(ours - measured) / measured < 0.15, (
        f"measured {measured / 2**30:.2f} GiB, ours {ours / 2**30:.2f} GiB"
    )
