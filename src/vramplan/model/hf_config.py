"""config.json -> ModelSpec. Each family's quirks live in one table row, not in scattered ifs.

The reader never imports transformers and never runs model code: it reads the JSON facts and the
defaults each family's configuration class applies when a key is absent (cited per row).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vramplan.errors import ConfigError, FileFormatError, UnsupportedModelError
from vramplan.model.families_hybrid import HYBRID_BUILDERS, REMOTE_CODE_ONLY
from vramplan.model.spec import MAX_LAYERS, MAX_WIDTH, AttentionKind, MLASpec, ModelSpec, MoESpec

Config = Mapping[str, Any]


@dataclass(frozen=True)
class Family:
    """What a family's config class does with missing keys and how its layers look."""

    mlp_kind: str = "gated"
    norm_kind: str = "rms"
    norms_per_layer: int = 2
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False
    tie_default: bool = False
    #: Sliding window applies to every layer when the config has one (Mistral v0.1).
    uniform_sliding: bool = False
    default_dtype: str = "float32"


# Defaults follow each transformers configuration class (configuration_<family>.py).
FAMILIES: dict[str, Family] = {
    "llama": Family(),
    "mistral": Family(uniform_sliding=True),
    "qwen2": Family(qkv_bias=True),
    "qwen3": Family(qk_norm=True),
    "qwen3_moe": Family(qk_norm=True),
    "qwen2_moe": Family(qkv_bias=True),
    "mixtral": Family(uniform_sliding=True),
    "phi3": Family(),
    "gemma": Family(tie_default=True),
    "gemma2": Family(norms_per_layer=4, tie_default=True),
    "gemma3_text": Family(norms_per_layer=4, qk_norm=True, tie_default=True),
    "gpt_oss": Family(qkv_bias=True, o_bias=True),
    "deepseek_v2": Family(),
    "deepseek_v3": Family(),
}


def _get(cfg: Config, *keys: str, default: Any = None) -> Any:
    for key in keys:
        if key in cfg and cfg[key] is not None:
            return cfg[key]
    return default


def _require(cfg: Config, *keys: str, upper: int = MAX_WIDTH) -> Any:
    value = _get(cfg, *keys)
    if value is None:
        raise ConfigError(
            f"config.json has no {' / '.join(keys)}: it does not describe a model we can size "
            "(is it truncated, or the config of a tokenizer/processor?)"
        )
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"config.json field {keys[0]} must be a positive integer, got {value!r}")
    if value > upper:
        raise ConfigError(
            f"config.json field {keys[0]} = {value:,} is beyond any real model (limit {upper:,}): is the file corrupt?"
        )
    return value


def _check_spec(spec: ModelSpec) -> ModelSpec:
    """Every size a ModelSpec carries must be a sane positive integer; the message names the field."""
    ints = {
        "vocab_size": spec.vocab_size,
        "hidden_size": spec.hidden_size,
        "num_hidden_layers": spec.num_layers,
        "num_attention_heads": spec.num_heads,
        "num_key_value_heads": spec.num_kv_heads,
        "head_dim": spec.head_dim,
        "v_head_dim": spec.v_head_dim,
        "intermediate_size": spec.intermediate_size,
        "max_position_embeddings": spec.max_position_embeddings,
    }
    if spec.sliding_window is not None:
        ints["sliding_window"] = spec.sliding_window
    elif "sliding_attention" in spec.layer_types:
        raise ConfigError(
            "config.json marks sliding-window layers (layer_types) but gives no sliding_window size"
        )
    if spec.moe is not None:
        ints.update(
            num_experts=spec.moe.num_experts,
            num_experts_per_tok=spec.moe.experts_per_token,
            moe_intermediate_size=spec.moe.expert_intermediate_size,
        )
    for name, value in ints.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"config.json field {name} must be a positive integer, got {value!r}")
        if value > (MAX_LAYERS if name == "num_hidden_layers" else MAX_WIDTH):
            raise ConfigError(
                f"config.json field {name} = {value:,} is beyond any real model: is the file corrupt?"
            )
    optional = {
        "word_embed_proj_dim": spec.word_embed_proj_dim,
        "position embeddings": spec.learned_position_embeddings,
    }
    if spec.moe is not None:
        optional["shared expert width (n_shared_experts / shared_expert_intermediate_size)"] = (
            spec.moe.shared_intermediate_size
        )
    if spec.mla is not None:
        optional.update(
            q_lora_rank=spec.mla.q_lora_rank,
            kv_lora_rank=spec.mla.kv_lora_rank,
            qk_nope_head_dim=spec.mla.qk_nope_head_dim,
            qk_rope_head_dim=spec.mla.qk_rope_head_dim,
            v_head_dim=spec.mla.v_head_dim,
        )
    for name, value in optional.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_WIDTH:
            raise ConfigError(
                f"config.json field {name} must be a non-negative integer, got {value!r}"
            )
    if spec.moe is not None and spec.moe.experts_per_token > spec.moe.num_experts:
        raise ConfigError(
            "config.json routes each token to more experts than the model has (num_experts_per_tok > num_experts)"
        )
    if spec.quantization_config is not None and not isinstance(spec.quantization_config, Mapping):
        raise ConfigError(
            f"config.json quantization_config must be an object, got {type(spec.quantization_config).__name__}"
        )
    return spec


