"""Gemma 4 (``gemma4``: Gemma4ForConditionalGeneration; ``gemma4_text``: Gemma4ForCausalLM), counted as
transformers 5 builds it.

Per layer (``layer_types``; the last layer is always full attention): sliding layers have ``num_key_value_heads``
heads of ``head_dim``; full layers ``global_head_dim`` and, with ``attention_k_eq_v``, ``num_global_key_value_heads``
heads and no v_proj (V is the normed K). The last ``num_kv_shared_layers`` layers reuse an earlier layer's KV: no
k/v projections, no cache of their own, and a double-wide MLP with ``use_double_wide_mlp``. Every layer has a dense
gated MLP and four norms; ``enable_moe_block`` adds a router (proj, scale, per-expert scale), ``num_experts``
experts of ``moe_intermediate_size`` and three more norms. ``hidden_size_per_layer_input`` adds per-layer
embeddings (PLE). The vision tower is a ViT with a 2-D position table and gated MLPs.

Cache: K and V are both kept for full layers even with ``attention_k_eq_v`` (transformers' cache stores the
key and value states separately), which is the conservative reading for engines too.
"""

from __future__ import annotations

from typing import Any

from vramplan.errors import ConfigError, UnsupportedModelError
from vramplan.model.families_2026 import Config, attention_dims, base_fields, with_defaults
from vramplan.model.families_inventory import Inventory, embeddings, final_norm
from vramplan.model.hf_config import MAX_LAYERS, MAX_WIDTH, _dims, _require
from vramplan.model.layer_tensors import dense_mlp
from vramplan.model.layout import CacheLayer
from vramplan.model.spec import ModelSpec, MoESpec

#: Gemma4TextConfig defaults (transformers 5 configuration_gemma4.py).
_TEXT = dict(
    vocab_size=262_144,
    hidden_size=2304,
    intermediate_size=9216,
    num_hidden_layers=30,
    num_attention_heads=8,
    num_key_value_heads=4,
    head_dim=256,
    global_head_dim=512,
    max_position_embeddings=131_072,
    sliding_window=512,
    num_kv_shared_layers=0,
    hidden_size_per_layer_input=256,
    vocab_size_per_layer_input=262_144,
    tie_word_embeddings=True,
)


def _layer_types(text: dict[str, Any], n: int) -> list[str]:
    types = list(text.get("layer_types") or [])
    if not types:
        types = ["sliding_attention" if (i + 1) % 6 else "full_attention" for i in range(n)]
    if len(types) != n:
        raise ConfigError(f"layer_types has {len(types)} entries but num_hidden_layers is {n}")
    types[-1] = "full_attention"  # Gemma4TextConfig forces the last layer global
    return types


def kv_sharing_modes(types: list[str], shared: int) -> list[str]:
    """Gemma4TextConfig.kv_sharing_modes: the last ``shared`` layers reuse ("reuse"); the last unshared
    layer of each type produces their cache ("store")."""
    n = len(types)
    if shared >= n:
        return ["reuse"] * n
    first = n - shared
    modes = ["" if i < first else "reuse" for i in range(n)]
    if shared and set(types[:first]) != set(types):
        raise ConfigError(
            "num_kv_shared_layers leaves a layer type with no earlier layer to share KV from"
        )
    return modes


def per_layer_embeddings(inv: Inventory, text: dict[str, Any], h: int, n: int) -> None:
    """Per-layer embeddings (Gemma 3n and Gemma 4): the vocab x (layers * ple) table, its projection from the
    hidden state and norm, and each layer's gate, projection and norm; all in the ``per_layer_embeddings``
    component (a token lookup that llama.cpp keeps in host memory). The table is vocab-split under TP like the
    token embeddings."""
    ple = _require(text, "hidden_size_per_layer_input")
    vocab = _require(text, "vocab_size_per_layer_input")
    if n * ple > MAX_WIDTH:
        raise ConfigError(
            f"num_hidden_layers x hidden_size_per_layer_input = {n * ple:,} is beyond any real model"
        )
    component = "per_layer_embeddings"
    inv.linear("layers.per_layer_input_gate", ple, h, n, "replicated", component)
    inv.linear("layers.per_layer_projection", h, ple, n, "replicated", component)
    inv.add("layers.post_per_layer_input_norm.weight", (h,), n, "norm", component=component)
    inv.add(
        "embed_tokens_per_layer.weight",
        (vocab, n * ple),
        1,
        "embedding",
        "vocab",
        "first",
        component,
    )
    inv.add(
        "per_layer_model_projection.weight",
        (n * ple, h),
        1,
        "linear",
        "column",
        "first",
        component,
    )
    inv.add(
        "per_layer_projection_norm.weight", (ple,), 1, "norm", stage="first", component=component
    )


