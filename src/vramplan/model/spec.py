"""ModelSpec: the architecture facts that memory depends on, and nothing else.

A ModelSpec is built from a config.json (``hf_config.py``), a GGUF header or a bare parameter count.
Everything downstream (parameter counts, weight bytes, KV bytes, activations) is a pure function of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from vramplan.cached_hash import cached_hash, state_without_hash
from vramplan.model.layout import CacheLayer, TensorGroup

#: "no_attention" marks a layer without KV (a Mamba / DeltaNet / short-conv / MLP-only block of a hybrid).
#: Upper bounds on config sizes that no released model comes near; anything above is a corrupt or
#: hostile config (every family builder checks against these).
MAX_LAYERS = 4096
MAX_WIDTH = 1 << 24

AttentionKind = Literal["full_attention", "sliding_attention", "no_attention"]
#: The per-sequence state a non-attention token mixer carries from one token to the next.
StateKind = Literal["mamba", "mamba2", "gated_deltanet", "kda", "short_conv", "linear_attention"]
NormKind = Literal["rms", "layer"]
MlpKind = Literal["gated", "plain"]


@dataclass(frozen=True)
class MoESpec:
    """Mixture-of-experts facts for the layers that route tokens to experts."""

    num_experts: int
    experts_per_token: int
    expert_intermediate_size: int
    #: Total intermediate width of always-on shared experts (DeepSeek: n_shared x moe_I; Qwen2-MoE).
    shared_intermediate_size: int = 0
    #: Qwen2-MoE gates the shared expert with a Linear(hidden, 1).
    shared_expert_gate: bool = False
    router_bias: bool = False
    #: gpt-oss experts carry biases on gate_up and down.
    expert_bias: bool = False
    #: DeepSeek-V3 keeps an fp32 ``e_score_correction_bias`` per expert.
    router_correction_bias: bool = False
    #: Layer indices that use the dense MLP instead (DeepSeek ``first_k_dense_replace``, Qwen ``mlp_only_layers``).
    dense_layers: tuple[int, ...] = ()


@dataclass(frozen=True)
class MLASpec:
    """Multi-head latent attention (DeepSeek-V2/V3): the KV cache holds one latent per token per layer."""

    q_lora_rank: int  # 0 means a direct q_proj (DeepSeek-V2-Lite)
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int


@dataclass(frozen=True)
class StateSpec:
    """Per-sequence state of the recurrent layers of a hybrid or state-space model.

    Every such layer holds a causal-conv state of ``conv_channels x (conv_kernel - 1)`` and (except short conv)
    a recurrent state of ``recurrent_shape``, whatever the context length (vLLM ``mamba_utils.py``,
    transformers' Mamba/hybrid caches, llama.cpp ``llama_memory_recurrent``).
    """

    kind: StateKind
    #: Indices of the layers that hold this state.
    layers: tuple[int, ...]
    #: Channels of the conv state at TP 1 (Mamba2: intermediate + 2 x n_groups x d_state; GDN: 2 x K + V).
    conv_channels: int
    #: Kernel width of the causal conv; the state keeps ``conv_kernel - 1`` columns.
    conv_kernel: int
    #: Recurrent state at TP 1, its first axis split by TP: Mamba1 (d_inner, d_state), Mamba2 (heads, head_dim,
    #: d_state), gated DeltaNet (v_heads, v_dim, k_dim), KDA and MiniMax lightning attention (heads, head_dim,
    #: head_dim); () for short conv. Lightning attention has no conv (``conv_channels`` 0).
    recurrent_shape: tuple[int, ...] = ()
    #: Mamba2 B/C groups: ``n_groups`` groups of ``group_channels`` conv channels, padded up to TP when TP does
    #: not divide them (vLLM ``extra_groups_for_head_shards``).
    conv_groups: int = 0
    group_channels: int = 0
    #: The checkpoint's own recurrent-state dtype (``mamba_ssm_cache_dtype`` / ``mamba_ssm_dtype``; KDA float32);
    #: None means the model dtype.
    ssm_dtype: str | None = None

    @property
    def num_layers(self) -> int:
        return len(self.layers)


@dataclass(frozen=True)
class ModelSpec:
    """Architecture facts of a decoder-only transformer, enough to count every parameter exactly."""

    name: str
    model_type: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    max_position_embeddings: int
    #: Width of V per head; differs from head_dim in MLA.
    v_head_dim: int = 0
    mlp_kind: MlpKind = "gated"
    norm_kind: NormKind = "rms"
    norms_per_layer: int = 2
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False
    attention_sinks: bool = False
    tie_word_embeddings: bool = False
    lm_head_bias: bool = False
    learned_position_embeddings: int = 0
    embedding_norm: bool = False
    final_norm: bool = True
    #: OPT-350m style projection between a narrower embedding and the hidden size (0 = none).
    word_embed_proj_dim: int = 0
    moe: MoESpec | None = None
    mla: MLASpec | None = None
    #: One entry per layer; "sliding_attention" layers keep only ``sliding_window`` tokens of KV.
    layer_types: tuple[AttentionKind, ...] = ()
    sliding_window: int | None = None
    torch_dtype: str = "bfloat16"
    #: The checkpoint's own ``quantization_config`` (GPTQ, AWQ, FP8, MXFP4, bitsandbytes, compressed-tensors).
    quantization_config: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    #: The config's ``rope_scaling`` (or ``rope_parameters``): it sets the longest context engines accept.
    rope_scaling: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    #: Parameters outside the text decoder (vision tower, projector) as (name, count) pairs.
    extra_params: tuple[tuple[str, int], ...] = ()
    #: Where the facts came from (catalogue file, path, Hub id, GGUF), for provenance.
    source: str = ""
    #: Recurrent state of hybrid / state-space models (None for pure attention models).
    state: StateSpec | None = None
    #: Explicit inventory (``model/layout.py``) for families whose layers differ (hybrids included);
    #: empty = derived from the fields above by ``params.inventory``.
    tensors: tuple[TensorGroup, ...] = ()
    #: Explicit caches per layer (one tuple per layer; empty tuple = the layer keeps no KV); empty = uniform.
    kv_layout: tuple[tuple[CacheLayer, ...], ...] = ()
    #: What the builder assumed (resolved by architecture, generic meta-device count), shown to the user.
    notes: tuple[str, ...] = field(default=(), compare=False, hash=False)
    #: Multi-token-prediction layers the checkpoint ships beside the model (``num_nextn_predict_layers``,
    #: ``mtp_num_hidden_layers``): loaded only when speculative decoding uses them (``method: mtp``).
    mtp_layers: int = 0

    def __post_init__(self) -> None:
        if not self.v_head_dim:
            object.__setattr__(self, "v_head_dim", self.head_dim)
        if not self.layer_types:
            object.__setattr__(self, "layer_types", ("full_attention",) * self.num_layers)

    # Specs key every lru_cache on the hot path: hash the 20-odd fields once, not on every lookup.
    __hash__ = cached_hash
    __getstate__ = state_without_hash

    @property
    def is_moe(self) -> bool:
        return self.moe is not None

    @property
    def attention_layers(self) -> int:
        """Layers that keep per-token KV (all of them, except the recurrent/MLP-only blocks of a hybrid)."""
        return sum(1 for t in self.layer_types if t != "no_attention")

    def layer_keeps_kv(self, layer: int) -> bool:
        """Layer ``layer`` holds its own per-token KV: not a recurrent/MLP-only block, and not a layer
        that reuses an earlier layer's cache (Gemma 3n / Gemma 4 KV sharing: empty ``kv_layout`` entry)."""
        if layer >= len(self.layer_types) or self.layer_types[layer] == "no_attention":
            return False
        return not self.kv_layout or bool(self.kv_layout[layer])

    @property
    def uses_sliding_window(self) -> bool:
        return "sliding_attention" in self.layer_types

    def moe_layer(self, index: int) -> bool:
        """Whether layer ``index`` routes through experts (False for dense-first layers)."""
        return self.moe is not None and index not in self.moe.dense_layers
