"""Gemma 3n (``gemma3n``: Gemma3nForConditionalGeneration; ``gemma3n_text``: Gemma3nForCausalLM), counted as
transformers 5 builds them (``modeling_gemma3n.py``).

Text decoder, per layer: q_proj + q_norm + o_proj; k_proj, v_proj and k_norm (v_norm has no weight) only in
layers that compute their own KV; a gated MLP whose width may differ per layer (``intermediate_size`` is a list,
MatFormer); four norms; AltUp (``altup_num_inputs`` = n: output scale, n x n correction and n^2 x n prediction
coefficients, a router Linear(hidden, n) and its norm); LAuReL (Linear(hidden, laurel_rank), Linear(laurel_rank,
hidden), a norm); the per-layer-input gate/projection/norm. Model level: token embeddings, the per-layer
embeddings (PLE) table ``vocab_size_per_layer_input x (num_hidden_layers * hidden_size_per_layer_input)`` with its
Linear(hidden, layers * ple) projection and norm, and ``altup_num_inputs - 1`` AltUp projections in and out.
``activation_sparsity_pattern`` only changes the MLP's activation, not any shape or cache.

The PLE table is its own weights component, ``per_layer_embeddings`` (E2B: 2.0 B of 5.4 B parameters): it is read
by token lookup, once per token, so llama.cpp keeps it in host memory with the token embeddings and Google's
"effective" E2B / E4B sizes leave it out.

KV: the last ``num_kv_shared_layers`` layers reuse the KV of the last earlier layer of the same type
(``Gemma3nTextConfig.kv_sharing_modes``); they own no k/v projections and no cache, so KV bytes per token count
only the first ``num_hidden_layers - num_kv_shared_layers`` layers (E2B and E4B: 16 sliding + 4 full of 2 KV heads
x 256). transformers, vLLM (``kv_sharing_target_layer_name``) and llama.cpp (``n_layer_kv_from_start``) all
allocate it that way.

The multimodal class adds the USM conformer audio encoder (counted from ``audio_config``), the two multimodal
embedders, and a timm MobileNetV5 vision tower, whose size is fixed by its timm architecture name (below).

TP splits follow vLLM 0.24 ``gemma3n.py``: PLE table vocab-parallel, its projection and the AltUp in/out
projections column-parallel (gathered), LAuReL left/right column/row, AltUp coefficients and the per-layer gates
replicated, the towers replicated. vLLM builds ``qkv_proj`` in every layer, so it also loads the k/v weights the
checkpoint keeps for the KV-shared layers (which transformers drops): E2B 21.0 M, E4B 31.5 M parameters more
than counted here.
"""

from __future__ import annotations

from typing import Any

from vramplan.errors import ConfigError, UnsupportedModelError
from vramplan.model.families_2026 import (
    Config,
    attention_dims,
    base_fields,
    pattern_layer_types,
    with_defaults,
)
from vramplan.model.families_gemma4 import kv_sharing_modes, per_layer_embeddings
from vramplan.model.families_inventory import Inventory, embeddings, final_norm
from vramplan.model.hf_config import MAX_LAYERS, _dims, _require
from vramplan.model.layer_tensors import dense_mlp
from vramplan.model.layout import CacheLayer
from vramplan.model.spec import ModelSpec

#: Gemma3nTextConfig defaults (transformers 5 configuration_gemma3n.py; E4B-like).
_TEXT = dict(
    vocab_size=262_400,
    hidden_size=2048,
    intermediate_size=16_384,
    num_hidden_layers=35,
    num_attention_heads=8,
    num_key_value_heads=2,
    head_dim=256,
    max_position_embeddings=32_768,
    sliding_window=512,
    vocab_size_per_layer_input=262_144,
    hidden_size_per_layer_input=256,
    altup_num_inputs=4,
    num_kv_shared_layers=15,
    laurel_rank=64,
    tie_word_embeddings=True,
)
#: Every 5th layer is global when layer_types is absent (Gemma3nTextConfig.__post_init__).
_FULL_EVERY = 5

#: Gemma3nAudioConfig defaults.
_AUDIO = dict(
    vocab_size=128,
    input_feat_size=128,
    hidden_size=1536,
    conf_num_attention_heads=8,
    conf_num_hidden_layers=12,
    conf_conv_kernel_size=5,
    sscp_conv_channel_size=[128, 32],
    sscp_conv_kernel_size=[[3, 3], [3, 3]],
    sscp_conv_stride_size=[[2, 2], [2, 2]],
)
#: Gemma3nVisionConfig defaults.
_VISION = dict(architecture="mobilenetv5_300m_enc", hidden_size=2048, vocab_size=128)

#: Parameters of the timm vision encoders Gemma 3n names (``vision_config.architecture``). The architecture is
#: fixed by its name in timm (``timm/models/mobilenetv5.py``: stem, 4 stages of edge-residual, universal
#: inverted-residual and multi-query-attention blocks, the multi-scale fusion adapter); no config field changes
#: it. Counted with timm 1.0.31 ``create_model(name)``; tests/model/test_gemma3n.py recounts it when timm is
#: installed.
TIMM_VISION_PARAMS: dict[str, int] = {"mobilenetv5_300m_enc": 294_126_912}


