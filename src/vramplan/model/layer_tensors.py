"""The tensor groups of one decoder layer's parts (attention, MLP, router, experts), written once.

Every explicit family builder (``families_2026``, ``families_sparse``, ``families_gemma*``, ``families_hybrid``)
lists its layers through these functions; the families differ only in the names and switches they pass, so a
fix to how a part is split under TP or which role quantizes it lands in every family at once.
"""

from __future__ import annotations

from typing import Literal

from vramplan.model.families_inventory import Inventory
from vramplan.model.layout import Role

#: How a router keeps DeepSeek-style ``e_score_correction_bias``: "buffer" (fp32, stored in the checkpoint but
#: not a parameter), "parameter" (ERNIE 4.5 keeps it as one), "" (none).
CorrectionBias = Literal["", "buffer", "parameter"]


def attention(
    inv: Inventory,
    count: int,
    hidden: int,
    heads: int,
    kv_heads: int,
    head_dim: int,
    v_head_dim: int | None = None,
    qkv_bias: bool = False,
    o_bias: bool = False,
    q_norm: int = 0,
    k_norm: int = 0,
    norm_bias: bool = False,
    sinks: bool = False,
    model_kv_heads: int = 0,
    *,
    q_gate: bool = False,
    prefix: str = "layers.self_attn",
    o_name: str = "o_proj",
    norm_names: tuple[str, str] = ("q_norm", "k_norm"),
) -> None:
    """q/k/v/o projections (+ biases, q/k norms of the given widths, per-head sinks).

    ``q_gate`` doubles q_proj (Qwen3-Next / 3.5 gate the output per head). K/V tensors record their own KV-head
    count only when it differs from ``model_kv_heads`` (Gemma 4 global layers, MiMo sliding layers)."""
    dv = head_dim if v_head_dim is None else v_head_dim
    kvh = kv_heads if kv_heads != model_kv_heads else 0
    q_width = heads * head_dim * (2 if q_gate else 1)
    inv.linear(f"{prefix}.q_proj", q_width, hidden, count, "column", "attention", qkv_bias)
    for name, width in (("k_proj", head_dim), ("v_proj", dv)):
        inv.linear(
            f"{prefix}.{name}",
            kv_heads * width,
            hidden,
            count,
            "kv_column",
            "attention",
            qkv_bias,
            kv_heads=kvh,
        )
    inv.linear(f"{prefix}.{o_name}", hidden, heads * dv, count, "row", "attention", o_bias)
    for name, width in zip(norm_names, (q_norm, k_norm), strict=True):
        if width:
            inv.norm(f"{prefix}.{name}", width, count, norm_bias, component="attention")
    if sinks:
        inv.add(f"{prefix}.sinks", (heads,), count, "bias", "column", "layer", "attention")


def dense_mlp(
    inv: Inventory,
    count: int,
    hidden: int,
    width: int,
    gated: bool = True,
    bias: bool = False,
    prefix: str = "layers.mlp",
    component: str = "mlp",
    role: Role = "linear",
    *,
    ungated_name: str = "c_fc",
) -> None:
    """Gated (gate/up/down) or plain (``ungated_name``/down) MLP; ``count`` copies (layers x experts)."""
    projections = ("gate_proj", "up_proj") if gated else (ungated_name,)
    for name in projections:
        inv.linear(f"{prefix}.{name}", width, hidden, count, "column", component, bias, role)
    inv.linear(f"{prefix}.down_proj", hidden, width, count, "row", component, bias, role)


def router(
    inv: Inventory,
    count: int,
    hidden: int,
    experts: int,
    *,
    name: str = "layers.mlp.gate",
    bias: bool = False,
    correction_bias: CorrectionBias = "",
) -> None:
    """The expert router, replicated on every TP rank, with its optional correction bias."""
    inv.linear(name, experts, hidden, count, "replicated", "router", bias, "router")
    if correction_bias:
        role: Role = "buffer" if correction_bias == "buffer" else "router"
        inv.add(f"{name}.e_score_correction_bias", (experts,), count, role, component="router")


def moe_mlp(
    inv: Inventory,
    count: int,
    hidden: int,
    experts: int,
    width: int,
    shared_width: int = 0,
    router_bias: bool = False,
    correction_bias: CorrectionBias = "",
    shared_gate: bool = False,
    expert_bias: bool = False,
    *,
    router_name: str = "layers.mlp.gate",
    shared_prefix: str = "layers.mlp.shared_experts",
) -> None:
    """Router, ``experts`` gated experts of ``width``, optional shared expert(s) of total ``shared_width`` and
    the shared expert's sigmoid gate."""
    router(
        inv,
        count,
        hidden,
        experts,
        name=router_name,
        bias=router_bias,
        correction_bias=correction_bias,
    )
    dense_mlp(
        inv,
        count * experts,
        hidden,
        width,
        True,
        expert_bias,
        "layers.mlp.experts",
        "experts",
        "expert",
    )
    if shared_width:
        dense_mlp(
            inv, count, hidden, shared_width, prefix=shared_prefix, component="shared_experts"
        )
    if shared_gate:
        inv.linear(
            "layers.mlp.shared_expert_gate", 1, hidden, count, "replicated", "router", role="router"
        )
