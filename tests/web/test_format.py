"""The page's formatting rules (static/js/format.js), run in the browser: units on every figure,
thousands separators, singular/plural, no "-0.00", "-" for a missing value, field names as words."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import Server
from tests.web.helpers import goto

CASES: list[tuple[str, list[Any], str]] = [
    ("gib", [16060522496], "14.96 GiB"),
    ("gib", [2**40], "1,024.00 GiB"),
    ("gib", [None], "-"),
    ("gibOf", [54.8223], "54.82 GiB"),
    ("count", [1, "user"], "1 user"),
    ("count", [16, "user"], "16 users"),
    ("count", [0, "request"], "0 requests"),
    ("count", [449104, "token"], "449,104 tokens"),
    ("count", [2.4245, "request"], "2.4 requests"),
    ("ms", [9.6815], "9.68 ms"),
    ("ms", [225.4919], "225.5 ms"),
    ("ms", [1500], "1,500.0 ms"),
    ("perSecond", [1415.7174, "tokens"], "1,416 tokens/s"),
    ("perSecond", [5.5301, "requests"], "5.53 requests/s"),
    ("usd", [2.99, "hour"], "$2.99 per hour"),
    ("pct", [0.9986], "99.9 %"),
    ("pct", [0.0013], "0.13 %"),
    ("pct", [-0.00001], "0.00 %"),
    ("num", [-0.0012, 2], "0.00"),
    ("num", ["not a number"], "-"),
    ("times", [54.8223], "54.82x"),
    ("label", ["available_kv_cache_gib"], "KV cache memory"),
    ("label", ["tensor_parallel_size"], "tensor parallel size"),
    ("label", ["cuda_context"], "CUDA context"),
    ("value", ["weights_gib", 14.9888], "14.99 GiB"),
    ("value", ["kv_cache_tokens", 475968], "475,968 tokens"),
    ("value", ["gpu_blocks", 29748], "29,748 blocks"),
    ("value", ["enforce_eager", False], "no"),
    ("value", ["quantization", None], "-"),
    ("value", ["gpu_memory_utilization", 0.92], "0.92"),
    ("when", ["2026-12-03T08:39:29.123+00:00"], "2026-12-03 08:39 UTC"),
]


def test_format_rules(server: Server, page: Any) -> None:
    goto(page, server.url, "plans")
    calls = [[fn, args] for fn, args, _ in CASES]
    got = page.evaluate(
        """async (calls) => {
          const f = await import('/static/js/format.js');
          return calls.map(([fn, args]) => f[fn](...args));
        }""",
        calls,
    )
    assert [f"{fn}{args} = {g}" for (fn, args, _), g in zip(CASES, got, strict=True)] == [
        f"{fn}{args} = {want}" for fn, args, want in CASES
    ]
