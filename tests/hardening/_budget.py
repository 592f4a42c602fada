"""Run a call that must fail cleanly, fast and without allocating much."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from vramplan.errors import VramplanError

MAX_SECONDS = 1.0
MAX_PEAK_BYTES = 100 * 1024 * 1024


def refused(
    fn: Callable[[], Any], error: type[BaseException] = VramplanError, match: str | None = None
) -> BaseException:
    """``fn()`` must raise ``error`` (message matching ``match``) in < 1 s with < 100 MB peak Python heap."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(error, match=match) as info:
            fn()
    finally:
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < MAX_SECONDS * 2, f"took {elapsed:.2f}s"  # tracemalloc roughly halves speed
    assert peak < MAX_PEAK_BYTES, f"peak {peak / 2**20:.1f} MiB"
    return info.value
