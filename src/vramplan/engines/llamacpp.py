"""llama.cpp startup memory: model buffers per device, a preallocated KV cache, compute buffers.

Why its own model: llama.cpp allocates fixed buffers at context creation (no memory fraction), keeps the
token-embedding table on the host, offloads whole layers (``-ngl``), and sizes the KV cache for the full
padded ``n_ctx`` no matter how many parallel slots share it. Figures are MiB per device, named like the
log lines (``CUDA0 model buffer``, ``KV buffer``, ``compute buffer``, ``CUDA_Host output buffer``).
Sources: design/engine-memory.md section 4 (``llama-model.cpp`` layer placement, ``llama-kv-cache.cpp``,
``llama-kv-cache-iswa.cpp``, ``llama-context.cpp``; quant block sizes from ``ggml-common.h``;
tensor type mixes from ``llama-quant.cpp``).

Hybrid and recurrent models (Mamba, gated DeltaNet, short conv) also get a recurrent-state ("RS") buffer:
one f32 conv row (R) and one f32 recurrent row (S) per recurrent layer for each of ``max(1, n_seq_max)``
cells, one cell per ``-np`` sequence whatever ``n_ctx`` is and whether or not the KV cache is unified
(design/hybrid-memory.md section 3: ``llama-memory-recurrent.cpp:101-103``, ``llama-model.cpp:2670-2756``);
only the attention layers have KV cells.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import ceil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vramplan import ggml
from vramplan.engines.base import GIB, EnginePrediction, KVPool, VersionTable, parse_version
from vramplan.engines.sglang import pick_gpu
from vramplan.errors import InputError, UnknownDtypeError
from vramplan.hardware import GPU
from vramplan.memory.overhead import CUDA_CONTEXT_BYTES
from vramplan.memory.state_cache import state_bytes_per_layer
from vramplan.model.params import inventory
from vramplan.model.spec import ModelSpec
from vramplan.precision import KV_DTYPE_BYTES
from vramplan.scenario import Fix
from vramplan.units import check_number_text

MIB = 1024**2
#: CUDA context + cuBLAS handles per device (memory.overhead.CUDA_CONTEXT_BYTES).
CUDA_CONTEXT_MIB = CUDA_CONTEXT_BYTES["llamacpp"] // MIB
#: KV cell padding: 256 with flash attention, 32 without (llama_kv_cache::get_padding, mid-2025).
PAD_FA = 256
PAD_NO_FA = 32
#: Padding of the SWA cache size (llama-kv-cache-iswa.cpp).
PAD_SWA = 256
#: ``--fit`` keeps this much free per device (PR #16653) and never lowers n_ctx below FIT_MIN_CTX.
FIT_MARGIN_MIB = 1024
FIT_MIN_CTX = 4096
#: Compute buffer, fp32 scratch (our first-order model, calibrated on the 4.3 anchor: Llama-3-8B, FA,
#: n_ctx 4096, n_ubatch 512 -> 296.00 MiB logged, 294.5 modelled): logits V + HIDDEN_COPIES hidden rows
#: (+ one FFN row with flash attention) per ubatch token.
COMPUTE_HIDDEN_COPIES = 2
DEFAULT_N_BATCH = 2048
DEFAULT_N_UBATCH = 512
#: Recurrent state (R conv rows, S recurrent rows) is hard-coded f32 (``llama-model.cpp:2670-2678``).
RS_ELEMENT_BYTES = 4
#: The smallest context a fix proposes (llama.cpp's old default n_ctx).
MIN_FIX_CTX = 512

if TYPE_CHECKING:
    from vramplan.scenario import Scenario


@dataclass(frozen=True)
class LlamaCppProfile:
    """Build-dependent defaults."""

    default_n_ctx: int  # 0 = training context
    flash_attn_default: bool
    fit: bool
    default_ngl: int  # -1 = all layers
    #: Hybrid models with a per-sequence (non-unified) KV cache gave every one of the ``-np`` streams the
    #: whole n_ctx, i.e. -np times the attention KV; ggml-org/llama.cpp#19559 gave them n_ctx / -np each.
    hybrid_kv_per_stream_full: bool = False


#: Builds: b4040 ~ Nov 2024 (PR #10136: n_ctx 4096); b6300 ~ Sep 2025 (flash attention auto, per-sequence
#: KV streams); b7000 ~ late 2025 (``--fit`` on, n_ctx 0 = training context, ngl -1); b8000 ~ Feb 2026
#: (#19559: hybrids no longer allocate -np times the KV). Boundaries approximate [verify].
VERSIONS: VersionTable[LlamaCppProfile] = VersionTable(
    "llama.cpp",
    {
        "1000": LlamaCppProfile(
            default_n_ctx=512, flash_attn_default=False, fit=False, default_ngl=0
        ),
        "4040": LlamaCppProfile(
            default_n_ctx=4096, flash_attn_default=False, fit=False, default_ngl=0
        ),
        "6300": LlamaCppProfile(
            default_n_ctx=4096,
            flash_attn_default=True,
            fit=False,
            default_ngl=-1,
            hybrid_kv_per_stream_full=True,
        ),
        "7000": LlamaCppProfile(
            default_n_ctx=0,
            flash_attn_default=True,
            fit=True,
            default_ngl=-1,
            hybrid_kv_per_stream_full=True,
        ),
        "8000": LlamaCppProfile(default_n_ctx=0, flash_attn_default=True, fit=True, default_ngl=-1),
    },
)


def build_number(version: str | None) -> str | None:
    """``"b3475 (ac15650)"`` / ``"b4040"`` / ``"4040"`` -> ``"4040"``."""
    if version is None:
        return None
    m = re.search(r"b?(\d{3,})", str(version))
    if not m:
        parse_version(version)  # raises a clear InputError
        return str(version)
    return m.group(1)


# ------------------------------------------------------------------------------------ tensor types
def ggml_row_bytes(type_name: str, n: int) -> int:
    """Bytes of ``n`` values of a ggml type (whole blocks)."""
    nbytes, values = ggml.block(type_name)
    return ceil(n / values) * nbytes


@dataclass(frozen=True)
class ModelBytes:
    """Weight bytes by placement slot: token embedding (always host), per block, output layer."""

    token_embd: int
    blocks: tuple[int, ...]
    output: int
    exact: bool  # True when read from a GGUF file

    @property
    def total(self) -> int:
        return self.token_embd + sum(self.blocks) + self.output


def model_bytes_from_spec(spec: ModelSpec, file_type: str) -> ModelBytes:
    """Per-slot bytes from the spec and llama.cpp's recipe for the file type (memory.weights.gguf_recipe)."""
    from vramplan.memory.weights import gguf_recipe

    layout = gguf_recipe(spec, file_type.upper()).layout
    assert layout is not None
    n = spec.num_layers
    blocks = [0] * n
    embd = output = 0
    for g in inventory(spec):
        if g.stage != "layer":
            nbytes = layout.group_bytes(g.name, g.role, g.shape, g.count, n, False)
            if g.role == "embedding":
                embd += nbytes
            else:
                output += nbytes
            continue
        per_layer, extra = divmod(g.count, n)
        kind = ggml.category(g.name, g.role, spec.model_type)
        for i in range(n):
            if kind is None or len(g.shape) < 2 or extra:
                blocks[i] += layout.group_bytes(g.name, g.role, g.shape, g.count, n, True) // n
            else:
                blocks[i] += per_layer * ggml.tensor_bytes(layout.type_of(kind, i), g.shape)
    if spec.tie_word_embeddings:
        # llama.cpp duplicates the tied token embedding as the output matrix for the GPU (output rule)
        output += spec.vocab_size * ggml_row_bytes(layout.type_of("output", 0), spec.hidden_size)
    return ModelBytes(embd, tuple(blocks), output, False)


