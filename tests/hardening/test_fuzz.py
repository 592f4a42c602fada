"""Hypothesis fuzzer: random and mutated bytes into every reader; only vramplan errors may escape.

Seeds are the hostile corpus plus small valid files; mutations flip, insert, delete and splice bytes.
The atheris harness (fuzz_atheris.py) feeds the same targets for long on-demand runs.
"""

from __future__ import annotations

import json
import math
import struct
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from vramplan.errors import VramplanError
from vramplan.logs.parse import parse_log
from vramplan.model.files import read_gguf, read_safetensors
from vramplan.model.hf_config import load_config_file, spec_from_config
from vramplan.units import parse_count, parse_size

CORPUS = Path(__file__).resolve().parents[1] / "data" / "hostile"
VALID_ST = (
    struct.pack("<Q", 58)
    + json.dumps({"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]}})
    .encode()
    .ljust(58)
    + bytes(64)
)
VALID_CONFIG = json.dumps(
    {
        "model_type": "llama",
        "hidden_size": 512,
        "num_attention_heads": 8,
        "num_hidden_layers": 2,
        "vocab_size": 1000,
    }
).encode()


def _seeds(suffix: str, extra: list[bytes]) -> list[bytes]:
    return [p.read_bytes() for p in sorted(CORPUS.glob(f"*{suffix}"))] + extra


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 8))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "int"]))
        pos = draw(st.integers(0, max(0, len(data))))
        if op == "flip" and data:
            data[min(pos, len(data) - 1)] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(max_size=16))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[pos:]
        elif op == "int" and len(data) >= 8:
            at = min(pos, len(data) - 8)
            data[at : at + 8] = struct.pack(
                "<Q", draw(st.sampled_from([0, 1, 2**31, 2**32 - 1, 2**63, 2**64 - 1]))
            )
    return bytes(data)


def _file(data: bytes, suffix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="vramplan-fuzz-"))
    path = folder / f"f{suffix}"
    path.write_bytes(data)
    return path


def _only_our_errors(fn, *args) -> None:
    try:
        fn(*args)
    except VramplanError:
        pass


@given(data=st.one_of(st.binary(max_size=512), mutated(_seeds(".safetensors", [VALID_ST]))))
def test_fuzz_read_safetensors(data: bytes) -> None:
    _only_our_errors(read_safetensors, _file(data, ".safetensors"))


