"""Write the hostile-file corpus next to this script (every file under 4 KiB).

Run ``python tests/data/hostile/make_corpus.py`` to regenerate; the output is deterministic. Files
that must be large (a 200 MB config, 100k-level JSON) are made at test time in ``tmp_path`` by
``tests/hardening/test_hostile_inputs.py``, sparse where possible.

Each file name says what is wrong with it; ``MANIFEST`` maps it to the reader that must refuse it
and a fragment of the error message the reader must give.
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
GGUF_MAGIC = b"GGUF"


def st(header: bytes, n: int | None = None, data: bytes = b"") -> bytes:
    """A safetensors file: 8-byte little-endian header length, header, data."""
    return struct.pack("<Q", len(header) if n is None else n) + header + data


def gguf_str(s: bytes) -> bytes:
    return struct.pack("<Q", len(s)) + s


def gguf(n_tensors: int, n_kv: int, body: bytes = b"", version: int = 3) -> bytes:
    return GGUF_MAGIC + struct.pack("<IQQ", version, n_tensors, n_kv) + body


def _valid_st() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]}}).encode()
    return st(header, data=bytes(64))


def corpus() -> dict[str, tuple[bytes, str, str]]:
    """file name -> (content, reader, message fragment)."""
    rng = random.Random(7)
    hdr_2p60 = json.dumps(
        {"w": {"dtype": "U8", "shape": [1 << 60], "data_offsets": [0, 1 << 60]}}
    ).encode()
    files: dict[str, tuple[bytes, str, str]] = {
        # --- safetensors
        "st_header_len_2p60.safetensors": (st(b"{}", n=1 << 60), "safetensors", "exceeds"),
        "st_tensor_claims_2p60_bytes.safetensors": (st(hdr_2p60), "safetensors", "truncated"),
        "st_truncated_data.safetensors": (_valid_st()[:-10], "safetensors", "truncated"),
        "st_truncated_header.safetensors": (_valid_st()[:20], "safetensors", "truncated"),
        "st_too_small.safetensors": (b"\x01\x02\x03", "safetensors", "too small"),
        "st_empty.safetensors": (b"", "safetensors", "too small"),
        "st_not_json.safetensors": (
            st(b"\xff\xfe not json at all"),
            "safetensors",
            "not valid JSON",
        ),
        "st_header_is_list.safetensors": (st(b"[1, 2, 3]"), "safetensors", "must be a JSON object"),
        "st_bad_dtype.safetensors": (
            st(
                json.dumps(
                    {"w": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}
                ).encode(),
                data=bytes(16),
            ),
            "safetensors",
            "unknown dtype",
        ),
        "st_negative_shape.safetensors": (
            st(
                json.dumps({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}).encode(),
                data=bytes(4),
            ),
            "safetensors",
            "invalid shape",
        ),
        "st_shape_strings.safetensors": (
            st(
                json.dumps(
                    {"w": {"dtype": "F32", "shape": ["4"], "data_offsets": [0, 16]}}
                ).encode(),
                data=bytes(16),
            ),
            "safetensors",
            "invalid shape",
        ),
        "st_too_many_dims.safetensors": (
            st(
                json.dumps(
                    {"w": {"dtype": "F32", "shape": [1] * 100, "data_offsets": [0, 4]}}
                ).encode(),
                data=bytes(4),
            ),
            "safetensors",
            "invalid shape",
        ),
        "st_overlap.safetensors": (
            st(
                json.dumps(
                    {
                        "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                        "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]},
                    }
                ).encode(),
                data=bytes(24),
            ),
            "safetensors",
            "overlap",
        ),
        "st_duplicate_key.safetensors": (
            st(
                b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}',
                data=bytes(4),
            ),
            "safetensors",
            "duplicate",
        ),
        "st_offsets_wrong_type.safetensors": (
            st(
                json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": "0-4"}}).encode(),
                data=bytes(4),
            ),
            "safetensors",
            "data_offsets",
        ),
        "st_random_bytes.safetensors": (
            bytes(rng.randrange(256) for _ in range(512)),
            "safetensors",
            "",
        ),
        # --- GGUF
        "gguf_too_small.gguf": (GGUF_MAGIC + b"\x03\x00", "gguf", "too small"),
        "gguf_bad_magic.gguf": (b"GGML" + bytes(60), "gguf", "not a GGUF file"),
        "gguf_bad_version.gguf": (gguf(0, 0, bytes(16), version=99), "gguf", "version"),
        "gguf_tensor_count_2p63.gguf": (gguf(1 << 63, 0, bytes(16)), "gguf", "tensors"),
        "gguf_kv_count_2p63.gguf": (gguf(0, 1 << 63, bytes(16)), "gguf", "metadata entries"),
        "gguf_key_len_2p62.gguf": (
            gguf(0, 1, struct.pack("<Q", 1 << 62) + bytes(16)),
            "gguf",
            "string",
        ),
        "gguf_value_len_2p40.gguf": (
            gguf(
                0,
                1,
                gguf_str(b"general.name")
                + struct.pack("<I", 8)
                + struct.pack("<Q", 1 << 40)
                + bytes(8),
            ),
            "gguf",
            "string",
        ),
        "gguf_array_len_2p62.gguf": (
            gguf(
                0,
                1,
                gguf_str(b"tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 1 << 62) + bytes(8),
            ),
            "gguf",
            "elements",
        ),
        "gguf_array_len_truncated.gguf": (
            gguf(
                0,
                1,
                gguf_str(b"tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 1 << 20) + bytes(8),
            ),
            "gguf",
            "truncated",
        ),
        "gguf_nested_array.gguf": (
            gguf(0, 1, gguf_str(b"a") + struct.pack("<IIQ", 9, 9, 1) + bytes(16)),
            "gguf",
            "nested",
        ),
        "gguf_unknown_value_type.gguf": (
            gguf(0, 1, gguf_str(b"a") + struct.pack("<I", 77) + bytes(16)),
            "gguf",
            "unknown value type",
        ),
        "gguf_key_not_utf8.gguf": (
            gguf(0, 1, gguf_str(b"\xff\xfe\xfd") + struct.pack("<I", 4) + bytes(16)),
            "gguf",
            "UTF-8",
        ),
        "gguf_truncated_after_header.gguf": (
            gguf(3, 2, gguf_str(b"general.architecture")),
            "gguf",
            "",
        ),
        "gguf_too_many_dims.gguf": (
            gguf(
                1,
                1,
                gguf_str(b"general.architecture")
                + struct.pack("<I", 8)
                + gguf_str(b"llama")
                + gguf_str(b"t")
                + struct.pack("<I", 1000)
                + bytes(64),
            ),
            "gguf",
            "dimensions",
        ),
        # issue 13: counts within the old limits (2**20) but absurd for any real file
        "gguf_tensor_count_2p20.gguf": (gguf(1 << 20, 0, bytes(64)), "gguf", "limit 65,536"),
        "gguf_kv_count_2p20.gguf": (gguf(0, 1 << 20, bytes(64)), "gguf", "limit 16,384"),
        "gguf_string_array_2p21.gguf": (
            gguf(
                0,
                1,
                gguf_str(b"tokenizer.ggml.merges") + struct.pack("<IIQ", 9, 8, 1 << 21) + bytes(8),
            ),
            "gguf",
            "limit 1048576",
        ),
        "st_int_3000_digits.safetensors": (
            st(b'{"w": {"dtype": "F32", "shape": [' + b"9" * 3000 + b'], "data_offsets": [0, 4]}}'),
            "safetensors",
            "3,000 digits",
        ),
        "gguf_random_bytes.gguf": (
            GGUF_MAGIC + bytes(rng.randrange(256) for _ in range(508)),
            "gguf",
            "",
        ),
        # --- config.json
        "config_nan.json": (
            b'{"model_type": "llama", "hidden_size": NaN, "num_attention_heads": 8, "num_hidden_layers": 2, "vocab_size": 100}',
            "config",
            "hidden_size",
        ),
        "config_infinity.json": (
            b'{"model_type": "llama", "hidden_size": 512, "num_attention_heads": Infinity, "num_hidden_layers": 2, "vocab_size": 100}',
            "config",
            "num_attention_heads",
        ),
        "config_huge_float.json": (
            b'{"model_type": "llama", "hidden_size": 1e400, "num_attention_heads": 8, "num_hidden_layers": 2, "vocab_size": 100}',
            "config",
            "hidden_size",
        ),
        "config_negative.json": (
            b'{"model_type": "llama", "hidden_size": -512, "num_attention_heads": 8, "num_hidden_layers": 2, "vocab_size": 100}',
            "config",
            "hidden_size",
        ),
        "config_strings_for_ints.json": (
            b'{"model_type": "llama", "hidden_size": "512", "num_attention_heads": "8", "num_hidden_layers": "2", "vocab_size": "100"}',
            "config",
            "positive integer",
        ),
        "config_list_for_dict.json": (b'[{"model_type": "llama"}]', "config", "JSON object"),
        "config_no_model_type.json": (b'{"hidden_size": 512}', "config", "model_type"),
        "config_unknown_model_type.json": (
            b'{"model_type": "../../etc/passwd"}',
            "config",
            "not supported",
        ),
        "config_truncated.json": (
            b'{"model_type": "llama", "hidden_size": 51',
            "config",
            "not valid JSON",
        ),
        "config_latin1.json": ('{"model_type": "lläma"}'.encode("latin-1"), "config", "UTF-8"),
        "config_empty.json": (b"", "config", "not valid JSON"),
        "config_control_chars.json": (
            b'{"model_type": "llama\\u0000\\u001b[31m", "hidden_size": 512}',
            "config",
            "not supported",
        ),
        "config_int_3000_digits.json": (
            b'{"model_type": "llama", "hidden_size": ' + b"9" * 3000 + b", "
            b'"num_attention_heads": 8, "num_hidden_layers": 2, "vocab_size": 100}',
            "config",
            "3,000 digits",
        ),
        # --- logs
        "log_random_bytes.log": (
            bytes(rng.randrange(256) for _ in range(2048)),
            "log",
            "no vLLM, SGLang, TGI or llama.cpp",
        ),
        "log_nul_bytes.log": (bytes(1024), "log", "no vLLM, SGLang, TGI or llama.cpp"),
        "log_empty.log": (b"", "log", "no vLLM, SGLang, TGI or llama.cpp"),
    }
    return files


def main() -> None:
    manifest = {}
    for name, (content, reader, fragment) in sorted(corpus().items()):
        assert len(content) <= 4096, name
        (HERE / name).write_bytes(content)
        manifest[name] = {"reader": reader, "message": fragment}
    (HERE / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(manifest)} files to {HERE}")


if __name__ == "__main__":
    main()
