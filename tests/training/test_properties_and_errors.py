"""Monotonicity properties (hypothesis), bad-input messages, and the CLI's --json contract."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vramplan.errors import InputError
from vramplan.model.hf_config import spec_from_config
from vramplan.training import estimate_training

FAST = settings(max_examples=40, deadline=None)


def _spec(
    layers: int = 4,
    hidden: int = 256,
    heads: int = 8,
    kv: int = 4,
    inter: int = 704,
    vocab: int = 1024,
):  # type: ignore[no-untyped-def]
    return spec_from_config(
        {
            "model_type": "llama",
            "vocab_size": vocab,
            "hidden_size": hidden,
            "intermediate_size": inter,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": kv,
            "max_position_embeddings": 4096,
        },
        name=f"synthetic-{layers}x{hidden}",
    )


SPEC = _spec()
methods = st.sampled_from(["full", "lora", "qlora"])
recomputes = st.sampled_from(["none", "selective", "full"])
flash = st.booleans()


@FAST
@given(b=st.integers(1, 64), s=st.integers(1, 8192), method=methods, rc=recomputes, fa=flash)
def test_memory_never_falls_as_micro_batch_or_seq_len_grow(
    b: int, s: int, method: str, rc: str, fa: bool
) -> None:
    kw = {"method": method, "recompute": rc, "flash_attention": fa, "search": False}
    base = estimate_training(SPEC, micro_batch=b, seq_len=s, **kw).total_bytes
    assert estimate_training(SPEC, micro_batch=b + 1, seq_len=s, **kw).total_bytes >= base
    assert estimate_training(SPEC, micro_batch=b, seq_len=s + 1, **kw).total_bytes >= base


@FAST
@given(layers=st.integers(1, 8), hidden_mult=st.integers(1, 8), method=methods, rc=recomputes)
def test_memory_never_falls_as_model_grows(
    layers: int, hidden_mult: int, method: str, rc: str
) -> None:
    h = 64 * hidden_mult
    kw = {
        "method": method,
        "recompute": rc,
        "micro_batch": 2,
        "seq_len": 256,
        "lora_rank": 8,
        "search": False,
    }
    small = estimate_training(_spec(layers, h, 4, 2, 2 * h), **kw).total_bytes
    assert estimate_training(_spec(layers + 1, h, 4, 2, 2 * h), **kw).total_bytes >= small
    assert estimate_training(_spec(layers, h + 64, 4, 2, 2 * (h + 64)), **kw).total_bytes >= small


@FAST
@given(params=st.integers(1_000, 10**12))
def test_memory_never_falls_as_param_count_grows(params: int) -> None:
    assert (
        estimate_training(params=params + 1).total_bytes
        >= estimate_training(params=params).total_bytes
    )


@FAST
@given(
    dp=st.integers(2, 512),
    method=methods,
    opt=st.sampled_from(["adamw", "adamw-8bit", "sgd-momentum", "adafactor"]),
)
def test_higher_zero_stage_never_raises_model_states(dp: int, method: str, opt: str) -> None:
    def states(z: int) -> int:
        p = estimate_training(
            SPEC, gpus=dp, zero=z, method=method, optimizer=opt, search=False
        ).per_gpu
        return p.weights + p.gradients + p.optimizer

    values = [states(z) for z in range(4)]
    # stage 3 adds one gathered layer in flight; the sharded states themselves never rise
    assert values[0] >= values[1] >= values[2]
    p3 = estimate_training(
        SPEC, gpus=dp, zero=3, method=method, optimizer=opt, search=False
    ).per_gpu
    assert p3.weights - p3.detail["zero3_gathered_layer"] + p3.gradients + p3.optimizer <= values[2]


@FAST
@given(
    b=st.integers(1, 16),
    s=st.integers(1, 4096),
    fa=flash,
    method=methods,
    tp=st.sampled_from([1, 2, 4]),
    sp=st.booleans(),
)
def test_recompute_never_raises_activations(
    b: int, s: int, fa: bool, method: str, tp: int, sp: bool
) -> None:
    acts = [
        estimate_training(
            SPEC,
            micro_batch=b,
            seq_len=s,
            flash_attention=fa,
            method=method,
            recompute=rc,
            gpus=tp,
            tensor_parallel=tp,
            sequence_parallel=sp,
            search=False,
        ).per_gpu.activations
        for rc in ("none", "selective", "full")
    ]
    assert acts[0] >= acts[1] >= acts[2]


def test_gradient_accumulation_adds_no_activation_memory() -> None:
    one = estimate_training(SPEC, micro_batch=2, search=False)
    assert "gradient accumulation repeats micro-batches" in " ".join(one.assumptions)
    # more pipeline micro-batches than stages do not add memory either (in flight = min(p - i, m))
    a = estimate_training(
        SPEC, gpus=2, pipeline_parallel=2, num_microbatches=2, search=False
    ).per_gpu.activations
    b = estimate_training(
        SPEC, gpus=2, pipeline_parallel=2, num_microbatches=64, search=False
    ).per_gpu.activations
    assert a == b


# ------------------------------------------------------------------------------------- bad input
def test_rank_larger_than_hidden_size() -> None:
    with pytest.raises(
        InputError,
        match=r"LoRA rank 512 is larger than the adapted matrix .*--lora-rank 128 or less",
    ):
        estimate_training(SPEC, method="lora", lora_rank=512)


def test_zero_stage_with_one_gpu_says_it_has_no_effect() -> None:
    with pytest.raises(
        InputError, match=r"with 1 data-parallel GPU it has no effect: pass --gpus N"
    ):
        estimate_training(SPEC, zero=2)


def test_unknown_optimizer() -> None:
    with pytest.raises(
        InputError, match=r"unknown optimizer 'lion': use one of adamw, adamw-bf16, adamw-8bit"
    ):
        estimate_training(SPEC, optimizer="lion")


def test_other_bad_inputs() -> None:
    with pytest.raises(InputError, match="LoRA target 'qq' matches no linear layer"):
        estimate_training(SPEC, method="lora", lora_targets="qq")
    with pytest.raises(InputError, match="unknown --method"):
        estimate_training(SPEC, method="dora")
    with pytest.raises(InputError, match="not a multiple of TP x PP"):
        estimate_training(SPEC, gpus=3, tensor_parallel=2)
    with pytest.raises(InputError, match="parameter offload needs ZeRO stage 3"):
        estimate_training(SPEC, gpus=2, zero=2, offload_params=True)
    with pytest.raises(InputError, match="Adafactor's factored state depends"):
        estimate_training(params=10**9, optimizer="adafactor")
    with pytest.raises(InputError, match="unknown recompute policy"):
        estimate_training(SPEC, recompute="some")


def test_fsdp_maps_to_zero_stages() -> None:
    full = estimate_training(SPEC, gpus=8, fsdp="full_shard", search=False)
    grad_op = estimate_training(SPEC, gpus=8, fsdp="shard_grad_op", search=False)
    assert full.config.zero == 3 and grad_op.config.zero == 2


def test_offload_moves_optimizer_states_off_the_gpu() -> None:
    on = estimate_training(SPEC, search=False).per_gpu
    off = estimate_training(SPEC, offload="cpu", search=False).per_gpu
    assert off.optimizer == 0 and off.offloaded == on.optimizer and off.weights == on.weights


# ------------------------------------------------------------------------------ fits, fixes, CLI
def test_fixes_each_make_it_fit() -> None:
    b = estimate_training(
        "llama-3.1-8b", micro_batch=4, seq_len=4096, gpus=8, zero=1, gpu="H100-80GB"
    )
    assert b.fits is False and b.fixes
    for fix in b.fixes:
        assert fix.total_bytes <= b.gpu_memory_bytes


def test_max_micro_batch_and_seq_len_fit_and_next_does_not() -> None:
    b = estimate_training(
        "llama-3.1-8b",
        method="qlora",
        micro_batch=1,
        seq_len=2048,
        recompute="full",
        gpu="RTX-4090",
    )
    assert b.fits and b.max_micro_batch >= 1 and b.max_seq_len >= 2048
    cap = b.gpu_memory_bytes

    def need(**kw: int) -> int:
        p = estimate_training(
            "llama-3.1-8b",
            method="qlora",
            recompute="full",
            search=False,
            **{"micro_batch": 1, "seq_len": 2048, **kw},
        ).per_gpu
        return p.total - p.pageable

    assert need(micro_batch=b.max_micro_batch) <= cap < need(micro_batch=b.max_micro_batch + 1)
    assert need(seq_len=b.max_seq_len) <= cap < need(seq_len=b.max_seq_len + 1)


def test_cli_json_keys() -> None:
    from typer.testing import CliRunner

    from vramplan.cli import app

    r = CliRunner().invoke(
        app,
        [
            "train",
            "llama-3.1-8b",
            "--method",
            "lora",
            "--micro-batch",
            "2",
            "--seq-len",
            "1024",
            "--gpu",
            "H100-80GB",
            "--recompute",
            "selective",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    for key in (
        "weights_bytes",
        "gradients_bytes",
        "optimizer_bytes",
        "activations_bytes",
        "overhead_bytes",
        "total_bytes",
    ):
        assert isinstance(d["per_gpu"][key], int)
    for key in ("fits", "max_micro_batch", "max_seq_len", "fixes", "assumptions"):
        assert key in d
    assert d["fits"] is True


def test_cli_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from vramplan.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train", "llama-3.1-8b", "--optimizer", "lion"])
    assert exc.value.code == 1
    assert "unknown optimizer 'lion'" in capsys.readouterr().err