def _text(inv: Inventory, text: dict[str, Any], name: str, model_type: str) -> dict[str, Any]:
    n = _require(text, "num_hidden_layers", upper=MAX_LAYERS)
    types = _layer_types(text, n)
    modes = kv_sharing_modes(types, int(text.get("num_kv_shared_layers") or 0))
    window = _require(text, "sliding_window")
    if text.get("use_bidirectional_attention") == "all":
        window = window // 2 + 1
    base = {k: v for k, v in text.items() if k != "layer_types"}
    fields = base_fields(base, model_type, name)
    h, heads, kv, d = attention_dims(fields)
    gd = _require(text, "global_head_dim")
    k_eq_v = bool(text.get("attention_k_eq_v"))
    gkv = (text.get("num_global_key_value_heads") if k_eq_v else None) or kv
    inter = _require(text, "intermediate_size")
    bias = bool(text.get("attention_bias"))
    p = "layers.self_attn"
    caches: list[tuple[CacheLayer, ...]] = []
    for kind, mode in zip(types, modes):
        full = kind == "full_attention"
        hd, kvh = (gd, gkv) if full else (d, kv)
        inv.linear(f"{p}.q_proj", heads * hd, h, 1, "column", "attention", bias)
        inv.norm(f"{p}.q_norm", hd, 1)
        inv.linear(f"{p}.o_proj", h, heads * hd, 1, "row", "attention", bias)
        if mode != "reuse":
            kv_own = kvh if kvh != kv else 0
            inv.norm(f"{p}.k_norm", hd, 1)
            inv.linear(
                f"{p}.k_proj", kvh * hd, h, 1, "kv_column", "attention", bias, kv_heads=kv_own
            )
            if not (k_eq_v and full):
                inv.linear(
                    f"{p}.v_proj", kvh * hd, h, 1, "kv_column", "attention", bias, kv_heads=kv_own
                )
            caches.append(
                (CacheLayer("full", hd, hd, kvh),)
                if full
                else (CacheLayer("sliding", hd, hd, kvh, window),)
            )
        else:
            caches.append(())
        wide = 2 if (mode == "reuse" and text.get("use_double_wide_mlp")) else 1
        dense_mlp(inv, 1, h, inter * wide)
    inv.norm("layers.layernorm", h, 4 * n)
    if text.get("hidden_size_per_layer_input"):
        per_layer_embeddings(inv, text, h, n)
    moe = None
    if text.get("enable_moe_block"):
        e, k, width = (
            _require(text, "num_experts"),
            _require(text, "top_k_experts"),
            _require(text, "moe_intermediate_size"),
        )
        inv.linear("layers.router.proj", e, h, n, "replicated", "router", role="router")
        inv.add("layers.router.scale", (h,), n, "router", component="router")
        inv.add("layers.router.per_expert_scale", (e,), n, "router", component="router")
        dense_mlp(inv, n * e, h, width, True, False, "layers.experts", "experts", "expert")
        inv.norm("layers.layernorm_moe", h, 3 * n)
        moe = MoESpec(num_experts=e, experts_per_token=k, expert_intermediate_size=width)
    final_norm(inv, h)
    fields.update(
        layer_types=tuple(types),
        sliding_window=window,
        intermediate_size=inter,
        qk_norm=True,
        norms_per_layer=4,
        kv_layout=tuple(caches),
        moe=moe,
    )
    return fields


def _vision(inv: Inventory, vision: dict[str, Any], text_hidden: int) -> None:
    """Gemma4VisionModel + embed_vision (Linear vision -> text, no bias); extras, replicated."""
    h, inter, layers, heads, d, patch, positions = _dims(
        vision,
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "head_dim",
        "patch_size",
        "position_embedding_size",
    )
    kv = _require(vision, "num_key_value_heads") if vision.get("num_key_value_heads") else heads
    per_layer = (heads * d * h) * 2 + (kv * d * h) * 2 + 2 * d + 3 * inter * h + 4 * h
    inv.extra("vision_tower.patch_embedder", 2 * positions * h + h * 3 * patch * patch)
    inv.extra("vision_tower.encoder", layers * per_layer)
    inv.extra("embed_vision.embedding_projection", text_hidden * h)


_VISION = dict(
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=16,
    num_attention_heads=12,
    num_key_value_heads=12,
    head_dim=64,
    patch_size=16,
    position_embedding_size=10_240,
)


def _gemma4(cfg: Config, model_type: str, name: str) -> ModelSpec:
    if model_type == "gemma4":
        if cfg.get("audio_config") is not None:
            raise UnsupportedModelError(
                "gemma4 with an audio tower is not counted natively (the audio encoder is not modelled)"
            )
        text_raw = cfg.get("text_config") or {}
        if not isinstance(text_raw, dict):
            raise ConfigError("config.json field text_config must be an object")
        text = with_defaults(text_raw, _TEXT)
        text["tie_word_embeddings"] = bool(cfg.get("tie_word_embeddings", True))
        text.setdefault("torch_dtype", cfg.get("torch_dtype") or cfg.get("dtype"))
    else:
        text = with_defaults(cfg, _TEXT)
    inv = Inventory()
    fields = _text(inv, text, name, model_type)
    embeddings(
        inv, fields["vocab_size"], fields["hidden_size"], bool(text.get("tie_word_embeddings"))
    )
    if model_type == "gemma4" and isinstance(cfg.get("vision_config"), dict):
        _vision(inv, with_defaults(cfg["vision_config"], _VISION), fields["hidden_size"])
    fields.update(
        tensors=inv.groups(),
        tie_word_embeddings=bool(text.get("tie_word_embeddings")),
        quantization_config=cfg.get("quantization_config") or text.get("quantization_config"),
    )
    return ModelSpec(**fields)


BUILDERS = {"gemma4": _gemma4, "gemma4_text": _gemma4}