def model_bytes_from_gguf(path: str | Path, n_layer: int) -> ModelBytes:
    """Exact bytes per slot from a GGUF header (``blk.N.*`` tensors, ``token_embd``, ``output*``)."""
    from vramplan.model.files import read_gguf

    info = read_gguf(path)
    blocks = [0] * n_layer
    output = 0
    for t in info.tensors.values():
        m = re.match(r"blk\.(\d+)\.", t.name)
        if m and int(m.group(1)) < n_layer:
            blocks[int(m.group(1))] += t.nbytes
        elif t.name != "token_embd.weight":
            output += t.nbytes
    if info.tied_embeddings:
        output += info.token_embd_bytes  # llama.cpp duplicates token_embd as the output on the GPU
    return ModelBytes(info.token_embd_bytes, tuple(blocks), output, True)


def gpu_slots(n_layer: int, ngl: int) -> tuple[int, bool]:
    """(blocks on GPU, output layer on GPU): the last ``ngl`` blocks, the output only if ngl > n_layer.

    llama-model.cpp: ``i_gpu_start = max(n_layer - ngl, 0)``; the output layer is slot n_layer and is
    offloaded only when all n_layer + 1 slots are (``offloaded 33/33 layers`` for a 32-layer model).
    """
    if ngl < 0:
        ngl = n_layer + 1
    return min(ngl, n_layer), ngl > n_layer


