"""llama.cpp: buffers vs the 4.3 anchor and a real log, placement, KV rules, errors, CLI."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from vramplan.engines.llamacpp import gpu_slots, kv_cells, predict_llamacpp, split_layers, swa_cells
from vramplan.scenario import Fix

MiB = 1024**2
QWEN35 = "Qwen3.5-27B-Q4_K_M"


def test_anchor_llama3_8b_q4km() -> None:
    """engine-memory.md 4.3: KV 512.00, compute 296.00, CPU_Mapped 281.81, CUDA0 model 4095.05 MiB."""
    p = predict_llamacpp(
        ["-m", "Meta-Llama-3-8B-Q4_K_M", "-c", "4096", "-ngl", "99", "-fa"],
        "RTX-4090",
        engine_version="b4500",
    )
    e = p.extra
    assert e["kv_buffer_cuda0_mib"] == 512.0
    assert e["model_buffer_cpu_mapped_mib"] == pytest.approx(281.81, abs=0.01)
    assert e["compute_buffer_cuda0_mib"] == pytest.approx(296.0, rel=0.02)
    assert e["model_buffer_cuda0_mib"] == pytest.approx(4095.05, rel=0.15)


def test_ik103_log_quantized_k_without_fa() -> None:
    p = predict_llamacpp(
        ["-m", "Llama-3.1-8B-Q5_K_S", "-c", "1024", "-b", "1024", "-ngl", "99", "-ctk", "iq4_nl"],
        "RTX-3090",
        engine_version="b3475",
    )
    assert (p.extra["k_mib"], p.extra["v_mib"]) == (18.0, 64.0)
    assert p.extra["model_buffer_cuda0_mib"] == pytest.approx(4941.0, rel=0.05)


def test_quantized_v_needs_flash_attention() -> None:
    p = predict_llamacpp(["-m", "Llama-3.1-8B-Q4_K_M", "-ctv", "q8_0", "-fa", "off"], "RTX-4090")
    assert not p.starts
    assert {(f.flag, f.value) for f in p.fixes if isinstance(f, Fix)} == {
        ("flash_attn", "on"),
        ("cache_type_v", "f16"),
    }


def test_parallel_does_not_multiply_kv() -> None:
    a = predict_llamacpp(
        ["-m", "Llama-3.1-8B-Q4_K_M", "-c", "8192", "-np", "1"], "RTX-4090", engine_version="b5000"
    )
    b = predict_llamacpp(
        ["-m", "Llama-3.1-8B-Q4_K_M", "-c", "8192", "-np", "4"], "RTX-4090", engine_version="b5000"
    )
    assert a.extra["kv_buffer_cuda0_mib"] == b.extra["kv_buffer_cuda0_mib"]


def test_placement_and_padding() -> None:
    assert gpu_slots(32, 99) == (32, True)
    assert gpu_slots(32, 32) == (32, False)
    assert gpu_slots(32, 10) == (10, False)
    assert gpu_slots(32, -1) == (32, True)
    assert (
        kv_cells(1000, True) == 1024
        and kv_cells(1000, False) == 1024
        and kv_cells(1001, False) == 1024
    )
    assert kv_cells(4097, True) == 4352
    assert swa_cells(32768, 4096, 4, 512, False, False) == 4608
    assert swa_cells(32768, 4096, 4, 512, True, False) == 16896
    assert swa_cells(32768, 4096, 4, 512, True, True) == 32768
    assert split_layers(32, [3, 1]) == [24, 8]


def test_partial_offload_keeps_kv_on_host() -> None:
    p = predict_llamacpp(
        ["-m", "Llama-3.1-8B-Q4_K_M", "-c", "4096", "-ngl", "16", "-fa"],
        "RTX-4090",
        engine_version="b5000",
    )
    assert p.extra["kv_buffer_cuda0_mib"] == 256.0 and p.extra["kv_self_mib"] == 512.0
    assert p.extra["offloaded_layers"] == 16


def test_default_context_by_build() -> None:
    old = predict_llamacpp(["-m", "Llama-3.1-8B-Q4_K_M"], "RTX-4090", engine_version="b3000")
    mid = predict_llamacpp(["-m", "Llama-3.1-8B-Q4_K_M"], "RTX-4090", engine_version="b5000")
    assert old.extra["n_ctx"] == 512 and mid.extra["n_ctx"] == 4096
    new = predict_llamacpp(["-m", "Llama-3.1-8B-Q4_K_M"], "RTX-4080", engine_version="b7100")
    assert 4096 <= new.extra["n_ctx"] < 131072 and new.starts  # --fit lowered the training context


def test_does_not_fit_gives_fixes() -> None:
    p = predict_llamacpp(
        ["-m", "Llama-3.1-70B-Q4_K_M", "-c", "8192", "-ngl", "99"],
        "RTX-4090",
        engine_version="b5000",
    )
    assert not p.starts and p.fixes
    flags = {
        "n_gpu_layers": "-ngl",
        "ctx_size": "-c",
        "cache_type_k": "-ctk",
        "cache_type_v": "-ctv",
    }
    for fix in p.fixes:
        assert isinstance(fix, Fix) and fix.why
        fixed = predict_llamacpp(
            ["-m", "Llama-3.1-70B-Q4_K_M", "-c", "8192", "-ngl", "99"]
            + [flags[fix.flag], str(fix.value)]
            + (["-fa", "on"] if fix.flag == "cache_type_v" else []),
            "RTX-4090",
            engine_version="b5000",
        )
        assert fixed.starts, fix  # every proposed change starts on its own
    ngl = next(f.value for f in p.fixes if f.flag == "n_gpu_layers")
    over = predict_llamacpp(
        ["-m", "Llama-3.1-70B-Q4_K_M", "-c", "8192", "-ngl", str(ngl + 1)],
        "RTX-4090",
        engine_version="b5000",
    )
    assert not over.starts  # the largest -ngl that fits, not just one that does


def test_cli_json() -> None:
    from vramplan.cli import app

    r = CliRunner().invoke(
        app,
        [
            "llamacpp",
            "-m",
            "Llama-3.1-8B-Q4_K_M",
            "-c",
            "4096",
            "-ngl",
            "99",
            "--gpu",
            "RTX-4090",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "kv_buffer_cuda0_mib" in json.loads(r.output)["extra"]


def test_cli_renders_fixes_as_llama_server_flags() -> None:
    from vramplan.cli import app

    r = CliRunner().invoke(
        app,
        ["llamacpp", "-m", "Llama-3.1-70B-Q4_K_M", "-c", "8192", "-ngl", "99", "--gpu", "RTX-4090"],
    )
    assert "fix: --n-gpu-layers 45 (offload fewer layers" in r.output


# ------------------------------------------------------------------ hybrid / recurrent models
def _shared_case() -> dict[str, object]:
    from pathlib import Path

    data = Path(__file__).parents[1] / "data" / "real_logs_2026.json"
    return next(
        c
        for c in json.loads(data.read_text())
        if c["id"] == "llamacpp-pr23792-qwen35-27b-class-tensorsplit"
    )


def test_recurrent_state_reproduces_the_shared_log() -> None:
    """PR #23792 log, Qwen3.5-27B class, 3 sequences: R 16.88, S 432.00, 448.88 MiB in all (f32, per cell)."""
    case = _shared_case()
    p = predict_llamacpp(
        ["-m", QWEN35, "-c", "16384", "-np", str(case["rs_seqs"]), "-ts", "1,1,1"],
        "H100",
        engine_version="b8100",
        num_gpus=3,
    )
    e = p.extra
    assert e["rs_cells"] == case["rs_cells"] == 3
    assert (e["rs_r_f32_mib"], e["rs_s_f32_mib"], e["rs_total_mib"]) == (
        case["rs_r_f32_mib"],
        case["rs_s_f32_mib"],
        case["rs_total_mib"],
    )
    # layer split: each device holds the state of its own recurrent layers; together the whole buffer
    per_dev = [e["rs_buffer_cuda0_mib"], e["rs_buffer_cuda1_mib"], e["rs_buffer_cuda2_mib"]]
    assert sum(per_dev) == pytest.approx(case["rs_total_mib"], abs=0.02)
    assert any("llama_memory_recurrent: size = 448.88 MiB (3 cells" in a for a in p.assumptions)


