"""Exact parameter inventory of a ModelSpec: every weight tensor, its shape, role and how TP splits it.

The inventory is the single source for parameter counts, weight bytes (any precision, any TP/PP) and
the training-state arithmetic. Shapes follow transformers' module layout: a Linear(in, out) weight is
stored as (out, in).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from vramplan.model.layout import Role, Split, Stage, TensorGroup
from vramplan.model.spec import ModelSpec

__all__ = ["ParamCounts", "Role", "Split", "Stage", "TensorGroup", "count_params", "inventory"]

QUANTIZABLE_ROLES = frozenset({"linear", "expert"})


#: Vision-tower pieces that tensor parallelism shards like the decoder's linears (vLLM builds Llama 4's vision
#: encoder and pixel-shuffle adapter from Column/RowParallelLinear; checked against Scout's logged TP4 load).
#: Every other extra (embeddings, norms, projectors, other towers) is counted replicated on each rank.
_TP_SPLIT_EXTRAS: dict[str, tuple[str, ...]] = {
    "llama4": ("vision_model.encoder", "vision_model.vision_adapter")
}


@lru_cache(maxsize=256)
def inventory(spec: ModelSpec) -> tuple[TensorGroup, ...]:
    """Every parameter tensor of the model, grouped; cached because specs are immutable."""
    groups: list[TensorGroup] = []
    h, v = spec.hidden_size, spec.vocab_size

    def add(
        name: str,
        shape: tuple[int, ...],
        count: int,
        role: Role,
        split: Split,
        stage: Stage,
        component: str,
    ) -> None:
        if count > 0 and all(d > 0 for d in shape):
            groups.append(TensorGroup(name, shape, count, role, split, stage, component))

    if (
        spec.tensors
    ):  # an explicit inventory (model/layout.py, hybrids); extras (vision towers) appended
        groups.extend(spec.tensors)
        _extras(add, spec)
        return tuple(groups)
    embed_dim = spec.word_embed_proj_dim or h
    add("embed_tokens.weight", (v, embed_dim), 1, "embedding", "vocab", "first", "embeddings")
    if spec.learned_position_embeddings:
        add(
            "embed_positions.weight",
            (spec.learned_position_embeddings, h),
            1,
            "position_embedding",
            "replicated",
            "first",
            "embeddings",
        )
    if spec.word_embed_proj_dim:
        add("project_in.weight", (h, embed_dim), 1, "linear", "replicated", "first", "embeddings")
        add("project_out.weight", (embed_dim, h), 1, "linear", "replicated", "last", "embeddings")
    if spec.embedding_norm:
        _norm(add, "embed_norm", h, 1, spec, "first", "norms")

    n = spec.num_layers
    _attention(add, spec, n)
    n_moe = sum(1 for i in range(n) if spec.moe_layer(i))
    _dense_mlp(add, spec, n - n_moe)
    if spec.moe is not None:
        _moe(add, spec, n_moe)
    _norm(add, "layers.norm", h, n * spec.norms_per_layer, spec, "layer", "norms")

    if spec.final_norm:
        _norm(add, "norm", h, 1, spec, "last", "norms")
    if not spec.tie_word_embeddings:
        add("lm_head.weight", (v, embed_dim), 1, "lm_head", "vocab", "last", "lm_head")
    if spec.lm_head_bias:
        add("lm_head.bias", (v,), 1, "bias", "vocab", "last", "lm_head")
    _extras(add, spec)
    return tuple(groups)


def _extras(add: Callable[..., None], spec: ModelSpec) -> None:
    """Parameters outside the text decoder's layout (``extra_params``: vision towers, projectors)."""
    for name, count in spec.extra_params:
        if name.startswith("language_model.embed_tokens"):
            # Text-side rows outside vocab_size (mllama's embedding has vocab_size + 8 rows).
            add(name, (count,), 1, "embedding", "replicated", "first", "embeddings")
        elif name.startswith("language_model."):
            # Text-side per-layer pieces the uniform layout does not carry (mllama cross-attention q/k norms, gates).
            add(name, (count,), 1, "norm", "replicated", "layer", "cross_attention")
        else:
            split: Split = (
                "column"
                if name.startswith(_TP_SPLIT_EXTRAS.get(spec.model_type, ()))
                else "replicated"
            )
            add(name, (count,), 1, "extra", split, "first", "vision")