def split_layers(n_gpu_blocks: int, weights: Sequence[float]) -> list[int]:
    """Blocks per device in proportion to ``--tensor-split`` (or free memory), cumulative rounding."""
    total = sum(weights)
    if total <= 0:
        raise InputError("--tensor-split needs at least one positive entry, e.g. -ts 3,1")
    out, acc, prev = [], 0.0, 0
    for w in weights:
        acc += w
        upto = round(n_gpu_blocks * acc / total)
        out.append(upto - prev)
        prev = upto
    return out


# ------------------------------------------------------------------------------------ KV and compute
def kv_cells(n_ctx: int, flash_attn: bool) -> int:
    """n_ctx padded to 256 (flash attention) or 32 cells."""
    pad = PAD_FA if flash_attn else PAD_NO_FA
    return ceil(n_ctx / pad) * pad


def swa_cells(
    n_ctx: int, window: int, n_seq: int, n_ubatch: int, unified: bool, swa_full: bool
) -> int:
    """iSWA: ``pad256(min(n_ctx, n_swa x (unified ? n_seq : 1) + n_ubatch))``, full size with --swa-full."""
    if swa_full:
        return n_ctx
    want = min(n_ctx, window * (n_seq if unified else 1) + n_ubatch)
    return ceil(want / PAD_SWA) * PAD_SWA


def cache_type_bytes(name: str) -> Fraction:
    """Bytes per element of a KV cache type (f16 2, q8_0 34/32, q4_0 18/32 ...)."""
    key = name.strip().lower()
    aliases = {"f16": "float16", "f32": "float32", "bf16": "bfloat16"}
    key = aliases.get(key, key)
    if key not in KV_DTYPE_BYTES or key.startswith("float8"):
        raise UnknownDtypeError(
            f"unknown cache type {name!r}: use f16, bf16, f32, q8_0, q4_0, q4_1, q5_0, q5_1 or iq4_nl"
        )
    return KV_DTYPE_BYTES[key]


def kv_layer_bytes(spec: ModelSpec, cells: int, type_k: str, type_v: str) -> tuple[int, int]:
    """(K bytes, V bytes) of one layer for ``cells`` cells. MLA: latent K only (current builds)."""
    if spec.mla is not None:
        width = spec.mla.kv_lora_rank + spec.mla.qk_rope_head_dim
        return int(width * cells * cache_type_bytes(type_k)), 0
    k = spec.num_kv_heads * spec.head_dim
    v = spec.num_kv_heads * spec.v_head_dim
    return int(k * cells * cache_type_bytes(type_k)), int(v * cells * cache_type_bytes(type_v))


def compute_buffer_bytes(spec: ModelSpec, n_ctx_cells: int, n_ubatch: int, flash_attn: bool) -> int:
    """Worst-case graph scratch (fp32): logits + hidden rows (+ FFN row with FA); without FA the
    attention phase holds the ``n_ctx x n_ubatch x n_head`` score matrix (design note 4.3)."""
    logits_phase = 4 * n_ubatch * (spec.vocab_size + COMPUTE_HIDDEN_COPIES * spec.hidden_size)
    if flash_attn:
        return logits_phase + 4 * n_ubatch * spec.intermediate_size
    attn_phase = (
        4 * n_ubatch * COMPUTE_HIDDEN_COPIES * spec.hidden_size
        + 4 * n_ctx_cells * n_ubatch * spec.num_heads
    )
    return max(logits_phase, attn_phase)


def recurrent_cells(n_seq: int) -> int:
    """RS cells: ``max(1, n_seq_max)``, one per parallel sequence, unified KV or not (llama-model.cpp)."""
    return max(1, n_seq)


def recurrent_layer_bytes(spec: ModelSpec) -> tuple[int, int]:
    """(R bytes, S bytes) of one recurrent layer for one cell: f32 conv rows ``(d_conv - 1) x channels`` and
    f32 recurrent rows (``llama-hparams.cpp`` ``n_embd_r`` / ``n_embd_s``); (0, 0) without recurrent layers."""
    if spec.state is None:
        return 0, 0
    r = state_bytes_per_layer(spec.state, RS_ELEMENT_BYTES, 0)
    s = state_bytes_per_layer(spec.state, 0, RS_ELEMENT_BYTES)
    return r, s


