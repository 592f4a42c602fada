"""The extra-* logs (failures, early V1, llama.cpp buffers) and hostile input.

Expected values are read by hand from the logs (index.json describes each), not from parser output.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from vramplan.errors import FileFormatError
from vramplan.logs import parse_log, parse_log_file

LOGS = Path(__file__).resolve().parent.parent / "data" / "logs"


def test_llamacpp_buffers() -> None:
    r = parse_log_file(LOGS / "extra-llamacpp-llamafile552-trilm-rtx4080.log")
    assert r.engine == "llama.cpp"
    assert (
        r.settings["n_ctx"] == 512
        and r.settings["n_batch"] == 512
        and r.settings["n_ubatch"] == 512
    )
    assert r.settings["flash_attn"] == 0
    assert r.settings["n_gpu_layers"] == 31
    assert r.settings["type_k"] == "f16" and r.settings["type_v"] == "f16"
    assert r.settings["gpu_name"] == "NVIDIA GeForce RTX 4080"
    assert r.logged["model_buffer_cuda0_mib"] == 7317.71
    assert r.logged["model_buffer_cpu_mib"] == 297.00
    assert r.logged["kv_buffer_cuda0_mib"] == 180.00
    assert r.logged["k_mib"] == 90.00 and r.logged["v_mib"] == 90.00
    assert r.logged["output_buffer_host_mib"] == 0.19
    assert r.logged["compute_buffer_cuda0_mib"] == 105.00


def test_sglang_negative_profiled_tokens() -> None:
    r = parse_log_file(LOGS / "extra-sglang-7691-dsr1-rocm-negative-kv.log")
    assert r.engine == "sglang"
    assert r.logged["weights_gb"] == 166.59
    assert r.logged["avail_mem_after_load_gb"] == 21.73
    assert r.logged["profiled_max_total_tokens"] == -561981
    assert r.settings["max_total_tokens"] == 131072
    assert any("-561981" in e for e in r.errors)


def test_vllm_v0_no_kv_memory() -> None:
    r = parse_log_file(LOGS / "extra-vllm-13882-qwen25-7b-rtx4060-no-kv.log")
    assert (r.engine, r.vllm_generation) == ("vllm", "v0")
    assert r.logged["weights_gb"] == 5.2032
    assert r.logged["weights_gib"] == pytest.approx(5.20, abs=0.005)
    assert r.logged["total_gpu_memory_gib"] == 8.00 and r.logged["usable_gib"] == 5.60
    assert r.settings["gpu_memory_utilization"] == 0.70
    assert r.logged["non_torch_gib"] == 0.03 and r.logged["activation_peak_gib"] == 1.42
    assert r.logged["available_kv_cache_gib"] == -1.05
    assert r.logged["gpu_blocks"] == 0 and r.logged["cpu_blocks"] == 4681
    assert r.logged["max_concurrency"] == 0.0
    assert r.errors, "zero cache blocks must be reported as a startup error"


def test_vllm_v1_max_len_error() -> None:
    r = parse_log_file(LOGS / "extra-vllm-25350-v1-maxlen-kv-error.log")
    assert (r.engine, r.vllm_generation) == ("vllm", "v1")
    assert r.logged["available_kv_cache_gib"] == 10.55  # the first (working) run of the paste
    assert r.logged["kv_cache_tokens"] == 230528
    assert r.logged["max_concurrency"] == 2.31
    assert r.logged["kv_cache_needed_gib"] == 10.12
    assert r.logged["kv_cache_available_at_error_gib"] == 5.59
    assert r.logged["estimated_max_model_len"] == 122080
    assert any("221000" in e and "KV cache is needed" in e for e in r.errors)


def test_vllm_early_v1_gpu_blocks() -> None:
    r = parse_log_file(LOGS / "extra-vllm-pr12569-v1-early-llama31-70b-w8a8.log")
    assert (r.engine, r.vllm_generation) == ("vllm", "v1")
    assert r.logged["weights_gib"] == 67.7229  # "GB" label, GiB value
    assert r.logged["gpu_blocks"] == 1381
    assert r.logged["kv_cache_tokens"] == 1381 * 16
    assert r.logged["max_concurrency"] == 10.79
    assert r.settings["model"] == "neuralmagic/Meta-Llama-3.1-70B-Instruct-quantized.w8a8"
    assert r.settings["max_model_len"] == 2048
    assert r.settings["gpu_memory_utilization"] == 0.98


def test_v0_failure_max_seq_len() -> None:
    r = parse_log_file(LOGS / "vllm-10517-b.log")
    assert r.logged["kv_capacity_tokens_reported"] == 23648
    assert any("larger than the maximum number of tokens" in e for e in r.errors)


def test_v1_cuda_oom_failure() -> None:
    r = parse_log_file(LOGS / "llmdplanner-openai-gpt-oss-20b-tp1pp1dp1--8192.FAILED.log")
    assert any("CUDA out of memory" in e for e in r.errors)


def test_ray_ansi_and_hard_wraps() -> None:
    ray = parse_log_file(LOGS / "vllm-dennislee-gptoss120b-4xa100-80-u08.log")
    assert ray.logged["weights_gib"] == 17.2217 and ray.logged["cuda_graph_gib"] == 1.88
    wrapped = parse_log_file(LOGS / "vllm-dennislee-qwen2-7b-2xa100-40-u05.log")
    assert (
        wrapped.settings["model"] == "Qwen2-7B-Instruct"
    )  # split mid-word across two physical lines
    assert wrapped.logged["available_kv_cache_gib"] == 11.03


def test_inline_ray_prefix_and_colours() -> None:
    text = (
        "\x1b[1;36m(EngineCore_0 pid=1)\x1b[0;0m \x1b[36m(RayWorkerWrapper pid=7, ip=10.0.0.2)\x1b[0m "
        "INFO 01-01 00:00:00 [gpu_worker.py:276] Available KV cache memory: 3.50 GiB\x1b[32m [repeated 3x across cluster]\x1b[0m\n"
        "(EngineCore_0 pid=1) INFO 01-01 00:00:00 [kv_cache_utils.py:1] GPU KV cache size: 1,234 tokens\n"
    )
    r = parse_log(text)
    assert r.logged["available_kv_cache_gib"] == 3.5 and r.logged["kv_cache_tokens"] == 1234


def test_frozen() -> None:
    r = parse_log("Available KV cache memory: 1.00 GiB\n")
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.engine = "sglang"  # type: ignore[misc]


@pytest.mark.parametrize(
    "text", ["", "   \n\n", "hello world\nnothing to see\n", "\x00\xff" * 1000]
)
def test_not_a_log(text: str) -> None:
    with pytest.raises(
        FileFormatError, match="no vLLM, SGLang, TGI or llama.cpp startup lines found"
    ):
        parse_log(text)


def test_error_names_what_was_looked_for() -> None:
    with pytest.raises(FileFormatError) as info:
        parse_log("just a README\n")
    for marker in ("Model loading took", "# GPU blocks", "max_total_num_tokens", "llama_kv_cache"):
        assert marker in str(info.value)


def test_random_bytes_file(tmp_path: Path) -> None:
    path = tmp_path / "random.log"
    path.write_bytes(os.urandom(200_000))
    with pytest.raises(FileFormatError):
        parse_log_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match="cannot read log file"):
        parse_log_file(tmp_path / "absent.log")


def test_non_text_input() -> None:
    with pytest.raises(FileFormatError):
        parse_log(b"Model loading took 1 GiB")  # type: ignore[arg-type]


def test_huge_log_is_cut_to_its_head() -> None:
    head = (LOGS / "vllm-unresolved-qwen25math15b-a10.log").read_text()
    filler = (
        "INFO 03-01 10:31:18 some_module.py:1] request served, 123 tokens, throughput 45.6 tok/s\n"
    )
    text = head + filler * (50_000_000 // len(filler))
    r = parse_log(text)  # its speed: benchmarks/hostile_speed_bench.py
    assert r.logged["gpu_blocks"] == 36332
    assert any("only the first" in w for w in r.warnings)


def test_one_giant_line_is_parsed() -> None:
    text = "Model loading took 1.0 GiB " + "x" * 20_000_000
    parse_log(text)