def _widths(text: dict[str, Any], n: int) -> list[int]:
    """Per-layer MLP widths: one int for all layers or a list of ``num_hidden_layers`` ints."""
    raw = text.get("intermediate_size")
    if isinstance(raw, (list, tuple)):
        if len(raw) != n:
            raise ConfigError(
                f"intermediate_size lists {len(raw)} widths but num_hidden_layers is {n}: give one per layer"
            )
        return [_require({"intermediate_size": w}, "intermediate_size") for w in raw]
    return [_require(text, "intermediate_size")] * n


def _text(inv: Inventory, text: dict[str, Any], name: str, model_type: str) -> dict[str, Any]:
    n = _require(text, "num_hidden_layers", upper=MAX_LAYERS)
    types = list(text.get("layer_types") or pattern_layer_types(n, _FULL_EVERY))
    if len(types) != n:
        raise ConfigError(f"layer_types has {len(types)} entries but num_hidden_layers is {n}")
    unknown = sorted(set(types) - {"sliding_attention", "full_attention"})
    if unknown:
        raise UnsupportedModelError(f"gemma3n layer_types {unknown} are not known layer kinds")
    shared = int(text.get("num_kv_shared_layers") or 0)
    if not 0 <= shared < n:
        raise ConfigError(
            f"num_kv_shared_layers = {shared} must leave at least one of the {n} layers computing its own KV"
        )
    modes = kv_sharing_modes(types, shared)
    sparsity = text.get("activation_sparsity_pattern")
    if isinstance(sparsity, (list, tuple)) and len(sparsity) != n:
        raise ConfigError(
            f"activation_sparsity_pattern has {len(sparsity)} entries but num_hidden_layers is {n}"
        )
    widths = _widths(text, n)
    base = {k: v for k, v in text.items() if k not in ("layer_types", "intermediate_size")}
    fields = base_fields(base, model_type, name)
    h, heads, kv, d = attention_dims(fields)
    window = _require(text, "sliding_window")
    bias = bool(text.get("attention_bias"))
    p = "layers.self_attn"
    caches: list[tuple[CacheLayer, ...]] = []
    for kind, mode, width in zip(types, modes, widths):
        inv.linear(f"{p}.q_proj", heads * d, h, 1, "column", "attention", bias)
        inv.norm(f"{p}.q_norm", d, 1)
        inv.linear(f"{p}.o_proj", h, heads * d, 1, "row", "attention", bias)
        if mode == "reuse":
            caches.append(())
        else:
            inv.linear(f"{p}.k_proj", kv * d, h, 1, "kv_column", "attention", bias)
            inv.linear(f"{p}.v_proj", kv * d, h, 1, "kv_column", "attention", bias)
            inv.norm(f"{p}.k_norm", d, 1)
            full = kind == "full_attention"
            caches.append(
                (CacheLayer("full", d, d, kv),)
                if full
                else (CacheLayer("sliding", d, d, kv, window),)
            )
        dense_mlp(inv, 1, h, width)
    inv.norm("layers.layernorm", h, 4 * n)
    _altup_laurel(inv, text, h, n)
    per_layer_embeddings(inv, text, h, n)
    final_norm(inv, h)
    fields.update(
        layer_types=tuple(types),
        sliding_window=window,
        intermediate_size=max(widths),  # the widest layer sizes the activations
        qk_norm=True,
        norms_per_layer=4,
        kv_layout=tuple(caches),
    )
    return fields


def _altup_laurel(inv: Inventory, text: dict[str, Any], h: int, n: int) -> None:
    """AltUp (per layer + the model's in/out projections) and LAuReL blocks."""
    k = _require(text, "altup_num_inputs")
    inv.vector("layers.altup.correct_output_scale", h, n, "altup")
    inv.linear("layers.altup.correction_coefs", k, k, n, "replicated", "altup")
    inv.linear("layers.altup.prediction_coefs", k * k, k, n, "replicated", "altup")
    inv.linear("layers.altup.modality_router", k, h, n, "replicated", "altup")
    inv.norm("layers.altup.router_norm", h, n)
    inv.add("altup_projections.weight", (h, h), k - 1, "linear", "column", "first", "altup")
    inv.add("altup_unembed_projections.weight", (h, h), k - 1, "linear", "column", "last", "altup")
    rank = _require(text, "laurel_rank")
    inv.linear("layers.laurel.linear_left", rank, h, n, "column", "laurel")
    inv.linear("layers.laurel.linear_right", h, rank, n, "row", "laurel")
    inv.norm("layers.laurel.post_laurel_norm", h, n)


