"""DeepSeek sparse attention families: DeepSeek-V3.2 (``deepseek_v32``), GLM-5 (``glm_moe_dsa``) and
DeepSeek-V4 (``deepseek_v4``), with exact tensor inventories and per-layer caches.

V3.2 / GLM-5: DeepSeek-V3 MLA + MoE, plus a DSA "lightning indexer" per layer (wq_b, wk, a LayerNorm with
bias on the keys, weights_proj) whose fp8 keys are cached per token beside the MLA latent
(hybrid-memory.md §1.5). GLM-5 layers marked ``"shared"`` in ``indexer_types`` reuse the previous layer's
top-k and have neither indexer weights nor indexer cache.

V4: shared-KV MQA (one 512-wide KV head read as K and V), sliding window of ``sliding_window`` tokens in every
layer, plus per-layer compression: ``compressed_sparse_attention`` layers (ratio 4, with an indexer over the
compressed keys) and ``heavily_compressed_attention`` layers (ratio 128); grouped low-rank output projection,
per-head sinks, manifold hyper-connections (``hc_mult`` streams) and hash-routed first MoE layers.
"""

from __future__ import annotations

from typing import Any

from vramplan.errors import ConfigError
from vramplan.memory.kv_layout import fp8_mla_bytes, indexer_key_bytes
from vramplan.model.families_2026 import Config, base_fields, finish_spec, with_defaults
from vramplan.model.families_inventory import Inventory, embeddings, final_norm
from vramplan.model.hf_config import MAX_LAYERS, _require
from vramplan.model.layer_tensors import dense_mlp, moe_mlp
from vramplan.model.layout import CacheLayer
from vramplan.model.spec import MLASpec, ModelSpec, MoESpec

#: DeepseekV32Config / GlmMoeDsaConfig defaults (transformers 5 configuration files).
_DSA_DEFAULTS: dict[str, dict[str, Any]] = {
    "deepseek_v32": dict(
        vocab_size=129_280,
        hidden_size=7168,
        intermediate_size=18_432,
        moe_intermediate_size=2048,
        num_hidden_layers=61,
        num_attention_heads=128,
        n_shared_experts=1,
        n_routed_experts=256,
        num_experts_per_tok=8,
        first_k_dense_replace=3,
        q_lora_rank=1536,
        kv_lora_rank=512,
        qk_nope_head_dim=128,
        qk_rope_head_dim=64,
        v_head_dim=128,
        index_head_dim=128,
        index_n_heads=64,
        max_position_embeddings=163_840,
        tie_word_embeddings=False,
    ),
    "glm_moe_dsa": dict(
        vocab_size=154_880,
        hidden_size=6144,
        intermediate_size=12_288,
        moe_intermediate_size=2048,
        num_hidden_layers=78,
        num_attention_heads=64,
        n_shared_experts=1,
        n_routed_experts=256,
        num_experts_per_tok=8,
        first_k_dense_replace=3,
        q_lora_rank=2048,
        kv_lora_rank=512,
        qk_nope_head_dim=192,
        qk_rope_head_dim=64,
        v_head_dim=256,
        index_head_dim=128,
        index_n_heads=32,
        max_position_embeddings=202_752,
        tie_word_embeddings=False,
    ),
}


def _mlp_types(cfg: Config, n: int) -> list[str]:
    """``mlp_layer_types`` if given, else ``first_k_dense_replace`` dense layers then MoE (transformers 5
    ignores ``moe_layer_freq`` for these families)."""
    types = cfg.get("mlp_layer_types")
    if types is None:
        first = min(n, int(cfg.get("first_k_dense_replace") or 0))
        return ["dense"] * first + ["sparse"] * (n - first)
    if len(types) != n:
        raise ConfigError(f"mlp_layer_types has {len(types)} entries but num_hidden_layers is {n}")
    return [str(t) for t in types]


def _indexer_types(cfg: Config, n: int, model_type: str) -> list[str]:
    """GLM-5 ``indexer_types`` (or ``index_topk_pattern`` / freq + offset); every layer for DeepSeek-V3.2."""
    if model_type != "glm_moe_dsa":
        return ["full"] * n
    types = cfg.get("indexer_types")
    if types is None:
        pattern = cfg.get("index_topk_pattern")
        if pattern is not None:
            types = (
                [{"F": "full", "S": "shared"}[c] for c in pattern]
                if isinstance(pattern, str)
                else pattern
            )
        else:
            freq = max(int(cfg.get("index_topk_freq", 1)), 1)
            offset = int(cfg.get("index_skip_topk_offset", 2))
            types = ["full" if max(i - offset + 1, 0) % freq == 0 else "shared" for i in range(n)]
    if len(types) != n:
        raise ConfigError(f"indexer_types has {len(types)} entries but num_hidden_layers is {n}")
    return [str(t) for t in types]


