"""llama.cpp: buffers vs the 4.3 anchor and a real log, placement, KV rules, errors, CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vramplan.engines.llamacpp import gpu_slots, kv_cells, predict_llamacpp, split_layers, swa_cells


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
    assert not p.starts and any("-fa" in f for f in p.fixes)


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
    assert not p.starts and any("-ngl" in f for f in p.fixes)


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