# ------------------------------------------------------------------------------------ settings
FLAGS = {
    "-m": "model",
    "--model": "model",
    "-c": "n_ctx",
    "--ctx-size": "n_ctx",
    "-ngl": "n_gpu_layers",
    "--n-gpu-layers": "n_gpu_layers",
    "--gpu-layers": "n_gpu_layers",
    "-ctk": "type_k",
    "--cache-type-k": "type_k",
    "-ctv": "type_v",
    "--cache-type-v": "type_v",
    "-np": "n_parallel",
    "--parallel": "n_parallel",
    "-b": "n_batch",
    "--batch-size": "n_batch",
    "-ub": "n_ubatch",
    "--ubatch-size": "n_ubatch",
    "-ts": "tensor_split",
    "--tensor-split": "tensor_split",
    "--quant": "file_type",
    "-fa": "flash_attn",
    "--flash-attn": "flash_attn",
}
BOOL_FLAGS = {
    "--kv-unified": "kv_unified",
    "-kvu": "kv_unified",
    "--swa-full": "swa_full",
    "--fit": "fit",
    "--no-kv-offload": "no_kv_offload",
    "-nkvo": "no_kv_offload",
}
_INT = {"n_ctx", "n_gpu_layers", "n_parallel", "n_batch", "n_ubatch"}


_FA_VALUES = {"on": True, "1": True, "true": True, "off": False, "0": False, "false": False}


def _ll_value(key: str, value: str, flag: str) -> Any:
    if key in _INT:
        check_number_text(value, flag)  # one-line refusal of a 5,000-digit value
        try:
            return int(value)
        except ValueError:
            raise InputError(f"{flag} expects an integer, got {value!r}") from None
    if key == "tensor_split":
        try:
            parts = [float(x) for x in re.split(r"[,/]", value) if x]
        except ValueError:
            raise InputError(f"{flag} expects proportions like 3,1, got {value!r}") from None
        if not parts or not all(math.isfinite(x) and x >= 0 for x in parts) or sum(parts) <= 0:
            raise InputError(
                f"{flag} expects non-negative finite proportions like 3,1, got {value!r}"
            )
        return parts
    return value


