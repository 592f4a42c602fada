"""Generic path: count any architecture transformers knows by building it on the meta device.

Used only when no native builder exists and torch + transformers are installed. The model class is transformers'
own (``architectures`` if transformers has it, else the class its auto-mappings give the ``model_type``); remote
code is never run and no weight is loaded: the meta device allocates no storage. Every parameter becomes a
``TensorGroup`` (role, TP split and pipeline stage inferred from its name and module), so weight bytes under any
precision follow as for native specs. The attention layout comes from the text config's standard fields and is
refused when they are not enough. Counts are cached per config hash (the build costs seconds, the rest is
the native path's speed).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import warnings
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from vramplan.errors import ConfigError, UnsupportedModelError
from vramplan.model.hf_config import MAX_LAYERS, MAX_WIDTH
from vramplan.model.layout import CacheLayer, Role, Split, Stage, TensorGroup
from vramplan.model.spec import MLASpec, ModelSpec, MoESpec

LABEL = "generic (meta-device count): parameters counted by building transformers' class on the meta device"
#: layer_types the generic KV layout understands (anything else keeps per-request state it cannot size).
_ATTENTION_TYPES = {"full_attention": "full_attention", "sliding_attention": "sliding_attention"}
_TOWER = re.compile(
    r"(^|\.)(vision|visual|vision_tower|vision_model|audio|audio_tower|image|multi_modal_projector|mm_projector|"
    r"embed_vision|embed_audio|merger|patch_embed)"
)
_COLUMN = re.compile(
    r"(q_proj|gate_proj|up_proj|gate_up_proj|c_fc|fc1|w1|w3|query_key_value|qkv_proj|query|wqkv|c_attn|in_proj)$"
)
_ROW = re.compile(r"(o_proj|down_proj|c_proj|fc2|w2|dense_4h_to_h|out_proj|wo|dense)$")
_KV = re.compile(r"(k_proj|v_proj|key|value)$")


def available() -> bool:
    """Whether torch and transformers can be imported (the test/generic extras)."""
    return (
        importlib.util.find_spec("torch") is not None
        and importlib.util.find_spec("transformers") is not None
    )


def has_model_folder(model_type: str) -> bool:
    """Cheap pre-check without importing transformers: does it ship a models/<model_type> package?"""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", model_type):
        return False
    found = importlib.util.find_spec("transformers")
    if found is None or not found.submodule_search_locations:
        return False
    names = {model_type.replace("-", "_"), model_type.replace("-", "_").removesuffix("_text")}
    return any(
        os.path.isdir(os.path.join(path, "models", name))
        for path in found.submodule_search_locations
        for name in names
    )


def known_model_type(model_type: str) -> bool:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return model_type in CONFIG_MAPPING_NAMES


def config_hash(cfg: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()


def generic_builder(cfg: Mapping[str, Any], model_type: str, name: str) -> ModelSpec:
    """A ModelSpec whose inventory is transformers' own, counted on the meta device (cached by config hash)."""
    clean = {k: v for k, v in cfg.items() if k not in ("quantization_config", "auto_map")}
    text = json.dumps(clean, sort_keys=True, default=str)
    tensors, facts, class_name = _meta_inventory(hashlib.sha256(text.encode()).hexdigest(), text)
    n = facts["num_hidden_layers"]
    types = facts["layer_types"]
    window = facts["sliding_window"] if "sliding_attention" in types else None
    moe = None
    if facts["num_experts"] and facts["experts_per_token"]:
        moe = MoESpec(
            num_experts=facts["num_experts"],
            experts_per_token=min(facts["experts_per_token"], facts["num_experts"]),
            expert_intermediate_size=facts["expert_width"],
        )
    mla = MLASpec(*facts["mla"]) if facts["mla"] else None
    kv_layout: tuple[tuple[CacheLayer, ...], ...] = ()
    shared = facts["kv_shared_layers"]
    if shared and mla is None:
        # Gemma 3n style: the last ``num_kv_shared_layers`` layers reuse earlier layers' KV and cache nothing.
        d, kvh = facts["head_dim"], facts["num_key_value_heads"]
        kv_layout = tuple(
            ()
            if i >= n - shared
            else (CacheLayer("sliding", d, d, kvh, window),)
            if t == "sliding_attention"
            else (CacheLayer("full", d, d, kvh),)
            for i, t in enumerate(types)
        )
    return ModelSpec(
        kv_layout=kv_layout,
        mla=mla,
        v_head_dim=mla.v_head_dim if mla else 0,
        name=name,
        model_type=model_type,
        vocab_size=facts["vocab_size"],
        hidden_size=facts["hidden_size"],
        num_layers=n,
        num_heads=facts["num_attention_heads"],
        num_kv_heads=facts["num_key_value_heads"],
        head_dim=facts["head_dim"],
        intermediate_size=facts["intermediate_size"],
        max_position_embeddings=facts["max_position_embeddings"],
        layer_types=types,
        sliding_window=window,
        torch_dtype=str(cfg.get("torch_dtype") or cfg.get("dtype") or facts["dtype"]).replace(
            "torch.", ""
        ),
        quantization_config=_quantization_config(cfg),
        tie_word_embeddings=not any(g.role == "lm_head" for g in tensors),
        moe=moe,
        tensors=tensors,
        notes=(f"{LABEL} ({class_name}; remote code never run)",),
    )


