"""Header-only readers for safetensors and GGUF: exact bytes, and clean failures on hostile files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as Q
from gguf import GGUFWriter
from safetensors.numpy import save_file
from safetensors.torch import save_file as save_torch

from vramplan.errors import FileFormatError, UnsupportedModelError
from vramplan.model.files import (
    GGML_TYPE_BYTES,
    CheckpointInfo,
    ggml_bits_per_weight,
    gguf_to_hf_config,
    read_gguf,
    read_safetensors,
)

# ------------------------------------------------------------------------------------------
# safetensors
# ------------------------------------------------------------------------------------------


def test_single_file_bytes_and_params(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file(
        {
            "a": np.zeros((3, 5), np.float32),
            "b": np.zeros((7,), np.float16),
            "c": np.zeros((2, 2, 2), np.int8),
            "s": np.zeros((), np.float64),
        },
        str(path),
        metadata={"format": "pt"},
    )
    info = read_safetensors(path)
    assert isinstance(info, CheckpointInfo)
    assert info.format == "safetensors"
    assert info.tensors["a"].dtype == "F32"
    assert info.tensors["a"].shape == (3, 5)
    assert info.tensors["a"].nbytes == 60
    assert info.tensors["s"].shape == () and info.tensors["s"].nbytes == 8
    assert info.bytes_by_dtype == {"F32": 60, "F16": 14, "I8": 8, "F64": 8}
    assert info.params_by_dtype == {"F32": 15, "F16": 7, "I8": 8, "F64": 1}
    assert info.total_bytes == 90
    assert info.total_params == 31
    assert info.metadata == {"format": "pt"}
    assert info.files == ("model.safetensors",)


def test_torch_dtypes_bf16_fp8(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_torch(
        {
            "bf": torch.zeros(4, 8, dtype=torch.bfloat16),
            "f8": torch.zeros(16, dtype=torch.float8_e4m3fn),
            "f8b": torch.zeros(3, dtype=torch.float8_e5m2),
            "q": torch.zeros(4, 2, dtype=torch.int32),
        },
        str(path),
    )
    info = read_safetensors(path)
    assert info.bytes_by_dtype == {"BF16": 64, "F8_E4M3": 16, "F8_E5M2": 3, "I32": 32}
    assert info.total_bytes == 115


def test_packed_int_note(tmp_path: Path) -> None:
    path = tmp_path / "gptq.safetensors"
    save_file(
        {"layer.qweight": np.zeros((4, 16), np.int32), "layer.scales": np.zeros(16, np.float16)},
        str(path),
    )
    info = read_safetensors(path)
    assert info.params_by_dtype["I32"] == 64  # containers, not the 512 int4 values
    assert any("containers" in n for n in info.notes)


def _write_raw(path: Path, header: object, data: bytes = b"", length: int | None = None) -> Path:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(raw) if length is None else length
    path.write_bytes(struct.pack("<Q", n) + raw + data)
    return path


def test_sub_byte_dtype_f4(tmp_path: Path) -> None:
    path = _write_raw(
        tmp_path / "f4.safetensors",
        {"x": {"dtype": "F4", "shape": [4, 8], "data_offsets": [0, 16]}},
        bytes(16),
    )
    info = read_safetensors(path)
    assert info.tensors["x"].nbytes == 16
    assert info.params_by_dtype == {"F4": 32}


def _sharded(tmp_path: Path, total_size: int | None = 92) -> Path:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    save_file({"a": np.zeros((4, 4), np.float32)}, str(folder / "model-00001-of-00002.safetensors"))
    save_file(
        {"b": np.zeros((10,), np.float16), "c": np.zeros((2,), np.float32)},
        str(folder / "model-00002-of-00002.safetensors"),
    )
    index: dict[str, object] = {
        "weight_map": {
            "a": "model-00001-of-00002.safetensors",
            "b": "model-00002-of-00002.safetensors",
            "c": "model-00002-of-00002.safetensors",
        }
    }
    if total_size is not None:
        index["metadata"] = {"total_size": total_size}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return folder


def test_sharded_folder(tmp_path: Path) -> None:
    folder = _sharded(tmp_path)
    for target in (folder, folder / "model.safetensors.index.json"):
        info = read_safetensors(target)
        assert info.total_bytes == 64 + 20 + 8
        assert info.bytes_by_dtype == {"F32": 72, "F16": 20}
        assert info.index_total_size == 92
        assert info.tensors["b"].file == "model-00002-of-00002.safetensors"
        assert len(info.files) == 2
        assert not info.notes


def test_sharded_total_size_mismatch_is_a_note(tmp_path: Path) -> None:
    info = read_safetensors(_sharded(tmp_path, total_size=1000))
    assert info.total_bytes == 92
    assert any("total_size" in n for n in info.notes)


def test_sharded_missing_shard(tmp_path: Path) -> None:
    folder = _sharded(tmp_path)
    (folder / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(FileFormatError, match="missing"):
        read_safetensors(folder)


def test_sharded_index_path_traversal(tmp_path: Path) -> None:
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "../../etc/passwd"}})
    )
    with pytest.raises(FileFormatError, match="plain file name"):
        read_safetensors(folder)


def test_sharded_tensor_not_in_shard(tmp_path: Path) -> None:
    folder = _sharded(tmp_path)
    idx = folder / "model.safetensors.index.json"
    index = json.loads(idx.read_text())
    index["weight_map"]["zzz"] = "model-00001-of-00002.safetensors"
    idx.write_text(json.dumps(index))
    with pytest.raises(FileFormatError, match="zzz"):
        read_safetensors(folder)


def test_folder_without_index(tmp_path: Path) -> None:
    save_file({"a": np.zeros(3, np.float32)}, str(tmp_path / "x.safetensors"))
    save_file({"b": np.zeros(3, np.float16)}, str(tmp_path / "y.safetensors"))
    assert read_safetensors(tmp_path).total_bytes == 18


def test_empty_folder_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match="no .safetensors"):
        read_safetensors(tmp_path)
    with pytest.raises(FileFormatError, match="no such file"):
        read_safetensors(tmp_path / "nope.safetensors")


@pytest.mark.parametrize(
    ("header", "data", "length", "match"),
    [
        (b"", b"", 1 << 60, "exceeds"),  # claims 2^60 header bytes
        (b"{}", b"", 1 << 20, "truncated"),  # header longer than the file
        (b"not json at all", b"", None, "not valid JSON"),
        (b"\xff\xfe{}", b"", None, "not valid JSON"),
        (b"[1, 2]", b"", None, "JSON object"),
        (b"[" * 100000 + b"]" * 100000, b"", None, "not valid JSON"),
        (
            {"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
            b"\0" * 8,
            None,
            "truncated",
        ),
        (
            {"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}},
            b"\0" * 16,
            None,
            "needs 16",
        ),
        (
            {"x": {"dtype": "Q9", "shape": [4], "data_offsets": [0, 4]}},
            b"\0" * 4,
            None,
            "unknown dtype",
        ),
        ({"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}, b"", None, "shape"),
        ({"x": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 0]}}, b"", None, "shape"),
        (
            {"x": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}},
            b"\0" * 8,
            None,
            "data_offsets",
        ),
        ({"x": {"dtype": "F32", "shape": [2]}}, b"\0" * 8, None, "data_offsets"),
        (
            {"x": {"dtype": "F32", "shape": [1 << 40, 1 << 40], "data_offsets": [0, 8]}},
            b"\0" * 8,
            None,
            "needs",
        ),
        ({"x": [1, 2, 3]}, b"", None, "not a JSON object"),
        ({"__metadata__": {"a": 1}}, b"", None, "__metadata__"),
        (
            {
                "x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "y": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            b"\0" * 12,
            None,
            "overlap",
        ),
        ({"x": {"dtype": "F4", "shape": [3], "data_offsets": [0, 1]}}, b"\0", None, "whole bytes"),
        (
            (
                b'{"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
                b'"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'
            ),
            b"\0" * 4,
            None,
            "duplicate",
        ),
    ],
)
def test_hostile_safetensors(
    tmp_path: Path, header: object, data: bytes, length: int | None, match: str
) -> None:
    path = _write_raw(tmp_path / "bad.safetensors", header, data, length)
    with pytest.raises(FileFormatError, match=match):
        read_safetensors(path)


def test_tiny_and_truncated_real_file(tmp_path: Path) -> None:
    (tmp_path / "tiny.safetensors").write_bytes(b"\x01\x02")
    with pytest.raises(FileFormatError, match="too small"):
        read_safetensors(tmp_path / "tiny.safetensors")
    good = tmp_path / "good.safetensors"
    save_file({"a": np.zeros((64, 64), np.float32)}, str(good))
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(FileFormatError, match="truncated"):
        read_safetensors(cut)


# ------------------------------------------------------------------------------------------
# GGUF
# ------------------------------------------------------------------------------------------


def test_ggml_type_table_matches_gguf_package() -> None:
    for qtype, (block_values, block_bytes) in gguf.constants.GGML_QUANT_SIZES.items():
        assert GGML_TYPE_BYTES[qtype.name] == (block_bytes, block_values), qtype.name
    known = {q.name for q in gguf.constants.GGML_QUANT_SIZES}
    assert set(GGML_TYPE_BYTES) == known
    assert ggml_bits_per_weight("Q4_K") == 4.5
    assert ggml_bits_per_weight("Q8_0") == 8.5
    assert ggml_bits_per_weight("Q6_K") == 6.5625
    assert ggml_bits_per_weight("MXFP4") == 4.25
    assert ggml_bits_per_weight("bf16") == 16
    with pytest.raises(FileFormatError):
        ggml_bits_per_weight("Q7_X")


def _quant(n_rows: int, n_cols: int, qtype: Q) -> np.ndarray:
    """Raw bytes of a quantized (n_rows x n_cols) tensor, sized from our own table."""
    block_bytes, block_values = GGML_TYPE_BYTES[qtype.name]
    assert n_cols % block_values == 0
    return np.zeros((n_rows, n_cols // block_values * block_bytes), np.uint8)


HIDDEN, FF, VOCAB, LAYERS = 256, 512, 320, 2


def _write_llama_gguf(
    path: Path,
    *,
    arch: str = "llama",
    tied: bool = False,
    experts: int = 0,
    n_tokens: int = VOCAB,
) -> dict[str, tuple[str, int]]:
    """A small but real llama-style GGUF with mixed quant types; returns name -> (type, bytes)."""
    w = GGUFWriter(str(path), arch)
    w.add_block_count(LAYERS)
    w.add_context_length(8192)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FF)
    w.add_head_count(8)
    w.add_head_count_kv(2)
    w.add_key_length(32)
    w.add_value_length(32)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(500000.0)
    w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
    w.add_rope_scaling_factor(2.0)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_K_M)
    if experts:
        w.add_expert_count(experts)
        w.add_expert_used_count(2)
    w.add_token_list([f"t{i}" for i in range(n_tokens)])
    expected: dict[str, tuple[str, int]] = {}

    def add(name: str, arr: np.ndarray, qtype: Q | None = None) -> None:
        if qtype is None:
            w.add_tensor(name, arr)
            expected[name] = ({np.float32: "F32", np.float16: "F16"}[arr.dtype.type], arr.nbytes)
        else:
            w.add_tensor(name, arr, raw_dtype=qtype)
            expected[name] = (qtype.name, arr.nbytes)

    add("token_embd.weight", _quant(VOCAB, HIDDEN, Q.Q4_K), Q.Q4_K)
    for i in range(LAYERS):
        add(f"blk.{i}.attn_norm.weight", np.zeros(HIDDEN, np.float32))
        add(f"blk.{i}.attn_q.weight", _quant(HIDDEN, HIDDEN, Q.Q4_K), Q.Q4_K)
        add(f"blk.{i}.attn_k.weight", _quant(64, HIDDEN, Q.Q5_K), Q.Q5_K)
        add(f"blk.{i}.attn_v.weight", _quant(64, HIDDEN, Q.Q6_K), Q.Q6_K)
        add(f"blk.{i}.attn_output.weight", _quant(HIDDEN, HIDDEN, Q.Q8_0), Q.Q8_0)
        add(f"blk.{i}.ffn_gate.weight", _quant(FF, HIDDEN, Q.Q2_K), Q.Q2_K)
        add(f"blk.{i}.ffn_up.weight", _quant(FF, HIDDEN, Q.Q3_K), Q.Q3_K)
        add(f"blk.{i}.ffn_down.weight", _quant(HIDDEN, FF, Q.IQ4_XS), Q.IQ4_XS)
        add(f"blk.{i}.ffn_norm.weight", np.zeros(HIDDEN, np.float16))
    add("output_norm.weight", np.zeros(HIDDEN, np.float32))
    if not tied:
        add("output.weight", _quant(VOCAB, HIDDEN, Q.Q6_K), Q.Q6_K)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return expected


def test_gguf_exact_bytes(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    expected = _write_llama_gguf(path)
    info = read_gguf(path, cross_check=True)
    assert info.architecture == "llama"
    assert info.version == 3
    assert info.file_type == "MOSTLY_Q4_K_M"
    assert {n: (t.type_name, t.nbytes) for n, t in info.tensors.items()} == expected
    assert info.total_bytes == sum(b for _, b in expected.values())
    by_type: dict[str, int] = {}
    for type_name, nbytes in expected.values():
        by_type[type_name] = by_type.get(type_name, 0) + nbytes
    assert info.bytes_by_type == by_type
    assert info.token_embd_bytes == VOCAB * HIDDEN // 256 * 144
    assert info.tensors["blk.0.attn_k.weight"].shape == (HIDDEN, 64)  # GGUF order: ne0 first
    assert info.tensors["blk.0.attn_k.weight"].n_elements == 64 * HIDDEN
    assert info.vocab_size == VOCAB
    assert info.array_lengths["tokenizer.ggml.tokens"] == VOCAB
    assert info.hparam("block_count") == LAYERS
    assert info.hparam("attention.head_count_kv") == 2
    assert not info.tied_embeddings
    # Cross-check with the reference reader, and the data really sits where we say.
    reader = gguf.GGUFReader(path)
    for t in reader.tensors:
        assert info.tensors[t.name].offset == t.data_offset
        assert info.tensors[t.name].nbytes == t.n_bytes
    assert info.data_offset == reader.data_offset


def test_gguf_to_hf_config_llama(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    _write_llama_gguf(path, tied=True)
    cfg = gguf_to_hf_config(read_gguf(path))
    assert cfg["model_type"] == "llama"
    assert cfg["hidden_size"] == HIDDEN
    assert cfg["num_hidden_layers"] == LAYERS
    assert cfg["num_attention_heads"] == 8
    assert cfg["num_key_value_heads"] == 2
    assert cfg["head_dim"] == 32
    assert cfg["intermediate_size"] == FF
    assert cfg["vocab_size"] == VOCAB
    assert cfg["max_position_embeddings"] == 8192
    assert cfg["rms_norm_eps"] == pytest.approx(1e-5)
    assert cfg["rope_theta"] == 500000.0
    assert cfg["rope_scaling"]["factor"] == 2.0
    assert cfg["rope_scaling"]["rope_type"] == "linear"
    assert cfg["tie_word_embeddings"] is True
    assert cfg["gguf_file_type"] == "MOSTLY_Q4_K_M"


def test_gguf_to_hf_config_mixtral(tmp_path: Path) -> None:
    path = tmp_path / "moe.gguf"
    _write_llama_gguf(path, experts=8)
    cfg = gguf_to_hf_config(read_gguf(path))
    assert cfg["model_type"] == "mixtral"
    assert cfg["num_local_experts"] == 8
    assert cfg["num_experts_per_tok"] == 2


def test_gguf_unknown_arch(tmp_path: Path) -> None:
    path = tmp_path / "x.gguf"
    w = GGUFWriter(str(path), "someweirdnet")
    w.add_block_count(1)
    w.add_tensor("a", np.zeros(4, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    info = read_gguf(path)
    assert info.architecture == "someweirdnet"
    assert info.file_type is None
    with pytest.raises(UnsupportedModelError, match="someweirdnet"):
        gguf_to_hf_config(info)


def test_gguf_big_vocab_skips_the_token_list(tmp_path: Path) -> None:
    path = tmp_path / "v.gguf"
    _write_llama_gguf(path, n_tokens=150_000)
    info = read_gguf(path)  # auto: skips the slow reference reader for big vocabularies
    assert "tokenizer.ggml.tokens" not in info.metadata
    assert info.array_lengths["tokenizer.ggml.tokens"] == 150_000
    assert info.vocab_size == 150_000


def _gguf_prefix(n_tensors: int, n_kv: int) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv)


def _kv_string(key: str) -> bytes:
    return struct.pack("<Q", len(key)) + key.encode()


@pytest.mark.parametrize(
    ("blob", "match"),
    [
        (_gguf_prefix(1 << 40, 0) + b"\0" * 64, "tensors"),
        (_gguf_prefix(0, 1 << 40) + b"\0" * 64, "metadata entries"),
        # a key whose value is a string claiming 2^62 bytes
        (
            _gguf_prefix(0, 1) + _kv_string("general.name") + struct.pack("<IQ", 8, 1 << 62),
            "string",
        ),
        # a key name claiming 2^40 bytes
        (_gguf_prefix(0, 1) + struct.pack("<Q", 1 << 20) + b"abc" + b"\0" * 32, "needs"),
        # an array of 2^40 uint8: GGUFReader itself loops forever on this one
        (_gguf_prefix(0, 1) + _kv_string("abc") + struct.pack("<IIQ", 9, 0, 1 << 40), "array"),
        (_gguf_prefix(0, 1) + _kv_string("abc") + struct.pack("<IIQ", 9, 0, 1000), "needs"),
        (
            _gguf_prefix(0, 1) + _kv_string("abc") + struct.pack("<I", 77) + b"\0" * 8,
            "unknown value type",
        ),
        (b"GGUF" + struct.pack("<IQQ", 1, 0, 0) + b"\0" * 8, "version"),
        (b"GGML" + b"\0" * 60, "not a GGUF"),
        (b"GGUF\x03\0", "too small"),
        (_gguf_prefix(0, 0) + b"\0" * 8, "general.architecture"),
    ],
)
def test_hostile_gguf(tmp_path: Path, blob: bytes, match: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(blob)
    with pytest.raises(FileFormatError, match=match):
        read_gguf(path)


def test_gguf_truncated_and_random(tmp_path: Path) -> None:
    good = tmp_path / "good.gguf"
    _write_llama_gguf(good)
    data = good.read_bytes()
    rng = np.random.default_rng(0)
    cuts = [10, 30, 100, 500, 2000, len(data) // 2, len(data) - 1]
    for cut in cuts:
        path = tmp_path / f"cut{cut}.gguf"
        path.write_bytes(data[:cut])
        with pytest.raises(FileFormatError):
            read_gguf(path)
    for i in range(20):
        path = tmp_path / f"rand{i}.gguf"
        body = rng.integers(0, 256, size=int(rng.integers(0, 4096)), dtype=np.uint8).tobytes()
        path.write_bytes((b"GGUF\x03\0\0\0" if i % 2 else b"") + body)
        with pytest.raises(FileFormatError):
            read_gguf(path)


def test_gguf_bad_tensor_type_and_offset(tmp_path: Path) -> None:
    good = tmp_path / "good.gguf"
    _write_llama_gguf(good)
    info = read_gguf(good)
    data = bytearray(good.read_bytes())
    name = b"output.weight"
    at = data.index(struct.pack("<Q", len(name)) + name) + 8 + len(name)
    n_dims = struct.unpack_from("<I", data, at)[0]
    type_at = at + 4 + 8 * n_dims
    bad_type = bytearray(data)
    struct.pack_into("<I", bad_type, type_at, 999)
    (tmp_path / "t.gguf").write_bytes(bad_type)
    with pytest.raises(FileFormatError, match="type id 999"):
        read_gguf(tmp_path / "t.gguf")
    bad_off = bytearray(data)
    struct.pack_into("<Q", bad_off, type_at + 4, info.file_size)
    (tmp_path / "o.gguf").write_bytes(bad_off)
    with pytest.raises(FileFormatError, match="outside"):
        read_gguf(tmp_path / "o.gguf")


def _write_split(folder: Path) -> None:
    w = GGUFWriter(str(folder / "m.gguf"), "llama", split_max_tensors=2)
    w.add_block_count(1)
    w.add_tensor("token_embd.weight", _quant(64, 256, Q.Q4_0), raw_dtype=Q.Q4_0)
    for i in range(4):
        w.add_tensor(f"t{i}", np.zeros(8, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_gguf_split_model(tmp_path: Path) -> None:
    _write_split(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["m-00001-of-00003.gguf", "m-00002-of-00003.gguf", "m-00003-of-00003.gguf"]
    info = read_gguf(tmp_path / names[0], cross_check=True)
    assert len(info.files) == 3
    assert set(info.tensors) == {"token_embd.weight", "t0", "t1", "t2", "t3"}
    assert info.bytes_by_type == {"Q4_0": 64 * 256 // 32 * 18, "F32": 4 * 32}
    assert info.token_embd_bytes == 64 * 256 // 32 * 18
    with pytest.raises(FileFormatError, match="pass the first split"):
        read_gguf(tmp_path / names[1])
    (tmp_path / names[2]).unlink()
    with pytest.raises(FileFormatError, match="split 3 of 3"):
        read_gguf(tmp_path / names[0])
