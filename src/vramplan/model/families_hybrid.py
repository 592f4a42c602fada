"""Hybrid and state-space families: layers of different kinds (attention, Mamba, gated DeltaNet, KDA, short conv).

Each builder reads the config as the family's transformers configuration class does (defaults cited per
family), lists every parameter tensor layer by layer (``ModelSpec.tensors``), marks which layers keep per-token
KV (``layer_types``) and which carry per-sequence state (``ModelSpec.state``). The counts are checked against
transformers' own models built on the meta device (tests/model/test_hybrid_families.py).

TP splits follow vLLM's layers: Mamba / DeltaNet / KDA input projections, convs and per-head parameters are
column-parallel, output projections row-parallel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from math import ceil
from typing import Any

from vramplan.errors import ConfigError, UnsupportedModelError
from vramplan.model.hybrid_model import (
    ROUTER,
    Config,
    Heads,
    HybridModel,
    Mamba2Sizes,
    check_kinds,
    config_dtype,
    int_field,
    layer_kinds,
    read_heads,
    state_layers,
)
from vramplan.model.layer_tensors import dense_mlp, router
from vramplan.model.spec import MAX_LAYERS, MLASpec, ModelSpec, MoESpec, StateKind, StateSpec

# --- Qwen3-Next / Qwen3.5 / Qwen3.6: gated DeltaNet + gated full attention ---------------------------------


def _gdn_layers(text: Config, n_layers: int) -> list[bool]:
    """True where a layer is full attention: ``layer_types`` or every ``full_attention_interval``-th layer
    (Qwen3NextConfig / Qwen3_5TextConfig default 4)."""
    types = text.get("layer_types")
    if types:
        kinds = layer_kinds(types, n_layers, {"linear_attention": "gdn", "full_attention": "attn"})
        return [k == "attn" for k in kinds]
    interval = int_field(text, "full_attention_interval", 4)
    return [(i + 1) % interval == 0 for i in range(n_layers)]


#: What Qwen3_5TextConfig, Qwen3_5MoeTextConfig and Qwen3NextConfig agree on: the attention and DeltaNet shapes.
_QWEN_GDN_SHARED = dict(
    num_attention_heads=16,
    num_key_value_heads=2,
    head_dim=256,
    linear_conv_kernel_dim=4,
    linear_key_head_dim=128,
    linear_value_head_dim=128,
    linear_num_key_heads=16,
    linear_num_value_heads=32,
    max_position_embeddings=32_768,
)
#: ... and what the two MoE configs add (their shared expert is as wide as a routed one).
_QWEN_GDN_MOE = dict(
    _QWEN_GDN_SHARED,
    hidden_size=2048,
    moe_intermediate_size=512,
    shared_expert_intermediate_size=512,
)
#: Per model_type, the defaults for keys a config leaves out.
_QWEN_GDN_DEFAULTS: dict[str, dict[str, Any]] = {
    "qwen3_5_text": dict(
        _QWEN_GDN_SHARED,
        vocab_size=248_320,
        hidden_size=4096,
        intermediate_size=12_288,
        num_hidden_layers=32,
        num_key_value_heads=4,
    ),
    "qwen3_5_moe_text": dict(
        _QWEN_GDN_MOE,
        vocab_size=248_320,
        num_hidden_layers=40,
        num_experts_per_tok=8,
        num_experts=256,
    ),
    "qwen3_next": dict(
        _QWEN_GDN_MOE,
        vocab_size=151_936,
        intermediate_size=5632,
        num_hidden_layers=48,
        decoder_sparse_step=1,
        num_experts_per_tok=10,
        num_experts=512,
    ),
}


def _qwen_gdn(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """Qwen3-Next (qwen3_next), Qwen3.5 / 3.6 dense (qwen3_5) and MoE (qwen3_5_moe), text-only or with vision.

    Layers are gated DeltaNet (``linear_attention``) or full attention with a per-head output gate and q/k
    RMSNorm; 3:1 by default. DeltaNet: in_proj to q, k (K = key heads x key dim each), v and z (V = value
    heads x value dim each) plus b and a (one per value head), a depthwise conv over q/k/v (2K + V channels),
    A_log and dt_bias per value head, an RMSNorm over one value head, out_proj. Its state per sequence: the conv
    (2K + V channels x kernel - 1) and (value heads x value dim x key dim).
    """
    multimodal = model_type in ("qwen3_5", "qwen3_5_moe")
    text_type = {"qwen3_5": "qwen3_5_text", "qwen3_5_moe": "qwen3_5_moe_text"}.get(
        model_type, model_type
    )
    text = dict(_QWEN_GDN_DEFAULTS[text_type])
    source = cfg.get("text_config") if multimodal else cfg
    if multimodal and source is None:
        source = {}
    if not isinstance(source, Mapping):
        raise ConfigError("config.json text_config must be an object")
    text.update({k: v for k, v in source.items() if v is not None})
    n = int_field(text, "num_hidden_layers")
    h = int_field(text, "hidden_size")
    heads = Heads(
        *(int_field(text, k) for k in ("num_attention_heads", "num_key_value_heads", "head_dim"))
    )
    if heads.query % heads.kv:
        raise ConfigError(
            f"num_attention_heads {heads.query} is not a multiple of num_key_value_heads {heads.kv}"
        )
    nk, nv = int_field(text, "linear_num_key_heads"), int_field(text, "linear_num_value_heads")
    dk, dv = int_field(text, "linear_key_head_dim"), int_field(text, "linear_value_head_dim")
    kernel = int_field(text, "linear_conv_kernel_dim")
    attn = _gdn_layers(text, n)
    n_attn = sum(attn)
    n_gdn = n - n_attn
    key_dim, value_dim = nk * dk, nv * dv
    conv_dim = 2 * key_dim + value_dim
    vocab = int_field(text, "vocab_size")
    tie = bool(text.get("tie_word_embeddings", cfg.get("tie_word_embeddings", False)))
    if multimodal and "tie_word_embeddings" in cfg:
        tie = bool(cfg["tie_word_embeddings"])

    inv = HybridModel(cfg, model_type, name, hidden=h, vocab=vocab, tie=tie)
    inv.gqa(
        n_attn,
        heads,
        bias=bool(text.get("attention_bias", False)),
        q_gate=True,
        qk_norm=True,
    )
    c = "linear_attention"
    if model_type == "qwen3_next":  # fused projections
        inv.linear(
            "layers.linear_attn.in_proj_qkvz", 2 * key_dim + 2 * value_dim, h, n_gdn, "column", c
        )
        inv.linear("layers.linear_attn.in_proj_ba", 2 * nv, h, n_gdn, "column", c)
    else:
        inv.linear("layers.linear_attn.in_proj_qkv", conv_dim, h, n_gdn, "column", c)
        inv.linear("layers.linear_attn.in_proj_z", value_dim, h, n_gdn, "column", c)
        inv.linear("layers.linear_attn.in_proj_b", nv, h, n_gdn, "column", c)
        inv.linear("layers.linear_attn.in_proj_a", nv, h, n_gdn, "column", c)
    inv.conv("layers.linear_attn", conv_dim, kernel, n_gdn, False, c)
    for p in ("dt_bias", "A_log"):
        inv.add(f"layers.linear_attn.{p}", (nv,), n_gdn, "norm", "column", component=c)
    inv.norm("layers.linear_attn.norm", dv, n_gdn, component=c)
    inv.linear("layers.linear_attn.out_proj", h, value_dim, n_gdn, "row", c)

    moe: MoESpec | None = None
    intermediate = text.get("intermediate_size") or 0
    if text_type == "qwen3_5_text":
        intermediate = int_field(text, "intermediate_size")
        inv.mlp("layers.mlp", intermediate, n)
    else:
        experts = int_field(text, "num_experts", positive=False)
        step = int_field(text, "decoder_sparse_step", 1)
        only = {int(i) for i in (text.get("mlp_only_layers") or [])}
        dense: tuple[int, ...] = ()
        if text_type == "qwen3_5_moe_text":  # every layer is sparse (Qwen3_5MoeDecoderLayer)
            pass
        else:
            dense = tuple(
                i for i in range(n) if i in only or not (experts > 0 and (i + 1) % step == 0)
            )
        n_moe = n - len(dense)
        if dense:
            intermediate = int_field(text, "intermediate_size")
            inv.mlp("layers.mlp", intermediate, len(dense))
        if n_moe:
            width = int_field(text, "moe_intermediate_size")
            shared = int_field(text, "shared_expert_intermediate_size", positive=False)
            moe = inv.experts(
                n_moe,
                experts,
                width,
                int_field(text, "num_experts_per_tok"),
                shared,
                shared_gate=True,
                shared_prefix="layers.mlp.shared_expert",
                dense_layers=dense,
            )
            intermediate = intermediate or width

    extra: tuple[tuple[str, int], ...] = ()
    if multimodal and cfg.get("vision_config") is not None:
        # families_vl imports hf_config, which imports this module: import it when first needed
        from vramplan.model.families_vl import qwen3_5_vision_params

        extra = qwen3_5_vision_params(cfg["vision_config"])
    ssm = text.get("mamba_ssm_dtype")
    return inv.spec(
        heads=heads,
        intermediate=intermediate,
        max_positions=int_field(text, "max_position_embeddings"),
        attention=attn,
        state=StateSpec(
            kind="gated_deltanet",
            layers=state_layers(attn),
            conv_channels=conv_dim,
            conv_kernel=kernel,
            recurrent_shape=(nv, dv, dk),
            ssm_dtype=str(ssm) if ssm else None,
        ),
        moe=moe,
        dtype=config_dtype(text, cfg),
        quant_from=cfg if cfg.get("quantization_config") else text,
        extra=extra,
    )


# --- NVIDIA Nemotron-H / Nemotron 3: Mamba2, attention, MLP and MoE blocks ---------------------------------

_NEMOTRON_PATTERN = {"M": "mamba", "*": "attention", "-": "mlp", "E": "moe"}
_NEMOTRON_TYPES = {
    "mamba": "mamba",
    "linear_attention": "mamba",
    "attention": "attention",
    "full_attention": "attention",
    "mlp": "mlp",
    "moe": "moe",
}


def _nemotron_h(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """NemotronHForCausalLM: one mixer per layer, named by ``hybrid_override_pattern`` (M = Mamba2, * =
    attention, - = MLP, E = MoE) or ``layers_block_type``. MLPs and experts are plain (up/down, relu2); MoE
    layers have a router with an fp32 correction bias, a shared expert and, in Nemotron 3 Super, latent
    projections around the experts. The MTP head (``num_nextn_predict_layers``) is not part of the model class.
    """
    if cfg.get("layers_block_type"):
        kinds = check_kinds(list(cfg["layers_block_type"]), _NEMOTRON_TYPES, "layers_block_type")
    elif cfg.get("hybrid_override_pattern"):
        pattern = str(cfg["hybrid_override_pattern"])
        kinds = check_kinds(list(pattern), _NEMOTRON_PATTERN, "hybrid_override_pattern")
    else:
        kinds = ["mamba", "moe", "attention", "mlp"]  # NemotronHConfig default
    n = len(kinds)
    if not 0 < n <= MAX_LAYERS:
        raise ConfigError(f"nemotron_h config describes {n} layers")
    h = int_field(cfg, "hidden_size", 4096)
    heads = read_heads(cfg, h, 32, None, 128)
    m_heads, m_dim = int_field(cfg, "mamba_num_heads", 128), int_field(cfg, "mamba_head_dim", 64)
    mamba = Mamba2Sizes(
        m_heads,
        m_dim,
        groups=int_field(cfg, "n_groups", cfg.get("mamba_n_groups", 8)),
        d_state=int_field(cfg, "ssm_state_size", 128),
        d_conv=int_field(cfg, "conv_kernel", cfg.get("mamba_d_conv", 4)),
        inner=m_heads * m_dim,
    )
    mlp_bias = bool(cfg.get("mlp_bias", False))
    vocab = int_field(cfg, "vocab_size", 131_072)
    tie = bool(cfg.get("tie_word_embeddings", False))
    count = {k: kinds.count(k) for k in ("mamba", "attention", "mlp", "moe")}

    inv = HybridModel(cfg, model_type, name, hidden=h, vocab=vocab, tie=tie)
    inv.gqa(count["attention"], heads)
    use_bias = bool(cfg.get("use_bias", False))
    inv.mamba2(
        count["mamba"],
        mamba,
        conv_bias=bool(cfg.get("use_conv_bias", cfg.get("mamba_conv_bias", True))),
        proj_bias=use_bias,
    )
    intermediate = int_field(cfg, "intermediate_size", 21_504)
    inv.mlp("layers.mlp", intermediate, count["mlp"], gated=False, bias=mlp_bias)
    moe = None
    if count["moe"]:
        experts = int_field(cfg, "n_routed_experts", 8)
        width = int_field(cfg, "moe_intermediate_size", 7688)
        shared = int_field(cfg, "moe_shared_expert_intermediate_size", 7688)
        latent = cfg.get("moe_latent_size")
        nm = count["moe"]
        router(inv, nm, h, experts, name=ROUTER, correction_bias="buffer")
        expert_in = h
        if latent is not None:
            latent = int_field(cfg, "moe_latent_size")
            inv.linear("layers.mlp.fc1_latent_proj", latent, h, nm, "replicated", "mlp", mlp_bias)
            inv.linear("layers.mlp.fc2_latent_proj", h, latent, nm, "replicated", "mlp", mlp_bias)
            # the latent projections are always on: counted outside the routed experts
            expert_in = latent
        dense_mlp(
            inv,
            nm * experts,
            expert_in,
            width,
            gated=False,
            prefix="layers.mlp.experts",
            component="experts",
            role="expert",
            ungated_name="up_proj",
        )
        inv.mlp(
            "layers.mlp.shared_experts",
            shared,
            nm,
            gated=False,
            bias=mlp_bias,
            component="shared_experts",
        )
        moe = MoESpec(
            num_experts=experts,
            experts_per_token=int_field(cfg, "num_experts_per_tok", 2),
            expert_intermediate_size=width,
            shared_intermediate_size=shared,
            router_correction_bias=True,
            dense_layers=tuple(i for i, k in enumerate(kinds) if k != "moe"),
        )
    # vLLM: "auto" -> the HF field, else float32
    ssm = cfg.get("mamba_ssm_cache_dtype") or "float32"
    return inv.spec(
        heads=heads,
        intermediate=intermediate,
        max_positions=int_field(cfg, "max_position_embeddings", 4096),
        attention=[k == "attention" for k in kinds],
        state=mamba.state(tuple(i for i, k in enumerate(kinds) if k == "mamba"), str(ssm)),
        moe=moe,
        norms_per_layer=1,
    )


# --- IBM Granite 4.0-H (granitemoehybrid): Mamba2 or attention, MoE and a shared MLP -----------------------


def _granite_mamba(cfg: Config, inner: int) -> Mamba2Sizes:
    """The ``mamba_*`` fields Granite 4.0-H and Falcon-H1 share (and their common defaults); the head dim is
    ``mamba_d_head`` or, when "auto", the inner width over the heads."""
    heads = int_field(cfg, "mamba_n_heads", 128)
    head_dim = cfg.get("mamba_d_head", "auto")
    head_dim = inner // heads if head_dim in (None, "auto") else int_field(cfg, "mamba_d_head")
    return Mamba2Sizes(
        heads,
        head_dim,
        groups=int_field(cfg, "mamba_n_groups", 1),
        d_state=int_field(cfg, "mamba_d_state", 256),
        d_conv=int_field(cfg, "mamba_d_conv", 4),
        inner=heads * head_dim,
    )


def _granitemoehybrid(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """GraniteMoeHybridForCausalLM: each layer is Mamba2 or attention (``layer_types`` / legacy
    ``layers_block_type``), followed by a MoE (when ``num_local_experts`` > 0) and a shared gated MLP
    (``input_linear`` = gate and up fused, ``output_linear``). Mamba head dim defaults to expand x hidden /
    heads. Defaults: GraniteMoeHybridConfig."""
    h = int_field(cfg, "hidden_size", 4096)
    n = int_field(cfg, "num_hidden_layers", 32)
    types = cfg.get("layer_types") or cfg.get("layers_block_type") or ["mamba"] * n
    kinds = check_kinds(list(types), _NEMOTRON_TYPES, "layer_types")
    if len(kinds) != n:
        raise ConfigError(f"layer_types has {len(kinds)} entries but num_hidden_layers is {n}")
    heads = read_heads(cfg, h, 32, None, reads_head_dim=False)
    mamba = _granite_mamba(cfg, int_field(cfg, "mamba_expand", 2) * h)
    attn = [k == "attention" for k in kinds]
    n_attn = sum(attn)
    if n_attn + kinds.count("mamba") != n:
        raise ConfigError("granitemoehybrid layer types must each be 'mamba' or 'attention'")
    vocab = int_field(cfg, "vocab_size", 32_000)
    tie = bool(cfg.get("tie_word_embeddings", False))
    inv = HybridModel(cfg, model_type, name, hidden=h, vocab=vocab, tie=tie)
    bias = bool(cfg.get("attention_bias", False))
    inv.gqa(n_attn, heads, bias=bias, o_bias=bias)
    inv.mamba2(
        n - n_attn,
        mamba,
        conv_bias=bool(cfg.get("mamba_conv_bias", True)),
        proj_bias=bool(cfg.get("mamba_proj_bias", False)),
    )
    experts = int_field(cfg, "num_local_experts", 8, positive=False)
    width = int_field(cfg, "intermediate_size", 11_008)
    moe = None
    if experts:  # the shared MLP runs beside the routed experts in every layer
        top_k = int_field(cfg, "num_experts_per_tok", 2)
        shared = int_field(cfg, "shared_intermediate_size", 1024)
        moe = inv.experts(n, experts, width, top_k, shared, shared_prefix="layers.shared_mlp")
    else:
        shared = int_field(cfg, "shared_intermediate_size", 1024)
        inv.mlp("layers.shared_mlp", shared, n)
    return inv.spec(
        heads=heads,
        intermediate=shared,
        max_positions=int_field(cfg, "max_position_embeddings", 2048),
        attention=attn,
        state=mamba.state(state_layers(attn)),
        moe=moe,
    )


# --- Falcon-H1: attention and Mamba2 side by side in every layer -------------------------------------------


def _falcon_h1(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """FalconH1ForCausalLM: every layer runs attention and a Mamba2 mixer in parallel, then a gated MLP; so
    every layer keeps KV *and* state. Mamba inner width is ``mamba_d_ssm`` (else expand x hidden); the gated
    norm exists only with ``mamba_rms_norm``; in/out projections take ``mamba_proj_bias`` /
    ``projectors_bias``. Defaults: FalconH1Config."""
    h = int_field(cfg, "hidden_size", 4096)
    n = int_field(cfg, "num_hidden_layers", 32)
    heads = read_heads(cfg, h, 32, None)
    inner = cfg.get("mamba_d_ssm", 1024)
    inner = (
        int_field(cfg, "mamba_d_ssm")
        if inner is not None
        else int_field(cfg, "mamba_expand", 2) * h
    )
    mamba = _granite_mamba(cfg, inner)
    if mamba.inner != inner:
        raise ConfigError(
            "falcon_h1: mamba_n_heads x mamba_d_head must equal the Mamba inner width (mamba_d_ssm)"
        )
    vocab = int_field(cfg, "vocab_size", 128_000)
    tie = bool(cfg.get("tie_word_embeddings", False))
    bias = bool(cfg.get("attention_bias", False))
    inv = HybridModel(cfg, model_type, name, hidden=h, vocab=vocab, tie=tie)
    inv.gqa(n, heads, bias=bias, o_bias=bias)
    inv.mamba2(
        n,
        mamba,
        conv_bias=bool(cfg.get("mamba_conv_bias", True)),
        proj_bias=bool(cfg.get("mamba_proj_bias", False)),
        out_bias=bool(cfg.get("projectors_bias", False)),
        gated_norm=bool(cfg.get("mamba_rms_norm", False)),
    )
    intermediate = int_field(cfg, "intermediate_size", 14_336)
    inv.mlp("layers.mlp", intermediate, n, bias=bool(cfg.get("mlp_bias", False)))
    return inv.spec(
        heads=heads,
        intermediate=intermediate,
        max_positions=int_field(cfg, "max_position_embeddings", 8192),
        attention=[True] * n,
        state=mamba.state(tuple(range(n))),
    )


# --- Jamba: Mamba1 + attention, MoE every other layer -------------------------------------------------------


def _mamba1_mixer(
    inv: HybridModel,
    n: int,
    inner: int,
    d_state: int,
    d_conv: int,
    dt_rank: int,
    *,
    conv_bias: bool,
    proj_bias: bool,
    inner_norms: bool,
) -> None:
    """Mamba1 mixer: in_proj (x, z), conv over x, x_proj (dt, B, C), dt_proj (with bias), A_log (inner x
    d_state), D, out_proj; Jamba adds RMSNorms over dt, B and C."""
    c, prefix = "mamba", "layers.mamba"
    inv.linear(f"{prefix}.in_proj", 2 * inner, inv.h, n, "column", c, proj_bias)
    inv.conv(prefix, inner, d_conv, n, conv_bias, c)
    inv.linear(f"{prefix}.x_proj", dt_rank + 2 * d_state, inner, n, "row", c)
    inv.linear(f"{prefix}.dt_proj", inner, dt_rank, n, "column", c, True)
    inv.add(f"{prefix}.A_log", (inner, d_state), n, "norm", "column", component=c)
    inv.add(f"{prefix}.D", (inner,), n, "norm", "column", component=c)
    inv.linear(f"{prefix}.out_proj", inv.h, inner, n, "row", c, proj_bias)
    if inner_norms:
        inv.norm(f"{prefix}.dt_layernorm", dt_rank, n, component=c)
        inv.norm(f"{prefix}.b_layernorm", d_state, n, component=c)
        inv.norm(f"{prefix}.c_layernorm", d_state, n, component=c)


def _mamba1_state(layers: tuple[int, ...], inner: int, d_state: int, d_conv: int) -> StateSpec:
    """Per sequence a Mamba1 layer keeps its conv window over the inner width and (inner x d_state)."""
    return StateSpec(
        kind="mamba",
        layers=layers,
        conv_channels=inner,
        conv_kernel=d_conv,
        recurrent_shape=(inner, d_state),
    )


def _dt_rank(cfg: Config, key: str, h: int) -> int:
    value = cfg.get(key, "auto")
    return ceil(h / 16) if value in (None, "auto") else int_field(cfg, key)


def _jamba(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """JambaForCausalLM: layer i is attention when i % attn_layer_period == attn_layer_offset, else Mamba1;
    its feed-forward is a MoE when i % expert_layer_period == expert_layer_offset, else a gated MLP.
    Defaults: JambaConfig."""
    h = int_field(cfg, "hidden_size", 4096)
    n = int_field(cfg, "num_hidden_layers", 32)
    heads = read_heads(cfg, h, 32, 8, reads_head_dim=False)
    a_period, a_offset = (
        int_field(cfg, "attn_layer_period", 8),
        int_field(cfg, "attn_layer_offset", 4, positive=False),
    )
    e_period, e_offset = (
        int_field(cfg, "expert_layer_period", 2),
        int_field(cfg, "expert_layer_offset", 1, positive=False),
    )
    if a_offset >= a_period or e_offset >= e_period:
        raise ConfigError("jamba layer offsets must be smaller than their periods")
    attn = [i % a_period == a_offset for i in range(n)]
    experts = int_field(cfg, "num_experts", 16)
    sparse = [experts > 1 and i % e_period == e_offset for i in range(n)]
    inner = int_field(cfg, "mamba_expand", 2) * h
    d_state, d_conv = int_field(cfg, "mamba_d_state", 16), int_field(cfg, "mamba_d_conv", 4)
    dt_rank = _dt_rank(cfg, "mamba_dt_rank", h)
    vocab = int_field(cfg, "vocab_size", 65_536)
    tie = bool(cfg.get("tie_word_embeddings", False))
    n_attn, n_moe = sum(attn), sum(sparse)
    width = int_field(cfg, "intermediate_size", 14_336)
    inv = HybridModel(cfg, model_type, name, hidden=h, vocab=vocab, tie=tie)
    inv.gqa(n_attn, heads)
    _mamba1_mixer(
        inv,
        n - n_attn,
        inner,
        d_state,
        d_conv,
        dt_rank,
        conv_bias=bool(cfg.get("mamba_conv_bias", True)),
        proj_bias=bool(cfg.get("mamba_proj_bias", False)),
        inner_norms=True,
    )
    inv.mlp("layers.mlp", width, n - n_moe)
    moe = None
    if n_moe:
        top_k = int_field(cfg, "num_experts_per_tok", 2)
        dense = tuple(i for i in range(n) if not sparse[i])
        moe = inv.experts(n_moe, experts, width, top_k, dense_layers=dense)
    return inv.spec(
        heads=heads,
        intermediate=width,
        max_positions=int_field(cfg, "max_position_embeddings", 262_144),
        attention=attn,
        state=_mamba1_state(state_layers(attn), inner, d_state, d_conv),
        moe=moe,
    )


# --- Pure state-space models: Mamba, Mamba2 ----------------------------------------------------------------


def _mamba(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """MambaForCausalLM (Mamba1) and Mamba2ForCausalLM: no attention at all, one mixer and one RMSNorm per
    layer, ``backbone.norm_f``. Defaults: MambaConfig (tied embeddings) / Mamba2Config (untied)."""
    v2 = model_type == "mamba2"
    h = int_field(cfg, "hidden_size", 4096 if v2 else 768)
    n = int_field(cfg, "num_hidden_layers", 64 if v2 else 32)
    inner = int_field(cfg, "expand", 2) * h
    d_state = int_field(cfg, "state_size", 128 if v2 else 16)
    d_conv = int_field(cfg, "conv_kernel", 4)
    vocab = int_field(cfg, "vocab_size", 32_768 if v2 else 50_280)
    tie = bool(cfg.get("tie_word_embeddings", not v2))
    inv = HybridModel(cfg, model_type, name, hidden=h, vocab=vocab, tie=tie)
    conv_bias, proj_bias = bool(cfg.get("use_conv_bias", True)), bool(cfg.get("use_bias", False))
    if v2:
        # Mamba2Mixer sizes its inner width as expand x hidden, not heads x head_dim.
        mamba = Mamba2Sizes(
            int_field(cfg, "num_heads", 128),
            int_field(cfg, "head_dim", 64),
            groups=int_field(cfg, "n_groups", 8),
            d_state=d_state,
            d_conv=d_conv,
            inner=inner,
        )
        inv.mamba2(n, mamba, conv_bias=conv_bias, proj_bias=proj_bias)
        heads, head_dim = mamba.heads, mamba.head_dim
        state = mamba.state(tuple(range(n)))
    else:
        _mamba1_mixer(
            inv,
            n,
            inner,
            d_state,
            d_conv,
            _dt_rank(cfg, "time_step_rank", h),
            conv_bias=conv_bias,
            proj_bias=proj_bias,
            inner_norms=False,
        )
        heads, head_dim = inner, 1
        state = _mamba1_state(tuple(range(n)), inner, d_state, d_conv)
    return inv.spec(
        # No attention: the "heads" are what TP must divide (vLLM splits Mamba2 heads, Mamba1's inner width).
        heads=Heads(heads, heads, head_dim),
        intermediate=inner,
        max_positions=int_field(cfg, "max_position_embeddings", 1 << 20),
        attention=[False] * n,
        state=state,
        norms_per_layer=1,
    )


# --- LiquidAI LFM2: short convolutions + attention -----------------------------------------------------------


def lfm2_ff_width(cfg: Config) -> int:
    """Lfm2MLP's width: with ``block_auto_adjust_ff_dim`` (default on) 2/3 of intermediate_size, times
    ``block_ffn_dim_multiplier``, rounded up to ``block_multiple_of``."""
    width = int_field(cfg, "intermediate_size", cfg.get("block_ff_dim", 12_288))
    if cfg.get("block_auto_adjust_ff_dim", True):
        width = int(2 * width / 3)
        multiplier = cfg.get("block_ffn_dim_multiplier", 1.0)
        if multiplier is not None:
            multiple = int_field(cfg, "block_multiple_of", 256)
            width = int(multiplier * width)
            width = multiple * ((width + multiple - 1) // multiple)
    return width


def _lfm2(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """Lfm2ForCausalLM: each layer is a short convolution (in_proj to B, C, x; depthwise conv of
    ``conv_L_cache`` taps over hidden channels; out_proj) or attention with q/k RMSNorm, then a gated MLP
    (w1, w3, w2). An RMSNorm follows the embedding (``embedding_norm``) and ends the model; embeddings tied by
    default. The conv state per sequence is hidden x (L_cache - 1). Defaults: Lfm2Config."""
    h = int_field(cfg, "hidden_size", 2560)
    n = int_field(cfg, "num_hidden_layers", 32)
    types = cfg.get("layer_types")
    if types is None:
        full = cfg.get("full_attn_idxs")
        full_set = set(range(n)) if full is None else {int(i) for i in full}
        types = ["full_attention" if i in full_set else "conv" for i in range(n)]
    kinds = layer_kinds(types, n, {"conv": "conv", "full_attention": "attention"})
    attn = [k == "attention" for k in kinds]
    heads = read_heads(cfg, h, 32, 8, reads_head_dim=False)
    kernel = int_field(cfg, "conv_L_cache", 3)
    bias = bool(cfg.get("conv_bias", False))
    vocab = int_field(cfg, "vocab_size", 65_536)
    tie = bool(cfg.get("tie_word_embeddings", cfg.get("tie_embedding", True)))
    n_attn = sum(attn)
    width = lfm2_ff_width(cfg)
    inv = HybridModel(cfg, model_type, name, hidden=h, vocab=vocab, tie=tie)
    # Lfm2Model has no final norm of its own: ``embedding_norm`` is applied after the last layer.
    inv.add("embedding_norm.weight", (h,), 1, "norm", "replicated", component="norms", stage="last")
    inv.gqa(
        n_attn,
        heads,
        qk_norm=True,
        o_name="out_proj",
        norm_names=("q_layernorm", "k_layernorm"),
    )
    c = "short_conv"
    inv.linear("layers.conv.in_proj", 3 * h, h, n - n_attn, "column", c, bias)
    inv.add("layers.conv.conv.weight", (h, 1, kernel), n - n_attn, "linear", "column", component=c)
    if bias:
        inv.add("layers.conv.conv.bias", (h,), n - n_attn, "bias", "column", component=c)
    inv.linear("layers.conv.out_proj", h, h, n - n_attn, "row", c, bias)
    inv.mlp("layers.feed_forward", width, n)
    return inv.spec(
        heads=heads,
        intermediate=width,
        max_positions=int_field(cfg, "max_position_embeddings", 128_000),
        attention=attn,
        state=StateSpec(
            kind="short_conv", layers=state_layers(attn), conv_channels=h, conv_kernel=kernel
        ),
        ends_with_norm=False,
    )


# --- Moonshot Kimi-Linear: KDA + MLA -------------------------------------------------------------------------


def _kimi_layer_kinds(cfg: Config, linear_cfg: Config, n: int) -> list[str]:
    """ "mla" or "kda" per layer: ``layer_types``, else ``linear_attn_config``'s 1-based ``full_attn_layers`` /
    ``kda_layers``, else KimiLinearConfig's default (every 4th layer from the 5th is MLA)."""
    types = cfg.get("layer_types")
    if types:
        return layer_kinds(types, n, {"full_attention": "mla", "linear_attention": "kda"})
    if "full_attn_layers" in linear_cfg and "kda_layers" in linear_cfg:
        found: list[str | None] = [None] * n
        for key, kind in (("full_attn_layers", "mla"), ("kda_layers", "kda")):
            for layer in linear_cfg[key]:
                if not isinstance(layer, int) or not 1 <= layer <= n:
                    raise ConfigError(
                        f"linear_attn_config.{key} holds {layer!r}: layers are numbered 1..{n}"
                    )
                found[layer - 1] = kind
        if None in found:
            raise ConfigError(
                f"linear_attn_config leaves layer {found.index(None) + 1} neither KDA nor full attention"
            )
        return [str(k) for k in found]
    return ["mla" if i and i % 4 == 0 else "kda" for i in range(n)]


