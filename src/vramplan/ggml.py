"""ggml tensor types: block sizes, llama.cpp's quantization recipes, and per-tensor type layouts.

One table of block layouts (``GGML_BLOCKS``, from ggml-common.h; tests/model/test_files.py checks it
against the ``gguf`` package) serves the GGUF reader, the precision schemes and the llama.cpp model.

A GGUF *file type* such as Q4_K_M is a recipe, not one type: llama.cpp's ``llama_tensor_get_type``
(src/llama-quant.cpp) gives ``attn_v`` and ``ffn_down`` of some layers more bits, the output matrix
Q6_K, norms and routers F32. :func:`recipe_layout` follows it for a model spec; :func:`file_layout`
reads the types a .gguf file really holds. Either becomes a :class:`GGMLLayout`, which gives the exact
bytes of every tensor (TP shard shapes included) to ``memory.weights``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from vramplan.errors import UnknownDtypeError

QK_K = 256
#: Bytes per block and values per block of every ggml tensor type (ggml-common.h block structs).
GGML_BLOCKS: Mapping[str, tuple[int, int]] = {
    "F32": (4, 1),
    "F16": (2, 1),
    "BF16": (2, 1),
    "F64": (8, 1),
    "I8": (1, 1),
    "I16": (2, 1),
    "I32": (4, 1),
    "I64": (8, 1),
    "Q4_0": (2 + 16, 32),  # fp16 scale + 32 nibbles
    "Q4_1": (2 + 2 + 16, 32),  # fp16 scale, fp16 min
    "Q5_0": (2 + 4 + 16, 32),  # + 32 high bits
    "Q5_1": (2 + 2 + 4 + 16, 32),
    "Q8_0": (2 + 32, 32),
    "Q8_1": (4 + 4 + 32, 32),  # fp32 scale and sum
    "Q2_K": (2 + 2 + QK_K // 16 + QK_K // 4, QK_K),  # 84
    "Q3_K": (2 + QK_K // 4 + QK_K // 8 + 12, QK_K),  # 110
    "Q4_K": (2 + 2 + 12 + QK_K // 2, QK_K),  # 144
    "Q5_K": (2 + 2 + 12 + QK_K // 8 + QK_K // 2, QK_K),  # 176
    "Q6_K": (2 + QK_K // 2 + QK_K // 4 + QK_K // 16, QK_K),  # 210
    "Q8_K": (4 + QK_K + 2 * QK_K // 16, QK_K),  # 292
    "IQ2_XXS": (2 + QK_K // 4, QK_K),  # 66
    "IQ2_XS": (2 + QK_K // 4 + QK_K // 32, QK_K),  # 74
    "IQ2_S": (2 + QK_K // 4 + QK_K // 16, QK_K),  # 82
    "IQ3_XXS": (2 + QK_K // 4 + QK_K // 8, QK_K),  # 98
    "IQ3_S": (2 + QK_K // 4 + QK_K // 8 + QK_K // 32 + 4, QK_K),  # 110
    "IQ1_S": (2 + QK_K // 8 + QK_K // 16, QK_K),  # 50
    "IQ1_M": (QK_K // 8 + QK_K // 16 + QK_K // 32, QK_K),  # 56
    "IQ4_NL": (2 + 16, 32),
    "IQ4_XS": (2 + 2 + QK_K // 2 + QK_K // 64, QK_K),  # 136
    "TQ1_0": (2 + 4 * 13, QK_K),  # 54
    "TQ2_0": (2 + QK_K // 4, QK_K),  # 66
    "MXFP4": (1 + 16, 32),  # e8m0 scale + 32 fp4
    "NVFP4": (4 + 32, 64),  # four fp8 sub-block scales + 64 fp4
    "Q1_0": (2 + 16, 128),
}
#: Types that hold integers or auxiliary data, never model weights chosen with ``-q``.
NON_WEIGHT_TYPES = frozenset({"F64", "I8", "I16", "I32", "I64", "Q8_1", "Q8_K"})

# llama.cpp's quantizer cannot use a 256-value K/IQ block on rows that are not a multiple of 256; it
# falls back per tensor (llama-quant.cpp, "tensor cols ... are not divisible by 256, required for ..."):
_ROW_FALLBACK = {
    "Q2_K": "Q4_0",
    "Q3_K": "Q4_0",
    "IQ1_S": "Q4_0",
    "IQ1_M": "Q4_0",
    "IQ2_XXS": "Q4_0",
    "IQ2_XS": "Q4_0",
    "IQ2_S": "Q4_0",
    "IQ3_XXS": "Q4_0",
    "IQ3_S": "Q4_0",
    "IQ4_XS": "IQ4_NL",
    "TQ1_0": "Q4_0",
    "TQ2_0": "Q4_0",
    "Q4_K": "Q5_0",
    "Q5_K": "Q5_1",
    "Q6_K": "Q8_0",
}


def block(type_name: str) -> tuple[int, int]:
    """(bytes, values) of one block of a ggml type; unknown names are refused with the list."""
    try:
        return GGML_BLOCKS[type_name.upper()]
    except KeyError:
        raise UnknownDtypeError(
            f"unknown ggml type {type_name!r}: use one of {', '.join(GGML_BLOCKS)}"
        ) from None


def type_for_row(type_name: str, k: int) -> str:
    """The ggml type llama.cpp actually stores a row of ``k`` values in (fallbacks for odd widths)."""
    if k % block(type_name)[1] == 0:
        return type_name
    fallback = _ROW_FALLBACK.get(type_name)
    if fallback and k % GGML_BLOCKS[fallback][1] == 0:
        return fallback
    return "F16"


def row_bytes(type_name: str, k: int) -> int:
    """Bytes of one row of ``k`` values stored as ``type_name`` (after llama.cpp's row fallback)."""
    nbytes, values = GGML_BLOCKS[type_for_row(type_name.upper(), k)]
    return -(-k // values) * nbytes


def tensor_bytes(type_name: str, shape: tuple[int, ...]) -> int:
    """Bytes of a tensor of ``shape`` (rows..., k): whole blocks along the last axis."""
    rows = 1
    for d in shape[:-1]:
        rows *= d
    return rows * row_bytes(type_name, shape[-1]) if shape else 0


# ------------------------------------------------------------------------------------------ recipes
#: llama.cpp file types (``llama-quantize`` names) -> the default type of their tensors.
FILE_TYPE_BASE: Mapping[str, str] = {
    "Q4_0": "Q4_0",
    "Q4_1": "Q4_1",
    "Q5_0": "Q5_0",
    "Q5_1": "Q5_1",
    "Q8_0": "Q8_0",
    "Q2_K": "Q2_K",
    "Q2_K_S": "Q2_K",
    "Q3_K_S": "Q3_K",
    "Q3_K_M": "Q3_K",
    "Q3_K_L": "Q3_K",
    "Q4_K_S": "Q4_K",
    "Q4_K_M": "Q4_K",
    "Q5_K_S": "Q5_K",
    "Q5_K_M": "Q5_K",
    "Q6_K": "Q6_K",
    "F16": "F16",
    "BF16": "BF16",
    "F32": "F32",
}
_UNQUANTIZED = ("F16", "BF16", "F32")
#: Architectures whose attention is one fused ``attn_qkv`` tensor in GGUF (llama.cpp tensor maps).
FUSED_QKV = frozenset({"phi", "phi3", "gpt2", "bloom", "falcon", "gpt_neox", "mpt"})


def use_more_bits(i: int, n: int) -> bool:
    """llama-quant.cpp: the layers that get the higher type in the *_M mixes."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


@dataclass(frozen=True)
class ModelFacts:
    """What llama_tensor_get_type looks at besides the tensor name."""

    arch: str
    n_layer: int
    n_gqa: int
    n_expert: int
    is_70b: bool
    tied: bool


def recipe_type(file_type: str, category: str, layer: int, facts: ModelFacts, k: int) -> str:
    """The ggml type llama.cpp's ``llama_tensor_get_type`` gives one tensor (K-quant and legacy mixes).

    ``category`` is the GGUF tensor kind (``attn_v``, ``ffn_down_exps``, ``output``...), ``layer`` its
    block index, ``k`` its row length. Follows src/llama-quant.cpp (2024-2025 releases); the IQ mixes,
    which need an importance matrix, are not modelled.
    """
    ft = file_type.upper()
    base = FILE_TYPE_BASE[ft]
    if base in _UNQUANTIZED:
        return base
    falcon = facts.arch == "falcon"
    t = base
    if category == "output" or (category == "token_embd" and facts.tied):
        if falcon or k % block(base)[1]:
            return "Q8_0"
        return base if base == "Q8_0" else "Q6_K"
    if category == "attn_v":
        if ft == "Q2_K":
            t = "Q4_K" if facts.n_gqa >= 4 else "Q3_K"
        elif ft == "Q2_K_S" and facts.n_gqa >= 4:
            t = "Q4_K"
        elif ft == "Q3_K_M":
            t = "Q5_K" if layer < 2 else "Q4_K"
        elif ft == "Q3_K_L":
            t = "Q5_K"
        elif ft in ("Q4_K_M", "Q5_K_M") and use_more_bits(layer, facts.n_layer):
            t = "Q6_K"
        elif ft == "Q4_K_S" and layer < 4:
            t = "Q5_K"
        if facts.is_70b and t in ("Q3_K", "Q4_K"):
            t = "Q5_K"
        if facts.n_expert == 8:
            t = "Q8_0"
    elif category == "attn_k":
        if facts.n_expert == 8:
            t = "Q8_0"
    elif category.startswith("ffn_down"):
        i, n = layer, facts.n_layer
        if ft == "Q2_K":
            t = "Q3_K"
        elif ft == "Q2_K_S":
            t = "Q4_K" if i < n // 8 else t
        elif ft == "Q3_K_M":
            t = "Q5_K" if i < n // 16 else ("Q4_K" if not falcon or use_more_bits(i, n) else "Q3_K")
        elif ft == "Q3_K_L":
            t = "Q4_K" if falcon else "Q5_K"
        elif ft == "Q4_K_M":
            if falcon:
                t = "Q6_K" if i < n // 16 else ("Q5_K" if use_more_bits(i, n) else "Q4_K")
            elif use_more_bits(i, n):
                t = "Q6_K"
        elif ft == "Q5_K_M" and use_more_bits(i, n):
            t = "Q6_K"
        elif ft == "Q4_K_S" and not falcon and i < n // 8:
            t = "Q5_K"
    elif category == "attn_output":
        if not falcon:
            if facts.n_expert == 8:
                if ft in ("Q2_K", "Q3_K_S", "Q3_K_M", "Q4_K_S", "Q4_K_M"):
                    t = "Q5_K"
            elif ft == "Q2_K":
                t = "Q3_K"
            elif ft == "Q3_K_M":
                t = "Q4_K"
            elif ft == "Q3_K_L":
                t = "Q5_K"
        elif ft == "Q3_K_L":
            t = "Q4_K"
    elif category == "attn_qkv":
        if ft in ("Q3_K_M", "Q3_K_L"):
            t = "Q4_K"
        elif ft == "Q4_K_M":
            t = "Q5_K"
        elif ft == "Q5_K_M":
            t = "Q6_K"
    return type_for_row(t, k)


# ------------------------------------------------------------------------------------------ layouts
_NOT_QUANTIZED = ("norm", "bias", "router", "buffer")


def category(name: str, role: str, arch: str) -> str | None:
    """The GGUF tensor kind of an inventory tensor (None: kept F32, as llama.cpp keeps 1-D tensors)."""
    if role in _NOT_QUANTIZED:
        return None
    if role == "embedding":
        return "token_embd"
    if role == "lm_head":
        return "output"
    if role == "position_embedding":
        return "position_embd"
    suffix = "_exps" if ".experts." in name else "_shexp" if "shared" in name else ""
    leaf = name.rsplit(".", 2)[-2] if name.count(".") >= 1 else name
    if leaf in ("q_proj", "k_proj", "v_proj") and arch in FUSED_QKV:
        return "attn_qkv"
    kinds = {
        "q_proj": "attn_q",
        "k_proj": "attn_k",
        "v_proj": "attn_v",
        "o_proj": "attn_output",
        "gate_proj": "ffn_gate",
        "up_proj": "ffn_up",
        "fc1": "ffn_up",
        "down_proj": "ffn_down",
    }
    kind = kinds.get(leaf)
    return kind + suffix if kind else f"other:{name}"


@dataclass(frozen=True)
class GGMLLayout:
    """The ggml type of each tensor kind, per layer (one entry for tensors outside the layers)."""

    label: str
    #: kind -> types by layer (length n_layer) or a single type.
    types: tuple[tuple[str, tuple[str, ...]], ...]
    default: str
    arch: str
    #: For a layout read from a file: its path (so two files never share a cache entry).
    origin: str = ""

    def type_of(self, kind: str, layer: int) -> str:
        for k, types in self.types:
            if k == kind:
                return types[layer] if len(types) > 1 else types[0]
        return self.default

    def group_bytes(
        self, name: str, role: str, shape: tuple[int, ...], count: int, n_layer: int, layered: bool
    ) -> int:
        """Bytes of ``count`` tensors of ``shape`` spread evenly over the layers (or outside them)."""
        kind = category(name, role, self.arch)
        if kind is None or len(shape) < 2:
            return 4 * count * _numel(shape)  # F32, as llama.cpp stores norms, biases and routers
        if not layered:
            return count * tensor_bytes(self.type_of(kind, 0), shape)
        per_layer, extra = divmod(count, n_layer)
        if extra:  # not a per-layer group: charge the dominant type
            return count * tensor_bytes(self.type_of(kind, 0), shape)
        return sum(per_layer * tensor_bytes(self.type_of(kind, i), shape) for i in range(n_layer))


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


_RECIPE_KINDS = (
    "token_embd",
    "output",
    "attn_v",
    "attn_k",
    "attn_output",
    "attn_qkv",
    "ffn_down",
    "ffn_down_exps",
    "ffn_down_shexp",
)


def recipe_layout(file_type: str, facts: ModelFacts, row_lengths: Mapping[str, int]) -> GGMLLayout:
    """llama.cpp's recipe for ``file_type`` on a model; ``row_lengths`` gives k per tensor kind."""
    ft = file_type.upper()
    if ft not in FILE_TYPE_BASE:
        raise UnknownDtypeError(
            f"no llama.cpp recipe for {file_type!r}: use one of {', '.join(FILE_TYPE_BASE)}"
        )
    base = FILE_TYPE_BASE[ft]
    types = []
    for kind in sorted(set(row_lengths) | set(_RECIPE_KINDS)):
        k = row_lengths.get(kind, QK_K)
        if kind in ("token_embd", "output", "position_embd") or kind.startswith("other:"):
            per: tuple[str, ...] = (recipe_type(ft, kind, 0, facts, k),)
        else:
            per = tuple(recipe_type(ft, kind, i, facts, k) for i in range(facts.n_layer))
            if len(set(per)) == 1:
                per = per[:1]
        types.append((kind, per))
    return GGMLLayout(f"gguf:{ft}", tuple(types), base, facts.arch)


def file_layout(
    tensors: Iterable[tuple[str, str]], n_layer: int, arch: str, label: str, origin: str
) -> GGMLLayout:
    """The types a GGUF file holds, from (tensor name, ggml type) pairs (``blk.N.kind.weight``)."""
    by_kind: dict[str, list[str]] = {}
    for name, type_name in tensors:
        parts = name.split(".")
        if parts[0] == "blk" and len(parts) >= 4 and parts[1].isdigit() and parts[-1] == "weight":
            kind, layer = ".".join(parts[2:-1]), int(parts[1])
        elif len(parts) == 2 and parts[1] == "weight":
            kind, layer = parts[0], 0
        else:
            continue
        if type_name in ("F32",) and kind.endswith("norm"):
            continue
        slots = by_kind.setdefault(kind, [""] * max(n_layer, 1))
        if layer < len(slots):
            slots[layer] = type_name
    types = []
    for kind, slots in sorted(by_kind.items()):
        filled = [s for s in slots if s]
        per = tuple(s or filled[0] for s in slots)
        types.append((kind, per[:1] if len(set(per)) == 1 else per))
    counts: dict[str, int] = {}
    for _, per in types:
        for t in per:
            counts[t] = counts.get(t, 0) + 1
    default = max(counts, key=lambda t: counts[t]) if counts else "F16"
    return GGMLLayout(label, tuple(types), default, arch, origin)
