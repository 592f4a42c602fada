"""The rendering rules: units, rounding, plurals, fitting or turning vertical."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vramplan import render, units
from vramplan.wording import plural


@pytest.mark.parametrize(
    ("n", "noun", "text"),
    [
        (1, "user", "1 user"),
        (16, "user", "16 users"),
        (0, "token", "0 tokens"),
        (1.0, "byte/element", "1 byte/element"),
        (2.0, "byte/element", "2 bytes/element"),
        (0.5, "byte/element", "0.5 bytes/element"),
        (1234, "sequence", "1,234 sequences"),
        (2, "batch", "2 batches"),
        (3, "entry", "3 entries"),
    ],
)
def test_plural(n: float, noun: str, text: str) -> None:
    assert plural(n, noun) == text


def test_sizes_carry_their_unit_and_two_decimals() -> None:
    assert render.size(15 * 2**30) == "15.00 GiB"
    assert render.size(15 * 10**9, "GB") == "15.00 GB"
    assert render.size(512 * 2**10) == "< 0.01 GiB"
    assert render.size(0) == "0.00 GiB"
    assert render.size(None) == "-"
    assert render.gib(0.8938626454842437) == "0.89 GiB"
    assert render.ratio(0.8938626454842437) == "0.89"
    assert render.ratio(0.9) == "0.9"


def test_display_unit() -> None:
    assert units.display_unit("gib") == "GiB" and units.display_unit("GB") == "GB"
    with pytest.raises(Exception, match="GiB"):
        units.display_unit("MB")


def test_engine_view_has_labels_units_and_no_none() -> None:
    d = {
        "engine": "sglang",
        "engine_version": "0.5.0",
        "weights_gib": 15.3,
        "non_torch_gib": None,
        "kv_cache_tokens": 1,
        "max_concurrency": 1.0,
        "starts": True,
        "settings": {"model_path": "Qwen/Qwen3-8B", "max_total_tokens": None},
        "extra": {"avail_mem_before_load_gb": 78.8, "mla_cache_layout": None, "bs": [1, 2]},
    }
    view = render.engine_view(d)
    cells = [c for row in view.rows for c in row]
    assert ("weights", "15.30 GiB") in view.rows
    assert ("KV cache size", "1 token") in view.rows
    assert ("free memory before loading", "78.80 GiB") in view.rows
    assert not any(c in ("None", "none") for c in cells)
    assert "max-total-tokens" not in " ".join(view.notes)  # unset settings are not shown
    assert view.title.startswith("SGLang 0.5.0 · Qwen/Qwen3-8B")


def test_extra_keys_get_readable_labels_and_units() -> None:
    assert render._extra_kind("compute_buffer_cuda1_mib") == ("compute buffer CUDA1", "mib")
    assert render._extra_kind("kv_size_gb") == ("KV cache", "gib")
    assert render.figure(1024.0, "mib") == "1.00 GiB"


@given(
    st.lists(
        st.tuples(
            st.text(alphabet="abcdefghij-/.", min_size=1, max_size=50),
            st.integers(min_value=0, max_value=10**12),
        ),
        min_size=1,
        max_size=8,
    ),
    st.integers(min_value=30, max_value=160),
)
def test_layout_never_cuts_a_word(rows: list[tuple[str, int]], width: int) -> None:
    """Whatever the width, every cell's words come out whole (table or vertical list)."""
    from rich.console import Console

    view = render.View("title", ["name", "bytes"], [(n, render.size(b)) for n, b in rows])
    out = Console(width=width, record=True, file=__import__("io").StringIO())
    out.print(render.layout(view, width))
    text = out.export_text()
    words = {w for name, _ in rows for w in name.split()}
    for word in words:
        if len(word) <= width - 4:
            assert word in text, (word, text)
    assert "…" not in text
