"""Builders for the 2025-2026 dense, MoE and sparse-attention families, with explicit tensor inventories.

Each builder reads the config fields (and the defaults its transformers configuration class applies when a key
is absent, cited per table) and lists every weight tensor as transformers 5 builds the ``architectures`` class,
so the count equals the meta-device count; tests/model/test_families_2026.py checks that for every shared
config and for synthetic sizes. Layers that differ (sliding vs full heads, dense vs MoE MLPs, DSA indexers,
compressed-KV layers) are described per layer, so unseen sizes and patterns work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from vramplan.errors import ConfigError
from vramplan.model.families_inventory import Inventory, embeddings, final_norm
from vramplan.model.hf_config import MAX_LAYERS, Family, _common, _get, _require
from vramplan.model.layer_tensors import attention, dense_mlp, moe_mlp, router
from vramplan.model.layout import CacheLayer
from vramplan.model.spec import ModelSpec, MoESpec

Config = Mapping[str, Any]


# ---------------------------------------------------------------------------------- config helpers
def with_defaults(cfg: Config, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The config with its configuration class's defaults for absent or null keys."""
    out = dict(cfg)
    for key, value in defaults.items():
        if out.get(key) is None:
            out[key] = value
    return out


def pattern_layer_types(n_layers: int, every: int) -> list[str]:
    """Every ``every``-th layer full, the rest sliding (Cohere 2, OLMo 3, EXAONE 4 defaults)."""
    return [
        "full_attention" if (i + 1) % every == 0 else "sliding_attention" for i in range(n_layers)
    ]


def _int_list(value: Any, n: int, field: str) -> list[int]:
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise ConfigError(f"config.json field {field} must be a list of {n} entries")
    return [int(v) for v in value]


LLAMA_DEFAULTS = dict(
    vocab_size=32_000,
    hidden_size=4096,
    intermediate_size=11_008,
    num_hidden_layers=32,
    num_attention_heads=32,
    max_position_embeddings=2048,
)


#: The family defaults of the 2025-2026 builders: everything from the config, bfloat16 when it names no dtype.
BF16_FAMILY = Family(default_dtype="bfloat16")


def base_fields(
    cfg: Config, model_type: str, name: str, family: Family = BF16_FAMILY
) -> dict[str, Any]:
    """The ModelSpec fields every builder shares (``hf_config._common``), the dtype defaulting to bfloat16."""
    fields = _common(cfg, family, model_type, name)
    fields["torch_dtype"] = str(_get(cfg, "torch_dtype", "dtype", default="bfloat16")).replace(
        "torch.", ""
    )
    return fields


def attention_dims(fields: Mapping[str, Any]) -> tuple[int, int, int, int]:
    """(hidden size, attention heads, KV heads, head_dim) of the shared fields."""
    return fields["hidden_size"], fields["num_heads"], fields["num_kv_heads"], fields["head_dim"]


def start_inventory(
    fields: Mapping[str, Any], cfg: Config, lm_head_bias: bool = False
) -> tuple[Inventory, bool]:
    """A new inventory holding the token embeddings (and the lm_head unless tied); and whether it is tied."""
    tied = bool(cfg.get("tie_word_embeddings"))
    inv = Inventory()
    embeddings(inv, fields["vocab_size"], fields["hidden_size"], tied, lm_head_bias)
    return inv, tied


def finish_spec(
    fields: dict[str, Any],
    inv: Inventory,
    tied: bool,
    *,
    norms_per_layer: int = 2,
    norm_bias: bool = False,
    **updates: Any,
) -> ModelSpec:
    """Close the inventory with the layers' norms (``norms_per_layer`` over hidden in each; 0 when the builder
    listed its own) and the final norm, and build the spec from the shared fields plus the builder's own."""
    h = fields["hidden_size"]
    if norms_per_layer:
        inv.norm("layers.layernorm", h, norms_per_layer * fields["num_layers"], norm_bias)
        final_norm(inv, h, norm_bias)
    fields.update(tensors=inv.groups(), tie_word_embeddings=tied, **updates)
    return ModelSpec(**fields)