def _dtype(cfg: Config, default: str) -> str:
    value = _get(cfg, "torch_dtype", "dtype", default=default)
    return str(value).replace("torch.", "")


def _layer_types(
    cfg: Config, n_layers: int, family: Family
) -> tuple[tuple[AttentionKind, ...], int | None]:
    window = _get(cfg, "sliding_window")
    types = cfg.get("layer_types")
    if types:
        if len(types) != n_layers:
            raise ConfigError(
                f"layer_types has {len(types)} entries but num_hidden_layers is {n_layers}"
            )
        kinds: list[AttentionKind] = [
            "sliding_attention"
            if t in ("sliding_attention", "chunked_attention")
            else "full_attention"
            for t in types
        ]
        return tuple(kinds), window
    if family.uniform_sliding and window and cfg.get("use_sliding_window", True):
        sliding: AttentionKind = "sliding_attention"
        return (sliding,) * n_layers, window
    full: AttentionKind = "full_attention"
    return (full,) * n_layers, None


def _common(cfg: Config, family: Family, model_type: str, name: str) -> dict[str, Any]:
    hidden = _require(cfg, "hidden_size", "n_embd", "n_embed", "d_model")
    heads = _require(cfg, "num_attention_heads", "n_head")
    n_layers = _require(cfg, "num_hidden_layers", "n_layer", upper=MAX_LAYERS)
    kv_heads = _get(cfg, "num_key_value_heads", "num_kv_heads", "n_head_kv", default=heads)
    head_dim = _get(cfg, "head_dim", default=hidden // heads)
    if hidden % heads and "head_dim" not in cfg:
        raise ConfigError(
            f"hidden_size {hidden} is not divisible by num_attention_heads {heads} and no head_dim is given"
        )
    if heads % kv_heads:
        raise ConfigError(
            f"num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}"
        )
    layer_types, window = _layer_types(cfg, n_layers, family)
    return dict(
        name=name,
        model_type=model_type,
        vocab_size=_require(cfg, "vocab_size"),
        hidden_size=hidden,
        num_layers=n_layers,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate_size=_get(cfg, "intermediate_size", "ffn_dim", "n_inner", default=4 * hidden),
        max_position_embeddings=_get(
            cfg, "max_position_embeddings", "n_positions", "seq_length", default=2048
        ),
        mlp_kind=family.mlp_kind,
        norm_kind=family.norm_kind,
        norms_per_layer=family.norms_per_layer,
        qkv_bias=bool(_get(cfg, "attention_bias", default=family.qkv_bias)) or family.qkv_bias,
        o_bias=bool(_get(cfg, "attention_bias", default=family.o_bias))
        if model_type != "qwen2"
        else False,
        mlp_bias=bool(_get(cfg, "mlp_bias", default=family.mlp_bias)),
        qk_norm=family.qk_norm,
        tie_word_embeddings=bool(_get(cfg, "tie_word_embeddings", default=family.tie_default)),
        layer_types=layer_types,
        sliding_window=window,
        torch_dtype=_dtype(cfg, family.default_dtype),
        quantization_config=cfg.get("quantization_config") or cfg.get("compression_config"),
        rope_scaling=cfg.get("rope_scaling") or cfg.get("rope_parameters"),
    )


def _llama_like(cfg: Config, model_type: str, name: str) -> ModelSpec:
    family = FAMILIES[model_type]
    fields = _common(cfg, family, model_type, name)
    if model_type in ("qwen2", "qwen2_moe"):
        fields["qkv_bias"], fields["o_bias"] = True, False
    if model_type in ("qwen2", "qwen3", "qwen3_moe", "qwen2_moe") and not cfg.get(
        "use_sliding_window", False
    ):
        fields["layer_types"], fields["sliding_window"] = (
            ("full_attention",) * fields["num_layers"],
            None,
        )
    if model_type == "gpt_oss":
        fields["attention_sinks"] = True
        fields["moe"] = MoESpec(
            num_experts=_require(cfg, "num_local_experts"),
            experts_per_token=_require(cfg, "num_experts_per_tok", "experts_per_token"),
            expert_intermediate_size=fields["intermediate_size"],
            router_bias=True,
            expert_bias=True,
        )
    elif model_type == "mixtral":
        fields["moe"] = MoESpec(
            num_experts=_require(cfg, "num_local_experts"),
            experts_per_token=_require(cfg, "num_experts_per_tok"),
            expert_intermediate_size=fields["intermediate_size"],
        )
    elif model_type in ("qwen3_moe", "qwen2_moe"):
        n_layers = fields["num_layers"]
        step = _get(cfg, "decoder_sparse_step", default=1)
        only = set(cfg.get("mlp_only_layers") or [])
        dense = tuple(
            i for i in range(n_layers) if i in only or not (step > 0 and (i + 1) % step == 0)
        )
        fields["moe"] = MoESpec(
            num_experts=_require(cfg, "num_experts"),
            experts_per_token=_require(cfg, "num_experts_per_tok"),
            expert_intermediate_size=_require(cfg, "moe_intermediate_size"),
            shared_intermediate_size=_get(cfg, "shared_expert_intermediate_size", default=0)
            if model_type == "qwen2_moe"
            else 0,
            shared_expert_gate=model_type == "qwen2_moe",
            dense_layers=dense,
        )
    return ModelSpec(**fields)


def _gemma3(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """Gemma 3: a text config nested in a multimodal one; absent keys take Gemma3TextConfig defaults."""
    text = dict(cfg.get("text_config") or cfg) if model_type == "gemma3" else dict(cfg)
    defaults = dict(
        vocab_size=262_208,
        hidden_size=2304,
        intermediate_size=9216,
        num_hidden_layers=26,
        num_attention_heads=8,
        num_key_value_heads=4,
        head_dim=256,
        max_position_embeddings=131_072,
        sliding_window=4096,
        sliding_window_pattern=6,
    )
    for key, value in defaults.items():
        text.setdefault(key, value)
    n_layers = _require(text, "num_hidden_layers", upper=MAX_LAYERS)
    if not text.get("layer_types"):
        pattern = text.get("sliding_window_pattern", 6)
        text["layer_types"] = [
            "full_attention" if (i + 1) % pattern == 0 else "sliding_attention"
            for i in range(n_layers)
        ]
    text.setdefault("torch_dtype", cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16")
    if "tie_word_embeddings" not in text and "tie_word_embeddings" in cfg:
        text["tie_word_embeddings"] = cfg["tie_word_embeddings"]
    fields = _common(text, FAMILIES["gemma3_text"], "gemma3_text", name)
    fields["quantization_config"] = cfg.get("quantization_config")
    if model_type == "gemma3" and cfg.get("vision_config") is not None:
        fields["extra_params"] = _siglip_params(cfg["vision_config"], fields["hidden_size"])
        fields["model_type"] = "gemma3"
    return ModelSpec(**fields)


def _siglip_params(vision: Config, text_hidden: int) -> tuple[tuple[str, int], ...]:
    """SigLIP vision tower + Gemma 3 projector, counted as transformers builds them (no pooling head)."""
    h = vision.get("hidden_size", 768)
    inter = vision.get("intermediate_size", 3072)
    layers = vision.get("num_hidden_layers", 12)
    patch = vision.get("patch_size", 16)
    image = vision.get("image_size", 224)
    channels = vision.get("num_channels", 3)
    patches = (image // patch) ** 2
    embeddings = channels * patch * patch * h + h + patches * h
    per_layer = 4 * (h * h + h) + (h * inter + inter) + (inter * h + h) + 2 * (2 * h)
    post_norm = 2 * h
    projector = h * text_hidden + h
    return (
        ("vision_tower.embeddings", embeddings),
        ("vision_tower.encoder", layers * per_layer),
        ("vision_tower.post_layernorm", post_norm),
        ("multi_modal_projector", projector),
    )


def _gemma2(cfg: Config, model_type: str, name: str) -> ModelSpec:
    n_layers = _require(cfg, "num_hidden_layers", upper=MAX_LAYERS)
    cfg = dict(cfg)
    if not cfg.get("layer_types"):
        # Gemma2Config: even layers slide, odd layers attend globally.
        cfg["layer_types"] = [
            "sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n_layers)
        ]
    cfg.setdefault("sliding_window", 4096)
    return ModelSpec(**_common(cfg, FAMILIES["gemma2"], model_type, name))


def _deepseek(cfg: Config, model_type: str, name: str) -> ModelSpec:
    fields = _common(cfg, FAMILIES[model_type], model_type, name)
    q_lora = _get(cfg, "q_lora_rank", default=0) or 0
    mla = MLASpec(
        q_lora_rank=q_lora,
        kv_lora_rank=_require(cfg, "kv_lora_rank"),
        qk_nope_head_dim=_require(cfg, "qk_nope_head_dim"),
        qk_rope_head_dim=_require(cfg, "qk_rope_head_dim"),
        v_head_dim=_require(cfg, "v_head_dim"),
    )
    n_layers = fields["num_layers"]
    first_dense = _get(cfg, "first_k_dense_replace", default=0)
    freq = _get(cfg, "moe_layer_freq", default=1)
    dense = tuple(i for i in range(n_layers) if not (i >= first_dense and i % freq == 0))
    n_routed = _get(cfg, "n_routed_experts")
    moe = None
    if n_routed:
        moe = MoESpec(
            num_experts=n_routed,
            experts_per_token=_require(cfg, "num_experts_per_tok"),
            expert_intermediate_size=_require(cfg, "moe_intermediate_size"),
            shared_intermediate_size=(_get(cfg, "n_shared_experts", default=0) or 0)
            * cfg["moe_intermediate_size"],
            router_correction_bias=model_type == "deepseek_v3",
            dense_layers=dense,
        )
    fields.update(
        mla=mla,
        moe=moe,
        head_dim=mla.qk_nope_head_dim + mla.qk_rope_head_dim,
        v_head_dim=mla.v_head_dim,
        num_kv_heads=fields["num_heads"],
        qkv_bias=False,
        o_bias=False,
    )
    return ModelSpec(**fields)


def _falcon(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """Falcon in both the 2023 RefinedWeb(Model) format and the transformers `falcon` format."""
    new_arch = bool(cfg.get("new_decoder_architecture")) or model_type == "RefinedWeb"
    heads = _require(cfg, "num_attention_heads", "n_head")
    if new_arch:
        kv_heads = _get(cfg, "num_kv_heads", "n_head_kv", default=heads)
    elif cfg.get("multi_query", True):
        kv_heads = 1
    else:
        kv_heads = heads
    parallel = cfg.get("parallel_attn", True)
    norms = 2 if (new_arch or not parallel) else 1
    fields = _common(
        {**cfg, "num_key_value_heads": kv_heads},
        Family(
            mlp_kind="plain",
            norm_kind="layer",
            norms_per_layer=norms,
            tie_default=True,
            default_dtype="bfloat16",
        ),
        "falcon",
        name,
    )
    bias = bool(cfg.get("bias", False))
    hidden = fields["hidden_size"]
    fields.update(
        intermediate_size=_get(cfg, "ffn_hidden_size", default=4 * hidden),
        qkv_bias=bias,
        o_bias=bias,
        mlp_bias=bias,
        max_position_embeddings=_get(cfg, "max_position_embeddings", default=2048),
    )
    return ModelSpec(**fields)


def _bloom(cfg: Config, model_type: str, name: str) -> ModelSpec:
    fields = _common(
        cfg,
        Family(mlp_kind="plain", norm_kind="layer", tie_default=True, default_dtype="bfloat16"),
        model_type,
        name,
    )
    fields.update(
        qkv_bias=True,
        o_bias=True,
        mlp_bias=True,
        embedding_norm=True,
        max_position_embeddings=2048,
        intermediate_size=4 * fields["hidden_size"],
    )
    return ModelSpec(**fields)


def _opt(cfg: Config, model_type: str, name: str) -> ModelSpec:
    fields = _common(
        cfg,
        Family(mlp_kind="plain", norm_kind="layer", tie_default=True, default_dtype="float16"),
        model_type,
        name,
    )
    bias = bool(cfg.get("enable_bias", True))
    proj = _get(cfg, "word_embed_proj_dim", default=fields["hidden_size"])
    fields.update(
        qkv_bias=bias,
        o_bias=bias,
        mlp_bias=bias,
        learned_position_embeddings=fields["max_position_embeddings"]
        + 2,  # OPT offsets positions by 2
        final_norm=bool(cfg.get("do_layer_norm_before", True))
        and not cfg.get("_remove_final_layer_norm", False),
        word_embed_proj_dim=proj if proj != fields["hidden_size"] else 0,
    )
    return ModelSpec(**fields)


def _gpt2(cfg: Config, model_type: str, name: str) -> ModelSpec:
    fields = _common(
        cfg,
        Family(mlp_kind="plain", norm_kind="layer", tie_default=True, default_dtype="float32"),
        model_type,
        name,
    )
    fields.update(
        qkv_bias=True,
        o_bias=True,
        mlp_bias=True,
        learned_position_embeddings=fields["max_position_embeddings"],
    )
    return ModelSpec(**fields)


def _gptj(cfg: Config, model_type: str, name: str) -> ModelSpec:
    fields = _common(
        cfg,
        Family(mlp_kind="plain", norm_kind="layer", norms_per_layer=1, default_dtype="float32"),
        model_type,
        name,
    )
    fields.update(
        qkv_bias=False, o_bias=False, mlp_bias=True, lm_head_bias=True, tie_word_embeddings=False
    )
    return ModelSpec(**fields)


def _phi(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """Phi-1/1.5/2 (transformers `phi`): attention and MLP in parallel off one LayerNorm with bias; every
    Linear (q/k/v, dense, fc1, fc2, lm_head) has a bias; partial rotary changes no shape; final LayerNorm.
    PhiConfig defaults: tie_word_embeddings False, qk_layernorm False, num_key_value_heads = heads."""
    if cfg.get("qk_layernorm"):
        # Per-head LayerNorms on q and k (no released Phi checkpoint uses them): refuse rather than miscount.
        raise UnsupportedModelError(
            "phi with qk_layernorm=true is not supported: vramplan does not count those norms"
        )
    fields = _common(
        cfg,
        Family(mlp_kind="plain", norm_kind="layer", norms_per_layer=1, default_dtype="float32"),
        model_type,
        name,
    )
    fields.update(
        qkv_bias=True,
        o_bias=True,
        mlp_bias=True,
        lm_head_bias=True,
        tie_word_embeddings=bool(_get(cfg, "tie_word_embeddings", default=False)),
    )
    return ModelSpec(**fields)


# --- Llama 4, Mistral 3 (Pixtral), Llama 3.2 Vision (mllama) ----------------------------------------------


def _sub(cfg: Config, key: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """A nested text/vision config with its configuration class's defaults filled in (absent or null keys)."""
    sub = cfg.get(key)
    if sub is not None and not isinstance(sub, Mapping):
        raise ConfigError(f"config.json field {key} must be an object, got {type(sub).__name__}")
    out = dict(sub or {})
    for k, v in defaults.items():
        if out.get(k) is None:
            out[k] = v
    return out


def _tie(cfg: Config, text: Config) -> bool:
    """Whether lm_head shares the input embedding in a multimodal checkpoint: the top-level key when the file
    has one, else the text config's (False when neither says). This is how transformers 4.x read these files;
    transformers 5 uses the top-level class default instead when the key is absent (see SOURCES.md, Mistral 3)."""
    if cfg.get("tie_word_embeddings") is not None:
        return bool(cfg["tie_word_embeddings"])
    return bool(text.get("tie_word_embeddings") or False)


def _pair(value: Any) -> tuple[int, int]:
    """An image or patch size: an int, or a (height, width) pair; each a positive integer."""
    pair = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
    if len(pair) != 2 or any(
        isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= MAX_WIDTH for v in pair
    ):
        raise ConfigError(
            f"config.json image/patch size must be a positive integer or a pair of them, got {value!r}"
        )
    return pair[0], pair[1]


def _dims(sub: Config, *keys: str) -> list[int]:
    """Positive integer fields of a nested (vision) config, validated like the top-level ones."""
    return [_require(sub, key) for key in keys]


# Llama4TextConfig / Llama4VisionConfig defaults (transformers configuration_llama4.py).
_LLAMA4_TEXT = dict(
    vocab_size=202_048,
    hidden_size=5120,
    intermediate_size=8192,
    intermediate_size_mlp=16_384,
    num_hidden_layers=48,
    num_attention_heads=40,
    num_key_value_heads=8,
    head_dim=128,
    max_position_embeddings=131_072,
    num_experts_per_tok=1,
    num_local_experts=16,
    interleave_moe_layer_step=1,
    no_rope_layer_interval=4,
)
_LLAMA4_VISION = dict(
    hidden_size=768,
    num_hidden_layers=34,
    num_attention_heads=16,
    num_channels=3,
    intermediate_size=5632,
    vision_output_dim=7680,
    image_size=448,
    patch_size=14,
    projector_input_dim=4096,
    projector_output_dim=4096,
)


def _llama4(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """Llama 4 (Llama4ForConditionalGeneration; `llama4_text` for the bare decoder).

    Text: MoE layers at ``moe_layers`` (default every ``interleave_moe_layer_step``-th layer, counting from
    step - 1), each with ``num_local_experts`` experts of width ``intermediate_size``, a sigmoid router without
    bias and one always-on shared expert of the same width; the other layers have a dense MLP of width
    ``intermediate_size_mlp``. QK norm (``use_qk_norm``) is a weightless L2 norm: no parameters.
    Attention: RoPE layers (``no_rope_layers[i]`` = 1) attend within chunks of ``attention_chunk_size`` tokens,
    NoPE layers (every ``no_rope_layer_interval``-th by default) attend globally. A chunked layer keeps at most
    C - 1 past tokens (the last token of a chunk sees the C - 1 before it), which is exactly what a sliding
    layer with window C keeps in the core, so chunked layers are ``sliding_attention`` with window C.
    """
    text = (
        _sub(cfg, "text_config", _LLAMA4_TEXT)
        if model_type == "llama4"
        else _sub({"t": cfg}, "t", _LLAMA4_TEXT)
    )
    n_layers = _require(text, "num_hidden_layers", upper=MAX_LAYERS)
    chunk = text.get("attention_chunk_size", 8192)
    if not text.get("layer_types"):
        interval = text["no_rope_layer_interval"]
        rope = text.get("no_rope_layers") or [int((i + 1) % interval != 0) for i in range(n_layers)]
        if len(rope) != n_layers:
            raise ConfigError(
                f"no_rope_layers has {len(rope)} entries but num_hidden_layers is {n_layers}"
            )
        text["layer_types"] = [
            "chunked_attention" if r and chunk is not None else "full_attention" for r in rope
        ]
    text["sliding_window"] = chunk if "chunked_attention" in text["layer_types"] else None
    text.setdefault("torch_dtype", cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16")
    fields = _common(text, Family(), "llama4_text", name)
    dense_width = _require(text, "intermediate_size_mlp")
    expert_width = _require(text, "intermediate_size")
    step = _require(text, "interleave_moe_layer_step", upper=MAX_LAYERS)
    moe_layers = text.get("moe_layers")
    if moe_layers is None:
        moe_layers = range(step - 1, n_layers, step)
    moe_set = {int(i) for i in moe_layers}
    fields.update(
        intermediate_size=dense_width,
        moe=MoESpec(
            num_experts=_require(text, "num_local_experts"),
            experts_per_token=_require(text, "num_experts_per_tok"),
            expert_intermediate_size=expert_width,
            shared_intermediate_size=expert_width,
            dense_layers=tuple(i for i in range(n_layers) if i not in moe_set),
        ),
        tie_word_embeddings=_tie(cfg, text)
        if model_type == "llama4"
        else bool(text.get("tie_word_embeddings") or False),
        quantization_config=cfg.get("quantization_config"),
    )
    if model_type == "llama4":
        fields["model_type"] = "llama4"
        fields["extra_params"] = _llama4_vision_params(
            _sub(cfg, "vision_config", _LLAMA4_VISION), fields["hidden_size"]
        )
    return ModelSpec(**fields)


def _llama4_vision_params(vision: Config, text_hidden: int) -> tuple[tuple[str, int], ...]:
    """Llama4VisionModel + Llama4MultiModalProjector as transformers builds them."""
    h, inter, layers, heads, channels, out_dim, proj_in, proj_out = _dims(
        vision,
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_channels",
        "vision_output_dim",
        "projector_input_dim",
        "projector_output_dim",
    )
    ph, pw = _pair(vision["patch_size"])
    ih, iw = _pair(vision["image_size"])
    attn = heads * (h // heads)
    patches = (ih // ph) * (
        iw // pw
    ) + 1  # transformers: (image_size // patch_size) ** 2 + 1, class token included
    embeddings = (
        channels * ph * pw * h + h + patches * h
    )  # unfold-conv Linear (no bias), class, positions
    per_layer = (
        3 * (h * attn + attn) + (attn * h + h) + (h * inter + inter) + (inter * h + h) + 2 * (2 * h)
    )
    # Pixel-shuffle MLP: fc1 takes intermediate_size inputs (as transformers defines it), fc2 is square; no biases.
    adapter = inter * proj_in + proj_out * proj_out
    return (
        ("vision_model.embeddings", embeddings),
        ("vision_model.layernorm_pre_post", 2 * (2 * h)),
        ("vision_model.encoder", layers * per_layer),
        ("vision_model.vision_adapter", adapter),
        ("multi_modal_projector", out_dim * text_hidden),  # linear_1, no bias
    )


# MistralConfig defaults for a text_config that leaves keys out; Mistral3Config's own default sub-configs.
_MISTRAL_TEXT = dict(
    vocab_size=32_000,
    hidden_size=4096,
    intermediate_size=14_336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    max_position_embeddings=131_072,
)
_MISTRAL3_DEFAULT_TEXT = dict(
    model_type="mistral",
    head_dim=128,
    hidden_size=5120,
    intermediate_size=32_768,
    max_position_embeddings=131_072,
    num_attention_heads=32,
    num_hidden_layers=40,
    num_key_value_heads=8,
    sliding_window=None,
    vocab_size=131_072,
)
_PIXTRAL = dict(
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=24,
    num_attention_heads=16,
    num_channels=3,
    patch_size=16,
)
_MISTRAL3_DEFAULT_VISION = dict(_PIXTRAL, patch_size=14)


def _mistral3(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """Mistral 3 (Mistral Small 3.1/3.2): a Mistral decoder, a Pixtral vision tower and a projector
    (RMSNorm, patch merger Linear(h * s^2, h), linear_1 vision -> text, linear_2 text -> text)."""
    text = _sub(
        cfg, "text_config", _MISTRAL3_DEFAULT_TEXT if cfg.get("text_config") is None else {}
    )
    text_type = str(text.get("model_type") or "mistral")
    if (
        text_type == "ministral3"
    ):  # Devstral 2 / Ministral 3: Mistral's layout (yarn/llama-4 scaling only)
        text_type = "mistral"
    if text_type == "mistral":
        for k, v in _MISTRAL_TEXT.items():
            if text.get(k) is None:
                text[k] = v
    if (
        text_type != "mistral"
    ):  # the only text model a released mistral3 checkpoint uses, and the one verified
        raise UnsupportedModelError(f"mistral3 with a {text_type!r} text model is not supported")
    text.setdefault("torch_dtype", cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16")
    text["tie_word_embeddings"] = _tie(cfg, text)
    base = _llama_like(text, text_type, name)
    vision = _sub(
        cfg,
        "vision_config",
        _MISTRAL3_DEFAULT_VISION if cfg.get("vision_config") is None else _PIXTRAL,
    )
    if str(vision.get("model_type") or "pixtral") != "pixtral":
        raise UnsupportedModelError(
            f"mistral3 with a {vision.get('model_type')!r} vision tower is not supported"
        )
    h, inter, channels, v_layers = _dims(
        vision, "hidden_size", "intermediate_size", "num_channels", "num_hidden_layers"
    )
    ph, pw = _pair(vision["patch_size"])
    per_layer = (
        4 * h * h + 3 * h * inter + 2 * h
    )  # q, k, v, o (no bias); gated MLP (no bias); two RMSNorms
    merge = _require({"spatial_merge_size": cfg.get("spatial_merge_size", 2)}, "spatial_merge_size")
    layers_used = cfg.get("vision_feature_layer", -1)
    n_feature = 1 if isinstance(layers_used, int) else len(layers_used)
    if not n_feature:
        raise ConfigError("config.json vision_feature_layer is an empty list")
    bias = bool(cfg.get("multimodal_projector_bias", False))
    th = base.hidden_size
    # norm (RMSNorm over vision h), patch_merger.merging_layer (no bias), linear_1, linear_2
    projector = (
        h
        + h * merge * merge * h
        + (h * n_feature * th + (th if bias else 0))
        + (th * th + (th if bias else 0))
    )
    return dataclasses.replace(
        base,
        model_type="mistral3",
        quantization_config=cfg.get("quantization_config") or text.get("quantization_config"),
        extra_params=(
            ("vision_tower.patch_conv", channels * ph * pw * h),
            ("vision_tower.ln_pre", h),
            ("vision_tower.transformer", v_layers * per_layer),
            ("multi_modal_projector", projector),
        ),
    )


# MllamaTextConfig / MllamaVisionConfig defaults (transformers configuration_mllama.py).
_MLLAMA_TEXT = dict(
    vocab_size=128_256,
    hidden_size=4096,
    num_hidden_layers=40,
    num_attention_heads=32,
    num_key_value_heads=8,
    intermediate_size=14_336,
    max_position_embeddings=131_072,
    cross_attention_layers=[3, 8, 13, 18, 23, 28, 33, 38],
)
_MLLAMA_VISION = dict(
    hidden_size=1280,
    num_hidden_layers=32,
    num_global_layers=8,
    attention_heads=16,
    num_channels=3,
    intermediate_size=5120,
    vision_output_dim=7680,
    image_size=448,
    patch_size=14,
    max_num_tiles=4,
    supported_aspect_ratios=[[1, 1], [1, 2], [1, 3], [1, 4], [2, 1], [2, 2], [3, 1], [4, 1]],
)


def _mllama(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """Llama 3.2 Vision (MllamaForConditionalGeneration).

    The decoder has ``num_hidden_layers`` layers; those at ``cross_attention_layers`` attend to the image
    instead of the text, with the same q/k/v/o shapes (k/v take the projected image features, text width), an
    RMSNorm on q and on k (head_dim each) and two scalar tanh gates. The input embedding has 8 rows more than
    the vocabulary (``vocab_size + 8``), the lm_head exactly ``vocab_size``; the two are never tied.

    KV cache (an approximation, stated): every layer is ``full_attention``. vLLM's encoder-decoder cache pages
    all ``num_hidden_layers`` layers together (a block holds every layer, cross-attention layers included), so
    its bytes per token are those of 40 full layers; transformers' cache instead holds text KV only in the
    self-attention layers and image KV (see ``mllama_cross_attention``) in the cross-attention layers.
    """
    text = _sub(cfg, "text_config", _MLLAMA_TEXT)
    text.setdefault("torch_dtype", cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16")
    text["tie_word_embeddings"] = False
    text.pop("layer_types", None)
    fields = _common(text, Family(), "mllama", name)
    cross = mllama_cross_attention(cfg)[0]
    d, h = fields["head_dim"], fields["hidden_size"]
    vision = _sub(cfg, "vision_config", _MLLAMA_VISION)
    fields.update(
        quantization_config=cfg.get("quantization_config"),
        extra_params=(
            ("language_model.embed_tokens.extra_rows", 8 * h),
            ("language_model.cross_attn.q_norm_k_norm_gates", len(cross) * (2 * d + 2)),
            *_mllama_vision_params(vision, h),
        ),
    )
    return ModelSpec(**fields)


def mllama_cross_attention(cfg: Config) -> tuple[tuple[int, ...], int]:
    """(cross-attention layer indices, image tokens whose KV each of them holds per image): an image is cut into
    up to ``max_num_tiles`` tiles of ((image_size // patch_size) ** 2 + 1) tokens each (Llama-3.2-11B-Vision:
    4 x 1601 = 6404). These layers' KV scales with images, not with the text context."""
    text = _sub(cfg, "text_config", _MLLAMA_TEXT)
    vision = _sub(cfg, "vision_config", _MLLAMA_VISION)
    n_layers = _require(text, "num_hidden_layers", upper=MAX_LAYERS)
    cross = tuple(
        sorted({int(i) for i in text["cross_attention_layers"] if 0 <= int(i) < n_layers})
    )
    ih, iw = _pair(vision["image_size"])
    ph, pw = _pair(vision["patch_size"])
    return cross, _require(vision, "max_num_tiles") * ((ih // ph) * (iw // pw) + 1)


def _mllama_vision_params(vision: Config, text_hidden: int) -> tuple[tuple[str, int], ...]:
    """MllamaVisionModel + the projector Linear(vision_output_dim, text hidden, bias) as transformers builds them."""
    h, inter, heads, tiles, channels, n_local, n_global, out_dim = _dims(
        vision,
        "hidden_size",
        "intermediate_size",
        "attention_heads",
        "max_num_tiles",
        "num_channels",
        "num_hidden_layers",
        "num_global_layers",
        "vision_output_dim",
    )
    attn = heads * (h // heads)
    ratios = len(vision["supported_aspect_ratios"]) + 1  # max_aspect_ratio_id + 1 embedding rows
    ih, iw = _pair(vision["image_size"])
    ph, pw = _pair(vision["patch_size"])
    patches = (ih // ph) * (iw // pw) + 1
    embeddings = (
        channels * ph * pw * h  # patch_embedding Conv2d, no bias
        + h  # class_embedding
        + 1
        + patches * h
        + ratios
        * tiles
        * patches
        * h  # gated_positional_embedding: gate, embedding, tile_embedding
        + 2 * (ratios * tiles * h + 1)  # pre/post tile positional embeddings (gated)
        + 2 * (2 * h)  # layernorm_pre, layernorm_post
    )
    per_layer = 3 * h * attn + attn * h + (h * inter + inter) + (inter * h + h) + 2 * (2 * h)
    return (
        ("vision_model.embeddings", embeddings),
        ("vision_model.transformer", n_local * per_layer),
        ("vision_model.global_transformer", n_global * (per_layer + 2)),  # gate_attn, gate_ffn
        ("multi_modal_projector", out_dim * text_hidden + text_hidden),
    )


_BUILDERS: dict[str, Callable[[Config, str, str], ModelSpec]] = {
    **{
        t: _llama_like
        for t in (
            "llama",
            "mistral",
            "qwen2",
            "qwen3",
            "qwen3_moe",
            "qwen2_moe",
            "mixtral",
            "phi3",
            "gemma",
            "gpt_oss",
        )
    },
    "gemma2": _gemma2,
    "gemma3": _gemma3,
    "gemma3_text": _gemma3,
    "deepseek_v2": _deepseek,
    "deepseek_v3": _deepseek,
    "falcon": _falcon,
    "RefinedWeb": _falcon,
    "RefinedWebModel": _falcon,
    "bloom": _bloom,
    "opt": _opt,
    "gpt2": _gpt2,
    "gptj": _gptj,
    "phi": _phi,
    "llama4": _llama4,
    "llama4_text": _llama4,
    "mistral3": _mistral3,
    "mllama": _mllama,
    **HYBRID_BUILDERS,
}


def _register_2026() -> None:
    """The 2025-2026 families live in their own module (imported here, after the helpers it reuses)."""
    from vramplan.model import (
        families_2026,
        families_gemma3n,
        families_gemma4,
        families_sparse,
        families_vl,
    )

    _BUILDERS.update(families_2026.BUILDERS)
    _BUILDERS.update(families_sparse.BUILDERS)
    _BUILDERS.update(families_vl.BUILDERS)
    _BUILDERS.update(families_gemma4.BUILDERS)
    _BUILDERS.update(families_gemma3n.BUILDERS)


_register_2026()
SUPPORTED_MODEL_TYPES = tuple(sorted(t for t in _BUILDERS if t not in REMOTE_CODE_ONLY))


def spec_from_config(cfg: Any, name: str = "", source: str = "") -> ModelSpec:
    """Build a ModelSpec from a parsed config.json; refuse architectures we cannot count exactly."""
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"config.json must hold a JSON object, got {type(cfg).__name__}")
    model_type = cfg.get("model_type")
    if not model_type:
        raise ConfigError(
            "config.json has no model_type: it does not describe a transformers model"
        )
    builder = _BUILDERS.get(str(model_type))
    note = ""
    if builder is None:
        from vramplan.model.resolve import resolve_unknown

        builder, model_type, note = resolve_unknown(cfg, _BUILDERS)
    label = name or str(cfg.get("_name_or_path") or model_type)
    try:
        spec = _check_spec(builder(cfg, str(model_type), label))
        if note and note not in " ".join(spec.notes):
            spec = dataclasses.replace(spec, notes=(*spec.notes, note))
    except ConfigError:
        raise
    except (
        TypeError,
        KeyError,
        ValueError,
        ZeroDivisionError,
        AttributeError,
        OverflowError,
        IndexError,
    ) as exc:
        # A field of the wrong type or value (a string width, a zero head count, a list where an object
        # belongs): the builders trust types, so this is the one place such files are turned away.
        raise ConfigError(
            f"config.json for {label} has a malformed field ({type(exc).__name__}: {exc}); "
            "compare it with the model's published config.json"
        ) from None
    mtp = _mtp_layers(cfg)
    if mtp and not spec.mtp_layers:
        from dataclasses import replace

        spec = replace(spec, mtp_layers=mtp)
    return spec if not source else _with_source(spec, source)


def _mtp_layers(cfg: Config) -> int:
    """MTP layers named by the config (top level or its text_config); 0 when none."""
    text_config = cfg.get("text_config")
    text: Config = text_config if isinstance(text_config, Mapping) else {}
    for where in (cfg, text):
        for key in ("num_nextn_predict_layers", "mtp_num_hidden_layers", "num_mtp_layers"):
            value = where.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 64:
                return value
    return 0


def _with_source(spec: ModelSpec, source: str) -> ModelSpec:
    from dataclasses import replace

    return replace(spec, source=source)


#: Largest config.json read (real ones are a few KiB; multimodal ones up to ~100 KiB).
MAX_CONFIG_BYTES = 16 * 1024 * 1024


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a config.json (or the one inside a folder) with errors that say what is wrong."""
    from vramplan.model.files import bounded_json_int, open_regular

    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    if not path.exists():
        raise ConfigError(
            f"no config.json at {path}: pass a model folder that holds one, or the file itself"
        )
    try:
        with open_regular(path, "config.json") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_CONFIG_BYTES:
                raise ConfigError(
                    f"{path} is {size} bytes: a config.json is a few KiB; is this the right file?"
                )
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileFormatError as exc:
        raise ConfigError(str(exc)) from None
    try:
        data = json.loads(raw.decode("utf-8"), parse_int=bounded_json_int)
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text: pass the model's config.json") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); is it truncated?"
        ) from None
    except ValueError as exc:  # bounded_json_int: an integer of absurd length
        raise ConfigError(f"{path}: {exc}; is this the right file?") from None
    except RecursionError:
        raise ConfigError(f"{path} nests too deeply to be a config.json") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return _with_hf_quant_config(path.parent, data)


def _with_hf_quant_config(folder: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """ModelOpt exports (NVFP4, FP8) describe their quantization in ``hf_quant_config.json`` beside config.json;
    when config.json has no quantization_config, take it from there (quant_method "modelopt")."""
    side = folder / "hf_quant_config.json"
    if (
        cfg.get("quantization_config")
        or not side.is_file()
        or side.stat().st_size > 16 * 1024 * 1024
    ):
        return cfg
    try:
        quant = json.loads(side.read_text(encoding="utf-8")).get("quantization")
    except (ValueError, UnicodeDecodeError, AttributeError, RecursionError):
        raise ConfigError(f"{side} is not a valid hf_quant_config.json") from None
    if isinstance(quant, dict):
        cfg = dict(cfg, quantization_config={"quant_method": "modelopt", **quant})
    return cfg
