"""Bad input is refused fast: the wall-clock bounds that used to sit inside unit tests.

    python benchmarks/hostile_speed_bench.py

Each case runs once and is compared with its bound (generous, for loaded CI machines: the point is
"bounded, not quadratic"). Exits 1 if any case is over its bound; prints one line per case.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "tests" / "data" / "logs"


def _huge_log() -> None:
    from vramplan.logs import parse_log

    head = (LOGS / "vllm-unresolved-qwen25math15b-a10.log").read_text()
    filler = (
        "INFO 03-01 10:31:18 some_module.py:1] request served, 123 tokens, throughput 45.6 tok/s\n"
    )
    parse_log(head + filler * (50_000_000 // len(filler)))


def _giant_line() -> None:
    from vramplan.logs import parse_log

    parse_log("Model loading took 1.0 GiB " + "x" * 20_000_000)


def _refused(fn: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        from vramplan.errors import VramplanError

        try:
            fn()
        except VramplanError:
            return
        raise AssertionError("not refused")

    return run


def _random_log() -> None:
    from vramplan.logs import parse_log_file

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "random.log"
        path.write_bytes(os.urandom(200_000))
        _refused(lambda: parse_log_file(path))()


def _cut_log() -> None:
    from vramplan.logs import parse_log

    _refused(lambda: parse_log("x" * 50_000_000))()


def _big_vocab_gguf() -> None:
    sys.path.insert(0, str(ROOT / "tests" / "model"))
    from test_files import _write_llama_gguf  # the unit test's writer: a real GGUF file

    from vramplan.model.files import read_gguf

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "v.gguf"
        _write_llama_gguf(path, n_tokens=150_000)
        start = time.perf_counter()
        read_gguf(path)
        CASE_SECONDS["gguf with 150,000 tokens (read only)"] = time.perf_counter() - start


def _resolve_gpu() -> None:
    from vramplan.hardware import resolve_gpu

    resolve_gpu("H100")
    per_call = timeit.timeit(lambda: resolve_gpu("NVIDIA H100 80GB HBM3"), number=2000) / 2000
    CASE_SECONDS["resolve_gpu, per call"] = per_call


CASE_SECONDS: dict[str, float] = {}
CASES: list[tuple[str, Callable[[], None], float]] = [
    ("50 MB log, head parsed", _huge_log, 5.0),
    ("one 20 MB line", _giant_line, 5.0),
    ("200 kB of random bytes as a log", _random_log, 5.0),
    ("50 MB without any marker", _cut_log, 2.0),
    ("gguf with 150,000 tokens (read only)", _big_vocab_gguf, 2.0),
    ("resolve_gpu, per call", _resolve_gpu, 1e-3),
]


def main() -> int:
    sys.path.insert(0, str(ROOT / "src"))
    failed = 0
    for name, fn, bound in CASES:
        start = time.perf_counter()
        fn()
        seconds = CASE_SECONDS.get(name, time.perf_counter() - start)
        ok = seconds < bound
        failed += not ok
        print(f"{'ok  ' if ok else 'SLOW'} {name}: {seconds:.4g} s (bound {bound:g} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