def _norm(
    add, name: str, width: int, count: int, spec: ModelSpec, stage: Stage, component: str
) -> None:
    add(f"{name}.weight", (width,), count, "norm", "replicated", stage, component)
    if spec.norm_kind == "layer":
        add(f"{name}.bias", (width,), count, "norm", "replicated", stage, component)


def _attention(add, spec: ModelSpec, n: int) -> None:
    h, heads = spec.hidden_size, spec.num_heads
    if spec.mla is not None:
        m = spec.mla
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        if m.q_lora_rank:
            add(
                "layers.self_attn.q_a_proj.weight",
                (m.q_lora_rank, h),
                n,
                "linear",
                "replicated",
                "layer",
                "attention",
            )
            add(
                "layers.self_attn.q_a_layernorm.weight",
                (m.q_lora_rank,),
                n,
                "norm",
                "replicated",
                "layer",
                "attention",
            )
            add(
                "layers.self_attn.q_b_proj.weight",
                (heads * qk, m.q_lora_rank),
                n,
                "linear",
                "column",
                "layer",
                "attention",
            )
        else:
            add(
                "layers.self_attn.q_proj.weight",
                (heads * qk, h),
                n,
                "linear",
                "column",
                "layer",
                "attention",
            )
        add(
            "layers.self_attn.kv_a_proj_with_mqa.weight",
            (m.kv_lora_rank + m.qk_rope_head_dim, h),
            n,
            "linear",
            "replicated",
            "layer",
            "attention",
        )
        add(
            "layers.self_attn.kv_a_layernorm.weight",
            (m.kv_lora_rank,),
            n,
            "norm",
            "replicated",
            "layer",
            "attention",
        )
        add(
            "layers.self_attn.kv_b_proj.weight",
            (heads * (m.qk_nope_head_dim + m.v_head_dim), m.kv_lora_rank),
            n,
            "linear",
            "column",
            "layer",
            "attention",
        )
        add(
            "layers.self_attn.o_proj.weight",
            (h, heads * m.v_head_dim),
            n,
            "linear",
            "row",
            "layer",
            "attention",
        )
        return
    d, dv, kv = spec.head_dim, spec.v_head_dim, spec.num_kv_heads
    add(
        "layers.self_attn.q_proj.weight",
        (heads * d, h),
        n,
        "linear",
        "column",
        "layer",
        "attention",
    )
    add(
        "layers.self_attn.k_proj.weight",
        (kv * d, h),
        n,
        "linear",
        "kv_column",
        "layer",
        "attention",
    )
    add(
        "layers.self_attn.v_proj.weight",
        (kv * dv, h),
        n,
        "linear",
        "kv_column",
        "layer",
        "attention",
    )
    add("layers.self_attn.o_proj.weight", (h, heads * dv), n, "linear", "row", "layer", "attention")
    if spec.qkv_bias:
        add("layers.self_attn.q_proj.bias", (heads * d,), n, "bias", "column", "layer", "attention")
        add("layers.self_attn.k_proj.bias", (kv * d,), n, "bias", "kv_column", "layer", "attention")
        add(
            "layers.self_attn.v_proj.bias", (kv * dv,), n, "bias", "kv_column", "layer", "attention"
        )
    if spec.o_bias:
        add("layers.self_attn.o_proj.bias", (h,), n, "bias", "replicated", "layer", "attention")
    if spec.qk_norm:
        add("layers.self_attn.q_norm.weight", (d,), n, "norm", "replicated", "layer", "attention")
        add("layers.self_attn.k_norm.weight", (d,), n, "norm", "replicated", "layer", "attention")
    if spec.attention_sinks:
        add("layers.self_attn.sinks", (heads,), n, "bias", "column", "layer", "attention")


