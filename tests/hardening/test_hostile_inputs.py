"""Hostile files and inputs: every one is refused with a vramplan error class and a clear message,
in under a second and under ~100 MB (tracemalloc peak). Corpus: tests/data/hostile (make_corpus.py)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from vramplan.errors import (
    ConfigError,
    FileFormatError,
    InputError,
    UnknownModelError,
    UnsupportedModelError,
    VramplanError,
)
from vramplan.estimator import estimate
from vramplan.logs.parse import parse_log, parse_log_file
from vramplan.model.files import read_gguf, read_safetensors
from vramplan.model.hf_config import load_config_file, spec_from_config
from vramplan.model.hub import validate_repo_id
from vramplan.model.load import load_model
from vramplan.units import parse_count, parse_size

from ._budget import refused

CORPUS = Path(__file__).resolve().parents[1] / "data" / "hostile"
MANIFEST = json.loads((CORPUS / "MANIFEST.json").read_text())


def _config(path: Path):
    return spec_from_config(load_config_file(path), name=path.name)


READERS = {
    "safetensors": (read_safetensors, FileFormatError),
    "gguf": (read_gguf, FileFormatError),
    "config": (_config, (ConfigError, UnsupportedModelError)),
    "log": (parse_log_file, FileFormatError),
}


def test_corpus_is_current(tmp_path: Path) -> None:
    """The committed corpus is what make_corpus.py writes."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    for name, (content, _, _) in mod.corpus().items():
        assert (CORPUS / name).read_bytes() == content, f"{name}: rerun make_corpus.py"
    assert set(mod.corpus()) == set(MANIFEST)


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_corpus_file_is_refused(name: str) -> None:
    entry = MANIFEST[name]
    reader, error = READERS[entry["reader"]]
    exc = refused(lambda: reader(CORPUS / name), error)
    assert entry["message"].lower() in str(exc).lower(), str(exc)
    assert "Traceback" not in str(exc)


@pytest.mark.parametrize("name", sorted(n for n, e in MANIFEST.items() if e["reader"] != "log"))
def test_corpus_file_through_load_model(name: str, tmp_path: Path) -> None:
    """The same files given as a model path (suffix decides the reader)."""
    target = tmp_path / name
    if name.endswith(".safetensors"):
        (tmp_path / "config.json").write_text(
            json.dumps(
                {
                    "model_type": "llama",
                    "hidden_size": 64,
                    "num_attention_heads": 1,
                    "num_hidden_layers": 1,
                    "vocab_size": 10,
                }
            )
        )
    target.write_bytes((CORPUS / name).read_bytes())
    refused(lambda: load_model(str(target)), VramplanError)


# --------------------------------------------------------------------------------- generated at test time


