"""Parse cost grows linearly with the log on adversarial inputs (issue 13, item 2).

No absolute time limit: each input is parsed at size n and 4n and the ratio of the CPU times must
stay under ``MAX_GROWTH`` (linear gives ~4, quadratic 16, cubic 64). CPU time of this process, the
best of a few runs, so a loaded machine slows both sizes alike. ``test_the_measure_catches_*`` runs
the old backtracking number pattern through the same measure, so a measure that cannot fail would
show.

Single-line attacks grow the line up to ``MAX_LINE_CHARS`` (beyond it lines are cut, which would
hide a cost that is quadratic in the line); whole-log attacks grow the number of lines.
"""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Callable

import pytest

from vramplan.errors import VramplanError
from vramplan.explain import explain_log
from vramplan.logs.limits import MAX_LINE_CHARS

MAX_GROWTH = 8.0
RUNS = 2
VLLM = "INFO 01-01 00:00:00 [api_server.py:1] vLLM API server version 0.10.0\n"
SGLANG = "[2025-01-01 00:00:00] server_args=ServerArgs(tp_size=1)\n"
TGI = "2025-01-01T00:00:00Z INFO text_generation_launcher: Args { num_shard: Some(1) }\n"
LLAMA = "llama_kv_cache: CUDA0 KV buffer size = 1024.00 MiB\n"


def _explain(text: str) -> None:
    try:
        explain_log(text, allow_paths=False)
    except VramplanError:
        pass


def _cpu_seconds(fn: Callable[[], object], repeat: int) -> float:
    """Best of RUNS: CPU seconds for ``repeat`` calls of ``fn``."""
    best = float("inf")
    for _ in range(RUNS):
        gc.collect()
        start = time.process_time()
        for _ in range(repeat):
            fn()
        best = min(best, time.process_time() - start)
    return best


def growth(make: Callable[[int], str], n: int, repeat: int = 1, run=_explain) -> float:
    """cost(4n) / cost(n) for the text ``make`` builds at each size."""
    small, large = make(n), make(4 * n)
    run(small)  # warm imports and caches
    return _cpu_seconds(lambda: run(large), repeat) / max(
        _cpu_seconds(lambda: run(small), repeat), 1e-6
    )