def _mla_tensors(inv: Inventory, n: int, h: int, heads: int, mla: MLASpec) -> None:
    p = "layers.self_attn"
    qk = mla.qk_nope_head_dim + mla.qk_rope_head_dim
    if mla.q_lora_rank:
        inv.linear(f"{p}.q_a_proj", mla.q_lora_rank, h, n, "replicated", "attention")
        inv.norm(f"{p}.q_a_layernorm", mla.q_lora_rank, n)
        inv.linear(f"{p}.q_b_proj", heads * qk, mla.q_lora_rank, n, "column", "attention")
    else:
        inv.linear(f"{p}.q_proj", heads * qk, h, n, "column", "attention")
    inv.linear(
        f"{p}.kv_a_proj_with_mqa",
        mla.kv_lora_rank + mla.qk_rope_head_dim,
        h,
        n,
        "replicated",
        "attention",
    )
    inv.norm(f"{p}.kv_a_layernorm", mla.kv_lora_rank, n)
    inv.linear(
        f"{p}.kv_b_proj",
        heads * (mla.qk_nope_head_dim + mla.v_head_dim),
        mla.kv_lora_rank,
        n,
        "column",
        "attention",
    )
    inv.linear(f"{p}.o_proj", h, heads * mla.v_head_dim, n, "row", "attention")


