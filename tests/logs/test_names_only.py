"""``explain_log(text, allow_paths=False)``: a pasted log never reaches the filesystem.

Every filesystem entry point Python code goes through (``os.stat``/``lstat``/``open``/``listdir``/
``scandir``, ``builtins.open``, ``io.open``; ``pathlib`` and ``os.path`` call these) is replaced by a
recorder while the explain runs; the test fails on any recorded call, even one the code under test
caught and swallowed.
"""

from __future__ import annotations

import builtins
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from vramplan.explain import explain_log
from vramplan.model import catalog

LOGS = Path(__file__).resolve().parents[1] / "data" / "logs"
REAL_LOGS = sorted(LOGS.glob("*.log"))


class FilesystemTouched(AssertionError):
    """Raised (and recorded) by every patched filesystem call."""


@contextmanager
def no_filesystem() -> Iterator[list[str]]:
    """Record and refuse every filesystem call made inside the block."""
    calls: list[str] = []
    saved: list[tuple[Any, str, Any]] = []

    def guard(owner: Any, name: str) -> None:
        original = getattr(owner, name)

        def refuse(*args: Any, **kwargs: Any) -> Any:
            calls.append(f"{name}{args[:1]!r}")
            raise FilesystemTouched(f"{name} called with {args[:1]!r}")

        saved.append((owner, name, original))
        setattr(owner, name, refuse)

    for name in ("stat", "lstat", "open", "listdir", "scandir", "access"):
        guard(os, name)
    guard(builtins, "open")
    guard(io, "open")
    try:
        yield calls
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


def _warm(text: str, **kw: Any) -> dict[str, Any]:
    """One run outside the guard: imports and the bundled catalogue/GPU tables load from disk once."""
    catalog.catalogue()
    return explain_log(text, allow_paths=False, **kw)


@pytest.mark.parametrize("path", REAL_LOGS, ids=[p.name[:60] for p in REAL_LOGS])
def test_real_logs_touch_no_file(path: Path) -> None:
    text = path.read_text(errors="replace")
    try:
        expected = _warm(text)
    except Exception as exc:  # a log the explain refuses must refuse without files too
        with no_filesystem() as calls, pytest.raises(type(exc)):
            explain_log(text, allow_paths=False)
        assert calls == []
        return
    with no_filesystem() as calls:
        got = explain_log(text, allow_paths=False)
    assert calls == []
    assert json.dumps(got, sort_keys=True, default=repr) == json.dumps(
        expected, sort_keys=True, default=repr
    )


def _local_model(tmp_path: Path) -> Path:
    """A real model folder on this machine (config.json of a catalogue model) under a private name."""
    folder = tmp_path / "private-finetune"
    folder.mkdir()
    cfg = catalog.catalogue()[catalog.find("Qwen3-8B") or ""]
    (folder / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "weights.gguf").write_bytes(b"GGUF" + b"\0" * 60)
    return folder


def _hostile_logs(folder: Path) -> dict[str, str]:
    gguf = folder.parent / "weights.gguf"
    return {
        "vllm model": (
            f"INFO 01-01 00:00:00 [core.py:1] Initializing a V1 LLM engine (v0.10.0) with config: "
            f"model='{folder}', tokenizer='{folder}', served_model_name={folder}\n"
            "INFO 01-01 00:00:01 [gpu_worker.py:1] Available KV cache memory: 60.00 GiB\n"
        ),
        "vllm serve": f"$ vllm serve {folder} --tokenizer {folder}/tok\nINFO Available KV cache memory: 60.00 GiB\n",
        "sglang model_path": (
            f"[2025-01-01 00:00:00] server_args=ServerArgs(model_path='{folder}', tokenizer_path='{folder}', "
            "tp_size=1)\n[2025-01-01 00:00:01] KV Cache is allocated. #tokens: 1000, K size: 1.00 GB, V size: 1.00 GB\n"
        ),
        "tgi model_id": (
            f'2025-01-01T00:00:00Z INFO text_generation_launcher: Args {{ model_id: "{folder}", '
            f'tokenizer_name: Some("{folder}"), num_shard: Some(1) }}\n'
            "2025-01-01T00:00:01Z INFO text_generation_launcher: Setting max batch total tokens to 1000\n"
        ),
        "llama.cpp gguf": (
            f"llama_model_loader: loaded meta data from {gguf}\n"
            "llama_kv_cache: CUDA0 KV buffer size = 1024.00 MiB\n"
        ),
    }


