"""Issue 13, item 10: hostile files for the CLI are refused in one line, before anything big is built.

FIFOs and devices named like model files, folders named like files, GGUF headers claiming 2**20
tensors or metadata entries, indexes naming tens of thousands of shards, integers of thousands of
digits in configs, headers and on the command line.
"""

from __future__ import annotations

import json
import os
import signal
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gguf.constants  # noqa: F401 - imported once here: under tracemalloc the first import takes seconds
import pytest

from vramplan.cli import main
from vramplan.errors import ConfigError, FileFormatError, VramplanError
from vramplan.logs.parse import parse_log_file
from vramplan.model.files import (
    MAX_GGUF_KV,
    MAX_GGUF_TENSORS,
    MAX_INDEX_SHARDS,
    read_gguf,
    read_safetensors,
)
from vramplan.model.hf_config import load_config_file
from vramplan.model.load import load_model
from vramplan.units import MAX_INT_DIGITS, parse_count, parse_int, parse_size

from ._budget import refused

HUGE_INT = "7" * 5000
PYTHON_TEXT = ("Exceeds the limit", "set_int_max_str_digits")


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging the run) when a call blocks, e.g. on opening a FIFO."""

    def expired(*_: Any) -> None:
        raise TimeoutError(f"blocked for {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


READERS: dict[str, Callable[[Path], Any]] = {
    "x.gguf": read_gguf,
    "x.safetensors": read_safetensors,
    "config.json": load_config_file,
    "x.log": parse_log_file,
}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
@pytest.mark.parametrize("name", sorted(READERS))
def test_fifo_named_like_a_file_is_refused(tmp_path: Path, name: str) -> None:
    fifo = tmp_path / name
    os.mkfifo(fifo)
    with deadline(10):
        exc = refused(lambda: READERS[name](fifo), VramplanError, "named pipe")
        refused(lambda: load_model(str(fifo)), VramplanError)
    assert "\n" not in str(exc)


def test_device_is_refused() -> None:
    with deadline(10):
        refused(lambda: read_gguf("/dev/zero"), FileFormatError, "character device")


@pytest.mark.parametrize("name", ["x.gguf", "x.safetensors", "config.json"])
def test_folder_named_like_a_file_is_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / name).mkdir()
    exc = refused(lambda: load_model(str(tmp_path / name)), VramplanError)
    assert "folder" in str(exc)


def _sparse_gguf(path: Path, n_tensors: int, n_kv: int, size: int) -> Path:
    """A GGUF header claiming the counts, then zeros (each zero record is a valid, empty entry)."""
    with open(path, "wb") as fh:
        fh.write(b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv))
        fh.truncate(size)
    return path


def test_gguf_with_2p20_tensors_in_40_mb(tmp_path: Path) -> None:
    # 40 MB of zeros holds 2**20 24-byte empty tensor records: the walk used to build them all
    path = _sparse_gguf(tmp_path / "t.gguf", 1 << 20, 0, 40 << 20)
    exc = refused(lambda: read_gguf(path), FileFormatError, "tensors")
    assert f"limit {MAX_GGUF_TENSORS:,}" in str(exc)


def test_gguf_with_2p20_metadata_entries(tmp_path: Path) -> None:
    path = _sparse_gguf(tmp_path / "kv.gguf", 0, 1 << 20, 24 << 20)
    exc = refused(lambda: read_gguf(path), FileFormatError, "metadata entries")
    assert f"limit {MAX_GGUF_KV:,}" in str(exc)


def test_index_naming_too_many_shards(tmp_path: Path) -> None:
    # 50,000 distinct shard names: deduplicating them in a list was quadratic
    weight_map = {f"t{i}": f"s{i}.safetensors" for i in range(50_000)}
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    exc = refused(lambda: read_safetensors(index), FileFormatError, "shard files")
    assert f"limit {MAX_INDEX_SHARDS:,}" in str(exc)


def test_index_with_huge_integer(tmp_path: Path) -> None:
    index = tmp_path / "model.safetensors.index.json"
    index.write_text('{"metadata": {"total_size": ' + HUGE_INT + '}, "weight_map": {}}')
    exc = refused(lambda: read_safetensors(index), FileFormatError, "5,000 digits")
    assert not any(t in str(exc) for t in PYTHON_TEXT)


def test_config_with_5000_digit_integer(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text('{"model_type": "llama", "hidden_size": ' + HUGE_INT + "}")
    for call in (lambda: load_config_file(cfg), lambda: load_model(str(tmp_path))):
        exc = refused(call, ConfigError, "5,000 digits")
        assert not any(t in str(exc) for t in PYTHON_TEXT) and "\n" not in str(exc)


def test_safetensors_header_with_5000_digit_integer(tmp_path: Path) -> None:
    header = (
        b'{"w": {"dtype": "F32", "shape": [' + HUGE_INT.encode() + b'], "data_offsets": [0, 4]}}'
    )
    path = tmp_path / "x.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(4))
    exc = refused(lambda: read_safetensors(path), FileFormatError, "5,000 digits")
    assert not any(t in str(exc) for t in PYTHON_TEXT)


@pytest.mark.parametrize("parse", [parse_size, parse_count, parse_int])
@pytest.mark.parametrize("text", [HUGE_INT, HUGE_INT + "GiB", "1" * (MAX_INT_DIGITS + 1)])
def test_units_refuse_absurd_integers(parse: Callable[[str], int], text: str) -> None:
    exc = refused(lambda: parse(text), VramplanError, "absurdly long")
    assert len(str(exc)) < 200


def test_units_accept_the_longest_allowed_integer() -> None:
    assert parse_int("9" * MAX_INT_DIGITS) == 10**MAX_INT_DIGITS - 1


@pytest.mark.parametrize(
    "argv",
    [
        ["vllm", "llama-3.1-8b", "--gpu", "H100", "--max-model-len", HUGE_INT],
        ["vllm", "llama-3.1-8b", "--gpu", "H100", "--max-num-seqs", HUGE_INT],
        ["sglang", "--model-path", "llama-3.1-8b", "--gpu", "H100", "--context-length", HUGE_INT],
        ["llamacpp", "-m", "llama-3.1-8b", "--gpu", "H100", "-c", HUGE_INT],
        ["estimate", "llama-3.1-8b", "--params", HUGE_INT],
        ["estimate", "llama-3.1-8b", "--gpu-memory", HUGE_INT + "GiB"],
    ],
    ids=lambda a: " ".join(x[:12] for x in a[:1] + a[-2:-1]),
)
def test_cli_refuses_a_5000_digit_integer_in_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    out = (captured.out + captured.err).strip()
    assert info.value.code == 1
    assert "absurdly long" in out and len(out.splitlines()) == 1 and len(out) < 300, out[:300]
    assert not any(t in out for t in PYTHON_TEXT) and "Traceback" not in out