# ------------------------------------------------------------------------------------ dense families
#: CohereConfig defaults (Cohere2Config repeats them).
_COHERE = dict(
    vocab_size=256_000,
    hidden_size=8192,
    intermediate_size=22_528,
    num_hidden_layers=40,
    num_attention_heads=64,
    max_position_embeddings=8192,
    tie_word_embeddings=True,
    attention_bias=False,
)
#: Per model_type: configuration-class defaults and the layer shape switches (transformers 5 modeling files).
DENSE: dict[str, dict[str, Any]] = {
    # GraniteConfig: llama layout; multipliers change no shape.
    "granite": dict(defaults=dict(LLAMA_DEFAULTS, tie_word_embeddings=False)),
    # SmolLM3Config: llama layout, tied by default; NoPE layers change no shape.
    "smollm3": dict(
        defaults=dict(
            LLAMA_DEFAULTS,
            vocab_size=128_256,
            hidden_size=2048,
            num_hidden_layers=36,
            num_attention_heads=16,
            num_key_value_heads=4,
            max_position_embeddings=32_768,
            tie_word_embeddings=True,
        )
    ),
    # SeedOssConfig: q/k/v bias (attention_bias True), o_proj bias attention_out_bias (False).
    "seed_oss": dict(
        defaults=dict(
            vocab_size=155_136,
            hidden_size=4096,
            intermediate_size=27_648,
            num_hidden_layers=64,
            num_attention_heads=80,
            num_key_value_heads=8,
            head_dim=128,
            max_position_embeddings=524_288,
            tie_word_embeddings=False,
            attention_bias=True,
            attention_out_bias=False,
        ),
        o_bias_key="attention_out_bias",
    ),
    # Ernie4_5Config: use_bias on every attention/MLP linear (not lm_head), tied by default.
    "ernie4_5": dict(
        defaults=dict(
            vocab_size=103_424,
            hidden_size=1024,
            intermediate_size=3072,
            num_hidden_layers=18,
            num_attention_heads=16,
            num_key_value_heads=2,
            head_dim=128,
            max_position_embeddings=131_072,
            tie_word_embeddings=True,
            use_bias=False,
        ),
        bias_key="use_bias",
    ),
    # HunYuanDenseV1Config: query/key RMSNorm over head_dim in every layer.
    "hunyuan_v1_dense": dict(
        defaults=dict(
            LLAMA_DEFAULTS, vocab_size=290_943, tie_word_embeddings=False, attention_bias=False
        ),
        qk_head_norm=True,
        all_bias=True,
    ),
    # Olmo2Config / Olmo3Config: no pre-norms; q_norm over heads*d, k_norm over kv*d; post-attn/post-ffn norms.
    "olmo2": dict(
        defaults=dict(LLAMA_DEFAULTS, vocab_size=50_304, tie_word_embeddings=False),
        olmo=True,
        all_bias=True,
    ),
    "olmo3": dict(
        defaults=dict(
            LLAMA_DEFAULTS, vocab_size=50_304, tie_word_embeddings=False, sliding_window=4096
        ),
        olmo=True,
        all_bias=True,
        pattern=4,
    ),
    # Exaone4Config: no pre-norms; q/k RMSNorm over head_dim; post-attn/post-ffn norms; LLLG pattern.
    "exaone4": dict(
        defaults=dict(
            LLAMA_DEFAULTS,
            vocab_size=102_400,
            intermediate_size=16_384,
            tie_word_embeddings=False,
            sliding_window=4096,
        ),
        exaone=True,
        pattern=4,
    ),
    # Glm4Config: fused gate_up (same numel), q/k/v bias, 4 norms per layer.
    "glm4": dict(
        defaults=dict(
            vocab_size=151_552,
            hidden_size=4096,
            intermediate_size=13_696,
            num_hidden_layers=40,
            num_attention_heads=32,
            num_key_value_heads=2,
            head_dim=128,
            max_position_embeddings=131_072,
            tie_word_embeddings=False,
            attention_bias=True,
        ),
        norms=4,
        qkv_bias_only=True,
    ),
    # CohereConfig: one LayerNorm (weight only) per layer (parallel block), optional per-head q/k LayerNorms.
    "cohere": dict(defaults=_COHERE, norms=1, cohere=True, all_bias=True),
    # Cohere2Config: Cohere's defaults plus head_dim 128 and a 3:1 sliding pattern (window 4096).
    "cohere2": dict(
        defaults=dict(_COHERE, head_dim=128, sliding_window=4096), norms=1, pattern=4, all_bias=True
    ),
    # Starcoder2Config: LayerNorms with bias, plain c_fc/c_proj MLP, use_bias on every linear, tied.
    "starcoder2": dict(
        defaults=dict(
            vocab_size=49_152,
            hidden_size=3072,
            intermediate_size=12_288,
            num_hidden_layers=30,
            num_attention_heads=24,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            tie_word_embeddings=True,
            use_bias=True,
        ),
        starcoder=True,
    ),
}