def test_recurrent_state_scales_with_np_not_context_nor_unified() -> None:
    def rs(*flags: str) -> float:
        p = predict_llamacpp(["-m", QWEN35, *flags], "H200", engine_version="b8100")
        return float(p.extra["rs_total_mib"])

    one = rs("-c", "4096", "-np", "1")
    assert rs("-c", "4096", "-np", "4") == pytest.approx(4 * one, abs=0.02)
    assert rs("-c", "65536", "-np", "4") == rs("-c", "4096", "-np", "4")
    assert rs("-c", "4096", "-np", "4", "--kv-unified") == rs("-c", "4096", "-np", "4")


def test_hybrid_kv_only_in_attention_layers() -> None:
    """Qwen3.5-27B: 16 of 64 layers attend (full_attention_interval 4), 4 KV heads of 256: f16 K+V per cell."""
    from vramplan.model.catalog import catalogue

    cfg = catalogue()["Qwen/Qwen3.5-27B"]  # the published config, bundled
    text = cfg.get("text_config", cfg)
    attn = sum(1 for t in text["layer_types"] if t == "full_attention")
    per_cell = attn * 2 * text["num_key_value_heads"] * text["head_dim"] * 2
    p = predict_llamacpp(["-m", QWEN35, "-c", "8192"], "H200", engine_version="b8100")
    assert p.kv_bytes_per_token == per_cell
    assert p.extra["kv_buffer_cuda0_mib"] * MiB == 8192 * per_cell
    # one cell: f32 conv rows (kernel - 1) x (2 K + V channels) and f32 S (v_heads x v_dim x k_dim) per GDN layer
    k_ch = text["linear_num_key_heads"] * text["linear_key_head_dim"]
    v_ch = text["linear_num_value_heads"] * text["linear_value_head_dim"]
    conv = (text["linear_conv_kernel_dim"] - 1) * (2 * k_ch + v_ch) * 4
    ssm = (
        text["linear_num_value_heads"]
        * text["linear_value_head_dim"]
        * text["linear_key_head_dim"]
        * 4
    )
    gdn = len(text["layer_types"]) - attn
    assert p.state_bytes_per_sequence == gdn * (conv + ssm)