LINE_N = MAX_LINE_CHARS // 4 - 200  # 4n still fits in one line
#: One adversarial line of about ``n`` characters after an engine marker.
LINE_ATTACKS: dict[str, Callable[[int], str]] = {
    "digits then figure phrase": lambda n: VLLM + "7" * n + " GiB for CUDAGraph memory\n",
    "digits after figure literal": lambda n: VLLM + "Model loading took " + "7" * n + "\n",
    "comma digits": lambda n: VLLM + "GPU KV cache size: " + "1," * (n // 2) + "\n",
    "digits in parentheses": lambda n: VLLM + "Free memory on device (" + "7" * n + "/\n",
    "tgi Some( nesting": lambda n: (
        TGI + "text_generation_launcher: Args { a: " + "Some(" * (n // 5)
    ),
    "tgi open quotes": lambda n: TGI + 'text_generation_launcher: Args { a: "' + 'a: "' * (n // 4),
    "namespace brackets": lambda n: VLLM + "Namespace(" + "(" * n + "\n",
    "non-default dict": lambda n: VLLM + "non-default args: {" + "{'a': [" * (n // 7) + "\n",
    "quotes": lambda n: VLLM + "Namespace(a='" + "'\"\\" * (n // 3) + "\n",
    "ERROR run": lambda n: VLLM + "ERROR " * (n // 6) + "\n",
    "blanks": lambda n: VLLM + "non_torch_memory" + " " * n + "x\n",
    "blank run before ray tag": lambda n: VLLM + "x" + " " * n + "[repeated 2\n",
    "repeated word": lambda n: LLAMA + "llama_kv_cache" * (n // 14) + "\n",
    "sglang gap": lambda n: SGLANG + "Load weight end. " * (n // 17) + "\n",
    "llama.cpp device": lambda n: LLAMA + "Device 0: " * (n // 10) + "\n",
    "nvidia-smi row": lambda n: VLLM + "|   0  NVIDIA" + " " * n + "x\n",
    "ansi": lambda n: VLLM + "\x1b[" + "1;" * (n // 2) + "\n",
    "worker prefix": lambda n: VLLM + "(" * n + "\n",
    "message prefix": lambda n: VLLM + "ERROR [2024-01-01 " + "A1 " * (n // 3) + "\n",
    "version": lambda n: VLLM + "version 1." + "1" * n + "x\n",
    "LLM( call": lambda n: VLLM + "LLM(" + "model=(" * (n // 7) + "\n",
    "KV size device words": lambda n: VLLM + "GPU " * (n // 4) + "KV cache size: 1\n",
    "block-size digits": lambda n: VLLM + "Setting attention block size to " + "7" * n + "\n",
    "sglang mamba sizes": lambda n: (
        SGLANG + "Mamba Cache is allocated. conv_state size: " + "7" * n + "\n"
    ),
    "sglang labelled KV": lambda n: SGLANG + "a KV Cache is allocated. " * (n // 25) + "\n",
    "llama.cpp recurrent size": lambda n: (
        LLAMA + "llama_memory_recurrent: size = " + "7" * n + "\n"
    ),
    "llama.cpp recurrent buffer": lambda n: LLAMA + "llama_memory_recurrent: " * (n // 24) + "\n",
}

LOG_N = 40_000
#: Logs of about ``n`` characters made of many lines.
LOG_ATTACKS: dict[str, Callable[[int], str]] = {
    "continuation lines": lambda n: "vllm serve m \\\n" + "--max-num-seqs 2 \\\n" * (n // 19),
    "launch command lines": lambda n: "vllm serve m --tp 2\n" * (n // 20),
    "ERROR lines": lambda n: VLLM + "ERROR x\n" * (n // 8),
    "wrapped lines": lambda n: VLLM + ("a" * 120 + "\n") * (n // 121),
    "figure lines": lambda n: "Model loading took 1.5 GiB\n" * (n // 27),
    "short lines": lambda n: VLLM + "x\n" * (n // 2),
    "max length lines": lambda n: (
        VLLM + ("7" * (MAX_LINE_CHARS - 1) + "\n") * (n // MAX_LINE_CHARS)
    ),
    "sglang lines": lambda n: SGLANG + "Load weight end. avail mem=1 GB\n" * (n // 32),
    "LLM( calls": lambda n: VLLM + "llm = LLM(\n    model='m',\n" * (n // 24),
    "recurrent lines": lambda n: "llama_memory_recurrent: layer  1: skipped\n" * (n // 42),
}


@pytest.mark.parametrize("name", sorted(LINE_ATTACKS))
def test_one_adversarial_line_is_linear(name: str) -> None:
    ratio = growth(LINE_ATTACKS[name], LINE_N, repeat=3)
    assert ratio < MAX_GROWTH, f"{name}: cost x{ratio:.1f} for 4x the line"


@pytest.mark.parametrize("name", sorted(LOG_ATTACKS))
def test_adversarial_log_is_linear(name: str) -> None:
    ratio = growth(LOG_ATTACKS[name], LOG_N)
    assert ratio < MAX_GROWTH, f"{name}: cost x{ratio:.1f} for 4x the log"


def test_the_measure_catches_the_old_number_pattern() -> None:
    """The pattern the parsers used before issue 13, through the same measure, must fail it."""
    old = re.compile(r"(-?[\d,]*\.?\d+)\s*GiB for CUDAGraph memory")
    ratio = growth(lambda n: "7" * n + " for CUDAGraph memory", 40, repeat=10, run=old.search)
    assert ratio > MAX_GROWTH, f"x{ratio:.1f}"


def test_the_line_cut_is_where_the_attacks_assume() -> None:
    assert 4 * LINE_N + 200 < MAX_LINE_CHARS
