"""GGUF in estimate: a .gguf file's own tensor types, and llama.cpp's recipe for ``-q Q4_K_M``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as Q  # noqa: E402
from gguf import GGUFWriter  # noqa: E402

from vramplan.estimator import estimate  # noqa: E402
from vramplan.ggml import GGML_BLOCKS, recipe_type, use_more_bits  # noqa: E402
from vramplan.memory.weights import gguf_recipe, weight_bytes  # noqa: E402
from vramplan.model.files import read_gguf  # noqa: E402
from vramplan.model.load import load_model  # noqa: E402

#: Published sizes of bartowski/Meta-Llama-3.1-8B-Instruct-GGUF (the model card's table, GB = 1e9 B);
#: the Q4_K_M file is 4,920,734,016 bytes. A file adds ~7.8 MB of metadata (the tokenizer) to the
#: tensors, so the tensors are a little below each figure.
PUBLISHED_LLAMA_31_8B = {
    "Q8_0": 8.54e9,
    "Q6_K": 6.60e9,
    "Q5_K_M": 5.73e9,
    "Q5_K_S": 5.60e9,
    "Q4_K_M": 4_920_734_016,
    "Q4_K_S": 4.69e9,
    "Q3_K_L": 4.32e9,
    "Q3_K_M": 4.02e9,
    "Q3_K_S": 3.66e9,
    "Q2_K": 3.18e9,
}
#: The real Q4_K_M file minus its weight tensors: GGUF header and tokenizer metadata (plus 256 B rope_freqs).
METADATA_BYTES = 7_835_968


@pytest.mark.parametrize(("file_type", "published"), sorted(PUBLISHED_LLAMA_31_8B.items()))
def test_recipe_matches_published_file_sizes(file_type: str, published: float) -> None:
    b = estimate("llama-3.1-8b", quantization=file_type)
    weights = b.component("weights").total_bytes
    assert b.precision == f"gguf:{file_type}"
    assert -0.005 < (weights + METADATA_BYTES - published) / published < 0.003


def test_q4_k_m_tensor_by_tensor() -> None:
    """Llama-3.1-8B Q4_K_M: 193 Q4_K + 33 Q6_K tensors (16 attn_v, 16 ffn_down, output), as the file."""
    spec = load_model("llama-3.1-8b").spec
    p = gguf_recipe(spec, "Q4_K_M")
    assert p.layout is not None
    more = [i for i in range(32) if use_more_bits(i, 32)]
    assert more == [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]
    assert [p.layout.type_of("attn_v", i) for i in range(32)] == [
        "Q6_K" if i in more else "Q4_K" for i in range(32)
    ]
    assert p.layout.type_of("output", 0) == "Q6_K"
    assert p.layout.type_of("token_embd", 0) == "Q4_K"
    assert p.layout.type_of("attn_q", 5) == "Q4_K"

    def nbytes(t: str, rows: int, k: int) -> int:
        b, v = GGML_BLOCKS[t]
        return rows * (k // v) * b

    layer_q4 = (
        2 * nbytes("Q4_K", 4096, 4096)  # q, o
        + nbytes("Q4_K", 1024, 4096)  # k
        + 2 * nbytes("Q4_K", 14336, 4096)  # gate, up
        + 2 * 4096 * 4  # two F32 norms
    )
    expected = (
        nbytes("Q4_K", 128256, 4096)  # token_embd
        + nbytes("Q6_K", 128256, 4096)  # output
        + 4096 * 4  # output_norm
        + 32 * layer_q4
        + 16 * (nbytes("Q6_K", 1024, 4096) + nbytes("Q6_K", 4096, 14336))
        + 16 * (nbytes("Q4_K", 1024, 4096) + nbytes("Q4_K", 4096, 14336))
    )
    assert weight_bytes(spec, p).unsharded == expected
    # the rest of the real file: header, tokenizer metadata and rope_freqs (64 F32), none of them weights
    assert 4_920_734_016 - expected == METADATA_BYTES


def test_recipe_rules_beyond_llama_8b() -> None:
    from vramplan.ggml import ModelFacts

    mixtral = ModelFacts("llama", 32, 4, 8, False, False)
    assert recipe_type("Q4_K_M", "attn_v", 10, mixtral, 4096) == "Q8_0"
    assert recipe_type("Q4_K_M", "attn_output", 10, mixtral, 4096) == "Q5_K"
    seventy = ModelFacts("llama", 80, 8, 0, True, False)
    assert recipe_type("Q4_K_S", "attn_v", 10, seventy, 8192) == "Q5_K"
    tied = ModelFacts("gemma2", 26, 2, 0, False, True)
    assert recipe_type("Q4_K_M", "token_embd", 0, tied, 2304) == "Q6_K"
    falcon = ModelFacts("falcon", 32, 71, 0, False, False)
    assert recipe_type("Q4_K_M", "output", 0, falcon, 4544) == "Q8_0"
    assert (
        recipe_type("Q4_K_M", "attn_qkv", 3, falcon, 4544) == "Q5_1"
    )  # Q5_K, and 4544 % 256 != 0: row fallback


HIDDEN, FF, VOCAB, LAYERS = 256, 512, 320, 2


def _quant(rows: int, cols: int, qtype: Q) -> np.ndarray:
    block_values, block_bytes = gguf.constants.GGML_QUANT_SIZES[qtype]
    return np.zeros((rows, cols // block_values * block_bytes), np.uint8)


def _write(path: Path) -> int:
    """A small llama GGUF with the Q4_K_M pattern and F32 norms; returns the sum of tensor bytes."""
    w = GGUFWriter(str(path), "llama")
    w.add_block_count(LAYERS)
    w.add_context_length(8192)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FF)
    w.add_head_count(8)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(500000.0)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_K_M)
    w.add_token_list([f"t{i}" for i in range(VOCAB)])
    total = 0

    def add(name: str, arr: np.ndarray, qtype: Q | None = None) -> None:
        nonlocal total
        w.add_tensor(name, arr, raw_dtype=qtype) if qtype else w.add_tensor(name, arr)
        total += arr.nbytes

    add("token_embd.weight", _quant(VOCAB, HIDDEN, Q.Q4_K), Q.Q4_K)
    for i in range(LAYERS):
        more = Q.Q6_K if i == 0 else Q.Q4_K
        add(f"blk.{i}.attn_norm.weight", np.zeros(HIDDEN, np.float32))
        add(f"blk.{i}.attn_q.weight", _quant(HIDDEN, HIDDEN, Q.Q4_K), Q.Q4_K)
        add(f"blk.{i}.attn_k.weight", _quant(64, HIDDEN, Q.Q4_K), Q.Q4_K)
        add(f"blk.{i}.attn_v.weight", _quant(64, HIDDEN, more), more)
        add(f"blk.{i}.attn_output.weight", _quant(HIDDEN, HIDDEN, Q.Q4_K), Q.Q4_K)
        add(f"blk.{i}.ffn_gate.weight", _quant(FF, HIDDEN, Q.Q4_K), Q.Q4_K)
        add(f"blk.{i}.ffn_up.weight", _quant(FF, HIDDEN, Q.Q4_K), Q.Q4_K)
        add(f"blk.{i}.ffn_down.weight", _quant(HIDDEN, FF, more), more)
        add(f"blk.{i}.ffn_norm.weight", np.zeros(HIDDEN, np.float32))
    add("output_norm.weight", np.zeros(HIDDEN, np.float32))
    add("output.weight", _quant(VOCAB, HIDDEN, Q.Q6_K), Q.Q6_K)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return total


def test_gguf_file_estimate_uses_its_own_types(tmp_path: Path) -> None:
    path = tmp_path / "tiny-Q4_K_M.gguf"
    total = _write(path)
    assert read_gguf(path).total_bytes == total
    b = estimate(str(path))
    assert b.precision == "gguf:Q4_K_M"  # not bf16
    assert b.component("weights").total_bytes == total  # every tensor, at the file's own type
    assert b.kv_cache_dtype == "float16"  # llama.cpp's default cache type
    # asking for another format replaces the file's types
    assert estimate(str(path), quantization="Q8_0").precision == "gguf:Q8_0"