def test_hybrid_kv_per_stream_before_19559() -> None:
    """Builds before #19559 gave each of -np non-unified streams the whole n_ctx for hybrids."""

    def kv(version: str, *flags: str) -> float:
        p = predict_llamacpp(["-m", QWEN35, "-c", "8192", *flags], "H200", engine_version=version)
        return float(p.extra["kv_buffer_cuda0_mib"])

    assert kv("b7500", "-np", "3") == 3 * kv("b7500", "-np", "1")
    assert kv("b7500", "-np", "3", "--kv-unified") == kv("b7500", "-np", "1")
    assert kv("b8100", "-np", "3") == kv("b8100", "-np", "1")
    dense = [
        predict_llamacpp(
            ["-m", "Llama-3.1-8B-Q4_K_M", "-c", "8192", "-np", n], "H200", engine_version="b7500"
        ).extra["kv_buffer_cuda0_mib"]
        for n in ("1", "3")
    ]
    assert dense[0] == dense[1]


def test_partial_offload_keeps_recurrent_state_of_host_layers_on_host() -> None:
    p = predict_llamacpp(
        ["-m", QWEN35, "-c", "4096", "-np", "2", "-ngl", "32"], "H200", engine_version="b8100"
    )
    e = p.extra
    # the last 32 blocks (32..63) are on the GPU: 24 of them recurrent, 24 on the host
    assert e["rs_buffer_cuda0_mib"] == pytest.approx(e["rs_total_mib"] / 2, abs=0.01)
    assert e["rs_buffer_cpu_mib"] == pytest.approx(e["rs_total_mib"] / 2, abs=0.01)
    assert p.state_bytes_per_sequence * 2 == pytest.approx(
        e["rs_buffer_cuda0_mib"] * MiB, abs=0.01 * MiB
    )


def test_dense_model_has_no_state() -> None:
    p = predict_llamacpp(
        ["-m", "Llama-3.1-8B-Q4_K_M", "-c", "4096"], "H200", engine_version="b8100"
    )
    assert p.state_bytes_per_sequence == 0 and "rs_total_mib" not in p.extra
    assert p.kv_bytes_per_token == 32 * 2 * 8 * 128 * 2  # Llama-3.1-8B f16: 128 KiB per token


@settings(max_examples=25, deadline=None)
@given(
    ngl=st.integers(min_value=0, max_value=70),
    n_seq=st.integers(min_value=1, max_value=8),
    split=st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=3),
    no_kv_offload=st.booleans(),
)
def test_recurrent_state_is_placed_whole(
    ngl: int, n_seq: int, split: list[int], no_kv_offload: bool
) -> None:
    """Wherever the layers go (-ngl, -ts, -nkvo), the devices and the host hold the whole RS buffer once:
    n_seq cells x the per-sequence state of all recurrent layers."""
    argv = ["-m", QWEN35, "-c", "4096", "-np", str(n_seq), "-ngl", str(ngl)]
    argv += ["-ts", ",".join(map(str, split))] + (["-nkvo"] if no_kv_offload else [])
    p = predict_llamacpp(argv, "H200", engine_version="b8100", num_gpus=len(split))
    e = p.extra
    devices = [e["rs_buffer_cuda0_mib"]] + [
        e[f"rs_buffer_cuda{d}_mib"] for d in range(1, len(split))
    ]
    placed = sum(devices) + e.get("rs_buffer_cpu_mib", 0.0)
    assert placed == pytest.approx(e["rs_total_mib"], abs=0.01 * (len(split) + 1))
    one = predict_llamacpp(["-m", QWEN35, "-c", "4096", "-np", "1"], "H200", engine_version="b8100")
    assert e["rs_total_mib"] == pytest.approx(n_seq * one.extra["rs_total_mib"], abs=0.01 * n_seq)
    if no_kv_offload:
        assert sum(devices) == 0


def test_kv_pool_carries_the_per_token_and_per_sequence_bytes() -> None:
    from vramplan.engines.llamacpp import ENGINE_MODEL
    from vramplan.scenario import Scenario

    sc = Scenario.from_values(
        "Qwen3.5-27B", quantization="Q4_K_M", gpu="H200", max_num_seqs=3, max_model_len=8192
    )
    pool = ENGINE_MODEL.kv_pool(sc)
    pred = ENGINE_MODEL.predict(sc)
    assert pool.kv_bytes_per_token == pred.kv_bytes_per_token > 0
    assert pool.state_bytes_per_sequence == pred.state_bytes_per_sequence > 0
    assert pred.extra["rs_cells"] == 3