def _pairs(value: Any, field: str) -> list[tuple[int, int]]:
    """sscp kernel / stride sizes: two (time, frequency) pairs of positive ints."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"audio_config field {field} must hold two [time, frequency] pairs")
    out = []
    for pair in value:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ConfigError(f"audio_config field {field} must hold two [time, frequency] pairs")
        out.append((_require({field: pair[0]}, field), _require({field: pair[1]}, field)))
    return out


def _audio(inv: Inventory, audio: dict[str, Any]) -> int:
    """Gemma3nAudioEncoder: a two-conv subsampler (each conv without bias + a per-channel norm weight, then a
    Linear to hidden) and ``conf_num_hidden_layers`` conformer blocks. Returns the audio hidden size."""
    h, feats, heads, layers, kernel = _dims(
        audio,
        "hidden_size",
        "input_feat_size",
        "conf_num_attention_heads",
        "conf_num_hidden_layers",
        "conf_conv_kernel_size",
    )
    channels = audio.get("sscp_conv_channel_size")
    if not isinstance(channels, (list, tuple)) or len(channels) != 2:
        raise ConfigError("audio_config field sscp_conv_channel_size must hold two channel counts")
    c0, c1 = (_require({"sscp_conv_channel_size": c}, "sscp_conv_channel_size") for c in channels)
    (k0t, k0f), (k1t, k1f) = _pairs(audio.get("sscp_conv_kernel_size"), "sscp_conv_kernel_size")
    (_, s0f), (_, s1f) = _pairs(audio.get("sscp_conv_stride_size"), "sscp_conv_stride_size")
    # Frequency axis padded by one on each side (Gemma3nAudioSubSampleConvProjection).
    f0 = (feats + 2 - k0f) // s0f + 1
    f1 = (f0 + 2 - k1f) // s1f + 1
    if f0 <= 0 or f1 <= 0:
        raise ConfigError("audio_config sscp kernels are wider than the padded input_feat_size")
    sscp = c0 * k0t * k0f + c0 + c1 * c0 * k1t * k1f + c1 + h * c1 * f1
    head_dim = h // heads
    feed_forward = 2 * h + 8 * h * h  # pre/post norm, Linear(h, 4h), Linear(4h, h)
    attention = (
        2 * h + 4 * heads * head_dim * h + head_dim + h * h
    )  # norms, pos/q/k/v, per-dim scale, post
    light_conv = (
        2 * h + 2 * h * h + h * kernel + h * h
    )  # norms, linear_start (GLU), depthwise conv, linear_end
    block = 2 * feed_forward + attention + light_conv + h
    inv.extra("audio_tower.subsample_conv_projection", sscp, "audio")
    inv.extra("audio_tower.conformer", layers * block, "audio")
    return h


def _embedder(
    inv: Inventory, name: str, sub: dict[str, Any], text_hidden: int, component: str
) -> None:
    """Gemma3nMultimodalEmbedder: Embedding(vocab, h), two norms, Linear(h, text hidden), an unweighted norm."""
    vocab, h = _dims(sub, "vocab_size", "hidden_size")
    inv.extra(name, vocab * h + 2 * h + text_hidden * h, component)


def _vision(inv: Inventory, vision: dict[str, Any]) -> None:
    arch = str(vision.get("architecture"))
    if vision.get("model_args"):
        raise UnsupportedModelError(
            "gemma3n vision_config.model_args changes the timm encoder; only the published encoders are counted"
        )
    if arch not in TIMM_VISION_PARAMS:
        raise UnsupportedModelError(
            f"gemma3n vision tower {arch!r} is not counted natively (known: {', '.join(TIMM_VISION_PARAMS)})"
        )
    inv.extra("vision_tower.timm_model", TIMM_VISION_PARAMS[arch], "vision")


def _sub(cfg: Config, key: str, defaults: dict[str, Any]) -> dict[str, Any]:
    raw = cfg.get(key)
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"config.json field {key} must be an object")
    return with_defaults(raw or {}, defaults)


def _gemma3n(cfg: Config, model_type: str, name: str) -> ModelSpec:
    multimodal = model_type == "gemma3n"
    if multimodal:
        text = _sub(cfg, "text_config", _TEXT)
        text["tie_word_embeddings"] = bool(cfg.get("tie_word_embeddings", True))
        text.setdefault("torch_dtype", cfg.get("torch_dtype") or cfg.get("dtype"))
    else:
        text = with_defaults(cfg, _TEXT)
    inv = Inventory()
    fields = _text(inv, text, name, model_type)
    h = fields["hidden_size"]
    tied = bool(text.get("tie_word_embeddings"))
    embeddings(inv, fields["vocab_size"], h, tied)
    if multimodal:
        vision = _sub(cfg, "vision_config", _VISION)
        audio = _sub(cfg, "audio_config", _AUDIO)
        _vision(inv, vision)
        _embedder(inv, "embed_vision", vision, h, "vision")
        _audio(inv, audio)
        _embedder(inv, "embed_audio", audio, h, "audio")
    fields.update(
        tensors=inv.groups(),
        tie_word_embeddings=tied,
        quantization_config=cfg.get("quantization_config") or text.get("quantization_config"),
    )
    return ModelSpec(**fields)


BUILDERS = {"gemma3n": _gemma3n, "gemma3n_text": _gemma3n}