def _dsa(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """DeepSeek-V3.2 and GLM-5: MLA + DSA indexer + DeepSeek-V3 MoE."""
    cfg = with_defaults(cfg, _DSA_DEFAULTS[model_type])
    cfg.pop("layer_types", None)
    n = _require(cfg, "num_hidden_layers", upper=MAX_LAYERS)
    fields = base_fields(cfg, model_type, name)
    h, heads = fields["hidden_size"], fields["num_heads"]
    mla = MLASpec(
        q_lora_rank=int(cfg.get("q_lora_rank") or 0),
        kv_lora_rank=_require(cfg, "kv_lora_rank"),
        qk_nope_head_dim=_require(cfg, "qk_nope_head_dim"),
        qk_rope_head_dim=_require(cfg, "qk_rope_head_dim"),
        v_head_dim=_require(cfg, "v_head_dim"),
    )
    if not mla.q_lora_rank:
        raise ConfigError(
            f"{model_type} needs q_lora_rank: its indexer projects from the q LoRA latent"
        )
    idx_dim, idx_heads = _require(cfg, "index_head_dim"), _require(cfg, "index_n_heads")
    mlp_types = _mlp_types(cfg, n)
    idx_types = _indexer_types(cfg, n, model_type)
    n_moe = sum(1 for t in mlp_types if t == "sparse")
    n_idx = sum(1 for t in idx_types if t == "full")
    e, k, width = (
        _require(cfg, "n_routed_experts"),
        _require(cfg, "num_experts_per_tok"),
        _require(cfg, "moe_intermediate_size"),
    )
    shared = int(cfg.get("n_shared_experts") or 0) * width
    tied = bool(cfg.get("tie_word_embeddings"))
    inv = Inventory()
    embeddings(inv, fields["vocab_size"], h, tied)
    _mla_tensors(inv, n, h, heads, mla)
    p = "layers.self_attn.indexer"
    inv.linear(f"{p}.wq_b", idx_heads * idx_dim, mla.q_lora_rank, n_idx, "replicated", "attention")
    inv.linear(f"{p}.wk", idx_dim, h, n_idx, "replicated", "attention")
    inv.norm(f"{p}.k_norm", idx_dim, n_idx, bias=True)
    inv.linear(f"{p}.weights_proj", idx_heads, h, n_idx, "replicated", "attention")
    dense_mlp(inv, n - n_moe, h, _require(cfg, "intermediate_size"))
    moe_mlp(inv, n_moe, h, e, width, shared, correction_bias="buffer")
    latent = mla.kv_lora_rank + mla.qk_rope_head_dim
    mla_cache = CacheLayer(
        "mla", latent, fp8_bytes=fp8_mla_bytes(mla.kv_lora_rank, mla.qk_rope_head_dim)
    )
    idx_cache = CacheLayer("indexer", idx_dim, fixed_bytes=indexer_key_bytes(idx_dim))
    kv_layout = tuple((mla_cache, idx_cache) if t == "full" else (mla_cache,) for t in idx_types)
    return finish_spec(
        fields,
        inv,
        tied,
        mla=mla,
        moe=MoESpec(
            num_experts=e,
            experts_per_token=k,
            expert_intermediate_size=width,
            shared_intermediate_size=shared,
            router_correction_bias=True,
            dense_layers=tuple(i for i, t in enumerate(mlp_types) if t != "sparse"),
        ),
        head_dim=mla.qk_nope_head_dim + mla.qk_rope_head_dim,
        v_head_dim=mla.v_head_dim,
        num_kv_heads=heads,
        intermediate_size=_require(cfg, "intermediate_size"),
        kv_layout=kv_layout,
    )


# ------------------------------------------------------------------------------------------ DeepSeek-V4
_V4_DEFAULTS = dict(
    vocab_size=129_280,
    hidden_size=4096,
    moe_intermediate_size=2048,
    num_hidden_layers=43,
    num_attention_heads=64,
    num_key_value_heads=1,
    head_dim=512,
    qk_rope_head_dim=64,
    q_lora_rank=1024,
    o_lora_rank=1024,
    o_groups=8,
    n_routed_experts=256,
    num_experts_per_tok=6,
    index_head_dim=128,
    index_n_heads=64,
    hc_mult=4,
    sliding_window=128,
    max_position_embeddings=1_048_576,
    tie_word_embeddings=False,
)
_V4_RATIO_TYPES = {
    0: "sliding_attention",
    4: "compressed_sparse_attention",
    128: "heavily_compressed_attention",
}
#: vLLM ``flashmla_sparse.py``: a V4 KV entry in fp8 is 448 fp8 NoPE + 64 bf16 RoPE + 8 B of scales.
V4_FP8_ENTRY_BYTES = 584


def _v4_layer_types(cfg: Config, n: int) -> list[str]:
    types = cfg.get("layer_types")
    if types is None and cfg.get("compress_ratios") is not None:
        try:
            types = [_V4_RATIO_TYPES[int(r)] for r in cfg["compress_ratios"]]
        except KeyError as exc:
            raise ConfigError(f"deepseek_v4 compress_ratios holds an unknown ratio {exc}") from None
    if types is None:
        inter = [
            "compressed_sparse_attention" if i % 2 else "heavily_compressed_attention"
            for i in range(max(n - 2, 0))
        ]
        types = ["heavily_compressed_attention"] * min(n, 2) + inter
    types = list(types)[:n]  # compress_ratios carries one extra entry for the MTP layer
    if len(types) != n:
        raise ConfigError(
            f"deepseek_v4 layer_types has {len(types)} entries but num_hidden_layers is {n}"
        )
    return types


def _deepseek_v4(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """DeepSeek-V4 (DeepseekV4ForCausalLM), counted as transformers 5 builds it. The MTP layer is not part of
    the class (its weights are skipped on load), so it is not counted."""
    cfg = with_defaults(cfg, _V4_DEFAULTS)
    n = _require(cfg, "num_hidden_layers", upper=MAX_LAYERS)
    types = _v4_layer_types(cfg, n)
    rates = dict(cfg.get("compress_rates") or {})
    csa_rate = int(rates.get("compressed_sparse_attention", cfg.get("compress_rate_csa") or 4))
    hca_rate = int(rates.get("heavily_compressed_attention", cfg.get("compress_rate_hca") or 128))
    mlp_types = cfg.get("mlp_layer_types")
    if mlp_types is None:
        n_hash = cfg.get("num_hash_layers")
        n_hash = 3 if n_hash is None else int(n_hash)
        mlp_types = ["hash_moe"] * min(n, n_hash) + ["moe"] * max(0, n - n_hash)
    mlp_types = list(mlp_types)[:n]
    base = {k: v for k, v in cfg.items() if k != "layer_types"}
    fields = base_fields(base, model_type, name)
    h, heads, d = fields["hidden_size"], fields["num_heads"], _require(cfg, "head_dim")
    q_lora, o_lora, groups = (
        _require(cfg, "q_lora_rank"),
        _require(cfg, "o_lora_rank"),
        _require(cfg, "o_groups"),
    )
    idx_dim, idx_heads = _require(cfg, "index_head_dim"), _require(cfg, "index_n_heads")
    m = _require(cfg, "hc_mult")
    e, k, width = (
        _require(cfg, "n_routed_experts"),
        _require(cfg, "num_experts_per_tok"),
        _require(cfg, "moe_intermediate_size"),
    )
    if (heads * d) % groups:
        raise ConfigError("deepseek_v4 num_attention_heads x head_dim must divide into o_groups")
    window = _require(cfg, "sliding_window")
    n_csa = types.count("compressed_sparse_attention")
    n_hca = types.count("heavily_compressed_attention")
    tied = bool(cfg.get("tie_word_embeddings"))
    inv = Inventory()
    embeddings(inv, fields["vocab_size"], h, tied)
    p = "layers.self_attn"
    inv.linear(f"{p}.q_a_proj", q_lora, h, n, "replicated", "attention")
    inv.norm(f"{p}.q_a_norm", q_lora, n)
    inv.linear(f"{p}.q_b_proj", heads * d, q_lora, n, "column", "attention")
    inv.linear(f"{p}.kv_proj", d, h, n, "replicated", "attention")
    inv.norm(f"{p}.kv_norm", d, n)
    inv.linear(f"{p}.o_a_proj", groups * o_lora, heads * d // groups, n, "column", "attention")
    inv.linear(f"{p}.o_b_proj", h, groups * o_lora, n, "row", "attention")
    inv.add(f"{p}.sinks", (heads,), n, "bias", "column", "layer", "attention")
    c = f"{p}.compressor"
    # HCA compressor: one series of head_dim; CSA compressor: two series (2 x head_dim) + its indexer.
    inv.linear(f"{c}.hca.kv_proj", d, h, n_hca, "replicated", "attention")
    inv.linear(f"{c}.hca.gate_proj", d, h, n_hca, "replicated", "attention")
    inv.add(f"{c}.hca.position_bias", (hca_rate, d), n_hca, "bias", component="attention")
    inv.linear(f"{c}.csa.kv_proj", 2 * d, h, n_csa, "replicated", "attention")
    inv.linear(f"{c}.csa.gate_proj", 2 * d, h, n_csa, "replicated", "attention")
    inv.add(f"{c}.csa.position_bias", (csa_rate, 2 * d), n_csa, "bias", component="attention")
    inv.norm(f"{c}.kv_norm", d, n_csa + n_hca)
    i = f"{c}.indexer"
    inv.linear(f"{i}.kv_proj", 2 * idx_dim, h, n_csa, "replicated", "attention")
    inv.linear(f"{i}.gate_proj", 2 * idx_dim, h, n_csa, "replicated", "attention")
    inv.add(f"{i}.position_bias", (csa_rate, 2 * idx_dim), n_csa, "bias", component="attention")
    inv.norm(f"{i}.kv_norm", idx_dim, n_csa)
    inv.linear(f"{i}.q_b_proj", idx_heads * idx_dim, q_lora, n_csa, "replicated", "attention")
    inv.linear(f"{i}.scorer.weights_proj", idx_heads, h, n_csa, "replicated", "attention")
    moe_mlp(inv, n, h, e, width, width, correction_bias="")
    n_topk = sum(1 for t in mlp_types if t != "hash_moe")
    inv.add("layers.mlp.gate.e_score_correction_bias", (e,), n_topk, "buffer", component="router")
    inv.norm("layers.layernorm", h, 2 * n)
    mix = (2 + m) * m
    for hc in ("attn_hc", "ffn_hc"):
        inv.add(f"layers.{hc}.fn", (mix, m * h), n, "bias", component="hyper_connections")
        inv.add(f"layers.{hc}.base", (mix,), n, "bias", component="hyper_connections")
        inv.add(f"layers.{hc}.scale", (3,), n, "bias", component="hyper_connections")
    inv.add("hc_head.hc_fn", (m, m * h), 1, "bias", stage="last", component="hyper_connections")
    inv.add("hc_head.hc_base", (m,), 1, "bias", stage="last", component="hyper_connections")
    inv.add("hc_head.hc_scale", (1,), 1, "bias", stage="last", component="hyper_connections")
    final_norm(inv, h)
    swa = CacheLayer("sliding", d, window=window, fp8_bytes=V4_FP8_ENTRY_BYTES)
    csa = CacheLayer("compressed", d, compress_ratio=csa_rate, fp8_bytes=V4_FP8_ENTRY_BYTES)
    hca = CacheLayer("compressed", d, compress_ratio=hca_rate, fp8_bytes=V4_FP8_ENTRY_BYTES)
    idx = CacheLayer(
        "indexer", idx_dim, compress_ratio=csa_rate, fixed_bytes=indexer_key_bytes(idx_dim)
    )
    kv_layout = tuple(
        (swa, csa, idx)
        if t == "compressed_sparse_attention"
        else (swa, hca)
        if t == "heavily_compressed_attention"
        else (swa,)
        for t in types
    )
    qc = fields.get("quantization_config")
    if isinstance(qc, dict) and cfg.get("expert_dtype") and "expert_dtype" not in qc:
        fields["quantization_config"] = dict(qc, expert_dtype=cfg["expert_dtype"])
    fields.update(
        head_dim=d,
        v_head_dim=d,
        num_kv_heads=1,
        intermediate_size=width,
        layer_types=("sliding_attention",) * n,
        sliding_window=window,
        attention_sinks=True,
        tie_word_embeddings=tied,
        moe=MoESpec(
            num_experts=e,
            experts_per_token=k,
            expert_intermediate_size=width,
            shared_intermediate_size=width,
            router_correction_bias=True,
        ),
        tensors=inv.groups(),
        kv_layout=kv_layout,
    )
    return ModelSpec(**fields)


BUILDERS = {"deepseek_v32": _dsa, "glm_moe_dsa": _dsa, "deepseek_v4": _deepseek_v4}