@pytest.mark.parametrize("case", ["vllm model", "vllm serve", "sglang model_path", "tgi model_id"])
def test_local_paths_in_a_log_are_names_only(tmp_path: Path, case: str) -> None:
    folder = _local_model(tmp_path)
    text = _hostile_logs(folder)[case]
    _warm(text, gpu="H100-80GB")
    with no_filesystem() as calls:
        r = explain_log(text, gpu="H100-80GB", allow_paths=False)
    assert calls == []
    assert r["predicted"] is None
    assert any("could not be identified" in n and "model=NAME" in n for n in r["notes"]), r["notes"]
    assert str(tmp_path) not in json.dumps(r["settings"], default=repr)


def test_the_cli_mode_still_reads_local_paths(tmp_path: Path) -> None:
    folder = _local_model(tmp_path)
    r = explain_log(_hostile_logs(folder)["vllm model"], gpu="H100-80GB")
    assert r["predicted"] is not None  # the folder's config.json was read


def test_llamacpp_gguf_path_is_not_read(tmp_path: Path) -> None:
    text = _hostile_logs(_local_model(tmp_path))["llama.cpp gguf"]
    _warm(text)
    with no_filesystem() as calls:
        explain_log(text, allow_paths=False)
    assert calls == []


def test_path_whose_last_part_is_a_catalogue_name_is_predicted() -> None:
    # issue 13 item 11: a real vLLM log whose model is a local path
    text = (LOGS / "llmdplanner-qwen-qwen3-8b-tp1pp1dp1--8192.log").read_text()
    cli = explain_log(text)
    text = text.replace("Qwen/Qwen3-8B", "/models/Qwen3-8B")
    _warm(text)
    with no_filesystem() as calls:
        r = explain_log(text, allow_paths=False)
    assert calls == []
    assert r["settings"]["model"] == "Qwen3-8B"
    assert r["predicted"]["kv_cache_tokens"] == cli["predicted"]["kv_cache_tokens"]


def test_relative_path_log_is_explained() -> None:
    r = explain_log((LOGS / "vllm-unresolved-qwen25math15b-a10.log").read_text(), allow_paths=False)
    assert r["predicted"] is not None and r["settings"]["model"] == "Qwen2.5-Math-1.5B"


def test_served_model_name_list_is_not_refused() -> None:
    text = (LOGS / "llmdplanner-qwen-qwen3-8b-tp1pp1dp1--8192.log").read_text()
    text = text.replace("served_model_name=Qwen/Qwen3-8B", "served_model_name=['qwen', 'Qwen3-8B']")
    text = text.replace("Qwen/Qwen3-8B", "/srv/ckpt/step-9000")
    assert "['qwen', 'Qwen3-8B']" in text
    r = explain_log(text, allow_paths=False)
    assert r["settings"]["model"] == "Qwen3-8B" and r["predicted"] is not None


def test_unknown_model_reports_logged_figures_and_the_flag() -> None:
    text = (LOGS / "llmdplanner-qwen-qwen3-8b-tp1pp1dp1--8192.log").read_text()
    text = text.replace("Qwen/Qwen3-8B", "/models/acme-secret-7b")
    r = explain_log(text, allow_paths=False)
    assert r["predicted"] is None and r["terms"]["kv_cache_tokens"]["logged"]
    assert any("model=NAME" in n for n in r["notes"])
    r = explain_log(text, allow_paths=False, model="Qwen/Qwen3-8B")
    assert r["predicted"] is not None