def parse_llamacpp_argv(argv: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """llama.cpp flags (short ones included), through the shared ``engines.base.scan_argv``.

    ``-fa`` takes on/off/auto in new builds and nothing in old ones.
    """
    from functools import partial

    from vramplan.engines.base import Flag, scan_argv

    names: dict[str, list[str]] = {}
    for flag, key in FLAGS.items():
        if key != "flash_attn":
            names.setdefault(key, []).append(flag)
    table = [Flag(tuple(fl), key, partial(_ll_value, key)) for key, fl in names.items()]
    table += [Flag((flag,), key) for flag, key in BOOL_FLAGS.items()]
    table.append(
        Flag(
            ("-fa", "--flash-attn"),
            "flash_attn",
            optional_values=frozenset([*_FA_VALUES, "auto"]),
        )
    )
    scanned = scan_argv(argv, table)
    settings = dict(scanned.settings)
    fa = settings.get("flash_attn")
    if isinstance(fa, str):
        settings["flash_attn"] = _FA_VALUES.get(fa, "auto")
    return settings, scanned.ignored


_FILE_TYPE = re.compile(r"(?i)(IQ\d_[A-Z]+|Q\d_K_[SML]|Q\d_K|Q\d_[01]|BF16|F16|F32)(?:\.gguf)?$")


def _load(ref: str, file_type: str | None) -> tuple[ModelSpec, ModelBytes, str, list[str]]:
    """Spec + bytes from a .gguf file (exact) or a catalogue name with a file type (mix model)."""
    from vramplan.model.load import load_model

    notes: list[str] = []
    if ref.endswith(".gguf") and Path(ref).exists():
        loaded = load_model(ref)
        mb = model_bytes_from_gguf(ref, loaded.spec.num_layers)
        return loaded.spec, mb, "gguf", notes
    base = Path(ref).name if ref.endswith(".gguf") else ref
    m = _FILE_TYPE.search(base.removesuffix(".gguf"))
    ft = (file_type or (m.group(1) if m else "F16")).upper()
    name = base.removesuffix(".gguf")
    if m:
        name = name[: m.start()].rstrip("-._")
    name = re.sub(r"(?i)[-_.]?gguf$", "", name)
    try:
        loaded = load_model(name, allow_hub=False)
    except InputError:
        loaded = load_model(re.sub(r"(?i)-instruct$", "", name), allow_hub=False)
    notes.append(
        f"no .gguf file read: {ft} tensor mix modelled from llama-quant rules for {loaded.spec.name}"
    )
    return loaded.spec, model_bytes_from_spec(loaded.spec, ft), ft, notes


def predict_llamacpp(
    argv_or_settings: Sequence[str] | Mapping[str, Any],
    gpu: str | GPU | None = None,
    *,
    gpu_memory: str | int | None = None,
    engine_version: str | None = None,
    num_gpus: int = 1,
) -> EnginePrediction:
    """Predict the buffers ``llama-server``/``llama-cli`` allocates per device and whether they fit."""
    if isinstance(argv_or_settings, Mapping):
        settings: dict[str, Any] = dict(argv_or_settings)
        ignored: list[str] = []
    else:
        settings, ignored = parse_llamacpp_argv(argv_or_settings)
    hw = pick_gpu(gpu, gpu_memory)
    match = VERSIONS.nearest_version(build_number(engine_version))
    prof = match.value
    assumptions = [n for n in (match.note,) if n]
    if ignored:
        assumptions.append(f"ignored flags (no memory model): {' '.join(ignored)}")
    ref = settings.get("model")
    if not ref:
        raise InputError(
            "no model: pass -m FILE.gguf (or a catalogue name with a type, e.g. Llama-3-8B-Q4_K_M)"
        )
    spec, mb, ftype, notes = _load(str(ref), settings.get("file_type"))
    assumptions += notes
    n_layer = spec.num_layers

    fa_setting = settings.get("flash_attn", "auto" if prof.flash_attn_default else False)
    fa = bool(fa_setting) if fa_setting != "auto" else True
    type_k = str(settings.get("type_k") or "f16")
    type_v = str(settings.get("type_v") or "f16")
    errors: list[str] = []
    fixes: list[Fix] = []
    if not fa and cache_type_bytes(type_v) < 2:
        errors.append(
            f"V cache quantization ({type_v}) requires flash attention: failed to create context"
        )
        fixes.append(Fix("flash_attn", "on", "a quantized V cache needs flash attention"))
        fixes.append(Fix("cache_type_v", "f16", "an f16 V cache works without flash attention"))
    n_seq = int(settings.get("n_parallel") or 1)
    n_ubatch = int(settings.get("n_ubatch") or DEFAULT_N_UBATCH)
    n_batch = int(settings.get("n_batch") or DEFAULT_N_BATCH)
    n_ubatch = min(n_ubatch, n_batch)
    unified = bool(settings.get("kv_unified"))
    swa_full = bool(settings.get("swa_full"))
    user_ctx = settings.get("n_ctx")
    n_ctx = int(user_ctx) if user_ctx is not None else prof.default_n_ctx
    if n_ctx == 0:
        n_ctx = spec.max_position_embeddings
    user_ngl = settings.get("n_gpu_layers")
    ngl = int(user_ngl) if user_ngl is not None else prof.default_ngl
    fit = bool(settings.get("fit", prof.fit))
    no_kv_offload = bool(settings.get("no_kv_offload"))
    split = settings.get("tensor_split") or [1.0] * num_gpus
    n_dev = len(split)
    device_mib = hw.memory_bytes / MIB
    kinds = spec.layer_types or ("full_attention",) * n_layer
    window = spec.sliding_window or 0
    state_layers = frozenset(spec.state.layers) if spec.state is not None else frozenset()
    rs_cells = recurrent_cells(n_seq)
    rs_r_layer, rs_s_layer = recurrent_layer_bytes(spec)
    # Hybrid attention KV: one n_ctx-sized stream per sequence in builds before #19559 (non-unified cache).
    kv_streams = n_seq if (state_layers and prof.hybrid_kv_per_stream_full and not unified) else 1

    def layer_kv(layer: int, cells: int, scells: int, tk: str, tv: str) -> tuple[int, int]:
        """(K, V) bytes of one layer: none for recurrent / MLP-only blocks of a hybrid."""
        if not spec.layer_keeps_kv(layer):
            return 0, 0
        c = scells if kinds[layer] == "sliding_attention" else cells
        k, v = kv_layer_bytes(spec, c * kv_streams, tk, tv)
        return k, v

    def layout(n_ctx_: int, ngl_: int, tk: str = type_k, tv: str = type_v) -> dict[str, Any]:
        blocks_gpu, out_gpu = gpu_slots(n_layer, ngl_)
        per_dev_blocks = split_layers(blocks_gpu, split) if blocks_gpu else [0] * n_dev
        first_gpu_block = n_layer - blocks_gpu
        cells = kv_cells(n_ctx_, fa)
        scells = swa_cells(cells, window, n_seq, n_ubatch, unified, swa_full) if window else cells
        devs: list[dict[str, Any]] = []
        idx = first_gpu_block
        k_all = v_all = rs_all = 0
        for d, nb in enumerate(per_dev_blocks):
            w = sum(mb.blocks[idx : idx + nb])
            k = v = per_token = 0
            rs_layers = 0
            for layer in range(idx, idx + nb):
                lk, lv = layer_kv(layer, cells, scells, tk, tv)
                k, v = k + lk, v + lv
                if spec.layer_keeps_kv(layer):
                    per_token += sum(kv_layer_bytes(spec, 1, tk, tv))
                rs_layers += layer in state_layers
            idx += nb
            if d == n_dev - 1 and out_gpu:
                w += mb.output
            if no_kv_offload:
                k = v = rs_layers = 0
            rs = rs_layers * rs_cells * (rs_r_layer + rs_s_layer)
            k_all, v_all, rs_all = k_all + k, v_all + v, rs_all + rs
            comp = (
                compute_buffer_bytes(spec, cells, n_ubatch, fa)
                if (nb or (d == n_dev - 1 and out_gpu))
                else 0
            )
            devs.append(
                {
                    "model": w,
                    "kv": k + v,
                    "k": k,
                    "v": v,
                    "rs": rs,
                    "rs_layers": rs_layers,
                    "kv_per_token": per_token,
                    "compute": comp,
                }
            )
        host_model = (
            mb.token_embd + sum(mb.blocks[:first_gpu_block]) + (0 if out_gpu else mb.output)
        )
        host_k = host_v = 0
        host_layers = range(n_layer) if no_kv_offload else range(first_gpu_block)
        for layer in host_layers:
            lk, lv = layer_kv(layer, cells, scells, tk, tv)
            host_k, host_v = host_k + lk, host_v + lv
        host_rs_layers = sum(1 for layer in host_layers if layer in state_layers)
        return {
            "devs": devs,
            "host_model": host_model,
            "cells": cells,
            "swa_cells": scells if window else None,
            "blocks_gpu": blocks_gpu,
            "out_gpu": out_gpu,
            "host_kv": host_k + host_v,
            "host_rs": host_rs_layers * rs_cells * (rs_r_layer + rs_s_layer),
            "k_total": k_all + host_k,
            "v_total": v_all + host_v,
        }

    def device_need_mib(lay: dict[str, Any]) -> float:
        return (
            max((d["model"] + d["kv"] + d["rs"] + d["compute"]) / MIB for d in lay["devs"])
            + CUDA_CONTEXT_MIB
        )

    lay = layout(n_ctx, ngl)
    if fit:
        budget = device_mib - FIT_MARGIN_MIB
        if device_need_mib(lay) > budget and user_ctx is None:
            lo, hi = min(FIT_MIN_CTX, n_ctx), n_ctx
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if device_need_mib(layout(mid, ngl)) <= budget:
                    lo = mid
                else:
                    hi = mid - 1
            if lo != n_ctx:
                assumptions.append(
                    f"--fit lowered n_ctx from {n_ctx} to {lo} (margin {FIT_MARGIN_MIB} MiB per device)"
                )
                n_ctx = lo
                lay = layout(n_ctx, ngl)
        if device_need_mib(lay) > budget and user_ngl is None:
            k = n_layer + 1 if ngl < 0 else ngl
            while k > 0 and device_need_mib(layout(n_ctx, k)) > budget:
                k -= 1
            assumptions.append(f"--fit moved layers to host: -ngl {k}")
            ngl = k
            lay = layout(n_ctx, ngl)

    need = device_need_mib(lay)
    if need > device_mib and not errors:
        errors.append(
            f"cudaMalloc failed: out of memory: needs {need:.0f} MiB on one device of {device_mib:.0f} MiB"
        )

        def fits(lay_: dict[str, Any]) -> bool:
            return device_need_mib(lay_) <= device_mib

        slots = n_layer + 1 if ngl < 0 else min(ngl, n_layer + 1)
        k = slots
        while k > 0 and not fits(layout(n_ctx, k)):
            k -= 1
        if k < slots:
            fixes.append(
                Fix("n_gpu_layers", k, "offload fewer layers; the rest run from host memory")
            )
        if fits(layout(MIN_FIX_CTX, ngl)):
            lo, hi = MIN_FIX_CTX, n_ctx
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if fits(layout(mid, ngl)) else (lo, mid - 1)
            fixes.append(Fix("ctx_size", lo, "the largest context whose buffers fit"))
        if cache_type_bytes(type_k) > cache_type_bytes("q8_0") and fits(
            layout(n_ctx, ngl, "q8_0", type_v)
        ):
            fixes.append(Fix("cache_type_k", "q8_0", "a q8_0 K cache takes 47 % less"))
        if (
            fa
            and cache_type_bytes(type_v) > cache_type_bytes("q8_0")
            and fits(layout(n_ctx, ngl, type_k, "q8_0"))
        ):
            fixes.append(Fix("cache_type_v", "q8_0", "a q8_0 V cache takes 47 % less"))
    d0 = lay["devs"][0]
    output_host = spec.vocab_size * 4 * n_seq
    extra: dict[str, Any] = {
        "model_buffer_cuda0_mib": round(d0["model"] / MIB, 2),
        "model_buffer_cpu_mapped_mib": round(lay["host_model"] / MIB, 2),
        "kv_buffer_cuda0_mib": round(d0["kv"] / MIB, 2),
        "kv_self_mib": round((lay["k_total"] + lay["v_total"]) / MIB, 2),
        "k_mib": round(lay["k_total"] / MIB, 2),
        "v_mib": round(lay["v_total"] / MIB, 2),
        "compute_buffer_cuda0_mib": round(d0["compute"] / MIB, 2),
        "output_buffer_host_mib": round(output_host / MIB, 2),
        "kv_cells": lay["cells"],
        "swa_cells": lay["swa_cells"],
        "n_ctx": n_ctx,
        "offloaded_layers": lay["blocks_gpu"] + (1 if lay["out_gpu"] else 0),
        "total_layers": n_layer + 1,
        "cuda_context_mib": CUDA_CONTEXT_MIB,
        "device_total_mib": round(need, 1),
        "weights_exact": mb.exact,
    }
    for d, dev in enumerate(lay["devs"][1:], start=1):
        extra[f"model_buffer_cuda{d}_mib"] = round(dev["model"] / MIB, 2)
        extra[f"kv_buffer_cuda{d}_mib"] = round(dev["kv"] / MIB, 2)
        extra[f"compute_buffer_cuda{d}_mib"] = round(dev["compute"] / MIB, 2)
    if state_layers:
        n_rs = len(state_layers)
        r_total, s_total = n_rs * rs_cells * rs_r_layer, n_rs * rs_cells * rs_s_layer
        extra["rs_buffer_cuda0_mib"] = round(d0["rs"] / MIB, 2)
        for d, dev in enumerate(lay["devs"][1:], start=1):
            extra[f"rs_buffer_cuda{d}_mib"] = round(dev["rs"] / MIB, 2)
        if lay["host_rs"]:
            extra["rs_buffer_cpu_mib"] = round(lay["host_rs"] / MIB, 2)
        extra.update(
            rs_total_mib=round((r_total + s_total) / MIB, 2),
            rs_r_f32_mib=round(r_total / MIB, 2),
            rs_s_f32_mib=round(s_total / MIB, 2),
            rs_cells=rs_cells,
            rs_layers=n_rs,
        )
        assumptions.append(
            f"llama_memory_recurrent: size = {(r_total + s_total) / MIB:.2f} MiB ({rs_cells} cells, "
            f"{n_layer} layers, {n_seq} seqs), R (f32): {r_total / MIB:.2f} MiB, "
            f"S (f32): {s_total / MIB:.2f} MiB; one cell per -np sequence in {n_rs} recurrent layers, "
            "whatever n_ctx is"
        )
        if settings.get("n_parallel") is None:
            assumptions.append(
                "-np not given: 1 sequence; llama-server builds since late 2025 start 4 slots with a "
                "unified KV cache when -np is left out [verify], which holds 4 recurrent cells: pass -np"
            )
        if kv_streams > 1:
            assumptions.append(
                f"hybrid model in a build before ggml-org/llama.cpp#19559 with a per-sequence KV cache: "
                f"each of the {n_seq} streams holds the whole n_ctx ({n_seq}x the attention KV; "
                "--kv-unified or a newer build avoids it)"
            )
    assumptions.append(
        f"n_ctx {n_ctx} -> {lay['cells']} KV cells ({'flash attention' if fa else 'no flash attention'}), "
        f"K {type_k}, V {type_v}; --parallel {n_seq} shares the same cells"
        + (f" in {spec.attention_layers} attention layers of {n_layer}" if state_layers else "")
    )
    return EnginePrediction(
        "llama.cpp",
        f"b{match.version}",
        weights_gib=d0["model"] / GIB,
        activation_peak_gib=d0["compute"] / GIB,
        available_kv_cache_gib=d0["kv"] / GIB,
        kv_cache_tokens=lay["cells"],
        max_concurrency=float(n_seq),
        kv_bytes_per_token=d0["kv_per_token"],
        state_bytes_per_sequence=d0["rs_layers"] * (rs_r_layer + rs_s_layer),
        starts=not errors,
        errors=tuple(errors),
        fixes=tuple(fixes),
        assumptions=tuple(assumptions),
        settings={
            "model": ref,
            "file_type": ftype,
            "n_ctx": n_ctx,
            "n_gpu_layers": ngl,
            "flash_attn": fa,
            "type_k": type_k,
            "type_v": type_v,
            "n_parallel": n_seq,
            "n_batch": n_batch,
            "n_ubatch": n_ubatch,
            "tensor_split": split,
            "kv_unified": unified,
            "swa_full": swa_full,
            "fit": fit,
        },
        extra=extra,
    )


def predict_from_settings(
    settings: Mapping[str, Any],
    gpu: str | GPU | None = None,
    *,
    gpu_memory: str | int | None = None,
    engine_version: str | None = None,
) -> EnginePrediction:
    """Predict from settings read by ``vramplan.logs.parse_log`` (n_ctx, n_ubatch, flash_attn, type_k ...).

    Logs rarely name the model file; pass ``model`` in ``settings`` (path or catalogue name with type).
    """
    s = {k: v for k, v in settings.items() if v is not None}
    if "flash_attn" in s and not isinstance(s["flash_attn"], bool):
        s["flash_attn"] = str(s["flash_attn"]).lower() in ("1", "true", "on", "enabled")
    if gpu is None and gpu_memory is None:
        gpu = s.get("gpu_name")
    keep = set(FLAGS.values()) | set(BOOL_FLAGS.values())
    return predict_llamacpp(
        {k: v for k, v in s.items() if k in keep},
        gpu,
        gpu_memory=gpu_memory,
        engine_version=engine_version,
    )


__all__ = [
    "VERSIONS",
    "compute_buffer_bytes",
    "gpu_slots",
    "kv_cells",
    "kv_layer_bytes",
    "model_bytes_from_gguf",
    "model_bytes_from_spec",
    "predict_from_settings",
    "predict_llamacpp",
    "swa_cells",
]


# ------------------------------------------------------------------------------------------ engine
#: Scenario field -> llama.cpp's setting name (``llama-server`` flags).
SCENARIO_KEYS: dict[str, str] = {
    "max_num_seqs": "n_parallel",
    "max_num_batched_tokens": "n_ubatch",  # tokens one forward processes (n_batch is the logical batch)
    "max_model_len": "n_ctx",
}


class LlamaCppEngine:
    """llama.cpp as an :class:`~vramplan.engines.base.Engine` (its KV pool is the context's cells)."""

    name = "llamacpp"

    def settings(self, scenario: Scenario) -> dict[str, Any]:
        e, p = scenario.engine, scenario.precision
        s: dict[str, Any] = {
            "model": scenario.model if isinstance(scenario.model, str) else scenario.model.name,
            "file_type": p.quantization,
        }
        for name, key in SCENARIO_KEYS.items():
            s[key] = getattr(e, name)
        return {k: v for k, v in s.items() if v is not None}

    def predict(self, scenario: Scenario) -> EnginePrediction:
        return predict_llamacpp(
            self.settings(scenario),
            scenario.hardware.gpu,
            gpu_memory=scenario.hardware.gpu_memory,
            engine_version=scenario.engine.engine_version,
            num_gpus=scenario.hardware.tp * scenario.hardware.pp,
        )

    def kv_pool(self, scenario: Scenario) -> KVPool:
        from dataclasses import replace

        from vramplan.engines.base import pool_from_prediction

        pred = self.predict(scenario)
        hw = pick_gpu(scenario.hardware.gpu, scenario.hardware.gpu_memory)
        return replace(pool_from_prediction(pred, hw.memory_bytes, SCENARIO_KEYS), gpu=hw.name)

    def launch(self, scenario: Scenario, model_id: str) -> list[str]:
        s = self.settings(scenario)
        s.pop("model", None)
        flags = {"n_parallel": "--parallel", "n_ubatch": "--ubatch-size", "n_ctx": "--ctx-size"}
        argv = ["llama-server", "--hf-repo", model_id]
        for key, value in s.items():
            argv += [flags.get(key, "--" + key.replace("_", "-")), str(value)]
        return argv


ENGINE_MODEL = LlamaCppEngine()
