"""Qwen vision-language families: Qwen2.5-VL (``qwen2_5_vl``), Qwen3-VL (``qwen3_vl``) and Qwen3-VL-MoE
(``qwen3_vl_moe``), counted as transformers 5 builds ``*ForConditionalGeneration``: the text decoder through the
Qwen2 / Qwen3 / Qwen3-MoE builders, the vision tower and its patch mergers as ``extra_params``.

Text fields come from ``text_config`` or, in the older flat files (Qwen2.5-VL), the top level. The lm_head is
tied when the top-level ``tie_word_embeddings`` says so, else by the top-level class default (False for all
three), as transformers 5 reads these files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from vramplan.model.families_2026 import Config, with_defaults
from vramplan.model.hf_config import _dims, _llama_like
from vramplan.model.spec import ModelSpec

#: Qwen3VLTextConfig's defaults; Qwen3VLMoeTextConfig keeps its vocabulary, head_dim and context.
_QWEN3_VL_TEXT = dict(
    vocab_size=151_936,
    hidden_size=4096,
    intermediate_size=22_016,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    head_dim=128,
    max_position_embeddings=128_000,
)
#: Text-config defaults (Qwen2_5_VLTextConfig, Qwen3VLTextConfig, Qwen3VLMoeTextConfig).
_TEXT: dict[str, dict[str, Any]] = {
    "qwen2_5_vl": dict(
        vocab_size=152_064,
        hidden_size=8192,
        intermediate_size=29_568,
        num_hidden_layers=80,
        num_attention_heads=64,
        num_key_value_heads=8,
        max_position_embeddings=32_768,
    ),
    "qwen3_vl": _QWEN3_VL_TEXT,
    "qwen3_vl_moe": dict(
        _QWEN3_VL_TEXT,
        hidden_size=2048,
        intermediate_size=5632,
        num_hidden_layers=24,
        num_attention_heads=16,
        num_key_value_heads=16,
        num_experts=60,
        num_experts_per_tok=4,
        moe_intermediate_size=1408,
        decoder_sparse_step=1,
    ),
}
#: The Qwen3-VL ViT without DeepStack mergers: Qwen3_5VisionConfig's defaults, Qwen3VLVisionConfig's but for them.
_QWEN3_VIT = dict(
    depth=27,
    hidden_size=1152,
    intermediate_size=4304,
    in_channels=3,
    patch_size=16,
    temporal_patch_size=2,
    spatial_merge_size=2,
    out_hidden_size=3584,
    num_position_embeddings=2304,
)
#: Vision-config defaults (Qwen2_5_VLVisionConfig, Qwen3VLVisionConfig).
_VISION: dict[str, dict[str, Any]] = {
    "qwen2_5_vl": dict(
        depth=32,
        hidden_size=3584,
        intermediate_size=3420,
        in_channels=3,
        patch_size=14,
        temporal_patch_size=2,
        spatial_merge_size=2,
        out_hidden_size=3584,
    ),
    "qwen3_vl": dict(_QWEN3_VIT, deepstack_visual_indexes=[8, 16, 24]),
}
_TEXT_MODEL = {"qwen2_5_vl": "qwen2", "qwen3_vl": "qwen3", "qwen3_vl_moe": "qwen3_moe"}


def _text_config(cfg: Config, model_type: str) -> dict[str, Any]:
    nested = cfg.get("text_config")
    text = (
        dict(nested)
        if isinstance(nested, dict)
        else {k: v for k, v in cfg.items() if k != "vision_config"}
    )
    text = with_defaults(text, _TEXT[model_type])
    text["torch_dtype"] = (
        text.get("torch_dtype")
        or text.get("dtype")
        or cfg.get("torch_dtype")
        or cfg.get("dtype")
        or "bfloat16"
    )
    text["tie_word_embeddings"] = bool(cfg.get("tie_word_embeddings", False))
    text.pop("layer_types", None)  # Qwen2.5-VL's text layer_types only restate use_sliding_window
    return text


def _qwen25_vision(vision: Config) -> tuple[tuple[str, int], ...]:
    """Qwen2.5-VL ViT: Conv3d patch embed (no bias), RMSNorm blocks with a biased qkv/proj and a gated
    biased MLP, and a patch merger (RMSNorm, Linear(h m^2, h m^2), Linear(h m^2, out))."""
    h, inter, depth, channels, patch, temporal, merge, out = _dims(
        vision,
        "hidden_size",
        "intermediate_size",
        "depth",
        "in_channels",
        "patch_size",
        "temporal_patch_size",
        "spatial_merge_size",
        "out_hidden_size",
    )
    block = 2 * h + (3 * h * h + 3 * h) + (h * h + h) + 2 * (inter * h + inter) + (h * inter + h)
    wide = h * merge * merge
    return (
        ("visual.patch_embed", channels * temporal * patch * patch * h),
        ("visual.blocks", depth * block),
        ("visual.merger", h + wide * wide + wide + out * wide + out),
    )


def _qwen3_vision(vision: Config) -> tuple[tuple[str, int], ...]:
    """Qwen3-VL ViT: biased Conv3d patch embed, learned position embeddings, LayerNorm blocks with biased
    qkv/proj and a plain biased MLP (linear_fc1/fc2); a merger (LayerNorm over h) and one DeepStack merger per
    ``deepstack_visual_indexes`` entry (LayerNorm over h m^2)."""
    h, inter, depth, channels, patch, temporal, merge, out, positions = _dims(
        vision,
        "hidden_size",
        "intermediate_size",
        "depth",
        "in_channels",
        "patch_size",
        "temporal_patch_size",
        "spatial_merge_size",
        "out_hidden_size",
        "num_position_embeddings",
    )
    block = 2 * (2 * h) + (3 * h * h + 3 * h) + (h * h + h) + (inter * h + inter) + (h * inter + h)
    wide = h * merge * merge
    mlp = wide * wide + wide + out * wide + out
    deepstack = len(vision.get("deepstack_visual_indexes") or [])
    parts = (
        ("visual.patch_embed", channels * temporal * patch * patch * h + h),
        ("visual.pos_embed", positions * h),
        ("visual.blocks", depth * block),
        ("visual.merger", 2 * h + mlp),
    )
    return (
        (*parts, ("visual.deepstack_merger_list", deepstack * (2 * wide + mlp)))
        if deepstack
        else parts
    )


def qwen3_5_vision_params(vision: Any) -> tuple[tuple[str, int], ...]:
    """Qwen3.5 / 3.6 vision tower (Qwen3_5VisionModel): the Qwen3-VL ViT and merger, no DeepStack mergers."""
    from vramplan.errors import ConfigError, UnsupportedModelError

    if not isinstance(vision, Mapping):
        raise ConfigError("config.json vision_config must be an object")
    if vision.get("deepstack_visual_indexes"):
        raise UnsupportedModelError(
            "qwen3_5 vision towers with deepstack_visual_indexes are not supported yet (the published ones have none)"
        )
    return _qwen3_vision(with_defaults(vision, _QWEN3_VIT))


def _qwen_vl(cfg: Config, model_type: str, name: str) -> ModelSpec:
    text = _text_config(cfg, model_type)
    base = _llama_like(text, _TEXT_MODEL[model_type], name)
    vision_raw = cfg.get("vision_config")
    vision: dict[str, Any] = dict(vision_raw) if isinstance(vision_raw, dict) else {}
    if "in_chans" in vision and "in_channels" not in vision:
        vision["in_channels"] = vision["in_chans"]
    defaults = _VISION["qwen2_5_vl" if model_type == "qwen2_5_vl" else "qwen3_vl"]
    vision = with_defaults(vision, defaults)
    extra = _qwen25_vision(vision) if model_type == "qwen2_5_vl" else _qwen3_vision(vision)
    return dataclasses.replace(
        base,
        model_type=model_type,
        quantization_config=cfg.get("quantization_config") or text.get("quantization_config"),
        extra_params=extra,
    )


# Lfm2VlConfig / Siglip2VisionConfig defaults (transformers 5).
_LFM2_VL = dict(
    downsample_factor=2,
    projector_hidden_size=2560,
    projector_bias=True,
    projector_use_layernorm=True,
)
_SIGLIP2 = dict(
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    num_channels=3,
    num_patches=256,
    patch_size=16,
)


def lfm2_vl_vision_params(cfg: Config, text_hidden: int) -> tuple[tuple[str, int], ...]:
    """SigLIP2 NaFlex tower (linear patch embedding with bias, learned positions, LayerNorm blocks with biased
    q/k/v/out and fc1/fc2, post LayerNorm) + the LFM2-VL projector (pixel unshuffle by downsample_factor,
    optional LayerNorm, Linear -> projector_hidden_size -> text hidden, biased per projector_bias)."""
    raw = cfg.get("vision_config")
    vision = with_defaults(dict(raw) if isinstance(raw, dict) else {}, _SIGLIP2)
    top = with_defaults(cfg, _LFM2_VL)
    h, inter, layers, channels, patches, patch = _dims(
        vision,
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_channels",
        "num_patches",
        "patch_size",
    )
    block = 2 * (2 * h) + 4 * (h * h + h) + (inter * h + inter) + (h * inter + h)
    ds, hidden = _dims(top, "downsample_factor", "projector_hidden_size")
    wide = h * ds * ds
    bias = bool(top.get("projector_bias"))
    projector = (
        (2 * wide if top.get("projector_use_layernorm") else 0)
        + wide * hidden
        + (hidden if bias else 0)
        + hidden * text_hidden
        + (text_hidden if bias else 0)
    )
    return (
        ("vision_tower.embeddings", channels * patch * patch * h + h + patches * h),
        ("vision_tower.encoder", layers * block),
        ("vision_tower.post_layernorm", 2 * h),
        ("multi_modal_projector", projector),
    )


def _lfm2_vl(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """LFM2-VL: an LFM2 decoder (short-conv + attention hybrid, built by the ``lfm2`` builder) plus the SigLIP2
    tower and projector counted here. lm_head tied unless the top level says otherwise (Lfm2VlConfig default)."""
    from vramplan.errors import UnsupportedModelError
    from vramplan.model.hf_config import _BUILDERS

    text_builder = _BUILDERS.get("lfm2")
    if text_builder is None:
        raise UnsupportedModelError(
            "lfm2_vl needs the lfm2 text decoder (short-conv state layers), which this build does not count"
        )
    raw = cfg.get("text_config")
    text: dict[str, Any] = dict(raw) if isinstance(raw, dict) else {}
    text.setdefault("model_type", "lfm2")
    text["tie_word_embeddings"] = bool(cfg.get("tie_word_embeddings", True))
    text.setdefault("torch_dtype", cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16")
    base = text_builder(text, "lfm2", name)
    return dataclasses.replace(
        base,
        model_type=model_type,
        quantization_config=cfg.get("quantization_config") or base.quantization_config,
        extra_params=(*base.extra_params, *lfm2_vl_vision_params(cfg, base.hidden_size)),
    )


BUILDERS = {
    "qwen2_5_vl": _qwen_vl,
    "qwen3_vl": _qwen_vl,
    "qwen3_vl_moe": _qwen_vl,
    "lfm2_vl": _lfm2_vl,
}