def _kimi_linear(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """KimiLinearForCausalLM: layers are Kimi Delta Attention (KDA) or MLA (``linear_attn_config``'s 1-based
    ``kda_layers`` / ``full_attn_layers``, or ``layer_types``); the first ``first_k_dense_replace`` layers have a
    gated MLP, the rest a MoE with shared experts (moe width x n_shared) and an fp32 router + correction bias.
    KDA: q/k/v projections (heads x head_dim each), a depthwise conv over all three, a low-rank forget gate
    (f_a, f_b, per-channel dt_bias, per-head A_log), b_proj, a low-rank output gate and a gated RMSNorm.
    State per sequence: conv 3 x heads x head_dim x (kernel - 1) and heads x head_dim x head_dim in fp32.
    Defaults: KimiLinearConfig."""
    linear_cfg = cfg.get("linear_attn_config") or {}
    if not isinstance(linear_cfg, Mapping):
        raise ConfigError("config.json linear_attn_config must be an object")
    h = int_field(cfg, "hidden_size", 2304)
    n = int_field(cfg, "num_hidden_layers", 27)
    attn = [k == "mla" for k in _kimi_layer_kinds(cfg, linear_cfg, n)]
    heads = int_field(cfg, "num_attention_heads", 32)
    l_heads = int_field(linear_cfg, "num_heads", cfg.get("linear_num_heads", 32))
    l_dim = int_field(linear_cfg, "head_dim", cfg.get("linear_head_dim", 128))
    kernel = int_field(linear_cfg, "short_conv_kernel_size", cfg.get("linear_conv_kernel_dim", 4))
    q_lora = cfg.get("q_lora_rank")
    mla = MLASpec(
        q_lora_rank=int_field(cfg, "q_lora_rank") if q_lora else 0,
        kv_lora_rank=int_field(cfg, "kv_lora_rank", 512),
        qk_nope_head_dim=int_field(cfg, "qk_nope_head_dim", 128),
        qk_rope_head_dim=int_field(cfg, "qk_rope_head_dim", 64),
        v_head_dim=int_field(cfg, "v_head_dim", 128),
    )
    vocab = int_field(cfg, "vocab_size", 163_840)
    tie = bool(cfg.get("tie_word_embeddings", False))
    n_attn = sum(attn)
    n_kda = n - n_attn
    inv = HybridModel(cfg, model_type, name, hidden=h, vocab=vocab, tie=tie)
    inv.mla(n_attn, heads, mla, bias=bool(cfg.get("attention_bias", False)))
    qkv = l_heads * l_dim
    c = "linear_attention"
    for p in ("q_proj", "k_proj", "v_proj"):
        inv.linear(f"layers.kda.{p}", qkv, h, n_kda, "column", c)
    inv.conv("layers.kda", 3 * qkv, kernel, n_kda, False, c)
    inv.linear("layers.kda.f_a_proj", l_dim, h, n_kda, "replicated", c)
    inv.linear("layers.kda.f_b_proj", qkv, l_dim, n_kda, "column", c)
    inv.add("layers.kda.dt_bias", (qkv,), n_kda, "norm", "column", component=c)
    inv.add("layers.kda.A_log", (1, 1, l_heads, 1), n_kda, "norm", "replicated", component=c)
    inv.linear("layers.kda.b_proj", l_heads, h, n_kda, "column", c)
    inv.linear("layers.kda.g_a_proj", l_dim, h, n_kda, "replicated", c)
    inv.linear("layers.kda.g_b_proj", qkv, l_dim, n_kda, "column", c)
    inv.norm("layers.kda.o_norm", l_dim, n_kda, component=c)
    inv.linear("layers.kda.o_proj", h, qkv, n_kda, "row", c)

    mlp_types = cfg.get("mlp_layer_types")
    if mlp_types is None:
        first_dense = int_field(cfg, "first_k_dense_replace", 1, positive=False)
        mlp_types = ["dense" if i < first_dense else "sparse" for i in range(n)]
    sparse = check_kinds(list(mlp_types), {"dense": "dense", "sparse": "sparse"}, "mlp_layer_types")
    dense = tuple(i for i in range(n) if sparse[i] == "dense")
    n_moe = n - len(dense)
    intermediate = int_field(cfg, "intermediate_size", 9216)
    inv.mlp("layers.mlp", intermediate, len(dense))
    moe = None
    if n_moe:
        # KimiLinearConfig maps num_experts <-> num_local_experts and num_experts_per_token <-> _per_tok.
        experts = int_field(cfg, "num_experts", cfg.get("num_local_experts", 256))
        width = int_field(cfg, "moe_intermediate_size", 1024)
        shared = width * int_field(
            cfg, "num_shared_experts", cfg.get("n_shared_experts", 1), positive=False
        )
        top_k = int_field(cfg, "num_experts_per_token", cfg.get("num_experts_per_tok", 8))
        moe = inv.experts(
            n_moe, experts, width, top_k, shared, correction_bias="buffer", dense_layers=dense
        )
    return inv.spec(
        heads=Heads(heads, heads, mla.qk_nope_head_dim + mla.qk_rope_head_dim),
        intermediate=intermediate,
        max_positions=int_field(
            cfg, "max_position_embeddings", cfg.get("model_max_length", 1 << 20)
        ),
        attention=attn,
        state=StateSpec(
            kind="kda",
            layers=state_layers(attn),
            conv_channels=3 * qkv,
            conv_kernel=kernel,
            recurrent_shape=(l_heads, l_dim, l_dim),
            ssm_dtype="float32",  # vLLM keeps the KDA recurrent state in fp32 when "auto"
        ),
        moe=moe,
        mla=mla,
    )


# --- MiniMax-Text-01 / MiniMax-M1: lightning (linear) attention + softmax attention, MoE everywhere ----------


def _minimax(cfg: Config, model_type: str, name: str) -> ModelSpec:
    """MiniMaxForCausalLM: layers are lightning attention (``linear_attention``: fused qkv, an output gate,
    an RMSNorm over heads x head_dim, out_proj) or softmax GQA attention (``layer_types``; default alternating,
    full first), each followed by a Mixtral-style MoE. A lightning layer keeps one (heads, head_dim, head_dim)
    state per sequence and no conv. Defaults: MiniMaxConfig."""
    h = int_field(cfg, "hidden_size", 4096)
    n = int_field(cfg, "num_hidden_layers", 32)
    types = cfg.get("layer_types")
    if types is None:
        types = ["full_attention" if (i + 1) % 2 else "linear_attention" for i in range(n)]
    kinds = layer_kinds(types, n, {"full_attention": "attn", "linear_attention": "linear"})
    attn = [k == "attn" for k in kinds]
    heads = read_heads(cfg, h, 32, 8)
    n_heads, d = heads.query, heads.dim
    experts = int_field(cfg, "num_local_experts", 8)
    width = int_field(cfg, "intermediate_size", 14_336)
    vocab = int_field(cfg, "vocab_size", 32_000)
    tie = bool(cfg.get("tie_word_embeddings", False))
    n_attn = sum(attn)
    n_lin = n - n_attn
    inv = HybridModel(cfg, model_type, name, hidden=h, vocab=vocab, tie=tie)
    inv.gqa(n_attn, heads)
    c = "linear_attention"
    inv.linear("layers.linear_attn.qkv_proj", 3 * n_heads * d, h, n_lin, "column", c)
    inv.linear("layers.linear_attn.output_gate", n_heads * d, h, n_lin, "column", c)
    inv.norm("layers.linear_attn.norm", n_heads * d, n_lin, component=c, split="column")
    inv.linear("layers.linear_attn.out_proj", h, n_heads * d, n_lin, "row", c)
    moe = inv.experts(n, experts, width, int_field(cfg, "num_experts_per_tok", 2))
    return inv.spec(
        heads=heads,
        intermediate=width,
        max_positions=int_field(cfg, "max_position_embeddings", 4096 * 32),
        attention=attn,
        state=StateSpec(
            kind="linear_attention",
            layers=state_layers(attn),
            conv_channels=0,
            conv_kernel=1,
            recurrent_shape=(n_heads, d, d),
        ),
        moe=moe,
    )


def _remote_code_only(cfg: Config, model_type: str, name: str) -> ModelSpec:
    arch = ", ".join(str(a) for a in (cfg.get("architectures") or [model_type]))
    raise UnsupportedModelError(
        f"{arch} ({model_type}) exists only as remote code in its repository, and vramplan never runs remote code; "
        "its layers differ from every transformers class, so its parameters cannot be counted exactly"
    )


#: Model types recognised only to refuse them in one line (their code lives in the checkpoint's repository).
REMOTE_CODE_ONLY = ("kimi_k3",)

HYBRID_BUILDERS: dict[str, Callable[[Config, str, str], ModelSpec]] = {
    "qwen3_next": _qwen_gdn,
    "qwen3_5": _qwen_gdn,
    "qwen3_5_text": _qwen_gdn,
    "qwen3_5_moe": _qwen_gdn,
    "qwen3_5_moe_text": _qwen_gdn,
    "nemotron_h": _nemotron_h,
    "granitemoehybrid": _granitemoehybrid,
    "falcon_h1": _falcon_h1,
    "jamba": _jamba,
    "mamba": _mamba,
    "mamba2": _mamba,
    "lfm2": _lfm2,
    "kimi_linear": _kimi_linear,
    "minimax": _minimax,
    "kimi_k3": _remote_code_only,
}

#: The state kinds these builders produce, for docs and the CLI.
STATE_KINDS: tuple[StateKind, ...] = (
    "mamba",
    "mamba2",
    "gated_deltanet",
    "kda",
    "short_conv",
    "linear_attention",
)