def test_200mb_sparse_config_refused_by_size(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    with open(path, "wb") as fh:
        fh.write(b'{"model_type": "llama"')
        fh.truncate(200 * 1024 * 1024)  # sparse: NUL bytes not on disk
    exc = refused(lambda: load_config_file(path), ConfigError)
    assert "bytes" in str(exc) and "right file" in str(exc)


def test_200mb_whitespace_config_refused_by_size(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    with open(path, "wb") as fh:
        fh.write(b"{" + b" " * (1 << 20))
        fh.seek(200 * 1024 * 1024 - 1)
        fh.write(b"}")
    refused(lambda: load_config_file(path), ConfigError, "bytes")


def test_sparse_safetensors_claiming_2p60_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.safetensors"
    with open(path, "wb") as fh:
        fh.write((1 << 60).to_bytes(8, "little") + b"{}")
        fh.truncate(1 << 30)
    refused(lambda: read_safetensors(path), FileFormatError, "exceeds")


DEEP_BUG = (
    "BUG model/hf_config.load_config_file: json.loads raises RecursionError on deeply nested "
    "JSON and only JSONDecodeError/UnicodeDecodeError are caught; fix: add "
    "`except RecursionError: raise ConfigError(f'{path} nests too deeply to be a config.json') from None`"
)


@pytest.mark.parametrize("opener,closer", [("[", "]"), ('{"a":', "}")])
def test_100k_level_json_config(tmp_path: Path, opener: str, closer: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(opener * 100_000 + "1" + closer * 100_000)
    refused(lambda: load_config_file(path), ConfigError)


@pytest.mark.parametrize("opener,closer", [("[", "]"), ('{"a":', "}")])
def test_100k_level_json_safetensors_header(tmp_path: Path, opener: str, closer: str) -> None:
    header = (opener * 100_000 + "1" + closer * 100_000).encode()
    path = tmp_path / "deep.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    refused(lambda: read_safetensors(path), FileFormatError, "not valid JSON")


def test_random_bytes_log_text_and_huge_log() -> None:
    rng = __import__("random").Random(1)
    text = "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(50_000))
    refused(lambda: parse_log(text), FileFormatError, "no vLLM")
    refused(lambda: parse_log(b"bytes"), FileFormatError, "as text")  # type: ignore[arg-type]


def test_huge_log_is_cut_not_parsed_whole() -> None:

    with pytest.raises(FileFormatError):
        parse_log("x" * 50_000_000)


# --------------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    "value",
    [
        "NaN",
        "nan",
        "inf",
        "-inf",
        "Infinity",
        "-1GiB",
        "0",
        "1e400",
        "1e30TB",
        "",
        " ",
        "GiB",
        "12 parsecs",
        "1,5GB",
        "0x10GB",
        "\x00",
        "١٢GB",
        float("nan"),
        float("inf"),
        -5,
        0,
        True,
        10**30,
    ],
)
def test_parse_size_refuses(value) -> None:
    refused(lambda: parse_size(value), InputError)


@pytest.mark.parametrize("value", ["1e-30B", "0.4B", "0.4"])
def test_parse_size_refuses_sizes_that_round_to_zero(value: str) -> None:
    refused(lambda: parse_size(value), InputError)


@pytest.mark.parametrize(
    "value", ["NaN", "inf", "-70B", "0", "1e30", "seventy", "", "7e9e9", float("nan"), -1, 0]
)
def test_parse_count_refuses(value) -> None:
    refused(lambda: parse_count(value, "--params"), InputError, "--params")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"context": -1}, "context must be positive"),
        ({"context": 0}, "context must be positive"),
        ({"context": 1 << 40}, "absurdly large"),
        ({"context": 4096.5}, "whole number"),
        ({"context": float("nan")}, "whole number"),
        ({"context": True}, "whole number"),
        ({"users": 10**30}, "absurdly large"),
        ({"users": -3}, "positive"),
        ({"users": "8"}, "whole number"),
        ({"batch_tokens": 0}, "positive"),
        ({"gpu_memory": "NaN"}, "memory size"),
        ({"gpu_memory": float("inf")}, "memory size"),
        ({"gpu_memory": -80}, "memory size"),
        ({"gpu": "H100\u202e\x00"}, "unknown GPU"),
        ({"gpu": "../../etc/passwd"}, "unknown GPU"),
        ({"tensor_parallel_size": 0}, "positive"),
        ({"tensor_parallel_size": 3}, "does not divide"),
        ({"tensor_parallel_size": 10**9}, "absurdly large"),
        ({"pipeline_parallel_size": 1000}, "exceeds"),
        ({"dtype": "fp7"}, "unknown dtype"),
        ({"dtype": "\x1b[31mred"}, "unknown dtype"),
        ({"quantization": "Q9_Z"}, "unknown quantization"),
        ({"kv_cache_dtype": "int3"}, "KV-cache dtype"),
        ({"method": "magic"}, "unknown method"),
    ],
)
def test_estimate_refuses_bad_options(kwargs: dict, match: str) -> None:
    refused(lambda: estimate("llama-3.1-8b", **kwargs), InputError, match)


@pytest.mark.parametrize("block_size", [0, -5, -16])
def test_estimate_refuses_bad_block_size(block_size: int) -> None:
    refused(lambda: estimate("llama-3.1-8b", block_size=block_size), InputError, "block")


@pytest.mark.parametrize(
    "params,bits",
    [
        (float("nan"), 16),
        (-1, 16),
        (70e9, float("nan")),
        (70e9, -4),
        pytest.param(70e9, 0),
        (70e9, 1e308),
        (70e9, float("inf")),
    ],
)
def test_rule_of_thumb_refuses_bad_numbers(params, bits) -> None:
    def call() -> None:
        estimate(params=parse_count(params, "--params"), bits=bits, method="rule-of-thumb")

    refused(call, InputError)


# --------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "ref",
    [
        "https://evil/x",
        "http://169.254.169.254/latest/meta-data",
        "file:///etc/passwd",
        "org/../../etc",
        "a\x00b",
        "a\nb",
        "\x1b[2J",
        "x" * 10_000,
        "org/name/extra",
        "org//name",
        "-org/name",
        "org/name.git",
        "org--x/name",
        "ﬁ/ﬂ",
        "🦙/llama",
        "org/ name",
        "org/name\u202e",
        "",
    ],
)
def test_model_names_that_are_not_models(ref: str) -> None:
    exc = refused(lambda: load_model(ref), UnknownModelError)
    assert "\x00" not in str(exc) and "\x1b" not in str(exc)


@pytest.mark.parametrize(
    "ref",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "~/../../etc/shadow",
        "/proc/self/environ",
        "./nope/config.json",
        "/dev/zero",
        "/etc",
    ],
)
def test_path_like_names_fail_cleanly(ref: str) -> None:
    """The CLI may read the user's own files; hostile paths still only give our errors, fast."""
    refused(lambda: load_model(ref), VramplanError)


@pytest.mark.parametrize(
    "repo_id",
    [
        "../x",
        "a/../b",
        "https://evil/x",
        "a/b/c",
        "a b/c",
        "a/b\x00",
        "a" * 200 + "/b",
        "org/--",
        ".hidden/x",
        "org/x.",
        None,
        5,
        ["a/b"],
    ],
)
def test_validate_repo_id_rejects(repo_id) -> None:
    refused(lambda: validate_repo_id(repo_id), UnknownModelError)


def test_unicode_names_render_escaped_in_messages() -> None:
    exc = refused(lambda: validate_repo_id("a\x07b/c\u202e"), UnknownModelError)
    assert "\x07" not in str(exc) and "\u202e" not in str(exc)
    assert math.isfinite(len(str(exc)))
    assert os.linesep not in str(exc)