def _dense(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """Llama-like dense decoders whose differences are norms, biases and q/k norms (table ``DENSE``)."""
    row = DENSE[model_type]
    cfg = with_defaults(cfg, row["defaults"])
    n = _require(cfg, "num_hidden_layers", upper=MAX_LAYERS)
    if row.get("pattern") and not cfg.get("layer_types") and cfg.get("sliding_window"):
        every = cfg.get("sliding_window_pattern") or row["pattern"]
        if isinstance(every, str):  # EXAONE 4 "LLLG"
            cfg["layer_types"] = [
                "full_attention" if every[i % len(every)] == "G" else "sliding_attention"
                for i in range(n)
            ]
        else:
            cfg["layer_types"] = pattern_layer_types(n, int(every))
    if model_type == "smollm3" and not (
        cfg.get("use_sliding_window") and cfg.get("sliding_window")
    ):
        cfg.pop("layer_types", None)
    if model_type == "starcoder2" and cfg.get("sliding_window"):
        cfg["layer_types"] = ["sliding_attention"] * n
    if not cfg.get("sliding_window"):
        cfg.pop("layer_types", None)
    fields = base_fields(cfg, model_type, name)
    h, heads, kv, d = attention_dims(fields)
    inter = _require(cfg, "intermediate_size")
    bias_key = row.get("bias_key")
    if bias_key:
        qkv_bias = o_bias = mlp_bias = bool(cfg.get(bias_key))
    else:
        attn_bias = bool(cfg.get("attention_bias"))
        qkv_bias = attn_bias
        o_bias = attn_bias if row.get("all_bias") else False
        if row.get("o_bias_key"):
            o_bias = bool(cfg.get(row["o_bias_key"]))
        mlp_bias = bool(cfg.get("mlp_bias"))
        if model_type == "granite" or model_type == "smollm3":
            o_bias = attn_bias
    inv, tied = start_inventory(fields, cfg, row.get("lm_head_bias", False) and mlp_bias)
    q_norm = k_norm = 0
    if row.get("olmo"):
        q_norm, k_norm = heads * d, kv * d
    elif row.get("exaone") or row.get("qk_head_norm"):
        q_norm = k_norm = d
    elif row.get("cohere") and cfg.get("use_qk_norm"):
        q_norm, k_norm = heads * d, kv * d
    if row.get("starcoder"):
        b = bool(cfg.get("use_bias"))
        attention(inv, n, h, heads, kv, d, qkv_bias=b, o_bias=b)
        dense_mlp(inv, n, h, inter, gated=False, bias=b)
        inv.norm("layers.input_layernorm", h, n, True)
        inv.norm("layers.post_attention_layernorm", h, n, True)
        final_norm(inv, h, True)
    else:
        if model_type == "hunyuan_v1_dense":
            _hunyuan_attention(inv, n, h, heads, kv, d, qkv_bias)
        else:
            attention(
                inv,
                n,
                h,
                heads,
                kv,
                d,
                qkv_bias=qkv_bias,
                o_bias=o_bias,
                q_norm=q_norm,
                k_norm=k_norm,
            )
        dense_mlp(inv, n, h, inter, bias=mlp_bias)
    return finish_spec(
        fields,
        inv,
        tied,
        norms_per_layer=0 if row.get("starcoder") else row.get("norms", 2),
        intermediate_size=inter,
        qkv_bias=qkv_bias,
        o_bias=o_bias,
        mlp_bias=mlp_bias,
        qk_norm=bool(q_norm),
    )


def _hunyuan_attention(
    inv: Inventory, n: int, h: int, heads: int, kv: int, d: int, bias: bool
) -> None:
    """HunYuan V1: attention_bias applies to o_proj too; query_layernorm / key_layernorm over head_dim."""
    attention(inv, n, h, heads, kv, d, qkv_bias=bias, o_bias=bias)
    inv.norm("layers.self_attn.query_layernorm", d, n)
    inv.norm("layers.self_attn.key_layernorm", d, n)


# -------------------------------------------------------------------------------------- MoE families
def _moe_spec(
    experts: int, top_k: int, width: int, shared: int, dense: tuple[int, ...], **kw: Any
) -> MoESpec:
    return MoESpec(
        num_experts=experts,
        experts_per_token=top_k,
        expert_intermediate_size=width,
        shared_intermediate_size=shared,
        dense_layers=dense,
        **kw,
    )


def _moe_sizes(cfg: Config, experts: str, top_k: str, width: str) -> tuple[int, int, int]:
    """(experts, experts per token, expert width) from the family's own keys for them."""
    return _require(cfg, experts), _require(cfg, top_k), _require(cfg, width)


def _granitemoe(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """GraniteMoe(Shared): block_sparse_moe with a bias-free router over num_local_experts experts of
    intermediate_size; GraniteMoeShared adds a shared MLP of shared_intermediate_size (0 = none)."""
    cfg = with_defaults(
        cfg,
        dict(LLAMA_DEFAULTS, tie_word_embeddings=False, num_local_experts=8, num_experts_per_tok=2),
    )
    cfg.pop("layer_types", None)
    fields = base_fields(cfg, model_type, name)
    n, (h, heads, kv, d) = fields["num_layers"], attention_dims(fields)
    e, k, width = _moe_sizes(cfg, "num_local_experts", "num_experts_per_tok", "intermediate_size")
    shared = (
        int(cfg.get("shared_intermediate_size") or 0) if model_type == "granitemoeshared" else 0
    )
    bias = bool(cfg.get("attention_bias"))
    inv, tied = start_inventory(fields, cfg)
    attention(inv, n, h, heads, kv, d, qkv_bias=bias, o_bias=bias)
    moe_mlp(inv, n, h, e, width, shared)
    return finish_spec(
        fields, inv, tied, intermediate_size=width, moe=_moe_spec(e, k, width, shared, ())
    )


def _phimoe(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """PhiMoE: LayerNorms with bias, attention_bias on q/k/v/o, router without bias, lm_head_bias."""
    cfg = with_defaults(
        cfg,
        dict(
            vocab_size=32_064,
            hidden_size=4096,
            intermediate_size=6400,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            max_position_embeddings=131_072,
            tie_word_embeddings=False,
            num_local_experts=16,
            num_experts_per_tok=2,
        ),
    )
    n = _require(cfg, "num_hidden_layers", upper=MAX_LAYERS)
    if cfg.get("sliding_window"):
        cfg["layer_types"] = ["sliding_attention"] * n
    else:
        cfg.pop("layer_types", None)
    fields = base_fields(cfg, model_type, name, Family(norm_kind="layer", default_dtype="bfloat16"))
    h, heads, kv, d = attention_dims(fields)
    e, k, width = _moe_sizes(cfg, "num_local_experts", "num_experts_per_tok", "intermediate_size")
    bias = bool(cfg.get("attention_bias"))
    inv, tied = start_inventory(fields, cfg, bool(cfg.get("lm_head_bias")))
    attention(inv, n, h, heads, kv, d, qkv_bias=bias, o_bias=bias)
    inv.linear("layers.mlp.router", e, h, n, "replicated", "router", role="router")
    dense_mlp(inv, n * e, h, width, True, False, "layers.mlp.experts", "experts", "expert")
    return finish_spec(
        fields,
        inv,
        tied,
        norm_bias=True,
        intermediate_size=width,
        moe=_moe_spec(e, k, width, 0, ()),
        qkv_bias=bias,
        o_bias=bias,
    )


def _minimax_m2(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """MiniMax-M2: full attention in every layer (attn_type_list all 1), q_norm over heads*d and k_norm over
    kv*d, a bias-free router (+ fp32 e_score_correction_bias buffer) over num_local_experts experts."""
    cfg = with_defaults(
        cfg,
        dict(
            vocab_size=200_064,
            hidden_size=3072,
            intermediate_size=1536,
            num_hidden_layers=62,
            num_attention_heads=48,
            num_key_value_heads=8,
            head_dim=128,
            max_position_embeddings=196_608,
            tie_word_embeddings=False,
            num_local_experts=256,
            num_experts_per_tok=8,
            use_qk_norm=True,
        ),
    )
    cfg.pop("layer_types", None)
    types = cfg.get("attn_type_list")
    if types and any(int(t) != 1 for t in types):
        raise ConfigError(
            "minimax_m2 with lightning-attention layers (attn_type_list 0) is not supported"
        )
    fields = base_fields(cfg, model_type, name)
    n, (h, heads, kv, d) = fields["num_layers"], attention_dims(fields)
    e, k, width = _moe_sizes(cfg, "num_local_experts", "num_experts_per_tok", "intermediate_size")
    inv, tied = start_inventory(fields, cfg)
    qk = bool(cfg.get("use_qk_norm", True))
    attention(inv, n, h, heads, kv, d, q_norm=heads * d if qk else 0, k_norm=kv * d if qk else 0)
    moe_mlp(inv, n, h, e, width, correction_bias="buffer")
    return finish_spec(
        fields,
        inv,
        tied,
        intermediate_size=width,
        moe=_moe_spec(e, k, width, 0, (), router_correction_bias=True),
        qk_norm=qk,
    )


def _hunyuan_moe(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """HunYuan MoE V1: every layer routes over num_experts experts of intermediate_size (per-layer lists
    allowed) and always adds a shared MLP of intermediate_size; the router (wg) is kept in fp32."""
    cfg = with_defaults(
        cfg,
        dict(
            LLAMA_DEFAULTS, vocab_size=290_943, tie_word_embeddings=False, num_experts=1, moe_topk=1
        ),
    )
    cfg.pop("layer_types", None)
    fields = base_fields(cfg, model_type, name)
    n, (h, heads, kv, d) = fields["num_layers"], attention_dims(fields)
    width = _require(cfg, "intermediate_size")
    experts = cfg["num_experts"]
    topk = cfg.get("moe_topk") or cfg.get("num_experts_per_tok") or 1
    per_layer_e = experts if isinstance(experts, list) else [experts] * n
    per_layer_k = topk if isinstance(topk, list) else [topk] * n
    if len(per_layer_e) != n or len(per_layer_k) != n:
        raise ConfigError("hunyuan num_experts / moe_topk lists must have one entry per layer")
    inv, tied = start_inventory(fields, cfg)
    _hunyuan_attention(inv, n, h, heads, kv, d, bool(cfg.get("attention_bias")))
    for e in per_layer_e:
        inv.add(
            "layers.mlp.gate.wg.weight", (int(e), h), 1, "router", "replicated", "layer", "router"
        )
        # Experts are a fused (E, 2I, H) parameter built from num_local_experts (= num_experts).
        dense_mlp(inv, int(e), h, width, True, False, "layers.mlp.experts", "experts", "expert")
    dense_mlp(inv, n, h, width, prefix="layers.mlp.shared_mlp", component="shared_experts")
    return finish_spec(
        fields,
        inv,
        tied,
        intermediate_size=width,
        moe=_moe_spec(int(max(per_layer_e)), int(max(per_layer_k)), width, width, ()),
        qk_norm=True,
    )


def _ernie_moe(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """ERNIE 4.5 MoE: layer i routes when (i+1) % moe_layer_interval == 0 and start <= i <= end; the router
    keeps e_score_correction_bias as a (1, E) parameter; moe_num_shared_experts shared experts of
    moe_intermediate_size; use_bias on attention/dense MLP/lm_head."""
    cfg = with_defaults(
        cfg,
        dict(
            vocab_size=103_424,
            hidden_size=2560,
            intermediate_size=12_288,
            moe_intermediate_size=1536,
            num_hidden_layers=28,
            num_attention_heads=20,
            num_key_value_heads=4,
            max_position_embeddings=131_072,
            tie_word_embeddings=True,
            use_bias=False,
            moe_k=6,
            moe_num_experts=64,
            moe_num_shared_experts=2,
            moe_layer_start_index=1,
            moe_layer_end_index=-1,
            moe_layer_interval=1,
        ),
    )
    cfg.pop("layer_types", None)
    fields = base_fields(cfg, model_type, name)
    n, (h, heads, kv, d) = fields["num_layers"], attention_dims(fields)
    end = int(cfg["moe_layer_end_index"])
    end = n - 1 if end == -1 else end
    start, every = int(cfg["moe_layer_start_index"]), int(cfg["moe_layer_interval"])
    moe_layers = [i for i in range(n) if (i + 1) % every == 0 and start <= i <= end]
    e = _require(cfg, "moe_num_experts", "num_experts")
    k = _require(cfg, "moe_k", "num_experts_per_tok")
    width = _require(cfg, "moe_intermediate_size")
    shared = int(cfg.get("moe_num_shared_experts") or 0) * width
    dense_width = _require(cfg, "intermediate_size")
    bias = bool(cfg.get("use_bias"))
    inv, tied = start_inventory(fields, cfg, bias)
    attention(inv, n, h, heads, kv, d, qkv_bias=bias, o_bias=bias)
    dense_mlp(inv, n - len(moe_layers), h, dense_width, bias=bias)
    m = len(moe_layers)
    router(inv, m, h, e)
    inv.add(
        "layers.mlp.gate.moe_statics.e_score_correction_bias",
        (1, e),
        m,
        "router",
        component="router",
    )
    dense_mlp(inv, m * e, h, width, True, bias, "layers.mlp.experts", "experts", "expert")
    if shared:
        dense_mlp(inv, m, h, shared, True, bias, "layers.mlp.shared_experts", "shared_experts")
    return finish_spec(
        fields,
        inv,
        tied,
        intermediate_size=dense_width,
        moe=_moe_spec(e, k, width, shared, tuple(i for i in range(n) if i not in set(moe_layers))),
    )


def _glm4_moe(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """GLM-4.5/4.6 (Glm4Moe): first_k_dense_replace dense layers, then MoE with n_shared_experts shared
    experts, DeepSeek-style router (bias-free gate + fp32 e_score_correction_bias buffer); q/k/v bias from
    attention_bias, o_proj without; optional q/k RMSNorm over head_dim (use_qk_norm)."""
    cfg = with_defaults(
        cfg,
        dict(
            vocab_size=151_552,
            hidden_size=4096,
            intermediate_size=10_944,
            moe_intermediate_size=1408,
            num_hidden_layers=46,
            num_attention_heads=96,
            num_key_value_heads=8,
            max_position_embeddings=131_072,
            tie_word_embeddings=False,
            n_routed_experts=128,
            num_experts_per_tok=8,
            n_shared_experts=1,
            first_k_dense_replace=1,
        ),
    )
    cfg.pop("layer_types", None)
    fields = base_fields(cfg, model_type, name)
    n, (h, heads, kv, d) = fields["num_layers"], attention_dims(fields)
    first_dense = min(n, int(cfg.get("first_k_dense_replace") or 0))
    e, k, width = _moe_sizes(
        cfg, "n_routed_experts", "num_experts_per_tok", "moe_intermediate_size"
    )
    shared = int(cfg.get("n_shared_experts") or 0) * width
    bias = bool(cfg.get("attention_bias"))
    qk = bool(cfg.get("use_qk_norm"))
    inv, tied = start_inventory(fields, cfg)
    attention(inv, n, h, heads, kv, d, qkv_bias=bias, q_norm=d if qk else 0, k_norm=d if qk else 0)
    dense_mlp(inv, first_dense, h, _require(cfg, "intermediate_size"))
    moe_mlp(inv, n - first_dense, h, e, width, shared, correction_bias="buffer")
    return finish_spec(
        fields,
        inv,
        tied,
        intermediate_size=_require(cfg, "intermediate_size"),
        moe=_moe_spec(e, k, width, shared, tuple(range(first_dense)), router_correction_bias=True),
        qkv_bias=bias,
        qk_norm=qk,
    )


def _mimo_v2_flash(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """MiMo-V2-Flash: sliding layers have twice the KV heads and per-head sinks; V heads are v_head_dim
    wide; ``mlp_layer_types`` picks dense or MoE (bias-free router + fp32 correction bias buffer, no
    shared expert) per layer."""
    cfg = with_defaults(
        cfg,
        dict(
            vocab_size=152_576,
            hidden_size=4096,
            intermediate_size=16_384,
            moe_intermediate_size=2048,
            num_hidden_layers=48,
            num_attention_heads=64,
            num_key_value_heads=4,
            head_dim=192,
            v_head_dim=128,
            max_position_embeddings=131_072,
            tie_word_embeddings=False,
            sliding_window=129,
            n_routed_experts=256,
            num_experts_per_tok=8,
        ),
    )
    n = _require(cfg, "num_hidden_layers", upper=MAX_LAYERS)
    if not cfg.get("layer_types"):
        cfg["layer_types"] = [
            "full_attention" if i % 5 == 0 else "sliding_attention" for i in range(n)
        ]
    mlp_types = cfg.get("mlp_layer_types") or ["dense"] + ["sparse"] * (n - 1)
    if len(mlp_types) != n:
        raise ConfigError(
            f"mlp_layer_types has {len(mlp_types)} entries but num_hidden_layers is {n}"
        )
    fields = base_fields(cfg, model_type, name)
    h, heads, kv, d = attention_dims(fields)
    dv = _require(cfg, "v_head_dim")
    window = fields["sliding_window"]
    bias = bool(cfg.get("attention_bias"))
    n_swa = sum(1 for t in fields["layer_types"] if t == "sliding_attention")
    n_moe = sum(1 for t in mlp_types if t == "sparse")
    e, k, width = _moe_sizes(
        cfg, "n_routed_experts", "num_experts_per_tok", "moe_intermediate_size"
    )
    inv, tied = start_inventory(fields, cfg)
    attention(inv, n - n_swa, h, heads, kv, d, dv, qkv_bias=bias, model_kv_heads=kv)
    attention(inv, n_swa, h, heads, 2 * kv, d, dv, qkv_bias=bias, sinks=True, model_kv_heads=kv)
    dense_mlp(inv, n - n_moe, h, _require(cfg, "intermediate_size"))
    moe_mlp(inv, n_moe, h, e, width, correction_bias="buffer")
    kv_layout = tuple(
        (CacheLayer("sliding", d, dv, 2 * kv, window),)
        if t == "sliding_attention"
        else (CacheLayer("full", d, dv, kv),)
        for t in fields["layer_types"]
    )
    return finish_spec(
        fields,
        inv,
        tied,
        kv_layout=kv_layout,
        v_head_dim=dv,
        intermediate_size=_require(cfg, "intermediate_size"),
        moe=_moe_spec(
            e,
            k,
            width,
            0,
            tuple(i for i, t in enumerate(mlp_types) if t != "sparse"),
            router_correction_bias=True,
        ),
        attention_sinks=True,
    )


BUILDERS: dict[str, Callable[[Config, str, str], ModelSpec]] = {
    **{t: _dense for t in DENSE},
    "granitemoe": _granitemoe,
    "granitemoeshared": _granitemoe,
    "phimoe": _phimoe,
    "minimax_m2": _minimax_m2,
    "hunyuan_v1_moe": _hunyuan_moe,
    "ernie4_5_moe": _ernie_moe,
    "glm4_moe": _glm4_moe,
    "mimo_v2_flash": _mimo_v2_flash,
}