def _quantization_config(cfg: Mapping[str, Any]) -> Any:
    """The checkpoint's quantization config, top level or inside text_config (Kimi-K2.5 keeps it there)."""
    text = cfg.get("text_config")
    nested = text.get("quantization_config") if isinstance(text, Mapping) else None
    return cfg.get("quantization_config") or cfg.get("compression_config") or nested


def _positive(value: Any, field: str, upper: int = MAX_WIDTH) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= upper:
        raise ConfigError(
            f"generic path: config field {field} = {value!r} is not a usable positive integer; the attention "
            "layout needs num_hidden_layers, num_attention_heads, hidden_size (and head_dim when they do not divide)"
        )
    return value


def _field(text: Any, name: str) -> Any:
    """A config attribute, also where transformers marks it per-layer (heterogeneous configs raise on access)."""
    try:
        return getattr(text, name, None)
    except Exception:  # transformers' AmbiguousGlobalPerLayerAttributeError
        return text.__dict__.get(name)


def _widest(value: Any) -> int:
    """A width that may be per layer (Gemma 3n lists intermediate_size per layer): the widest, for activations."""
    if isinstance(value, (list, tuple)):
        return max((v for v in value if isinstance(v, int)), default=0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _layout_facts(config: Any) -> dict[str, Any]:
    """Attention-layout facts from the (text) config's standard fields, refused when they are not enough."""
    config = config.get_text_config() if hasattr(config, "get_text_config") else config

    class _Text:
        def __getattr__(self, name: str) -> Any:
            return _field(config, name)

    text = _Text()
    hidden = _positive(getattr(text, "hidden_size", None), "hidden_size")
    n = _positive(getattr(text, "num_hidden_layers", None), "num_hidden_layers", MAX_LAYERS)
    heads = _positive(getattr(text, "num_attention_heads", None), "num_attention_heads")
    kv = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or (hidden // heads if hidden % heads == 0 else None)
    _positive(kv, "num_key_value_heads")
    _positive(head_dim, "head_dim")
    raw_types = getattr(text, "layer_types", None) or ["full_attention"] * n
    if len(raw_types) != n:
        raise ConfigError(f"layer_types has {len(raw_types)} entries but num_hidden_layers is {n}")
    unknown = sorted({t for t in raw_types if t not in _ATTENTION_TYPES})
    if unknown:
        raise UnsupportedModelError(
            f"generic path: layer_types includes {', '.join(map(repr, unknown))}; those layers keep per-request "
            "state (or a cache layout) the standard config fields do not describe, so vramplan will not guess it"
        )
    window = getattr(text, "sliding_window", None)
    if "sliding_attention" in raw_types:
        _positive(window, "sliding_window")
    experts = getattr(text, "num_local_experts", None) or getattr(text, "num_experts", None)
    experts = getattr(text, "n_routed_experts", None) or experts
    mla = None
    if getattr(text, "kv_lora_rank", None) and getattr(text, "qk_rope_head_dim", None):
        # DeepSeek-style latent attention: one (kv_lora_rank + rope) latent per token per layer.
        mla = (
            int(getattr(text, "q_lora_rank", None) or 0),
            _positive(getattr(text, "kv_lora_rank", None), "kv_lora_rank"),
            _positive(getattr(text, "qk_nope_head_dim", None), "qk_nope_head_dim"),
            _positive(getattr(text, "qk_rope_head_dim", None), "qk_rope_head_dim"),
            _positive(getattr(text, "v_head_dim", None), "v_head_dim"),
        )
        kv, head_dim = heads, mla[2] + mla[3]
    shared = getattr(text, "num_kv_shared_layers", None) or 0
    return dict(
        kv_shared_layers=min(int(shared), n) if isinstance(shared, int) else 0,
        mla=mla,
        hidden_size=hidden,
        num_hidden_layers=n,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        head_dim=head_dim,
        vocab_size=_positive(getattr(text, "vocab_size", None), "vocab_size"),
        intermediate_size=_widest(getattr(text, "intermediate_size", None)) or 4 * hidden,
        max_position_embeddings=getattr(text, "max_position_embeddings", None) or 2048,
        layer_types=tuple(_ATTENTION_TYPES[t] for t in raw_types),
        sliding_window=window,
        num_experts=experts if isinstance(experts, int) else 0,
        experts_per_token=getattr(text, "num_experts_per_tok", None) or 0,
        expert_width=_widest(getattr(text, "moe_intermediate_size", None))
        or _widest(getattr(text, "intermediate_size", None))
        or 0,
        dtype="bfloat16",
    )


def _model_class(config: Any, arch: str) -> Any:
    import transformers
    from transformers.models.auto import modeling_auto as auto

    if arch and hasattr(transformers, arch):
        return getattr(transformers, arch)
    for table in (
        auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,
    ):
        name = table.get(config.model_type)
        if name and hasattr(transformers, name):
            return getattr(transformers, name)
    raise UnsupportedModelError(
        f"generic path: transformers has no causal-LM class for model_type {config.model_type!r}"
    )


@lru_cache(maxsize=32)
def _meta_inventory(key: str, text: str) -> tuple[tuple[TensorGroup, ...], dict[str, Any], str]:
    """Build the model on the meta device once per config hash (``key``); return its tensors and facts."""
    import torch
    import transformers

    raw = json.loads(text)
    model_type = raw.pop("model_type")
    archs = raw.get("architectures") or []
    for token in ("pad_token_id", "bos_token_id", "eos_token_id"):
        raw[token] = None  # token ids change no shape; out-of-range ones only trip embedding checks
    try:
        config = transformers.AutoConfig.for_model(model_type, **raw)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(
            f"transformers rejects this config ({type(exc).__name__}: {exc})"
        ) from None
    facts = _layout_facts(config)
    cls = _model_class(config, str(archs[0]) if archs else "")
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = cls._from_config(config)
    return _groups(model, facts), facts, cls.__name__


def _groups(model: Any, facts: dict[str, Any]) -> tuple[TensorGroup, ...]:
    modules = dict(model.named_modules())
    counts: dict[Any, int] = {}
    kv_heads = facts["num_key_value_heads"]
    for name, param in model.named_parameters():
        module_name, _, leaf = name.rpartition(".")
        module = modules.get(module_name)
        kind = type(module).__name__ if module is not None else ""
        pattern = re.sub(r"\.\d+\.", ".*.", name)
        shape = tuple(int(d) for d in param.shape)
        count = 1
        in_tower = bool(_TOWER.search(module_name))
        stage: Stage = "layer" if ".*." in pattern and not in_tower else "first"
        split: Split = "replicated"
        role: Role
        if in_tower:
            role, shape = "extra", (param.numel(),)
        elif kind == "Embedding" or "embed_tokens" in module_name:
            role, split = "embedding", "vocab"
            stage = "first"
        elif module_name.endswith("lm_head"):
            role, split, stage = ("lm_head" if leaf == "weight" else "bias"), "vocab", "last"
        elif len(shape) == 3 and "expert" in module_name + leaf:
            role, count, shape = "expert", shape[0], shape[1:]
            split = "row" if "down" in leaf else "column"
        elif (len(shape) == 2 and kind.endswith("Linear")) or (
            len(shape) == 2 and leaf == "weight"
        ):
            short = module_name.rsplit(".", 1)[-1]
            if (
                facts["num_experts"]
                and shape[0] == facts["num_experts"]
                and ("gate" in short or "router" in short)
            ):
                role = "router"
            else:
                role = "linear"
                if _KV.search(short) and shape[0] % kv_heads == 0:
                    split = "kv_column"
                elif _COLUMN.search(short):
                    split = "column"
                elif _ROW.search(short):
                    split = "row"
        elif len(shape) == 1:
            role = "norm" if "norm" in kind.lower() or "norm" in module_name.lower() else "bias"
            if not module_name.startswith(("model.layers", "layers")) and ".*." not in pattern:
                stage = "last" if "norm" in module_name else stage
        else:
            role, shape = "bias", (param.numel(),)
        component = "vision" if in_tower else _component(pattern, role)
        key = (pattern, shape, role, split, stage, component)
        counts[key] = counts.get(key, 0) + count
    for name, buf in model.named_buffers():
        module_name, _, leaf = name.rpartition(".")
        module = modules.get(module_name)
        if module is None or leaf in getattr(module, "_non_persistent_buffers_set", set()):
            continue
        if "correction_bias" in leaf:
            buffer_key = (
                re.sub(r"\.\d+\.", ".*.", name),
                (buf.numel(),),
                "buffer",
                "replicated",
                "layer",
                "router",
            )
            counts[buffer_key] = counts.get(buffer_key, 0) + 1
    return tuple(
        TensorGroup(name, shape, count, role, split, stage, component)
        for (name, shape, role, split, stage, component), count in counts.items()
    )


def _component(pattern: str, role: str) -> str:
    if role == "expert":
        return "experts"
    if role in ("embedding", "lm_head", "router"):
        return {"embedding": "embeddings"}.get(role, role)
    if "attn" in pattern or "attention" in pattern:
        return "attention"
    if "mlp" in pattern or "ffn" in pattern or "feed_forward" in pattern:
        return "shared_experts" if "shared" in pattern else "mlp"
    return "norms" if role == "norm" else "other"