def _gguf_seeds() -> list[bytes]:
    import gguf
    import numpy as np

    path = Path(tempfile.mkdtemp()) / "valid.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(1)
    w.add_embedding_length(64)
    w.add_head_count(1)
    w.add_context_length(128)
    w.add_tensor("token_embd.weight", np.zeros((10, 64), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return _seeds(".gguf", [path.read_bytes()])


@given(data=st.one_of(st.binary(max_size=512), mutated(_gguf_seeds())))
def test_fuzz_read_gguf(data: bytes) -> None:
    _only_our_errors(read_gguf, _file(data, ".gguf"))


@given(data=st.one_of(st.binary(max_size=512), mutated(_seeds(".json", [VALID_CONFIG]))))
def test_fuzz_config_bytes(data: bytes) -> None:
    def run(path: Path) -> None:
        spec_from_config(load_config_file(path))

    _only_our_errors(run, _file(data, ".json"))


LOG_SEEDS = [p.read_bytes() for p in sorted((CORPUS.parent / "logs").glob("*.log"))][:6] + _seeds(
    ".log", []
)


@given(data=st.one_of(st.text(max_size=2000), mutated(LOG_SEEDS)))
def test_fuzz_parse_log(data) -> None:
    text = data if isinstance(data, str) else data.decode("utf-8", errors="replace")
    _only_our_errors(parse_log, text)


@given(
    text=st.one_of(
        st.text(max_size=40),
        st.from_regex(r"\s*-?[0-9.eE+\-]{1,12}\s*[a-zA-Z]{0,4}\s*", fullmatch=True),
    )
)
def test_fuzz_parse_size_and_count(text: str) -> None:
    for fn in (parse_size, parse_count):
        try:
            value = fn(text)
        except VramplanError:
            continue
        assert isinstance(value, int) and value >= 0


FLAGS = [
    "--max-model-len",
    "--gpu-memory-utilization",
    "--tensor-parallel-size",
    "--dtype",
    "--kv-cache-dtype",
    "--max-num-seqs",
    "--block-size",
    "--quantization",
    "--enforce-eager",
    "--cpu-offload-gb",
    "--swap-space",
]


@given(
    argv=st.lists(
        st.one_of(
            st.sampled_from(FLAGS),
            st.text(max_size=12),
            st.sampled_from(["nan", "-1", "1e30", "inf", "0", "32k", "=", "--", "1.5"]),
        ),
        max_size=12,
    )
)
def test_fuzz_vllm_args(argv: list[str]) -> None:
    from vramplan.engines.vllm_args import parse_vllm_args

    _only_our_errors(parse_vllm_args, argv)


# Flag parsers of the other engines: fuzzed argv (known flags, junk, hostile numbers) must parse or
# raise one of our errors; and the whole prediction from such an argv may only raise ours too.
HOSTILE_VALUES = [
    "nan",
    "-1",
    "1e30",
    "inf",
    "-inf",
    "0",
    "32k",
    "=",
    "--",
    "1.5",
    "",
    " ",
    "0x10",
    "1_000",
    "9" * 40,
    "\x00",
    "auto",
    "on",
    "off",
    "fp8",
    "3,1",
    "1/0",
    ",,",
    "-0",
]
SGLANG_FLAGS = [
    "--model-path",
    "--tp-size",
    "--tp",
    "--dp-size",
    "--pp-size",
    "--mem-fraction-static",
    "--context-length",
    "--max-running-requests",
    "--max-total-tokens",
    "--chunked-prefill-size",
    "--kv-cache-dtype",
    "--dtype",
    "--quantization",
    "--page-size",
    "--cuda-graph-max-bs",
    "--disable-cuda-graph",
    "--enable-dp-attention",
    "--mem_fraction_static",
    "--tp-size=",
    "--unknown",
]
TGI_FLAGS = [
    "--model-id",
    "--num-shard",
    "--max-total-tokens",
    "--max-input-tokens",
    "--max-input-length",
    "--max-batch-prefill-tokens",
    "--max-batch-total-tokens",
    "--cuda-memory-fraction",
    "--quantize",
    "--dtype",
    "--kv-cache-dtype",
    "--attention",
    "--num-shard=",
    "--sharded",
]
LLAMACPP_FLAGS = [
    "-m",
    "--model",
    "-c",
    "--ctx-size",
    "-ngl",
    "--n-gpu-layers",
    "-ctk",
    "--cache-type-k",
    "-ctv",
    "-np",
    "--parallel",
    "-b",
    "-ub",
    "-ts",
    "--tensor-split",
    "--quant",
    "-fa",
    "--flash-attn",
    "--kv-unified",
    "--swa-full",
    "--fit",
    "--fit=off",
    "--no-kv-offload",
    "-c=",
    "--ctx-size=",
]


def _argv(flags: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(
        st.one_of(
            st.sampled_from(flags),
            st.sampled_from(HOSTILE_VALUES),
            st.text(max_size=12),
            st.builds(
                lambda f, v: f"{f}={v}", st.sampled_from(flags), st.sampled_from(HOSTILE_VALUES)
            ),
        ),
        max_size=12,
    )


def _check_settings(settings: dict, ignored: list) -> None:
    assert isinstance(settings, dict) and isinstance(ignored, list)
    for value in settings.values():
        if isinstance(value, float):
            assert math.isfinite(value), settings


@given(argv=_argv(SGLANG_FLAGS))
def test_fuzz_sglang_args(argv: list[str]) -> None:
    from vramplan.engines.sglang import _INT_KEYS, BOOL_FLAGS, FLAGS, parse_argv

    try:
        _check_settings(*parse_argv(argv, FLAGS, BOOL_FLAGS, _INT_KEYS))
    except VramplanError:
        pass


@given(argv=_argv(TGI_FLAGS))
def test_fuzz_tgi_args(argv: list[str]) -> None:
    from vramplan.engines import tgi
    from vramplan.engines.sglang import parse_argv

    try:
        _check_settings(*parse_argv(argv, tgi.FLAGS, {}, tgi._INT, {"cuda_memory_fraction"}))
    except VramplanError:
        pass


@given(argv=_argv(LLAMACPP_FLAGS))
def test_fuzz_llamacpp_args(argv: list[str]) -> None:
    from vramplan.engines.llamacpp import parse_llamacpp_argv

    try:
        _check_settings(*parse_llamacpp_argv(argv))
    except VramplanError:
        pass


ENGINE_MODEL = {
    "sglang": ["--model-path", "Qwen/Qwen2.5-7B"],
    "tgi": ["--model-id", "Qwen/Qwen2.5-7B"],
    "llamacpp": ["-m", "Qwen2.5-7B-Q4_K_M.gguf"],
}
ENGINE_FLAGS = {"sglang": SGLANG_FLAGS, "tgi": TGI_FLAGS, "llamacpp": LLAMACPP_FLAGS}


@given(
    data=st.data(),
    engine=st.sampled_from(sorted(ENGINE_MODEL)),
    gpu=st.sampled_from(["H100-80GB-SXM", "L4", "A100-40GB-SXM"]),
)
def test_fuzz_engine_predictions(data: st.DataObject, engine: str, gpu: str) -> None:
    """A catalogue model plus fuzzed flags through the whole prediction: only our errors escape."""
    from vramplan.engines.llamacpp import predict_llamacpp
    from vramplan.engines.sglang import predict_sglang
    from vramplan.engines.tgi import predict_tgi

    predict = {"sglang": predict_sglang, "tgi": predict_tgi, "llamacpp": predict_llamacpp}[engine]
    argv = ENGINE_MODEL[engine] + data.draw(_argv(ENGINE_FLAGS[engine]), label="argv")
    _only_our_errors(predict, argv, gpu)
