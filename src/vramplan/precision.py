"""Dtypes and quantization schemes: exact stored bytes of each tensor, including scales and zeros.

A scheme says which tensor roles it quantizes (linear layers, experts) and how many bytes a quantized
Linear(in=K, out=N) occupies, from the layouts the engines load (vLLM ``quantization/*.py``, bitsandbytes,
ggml ``ggml-common.h``). Everything else (embeddings, lm_head, norms, routers, biases) stays in the
compute dtype unless the scheme says otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from vramplan import ggml
from vramplan.cached_hash import cached_hash, state_without_hash
from vramplan.errors import UnknownDtypeError

# ---------------------------------------------------------------------------------------------- dtypes
DTYPE_BYTES: dict[str, Fraction] = {
    "float32": Fraction(4),
    "float16": Fraction(2),
    "bfloat16": Fraction(2),
    "float8_e4m3": Fraction(1),
    "float8_e5m2": Fraction(1),
    "int8": Fraction(1),
    "int4": Fraction(1, 2),
}
DTYPE_ALIASES = {
    "fp32": "float32",
    "float": "float32",
    "float32": "float32",
    "f32": "float32",
    "fp16": "float16",
    "half": "float16",
    "float16": "float16",
    "f16": "float16",
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp8": "float8_e4m3",
    "fp8_e4m3": "float8_e4m3",
    "float8_e4m3fn": "float8_e4m3",
    "e4m3": "float8_e4m3",
    "float8_e4m3": "float8_e4m3",
    "fp8_e5m2": "float8_e5m2",
    "float8_e5m2": "float8_e5m2",
    "e5m2": "float8_e5m2",
    "int8": "int8",
    "int4": "int4",
}

# KV-cache element sizes (bytes per element; llama.cpp's quantized caches by block layout).
KV_DTYPE_BYTES: dict[str, Fraction] = {
    "float32": Fraction(4),
    "float16": Fraction(2),
    "bfloat16": Fraction(2),
    "float8_e4m3": Fraction(1),
    "float8_e5m2": Fraction(1),
    "q8_0": Fraction(34, 32),
    "q4_0": Fraction(18, 32),
    "q4_1": Fraction(20, 32),
    "q5_0": Fraction(22, 32),
    "q5_1": Fraction(24, 32),
    "iq4_nl": Fraction(18, 32),
}


def canonical_dtype(name: str) -> str:
    """'bf16' -> 'bfloat16'; unknown names raise with the list of known ones."""
    key = str(name).strip().lower().replace("torch.", "")
    if key in DTYPE_ALIASES:
        return DTYPE_ALIASES[key]
    raise UnknownDtypeError(
        f"unknown dtype {name!r}: use one of fp32, fp16, bf16, fp8 (e4m3), fp8_e5m2, int8, int4"
    )


def kv_element_bytes(kv_dtype: str | None, compute_dtype: str) -> tuple[str, Fraction]:
    """Resolve a KV-cache dtype ('auto' = the model's compute dtype) to its name and element bytes."""
    if kv_dtype is None or str(kv_dtype).lower() == "auto":
        return compute_dtype, DTYPE_BYTES[compute_dtype]
    key = str(kv_dtype).strip().lower()
    if key in KV_DTYPE_BYTES:
        return key, KV_DTYPE_BYTES[key]
    if key in DTYPE_ALIASES and DTYPE_ALIASES[key] in KV_DTYPE_BYTES:
        name = DTYPE_ALIASES[key]
        return name, KV_DTYPE_BYTES[name]
    raise UnknownDtypeError(
        f"unknown KV-cache dtype {kv_dtype!r}: use auto, fp16, bf16, fp8 (fp8_e4m3), fp8_e5m2, "
        "or a llama.cpp cache type (q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl)"
    )


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


# ---------------------------------------------------------------------------------- linear layouts
LinearBytes = Callable[[int, int], int]  # (out N, in K) -> bytes


def gptq_bytes(bits: int, group: int) -> LinearBytes:
    """GPTQ: qweight int32 [K/pack, N], qzeros int32 [K/g, N/pack], scales fp16 [K/g, N], g_idx int32 [K]."""
    pack = 32 // bits

    def f(n: int, k: int) -> int:
        g = k if group <= 0 else group
        groups = _ceil(k, g)
        return 4 * _ceil(k, pack) * n + 4 * groups * _ceil(n, pack) + 2 * groups * n + 4 * k

    return f


def awq_bytes(bits: int, group: int) -> LinearBytes:
    """AWQ: qweight int32 [K, N/8], qzeros int32 [K/g, N/8], scales fp16 [K/g, N]."""
    pack = 32 // bits

    def f(n: int, k: int) -> int:
        g = k if group <= 0 else group
        groups = _ceil(k, g)
        return 4 * k * _ceil(n, pack) + 4 * groups * _ceil(n, pack) + 2 * groups * n

    return f


def packed_group_bytes(
    bits: int, group: int, scale_bytes: int = 2, zero_point: bool = False
) -> LinearBytes:
    """compressed-tensors pack-quantized (w4a16/w8a16): int32-packed weight, scales [N, K/g], shape int64[2]."""
    pack = 32 // bits

    def f(n: int, k: int) -> int:
        g = k if group <= 0 else group
        groups = _ceil(k, g)
        zeros = 4 * _ceil(n, pack) * groups if zero_point else 0
        return 4 * n * _ceil(k, pack) + scale_bytes * n * groups + 16 + zeros

    return f


def fp8_bytes(
    strategy: str,
    block: tuple[int, int] = (128, 128),
    scale_bytes: int = 4,
    static_input: bool = False,
) -> LinearBytes:
    """FP8 weights (1 B) plus fp32 scales per tensor, per output channel, or per [bn, bk] block."""

    def f(n: int, k: int) -> int:
        if strategy == "block":
            scales = scale_bytes * _ceil(n, block[0]) * _ceil(k, block[1])
        elif strategy == "channel":
            scales = scale_bytes * n
        else:
            scales = scale_bytes
        return n * k + scales + (4 if static_input else 0)

    return f


def int8_channel_bytes(scale_bytes: int = 4) -> LinearBytes:
    """int8 weights with one scale per output row (LLM.int8 SCB, W8A8 channel-wise)."""
    return lambda n, k: n * k + scale_bytes * n


def nf4_bytes(double_quant: bool = True, block: int = 64) -> LinearBytes:
    """bitsandbytes 4-bit: 2 weights per byte + absmax per 64 (fp32, or uint8 + fp32 per 256 blocks)."""

    def f(n: int, k: int) -> int:
        numel = n * k
        blocks = _ceil(numel, block)
        if double_quant:
            # uint8 absmax per block, fp32 absmax per 256 blocks, fp32 offset, 256-entry fp32 code table
            return _ceil(numel, 2) + blocks + 4 * _ceil(blocks, 256) + 4 + 4 * 256
        return _ceil(numel, 2) + 4 * blocks

    return f


def mxfp4_bytes() -> LinearBytes:
    """OCP MXFP4 (gpt-oss): 16 B of nibbles + one E8M0 scale byte per 32 values."""
    return lambda n, k: n * _ceil(k, 32) * 17


#: NVFP4 block: 16 e2m1 values share one fp8 e4m3 scale (vLLM ``modelopt.py`` default group_size 16).
NVFP4_GROUP = 16


def nvfp4_bytes(group: int = NVFP4_GROUP) -> LinearBytes:
    """NVFP4 (ModelOpt, compressed-tensors nvfp4-pack-quantized): uint8 [N, K/2] (two e2m1 per byte), fp8
    e4m3 block scales [N, K/16], one fp32 global scale (weight_scale_2) and one fp32 input scale per tensor:
    4.5 bits per weight + 8 B (hybrid-memory.md §4; vLLM ``modelopt.py`` ModelOptNvFp4LinearMethod)."""
    return lambda n, k: n * _ceil(k, 2) + n * _ceil(k, group) + 4 + 4


def ggml_bytes(type_name: str) -> LinearBytes:
    """One ggml type for every quantized linear (``-q Q8_0`` style; mixes use a GGMLLayout)."""
    return lambda n, k: n * ggml.row_bytes(type_name, k)


def plain_bits(bits: float) -> LinearBytes:
    """Idealised b-bit weights with no scales (the rule of thumb's view)."""
    return lambda n, k: int(_ceil(int(n * k * bits), 8))


# ------------------------------------------------------------------------------------------ schemes
@dataclass(frozen=True)
class QuantScheme:
    """A weight-quantization scheme: how a quantized linear is stored and which roles it touches."""

    name: str
    linear_bytes: LinearBytes = field(compare=False, hash=False)
    bits: float
    roles: frozenset[str] = frozenset({"linear", "expert"})
    description: str = ""
    #: Module-name fragments the checkpoint leaves unquantized (e.g. "self_attn", "router").
    ignore: tuple[str, ...] = ()
    #: Quantized after loading in 16 bit (vLLM `--quantization fp8` on a bf16 checkpoint).
    online: bool = False
    #: Module-name fragments stored with another layout (AutoRound ``extra_config`` 8-bit layers).
    overrides: tuple[tuple[str, LinearBytes], ...] = field(default=(), compare=False, hash=False)

    def quantizes(self, role: str, name: str) -> bool:
        if role not in self.roles:
            return False
        return not any(
            re.search(fragment[3:], name) if fragment.startswith("re:") else fragment in name
            for fragment in self.ignore
        )

    def stored_bytes(self, name: str, n: int, k: int) -> int:
        """Bytes of a quantized Linear(out=n, in=k) named ``name`` (per-module overrides first)."""
        for fragment, layout in self.overrides:
            if fragment in name:
                return layout(n, k)
        return self.linear_bytes(n, k)


def _named(name: str) -> QuantScheme:
    """Schemes reachable by a short name (CLI ``--quantization``)."""
    key = name.strip().lower().replace("-", "_")
    table: dict[str, QuantScheme] = {
        "fp8": QuantScheme(
            "fp8",
            fp8_bytes("tensor"),
            8,
            description="FP8 e4m3 weights, one fp32 scale per tensor (vLLM --quantization fp8)",
        ),
        "w8a8": QuantScheme(
            "w8a8",
            fp8_bytes("channel", scale_bytes=2),
            8,
            description="W8A8 FP8/INT8, per-channel scales (compressed-tensors)",
        ),
        "fp8_block": QuantScheme(
            "fp8_block",
            fp8_bytes("block"),
            8,
            description="FP8 with fp32 scales per 128x128 block (DeepSeek-V3)",
        ),
        "w4a16": QuantScheme(
            "w4a16",
            packed_group_bytes(4, 128),
            4,
            description="4-bit weights, group 128, bf16 scales (compressed-tensors pack-quantized)",
        ),
        "w8a16": QuantScheme(
            "w8a16",
            packed_group_bytes(8, 128),
            8,
            description="8-bit weights, group 128 (compressed-tensors)",
        ),
        "awq": QuantScheme(
            "awq",
            awq_bytes(4, 128),
            4,
            description="AWQ 4-bit, group 128 (qweight, qzeros, fp16 scales)",
        ),
        "gptq": QuantScheme(
            "gptq",
            gptq_bytes(4, 128),
            4,
            description="GPTQ 4-bit, group 128 (qweight, qzeros, fp16 scales, g_idx)",
        ),
        "gptq_int8": QuantScheme(
            "gptq_int8", gptq_bytes(8, 128), 8, description="GPTQ 8-bit, group 128"
        ),
        "nf4": QuantScheme(
            "nf4",
            nf4_bytes(True),
            4.127,
            description="bitsandbytes NF4 with double quantization (QLoRA)",
        ),
        "bnb_4bit": QuantScheme(
            "bnb_4bit", nf4_bytes(False), 4.5, description="bitsandbytes 4-bit, fp32 absmax per 64"
        ),
        "bnb_8bit": QuantScheme(
            "bnb_8bit",
            int8_channel_bytes(4),
            8,
            description="bitsandbytes LLM.int8 (int8 + fp32 row scales)",
        ),
        "mxfp4": QuantScheme(
            "mxfp4",
            mxfp4_bytes(),
            4.25,
            roles=frozenset({"expert"}),
            description="MXFP4 on MoE experts (gpt-oss)",
        ),
        "nvfp4": QuantScheme(
            "nvfp4",
            nvfp4_bytes(),
            4.5,
            description="NVFP4: e2m1 weights, fp8 scale per 16, fp32 global scale (ModelOpt / compressed-tensors)",
        ),
        "autoround": QuantScheme(
            "autoround",
            gptq_bytes(4, 128),
            4,
            description="AutoRound int4, group 128, GPTQ-packed (qweight, qzeros, fp16 scales, g_idx)",
        ),
        "int8": QuantScheme(
            "int8", plain_bits(8), 8, description="idealised int8 weights, scales ignored"
        ),
        "int4": QuantScheme(
            "int4", plain_bits(4), 4, description="idealised int4 weights, scales ignored"
        ),
    }
    aliases = {
        "bitsandbytes": "nf4",
        "qlora": "nf4",
        "bnb_nf4": "nf4",
        "gptq_marlin": "gptq",
        "awq_marlin": "awq",
        "compressed_tensors": "w8a8",
        "fp8_dynamic": "fp8",
        "llm_int8": "bnb_8bit",
        "modelopt_fp4": "nvfp4",
        "modelopt": "nvfp4",
        "auto_round": "autoround",
    }
    key = aliases.get(key, key)
    if key in table:
        return table[key]
    upper = name.strip().upper()
    if upper in ggml.FILE_TYPE_BASE:
        raise UnknownDtypeError(
            f"{upper} is a llama.cpp file type, a recipe over the model's tensors: it needs the model "
            "(vramplan.estimate(model, quantization=...) or memory.weights.gguf_recipe)"
        )
    if upper in ggml.GGML_BLOCKS and upper not in ggml.NON_WEIGHT_TYPES:
        b, v = ggml.GGML_BLOCKS[upper]
        return QuantScheme(
            f"gguf:{upper}",
            ggml_bytes(upper),
            8 * b / v,
            description=f"GGUF {upper} blocks ({b} B per {v} weights) on every linear layer",
        )
    raise UnknownDtypeError(
        f"unknown quantization {name!r}: use fp8, w8a8, w4a16, awq, gptq, nf4, bnb-4bit, bnb-8bit, mxfp4, nvfp4, autoround, "
        "int8, int4, or a GGUF type such as Q4_K_M, Q8_0"
    )


def scheme_from_config(qc: Mapping[str, Any]) -> QuantScheme:
    """Read a checkpoint's ``quantization_config`` (GPTQ, AWQ, FP8, MXFP4, bitsandbytes, compressed-tensors)."""
    method = str(qc.get("quant_method", "")).lower()
    ignore = tuple(
        _fragments(
            qc.get("modules_to_not_convert") or qc.get("ignore") or qc.get("ignored_layers") or []
        )
    )
    if method in ("gptq", "gptq_marlin"):
        bits, group = int(qc.get("bits", 4)), int(qc.get("group_size", 128))
        s = QuantScheme(
            f"gptq-int{bits}-g{group}",
            gptq_bytes(bits, group),
            bits,
            description=f"GPTQ {bits}-bit, group {group} (from config)",
        )
        return _lm_head(s, qc)
    if method in ("awq", "awq_marlin"):
        bits, group = (
            int(qc.get("bits", qc.get("w_bit", 4))),
            int(qc.get("group_size", qc.get("q_group_size", 128))),
        )
        return QuantScheme(
            f"awq-int{bits}-g{group}",
            awq_bytes(bits, group),
            bits,
            description=f"AWQ {bits}-bit, group {group} (from config)",
        )
    if method == "fp8":
        block = qc.get("weight_block_size")
        # DeepSeek-V4 ships its routed experts in FP4 (e2m1, ue8m0 scale per 32) beside FP8-block weights.
        fp4_experts = (("mlp.experts.", mxfp4_bytes()),) if qc.get("expert_dtype") == "fp4" else ()
        if block:
            return QuantScheme(
                "fp8-block" + ("+fp4-experts" if fp4_experts else ""),
                fp8_bytes("block", (int(block[0]), int(block[1]))),
                8,
                ignore=ignore,
                overrides=fp4_experts,
                description=f"FP8 e4m3 with fp32 scales per {block[0]}x{block[1]} block"
                + ("; routed experts FP4 with a ue8m0 scale per 32" if fp4_experts else "")
                + " (from config)",
            )
        return QuantScheme(
            "fp8",
            fp8_bytes("tensor", static_input=qc.get("activation_scheme") == "static"),
            8,
            ignore=ignore,
            description="FP8 e4m3, per-tensor scale (from config)",
        )
    if method == "mxfp4":
        return QuantScheme(
            "mxfp4",
            mxfp4_bytes(),
            4.25,
            roles=frozenset({"expert"}),
            ignore=ignore,
            description="MXFP4 on MoE experts; attention, router, embeddings, lm_head in bf16 (from config)",
        )
    if method == "bitsandbytes":
        if qc.get("load_in_4bit") or qc.get("_load_in_4bit"):
            dq = bool(qc.get("bnb_4bit_use_double_quant", False))
            return QuantScheme(
                "nf4" if dq else "bnb-4bit",
                nf4_bytes(dq),
                4.127 if dq else 4.5,
                ignore=ignore,
                description=f"bitsandbytes 4-bit{' with double quantization' if dq else ''} (from config)",
            )
        return QuantScheme(
            "bnb-8bit",
            int8_channel_bytes(4),
            8,
            ignore=ignore,
            description="bitsandbytes LLM.int8 (from config)",
        )
    if method in ("compressed-tensors", "compressed_tensors"):
        return _compressed_tensors(qc, ignore)
    if method == "modelopt":
        return _modelopt(qc)
    if method in ("auto-round", "auto_round", "intel/auto-round"):
        return _auto_round(qc, ignore)
    raise UnknownDtypeError(
        f"quantization_config method {method!r} is not supported: pass --quantization with one of "
        "fp8, w8a8, w4a16, awq, gptq, nf4, mxfp4 to size it explicitly"
    )


def _compressed_tensors(qc: Mapping[str, Any], ignore: tuple[str, ...]) -> QuantScheme:
    groups = qc.get("config_groups") or {}
    weights: Mapping[str, Any] = {}
    for group in groups.values():
        if isinstance(group, Mapping) and group.get("weights"):
            weights = group["weights"]
            break
    bits = int(weights.get("num_bits", 8))
    kind = str(weights.get("type", "int"))
    strategy = str(weights.get("strategy", "tensor"))
    group_size = int(weights.get("group_size") or 0)
    if kind == "float" and bits == 4:
        if group_size == NVFP4_GROUP:
            return QuantScheme(
                "nvfp4",
                nvfp4_bytes(),
                4.5,
                ignore=ignore,
                description="compressed-tensors NVFP4 (fp8 scale per 16, fp32 global scale)",
            )
        if group_size == 32:
            return QuantScheme(
                "mxfp4",
                mxfp4_bytes(),
                4.25,
                ignore=ignore,
                description="compressed-tensors MXFP4 (e8m0 scale per 32)",
            )
    if kind == "float" and bits == 8:
        block = weights.get("block_structure")
        if strategy == "block" and block:
            return QuantScheme(
                "fp8-block",
                fp8_bytes("block", (int(block[0]), int(block[1]))),
                8,
                ignore=ignore,
                description="compressed-tensors FP8, block scales",
            )
        # compressed-tensors stores FP8 scales in fp32 for per-tensor and bf16 for per-channel.
        scale = 4 if strategy == "tensor" else 2
        return QuantScheme(
            f"fp8-{strategy}",
            fp8_bytes(strategy, scale_bytes=scale),
            8,
            ignore=ignore,
            description=f"compressed-tensors FP8 W8A8, {strategy} scales",
        )
    if strategy == "group" and bits in (4, 8):
        sym = bool(weights.get("symmetric", True))
        return QuantScheme(
            f"w{bits}a16-g{group_size}",
            packed_group_bytes(bits, group_size, 2, not sym),
            bits,
            ignore=ignore,
            description=f"compressed-tensors W{bits}A16 pack-quantized, group {group_size}",
        )
    if kind == "int" and bits == 8:
        return QuantScheme(
            "int8-w8a8",
            int8_channel_bytes(2 if strategy == "channel" else 4),
            8,
            ignore=ignore,
            description=f"compressed-tensors INT8 W8A8, {strategy} scales",
        )
    return QuantScheme(
        f"ct-{kind}{bits}",
        plain_bits(bits),
        bits,
        ignore=ignore,
        description=f"compressed-tensors {kind}{bits} {strategy}: scales not modelled",
    )


def _fragments(entries: Any) -> list[str]:
    """'model.layers.*.self_attn' -> 'self_attn'; 're:.*lm_head' -> 'lm_head'. A bare layer index
    ('model.layers.61*', an MTP layer outside the model class) names no tensor kind and is dropped."""
    out = []
    for entry in entries if isinstance(entries, (list, tuple)) else []:
        if _is_regex(str(entry)):
            out.append(str(entry))  # kept as a regex, searched in tensor names (quantizes())
            continue
        text = str(entry).removeprefix("re:").replace(".*", "").replace("*", "")
        fragment = text.strip(".").split(".")[-1] or text
        if fragment and not fragment.isdigit() and fragment not in out:
            out.append(fragment)
    return out


def _is_regex(entry: str) -> bool:
    """A compressed-tensors 're:' pattern with more than '.*' wildcards (alternations, escapes, classes)."""
    if not entry.startswith("re:"):
        return False
    try:
        re.compile(entry[3:])
    except re.error:
        return False
    return any(c in entry[3:].replace(".*", "") for c in "\\|()[]+?")


def _modelopt(qc: Mapping[str, Any]) -> QuantScheme:
    """NVIDIA ModelOpt exports: ``quantization_config`` with quant_method "modelopt" in config.json, or the
    ``quantization`` block of ``hf_quant_config.json``. NVFP4 / FP8 on every Linear but ``exclude_modules`` /
    ``ignore``; MIXED_PRECISION lists the quantized modules (DeepSeek-V4: NVFP4 experts only)."""
    ignore = tuple(_fragments(qc.get("exclude_modules") or qc.get("ignore") or []))
    algo = str(qc.get("quant_algo") or "").upper()
    group = int(qc.get("group_size") or NVFP4_GROUP)
    if algo == "MIXED_PRECISION":
        layers = qc.get("quantized_layers") or {}
        algos = {
            str(v.get("quant_algo", "")).upper() for v in layers.values() if isinstance(v, Mapping)
        }
        if algos == {"NVFP4"}:
            experts_only = all("experts" in str(k) for k in layers)
            return QuantScheme(
                "nvfp4-experts" if experts_only else "nvfp4",
                nvfp4_bytes(group),
                4.5,
                roles=frozenset({"expert"}) if experts_only else frozenset({"linear", "expert"}),
                ignore=ignore,
                description="ModelOpt NVFP4 on "
                + ("MoE experts; the rest 16-bit" if experts_only else "the listed layers")
                + " (from hf_quant_config)",
            )
        raise UnknownDtypeError(
            f"ModelOpt MIXED_PRECISION with {sorted(algos)} is not supported: pass --quantization to size it"
        )
    if algo == "NVFP4":
        return QuantScheme(
            "nvfp4",
            nvfp4_bytes(group),
            4.5,
            ignore=ignore,
            description=f"ModelOpt NVFP4, fp8 scale per {group}; {len(ignore)} module kinds left 16-bit (from config)",
        )
    if algo == "FP8":
        return QuantScheme(
            "fp8",
            fp8_bytes("tensor", static_input=True),
            8,
            ignore=ignore,
            description="ModelOpt FP8, per-tensor weight and input scales (from config)",
        )
    raise UnknownDtypeError(
        f"ModelOpt quant_algo {algo or None!r} is not supported: pass --quantization (nvfp4, fp8) to size it"
    )


def _module_suffix(module: Any) -> list[str]:
    """'model.layers.0.mlp.shared_expert.down_proj' -> ['shared_expert.down_proj.']: the module kind, without
    its layer index, ending at a name boundary (so 'mlp.gate.' never matches 'mlp.gate_proj')."""
    parts = [
        p
        for p in str(module).removeprefix("re:").replace("*", "").split(".")
        if p and not p.isdigit()
    ]
    return [".".join(parts[-2:]) + "."] if parts else []


def _auto_round(qc: Mapping[str, Any], ignore: tuple[str, ...]) -> QuantScheme:
    """Intel AutoRound: GPTQ-packed by default (``packing_format`` auto_round:auto_gptq), AWQ-packed with
    auto_awq; ``extra_config`` keeps named layers at other widths (16 bit: left unquantized; 8 bit: GPTQ int8)
    -- the "int4 mixed" exports."""
    bits, group = int(qc.get("bits", 4)), int(qc.get("group_size", 128))
    packing = str(qc.get("packing_format") or qc.get("backend") or "auto_gptq").lower()
    layout = awq_bytes(bits, group) if "awq" in packing else gptq_bytes(bits, group)
    skip, overrides = list(ignore), []
    extra = qc.get("extra_config") or {}
    for module, settings in extra.items() if isinstance(extra, Mapping) else []:
        if not isinstance(settings, Mapping):
            continue
        for fragment in _module_suffix(module):
            width = int(settings.get("bits", bits))
            if width >= 16:
                skip.append(fragment)
            elif width != bits:
                overrides.append(
                    (fragment, gptq_bytes(width, int(settings.get("group_size", group))))
                )
    return _lm_head(
        QuantScheme(
            f"autoround-int{bits}-g{group}",
            layout,
            bits,
            ignore=tuple(dict.fromkeys(skip)),
            overrides=tuple(overrides),
            description=f"AutoRound int{bits}, group {group}, {'AWQ' if 'awq' in packing else 'GPTQ'}-packed"
            + (f"; {len(overrides)} module kinds at other widths" if overrides else "")
            + " (from config)",
        ),
        qc,
    )


def _lm_head(scheme: QuantScheme, qc: Mapping[str, Any]) -> QuantScheme:
    if qc.get("lm_head") or qc.get("lm_head_quantized"):
        return replace(scheme, roles=scheme.roles | {"lm_head"})
    return scheme


# --------------------------------------------------------------------------------------- precision
@dataclass(frozen=True)
class Precision:
    """How weights are stored: a compute dtype for unquantized tensors and an optional scheme."""

    compute_dtype: str
    scheme: QuantScheme | None = None
    notes: tuple[str, ...] = ()
    #: Per-tensor ggml types (a llama.cpp recipe or a .gguf file's own); replaces ``scheme``.
    layout: ggml.GGMLLayout | None = None

    __hash__ = cached_hash
    __getstate__ = state_without_hash

    @property
    def label(self) -> str:
        if self.layout is not None:
            return self.layout.label
        return self.scheme.name if self.scheme else self.compute_dtype

    def group_bytes(
        self, role: str, name: str, shape: tuple[int, ...], count: int, n_layer: int, layered: bool
    ) -> int:
        """Bytes of ``count`` tensors of ``shape`` (``layered``: spread evenly over ``n_layer`` layers)."""
        if self.layout is not None:
            return self.layout.group_bytes(name, role, shape, count, n_layer, layered)
        return self.tensor_bytes(role, name, shape) * count

    def tensor_bytes(self, role: str, name: str, shape: tuple[int, ...]) -> int:
        """Bytes one tensor of ``shape`` occupies under this precision."""
        if role == "buffer":
            return 4 * _numel(shape)  # fp32 buffers (e.g. DeepSeek-V3 router correction bias)
        if self.scheme is not None and len(shape) == 2 and self.scheme.quantizes(role, name):
            return self.scheme.stored_bytes(name, shape[0], shape[1])
        return int(_numel(shape) * DTYPE_BYTES[self.compute_dtype])


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def resolve_precision(
    config_dtype: str,
    quantization_config: Mapping[str, Any] | None,
    dtype: str | None = None,
    quantization: str | None = None,
) -> Precision:
    """Flags override the config; with none, the config's torch_dtype and quantization_config decide.

    Serving engines run float32 checkpoints in bfloat16 ('auto' dtype in vLLM and SGLang); we do too and
    say so.
    """
    notes: list[str] = []
    if dtype and dtype.lower() != "auto":
        compute = canonical_dtype(dtype)
        if compute in ("int8", "int4", "float8_e4m3", "float8_e5m2"):
            # "--dtype int4" means quantized weights with 16-bit everything else.
            return Precision(
                "bfloat16",
                _named({"int8": "int8", "int4": "int4"}.get(compute, "fp8")),
                (
                    f"--dtype {dtype}: linear weights at {DTYPE_BYTES[compute] * 8} bits, the rest bf16",
                ),
            )
    else:
        compute = canonical_dtype(config_dtype or "float32")
        if compute == "float32":
            compute = "bfloat16"
            notes.append(
                "config dtype float32 served as bfloat16, as vLLM and SGLang do with --dtype auto"
            )
        elif compute not in ("float16", "bfloat16"):
            compute = "bfloat16"
    if quantization:
        scheme = _named(quantization)
        if quantization_config:
            notes.append(
                f"--quantization {quantization} overrides the checkpoint's own quantization_config"
            )
        return Precision(compute, scheme, tuple(notes))
    if quantization_config:
        return Precision(compute, _scheme_from_config_checked(quantization_config), tuple(notes))
    return Precision(compute, None, tuple(notes))


def _scheme_from_config_checked(qc: Any) -> QuantScheme:
    """A malformed quantization_config (a string, bits: "x") is the config's fault: say so."""
    from vramplan.errors import ConfigError, VramplanError

    if not isinstance(qc, Mapping):
        raise ConfigError(f"quantization_config must be an object, got {type(qc).__name__}")
    try:
        return scheme_from_config(qc)
    except VramplanError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise ConfigError(
            f"quantization_config is malformed ({type(exc).__name__}: {exc}); "
            "pass --quantization to size the weights explicitly"
        ) from None


def scheme_by_name(name: str) -> QuantScheme:
    """Public access to the named scheme table."""
    return _named(name)
