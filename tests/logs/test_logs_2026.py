"""The 2026 log formats (issue 12, item 5): every recognised line, with the text the engines print.

Truth: the hand-read figures of ``real_logs_2026.json`` for the shared raw logs (copied to
``tests/data/logs_2026``), and, for lines no shared log holds, the engine's own format string
rendered with the case's numbers (file and line named at each test).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vramplan.errors import FileFormatError
from vramplan.explain import explain_log
from vramplan.logs import ParsedLog, parse_log, parse_log_file

DATA = Path(__file__).resolve().parent.parent / "data"
LOGS = DATA / "logs_2026"
REAL = {case["id"]: case for case in json.loads((DATA / "real_logs_2026.json").read_text())}
INDEX = {entry["id"]: entry["log_file"] for entry in json.loads((LOGS / "index.json").read_text())}

#: Figures of real_logs_2026.json a log line carries (the others are read from prose or tables).
FIGURE_FIELDS = {
    "available_kv_cache_gib",
    "kv_cache_tokens",
    "max_concurrency",
    "kv_capacity_tokens_reported",
    "mamba_cache_blocks",
    "rs_buffer_meta_mib",
    "rs_total_mib",
    "rs_r_f32_mib",
    "rs_s_f32_mib",
    "rs_cells",
    "rs_seqs",
}
#: Files that are not logs: an issue table and a PR table transcribing startup values.
NOT_LOGS = {"vllm-54426-qwen38-flashnext-gb10.log", "vllm-recipes810-qwen38-27b-2x5090.log"}
#: (case, field) the JSON records from prose around the quoted line, not from a log line.
FROM_PROSE = {
    (
        "vllm-rwlove13226-qwen36-35b-a3b-mamba-blocks-failed",
        "max_concurrency",
    ),  # "95 blocks / 1.44x"
}
LOGGED_CASES = sorted(c for c, f in INDEX.items() if f not in NOT_LOGS)


def _parse(case_id: str) -> ParsedLog:
    return parse_log_file(LOGS / INDEX[case_id])


def test_every_2026_log_is_indexed() -> None:
    assert set(INDEX) <= set(REAL)
    assert all((LOGS / f).exists() for f in INDEX.values())
    assert len(LOGGED_CASES) == 9


@pytest.mark.parametrize("case_id", LOGGED_CASES)
def test_figures_equal_real_logs_2026(case_id: str) -> None:
    real, parsed = REAL[case_id], _parse(case_id)
    assert parsed.engine == real["engine"]
    checked = 0
    for field in sorted(FIGURE_FIELDS & real.keys()):
        if real[field] is None or (case_id, field) in FROM_PROSE:
            continue
        assert parsed.logged.get(field) == pytest.approx(real[field]), (case_id, field)
        checked += 1
    assert checked >= 1, case_id


@pytest.mark.parametrize("log_file", sorted(NOT_LOGS))
def test_tables_are_not_read_as_logs(log_file: str) -> None:
    """A markdown table of startup values is no log: explain says so instead of guessing."""
    with pytest.raises(FileFormatError):
        explain_log((LOGS / log_file).read_text(), allow_paths=False)


# ------------------------------------------------------------------------------------------ vLLM
def test_vllm_024_two_line_capacity() -> None:
    """vLLM 0.24-0.27 (kv_cache_utils.py:2146-2147 in the club-3090 #594 log): two lines."""
    parsed = _parse("vllm-club3090-594-qwen36-27b-fp8-tp2")
    assert parsed.logged["kv_cache_tokens"] == 300_220
    assert parsed.logged["max_concurrency"] == 1.15
    assert parsed.logged["available_kv_cache_gib"] == 5.33
    assert parsed.settings["max_model_len"] == 262_144
    assert parsed.settings["tensor_parallel_size"] == 2


@pytest.mark.parametrize(
    "device, field",
    [
        ("GPU", "kv_cache_tokens"),
        ("XPU", "kv_cache_tokens"),
        ("GPU + host", "kv_cache_tokens_with_host"),
    ],
)
def test_vllm_028_one_line_capacity(device: str, field: str) -> None:
    """0.28+ prints both on one line; 0.30+ names the device (vllm@0.34.0 kv_cache_utils.py:1168-1175)."""
    line = (
        "(EngineCore pid=80) INFO 11-02 10:54:37 [kv_cache_utils.py:1168] "
        f"{device} KV cache size: 302,921 tokens, Maximum concurrency for 131,072 tokens per request: 2.31x"
    )
    parsed = parse_log(line)
    assert parsed.engine == "vllm"
    assert parsed.logged[field] == 302_921
    assert parsed.logged["max_concurrency"] == 2.31
    assert parsed.settings["max_model_len"] == 131_072
    if field != "kv_cache_tokens":
        assert "kv_cache_tokens" not in parsed.logged  # host tokens are not GPU tokens


def test_vllm_hybrid_block_size_and_padding() -> None:
    """vllm@0.34.0 platforms/interface.py:1121-1124 and :1145-1148, with the sizes of the mitchross
    #1995 run (block 1568) and the 2.64 % padding quoted in design/hybrid-memory.md."""
    text = (
        "(EngineCore pid=80) INFO 08-02 10:54:01 [interface.py:1121] Setting attention block size to "
        "1568 tokens to ensure that attention page size is >= mamba page size.\n"
        "(EngineCore pid=80) INFO 08-02 10:54:01 [interface.py:1145] Padding mamba page size by 2.64% "
        "to ensure that mamba page size and attention page size are exactly equal.\n"
        "(EngineCore pid=80) INFO 08-02 10:54:37 [gpu_worker.py:796] Available KV cache memory: 4.99 GiB\n"
    )
    parsed = parse_log(text)
    assert parsed.engine == "vllm"
    assert parsed.logged["attention_block_size_tokens"] == 1568
    assert parsed.logged["mamba_page_padding_pct"] == 2.64
    assert parsed.logged["available_kv_cache_gib"] == 4.99


def test_vllm_quantized_block_size_raise() -> None:
    """The TurboQuant-style raise (vllm@0.34.0 platforms/interface.py:935) reads as the same figure."""
    parsed = parse_log(
        "INFO 11-02 10:00:00 [interface.py:935] Setting attention block size to 544 tokens so the "
        "quantized primary KV page covers the higher-precision padded-spec page.\n"
        "INFO 11-02 10:00:05 [kv_cache_utils.py:1168] GPU KV cache size: 1,000 tokens, Maximum "
        "concurrency for 1,000 tokens per request: 1.00x\n"
    )
    assert parsed.logged["attention_block_size_tokens"] == 544


def test_vllm_mamba_cache_blocks_error_full_text() -> None:
    """vllm@0.34.0 config/compilation.py:1675-1681, with the rwlove #13226 numbers."""
    text = (
        "(EngineCore pid=12) ERROR 07-14 09:00:00 [core.py:1165] ValueError: max_num_seqs (256) exceeds "
        "available Mamba cache blocks (95). Each decode sequence requires one Mamba cache block, so CUDA "
        "graph capture cannot proceed. Please lower max_num_seqs to at most 95 or increase "
        "gpu_memory_utilization.\n"
    )
    parsed = parse_log(text)
    assert parsed.logged["mamba_cache_blocks"] == 95
    assert parsed.settings["max_num_seqs"] == 256
    assert parsed.errors and "Mamba cache blocks (95)" in parsed.errors[0]
    result = explain_log(text, allow_paths=False)
    assert any("--max-num-seqs 95" in n for n in result["notes"])


def test_vllm_mamba_cache_blocks_quoted_fragment() -> None:
    parsed = _parse("vllm-rwlove13226-qwen36-35b-a3b-mamba-blocks-failed")
    assert parsed.logged["mamba_cache_blocks"] == 95
    assert parsed.errors


def test_vllm_kv_needed_error_gives_available_memory_and_llm_call_settings() -> None:
    """The failing start of #44376: the error's figures and the pasted LLM(...) call's arguments."""
    parsed = _parse("vllm-44376-dsv4-flash-2xgh200-failed")
    assert parsed.logged["available_kv_cache_gib"] == 5.44
    assert parsed.logged["kv_cache_needed_gib"] == 6.66
    assert parsed.logged["kv_capacity_tokens_reported"] == 13_528
    s = parsed.settings
    assert s["model"] == "DeepSeek-V4-Flash"  # typographic quotes read as plain ones
    assert s["max_model_len"] == 30_000
    assert (s["tensor_parallel_size"], s["block_size"], s["kv_cache_dtype"]) == (2, 256, "fp8")
    assert s["gpu_memory_utilization"] == 0.95
    assert s["usage_context"] == "offline"  # the LLM class, not `vllm serve`


def test_explain_predicts_an_llm_call_with_the_offline_defaults() -> None:
    text = (LOGS / INDEX["vllm-44376-dsv4-flash-2xgh200-failed"]).read_text()
    result = explain_log(text, gpu="GH200-96GB", allow_paths=False)
    assert result["predicted"]["settings"]["usage_context"] == "offline"
    assert result["terms"]["available_kv_cache_gib"]["logged"] == 5.44


def test_vllm_cut_config_value_does_not_replace_the_model() -> None:
    """#652's config line is cut inside ``model='~/.cache/huggin``: the non-default args' model stays."""
    parsed = _parse("vllm-club3090-652-qwen36-35b-a3b-nvfp4-5090")
    assert parsed.settings["model"] == "~/.cache/huggingface/qwen3.6-35b-a3b-nvfp4"
    assert parsed.engine_version == "0.24.0"


def test_vllm_rocm_blocks() -> None:
    """ROCm V0 builds name the device 'rocm' (vllm@0.7.3 executor_base.py:111, platforms/rocm.py:101).

    Fixture built from that format with Llama-3.1-8B on a 192 GB MI300X: 155.53 GiB / 2 MiB per
    16-token block = 79,631 blocks, x16 / 4,096 = 311.06x."""
    parsed = parse_log_file(LOGS / "extra-vllm-rocm-v0-blocks.log")
    assert parsed.engine == "vllm"
    assert parsed.vllm_generation == "v0"
    assert parsed.logged["gpu_blocks"] == 79_631
    assert parsed.logged["cpu_blocks"] == 2048
    assert parsed.logged["kv_cache_tokens"] == 79_631 * 16
    assert parsed.logged["max_concurrency"] == 311.06
    assert parsed.logged["available_kv_cache_gib"] == 155.53


def test_vllm_cpu_swap_blocks_are_not_gpu_blocks() -> None:
    parsed = parse_log(
        "INFO 01-01 00:00:00 executor_base.py:111] # CPU blocks: 2048\n# GPU blocks: 10\n"
    )
    assert parsed.logged["gpu_blocks"] == 10


# ---------------------------------------------------------------------------------------- SGLang
SGLANG_0_5_3 = (
    "[2025-10-07 10:00:00 TP0] Load weight end. type=DeepseekV32ForCausalLM, dtype=torch.bfloat16, "
    "avail mem=97.56 GB, mem usage=82.01 GB.\n"
    "[2025-10-07 10:00:05 TP0] KV Cache is allocated. #tokens: 1462784, KV size: 54.52 GB\n"
    "[2025-10-07 10:00:05 TP0] Memory pool end. avail mem=15.38 GB\n"
)


def test_sglang_mla_kv_size_line() -> None:
    """One ``KV size`` for MLA/NSA pools (sglang@0.5.3 srt/mem_cache/memory_pool.py:368), with the
    figures sglang PR #11309 quotes for DeepSeek-V3.2-Exp on 8xB200 (the raw lines are not stored)."""
    parsed = parse_log(SGLANG_0_5_3)
    real = REAL["sglang-pr11309-dsv32exp-8xb200-main"]
    assert parsed.engine == "sglang"
    for field in ("kv_cache_tokens", "kv_size_gb", "avail_mem_after_kv_pool_gb"):
        assert parsed.logged[field] == real[field]
    assert "k_size_gb" not in parsed.logged


def test_sglang_kv_line_with_dtype_and_labelled_pools() -> None:
    """0.5.2x prints the dtype first; a labelled pool (SWA, indexer) is not the main pool
    (sglang@0.5.23 memory_pool.py:2085-2098)."""
    parsed = parse_log(
        "[2026-09-01 10:00:00 TP0] SWA KV Cache is allocated. dtype: torch.bfloat16, #tokens: 99, K size: "
        "0.01 GB, V size: 0.01 GB\n"
        "[2026-09-01 10:00:00 TP0] KV Cache is allocated. dtype: torch.bfloat16, #tokens: 38141, K size: "
        "2.33 GB, V size: 2.33 GB\n"
    )
    assert parsed.logged["kv_cache_tokens"] == 38141
    assert parsed.logged["k_size_gb"] == parsed.logged["v_size_gb"] == 2.33


@pytest.mark.parametrize(
    "line, expected",
    [
        (  # sglang@0.5.3 memory_pool.py:177-180: no slot count, sizes glued to "GB"
            "Mamba Cache is allocated. conv_state size: 0.42GB, ssm_state size: 10.55GB ",
            {"mamba_conv_state_gb": 0.42, "mamba_ssm_state_gb": 10.55},
        ),
        (  # sglang@0.5.23 memory_pool.py:1004-1008
            "Mamba Cache is allocated. max_mamba_cache_size: 301, conv_state size: 0.42GB, "
            "ssm_state size: 10.55GB ",
            {"max_mamba_cache_size": 301, "mamba_conv_state_gb": 0.42, "mamba_ssm_state_gb": 10.55},
        ),
        (  # sglang@0.5.23 memory_pool.py:983-991 (speculative decoding: intermediate states)
            "Mamba Cache is allocated. max_mamba_cache_size: 48, conv_state size: 0.07GB, ssm_state size: "
            "1.69GB intermediate_ssm_state_cache size: 6.75GB intermediate_conv_window_cache size: 0.20GB ",
            {
                "max_mamba_cache_size": 48,
                "mamba_conv_state_gb": 0.07,
                "mamba_ssm_state_gb": 1.69,
                "mamba_intermediate_ssm_state_gb": 6.75,
            },
        ),
    ],
)
def test_sglang_mamba_pool_lines(line: str, expected: dict[str, Any]) -> None:
    parsed = parse_log(f"[2026-09-01 10:00:00 TP0] {line}\n")
    assert parsed.engine == "sglang"
    for field, value in expected.items():
        assert parsed.logged[field] == value


# ------------------------------------------------------------------------------------- llama.cpp
def test_llamacpp_recurrent_with_rs_seq() -> None:
    """PR #23792's debug log: RS buffer per device (Meta() tensor split) and the summary with rs_seq."""
    parsed = _parse("llamacpp-pr23792-qwen35-27b-class-tensorsplit")
    assert parsed.engine == "llama.cpp"
    assert parsed.logged["rs_buffer_meta_mib"] == 149.62
    assert parsed.logged["rs_layers"] == 65
    assert parsed.settings["n_seq_max"] == 3
    assert parsed.settings["n_rs_seq"] == 0


@pytest.mark.parametrize(
    "line, expected",
    [
        (  # before rs_seq: (N cells, L layers, S seqs)
            "llama_memory_recurrent: size =   49.50 MiB (     1 cells,  32 layers,  1 seqs), R (f32):    1.50 "
            "MiB, S (f32):   48.00 MiB",
            {
                "rs_total_mib": 49.5,
                "rs_cells": 1,
                "rs_seqs": 1,
                "rs_r_f32_mib": 1.5,
                "rs_s_f32_mib": 48.0,
            },
        ),
        (  # llama.cpp as vendored by llama-cpp-python 0.3.36 (llama-memory-recurrent.cpp:133): P buffer
            "llama_memory_recurrent: size =  150.02 MiB (     1 cells,  65 layers,  1 seqs  1 rs_seq), R (f32):"
            "    5.62 MiB, S (f32):  144.00 MiB, P (f32):    0.40 MiB",
            {
                "rs_total_mib": 150.02,
                "rs_r_f32_mib": 5.62,
                "rs_s_f32_mib": 144.0,
                "rs_p_f32_mib": 0.4,
            },
        ),
        (
            "llama_memory_recurrent:      CUDA0 RS buffer size =   149.62 MiB",
            {"rs_buffer_cuda0_mib": 149.62},
        ),
    ],
)
def test_llamacpp_recurrent_formats(line: str, expected: dict[str, Any]) -> None:
    parsed = parse_log(line + "\n")
    assert parsed.engine == "llama.cpp"
    for field, value in expected.items():
        assert parsed.logged[field] == value


# ------------------------------------------------------------------------------ reconciliation
def test_explain_reconciles_rocm_blocks() -> None:
    """The ROCm block count is compared with the prediction like a CUDA one."""
    result = explain_log((LOGS / "extra-vllm-rocm-v0-blocks.log").read_text(), gpu="MI300X")
    term = result["terms"]["gpu_blocks"]
    assert term["logged"] == 79_631
    assert abs(term["relative_difference"]) < 0.02


def test_explain_reconciles_a_hybrid_log() -> None:
    """#594 (Qwen3.6-27B class, TP2 fp8 KV): the logged pool, tokens and concurrency meet a prediction
    of the stand-in config; the model is given because the log names a local folder."""
    text = (LOGS / INDEX["vllm-club3090-594-qwen36-27b-fp8-tp2"]).read_text()
    result = explain_log(text, model="Qwen/Qwen3.5-27B", gpu="RTX-3090", allow_paths=False)
    for term, logged in (
        ("available_kv_cache_gib", 5.33),
        ("kv_cache_tokens", 300_220),
        ("max_concurrency", 1.15),
    ):
        assert result["terms"][term]["logged"] == logged
        assert isinstance(result["terms"][term]["predicted"], int | float)


def test_explain_compares_mamba_blocks_with_the_pool() -> None:
    text = (
        "(APIServer pid=1) INFO 07-14 08:58:00 [utils.py:278] non-default args: {'model': "
        "'Qwen/Qwen3.5-35B-A3B', 'max_model_len': 131072}\n"
        "(EngineCore pid=12) ERROR 07-14 09:00:00 [core.py:1165] ValueError: max_num_seqs (256) exceeds "
        "available Mamba cache blocks (95). Each decode sequence requires one Mamba cache block, so CUDA "
        "graph capture cannot proceed. Please lower max_num_seqs to at most 95 or increase "
        "gpu_memory_utilization.\n"
    )
    result = explain_log(text, gpu="H100-80GB-SXM", allow_paths=False)
    term = result["terms"]["mamba_cache_blocks"]
    assert term["logged"] == 95
    assert term["predicted"] == result["predicted"]["gpu_blocks"]
    assert "state" in term["likely_cause"]


def test_sglang_post_capture_pool_wins() -> None:
    """sglang@0.5.23 kv_pool_runtime.py:194-199: with post-capture sizing the first line is an upper
    bound and the pool is logged again after capture; the draft pool's line is not the main one."""
    parsed = parse_log(
        "[2026-09-01 10:00:00 TP0] KV Cache VA upper bound. dtype: torch.bfloat16, #tokens: 500000, K size: "
        "30.00 GB, V size: 30.00 GB\n"
        "[2026-09-01 10:00:40 TP0] Post-capture KV sizing: KV cache allocated. dtype: torch.bfloat16, "
        "#tokens: 412345, KV size: 49.12 GB, avail mem=3.21 GB\n"
        "[2026-09-01 10:00:40 TP0] Post-capture KV sizing: draft KV cache allocated. dtype: torch.bfloat16, "
        "#tokens: 412345, KV size: 0.77 GB\n"
    )
    assert parsed.engine == "sglang"
    assert parsed.logged["kv_cache_tokens"] == 412_345
    assert parsed.logged["kv_size_gb"] == 49.12
    assert parsed.logged["avail_mem_after_post_capture_kv_gb"] == 3.21
    assert "k_size_gb" not in parsed.logged


def test_vllm_xpu_capacity_line_is_v1() -> None:
    parsed = parse_log(
        "INFO 11-02 10:00:05 [kv_cache_utils.py:1168] XPU KV cache size: 1,000 tokens, Maximum "
        "concurrency for 1,000 tokens per request: 1.00x\n"
    )
    assert parsed.vllm_generation == "v1"


def test_sglang_mamba_pool_cause_names_its_flags() -> None:
    from vramplan.explain import _cause_sglang

    text = _cause_sglang("max_mamba_cache_size", 301, 300, {"settings": {}})
    assert "--max-mamba-cache-size" in text and "--mamba-full-memory-ratio (0.9" in text
    text = _cause_sglang(
        "mamba_ssm_state_gb", 10.55, 10.0, {"settings": {"mamba_full_memory_ratio": 0.5}}
    )
    assert "--mamba-full-memory-ratio 0.5" in text
