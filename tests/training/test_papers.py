"""Reproductions of the papers' printed numbers (see benchmarks/results/training.md)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from vramplan.model.hf_config import spec_from_config
from vramplan.training import (
    LayerShape,
    estimate_training,
    korthikanti_layer_bytes,
    korthikanti_total_first_stage,
    layer_bytes,
    zero_model_states,
)
from vramplan.units import GB


# ---------------------------------------------------------------- ZeRO (Rajbhandari et al. 2019, Figure 1)
@pytest.mark.parametrize("stage,printed", [(0, 120.0), (1, 31.4), (2, 16.6), (3, 1.9)])
def test_zero_paper_7_5b_on_64_gpus(stage: int, printed: float) -> None:
    states = zero_model_states(7_500_000_000, stage, 64)
    assert round(states.total / GB, 1) == printed


def test_zero_gpt2_example_16_bytes_per_param() -> None:
    # ZeRO §3.1: GPT-2 1.5B needs at least 24 GB of model states with mixed-precision Adam (3 GB of fp16 weights)
    states = zero_model_states(1_500_000_000, 0, 1)
    assert states.total == 24 * GB and states.weights == 3 * GB


def test_estimate_training_params_mode_matches_zero_closed_form() -> None:
    for stage in range(4):
        b = estimate_training(params=7_500_000_000, gpus=64, zero=stage)
        p = b.per_gpu
        assert (
            p.weights + p.gradients + p.optimizer
            == zero_model_states(7_500_000_000, stage, 64).total
        )


def test_fp32_gradient_accumulation_is_18_bytes_per_param() -> None:
    b = estimate_training(params=1_000_000, precision="mixed-fp32-grads")
    assert b.per_gpu.weights + b.per_gpu.gradients + b.per_gpu.optimizer == 18_000_000


# ---------------------------------------------------- Korthikanti et al. 2022, Table 2 and the text
SBH = [(2048, 1, 12288, 96), (2048, 4, 6144, 64), (1024, 2, 4096, 32)]


@pytest.mark.parametrize("s,b,h,a", SBH)
@pytest.mark.parametrize("t", [1, 2, 8])
def test_table2_rows_as_printed_and_generalisation_agrees(
    s: int, b: int, h: int, a: int, t: int
) -> None:
    sbh = Fraction(s * b * h)
    rows = {
        ("none", False): sbh * (10 + Fraction(24, t) + Fraction(5 * a * s, h * t))
        if t > 1
        else sbh * (34 + Fraction(5 * a * s, h)),
        ("none", True): sbh * (Fraction(34, t) + Fraction(5 * a * s, h * t)),
        ("selective", False): sbh * (10 + Fraction(24, t)),
        ("selective", True): sbh * Fraction(34, t),
        ("full", False): 2 * sbh,
    }
    gpt = LayerShape.gpt(h, a)
    for (recompute, sp), expected in rows.items():
        assert (
            korthikanti_layer_bytes(s, b, h, a, t, sequence_parallel=sp, recompute=recompute)
            == expected
        )
        assert layer_bytes(gpt, s, b, t, sequence_parallel=sp, recompute=recompute) == expected
    # FlashAttention never stores the s x s scores: it is the selective row
    assert layer_bytes(gpt, s, b, t, flash_attention=True) == rows[("selective", False)]


@pytest.mark.parametrize(
    "name,h,a,printed",
    [("GPT-3 175B", 12288, 96, 80), ("MT-NLG 530B", 20480, 128, 64), ("1T", 25600, 160, 64)],
)
def test_5as_over_h_as_printed(name: str, h: int, a: int, printed: int) -> None:
    assert Fraction(5 * a * 2048, h) == printed


@pytest.mark.parametrize("h,a,saving", [(12288, 96, 70), (20480, 128, 65)])
def test_selective_recompute_saves_70_and_65_percent(h: int, a: int, saving: int) -> None:
    full = korthikanti_layer_bytes(2048, 1, h, a)
    sel = korthikanti_layer_bytes(2048, 1, h, a, recompute="selective")
    assert round(100 * (1 - sel / full)) == saving


@pytest.mark.parametrize("h,a", [(12288, 96), (20480, 128), (25600, 160)])
def test_sp_plus_selective_is_about_5x_less_than_tp_baseline(h: int, a: int) -> None:
    base = korthikanti_layer_bytes(2048, 1, h, a, 8)
    best = korthikanti_layer_bytes(2048, 1, h, a, 8, sequence_parallel=True, recompute="selective")
    assert round(base / best) == 5


def test_eq5_pipeline_first_stage_holds_L_layers() -> None:
    # 1F1B: the first stage holds p micro-batches of L/p layers = L layers' worth (Eq. 5)
    from vramplan.training import stage_activation_bytes

    h, a, s, L, p, t = 12288, 96, 2048, 96, 8, 8
    stage0 = stage_activation_bytes(
        LayerShape.gpt(h, a),
        51200,
        s,
        1,
        layers_on_stage=L // p,
        stage=0,
        pp=p,
        t=t,
        sequence_parallel=True,
        dropout=True,
    )
    assert stage0.layers == Fraction(s * h * L, t) * (34 + Fraction(5 * a * s, h))
    assert stage0.head_and_tail == s * h * p // t
    total = korthikanti_total_first_stage(s, 1, h, a, L, 51200, t, p)
    assert stage0.layers + stage0.head_and_tail == total


# ---------------------------------------------------------------- QLoRA (Dettmers et al. 2023)
LLAMA_65B = spec_from_config(
    {
        "model_type": "llama",
        "vocab_size": 32000,
        "hidden_size": 8192,
        "intermediate_size": 22016,
        "num_hidden_layers": 80,
        "num_attention_heads": 64,
        "num_key_value_heads": 64,
        "max_position_embeddings": 2048,
        "torch_dtype": "float16",
    },
    name="llama-65b",
)


def test_llama_65b_param_count() -> None:
    from vramplan.model.params import count_params

    assert round(count_params(LLAMA_65B).total / 1e9, 1) == 65.3


def test_16bit_full_finetune_of_65b_needs_more_than_780_gb() -> None:
    n = estimate_training(LLAMA_65B, search=False).params
    # the paper's "> 780 GB": 16-bit weights + 16-bit gradients + fp32 Adam moments = 12 B/param
    assert zero_model_states(n, 0, 1, k=8).total > 780 * GB
    b = estimate_training(
        LLAMA_65B, search=False
    )  # our default: mixed precision with fp32 master, 16 B/param
    assert b.per_gpu.weights + b.per_gpu.gradients + b.per_gpu.optimizer > 780 * GB


def test_qlora_65b_fits_on_one_48gb_gpu() -> None:
    # the paper's recipe: NF4 + double quant, LoRA r=64 on all linear layers, paged AdamW, gradient checkpointing
    b = estimate_training(
        LLAMA_65B,
        method="qlora",
        lora_rank=64,
        lora_targets="all-linear",
        recompute="full",
        micro_batch=1,
        seq_len=512,
        gpu_memory="48GB",
    )
    assert b.fits
    assert b.total_bytes - b.per_gpu.pageable < 48 * GB
    # frozen base ≈ 0.516 B/param on linears (4.127 bits) + bf16 embeddings/lm_head/norms
    assert 33 * GB < b.per_gpu.detail["frozen_base_weights"] < 36 * GB