def _mlp(
    add,
    prefix: str,
    spec: ModelSpec,
    width: int,
    count: int,
    role: Role,
    component: str,
    bias: bool,
) -> None:
    h = spec.hidden_size
    if spec.mlp_kind == "gated":
        add(f"{prefix}.gate_proj.weight", (width, h), count, role, "column", "layer", component)
        add(f"{prefix}.up_proj.weight", (width, h), count, role, "column", "layer", component)
        if bias:
            add(
                f"{prefix}.gate_up_proj.bias",
                (2 * width,),
                count,
                "bias",
                "column",
                "layer",
                component,
            )
    else:
        add(f"{prefix}.fc1.weight", (width, h), count, role, "column", "layer", component)
        if bias:
            add(f"{prefix}.fc1.bias", (width,), count, "bias", "column", "layer", component)
    add(f"{prefix}.down_proj.weight", (h, width), count, role, "row", "layer", component)
    if bias:
        add(f"{prefix}.down_proj.bias", (h,), count, "bias", "replicated", "layer", component)


def _dense_mlp(add, spec: ModelSpec, n_dense: int) -> None:
    _mlp(add, "layers.mlp", spec, spec.intermediate_size, n_dense, "linear", "mlp", spec.mlp_bias)


def _moe(add, spec: ModelSpec, n_moe: int) -> None:
    moe = spec.moe
    assert moe is not None
    h = spec.hidden_size
    add(
        "layers.mlp.router.weight",
        (moe.num_experts, h),
        n_moe,
        "router",
        "replicated",
        "layer",
        "router",
    )
    if moe.router_bias:
        add(
            "layers.mlp.router.bias",
            (moe.num_experts,),
            n_moe,
            "router",
            "replicated",
            "layer",
            "router",
        )
    if moe.router_correction_bias:
        # A registered buffer in transformers (not a parameter), but stored in the checkpoint in fp32.
        add(
            "layers.mlp.router.e_score_correction_bias",
            (moe.num_experts,),
            n_moe,
            "buffer",
            "replicated",
            "layer",
            "router",
        )
    _mlp(
        add,
        "layers.mlp.experts",
        spec,
        moe.expert_intermediate_size,
        n_moe * moe.num_experts,
        "expert",
        "experts",
        moe.expert_bias,
    )
    if moe.shared_intermediate_size:
        _mlp(
            add,
            "layers.mlp.shared_experts",
            spec,
            moe.shared_intermediate_size,
            n_moe,
            "linear",
            "shared_experts",
            False,
        )
    if moe.shared_expert_gate:
        add(
            "layers.mlp.shared_expert_gate.weight",
            (1, h),
            n_moe,
            "router",
            "replicated",
            "layer",
            "router",
        )


@dataclass(frozen=True)
class ParamCounts:
    """Exact parameter counts: total, per component, and active per token (MoE)."""

    total: int
    by_component: dict[str, int]
    active_per_token: int
    embedding: int

    @property
    def non_embedding(self) -> int:
        return self.total - self.embedding


@lru_cache(maxsize=256)
def count_params(spec: ModelSpec) -> ParamCounts:
    """Count parameters exactly as transformers would (tied embeddings stored once)."""
    by_component: dict[str, int] = defaultdict(int)
    for group in inventory(spec):
        if group.role != "buffer":
            by_component[group.component] += group.total_numel
    total = sum(by_component.values())
    active = total
    if spec.moe is not None:
        routed = by_component.get("experts", 0)
        active = total - routed + routed * spec.moe.experts_per_token // spec.moe.num_experts
    embedding = sum(
        g.total_numel for g in inventory(spec) if g.role in ("embedding", "position_embedding")
    )
    return ParamCounts(
        total=total, by_component=dict(by_component), active_per_token=active, embedding=embedding
    )
